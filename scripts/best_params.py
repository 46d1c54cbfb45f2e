"""Rule `best_params`: the winner's params, trial id and objective in results/best_params.yaml."""

from kerasgrid.results.leaderboard import write_best
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_best(
        snakemake.input.leaderboard,  # noqa: F821
        snakemake.params.objective,  # noqa: F821
        snakemake.output.best,  # noqa: F821
        source=snakemake.params.source,  # noqa: F821
        rungs=snakemake.params.rungs,  # noqa: F821
        seeds=snakemake.params.seeds,  # noqa: F821
        fraction=snakemake.params.fraction,  # noqa: F821
    )
