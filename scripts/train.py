"""Rule `train`: one trial, with its output in the rule's log."""

import json
from pathlib import Path

from kerasgrid.logs import job_log
from kerasgrid.training import run_trial

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_trial(
        json.loads(snakemake.params.trial),  # noqa: F821
        json.loads(snakemake.params.settings),  # noqa: F821
        Path(snakemake.output.metrics).parent,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        objective=snakemake.params.objective,  # noqa: F821
    )
