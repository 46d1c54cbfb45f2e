# Config validation and the helpers the rules call. The logic lives in the kerasgrid package.

import os

from snakemake.utils import validate

from kerasgrid.config import check, config_source, load_schema, sweep_from_config
from kerasgrid.records import read_json
from kerasgrid.fraction import summary_lines
from kerasgrid.results import record_dir, winner_lines
from kerasgrid.search import halving
from kerasgrid.tables import leaderboard_lines
from kerasgrid import runlock, runs, workers

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


# A run's folder below results/trials: "{trial}" for the config's seed, "{trial}/seeds/<seed>" for
# each further seed of `repeats` (kerasgrid/runs.py). With repeats the rules' paths hold the seed
# part as a wildcard that may be empty; without, they are exactly those of a sweep before repeats
# existed (and so are job names, SLURM job comments and logs).
REPEATED = SWEEP.repeats > 1


wildcard_constraints:
    seed_path="(/seeds/-?[0-9]+)?",


def trial_metrics(wildcards):
    """Each candidate's records (one per seed): its trial's metrics.json, or with halving, the
    rung's where it stopped."""
    if SWEEP.halving:
        return furthest_records()  # workflow/rules/halving.smk
    # Sorted, so that reordering the grid changes nothing Snakemake compares.
    # Strings, not kerasgrid.runs.run_dir's Paths: this runs for every trial of 100k-trial grids.
    return [f"results/trials/{trial}{runs.seed_path(seed, SWEEP.seed)}/metrics.json"
            for trial in sorted(SWEEP.trials) for seed in SWEEP.seeds]


# With data.fraction, the summary of what the tuning runs trained on (rule training_data).
TRAINING_DATA = "results/training_data.json" if SWEEP.fraction < 1 else None


def training_data_summary(wildcards):
    return TRAINING_DATA or []


def confirmed_metrics(wildcards):
    """With confirm, each finalist's confirmation records, one per seed (workflow/rules/confirm.smk)."""
    if not SWEEP.confirm:
        return []
    chosen = read_json(checkpoints.finalists.get().output.finalists)["finalists"]
    return [str(runs.run_dir(f"results/trials/{trial}", seed, SWEEP.seed, confirm=True) / "metrics.json")
            for trial in sorted(chosen) for seed in SWEEP.seeds]


def run_seed(wildcards) -> int:
    """The seed of the run a job trains: the config's, or the one its folder names."""
    path = wildcards.get("seed_path", "")
    return int(path.rpartition("/")[2]) if path else SWEEP.seed


def run_settings(wildcards):
    """A tuning run's settings: those of its seed."""
    return SWEEP.settings(run_seed(wildcards))


def confirm_settings(wildcards):
    return SWEEP.confirm_settings(run_seed(wildcards))


# The aggregation rules' params are functions too: Snakemake would format plain strings as
# patterns, and a grid key such as "a{b}" must reach the script as it is.
def ranking_objective(wildcards):
    return SWEEP.objective


def grid_keys(wildcards):
    return sorted(SWEEP.grid_keys)


def rungs(wildcards):
    return SWEEP.rungs


def seeds(wildcards):
    return SWEEP.seeds


def search_plan(wildcards):
    return SWEEP.plan()


def config_file(wildcards):
    return CONFIG_SOURCE


WORKERS = workers.WorkerPool()


def train(wildcards, params, output, threads, log, confirm=False):
    """A train job (with halving, a run's last rung), a rung job or a confirm job: one run of a
    trial (one seed) to its epochs."""
    base_seed = not wildcards.get("seed_path")
    rungs = [params.settings["budget"]["epochs"]] if confirm else SWEEP.rungs  # confirmations train straight
    epochs = int(wildcards.get("epochs", rungs[-1]))
    last = epochs == rungs[-1]
    before = halving.previous_rung(epochs, rungs)
    run_dir = runs.run_dir(os.path.join("results", "trials", wildcards.trial), run_seed(wildcards), SWEEP.seed,
                           confirm=confirm)
    run_task({
        "trial_id": wildcards.trial,
        "params": SWEEP.trials[wildcards.trial],
        "settings": params.settings,
        "out_dir": os.path.dirname(output.metrics),
        "threads": threads,
        "objective": {**SWEEP.objective, "source": CONFIG_SOURCE},
        # Not a param of the rule: keeping a model changes no result, so flipping it retrains nothing.
        # With halving the last rung keeps it, and a finalist's confirmation too, so that the winner's
        # model is its own, not a retrain.
        "keep_model": SWEEP.keep_models or (base_seed and last and (SWEEP.halving or confirm)),
        "epochs": epochs,
        # Halving: continue from the rung before, and leave a state for the rung after.
        "resume_from": str(record_dir(run_dir, before, rungs)) if before else None,
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


def run_ended(leaderboard=None, best_params=None, training_data=None):
    WORKERS.close()
    runlock.release()
    lines = summary_lines(training_data) if training_data else []
    if leaderboard:
        lines += [""] * bool(lines) + leaderboard_lines(leaderboard, SWEEP.objective)
    if best_params:
        lines += [""] * bool(lines) + winner_lines(best_params)
    for line in lines:
        print(line)
