"""The winner's trained model: results/best_model.keras, or its weights when it cannot be saved whole.

Where does the winner's model come from, fastest first:
- `keep_models: true`: every trial saves its model as it trains; the winner's file is copied.
- A run on this machine leaves each trial's final training state (kerasgrid.trial.resume: every variable
  of the model and its optimizer), and `WinnerState` keeps only the best so far of the run, so at
  most a few states are on disk at any time, never one per trial. The winner is built again by
  the model function and given its state: exactly the model that won, without training it again.
- Otherwise (a cluster job trained it, or the objective changed and ranked another trial first)
  the winner is trained once more: the same params, settings, seed and `run_trial` as in the
  sweep, which are deterministic, and the retrained objective must equal the recorded one
  exactly, or no model is written.

A model Keras cannot save whole (a subclassed model without get_config(), as most tutorials write
them) is kept as its weights, results/best_model.weights.h5, which every model can save; the step
still succeeds. Either way results/best_model.yaml, written last, says which file holds the winner
and how to load it; it is the step's declared output, because it exists whichever file was saved.
"""

import math
import threading
import shutil
import warnings
from pathlib import Path

import yaml

from kerasgrid import records
from kerasgrid.errors import ModelError, NotReproducible, Status
from kerasgrid.results import versions
from kerasgrid.sweep import refs, runs
from kerasgrid.trial import backends, devices, resume
from kerasgrid.trial.training import TRIAL_MODEL, TRIAL_WEIGHTS, run_trial, weights_path


class WinnerState:
    """Of the trials that finish in this run, keeps the final state of the best so far, by the
    objective (`direction` min or max, ties to the lower trial id, as the leaderboard ranks), and
    removes every other's as soon as it is beaten: a sweep holds a few states at once, not one per
    trial. Thread-safe: the jobs of a local run call `offer` from their own threads."""

    def __init__(self, direction: str):
        self._sign = 1.0 if direction == "min" else -1.0
        self._best = None  # (sort key, run folder)
        self._lock = threading.Lock()

    def offer(self, run_dir) -> None:
        """A trial has finished in `run_dir`: keep its state if it is the best so far."""
        run_dir = Path(run_dir)
        try:
            value = (records.read_json(run_dir / "metrics.json").get("objective") or {}).get("value")
        except (OSError, ValueError):
            value = None
        beaten = run_dir
        if isinstance(value, (int, float)) and math.isfinite(value):
            key = (self._sign * value, run_dir.name)
            with self._lock:
                if self._best is None or key < self._best[0]:
                    beaten = self._best[1] if self._best else None
                    self._best = (key, run_dir)
        if beaten is not None:
            resume.remove_state(beaten)


def remove_states(trials_dir, keep) -> None:
    """Remove the final state of every trial under `trials_dir` but the run folder `keep`."""
    for meta in Path(trials_dir).glob(f"*/{resume.META}"):
        if meta.parent != Path(keep):
            resume.remove_state(meta.parent)


def restore_winner(run_dir, params: dict, settings: dict, model_path, *, threads: int, source: str) -> dict | None:
    """Build the winner with the model function, give it the final state its trial left in
    `run_dir`, and save it as run_trial saves a model (`save_model`); the record of what was saved,
    or None if there is no state, or one that does not fit the model built now."""
    state = resume.load_state(run_dir)
    if state is None:
        return None
    backends.activate(backends.of(settings), threads)  # before anything imports Keras
    from kerasgrid.trial.data import train_batches
    from kerasgrid.trial.training import build_model, module_classes, save_model

    backends.configure(backends.of(settings), threads, settings["seed"], cpu_devices=devices.cpu_devices(settings))
    build = refs.load(refs.Ref(settings["model"], "model", source))
    model = build_model(build, params)
    train = refs.load(refs.Ref(settings["train"], "data.train", source))
    # Only its spec is read: the shapes Keras builds the model and optimizer for.
    data = train_batches(train, params, batch_size=settings["budget"]["batch_size"], seed=settings["seed"],
                         name="data.train")
    try:
        resume.assign(model, state, data.spec)
    except resume.ResumeMismatch as exc:
        print(f"kerasgrid: the state in {run_dir} does not fit the model ({exc}); training the winner again",
              flush=True)
        return None
    return save_model(model, model_path, custom_objects=module_classes(build))


def kept_model(trial_dir) -> Path | None:
    """The model (or weights) a trial saved as it trained, if its record vouches for the file on disk."""
    trial_dir = Path(trial_dir)
    try:
        saved = records.read_json(trial_dir / "metrics.json").get("saved_model")
    except (OSError, ValueError):
        return None
    if not saved or not saved.get("path") or Path(saved["path"]).name not in (TRIAL_MODEL, TRIAL_WEIGHTS):
        return None
    path = trial_dir / Path(saved["path"]).name
    if path.exists() and records.sha256(path) == saved["sha256"]:
        return path
    return None


def save_best_model(
    best_params_path,
    settings: dict,
    model_path,
    *,
    manifest_path,
    trials_dir,
    scratch_dir,
    threads: int = 1,
    source: str = "the config",
) -> dict:
    """Write the winner named in best_params.yaml to `model_path` and describe it in `manifest_path`.

    Copies the winner's kept model if there is one; else builds it and restores the final state
    its trial left (`restore_winner`); otherwise retrains the winner in
    `scratch_dir`/<trial id> (params.json, history.csv, metrics.json as for any trial) and
    raises NotReproducible, writing no model, unless its objective equals the recorded value.
    A model that cannot be saved whole is saved as its weights, `weights_path(model_path)`.
    Returns what the manifest (YAML) holds.
    """
    winner = yaml.safe_load(Path(best_params_path).read_text(encoding="utf-8"))
    trial, objective = winner["trial_id"], winner["objective"]
    model_path = Path(model_path)
    for earlier in (model_path, weights_path(model_path)):  # an earlier winner's, whichever it was
        earlier.unlink(missing_ok=True)

    # The run that won (with the config's seed): the trial's own, or its confirmation.
    run_dir = runs.run_dir(Path(trials_dir) / trial, confirm=bool(winner.get("confirmed")))
    if winner.get("repeats"):  # best_params holds the mean over seeds; this run's own value is this
        objective = {**objective, "value": winner["repeats"]["values"][0]}
    kept = kept_model(run_dir)
    restored = None if kept else restore_winner(run_dir, winner["params"], settings, model_path, threads=threads,
                                                source=source)
    if restored and restored["path"]:
        saved = restored
        print(f"kerasgrid: restored trial {trial} from the state its training ended in "
              f"({objective['metric']} = {objective['value']!r}); saved it to {saved['path']}", flush=True)
        how = "restored"
    elif kept:
        saved = records.read_json(run_dir / "metrics.json")["saved_model"]
        saved.setdefault("format", "keras")  # as recorded before kerasgrid could keep weights
        target = model_path if saved["format"] == "keras" else weights_path(model_path)
        records.copy_file(kept, target)
        saved = {**saved, "path": str(target)}
        print(f"kerasgrid: copied trial {trial}'s kept model {kept} to {target}", flush=True)
        how = "copied"
    else:
        shutil.rmtree(scratch_dir, ignore_errors=True)  # only the current winner's retrain stays
        if objective["metric"] in TIMED:  # no retrain takes the same time: it must reach the same loss
            recorded = records.read_json(run_dir / "metrics.json")["metrics"]["loss"]["final"]
            objective = {"metric": "loss", "direction": "min", "value": recorded}
        record = run_trial(
            winner["params"],
            settings,
            Path(scratch_dir) / trial,
            threads=threads,
            objective={"metric": objective["metric"], "direction": objective["direction"], "source": source},
            model_path=model_path,
        )
        value = record["objective"]["value"]
        if record["status"] != Status.OK.value or value != objective["value"]:
            model_path.unlink(missing_ok=True)
            weights_path(model_path).unlink(missing_ok=True)
            raise _not_reproducible(trial, objective, value, record, run_dir, threads, model_path)
        saved = record["saved_model"]
        if not saved["path"]:
            raise ModelError(f"could not save the winner, trial {trial}: {saved['error']}")
        print(f"kerasgrid: retrained trial {trial} to {objective['metric']} = {value!r}, as recorded; "
              f"saved it to {saved['path']}", flush=True)
        how = "retrained"

    manifest = {
        "trial_id": trial,
        "saved": "model" if saved["format"] == "keras" else "weights",
        "path": saved["path"],
        "sha256": saved["sha256"],
        "how": how,
    }
    if saved["format"] == "keras":
        manifest["load"] = f'keras.models.load_model("{saved["path"]}")'
    else:
        manifest.update(
            why_not_whole=saved["error"],
            fix=f"{saved['fix'][0].upper()}{saved['fix'][1:]}; the next run then saves {model_path}.",
            load=(
                "kerasgrid.load_best_model(), run in this folder. By hand: model = build_model(params); "
                "model(x) on one batch of inputs x, which creates the variables; "
                "model.optimizer.build(model.trainable_variables), for the optimizer's state; "
                f'model.load_weights("{saved["path"]}")'
            ),
        )
    manifest.update(
        objective=objective,
        params=winner["params"],
        model=settings["model"],
        data=settings["train"],
        batch_size=settings["budget"]["batch_size"],
        seed=settings["seed"],
    )
    if winner.get("versions"):  # what it trained with: load_best_model says where the installed ones differ
        manifest["versions"] = winner["versions"]
    records.write_text(manifest_path, yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100))
    remove_states(trials_dir, keep=run_dir)  # the winner's stays: the next run may restore it again
    return manifest


# The measures that are times (kerasgrid.records.MEASURES): a retrain is checked on its loss instead.
TIMED = ("fit_seconds", "predict_ms")


def _not_reproducible(trial, objective, value, record, run_dir, threads, model_path) -> NotReproducible:
    got = f"{objective['metric']} = {value!r}" if value is not None else f"status {record['status']}"
    recorded_threads = records.read_json(Path(run_dir) / "metrics.json").get("threads", threads)
    threads_differ = (
        f"it trained with {recorded_threads} threads and this retrain with {threads} (give best_model "
        "the train rule's threads and resources), " if recorded_threads != threads else ""
    )
    return NotReproducible(
        f"training the winner, trial {trial}, again gave {got}, but the sweep recorded "
        f"{objective['metric']} = {objective['value']!r}: training is not deterministic here, so "
        f"no {model_path} was written (it would not be the model that won). Likely: {threads_differ}"
        "another device (a GPU for the trials, none for best_model), or randomness the seed does not "
        "reach in the model or data functions (an unseeded generator, the clock, files read in "
        "varying order). Or set keep_models: true, which saves every trial's model as it trains."
    )


def saved_model_lines(manifest_path) -> list[str]:
    """Console lines for a winner saved as weights only (none for a model saved whole)."""
    path = Path(manifest_path)
    if not path.exists():
        return []
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    if manifest["saved"] != "weights":
        return []
    why = manifest["why_not_whole"]
    why = why if len(why) <= 300 else why[:299] + "…"
    return [
        f"The winner's model could not be saved whole ({why}).",
        f"Its weights are in {manifest['path']}; {path} says how to load them. {manifest['fix']}",
    ]


def load_best_model(manifest_path="results/best_model.yaml"):
    """The winner's trained model, compiled, as the best_model step saved it.

    Run it where the sweep ran: the model and data references are relative to that folder.
    A model saved whole is loaded with `keras.models.load_model`, given the classes the model
    function's file defines (so custom layers need no registration). A model saved as its weights
    is built again with the model function and the winner's params, its variables created by
    calling it on one batch of the training data, and then its weights (and optimizer state) loaded.
    Warns (`VersionsDiffer`) where the versions the winner trained with differ from the installed ones.
    """
    import keras

    from kerasgrid.trial.data import train_batches
    from kerasgrid.trial.training import build_model, module_classes

    manifest_path = Path(manifest_path)
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    note = versions.warning(manifest.get("versions"), manifest["trial_id"])
    if note:
        warnings.warn(note, versions.VersionsDiffer, stacklevel=2)
    path = manifest_path.parent / Path(manifest["path"]).name  # the files sit beside the manifest
    source = str(manifest_path)
    build = refs.load(refs.Ref(manifest["model"], "model", source))
    if manifest["saved"] == "model":
        return keras.models.load_model(path, custom_objects=module_classes(build))
    model = build_model(build, manifest["params"])
    data = refs.load(refs.Ref(manifest["data"], "data", source))
    batch = train_batches(data, manifest["params"], batch_size=manifest["batch_size"], seed=manifest["seed"]).first()
    model(batch[0])
    model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    return model
