"""Which hyperparameters mattered: fANOVA's importances, read from trial files written here (what a
sweep leaves), and from a real sweep."""

import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from kerasgrid.results.leaderboard import write_leaderboard
from kerasgrid.search import describe_space, importance, parse_space
from kerasgrid.sweep.grid import trial_id
from test_halving import known  # noqa: F401 - the fixture
from test_plots import assert_png, record, rows, sweep_folder, texts, write_run

LOSS = {"metric": "loss", "direction": "min"}
ACCURACY = {"metric": "accuracy", "direction": "max"}
# lr matters (a log range cut into 5), units and act change nothing; opt is the same everywhere.
GRID = {"lr": {"low": 1e-4, "high": 1e-1, "num": 5, "log": True}, "units": [8, 16, 32], "act": ["relu", "tanh"],
        "opt": ["adam"]}


def lr_matters(params):
    """A loss that depends on lr alone (best at 3e-3), and an accuracy on units alone."""
    return {"loss": (math.log10(params["lr"]) + 2.5) ** 2, "accuracy": params["units"] / 32}


def compute(results, grid, objectives=(LOSS,), seed=0, name="importance", **kwargs):
    return importance.write_importance(
        results / "leaderboard.tsv", list(objectives), describe_space(parse_space(grid, "test")), seed,
        table=results / f"{name}.tsv", plot=results / "plots" / f"{name}.png", **kwargs)


def test_the_key_that_matters_gets_nearly_all_the_importance_and_a_constant_key_none(tmp_path):
    results = sweep_folder(tmp_path, GRID, lr_matters)
    computed = compute(results, GRID)
    table = rows(results / "importance.tsv")
    assert list(table[0]) == ["hyperparameter", "loss", "trials", "note"]
    assert table[0]["hyperparameter"] == "lr"  # the most important first
    share = {row["hyperparameter"]: row["loss"] for row in table}
    assert float(share["lr"]) > 0.9 and float(share["units"]) < 0.05 and float(share["act"]) < 0.05
    assert share["opt"] == "" and table[-1] == {"hyperparameter": "opt", "loss": "", "trials": "30",
                                                 "note": "did not vary: adam"}
    assert {row["trials"] for row in table} == {"30"} and computed.together(0) < 0.1

    assert_png(results / "plots" / "importance.png")
    drawn = texts(importance.chart(computed))
    assert "(keys together)" in drawn and "loss (lower is better)" in drawn
    title = next(text for text in drawn if text.startswith("Which hyperparameters mattered")).replace("\n", " ")
    assert "fitted to 30 ok trials" in title and "the same in every trial, so not measured: opt=adam" in title


def test_the_same_trials_give_the_same_importances_whatever_their_order(tmp_path):
    results = sweep_folder(tmp_path, GRID, lr_matters)
    compute(results, GRID)
    first = (results / "importance.tsv").read_bytes()
    compute(results, GRID)
    assert (results / "importance.tsv").read_bytes() == first
    # Ranked the other way round, the leaderboard lists the same trials in the reverse order.
    write_leaderboard(sorted(results.glob("trials/*/metrics.json")), {"metric": "loss", "direction": "max"},
                      list(GRID), results / "leaderboard.tsv")
    compute(results, GRID)
    assert (results / "importance.tsv").read_bytes() == first
    # Another seed fits another forest: the numbers move a little, the verdict does not.
    compute(results, GRID, seed=7, name="other")
    other = {row["hyperparameter"]: row["loss"] for row in rows(results / "other.tsv")}
    assert (results / "other.tsv").read_bytes() != first and float(other["lr"]) > 0.9


def test_each_objective_gets_its_column_and_finds_its_own_key(tmp_path):
    results = sweep_folder(tmp_path, GRID, lr_matters)
    computed = compute(results, GRID, objectives=(LOSS, ACCURACY))
    table = {row["hyperparameter"]: row for row in rows(results / "importance.tsv")}
    assert list(table["lr"]) == ["hyperparameter", "loss", "accuracy", "trials", "note"]
    assert float(table["lr"]["loss"]) > 0.9 and float(table["lr"]["accuracy"]) < 0.05
    assert float(table["units"]["accuracy"]) > 0.9 and float(table["units"]["loss"]) < 0.05
    figure = importance.chart(computed)
    assert len(figure.axes) == 2 and "accuracy (higher is better)" in texts(figure)


def test_a_log_range_counts_on_its_log_scale(tmp_path):
    """60 random trials; the loss falls with lr up to 1e-3 (half of lr's range, on its log scale) and
    is flat above, and rises a little with units. Weighed on lr's linear scale, where 1e-5 to 1e-3 is
    1% of the range, lr would look unimportant (5% against units' 94%, measured)."""
    grid = {"lr": {"low": 1e-5, "high": 1e-1, "log": True}, "units": [8, 16, 32, 64]}
    space = parse_space(grid, "test")
    rng = numpy.random.default_rng(0)
    paths = []
    for _ in range(60):
        params = {key: dim.sample(rng) for key, dim in space.items()}
        loss = max(0.0, -math.log10(params["lr"]) - 3) + params["units"] / 64
        paths.append(write_run(tmp_path / "results" / "trials" / trial_id(params), record(params, {"loss": loss})))
    write_leaderboard(paths, LOSS, list(space), tmp_path / "results" / "leaderboard.tsv")
    compute(tmp_path / "results", grid)
    table = {row["hyperparameter"]: float(row["loss"]) for row in rows(tmp_path / "results" / "importance.tsv")}
    assert table["lr"] > 0.7 and table["units"] < 0.2


def test_an_objective_can_be_a_measure_kerasgrid_took(tmp_path):
    # A record's `measures` (its parameter count, its seconds) are objectives as its metrics are.
    results = tmp_path / "results"
    paths = []
    for units, act in itertools.product([8, 16, 32, 64], ["relu", "tanh"]):
        params = {"act": act, "units": units}
        paths.append(write_run(results / "trials" / trial_id(params),
                               record(params, {"loss": 1.0 / units}, measures={"params_count": 10 * units})))
    write_leaderboard(paths, LOSS, ["act", "units"], results / "leaderboard.tsv")
    grid = {"act": ["relu", "tanh"], "units": [8, 16, 32, 64]}
    compute(results, grid, objectives=(LOSS, {"metric": "params_count", "direction": "min"}))
    table = {row["hyperparameter"]: row for row in rows(results / "importance.tsv")}
    assert {row["trials"] for row in table.values()} == {"8"} and float(table["units"]["params_count"]) > 0.9


def test_only_ok_trials_count(tmp_path):
    bad = {trial_id({"lr": 1e-4, "units": 8, "act": "relu", "opt": "adam"}): "diverged",
           trial_id({"lr": 1e-4, "units": 16, "act": "tanh", "opt": "adam"}): "failed"}
    results = sweep_folder(tmp_path, GRID, lr_matters, statuses=bad)
    observed = importance.observed_trials(results / "leaderboard.tsv", [LOSS])
    assert len(observed) == 28 and not {o.trial_id for o in observed} & set(bad)
    assert [o.trial_id for o in observed] == sorted(o.trial_id for o in observed)
    assert compute(results, GRID).trials == 28


@pytest.mark.parametrize("grid, ok, why", [
    ({"lr": [0.1, 0.2, 0.3], "units": [8]}, 3,
     "3 ok trials, 1 hyperparameter varying among them: importance needs at least 6 ok trials and 2 varying"),
    ({"lr": [0.1, 0.2, 0.3], "units": [8, 16]}, 5, "5 ok trials, 2 hyperparameters varying among them"),
    ({"lr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "units": [8]}, 6, "6 ok trials, 1 hyperparameter varying among them"),
])
def test_too_few_trials_or_keys_leave_a_note_not_a_failure(tmp_path, grid, ok, why):
    failed = {trial_id({"lr": 0.1, "units": 16}): "failed"}
    results = sweep_folder(tmp_path, grid, lambda p: {"loss": p["lr"] * p["units"]}, statuses=failed)
    computed = compute(results, grid)
    assert computed.trials == ok and computed.reason.startswith(why)
    table = rows(results / "importance.tsv")
    assert [row["hyperparameter"] for row in table] == sorted(grid)
    assert {row["loss"] for row in table} == {""} and all(row["note"].startswith(why) for row in table)
    assert_png(results / "plots" / "importance.png")
    drawn = texts(importance.chart(computed))
    assert "No hyperparameter importance for this sweep" in drawn
    assert any(text.replace("\n", " ").startswith(f"This sweep has {why}") for text in drawn)


def test_no_trial_ok_leaves_a_note(tmp_path):
    grid = {"lr": [0.1, 0.2], "units": [8, 16]}
    failed = {trial_id({"lr": lr, "units": units}): "failed" for lr in (0.1, 0.2) for units in (8, 16)}
    results = sweep_folder(tmp_path, grid, lambda p: {"loss": 1.0}, statuses=failed)
    assert compute(results, grid).reason.startswith("0 ok trials, 0 hyperparameters varying")
    assert_png(results / "plots" / "importance.png")


def test_an_objective_every_trial_scored_the_same_on_is_left_empty_with_why(tmp_path):
    results = sweep_folder(tmp_path, GRID, lambda p: {**lr_matters(p), "accuracy": 1.0})
    computed = compute(results, GRID, objectives=(LOSS, ACCURACY))
    table = {row["hyperparameter"]: row for row in rows(results / "importance.tsv")}
    assert float(table["lr"]["loss"]) > 0.9 and table["lr"]["accuracy"] == ""
    assert table["lr"]["note"] == "every trial scored the same accuracy: no variance to explain"
    drawn = [text.replace("\n", " ") for text in texts(importance.chart(computed))]
    assert "every trial scored the same accuracy: no variance to explain" in drawn


def test_with_halving_every_candidate_counts_at_the_first_rung(tmp_path):
    """The first rung's losses depend on a; those of the trials promoted (the best a) on b alone.
    Judged from where each stopped, b would look as important as a; from the first rung, a is."""
    grid = {"a": [1, 2, 3, 4], "b": [1, 2, 3]}
    rungs = [1, 3, 9]
    trials = results = tmp_path / "results"
    paths = []
    for a, b in itertools.product(grid["a"], grid["b"]):
        params = {"a": a, "b": b}
        folder = trials / "trials" / trial_id(params)
        write_run(folder / "rungs" / "1", record(params, {"loss": 10.0 * a}, epochs_target=1, epochs_run=1))
        last = folder / "rungs" / "1"
        if a == 1:  # promoted to the rungs after: every b of a = 1
            write_run(folder / "rungs" / "3", record(params, {"loss": float(b)}, epochs_target=3, epochs_run=3))
            write_run(folder, record(params, {"loss": b / 10}, epochs_target=9, epochs_run=9))
            last = folder
        paths.append(last / "metrics.json")
    write_leaderboard(paths, LOSS, ["a", "b"], results / "leaderboard.tsv", rungs=rungs)
    computed = compute(results, grid, rungs=rungs)
    assert computed.trials == 12 and computed.epochs == 1
    table = {row["hyperparameter"]: float(row["loss"]) for row in rows(results / "importance.tsv")}
    assert table["a"] > 0.9 and table["b"] < 0.05
    drawn = [text.replace("\n", " ") for text in texts(importance.chart(computed))]
    assert any("12 ok trials, each after 1 epoch (halving's first rung, which every candidate of bracket 0 trained)" in text
               for text in drawn)


def test_with_repeats_a_trial_counts_by_its_mean_over_seeds_and_only_if_every_seed_is_ok(tmp_path):
    results = tmp_path / "results"
    paths = []
    for lr, units in itertools.product([0.1, 0.2], [8, 16]):
        params = {"lr": lr, "units": units}
        folder = results / "trials" / trial_id(params)
        paths.append(write_run(folder, record(params, {"loss": lr}, seed=0)))
        status = "diverged" if (lr, units) == (0.2, 16) else "ok"
        paths.append(write_run(folder / "seeds" / "1", record(params, {"loss": lr + 1.0}, status, seed=1)))
    write_leaderboard(paths, LOSS, ["lr", "units"], results / "leaderboard.tsv", repeats=2)
    observed = importance.observed_trials(results / "leaderboard.tsv", [LOSS], seeds=[0, 1])
    assert sorted((o.params["lr"], o.params["units"], *o.values) for o in observed) == [
        (0.1, 8, pytest.approx(0.6)), (0.1, 16, pytest.approx(0.6)), (0.2, 8, pytest.approx(0.7))]


def test_it_loads_no_tensorflow(tmp_path):
    results = sweep_folder(tmp_path, GRID, lr_matters)
    probe = (
        "import sys\n"
        "from test_importance import GRID, compute\n"
        "from pathlib import Path\n"
        f"compute(Path({str(results)!r}), GRID)\n"
        "print('TENSORFLOW_LOADED', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent)
    assert "TENSORFLOW_LOADED False False" in out.stdout, out.stdout + out.stderr


def test_a_sweep_of_too_few_trials_writes_both_files_with_why_and_succeeds(tiny_sweep):
    # The tiny sweep: 4 trials ok, lr and act_in vary, act_out and loss do not.
    table = rows(tiny_sweep.path("results/importance.tsv"))
    assert [row["hyperparameter"] for row in table] == ["act_in", "act_out", "loss", "lr"]
    assert {(row["val_loss"], row["trials"], row["note"]) for row in table} == {
        ("", "4", "4 ok trials, 2 hyperparameters varying among them: importance needs at least 6 ok trials and 2 "
                  "varying hyperparameters")}
    assert_png(tiny_sweep.path("results/plots/importance.png"))


def test_a_halving_sweep_finds_the_one_key_its_loss_depends_on(known):
    """KNOWN_LOSSES' model outputs q and never learns: its loss is q squared at every epoch, and
    colour changes nothing. 10 candidates (q a range: 0.1 to 0.5), in Hyperband's 3 brackets (the
    default): the first trains all 10 for 1 epoch, 4 go on to epoch 3, 2 to epoch 9; the later two
    start 5 and 4 of them at epochs 3 and 9. Importance still compares all 10 at the first rung."""
    config = {"model": "known.py:build_model", "data": {"train": "known.py:data"},
              "budget": {"epochs": 9, "steps_per_epoch": 1}, "search": {"halving": {"eta": 3, "min_epochs": 1}},
              "grid": {"q": {"low": 0.1, "high": 0.5, "num": 5}, "colour": ["red", "blue"]}}
    known.sweep(config)
    table = {row["hyperparameter"]: row for row in rows(known.path("results/importance.tsv"))}
    assert float(table["q"]["loss"]) > 0.9 and float(table["colour"]["loss"]) < 0.05
    assert {row["trials"] for row in table.values()} == {"10"}  # every candidate, at the first rung
    # Some trials went furthest in the last bracket (4 start at epoch 9; the first brings 2 there).
    assert "2" in {row["bracket"] for row in rows(known.path("results/leaderboard.tsv"))}
    assert_png(known.path("results/plots/importance.png"))
    assert known.path("logs/importance.log").read_text() == ""  # nothing printed: no Optuna chatter
    assert "Nothing to be done" in known.sweep(config).output

    # The report's captions say which trials each figure compares.
    known.run("--configfile", "my.yaml", "--report", "results/report.html")
    html = known.path("results/report.html").read_text(encoding="utf-8")
    captions = {entry["name"]: entry["caption"] for entry in json.loads(re.search(r"var results = ({.*});\n", html).group(1)).values()}
    assert "With halving, every candidate counts at the first rung" in captions["importance.png"]
    assert "coloured by the rung its trial stopped" in captions["param_effects.png"]
