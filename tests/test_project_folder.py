"""A sweep run from a project folder of the user's own, with kerasgrid installed as a package."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Workflow, copy_of_workflow, trained_trials
from kerasgrid import load_best_model
from kerasgrid.results.leaderboard import read_leaderboard
from test_best_model import recorded_loss_of

TRIAL_MODELS = Path(__file__).resolve().parent / "trial_models.py"

# A subclassed model as Keras tutorials write one (__init__ takes arguments, no get_config()),
# trained on data from the same file, written as a user's own sweep file would be.
SWEEP = {
    "model": "models.py:subclassed_with_args",
    "data": {"train": "models.py:data", "validation": "models.py:data"},
    "budget": {"epochs": 2, "steps_per_epoch": 4, "validation_steps": 2, "batch_size": 8},
    "grid": {"units": [3, 5], "lr": [0.01, 0.05]},
}


def project_folder(root: Path, config=None, name="sweep.yaml") -> Path:
    root.mkdir(parents=True)
    shutil.copy(TRIAL_MODELS, root / "models.py")
    (root / name).write_text(yaml.safe_dump(config or SWEEP), encoding="utf-8")
    return root


def files_of(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """kerasgrid built into a wheel and installed from it (not editable): the folder to put on PYTHONPATH."""
    root = tmp_path_factory.mktemp("install")
    source = copy_of_workflow(root / "source").root
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "kerasgrid", source / "kerasgrid", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (root / "dist").glob("kerasgrid-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(root / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return root / "site"


def run(folder: Path, installed: Path, *args) -> subprocess.CompletedProcess:
    """A command run in `folder` by a Python that imports kerasgrid from the installed wheel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
    env["PYTHONPATH"] = str(installed)
    result = subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    result.output = result.stdout + result.stderr
    return result


def test_the_installed_package_ships_the_workflow(installed):
    shipped = installed / "kerasgrid" / "_workflow"
    for name in ("Snakefile", "config.yaml", "profiles/default/config.yaml", "profiles/slurm/config.yaml"):
        assert (shipped / name).read_bytes() == (REPO / name).read_bytes(), name
    for folder in ("workflow/rules", "workflow/schemas", "workflow/report", "workflow/profiles/default",
                   "workflow/profiles/slurm", "scripts", "examples"):
        ours = {p.name: p.read_bytes() for p in (REPO / folder).iterdir() if p.is_file()}
        assert {p.name: p.read_bytes() for p in (shipped / folder).iterdir() if p.is_file()} == ours, folder
    where = run(installed.parent, installed, "-m", "kerasgrid.cli", "workflow")
    assert where.returncode == 0 and where.stdout == f"{shipped / 'Snakefile'}\n"


def test_a_sweep_from_a_project_folder_of_ones_own_with_a_model_that_cannot_be_saved_whole(installed, tmp_path, monkeypatch):
    project = project_folder(tmp_path / "my project")  # a space, as users' folders have
    snakefile = run(project, installed, "-m", "kerasgrid.cli", "workflow").stdout.strip()
    workflow_files = files_of(installed)

    result = run(project, installed, "-m", "snakemake", "-s", snakefile, "--cores", "2", "--configfile", "sweep.yaml")
    assert result.returncode == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("Best params found: {'lr': ")
    # Results and logs in the project folder, with the default profile the workflow ships (its
    # warm workers write logs/workers.log); nothing written where the workflow is installed.
    assert f"Using workflow specific profile {Path(snakefile).parent / 'profiles/default'}" in result.output
    assert {p.name for p in project.iterdir()} == {"models.py", "sweep.yaml", "results", "logs", ".snakemake"}
    assert project.joinpath("logs/workers.log").exists()
    assert files_of(installed) == workflow_files
    assert len(trained_trials(result.output)) == 4

    # Every trial ok; the winner kept as weights, as the console's last lines say.
    rows = read_leaderboard(project / "results/leaderboard.tsv")
    assert [row["status"] for row in rows] == ["ok"] * 4
    manifest = yaml.safe_load((project / "results/best_model.yaml").read_text())
    assert manifest["saved"] == "weights" and manifest["path"] == "results/best_model.weights.h5"
    assert not (project / "results/best_model.keras").exists()
    lines = result.stdout.splitlines()
    assert lines[-4].startswith("The winner's model could not be saved whole (NotImplementedError: Object Net was created ")
    assert lines[-3] == ("Its weights are in results/best_model.weights.h5; results/best_model.yaml says how to load them. "
                         f"{manifest['fix']}")
    assert lines[-2].startswith(f"Best trial: {rows[0]['trial_id']} with val_loss = ")

    again = run(project, installed, "-m", "snakemake", "-s", snakefile, "--cores", "2", "--configfile", "sweep.yaml")
    assert again.returncode == 0 and "Nothing to be done" in again.output

    monkeypatch.chdir(project)
    recorded_loss_of(load_best_model(), yaml.safe_load((project / "results/best_params.yaml").read_text()))


def test_run_from_another_folder_without_a_config_says_how_to_give_one(tmp_path):
    checkout = copy_of_workflow(tmp_path / "kerasgrid").root
    workflow_files = files_of(checkout)
    project = Workflow(project_folder(tmp_path / "project"))
    snakefile = checkout / "Snakefile"

    result = project.run("-s", str(snakefile), "--cores", "1", check=False)
    assert result.returncode != 0
    assert (f"no sweep to run: snakemake was given no --configfile, and {project.root}/config.yaml (the default) "
            f"does not exist. Name your sweep's config: snakemake -s {snakefile} --cores 4 --configfile sweep.yaml, "
            f"run from the folder its paths are relative to (a commented example: {checkout}/config.yaml); "
            "or name it config.yaml.") in " ".join(result.output.split())

    # Given: planned in this folder, with the checkout's default profile; a config.yaml here is this folder's default.
    plan = project.run("-s", str(snakefile), "--cores", "1", "--configfile", "sweep.yaml", "--dry-run").output
    assert f"Using workflow specific profile {checkout}/profiles/default" in plan and len(trained_trials(plan)) == 4
    project.path("sweep.yaml").rename(project.path("config.yaml"))
    assert len(trained_trials(project.run("-s", str(snakefile), "--cores", "1", "--dry-run").output)) == 4
    assert files_of(checkout) == workflow_files
