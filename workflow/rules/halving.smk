# Successive halving (search.halving): every candidate trains the first rung's epochs as a `rung`
# job; a `promotions` checkpoint per later rung ranks the rung before and names who goes on, and
# they continue from where they stopped. The last rung is the `train` rule, so a trial that gets
# there has its results/trials/<id>/metrics.json as if trained straight through.

from kerasgrid.records import read_json
from kerasgrid.results.leaderboard import record_dir
from kerasgrid.search import halving
from kerasgrid.sweep import runs

# Seconds of work on small files: on a cluster they run where snakemake runs, not as jobs.
localrules: promotions


def expected_seconds(wildcards):
    """A halving job's priority: the seconds it should take, measured at its trial's rung before.
    The jobs a rung's promotions release then start longest first, so that the rung's last job
    does not run alone while the other cores wait for the next promotions. 0 for a first rung."""
    before = rung_before(wildcards, SWEEP.rungs)
    epochs = int(wildcards.get("epochs", SWEEP.rungs[-1]))
    return halving.expected_seconds(before / "metrics.json", epochs) if before else 0


def entrants(index):
    """The trials that train in rung `index`: every candidate in the first, those promoted after."""
    if index == 0:
        return sorted(SWEEP.trials)
    promoted = checkpoints.promotions.get(epochs=SWEEP.rungs[index]).output.promoted
    return read_json(promoted)["promoted"]


def rung_records(trial, index):
    """The trial's records at rung `index`, one per seed (a trial is promoted with all its seeds)."""
    return [
        str(record_dir(runs.run_dir(f"results/trials/{trial}", seed, SWEEP.seed), SWEEP.rungs[index], SWEEP.rungs)
            / "metrics.json")
        for seed in SWEEP.seeds
    ]


def promotion_entrants(wildcards):
    """The records of the rung before the one `promotions` fills."""
    index = SWEEP.rungs.index(int(wildcards.epochs)) - 1
    return [record for trial in entrants(index) for record in rung_records(trial, index)]


def furthest_records():
    """Each candidate's records at the last rung it entered, by trial id."""
    furthest = {}
    for index in range(len(SWEEP.rungs)):
        for trial in entrants(index):
            furthest[trial] = rung_records(trial, index)
    return [record for trial in sorted(furthest) for record in furthest[trial]]


rule rung:
    input:
        SWEEP.code_files,
    output:
        metrics=(
            "results/trials/{trial}{seed_path}/rungs/{epochs}/metrics.json"
            if REPEATED
            else "results/trials/{trial}/rungs/{epochs}/metrics.json"
        ),
    log:
        "logs/trials/{trial}{seed_path}.rung{epochs}.log" if REPEATED else "logs/trials/{trial}.rung{epochs}.log",
    params:
        # As the train rule's: the same run, trained for fewer epochs.
        settings=run_settings,
    wildcard_constraints:
        trial="[0-9a-f]{12}",
        epochs="[0-9]+",
    # "Model 5 of 16: act=relu, lr=0.01 (trial 307daa763fbd), until epoch 3", as train says it.
    message:
        (
            "{TRAIN_MESSAGES:{wildcards.trial}{wildcards.seed_path}}, until epoch {wildcards.epochs}"
            if REPEATED
            else "{TRAIN_MESSAGES:{wildcards.trial}}, until epoch {wildcards.epochs}"
        )
    threads: 1
    priority: expected_seconds  # the longest of a rung's jobs first (0 in the first rung)
    resources:
        gpu=trial_gpus,  # as train's
    run:
        train(wildcards, params, output, threads, resources, log)


checkpoint promotions:
    input:
        metrics=promotion_entrants,
    output:
        promoted="results/rungs/{epochs}.json",
    log:
        "logs/promotions/{epochs}.log",
    params:
        objective=ranking_objective,
        eta=SWEEP.schedule.eta,
        keep_states=SWEEP.keep_models,
    wildcard_constraints:
        epochs="|".join(str(epochs) for epochs in SWEEP.rungs[1:]),
    script:
        "../../scripts/promotions.py"
