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
# With halving: the rung a trial reached (0 = the first) and the epochs it trained in all.
HALVING_COLUMNS = ["rung", "epochs"]


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
    """Records best first: ok trials by the epochs they trained to (a halving rung: the furthest
    first), then objective; then diverged, then failed; ties by trial id."""
    sign = -1.0 if Direction(objective["direction"]) is Direction.MAX else 1.0

    def key(record):
        value = objective_value(record, objective, source)
        status = _STATUS_ORDER[Status(record["status"])]
        return (status, -epochs_target(record), sign * value if value is not None else math.inf, record["trial_id"])

    ranked = sorted(records_, key=key)
    return [
        {**record, "rank": position, "objective_value": objective_value(record, objective, source)}
        for position, record in enumerate(ranked, 1)
    ]


def _cell(value) -> str:
    """A param value as a TSV cell: strings as they are, everything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split("\t")).replace("\n", " ")


def leaderboard_rows(
    ranked: list[dict], grid_keys: list[str], rungs: list[int] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: rank, trial id, one column per grid key, objective, status, fit s, error;
    with halving (`rungs`: the epochs each rung ends at), also the rung reached and epochs trained."""
    halving = rungs is not None and len(rungs) > 1
    fixed = FIXED_COLUMNS + HALVING_COLUMNS if halving else FIXED_COLUMNS
    param_columns = [f"param.{key}" if key in fixed else key for key in grid_keys]
    header = fixed[:2] + param_columns + fixed[2:]
    rows = []
    for record in ranked:
        value = record["objective_value"]
        row = (
            [str(record["rank"]), record["trial_id"]]
            + [_cell(record["params"].get(key)) if key in record["params"] else "" for key in grid_keys]
            + [
                "" if value is None else repr(value),
                record["status"],
                f"{record['fit_seconds']:.2f}",
                _cell(record["error"] or ""),
            ]
        )
        if halving:
            row += [str(rungs.index(epochs_target(record))), str(record["epochs_run"])]
        rows.append(row)
    return header, rows


def write_leaderboard(metrics_paths, objective: dict, grid_keys: list[str], path, source="the config", rungs=None):
    """Rank the trials whose metrics.json files are given and write the leaderboard TSV."""
    ranked = rank([records.read_json(p) for p in metrics_paths], objective, source)
    header, rows = leaderboard_rows(ranked, grid_keys, rungs)
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    records.write_text(path, "\n".join(lines) + "\n")
    return ranked


def best(leaderboard_path, objective: dict, source="the config", rungs=None) -> dict:
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
    record = records.read_json(row_dir(Path(leaderboard_path).parent / "trials", rows[0], rungs) / "metrics.json")
    return {
        "trial_id": winner_id,
        "objective": {
            "metric": objective["metric"],
            "direction": objective["direction"],
            "value": objective_value(record, objective, source),
        },
        "params": record["params"],
    }


def write_best(leaderboard_path, objective: dict, path, source="the config", rungs=None) -> dict:
    winner = best(leaderboard_path, objective, source, rungs)
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


def record_dir(trial_dir, epochs: int, rungs: list[int]) -> Path:
    """Where a trial's record at the rung ending at `epochs` lives: the trial's own folder for the
    last rung (as for a trial trained straight through), `rungs/<epochs>/` in it for earlier ones."""
    trial_dir = Path(trial_dir)
    return trial_dir if epochs == rungs[-1] else trial_dir / "rungs" / str(epochs)


def row_dir(trials_dir, row: dict, rungs: list[int] | None = None) -> Path:
    """The folder of a leaderboard row's record: with halving, that of the rung the trial reached."""
    trial_dir = Path(trials_dir) / row["trial_id"]
    if rungs and row.get("rung"):
        return record_dir(trial_dir, rungs[int(row["rung"])], rungs)
    return trial_dir


def read_leaderboard(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
