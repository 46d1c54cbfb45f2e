# What people look at after a sweep: the winner's trained model, plots, and the leaderboard as a
# web page; `snakemake --report results/report.html` gathers them with their captions.

# Seconds of work on files already here: on a cluster they run where snakemake runs, not as jobs.
# (best_model may train, so it goes wherever train goes.)
localrules: plots, leaderboard_page

from kerasgrid.results.tables import write_page


# The declared output is best_model.yaml, written last: which file holds the winner and how to load
# it. The model is results/best_model.keras, or results/best_model.weights.h5 for one that cannot be
# saved whole (kerasgrid/results/best_model.py); declaring either would fail the step, or every rerun,
# whenever the other is written.
rule best_model:
    input:
        best="results/best_params.yaml",
    output:
        manifest="results/best_model.yaml",
    log:
        "logs/best_model.log",
    params:
        # The winner is retrained with exactly what the sweep trained it with (its confirmation's
        # settings with confirm).
        settings=SWEEP.winner_settings(),
    threads: 1
    resources:
        gpu=trial_gpus,  # as train's: the retrain must run on the devices the trial ran on
    # A run block, as train's: it hands the retrain to a warm worker (kerasgrid/running/workers.py).
    run:
        best_model(input, output, params, threads, resources, log)


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
    # Drawing from files already here: a failure would only happen again.
    retries: 0
    priority: 2  # the longest of the jobs after the leaderboard: started first, so that it ends first
    params:
        objective=ranking_objective,
        grid_keys=grid_keys,
        rungs=rungs,
        seeds=seeds,
        space=grid_space,  # which keys are ranges, and log: their axes
    # A run block, not a script: a warm drawer draws (see draw above).
    run:
        draw("plots", log, leaderboard=input.leaderboard, objective=params.objective, grid_keys=params.grid_keys,
             learning_curves_png=output.learning_curves, param_effects_png=output.param_effects,
             ranking_png=output.ranking, rungs=params.rungs, seeds=params.seeds, space=params.space)


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
    retries: 0  # as plots
    params:
        objective=ranking_objective,
        fraction=SWEEP.fraction,
    # Milliseconds of work with kerasgrid.results.tables, which this process has loaded: no script's
    # Python to start.
    run:
        here(log, write_page, input.leaderboard, params.objective, output.page,
             training_data=input.training_data or None, fraction=params.fraction)


if SWEEP.adaptive:

    localrules: optimization_history

    # Optuna's "optimization history": whether the search converged (workflow/rules/adaptive.smk).
    rule optimization_history:
        input:
            leaderboard="results/leaderboard.tsv",
            rounds=round_files,
        output:
            history=report(
                "results/plots/optimization_history.png",
                caption="../report/optimization_history.rst",
                category="Plots",
            ),
        log:
            "logs/optimization_history.log",
        params:
            objective=ranking_objective,
            rungs=rungs,
            seeds=seeds,
        script:
            "../../scripts/optimization_history.py"
