"""Rule `search_plan`: an adaptive search's strategy, trials, batch and rounds in results/search_plan.json."""

from kerasgrid.logs import job_log
from kerasgrid.search.rounds import write_plan

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_plan(snakemake.output.plan, snakemake.params.plan)  # noqa: F821
