"""Mirrored training inside a trial, on logical CPU devices: how the tests can exercise it without
GPUs. Each trial's process gets its device layout at start, as TensorFlow requires."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import tiny_config
from kerasgrid.running.workers import TrialProcessError, WorkerPool
from kerasgrid.sweep.grid import trial_id
from test_training import settings
from test_workers import metrics

# Mirrored and one-device training start from the same weights and see the same global batches;
# the gradient of the mean loss over a global batch equals the sum of the replicas' gradients of
# their halves scaled by the global batch size, so the two differ only in the order float32 sums
# are taken (about 1e-7 relative each). Measured: at most 2.2e-7 relative on every final metric
# of the digits sweep after 400 steps, on 2 and 4 devices. A real mistake (a budget counted in
# per-replica batches, a loss not scaled across replicas) moves losses by percents.
MIRRORED_RTOL = 1e-5

MIRRORED = {"strategy": "mirrored", "cpu_devices": 2}


def mirrored(**budget):
    return {**settings(**budget), "distribute": dict(MIRRORED)}


def task(tmp_path, name, trial_settings, params=None):
    out = tmp_path / name
    out.mkdir()
    return {"params": params or {"lr": 0.01}, "settings": trial_settings, "out_dir": str(out), "threads": 1,
            "objective": {"metric": "val_loss", "direction": "min", "source": "my.yaml"}, "log": str(tmp_path / f"{name}.log")}


def assert_close(one: dict, other: dict):
    assert one.keys() == other.keys()
    for name, summary in one.items():
        for key in ("final", "min", "max"):
            assert math.isclose(summary[key], other[name][key], rel_tol=MIRRORED_RTOL), (name, key)


@pytest.fixture(autouse=True)
def no_gpus(monkeypatch):
    # Logical CPU devices are what these tests mirror over, on any machine.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(scope="module")
def pool():
    workers = WorkerPool()
    yield workers
    workers.close()


def test_a_mirrored_trial_trains_on_both_devices_to_the_losses_of_one(tmp_path, pool):
    one, two = task(tmp_path, "one", settings(epochs=3)), task(tmp_path, "two", mirrored(epochs=3))
    pool.run(one)
    pool.run(two)
    assert metrics(one)["devices"] == ["/device:CPU:0"]
    assert metrics(two)["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert metrics(one)["pid"] != metrics(two)["pid"]  # a worker keeps the devices it started with
    assert metrics(two)["status"] == "ok" and metrics(two)["epochs_run"] == 3
    assert_close(metrics(two)["metrics"], metrics(one)["metrics"])

    # A fresh process (a cluster job) trains the mirrored trial exactly as the warm worker did.
    fresh = task(tmp_path, "fresh", mirrored(epochs=3))
    code = f"from kerasgrid.running.workers import run_task; run_task({fresh!r})"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert metrics(fresh)["metrics"] == metrics(two)["metrics"] and metrics(fresh)["devices"] == metrics(two)["devices"]


def test_a_batch_that_does_not_split_across_the_replicas_fails_the_trial_saying_so(tmp_path, pool):
    odd = task(tmp_path, "odd", {**mirrored(), "train": settings(train="odd_data")["train"]})
    pool.run(odd)
    assert metrics(odd)["status"] == "failed"
    assert metrics(odd)["error"] == (
        "DataError: data.train gave a batch that does not split evenly across the 2 replicas of "
        "distribute.strategy mirrored; make every batch size a multiple of 2 (a smaller last batch "
        "included: drop it, e.g. batch(n, drop_remainder=True))"
    )


def test_mirroring_over_one_device_stops_the_sweep(tmp_path, pool):
    # What a trial on a cluster node meets (planning cannot check there): one device.
    one_device = task(tmp_path, "single", {**settings(), "distribute": {"strategy": "mirrored", "cpu_devices": 1}})
    with pytest.raises(TrialProcessError, match=r"^my\.yaml: distribute\.strategy is 'mirrored', but each trial would see one device \(/device:CPU:0\), and mirroring over one device only adds overhead\. Give each trial two or more: on a machine with GPUs, set-resources: \{train: \{gpu: 2\}, best_model: \{gpu: 2\}\} in a profile .*distribute\.cpu_devices: 2"):
        pool.run(one_device)
    assert not (Path(one_device["out_dir"]) / "metrics.json").exists()


def test_a_process_whose_tensorflow_already_started_cannot_split_its_cpu(tmp_path):
    late = task(tmp_path, "late", mirrored())
    code = ("import tensorflow as tf; tf.config.list_logical_devices()\n"
            f"from kerasgrid.trial.training import run_trial; t = {late!r}\n"
            "run_trial(t['params'], t['settings'], t['out_dir'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert ("KerasgridError: distribute.cpu_devices is 2, but TensorFlow in this process already started with 1 CPU "
            "device, and its devices cannot change once started. Run the trial in a fresh Python process") in result.stderr


def test_a_sweep_turned_mirrored_retrains_every_trial_to_the_same_ranking(workflow):
    plain = tiny_config()
    workflow.sweep(plain)
    before = {p.parent.name: json.loads(p.read_text()) for p in workflow.root.glob("results/trials/*/metrics.json")}
    every = {"train": sorted(before), "leaderboard": [""], "best_params": [""], "plots": [""], "importance": [""],
             "leaderboard_page": [""], "best_model": [""]}

    # strategy none is what a config without the key does: nothing to retrain.
    assert workflow.plan(tiny_config(distribute={"strategy": "none"})) == {}
    assert workflow.plan(tiny_config(distribute=MIRRORED)) == every

    # Without GPUs, one CPU device: refused before anything runs, with nothing lost.
    finished = workflow.snapshot()
    refused = workflow.sweep(tiny_config(distribute={"strategy": "mirrored"}), check=False)
    assert refused.returncode != 0
    assert "my.yaml: distribute.strategy is 'mirrored', but each trial would see one device (the CPU; kerasgrid sees no GPU: CUDA_VISIBLE_DEVICES='')" in refused.output
    assert workflow.snapshot() == finished

    workflow.sweep(tiny_config(distribute=MIRRORED))
    after = {p.parent.name: json.loads(p.read_text()) for p in workflow.root.glob("results/trials/*/metrics.json")}
    assert after.keys() == before.keys()
    for trial, record in after.items():
        assert record["devices"] == ["/device:CPU:0", "/device:CPU:1"] and record["status"] == "ok"
        assert_close(record["metrics"], before[trial]["metrics"])
    # The winner's retrain for best_model.keras reproduced its mirrored objective exactly.
    best = yaml.safe_load(workflow.path("results/best_params.yaml").read_text())
    assert best["objective"]["value"] == after[best["trial_id"]]["objective"]["value"]
    assert best["trial_id"] == trial_id(best["params"]) and workflow.path("results/best_model.keras").exists()
