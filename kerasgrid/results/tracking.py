"""MLflow tracking (the config's `mlflow` key): each run of a trial an MLflow run, the sweep their parent.

MLflow gets a copy of what the sweep's files say; the files stay the record. Each run of a trial
(a folder results/trials/<id>, .../seeds/<seed>, .../confirm, with its metrics.json) becomes one
MLflow run, found again by its tags (the sweep, the folder), so that it is never logged twice:

- params: the trial's params (strings as they are, other values as their JSON);
- metrics: every column of history.csv at step = epoch (1 after the first), and the final
  `objective` and `fit_seconds` at the last epoch;
- tags: kerasgrid.trial_id, .status (ok, diverged, failed), .error, .seed, .devices, ...; the
  run's MLflow status is FINISHED for an ok trial, FAILED otherwise;
- artifacts: params.json, metrics.json, history.csv.

A halving trial's rungs log to its one run: each later rung adds the epochs the run lacks. A trial
trained again (after a change of budget, seed or code) gets a new run, and its old one is deleted
(MLflow keeps deleted runs until `mlflow gc`). The sweep's parent run (one per results folder)
holds the leaderboard, best_params.yaml, the plots and the winner's model.

The process that trained a trial logs it once its files are written (kerasgrid.running.workers);
the rule `mlflow_runs`, and the `kerasgrid mlflow` command, log whatever was not (trained before
the key was set, or while the tracker was down), then the parent run. MLflow is imported only
here, and only to log: a sweep without the key never loads it.
"""

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import shlex
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml

from kerasgrid import records
from kerasgrid.errors import KerasgridError, Status

SWEEP_TAG = "kerasgrid.sweep"  # the sweep's results folder, hashed: see Target.sweep
RUN_TAG = "kerasgrid.run"  # the run's folder in it: see run_key
KIND_TAG = "kerasgrid.kind"  # sweep (the parent), trial or confirmation
# The metrics.json last logged: the run is up to date while it is the same file.
RECORD_TAG = "kerasgrid.record_sha256"
# How many epochs of history.csv are logged, and the SHA-256 of those lines: a later halving rung
# carries them on (and adds its epochs), a trial trained again does not (and gets a new run).
EPOCHS_TAG = "kerasgrid.epochs_logged"
HISTORY_TAG = "kerasgrid.history_sha256"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under the run it names

# MLflow retries an HTTP request 7 times with exponential backoff, each with a 120 s timeout, so a
# tracker that is down held every trial for minutes. These make it seconds (a refused connection:
# about 2 s). And each run it ends would cost one more request, to print the run's address to the
# trial's log. Set in the environment (as MLflow reads them), they are left as they are.
MLFLOW_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
# After a failure, a process does not try the same tracker again for this long: with the tracker
# down, a worker then spends its seconds of retries once a minute, not on every trial.
RETRY_AFTER = 60.0

# In the results folder: the runs logged so far, and to which tracker (remember_logged).
LOGGED_FILE = ".mlflow.logged.json"

# MLflow's limits on one log_batch call.
BATCH_METRICS = 1000
BATCH_PARAMS_TAGS = 100
BATCH_ENTITIES = 1000
TEXT_LIMIT = 5000  # characters of an error kept in a tag (MLflow takes 8000)


@dataclass(frozen=True)
class Target:
    """Where and what a sweep logs: the config's `mlflow` settings, the sweep's results folder
    (as the workflow names it, relative to where snakemake runs) and its config (as messages name it)."""

    tracking_uri: str
    experiment: str
    results: str = "results"
    source: str = "config.yaml"

    @property
    def sweep(self) -> str:
        """The sweep's tag: 12 hex digits of the SHA-256 of its results folder's absolute path.
        A results folder is a sweep: its trials accumulate there, run after run, whatever the grid."""
        return hashlib.sha256(str(Path(self.results).resolve()).encode("utf-8")).hexdigest()[:12]

    def command(self) -> str:
        """The command that logs whatever of the sweep is not logged yet."""
        results = [] if self.results == "results" else ["--results", self.results]
        return shlex.join(["kerasgrid", "mlflow", *results, *self.source.split(" + ")])


# What MLflow is told about one run of a trial, read from its files alone (no MLflow here).

def run_key(folder, results) -> str:
    """A run's folder relative to `results` without a halving rung's part: "trials/<id>",
    "trials/<id>/seeds/1", "trials/<id>/confirm". Every rung of a run has the run's key."""
    relative = Path(os.path.relpath(folder, results)).as_posix()
    return re.sub(r"/rungs/[0-9]+$", "", relative)


def finished_runs(results) -> dict[str, Path]:
    """Every run of the sweep with a record on disk: its key -> the folder of its furthest record
    (with halving, the rung it got furthest in; the run's own folder holds its last)."""
    furthest: dict[str, tuple[float, Path]] = {}
    for metrics in sorted(Path(results, "trials").glob("**/metrics.json")):
        folder = metrics.parent
        reach = int(folder.name) if folder.parent.name == "rungs" else math.inf
        key = run_key(folder, results)
        if key not in furthest or reach > furthest[key][0]:
            furthest[key] = (reach, folder)
    return {key: folder for key, (_, folder) in sorted(furthest.items())}


def param_value(value) -> str:
    """A grid value as an MLflow param: strings as they are, anything else as its JSON, as the
    leaderboard shows it (True -> true, [1, 2] -> [1, 2], None -> null)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def mlflow_name(name: str) -> str:
    """A param or metric name MLflow takes: the characters it refuses (in a grid key such as
    "a{b}") become underscores."""
    return re.sub(r"[^\w./\- :]", "_", str(name))


@dataclass(frozen=True)
class RunFiles:
    """One run's record as its folder holds it."""

    key: str
    folder: Path
    record: dict
    record_sha256: str
    header: str  # history.csv's first line
    rows: list[str]  # its lines after that, one per epoch
    finished_ms: int  # when metrics.json was written

    @property
    def trial_id(self) -> str:
        return self.record["trial_id"]

    @property
    def status(self) -> str:
        """The run's MLflow status: FINISHED for an ok trial, FAILED for a diverged or failed one."""
        return "FINISHED" if self.record["status"] == Status.OK.value else "FAILED"

    @property
    def started_ms(self) -> int:
        return self.finished_ms - int(1000 * (self.record.get("wall_seconds") or 0))

    @property
    def name(self) -> str:
        """The run's name in MLflow: the trial id, with the seed or confirmation it is."""
        rest = self.key.split("/", 2)[2:]
        return " ".join([self.trial_id, *rest[0].split("/")]) if rest else self.trial_id

    def history_sha256(self, epochs: int) -> str:
        """The SHA-256 of history.csv's header and first `epochs` rows."""
        return hashlib.sha256("\n".join([self.header, *self.rows[:epochs]]).encode("utf-8")).hexdigest()

    def params(self) -> dict[str, str]:
        return {mlflow_name(key): param_value(value) for key, value in self.record["params"].items()}

    def metrics(self, first_epoch: int = 0) -> list[tuple[str, float, int]]:
        """(name, value, step) of every metric of every epoch after `first_epoch`, and at the last
        epoch the final objective, the fit seconds and what the trial measured (params_count,
        predict_ms: records.MEASURES)."""
        names = self.header.split(",")
        found = []
        for epoch, row in enumerate(self.rows[first_epoch:], first_epoch + 1):
            for name, value in zip(names, row.split(",")):
                with contextlib.suppress(ValueError):  # an empty or non-numeric cell: nothing to plot
                    if name != "epoch":
                        found.append((mlflow_name(name), float(value), epoch))
        last = len(self.rows)
        value = (self.record.get("objective") or {}).get("value")
        if value is not None:
            found.append(("objective", float(value), last))
        found.append(("fit_seconds", float(self.record.get("fit_seconds") or 0), last))
        for name, measured in (self.record.get("measures") or {}).items():
            if isinstance(measured, (int, float)) and name != "fit_seconds":
                found.append((mlflow_name(name), float(measured), last))
        return found

    def tags(self, sweep: str) -> dict[str, str]:
        record = self.record
        objective = record.get("objective") or {}
        tags = {
            SWEEP_TAG: sweep,
            RUN_TAG: self.key,
            KIND_TAG: "confirmation" if "/confirm" in self.key else "trial",
            "kerasgrid.trial_id": self.trial_id,
            "kerasgrid.status": record["status"],
            "kerasgrid.seed": str(record.get("seed")),
            "kerasgrid.epochs": str(record.get("epochs_run", 0)),
            "kerasgrid.objective": f"{objective.get('metric')} ({objective.get('direction', 'min')})",
            "kerasgrid.devices": ", ".join(record.get("devices") or []) or "unrecorded",
            "kerasgrid.host": str(record.get("host")),
        }
        if record.get("error"):
            tags["kerasgrid.error"] = record["error"][:TEXT_LIMIT]
        if record.get("cuda_visible_devices") is not None:
            tags["kerasgrid.cuda_visible_devices"] = record["cuda_visible_devices"]
        return tags


def run_files(folder, results) -> RunFiles:
    folder = Path(folder)
    metrics = folder / "metrics.json"
    text = metrics.read_bytes()
    history = folder / "history.csv"
    lines = history.read_text(encoding="utf-8").splitlines() if history.exists() else ["epoch"]
    return RunFiles(
        key=run_key(folder, results),
        folder=folder,
        record=json.loads(text),
        record_sha256=hashlib.sha256(text).hexdigest(),
        header=lines[0] if lines else "epoch",
        rows=[line for line in lines[1:] if line],
        finished_ms=int(metrics.stat().st_mtime * 1000),
    )


def sweep_artifacts(results) -> list[tuple[Path, str | None]]:
    """(file, artifact folder) of what the parent run holds, of what is there: the leaderboard
    (its page, and with several objectives the Pareto front), best_params.yaml, the
    hyperparameters' importance, the winner's model and best_model.yaml, the plots."""
    results = Path(results)
    found = [(results / name, None) for name in ("leaderboard.tsv", "leaderboard.html", "pareto.tsv",
                                                 "best_params.yaml", "importance.tsv", "best_model.yaml")]
    manifest = results / "best_model.yaml"
    if manifest.exists():
        saved = yaml.safe_load(manifest.read_text(encoding="utf-8")).get("path")
        if saved:
            found.append((results / Path(saved).name, None))  # beside the manifest, as load_best_model finds it
    found += [(plot, "plots") for plot in sorted(results.glob("plots/*.png"))]
    return [(path, folder) for path, folder in found if path.is_file()]


# Logging, with MLflow.

def limit_http_retries() -> None:
    for name, value in MLFLOW_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def _locked(results):
    """Only one process of the sweep at a time finds or creates a run, so that two workers
    starting at once do not both create the sweep's parent run (nor both a SQLite store's tables)."""
    path = Path(results) / ".mlflow.lock"
    with open(path, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network disks): go on without
            pass
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)


def _quoted(value: str) -> str:
    """A tag value in an MLflow filter string (the values kerasgrid filters on are hex digits,
    digits and slashes)."""
    return "'" + value.replace("'", "") + "'"


class Tracker:
    """A sweep's experiment and parent run in one tracking store; logs its runs."""

    def __init__(self, target: Target):
        limit_http_retries()
        from mlflow import MlflowClient

        self.target = target
        with _locked(target.results):  # a client of a new SQLite store creates its tables, once
            self.client = MlflowClient(target.tracking_uri)
        self._experiment_id = None
        self._parent_id = None

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            with _locked(self.target.results):
                self._experiment_id = self._find_or_create_experiment()
        return self._experiment_id

    def _find_or_create_experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.target.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.target.experiment)
        except Exception:
            # Created meanwhile by a process the lock does not reach (another machine of a cluster).
            found = self.client.get_experiment_by_name(self.target.experiment)
            if found is None:
                raise
            return found.experiment_id

    def _search(self, where: str) -> list:
        """Every active run of this sweep (`where`: a further condition), oldest first."""
        found, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], f"tags.`{SWEEP_TAG}` = {_quoted(self.target.sweep)} and {where}",
                max_results=1000, order_by=["attributes.start_time ASC"], page_token=token)
            found += list(page)
            token = page.token
            if not token:
                return found

    @property
    def parent_id(self) -> str:
        """The sweep's parent run, created by the first process that logs anything of the sweep."""
        if self._parent_id is None:
            experiment = self.experiment_id
            with _locked(self.target.results):
                found = self._search(f"tags.`{KIND_TAG}` = 'sweep'")
                if found:
                    self._parent_id = found[0].info.run_id
                else:
                    self._parent_id = self.client.create_run(experiment, run_name=f"sweep {self.target.source}", tags={
                        SWEEP_TAG: self.target.sweep,
                        KIND_TAG: "sweep",
                        "kerasgrid.results": str(Path(self.target.results).resolve()),
                        "kerasgrid.config": self.target.source,
                    }).info.run_id
        return self._parent_id

    def trial_runs(self) -> dict:
        """The sweep's logged runs of trials, by key (the oldest, should there be two)."""
        runs = {}
        for run in self._search(f"tags.`{KIND_TAG}` != 'sweep'"):
            runs.setdefault(run.data.tags.get(RUN_TAG), run)
        return runs

    def log_run(self, files: RunFiles, run=None, find: bool = True) -> tuple[str, bool]:
        """Log a run's record (its id, and False if it was up to date). `run`: its MLflow run, if
        known; `find`: look for it when not given (False: it is known not to exist)."""
        from mlflow.entities import Metric, Param, RunTag

        parent = self.parent_id  # looked up before the lock below, which looking it up takes too
        if run is None and find:
            with _locked(self.target.results):  # so that two processes never create the same run
                found = self._search(f"tags.`{RUN_TAG}` = {_quoted(files.key)}")
                run = found[0] if found else self._create(files, parent)
        elif run is None:
            run = self._create(files, parent)
        tags = run.data.tags
        if tags.get(RECORD_TAG) == files.record_sha256:
            return run.info.run_id, False
        logged = int(tags.get(EPOCHS_TAG, 0))
        if logged > len(files.rows) or tags.get(HISTORY_TAG, files.history_sha256(0)) != files.history_sha256(logged):
            # Trained again since: this run's epochs are not the ones on disk.
            self.client.delete_run(run.info.run_id)
            run, logged = self._create(files, parent), 0
        run_id = run.info.run_id
        for name in ("params.json", "metrics.json", "history.csv"):
            if (files.folder / name).is_file():
                self.client.log_artifact(run_id, str(files.folder / name))
        self.client.set_terminated(run_id, files.status, end_time=files.finished_ms)
        known = run.data.params
        params = [Param(key, value) for key, value in files.params().items() if key not in known]
        metrics = [Metric(name, value, files.finished_ms, step) for name, value, step in files.metrics(logged)]
        # The record's digest last: once it is logged, the run is complete.
        tags = files.tags(self.target.sweep) | {EPOCHS_TAG: str(len(files.rows)),
                                                HISTORY_TAG: files.history_sha256(len(files.rows)),
                                                RECORD_TAG: files.record_sha256}
        self._log_batch(run_id, metrics, params, [RunTag(key, value) for key, value in tags.items()])
        return run_id, True

    def _create(self, files: RunFiles, parent: str):
        return self.client.create_run(self.experiment_id, start_time=files.started_ms, run_name=files.name,
                                      tags={**files.tags(self.target.sweep), PARENT_TAG: parent})

    def _log_batch(self, run_id, metrics: list, params: list, tags: list) -> None:
        """One call where MLflow's limits allow (a trial's usually do), else several, the tags last."""
        if len(params) <= BATCH_PARAMS_TAGS and len(tags) <= BATCH_PARAMS_TAGS and \
                len(metrics) + len(params) + len(tags) <= BATCH_ENTITIES:
            self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
            return
        for start in range(0, len(metrics), BATCH_METRICS):
            self.client.log_batch(run_id, metrics=metrics[start:start + BATCH_METRICS])
        for start in range(0, max(len(params), len(tags)), BATCH_PARAMS_TAGS):
            self.client.log_batch(run_id, params=params[start:start + BATCH_PARAMS_TAGS],
                                  tags=tags[start:start + BATCH_PARAMS_TAGS])

    def log_parent(self) -> str:
        """The parent run's artifacts and tags from the sweep's results, FINISHED once the sweep has
        a winner; its id."""
        from mlflow.entities import Metric, RunTag

        parent = self.parent_id
        for path, folder in sweep_artifacts(self.target.results):
            self.client.log_artifact(parent, str(path), folder)
        best_path = Path(self.target.results) / "best_params.yaml"
        if best_path.is_file():
            best = yaml.safe_load(best_path.read_text(encoding="utf-8"))
            objective = best["objective"]
            tags = {"kerasgrid.best_trial_id": best["trial_id"],
                    "kerasgrid.objective": f"{objective['metric']} ({objective['direction']})"}
            self.client.log_batch(parent, metrics=[Metric("best_objective", float(objective["value"]),
                                                          int(time.time() * 1000), 0)],
                                  tags=[RunTag(key, value) for key, value in tags.items()])
            self.client.set_terminated(parent, "FINISHED")
        return parent


_TRACKERS: dict[Target, Tracker] = {}
_FAILED: dict[Target, tuple[float, str]] = {}  # when logging to a target last failed, and why


def tracker(target: Target) -> Tracker:
    """This process's Tracker of `target`: its experiment and parent run are looked up once."""
    if target not in _TRACKERS:
        _TRACKERS[target] = Tracker(target)
    return _TRACKERS[target]


def _reason(exc: BaseException) -> str:
    """What went wrong, in a line: MLflow's "API request to <url> failed with exception <urllib3's
    paragraph>" is cut to what the network said at its end ("[Errno 111] Connection refused")."""
    text = " ".join(str(exc).split())
    said = re.search(r"\[Errno -?[0-9]+\][^\"')]*", text)
    if said and " failed with exception " in text:
        text = f"{text.split(' failed with exception ')[0]} failed: {said.group(0).strip()}"
    elif len(text) > 400:
        text = text[:400] + "..."
    return f"{type(exc).__name__}: {text}"


def not_logged(target: Target, what: str, reason: str, trial: bool = False) -> str:
    """The paragraph that says what was not logged, why, that nothing is lost, and how to log it:
    of a `trial` as it ends, or of the whole sweep (its last step, or `kerasgrid mlflow`)."""
    if trial:
        kept = ("Nothing is lost: the trial's files are kept, it counts as finished, and the sweep goes on. "
                "The sweep's last step logs it if the tracker is back by then; if not, log it once it is")
    else:
        kept = "Nothing is lost: the sweep's files are kept. Log it once the tracker is back"
    return (f"could not log {what} to MLflow at {target.tracking_uri} (experiment '{target.experiment}'): "
            f"{reason.rstrip('.')}. {kept}: {target.command()} (it skips whatever is already logged).")


def log_trial(target: Target, folder) -> str | None:
    """Log the run whose record was just written in `folder` (its own or a halving rung's). None
    if it was logged; if it could not be, the paragraph saying so (`not_logged`), with the
    error's traceback printed first. Never raises: a tracker's outage must not fail a trial whose
    files are written."""
    key = run_key(folder, target.results)
    what = f"trial {key.split('/')[1]} ({Path(target.results) / key})" if key.startswith("trials/") else key
    failed = _FAILED.get(target)
    if failed and time.monotonic() - failed[0] < RETRY_AFTER:
        ago = time.monotonic() - failed[0]
        return not_logged(target, what, f"not tried, as it failed {ago:.0f} s ago in this process ({failed[1]})",
                          trial=True)
    try:
        files = run_files(folder, target.results)
        tracker(target).log_run(files)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the trial's files are kept
        traceback.print_exc()
        _FAILED[target] = (time.monotonic(), _reason(exc))
        return not_logged(target, what, _reason(exc), trial=True)
    _FAILED.pop(target, None)
    remember_logged(target, {files.key: files.record_sha256})
    return None


def log_sweep(target: Target) -> dict:
    """Log every run of the sweep on disk that is not logged (or not up to date), then the parent
    run; what is where, as results/mlflow.json holds it. Stops at the first error, which its
    `error` paragraph names with what is left to log (and whose traceback is printed)."""
    on_disk = finished_runs(target.results)
    summary = {"tracking_uri": target.tracking_uri, "experiment": target.experiment, "experiment_id": None,
               "sweep_run_id": None, "logged": 0, "up_to_date": 0, "not_logged": list(on_disk), "error": None,
               "runs": {}}
    done = {}
    try:
        logging = tracker(target)
        summary["experiment_id"] = logging.experiment_id
        summary["sweep_run_id"] = logging.parent_id
        known = logging.trial_runs()
        for key, folder in on_disk.items():
            files = run_files(folder, target.results)
            run_id, logged = logging.log_run(files, known.get(key), find=False)
            done[key] = files.record_sha256
            summary["runs"][key] = run_id
            summary["logged" if logged else "up_to_date"] += 1
            summary["not_logged"].remove(key)
        logging.log_parent()
    except Exception as exc:  # noqa: BLE001 - reported, with what is left to log
        traceback.print_exc()
        # What this pass did not reach may be logged already: by its trial as it ended, or by an
        # earlier pass. Only the others are missing.
        summary["not_logged"] = missing = not_logged_yet(target, {key: on_disk[key] for key in summary["not_logged"]})
        summary["error"] = not_logged(target, _what_is_missing(len(missing), len(on_disk)), _reason(exc))
    remember_logged(target, done)
    _FAILED.pop(target, None)
    return summary


def _what_is_missing(missing: int, runs: int) -> str:
    """What a sweep's log did not reach, as `not_logged` names it: "2 of the sweep's 16 trial runs
    (14 were logged already) and its parent run"."""
    logged = runs - missing
    if not missing:
        every = f" (its {runs} trial runs are logged already)" if runs > 1 else " (its trial run is logged already)"
        return "the sweep's parent run" + every * bool(runs)
    already = f" ({logged} {'was' if logged == 1 else 'were'} logged already)" if logged else ""
    return f"{missing} of the sweep's {runs} trial runs{already} and its parent run"


def _logged_file(target: Target) -> Path:
    return Path(target.results) / LOGGED_FILE


def logged_runs(target: Target) -> dict[str, str]:
    """The runs of the sweep noted as logged to `target` (`remember_logged`): key -> the SHA-256 of
    the metrics.json logged."""
    try:
        noted = records.read_json(_logged_file(target))
    except (OSError, ValueError):
        return {}
    if (noted.get("tracking_uri"), noted.get("experiment")) != (target.tracking_uri, target.experiment):
        return {}  # another tracker's
    return noted.get("runs") or {}


def remember_logged(target: Target, logged: dict[str, str]) -> None:
    """Note in the results folder that these runs are logged to `target` as their records are now
    (key -> metrics.json's SHA-256), so that a sweep whose tracker is down by its last step can
    tell what is logged already from what is not. A note that cannot be written is left out: it
    only counts."""
    if not logged:
        return
    with contextlib.suppress(OSError, KerasgridError), _locked(target.results):
        records.write_json(_logged_file(target), {"tracking_uri": target.tracking_uri, "experiment": target.experiment,
                                                  "runs": dict(sorted({**logged_runs(target), **logged}.items()))})


def not_logged_yet(target: Target, folders: dict[str, Path]) -> list[str]:
    """The keys of these runs (key -> folder) whose record, as it is on disk, is not noted as logged
    to `target`."""
    noted = logged_runs(target)
    missing = []
    for key, folder in folders.items():
        try:
            sha = hashlib.sha256((Path(folder) / "metrics.json").read_bytes()).hexdigest()
        except OSError:
            sha = None
        if sha is None or noted.get(key) != sha:
            missing.append(key)
    return missing


def write_summary(summary: dict, path) -> None:
    records.write_json(path, summary)


def summary_lines(path) -> list[str]:
    """The console lines of a sweep's results/mlflow.json: where its runs are, or what is not logged."""
    path = Path(path)
    if not path.is_file():
        return []
    summary = records.read_json(path)
    if summary["error"]:
        return [f"kerasgrid: {summary['error']}"]
    return [f"MLflow: the sweep's run {summary['sweep_run_id']} and its {len(summary['runs'])} trial runs are in "
            f"experiment '{summary['experiment']}' at {summary['tracking_uri']}."]
