# Ranking the trials of the current grid; trials of values since removed stay on disk, unranked.

# Seconds of work on files already here: on a cluster they run where snakemake runs, not as jobs.
localrules: search_plan, leaderboard, best_params, training_data


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
    script:
        "../../scripts/leaderboard.py"


# A rule of its own, so that a sweep with no successful trial keeps its leaderboard.
rule best_params:
    input:
        leaderboard="results/leaderboard.tsv",
    output:
        best="results/best_params.yaml",
    log:
        "logs/best_params.log",
    retries: 0  # as leaderboard
    params:
        objective=ranking_objective,
        rungs=rungs,
        seeds=seeds,
        fraction=SWEEP.fraction,
        source=config_file,
    script:
        "../../scripts/best_params.py"


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
