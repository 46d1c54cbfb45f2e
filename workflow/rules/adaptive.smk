# Adaptive search (search.strategy: tpe or nsga2): a `propose` checkpoint per round asks the sampler for
# the round's trials, from the records of every round before it, and lists them in
# results/rounds/<round>.json; they train as ordinary `train` jobs. Each round waits for the one
# before to finish, and is proposed again only when what it learns from changes.

from kerasgrid.search.rounds import proposals

# Seconds of work on small files: on a cluster they run where snakemake runs, not as jobs.
localrules: propose


def round_file(index):
    return f"results/rounds/{index}.json"


def round_files(wildcards):
    """The round files: the leaderboard reads which round proposed each trial."""
    return [round_file(index) for index in range(len(SWEEP.round_sizes))]


def round_trials(index):
    """The trials round `index` proposed, once its checkpoint has run."""
    return list(proposals(checkpoints.propose.get(round=index).output.proposals))


def round_records(count):
    """The metrics.json of every trial of the first `count` rounds, in the order proposed (with
    repeats, of every seed: the sampler is told each trial's mean). With halving, those of every
    rung each trial reached, once its round's halving is over (workflow/rules/halving.smk)."""
    if SWEEP.halving:
        return every_rung_record(halving_groups()[:count])
    return run_records([trial for index in range(count) for trial in round_trials(index)])


def earlier_rounds(wildcards):
    return [round_file(index) for index in range(int(wildcards.round))]


def earlier_records(wildcards):
    return round_records(int(wildcards.round))


def round_settings(wildcards):
    return SWEEP.round_settings(int(wildcards.round))


checkpoint propose:
    input:
        rounds=earlier_rounds,
        records=earlier_records,
    output:
        proposals="results/rounds/{round}.json",
    log:
        "logs/rounds/{round}.log",
    params:
        # The sampler, seed, space, objective and this round's size: a change proposes it again.
        search=round_settings,
    wildcard_constraints:
        round="|".join(str(index) for index in range(len(SWEEP.round_sizes))),
    script:
        "../../scripts/propose.py"
