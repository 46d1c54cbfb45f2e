"""Successive halving in real sweeps: every rung a cached job, promotions decided in the DAG."""

import os
import re
import signal

import pytest
import yaml

from kerasgrid.cli import summary, summary_rows
from kerasgrid.results.leaderboard import read_leaderboard
from conftest import ETA
from test_faults import start, wait_for

# A model whose loss is known: it predicts the constant q for targets 0 and never learns (lr 0),
# so every trial's loss is q squared at every epoch. fault=nan makes it diverge, fault=raise fail.
KNOWN_LOSSES = """
import time

import keras
import numpy as np
import tensorflow as tf


class Pause(keras.layers.Layer):
    # Waits `seconds` at every step: a trial that measures slow.

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def call(self, x, training=None):
        if not training:  # a pause in fitting only: timing predictions (predict_ms) waits for none
            return x

        def wait(x):
            time.sleep(self.seconds)
            return x

        waited = tf.py_function(wait, [x], x.dtype)
        waited.set_shape(x.shape)
        return waited


def build_model(params):
    time.sleep(params.get("sleep", 0))
    model = keras.Sequential([keras.Input((1,)), Pause(params.get("pause", 0)), keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(params["q"]))])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


class EpochsSeen(keras.callbacks.Callback):
    # A user's callback with a state: how many epochs it has seen, written to the run's folder.

    def __init__(self, trial_dir):
        super().__init__()
        self.path, self.seen = trial_dir / "epochs_seen.txt", 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1
        self.path.write_text(str(self.seen))


def callbacks(params, trial_dir):
    return [EpochsSeen(trial_dir)]


def data(params):
    if params.get("fault") == "raise":
        raise RuntimeError("no data for fault=raise")
    y = np.full((4, 1), np.nan if params.get("fault") == "nan" else 0.0, dtype="float32")
    yield np.zeros((4, 1), dtype="float32"), y
"""


def halving_config(q, **search):
    """A sweep of known.py with plain successive halving: `brackets: 1`, so that every candidate
    starts at the first rung (Hyperband's later brackets, the default, would start some later)."""
    return {
        "model": "known.py:build_model",
        "data": {"train": "known.py:data"},
        "budget": {"epochs": 9, "steps_per_epoch": 1},
        "search": {"halving": {"eta": 3, "min_epochs": 1, "brackets": 1}, **search},
        "grid": {"q": q, "fault": ["none", "nan", "raise"]},
    }


@pytest.fixture
def known(workflow):
    workflow.path("known.py").write_text(KNOWN_LOSSES, encoding="utf-8")
    return workflow


def rank_only(workflow, config, cores=2):
    """A sweep up to its leaderboard (what follows the ranking is tested elsewhere)."""
    return workflow.run("results/leaderboard.tsv", "--cores", str(cores), "--configfile", str(workflow.write_config(config)))


def jobs_run(output) -> set[tuple]:
    """(rule, wildcards) of every job a snakemake run started that has no message (train and rung
    jobs print theirs instead: see `trained`)."""
    jobs = set()
    for block in re.split(r"^(?=\[)", output, flags=re.M):
        rule = re.search(r"^(?:local)?(?:rule|checkpoint|localcheckpoint) (\w+):", block, flags=re.M)
        if rule:
            wildcards = re.search(r"wildcards: (.*)", block)
            jobs.add((rule.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


def trained(output) -> dict[int, set[str]]:
    """Trial ids trained per rung (by the epochs it ends at) in a run's output, read from the jobs'
    messages: "Model 3 of 15: ... (trial <id>), until epoch 3" (a rung), or without "until" (the last)."""
    rungs = {}
    for trial, epochs in re.findall(r"^Job \d+: Model \d+ of \d+: .*\(trial (\w{12})\)(?:, until epoch (\d+))?" + ETA + "$", output, flags=re.M):
        rungs.setdefault(int(epochs or 9), set()).add(trial)
    return rungs


def test_halving_promotes_the_best_third_and_names_the_winner_without_retraining_it(known):
    result = known.sweep(halving_config([0.1, 0.2, 0.3, 0.4, 0.5]))
    rows = read_leaderboard(known.path("results/leaderboard.tsv"))
    by_q = {(float(r["q"]), r["fault"]): r for r in rows}
    # Rungs end at 1, 3 and 9 epochs: 15 candidates, ceil(15/3) = 5 go on (never a diverged or failed
    # one, though five of each are there), ceil(5/3) = 2 reach the last rung.
    assert [(float(r["q"]), r["fault"], r["status"], r["rung"], r["epochs"]) for r in rows[:5]] == [
        (0.1, "none", "ok", "2", "9"), (0.2, "none", "ok", "2", "9"),
        (0.3, "none", "ok", "1", "3"), (0.4, "none", "ok", "1", "3"), (0.5, "none", "ok", "1", "3")]
    assert {r["status"] for r in rows[5:]} == {"diverged", "failed"} and {r["rung"] for r in rows[5:]} == {"0"}
    assert {r["bracket"] for r in rows} == {"0"}  # brackets: 1, every candidate's is the first
    assert float(rows[0]["objective"]) == pytest.approx(0.01) and float(rows[1]["objective"]) == pytest.approx(0.04)
    assert trained(result.output) == {
        1: {r["trial_id"] for r in rows},
        3: {r["trial_id"] for r in rows[:5]},
        9: {r["trial_id"] for r in rows[:2]},
    }
    promoted = yaml.safe_load(known.path("results/brackets/0/3.json").read_text())
    assert promoted["entrants"] == 15 and promoted["promoted"] == [r["trial_id"] for r in rows[:5]]
    # The last rung is a trial as if trained straight through: its metrics.json, 9 epochs of history.
    winner = known.path(f"results/trials/{rows[0]['trial_id']}")
    assert (winner / "history.csv").read_text().count("\n") == 10
    best = yaml.safe_load(known.path("results/best_params.yaml").read_text())
    assert best["params"] == {"fault": "none", "q": 0.1} and best["trial_id"] == rows[0]["trial_id"]
    assert "Best params found: {'fault': 'none', 'q': 0.1}" in result.output.splitlines()
    assert "copied trial" in known.path("logs/best_model.log").read_text()  # its own model: no retrain
    # Every state was carried on or dropped once the next rung's promotions were decided.
    assert list(known.root.glob("results/trials/**/state.npz")) == []
    assert by_q[(0.3, "nan")]["status"] == "diverged" and by_q[(0.3, "raise")]["error"] == "RuntimeError: no data for fault=raise"

    # `kerasgrid summary` finds each trial's furthest rung on disk, as the leaderboard does.
    lines = summary(known.path("results"), top=15)
    assert lines[0].endswith("15 trials finished (5 ok, 5 diverged, 5 failed), 0 started but not finished.")
    assert lines[1] == "all 22 runs of the sweep finished, on every rung; halving stopped the others " \
                       "(results/leaderboard.tsv ranks them)."  # 15 + 5 + 2
    assert summary_rows(known.path("results")) == rows

    again = known.sweep(halving_config([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert "Nothing to be done" in again.output


def test_growing_the_candidates_trains_only_what_is_new_or_newly_promoted(known):
    rank_only(known, halving_config([0.1, 0.2, 0.3, 0.4, 0.5]))
    before = known.snapshot()
    grown = rank_only(known, halving_config([0.05, 0.1, 0.2, 0.3, 0.4, 0.5]))
    rows = read_leaderboard(known.path("results/leaderboard.tsv"))
    new = {r["trial_id"] for r in rows if r["q"] == "0.05"}
    # 18 candidates: 6 go on (q 0.05 to 0.5), 2 reach the end (0.05 and 0.1). Only 0.05 trains there.
    assert trained(grown.output) == {1: new, 3: {rows[0]["trial_id"]}, 9: {rows[0]["trial_id"]}}
    assert [(r["q"], r["rung"]) for r in rows[:6]] == [("0.05", "2"), ("0.1", "2"), ("0.2", "1"), ("0.3", "1"), ("0.4", "1"), ("0.5", "1")]
    assert {path: stamp for path, stamp in known.snapshot().items() if path in before} == before


def test_a_random_search_with_halving_draws_its_candidates_from_ranges(known):
    config = halving_config({"low": 0.01, "high": 1.0, "log": True}, strategy="random", trials=6)
    config["grid"]["fault"] = ["none"]
    rank_only(known, config)
    rows = read_leaderboard(known.path("results/leaderboard.tsv"))
    assert len(rows) == 6 and [r["rung"] for r in rows] == ["2", "1", "0", "0", "0", "0"]
    assert [float(r["q"]) for r in rows] == sorted(float(r["q"]) for r in rows)  # loss q^2: smallest q best
    assert all(float(f"{float(r['q']):.3g}") == float(r["q"]) for r in rows)


def test_a_halving_sweep_killed_mid_rung_resumes_losing_only_unfinished_jobs(known):
    config = halving_config([0.1, 0.2, 0.3, 0.4, 0.5])
    config["grid"]["fault"], config["grid"]["sleep"] = ["none"], [0.5]
    run = start(known, config, "--cores", "1")
    wait_for(lambda: len(list(known.root.glob("results/trials/*/rungs/3/metrics.json"))) >= 1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    finished = {path: stamp for path, stamp in known.snapshot().items() if path.endswith("metrics.json")}
    assert finished and not known.path("results/leaderboard.tsv").exists()
    resumed = rank_only(known, config)
    retrained = {(epochs, trial) for epochs, trials in trained(resumed.output).items() for trial in trials}
    kept = {(int(path.split("/")[4]), path.split("/")[2]) for path in finished if "/rungs/" in path}
    assert not retrained & kept  # no finished rung trained again
    assert {path: stamp for path, stamp in known.snapshot().items() if path in finished} == finished
    assert [r["q"] for r in read_leaderboard(known.path("results/leaderboard.tsv"))][:2] == ["0.1", "0.2"]


def test_turning_halving_on_keeps_the_plain_sweeps_finished_trials(known):
    plain = halving_config([0.1, 0.2, 0.3, 0.4, 0.5])
    plain["grid"]["fault"] = ["none"]
    del plain["search"]
    rank_only(known, plain)
    before = known.snapshot()
    halving = {**plain, "search": {"halving": {"eta": 3, "min_epochs": 1, "brackets": 1}}}
    result = rank_only(known, halving)
    rows = read_leaderboard(known.path("results/leaderboard.tsv"))
    # The finalist's last rung is its plain trial, identical and already there: not trained again.
    assert set(trained(result.output)) == {1, 3} and [r["rung"] for r in rows] == ["2", "1", "0", "0", "0"]
    assert {path: stamp for path, stamp in known.snapshot().items() if path in before} == before


def test_a_rungs_jobs_start_longest_first_by_what_their_trials_took_in_the_rung_before(known):
    # 8 candidates, eta 2: 4 go on, the 4 that do not fail (q 0.1 and 0.2, each with and without a
    # pause; fault=raise fails at once, before any pause). Those with a pause take 2 s a batch more:
    # they start the last rung first whatever their rank, so that the rung's last job is a short
    # one. By rank (0.1 before 0.2), a paused one would come third.
    # (2 s, not less: with the other half of the suite beside it, a trial's tracing alone can take
    # half a second longer in one run than in another, and a 0.4 s pause was overtaken. The pause
    # is in training only, so validating and timing predict_ms add none.)
    config = halving_config([])
    config["search"]["halving"]["eta"] = 2
    config["grid"] = {"q": [0.1, 0.2], "pause": [0.0, 2.0], "fault": ["none", "raise"]}
    config["budget"] = {"epochs": 2, "steps_per_epoch": 1}
    result = rank_only(known, config, cores=1)  # one job at a time: in the order of their priority
    rows = {r["trial_id"]: r for r in read_leaderboard(known.path("results/leaderboard.tsv"))}
    last_rung = [trial for trial, epochs in re.findall(
        r"^Job \d+: Model \d+ of \d+: .*\(trial (\w{12})\)(?:, until epoch (\d+))?" + ETA + "$", result.output, flags=re.M) if not epochs]
    assert [(rows[t]["q"], rows[t]["pause"]) for t in last_rung[:2]] in (
        [("0.1", "2.0"), ("0.2", "2.0")], [("0.2", "2.0"), ("0.1", "2.0")])
    assert sorted((rows[t]["q"], rows[t]["pause"]) for t in last_rung[2:]) == [("0.1", "0.0"), ("0.2", "0.0")]


def test_a_jobs_expected_seconds_are_its_trials_pace_in_the_rung_before_times_the_epochs_to_go(tmp_path):
    from kerasgrid.records import write_json
    from kerasgrid.search.halving import expected_seconds

    first, resumed = tmp_path / "first.json", tmp_path / "resumed.json"
    write_json(first, {"fit_seconds": 2.0, "epochs_run": 1, "resumed_from_epoch": 0})
    write_json(resumed, {"fit_seconds": 3.0, "epochs_run": 3, "resumed_from_epoch": 1})  # 2 epochs here
    assert expected_seconds(first, 3) == 4.0 and expected_seconds(resumed, 9) == 9.0
    assert expected_seconds(tmp_path / "not there yet.json", 9) == 0.0
