"""kerasgrid's searches replayed on a full grid's histories (issue 23): what each would pick, and
what it would train, for any search seed, in seconds and without training.

A trial's run to E epochs records exactly the full grid's objective for its params after epoch E:
a promoted trial continues where it stopped and ends where training straight through would
(docs/search.md: "bit for bit"), and a workload whose learning-rate schedule spans the whole
budget (w3.py, cnn27.py) trains a rung's epochs exactly as the grid trial's first E epochs. So a
rung's record is the grid trial's history at that epoch, and the replay is the search itself,
less the training. bench_search.py checks that on every kerasgrid run it makes: the replay of
the run's config and seed names the pick the run made.

Each replay drives the library's own code, not a model of it:
- the Sweep the workflow builds from the config (kerasgrid.config.sweep_from_config): its
  candidates, rungs, Hyperband brackets and their deal (kerasgrid.search.hyperband), an adaptive
  search's rounds, their brackets and settings;
- each rung's promotions by the schedule's own `promote` (kerasgrid.search.halving.Halving: the
  best ceil(entrants / eta) that ended ok, ties by id), on the records of the rung before;
- for TPE, the `propose` checkpoint's function, kerasgrid.search.rounds.write_round, on round
  files and trial records written to a scratch folder as the workflow writes them: the budget the
  sampler learns from (rounds.budget), its start-up count (rounds.min_points), the trials told as
  stopped, the round's seed;
- the pick by the leaderboard's ranking (kerasgrid.results.ranking.rank) of each candidate's
  record at the furthest rung it reached.

`epochs` counts each trial's epochs once, to the furthest rung it reached: a later bracket's
entrant continues from the furthest rung it trained before. `jobs` counts the (trial, rung) runs,
each a job with its fixed cost; a rung that two brackets ask for is one job.
"""

import copy
import tempfile
from pathlib import Path

from kerasgrid import records
from kerasgrid.config import check, fill_defaults, load_schema, sweep_from_config
from kerasgrid.results.ranking import rank
from kerasgrid.search.rounds import write_round

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


def sweep_of(config: dict, source: str = "the replayed config"):
    """The Sweep the workflow would build from `config`, defaults filled in as Snakemake fills them."""
    config = copy.deepcopy(config)
    schema = load_schema(SCHEMA)
    check(config, schema, source)
    fill_defaults(config, schema)
    return sweep_from_config(config, source)


def rung_record(truth: dict, trial: str, epochs: int, metric: str) -> dict:
    """What the trial's run to `epochs` records: the grid's objective after that epoch. A grid
    trial that failed fails at every rung; one that diverged is ok at the epochs before."""
    found = truth[trial]
    history = found["history"]
    value = history[epochs - 1] if len(history) >= epochs else None
    if value is not None and found["status"] != "failed":
        status = "ok"
    else:
        status = "failed" if found["status"] == "failed" else "diverged"
    return {
        "trial_id": trial,
        "params": found["params"],
        "status": status,
        "epochs_target": epochs,
        "metrics": {metric: {"final": value}} if value is not None else {},
    }


def halve(sweep, truth: dict, entrants: list[str], start: int) -> dict[str, int]:
    """One successive halving (a bracket, or a round's) of `entrants` from rung index `start`, as
    workflow/rules/halving.smk's promotions decide it: {trial: the furthest rung index it entered}."""
    metric, rungs = sweep.objective["metric"], sweep.rungs
    reach = {trial: start for trial in entrants}
    for index in range(start, len(rungs) - 1):
        at_rung = [rung_record(truth, trial, rungs[index], metric) for trial in entrants]
        entrants = sweep.schedule.promote(at_rung, len(set(entrants)), sweep.objective)
        reach.update({trial: index + 1 for trial in entrants})
    return reach


def outcome(sweep, truth: dict, reaches: list[dict[str, int]]) -> dict:
    """The pick and the cost of a search whose halvings (or rounds) reached `reaches`."""
    furthest: dict[str, int] = {}
    jobs: set[tuple[str, int]] = set()
    for reach in reaches:
        for trial, index in reach.items():
            furthest[trial] = max(furthest.get(trial, index), index)
    for reach, start in zip(reaches, _starts(sweep, len(reaches))):
        for trial, index in reach.items():
            jobs.update((trial, k) for k in range(start, index + 1))
    metric, rungs = sweep.objective["metric"], sweep.rungs
    board = rank([rung_record(truth, trial, rungs[index], metric) for trial, index in sorted(furthest.items())],
                 sweep.objective)
    return {
        "pick": board[0]["trial_id"],
        "epochs": sum(rungs[index] for index in furthest.values()),
        "jobs": len(jobs),
        "candidates": len(furthest),
        "full_budget": sum(index == len(rungs) - 1 for index in furthest.values()),
    }


def _starts(sweep, count: int) -> list[int]:
    """The first rung index of each halving: each bracket's, or each round's bracket's."""
    if not sweep.halving:
        return [0] * count
    if sweep.adaptive:
        return [sweep.brackets[bracket].start for bracket in sweep.round_brackets]
    return [bracket.start for bracket in sweep.brackets]


def replay_upfront(sweep, truth: dict) -> dict:
    """A grid or random search, with halving (any brackets) or without: every bracket's halving
    of the candidates the Sweep dealt it."""
    if not sweep.halving:
        return outcome(sweep, truth, [{trial: 0 for trial in sweep.trials}])
    return outcome(sweep, truth, [halve(sweep, truth, dealt, bracket.start)
                                  for bracket, dealt in zip(sweep.brackets, sweep.dealt)])


def replay_adaptive(sweep, truth: dict) -> dict:
    """An adaptive search round by round: write_round proposes from the files of the rounds before
    (their round files, and their trials' records at every rung each reached), then the round's
    proposals are halved from their bracket's first rung (with halving) or trained whole."""
    metric, rungs = sweep.objective["metric"], sweep.rungs
    reaches, round_paths, record_paths = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(len(sweep.round_sizes)):
            path = Path(scratch) / "rounds" / f"{index}.json"
            proposed = write_round(list(round_paths), list(record_paths), sweep.round_settings(index), index, path)
            round_paths.append(str(path))
            start = sweep.brackets[sweep.round_brackets[index]].start if sweep.halving else 0
            reach = halve(sweep, truth, list(proposed), start) if sweep.halving else {trial: 0 for trial in proposed}
            reaches.append(reach)
            for trial, furthest in reach.items():
                for k in range(start, furthest + 1):
                    record_path = Path(scratch) / "trials" / trial / "rungs" / str(rungs[k]) / "metrics.json"
                    records.write_json(record_path, rung_record(truth, trial, rungs[k], metric))
                    record_paths.append(str(record_path))
    found = outcome(sweep, truth, reaches)
    found["rounds"] = len(reaches)
    return found


def replay(config: dict, truth: dict) -> dict:
    """What the search of `config` (a kerasgrid config with its search section) picks and trains,
    told the full grid's histories `truth` ({trial id: {params, status, history, ...}})."""
    sweep = sweep_of(config)
    return replay_adaptive(sweep, truth) if sweep.adaptive else replay_upfront(sweep, truth)
