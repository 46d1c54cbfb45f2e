"""Rule `plots`: learning curves, per-hyperparameter effects and the ranking as PNGs."""

from kerasgrid.results.plots import write_plots
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_plots(
        snakemake.input.leaderboard,  # noqa: F821
        snakemake.params.objective,  # noqa: F821
        snakemake.params.grid_keys,  # noqa: F821
        learning_curves_png=snakemake.output.learning_curves,  # noqa: F821
        param_effects_png=snakemake.output.param_effects,  # noqa: F821
        ranking_png=snakemake.output.ranking,  # noqa: F821
        rungs=snakemake.params.rungs,  # noqa: F821
        seeds=snakemake.params.seeds,  # noqa: F821
        space=snakemake.params.space,  # noqa: F821
    )
