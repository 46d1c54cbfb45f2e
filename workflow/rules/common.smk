# Config validation and the helpers the rules call. The logic lives in the kerasgrid package.

import os
import shutil

from snakemake.utils import validate

from kerasgrid.best_model import saved_model_lines
from kerasgrid.config import check, config_source, load_schema, sweep_from_config
from kerasgrid.records import read_json
from kerasgrid.results import record_dir, winner_lines
from kerasgrid.search import halving
from kerasgrid.tables import leaderboard_lines, trial_message
from kerasgrid import attempts, runlock, workers

if workflow.is_main_process:
    stale = runlock.release_stale_lock()
    if stale:
        print(stale)

SCHEMA_FILE = "../schemas/config.schema.yaml"
SCHEMA = load_schema(workflow.source_path(SCHEMA_FILE))
CONFIG_SOURCE = config_source(workflow.overwrite_configfiles)

check(config, SCHEMA, CONFIG_SOURCE)  # one-paragraph errors naming file, key and fix
validate(config, SCHEMA_FILE)  # fills in the schema's defaults
SWEEP = sweep_from_config(config, CONFIG_SOURCE)


def trial_metrics(wildcards):
    """Each candidate's record: its trial's metrics.json, or with halving, the rung's where it stopped."""
    if SWEEP.halving:
        return furthest_records()  # workflow/rules/halving.smk
    # Sorted, so that reordering the grid changes nothing Snakemake compares.
    return expand("results/trials/{trial}/metrics.json", trial=sorted(SWEEP.trials))


# The aggregation rules' params are functions too: Snakemake would format plain strings as
# patterns, and a grid key such as "a{b}" must reach the script as it is.
def ranking_objective(wildcards):
    return SWEEP.objective


def grid_keys(wildcards):
    return sorted(SWEEP.grid_keys)


def rungs(wildcards):
    return SWEEP.rungs


def search_plan(wildcards):
    return SWEEP.plan()


def config_file(wildcards):
    return CONFIG_SOURCE


class TrainMessages:
    """Each train job's console entry (the rule's `message`, shown by `snakemake -n` too):
    "Model 5 of 16: act=relu, lr=0.01, units=128 (trial 307daa763fbd)".

    Snakemake formats a message with the workflow's globals and the job's wildcards, but cannot
    look a global up by a wildcard; a format spec can carry one: "{TRAIN_MESSAGES:{wildcards.trial}}"
    formats this object with the trial id as its spec. Not a param, since params are a rerun
    trigger and the numbering changes whenever the grid grows; the message is not one.
    """

    def __init__(self, trials):
        self.numbers = {trial: number for number, trial in enumerate(trials, 1)}  # the grid's order
        self.trials = trials

    def __format__(self, trial):
        return trial_message(self.numbers[trial], len(self.trials), self.trials[trial], trial)


TRAIN_MESSAGES = TrainMessages(SWEEP.trials)


WORKERS = workers.WorkerPool()


def train(wildcards, params, output, threads, log):
    """A train job (with halving, a trial's last rung) or a rung job: one trial to its epochs."""
    epochs = int(wildcards.get("epochs", SWEEP.rungs[-1]))
    last = epochs == SWEEP.rungs[-1]
    before = halving.previous_rung(epochs, SWEEP.rungs)
    trial_dir = os.path.join("results", "trials", wildcards.trial)
    tensorboard_dir = os.path.join("results", "tensorboard", wildcards.trial)
    task = {
        "trial_id": wildcards.trial,
        "params": SWEEP.trials[wildcards.trial],
        "settings": params.settings,
        "out_dir": os.path.dirname(output.metrics),
        "threads": threads,
        "objective": {**SWEEP.objective, "source": CONFIG_SOURCE},
        # Not a param of the rule: keeping a model changes no result, so flipping it retrains nothing.
        # With halving the last rung keeps it, so that the winner's model is its own, not a retrain.
        "keep_model": SWEEP.keep_models or (SWEEP.halving and last),
        "epochs": epochs,
        # Halving: continue from the rung before, and leave a state for the rung after.
        "resume_from": str(record_dir(trial_dir, before, SWEEP.rungs)) if before else None,
        "save_state_to": None if last else os.path.dirname(output.metrics),
        "keep_states": SWEEP.keep_models,
        # Nor is writing TensorBoard logs; with it off, logs of an earlier training of this trial go.
        "tensorboard_dir": tensorboard_dir if SWEEP.tensorboard else None,
        "log": log[0],
    }
    if not SWEEP.tensorboard:
        shutil.rmtree(tensorboard_dir, ignore_errors=True)
    run_task(task)


def best_model(input, output, params, threads, log):
    stem = os.path.splitext(output.manifest)[0]  # results/best_model
    run_task({
        "best_params": input.best,
        "settings": params.settings,
        "model_path": f"{stem}.keras",  # or, for a model that cannot be saved whole, .weights.h5
        "manifest_path": output.manifest,
        "trials_dir": os.path.join(os.path.dirname(input.best), "trials"),
        "scratch_dir": stem,  # results/best_model/<id>: the retrain
        "threads": threads,
        "source": CONFIG_SOURCE,
        "log": log[0],
    })


def run_task(task):
    if workflow.is_main_process:
        WORKERS.run(task)  # TensorFlow stays imported between trials
    else:
        workers.run_task(task)  # a cluster job, or a run without the default profile


def run_started():
    runlock.claim()
    attempts.forget()  # errors of earlier runs: the user may have fixed their cause


def run_ended(leaderboard=None, best_params=None, best_model=None):
    WORKERS.close()
    runlock.release()
    lines = leaderboard_lines(leaderboard, SWEEP.objective) if leaderboard else []
    if best_params:
        # A winner kept as weights only is said last but for the winner, which ends the run.
        note = saved_model_lines(best_model) if best_model else []
        lines += [""] * bool(lines) + note + winner_lines(best_params)
    for line in lines:
        print(line)
