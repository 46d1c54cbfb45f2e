"""Rule `pareto`: the leaderboard's first Pareto front in results/pareto.tsv."""

from kerasgrid.results.leaderboard import write_front
from kerasgrid.running.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_front(snakemake.input.leaderboard, snakemake.output.front)  # noqa: F821
