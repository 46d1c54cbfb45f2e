"""The figures, drawn from the files of real sweeps: valid PNGs that mark what went wrong."""

import json

import matplotlib.image
import pytest

from kerasgrid.results import plots
from kerasgrid.results.leaderboard import read_leaderboard, write_leaderboard

FIGURES = ["learning_curves", "param_effects", "ranking"]
LOSS = {"metric": "loss", "direction": "min"}


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 400 <= width <= 3000 and 250 <= height <= 3000, (path, width, height)


def texts(figure):
    """Every piece of text drawn on the figure: titles, labels, ticks, legends, annotations."""
    return [t.get_text() for t in figure.findobj(lambda artist: hasattr(artist, "get_text")) if t.get_text()]


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
    assert texts(ranking).count(" failed: no loss") == 2 and texts(ranking).count(" diverged: no loss") == 2
    assert "Trials ranked by loss: 6 trials (2 ok, 2 diverged, 2 failed)" in texts(ranking)

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
