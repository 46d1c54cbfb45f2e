"""The figures, drawn from the files of real sweeps and of sweeps written here: valid PNGs that mark
what went wrong and say what they show."""

import itertools
import json
import math

import matplotlib.colors
import matplotlib.image
import pytest

from kerasgrid.results import front_plot, plots
from kerasgrid.results.leaderboard import read_leaderboard, write_leaderboard
from kerasgrid.results.tables import front_lines, page
from kerasgrid.search import describe_space, parse_space
from kerasgrid.sweep.grid import trial_id

FIGURES = ["learning_curves", "param_effects", "ranking"]
LOSS = {"metric": "loss", "direction": "min"}


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 400 <= width <= 3000 and 250 <= height <= 3000, (path, width, height)


def texts(figure):
    """Every piece of text drawn on the figure: titles, labels, ticks, legends, annotations."""
    return [t.get_text() for t in figure.findobj(lambda artist: hasattr(artist, "get_text")) if t.get_text()]


def record(params, metrics, status="ok", **extra):
    """A trial's metrics.json as training writes it, with the final value of each metric given."""
    return {"trial_id": trial_id(params), "status": status, "params": params, "error": None if status == "ok" else "E",
            "metrics": {name: {"final": value} for name, value in metrics.items()} if status == "ok" else {},
            "fit_seconds": 1.0, **extra}


def write_run(folder, rec):
    """A run's folder: its metrics.json and params.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(rec))
    (folder / "params.json").write_text(json.dumps(rec["params"]))
    return folder / "metrics.json"


def sweep_folder(tmp_path, grid, metrics, objective=LOSS, statuses=None):
    """A results folder of a finished plain sweep over every combination of `grid`: each trial's
    metrics are `metrics(params)`, its status `statuses.get(trial id, "ok")`; then its leaderboard."""
    space = parse_space(grid, "test")
    keys = list(space)
    paths = []
    for values in itertools.product(*(dim.finite_values() for dim in space.values())):
        params = dict(zip(keys, values))
        status = (statuses or {}).get(trial_id(params), "ok")
        paths.append(write_run(tmp_path / "results" / "trials" / trial_id(params), record(params, metrics(params), status)))
    write_leaderboard(paths, objective, keys, tmp_path / "results" / "leaderboard.tsv")
    return tmp_path / "results"


def rows(path):
    """A TSV file's rows, as dicts by column."""
    header, *lines = path.read_text().splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"))) for line in lines]


def test_a_sweep_draws_three_pngs(tiny_sweep):
    for name in FIGURES:
        assert_png(tiny_sweep.path(f"results/plots/{name}.png"))
    assert "Adding" not in tiny_sweep.path("logs/plots.log").read_text()  # nothing but our output there


def test_failed_and_diverged_trials_are_shown_and_marked(faulty_sweep):
    for name in FIGURES:
        assert_png(faulty_sweep.path(f"results/plots/{name}.png"))
    trials = plots.load_trials(faulty_sweep.path("results/leaderboard.tsv"), LOSS)
    assert [t.status for t in trials] == ["ok", "ok", "diverged", "diverged", "failed", "failed"]
    keys = ["fault", "shape"]

    ranking = plots.ranking(trials, LOSS, keys)
    ticks = ranking.axes[0].get_yticklabels()
    assert [t.get_text().split()[0] for t in ticks] == ["#1", "#2", "#3", "#4", "#5", "#6"]
    assert {t.get_color() for t in ticks[2:4]} == {plots.STATUS_COLOURS["diverged"]}
    assert {t.get_color() for t in ticks[4:]} == {plots.STATUS_COLOURS["failed"]}
    # Why each did not finish, as the console and the page say it (kerasgrid.trial.reasons).
    assert texts(ranking).count(" failed: RuntimeError: build_model refuses fault=raise (faulty.py:16)") == 2
    assert texts(ranking).count(" diverged: loss became NaN or infinite in epoch 1; training stopped there") == 2
    assert "Trials ranked by loss (lower is better): 6 trials (2 ok, 2 diverged, 2 failed)" in texts(ranking)

    effects = texts(plots.param_effects(trials, LOSS, keys))
    assert "[1, 2]\n(1 diverged, 1 failed)" in effects and "flat\n(1 diverged, 1 failed)" in effects
    assert "raise\n(2 failed)" in effects

    curves = texts(plots.learning_curves(trials, LOSS, keys))
    assert "2 diverged in epoch 1 (no finite value to draw)" in curves
    assert "Learning curves: loss per epoch\n6 trials (2 ok, 2 diverged, 2 failed); 2 failed, so no curve" in curves


def test_a_single_trial_is_plotted(tiny_sweep, tmp_path):
    winner = read_leaderboard(tiny_sweep.path("results/leaderboard.tsv"))[0]["trial_id"]
    trials_dir = tiny_sweep.path("results/trials")
    objective = {"metric": "val_loss", "direction": "min"}
    grid_keys = ["act_in", "act_out", "loss", "lr"]
    write_leaderboard([trials_dir / winner / "metrics.json"], objective, grid_keys, tmp_path / "leaderboard.tsv")
    paths = {name: tmp_path / f"{name}.png" for name in FIGURES}
    plots.write_plots(tmp_path / "leaderboard.tsv", objective, grid_keys, trials_dir=trials_dir,
                      **{f"{name}_png": path for name, path in paths.items()})
    for path in paths.values():
        assert_png(path)
    trials = plots.load_trials(tmp_path / "leaderboard.tsv", objective, trials_dir)
    assert len(trials) == 1 and len(plots.param_effects(trials, objective, grid_keys).axes) == 6  # 4 keys on 2 rows


@pytest.mark.parametrize("value, label", [
    ([1, [2, "three"]], '[1, [2, "three"]]'),
    (None, "null"),
    (True, "true"),
    (1.0, "1.0"),
    ("$(touch x) $HOME", r"\$(touch x) \$HOME"),
    ("x" * 40, "x" * 21 + "…"),
])
def test_grid_values_become_short_literal_labels(value, label):
    assert plots.value_label(value) == label


def test_values_are_ordered_numbers_first_then_by_their_text():
    trials = [plots.Trial(i, f"t{i}", "ok", 0.1, {"k": v}) for i, v in enumerate([10, "b", 2.5, [1], None, 1, 1.0])]
    assert [json.dumps(v) for v in plots.categories(trials, "k")] == ["1", "1.0", "2.5", "10", '"b"', "[1]", "null"]


def test_a_sweep_without_an_ok_trial_is_plotted(faulty_sweep, tmp_path):
    trials_dir = faulty_sweep.path("results/trials")
    bad = [row["trial_id"] for row in read_leaderboard(faulty_sweep.path("results/leaderboard.tsv")) if row["status"] != "ok"]
    write_leaderboard([trials_dir / t / "metrics.json" for t in bad], LOSS, ["fault", "shape"], tmp_path / "leaderboard.tsv")
    trials = plots.load_trials(tmp_path / "leaderboard.tsv", LOSS, trials_dir)
    assert "no trial finished ok" in texts(plots.param_effects(trials, LOSS, ["fault", "shape"]))
    assert "no trial logged a finite value" in texts(plots.learning_curves(trials, LOSS, ["fault", "shape"]))
    plots.save(plots.ranking(trials, LOSS, ["fault", "shape"]), tmp_path / "ranking.png")
    assert_png(tmp_path / "ranking.png")


def test_the_optimization_history_draws_the_best_so_far_in_the_order_proposed(tmp_path):
    losses = {"t1": 0.5, "t2": None, "t3": 0.7, "t4": 0.2, "t5": 0.3}  # None: failed
    paths = []
    for trial, value in losses.items():
        record = {"trial_id": trial, "status": "ok" if value is not None else "failed", "params": {"x": len(paths)},
                  "metrics": {"loss": {"final": value}} if value is not None else {}, "fit_seconds": 1.0,
                  "error": None if value is not None else "E: no"}
        paths.append(tmp_path / "trials" / trial / "metrics.json")
        paths[-1].parent.mkdir(parents=True)
        paths[-1].write_text(json.dumps(record))
        (paths[-1].parent / "params.json").write_text(json.dumps(record["params"]))
    rounds = {"t1": 0, "t2": 0, "t3": 1, "t4": 1, "t5": 2}
    write_leaderboard(paths, LOSS, ["x"], tmp_path / "leaderboard.tsv", rounds=rounds)
    trials = plots.load_trials(tmp_path / "leaderboard.tsv", LOSS)
    assert {t.trial_id: t.round for t in trials} == rounds
    assert plots.trial_label(trials[0], ["x"]) == "#1 t4 (round 1): x=3"

    by_id = {t.trial_id: t for t in trials}
    figure = plots.optimization_history([by_id[t] for t in losses], LOSS)
    best = next(line for line in figure.axes[0].get_lines() if line.get_label().startswith("best"))
    assert list(best.get_xdata()) == [1, 2, 3, 4, 5] and list(best.get_ydata()) == [0.5, 0.5, 0.5, 0.2, 0.2]
    drawn = texts(figure)
    assert "best loss so far: 0.2" in drawn and "1 failed (no loss)" in drawn
    assert "Optimization history: loss of each trial and the best so far\n5 trials in 3 rounds (4 ok, 1 failed)" in drawn
    assert ["round 0", "round 1", "round 2"] == [text for text in drawn if text.startswith("round ")]
    plots.write_optimization_history(tmp_path / "leaderboard.tsv", list(losses), LOSS, tmp_path / "history.png")
    assert_png(tmp_path / "history.png")


# lr and dropout are ranges (lr log), act a list; the loss depends on lr and dropout.
RANGES = {"lr": {"low": 1e-4, "high": 1e-1, "num": 4, "log": True}, "dropout": {"low": 0.0, "high": 0.5, "num": 3},
          "act": ["relu", "tanh"]}


def dots(ax):
    """The (x, y) of every dot of a panel's scatter plots but the winner's star, and their colours."""
    found = [(tuple(xy), tuple(colour)) for c in ax.collections if c.get_sizes()[0] < 100
             for xy, colour in zip(c.get_offsets(), itertools.cycle(c.get_facecolors()))]
    return [xy for xy, _ in found], [colour for _, colour in found]


def test_ranges_are_drawn_on_their_numeric_axis_and_log_ranges_on_a_log_one(tmp_path):
    lrs = parse_space(RANGES, "test")["lr"].finite_values()
    bad = {trial_id({"act": "tanh", "dropout": 0.25, "lr": lrs[-1]}): "diverged"}
    results = sweep_folder(tmp_path, RANGES, lambda p: {"loss": abs(math.log10(p["lr"]) + 2.5) + p["dropout"]},
                           statuses=bad)
    trials = plots.load_trials(results / "leaderboard.tsv", LOSS)
    space = describe_space(parse_space(RANGES, "test"))
    figure = plots.param_effects(trials, LOSS, ["act", "dropout", "lr"], space)
    act, dropout, lr = figure.axes
    assert (act.get_xscale(), dropout.get_xscale(), lr.get_xscale()) == ("linear", "linear", "log")
    assert [t.get_text() for t in act.get_xticklabels()] == ["relu", "tanh\n(1 diverged)"]  # a list stays categories
    # Each dot sits at its trial's value: 0.0003 and 0.0075 are not one tick apart but where they are.
    for ax, key in ((lr, "lr"), (dropout, "dropout")):
        xy, _ = dots(ax)
        ok = [t for t in trials if t.status == "ok"]
        assert sorted(xy) == sorted((t.params[key], t.value) for t in ok)
    assert lr.get_xlabel() == "lr (log scale)" and dropout.get_xlabel() == "dropout (linear scale)"
    # The diverged trial: an x at its value; a line through the medians at each value of a range.
    crosses = [line for line in lr.get_lines() if line.get_marker() == "x"]
    assert [list(line.get_xdata()) for line in crosses] == [[lrs[-1]]]
    assert [line.get_color() for line in crosses] == [plots.STATUS_COLOURS["diverged"]]
    medians = [line for line in dropout.get_lines() if line.get_marker() != "x" and len(line.get_xdata()) == 3]
    assert list(medians[0].get_xdata()) == [0.0, 0.25, 0.5]
    title = figure.get_suptitle().replace("\n", " ")
    assert "ranges on their numeric axis (log scale where the range is log); lines: the median at each value" in title
    assert "on a numeric axis, an x: orange diverged, red failed" in title

    # Without the space (the plots of a sweep before ranges were drawn apart): categories, as before.
    figure = plots.param_effects(trials, LOSS, ["act", "dropout", "lr"])
    assert {ax.get_xscale() for ax in figure.axes} == {"linear"}
    assert [t.get_text() for t in figure.axes[2].get_xticklabels()][:2] == ["0.0001", "0.001"]


def test_with_halving_each_dot_has_its_rungs_colour_and_the_figure_says_so(tmp_path):
    """27 candidates: rungs end at 1, 3 and 9 epochs; 9 go on to the second, 3 to the last."""
    space = parse_space({"lr": {"low": 1e-4, "high": 1e-1, "num": 9, "log": True}, "act": ["relu", "tanh", "swish"]},
                        "test")
    rungs = [1, 3, 9]

    def loss(params, epochs):
        return abs(math.log10(params["lr"]) + 2.5) + 1 / epochs + (0.1 if params["act"] == "tanh" else 0)

    candidates = [dict(zip(space, values)) for values in itertools.product(*(d.finite_values() for d in space.values()))]
    paths, reached = [], {}
    for place, params in enumerate(sorted(candidates, key=lambda p: loss(p, 1))):
        rung = 2 if place < 3 else 1 if place < 9 else 0
        for index in range(rung + 1):
            folder = tmp_path / "results" / "trials" / trial_id(params)
            folder = folder if index == 2 else folder / "rungs" / str(rungs[index])
            path = write_run(folder, record(params, {"loss": loss(params, rungs[index])}, epochs_target=rungs[index],
                                            epochs_run=rungs[index]))
        paths.append(path)
        reached[(params["lr"], loss(params, rungs[rung]))] = rung
    write_leaderboard(paths, LOSS, list(space), tmp_path / "leaderboard.tsv", rungs=rungs)
    trials = plots.load_trials(tmp_path / "leaderboard.tsv", LOSS, tmp_path / "results" / "trials", rungs=rungs)
    assert sorted(t.rung for t in trials) == [0] * 18 + [1] * 6 + [2] * 3

    figure = plots.param_effects(trials, LOSS, list(space), describe_space(space), rungs)
    colours = [matplotlib.colors.to_rgba(colour) for colour in plots._rung_colours(3)]
    xy, drawn = dots(figure.axes[1])  # lr
    assert len(xy) == 27 and all(drawn[i][:3] == colours[reached[xy[i]]][:3] for i in range(27))
    assert not [line for ax in figure.axes for line in ax.get_lines() if line.get_marker() != "x"]  # no boxes, no medians
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["rung 0, 1 epoch: 18 trials", "rung 1, 3 epochs: 6 trials", "rung 2, 9 epochs: 3 trials"]
    assert "compare dots of one colour" in figure.get_suptitle().replace("\n", " ")

    # With Hyperband's brackets, the dot's shape says the bracket where the trial went furthest.
    ids = sorted(trial_id(p) for p in candidates)
    brackets = {trial: (1 if n % 3 == 1 else 2 if n % 3 == 2 else 0) for n, trial in enumerate(ids)}
    write_leaderboard(paths, LOSS, list(space), tmp_path / "leaderboard.tsv", rungs=rungs, brackets=brackets)
    trials = plots.load_trials(tmp_path / "leaderboard.tsv", LOSS, tmp_path / "results" / "trials", rungs=rungs)
    assert {t.trial_id: t.bracket for t in trials} == brackets
    figure = plots.param_effects(trials, LOSS, list(space), describe_space(space), rungs)
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend[3:] == ["bracket 0 (from 1 epoch)", "bracket 1 (from 3 epochs)", "bracket 2 (from 9 epochs)"]
    assert len(figure.axes[1].collections) == 4  # a scatter per bracket, and the winner's star


TWO = {"metric": "val_loss", "direction": "min", "constraints": [], "winner": "first",
       "objectives": [{"metric": "val_loss", "direction": "min"}, {"metric": "params_count", "direction": "min"}]}


def test_by_pareto_front_every_view_follows_the_leaderboard_with_each_objective_and_key(tmp_path):
    """The issue's case: front 1 ends with val_loss 0.13, front 2 starts with 0.0963; a key of one
    branch of a `choose` (momentum: sgd's) that adam's trials do not have."""
    adam, sgd = {"optimizer": "adam", "lr": 0.01}, {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}
    points = [(0.09, 500, {**adam, "units": 64}), (0.10, 100, {**sgd, "units": 8}), (0.13, 50, {**adam, "units": 4}),
              (0.12, 600, {**sgd, "units": 96}), (0.0963, 700, {**sgd, "units": 128})]
    paths = [write_run(tmp_path / "results" / "trials" / trial_id(params),
                       record(params, {"val_loss": loss}, measures={"params_count": size}))
             for loss, size, params in points]
    keys = ["lr", "momentum", "optimizer", "units"]
    write_leaderboard(paths, TWO, keys, tmp_path / "results" / "leaderboard.tsv")
    rows = read_leaderboard(tmp_path / "results" / "leaderboard.tsv")
    assert [(r["val_loss"], r["pareto_rank"]) for r in rows] == [
        ("0.09", "1"), ("0.1", "1"), ("0.13", "1"), ("0.0963", "2"), ("0.12", "2")]
    assert [r["momentum"] for r in rows] == ["n/a", "0.9", "n/a", "0.9", "0.9"]  # not blank, not null

    trials = plots.load_trials(tmp_path / "results" / "leaderboard.tsv", TWO)
    figure = plots.ranking(trials, TWO, keys)
    ax = figure.axes[0]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert [label.split()[0] for label in labels] == ["#1", "#2", "#3", "#4", "#5"]  # the leaderboard's order
    assert [bar.get_width() for bar in ax.patches] == [float(r["val_loss"]) for r in rows]
    assert figure.get_suptitle().replace("\n", " ").startswith(
        "Trials ranked by Pareto front of val_loss (lower is better), params_count (lower is better): 5 trials")
    assert [t for t in texts(figure) if "front" in t and t.startswith(" 0")] == [
        " 0.09  (front 1; params_count = 500)", " 0.1  (front 1; params_count = 100)",
        " 0.13  (front 1; params_count = 50)", " 0.0963  (front 2; params_count = 700)",
        " 0.12  (front 2; params_count = 600)"]
    assert [line.get_ydata()[0] for line in ax.get_lines()] == [2.5]  # the dotted line between the fronts
    # Every varying key in every label, wrapped rather than cut; adam's momentum as the TSV has it.
    assert all(f"{key}=" in label.replace("\n", " ") for label in labels for key in keys)
    assert "momentum=n/a" in labels[0] and "…" not in "".join(labels)
    assert "momentum=n/a" in plots.trial_label(trials[0], keys) and "\n" in plots.trial_label(trials[0], keys, 20)

    front = front_plot.front_figure(rows, TWO["objectives"])
    key = next(t for t in texts(front) if t.startswith("#1 "))
    assert key.splitlines() == [f"#{r['rank']} {r['trial_id'][:8]}: lr={r['lr']}, momentum={r['momentum']}, "
                                f"optimizer={r['optimizer']}, units={r['units']}" for r in rows[:3]]
    assert {"#1", "#2", "#3"} <= set(texts(front))  # each front point marked with its rank
    console = front_lines(rows)
    assert console[1].endswith("(lr=0.01, momentum=n/a, optimizer=adam, units=64)")
    html = page(rows, TWO)
    assert "ranked by Pareto front of val_loss (lower is better), params_count (lower is better);" in html
    assert "params_count = 500 (lower is better); Pareto front 1" in html and "<td>n/a</td>" in html
