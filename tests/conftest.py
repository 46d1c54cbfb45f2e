"""Fixtures that run the real workflow in a scratch copy of the repository."""

import os
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


@pytest.fixture
def workflow(tmp_path) -> Workflow:
    root = tmp_path / "sweep"
    root.mkdir()
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_symlink():
            os.symlink(os.readlink(source), root / name)
        elif source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return Workflow(root)
