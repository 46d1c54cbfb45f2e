# Ranking the trials of the current grid; trials of values since removed stay on disk, unranked.

# Seconds of work on files already here: on a cluster they run where snakemake runs, not as jobs.
localrules: leaderboard, best_params, training_data


rule leaderboard:
    input:
        metrics=trial_metrics,
        confirmed=confirmed_metrics,
    output:
        leaderboard=report(
            "results/leaderboard.tsv",
            caption="../report/leaderboard.rst",
            category="Leaderboard",
        ),
    log:
        "logs/leaderboard.log",
    params:
        objective=ranking_objective,
        grid_keys=grid_keys,
        rungs=rungs,
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
