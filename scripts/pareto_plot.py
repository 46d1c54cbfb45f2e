"""Rule `pareto_plot`: the trials on the objectives' axes, the front highlighted (results/plots/pareto.png)."""

from kerasgrid.results.front_plot import write_front_plot
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_front_plot(
        snakemake.input.leaderboard,  # noqa: F821
        snakemake.params.objective["objectives"],  # noqa: F821
        snakemake.output.plot,  # noqa: F821
    )
