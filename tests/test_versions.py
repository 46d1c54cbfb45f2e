"""The versions a winner trained with, against the installed ones: a note at the end of the run and
a warning from load_best_model, where they differ; nothing is retrained."""

import json
import os
import platform
import shutil
import subprocess
import sys

import keras
import numpy
import pytest
import yaml

from conftest import REPO, Workflow, tiny_config, trained_trials
from kerasgrid import load_best_model
from kerasgrid.results import versions


def test_installed_versions_come_from_the_packages_metadata():
    assert versions.installed("keras") == keras.__version__
    assert versions.installed("numpy") == numpy.__version__
    assert versions.installed("python") == platform.python_version()
    assert versions.installed("no-such-package-here") is None


def test_a_note_names_only_the_versions_that_differ():
    same = {"keras": keras.__version__, "numpy": numpy.__version__, "python": platform.python_version()}
    assert versions.differences(same) == {} and versions.warning(same, "abc") is None
    assert versions.warning(None, "abc") is None  # a record from before versions were recorded
    older = {**same, "keras": "3.7.0", "jax": "0.4.26"}
    assert versions.differences(older) == {"jax": ("0.4.26", versions.installed("jax")),
                                           "keras": ("3.7.0", keras.__version__)}
    # Where a backend is no longer installed, it says so; what is not a package's version is not compared.
    torch = versions.installed("torch") or "(not installed)"
    note = versions.warning({**same, "keras": "3.7.0", "torch": "2.1.0", "backend": "torch"}, "abc")
    assert note == (f"Note: the winner, trial abc, trained with keras 3.7.0, torch 2.1.0; installed now: "
                    f"keras {keras.__version__}, torch {torch}. A finished trial is not "
                    "trained again when versions change, so its result is what its own versions gave "
                    "(results/trials/<id>/metrics.json records them, for every trial). To train every trial with "
                    "the installed versions, run snakemake again with --forceall.")


def test_a_winner_trained_with_other_versions_is_said_once_and_not_retrained(tiny_sweep, tmp_path, monkeypatch):
    sweep = Workflow(tmp_path / "sweep")
    shutil.copytree(tiny_sweep.root, sweep.root, symlinks=True)
    best = yaml.safe_load(sweep.path("results/best_params.yaml").read_text())
    assert best["versions"] == json.loads(sweep.path(f"results/trials/{best['trial_id']}/metrics.json").read_text())["versions"]
    assert best["versions"]["keras"] == keras.__version__
    assert "Note: the winner" not in tiny_sweep.result.output

    # The winner trained before an upgrade of Keras: its record says the version it had.
    record_path = sweep.path(f"results/trials/{best['trial_id']}/metrics.json")
    record = json.loads(record_path.read_text())
    record["versions"]["keras"] = "3.7.0"
    record_path.write_text(json.dumps(record))
    result = sweep.sweep(tiny_config())
    assert trained_trials(result.output) == []
    note = (f"Note: the winner, trial {best['trial_id']}, trained with keras 3.7.0; installed now: keras "
            f"{keras.__version__}. A finished trial is not trained again")
    lines = result.stdout.splitlines()
    assert [line.startswith(note) for line in lines].count(True) == 1 and lines[-3].startswith(note), result.stdout
    assert lines[-1].startswith("Best params found: ")

    monkeypatch.chdir(sweep.root)
    with pytest.warns(versions.VersionsDiffer, match=f"^{note}"):
        load_best_model()


def test_the_note_imports_no_keras_backend(tiny_sweep):
    """The Snakemake process says it: it reads the packages' metadata, never imports them."""
    code = ("import sys; from kerasgrid.results.leaderboard import winner_lines; "
            f"winner_lines({str(tiny_sweep.path('results/best_params.yaml'))!r}); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert result.stdout == "[]\n"
