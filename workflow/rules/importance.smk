# Which hyperparameters mattered: Optuna's fANOVA over the finished trials' files
# (kerasgrid/search/importance.py). Never fails a sweep for too few trials: its files say so.

# Seconds of work on files already here: on a cluster it runs where snakemake runs, not as a job.
localrules: importance


rule importance:
    input:
        leaderboard="results/leaderboard.tsv",
    output:
        table="results/importance.tsv",
        plot=report(
            "results/plots/importance.png",
            caption="../report/importance.rst",
            category="Plots",
        ),
    log:
        "logs/importance.log",
    retries: 0  # as plots: drawing from files already here
    priority: 1  # after best_params and plots (report.smk), beside plots in a drawer of its own
    params:
        objectives=importance_objectives,
        space=grid_space,
        rungs=rungs,
        seeds=seeds,
        seed=SWEEP.seed,  # fANOVA's random forest: the same trials give the same importances
        confirm=bool(SWEEP.confirm),
    # A run block, not a script: a warm drawer, which imported Optuna while the trials trained,
    # computes and draws (draw, workflow/rules/drawing.smk).
    run:
        draw("importance", log, leaderboard=input.leaderboard, objectives=params.objectives, space=params.space,
             seed=params.seed, table=output.table, plot=output.plot, rungs=params.rungs, seeds=params.seeds,
             confirmed=params.confirm)
