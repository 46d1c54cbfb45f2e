"""The order of finished trials: the one ranking that the leaderboard, the finalists, halving's
promotions and an adaptive search's rounds all use, so that they never disagree."""

import math

from kerasgrid.errors import ConfigError, Direction, Status
from kerasgrid.results import repeats

_STATUS_ORDER = {Status.OK: 0, Status.DIVERGED: 1, Status.FAILED: 2}


def objective_value(record: dict, objective: dict, source: str = "the config"):
    """The record's value of the current objective, or None if the trial did not finish ok."""
    if record["status"] != Status.OK.value:
        return None
    metric = objective["metric"]
    if metric not in record["metrics"]:
        logged = ", ".join(sorted(record["metrics"])) or "nothing"
        raise ConfigError(
            f"{source}: objective.metric is '{metric}', but trial {record['trial_id']} logged only: "
            f"{logged}. Set objective.metric to one of these."
        )
    return record["metrics"][metric]["final"]


def epochs_target(record: dict) -> int:
    """The epochs a record's run was to reach: its rung's with halving, else the budget's."""
    return record.get("epochs_target") or (record.get("budget") or {}).get("epochs", 0)


def rank(records_: list[dict], objective: dict, source: str = "the config") -> list[dict]:
    """Trials best first: ok trials by the epochs they trained to (a halving rung: the furthest
    first), then objective; then diverged, then failed; ties by trial id. A trial with several
    records (one per seed, with repeats) is one entry, ranked by their mean (repeats.combine)."""
    sign = -1.0 if Direction(objective["direction"]) is Direction.MAX else 1.0
    entries = repeats.combine(records_, [objective_value(record, objective, source) for record in records_])

    def key(entry):
        value = entry["objective_value"]
        status = _STATUS_ORDER[Status(entry["status"])]
        return (status, -epochs_target(entry), sign * value if value is not None else math.inf, entry["trial_id"])

    return [{**entry, "rank": position} for position, entry in enumerate(sorted(entries, key=key), 1)]
