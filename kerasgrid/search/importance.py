"""Which hyperparameters mattered: each grid key's importance for each objective, by Optuna's fANOVA.

fANOVA (Hutter et al., 2014) fits a random forest that predicts an objective from the params of
the trials that ended ok, and splits the variance of that prediction over the whole space into
what each key explains on its own (its importance, a share between 0 and 1) and what the keys
explain only together (the rest). Optuna's evaluator is used as it is (`FanovaImportanceEvaluator`,
on an in-memory study rebuilt from the trials' files as TPE's is, kerasgrid.search.optuna_space),
with its forest seeded by the sweep's seed: the same trials give the same importances, and a log
range's values on their log scale, as they were drawn (`_study_space` says why). The shares
are Optuna's unnormalised ones, so that what the keys explain together stays in sight. Optuna's,
because kerasgrid ships it (and scikit-learn) already; fANOVA rather than its default PED-ANOVA,
which sets the best 10% of the trials against the rest (one trial of a 12-trial grid), or its
impurity-based evaluator, which favours keys with many values.

Which trials: those ok, each with its objectives' mean over its seeds (with repeats), from its
tuning run (with confirm, not the finalists' confirmations, trained on another budget). With halving,
the first rung's records: every candidate trained the same epochs there, whereas the later rungs
hold only the trials promoted for being good, in which the keys that decided the promotions
hardly vary any more. A key that did not vary among them gets no importance (an empty cell, not
0: the sweep says nothing about it). Below MIN_TRIALS ok trials or MIN_KEYS keys that vary, no
importance is computed, and the files say why.

Conditional keys (a `choose`): fANOVA's forest needs a value of every key in every trial, so the
importance is computed over every ok trial on the keys all of them have: the top-level keys, a
choice's key among them (which branch). A branch's own keys (`momentum`, or `lr` set per branch)
get an empty cell whose note says so: their effect counts in their choice's share and in what the
keys explain together. Measuring them over their branch's trials alone would give shares of
another variance, which the table could not set beside the rest.

Imports Optuna and scikit-learn only where importances are computed, TensorFlow never.
"""

import math
import statistics
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from kerasgrid import records
from kerasgrid.results import plots
from kerasgrid.results.leaderboard import read_leaderboard, record_dir
from kerasgrid.results.tables import better
from kerasgrid.sweep.space import Branches, Dimension, branch_keys, parse_space
from kerasgrid.sweep import runs
from kerasgrid.sweep.grid import canonical

# Fewer, and too many of the forest's trees never see one of a key's values: each tree fits a
# bootstrap sample, which for 4 trials (a 2 x 2 grid) misses a value of a key in 1 tree of 8. On
# such a sweep where lr explained ~99% of the loss, fANOVA gave lr 73%, the other key 27%.
MIN_TRIALS = 6
MIN_KEYS = 2  # with one key that varies, it explains whatever there is: nothing to compare
FEW_TRIALS = 20  # below this, the figure says to read the bars as a rough hint
BAR_COLOUR = "#1f77b4"
TOGETHER = "(keys together)"  # the bar of the variance no key explains alone


@dataclass(frozen=True)
class Observed:
    """A trial as importance sees it: its params and the value of each objective (their mean
    over its seeds with repeats), all finite."""

    trial_id: str
    params: dict
    values: list[float]


@dataclass
class Importances:
    """Each grid key's importance per objective (None where none was computed), and what they
    were computed from."""

    objectives: list[dict]
    keys: list[str]  # every grid key, the most important for the first objective first
    scores: dict[str, list[float | None]]  # key -> a share (0 to 1) per objective
    constant: dict[str, object] = field(default_factory=dict)  # keys that did not vary -> their value
    trials: int = 0
    reason: str | None = None  # why nothing was computed
    objective_notes: list[str | None] = field(default_factory=list)  # why an objective's column is empty
    epochs: int | None = None  # with halving: the epochs of the rung the trials come from
    seeds: int = 1
    confirmed: bool = False
    # A choice's branch keys, not measured on their own -> (the choice's key, the branches giving them)
    branch_keys: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def together(self, index: int) -> float | None:
        """The share of objective `index`'s variance that no key explains on its own."""
        shares = [self.scores[key][index] for key in self.keys if self.scores[key][index] is not None]
        return max(0.0, 1.0 - sum(shares)) if shares else None


def _final(run: dict, metric: str):
    """A run's final value of a metric its model logged, or of a measure kerasgrid took (its
    `measures`: parameters, seconds), None if it has neither."""
    if metric in run["metrics"]:
        return run["metrics"][metric]["final"]
    return (run.get("measures") or {}).get(metric)


def _values(runs_: list[dict], objectives: list[dict]) -> list[float] | None:
    """The mean over a trial's runs of each objective, or None unless every run ended ok with a
    finite value of each."""
    if not runs_ or any(run["status"] != "ok" for run in runs_):
        return None
    means = []
    for objective in objectives:
        values = [_final(run, objective["metric"]) for run in runs_]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return None
        means.append(statistics.fmean(values))
    return means


def observed_trials(leaderboard_path, objectives: list[dict], rungs=None, seeds=None, trials_dir=None) -> list[Observed]:
    """The leaderboard's trials that ended ok, by trial id (so that the leaderboard's order does not
    matter), each from its tuning records: with halving (`rungs`), those of the first rung; with
    repeats (`seeds`, the config's first), one per seed."""
    leaderboard_path = Path(leaderboard_path)
    trials_dir = Path(trials_dir) if trials_dir else leaderboard_path.parent / "trials"
    halving = rungs is not None and len(rungs) > 1
    seeds = seeds or [None]
    observed = []
    for trial in sorted({row["trial_id"] for row in read_leaderboard(leaderboard_path)}):
        runs_ = []
        for seed in seeds:
            folder = runs.run_dir(trials_dir / trial, seed, seeds[0])
            if halving:
                folder = record_dir(folder, rungs[0], rungs)
            try:
                runs_.append(records.read_json(folder / "metrics.json"))
            except FileNotFoundError:  # removed by hand since it was ranked: one trial fewer
                runs_ = []
                break
        values = _values(runs_, objectives)
        if values is not None:
            observed.append(Observed(trial, runs_[0]["params"], values))
    return observed


def importances(observed: list[Observed], objectives: list[dict], space: dict[str, Dimension], seed: int, *,
                epochs: int | None = None, seeds: int = 1, confirmed: bool = False) -> Importances:
    """fANOVA's importance of each key of `space` for each objective, over the `observed` trials,
    its forest seeded with `seed`. `epochs`, `seeds` and `confirmed` say where the trials' values
    come from, for the figure's words (see Importances)."""
    keys = list(space)  # the keys every trial has: a choice's branch keys are noted, not measured (see above)
    nested = _branch_keys(space)
    distinct = {key: {canonical({"v": o.params.get(key)}) for o in observed} for key in keys}
    varying = [key for key in keys if len(distinct[key]) > 1]
    constant = {key: observed[0].params.get(key) for key in keys if key not in varying} if observed else {}
    empty = {key: [None] * len(objectives) for key in [*keys, *nested]}
    result = Importances(objectives, [*keys, *nested], empty, constant, len(observed), epochs=epochs, seeds=seeds,
                         confirmed=confirmed, branch_keys=nested)
    if len(observed) < MIN_TRIALS or len(varying) < MIN_KEYS:
        result.reason = (
            f"{_count(len(observed), 'ok trial')}, {_count(len(varying), 'hyperparameter')} varying among them: "
            f"importance needs at least {MIN_TRIALS} ok trials and {MIN_KEYS} varying hyperparameters"
        )
        return result

    import optuna  # here only: the rest of the aggregation never loads Optuna or scikit-learn
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory"
    study = optuna.create_study(directions=["minimize" if o["direction"] == "min" else "maximize" for o in objectives])
    dists, to_study = _study_space(space)
    for o in observed:
        study.add_trial(create_trial(params=to_study(o.params), distributions=dists, values=o.values))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    scores = {key: [] for key in keys}
    for index, objective in enumerate(objectives):
        values = [o.values[index] for o in observed]
        shares, note = {}, None
        if min(values) == max(values):
            note = f"every trial scored the same {objective['metric']}: no variance to explain"
        else:
            try:
                shares = evaluator.evaluate(study, params=varying, target=lambda t, i=index: t.values[i])
            except RuntimeError:  # fANOVA's "zero total variance in all trees"
                note = f"fANOVA's forest found no variance of {objective['metric']} to explain"
        result.objective_notes.append(note)
        for key in keys:
            scores[key].append(float(shares[key]) if key in shares else None)
    first = [key for key in keys if scores[key][0] is not None]
    result.keys = sorted(first, key=lambda key: -scores[key][0]) + [key for key in keys if key not in first] + list(nested)
    result.scores = {**scores, **{key: [None] * len(objectives) for key in nested}}
    return result


def _branch_keys(space: dict) -> dict[str, tuple[str, list[str]]]:
    """Each key given by a choice's branches -> (the choice's key, the branches that give it)."""
    found = {}
    for key, dim in space.items():
        if isinstance(dim, Branches):
            for sub_key, paths in branch_keys({key: dim}).items():
                found.setdefault(sub_key, (key, paths))
    return found


def _study_space(space: dict[str, Dimension]):
    """The distributions of the study fANOVA reads, and a function from params to its values:
    kerasgrid.search.optuna_space's, but a log range on the log of its values. fANOVA weighs a
    range's values alike on the scale Optuna hands it, which is linear even for a log
    distribution: for lr from 1e-5 to 1e-1, all that happens below 1e-3 would count for 1%."""
    from optuna.distributions import FloatDistribution

    from kerasgrid.search.optuna_space import distributions, to_optuna

    dists = distributions(space)
    logs = [key for key, dist in dists.items() if getattr(dist, "log", False)]
    for key in logs:
        dists[key] = FloatDistribution(math.log(dists[key].low), math.log(dists[key].high))

    def to_study(params: dict) -> dict:
        values = {name: value for name, value in to_optuna(space, params).items() if name in dists}  # the top level
        return {**values, **{key: math.log(values[key]) for key in logs}}

    return dists, to_study


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def table_text(result: Importances) -> str:
    """results/importance.tsv: a row per grid key, a column per objective (named by its metric)
    with the key's share, the trials it comes from, and a note where a cell is empty."""
    header = ["hyperparameter", *(o["metric"] for o in result.objectives), "trials", "note"]
    lines = ["\t".join(header)]
    for key in result.keys:
        notes = [result.reason] if result.reason else []
        if key in result.constant and not result.reason:
            notes.append(f"did not vary: {plots.value_label(result.constant[key], 60)}")
        if key in result.branch_keys:
            notes.append(_branch_note(key, *result.branch_keys[key]))
        notes += [note for note in result.objective_notes if note]
        cells = ["" if share is None else f"{share:.4f}" for share in result.scores[key]]
        lines.append("\t".join([_cell(key), *cells, str(result.trials), _cell("; ".join(notes))]))
    return "\n".join(lines) + "\n"


def _branch_note(key: str, choice: str, paths: list[str]) -> str:
    return (f"{key} is a key of the branches {', '.join(paths)} of {choice}, not of every trial: not measured on its own "
            f"(fANOVA needs a key every trial has); its effect counts in {choice}'s share and the keys' together")


def _cell(text: str) -> str:
    return " ".join(str(text).split())


def _source(result: Importances) -> str:
    """Which trials, in words: `27 ok trials, each after 1 epoch (halving's first rung, ...)`."""
    words = _count(result.trials, "ok trial")
    if result.epochs is not None:
        words += f", each after {_count(result.epochs, 'epoch')} (halving's first rung, which every candidate of bracket 0 trained)"
    if result.seeds > 1:
        words += f", each the mean over {result.seeds} seeds"
    if result.confirmed:
        words += ", as the tuning trained them"
    return words


def chart(result: Importances):
    """A horizontal bar per key that varied, one panel per objective, the most important on top;
    a grey bar for what the keys explain only together. Or, without importances, why not."""
    from matplotlib.ticker import PercentFormatter

    if result.reason:
        figure = plots._figure(9, 3)
        figure.text(0.5, 0.6, "No hyperparameter importance for this sweep", ha="center", va="center",
                    fontsize=13, fontweight="bold")
        figure.text(0.5, 0.35, plots.text(textwrap.fill(f"This sweep has {result.reason}.", 90)), ha="center",
                    va="center", fontsize=10)
        return figure
    shown = [key for key in result.keys if key not in result.constant and key not in result.branch_keys]
    labels = [plots.value_label(key, 30) for key in shown] + [TOGETHER]
    columns = len(result.objectives)
    figure = plots._figure(max(9.0, 5.0 * columns), 0.42 * len(labels) + 2.6)
    axes = figure.subplots(1, columns, sharey=True, squeeze=False)[0]
    for index, (ax, objective) in enumerate(zip(axes, result.objectives)):
        metric = plots.text(objective["metric"])
        ax.set_title(f"{metric} ({better(objective['direction'])})", fontsize=11)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=10)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlim(0, 1.12)
        ax.set_xlabel("share of the variance explained")
        ax.grid(axis="x", alpha=0.3)
        note = result.objective_notes[index]
        if note:
            ax.text(0.5, 0.5, plots.text(textwrap.fill(note, 40)), ha="center", va="center", transform=ax.transAxes)
            continue
        shares = [result.scores[key][index] for key in shown] + [result.together(index)]
        colours = [BAR_COLOUR] * len(shown) + [plots.GREY]
        ax.barh(range(len(labels)), shares, color=colours, height=0.65)
        for y, share in enumerate(shares):
            ax.text(share + 0.01, y, "<1%" if 0 < share < 0.005 else f"{share:.0%}", va="center", fontsize=9)
    axes[0].invert_yaxis()  # the most important on top (the axes share it: once is enough)
    for tick in axes[0].get_yticklabels():
        if tick.get_text() == TOGETHER:
            tick.set_color(plots.GREY)
    lines = [
        "Which hyperparameters mattered: the share of the variance each explains alone (grey: only together)",
        f"fANOVA, over a random forest fitted to {_source(result)}",
    ]
    if result.trials < FEW_TRIALS:
        lines.append(f"only {result.trials} trials: read this as a rough hint")
    if result.branch_keys:
        choices = sorted({choice for choice, _ in result.branch_keys.values()})
        lines.append(f"over all {result.trials} trials; the keys of {' and '.join(choices)}'s branches are not measured "
                     f"alone (not every trial has them), they count in {' and '.join(choices)}'s share: "
                     + ", ".join(plots.value_label(key, 30) for key in result.branch_keys))
    if result.constant:
        same = ", ".join(f"{plots.value_label(key, 30)}={plots.value_label(value)}" for key, value in result.constant.items())
        lines.append(f"the same in every trial, so not measured: {same}")
    width = int(12 * figure.get_figwidth())  # characters of a 10-point line across the figure
    figure.suptitle("\n".join(textwrap.fill(line, width) for line in lines), fontsize=10)
    return figure


def write_importance(leaderboard_path, objectives: list[dict], space: dict, seed: int, *, table, plot, rungs=None,
                     seeds=None, confirmed: bool = False, trials_dir=None) -> Importances:
    """results/importance.tsv and results/plots/importance.png for the sweep whose leaderboard is
    given. `space`: the grid as kerasgrid.search.describe_space writes it; `seed`: the forest's."""
    observed = observed_trials(leaderboard_path, objectives, rungs, seeds, trials_dir)
    halving = rungs is not None and len(rungs) > 1
    result = importances(observed, objectives, parse_space(space, "the config"), seed,
                         epochs=rungs[0] if halving else None, seeds=len(seeds or [None]), confirmed=confirmed)
    records.write_text(table, table_text(result))
    plots.save(chart(result), plot)
    return result
