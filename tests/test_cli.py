"""`kerasgrid summary`, run as the installed command on the files of a real sweep."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kerasgrid.cli import summary, summary_rows
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.results.tables import leaderboard_lines

KERASGRID = Path(sys.executable).parent / "kerasgrid"


def kerasgrid(*args, check=True):
    result = subprocess.run([str(KERASGRID), *map(str, args)], capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def partial(tiny_sweep, tmp_path):
    """The tiny sweep's results as if snakemake had been stopped while training the best trial."""
    results = tmp_path / "results"
    shutil.copytree(tiny_sweep.path("results/trials"), results / "trials")
    rows = read_leaderboard(tiny_sweep.path("results/leaderboard.tsv"))
    unfinished = rows[0]["trial_id"]
    (results / "trials" / unfinished / "metrics.json").unlink()
    return results, [row for row in rows if row["trial_id"] != unfinished]


def test_summary_ranks_the_finished_trials_of_an_unfinished_sweep(partial):
    results, finished = partial
    lines = kerasgrid("summary", "--results", results, "--top", 2).stdout.splitlines()
    assert lines[0] == f"{results}/trials: 3 trials finished (3 ok), 1 started but not finished."
    assert lines[1] == "Leaderboard: top 2 of 3 trials by val_loss (lower is better), as recorded in the trials:"
    assert lines[2].split() == ["rank", "trial_id", "act_in", "act_out", "loss", "lr", "val_loss", "status"]
    assert [line.split()[1] for line in lines[3:5]] == [row["trial_id"] for row in finished[:2]]
    assert lines[5] == "... 1 more (--top 3 shows them all)"
    assert lines[-2].startswith(f"Best trial: {finished[0]['trial_id']} with val_loss = ")
    assert lines[-1].startswith("Best params found: {'act_in': ")


def test_the_summary_of_a_finished_sweep_is_its_leaderboard_row_by_row(tiny_sweep, faulty_sweep):
    for sweep in (tiny_sweep, faulty_sweep):  # one objective; the second with diverged and failed trials
        leaderboard = sweep.path("results/leaderboard.tsv")
        assert summary_rows(sweep.path("results")) == read_leaderboard(leaderboard)
    objective = {"metric": "loss", "direction": "min"}
    table = leaderboard_lines(leaderboard, objective, top=3)
    assert summary(faulty_sweep.path("results"), top=3)[2:2 + len(table)] == [f"{table[0]}, as the sweep ranks them:", *table[1:]]


def test_summary_ranks_on_another_metric_when_asked(partial):
    results, _ = partial
    out = kerasgrid("summary", "--results", results, "--metric", "val_categorical_accuracy", "--direction", "max").stdout
    lines = out.splitlines()
    assert lines[1] == "Leaderboard: 3 trials by val_categorical_accuracy (higher is better), as asked:"
    accuracies = [float(line.split()[-2]) for line in lines[3:6]]
    assert accuracies == sorted(accuracies, reverse=True)


def test_summary_says_why_a_trial_failed_as_the_run_does(partial):
    results, finished = partial
    path = results / "trials" / finished[-1]["trial_id"] / "metrics.json"
    record = json.loads(path.read_text())
    record.update(status="failed", error="KeyError: 'mometum'", reason="KeyError: 'mometum' (model.py:21)")
    path.write_text(json.dumps(record))
    lines = kerasgrid("summary", "--results", results).stdout.splitlines()
    assert lines[-5:-2] == [f"Trial {finished[-1]['trial_id']} failed: KeyError: 'mometum' (model.py:21)",
                            "1 of 3 trials failed; each one's log is in logs/trials/, named by its trial id.", ""]


def test_summary_explains_what_it_cannot_do(tmp_path, partial):
    missing = kerasgrid("summary", "--results", tmp_path / "nowhere", check=False)
    assert missing.returncode == 1
    assert missing.stderr == f"kerasgrid: {tmp_path}/nowhere/trials does not exist. Run a sweep first, or point --results at the folder a sweep wrote (the one that holds trials/).\n"
    unknown = kerasgrid("summary", "--results", partial[0], "--metric", "val_auc", check=False)
    assert unknown.returncode == 1
    assert "did not log val_auc; it logged: categorical_accuracy, loss, val_categorical_accuracy, val_loss. Give --metric one of these." in unknown.stderr


def test_summary_imports_no_tensorflow(partial):
    code = ("import sys; from kerasgrid.cli import main; "
            f"main(['summary', '--results', {str(partial[0])!r}]); print('TENSORFLOW', 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "TENSORFLOW False" in out


def test_workflow_prints_the_snakefile_of_this_checkout():
    from conftest import REPO

    assert kerasgrid("workflow").stdout == f"{REPO / 'Snakefile'}\n"


def test_mlflow_explains_what_it_cannot_do(tmp_path):
    config = {"model": "m.py:build", "data": {"train": "m.py:data"}, "grid": {"lr": [0.1]}}
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(config))
    unset = kerasgrid("mlflow", tmp_path / "plain.yaml", check=False)
    assert unset.returncode == 1
    assert unset.stderr == (f"kerasgrid: {tmp_path}/plain.yaml: mlflow is not set, so there is no tracker to log to. "
                            "Add it, e.g. mlflow: {tracking_uri: http://127.0.0.1:5000, experiment: digits}, or name "
                            "the config that has it.\n")
    (tmp_path / "tracked.yaml").write_text(yaml.safe_dump({"mlflow": {"tracking_uri": "sqlite:///mlflow.db"}}))
    nothing = kerasgrid("mlflow", "--results", tmp_path / "nowhere", tmp_path / "plain.yaml", tmp_path / "tracked.yaml",
                        check=False)  # merged in order, as snakemake merges --configfile files
    assert nothing.returncode == 1
    assert nothing.stderr == (f"kerasgrid: {tmp_path}/nowhere/trials does not exist. Run a sweep first, or point "
                              "--results at the folder a sweep wrote (the one that holds trials/).\n")
    typo = kerasgrid("mlflow", tmp_path / "missing.yaml", check=False)  # read as kerasgrid check reads one
    assert typo.stderr.startswith(f"kerasgrid: {tmp_path}/missing.yaml does not exist (looked for it relative to ")
