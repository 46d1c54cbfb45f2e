"""Rule `leaderboard`: rank every trial of the current grid (or search) into results/leaderboard.tsv."""

from kerasgrid.results.leaderboard import write_leaderboard
from kerasgrid.running.logs import job_log
from kerasgrid.search.hyperband import trial_brackets
from kerasgrid.search.rounds import trial_rounds

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_leaderboard(
        snakemake.input.metrics,  # noqa: F821
        snakemake.params.objective,  # noqa: F821
        snakemake.params.grid_keys,  # noqa: F821
        snakemake.output.leaderboard,  # noqa: F821
        source=snakemake.params.source,  # noqa: F821
        rungs=snakemake.params.rungs,  # noqa: F821
        rounds=trial_rounds(snakemake.input.rounds) or None,  # noqa: F821
        brackets=trial_brackets(  # noqa: F821
            snakemake.params.brackets, snakemake.input.metrics, snakemake.input.promotions, snakemake.input.rounds,  # noqa: F821
        ),
        repeats=snakemake.params.repeats,  # noqa: F821
        confirmed_paths=snakemake.input.confirmed if snakemake.params.confirm else None,  # noqa: F821
    )
