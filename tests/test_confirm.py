"""Confirming the finalists on all the data: rank agreement, config errors, and real sweeps."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from kerasgrid import fraction
from kerasgrid.config import check, sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.results.confirm import agreement, kendall_tau, merge
from kerasgrid.results.leaderboard import format_winner, read_leaderboard
from conftest import ETA
from test_config import REPO, SCHEMA, full_config

MIN = {"metric": "loss", "direction": "min"}


@pytest.mark.parametrize("first, second, tau", [
    ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], 1.0),
    ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], -1.0),
    ([1, 2, 3, 4, 5], [2, 1, 3, 4, 5], 0.8),  # one of the 10 pairs swapped: (9 - 1) / 10
    ([1, 2, 3, 4], [2, 1, 4, 3], 1 / 3),  # two of 6 pairs swapped
    ([1], [1], None),
])
def test_kendall_tau_of_known_rankings(first, second, tau):
    assert kendall_tau(first, second) == (pytest.approx(tau) if tau is not None else None)


def finalist(tuning_rank, rank, status="ok"):
    return {"tuning_rank": tuning_rank, "rank": rank, "status": status}


@pytest.mark.parametrize("finalists, fraction_, sentence", [
    ([finalist(1, 1), finalist(2, 2), finalist(3, 3)], 0.1,
     "the fraction ranked the 3 finalists as the full data did (Kendall's tau 1.00 over 3 finalists)"),
    ([finalist(1, 1), finalist(2, 3), finalist(3, 2)], 0.1,
     "the fraction's winner won on the full data too; the other finalists changed places "
     "(Kendall's tau 0.33 over 3 finalists)"),
    ([finalist(1, 3), finalist(2, 1), finalist(3, 2)], 0.1,
     "the fraction's winner came 3rd on the full data; the full data's winner was 2nd on the fraction "
     "(Kendall's tau -0.33 over 3 finalists)"),
    ([finalist(1, 2), finalist(2, 1)], 1,
     "the tuning budget's winner came 2nd with the confirmation budget; the confirmation budget's winner was 2nd "
     "with the tuning budget (Kendall's tau -1.00 over 2 finalists)"),
    ([finalist(1, 3, "failed"), finalist(2, 1), finalist(3, 2)], 0.1,
     "the fraction's winner failed on the full data (Kendall's tau 1.00 over 2 finalists)"),
    ([finalist(1, 1), finalist(2, 5, "diverged")], 0.1,
     "only the fraction's winner was confirmed on the full data, so there is no order to compare"),
])
def test_the_agreement_is_said_in_a_plain_sentence(finalists, fraction_, sentence):
    assert agreement(finalists, fraction_)["agreement"] == sentence


def entry(trial_id, rank, value, status="ok"):
    return {"trial_id": trial_id, "rank": rank, "objective_value": value, "status": status}


def test_the_finalists_rank_first_by_their_confirmation_then_the_rest_in_tuning_order():
    tuning = [entry("a", 1, 0.1), entry("b", 2, 0.2), entry("c", 3, 0.3), entry("d", 4, 0.4),
              entry("e", 5, None, "failed")]
    confirmed = [entry("a", 2, 0.5), entry("b", 1, 0.4), entry("c", 3, None, "diverged")]
    merged = merge(tuning, confirmed, MIN)
    assert [(m["trial_id"], m["rank"], m["confirmed"], m["status"], m["tuning"]["rank"]) for m in merged] == [
        ("b", 1, True, "ok", 2), ("a", 2, True, "ok", 1), ("d", 3, False, "ok", 4),
        ("c", 4, True, "diverged", 3), ("e", 5, False, "failed", 5)]
    assert merged[0]["objective_value"] == 0.4 and merged[2]["objective_value"] == 0.4  # b on all data, d tuned


def test_the_winner_lines_say_it_was_confirmed_and_keep_the_best_params_line():
    lines = format_winner({"trial_id": "abc", "objective": {"metric": "loss", "direction": "min", "value": 0.25},
                           "params": {"q": 1}, "confirmed": True,
                           "confirmation": {"finalists": 2, "agreement": "the fraction ranked the 2 finalists as the full data did"}})
    assert lines == ["Confirmed the top 2: the fraction ranked the 2 finalists as the full data did.",
                     "Best trial: abc with loss = 0.25 (min)", "Best params found: {'q': 1}"]


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(confirm={"top": 2}, grid={"lr": [0.1, 0.2]}),
     r"^a\.yaml: confirm\.top is 2, but the sweep has 2 candidates, so every one would be confirmed: .* Lower "
     r"confirm\.top below 2, or remove confirm and data\.fraction to tune on all the data\.$"),
    (lambda c: c.update(confirm={"top": 1}, grid={"lr": [0.1, 0.2]}),
     r"^a\.yaml: confirm is set, but data\.fraction is 1 and confirm\.budget changes nothing, so each finalist would "
     r"train again exactly as it was tuned, to the same result\. Tune on a part of the data .*or remove confirm\.$"),
    (lambda c: c.update(confirm={"top": 1, "budget": {"epochs": 1}}, grid={"lr": [0.1, 0.2]}),
     r"confirm\.budget changes nothing"),
])
def test_a_confirmation_that_makes_no_sense_is_a_config_error(in_repo, change, message):
    config = full_config()
    change(config)
    with pytest.raises(ConfigError, match=message):
        sweep_from_config(config, "a.yaml")


def test_the_schema_checks_confirm_and_fraction(in_repo):
    config = full_config(confirm={"top": 0})
    with pytest.raises(ConfigError, match=r"a\.yaml: confirm\.top is 0, which is wrong: .*How many of the best"):
        check(config, SCHEMA, "a.yaml")
    config = full_config(confirm={"top": 1, "budget": {"epoch": 3}})
    with pytest.raises(ConfigError, match=r"'confirm\.budget\.epoch' is not a key kerasgrid knows \(did you mean 'epochs'\?\)"):
        check(config, SCHEMA, "a.yaml")
    config = full_config()
    config["data"]["fraction"] = 0
    with pytest.raises(ConfigError, match=r"a\.yaml: data\.fraction is 0, which is wrong: .*The share of the training data"):
        check(config, SCHEMA, "a.yaml")


def test_a_confirmation_trains_on_all_the_data_with_its_own_budget(in_repo):
    config = full_config(confirm={"top": 1, "budget": {"epochs": 5}}, grid={"lr": [0.1, 0.2]})
    config["data"]["fraction"] = 0.25
    config["budget"]["steps_per_epoch"] = 8
    sweep = sweep_from_config(config, "a.yaml")
    assert sweep.settings()["budget"] == {**config["budget"], "steps_per_epoch": 2}  # a quarter of the batches
    assert sweep.confirm_settings()["budget"] == {**config["budget"], "epochs": 5}
    assert (sweep.confirm_settings(3)["fraction"], sweep.confirm_settings(3)["seed"]) == (1.0, 3)
    assert sweep.winner_settings() == sweep.confirm_settings()


# --- real sweeps ----------------------------------------------------------------------------------------------

# A model that never learns (lr 0) and predicts q; with one batch holding every example, the loss
# is the mean of (y - q)^2 over the examples trained on: smallest for q nearest their mean.
CONSTANT = """
import keras
import numpy as np


def build_model(params):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(params["q"]))])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


def targets():
    return np.random.default_rng(0).normal(size=200).astype("float32")


def data():
    y = targets()
    return np.zeros((len(y), 1), dtype="float32"), y.reshape(-1, 1)
"""


def targets():
    return np.random.default_rng(0).normal(size=200).astype("float32")


def means():
    """The mean target of the fraction (0.1, seeded 0) and of all the data."""
    y = targets().astype("float64")
    return y[fraction.indices(y, 0.1, seed=0)].mean(), y.mean()


def loss(q, on_fraction):
    y = targets().astype("float64")
    y = y[fraction.indices(y, 0.1, seed=0)] if on_fraction else y
    return np.mean((y - q) ** 2)


def confirm_config(qs, **overrides):
    config = {
        "model": "constant.py:build_model",
        "data": {"train": "constant.py:data", "fraction": 0.1},
        "budget": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 1000},
        "confirm": {"top": 2},
        "grid": {"q": qs},
    }
    config.update(overrides)
    return config


@pytest.fixture
def constant(workflow):
    workflow.path("constant.py").write_text(CONSTANT, encoding="utf-8")
    return workflow


def trained(output, confirmations=False) -> set[str]:
    """The trials a snakemake run trained (or confirmed), from the jobs' messages: "Model 2 of 4: q=0.1
    (trial <id>)", and for a confirmation ", on all the data" after it."""
    ending = ", on all the data" if confirmations else ETA  # a tuning run may end with its ETA
    return set(re.findall(rf"^Job \d+: Model \d+ of \d+: .*\(trial (\w{{12}})\){ending}$", output, flags=re.M))


def test_confirmation_picks_the_best_finalist_on_all_the_data_and_caches(constant):
    on_fraction, on_all = means()
    assert abs(on_fraction - on_all) > 0.01  # the fraction's mean is off the whole's: the rankings differ
    # a: the fraction's best; b: the whole's best; c and d: far off, never finalists.
    a, b, c, d = (round(float(m), 3) for m in (on_fraction, on_all, on_all + 1, on_all + 2))
    result = constant.sweep(confirm_config([a, b, c, d]))
    rows = read_leaderboard(constant.path("results/leaderboard.tsv"))
    ids = {float(row["q"]): row["trial_id"] for row in rows}
    assert [(float(r["q"]), r["confirmed"], r["tuning_rank"]) for r in rows] == [
        (b, "yes", "2"), (a, "yes", "1"), (c, "no", "3"), (d, "no", "4")]
    # Finalists by their loss on all the data, the others by theirs on the fraction, both side by side.
    assert [float(r["objective"]) for r in rows] == pytest.approx(
        [loss(b, False), loss(a, False), loss(c, True), loss(d, True)], rel=1e-5)
    assert [float(r["tuning_objective"]) for r in rows] == pytest.approx([loss(q, True) for q in (b, a, c, d)], rel=1e-5)
    assert trained(result.output, confirmations=True) == {ids[a], ids[b]}
    record = json.loads(constant.path(f"results/trials/{ids[b]}/confirm/metrics.json").read_text())
    assert record["training_data"]["examples"] == 200 and record["saved_model"] is not None

    best = yaml.safe_load(constant.path("results/best_params.yaml").read_text())
    sentence = ("the fraction's winner came 2nd on the full data; the full data's winner was 2nd on the fraction "
                "(Kendall's tau -1.00 over 2 finalists)")
    assert best["params"] == {"q": b} and best["confirmed"] is True
    assert best["confirmation"] == {"tuning_rank": 2, "tuning_objective": pytest.approx(loss(b, True), rel=1e-5),
                                    "finalists": 2, "kendall_tau": -1.0, "agreement": sentence}
    lines = result.output.splitlines()
    assert f"Confirmed the top 2: {sentence}." in lines and f"Best params found: {{'q': {b}}}" in lines
    assert f"copied trial {ids[b]}'s kept model results/trials/{ids[b]}/confirm/model.keras" in constant.path(
        "logs/best_model.log").read_text()
    page = constant.path("results/leaderboard.html").read_text()
    assert "tuning_rank" in page and "the fraction&#x27;s winner came 2nd on the full data" in page
    assert "Nothing to be done" in constant.sweep(confirm_config([a, b, c, d])).output

    # A new candidate that stays out of the top 2: the ranking is redone, no confirmation trains.
    far = constant.sweep(confirm_config([a, b, c, d, round(float(on_all) + 3, 3)]))
    assert trained(far.output, confirmations=True) == set() and len(trained(far.output)) == 1
    # One that enters it: only its confirmation trains; a's is reused, b's stays on disk unranked.
    between = round(float(on_fraction + on_all) / 2, 3)
    entered = constant.sweep(confirm_config([a, b, c, d, between]))
    rows = read_leaderboard(constant.path("results/leaderboard.tsv"))
    new = next(r["trial_id"] for r in rows if float(r["q"]) == between)
    assert trained(entered.output, confirmations=True) == {new}
    assert [(float(r["q"]), r["confirmed"]) for r in rows[:3]] == [(between, "yes"), (a, "yes"), (b, "no")]
    # Back to the first grid: b is a finalist again, and its confirmation is still there.
    again = constant.sweep(confirm_config([a, b, c, d]))
    assert trained(again.output, confirmations=True) == set() and trained(again.output) == set()
    assert read_leaderboard(constant.path("results/leaderboard.tsv"))[0]["trial_id"] == ids[b]


def test_planning_a_confirmed_repeated_sweep_on_a_fraction_imports_no_tensorflow(constant):
    probe = constant.path("probe.py")
    probe.write_text(
        "import sys, runpy\n"
        "sys.argv = ['snakemake', '--dry-run', '--configfile', 'my.yaml', '--cores', '1']\n"
        "try:\n    runpy.run_module('snakemake', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED', 'tensorflow' in sys.modules, 'scipy' in sys.modules)\n"
    )
    constant.write_config(confirm_config([0.1, 0.2, 0.3], repeats=2, search={"halving": {"eta": 3}},
                                         budget={"epochs": 3, "steps_per_epoch": 1, "batch_size": 1000}))
    out = subprocess.run([sys.executable, str(probe)], cwd=constant.root, capture_output=True, text=True, timeout=120)
    assert "LOADED False False" in out.stdout, out.stdout + out.stderr
    assert ", seed 1, until epoch 1" in out.stdout  # the first rung of every seed, planned
