"""kerasgrid[jax] in a virtual environment of its own, where TensorFlow is not installed at all: a
JAX user installs no TensorFlow, and a sweep with `backend: jax` runs there.

The environment holds what `pip install "kerasgrid[jax]"` installs, at requirements.lock's versions,
and imports kerasgrid from this checkout (PYTHONPATH). It is built once and kept in .venvs/ under
the repository, named by a hash of what it holds: a later session (or test worker) reuses it, and a
change to the lock or the requirements builds a new one.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_of_workflow, tiny_config
from declared import requirements
from kerasgrid.results.leaderboard import read_leaderboard

VENVS = REPO / ".venvs"


def build_venv(extra: str) -> Path:
    """The environment of kerasgrid[extra]'s requirements, built unless an identical one is there."""
    wanted = [str(r) for r in requirements(extra)]
    lock = (REPO / "requirements.lock").read_bytes()
    key = hashlib.sha256(json.dumps([wanted, lock.decode(), platform.python_version()]).encode()).hexdigest()[:16]
    venv = VENVS / f"{extra}-{key}"
    VENVS.mkdir(exist_ok=True)
    with open(VENVS / ".lock", "w") as held, contextlib.ExitStack():
        fcntl.flock(held, fcntl.LOCK_EX)  # one builder at a time; the others then find it built
        if (venv / "complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # a build that was cut off
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        (venv / "requirements.txt").write_text("\n".join(wanted) + "\n", encoding="utf-8")
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-input", "--retries", "10", "--constraint", str(REPO / "requirements.lock"),
                        "--requirement", str(venv / "requirements.txt")],
                       check=True, capture_output=True, timeout=1500)
        (venv / "complete").touch()
        for stale in VENVS.glob(f"{extra}-*"):  # earlier locks' environments
            if stale != venv:
                shutil.rmtree(stale, ignore_errors=True)
        return venv


@pytest.fixture(scope="module")
def jax_venv() -> Path:
    return build_venv("jax")


def run(venv: Path, *args, cwd=REPO, **env_vars) -> subprocess.CompletedProcess:
    """`args` run by the environment's Python, with this checkout's kerasgrid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAKEMAKE", "KERAS_BACKEND", "PYTHON"))}
    env.update(PYTHONPATH=str(REPO), **env_vars)
    result = subprocess.run([str(venv / "bin/python"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=900)
    result.output = result.stdout + result.stderr
    return result


def test_kerasgrid_jax_installs_and_runs_without_tensorflow(jax_venv):
    imported = run(jax_venv, "-c", "import tensorflow")
    assert imported.returncode != 0 and "ModuleNotFoundError: No module named 'tensorflow'" in imported.output
    assert run(jax_venv, "-m", "pip", "show", "--quiet", "tensorflow").returncode != 0
    # Keras itself picks TensorFlow unless told otherwise (a trial is told by its config's backend).
    versions = run(jax_venv, "-c", "import keras, kerasgrid; print(keras.backend.backend())", KERAS_BACKEND="jax")
    assert versions.returncode == 0 and versions.stdout == "jax\n", versions.output
    helped = run(jax_venv, "-m", "kerasgrid.cli", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: kerasgrid"), helped.output


def test_a_sweep_with_backend_jax_runs_where_tensorflow_is_not_installed(jax_venv, tmp_path):
    sweep = copy_of_workflow(tmp_path / "sweep")
    sweep.write_config(tiny_config(backend="jax"))
    result = run(jax_venv, "-m", "snakemake", "--cores", "2", "--configfile", "my.yaml", cwd=sweep.root)
    assert result.returncode == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("Best params found: ")
    rows = read_leaderboard(sweep.path("results/leaderboard.tsv"))
    assert [row["status"] for row in rows] == ["ok"] * 4
    for row in rows:
        record = json.loads(sweep.path(f"results/trials/{row['trial_id']}/metrics.json").read_text())
        assert "jax" in record["versions"] and "tensorflow" not in record["versions"], record["versions"]
    assert yaml.safe_load(sweep.path("results/best_params.yaml").read_text())["trial_id"] == rows[0]["trial_id"]


def test_a_sweep_on_tensorflow_where_it_is_not_installed_stops_before_training_in_one_paragraph(jax_venv, tmp_path):
    sweep = copy_of_workflow(tmp_path / "sweep")
    sweep.write_config(tiny_config())  # the default backend: tensorflow
    result = run(jax_venv, "-m", "snakemake", "--cores", "2", "--configfile", "my.yaml", cwd=sweep.root)
    assert result.returncode != 0
    paragraph = next(line for line in result.output.splitlines() if "backend is tensorflow" in line)
    assert "my.yaml: backend is tensorflow, but tensorflow is not installed in this Python" in paragraph
    assert 'Install it: pip install "kerasgrid[tensorflow]", or set backend: jax (installed).' in paragraph
    assert not sweep.path("results/trials").exists()
