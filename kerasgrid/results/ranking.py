"""The order of finished trials: the one ranking that the leaderboard, the finalists, halving's
promotions and an adaptive search's rounds all use, so that they never disagree.

The objective they are given is the config's: `{metric, direction}` for one objective. With
several (`objective` a list in the config) or with `constraints`, it also holds `objectives` (the
list, the first one being `metric` and `direction`), `constraints` (their texts) and `winner`
(kerasgrid.results.pareto.WINNER_RULES); the ranking is then by Pareto front.
"""

import math

from kerasgrid.errors import ConfigError, Direction, Status
from kerasgrid.results import pareto, repeats

_STATUS_ORDER = {Status.OK: 0, Status.DIVERGED: 1, Status.FAILED: 2}


def objectives_of(objective: dict) -> list[dict]:
    """Every objective, the first first: [{metric, direction}, ...]."""
    return objective.get("objectives") or [{"metric": objective["metric"], "direction": objective["direction"]}]


def constraints_of(objective: dict, source: str = "the config") -> list[pareto.Constraint]:
    return [pareto.parse_constraint(text, i, source) for i, text in enumerate(objective.get("constraints") or [])]


def by_front(objective: dict) -> bool:
    """Whether trials are ranked by Pareto front (several objectives, or constraints)."""
    return len(objectives_of(objective)) > 1 or bool(objective.get("constraints"))


def metric_value(record: dict, metric: str, source: str = "the config", key: str = "objective.metric"):
    """The record's final value of `metric`: a metric its model logged, or a measure
    (kerasgrid.results.pareto.MEASURES). ConfigError naming `key` if it has neither."""
    if metric in record["metrics"]:
        return record["metrics"][metric]["final"]
    measures = record.get("measures") or {}
    if metric in measures:
        return measures[metric]
    logged = ", ".join(sorted(record["metrics"])) or "nothing"
    if metric in pareto.MEASURES:
        raise ConfigError(
            f"{source}: {key} is '{metric}', but trial {record['trial_id']} was trained before kerasgrid "
            f"measured {metric}. Retrain it (snakemake --forcerun train), or rank on what it logged: {logged}."
        )
    raise ConfigError(
        f"{source}: {key} is '{metric}', but trial {record['trial_id']} logged only: {logged}. "
        f"Set {key} to one of these, or to one of kerasgrid's measures ({', '.join(pareto.MEASURES)})."
    )


def objective_value(record: dict, objective: dict, source: str = "the config"):
    """The record's value of the (first) objective, or None if the trial did not finish ok."""
    if record["status"] != Status.OK.value:
        return None
    return metric_value(record, objective["metric"], source)


def epochs_target(record: dict) -> int:
    """The epochs a record's run was to reach: its rung's with halving, else the budget's."""
    return record.get("epochs_target") or (record.get("budget") or {}).get("epochs", 0)


def _sign(direction: str) -> float:
    return -1.0 if Direction(direction) is Direction.MAX else 1.0


def rank(records_: list[dict], objective: dict, source: str = "the config") -> list[dict]:
    """Trials best first: ok trials by the epochs they trained to (a halving rung: the furthest
    first), then objective; then diverged, then failed; ties by trial id. A trial with several
    records (one per seed, with repeats) is one entry, ranked by their mean (repeats.combine).

    By Pareto front (`by_front`): among ok trials of the same epochs, the feasible ones (that keep
    every constraint) first, then by front (`pareto_rank`, 1 the best), within a front by the
    first objective, then the next; with `winner: knee`, the knee of the first front first. Each
    entry then has `objective_values` (one per objective, means with repeats), `pareto_rank` and
    `feasible` (None unless ok)."""
    entries = repeats.combine(records_, [objective_value(record, objective, source) for record in records_])
    if not by_front(objective):
        sign = _sign(objective["direction"])

        def key(entry):
            value = entry["objective_value"]
            status = _STATUS_ORDER[Status(entry["status"])]
            return (status, -epochs_target(entry), sign * value if value is not None else math.inf, entry["trial_id"])

        return [{**entry, "rank": position} for position, entry in enumerate(sorted(entries, key=key), 1)]
    return _rank_by_front(records_, entries, objective, source)


def metric_means(records_: list[dict], metric: str, source: str, key: str) -> dict[str, float | None]:
    """Each trial's value of `metric` (the mean over its seeds), None unless ok."""
    values = [metric_value(r, metric, source, key) if r["status"] == Status.OK.value else None for r in records_]
    return {entry["trial_id"]: entry["objective_value"] for entry in repeats.combine(records_, values)}


def _rank_by_front(records_: list[dict], entries: list[dict], objective: dict, source: str) -> list[dict]:
    objectives = objectives_of(objective)
    constraints = constraints_of(objective, source)
    signs = [_sign(o["direction"]) for o in objectives]
    values = [metric_means(records_, o["metric"], source, f"objective[{i}].metric") if i else None
              for i, o in enumerate(objectives)]
    bounds = [metric_means(records_, c.metric, source, f"constraints[{i}]") for i, c in enumerate(constraints)]
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:
        ok = entry["status"] == Status.OK.value
        entry["objective_values"] = [entry["objective_value"]] + [v[entry["trial_id"]] for v in values[1:]]
        entry["feasible"] = all(c.holds(b[entry["trial_id"]]) for c, b in zip(constraints, bounds)) if ok else None
        entry["pareto_rank"] = None
        entry["knee"] = False
        if ok:
            groups.setdefault((epochs_target(entry), entry["feasible"]), []).append(entry)
    for (_, feasible), group in groups.items():
        points = [tuple(s * v for s, v in zip(signs, e["objective_values"])) for e in group]
        for entry, front in zip(group, pareto.pareto_ranks(points)):
            entry["pareto_rank"] = front
    if objective.get("winner") == "knee":  # the knee of the front that ranks first
        best = min(groups, key=lambda g: (-g[0], not g[1]), default=None)
        if best is not None:
            front = sorted((e for e in groups[best] if e["pareto_rank"] == 1), key=lambda e: e["trial_id"])
            points = [tuple(s * v for s, v in zip(signs, e["objective_values"])) for e in front]
            front[pareto.knee(points)]["knee"] = True

    def key(entry):
        status = _STATUS_ORDER[Status(entry["status"])]
        if status:
            return (status, -epochs_target(entry), True, 0, True, (), entry["trial_id"])
        return (status, -epochs_target(entry), not entry["feasible"], entry["pareto_rank"], not entry["knee"],
                tuple(s * v for s, v in zip(signs, entry["objective_values"])), entry["trial_id"])

    return [{**entry, "rank": position} for position, entry in enumerate(sorted(entries, key=key), 1)]
