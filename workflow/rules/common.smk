# Config validation and the helpers the rules call. The logic lives in the kerasgrid package.

import os

from snakemake.utils import validate

from kerasgrid.config import check, config_source, load_schema, sweep_from_config
from kerasgrid.records import read_json
from kerasgrid.results import record_dir, winner_lines
from kerasgrid.search import halving
from kerasgrid.search.rounds import proposals, proposed_params
from kerasgrid.tables import leaderboard_lines
from kerasgrid import runlock, workers

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
    if SWEEP.adaptive:
        return sorted(round_records(len(SWEEP.round_sizes)))  # workflow/rules/adaptive.smk
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


def round_file(index):
    return f"results/rounds/{index}.json"


def round_files(wildcards):
    """An adaptive search's round files (which round proposed each trial); none otherwise."""
    return [round_file(index) for index in range(len(SWEEP.round_sizes))]


def search_plots(wildcards):
    """The figures only some searches draw: an adaptive search's optimization history."""
    return ["results/plots/optimization_history.png"] if SWEEP.adaptive else []


def trial_params(trial):
    """A candidate's params: from the config, or in an adaptive search, from the round that proposed it."""
    return proposed_params("results/rounds")[trial] if SWEEP.adaptive else SWEEP.trials[trial]


WORKERS = workers.WorkerPool()


def train(wildcards, params, output, threads, log):
    """A train job (with halving, a trial's last rung) or a rung job: one trial to its epochs."""
    epochs = int(wildcards.get("epochs", SWEEP.rungs[-1]))
    last = epochs == SWEEP.rungs[-1]
    before = halving.previous_rung(epochs, SWEEP.rungs)
    trial_dir = os.path.join("results", "trials", wildcards.trial)
    run_task({
        "trial_id": wildcards.trial,
        "params": trial_params(wildcards.trial),
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
        "log": log[0],
    })


def best_model(input, output, params, threads, log):
    run_task({
        "best_params": input.best,
        "settings": params.settings,
        "model_path": output.model,
        "trials_dir": os.path.join(os.path.dirname(input.best), "trials"),
        "scratch_dir": os.path.splitext(output.model)[0],  # results/best_model/<id>: the retrain
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


def run_ended(leaderboard=None, best_params=None):
    WORKERS.close()
    runlock.release()
    lines = leaderboard_lines(leaderboard, SWEEP.objective) if leaderboard else []
    if best_params:
        lines += [""] * bool(lines) + winner_lines(best_params)
    for line in lines:
        print(line)
