"""Faults injected into real sweeps: finished trials are never lost, retrained or misranked."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from conftest import faulty_config, trained_trials
from kerasgrid.grid import expand_grid
from kerasgrid.results import read_leaderboard
from kerasgrid.resume import remove_state


def test_diverged_and_failed_trials_are_ranked_last_and_the_sweep_succeeds(faulty):
    result = faulty.sweep(faulty_config({"fault": ["raise", "nan", "none"]}))
    rows = read_leaderboard(faulty.path("results/leaderboard.tsv"))
    assert [(r["fault"], r["status"]) for r in rows] == [("none", "ok"), ("nan", "diverged"), ("raise", "failed")]
    assert rows[2]["error"] == "RuntimeError: build_model refuses fault=raise"
    failed = json.loads(faulty.path(f"results/trials/{rows[2]['trial_id']}/metrics.json").read_text())
    assert failed["status"] == "failed" and failed["error"] == rows[2]["error"]
    assert "RuntimeError: build_model refuses fault=raise" in faulty.path(f"logs/trials/{rows[2]['trial_id']}.log").read_text()
    assert "Best params found: {'fault': 'none'}" in result.output


def test_a_sweep_where_every_trial_failed_ends_with_an_error_and_keeps_its_leaderboard(faulty):
    result = faulty.sweep(faulty_config({"fault": ["raise", "nan"]}), check=False)
    assert result.returncode != 0
    assert "All 2 trials failed or diverged, so there is no best model" in result.output
    assert [r["status"] for r in read_leaderboard(faulty.path("results/leaderboard.tsv"))] == ["diverged", "failed"]
    assert not faulty.path("results/best_params.yaml").exists()
    assert "Trying to restart job" not in result.output  # it would only fail again


def start(workflow, config, *args):
    """Start snakemake in the background, its output in run.log (a pipe could fill and block it)."""
    workflow.write_config(config)
    with open(workflow.path("run.log"), "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--configfile", "my.yaml", *args],
            cwd=workflow.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_sweep_killed_with_sigkill_resumes_with_only_the_unfinished_trials(faulty):
    config = faulty_config({"lr": [0.01, 0.02, 0.03, 0.04, 0.05]})
    run = start(faulty, config, "--cores", "1")
    wait_for(lambda: len(list(faulty.root.glob("results/trials/*/metrics.json"))) >= 2)
    os.killpg(run.pid, signal.SIGKILL)  # snakemake and the trial it was running, as an OOM kill would
    run.wait()
    finished = faulty.snapshot()
    done = {p.split("/")[2] for p in finished if p.endswith("metrics.json")}
    assert 2 <= len(done) < 5

    result = faulty.sweep(config)
    trained = set(trained_trials(result.output))
    unfinished = set(expand_grid(config["grid"])) - done
    # The one job running at the kill may have written its metrics.json before Snakemake marked
    # it complete; Snakemake then (rightly) trains it again. Every other finished trial is kept.
    assert unfinished <= trained and len(trained - unfinished) <= 1
    kept = {k: v for k, v in finished.items() if k.split("/")[2] not in trained}
    assert {k: v for k, v in faulty.snapshot().items() if k in kept} == kept and len(kept) >= 3
    assert len(read_leaderboard(faulty.path("results/leaderboard.tsv"))) == 5
    assert not list(faulty.root.glob("results/trials/*/.*.tmp"))


def test_a_trial_process_killed_from_outside_is_retried(faulty):
    # The first attempt of this trial SIGKILLs itself, as the OOM killer would; the default
    # profile's retries run it again.
    result = faulty.sweep(faulty_config({"fault": ["kill_once", "none"]}))
    assert faulty.path("killed.marker").exists()
    rows = read_leaderboard(faulty.path("results/leaderboard.tsv"))
    assert {(r["fault"], r["status"]) for r in rows} == {("kill_once", "ok"), ("none", "ok")}
    assert "Trying to restart job" in result.output or "attempt: 2" in result.output


def test_a_trial_killed_on_every_attempt_is_recorded_as_failed_and_the_sweep_goes_on(faulty):
    result = faulty.sweep(faulty_config({"fault": ["kill_always", "none"]}), "--until", "best_params")
    rows = read_leaderboard(faulty.path("results/leaderboard.tsv"))
    assert [(r["fault"], r["status"]) for r in rows] == [("none", "ok"), ("kill_always", "failed")]
    assert rows[1]["error"].startswith("TrialKilled: the trial's process was killed by signal 9 (out of memory?)")
    assert rows[1]["error"].endswith(", 2 times")
    assert "Best params found: {'fault': 'none'}" in result.output


def test_a_second_run_in_the_same_folder_is_refused_while_the_first_finishes(faulty):
    config = faulty_config({"sleep": [3], "lr": [0.01, 0.02]})
    first = start(faulty, config, "--cores", "1")
    wait_for(lambda: list(faulty.root.glob("logs/trials/*.log")))
    second = faulty.run("--cores", "1", "--configfile", "my.yaml", check=False)
    assert second.returncode != 0 and "Directory cannot be locked" in second.output
    assert first.wait(timeout=300) == 0, faulty.path("run.log").read_text()
    assert [r["status"] for r in read_leaderboard(faulty.path("results/leaderboard.tsv"))] == ["ok", "ok"]


def test_a_grid_beyond_max_trials_stops_before_any_job(faulty):
    grid = {f"k{i}": list(range(4)) for i in range(6)}
    result = faulty.sweep(faulty_config(grid), check=False)
    assert result.returncode != 0
    assert "my.yaml: grid expands to 4,096 trials (4 k0 x 4 k1 x 4 k2 x 4 k3 x 4 k4 x 4 k5), more than max_trials (1,000)" in result.output
    assert not faulty.path("results").exists()


HOSTILE = """\
model: faulty.py:build_model
data: {train: "faulty.py:data"}
budget: {epochs: 1, steps_per_epoch: 1}
grid:
  "odd key/{x} $HOME":
    - "../../escape"
    - "a/b c"
    - "quo'te\\"s"
    - "$(touch pwned); `touch pwned2`"
    - "ünï©ødé ✓"
    - "%(long)s"
    - true
    - null
    - [1, [2, "three"]]
    - 1
    - 1.0
    - 1e-3
    - 0.001
"""


def test_hostile_values_get_safe_ids_stay_inside_results_and_reach_the_model_unchanged(faulty):
    text = HOSTILE.replace("%(long)s", "x" * 3000)
    (faulty.root / "my.yaml").write_text(text, encoding="utf-8")
    before = set(os.listdir(faulty.root))
    faulty.run("--cores", "2", "--configfile", "my.yaml")
    assert set(os.listdir(faulty.root)) - before == {"results", "logs", ".snakemake"}
    assert not list(faulty.root.rglob("pwned*")) and not list(faulty.root.parent.rglob("escape"))

    values = yaml.safe_load(text)["grid"]["odd key/{x} $HOME"]
    expected = [v for v in values[:-2]] + [0.001]  # 1e-3 and 0.001 are one trial
    rows = read_leaderboard(faulty.path("results/leaderboard.tsv"))
    assert len(rows) == len(expected) == 12
    assert {r["status"] for r in rows} == {"ok"}
    received = []
    for row in rows:
        log = faulty.path(f"logs/trials/{row['trial_id']}.log").read_text(encoding="utf-8")
        received.append(json.loads(log.split("RECEIVED ", 1)[1].splitlines()[0])["odd key/{x} $HOME"])
    assert sorted(map(json.dumps, received)) == sorted(map(json.dumps, expected))
    assert [type(v) for v in received if v in (1, 1.0) and not isinstance(v, bool)].count(int) == 1


COUNTED = """
import json

import keras
import numpy as np


def build(params, seed):
    with open("builds.txt", "a") as builds:  # Snakemake empties a job's log before a retry
        builds.write(json.dumps(params) + "\\n")
    dense = keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(seed=seed))
    model = keras.Sequential([keras.Input((4,)), dense])
    model.compile(keras.optimizers.SGD(params["lr"]), "mse")
    return model


def build_model(params):
    return build(params, seed=None)  # seeded by kerasgrid, as any model


def drifting(params):
    # An unseeded generator: every build starts from other weights, so no retrain matches its trial.
    return build(params, seed=int(np.random.SeedSequence().entropy % 2**31))
"""


def builds(workflow) -> list[dict]:
    return [json.loads(line) for line in workflow.path("builds.txt").read_text().splitlines()]


def test_an_objective_the_model_does_not_log_is_not_retried(faulty):
    faulty.path("counted.py").write_text(COUNTED, encoding="utf-8")
    config = faulty_config({"lr": [0.01]}, model="counted.py:build_model", objective={"metric": "mae"})
    result = faulty.sweep(config, check=False)
    assert result.returncode != 0 and "my.yaml: objective.metric is 'mae', but the model logs only: loss." in result.output
    # The default profile retries a failed job once; the retry repeats the error without training.
    assert "The same error as this job's earlier attempt in this run" in result.output
    assert builds(faulty) == [{"lr": 0.01}]


def test_a_winner_that_does_not_retrain_to_its_loss_fails_the_run_and_is_not_retrained_twice(faulty):
    faulty.path("counted.py").write_text(COUNTED, encoding="utf-8")
    config = faulty_config({"lr": [0.01, 0.02]}, model="counted.py:drifting")
    # Trained on this machine, the winner is given the state its training ended in: a model no
    # retrain reproduces still gets its very weights, and the run succeeds.
    faulty.sweep(config)
    manifest = yaml.safe_load(faulty.path("results/best_model.yaml").read_text())
    assert manifest["how"] == "restored" and len(builds(faulty)) == 3  # two trials, one build to restore into

    # Without that state (a cluster job trained it), the winner is trained again and must reproduce.
    remove_state(faulty.path(f"results/trials/{manifest['trial_id']}"))
    faulty.path("results/best_model.yaml").unlink()
    result = faulty.sweep(config, check=False)
    assert result.returncode != 0
    assert "training the winner, trial " in result.output and "training is not deterministic here" in result.output
    assert "The same error as this job's earlier attempt in this run" in result.output
    assert len(builds(faulty)) == 4  # one retrain of the winner
    assert not faulty.path("results/best_model.yaml").exists() and not faulty.path("results/best_model.keras").exists()
    assert [r["status"] for r in read_leaderboard(faulty.path("results/leaderboard.tsv"))] == ["ok", "ok"]

    # The next run is another run: the user may have fixed the cause, so the winner is retrained.
    again = faulty.sweep(config, check=False)
    assert again.returncode != 0 and len(builds(faulty)) == 5
