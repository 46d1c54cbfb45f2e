"""Atomic writes: whole files or none, with the mode a plain open() gives."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kerasgrid import records

MODELS = Path(__file__).resolve().parent / "trial_models.py"


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_mode_open_gives_under_the_umask(tmp_path, umask):
    with open(tmp_path / "plain.txt", "w") as plain:
        plain.write("x")
    records.write_text(tmp_path / "a" / "text.txt", "hello")
    records.write_json(tmp_path / "a" / "data.json", {"a": 1})
    records.write_bytes(tmp_path / "a" / "image.png", b"\x89PNG")
    records.copy_file(tmp_path / "a" / "image.png", tmp_path / "b" / "copy.png")
    expected = 0o666 & ~umask
    assert mode(tmp_path / "plain.txt") == expected
    for path in ("a/text.txt", "a/data.json", "a/image.png", "b/copy.png"):
        assert mode(tmp_path / path) == expected, path
    assert mode(tmp_path / "a") == mode(tmp_path / "b") == 0o777 & ~umask
    assert sorted(os.listdir(tmp_path / "a")) == ["data.json", "image.png", "text.txt"]  # no temporary left


def test_a_rewrite_replaces_the_whole_file_and_a_failed_one_leaves_the_old(tmp_path):
    path = tmp_path / "metrics.json"
    records.write_json(path, {"status": "ok"})
    records.write_json(path, {"status": "failed"})
    assert records.read_json(path) == {"status": "failed"}
    with pytest.raises(ValueError):
        records.write_json(path, {"value": float("nan")})  # refused before anything is written
    with pytest.raises(FileNotFoundError):
        records.copy_file(tmp_path / "missing", path)
    assert records.read_json(path) == {"status": "failed"}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_every_kind_of_file_a_sweep_writes_gets_the_mode_open_gives(workflow):
    # Models kept whole and as weights, TensorBoard logs, plots, the page: everything under results/.
    shutil.copy(MODELS, workflow.path("models.py"))
    config = {
        "model": "models.py:by_kind",
        "data": {"train": "models.py:data", "validation": "models.py:data"},
        "budget": {"epochs": 1, "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 8},
        "keep_models": True,
        "tensorboard": True,
        "grid": {"kind": ["configured", "net"], "lr": [0.01]},
    }
    workflow.write_config(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "my.yaml"],
                            cwd=workflow.root, env=env, umask=0o027, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr

    files = [path for path in workflow.path("results").rglob("*") if path.is_file()]
    kinds = {"events" if "tensorboard" in path.parts else path.name for path in files}
    assert {"metrics.json", "params.json", "history.csv", "model.keras", "model.weights.h5", "leaderboard.tsv",
            "best_params.yaml", "best_model.yaml", "leaderboard.html", "ranking.png", "learning_curves.png",
            "param_effects.png", "importance.tsv", "importance.png", "events"} <= kinds
    assert {"best_model.keras", "best_model.weights.h5"} & kinds
    assert {str(path.relative_to(workflow.root)): oct(mode(path)) for path in files if mode(path) != 0o640} == {}
    folders = [path for path in workflow.path("results").rglob("*") if path.is_dir()]
    assert {str(path.relative_to(workflow.root)): oct(mode(path)) for path in folders if mode(path) != 0o750} == {}
