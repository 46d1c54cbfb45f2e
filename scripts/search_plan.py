"""Rule `search_plan`: how the sweep finds and trains its candidates, in results/search.json.

It runs when that plan changes, which voids the ranking: the old leaderboard goes too (see the
rule's comment in workflow/rules/aggregate.smk).
"""

from pathlib import Path

from kerasgrid.records import write_json
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    Path(snakemake.params.stale).unlink(missing_ok=True)  # noqa: F821
    write_json(snakemake.output.plan, snakemake.params.plan)  # noqa: F821
