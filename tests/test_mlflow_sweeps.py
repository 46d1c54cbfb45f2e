"""Real sweeps with `mlflow:`, read back through MLflow's client and compared with the trials' files:
a tracking server that the tests start (`mlflow server`, SQLite behind it), and a SQLite store."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from conftest import tiny_config
from kerasgrid.results.tracking import param_value
from kerasgrid.sweep.grid import expand_grid
from test_halving import KNOWN_LOSSES, halving_config

KERASGRID = Path(sys.executable).parent / "kerasgrid"
QUICK = {"epochs": 2, "steps_per_epoch": 3, "validation_steps": 1}
PLOTS = {"plots/learning_curves.png", "plots/param_effects.png", "plots/ranking.png", "plots/importance.png"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`mlflow server` on a local port, with a SQLite store and artifacts in `folder`."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.uri = f"http://127.0.0.1:{port}"
        self.log = folder / f"server-{port}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
                 "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1"],
                cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                # The server's job runner (huey consumers, for its GenAI features) would start a
                # dozen processes more; none of what it runs is used here.
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )

    def ready(self, timeout=180) -> bool:
        """Whether it answers /health within `timeout` seconds (False if it exited first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return True
            except OSError:
                time.sleep(0.3)
        return False

    def stop(self):
        """End the server and everything it started (its process group)."""
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # what the group's leader leaves behind goes too
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_server(folder: Path, port: int | None = None, attempts: int = 3) -> Server:
    """A ready server; a free port taken meanwhile by another process is tried again with another."""
    for _ in range(attempts):
        server = Server(folder, port or free_port())
        if server.ready():
            return server
        server.stop()
        if port is not None:
            break
    raise AssertionError(f"mlflow server did not start:\n{server.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


def sweep_runs(uri: str, experiment: str) -> tuple:
    """The experiment's parent runs and its trial runs (by trial folder)."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    parents = [run for run in runs if run.data.tags.get("kerasgrid.kind") == "sweep"]
    trials = sorted((run for run in runs if run not in parents), key=lambda run: run.data.tags["kerasgrid.run"])
    return parents, trials


def logged(uri: str, experiment: str) -> tuple[list[str], dict]:
    """What is logged, to compare before and after: the parent runs' ids, and each trial folder's
    run id and the digest of the record it holds."""
    parents, trials = sweep_runs(uri, experiment)
    return ([run.info.run_id for run in parents],
            {run.data.tags["kerasgrid.run"]: (run.info.run_id, run.data.tags["kerasgrid.record_sha256"]) for run in trials})


def read_history(folder: Path) -> list[dict]:
    with open(folder / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_run_matches_its_files(client: MlflowClient, run, folder: Path, parent_id: str, tmp_path: Path):
    record = json.loads((folder / "metrics.json").read_text())
    params = json.loads((folder / "params.json").read_text())
    assert run.data.tags["mlflow.parentRunId"] == parent_id
    assert run.data.tags["kerasgrid.trial_id"] == record["trial_id"] == run.data.tags["kerasgrid.run"].split("/")[1]
    assert run.data.tags["kerasgrid.status"] == record["status"]
    assert run.data.tags["kerasgrid.devices"] == ", ".join(record["devices"])
    assert run.info.status == ("FINISHED" if record["status"] == "ok" else "FAILED")
    assert run.data.params == {key: param_value(value) for key, value in params.items()}
    rows = read_history(folder)
    for name in rows[0] if rows else []:
        if name != "epoch":
            history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
            # Keras writes NA for val_ columns without validation data: not a number, not logged.
            assert history == [(epoch, pytest.approx(float(row[name]), rel=1e-12, nan_ok=True))
                               for epoch, row in enumerate(rows, 1) if row[name] != "NA"]
    if record["status"] == "ok":
        assert run.data.metrics["objective"] == record["objective"]["value"]
        assert run.data.metrics["params_count"] == record["measures"]["params_count"]
    assert {f.path for f in client.list_artifacts(run.info.run_id)} == {"params.json", "metrics.json", "history.csv"}
    copy = client.download_artifacts(run.info.run_id, "metrics.json", str(tmp_path))
    assert Path(copy).read_bytes() == (folder / "metrics.json").read_bytes()


def test_a_sweep_logs_its_trials_under_its_run_once_and_a_rerun_adds_only_what_is_new(workflow, mlflow_server, tmp_path):
    config = tiny_config(budget=QUICK, mlflow={"tracking_uri": mlflow_server.uri, "experiment": "logged once"})
    result = workflow.sweep(config)
    client = MlflowClient(mlflow_server.uri)

    (parent,), trials = sweep_runs(mlflow_server.uri, "logged once")
    assert [run.data.tags["kerasgrid.run"] for run in trials] == [f"trials/{tid}" for tid in sorted(expand_grid(config["grid"]))]
    for number, run in enumerate(trials):
        assert_run_matches_its_files(client, run, workflow.path(f"results/{run.data.tags['kerasgrid.run']}"),
                                     parent.info.run_id, tmp_path / str(number))
    best = yaml.safe_load(workflow.path("results/best_params.yaml").read_text())
    assert parent.info.status == "FINISHED" and parent.data.tags["kerasgrid.best_trial_id"] == best["trial_id"]
    assert parent.data.metrics["best_objective"] == best["objective"]["value"]
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert artifacts == {"leaderboard.tsv", "leaderboard.html", "best_params.yaml", "importance.tsv", "best_model.yaml",
                         "best_model.keras", "plots"}
    assert {f.path for f in client.list_artifacts(parent.info.run_id, "plots")} == PLOTS
    summary = json.loads(workflow.path("results/mlflow.json").read_text())
    assert summary["runs"] == {run.data.tags["kerasgrid.run"]: run.info.run_id for run in trials}
    assert (summary["logged"], summary["up_to_date"], summary["error"]) == (0, 4, None)  # each by its own trial
    assert (f"MLflow: the sweep's run {parent.info.run_id} and its 4 trial runs are in experiment 'logged once' "
            f"at {mlflow_server.uri}.") in result.output.splitlines()

    before = logged(mlflow_server.uri, "logged once")
    assert "Nothing to be done" in workflow.sweep(config).output
    assert logged(mlflow_server.uri, "logged once") == before

    config["grid"]["lr"].append(0.1)  # two trials more: they alone are logged, under the same parent
    workflow.sweep(config)
    (again,), grown = sweep_runs(mlflow_server.uri, "logged once")
    assert again.info.run_id == parent.info.run_id and len(grown) == 6
    after = logged(mlflow_server.uri, "logged once")[1]
    assert {key: after[key] for key in before[1]} == before[1]  # the first four as they were
    assert json.loads(workflow.path("results/mlflow.json").read_text())["up_to_date"] == 6


@pytest.fixture
def known(workflow):
    workflow.path("known.py").write_text(KNOWN_LOSSES, encoding="utf-8")
    return workflow


def test_a_halving_trial_is_one_run_of_every_epoch_it_trained_in_a_sqlite_store(known, tmp_path):
    store = f"sqlite:///{known.root}/mlflow.db"
    config = {**halving_config([0.1, 0.2, 0.3]), "mlflow": {"tracking_uri": store, "experiment": "halving"}}
    known.sweep(config)
    client = MlflowClient(store)

    (parent,), trials = sweep_runs(store, "halving")
    assert len(trials) == 9  # 3 q x 3 faults, each one run whatever the rungs it trained in
    reached = {}
    for number, run in enumerate(trials):
        trial = known.path(f"results/{run.data.tags['kerasgrid.run']}")
        # Its furthest record: the trial's own folder if it trained the last rung, else its furthest rung.
        folder = trial if (trial / "metrics.json").exists() else max(
            (metrics.parent for metrics in trial.glob("rungs/*/metrics.json")), key=lambda f: int(f.name))
        assert_run_matches_its_files(client, run, folder, parent.info.run_id, tmp_path / str(number))
        reached[run.data.params["q"], run.data.params["fault"]] = int(run.data.tags["kerasgrid.epochs_logged"])
    assert reached[("0.1", "none")] == 9  # the best went through every rung: rows 1 to 9 in one run
    assert sorted(reached.values()) == [0, 0, 0, 1, 1, 1, 3, 3, 9]  # raise: no epoch; nan: stops in its first
    assert {run.info.status for run in trials if run.data.params["fault"] != "none"} == {"FAILED"}
    assert sorted(run.data.tags["kerasgrid.status"] for run in trials).count("diverged") == 3


def test_a_tracker_that_is_down_loses_no_trial_and_kerasgrid_mlflow_logs_it_later(workflow, tmp_path):
    port = free_port()  # nothing listens there until the tracker is started below
    uri = f"http://127.0.0.1:{port}"
    config = tiny_config(budget=QUICK, mlflow={"tracking_uri": uri, "experiment": "outage"})
    result = workflow.sweep(config)  # succeeds
    for trial in expand_grid(config["grid"]):
        assert workflow.path(f"results/trials/{trial}/metrics.json").exists()
        log = workflow.path(f"logs/trials/{trial}.log").read_text()
        assert f"kerasgrid: could not log trial {trial} (results/trials/{trial}) to MLflow at {uri} (experiment " in log
    paragraphs = [line for line in result.output.splitlines() if line.startswith("kerasgrid: could not log trial ")]
    assert len(paragraphs) == 4 and all(line.endswith(
        f"if not, log it once it is: kerasgrid mlflow {workflow.path('my.yaml')} (it skips whatever is already "
        "logged).") for line in paragraphs)
    assert (f"kerasgrid: could not log 4 of the sweep's 4 trial runs and its parent run to MLflow at {uri} (experiment "
            f"'outage'): MlflowException: API request to {uri}/api/2.0/mlflow/experiments/get-by-name failed: [Errno 111] "
            "Connection refused. Nothing is lost: the sweep's files are kept. Log it once the tracker is back: kerasgrid "
            f"mlflow {workflow.path('my.yaml')} (it skips whatever is already logged).") in result.output.splitlines()
    assert json.loads(workflow.path("results/mlflow.json").read_text())["not_logged"] == [
        f"trials/{trial}" for trial in sorted(expand_grid(config["grid"]))]

    server = start_server(tmp_path, port)  # the tracker is back
    try:
        command = [str(KERASGRID), "mlflow", "my.yaml"]
        first = subprocess.run(command, cwd=workflow.root, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        (parent,), trials = sweep_runs(uri, "outage")
        assert first.stdout == (f"Logged 4 trial runs to MLflow at {uri}, experiment 'outage' (0 were logged "
                                 f"already); the sweep's run is {parent.info.run_id}.\n")
        client = MlflowClient(uri)
        for number, run in enumerate(trials):
            assert_run_matches_its_files(client, run, workflow.path(f"results/{run.data.tags['kerasgrid.run']}"),
                                         parent.info.run_id, tmp_path / str(number))
        assert "best_model.keras" in {f.path for f in client.list_artifacts(parent.info.run_id)}

        before = logged(uri, "outage")
        again = subprocess.run(command, cwd=workflow.root, capture_output=True, text=True, timeout=300)
        assert "Logged 0 trial runs to MLflow" in again.stdout and "(4 were logged already)" in again.stdout
        assert logged(uri, "outage") == before
        assert json.loads(workflow.path("results/mlflow.json").read_text())["error"] is None
        assert "Nothing to be done" in workflow.sweep(config).output

        server.stop()  # down again: what is logged already is not counted as missing
        down = subprocess.run(command, cwd=workflow.root, capture_output=True, text=True, timeout=300)
        assert down.returncode == 1 and down.stderr.splitlines()[-1].startswith(
            f"kerasgrid: could not log the sweep's parent run (its 4 trial runs are logged already) to MLflow at {uri} ")
        assert json.loads(workflow.path("results/mlflow.json").read_text())["not_logged"] == []
    finally:
        server.stop()


TRIPWIRE = """
import os
with open(os.environ["MLFLOW_TRIPWIRE"], "a") as marker:
    marker.write(f"{os.getpid()} {os.path.basename(__import__('sys').argv[0])}\\n")
raise ImportError("the test's stand-in for mlflow: nothing may import it")
"""


def test_a_sweep_without_mlflow_never_imports_it_and_setting_it_later_trains_nothing(workflow, tmp_path, monkeypatch):
    tripwire = tmp_path / "tripwire"
    (tripwire / "mlflow").mkdir(parents=True)
    (tripwire / "mlflow" / "__init__.py").write_text(TRIPWIRE, encoding="utf-8")
    marker = tmp_path / "imported"
    pythonpath = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tripwire), pythonpath])))
    monkeypatch.setenv("MLFLOW_TRIPWIRE", str(marker))
    subprocess.run([sys.executable, "-c", "import mlflow"], capture_output=True)
    assert marker.exists(), "the tripwire does not catch an import of mlflow"
    marker.unlink()

    config = tiny_config()
    workflow.sweep(config)  # the snakemake process, its warm workers and every rule script
    assert not marker.exists(), f"imported mlflow: {marker.read_text()}"
    assert not workflow.path("results/mlflow.json").exists()

    monkeypatch.setenv("PYTHONPATH", pythonpath)
    store = f"sqlite:///{workflow.root}/mlflow.db"
    config["mlflow"] = {"tracking_uri": store, "experiment": "later"}
    assert workflow.plan(config) == {"mlflow_runs": [""]}  # logging changes no result: nothing trains
    workflow.sweep(config)
    summary = json.loads(workflow.path("results/mlflow.json").read_text())
    assert (summary["logged"], summary["up_to_date"], summary["error"]) == (4, 0, None)
    (parent,), trials = sweep_runs(store, "later")
    assert len(trials) == 4 and {run.data.tags["mlflow.parentRunId"] for run in trials} == {parent.info.run_id}
