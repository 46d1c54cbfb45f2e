"""Checkpoint `propose`: round {round} of an adaptive search, from the rounds before, in results/rounds/<round>.json."""

from kerasgrid.running.logs import job_log
from kerasgrid.search.rounds import write_round

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_round(
        snakemake.input.rounds,  # noqa: F821
        snakemake.input.records,  # noqa: F821
        snakemake.params.search,  # noqa: F821
        int(snakemake.wildcards.round),  # noqa: F821
        snakemake.output.proposals,  # noqa: F821
    )
