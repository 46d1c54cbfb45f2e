# The sweep the config describes, checked against the schema, and what all the rules read of it:
# the runs' records, the aggregation rules' params, the run's start and end. The helpers of the jobs
# that train live in running.smk, each strategy's with its rules (halving.smk, adaptive.smk,
# confirm.smk); the logic lives in the kerasgrid package.

import threading

from snakemake.utils import validate

from kerasgrid.config import check, config_source, gpus_from_command_line, load_schema, sweep_from_config
from kerasgrid.errors import exit_with_paragraph
from kerasgrid.fraction import summary_lines
from kerasgrid.records import check_writable
from kerasgrid.results.best_model import saved_model_lines
from kerasgrid.results.leaderboard import winner_lines
from kerasgrid.results.tables import leaderboard_failures, leaderboard_lines
from kerasgrid.results.tracking import summary_lines as mlflow_lines
from kerasgrid.running import attempts, runlock
from kerasgrid.running.logs import error_log, job_log
from kerasgrid.search import describe_space
from kerasgrid.sweep import runs

# Each error below is one paragraph naming file, key and fix; exit_with_paragraph prints it alone,
# where Snakemake would put its own location line before it and kerasgrid's frames after.
with exit_with_paragraph():
    if workflow.is_main_process:
        stale = runlock.release_stale_lock()
        if stale:
            print(stale)
        check_writable("results")  # a read-only results/ stops here, with what to do, not in a job

    SCHEMA_FILE = "../schemas/config.schema.yaml"
    SCHEMA = load_schema(workflow.source_path(SCHEMA_FILE))
    CONFIG_SOURCE = config_source(workflow.overwrite_configfiles)

    check(gpus_from_command_line(config), SCHEMA, CONFIG_SOURCE)
    validate(config, SCHEMA_FILE)  # fills in the schema's defaults
    SWEEP = sweep_from_config(config, CONFIG_SOURCE)


# A run's folder below results/trials: "{trial}" for the config's seed, "{trial}/seeds/<seed>" for
# each further seed of `repeats` (kerasgrid/sweep/runs.py). With repeats the rules' paths hold the seed
# part as a wildcard that may be empty; without, they are exactly those of a sweep before repeats
# existed (and so are job names, SLURM job comments and logs).
REPEATED = SWEEP.repeats > 1


wildcard_constraints:
    seed_path="(/seeds/-?[0-9]+)?",


def run_records(trials):
    """The metrics.json of each of these trials' runs, one per seed.

    Strings, not kerasgrid.sweep.runs.run_dir's Paths: this runs for every trial of 100k-trial grids.
    """
    return [f"results/trials/{trial}{runs.seed_path(seed, SWEEP.seed)}/metrics.json"
            for trial in trials for seed in SWEEP.seeds]


def trial_metrics(wildcards):
    """Each candidate's records (one per seed): its trial's metrics.json, or with halving, the
    rung's where it stopped."""
    if SWEEP.halving:
        return furthest_records()  # workflow/rules/halving.smk
    if SWEEP.adaptive:
        return sorted(round_records(len(SWEEP.round_sizes)))  # workflow/rules/adaptive.smk
    # Sorted, so that reordering the grid changes nothing Snakemake compares.
    return run_records(sorted(SWEEP.trials))


# With data.fraction, the summary of what the tuning runs trained on (rule training_data).
TRAINING_DATA = "results/training_data.json" if SWEEP.fraction < 1 else None


def training_data_summary(wildcards):
    return TRAINING_DATA or []


# With `mlflow`: what the sweep's last step logged to MLflow (rule mlflow_runs, workflow/rules/mlflow.smk).
MLFLOW_RECORD = "results/mlflow.json" if SWEEP.mlflow else None


def mlflow_record(wildcards):
    return MLFLOW_RECORD or []


def mlflow_target(wildcards):
    return SWEEP.mlflow


# The aggregation rules' params are functions too: Snakemake would format plain strings as
# patterns, and a grid key such as "a{b}" must reach the script as it is.
def ranking_objective(wildcards):
    return SWEEP.objective


def importance_objectives(wildcards):
    """The objectives to find the important hyperparameters of (importance.smk), as a list: all of
    them where the objective holds several (`objectives`), else the one."""
    objective = ranking_objective(wildcards)
    return objective.get("objectives") or [objective]


def grid_keys(wildcards):
    return sorted(SWEEP.grid_keys)


def grid_space(wildcards):
    """The grid in one canonical form (kerasgrid.search.describe_space): which keys are ranges, log
    or not, for the plots' axes and the importance's distributions."""
    return describe_space(SWEEP.space)


def rungs(wildcards):
    return SWEEP.rungs


def seeds(wildcards):
    return SWEEP.seeds


def search_plan(wildcards):
    return SWEEP.plan()


def config_file(wildcards):
    return CONFIG_SOURCE


def search_plots(wildcards):
    """The figures only some searches draw: an adaptive search's optimization history."""
    return ["results/plots/optimization_history.png"] if SWEEP.adaptive else []


def front_files(wildcards):
    """With several objectives, the Pareto front: its table and its plot (workflow/rules/pareto.smk)."""
    return ["results/pareto.tsv", "results/plots/pareto.png"] if SWEEP.several_objectives else []


def here(log, function, *args, **kwargs):
    """A light job's work (a few files read and written, with modules this process has loaded) in
    the process that runs its run block: snakemake's own, whose output is not the job's to redirect,
    so only an error goes to the job's log; or, without force-use-threads, the job's own snakemake."""
    if not workflow.is_main_process:
        with job_log(log[0]):
            return function(*args, **kwargs)
    with error_log(log[0]):
        return function(*args, **kwargs)


def run_started():
    runlock.claim()
    attempts.forget()  # errors of earlier runs: the user may have fixed their cause
    announce_size()  # the trials to train, the time left, a big sweep's warning (workflow/rules/running.smk)
    start_drawers()  # they import while the trials train (workflow/rules/drawing.smk)


def cancel_scheduler_timers():
    """Snakemake's job rate limiter (100 jobs/s by default) leaves a one-second threading.Timer
    after each scheduling pass, to wake the scheduler; Python waits for it before exiting, so every
    run ended up to a second late. The run is over: no scheduler is left to wake."""
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer) and "_schedule_reevalutation" in getattr(
            thread.function, "__qualname__", ""
        ):
            thread.cancel()


def run_ended(leaderboard=None, best_params=None, best_model=None, training_data=None, mlflow_record=None):
    DRAWERS.end()  # the drawers (workflow/rules/drawing.smk) end while the workers do
    WORKERS.close()  # the warm workers (workflow/rules/running.smk)
    DRAWERS.close()
    runlock.release()
    cancel_scheduler_timers()
    lines = summary_lines(training_data) if training_data else []
    if leaderboard:
        lines += [""] * bool(lines) + leaderboard_lines(leaderboard, SWEEP.objective)
    tracked = mlflow_lines(mlflow_record) if mlflow_record else []  # where the runs are, or what is not logged
    if tracked:
        lines += [""] * bool(lines) + tracked
    # The trials that failed or diverged, why, and where their logs are: the last word but for the winner.
    failures = leaderboard_failures(leaderboard) if leaderboard else []
    if failures:
        lines += [""] * bool(lines) + failures
    if best_params:
        # A winner kept as weights only is said last but for the winner, which ends the run.
        note = saved_model_lines(best_model) if best_model else []
        lines += [""] * bool(lines) + note + winner_lines(best_params)
    for line in lines:
        print(line)
