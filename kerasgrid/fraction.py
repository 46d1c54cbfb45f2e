"""Drawing a representative fraction of a data set: seeded, stratified, every class kept.

    from kerasgrid import fraction
    keep = fraction.indices(labels, 0.1, seed=0)   # sorted row numbers of the fraction
    x_small, y_small = fraction.take((x, y), 0.1, seed=0)

`data.fraction` in the config uses the same draw on the `(x, y)` arrays a data callable returns;
a callable that returns a generator or a dataset receives the fraction as its `fraction` keyword
and can call `indices` itself (the trial then records the draw as if kerasgrid had made it).

The draw is stratified by what the labels are:
- classes (integer, boolean or string labels; one-hot rows; floats that take at most
  `MAX_CLASSES` whole values, such as 0/1 labels): each class keeps its share of the whole,
  rounded to whole examples, and every class present keeps at least one example;
- a single number per example (regression): the same, by `BINS` quantile bins of the target;
- anything else (multi-label rows, images as targets): a plain seeded random draw.

NumPy only: it loads in a blink and can be used inside any data callable.
"""

import json
import math

import numpy as np

from kerasgrid import records

# A float target with at most this many distinct values, all whole numbers, is taken as classes.
MAX_CLASSES = 20
# Regression targets are stratified by this many quantile bins of the whole.
BINS = 10
# A stratum (class or bin) is reported when it is missing from the fraction, or when its count
# there is off its share of the whole by more than this part of that share and not just by
# rounding to whole examples (see share_warnings).
SHARE_MARGIN = 0.2

# The draws made by `indices` since `start_recording`: how a trial learns what a data callable
# that draws its own fraction kept. One trial runs at a time in a process.
_recorded: list[dict] | None = None


def strata(labels) -> tuple[np.ndarray | None, str | None, list[str]]:
    """Each example's stratum number, how they were formed, and each stratum's label.

    Returns (None, None, []) when the labels are neither classes nor one number per example.
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.shape[1] > 1 and _one_hot(y):
        y = y.argmax(axis=1)
    if y.ndim != 1:
        return None, None, []
    if y.dtype.kind in "biuUSO" or (y.dtype.kind == "f" and _few_whole_values(y)):
        names, codes = np.unique(y, return_inverse=True)
        return codes, "class", [_label(name) for name in names]
    if y.dtype.kind != "f":
        return None, None, []
    bins = min(BINS, len(y))
    edges = np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1])
    codes = np.searchsorted(edges, y, side="right")
    used, codes = np.unique(codes, return_inverse=True)  # tied quantiles leave some bins empty
    bounds = [float(y.min()), *edges.tolist(), float(y.max())]
    return codes, f"{len(used)} quantile bins of the target", [
        f"{bounds[b]:.4g} to {bounds[b + 1]:.4g}" for b in used
    ]


def _one_hot(y: np.ndarray) -> bool:
    return bool(np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all())


def _few_whole_values(y: np.ndarray) -> bool:
    finite = y[np.isfinite(y)]
    return len(finite) == len(y) and bool((finite == np.round(finite)).all()) and len(np.unique(finite)) <= MAX_CLASSES


def _label(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if hasattr(value, "item") else value)


def quotas(counts: list[int], fraction: float) -> list[int]:
    """How many examples each stratum keeps: its share of round(fraction x total), rounded by largest
    remainders, and at least one for every stratum that has any."""
    total = sum(counts)
    target = max(1, round(fraction * total))
    exact = [fraction * count for count in counts]
    kept = [min(count, max(1, math.floor(share))) if count else 0 for count, share in zip(counts, exact)]
    # Largest remainders first (ties: the earlier stratum), among strata with examples to spare.
    order = sorted(range(len(counts)), key=lambda s: (-(exact[s] - math.floor(exact[s])), s))
    for stratum in order:
        if sum(kept) >= target:
            break
        if kept[stratum] < counts[stratum] and kept[stratum] < math.ceil(exact[stratum]):
            kept[stratum] += 1
    return kept


def indices(labels, fraction: float, seed: int = 0) -> np.ndarray:
    """The sorted row numbers of a seeded, stratified `fraction` (0 < fraction <= 1) of `labels`.

    `labels` is the target array (integer or one-hot classes, or one number per example); the same
    labels, fraction and seed always give the same rows.
    """
    chosen = draw(labels, fraction, seed)
    if _recorded is not None:
        _recorded.append(describe(labels, chosen, fraction, drawn_by="the data callable"))
    return chosen


def draw(labels, fraction: float, seed: int = 0) -> np.ndarray:
    """`indices` without recording the draw (what kerasgrid itself calls)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be above 0 and at most 1, not {fraction}")
    y = np.asarray(labels)
    total = len(y)
    rng = np.random.default_rng(seed)
    codes, how, names = strata(y)
    if fraction == 1:
        return np.arange(total)
    if codes is None:
        return np.sort(rng.choice(total, size=max(1, round(fraction * total)), replace=False))
    members = [np.flatnonzero(codes == s) for s in range(len(names))]
    kept = quotas([len(m) for m in members], fraction)
    return np.sort(np.concatenate([rng.permutation(m)[:k] for m, k in zip(members, kept)]))


def take(data, fraction: float, seed: int = 0, labels=None):
    """The `fraction` of whole arrays `(x, y)` or `(x, y, sample_weight)` (each an array or a dict of
    arrays), drawn by `indices` from `labels` (default: y, or the first entry of a dict y)."""
    rows = indices(first_target(data) if labels is None else labels, fraction, seed)
    return subset(data, rows)


def first_target(data):
    """The labels a draw stratifies on: y, or the first entry of y when it is a dict."""
    y = data[1]
    return next(iter(y.values())) if isinstance(y, dict) else y


def subset(data, rows):
    """`data` (arrays, and tuples, lists and dicts of them) with only the given rows."""
    if isinstance(data, dict):
        return {key: subset(value, rows) for key, value in data.items()}
    if isinstance(data, (tuple, list)):
        return type(data)(subset(value, rows) for value in data)
    return np.asarray(data)[rows]


def length(data) -> int:
    """The number of examples in `data` (arrays, or tuples, lists and dicts of them); ValueError if
    its arrays disagree."""
    lengths = set()

    def visit(part):
        if isinstance(part, dict):
            for value in part.values():
                visit(value)
        elif isinstance(part, (tuple, list)):
            for value in part:
                visit(value)
        else:
            lengths.add(len(part))

    visit(data)
    if len(lengths) != 1:
        raise ValueError(f"the arrays hold different numbers of examples: {sorted(lengths)}")
    return lengths.pop()


def describe(labels, rows, fraction: float, drawn_by: str = "kerasgrid") -> dict:
    """What a trial trained on: the fraction, the examples kept and in all, and per stratum (class
    or bin) the examples kept and in the whole, with warnings for strata missing or off."""
    y = np.asarray(labels)
    codes, how, names = strata(y)
    record = {
        "fraction": fraction,
        "drawn_by": drawn_by,
        "examples": int(len(rows)),
        "whole_examples": int(len(y)),
        "stratified_by": how,
        "strata": [],
        "warnings": [],
    }
    if codes is None:
        return record
    whole = np.bincount(codes, minlength=len(names))
    kept = np.bincount(codes[np.asarray(rows, dtype=int)], minlength=len(names))
    record["strata"] = [
        {"label": name, "examples": int(k), "whole": int(n)} for name, k, n in zip(names, kept, whole)
    ]
    record["warnings"] = share_warnings(record)
    return record


def unmeasured(fraction: float, drawn_by: str | None, examples: int | None = None) -> dict:
    """The record of a fraction whose examples kerasgrid did not see drawn (`describe`'s keys)."""
    return {
        "fraction": fraction,
        "drawn_by": drawn_by,
        "examples": examples,
        "whole_examples": None,
        "stratified_by": None,
        "strata": [],
        "warnings": [],
    }


def share_warnings(record: dict) -> list[str]:
    """A sentence for each stratum missing from the fraction, or whose share of it is off its share
    of the whole by more than SHARE_MARGIN of that share beyond rounding to whole examples (a
    count less than one example from its exact share; a stratum whose share is under half an
    example, kept once so that it is there, is reported)."""
    kept, total = record["examples"], record["whole_examples"]
    kind = "class" if record["stratified_by"] == "class" else "bin"
    warnings = []
    for stratum in record["strata"]:
        count, expected = stratum["examples"], stratum["whole"] * kept / total
        whole = f"{stratum['whole'] / total:.2%} of the whole"
        if count == 0:
            warnings.append(f"{kind} {stratum['label']} is missing from the fraction ({whole})")
            continue
        rounding = expected >= 0.5 and abs(count - expected) < 1
        if abs(count - expected) > SHARE_MARGIN * expected and not rounding:
            why = ", kept so that it is not missing" if expected < 1 else ""
            warnings.append(
                f"{kind} {stratum['label']} is {count / kept:.2%} of the fraction against {whole} "
                f"({count} example{'s' * (count != 1)} where its share is {expected:.3g}{why})"
            )
    return warnings


def start_recording() -> None:
    """Record the draws `indices` makes from now on (a trial calls this before the data callable)."""
    global _recorded
    _recorded = []


def stop_recording() -> list[dict]:
    """The draws made since `start_recording`, and recording stopped."""
    global _recorded
    draws, _recorded = _recorded or [], None
    return draws


def summarise(draws: list[dict | None]) -> dict:
    """What a sweep's tuning runs trained on, from their records' `training_data`: the draw most
    of them share (they all do unless a data callable draws by params), how many runs recorded
    one and how many share it, and every warning of any of them."""
    recorded = [draw for draw in draws if draw]
    texts = [_canonical(draw) for draw in recorded]
    common = max(set(texts), key=lambda text: (texts.count(text), text)) if texts else None
    return {
        "runs": len(draws),
        "recorded": len(recorded),
        "same_draw": texts.count(common) if common else 0,
        "draw": recorded[texts.index(common)] if common else None,
        "warnings": sorted({warning for draw in recorded for warning in draw["warnings"]}),
    }


def _canonical(draw: dict) -> str:
    return json.dumps(draw, sort_keys=True)


def write_summary(metrics_paths, path) -> dict:
    """`summarise` the `training_data` of the tuning records given, written to `path` as JSON."""
    summary = summarise([records.read_json(p).get("training_data") for p in metrics_paths])
    records.write_json(path, summary)
    return summary


def summary_lines(path) -> list[str]:
    """The console's lines on what the tuning trained on: one, and a warning per stratum off."""
    try:
        summary = records.read_json(path)
    except FileNotFoundError:
        return []
    draw = summary["draw"]
    if draw is None:
        return []
    lines = [f"Tuned on {describe_draw(draw)}."]
    if summary["same_draw"] < summary["recorded"]:
        lines.append(f"({summary['recorded'] - summary['same_draw']} of {summary['recorded']} runs trained on other "
                     "draws: their metrics.json says which.)")
    lines += [f"Warning: the fraction is not representative: {warning}." for warning in summary["warnings"]]
    return lines


def describe_draw(draw: dict) -> str:
    """A draw in words, e.g. "10% of the training data: 144 of 1,437 examples, stratified by class"."""
    text = f"{draw['fraction'] * 100:.4g}% of the training data"
    if draw["examples"] is not None and draw["whole_examples"] is not None:
        text += f": {draw['examples']:,} of {draw['whole_examples']:,} examples"
    elif draw["examples"] is not None:
        text += f": {draw['examples']:,} examples"
    if draw["drawn_by"] == "the data callable":
        text += ", drawn by the data callable"
    if draw["stratified_by"]:
        text += f", stratified by {draw['stratified_by']}"
    return text
