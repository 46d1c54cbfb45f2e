"""Rule `training_data`: what the tuning runs trained on (data.fraction), in results/training_data.json."""

from kerasgrid.fraction import write_summary
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_summary(snakemake.input.metrics, snakemake.output.summary)  # noqa: F821
