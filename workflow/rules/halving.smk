# Successive halving (search.halving): every candidate trains the first rung's epochs as a `rung`
# job; a `promotions` checkpoint per later rung ranks the rung before and names who goes on, and
# they continue from where they stopped. The last rung is the `train` rule, so a trial that gets
# there has its results/trials/<id>/metrics.json as if trained straight through.

# Seconds of work on small files: on a cluster they run where snakemake runs, not as jobs.
localrules: promotions


def entrants(index):
    """The trials that train in rung `index`: every candidate in the first, those promoted after."""
    if index == 0:
        return sorted(SWEEP.trials)
    promoted = checkpoints.promotions.get(epochs=SWEEP.rungs[index]).output.promoted
    return read_json(promoted)["promoted"]


def rung_record(trial, index):
    trial_dir = os.path.join("results", "trials", trial)
    return os.path.join(record_dir(trial_dir, SWEEP.rungs[index], SWEEP.rungs), "metrics.json")


def promotion_entrants(wildcards):
    """The records of the rung before the one `promotions` fills."""
    index = SWEEP.rungs.index(int(wildcards.epochs)) - 1
    return [rung_record(trial, index) for trial in entrants(index)]


def furthest_records():
    """Each candidate's record at the last rung it entered, by trial id."""
    furthest = {}
    for index in range(len(SWEEP.rungs)):
        for trial in entrants(index):
            furthest[trial] = rung_record(trial, index)
    return [furthest[trial] for trial in sorted(furthest)]


rule rung:
    input:
        SWEEP.code_files,
    output:
        metrics="results/trials/{trial}/rungs/{epochs}/metrics.json",
    log:
        "logs/trials/{trial}.rung{epochs}.log",
    params:
        # As the train rule's: the same trial, trained for fewer epochs.
        settings=SWEEP.settings(),
    wildcard_constraints:
        trial="[0-9a-f]{12}",
        epochs="[0-9]+",
    # "Model 5 of 16: act=relu, lr=0.01 (trial 307daa763fbd), until epoch 3", as train says it.
    message:
        "{TRAIN_MESSAGES:{wildcards.trial}}, until epoch {wildcards.epochs}"
    threads: 1
    run:
        train(wildcards, params, output, threads, log)


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
