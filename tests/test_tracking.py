"""kerasgrid.results.tracking on hand-made trial folders, logged to a local SQLite tracking store:
what a run holds, that nothing is logged twice, halving's rungs, a retrained trial, an outage.
Whole sweeps logged to a real tracking server: tests/test_mlflow_sweeps.py."""

import json
import re
import socket
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from kerasgrid.results import tracking
from kerasgrid.results.tracking import Target, finished_runs, log_sweep, log_trial, mlflow_name, param_value, run_key

HEADER = "epoch,loss,val_loss"


@pytest.fixture(autouse=True)
def quick_http(monkeypatch):
    """tracking sets these for its process; here, only for the test."""
    for name, value in tracking.MLFLOW_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def target(tmp_path, monkeypatch) -> Target:
    """A sweep's results folder in tmp_path, logged to a SQLite store there (whose experiments keep
    their artifacts in ./mlruns: the test runs in tmp_path)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "trials").mkdir(parents=True)
    return Target(f"sqlite:///{tmp_path}/mlflow.db", "tests", str(tmp_path / "results"), "my.yaml")


def write_run(folder, params: dict, losses: list[float], status="ok", trial_id="0123456789ab", seed=0, error=None):
    """A run's files as run_trial writes them: val_loss is loss + 1 at each epoch."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.json").write_text(json.dumps(params), encoding="utf-8")
    rows = [f"{epoch},{loss},{loss + 1}" for epoch, loss in enumerate(losses)]
    (folder / "history.csv").write_text("\r\n".join([HEADER, *rows]) + "\r\n", encoding="utf-8")
    record = {
        "trial_id": trial_id, "params": params, "status": status, "error": error, "seed": seed,
        "objective": {"metric": "val_loss", "direction": "min", "value": losses[-1] + 1 if status == "ok" else None},
        "epochs_run": len(losses), "fit_seconds": 1.5, "wall_seconds": 2.0, "host": "here",
        "devices": ["/CPU:0"], "cuda_visible_devices": None, "metrics": {},
    }
    (folder / "metrics.json").write_text(json.dumps(record), encoding="utf-8")
    return folder


def runs_of(target: Target) -> list:
    """The experiment's active runs: the sweep's parent first, then its trials' by folder."""
    client = MlflowClient(target.tracking_uri)
    experiment = client.get_experiment_by_name(target.experiment)
    found = client.search_runs([experiment.experiment_id])
    return sorted(found, key=lambda run: (run.data.tags["kerasgrid.kind"] != "sweep", run.data.tags.get("kerasgrid.run", "")))


def history(target: Target, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in MlflowClient(target.tracking_uri).get_metric_history(run_id, key))


@pytest.mark.parametrize("folder, key", [
    ("trials/0123456789ab", "trials/0123456789ab"),
    ("trials/0123456789ab/rungs/3", "trials/0123456789ab"),
    ("trials/0123456789ab/seeds/1", "trials/0123456789ab/seeds/1"),
    ("trials/0123456789ab/seeds/1/rungs/1", "trials/0123456789ab/seeds/1"),
    ("trials/0123456789ab/confirm", "trials/0123456789ab/confirm"),
    ("trials/0123456789ab/confirm/seeds/2", "trials/0123456789ab/confirm/seeds/2"),
])
def test_every_rung_of_a_run_has_the_runs_key(folder, key):
    assert run_key(f"results/{folder}", "results") == key


@pytest.mark.parametrize("value, held", [
    ("relu", "relu"), (0.001, "0.001"), (3, "3"), (True, "true"), (None, "null"), ([1, "two"], '[1, "two"]'),
    ({"a": 1}, '{"a": 1}'), ("ünï", "ünï"),
])
def test_grid_values_become_params_as_the_leaderboard_shows_them(value, held):
    assert param_value(value) == held


def test_names_mlflow_refuses_become_ones_it_takes():
    assert mlflow_name("val_loss") == "val_loss"
    assert mlflow_name("a{b}") == "a_b_"
    assert mlflow_name("layer/units 2:x-y.z") == "layer/units 2:x-y.z"


def test_a_runs_furthest_record_is_what_it_logs(tmp_path):
    results = tmp_path / "results"
    trial = results / "trials" / "0123456789ab"
    for rung in (1, 3):
        write_run(trial / "rungs" / str(rung), {"q": 1}, [1.0] * rung)
    write_run(results / "trials" / "ba9876543210" / "rungs" / "1", {"q": 2}, [2.0])
    write_run(results / "trials" / "ba9876543210" / "rungs" / "10", {"q": 2}, [2.0] * 10)  # 10 after 3: numbers
    write_run(results / "trials" / "ba9876543210" / "rungs" / "3", {"q": 2}, [2.0] * 3)
    assert finished_runs(results) == {
        "trials/0123456789ab": trial / "rungs" / "3",
        "trials/ba9876543210": results / "trials" / "ba9876543210" / "rungs" / "10",
    }
    write_run(trial, {"q": 1}, [1.0] * 9)  # the last rung: the trial's own folder
    assert finished_runs(results)["trials/0123456789ab"] == trial


def test_a_trial_becomes_one_run_with_its_params_metrics_status_and_files(target):
    folder = write_run(f"{target.results}/trials/0123456789ab", {"lr": 0.01, "act": "relu", "a{b}": [1, 2]}, [0.5, 0.25])
    assert log_trial(target, folder) is None
    assert log_trial(target, folder) is None  # logged already: nothing new

    parent, run = runs_of(target)
    assert parent.info.run_name == "sweep my.yaml" and parent.data.tags["kerasgrid.kind"] == "sweep"
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.info.run_name == "0123456789ab" and run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.01", "act": "relu", "a_b_": "[1, 2]"}
    assert history(target, run.info.run_id, "loss") == [(1, 0.5), (2, 0.25)]
    assert history(target, run.info.run_id, "val_loss") == [(1, 1.5), (2, 1.25)]
    assert history(target, run.info.run_id, "objective") == [(2, 1.25)]
    tags = run.data.tags
    assert (tags["kerasgrid.trial_id"], tags["kerasgrid.status"], tags["kerasgrid.devices"]) == ("0123456789ab", "ok", "/CPU:0")
    assert tags["kerasgrid.run"] == "trials/0123456789ab" and tags["kerasgrid.epochs"] == "2"
    files = {f.path for f in MlflowClient(target.tracking_uri).list_artifacts(run.info.run_id)}
    assert files == {"params.json", "metrics.json", "history.csv"}
    assert run.info.end_time - run.info.start_time == 2000  # the trial's wall seconds


def test_a_failed_or_diverged_trial_is_a_failed_run(target):
    failed = write_run(f"{target.results}/trials/0123456789ab", {"lr": 1}, [], status="failed", error="ValueError: no")
    diverged = write_run(f"{target.results}/trials/ba9876543210", {"lr": 2}, [1.0, float("nan")], status="diverged",
                         trial_id="ba9876543210")
    assert log_trial(target, failed) is None and log_trial(target, diverged) is None
    _, first, second = runs_of(target)
    assert (first.info.status, first.data.tags["kerasgrid.status"], first.data.tags["kerasgrid.error"]) == (
        "FAILED", "failed", "ValueError: no")
    assert second.info.status == "FAILED" and second.data.tags["kerasgrid.status"] == "diverged"
    assert "objective" not in first.data.metrics and first.data.tags["kerasgrid.epochs"] == "0"


def test_a_halving_trials_later_rung_adds_its_epochs_to_the_same_run(target):
    trial = f"{target.results}/trials/0123456789ab"
    assert log_trial(target, write_run(f"{trial}/rungs/1", {"q": 1}, [0.5])) is None
    assert log_trial(target, write_run(f"{trial}/rungs/3", {"q": 1}, [0.5, 0.4, 0.3])) is None
    assert log_trial(target, write_run(trial, {"q": 1}, [0.5, 0.4, 0.3, 0.2])) is None  # the last rung
    _, run = runs_of(target)
    assert history(target, run.info.run_id, "loss") == [(1, 0.5), (2, 0.4), (3, 0.3), (4, 0.2)]
    assert history(target, run.info.run_id, "objective") == [(1, 1.5), (3, 1.3), (4, 1.2)]
    assert run.data.tags["kerasgrid.epochs_logged"] == "4"


def test_a_trial_trained_again_gets_a_new_run_and_its_old_one_goes(target):
    folder = f"{target.results}/trials/0123456789ab"
    log_trial(target, write_run(folder, {"q": 1}, [0.5, 0.4]))
    (old,) = runs_of(target)[1:]
    log_trial(target, write_run(folder, {"q": 1}, [0.6, 0.5, 0.4]))  # another budget, other losses
    (new,) = runs_of(target)[1:]
    assert new.info.run_id != old.info.run_id
    assert history(target, new.info.run_id, "loss") == [(1, 0.6), (2, 0.5), (3, 0.4)]
    assert MlflowClient(target.tracking_uri).get_run(old.info.run_id).info.lifecycle_stage == "deleted"


def test_log_sweep_logs_what_is_missing_then_the_parent_with_the_results(target):
    results = target.results
    first = write_run(f"{results}/trials/0123456789ab", {"q": 1}, [0.5])
    write_run(f"{results}/trials/ba9876543210", {"q": 2}, [0.7], trial_id="ba9876543210")
    write_run(f"{results}/trials/ba9876543210/seeds/1", {"q": 2}, [0.8], trial_id="ba9876543210", seed=1)
    log_trial(target, first)
    done = Path(results)
    (done / "leaderboard.tsv").write_text("rank\ttrial_id\n1\t0123456789ab\n", encoding="utf-8")
    (done / "best_params.yaml").write_text(
        "trial_id: 0123456789ab\nobjective: {metric: val_loss, direction: min, value: 1.5}\nparams: {q: 1}\n",
        encoding="utf-8")
    (done / "best_model.yaml").write_text("trial_id: 0123456789ab\nsaved: model\npath: results/best_model.keras\n",
                                          encoding="utf-8")
    (done / "best_model.keras").write_bytes(b"model")
    (done / "plots").mkdir()
    (done / "plots" / "ranking.png").write_bytes(b"png")

    summary = log_sweep(target)
    assert (summary["logged"], summary["up_to_date"], summary["not_logged"], summary["error"]) == (2, 1, [], None)
    assert sorted(summary["runs"]) == ["trials/0123456789ab", "trials/ba9876543210", "trials/ba9876543210/seeds/1"]
    parent, *children = runs_of(target)
    assert summary["sweep_run_id"] == parent.info.run_id and parent.info.status == "FINISHED"
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {parent.info.run_id}
    assert sorted(run.info.run_name for run in children) == ["0123456789ab", "ba9876543210", "ba9876543210 seeds 1"]
    client = MlflowClient(target.tracking_uri)
    assert {f.path for f in client.list_artifacts(parent.info.run_id)} == {
        "leaderboard.tsv", "best_params.yaml", "best_model.yaml", "best_model.keras", "plots"}
    assert [f.path for f in client.list_artifacts(parent.info.run_id, "plots")] == ["plots/ranking.png"]
    assert parent.data.tags["kerasgrid.best_trial_id"] == "0123456789ab" and parent.data.metrics["best_objective"] == 1.5

    again = log_sweep(target)
    assert (again["logged"], again["up_to_date"], again["sweep_run_id"]) == (0, 3, parent.info.run_id)
    assert len(runs_of(target)) == 4

    # A pass that stops (as at an outage; here at a run MLflow refuses, a param name longer than it
    # takes, first in the sweep's order) counts as missing only what is not logged: not a trial
    # logged as it ended, nor what an earlier pass logged, unless it was trained again since.
    assert log_trial(target, write_run(f"{results}/trials/cccccccccccc", {"q": 3}, [0.5], trial_id="cccccccccccc")) is None
    write_run(f"{results}/trials/000000000000", {"q" * 300: 1}, [0.5], trial_id="000000000000")
    write_run(f"{results}/trials/ba9876543210", {"q": 2}, [0.6], trial_id="ba9876543210")
    stopped = log_sweep(target)
    assert stopped["not_logged"] == ["trials/000000000000", "trials/ba9876543210"]
    assert stopped["error"].startswith(f"could not log 2 of the sweep's 5 trial runs (3 were logged already) and its "
                                       f"parent run to MLflow at {target.tracking_uri} (experiment 'tests'): ")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once closed: nothing listens there


def test_an_unreachable_tracker_costs_seconds_and_says_how_to_log_later(target, capsys):
    down = Target(f"http://127.0.0.1:{closed_port()}", "tests", target.results, "a.yaml + b.yaml")
    folder = write_run(f"{target.results}/trials/0123456789ab", {"q": 1}, [0.5])
    started = time.monotonic()
    note = log_trial(down, folder)
    assert time.monotonic() - started < 15
    assert note.startswith(f"could not log trial 0123456789ab ({target.results}/trials/0123456789ab) to MLflow at "
                           f"{down.tracking_uri} (experiment 'tests'): MlflowException: API request to ")
    assert "Connection refused" in note
    assert note.endswith(": [Errno 111] Connection refused. Nothing is lost: the trial's files are kept, it counts "
                         "as finished, and the sweep goes on. The sweep's last step logs it if the tracker is back by "
                         f"then; if not, log it once it is: kerasgrid mlflow --results {target.results} a.yaml b.yaml "
                         "(it skips whatever is already logged).")
    assert "Traceback" in capsys.readouterr().err  # for the trial's log

    # The next trial of the process does not wait for the tracker again for a minute.
    started = time.monotonic()
    again = log_trial(down, write_run(f"{target.results}/trials/ba9876543210", {"q": 2}, [0.5]))
    assert time.monotonic() - started < 0.5
    assert re.search(r"\): not tried, as it failed [0-9]+ s ago in this process \(MlflowException: API request to .*"
                     r"failed: \[Errno 111\] Connection refused\)\. Nothing is lost", again)

    summary = log_sweep(down)
    assert summary["not_logged"] == ["trials/0123456789ab", "trials/ba9876543210"]
    assert summary["error"] == (
        f"could not log 2 of the sweep's 2 trial runs and its parent run to MLflow at {down.tracking_uri} (experiment "
        f"'tests'): MlflowException: API request to {down.tracking_uri}/api/2.0/mlflow/experiments/get-by-name failed: "
        "[Errno 111] Connection refused. Nothing is lost: the sweep's files are kept. Log it once the tracker is back: "
        f"kerasgrid mlflow --results {target.results} a.yaml b.yaml (it skips whatever is already logged).")

