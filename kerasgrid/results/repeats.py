"""Repeats: each combination trains with several seeds, and is judged by the mean over them.

One seed per combination ranks two trials whose losses differ by noise as if the difference were
real; with `repeats: 3`, every combination trains with seeds seed, seed+1 and seed+2 (each run a
cached job of its own, see kerasgrid.sweep.runs) and is ranked by the mean of its objective, shown with
the standard deviation and the count. A combination is `ok` only if every one of its seeds is: one
that diverges or fails with some seed is not a safe winner, so it takes that seed's status.
"""

import statistics

from kerasgrid.errors import Status
from kerasgrid.trial import reasons

_WORST_FIRST = [Status.FAILED.value, Status.DIVERGED.value, Status.OK.value]


def seeds(base_seed: int, repeats: int) -> list[int]:
    """The seeds of `repeats` runs: base_seed, base_seed + 1, ..."""
    return [base_seed + k for k in range(repeats)]


def combine(records: list[dict], values: list) -> list[dict]:
    """One entry per trial id, in first-seen order: the record (of its lowest seed) with
    `objective_value`, and where a trial has several runs, their mean (None unless all are ok), plus
    `objective_std`, `runs` (their count), `run_seeds` and `run_values` (by seed), the worst
    status, the first bad run's error and reason (naming its seed) and the sum of their fit seconds."""
    groups: dict[str, list[tuple[dict, object]]] = {}
    for record, value in zip(records, values):
        groups.setdefault(record["trial_id"], []).append((record, value))
    entries = []
    for runs in groups.values():
        if len(runs) == 1:
            record, value = runs[0]
            entries.append({**record, "objective_value": value})
            continue
        runs.sort(key=lambda run: run[0].get("seed", 0))
        base = runs[0][0]
        status = next(s for s in _WORST_FIRST if any(r["status"] == s for r, _ in runs))
        bad = next(((r, v) for r, v in runs if r["status"] == status), None) if status != Status.OK.value else None
        values_by_seed = [v for _, v in runs]
        entries.append({
            **base,
            "status": status,
            "error": f"seed {bad[0].get('seed')}: {bad[0]['error']}" if bad else base["error"],
            "reason": f"seed {bad[0].get('seed')}: {reasons.of_record(bad[0])}" if bad else reasons.of_record(base),
            "fit_seconds": sum(r["fit_seconds"] for r, _ in runs),
            "objective_value": statistics.fmean(values_by_seed) if status == Status.OK.value else None,
            "objective_std": statistics.stdev(values_by_seed) if status == Status.OK.value else None,
            "runs": len(runs),
            "run_seeds": [r.get("seed") for r, _ in runs],
            "run_values": values_by_seed,
        })
    return entries
