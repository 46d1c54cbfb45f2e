"""results/plots/pareto.png: with several objectives, every trial on the objectives' axes (a panel
per pair when there are more than two), the front that ranks first drawn as a staircase and each of
its trials marked with its leaderboard rank, which a key under the panels spells out with every
param that varies, infeasible trials as crosses.

Reads the leaderboard only (its front and objective columns): no TensorFlow.
"""

import itertools
import math
import textwrap

from kerasgrid.errors import Direction, Status
from kerasgrid.results.leaderboard import FRONT_COLUMNS, read_leaderboard
from kerasgrid.results.plots import _figure, save
from kerasgrid.results.tables import param_columns

# A param's value in the key is cut to this many characters (the leaderboard has it whole).
LABEL = 22
# At most this many of the front's points are marked and in the key (in the leaderboard's order).
LABELLED = 12


def _value(cell: str) -> float | None:
    return float(cell) if cell not in ("", None) and math.isfinite(float(cell)) else None


def front_figure(rows: list[dict], objectives: list[dict]):
    """The figure of a by-front leaderboard's `rows`, `objectives` in the config's order."""
    header = list(rows[0]) if rows else []
    columns = header[header.index(FRONT_COLUMNS[-1]) + 1:] if FRONT_COLUMNS[-1] in header else []
    # The params that tell trials apart (those with one value throughout say nothing).
    params = [key for key in param_columns(rows) if len({row[key] for row in rows}) > 1] or param_columns(rows)
    ok = [row for row in rows if row["status"] == Status.OK.value
          and all(_value(row[c]) is not None for c in columns) and row.get("rung", "") == rows[0].get("rung", "")]
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    width = (6.4 if len(pairs) == 1 else 5.2) * min(len(pairs), 3)
    front = [row for row in ok if row["pareto_rank"] == "1" and row["feasible"] == "yes"]
    key = front_key(front[:LABELLED], params, int(13 * width))
    figure = _figure(width, 4.8 * math.ceil(len(pairs) / 3) + 0.16 * len(key) + 0.3 * bool(key))
    panels, below = figure.subfigures(2, 1, height_ratios=[4.8 * math.ceil(len(pairs) / 3), 0.16 * len(key) + 0.3])
    axes = panels.subplots(math.ceil(len(pairs) / 3), min(len(pairs), 3), squeeze=False).ravel()
    if key:
        below.text(0.01, 1.0, "\n".join(key), va="top", ha="left", fontsize=8, family="monospace")
    for ax, (i, j) in zip(axes, pairs):
        for kind, chosen, style in (
            ("behind the front", [r for r in ok if r not in front and r["feasible"] == "yes"],
             {"color": "0.6", "marker": "o", "s": 22}),
            ("infeasible", [r for r in ok if r["feasible"] == "no"], {"color": "#c62828", "marker": "x", "s": 30}),
            ("Pareto front", front, {"color": "#1565c0", "marker": "o", "s": 40, "zorder": 3}),
        ):
            if chosen:
                ax.scatter([_value(r[columns[i]]) for r in chosen], [_value(r[columns[j]]) for r in chosen],
                           label=f"{kind} ({len(chosen)})", **style)
        # The front of this pair: a staircase through the points no other beats on these two.
        signs = [-1.0 if Direction(objectives[k]["direction"]) is Direction.MAX else 1.0 for k in (i, j)]
        points = sorted({(_value(r[columns[i]]), _value(r[columns[j]])) for r in front},
                        key=lambda p: (signs[0] * p[0], signs[1] * p[1]))
        stairs, best = [], math.inf
        for x, y in points:
            if signs[1] * y < best:
                stairs.append((x, y))
                best = signs[1] * y
        if front and front[0] is rows[0]:  # the winner
            ax.scatter([_value(rows[0][columns[i]])], [_value(rows[0][columns[j]])], marker="*", s=220,
                       facecolor="none", edgecolor="#2e7d32", linewidth=1.5, zorder=4, label="winner")
        if len(stairs) > 1:
            ax.step([p[0] for p in stairs], [p[1] for p in stairs], where="post", color="#1565c0", alpha=0.5)
        for row in front[:LABELLED]:
            ax.annotate(f"#{row['rank']}", (_value(row[columns[i]]), _value(row[columns[j]])), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        for axis, k in ((ax.set_xlabel, i), (ax.set_ylabel, j)):
            axis(f"{objectives[k]['metric']} ({'lower' if signs[[i, j].index(k)] > 0 else 'higher'} is better)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    title = (f"Pareto front of {len(ok)} trials that finished ok: {len(front)} no other beats on every objective "
             "(#: its rank in the leaderboard)")
    figure.suptitle("\n".join(textwrap.wrap(title, int(14 * width))), fontsize=10)
    return figure


def front_key(front: list[dict], params: list[str], width: int) -> list[str]:
    """The lines under the panels that say which trial each `#rank` is: its id and every param in
    `params` (a key the trial does not have as the leaderboard shows it), wrapped, never cut."""
    lines = []
    for row in front:
        settings = ", ".join(f"{k}={_short(row[k])}" for k in params)
        head = f"#{row['rank']} {row['trial_id'][:8]}: "
        wrapped = textwrap.wrap(settings, max(20, width - len(head)), break_long_words=False, break_on_hyphens=False)
        lines += [head + wrapped[0], *(" " * len(head) + line for line in wrapped[1:])] if wrapped else [head]
    return [line.replace("$", r"\$") for line in lines]


def _short(cell: str) -> str:
    return cell if len(cell) <= LABEL else cell[:LABEL - 1] + "…"


def write_front_plot(leaderboard_path, objectives: list[dict], path) -> None:
    save(front_figure(read_leaderboard(leaderboard_path), objectives), path)
