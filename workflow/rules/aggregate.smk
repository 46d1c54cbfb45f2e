# Ranking the trials of the current grid; trials of values since removed stay on disk, unranked.

# Seconds of work on files already here: on a cluster they run where snakemake runs, not as jobs.
localrules: search_plan, leaderboard, best_params, training_data

from kerasgrid.results.leaderboard import write_best, write_leaderboard
from kerasgrid.search.hyperband import trial_brackets
from kerasgrid.search.rounds import trial_rounds


# How the sweep finds and trains its candidates, as a file the leaderboard reads. With halving,
# Snakemake judges a leaderboard that waits on a promotions checkpoint only by whether it exists:
# so when the plan changes (halving turned on, say), this rule removes the old leaderboard, and
# the ranking is redone once the rungs it needs have run.
rule search_plan:
    output:
        plan="results/search.json",
    log:
        "logs/search_plan.log",
    params:
        plan=search_plan,
        stale="results/leaderboard.tsv",
    script:
        "../../scripts/search_plan.py"


rule leaderboard:
    input:
        metrics=trial_metrics,
        confirmed=confirmed_metrics if SWEEP.confirm else [],  # workflow/rules/confirm.smk
        rounds=round_files if SWEEP.adaptive else [],  # workflow/rules/adaptive.smk
        promotions=promotion_files if SWEEP.halving else [],  # workflow/rules/halving.smk
        plan="results/search.json",
    output:
        leaderboard=report(
            "results/leaderboard.tsv",
            caption="../report/leaderboard.rst",
            category="Leaderboard",
        ),
    log:
        "logs/leaderboard.log",
    # Ranking files already here: a failure (no trial ok, an objective no trial logged) would only
    # happen again, so the default profile's retries, meant for killed trials, do not apply.
    retries: 0
    params:
        objective=ranking_objective,
        grid_keys=grid_keys,
        rungs=rungs,
        brackets=bracket_settings if SWEEP.halving else None,
        repeats=SWEEP.repeats,
        confirm=bool(SWEEP.confirm),
        source=config_file,
    # A run block, not a script: ranking reads the trials' records with kerasgrid.results, which this
    # process has loaded; no script's Python to start after the last trial.
    run:
        here(log, write_leaderboard, input.metrics, params.objective, params.grid_keys, output.leaderboard,
             source=params.source, rungs=params.rungs, rounds=trial_rounds(input.rounds) or None,
             brackets=trial_brackets(params.brackets, input.metrics, input.promotions, input.rounds),
             repeats=params.repeats, confirmed_paths=input.confirmed if params.confirm else None)


# A rule of its own, so that a sweep with no successful trial keeps its leaderboard.
rule best_params:
    input:
        leaderboard="results/leaderboard.tsv",
    output:
        best="results/best_params.yaml",
    log:
        "logs/best_params.log",
    retries: 0  # as leaderboard
    # Before the figures, which wait for the same leaderboard: the winner is on the console first.
    priority: 3
    params:
        objective=ranking_objective,
        rungs=rungs,
        seeds=seeds,
        fraction=SWEEP.fraction,
        source=config_file,
    # A run block, in this process as leaderboard's: the winner is on the console as soon as it is
    # known, before the figures are drawn (and again at the end of the run, as its last line).
    run:
        here(log, write_best, input.leaderboard, params.objective, output.best, source=params.source,
             rungs=params.rungs, seeds=params.seeds, fraction=params.fraction)
        for line in winner_lines(output.best, note=False):  # the versions' note comes once, at the end
            print(line, flush=True)


# With data.fraction: what the tuning runs trained on, for the report and the console.
rule training_data:
    input:
        metrics=trial_metrics,
    output:
        summary="results/training_data.json",
    log:
        "logs/training_data.log",
    script:
        "../../scripts/training_data.py"
