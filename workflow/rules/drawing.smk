# The figure jobs' helpers (rules plots, workflow/rules/report.smk, and importance,
# workflow/rules/importance.smk): warm drawing processes, started before the first job.

from kerasgrid.running import drawing


# The figures are drawn by warm processes that imported Matplotlib and Optuna's fANOVA while the
# trials trained (kerasgrid/running/drawing.py): the run's last seconds are drawing, not importing.
DRAWERS = drawing.Drawers()
DRAWING_RULES = {"plots", "importance"}


def start_drawers():
    """Before the first job (onstart): as many drawers as the run has figure jobs to run side by
    side. Only where the rules' run blocks run in this process (the default profile's
    force-use-threads; a cluster's local rules); a run without spawns a snakemake per job, which draws itself."""
    if not workflow.use_threads:
        return
    try:
        count = sum(job.rule.name in DRAWING_RULES for job in workflow.dag.needrun_jobs())
    except AttributeError:  # a Snakemake whose DAG has another shape: drawers start as jobs need them
        return
    DRAWERS.start(min(count, run_cores()[0] if TRAINS_HERE else 2))


def draw(kind, log, **args):
    """A figure job's work (kerasgrid.running.drawing.TASKS[kind]), in a warm drawer."""
    task = {"kind": kind, "args": args, "log": log[0]}
    if workflow.is_main_process:
        DRAWERS.run(task)
    else:
        drawing.run_task(task)
