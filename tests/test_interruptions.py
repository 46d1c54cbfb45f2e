"""A trial's process told to stop by a signal (SLURM's warning before a time limit, a preemption's
SIGTERM) saves the trial and stops; its next run continues it, ending as a run never stopped."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kerasgrid.running.workers import TrialInterrupted, WorkerPool
from kerasgrid.trial import checkpoint
from test_training import MODELS, settings


def task(tmp_path, name, signum):
    out = tmp_path / name
    out.mkdir()
    return {"params": {"lr": 0.01, "signal": int(signum)}, "out_dir": str(out), "threads": 1, "trial_id": "t",
            "settings": {**settings(epochs=3), "callbacks": f"{MODELS}:signals_itself"},
            "objective": {"metric": "val_loss", "direction": "min", "source": "my.yaml"},
            "log": str(tmp_path / f"{name}.log")}


def test_a_signal_to_a_trials_worker_saves_the_trial_and_the_next_run_continues_it(tmp_path):
    pool = WorkerPool(log_path=str(tmp_path / "workers.log"))
    try:
        for signum, meaning in [(signal.SIGUSR1, "the warning SLURM sends before the job's time limit")]:
            stopped = task(tmp_path, signum.name, signum)
            out, log = Path(stopped["out_dir"]), Path(stopped["log"])
            # The worker's own signal handler, not Python's default (which would end the process):
            # the trial saves at the next batch end, then its job fails, to run again.
            with pytest.raises(TrialInterrupted, match=r"saved its checkpoint at epoch 2, step 2 and stopped as asked"):
                pool.run(stopped)
            assert f"kerasgrid: {signum.name} ({meaning}): the trial saves its checkpoint" in log.read_text()
            assert "Traceback" not in log.read_text()  # a planned stop, not an error
            assert (checkpoint.folder(out) / checkpoint.META).exists() and not (out / "metrics.json").exists()

            # The same worker, still warm, runs the job again: it continues from the checkpoint.
            pool.run(stopped)
            record = json.loads((out / "metrics.json").read_text())
            assert record["resumed_from_checkpoint"] and (record["resumed_from_epoch"], record["resumed_from_step"]) == (1, 2)

            straight = task(tmp_path, f"{signum.name}-straight", signum)
            (Path(straight["out_dir"]) / "signalled").touch()  # never signalled
            pool.run(straight)
            unbroken = json.loads((Path(straight["out_dir"]) / "metrics.json").read_text())
            assert record["pid"] == unbroken["pid"] and record["metrics"] == unbroken["metrics"]
            assert (out / "history.csv").read_bytes() == (Path(straight["out_dir"]) / "history.csv").read_bytes()
    finally:
        pool.close()


def test_a_cluster_jobs_snakemake_ignores_the_warning_meant_for_its_trials_worker():
    # SLURM sends SIGUSR1 to every process of the job's step; by default it would end the job's
    # snakemake, and the worker with it.
    code = ("import os, signal; from kerasgrid.running import interruptions; interruptions.shelter(); "
            "os.kill(os.getpid(), signal.SIGUSR1); print('still here')")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (0, "still here\n")


def test_a_cluster_jobs_worker_stopped_by_sigterm_ends_the_job_and_its_next_run_continues(tmp_path):
    # As in a SLURM job: the job's process hands the trial to a worker of its own, and a
    # preemption (or the time limit) sends SIGTERM to the worker from outside.
    out = tmp_path / "t"
    out.mkdir()
    slow = settings(train="slow_arrays", epochs=12, steps_per_epoch=10)
    job = {"params": {"lr": 0.01}, "settings": slow, "out_dir": str(out), "threads": 1, "trial_id": "t",
           "objective": {"metric": "val_loss", "direction": "min", "source": "my.yaml"}, "log": str(tmp_path / "t.log")}
    code = f"from kerasgrid.running.workers import run_in_own_worker; run_in_own_worker({job!r})"
    log = Path(job["log"])
    started = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (log.exists() and "Epoch 3/12" in log.read_text(errors="replace")):
        assert time.monotonic() < deadline and started.poll() is None, "the trial did not reach epoch 3"
        time.sleep(0.05)
    (worker,) = subprocess.run(["pgrep", "-P", str(started.pid)], capture_output=True, text=True).stdout.split()
    subprocess.run(["kill", "-TERM", worker], check=True)
    _, error = started.communicate(timeout=60)
    assert started.returncode != 0 and "TrialInterrupted" in error  # the job fails, to run again
    assert "kerasgrid: SIGTERM (a preemption, the job's time limit, or a shutdown)" in log.read_text()
    assert not subprocess.run(["pgrep", "-P", str(started.pid)], capture_output=True).stdout  # its worker ended too
    assert (checkpoint.folder(out) / checkpoint.META).exists() and not (out / "metrics.json").exists()

    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "ok" and record["epochs_run"] == 12
    assert record["resumed_from_checkpoint"] and record["resumed_from_epoch"] >= 2
