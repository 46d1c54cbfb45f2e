# What people look at after a sweep: the winner's trained model, plots, and the leaderboard as a
# web page; `snakemake --report results/report.html` gathers them with their captions.

# Seconds of work on files already here: on a cluster they run where snakemake runs, not as jobs.
# (best_model may train, so it goes wherever train goes.)
localrules: plots, leaderboard_page


rule best_model:
    input:
        best="results/best_params.yaml",
    output:
        model="results/best_model.keras",
    log:
        "logs/best_model.log",
    params:
        # The winner is retrained with exactly what the sweep trained it with (its confirmation's
        # settings with confirm).
        settings=SWEEP.winner_settings(),
    threads: 1
    # A run block, as train's: it hands the retrain to a warm worker (kerasgrid/workers.py).
    run:
        best_model(input, output, params, threads, log)


rule plots:
    input:
        leaderboard="results/leaderboard.tsv",
    output:
        learning_curves=report(
            "results/plots/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Plots",
        ),
        param_effects=report(
            "results/plots/param_effects.png",
            caption="../report/param_effects.rst",
            category="Plots",
        ),
        ranking=report(
            "results/plots/ranking.png",
            caption="../report/ranking.rst",
            category="Plots",
        ),
    log:
        "logs/plots.log",
    params:
        objective=ranking_objective,
        grid_keys=grid_keys,
        rungs=rungs,
        seeds=seeds,
    script:
        "../../scripts/plots.py"


# Snakemake's report offers a .tsv only as a download; this page shows the leaderboard in it.
rule leaderboard_page:
    input:
        leaderboard="results/leaderboard.tsv",
        training_data=training_data_summary,
    output:
        page=report(
            "results/leaderboard.html",
            caption="../report/leaderboard_page.rst",
            category="Leaderboard",
        ),
    log:
        "logs/leaderboard_page.log",
    params:
        objective=ranking_objective,
        fraction=SWEEP.fraction,
    script:
        "../../scripts/leaderboard_page.py"
