"""Checkpoint `finalists`: the best confirm.top combinations of the tuning, in results/finalists.json."""

from kerasgrid.results.confirm import write_finalists
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_finalists(
        snakemake.input.metrics,  # noqa: F821
        snakemake.params.objective,  # noqa: F821
        snakemake.params.top,  # noqa: F821
        snakemake.output.finalists,  # noqa: F821
        source=snakemake.params.source,  # noqa: F821
    )
