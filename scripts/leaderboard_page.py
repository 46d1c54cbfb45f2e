"""Rule `leaderboard_page`: the winner and the leaderboard as results/leaderboard.html."""

from kerasgrid.results.tables import write_page
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_page(
        snakemake.input.leaderboard,  # noqa: F821
        snakemake.params.objective,  # noqa: F821
        snakemake.output.page,  # noqa: F821
        training_data=snakemake.input.training_data or None,  # noqa: F821
        fraction=snakemake.params.fraction,  # noqa: F821
    )
