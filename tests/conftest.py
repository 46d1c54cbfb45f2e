"""Fixtures that run the real workflow in a scratch copy of the repository."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "scripts", "examples", "profiles"]


def tiny_config(**overrides) -> dict:
    """A 2x2 sweep of the digits example, 1 epoch of 5 steps: a few seconds per trial."""
    config = {
        "model": "examples/digits.py:build_model",
        "data": {"train": "examples/digits.py:train_data", "validation": "examples/digits.py:val_data"},
        "budget": {"epochs": 1, "steps_per_epoch": 5, "validation_steps": 2},
        "seed": 0,
        "grid": {"lr": [0.001, 0.01], "act_in": ["relu", "tanh"], "act_out": ["sigmoid"], "loss": ["mean_squared_error"]},
    }
    config.update(overrides)
    return config


# What may end a train job's line once a run has a pace: ", ETA 3 min" (kerasgrid/running/eta.py),
# on a cluster ", about 12 s a job". The line's start, which names the model and trial, is unchanged.
ETA = r"(?:, (?:ETA|about) [^,\n]+)?"


def trained_trials(output: str) -> list[str]:
    """The trial ids of the train jobs a snakemake run or plan names on the console, in its order."""
    return re.findall(r"^Job \d+: Model \d+ of \d+: .* \(trial ([0-9a-f]{12})\)" + ETA + "$", output, flags=re.M)


class Workflow:
    """A copy of the workflow in a temporary folder, run with the real `snakemake`."""

    def __init__(self, root: Path):
        self.root = root

    def write_config(self, config: dict, name="my.yaml") -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def run(self, *args, check=True, timeout=600) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result.output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} exited {result.returncode}:\n{result.output}")
        return result

    def sweep(self, config: dict, *args, **kwargs) -> subprocess.CompletedProcess:
        path = self.write_config(config)
        return self.run("--cores", "2", "--configfile", str(path), *args, **kwargs)

    def path(self, relative) -> Path:
        return self.root / relative

    def plan(self, config: dict) -> dict[str, list[str]]:
        """What `snakemake -n` would run: rule name -> sorted trial ids (or [''] per job)."""
        output = self.sweep(config, "--dry-run").output
        jobs: dict[str, list[str]] = {}
        # A train job is shown by its message, "Job 3: Model 1 of 4: a=1, b=2 (trial <id>)".
        trained = trained_trials(output)
        if trained:
            jobs["train"] = trained
        for block in re.split(r"^(?=(?:local)?rule \w+:)", output, flags=re.M):
            match = re.match(r"(?:local)?rule (\w+):", block)
            if match and match.group(1) != "all":
                trial = re.search(r"wildcards: trial=(\w+)", block)
                jobs.setdefault(match.group(1), []).append(trial.group(1) if trial else "")
        return {rule: sorted(ids) for rule, ids in jobs.items()}

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Modification time and hash of every trial's files: to prove nothing was retrained.

        Training states aside: the best trial's final state stays for best_model only until a
        better one finishes, and a halving rung's until the next rung carries it on."""
        return {
            str(path.relative_to(self.root)): (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
            for path in sorted(self.root.glob("results/trials/**/*"))
            if path.is_file() and path.name not in ("state.json", "state.npz")
        }


@pytest.fixture
def workflow(tmp_path) -> Workflow:
    return copy_of_workflow(tmp_path / "sweep")


FAULTY_MODEL = """
import json
import os
import signal
import time
from pathlib import Path

import keras
import numpy as np


def build_model(params):
    print("RECEIVED " + json.dumps(params, sort_keys=True, ensure_ascii=False), flush=True)
    fault = params.get("fault", "none")
    if fault == "raise":
        raise RuntimeError("build_model refuses fault=raise")
    if fault == "kill_once" and not Path("killed.marker").exists():
        Path("killed.marker").write_text("once")
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "kill_always":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "fill_disk_once" and not Path("filled.marker").exists():
        Path("filled.marker").write_text("once")
        fill = os.open("results/filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fill, bytes(1 << 16)):
                pass
        except OSError:  # full: the trial's own files cannot be written from here on
            pass
        finally:
            os.close(fill)
    time.sleep(params.get("sleep", 0))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(params.get("units", 4), "relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(params.get("lr", 0.01)), "mse")
    return model


def data(params):
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    if params.get("fault") == "nan":
        y[:] = np.nan
    for start in range(0, 64, 16):
        yield x[start : start + 16], y[start : start + 16]


def other_data(params):
    return data(params)
"""


def faulty_config(grid: dict, **overrides) -> dict:
    """A sweep of faulty.py (written by the `faulty` fixture): fast, with injectable faults."""
    config = {
        "model": "faulty.py:build_model",
        "data": {"train": "faulty.py:data"},
        "budget": {"epochs": 1, "steps_per_epoch": 3},
        "grid": grid,
    }
    config.update(overrides)
    return config


@pytest.fixture
def faulty(workflow) -> Workflow:
    workflow.path("faulty.py").write_text(FAULTY_MODEL, encoding="utf-8")
    return workflow


def copy_of_workflow(root: Path) -> Workflow:
    """What the `workflow` fixture makes, in a folder of the caller's choosing (for wider scopes)."""
    root.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_symlink():
            os.symlink(os.readlink(source), root / name)
        elif source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return Workflow(root)


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Workflow:
    """One finished `tiny_config()` sweep, shared by the tests that only look at its results.

    `tiny_sweep.result` is the run's CompletedProcess. Tests that change files work on copies.
    """
    workflow = copy_of_workflow(tmp_path_factory.mktemp("tiny") / "sweep")
    workflow.result = workflow.sweep(tiny_config())
    return workflow


@pytest.fixture(scope="session")
def faulty_sweep(tmp_path_factory) -> Workflow:
    """One finished sweep of faulty.py that keeps every trial's model: 2 trials ok, 2 diverged,
    2 failed, and a grid key whose values are a list and a string."""
    workflow = copy_of_workflow(tmp_path_factory.mktemp("faulty") / "sweep")
    workflow.path("faulty.py").write_text(FAULTY_MODEL, encoding="utf-8")
    config = faulty_config({"fault": ["raise", "nan", "none"], "shape": [[1, 2], "flat"]}, keep_models=True)
    workflow.result = workflow.sweep(config)
    return workflow


def pytest_collection_modifyitems(items):
    """The SLURM tests first. Under `make test` (pytest-xdist's `--dist loadfile`) a test file runs
    on one worker, so the SLURM tests share their cluster one after another, and the session's
    cluster is started and stopped by one worker only. Their file is the suite's longest stretch:
    started first, the other worker shares out the rest beside it rather than idling at the end."""
    items.sort(key=lambda item: item.path.name != "test_slurm.py")
