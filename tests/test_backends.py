"""The config's `backend` (kerasgrid/trial/backends.py): each trial trains with the Keras backend
it names, checked before training, deterministic, and through every way a sweep runs (grid,
halving, TPE, a killed and resumed trial, SLURM), here on JAX."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, Workflow, tiny_config
from kerasgrid.config import check, fill_defaults, load_schema, sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.sweep.grid import expand_grid
from kerasgrid.trial import backends, checkpoint
from test_slurm import cluster, slurm, submit, without_timing  # noqa: F401 - the cluster's fixtures

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
JAX = tiny_config(backend="jax", grid={"lr": [0.001, 0.01], "act_in": ["relu"], "act_out": ["sigmoid"],
                                       "loss": ["mean_squared_error"]})


def sweep_of(config: dict):
    config = json.loads(json.dumps(config))
    check(config, SCHEMA, "my.yaml")
    return sweep_from_config(fill_defaults(config, SCHEMA), "my.yaml")


def records(workflow: Workflow) -> dict:
    return {path.parent.name: json.loads(path.read_text())
            for path in workflow.root.glob("results/trials/*/metrics.json")}


# ---- The key, before any training ----


def test_the_backend_is_one_keras_knows():
    with pytest.raises(ConfigError, match=r"my.yaml: backend is \"theano\", which is wrong: .*tensorflow \(install"):
        sweep_of(tiny_config(backend="theano"))


def test_a_tensorflow_sweeps_settings_are_those_it_had_before_the_key_and_another_backend_retrains():
    default, explicit, jax = sweep_of(tiny_config()), sweep_of(tiny_config(backend="tensorflow")), sweep_of(JAX)
    assert default.backend == explicit.backend == "tensorflow" and jax.backend == "jax"
    assert "backend" not in default.settings() and explicit.settings() == default.settings()
    assert jax.settings() == {**sweep_of(tiny_config(grid=JAX["grid"])).settings(), "backend": "jax"}
    assert sorted(jax.trials) == sorted(expand_grid(JAX["grid"]))  # the same trial ids: their settings differ


def test_mirrored_training_is_tensorflows_only():
    with pytest.raises(ConfigError, match=r"distribute.strategy is mirrored, but backend is jax, .* Set backend: "
                                          "tensorflow to mirror, or remove distribute"):
        sweep_of({**JAX, "distribute": {"strategy": "mirrored", "cpu_devices": 2}})


def test_a_jax_process_has_its_threads_and_gpu_memory_set_before_jax_starts():
    env = backends.environment("jax", 3, base={"XLA_FLAGS": "--xla_dump_to=/tmp/x"})
    assert env == {"KERAS_BACKEND": "jax", "NPROC": "3", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                   "XLA_FLAGS": "--xla_dump_to=/tmp/x --xla_gpu_deterministic_ops=true"}
    assert backends.environment("tensorflow", 1, base={}) == {"KERAS_BACKEND": "tensorflow"}


def test_kerasgrid_check_builds_the_models_on_the_configs_backend(workflow):
    workflow.write_config(JAX)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}, "PYTHONPATH": str(REPO),
           "KERAS_BACKEND": "tensorflow"}
    probe = ("import sys, runpy\nsys.argv = ['kerasgrid', 'check', 'my.yaml']\n"
             "try:\n    runpy.run_module('kerasgrid.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "import keras\nprint('BUILT ON', keras.backend.backend())\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=workflow.root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert "my.yaml: a valid sweep; nothing was trained." in out.stdout, out.stdout + out.stderr
    assert "  build      the first" in out.stdout and "BUILT ON jax" in out.stdout


# A trial's steps on JAX without kerasgrid's data pipeline: set up, build, fit on NumPy batches,
# save and load the model, record versions and devices. Nothing of it imports TensorFlow.
ON_JAX = """
import json, sys
from kerasgrid.trial import backends
backends.configure("jax", 1, seed=0)
import keras, numpy as np
sys.path.insert(0, "examples")
from digits import build_model
from kerasgrid.trial.training import save_model, versions
model = build_model({"lr": 0.01, "act_in": "relu", "act_out": "softmax", "loss": "categorical_crossentropy"})
x = np.random.default_rng(0).random((64, 64), dtype="float32")
y = keras.utils.to_categorical(np.arange(64) % 10, 10)
fitted = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
saved = save_model(model, sys.argv[1])
keras.models.load_model(saved["path"])
print(json.dumps({"backend": keras.backend.backend(), "loss": fitted.history["loss"], "saved": saved["format"],
                  "versions": versions("jax"), "devices": backends.devices("jax"),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def run_on_jax(tmp_path, name):
    out = subprocess.run([sys.executable, "-c", ON_JAX, str(tmp_path / f"{name}.keras")], cwd=REPO,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), "KERAS_BACKEND": "tensorflow"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_a_trial_process_on_jax_trains_saves_and_records_without_importing_tensorflow(tmp_path):
    first, second = run_on_jax(tmp_path, "a"), run_on_jax(tmp_path, "b")
    assert first["backend"] == "jax" and first["saved"] == "keras" and first["devices"] == ["cpu:0"]
    assert first["versions"]["backend"] == "jax" and first["versions"]["jax"] and first["versions"]["jaxlib"]
    assert not first["tensorflow"]
    assert first["loss"] == second["loss"]  # seeded: the same losses in another process


# ---- Sweeps on JAX, through snakemake ----


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_sweep_trains_every_trial_on_its_backend_to_the_same_losses_in_another_folder(workflow, tmp_path, backend):
    config = {**JAX, "backend": backend}
    again = Workflow(Path(shutil.copytree(workflow.root, tmp_path / "again", symlinks=True)))
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(again.sweep, config)
        result = workflow.sweep(config)
        other.result()
    trials = expand_grid(JAX["grid"])
    found = records(workflow)
    assert sorted(found) == sorted(trials) and {r["status"] for r in found.values()} == {"ok"}
    assert {r["versions"]["backend"] for r in found.values()} == {backend}
    assert all(backend in r["versions"] for r in found.values())
    assert {r["devices"][0] for r in found.values()} == {"cpu:0" if backend == "jax" else "cpu"}
    for trial in trials:
        history = f"results/trials/{trial}/history.csv"
        assert workflow.path(history).read_bytes() == again.path(history).read_bytes()
    assert "Best params found:" in result.output
    assert workflow.path("results/best_model.keras").exists()


def test_halving_and_tpe_on_jax(workflow):
    halving = {**JAX, "budget": {"epochs": 3, "steps_per_epoch": 5, "validation_steps": 2},
               "grid": {**JAX["grid"], "lr": [0.001, 0.003, 0.01]},
               "search": {"strategy": "grid", "halving": {"eta": 3, "min_epochs": 1, "brackets": 1}}}
    workflow.sweep(halving)
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert len(rows) == 3 and {r["status"] for r in rows} == {"ok"}
    winner = json.loads(workflow.path(f"results/trials/{rows[0]['trial_id']}/metrics.json").read_text())
    assert winner["epochs_run"] == 3 and winner["resumed_from_epoch"] == 1 and winner["versions"]["backend"] == "jax"

    shutil.rmtree(workflow.path("results"))
    tpe = {**JAX, "grid": {**JAX["grid"], "lr": {"low": 0.001, "high": 0.1, "log": True}},
           "search": {"strategy": "tpe", "trials": 4, "batch": 2}}
    workflow.sweep(tpe)
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert {r["versions"]["backend"] for r in records(workflow).values()} == {"jax"}


# A trial on JAX that checkpoints every 0.24 s of its 1 s of training, killed after its first.
KILLED = """
import sys
sys.path.insert(0, "tests")
from test_backends import PARAMS, SLOW_ON_JAX
from kerasgrid.trial.training import run_trial
run_trial(PARAMS, SLOW_ON_JAX, sys.argv[1], trial_id="t", model_path=sys.argv[1] + "/model.keras", checkpoint_minutes=0.004)
"""
RESUMED = """
import json, sys
sys.path.insert(0, "tests")
from test_backends import PARAMS, SLOW_ON_JAX
from kerasgrid.trial.training import run_trial
record = run_trial(PARAMS, SLOW_ON_JAX, sys.argv[1], trial_id="t", model_path=sys.argv[1] + "/model.keras")
print(json.dumps(record))
"""
MODELS = REPO / "tests" / "trial_models.py"
PARAMS = {"lr": 0.01}
SLOW_ON_JAX = {"model": f"{MODELS}:dropout_mlp", "train": f"{MODELS}:slow_arrays", "validation": f"{MODELS}:arrays",
               "budget": {"epochs": 4, "steps_per_epoch": 6, "validation_steps": 2, "batch_size": 8}, "seed": 0,
               "training_version": 1, "callbacks": f"{MODELS}:reduce_lr_asks_to_stop", "backend": "jax"}


def train_on_jax(script: str, out: Path, **popen):
    return subprocess.Popen([sys.executable, "-c", script, str(out)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, **popen)


def test_a_trial_on_jax_killed_mid_epoch_continues_from_its_checkpoint_to_an_unbroken_runs_end(tmp_path):
    unbroken = train_on_jax(RESUMED, tmp_path / "unbroken", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    expected = json.loads(unbroken.communicate(timeout=300)[0].splitlines()[-1])
    for attempt in range(int(os.environ.get("KERASGRID_TEST_LOOPS", "1"))):
        out = tmp_path / f"t{attempt}"
        child = train_on_jax(KILLED, out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marker = checkpoint.folder(out) / checkpoint.META
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the trial ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint in 120 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert not (out / "metrics.json").exists()
        resumed = train_on_jax(RESUMED, out, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        record = json.loads(resumed.communicate(timeout=300)[0].splitlines()[-1])
        assert record["resumed_from_checkpoint"] and record["versions"]["backend"] == "jax"
        assert record["metrics"] == expected["metrics"]  # exact floats, every metric
        assert (out / "history.csv").read_bytes() == (tmp_path / "unbroken" / "history.csv").read_bytes()


# A halving rung on JAX: 2 epochs, its state saved, continued to 4 in another folder, as the next
# rung does, on arrays reshuffled every pass; and the same trial trained straight to 4.
RUNG = """
import json, sys
sys.path.insert(0, "tests")
from test_backends import PARAMS, RESHUFFLED_ON_JAX as S
from kerasgrid.trial.training import run_trial
out = sys.argv[1]
straight = run_trial(PARAMS, S, out + "/straight", trial_id="t")
run_trial(PARAMS, S, out + "/rung", trial_id="t", epochs=2, save_state_to=out + "/rung")
resumed = run_trial(PARAMS, S, out + "/last", trial_id="t", resume_from=out + "/rung")
print(json.dumps([straight["metrics"], resumed["metrics"], resumed["resumed_from_epoch"]]))
"""
RESHUFFLED_ON_JAX = {**SLOW_ON_JAX, "model": f"{MODELS}:sequential", "train": f"{MODELS}:arrays", "callbacks": None}


def test_a_halving_rung_on_jax_continues_from_its_state_to_a_straight_runs_end(tmp_path):
    # fit on JAX reads a batch to build an unbuilt model, then starts its data anew: a resumed
    # run whose model was not built before fit would train on other batches.
    run = train_on_jax(RUNG, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    straight, resumed, epoch = json.loads(run.communicate(timeout=300)[0].splitlines()[-1])
    assert epoch == 2 and resumed == straight


def test_a_jax_sweep_on_slurm_ranks_as_a_local_run(cluster, tmp_path):  # noqa: F811 - the fixture
    local = Workflow(Path(shutil.copytree(cluster.root, tmp_path / "local", symlinks=True)))
    with ThreadPoolExecutor(1) as pool:
        local_run = pool.submit(local.sweep, JAX)
        submit(cluster, JAX)
        local_run.result()
    rows = read_leaderboard(cluster.path("results/leaderboard.tsv"))
    assert without_timing(rows) == without_timing(read_leaderboard(local.path("results/leaderboard.tsv")))
    assert {r["versions"]["backend"] for r in records(cluster).values()} == {"jax"}
