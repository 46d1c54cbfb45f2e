"""The rounds of an adaptive search: their sizes and seeds, and the files that record them.

`search.trials` trials are proposed in rounds of `search.batch`: ceil(trials / batch) rounds, the
last one holding the rest. The workflow's `propose` checkpoint writes round i's file,
results/rounds/<i>.json, from the records of rounds 0 to i-1 once they are all finished:

    {"round": i, "strategy": "tpe", "seed": <the sampler's seed>,
     "told": [{"trial_id": ..., "status": "ok" | "failed" | "diverged", "objective": ... or null}, ...],
     "proposals": [{"trial_id": ..., "params": {...}}, ...]}

`told` is the history as the sampler got it, in order; `proposals` are the round's trials in the
order proposed. These files and the trials' own records are the whole state of a search: no
database, no process to keep alive.
"""

import functools
import hashlib
import os
from pathlib import Path

from kerasgrid import records
from kerasgrid.results.ranking import objective_value
from kerasgrid.results.repeats import combine
from kerasgrid.search import ADAPTIVE_SAMPLERS
from kerasgrid.search.base import Observation
from kerasgrid.search.space import parse_space
from kerasgrid.sweep.grid import canonical


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


def observations(round_paths, record_paths, objective: dict, source: str = "the config") -> list[Observation]:
    """The trials of these rounds as a sampler is told them, in the order they were proposed. With
    repeats a trial has a record per seed: it is told their mean, and failed if any seed was not ok
    (kerasgrid.results.repeats.combine)."""
    read = [records.read_json(path) for path in record_paths]
    by_id = {entry["trial_id"]: entry for entry in combine(read, [objective_value(r, objective, source) for r in read])}
    return [
        Observation(trial, by_id[trial]["params"], by_id[trial]["status"], by_id[trial]["objective_value"])
        for trial in proposal_order(round_paths)
    ]


def write_round(round_paths, record_paths, settings: dict, index: int, path) -> dict[str, dict]:
    """Propose round `index` from the rounds before it (their files and their trials' records)
    and write its file. `settings` is the sweep's `Sweep.round_settings(index)`."""
    space = parse_space(settings["grid"], "the round's settings")
    objective = settings["objective"]
    history = observations(round_paths, record_paths, objective)
    seed = round_seed(settings["seed"], index)
    sampler = ADAPTIVE_SAMPLERS[settings["strategy"]]()
    proposed = sampler.propose(space, history, settings["size"], seed, objective["direction"])
    records.write_json(path, {
        "round": index,
        "strategy": settings["strategy"],
        "seed": seed,
        "told": [{"trial_id": o.trial_id, "status": o.status, "objective": o.value} for o in history],
        "proposals": [{"trial_id": trial, "params": params} for trial, params in proposed.items()],
    })
    if len(proposed) < settings["size"]:
        print(f"Round {index}: the sampler proposed only {len(proposed)} new trials of the {settings['size']} "
              "asked for; the space holds few combinations that were not tried yet.")
    return proposed
