"""How long a sweep has left: the runs its plan trains, paced by the runs this folder finished.

The plan is a list of stages, each a barrier the next waits on: a sweep without halving or rounds
is one stage (every run at once, as the cores allow); with halving, each rung is one (the next
rung's runs are promoted only once it ends); an adaptive search's rounds are too, and with
halving each round's rungs. A stage of n runs on c cores takes ceil(n / c) runs' time, one after
another, which is why an estimate can be far above `runs x seconds / cores` on a small sweep.

The pace is what finished runs of the same budget (the same steps, batch and validation: epochs
may differ, since rungs train fewer) took: fit seconds per epoch trained, plus what a run costs
besides `fit` (building the model, reading the data, writing its files). It is read from a sample
of records, never all of them, so that 100,000-trial folders cost milliseconds
(benchmarks/RESULTS.md).

On a cluster the queue decides when a job starts, which no count of cores can say: there the
estimate is seconds per run and job-seconds in all.

Pure: no Snakemake, no TensorFlow; the workflow's onstart and each train job's message call it
(workflow/rules/running.smk), as `kerasgrid summary` does.
"""

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kerasgrid import records
from kerasgrid.errors import StorageError
from kerasgrid.results.leaderboard import record_dir
from kerasgrid.search import hyperband, size
from kerasgrid.search.halving import Halving
from kerasgrid.search.rounds import proposals
from kerasgrid.sweep import runs

# A grid of more combinations than this is warned about whatever the estimate: the issue's
# figure, about where a grid stops being something a user sized on purpose.
WARN_COMBINATIONS = 10_000
# Records read for the pace: enough for a steady mean, few enough to cost nothing on huge folders.
SAMPLE = 64
# What `kerasgrid summary` reads back: the plan as the last run saw it.
PLAN_FILE = "eta.json"


@dataclass(frozen=True)
class Stage:
    """Runs that train side by side, which the next stage waits for: `runs` of them (at most, with
    halving), `epochs` trained in all (each run from where it continues), `done` finished already,
    each to `until` epochs."""

    until: int
    runs: int
    epochs: int
    done: int = 0

    @property
    def left(self) -> int:
        return max(0, self.runs - self.done)


@dataclass(frozen=True)
class Pace:
    """What a run of this budget takes: `epoch_seconds` of fit per epoch, `run_seconds` besides
    fit; measured on `measured` finished runs."""

    epoch_seconds: float
    run_seconds: float
    measured: int

    def seconds(self, epochs: float) -> float:
        return self.run_seconds + self.epoch_seconds * epochs


def same_budget(record: dict, budget: dict) -> bool:
    """Whether `record` trained with `budget` but for its epochs (a rung trains fewer)."""
    found = dict(record.get("budget") or {})
    return {**found, "epochs": 0} == {**budget, "epochs": 0}


def pace(found: list[dict], budget: dict) -> Pace | None:
    """The mean pace of the finished, measured runs among `found` that trained with `budget`."""
    epoch_seconds, run_seconds = [], []
    for record in found:
        trained = record.get("epochs_run", 0) - record.get("resumed_from_epoch", 0)
        fit = record.get("fit_seconds") or 0
        if trained <= 0 or fit <= 0 or not same_budget(record, budget):
            continue  # failed before fitting, or another budget: says nothing of this one's pace
        epoch_seconds.append(fit / trained)
        run_seconds.append(max(0.0, (record.get("wall_seconds") or fit) - fit))
    if not epoch_seconds:
        return None
    return Pace(sum(epoch_seconds) / len(epoch_seconds), sum(run_seconds) / len(run_seconds), len(epoch_seconds))


def sample_records(trials_dir, budget: dict, limit: int = SAMPLE) -> list[dict]:
    """Up to `limit` finished records of `budget` in `trials_dir` (each trial's own run, and its
    rungs'), reading no more files than it keeps, plus those of other budgets it met on the way."""
    found: list[dict] = []
    try:
        entries = os.scandir(trials_dir)
    except OSError:
        return found
    with entries:
        for entry in entries:
            for path in (Path(entry.path) / "metrics.json", *Path(entry.path).glob("rungs/*/metrics.json")):
                try:
                    record = records.read_json(path)
                except (OSError, ValueError):
                    continue  # not finished, or being written
                found.append(record)
                if sum(same_budget(r, budget) for r in found) >= limit or len(found) >= 4 * limit:
                    return found
    return found


def _existing(trials_dir) -> set[str]:
    """The trial folders there are: the only ones whose runs may be finished, listed in one call."""
    try:
        return set(os.listdir(trials_dir))
    except OSError:
        return set()


def _finished(trials_dir, trials, sweep, epochs: int, existing: set[str]) -> int:
    """How many runs of `trials` (every seed) have a record at the rung ending at `epochs`."""
    count = 0
    for trial in trials:
        if trial not in existing:
            continue
        for seed in sweep.seeds:
            folder = runs.run_dir(Path(trials_dir) / trial, seed, sweep.seed)
            count += (record_dir(folder, epochs, sweep.rungs) / "metrics.json").is_file()
    return count


def halving_stages(rungs: list[int], schedule, halvings: list[tuple[int, int]], fresh: bool) -> list[tuple[int, int]]:
    """(runs, epochs) of each rung of these halvings ((size, first rung index) each). An entrant
    at a later bracket's first rung continues from the first rung (grid and random: bracket 0
    trained every candidate there) or, `fresh` (adaptive: new candidates), starts from nothing."""
    counts = [[0, 0] for _ in rungs]
    for start_size, start in halvings:
        for offset, count in enumerate(schedule.entrants(start_size, len(rungs), start)):
            k = start + offset
            if offset:
                trained = rungs[k] - rungs[k - 1]
            else:
                trained = rungs[k] - (0 if fresh or k == 0 else rungs[0])
            counts[k][0] += count
            counts[k][1] += count * trained
    return [(n, e) for n, e in counts]


def plan(sweep, trials_dir="results/trials") -> list[Stage]:
    """The stages of `sweep` (a kerasgrid.config.Sweep), with the runs of each finished already.

    Counts files, reads none but the rounds': an existing trial folder is looked in, a missing one
    is not, so the cost grows with the trials finished, not the grid."""
    existing = _existing(trials_dir)
    seeds = len(sweep.seeds)
    if not sweep.adaptive:
        candidates = list(sweep.trials)
        if not sweep.halving:
            epochs = sweep.rungs[-1]
            done = _finished(trials_dir, candidates, sweep, epochs, existing)
            return [Stage(epochs, len(candidates) * seeds, len(candidates) * seeds * epochs, done)]
        halvings = hyperband.groups(sweep)
        stages = halving_stages(sweep.rungs, sweep.schedule, halvings, fresh=False)
        return [Stage(until, n * seeds, e * seeds, _finished(trials_dir, candidates, sweep, until, existing))
                for until, (n, e) in zip(sweep.rungs, stages)]
    rounds_dir = Path(trials_dir).parent / "rounds"
    found = []
    for index, round_size in enumerate(sweep.round_sizes):
        try:
            trials = list(proposals(rounds_dir / f"{index}.json"))
        except (OSError, ValueError, KeyError):
            trials = []  # not proposed yet
        if not sweep.halving:
            epochs = sweep.rungs[-1]
            done = _finished(trials_dir, trials, sweep, epochs, existing)
            found.append(Stage(epochs, round_size * seeds, round_size * seeds * epochs, done))
            continue
        start = sweep.brackets[sweep.round_brackets[index]].start
        stages = halving_stages(sweep.rungs, sweep.schedule, [(round_size, start)], fresh=True)
        found += [Stage(until, n * seeds, e * seeds, _finished(trials_dir, trials, sweep, until, existing))
                  for until, (n, e) in zip(sweep.rungs, stages) if n]
    return found


def seconds_left(stages: list[Stage], pace_: Pace, cores: int) -> float:
    """Wall seconds for the stages' runs left, `cores` side by side, each stage after the one before."""
    total = 0.0
    for stage in stages:
        if stage.left:
            total += math.ceil(stage.left / max(1, cores)) * pace_.seconds(stage.epochs / stage.runs)
    return total


def job_seconds(stages: list[Stage], pace_: Pace) -> float:
    """The seconds of every run left, one after another: what a cluster is asked for in all."""
    return sum(stage.left * pace_.seconds(stage.epochs / stage.runs) for stage in stages if stage.runs)


def duration(seconds: float) -> str:
    """`seconds` as people say it: 40 s, 3 min, 2.5 h, 3.2 days."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass(frozen=True)
class Estimate:
    """A sweep's plan, its pace (None: nothing of this budget finished yet) and where it runs:
    `cores` side by side, or on a cluster (`cluster`), where only job-seconds can be said."""

    stages: list[Stage]
    pace: Pace | None
    cores: int
    cluster: bool = False
    halving: bool = False
    budget: dict | None = None  # the one the pace is of (summary measures its own from it)

    @property
    def runs(self) -> int:
        return sum(stage.runs for stage in self.stages)

    @property
    def done(self) -> int:
        return sum(min(stage.done, stage.runs) for stage in self.stages)

    @property
    def left(self) -> int:
        return sum(stage.left for stage in self.stages)

    def seconds(self) -> float | None:
        """Wall seconds left here, or job-seconds on a cluster; None without a pace."""
        if self.pace is None:
            return None
        return job_seconds(self.stages, self.pace) if self.cluster else seconds_left(self.stages, self.pace, self.cores)

    def run_seconds(self) -> float | None:
        """What one run of the plan takes on average (its epochs as the plan's mean)."""
        if self.pace is None or not self.runs:
            return None
        return self.pace.seconds(sum(stage.epochs for stage in self.stages) / self.runs)

    def eta(self) -> str:
        """The Model lines' tail: "ETA 3 min", on a cluster "about 12 s a job, 3,400 job-s left"; ""
        without a pace or with nothing left."""
        seconds = self.seconds()
        if seconds is None or not self.left:
            return ""
        if self.cluster:  # the jobs finish elsewhere, unseen here: what one takes, not what is left
            return f"about {duration(self.run_seconds())} a job"
        return f"ETA {duration(seconds)}"

    def lines(self) -> list[str]:
        """What the console says before training: the runs to train and finished, the estimate."""
        most = "at most " if self.halving else ""
        kind = "runs" if self.halving else "trials"
        counted = f"kerasgrid: {most}{self.left:,} {kind} to train, {self.done:,} of the {self.runs:,} finished already"
        if not self.left:
            return [f"kerasgrid: all {self.runs:,} {kind} of the plan finished."]
        if self.pace is None:
            return [f"{counted}; no estimate yet: no finished trial here trained with this budget (the Model lines "
                    "carry an ETA once one has)."]
        each = f"{duration(self.run_seconds())} a {'run' if self.halving else 'trial'}"
        measured = f"the pace of {self.pace.measured} finished {'run' if self.pace.measured == 1 else 'runs'}"
        if self.cluster:
            return [f"{counted}; about {each} ({measured}), {self.seconds():,.0f} job-seconds in all: on a cluster "
                    "the queue decides when each starts."]
        return [f"{counted}; about {duration(self.seconds())} left on {_cores(self.cores)} ({each}, {measured})."]

    def finished(self, until: int, record: dict | None = None, budget: dict | None = None) -> "Estimate":
        """This estimate once a run to `until` epochs has finished (its record, if read, joins the pace)."""
        stages = list(self.stages)
        for index, stage in enumerate(stages):
            if stage.until == until and stage.left:
                stages[index] = replace(stage, done=stage.done + 1)
                break
        found = self.pace
        if record is not None and budget is not None:
            measured = pace([record], budget)
            if measured is not None:
                found = measured if found is None else _mean(found, measured)
        return replace(self, stages=stages, pace=found)

    def with_done(self, counts: dict[int, int]) -> "Estimate":
        """This plan with `counts[until]` runs to `until` epochs finished, shared out over its
        stages in order (an adaptive search's rounds each have a stage per rung)."""
        counts, stages = dict(counts), []
        for stage in self.stages:
            done = min(stage.runs, counts.get(stage.until, 0))
            counts[stage.until] = counts.get(stage.until, 0) - done
            stages.append(replace(stage, done=done))
        return replace(self, stages=stages)

    def with_jobs(self, jobs: int | None) -> "Estimate":
        """A one-stage plan with exactly `jobs` runs to train, as Snakemake counted them (it also
        retrains what a changed setting made out of date, which counting files cannot see)."""
        if jobs is None or len(self.stages) != 1:
            return self
        stage = self.stages[0]
        return replace(self, stages=[replace(stage, done=max(0, stage.runs - jobs))])

    def to_dict(self) -> dict:
        return {"stages": [asdict(stage) for stage in self.stages], "cores": self.cores, "cluster": self.cluster,
                "halving": self.halving, "budget": self.budget}


def _cores(count: int) -> str:
    return f"{count} core{'' if count == 1 else 's'}"


def _mean(a: Pace, b: Pace) -> Pace:
    n = a.measured + b.measured
    return Pace((a.epoch_seconds * a.measured + b.epoch_seconds * b.measured) / n,
                (a.run_seconds * a.measured + b.run_seconds * b.measured) / n, n)


def estimate(sweep, cores: int, cluster: bool = False, trials_dir="results/trials") -> Estimate:
    """The estimate of `sweep` (a kerasgrid.config.Sweep) in this folder, run on `cores` or a cluster."""
    budget = sweep.settings()["budget"]
    return Estimate(plan(sweep, trials_dir), pace(sample_records(trials_dir, budget), budget), cores, cluster,
                    sweep.halving, budget)


def alternatives(sweep, estimate_: Estimate) -> list[str]:
    """What `random` with trials, halving and `tpe` would cost instead of this grid, from the same
    pace: each "<search settings>: <its cost>"."""
    combinations = size(sweep.space)
    epochs = sweep.budget["epochs"]
    seeds = len(sweep.seeds)
    trials = min(1000, math.ceil(combinations / 10)) if math.isfinite(combinations) else 1000
    batch = max(1, estimate_.cores) if not estimate_.cluster else 8

    def cost(stages: list[Stage]) -> str:
        new = Estimate(stages, estimate_.pace, estimate_.cores, estimate_.cluster)
        if new.pace is None:
            return f"{new.runs:,} runs, {sum(s.epochs for s in stages):,} epochs"
        unit = " job-seconds" if new.cluster else ""
        return f"{new.seconds():,.0f}{unit}" if new.cluster else f"about {duration(new.seconds())}"

    found = [f"search: {{strategy: random, trials: {trials:,}}}: "
             f"{cost([Stage(epochs, trials * seeds, trials * seeds * epochs)])}"]
    schedule = Halving(eta=3, min_epochs=1)
    rungs = schedule.rungs(epochs)
    if len(rungs) > 1:
        # Plain successive halving: Hyperband's later brackets hedge at a cost, this shows the saving.
        pool = int(min(combinations, 10**9)) if sweep.strategy == "grid" else trials
        stages = [Stage(until, n * seeds, e * seeds) for until, (n, e) in
                  zip(rungs, halving_stages(rungs, schedule, [(pool, 0)], fresh=False))]
        found.append(f"the same {'grid' if sweep.strategy == 'grid' else 'search'} with halving: {{eta: 3, brackets: 1}} "
                     f"(rungs at {', '.join(map(str, rungs))} epochs): {cost(stages)}")
    rounds = math.ceil(trials / batch)
    tpe = [Stage(epochs, min(batch, trials - i * batch) * seeds, min(batch, trials - i * batch) * seeds * epochs)
           for i in range(rounds)]
    found.append(f"search: {{strategy: tpe, trials: {trials:,}, batch: {batch}}}: {cost(tpe)}")
    return found


def warning(sweep, estimate_: Estimate, warn_hours: float, source: str) -> str | None:
    """The one-paragraph warning of a sweep bigger than `warn_hours` (estimated) or than
    WARN_COMBINATIONS (a grid), or None. It warns only: max_trials stays the hard cap."""
    seconds = estimate_.seconds()
    combinations = size(sweep.space) if sweep.strategy == "grid" else 0
    too_long = seconds is not None and seconds > warn_hours * 3600 * (estimate_.cores if estimate_.cluster else 1)
    too_big = combinations > WARN_COMBINATIONS
    if not (too_long or too_big):
        return None
    what = f"{sweep.strategy} search of {estimate_.runs:,} {'runs' if estimate_.halving else 'trials'}"
    if too_big:
        what = f"grid of {int(combinations):,} combinations ({estimate_.runs:,} runs)"
    if seconds is None:
        estimated = "no estimate of its time exists yet (no trial of this budget has finished here)"
    elif estimate_.cluster:
        estimated = f"about {seconds / 3600:,.0f} job-hours left ({duration(estimate_.run_seconds())} a run)"
    else:
        estimated = f"about {duration(seconds)} left on {_cores(estimate_.cores)}"
        if too_long:
            estimated += f", above warn_hours ({warn_hours:g})"
    instead = "; ".join(alternatives(sweep, estimate_))
    return (f"kerasgrid: warning: {source} asks for a {what}: {estimated}. Instead, {instead}. It trains anyway "
            "(max_trials is the only hard cap); to change course, stop it (Ctrl-C: finished trials are kept) and "
            f"edit search in {source}, or raise warn_hours to silence this warning.")


def announcement(sweep, cores: int, cluster: bool, warn_hours: float, source: str, jobs: int | None = None,
                 trials_dir="results/trials") -> tuple[Estimate, list[str]]:
    """What a run says before it trains, and `kerasgrid check` and `snakemake -n` before it runs:
    the runs to train and finished, the time left, and the warning of a big sweep; with the
    estimate they come from. `jobs`: the train jobs Snakemake plans, where it has planned them."""
    found = estimate(sweep, cores, cluster, trials_dir)
    if not (sweep.halving or sweep.adaptive):
        found = found.with_jobs(jobs)
    note = warning(sweep, found, warn_hours, source)
    return found, found.lines() + ([note] if note else [])


def write_plan(estimate_: Estimate, path) -> None:
    """The plan `kerasgrid summary` counts the runs to go from (results/eta.json). Not on a full or
    read-only disk: the first trial's files then say so, with what to do, as without this file."""
    try:
        records.write_json(path, estimate_.to_dict())
    except (StorageError, OSError):
        pass


def read_plan(path) -> Estimate | None:
    """The plan write_plan wrote, without a pace (summary measures its own), or None."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
        stages = [Stage(**stage) for stage in found["stages"]]
        return Estimate(stages, None, found["cores"], found["cluster"], found["halving"], found["budget"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Progress:
    """A run's estimate, kept up to date as its runs finish here: what each Model line's ETA says.

    One per `snakemake` process; the jobs' threads call `finished`, the scheduler's formats the
    messages: each swaps or reads the whole estimate, never a part of it."""

    def __init__(self):
        self.estimate: Estimate | None = None

    def start(self, estimate_: Estimate) -> None:
        self.estimate = estimate_

    def finished(self, until: int, metrics_path) -> None:
        """A run to `until` epochs wrote its record at `metrics_path`: one fewer to go, its pace counted."""
        if self.estimate is None:
            return
        try:
            record = records.read_json(metrics_path)
        except (OSError, ValueError):
            record = None
        self.estimate = self.estimate.finished(until, record, self.estimate.budget)

    def eta(self) -> str:
        return self.estimate.eta() if self.estimate is not None else ""
