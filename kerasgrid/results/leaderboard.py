"""The leaderboard of a sweep and its winner: results/leaderboard.tsv, results/best_params.yaml,
and the console lines that name the winner.

The order itself is kerasgrid.results.ranking's. Imports neither TensorFlow nor Keras, so
aggregation takes a blink.
"""

import csv
import json
import statistics
from pathlib import Path

import yaml

from kerasgrid import records
from kerasgrid.errors import NoSuccessfulTrial, Status
from kerasgrid.results import confirm, versions
from kerasgrid.results.ranking import by_front, epochs_target, metric_value, objective_value, objectives_of, rank
from kerasgrid.sweep import runs
from kerasgrid.trial import reasons

# reason: why a trial did not finish ok, in a line (kerasgrid.trial.reasons); error: the whole error.
FIXED_COLUMNS = ["rank", "trial_id", "objective", "status", "fit_seconds", "reason", "error"]
# With halving: the bracket where a trial went furthest (0 = the first, which starts at min_epochs),
# the rung it reached there (0 = the first) and the epochs it trained in all.
HALVING_COLUMNS = ["bracket", "rung", "epochs"]
# Without halving, when a callback of the user's stopped a trial early: the epochs each trained.
EPOCHS_COLUMN = "epochs"
# With several objectives or constraints: the trial's Pareto front (1: none beats it on every
# objective), whether it keeps every constraint, then a column per objective (its metric's name).
FRONT_COLUMNS = ["pareto_rank", "feasible"]
# With adaptive search: the round that proposed the trial (0 = the first).
ROUND_COLUMN = "round"
# With repeats: the standard deviation of the objective over the seeds (objective is their mean),
# and how many seeds ran.
REPEAT_COLUMNS = ["std", "seeds"]
# With confirm: whether the row's objective is its confirmation's (yes for the finalists), and
# its rank and objective in the tuning.
CONFIRM_COLUMNS = ["confirmed", "tuning_rank", "tuning_objective"]
# A grid key a trial does not have (a key of a `choose` branch it did not take): "not applicable",
# the same in the TSV, the console, the plots and the web page. pandas reads it as missing (NaN).
ABSENT = "n/a"


def _cell(value) -> str:
    """A param value as a TSV cell: strings as they are, everything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split("\t")).replace("\n", " ")


def param_text(params: dict, key: str) -> str:
    """A trial's value of a grid key as every table and figure shows it: `_cell`, or ABSENT."""
    return _cell(params[key]) if key in params else ABSENT


def _number(value) -> str:
    return "" if value is None else repr(value)


def _yes_no(value) -> str:
    return "" if value is None else "yes" if value else "no"


def objective_columns(objectives: list[dict], taken: list[str]) -> list[str]:
    """A column per objective, named by its metric, or objective.<metric> where that name is taken."""
    return [o["metric"] if o["metric"] not in taken else f"objective.{o['metric']}" for o in objectives]


def leaderboard_rows(
    ranked: list[dict], grid_keys: list[str], rungs: list[int] | None = None, rounds: dict[str, int] | None = None,
    repeats: int = 1, confirmed: bool = False, objectives: list[dict] | None = None,
    brackets: dict[str, int] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: rank, trial id, one column per grid key, objective, status, fit s, reason, error;
    with adaptive search (`rounds`: trial id -> round), the round that proposed each trial; with
    halving (`rungs`: the epochs each rung ends at), also the bracket (`brackets`: trial id -> its
    bracket; 0 if not given), the rung reached and epochs trained;
    with `repeats` above 1, the std over seeds and their count (objective is the mean); with
    `confirmed` (a confirm.merge ranking), whether the row was confirmed and its tuning rank and
    objective; if a trial's callbacks stopped it early (without halving), the epochs each trained;
    ranked by Pareto front (`objectives`: every objective), FRONT_COLUMNS and each objective's value."""
    halving = rungs is not None and len(rungs) > 1
    stopped = not halving and any(record.get("stopped_early") for record in ranked)
    front = bool(objectives) and any("pareto_rank" in record for record in ranked)
    fixed = (FIXED_COLUMNS + [ROUND_COLUMN] * bool(rounds) + HALVING_COLUMNS * halving
             + REPEAT_COLUMNS * (repeats > 1) + CONFIRM_COLUMNS * confirmed + [EPOCHS_COLUMN] * stopped
             + FRONT_COLUMNS * front)
    param_columns = [f"param.{key}" if key in fixed else key for key in grid_keys]
    measured = objective_columns(objectives, fixed + param_columns) if front else []
    header = fixed[:2] + param_columns + fixed[2:] + measured
    rows = []
    for record in ranked:
        value = record["objective_value"]
        row = (
            [str(record["rank"]), record["trial_id"]]
            + [param_text(record["params"], key) for key in grid_keys]
            + [
                _number(value),
                record["status"],
                f"{record['fit_seconds']:.2f}",
                _cell(reasons.of_record(record) or ""),
                _cell(record["error"] or ""),
            ]
        )
        if rounds:
            row.append(str(rounds.get(record["trial_id"], "")))  # summary: a trial of no round (a grid's before)
        if halving:
            tuning = record.get("tuning", record)  # a confirmation has no rungs: the tuning's
            bracket = (brackets or {}).get(record["trial_id"], 0)
            row += [str(bracket), str(rungs.index(epochs_target(tuning))), str(tuning["epochs_run"])]
        if repeats > 1:
            row += [_number(record.get("objective_std")), str(record.get("runs", 1))]
        if confirmed:
            tuning = record["tuning"]
            row += ["yes" if record["confirmed"] else "no", str(tuning["rank"]), _number(tuning["objective_value"])]
        if stopped:
            row.append(str(record.get("epochs_run", "")))
        if front:
            row += [_number(record.get("pareto_rank")), _yes_no(record.get("feasible"))]
            row += [_number(value) for value in record.get("objective_values") or [None] * len(measured)]
        rows.append(row)
    return header, rows


def leaderboard_table(
    found: list[dict], objective: dict, grid_keys: list[str], source="the config", rungs=None, rounds=None,
    repeats: int = 1, confirmations: list[dict] | None = None, brackets=None,
) -> tuple[list[dict], list[str], list[list[str]]]:
    """The ranking of the records `found` (metrics.json's) and the leaderboard's header and rows
    (`leaderboard_rows`): what results/leaderboard.tsv holds and `kerasgrid summary` prints, one
    function for both. `confirmations` (with confirm): the finalists' records, which rank them first."""
    ranked = rank(found, objective, source)
    if confirmations is not None:
        ranked = confirm.merge(ranked, rank(confirmations, objective, source), objective)
    header, rows = leaderboard_rows(ranked, grid_keys, rungs, rounds, repeats, confirmed=confirmations is not None,
                                    objectives=objectives_of(objective), brackets=brackets)
    return ranked, header, rows


def write_leaderboard(
    metrics_paths, objective: dict, grid_keys: list[str], path, source="the config", rungs=None, rounds=None,
    repeats: int = 1, confirmed_paths=None, brackets=None,
):
    """Rank the trials whose metrics.json files are given and write the leaderboard TSV
    (`leaderboard_table`); the ranking.

    `confirmed_paths` (with confirm): the finalists' confirmation records, which rank them first.
    """
    confirmations = None if confirmed_paths is None else [records.read_json(p) for p in confirmed_paths]
    ranked, header, rows = leaderboard_table([records.read_json(p) for p in metrics_paths], objective, grid_keys,
                                             source, rungs, rounds, repeats, confirmations, brackets)
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    records.write_text(path, "\n".join(lines) + "\n")
    return ranked


def best(leaderboard_path, objective: dict, source="the config", rungs=None, seeds=None, fraction: float = 1) -> dict:
    """The winner of a written leaderboard: params, id and objective; NoSuccessfulTrial if none.

    With repeats (`seeds`: the seeds of every combination, the config's first), the objective is
    the mean over them and `repeats` lists each; with confirm, `confirmed` and `confirmation` say
    how the tuning's ranking of the finalists held up (`fraction`: data.fraction, for the words).
    """
    rows = read_leaderboard(leaderboard_path)
    if not rows or rows[0]["status"] != Status.OK.value:
        errors = sorted({reasons.of_row(row) for row in rows})
        raise NoSuccessfulTrial(
            f"All {len(rows)} trials failed or diverged, so there is no best model. "
            f"{leaderboard_path} lists them and logs/trials/<id>.log holds each trial's output. "
            f"The errors: {'; '.join(errors)[:2000]}"
        )
    finalists = [row for row in rows if row.get("confirmed") == "yes"]
    if "confirmed" in rows[0] and rows[0]["confirmed"] != "yes":
        errors = sorted({row["error"] for row in finalists if row["error"]})
        raise NoSuccessfulTrial(
            f"None of the {len(finalists)} finalists finished ok when confirmed, so there is no confirmed winner. "
            f"{leaderboard_path} lists them (confirmed: yes) and logs/confirm/<id>.log holds each confirmation's "
            f"output. The errors: {'; '.join(errors)[:2000]}"
        )
    if rows[0].get("feasible") == "no":
        ok = sum(row["status"] == Status.OK.value for row in rows)
        raise NoSuccessfulTrial(
            f"None of the {ok} trials that finished ok keeps every constraint "
            f"({'; '.join(objective.get('constraints') or [])}), so there is no best model. {leaderboard_path} "
            "lists them (feasible: no) with their objectives: loosen the constraints in the config, or widen the grid."
        )
    winner_id = rows[0]["trial_id"]
    trials_dir = Path(leaderboard_path).parent / "trials"
    # The exact values (types included) are in the trial's own records, not in the TSV.
    seeds = seeds or [None]
    runs_ = [records.read_json(row_dir(trials_dir, rows[0], rungs, seed, seeds[0]) / "metrics.json") for seed in seeds]
    values = [objective_value(record, objective, source) for record in runs_]
    winner = {
        "trial_id": winner_id,
        "objective": {
            "metric": objective["metric"],
            "direction": objective["direction"],
            "value": values[0] if len(values) == 1 else statistics.fmean(values),
        },
        "params": runs_[0]["params"],
    }
    if len(values) > 1:
        winner["repeats"] = {"seeds": seeds, "values": values, "std": statistics.stdev(values)}
    if by_front(objective):
        winner["objectives"] = [
            {**o, "value": _mean([metric_value(record, o["metric"], source) for record in runs_])}
            for o in objectives_of(objective)]
        winner["pareto_rank"] = int(rows[0]["pareto_rank"])
        winner["chosen_by"] = objective.get("winner", "first")
    if runs_[0].get("versions"):  # what it trained with: the end of a run says where the installed ones differ
        winner["versions"] = runs_[0]["versions"]
    if finalists:
        ranks = [{"tuning_rank": int(row["tuning_rank"]), "rank": int(row["rank"]), "status": row["status"]}
                 for row in finalists]
        winner["confirmed"] = True
        winner["confirmation"] = {
            "tuning_rank": int(rows[0]["tuning_rank"]),
            "tuning_objective": float(rows[0]["tuning_objective"]),
            **confirm.agreement(ranks, fraction),
        }
    return winner


def _mean(values: list):
    return values[0] if len(values) == 1 else statistics.fmean(values)


def write_best(leaderboard_path, objective: dict, path, source="the config", rungs=None, seeds=None,
               fraction: float = 1) -> dict:
    winner = best(leaderboard_path, objective, source, rungs, seeds, fraction)
    records.write_text(path, yaml.safe_dump(winner, sort_keys=False, allow_unicode=True))
    return winner


def winner_lines(best_params_path, note: bool = True) -> list[str]:
    """The console lines naming the winner, read back from best_params.yaml; first (with `note`: the
    run's last lines, not the early ones), where the versions it trained with differ from the
    installed ones, a note saying so (kerasgrid.results.versions)."""
    path = Path(best_params_path)
    if not path.exists():
        return []
    winner = yaml.safe_load(path.read_text(encoding="utf-8"))
    note = note and versions.warning(winner.get("versions"), winner["trial_id"])
    return [note] * bool(note) + format_winner(winner)


def format_winner(winner: dict) -> list[str]:
    """The lines naming a winner ({trial_id, objective, params}, as in best_params.yaml): with
    confirm, first how the tuning's ranking held up; with repeats, the objective as mean ± std."""
    objective = winner["objective"]
    spread = winner.get("repeats")
    value = f"{objective['value']:.6g}" + (
        f" ± {spread['std']:.2g} over {len(spread['seeds'])} seeds" if spread else "")
    lines = []
    if winner.get("confirmed"):
        confirmation = winner["confirmation"]
        lines.append(f"Confirmed the top {confirmation['finalists']}: {confirmation['agreement']}.")
    head = f"Best trial: {winner['trial_id']} with {objective['metric']} = {value} ({objective['direction']})"
    if winner.get("objectives"):  # several objectives: the others' values, and why this trial of the front
        head += "".join(f", {o['metric']} = {o['value']:.6g} ({o['direction']})" for o in winner["objectives"][1:])
        if len(winner["objectives"]) == 1:
            head += "; the best that keeps every constraint"
        else:
            head += "; " + ("the best on the first objective" if winner["chosen_by"] == "first" else "the knee")
            head += " of the Pareto front"
    return lines + [
        head,
        f"Best params found: {winner['params']}",
    ]


def record_dir(trial_dir, epochs: int, rungs: list[int]) -> Path:
    """Where a trial's record at the rung ending at `epochs` lives: the trial's own folder for the
    last rung (as for a trial trained straight through), `rungs/<epochs>/` in it for earlier ones."""
    trial_dir = Path(trial_dir)
    return trial_dir if epochs == rungs[-1] else trial_dir / "rungs" / str(epochs)


def row_dir(trials_dir, row: dict, rungs: list[int] | None = None, seed: int | None = None,
            base_seed: int | None = None) -> Path:
    """The folder of a leaderboard row's record (of `seed`, with repeats): its confirmation's for a
    confirmed row; with halving, that of the rung the trial reached."""
    confirmed = row.get("confirmed") == "yes"
    run = runs.run_dir(Path(trials_dir) / row["trial_id"], seed, base_seed, confirm=confirmed)
    if rungs and row.get("rung") and not confirmed:
        return record_dir(run, rungs[int(row["rung"])], rungs)
    return run


def first_front(rows: list[dict]) -> list[dict]:
    """The rows of a leaderboard's front that ranks first: ok, feasible, pareto_rank 1, at the
    furthest rung (the first row's)."""
    return [row for row in rows if row["status"] == Status.OK.value and row.get("pareto_rank") == "1"
            and row.get("feasible") == "yes" and row.get("rung", "") == rows[0].get("rung", "")]


def write_front(leaderboard_path, path) -> list[dict]:
    """results/pareto.tsv: the leaderboard's `first_front`, with its columns; the rows."""
    rows = read_leaderboard(leaderboard_path)
    front = first_front(rows)
    header = list(rows[0]) if rows else []
    records.write_text(path, "\n".join("\t".join(line) for line in [header] + [[row[k] for k in header] for row in front]) + "\n")
    return front


def read_leaderboard(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
