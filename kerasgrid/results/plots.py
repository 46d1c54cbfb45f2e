"""Three PNG figures of a finished sweep: learning curves, each hyperparameter's effect, the ranking.

They read what the sweep left on disk (the leaderboard, and each trial's params.json and
history.csv), mark diverged and failed trials instead of dropping them, and work for one trial as
for thousands. Matplotlib is imported only when a figure is drawn (with the Agg backend: no
display needed), TensorFlow never.
"""

import csv
import io
import json
import math
import statistics
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from kerasgrid import records
from kerasgrid.errors import Status
from kerasgrid.results.leaderboard import ABSENT, FRONT_COLUMNS, read_leaderboard, row_dir
from kerasgrid.results.tables import better, objective_value_columns, ranked_by
from kerasgrid.sweep.grid import canonical
from kerasgrid.sweep.space import Range, always, branch_keys, dimensions, parse_space
from kerasgrid.trial import reasons

TOP = 5  # trials highlighted and named in the learning curves
MAX_BARS = 30  # ok trials in the ranking chart; diverged and failed ones are added after them
MAX_MARKED = 10  # diverged or failed trials named in the ranking chart
LABEL = 22  # characters of a grid value shown on an axis
TRIAL_LABEL = 48  # characters of a trial's settings on a line of its label; longer ones wrap, whole
COLOURS = ["#1b5e20", "#1f77b4", "#ff7f0e", "#9467bd", "#17becf"]  # the winner first, in green
GREY = "#9e9e9e"
STATUS_COLOURS = {Status.DIVERGED.value: "#e65100", Status.FAILED.value: "#c62828"}
DPI = 100


@dataclass(eq=False)
class Trial:
    """One leaderboard row with what the figures need: exact params and the objective per epoch."""

    rank: int
    trial_id: str
    status: str
    value: float | None
    params: dict
    curve: list[float] = field(default_factory=list)
    round: int | None = None  # the round that proposed it, in an adaptive search
    rung: int | None = None  # with halving: the rung it stopped at (0 = the first)
    bracket: int | None = None  # with Hyperband's brackets: where it went furthest
    # With repeats: the objective of each seed (value is their mean) and their std.
    seed_values: list[float] = field(default_factory=list)
    std: float | None = None
    # With confirm: whether value is the confirmation's, and the tuning's value.
    confirmed: bool = False
    tuning_value: float | None = None
    reason: str | None = None  # why it did not finish ok, in a line (kerasgrid.trial.reasons)
    # By Pareto front: the trial's front (1: none beats it), whether it keeps every constraint, and
    # each objective's value but the first's ({metric: value}), as the leaderboard has them.
    front: int | None = None
    feasible: bool | None = None
    others: dict = field(default_factory=dict)

    @property
    def tuned(self) -> float | None:
        """The objective every trial has on the same footing: the tuning's."""
        return self.tuning_value if self.confirmed else self.value


def _float(cell: str | None) -> float | None:
    return float(cell) if cell else None


def load_trials(leaderboard_path, objective: dict, trials_dir=None, rungs=None, seeds=None) -> list[Trial]:
    """The leaderboard's trials, best first, with their params.json and objective history (with
    halving, `rungs`, the history up to the rung where each stopped; with repeats, `seeds`, the
    config's first, each seed's objective and the first's history; a confirmed finalist's are its
    confirmation's)."""
    leaderboard_path = Path(leaderboard_path)
    trials_dir = Path(trials_dir) if trials_dir else leaderboard_path.parent / "trials"
    trials = []
    rows = read_leaderboard(leaderboard_path)
    others = objective_value_columns(rows)[len(FRONT_COLUMNS) + 1:]
    for row in rows:
        folder = row_dir(trials_dir, row, rungs)
        seed_values = []
        if seeds and len(seeds) > 1 and row["status"] == Status.OK.value:
            for seed in seeds:
                record = records.read_json(row_dir(trials_dir, row, rungs, seed, seeds[0]) / "metrics.json")
                seed_values.append(record["metrics"][objective["metric"]]["final"])
        trials.append(
            Trial(
                rank=int(row["rank"]),
                trial_id=row["trial_id"],
                status=row["status"],
                value=_float(row["objective"]),
                params=records.read_json(folder / "params.json"),
                curve=_curve(folder / "history.csv", objective["metric"]),
                round=int(row["round"]) if row.get("round") else None,
                rung=int(row["rung"]) if row.get("rung") else None,
                bracket=int(row["bracket"]) if row.get("bracket") else None,
                seed_values=seed_values,
                std=_float(row.get("std")),
                confirmed=row.get("confirmed") == "yes",
                tuning_value=_float(row.get("tuning_objective")),
                reason=reasons.of_record(row),
                front=int(row["pareto_rank"]) if row.get("pareto_rank") else None,
                feasible={"yes": True, "no": False}.get(row.get("feasible", "")),
                others={column: _float(row[column]) for column in others},
            )
        )
    return trials


def _curve(history_path: Path, metric: str) -> list[float]:
    """The metric per epoch from Keras' CSVLogger file; NaN where it was not finite."""
    try:
        with open(history_path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return []
    values = []
    for row in rows:
        try:
            value = float(row.get(metric) or "nan")
        except ValueError:
            value = math.nan
        values.append(value if math.isfinite(value) else math.nan)
    return values


def text(value) -> str:
    """Text for a figure: matplotlib would read a pair of `$` in a user's value as maths."""
    return str(value).replace("$", r"\$")


def value_label(value, width: int = LABEL) -> str:
    """A grid value as a category label: strings as they are, lists and the rest as JSON."""
    label = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    label = " ".join(label.split())
    return text(label if len(label) <= width else label[: width - 1] + "…")


def param_label(params: dict, key: str, width: int = LABEL) -> str:
    """A trial's value of a grid key on a figure: `value_label`, or ABSENT where the trial does not
    have the key (a branch of a `choose` it did not take), as the leaderboard shows it."""
    return value_label(params[key], width) if key in params else ABSENT


def _sort_key(value):
    # Numbers in numeric order first (1 and 1.0 are distinct trials: the int comes first), then
    # everything else in the order of its canonical JSON.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, isinstance(value, float), "")
    return (1, 0, False, canonical({"v": value}))


def categories(trials: list[Trial], key: str) -> list:
    """The distinct values of a grid key among the trials, in a stable, readable order."""
    distinct = {}
    for trial in trials:
        if key in trial.params:
            distinct.setdefault(canonical({"v": trial.params[key]}), trial.params[key])
    return sorted(distinct.values(), key=_sort_key)


def varying_keys(trials: list[Trial], grid_keys: list[str]) -> list[str]:
    """The grid keys whose value differs between trials (all of them for a single trial); a key
    that some trials do not have (a branch's) differs between those that have it and the rest."""
    varying = [key for key in grid_keys
               if len(categories(trials, key)) + any(key not in trial.params for trial in trials) > 1]
    return varying or list(grid_keys)


def trial_label(trial: Trial, keys: list[str], width: int = TRIAL_LABEL) -> str:
    """`#rank id: key=value, ...` for a legend or an axis: every key given (values cut to 12
    characters), wrapped into lines of about `width` characters rather than cut."""
    settings = ", ".join(f"{key}={param_label(trial.params, key, 12)}" for key in keys)
    name = f"#{trial.rank} {trial.trial_id[:8]}" + (f" (round {trial.round})" if trial.round is not None else "")
    if not settings:
        return f"#{trial.rank} {trial.trial_id}"
    lines = textwrap.wrap(settings, width, break_long_words=False, break_on_hyphens=False)
    return f"{name}: " + "\n".join(text(line) for line in lines)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _counts(trials: list[Trial]) -> str:
    counts = {status.value: sum(t.status == status.value for t in trials) for status in Status}
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)


def learning_curves(trials: list[Trial], objective: dict, grid_keys: list[str], rungs=None):
    """The objective per epoch of every trial: the top few in colour and named, the rest grey; with
    halving (`rungs`), a dotted line where each rung ends, where the trials not promoted stop."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    metric = text(objective["metric"])
    figure = _figure(10, 6)
    ax = figure.subplots()
    keys = varying_keys(trials, grid_keys)
    ok = [t for t in trials if t.status == Status.OK.value and t.curve]
    top = {t.trial_id: i for i, t in enumerate(ok[:TOP])}
    epochs_run = max((len(t.curve) for t in trials), default=0)
    marker = "o" if epochs_run <= 20 else None
    finite, named = [], {}
    for trial in reversed(trials):  # worst first, so that the best are drawn on top
        if not trial.curve:
            continue
        epochs = range(1, len(trial.curve) + 1)
        finite += [v for v in trial.curve if not math.isnan(v)]
        if trial.trial_id in top:
            i = top[trial.trial_id]
            (named[i],) = ax.plot(epochs, trial.curve, color=COLOURS[i], lw=3 if i == 0 else 1.8, marker=marker,
                                  ms=5, zorder=10 - i, label=trial_label(trial, keys))
        elif trial.status == Status.DIVERGED.value:
            ax.plot(epochs, trial.curve, color=STATUS_COLOURS[trial.status], lw=1.2, ls=":", marker=marker, ms=3, zorder=3)
            last = max((i for i, v in enumerate(trial.curve) if not math.isnan(v)), default=None)
            if last is not None:
                ax.plot([last + 1], [trial.curve[last]], "X", color=STATUS_COLOURS[trial.status], ms=10, zorder=4)
        else:
            ax.plot(epochs, trial.curve, color=GREY, lw=1, alpha=0.6, marker=marker, ms=3, zorder=2)
    handles = [named[i] for i in sorted(named)]
    labels = [handle.get_label() for handle in handles]
    rest = len([t for t in ok if t.trial_id not in top])
    if rest:
        handles.append(Line2D([], [], color=GREY, lw=1))
        labels.append(f"{rest} other ok trials")
    diverged = [t for t in trials if t.status == Status.DIVERGED.value]
    if diverged:
        drawn = sum(any(not math.isnan(v) for v in t.curve) for t in diverged)
        handles.append(Line2D([], [], color=STATUS_COLOURS[Status.DIVERGED.value], ls=":", marker="X"))
        labels.append(f"{len(diverged)} diverged (X: last finite value)" if drawn else
                      f"{len(diverged)} diverged in epoch 1 (no finite value to draw)")
    failed = sum(t.status == Status.FAILED.value for t in trials)
    if handles:
        ax.legend(handles, labels, fontsize=9, loc="best", title="rank, trial, params" if top else None)
    if not finite:
        ax.text(0.5, 0.5, "no trial logged a finite value", ha="center", va="center", transform=ax.transAxes)
    elif min(finite) > 0 and max(finite) / min(finite) > 100:
        ax.set_yscale("log")
    if epochs_run <= 20:
        ax.set_xticks(range(1, epochs_run + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, max(epochs_run, 1) + 0.5)
    for end in (rungs or [])[:-1]:
        ax.axvline(end, color=GREY, ls=":", lw=1, zorder=1)
        ax.text(end, 1.0, f" rung {rungs.index(end)} ", transform=ax.get_xaxis_transform(), fontsize=8,
                color=GREY, ha="right", va="top")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} ({better(objective['direction'])})")
    ax.grid(alpha=0.3)
    note = f"; {failed} failed, so no curve" if failed else ""
    if any(t.confirmed for t in trials):
        note += "; the finalists' curves are their confirmation's, on all the data"
    if any(t.seed_values for t in trials):
        note += "; each trial's first seed"
    ax.set_title(f"Learning curves: {metric} per epoch\n{len(trials)} trials ({_counts(trials)}){note}")
    return figure


def _rung_colours(count: int) -> list[str]:
    """A colour per rung, light to dark: the further a trial went, the darker its dot."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    blues = colormaps["Blues"]
    return [to_hex(blues(0.4 + 0.6 * i / max(count - 1, 1))) for i in range(count)]


def _same(trial: Trial, key: str, value) -> bool:
    return key in trial.params and canonical({"v": trial.params[key]}) == canonical({"v": value})


def _ok(trial: Trial) -> bool:
    return trial.status == Status.OK.value and trial.tuned is not None


def _dot_colours(trials: list[Trial], rung_colours: list[str] | None) -> list[str]:
    return [rung_colours[t.rung or 0] if rung_colours else "#1f77b4" for t in trials]


# A marker per Hyperband bracket (the first for a sweep of one).
BRACKET_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "h"]


def _dots(ax, xs, ys, trials: list[Trial], rung_colours) -> None:
    """Trials' dots, coloured by rung, shaped by bracket."""
    for marker in dict.fromkeys(_marker(t) for t in trials):
        chosen = [i for i, t in enumerate(trials) if _marker(t) == marker]
        ax.scatter([xs[i] for i in chosen], [ys[i] for i in chosen], s=22, marker=marker, alpha=0.8, zorder=3,
                   color=_dot_colours([trials[i] for i in chosen], rung_colours))


def _marker(trial: Trial) -> str:
    return BRACKET_MARKERS[(trial.bracket or 0) % len(BRACKET_MARKERS)]


def _categorical_panel(ax, trials: list[Trial], key: str, winner: Trial | None, rung_colours, jitter) -> None:
    """Each value of the key a tick; its ok trials' objectives as dots, boxed (not with halving:
    a box would mix budgets); its diverged and failed trials counted under it."""
    values = categories(trials, key)
    labels = []
    for x, value in enumerate(values):
        same = [t for t in trials if _same(t, key, value)]
        ok = [t for t in same if _ok(t)]
        scores = [t.tuned for t in ok]
        if len(scores) > 1 and not rung_colours:
            ax.boxplot([scores], positions=[x], widths=0.5, showfliers=False, manage_ticks=False,
                       medianprops={"color": "#1f77b4"}, boxprops={"color": GREY}, whiskerprops={"color": GREY},
                       capprops={"color": GREY})
        if scores:
            _dots(ax, list(x + jitter.uniform(-0.12, 0.12, len(scores))), scores, ok, rung_colours)
        bad = {status: sum(t.status == status for t in same) for status in STATUS_COLOURS}
        marks = ", ".join(f"{n} {status}" for status, n in bad.items() if n)
        labels.append(value_label(value) + (f"\n({marks})" if marks else ""))
        if winner and _same(winner, key, value):
            ax.scatter([x], [winner.tuned], marker="*", s=220, color=COLOURS[0], edgecolor="white", zorder=4)
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels, rotation=30 if len(values) > 4 else 0, ha="right" if len(values) > 4 else "center",
                       fontsize=9)
    for tick, label in zip(ax.get_xticklabels(), labels):
        if "\n(" in label:
            tick.set_color(STATUS_COLOURS[Status.FAILED.value])
    ax.set_xlim(-0.6, max(len(values), 1) - 0.4)


def _numeric_panel(ax, trials: list[Trial], key: str, log: bool, winner: Trial | None, rung_colours) -> bool:
    """A range on its numeric axis (log for a log range): each ok trial a dot at its value, and
    where every value has several (a grid; not with halving), a line through their medians;
    diverged and failed trials an x at their value along the bottom. Whether it drew the line."""
    present = [t for t in trials if key in t.params]
    ok = [t for t in present if _ok(t)]
    if ok:
        _dots(ax, [t.params[key] for t in ok], [t.tuned for t in ok], ok, rung_colours)
    values = categories(ok, key)
    by_value = [[t.tuned for t in ok if _same(t, key, value)] for value in values]
    medians = not rung_colours and len(values) > 1 and all(len(scores) > 1 for scores in by_value)
    if medians:
        ax.plot(values, [statistics.median(scores) for scores in by_value], color="#1f77b4", lw=1.2, alpha=0.6, zorder=2)
    for status, colour in STATUS_COLOURS.items():
        xs = [t.params[key] for t in present if t.status == status]
        if xs:
            ax.plot(xs, [0.0] * len(xs), "x", color=colour, ms=8, mew=2, transform=ax.get_xaxis_transform(),
                    clip_on=False, zorder=4)
    if winner and key in winner.params:
        ax.scatter([winner.params[key]], [winner.tuned], marker="*", s=220, color=COLOURS[0], edgecolor="white", zorder=4)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(f"{value_label(key, 40)} ({'log scale' if log else 'linear scale'})", fontsize=9)
    return medians


def param_effects(trials: list[Trial], objective: dict, grid_keys: list[str], space: dict | None = None,
                  rungs: list[int] | None = None):
    """One panel per grid key: each trial's objective over the key's values; the winner starred.

    `space` (kerasgrid.search.describe_space's grid): its ranges are drawn on their numeric axis,
    log where the range is log; lists stay categories, in `categories`' order. With halving
    (`rungs`: the epochs each rung ends at), each dot is coloured by the rung its trial stopped at.
    """
    import numpy as np
    from matplotlib.lines import Line2D

    metric = text(objective["metric"])
    keys = varying_keys(trials, grid_keys)
    fixed = [key for key in grid_keys if key not in keys]
    ranges, partial = _axes(space or {})
    halving = rungs if rungs and len(rungs) > 1 else None
    rung_colours = _rung_colours(len(halving)) if halving else None
    columns = max(1, min(3, len(keys)))
    rows = max(1, math.ceil(len(keys) / columns))
    widest = max((len(categories(trials, key)) for key in keys if key not in ranges), default=1)
    figure = _figure(max(8.0, max(4.8, 0.5 * widest) * columns), 3.9 * rows + 1.0 + 0.5 * bool(halving))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    winner = trials[0] if trials and _ok(trials[0]) else None
    jitter = np.random.default_rng(0)
    medians = False
    for ax, key in zip(axes, keys):
        if key in ranges:
            medians |= _numeric_panel(ax, trials, key, bool(ranges[key].get("log")), winner, rung_colours)
        else:
            _categorical_panel(ax, trials, key, winner, rung_colours, jitter)
        only = f" ({' or '.join(partial[key])} trials only)" if key in partial else ""
        ax.set_title(value_label(key, 40) + text(only), fontsize=11)
        ax.set_ylabel(metric)
        ax.grid(axis="y", alpha=0.3)
        if not any(t.status == Status.OK.value for t in trials):
            ax.text(0.5, 0.5, "no trial finished ok", ha="center", va="center", transform=ax.transAxes)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    constant = ", ".join(f"{value_label(key, 30)}={param_label(trials[0].params, key)}" for key in fixed)
    confirmed = any(t.confirmed for t in trials)
    repeated = any(t.seed_values for t in trials)
    if halving:
        reached = [sum(t.rung == i for t in trials if _ok(t)) for i in range(len(halving))]
        handles = [Line2D([], [], ls="", marker="o", color=colour) for colour in rung_colours]
        labels = [f"rung {i}, {halving[i]} epoch{'s' * (halving[i] != 1)}: {n} trials" for i, n in enumerate(reached)]
        brackets = sorted({t.bracket for t in trials if _ok(t) and t.bracket is not None})
        if len(brackets) > 1:  # Hyperband: the shape says where a trial went furthest
            handles += [Line2D([], [], ls="", marker=BRACKET_MARKERS[b % len(BRACKET_MARKERS)], color=GREY)
                        for b in brackets]
            labels += [f"bracket {b} (from {halving[b]} epoch{'s' * (halving[b] != 1)})" for b in brackets]
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), fontsize=9)
    lines = [
        f"Effect of each hyperparameter on {metric} ({better(objective['direction'])})"
        + (" in the tuning" if confirmed else "") + (", mean over seeds" if repeated else ""),
        "dots: ok trials, coloured by the rung each stopped at: a dot of another colour trained other epochs, so "
        "compare dots of one colour; star: the winner" if halving else "dots: ok trials; boxes: their spread; star: the winner",
    ]
    if ranges:
        lines.append("ranges on their numeric axis (log scale where the range is log)"
                     + ("; lines: the median at each value" if medians else ""))
    lines.append("diverged and failed trials are counted under their value"
                 + (" (on a numeric axis, an x: orange diverged, red failed)" if ranges else ""))
    if any(key in partial for key in keys):
        lines.append("a branch's key (choose) over the trials of its branches only: the others do not have it")
    if constant:
        lines.append(f"the same in every trial: {constant}")
    width = int(12 * figure.get_figwidth())  # characters of an 11-point line across the figure
    figure.suptitle("\n".join(textwrap.fill(line, width) for line in lines), fontsize=11)
    return figure


def _axes(space: dict) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """From the described grid: the keys drawn on a numeric axis ({"log": ...} for a range, or a
    key that is a range in every branch giving it), and the keys only some trials have -> the
    branches giving them (a `choose`)."""
    parsed = parse_space(space, "the config")
    ranges = {key: {"log": any(dim.log for dim in dims)} for key, dims in dimensions(parsed).items()
              if all(isinstance(dim, Range) for dim in dims)}
    every = set(always(parsed))
    return ranges, {key: paths for key, paths in branch_keys(parsed).items() if key not in every}


def failure_label(trial: Trial, metric: str) -> str:
    """What the ranking chart says beside a trial that did not finish ok: its status and why, as the
    console and the web page say it (kerasgrid.trial.reasons); "no <metric>" if it recorded no reason."""
    return text(reasons.shown(trial.status, trial.reason or f"no {metric}"))


def front_note(trial: Trial) -> str:
    """By Pareto front, beside a trial's bar: its front (and if it breaks a constraint) and the
    value of every objective but the first, whose value the bar is."""
    parts = [f"front {trial.front}"] if trial.front is not None else []
    parts += ["infeasible"] * (trial.feasible is False)
    parts += [f"{text(metric)} = {value:.4g}" for metric, value in trial.others.items() if value is not None]
    return f"  ({'; '.join(parts)})" if parts else ""


def _room(high: float, span: float, shown: list[Trial], labels: list[str], width: float) -> float:
    """The right end of the ranking's value axis: room after the longest bar for its value and
    front note (about 0.075 inch a character at 9 points, the axes being the figure less its labels)."""
    note = 0.075 * max((len(f" {t.value:.4g}{front_note(t)}") for t in shown if t.value is not None), default=8)
    axes = max(1.0, width - 0.075 * max((len(line) for label in labels for line in label.split("\n")), default=0) - 0.6)
    share = min(0.7, note / axes)
    return max(high + 0.25 * span, high / (1 - share)) if high > 0 else high + 0.25 * span


def ranking(trials: list[Trial], objective: dict, grid_keys: list[str]):
    """The objective of every trial as a bar chart, in the leaderboard's order (by Pareto front
    with several objectives: fronts parted by dotted lines, each bar with its front and the other
    objectives' values); diverged and failed ones marked."""
    metric = text(objective["metric"])
    keys = varying_keys(trials, grid_keys)
    ok = [t for t in trials if t.status == Status.OK.value and t.value is not None]
    bad = [t for t in trials if t not in ok]
    shown = ok[:MAX_BARS] + bad[:MAX_MARKED]
    labels = [trial_label(t, keys) for t in shown]
    fronts = any(t.front is not None for t in ok)
    notes = any(t.seed_values for t in ok) + any(t.confirmed for t in ok) + fronts  # lines under the title
    width = 12.0 if fronts else 10.0
    title = f"Trials ranked by {text(ranked_by(objective))}: {len(trials)} trials ({_counts(trials)})"
    bars = sum(0.2 + 0.16 * (label.count("\n") + 1) for label in labels)
    figure = _figure(width, max(3.0, bars + 1.5 + 0.3 * (notes + len(title) // 100)))
    ax = figure.subplots()
    values = [v for t in ok[:MAX_BARS] for v in [t.value, *t.seed_values, *([t.tuning_value] * t.confirmed)]]
    span = max([abs(v) for v in values] or [1.0]) or 1.0
    for y, trial in enumerate(shown):
        if trial in ok:
            colour = COLOURS[0] if trial is trials[0] else "#1f77b4"
            ax.barh(y, trial.value, color=colour, height=0.7, hatch="//" if trial.confirmed else None,
                    edgecolor="white" if trial.confirmed else None)
            if trial.seed_values:  # repeats: the spread over seeds
                ax.errorbar(trial.value, y, xerr=trial.std or 0.0, color="black", capsize=3, lw=1, zorder=3)
                ax.scatter(trial.seed_values, [y] * len(trial.seed_values), s=12, color="black", zorder=4)
            if trial.confirmed and trial.tuning_value is not None:
                ax.scatter([trial.tuning_value], [y], marker="D", s=36, facecolor="none", edgecolor="#e65100", zorder=5)
            drawn = [trial.value, *trial.seed_values, *([trial.tuning_value] * trial.confirmed)]
            end = max(drawn) if trial.value >= 0 else min(drawn)
            ax.text(end + 0.01 * span * (1 if trial.value >= 0 else -1), y, f" {trial.value:.4g}{front_note(trial)}",
                    va="center", ha="left" if trial.value >= 0 else "right", fontsize=9)
            if fronts and y and (trial.front, trial.feasible) != (shown[y - 1].front, shown[y - 1].feasible):
                ax.axhline(y - 0.5, color=GREY, ls=":", lw=1)
        else:
            colour = STATUS_COLOURS.get(trial.status, GREY)
            ax.barh(y, 0.02 * span, color=colour, height=0.7)
            ax.text(0.03 * span, y, f" {failure_label(trial, objective['metric'])}", va="center", ha="left",
                    color=colour, fontsize=9, fontweight="bold")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels(labels, fontsize=9)
    for tick, trial in zip(ax.get_yticklabels(), shown):
        if trial not in ok:
            tick.set_color(STATUS_COLOURS.get(trial.status, GREY))
    ax.invert_yaxis()  # the winner on top
    if values:
        low, high = min(values + [0.0]), max(values + [0.0])
        ax.set_xlim(low - 0.2 * span * (low < 0), _room(high, span, shown, labels, width))
    else:
        ax.set_xlim(0, 1)
    ax.set_xlabel(f"{metric} after the last epoch ({better(objective['direction'])})")
    ax.grid(axis="x", alpha=0.3)
    left_out = len(trials) - len(shown)
    if left_out:
        title += f"; the first {len(shown)} shown, {left_out} more in results/leaderboard.tsv"
    keys_ = []
    if fronts:
        keys_.append(f"bars: {metric}; dotted lines part the fronts; beside each bar its front and the other objectives")
    if any(t.seed_values for t in ok):
        keys_.append("bars: the mean over seeds, dots: each seed, whiskers: ± 1 std")
    if any(t.confirmed for t in ok):
        keys_.append("hatched: the finalists, by their confirmation on all the data; diamonds: their tuning value")
    # The figure's title, not the axes': centred over the axes, a long one ran off the figure.
    figure.suptitle("\n".join(textwrap.wrap(title, int(10 * width)) + keys_), fontsize=11)
    return figure


def optimization_history(trials: list[Trial], objective: dict, last_rung: int | None = None):
    """Optuna's "optimization history": each trial's objective in the order the search proposed
    them, coloured by round, and the best so far as a line; failed and diverged trials marked.
    With halving (`last_rung`: the last rung's index), a trial stopped at an earlier rung is a
    hollow marker (its objective there), left out of the best so far, which is the full budget's."""
    from matplotlib.lines import Line2D

    metric = text(objective["metric"])
    sign = -1.0 if objective["direction"] == "max" else 1.0
    figure = _figure(10, 5.5)
    ax = figure.subplots()
    rounds = sorted({t.round for t in trials if t.round is not None})
    palette = ["#1f77b4", "#ff7f0e"]  # alternate between rounds, so that neighbours stand apart
    best, best_line, handles, labels = None, [], [], []
    for number, trial in enumerate(trials, 1):
        ok = trial.status == Status.OK.value and trial.value is not None
        stopped = last_rung is not None and trial.rung is not None and trial.rung < last_rung
        if ok:
            colour = palette[rounds.index(trial.round) % 2] if trial.round in rounds else palette[0]
            ax.scatter([number], [trial.value], s=30, zorder=3, color="none" if stopped else colour,
                       edgecolors=colour)
            if not stopped and (best is None or sign * trial.value < sign * best):
                best = trial.value
        else:
            colour = STATUS_COLOURS.get(trial.status, GREY)
            ax.plot([number], [0.0], "x", color=colour, ms=9, mew=2, transform=ax.get_xaxis_transform(),
                    clip_on=False, zorder=4)
        best_line.append(best)
    if any(value is not None for value in best_line):
        numbers = [n for n, value in enumerate(best_line, 1) if value is not None]
        (line,) = ax.step(numbers, [value for value in best_line if value is not None], where="post",
                          color=COLOURS[0], lw=2.2, zorder=5, label=f"best {metric} so far: {best:.4g}")
        handles.append(line)
        labels.append(line.get_label())
    else:
        ax.text(0.5, 0.5, "no trial finished ok", ha="center", va="center", transform=ax.transAxes)
    handles.append(Line2D([], [], ls="", marker="o", color=palette[0]))
    labels.append("a trial's " + metric + (" (colours alternate by round)" if len(rounds) > 1 else ""))
    if last_rung is not None and any(t.rung is not None and t.rung < last_rung for t in trials):
        handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", color=palette[0]))
        labels.append(f"stopped at an earlier rung (its {metric} there)")
    for status, colour in STATUS_COLOURS.items():
        count = sum(t.status == status for t in trials)
        if count:
            handles.append(Line2D([], [], ls="", marker="x", color=colour, mew=2))
            labels.append(f"{count} {status} (no {metric})")
    first = 1
    for index in rounds:
        size = sum(t.round == index for t in trials)
        if index != rounds[0]:
            ax.axvline(first - 0.5, color=GREY, ls=":", lw=1, zorder=1)
        if len(rounds) <= 20:
            ax.text(first - 0.4, 1.0, f"round {index}", transform=ax.get_xaxis_transform(), fontsize=8, color=GREY,
                    ha="left", va="top")
        first += size
    ax.set_xlim(0.5, max(len(trials), 1) + 0.5)
    values = [t.value for t in trials if t.status == Status.OK.value and t.value is not None]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")
    ax.legend(handles, labels, fontsize=9, loc="best")
    ax.set_xlabel("trial, in the order proposed")
    ax.set_ylabel(f"{metric} ({better(objective['direction'])})")
    ax.grid(alpha=0.3)
    ax.set_title(f"Optimization history: {metric} of each trial and the best so far\n"
                 f"{len(trials)} trials in {len(rounds)} rounds ({_counts(trials)})")
    return figure


def write_optimization_history(leaderboard_path, order: list[str], objective: dict, path, trials_dir=None,
                               rungs=None, seeds=None) -> None:
    """The optimization history (`optimization_history`) of the trials of a leaderboard, taken in
    `order` (trial ids as the search proposed them), as a PNG file."""
    by_id = {trial.trial_id: trial for trial in load_trials(leaderboard_path, objective, trials_dir, rungs, seeds)}
    last = len(rungs) - 1 if rungs and len(rungs) > 1 else None
    save(optimization_history([by_id[trial] for trial in order if trial in by_id], objective, last), path)


def save(figure, path) -> None:
    """Write the figure as a PNG, atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    records.write_bytes(path, buffer.getvalue())


def write_plots(leaderboard_path, objective: dict, grid_keys: list[str], *, learning_curves_png, param_effects_png,
                ranking_png, trials_dir=None, rungs=None, seeds=None, space=None) -> None:
    """The three figures of the sweep whose leaderboard is given, as PNG files. `space`: the grid
    as kerasgrid.search.describe_space writes it, for the ranges' axes."""
    trials = load_trials(leaderboard_path, objective, trials_dir, rungs, seeds)
    halving = rungs if rungs and len(rungs) > 1 else None
    save(learning_curves(trials, objective, grid_keys, halving), learning_curves_png)
    save(param_effects(trials, objective, grid_keys, space, halving), param_effects_png)
    save(ranking(trials, objective, grid_keys), ranking_png)
