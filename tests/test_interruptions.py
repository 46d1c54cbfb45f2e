"""A trial's process told to stop by a signal (SLURM's warning before a time limit, a preemption's
SIGTERM) saves the trial and stops; its next run continues it, ending as a run never stopped."""

import json
import signal
import subprocess
import sys
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
        for signum, meaning in [(signal.SIGUSR1, "the warning SLURM sends before the job's time limit"),
                                (signal.SIGTERM, "a preemption, the job's time limit, or a shutdown")]:
            stopped = task(tmp_path, signum.name, signum)
            out, log = Path(stopped["out_dir"]), Path(stopped["log"])
            # The worker's own signal handler, not Python's default (which would end the process):
            # the trial saves at the next batch end, then its job fails, to run again.
            with pytest.raises(TrialInterrupted, match=r"saved its checkpoint at epoch 1, step 2, and stopped"):
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
            assert (out / "history.csv").read_text() == (Path(straight["out_dir"]) / "history.csv").read_text()
    finally:
        pool.close()


def test_a_cluster_jobs_snakemake_ignores_the_warning_meant_for_its_trials_worker():
    # SLURM sends SIGUSR1 to every process of the job's step; by default it would end the job's
    # snakemake, and the worker with it.
    code = ("import os, signal; from kerasgrid.running import interruptions; interruptions.shelter(); "
            "os.kill(os.getpid(), signal.SIGUSR1); print('still here')")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (0, "still here\n")
