"""Checkpoint `promotions`: who trains on to the rung ending at {epochs}, in results/<group>/<epochs>.json (group: brackets/<b> or rounds/<i>)."""

from kerasgrid.running.logs import job_log
from kerasgrid.search.halving import Halving, write_promotions

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_promotions(
        snakemake.input.metrics,  # noqa: F821
        snakemake.params.objective,  # noqa: F821
        Halving(eta=snakemake.params.eta),  # noqa: F821
        int(snakemake.wildcards.epochs),  # noqa: F821
        snakemake.output.promoted,  # noqa: F821
        keep_states=snakemake.params.keep_states,  # noqa: F821
        kept=snakemake.params.kept,  # noqa: F821
    )
