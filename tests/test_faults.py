"""Faults injected into real sweeps: finished trials are never lost, retrained or misranked."""

import html
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import faulty_config, trained_trials
from kerasgrid.results import plots
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.sweep.grid import expand_grid
from kerasgrid.trial.resume import remove_state


def test_diverged_and_failed_trials_are_ranked_last_and_the_sweep_succeeds(faulty):
    result = faulty.sweep(faulty_config({"fault": ["raise", "nan", "none"]}))
    rows = read_leaderboard(faulty.path("results/leaderboard.tsv"))
    assert [(r["fault"], r["status"]) for r in rows] == [("none", "ok"), ("nan", "diverged"), ("raise", "failed")]
    assert rows[2]["error"] == "RuntimeError: build_model refuses fault=raise"
    failed = json.loads(faulty.path(f"results/trials/{rows[2]['trial_id']}/metrics.json").read_text())
    assert failed["status"] == "failed" and failed["error"] == rows[2]["error"]
    assert "RuntimeError: build_model refuses fault=raise" in faulty.path(f"logs/trials/{rows[2]['trial_id']}.log").read_text()
    # Why, in a line, with the line of faulty.py that raised: in the record, the leaderboard, and the
    # same words on the console's last lines (with the count and the logs' folder), the page and the plot.
    reason = "RuntimeError: build_model refuses fault=raise (faulty.py:16)"
    assert failed["reason"] == rows[2]["reason"] == reason
    diverged = f"diverged: {rows[1]['error']}"
    assert result.stdout.splitlines()[-6:] == [
        f"Trial {rows[1]['trial_id']} {diverged}",
        f"Trial {rows[2]['trial_id']} failed: {reason}",
        "1 of 3 trials failed and 1 diverged; each one's log is in logs/trials/, named by its trial id.",
        "",
        f"Best trial: {rows[0]['trial_id']} with loss = {float(rows[0]['objective']):.6g} (min)",
        "Best params found: {'fault': 'none'}",
    ]
    assert html.escape(reason) in faulty.path("results/leaderboard.html").read_text()
    loss = {"metric": "loss", "direction": "min"}
    trials = plots.load_trials(faulty.path("results/leaderboard.tsv"), loss)
    drawn = [label.get_text() for label in plots.ranking(trials, loss, ["fault"]).axes[0].texts]
    assert f" failed: {reason}" in drawn and f" {diverged}" in drawn


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


@pytest.fixture
def small_disk(faulty):
    """results/ on a 2 MiB file system of its own, which a test can fill or make read-only."""
    results = faulty.path("results")
    results.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(results)], check=True)
    yield results
    subprocess.run(["umount", "--lazy", str(results)], check=True)


def test_a_full_or_read_only_disk_stops_with_a_paragraph_and_loses_no_finished_trial(faulty, small_disk):
    config = faulty_config({"fault": ["none", "raise"]})
    faulty.sweep(config)
    finished = faulty.snapshot()

    # The disk fills while the new trial trains (its model function fills it): the trial stops, and
    # is not recorded as failed, which would keep it from ever training again.
    config["grid"]["fault"].append("fill_disk_once")
    (new,) = set(expand_grid(config["grid"])) - set(expand_grid({"fault": ["none", "raise"]}))
    full = faulty.sweep(config, check=False)
    paragraph = (f"could not write a file in results/trials/{new}: the disk is full (No space left on device). "
                 "Every trial that finished is kept (a trial's metrics.json is written whole or not at all), and "
                 "the next snakemake run trains only the trials that did not finish. Free space on the disk that "
                 f"holds results/trials/{new} (`df -h results/trials/{new}` shows how much is left), then run "
                 "snakemake again.")
    assert full.returncode != 0 and paragraph in full.output
    assert "Traceback" not in full.output
    assert f"kerasgrid: {paragraph}" in faulty.path(f"logs/trials/{new}.log").read_text()
    assert not faulty.path(f"results/trials/{new}/metrics.json").exists()
    assert not list(small_disk.glob("trials/*/.*.tmp")) and not list(small_disk.glob("trials/*/.tmp.*"))

    # Still full when the next run starts the trial: its first file says so.
    again = faulty.sweep(config, check=False)
    assert again.returncode != 0 and f"could not write results/trials/{new}/params.json: the disk is full" in again.output
    assert {k: v for k, v in faulty.snapshot().items() if k in finished} == finished

    # A read-only disk, likewise.
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        read_only = faulty.sweep(config, check=False)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    # Snakemake would refuse it for write-protected outputs; kerasgrid says why, and what to do.
    assert read_only.returncode != 0 and trained_trials(read_only.output) == []
    assert ("could not write a file in results: the file system is read-only (Read-only file system). Every trial "
            "that finished is kept") in read_only.output
    assert "Mount results writable, or run the sweep from a folder on a writable disk, then run snakemake again." in read_only.output

    # With room again, the next run trains the unfinished trial and nothing else.
    done = faulty.sweep(config)
    assert trained_trials(done.output) == [new]
    assert {k: v for k, v in faulty.snapshot().items() if k in finished} == finished
    assert len(read_leaderboard(faulty.path("results/leaderboard.tsv"))) == 3


def test_a_folder_the_user_may_not_write_gets_a_paragraph_not_a_traceback(tmp_path):
    (tmp_path / "results").mkdir(mode=0o555)
    write = ("from kerasgrid import records\n"
             "from kerasgrid.errors import StorageError\n"
             "try:\n"
             "    records.write_json('results/trials/abc/metrics.json', {})\n"
             "except StorageError as exc:\n"
             "    print(exc)\n")
    # Root writes anywhere: the writer runs without the capability that lets it, as a user would.
    no_override = "--bounding-set=-dac_override,-dac_read_search"
    result = subprocess.run(["setpriv", no_override.replace("bounding-set", "inh-caps"), no_override, sys.executable,
                             "-c", write], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == (
        "could not write results/trials/abc/metrics.json: this user may not write there (Permission denied). "
        "Every trial that finished is kept (a trial's metrics.json is written whole or not at all), and the next "
        "snakemake run trains only the trials that did not finish. Give the user running snakemake write "
        "permission on results (`ls -ld results`), then run snakemake again.")
