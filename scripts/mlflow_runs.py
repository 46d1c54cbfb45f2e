"""Rule `mlflow_runs`: log to MLflow what the trials did not, then the sweep's parent run;
results/mlflow.json says what is where, or what could not be logged."""

import os

from kerasgrid.results.tracking import Target, log_sweep, write_summary
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    results = os.path.dirname(snakemake.output.record)  # noqa: F821
    target = Target(**snakemake.params.target, results=results, source=snakemake.params.source)  # noqa: F821
    summary = log_sweep(target)
    if summary["error"]:
        print(f"kerasgrid: {summary['error']}", flush=True)
    write_summary(summary, snakemake.output.record)  # noqa: F821
