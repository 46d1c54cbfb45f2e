"""Ranking finished trials: the leaderboard, the winner, and the console line that names it.

Imports neither TensorFlow nor Keras, so aggregation takes a blink.
"""

import csv
import json
import math
from pathlib import Path

import yaml

from kerasgrid import records
from kerasgrid.errors import ConfigError, Direction, NoSuccessfulTrial, Status

_STATUS_ORDER = {Status.OK: 0, Status.DIVERGED: 1, Status.FAILED: 2}
FIXED_COLUMNS = ["rank", "trial_id", "objective", "status", "fit_seconds", "error"]


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


def rank(records_: list[dict], objective: dict, source: str = "the config") -> list[dict]:
    """Records best first: ok trials by objective, then diverged, then failed; ties by trial id."""
    sign = -1.0 if Direction(objective["direction"]) is Direction.MAX else 1.0

    def key(record):
        value = objective_value(record, objective, source)
        status = _STATUS_ORDER[Status(record["status"])]
        return (status, sign * value if value is not None else math.inf, record["trial_id"])

    ranked = sorted(records_, key=key)
    return [
        {**record, "rank": position, "objective_value": objective_value(record, objective, source)}
        for position, record in enumerate(ranked, 1)
    ]


def _cell(value) -> str:
    """A param value as a TSV cell: strings as they are, everything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split("\t")).replace("\n", " ")


def leaderboard_rows(ranked: list[dict], grid_keys: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: rank, trial id, one column per grid key, objective, status, fit s, error."""
    param_columns = [f"param.{key}" if key in FIXED_COLUMNS else key for key in grid_keys]
    header = FIXED_COLUMNS[:2] + param_columns + FIXED_COLUMNS[2:]
    rows = []
    for record in ranked:
        value = record["objective_value"]
        rows.append(
            [str(record["rank"]), record["trial_id"]]
            + [_cell(record["params"].get(key)) if key in record["params"] else "" for key in grid_keys]
            + [
                "" if value is None else repr(value),
                record["status"],
                f"{record['fit_seconds']:.2f}",
                _cell(record["error"] or ""),
            ]
        )
    return header, rows


def write_leaderboard(metrics_paths, objective: dict, grid_keys: list[str], path, source="the config"):
    """Rank the trials whose metrics.json files are given and write the leaderboard TSV."""
    ranked = rank([records.read_json(p) for p in metrics_paths], objective, source)
    header, rows = leaderboard_rows(ranked, grid_keys)
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    records.write_text(path, "\n".join(lines) + "\n")
    return ranked


def best(leaderboard_path, objective: dict, source="the config") -> dict:
    """The winner of a written leaderboard: params, id and objective; NoSuccessfulTrial if none."""
    rows = read_leaderboard(leaderboard_path)
    if not rows or rows[0]["status"] != Status.OK.value:
        errors = sorted({row["error"] for row in rows if row["error"]})
        raise NoSuccessfulTrial(
            f"All {len(rows)} trials failed or diverged, so there is no best model. "
            f"{leaderboard_path} lists them and logs/trials/<id>.log holds each trial's output. "
            f"The errors: {'; '.join(errors)[:2000]}"
        )
    winner_id = rows[0]["trial_id"]
    # The exact values (types included) are in the trial's own record, not in the TSV.
    record = records.read_json(Path(leaderboard_path).parent / "trials" / winner_id / "metrics.json")
    return {
        "trial_id": winner_id,
        "objective": {
            "metric": objective["metric"],
            "direction": objective["direction"],
            "value": objective_value(record, objective, source),
        },
        "params": record["params"],
    }


def write_best(leaderboard_path, objective: dict, path, source="the config") -> dict:
    winner = best(leaderboard_path, objective, source)
    records.write_text(path, yaml.safe_dump(winner, sort_keys=False, allow_unicode=True))
    return winner


def winner_lines(best_params_path) -> list[str]:
    """The console lines naming the winner, read back from best_params.yaml."""
    path = Path(best_params_path)
    if not path.exists():
        return []
    return format_winner(yaml.safe_load(path.read_text(encoding="utf-8")))


def format_winner(winner: dict) -> list[str]:
    """The two lines naming a winner ({trial_id, objective, params}, as in best_params.yaml)."""
    objective = winner["objective"]
    return [
        f"Best trial: {winner['trial_id']} with {objective['metric']} = {objective['value']:.6g} "
        f"({objective['direction']})",
        f"Best params found: {winner['params']}",
    ]


def read_leaderboard(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
