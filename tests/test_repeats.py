"""Repeats: every combination trains with several seeds, each run cached, ranked by the mean."""

import json
import re
import statistics

import numpy as np
import pytest
import yaml

from kerasgrid.cli import summary_rows
from kerasgrid.config import sweep_from_config
from kerasgrid.results.leaderboard import read_leaderboard, write_leaderboard
from kerasgrid.results.ranking import rank
from kerasgrid.results.repeats import combine
from conftest import ETA
from test_config import REPO, full_config
from test_halving import rank_only

MIN = {"metric": "loss", "direction": "min"}


def run(trial_id, seed, loss=None, status="ok", error=None):
    metrics = {} if loss is None else {"loss": {"final": loss}}
    return {"trial_id": trial_id, "seed": seed, "status": status, "error": error, "params": {"q": trial_id},
            "metrics": metrics, "fit_seconds": 1.0}


def test_a_trial_with_several_seeds_is_one_entry_with_their_mean_std_and_count():
    records = [run("a", 1, 0.4), run("a", 0, 0.2), run("a", 2, 0.3), run("b", 0, 0.1)]
    a, b = combine(records, [r["metrics"]["loss"]["final"] for r in records])
    assert (a["trial_id"], a["seed"], a["runs"], a["run_seeds"], a["run_values"]) == ("a", 0, 3, [0, 1, 2], [0.2, 0.4, 0.3])
    assert a["objective_value"] == pytest.approx(0.3) and a["objective_std"] == pytest.approx(0.1)
    assert a["fit_seconds"] == 3.0
    assert b == {**records[3], "objective_value": 0.1}  # one run: the record as it is, as without repeats


def test_a_combination_is_ok_only_if_every_seed_is():
    records = [run("a", 0, 0.1), run("a", 1, status="diverged", error="loss became NaN"), run("a", 2, 0.1),
               run("b", 0, 0.5), run("b", 1, 0.5)]
    ranked = rank(records, MIN)
    assert [(r["trial_id"], r["status"], r["objective_value"]) for r in ranked] == [("b", "ok", 0.5), ("a", "diverged", None)]
    assert ranked[1]["error"] == ranked[1]["reason"] == "seed 1: loss became NaN"


def test_combinations_rank_by_the_mean_not_by_their_first_seed(tmp_path):
    records = [run("a", 0, 0.10), run("a", 1, 0.50), run("b", 0, 0.20), run("b", 1, 0.22)]
    paths = []
    for record in records:
        path = tmp_path / "trials" / record["trial_id"] / str(record["seed"]) / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record))
        paths.append(path)
    write_leaderboard(paths, MIN, ["q"], tmp_path / "leaderboard.tsv", repeats=2)
    rows = read_leaderboard(tmp_path / "leaderboard.tsv")
    assert list(rows[0]) == ["rank", "trial_id", "q", "objective", "status", "fit_seconds", "reason", "error", "std", "seeds"]
    assert [(r["trial_id"], float(r["objective"]), float(r["std"]), r["seeds"]) for r in rows] == [
        ("b", pytest.approx(0.21), pytest.approx(statistics.stdev([0.2, 0.22])), "2"),
        ("a", pytest.approx(0.30), pytest.approx(statistics.stdev([0.1, 0.5])), "2")]


def test_a_config_without_the_new_keys_keeps_its_settings(monkeypatch):
    monkeypatch.chdir(REPO)  # where the config's references point
    # What every trial of a sweep made before fractions and repeats was trained with: a change here
    # would retrain every finished trial. (Only TRAINING_VERSION may move, and only on purpose: 3 since
    # whole arrays are shuffled by NumPy, the same on every backend.)
    assert sweep_from_config(full_config(), "a.yaml").settings() == {
        "budget": {"batch_size": 32, "epochs": 1, "steps_per_epoch": 2, "validation_steps": 1},
        "model": "examples/digits.py:build_model",
        "seed": 0,
        "train": "examples/digits.py:train_data",
        "training_version": 3,
        "validation": "examples/digits.py:val_data",
    }
    with_defaults = full_config(repeats=1)
    with_defaults["data"]["fraction"] = 1
    assert sweep_from_config(with_defaults, "a.yaml").settings() == sweep_from_config(full_config(), "a.yaml").settings()
    repeated = sweep_from_config(full_config(repeats=3, seed=5), "a.yaml")
    assert repeated.seeds == [5, 6, 7] and repeated.settings(6) == {**repeated.settings(), "seed": 6}


# A model whose loss depends on the seed in a known way: it predicts q + 0.1 u for targets 0 and never
# learns, where u is the first uniform draw of NumPy's generator as keras.utils.set_random_seed(seed)
# leaves it; so the loss is (q + 0.1 u)^2 at every epoch.
NOISY = """
import keras
import numpy as np


def build_model(params):
    noise = 0.1 * np.random.uniform(-1, 1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(params["q"] + noise))])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


def data():
    return np.zeros((4, 1), dtype="float32"), np.zeros((4, 1), dtype="float32")
"""
Q = [-0.005, 0.01, 0.2]


def expected_loss(q, seed):
    np.random.seed(seed)
    return (q + 0.1 * np.random.uniform(-1, 1)) ** 2


def noisy_config(**overrides):
    config = {
        "model": "noisy.py:build_model",
        "data": {"train": "noisy.py:data"},
        "budget": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4},
        "grid": {"q": Q},
    }
    config.update(overrides)
    return config


@pytest.fixture
def noisy(workflow):
    workflow.path("noisy.py").write_text(NOISY, encoding="utf-8")
    return workflow


def ranking(workflow):
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    return [float(row["q"]) for row in rows], rows


def trained_runs(output) -> set[tuple[str, int]]:
    """(trial id, seed) of the runs a snakemake run trained, from the train jobs' messages: "Model 2
    of 3: q=0.01 (trial <id>), seed 1" with repeats, without the seed (the config's, 0) otherwise."""
    found = re.findall(r"^Job \d+: Model \d+ of \d+: .*\(trial (\w{12})\)(?:, seed (\d+))?" + ETA + "$", output, flags=re.M)
    return {(trial, int(seed or 0)) for trial, seed in found}


def test_repeats_rank_by_the_mean_and_each_seed_is_a_run_of_its_own(noisy):
    noisy.sweep(noisy_config())
    base_ranking, base_rows = ranking(noisy)
    before = noisy.snapshot()
    # With one seed, the seed's noise decides: q = -0.005 wins. Over seeds 0, 1 and 2, q = 0.01 does.
    assert base_ranking == sorted(Q, key=lambda q: expected_loss(q, 0))[:3] == [-0.005, 0.01, 0.2]

    result = noisy.sweep(noisy_config(repeats=3))
    # Only the new seeds trained, each its own job; the first seed's runs were not touched.
    assert trained_runs(result.output) == {(row["trial_id"], seed) for row in base_rows for seed in (1, 2)}
    assert all(noisy.snapshot()[path] == stamp for path, stamp in before.items())
    means, rows = ranking(noisy)
    assert summary_rows(noisy.path("results")) == rows  # `kerasgrid summary` is the leaderboard
    assert means == sorted(Q, key=lambda q: np.mean([expected_loss(q, s) for s in range(3)])) == [0.01, -0.005, 0.2]
    for row in rows:
        q, trial = float(row["q"]), row["trial_id"]
        losses = [json.loads(noisy.path(f"results/trials/{trial}{path}/metrics.json").read_text())["metrics"]["loss"]["final"]
                  for path in ("", "/seeds/1", "/seeds/2")]
        assert losses == pytest.approx([expected_loss(q, s) for s in range(3)], rel=1e-4)
        assert float(row["objective"]) == pytest.approx(statistics.fmean(losses))
        assert float(row["std"]) == pytest.approx(statistics.stdev(losses)) and row["seeds"] == "3"
    best = yaml.safe_load(noisy.path("results/best_params.yaml").read_text())
    assert best["params"] == {"q": 0.01} and best["repeats"]["seeds"] == [0, 1, 2]
    assert best["objective"]["value"] == pytest.approx(statistics.fmean(best["repeats"]["values"]))
    assert f"Best trial: {rows[0]['trial_id']} with loss = {best['objective']['value']:.6g} ± " in result.output
    assert "Best params found: {'q': 0.01}" in result.output.splitlines()
    assert "retrained trial" in noisy.path("logs/best_model.log").read_text()  # the first seed's run, reproduced

    lowered = noisy.sweep(noisy_config(repeats=2))
    assert trained_runs(lowered.output) == set()  # fewer seeds: nothing to train, only to rank
    assert {row["seeds"] for row in ranking(noisy)[1]} == {"2"}

    back = noisy.sweep(noisy_config())
    assert trained_runs(back.output) == set()
    assert ranking(noisy)[1] == base_rows  # repeats: 1 is exactly the leaderboard of before


def test_halving_with_repeats_promotes_by_the_mean_over_seeds(noisy):
    config = noisy_config(repeats=3, budget={"epochs": 3, "steps_per_epoch": 1, "batch_size": 4},
                          search={"halving": {"eta": 3, "min_epochs": 1, "brackets": 1}})  # successive halving
    rank_only(noisy, config)
    promoted = json.loads(noisy.path("results/brackets/0/3.json").read_text())
    rows = {float(row["q"]): row for row in ranking(noisy)[1]}
    # 3 candidates, 1 goes on: the best mean over three seeds, q = 0.01 (its first seed alone ranks 2nd).
    assert promoted["entrants"] == 3 and promoted["promoted"] == [rows[0.01]["trial_id"]]
    assert [(q, rows[q]["rung"], rows[q]["seeds"]) for q in Q] == [(-0.005, "0", "3"), (0.01, "1", "3"), (0.2, "0", "3")]
    for seed_path in ("", "/seeds/1", "/seeds/2"):  # every seed of the promoted trial went on from its own rung
        record = json.loads(noisy.path(f"results/trials/{rows[0.01]['trial_id']}{seed_path}/metrics.json").read_text())
        assert record["epochs_run"] == 3 and record["resumed_from_epoch"] == 1


def test_an_adaptive_search_with_repeats_trains_every_seed_and_is_told_each_trials_mean(noisy):
    config = noisy_config(repeats=2, search={"strategy": "tpe", "trials": 4, "batch": 2},
                          grid={"q": {"low": 0.0, "high": 0.2}})
    rank_only(noisy, config)
    told = json.loads(noisy.path("results/rounds/1.json").read_text())["told"]  # round 0's two trials
    assert len(told) == 2
    for entry in told:
        losses = [json.loads(noisy.path(f"results/trials/{entry['trial_id']}{path}/metrics.json").read_text())
                  ["metrics"]["loss"]["final"] for path in ("", "/seeds/1")]
        assert entry["status"] == "ok" and entry["objective"] == pytest.approx(statistics.fmean(losses))
    rows = ranking(noisy)[1]
    assert len(rows) == 4 and {row["seeds"] for row in rows} == {"2"} and {row["round"] for row in rows} == {"0", "1"}
