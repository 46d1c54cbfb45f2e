"""Warm worker processes: real subprocesses that import TensorFlow once and train many trials."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasgrid.running import workers
from kerasgrid.running.workers import TrialProcessError, WorkerPool
from test_training import settings


def task(tmp_path, name, params, **settings_kwargs):
    out = tmp_path / name
    out.mkdir()
    return {"params": params, "settings": settings(**settings_kwargs), "out_dir": str(out), "threads": 1,
            "objective": {"metric": "val_loss", "direction": "min", "source": "my.yaml"}, "log": str(tmp_path / f"{name}.log")}


def metrics(t):
    return json.loads((Path(t["out_dir"]) / "metrics.json").read_text())


@pytest.fixture
def pool(tmp_path):
    workers = WorkerPool(log_path=str(tmp_path / "workers.log"))
    yield workers
    workers.close()


def test_a_warm_worker_trains_like_a_fresh_process(tmp_path, pool):
    first, again = task(tmp_path, "first", {"lr": 0.05}), task(tmp_path, "again", {"lr": 0.01})
    pool.run(first)
    pool.run(again)
    assert metrics(first)["pid"] == metrics(again)["pid"]  # one process, TensorFlow imported once
    assert "Epoch 2/2" in Path(again["log"]).read_text()

    fresh = task(tmp_path, "fresh", {"lr": 0.01})
    code = f"from kerasgrid.running.workers import run_task; run_task({fresh!r})"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert metrics(fresh)["pid"] != metrics(again)["pid"]
    assert metrics(fresh)["metrics"] == metrics(again)["metrics"]  # the same losses, to the last bit


def test_a_killed_worker_fails_its_job_and_is_replaced(tmp_path, pool):
    pool.run(task(tmp_path, "before", {}))
    with pytest.raises(TrialProcessError, match=r"the trial's process was killed by signal 9 \(out of memory\?\); see .*dies\.log"):
        pool.run(task(tmp_path, "dies", {}, model="dies"))
    after = task(tmp_path, "after", {})
    pool.run(after)
    assert metrics(after)["status"] == "ok"
    assert metrics(after)["pid"] != json.loads((tmp_path / "before/metrics.json").read_text())["pid"]


def test_a_worker_whose_memory_grew_past_the_limit_is_replaced(tmp_path, pool, monkeypatch):
    # TensorFlow keeps each trained model's variables: the wide model's 192 MiB stay in the worker
    # (keras-team/keras#21090), a tiny model's few MiB too (the first trial adds about 30 MiB).
    monkeypatch.setattr(workers, "MEMORY_GROWTH_LIMIT", 100 << 20)
    # A parent whose peak is above the worker's (here 1.6 GB; in CI, a pytest worker that trained
    # many models): a child's ru_maxrss starts at its parent's peak, so growth read from it was 0.
    ballast = np.ones(200_000_000)
    tiny, again, wide, after = (task(tmp_path, name, {}, model=model) for name, model in
                                [("tiny", "sequential"), ("again", "sequential"), ("wide", "wide"), ("after", "sequential")])
    pool.run(tiny)
    del ballast
    for t in (again, wide, after):
        pool.run(t)
    assert metrics(tiny)["pid"] == metrics(again)["pid"] == metrics(wide)["pid"] != metrics(after)["pid"]
    assert all(metrics(t)["status"] == "ok" for t in (tiny, again, wide, after))
    assert re.search(rf"^kerasgrid: worker {metrics(wide)['pid']} replaced: its memory grew by \d+ MiB in 3 trial\(s\) "
                     r"\(TensorFlow keeps every trained model until its process ends: keras-team/keras#21090\)$",
                     Path(pool.log_path).read_text(), flags=re.M)


def test_settling_a_worker_frees_the_last_trials_model_before_hiding_the_rest_from_the_collector():
    import gc
    import weakref

    import numpy as np

    import trial_models

    model = trial_models.sequential({})
    model.fit(np.zeros((8, 4)), np.zeros((8, 1)), verbose=0)  # a fitted model is held in reference cycles
    fitted = weakref.ref(model)
    del model
    try:
        workers.settle()
        assert fitted() is None  # collected, not frozen for the worker's life
    finally:
        gc.unfreeze()


def test_a_config_error_in_a_worker_reaches_the_job_as_one_paragraph(tmp_path, pool):
    bad = task(tmp_path, "bad", {})
    bad["objective"] = {"metric": "val_auc", "direction": "max", "source": "my.yaml"}
    with pytest.raises(TrialProcessError, match=r"^my\.yaml: objective\.metric is 'val_auc', but the model logs only: loss, mae, val_loss, val_mae\."):
        pool.run(bad)
    assert not (Path(bad["out_dir"]) / "metrics.json").exists()


def test_a_failing_trial_is_recorded_and_the_worker_goes_on(tmp_path, pool):
    failed, ok = task(tmp_path, "failed", {"units": 3}, model="raises"), task(tmp_path, "ok", {})
    pool.run(failed)
    pool.run(ok)
    assert metrics(failed)["status"] == "failed" and metrics(ok)["status"] == "ok"
    assert metrics(failed)["pid"] == metrics(ok)["pid"]


def test_an_error_kerasgrid_raises_on_purpose_keeps_the_worker(tmp_path, pool):
    before, after = task(tmp_path, "before", {}), task(tmp_path, "after", {})
    bad = task(tmp_path, "bad", {})
    bad["objective"] = {"metric": "val_auc", "direction": "max", "source": "my.yaml"}
    pool.run(before)
    with pytest.raises(TrialProcessError):
        pool.run(bad)
    pool.run(after)
    assert metrics(after)["pid"] == metrics(before)["pid"]  # no new process, no new TensorFlow import


def test_a_trial_killed_in_two_jobs_of_a_run_is_recorded_failed_as_in_one_pool(tmp_path, monkeypatch):
    # On a cluster each attempt is a job, with a worker of its own (workers.run_in_own_worker):
    # the second death in the run's jobs records the trial failed, as a local run's pool does.
    from kerasgrid.running import attempts, runlock

    monkeypatch.chdir(tmp_path)  # the run's records live in .snakemake/ of the folder it runs in
    runlock.claim()
    attempts.forget()
    dies = task(tmp_path, "dies", {}, model="dies")
    with pytest.raises(TrialProcessError, match=r"killed by signal 9"):
        workers.run_in_own_worker(dies)
    assert workers.run_in_own_worker(dies) == [] and metrics(dies)["status"] == "failed"
    assert metrics(dies)["error"].startswith("TrialKilled: the trial's process was killed by signal 9")
    runlock.release()


def test_a_jobs_second_attempt_in_a_run_raises_its_first_attempts_error_without_training(tmp_path, pool, monkeypatch):
    from kerasgrid.running import attempts, runlock

    monkeypatch.chdir(tmp_path)  # the run's records live in .snakemake/ of the folder it runs in
    runlock.claim()
    attempts.forget()
    bad = task(tmp_path, "bad", {})
    bad["objective"] = {"metric": "val_auc", "direction": "max", "source": "my.yaml"}
    first = r"^my\.yaml: objective\.metric is 'val_auc', but the model logs only: loss, mae, val_loss, val_mae\."
    with pytest.raises(TrialProcessError, match=first):
        pool.run(bad)
    with pytest.raises(TrialProcessError, match=first + r".* \(The same error as this job's earlier attempt in this run; "
                       r"it would only happen again, so the job is not run again\. Fix the cause and run snakemake again\.\)$"):
        pool.run(bad)
    assert Path(bad["log"]).read_text().count("Epoch 1/2") == 1  # trained once

    runlock.claim()  # the next run: the user may have fixed the cause, so the trial trains again
    with pytest.raises(TrialProcessError, match=first) as raised:
        pool.run(bad)
    assert "The same error" not in str(raised.value)
    assert Path(bad["log"]).read_text().count("Epoch 1/2") == 2
    runlock.release()
