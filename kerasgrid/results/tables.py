"""The leaderboard as people read it: an aligned console table and a web page for the report.

Both take the leaderboard's rows as dicts of strings (`leaderboard.read_leaderboard`), so the console,
`kerasgrid summary` and the report show the same thing.
"""

import html
import json

from kerasgrid import records
from kerasgrid.errors import Direction, Status
from kerasgrid.fraction import describe_draw
from kerasgrid.results import confirm
from kerasgrid.results.leaderboard import (
    CONFIRM_COLUMNS, FRONT_COLUMNS, HALVING_COLUMNS, REPEAT_COLUMNS, ROUND_COLUMN, first_front, read_leaderboard,
)
from kerasgrid.trial import reasons

# A grid value longer than this is cut in the console (the TSV and the web page keep it whole).
MAX_CELL = 24
# Failed and diverged trials named on the console at the end of a run; the TSV has them all.
MAX_FAILURES = 10
# The web page lists this many trials at most; the TSV has them all.
MAX_PAGE_ROWS = 1000


def better(direction: str) -> str:
    return "lower is better" if Direction(direction) is Direction.MIN else "higher is better"


def _short(text: str, width: int = MAX_CELL) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(cell: str) -> str:
    return f"{float(cell):.6g}" if cell else "-"


def _objective(row: dict) -> str:
    """The objective cell as people read it: with repeats, the mean ± the std over seeds."""
    if row.get("std"):
        return f"{float(row['objective']):.4g} ± {float(row['std']):.2g}"
    return _number(row["objective"])


def _value_text(value) -> str:
    # As the leaderboard shows values: strings as they are, anything else as JSON, on one line.
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split())


def trial_message(number: int, total: int, params: dict, trial: str) -> str:
    """A train job's console line: "Model 5 of 16: act=relu, lr=0.01, units=128 (trial 307daa763fbd)".

    Keys sorted, values cut to MAX_CELL characters (the leaderboard and params.json keep them whole).
    """
    shown = ", ".join(f"{_short(str(key))}={_short(_value_text(params[key]))}" for key in sorted(params))
    return f"Model {number} of {total}: {shown} (trial {trial})"


def param_columns(rows: list[dict]) -> list[str]:
    """The grid-key columns of a leaderboard: those between trial_id and objective."""
    header = list(rows[0]) if rows else ["rank", "trial_id", "objective"]
    return header[2 : header.index("objective")]


def search_columns(rows: list[dict]) -> list[str]:
    """The round column of an adaptive search's leaderboard, the rung and epochs columns of a
    halving sweep's (none otherwise)."""
    return [key for key in [ROUND_COLUMN, *HALVING_COLUMNS] if rows and key in rows[0]]


def extra_columns(rows: list[dict]) -> list[str]:
    """After status: `search_columns`, then repeats' seed count, with confirm whether the row was
    confirmed and its tuning rank and objective, and by Pareto front its front, whether it is
    feasible and the value of each objective but the first."""
    found = search_columns(rows) + [key for key in REPEAT_COLUMNS[1:] + CONFIRM_COLUMNS if rows and key in rows[0]]
    columns = objective_value_columns(rows)  # the front's, then the first objective's (shown already), ...
    return found + columns[:len(FRONT_COLUMNS)] + columns[len(FRONT_COLUMNS) + 1:]


def objective_value_columns(rows: list[dict]) -> list[str]:
    """By Pareto front: the front columns, then a column per objective (the leaderboard's last)."""
    if not rows or FRONT_COLUMNS[0] not in rows[0]:
        return []
    header = list(rows[0])
    return header[header.index(FRONT_COLUMNS[0]):]


def front_lines(rows: list[dict]) -> list[str]:
    """By Pareto front: the front that ranks first (its feasible, ok trials), one line a trial."""
    columns = objective_value_columns(rows)
    if not columns:
        return []
    measured = columns[len(FRONT_COLUMNS):]
    if len(measured) < 2:  # one objective and constraints: the leaderboard says it all
        return []
    front = first_front(rows)
    if not front:
        return []
    params = param_columns(rows)
    lines = [f"Pareto front: {len(front)} trial{'s' * (len(front) != 1)} that no other beats on every objective:"]
    for row in front:
        values = "  ".join(f"{key} = {_number(row[key])}" for key in measured)
        shown = ", ".join(f"{key}={_short(row[key])}" for key in params)
        lines.append(f"  {row['trial_id']}  {values}  ({shown})")
    return lines


def ranked_by(objective: dict) -> str:
    """What orders the leaderboard, as every view of it says: "val_loss (lower is better)"; with
    several objectives "Pareto front of val_loss (lower is better), params_count (...)", and with
    constraints ", those that keep ... first"."""
    objectives = objective.get("objectives") or [objective]
    by = ", ".join(f"{o['metric']} ({better(o['direction'])})" for o in objectives)
    if len(objectives) > 1:
        by = "Pareto front of " + by
    if objective.get("constraints"):
        by += ", those that keep " + " and ".join(objective["constraints"]) + " first"
    return by


def console_lines(rows: list[dict], objective: dict, top: int = 10) -> list[str]:
    """A title and the top rows as an aligned table: rank, trial id, grid keys, objective (mean ±
    std with repeats), status, and the extra columns of halving, repeats and confirm."""
    params = param_columns(rows)
    extra = extra_columns(rows)
    measured = objective_value_columns(rows)[len(FRONT_COLUMNS):]
    labels = {"tuning_objective": f"tuning_{objective['metric']}"}
    columns = ["rank", "trial_id", *params, objective["metric"], "status", *(labels.get(key, key) for key in extra)]
    shown = rows[:top]
    table = [columns] + [
        [row["rank"], row["trial_id"]]
        + [_short(row[key]) for key in params]
        + [_objective(row), row["status"]]
        + [_number(row[key]) if key == "tuning_objective" or key in measured else row[key] for key in extra]
        for row in shown
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    numbers = {"rank", objective["metric"], ROUND_COLUMN, *HALVING_COLUMNS, "seeds", "tuning_rank",
               labels["tuning_objective"], *objective_value_columns(rows)} - {"feasible"}
    right = {i for i, column in enumerate(columns) if column in numbers and (i == 0 or i >= len(params) + 2)}
    lines = [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        ).rstrip()
        for line in table
    ]
    what = f"top {len(shown)} of {len(rows)}" if len(shown) < len(rows) else f"{len(rows)}"
    return [f"Leaderboard: {what} trials by {ranked_by(objective)}", *lines]


def leaderboard_lines(leaderboard_path, objective: dict, top: int = 10) -> list[str]:
    """`console_lines` of a written leaderboard; nothing if there is none."""
    try:
        rows = read_leaderboard(leaderboard_path)
    except FileNotFoundError:
        return []
    front = front_lines(rows)
    return console_lines(rows, objective, top) + [""] * bool(front) + front


def failure_lines(rows: list[dict], listed: str = "results/leaderboard.tsv", top: int = MAX_FAILURES) -> list[str]:
    """The console's word on the trials of a leaderboard that did not finish ok: a line each, with
    why (`reasons.of_row`: "Trial <id> failed: KeyError: 'mometum' (model.py:21)"), then how many
    and where their logs are; nothing if every trial finished ok. `listed`: where they all are,
    for more than `top`."""
    bad = [row for row in rows if row["status"] != Status.OK.value]
    if not bad:
        return []
    lines = [f"Trial {row['trial_id']} {reasons.of_row(row)}" for row in bad[:top]]
    if len(bad) > top:
        lines.append(f"... {len(bad) - top} more: {listed} lists them all")
    failed = sum(row["status"] == Status.FAILED.value for row in bad)
    diverged = len(bad) - failed
    counts = f"{failed} of {len(rows)} trials failed" + (f" and {diverged} diverged" if diverged else "")
    if not failed:
        counts = f"{diverged} of {len(rows)} trials diverged"
    folders = " and ".join(sorted({"logs/confirm/" if row.get("confirmed") == "yes" else "logs/trials/"
                                   for row in bad}))
    lines.append(f"{counts}; each one's log is in {folders}, named by its trial id.")
    return lines


def leaderboard_failures(leaderboard_path) -> list[str]:
    """`failure_lines` of a written leaderboard; nothing if there is none."""
    try:
        rows = read_leaderboard(leaderboard_path)
    except FileNotFoundError:
        return []
    return failure_lines(rows, str(leaderboard_path))


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.winner { background: #eef6ee; border-left: 4px solid #2e7d32; padding: .6em 1em; margin-bottom: 1em; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.error { white-space: normal; max-width: 40em; color: #555; }
tr.rank1.ok { background: #eef6ee; font-weight: bold; }
tr.diverged td.status { color: #b26a00; font-weight: bold; }
tr.failed td.status { color: #c62828; font-weight: bold; }
.warning { color: #b26a00; font-weight: bold; }
"""


def _td(text: str, css: str = "", width: int = 60) -> str:
    title = f' title="{html.escape(text)}"' if len(text) > width else ""
    klass = f' class="{css}"' if css else ""
    return f"<td{klass}{title}>{html.escape(_short(text, width))}</td>"


def _reason_td(row: dict) -> str:
    """The page's error cell: why the trial did not finish ok in a line, as the console and the
    plots say it (kerasgrid.trial.reasons), with the whole error on hover."""
    why = reasons.of_record(row) or ""
    title = f' title="{html.escape(row["error"])}"' if row.get("error") and row["error"] != why else ""
    return f'<td class="error"{title}>{html.escape(why)}</td>'


def confirmation_sentence(rows: list[dict], fraction: float) -> str | None:
    """With confirm, how the tuning's ranking of the finalists held up (confirm.agreement), from a
    leaderboard's rows; None without confirm."""
    finalists = [
        {"tuning_rank": int(row["tuning_rank"]), "rank": int(row["rank"]), "status": row["status"]}
        for row in rows if row.get("confirmed") == "yes"
    ]
    if not rows or "confirmed" not in rows[0]:
        return None
    return confirm.agreement(finalists, fraction)["agreement"]


def _training_data_table(summary: dict) -> list[str]:
    """The draw the tuning trained on, once: in words, then per class (or bin) against the whole."""
    draw = summary["draw"]
    if draw is None:
        return []
    parts = [f"<h2>Training data</h2><p>The tuning trained on {html.escape(describe_draw(draw))}; "
             "validation used all the validation data.</p>"]
    if summary["same_draw"] < summary["recorded"]:
        parts.append(f"<p>{summary['recorded'] - summary['same_draw']} of {summary['recorded']} runs trained on "
                     "other draws; their metrics.json says which.</p>")
    if draw["strata"]:
        kind = "class" if draw["stratified_by"] == "class" else "bin"
        kept, whole = draw["examples"], draw["whole_examples"]
        parts.append(f"<table><thead><tr><th>{kind}</th><th>examples</th><th>share</th><th>of the whole</th>"
                     "<th>share of the whole</th></tr></thead><tbody>")
        for stratum in draw["strata"]:
            parts.append(
                "<tr>" + _td(stratum["label"]) + _td(str(stratum["examples"]), "num")
                + _td(f"{stratum['examples'] / kept:.2%}", "num") + _td(str(stratum["whole"]), "num")
                + _td(f"{stratum['whole'] / whole:.2%}", "num") + "</tr>"
            )
        parts.append("</tbody></table>")
    for warning in summary["warnings"]:
        parts.append(f'<p class="warning">Not representative: {html.escape(warning)}.</p>')
    return parts


def _other_objectives(row: dict, objective: dict) -> str:
    """By Pareto front, after the first objective's value: every other one's and the row's front."""
    if not row.get(FRONT_COLUMNS[0]):
        return ""
    measured = objective_value_columns([row])[len(FRONT_COLUMNS) + 1:]
    objectives = (objective.get("objectives") or [objective])[1:]
    shown = "".join(f", {o['metric']} = {_number(row[key])} ({better(o['direction'])})"
                    for o, key in zip(objectives, measured))
    return f"{shown}; Pareto front {row[FRONT_COLUMNS[0]]}"


def page(rows: list[dict], objective: dict, title: str = "kerasgrid leaderboard", training_data: dict | None = None,
         fraction: float = 1) -> str:
    """A self-contained HTML page: the winner, then every trial best first, failures marked; with
    confirm, both rankings side by side and how well they agree; with data.fraction,
    `training_data` (fraction.summarise) as a table."""
    params = param_columns(rows)
    metric = html.escape(objective["metric"])
    counts = {status: sum(row["status"] == status.value for row in rows) for status in Status}
    parts = [
        "<!DOCTYPE html>",
        f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    confirmed = confirmation_sentence(rows, fraction)
    if rows and rows[0]["status"] == Status.OK.value and rows[0].get("confirmed", "yes") == "yes" \
            and rows[0].get("feasible") != "no":
        best = rows[0]
        settings = ", ".join(f"{html.escape(k)} = {html.escape(_short(best[k], 80))}" for k in params)
        parts.append(
            f'<div class="winner">Winner: trial <code>{html.escape(best["trial_id"])}</code> with '
            f"{metric} = <b>{html.escape(_objective(best))}</b> ({better(objective['direction'])})"
            f"{html.escape(_other_objectives(best, objective))}<br>{settings}</div>"
        )
    else:
        parts.append('<div class="winner">No trial finished ok, so there is no winner.</div>')
    summary = ", ".join(f"{counts[s]} {s.value}" for s in Status if counts[s])
    parts.append(f"<p>{len(rows)} trials ({summary}), ranked by {html.escape(ranked_by(objective))}; "
                 "diverged and failed trials come last.</p>")
    if confirmed is not None:
        parts.append(
            "<p>The finalists (confirmed: yes) trained again on all the data and are ranked by that; every other "
            "trial keeps its tuning rank. tuning_rank and tuning_objective are the tuning's ranking, side by side "
            f"with the final one: <b>{html.escape(confirmed)}</b>.</p>"
        )
    extra = extra_columns(rows)
    columns = ["rank", "trial_id", *params, objective["metric"], "status", *extra, "fit_seconds", "error"]
    parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr></thead><tbody>")
    for row in rows[:MAX_PAGE_ROWS]:
        status = row["status"]
        css = f"rank{row['rank']} {status}"
        cells = (
            [_td(row["rank"], "num"), _td(row["trial_id"])]
            + [_td(row[key]) for key in params]
            + [_td(_objective(row), "num"), _td(status, "status")]
            + [_td(_number(row[key]) if key == "tuning_objective" else row[key], "num") for key in extra]
            + [_td(row["fit_seconds"], "num"), _reason_td(row)]
        )
        parts.append(f'<tr class="{html.escape(css)}">' + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if len(rows) > MAX_PAGE_ROWS:
        parts.append(f"<p>The first {MAX_PAGE_ROWS} of {len(rows)} trials; results/leaderboard.tsv lists them all.</p>")
    if training_data:
        parts += _training_data_table(training_data)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_page(leaderboard_path, objective: dict, path, training_data=None, fraction: float = 1) -> None:
    """The leaderboard's web page (`page`) for results/leaderboard.html; `training_data`: the path of
    results/training_data.json, with data.fraction."""
    summary = records.read_json(training_data) if training_data else None
    records.write_text(path, page(read_leaderboard(leaderboard_path), objective, training_data=summary,
                                  fraction=fraction))
