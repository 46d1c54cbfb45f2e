# Successive halving (search.halving): every candidate of a bracket trains the bracket's first rung
# as a `rung` job; a `promotions` checkpoint per later rung ranks the rung before and names who
# goes on, and they continue from where they stopped. The last rung is the `train` rule, so a trial
# that gets there has its results/trials/<id>/metrics.json as if trained straight through. A trial
# at a rung is one job whichever bracket asks for it; a later bracket's entrant continues from the
# furthest rung it trained before (kerasgrid/search/hyperband.py).

from kerasgrid.records import read_json
from kerasgrid.results.leaderboard import record_dir
from kerasgrid.search import halving, hyperband
from kerasgrid.sweep import runs

# Seconds of work on small files: on a cluster they run where snakemake runs, not as jobs.
localrules: promotions


def expected_seconds(wildcards):
    """A halving job's priority: the seconds it should take, measured at its trial's rung before.
    The jobs a rung's promotions release then start longest first, so that the rung's last job
    does not run alone while the other cores wait for the next promotions. 0 for a first rung.
    With Hyperband's brackets, a lower rung's jobs first: a later bracket's entrant then finds the
    rungs its trial trained in earlier brackets, and continues from there."""
    before = rung_before(wildcards, SWEEP.rungs)
    epochs = int(wildcards.get("epochs", SWEEP.rungs[-1]))
    seconds = halving.expected_seconds(before / "metrics.json", epochs) if before else 0
    return seconds - RUNG_PRIORITY * SWEEP.rungs.index(epochs) if len(SWEEP.brackets) > 1 else seconds


# Seconds of priority a rung gives way by: more than any job's expected seconds.
RUNG_PRIORITY = 10**7


# Each successive halving of the sweep is a group: Hyperband's brackets (grid, random), or the
# rounds of an adaptive search (each round one bracket). A group's candidates enter at its
# bracket's first rung; its promotions live in results/<group>/<epochs>.json.
def halving_groups():
    """(group, index of its first rung) of every successive halving of the sweep."""
    if SWEEP.adaptive:
        return [(f"rounds/{index}", SWEEP.brackets[bracket].start) for index, bracket in enumerate(SWEEP.round_brackets)]
    return [(f"brackets/{bracket.index}", bracket.start) for bracket in SWEEP.brackets]


def entrants(group, start, index):
    """The trials that train in rung `index` of `group`: its candidates at its first rung, those
    promoted after."""
    if index == start:
        kind, _, number = group.partition("/")
        return round_trials(int(number)) if kind == "rounds" else SWEEP.dealt[int(number)]
    promoted = checkpoints.promotions.get(group=group, epochs=SWEEP.rungs[index]).output.promoted
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
    start = dict(halving_groups())[wildcards.group]
    index = SWEEP.rungs.index(int(wildcards.epochs)) - 1
    return [record for trial in entrants(wildcards.group, start, index) for record in rung_records(trial, index)]


def group_reach(group, start):
    """{trial: the furthest rung index it entered in `group`}."""
    reach = {}
    for index in range(start, len(SWEEP.rungs)):
        for trial in entrants(group, start, index):
            reach[trial] = index
    return reach


def furthest_records(groups=None):
    """Each candidate's records at the furthest rung it entered in any of `groups` (all), by trial id."""
    furthest = {}
    for group, start in groups or halving_groups():
        for trial, index in group_reach(group, start).items():
            furthest[trial] = max(furthest.get(trial, index), index)
    return [record for trial in sorted(furthest) for record in rung_records(trial, furthest[trial])]


def every_rung_record(groups):
    """The records of every rung each trial of `groups` entered there: what BOHB's sampler
    chooses its budget from."""
    found = []
    for group, start in groups:
        for trial, index in sorted(group_reach(group, start).items()):
            found += [record for k in range(start, index + 1) for record in rung_records(trial, k)]
    return found


def promotion_files(wildcards=None):
    """Every promotions file of the sweep (the leaderboard reads which bracket each trial reached)."""
    return [checkpoints.promotions.get(group=group, epochs=SWEEP.rungs[index]).output.promoted
            for group, start in halving_groups() for index in range(start + 1, len(SWEEP.rungs))]


def kept_states(wildcards):
    """The trials whose state another bracket may continue from, which promotions leave alone."""
    return [] if SWEEP.adaptive else sorted(SHARED_TRIALS)


SHARED_TRIALS = hyperband.protected(SWEEP.dealt)


def bracket_settings(wildcards):
    """What the leaderboard needs to name each trial's bracket."""
    if SWEEP.adaptive:
        return {"rounds": SWEEP.round_brackets}
    return {"sizes": [bracket.size for bracket in SWEEP.brackets], "seed": SWEEP.sampler_seed, "rungs": SWEEP.rungs}


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
    # (The epochs ride in the spec: the ETA, when there is one, comes after them.)
    message:
        (
            "{TRAIN_MESSAGES:{wildcards.trial}{wildcards.seed_path}@{wildcards.epochs}}"
            if REPEATED
            else "{TRAIN_MESSAGES:{wildcards.trial}@{wildcards.epochs}}"
        )
    threads: 1
    priority: expected_seconds  # the longest of a rung's jobs first (0 in the first rung)
    resources:
        gpu=trial_gpus,  # as train's
        **TRIAL_RUNTIME,
    run:
        train(wildcards, params, output, threads, resources, log)


checkpoint promotions:
    input:
        metrics=promotion_entrants,
    output:
        promoted="results/{group}/{epochs}.json",
    log:
        "logs/promotions/{group}/{epochs}.log",
    params:
        objective=ranking_objective,
        eta=SWEEP.schedule.eta,
        keep_states=SWEEP.keep_models,
        kept=kept_states,
    wildcard_constraints:
        group="(brackets|rounds)/[0-9]+",
        epochs="|".join(str(epochs) for epochs in SWEEP.rungs[1:]),
    script:
        "../../scripts/promotions.py"
