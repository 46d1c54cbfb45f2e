"""Rule `optimization_history`: each trial's objective in the order proposed, and the best so far."""

from kerasgrid.results.plots import write_optimization_history
from kerasgrid.running.logs import job_log
from kerasgrid.search.rounds import proposal_order

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_optimization_history(
        snakemake.input.leaderboard,  # noqa: F821
        proposal_order(snakemake.input.rounds),  # noqa: F821
        snakemake.params.objective,  # noqa: F821
        snakemake.output.history,  # noqa: F821
        rungs=snakemake.params.rungs,  # noqa: F821
        seeds=snakemake.params.seeds,  # noqa: F821
    )
