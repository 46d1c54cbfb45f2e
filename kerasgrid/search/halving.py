"""Successive halving: every candidate trains a few epochs; only the best go on, eta times fewer
at each rung, until the last rung trains the full budget.

Rungs end at `min_epochs * eta**k` epochs (1, 3, 9, ... for eta 3), the last at `budget.epochs`.
A trial promoted to the next rung continues from where it stopped (kerasgrid.trial.resume), so no
epoch is trained twice and a trial that reaches the last rung ends exactly where training it
straight through would have.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from kerasgrid import records
from kerasgrid.errors import Status
from kerasgrid.results.ranking import rank
from kerasgrid.trial.resume import META, remove_state


@dataclass(frozen=True)
class FullBudget:
    """Every candidate trains the whole budget: one rung."""

    def rungs(self, epochs: int) -> list[int]:
        return [epochs]

    def promote(self, records: list[dict], entrants: int, objective: dict) -> list[str]:
        return []


@dataclass(frozen=True)
class Halving:
    eta: int = 3
    min_epochs: int = 1
    # Hyperband's brackets (kerasgrid.search.hyperband): None for one per rung.
    brackets: int | None = None

    def rungs(self, epochs: int) -> list[int]:
        ends = []
        end = self.min_epochs
        while end < epochs:
            ends.append(end)
            end *= self.eta
        return ends + [epochs]

    def keep(self, entrants: int) -> int:
        """How many of a rung's `entrants` go on to the next rung."""
        return math.ceil(entrants / self.eta)

    def entrants(self, size: int, rungs: int, start: int = 0) -> list[int]:
        """How many of `size` candidates entering at rung `start` at most train in each rung from
        there to the last of `rungs`: what `kerasgrid check` reports and the time left is counted from."""
        found = [size]
        for _ in range(start + 1, rungs):
            found.append(self.keep(found[-1]))
        return found

    def promote(self, records: list[dict], entrants: int, objective: dict) -> list[str]:
        """The ids of the best `keep(entrants)` records that ended ok (ties broken by trial id)."""
        ranked = rank(records, objective)
        ok = [record["trial_id"] for record in ranked if record["status"] == Status.OK.value]
        return ok[: self.keep(entrants)]


def previous_rung(epochs: int, rungs: list[int]) -> int | None:
    index = rungs.index(epochs)
    return rungs[index - 1] if index else None


def has_state(folder) -> bool:
    """Whether a run left a whole state in `folder` to continue from (its state.json is written last)."""
    return (Path(folder) / META).is_file()


def expected_seconds(record_path, epochs: int) -> float:
    """How long continuing a trial to `epochs` should take: its seconds per epoch in the rung
    before (whose record is at `record_path`), times the epochs to go; 0 if that record is not
    there (yet) or measured nothing."""
    try:
        record = records.read_json(record_path)
        trained = record["epochs_run"] - record.get("resumed_from_epoch", 0)
        return record["fit_seconds"] / trained * (epochs - record["epochs_run"]) if trained > 0 else 0.0
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def write_promotions(record_paths, objective: dict, schedule: Halving, epochs: int, path, *, keep_states: bool,
                     kept=()):
    """Decide who trains on to `epochs` from the records of the rung before; write it to `path`.

    The states of the entrants not promoted are removed (unless `keep_states`, or the trial is in
    `kept`: a later bracket continues it): they would only be resumed if a later change of the
    candidates promoted them, and then training from the start gives the same result.
    """
    entries = [records.read_json(p) for p in record_paths]
    entrants = len({entry["trial_id"] for entry in entries})  # with repeats, a trial has a record per seed
    promoted = schedule.promote(entries, entrants, objective)
    ranked = rank(entries, objective)
    records.write_json(path, {
        "epochs": epochs,
        "entrants": entrants,
        "promoted": promoted,
        "ranked": [
            {"trial_id": r["trial_id"], "status": r["status"], "objective": r["objective_value"]} for r in ranked
        ],
    })
    if not keep_states:
        chosen = set(promoted) | set(kept)
        for record_path, entry in zip(record_paths, entries):
            if entry["trial_id"] not in chosen:
                remove_state(Path(record_path).parent)
    return promoted
