"""Rule `importance`: which hyperparameters mattered, as results/importance.tsv and a bar chart."""

from kerasgrid.running.logs import job_log
from kerasgrid.search.importance import write_importance

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_importance(
        snakemake.input.leaderboard,  # noqa: F821
        snakemake.params.objectives,  # noqa: F821
        snakemake.params.space,  # noqa: F821
        snakemake.params.seed,  # noqa: F821
        table=snakemake.output.table,  # noqa: F821
        plot=snakemake.output.plot,  # noqa: F821
        rungs=snakemake.params.rungs,  # noqa: F821
        seeds=snakemake.params.seeds,  # noqa: F821
        confirmed=snakemake.params.confirm,  # noqa: F821
    )
