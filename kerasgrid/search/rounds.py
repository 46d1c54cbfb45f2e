"""The rounds of an adaptive search: their sizes and seeds, and the files that record them.

`search.trials` trials are proposed in rounds of `search.batch`: ceil(trials / batch) rounds, the
last one holding the rest. The workflow's `propose` checkpoint writes round i's file,
results/rounds/<i>.json, from the records of rounds 0 to i-1 once they are all finished:

    {"round": i, "strategy": "tpe" | "nsga2", "seed": <the sampler's seed>,
     "told": [{"trial_id": ..., "status": "ok" | "failed" | "diverged", "objective": ... or null}, ...],
     "proposals": [{"trial_id": ..., "params": {...}}, ...]}

`told` is the history as the sampler got it, in order; `proposals` are the round's trials in the
order proposed. With several objectives each told trial also has "values" (every objective's, in
order; null unless ok), and with constraints "constraints" (one number per constraint, Optuna's
convention: > 0 broken by that much, <= 0 kept; [] unless ok). These files and the trials' own records are the whole state of a search: no
database, no process to keep alive.
"""

import functools
import hashlib
import os
from pathlib import Path

from kerasgrid import records
from kerasgrid.errors import Status
from kerasgrid.results.ranking import constraints_of, metric_means, objective_value, objectives_of
from kerasgrid.results.repeats import combine
from kerasgrid.search import ADAPTIVE_SAMPLERS
from kerasgrid.search.base import Observation
from kerasgrid.sweep.space import dimensions, parse_space
from kerasgrid.sweep.grid import canonical

# How a round's file tells of a trial that has no result at the budget the sampler learns from.
STOPPED = "stopped"


def round_sizes(trials: int, batch: int) -> list[int]:
    full, rest = divmod(trials, batch)
    return [batch] * full + ([rest] if rest else [])


def round_seed(seed: int, index: int) -> int:
    """The sampler's seed in round `index`: another stream in every round (one seed for all would
    start each round's random draws over from the same point), the same in every run."""
    digest = hashlib.sha256(canonical([seed, index]).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


def read_round(path) -> dict:
    """A round's file; read once per version (Snakemake asks for each round's trials many times)."""
    stat = os.stat(path)
    return _read_round(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _read_round(path: str, mtime_ns: int, size: int) -> dict:
    return records.read_json(path)


def proposals(path) -> dict[str, dict]:
    """A round's trials, {trial id: params}, in the order proposed."""
    return {entry["trial_id"]: entry["params"] for entry in read_round(path)["proposals"]}


def trial_rounds(round_paths) -> dict[str, int]:
    """The round that proposed each trial of these rounds' files."""
    return {trial: read_round(path)["round"] for path in round_paths for trial in proposals(path)}


def proposal_order(round_paths) -> list[str]:
    """Every trial of these rounds, in the order the search proposed them."""
    ordered = sorted(round_paths, key=lambda path: read_round(path)["round"])
    return [trial for path in ordered for trial in proposals(path)]


def proposed_params(rounds_dir) -> dict[str, dict]:
    """{trial id: params} of every round written so far (what a train job of the search trains)."""
    found = {}
    for path in sorted(Path(rounds_dir).glob("*.json")):
        found.update(proposals(path))
    return found


def observations(round_paths, record_paths, objective: dict, source: str = "the config", *,
                 partial: bool = False) -> list[Observation]:
    """The trials of these rounds as a sampler is told them, in the order they were proposed. With
    repeats a trial has a record per seed: it is told their mean, and failed if any seed was not ok
    (kerasgrid.results.repeats.combine). With several objectives, each one's value (the mean, with
    repeats); with constraints, each one's violation (Constraint.violation) of the mean.

    `partial` (halving): a trial without a record among `record_paths` (it stopped before the
    budget they are of, or started after it) is told as STOPPED: tried, never proposed again, but
    no shape of the sampler's model."""
    read = [records.read_json(path) for path in record_paths]
    by_id = {entry["trial_id"]: entry for entry in combine(read, [objective_value(r, objective, source) for r in read])}
    objectives = objectives_of(objective)
    others = [metric_means(read, o["metric"], source, f"objective[{i}].metric") for i, o in enumerate(objectives) if i]
    constraints = constraints_of(objective, source)
    bounds = [metric_means(read, c.metric, source, f"constraints[{i}]") for i, c in enumerate(constraints)]
    rounds = trial_rounds(round_paths)
    proposed = {trial: params for path in round_paths for trial, params in proposals(path).items()} if partial else {}
    told = []
    for trial in proposal_order(round_paths):
        if partial and trial not in by_id:
            told.append(Observation(trial, proposed[trial], STOPPED, None, None, (), rounds[trial]))
            continue
        entry = by_id[trial]
        ok = entry["objective_value"] is not None
        values = (entry["objective_value"], *(means[trial] for means in others)) if ok and others else None
        violations = tuple(c.violation(b[trial]) for c, b in zip(constraints, bounds)) if ok else ()
        told.append(Observation(trial, entry["params"], entry["status"], entry["objective_value"], values, violations,
                                rounds[trial]))
    return told


def budget_records(record_paths, rungs: list[int], space: dict) -> tuple[int | None, list[str]]:
    """BOHB's choice of what the sampler learns from, with halving: the records at `budget`."""
    read = [records.read_json(path) for path in record_paths]
    epochs = budget(read, rungs, space)
    return epochs, [path for path, record in zip(record_paths, read) if epochs is not None
                    and (record.get("epochs_target") or rungs[-1]) == epochs]


def budget(records_: list[dict], rungs: list[int], space: dict) -> int | None:
    """The largest budget (a rung's epochs) at which at least `min_points(space)` trials ended ok,
    or None while no budget has that many (the sampler then proposes at random), as BOHB."""
    ok: dict[int, set[str]] = {}
    for record in records_:
        if record["status"] == Status.OK.value:
            ok.setdefault(record.get("epochs_target") or rungs[-1], set()).add(record["trial_id"])
    return next((epochs for epochs in reversed(rungs) if len(ok.get(epochs, ())) >= min_points(space)), None)


def min_points(space: dict) -> int:
    """BOHB's N_min + 2 (N_min = dimensions + 1): the results a budget needs before the model
    learns from it, and the random proposals before it does. A choice's branches' keys count as
    dimensions too (each key once, however many branches hold it)."""
    return len(dimensions(space)) + 3


def told_entry(observation: Observation, objective: dict) -> dict:
    """How a round's file records what the sampler was told of a trial."""
    entry = {"trial_id": observation.trial_id, "status": observation.status, "objective": observation.value}
    if len(objectives_of(objective)) > 1:
        entry["values"] = list(observation.values) if observation.values is not None else None
    if objective.get("constraints"):
        entry["constraints"] = list(observation.constraints)
    return entry


def write_round(round_paths, record_paths, settings: dict, index: int, path) -> dict[str, dict]:
    """Propose round `index` from the rounds before it (their files and their trials' records)
    and write its file. `settings` is the sweep's `Sweep.round_settings(index)`."""
    space = parse_space(settings["grid"], "the round's settings")
    objective = settings["objective"]
    sampler_settings = dict(settings.get("sampler", {}))
    budget = {}
    if "rungs" in settings:  # halving (BOHB): told the results at one budget
        epochs, at_budget = budget_records(record_paths, settings["rungs"], space)
        history = observations(round_paths, at_budget, objective, partial=True)
        sampler_settings["startup"] = min_points(space)
        budget = {"bracket": settings["bracket"], "budget": epochs}
    else:
        history = observations(round_paths, record_paths, objective)
    seed = round_seed(settings["seed"], index)
    sampler = ADAPTIVE_SAMPLERS[settings["strategy"]](**sampler_settings)
    directions = tuple(o["direction"] for o in objectives_of(objective))
    proposed = sampler.propose(space, history, settings["size"], seed, directions if len(directions) > 1 else directions[0])
    records.write_json(path, {
        "round": index,
        "strategy": settings["strategy"],
        "seed": seed,
        **budget,
        "told": [told_entry(o, objective) for o in history],
        "proposals": [{"trial_id": trial, "params": params} for trial, params in proposed.items()],
    })
    if len(proposed) < settings["size"]:
        print(f"Round {index}: the sampler proposed only {len(proposed)} new trials of the {settings['size']} "
              "asked for; the space holds few combinations that were not tried yet.")
    return proposed
