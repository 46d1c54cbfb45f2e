# How the jobs that train (train, and halving's rung, confirm's confirm, report's best_model) run:
# the settings and console message each job gets, the GPUs, and the warm workers each hands its
# trial to. Helpers only; the rules that use them sit with their stage.

import glob
import os
import shutil
import sys

from kerasgrid.results.best_model import WinnerState
from kerasgrid.results.leaderboard import record_dir
from kerasgrid.results.tables import trial_message
from kerasgrid.running import eta, interruptions, job_time, workers
from kerasgrid.search import halving
from kerasgrid.search.rounds import proposal_order, proposed_params
from kerasgrid.sweep import runs
from kerasgrid.trial import devices


def run_seed(wildcards) -> int:
    """The seed of the run a job trains: the config's, or the one its folder names."""
    path = wildcards.get("seed_path", "")
    return int(path.rpartition("/")[2]) if path else SWEEP.seed


def run_settings(wildcards):
    """A tuning run's settings: those of its seed."""
    return SWEEP.settings(run_seed(wildcards))


def run_folder(wildcards, folder="trials", confirm=False) -> str:
    """results/<folder>/<trial>, or the folder in it of the job's seed or confirmation."""
    return str(runs.run_dir(os.path.join("results", folder, wildcards.trial), run_seed(wildcards), SWEEP.seed,
                            confirm=confirm))


def trial_params(trial):
    """A candidate's params: from the config, or in an adaptive search, from the round that proposed it."""
    return proposed_params("results/rounds")[trial] if SWEEP.adaptive else SWEEP.trials[trial]


class TrainMessages:
    """Each train job's console entry (the rule's `message`, shown by `snakemake -n` too):
    "Model 5 of 16: act=relu, lr=0.01, units=128 (trial 307daa763fbd)", and once a run of the
    sweep's budget has finished here, the time left: "..., ETA 3 min" (PROGRESS).

    Snakemake formats a message with the workflow's globals and the job's wildcards, but cannot
    look a global up by a wildcard; a format spec can carry one: "{TRAIN_MESSAGES:{wildcards.trial}}"
    formats this object with the trial id as its spec (a rung's ends with "@<epochs>", so that
    its "until epoch" comes before the ETA, which ends every line; a confirmation's with "@all"). Not a param, since params are
    a rerun trigger and the numbering changes whenever the grid grows; the message is not one.
    """

    def __init__(self, trials):
        self.numbers = {trial: number for number, trial in enumerate(trials, 1)}  # the grid's order
        self.trials = trials

    def __format__(self, spec):
        spec, _, until = spec.partition("@")  # a rung job: the epochs it trains to
        trial, _, seed = spec.partition("/seeds/")  # with repeats, the spec ends with the run's seed path
        if SWEEP.adaptive:  # numbered in the order the rounds proposed them
            order = proposal_order(glob.glob("results/rounds/*.json"))
            message = trial_message(order.index(trial) + 1, sum(SWEEP.round_sizes), trial_params(trial), trial)
        else:
            message = trial_message(self.numbers[trial], len(self.trials), self.trials[trial], trial)
        message = f"{message}, seed {seed or SWEEP.seed}" if REPEATED else message
        if until == "all":  # a finalist's confirmation: after the tuning that the ETA is of
            return f"{message}, on all the data"
        message = f"{message}, until epoch {until}" if until else message
        left = PROGRESS.eta()
        return f"{message}, {left}" if left else message


TRAIN_MESSAGES = TrainMessages(SWEEP.trials)
# The run's estimate, from onstart on (announce_size); empty in a dry run, which starts nothing.
PROGRESS = eta.Progress()


def training_jobs():
    """The train jobs this run will run, as Snakemake's plan counts them; None if it cannot say."""
    try:
        return sum(job.rule.name == "train" for job in workflow.dag.needrun_jobs())
    except AttributeError:  # a Snakemake whose DAG has another shape: the estimate counts files instead
        return None


def announce_size():
    """Before the first job (onstart): the trials to train and finished, the time left, and a
    warning if the sweep is big (kerasgrid/running/eta.py); results/eta.json for `kerasgrid summary`."""
    jobs = None if SWEEP.halving or SWEEP.adaptive else training_jobs()
    found, lines = eta.announcement(SWEEP, *run_cores(), config["warn_hours"], CONFIG_SOURCE, jobs)
    PROGRESS.start(found)
    eta.write_plan(found, "results/eta.json")
    for line in lines:
        print(line, flush=True)


def run_cores():
    """(cores, cluster): the cores the run trains on side by side, or on a cluster its nodes (--jobs)."""
    cluster = not TRAINS_HERE
    return ((workflow.nodes or 1) if cluster else (workflow.cores or 1)), cluster


# GPUs are kerasgrid's to share out only where this process trains the trials: in a local run
# (a cluster executor sets `nodes`, through --jobs). On a cluster the profile's gpu or gres asks
# the scheduler, which gives each job its devices; kerasgrid then neither asks nor assigns.
TRAINS_HERE = workflow.is_main_process and workflow.nodes is None
GPUS = devices.visible_gpus() if TRAINS_HERE else devices.Gpus((), "not shared out here")
if TRAINS_HERE:
    with exit_with_paragraph():  # common.smk
        devices.check_gpu_limit(workflow.global_resources.get("gpu").value, GPUS, SWEEP.trials_per_gpu)
        devices.check_mirrored(SWEEP.distribute, GPUS, CONFIG_SOURCE)
        devices.check_packing(SWEEP.distribute, SWEEP.trials_per_gpu, CONFIG_SOURCE)
WORKERS = workers.WorkerPool(gpus=GPUS, trials_per_gpu=SWEEP.trials_per_gpu, memory_limit_mb=SWEEP.gpu_memory_limit_mb)
# A SLURM job's own snakemake gets the warning before the job's time limit (SIGUSR1) too, which is
# its trial's worker's to answer; by default it would end this process, and the worker with it.
# (So does a whole sweep run inside one SLURM job, whose warm workers answer it.)
if interruptions.in_cluster_job():
    interruptions.shelter()
# A dry run starts nothing, so its onstart never announces the size: `snakemake -n` says it here,
# from the files as they are (kerasgrid check says the same), and writes nothing.
if workflow.is_main_process and workflow.output_settings.dryrun:
    for line in eta.announcement(SWEEP, *run_cores(), config["warn_hours"], CONFIG_SOURCE)[1]:
        print(line, flush=True)
# Where trials train here, each leaves its final state and WINNER_STATE keeps the best so far's,
# so that best_model restores the winner instead of training it again (kerasgrid/results/best_model.py).
# Not where the winner's model comes from elsewhere: a kept model (keep_models, halving's last
# rung, a confirmation), the mean of seeds (repeats), a mirrored trial.
KEEPS_WINNER_STATE = TRAINS_HERE and not (SWEEP.keep_models or SWEEP.halving or SWEEP.confirm or REPEATED
                                          or SWEEP.distribute)
WINNER_STATE = WinnerState(SWEEP.objective["direction"])


def default_runtime():
    """The profile's default-resources runtime in minutes, or None: none, or an expression of
    each job's attempt or input, which only Snakemake can evaluate."""
    defaults = workflow.resource_settings.default_resources
    try:
        value = defaults.get("runtime").value if defaults is not None else None
    except ValueError:  # an expression: evaluated per job
        return None
    return value if isinstance(value, int) and value > 0 else None


# On a cluster, a train or rung job asks for the time its run takes at the pace of the runs
# finished here, at most the profile's default runtime (kerasgrid/running/job_time.py). A runtime
# the profile sets for the rule (set-resources) replaces this, as any resource it sets does.
JOB_TIME = (job_time.JobTime(SWEEP.settings()["budget"], default_runtime())
            if workflow.is_main_process and not TRAINS_HERE and default_runtime() else None)


def trial_runtime(wildcards):
    """A train or rung job's runtime in minutes: for the epochs it trains, and with halving what
    its trial took per epoch in the rung before."""
    epochs = int(wildcards.get("epochs", SWEEP.rungs[-1]))
    before = rung_before(wildcards, SWEEP.rungs)
    start = halving.previous_rung(epochs, SWEEP.rungs) or 0
    measured = halving.expected_seconds(before / "metrics.json", epochs) if before else 0.0
    return JOB_TIME.minutes(epochs - start, measured)


TRIAL_RUNTIME = {"runtime": trial_runtime} if JOB_TIME else {}


def trial_gpus(wildcards):
    # The `gpu` resource of train, rung and best_model, unless a profile sets it: one GPU per
    # trial (a mirrored trial: every GPU) on a machine with GPUs, none without or on a cluster.
    if not GPUS.ids:
        return 0
    return len(GPUS.ids) if SWEEP.distribute else 1


def rung_before(wildcards, rungs, confirm=False):
    """The folder of the job's trial at the rung it continues from (halving): the rung before the
    one the job trains to, or with Hyperband's brackets, the furthest earlier rung that left a
    state (a later bracket's entrant may have stopped further back); None in a trial's first rung.
    Where it continues from changes no result, only the epochs trained (kerasgrid/trial/resume.py)."""
    epochs = int(wildcards.get("epochs", rungs[-1]))
    before = halving.previous_rung(epochs, rungs)
    if before is None:
        return None
    folder = run_folder(wildcards, confirm=confirm)
    if len(SWEEP.brackets) > 1 and not confirm:
        for earlier in reversed(rungs[: rungs.index(epochs)]):
            if halving.has_state(record_dir(folder, earlier, rungs)):
                return record_dir(folder, earlier, rungs)
    return record_dir(folder, before, rungs)


# Without halving, every train job is a trial's first: nothing measured, no priority to compute.
# With it, a train job is its trial's last rung, and starts as halving's rung jobs do.
def train_priority(wildcards):
    return expected_seconds(wildcards)  # workflow/rules/halving.smk


TRAIN_PRIORITY = train_priority if SWEEP.halving else 0


def train(wildcards, params, output, threads, resources, log, confirm=False):
    """A train job (with halving, a run's last rung), a rung job or a confirm job: one run of a
    trial (one seed) to its epochs."""
    base_seed = not wildcards.get("seed_path")
    rungs = [params.settings["budget"]["epochs"]] if confirm else SWEEP.rungs  # confirmations train straight
    epochs = int(wildcards.get("epochs", rungs[-1]))
    last = epochs == rungs[-1]
    final_state = last and not confirm and KEEPS_WINNER_STATE
    before = rung_before(wildcards, rungs, confirm)
    tensorboard_dir = run_folder(wildcards, "tensorboard", confirm)
    task = {
        "trial_id": wildcards.trial,
        "params": trial_params(wildcards.trial),
        "settings": params.settings,
        "out_dir": os.path.dirname(output.metrics),
        "threads": threads,
        "gpus": resources.get("gpu", 0),
        "objective": {**SWEEP.objective, "source": CONFIG_SOURCE},
        # Not a param of the rule: keeping a model changes no result, so flipping it retrains nothing.
        # With halving the last rung keeps it, and a finalist's confirmation too, so that the winner's
        # model is its own, not a retrain.
        "keep_model": SWEEP.keep_models or (base_seed and last and (SWEEP.halving or confirm)),
        "epochs": epochs,
        # Halving: continue from the rung before, and leave a state for the rung after; and the
        # final state of a trial whose winner best_model would otherwise train again.
        "resume_from": str(before) if before else None,
        "save_state_to": os.path.dirname(output.metrics) if not last or final_state else None,
        "keep_states": SWEEP.keep_models,
        # Nor is writing TensorBoard logs; with it off, logs of an earlier training of this trial go.
        "tensorboard_dir": tensorboard_dir if SWEEP.tensorboard else None,
        "halving": SWEEP.halving and not confirm,  # no callback may stop a rung early
        # Nor is how often it saves a checkpoint: a trial resumed from one ends as an unbroken one.
        "checkpoint_minutes": SWEEP.checkpoint_minutes,
        # Nor is logging to MLflow, done by the process that trains once the trial's files are written.
        "mlflow": {**SWEEP.mlflow, "results": "results", "source": CONFIG_SOURCE} if SWEEP.mlflow else None,
        "log": log[0],
    }
    if not TRAINS_HERE and SWEEP.trials_per_gpu > 1:
        # On a cluster, trials_per_gpu says that a group job's trials share its GPU: one that runs
        # out of memory fails its job, unrecorded, and trains again on the job's next attempt.
        task["gpu_shared"] = True
    if not SWEEP.tensorboard:
        shutil.rmtree(tensorboard_dir, ignore_errors=True)
    run_task(task)
    if workflow.is_main_process and not confirm:  # one run fewer to go, its pace counted (the Model lines' ETA)
        PROGRESS.finished(epochs, output.metrics)
    if final_state:
        WINNER_STATE.offer(task["out_dir"])


def best_model(input, output, params, threads, resources, log):
    stem = os.path.splitext(output.manifest)[0]  # results/best_model
    run_task({
        "best_params": input.best,
        "settings": params.settings,
        "model_path": f"{stem}.keras",  # or, for a model that cannot be saved whole, .weights.h5
        "manifest_path": output.manifest,
        "trials_dir": os.path.join(os.path.dirname(input.best), "trials"),
        "scratch_dir": stem,  # results/best_model/<id>: the retrain
        "threads": threads,
        "gpus": resources.get("gpu", 0),
        "source": CONFIG_SOURCE,
        "log": log[0],
    })


def run_task(task):
    if workflow.is_main_process:
        notes = WORKERS.run(task)  # TensorFlow stays imported between trials
    elif interruptions.in_cluster_job():
        notes = workers.run_in_own_worker(task)  # where SLURM's signals can stop the trial and save it
    else:
        notes = workers.run_task(task)  # a run without the default profile
    for note in notes:  # what the job's log says and the console should too (a trial MLflow did not get)
        print(f"kerasgrid: {note}", file=sys.stderr, flush=True)
