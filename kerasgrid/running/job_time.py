"""How long a trial's SLURM job asks for (its `runtime` resource): from the pace of the runs this
folder finished, unless the profile sets a runtime for the rule.

Why it is the default on a cluster: a job that asks for less time starts sooner (SLURM's backfill
fits short jobs into the gaps before a big job's reserved start), and since a trial saves its
checkpoint when SLURM warns of the time limit (kerasgrid.running.interruptions), a job that runs
over loses nothing but its wait in the queue: the next job continues it. So a job asks for what
its run took here, with a margin, instead of the hour a profile gives every job.

What it asks for: the slowest of the finished runs of the same budget (read from a sample of
records, as the ETA reads them: kerasgrid.running.eta), for the epochs the job trains, times
MARGIN, plus SLACK_MINUTES for what the job does besides (Snakemake's start on the node,
TensorFlow's import, the warning's lead before the limit); at least FLOOR_MINUTES, and never more
than the profile's default runtime, which is also what a job asks for before any run of its
budget has finished here. The slowest, not the mean: in a grid of small and big models, the mean
would end every big model's job early.

Snakemake sizes a job when it becomes ready to run. In a sweep's first run, the trials of a plain
grid are all ready at once, so they ask for the default; the pace then sizes the jobs that become
ready later: halving's promoted rungs, an adaptive search's later rounds, every job Snakemake
submits again (an interrupted trial's next job), and every later run of the folder.

Pure: no Snakemake, no TensorFlow; workflow/rules/running.smk calls it for the train and rung rules.
"""

import math
import time

from kerasgrid.running import eta

MARGIN = 1.5
SLACK_MINUTES = 5
FLOOR_MINUTES = 10
# Seconds between two readings of the finished runs: Snakemake sizes every ready job at once.
REFRESH_SECONDS = 10


def minutes(seconds: float, most: int) -> int:
    """The runtime, in whole minutes, for a job whose run should take `seconds`."""
    return min(most, max(FLOOR_MINUTES, math.ceil(seconds * MARGIN / 60) + SLACK_MINUTES))


def slowest(found: list[dict], budget: dict) -> eta.Pace | None:
    """The pace of the slowest finished run of `budget` among the records `found`: its seconds
    per epoch and besides fit, each the largest measured; None if none of them measured any."""
    paces = [p for p in (eta.pace([record], budget) for record in found) if p is not None]
    if not paces:
        return None
    return eta.Pace(max(p.epoch_seconds for p in paces), max(p.run_seconds for p in paces), len(paces))


class JobTime:
    """The runtime of the jobs of one budget: `most` minutes (the profile's default runtime)
    until a run of it has finished in `trials_dir`, then from the slowest such run."""

    def __init__(self, budget: dict, most: int, trials_dir="results/trials", clock=time.monotonic):
        self.budget = budget
        self.most = most
        self.trials_dir = trials_dir
        self.clock = clock
        self._read_at = None
        self._pace = None

    def pace(self) -> eta.Pace | None:
        """The slowest run's pace, read again once REFRESH_SECONDS have passed."""
        now = self.clock()
        if self._read_at is None or now - self._read_at >= REFRESH_SECONDS:
            self._pace = slowest(eta.sample_records(self.trials_dir, self.budget), self.budget)
            self._read_at = now
        return self._pace

    def minutes(self, epochs: float, measured: float = 0.0) -> int:
        """The runtime of a job that trains `epochs` epochs; `measured`: the fit seconds its own
        trial is known to need for them (a halving rung's, from the rung before), if any."""
        found = self.pace()
        if found is None:
            return self.most
        return minutes(max(found.seconds(epochs), found.run_seconds + measured), self.most)
