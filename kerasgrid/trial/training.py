"""One trial: build the model, train it on the fixed budget, and record what happened.

`run_trial` is what the workflow's train rule calls and what a Python session can call directly.
An exception from the user's code ends the trial as `failed`; a NaN or infinite loss ends it as
`diverged`; both are recorded and the sweep goes on. Only mistakes in the sweep's own config
(an objective the model does not log) stop the sweep.
"""

import contextlib
import math
import os
import platform
import shutil
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from kerasgrid import records
from kerasgrid.errors import ConfigError, ModelError, Status, storage_error
from kerasgrid.sweep import refs
from kerasgrid.trial import callbacks as user_callbacks
from kerasgrid.trial import backends, checkpoint, devices, reasons, resume

# The file in a trial's folder that holds its trained model when the sweep keeps models; for a
# model Keras cannot save whole, the file that holds its weights instead.
TRIAL_MODEL = "model.keras"
TRIAL_WEIGHTS = "model.weights.h5"


def build_model(build, params: dict):
    """Call the user's model function and check that it gave a compiled Keras model."""
    import keras

    model = build(dict(params))
    if not isinstance(model, keras.Model):
        raise ModelError(f"the model function returned {type(model).__name__}, not a keras.Model")
    if not model.compiled:
        raise ModelError(
            "the model function returned an uncompiled model; call model.compile(optimizer=..., "
            "loss=...) inside it, using the params it receives"
        )
    return model


def ranked_metrics(objective: dict) -> list[tuple[str, str]]:
    """(config key, metric) of every logged metric the sweep ranks on: each objective's and each
    constraint's, leaving out what kerasgrid measures itself (records.MEASURES)."""
    objectives = objective.get("objectives") or [objective]
    keys = [("objective.metric" if len(objectives) == 1 else f"objective[{i}].metric", o["metric"])
            for i, o in enumerate(objectives)]
    for i, text in enumerate(objective.get("constraints") or []):
        keys.append((f"constraints[{i}]", text.split()[0] if text.split() else text))
    return [(key, metric) for key, metric in keys if metric not in records.MEASURES]


def _objective_guard(checked: list[tuple[str, str]], source: str, first_epoch: int = 0):
    import keras

    class ObjectiveGuard(keras.callbacks.Callback):
        """Stops the sweep after the first epoch if a metric it ranks on is not among the logged ones."""

        def on_epoch_end(self, epoch, logs=None):
            missing = [(key, metric) for key, metric in checked if metric not in (logs or {})]
            if epoch == first_epoch and missing:
                key, metric = missing[0]
                logged = ", ".join(sorted(logs or {})) or "nothing"
                raise ConfigError(
                    f"{source}: {key} is '{metric}', but the model logs only: {logged}. Set {key} to "
                    "one of these (and its direction to min for losses, max for accuracies) or to one of "
                    f"kerasgrid's measures ({', '.join(records.MEASURES)}), or add the metric in "
                    "model.compile(metrics=...)."
                )

    return ObjectiveGuard()


def _validation_timer():
    """A callback that times fit's validation passes, for predict_ms (`_measure`), which then costs
    the trial nothing of its own: `batch_ms`, the median milliseconds of a batch of the last pass,
    from the batch's start to its results, the first batch left out (its time includes starting
    the data's iterator: the user's data function runs again). None until a pass of two or more
    batches has run.

    Its batch-end hook makes Keras hand each batch's results over as it ends (no asynchronous
    dispatch of the test steps), so that a backend that dispatches asynchronously is timed to the
    batch's end too."""
    import keras

    class ValidationTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batch_ms, self._times, self._started = None, [], None

        def on_test_begin(self, logs=None):
            self._times = []

        def on_test_batch_begin(self, batch, logs=None):
            self._started = time.perf_counter()

        def on_test_batch_end(self, batch, logs=None):
            self._times.append(time.perf_counter() - self._started)

        def on_test_end(self, logs=None):
            if len(self._times) > 1:
                self.batch_ms = round(statistics.median(self._times[1:]) * 1000, 4)

    return ValidationTimer()


def _build_before_fit(model, element_spec) -> None:
    """resume.build: `fit` then traces its train step once instead of twice. A model that cannot
    be built symbolically is left for `fit` to build at its first step, as it would have been."""
    try:
        resume.build(model, element_spec)
    except Exception:  # noqa: BLE001 - fit builds it, or reports what is wrong, as without this
        pass


def summarise(history: dict) -> dict:
    """Final, smallest and largest value (with its 1-based epoch) of every logged metric."""
    summary = {}
    for name, values in history.items():
        values = [float(v) for v in values]
        finite = [(v, epoch) for epoch, v in enumerate(values, 1) if math.isfinite(v)]
        low = min(finite, default=(None, None))
        high = max(finite, default=(None, None))
        final = values[-1] if values and math.isfinite(values[-1]) else None
        summary[name] = {
            "final": final,
            "min": low[0],
            "min_epoch": low[1],
            "max": high[0],
            "max_epoch": high[1],
        }
    return summary


def weights_path(model_path) -> Path:
    """Where the weights go when `model_path` (x.keras) cannot hold the whole model: x.weights.h5."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".keras") + ".weights.h5")


def _save_atomically(save, path: Path, check=None) -> None:
    # Keras insists on the .keras or .weights.h5 ending, so the temporary name keeps the whole name.
    tmp = path.with_name(f".tmp.{os.getpid()}.{path.name}")
    try:
        save(tmp)
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def module_classes(function) -> dict:
    """The classes defined in (or imported into) the module of `function`: the custom layers and
    models a model function's file holds, for `keras.models.load_model(custom_objects=...)`."""
    module = sys.modules.get(getattr(function, "__module__", None))
    return {name: value for name, value in vars(module).items() if isinstance(value, type)} if module else {}


def _paragraph(exc: BaseException, which: int = 0) -> str:
    # Keras' serialisation errors run to a page: the first paragraph says what went wrong when
    # saving (example code follows), the last one why a model could not be loaded.
    text = str(exc).strip().split("\n\n")[which]
    return f"{type(exc).__name__}: {' '.join(text.split())}"


class _NotLoadable(Exception):
    """Keras saved the model, but cannot load the file back."""


def serialisation_fix(model) -> str:
    """The one-line fix that lets Keras save `model` whole and load it back."""
    if type(model).__module__.startswith("keras."):  # Sequential or functional: a custom part is at fault
        what = "each custom layer or other custom class in the model"
    else:
        what = f"{type(model).__name__} (and any custom layer in it)"
    return (f"give {what} a get_config() that returns its __init__ arguments and an __init__ that passes "
            "**kwargs on to super().__init__(), and register it with @keras.saving.register_keras_serializable()")


def save_model(model, path, custom_objects: dict | None = None) -> dict:
    """Save a fitted model to `path` (a .keras file) atomically; the record of what was saved.

    The file is loaded back before it counts (given `custom_objects`, the model file's classes):
    Keras saves some models it cannot load, such as a subclassed model whose __init__ takes no
    **kwargs. A model Keras cannot save whole, or load back (a subclassed model whose __init__
    takes arguments but that has no get_config(), a custom layer that cannot be serialised), has
    its weights saved instead, as `weights_path(path)`: every Keras model can save those, and
    `build_model(params)` then `load_weights` gives it back. Saving never fails a trial: if even
    the weights cannot be written, the record says so and has no path.
    """
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def loads_back(saved):
        try:
            keras.models.load_model(saved, custom_objects=custom_objects)
        except Exception as exc:
            raise _NotLoadable(f"Keras saved it but cannot load it back: {_paragraph(exc, -1)}") from exc

    try:
        _save_atomically(model.save, path, check=loads_back)
        return {"path": str(path), "sha256": records.sha256(path), "format": "keras", "error": None}
    except _NotLoadable as exc:
        not_whole = str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever Keras raises, the weights are the way out
        if error := storage_error(exc, path):
            raise error  # nor could the weights be written there
        not_whole = _paragraph(exc)
    weights = weights_path(path)
    try:
        _save_atomically(model.save_weights, weights)
    except Exception as exc:  # noqa: BLE001 - a trial's result never depends on saving its model
        if error := storage_error(exc, weights):
            raise error
        error = f"{not_whole}; nor could its weights be saved: {_paragraph(exc)}"
        print(f"kerasgrid: could not save the trained model to {path}: {error}", flush=True)
        return {"path": None, "sha256": None, "format": None, "error": error}
    fix = serialisation_fix(model)
    print(f"kerasgrid: could not save the model whole ({not_whole}); saved its weights to {weights}. "
          f"To save it whole, {fix}.", flush=True)
    return {"path": str(weights), "sha256": records.sha256(weights), "format": "weights", "error": not_whole,
            "fix": fix}


def versions(backend: str = backends.DEFAULT) -> dict:
    """The versions a trial trained with: kerasgrid's, Python's, Keras' and its backend's
    (kerasgrid.trial.backends.versions), NumPy's."""
    import keras
    import numpy

    import kerasgrid

    return {
        "kerasgrid": kerasgrid.__version__,
        "python": platform.python_version(),
        **backends.versions(backend),
        "keras": keras.__version__,
        "numpy": numpy.__version__,
    }


def new_record(params: dict, settings: dict, out_dir: Path, threads: int, objective: dict, trial_id=None) -> dict:
    """A trial's record before training: status ok until something says otherwise."""
    return {
        "trial_id": trial_id or out_dir.name,
        "params": params,
        "status": Status.OK.value,
        "error": None,
        "reason": None,  # the error in a line, with the user's file and line: kerasgrid.trial.reasons
        "objective": {**objective, "value": None},
        "epochs_run": 0,
        "budget": settings["budget"],
        "seed": settings["seed"],
        "threads": threads,
        "fit_seconds": 0.0,
        "wall_seconds": None,
        "versions": None,
        "host": platform.node(),
        "pid": os.getpid(),
        # What the trial trained on: the backend's device names, and which GPUs those were.
        "devices": None,
        "cuda_visible_devices": None,
        "saved_model": None,
        "measures": None,  # records.MEASURES, once trained
        # {by, epoch}: the user's callback that stopped training before its epochs, and after which
        # epoch; None if training ran its course (or diverged).
        "stopped_early": None,
        "metrics": {},
    }


def record_killed(params: dict, settings: dict, out_dir, threads: int, objective: dict, error: str) -> dict:
    """Record as failed a trial whose process kept dying (out of memory), so the sweep goes on."""
    out_dir = Path(out_dir)
    objective = {k: v for k, v in objective.items() if k != "source"}
    record = {**new_record(params, settings, out_dir, threads, objective), "pid": None}
    record.update(status=Status.FAILED.value, error=error, reason=reasons.one_line(error))
    records.write_json(out_dir / "params.json", params)
    records.write_text(out_dir / "history.csv", "epoch\n")
    records.write_json(out_dir / "metrics.json", record)
    checkpoint.remove(out_dir)  # recorded: a rerun of the trial starts from the start
    return record


@dataclass(frozen=True)
class TrialRun:
    """Where and how one run of a trial trains, besides its params and settings: `run_trial`'s
    keywords, with the defaults resolved (see its docstring for each)."""

    out_dir: Path
    threads: int
    objective: dict  # {metric, direction}: checked after the first epoch, recorded
    source: str  # the config, as messages name it
    epochs: int  # to reach in all: the budget's, or a halving rung's
    model_path: str | os.PathLike | None = None
    resume_from: str | os.PathLike | None = None
    save_state_to: str | os.PathLike | None = None
    tensorboard_dir: str | os.PathLike | None = None
    trial_id: str | None = None
    halving: bool = False  # a rung of successive halving: no callback may stop it early
    checked: tuple = ()  # (config key, metric) of each logged metric it ranks on: ranked_metrics
    checkpoint_minutes: float = 0  # kerasgrid.trial.checkpoint: save every so many minutes (0: only when asked)


def run_trial(
    params: dict,
    settings: dict,
    out_dir,
    *,
    threads: int = 1,
    objective: dict | None = None,
    model_path=None,
    epochs: int | None = None,
    resume_from=None,
    save_state_to=None,
    trial_id: str | None = None,
    tensorboard_dir=None,
    halving: bool = False,
    checkpoint_minutes: float = 0,
    gpu_shared: bool = False,
) -> dict:
    """Train one combination and write params.json, history.csv and metrics.json to `out_dir`.

    `settings` is `Sweep.settings()`: the model and data references, budget and seed.
    `objective` ({metric, direction, source}) is checked after the first epoch and recorded.
    `model_path` (a .keras file): where to save the fitted model if the trial ends ok; the
    record's `saved_model` then names the file (the weights, if Keras cannot save the model
    whole; see `save_model`) with its SHA-256.
    `epochs`: train to this many epochs in all instead of the budget's (a rung of halving).
    `resume_from`: a folder where an earlier, shorter run of this trial saved its state
    (`save_state_to`); training continues from there and ends exactly where training straight
    through would have. Without a state there, the trial trains from the start.
    `trial_id`: the id to record (default: the name of `out_dir`).
    `tensorboard_dir`: where to write the trial's TensorBoard logs (kerasgrid.trial.tensorboard_logs).
    `halving`: the run is a rung of successive halving, which compares trials at the rung's epochs:
    a callback of the user's (settings' `callbacks`) that stops it early is a config error.
    `checkpoint_minutes`: save the trial's whole state in `out_dir`/checkpoint/ every so many
    minutes of training (kerasgrid.trial.checkpoint; 0: only when asked to, by
    `checkpoint.request_save_and_stop`). A run that finds a whole checkpoint of the same trial,
    params, settings, epochs and code continues from it, to the same result as unbroken; the
    checkpoint is removed once the record is written.
    `gpu_shared`: other trials train on the same GPU (gpus.trials_per_gpu); running out of GPU
    memory is then no failure of the trial's: it raises devices.SharedGpuOutOfMemory, recording
    nothing, and the worker pool trains it again alone.
    Returns the record written to metrics.json; raises checkpoint.Interrupted, recording nothing,
    where asked to save and stop.

    The steps: prepare the folder, build the model and its data, fit, record. An error of the
    user's code fails the trial (recorded); a wrong config, exhausted memory or a full disk stops it
    unrecorded.
    """
    started = time.perf_counter()
    backends.activate(backends.of(settings), threads)  # before anything imports Keras
    from kerasgrid.trial import data  # Keras and NumPy (TensorFlow for its backend): a broken one fails no trial

    objective = dict(objective or {"metric": "val_loss" if settings["validation"] else "loss"})
    source = objective.pop("source", "the config")
    checked = tuple(ranked_metrics(objective))
    # The record keeps the first objective; the others and the constraints only rank.
    objective = {key: objective[key] for key in ("metric", "direction") if key in objective}
    run = TrialRun(Path(out_dir), threads, objective, source, epochs or settings["budget"]["epochs"], model_path,
                   resume_from, save_state_to, tensorboard_dir, trial_id, halving, checked, checkpoint_minutes)
    ident = checkpoint.identity(trial_id or run.out_dir.name, params, settings, run.epochs)
    state = _prepare(run, params, ident)
    backends.configure(backends.of(settings), threads, settings["seed"], cpu_devices=devices.cpu_devices(settings))
    backend = backends.of(settings)
    strategy, trains_on = (devices.strategy(settings, source) if backend == "tensorflow"
                           else (None, backends.devices(backend)))
    record = _started_record(run, params, settings, state, trains_on)
    history_tmp = run.out_dir / f".history.csv.{os.getpid()}.tmp"
    if state and "step" in state:  # a checkpoint's: its rows so far
        if state["history_csv"]:
            records.write_text(history_tmp, state["history_csv"])
    elif state:
        # The earlier epochs' rows first; CSVLogger appends this run's.
        shutil.copyfile(Path(resume_from) / "history.csv", history_tmp)
    history, model, build, watch = {}, None, None, None
    try:
        tensorflow_before = "tensorflow" in sys.modules
        build, model = _build(run, params, settings, strategy)

        def datasets_at(epoch: int, step: int = 0) -> dict:  # positioned after `epoch` epochs and `step` batches
            return _datasets(data, run, params, settings, record, epoch, step, strategy, trains_on, model)

        datasets = datasets_at(*_position(state))
        if not tensorflow_before and "tensorflow" in sys.modules:
            # Off its backend, TensorFlow is imported only when the user's code imports it, and seeded
            # only if imported then (kerasgrid.trial.backends): the user's data function just did, to
            # make a tf.data.Dataset. So set up again, as in every later trial of this process,
            # where it is imported already: the same seeds, shuffles and batches in all of them.
            backends.configure(backends.of(settings), threads, settings["seed"],
                               cpu_devices=devices.cpu_devices(settings))
            build, model = _build(run, params, settings, strategy)
            datasets = datasets_at(*_position(state))
        theirs, watch = _user_callbacks(run, params, settings, state)
        timer = _validation_timer()
        history = _fit(run, params, settings, record, state, strategy, model, datasets, history_tmp, theirs,
                       watch, ident, datasets_at, timer)
        _stopped_early(run, record, watch)
        _measure(record, model, datasets, timer)
    except (ConfigError, MemoryError, checkpoint.Interrupted):
        history_tmp.unlink(missing_ok=True)
        # A wrong config stops the sweep; memory exhaustion is for Snakemake's retries, and a trial
        # asked to stop continues from its checkpoint when the job runs again.
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the user's code fails this trial only
        # A full or read-only disk under the trial's files (CSVLogger's history, TensorBoard's
        # logs, a user's ModelCheckpoint) is not the trial's fault: it stops, unrecorded, and trains
        # again once there is room.
        if error := storage_error(exc, within=(run.out_dir, tensorboard_dir), where=run.out_dir):
            history_tmp.unlink(missing_ok=True)
            raise error
        if gpu_shared and devices.out_of_memory(exc):
            history_tmp.unlink(missing_ok=True)
            first = (str(exc).strip().splitlines() or [""])[0]
            raise devices.SharedGpuOutOfMemory(
                f"the trial ran out of GPU memory beside other trials on its GPU ({type(exc).__name__}: {first[:300]})"
            ) from exc
        _record_failure(record, exc)
    _judge(run, record, history)
    return _write(run, record, history, history_tmp, model, build, started, watch)


def _prepare(run: TrialRun, params: dict, ident: dict) -> dict | None:
    """The trial's folder, with its params.json and nothing an earlier run of it left; the state
    to resume from, if any: its checkpoint's (`ident`: kerasgrid.trial.checkpoint.identity), else
    the rung's it continues."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    state, why_not = checkpoint.load(run.out_dir, ident)
    if why_not:
        print(f"kerasgrid: ignoring the checkpoint in {checkpoint.folder(run.out_dir)}: {why_not}; training from "
              f"{'the rung before' if run.resume_from is not None else 'the start'}", flush=True)
    if state is None:
        checkpoint.remove(run.out_dir)  # none, or one not to trust: this run saves its own
        state = resume.load_state(run.resume_from) if run.resume_from is not None else None
    else:
        print(f"kerasgrid: resuming from the checkpoint at {checkpoint.where(*_position(state))}", flush=True)
    records.write_json(run.out_dir / "params.json", params)
    # A model kept by an earlier run of this trial is not this run's model, nor are its logs, nor
    # is a state it left where this run leaves its own.
    (run.out_dir / TRIAL_MODEL).unlink(missing_ok=True)
    (run.out_dir / TRIAL_WEIGHTS).unlink(missing_ok=True)
    if run.save_state_to is not None and run.save_state_to != run.resume_from:
        resume.remove_state(run.save_state_to)
    # Temporary files of an earlier run of this trial that was killed mid-write (only one run of a
    # trial writes here at a time).
    for stale in [*run.out_dir.glob(".*.tmp"), *run.out_dir.glob(".tmp.*"), *checkpoint.folder(run.out_dir).glob(".*.tmp")]:
        stale.unlink(missing_ok=True)
    if run.tensorboard_dir is not None:
        shutil.rmtree(run.tensorboard_dir, ignore_errors=True)
    return state


def _started_record(run: TrialRun, params: dict, settings: dict, state: dict | None, trains_on) -> dict:
    record = new_record(params, settings, run.out_dir, run.threads, run.objective, run.trial_id)
    record["versions"] = versions(backends.of(settings))
    record["epochs_target"] = run.epochs
    record["resumed_from_epoch"], record["resumed_from_step"] = _position(state)
    record["resumed_from_checkpoint"] = bool(state and "step" in state)
    record["devices"] = trains_on
    record["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    return record


def _build(run: TrialRun, params: dict, settings: dict, strategy):
    """The user's model function, and the compiled model it returns."""
    build = refs.load(refs.Ref(settings["model"], "model", run.source))
    # Under a strategy, the model is built and compiled in its scope; Keras' fit then splits
    # each global batch across the replicas.
    with strategy.scope() if strategy else contextlib.nullcontext():
        return build, build_model(build, params)


def _position(state: dict | None) -> tuple[int, int]:
    """Where a run resumes: whole epochs trained, and batches of the next one (a checkpoint's)."""
    return (state["epochs"], state.get("step", 0)) if state else (0, 0)


def _datasets(data, run: TrialRun, params: dict, settings: dict, record: dict, first_epoch: int, step: int,
              strategy, trains_on, model) -> dict:
    """What `fit` takes, in the form of the trial's Keras backend (kerasgrid.trial.data.for_fit):
    the training data as an endless stream, and the validation data as passes of the same batches
    with the batches of one pass (`validation_steps`), positioned where a resumed run's earlier
    epochs (`first_epoch` whole ones and `step` batches of the next) left them, each checked to
    hold batches for `model`; and under "sources", the backend-neutral batches they come from
    (their `spec` and `first()` batch, NumPy). `data`: the package kerasgrid.trial.data."""
    import keras

    budget = settings["budget"]
    sources = {}
    for key in ("train", "validation"):
        if not settings[key]:
            continue
        fn = refs.load(refs.Ref(settings[key], f"data.{key}", run.source))
        size = {"batch_size": budget["batch_size"], "name": f"data.{key}"}
        if key == "validation":  # in order, all of it or its first validation_steps batches
            sources[key] = data.validation_passes(fn, params, steps=budget.get("validation_steps"), ref=settings[key],
                                                  source=run.source, passes_before=first_epoch, **size)
        elif "fraction" in settings:  # data.fraction: validation stays whole
            sources[key], record["training_data"] = data.fraction_batches(
                fn, params, settings["fraction"], draw_seed=settings["draw_seed"], source=run.source,
                seed=settings["seed"], **size)
            for warning in record["training_data"]["warnings"]:
                print(f"kerasgrid: warning: the training fraction is off: {warning}", flush=True)
        else:
            sources[key] = data.train_batches(fn, params, seed=settings["seed"], **size)
        data.check_batched(sources[key].spec, model, f"data.{key} = {settings[key]}", run.source)
    # Resumed: the data must continue where the earlier epochs left it. Keras' training iterator
    # carries on across epochs: the stream starts after the batches trained on. (Validation starts
    # a new pass each epoch: validation_passes makes the earlier epochs' passes where that matters.)
    given = data.for_fit(sources["train"], sources.get("validation"), keras.backend.backend(),
                         start=first_epoch * budget["steps_per_epoch"] + step)
    if strategy:  # mirrored: TensorFlow only
        for key in ("train", "validation"):
            if key in given:
                given[key] = devices.split_evenly(given[key], len(trains_on), f"data.{key}")
    return {**given, "sources": sources}


def _user_callbacks(run: TrialRun, params: dict, settings: dict, state: dict | None):
    """The callbacks of the user's `callbacks` function, watched (kerasgrid.trial.callbacks.watch),
    and their Watch; none without the setting. A halving rung refuses an EarlyStopping before
    training."""
    if not settings.get("callbacks"):
        return [], None
    made = user_callbacks.make(refs.load(refs.Ref(settings["callbacks"], "callbacks", run.source)), params,
                               run.out_dir)
    if run.halving and (stoppers := user_callbacks.stoppers(made)):
        raise _halving_stopped(run, f"the function returns {', '.join(stoppers)}, which stops trials early")
    return user_callbacks.watch(made, state.get("callbacks") if state else None)


def _halving_stopped(run: TrialRun, how: str) -> ConfigError:
    return ConfigError(
        f"{run.source}: callbacks: {how}; but search.halving compares every trial of a rung after "
        "exactly the rung's epochs, and promotes the best to train on. Remove the early-stopping callback "
        "from the callbacks function (halving already stops the poor trials early), or turn "
        "search.halving off to rank trials stopped early."
    )


def _stopped_early(run: TrialRun, record: dict, watch) -> None:
    """Record which of the user's callbacks stopped training before `run.epochs`, if one did."""
    stopped = watch.stopped if watch else None
    if not stopped or stopped["by"] is None or stopped["epoch"] >= run.epochs:
        return
    if run.halving:
        raise _halving_stopped(run, f"{stopped['by']} stopped trial {record['trial_id']} after epoch "
                                    f"{stopped['epoch']} of the rung's {run.epochs}")
    record["stopped_early"] = stopped
    print(f"kerasgrid: {stopped['by']} stopped training after epoch {stopped['epoch']} of {run.epochs}; "
          "the trial is ranked on that epoch's metrics", flush=True)


def _fit(run: TrialRun, params: dict, settings: dict, record: dict, state, strategy, model, datasets: dict,
         history_tmp: Path, theirs: list, watch, ident: dict, datasets_at, timer=None) -> dict:
    """Train to `run.epochs`, logging each epoch to `history_tmp`, with the user's callbacks
    (`theirs`, their `watch`) after kerasgrid's and the checkpoints' Saver last; the whole history
    (a resumed run's earlier epochs first). Records the seconds fit took, even if it raises.
    `timer` (`_validation_timer`) times the validation passes, for predict_ms.

    Resumed from a checkpoint saved mid-epoch, the rest of that epoch is one `fit` of its remaining
    batches (Keras starts a `fit` at an epoch's first batch), with the metrics' running values of
    the epoch restored, and the epochs after it a second `fit` on data positioned anew
    (`datasets_at(epoch)`): the logs, history and callbacks' state are those of an unbroken run."""
    import keras

    budget = settings["budget"]
    steps = budget["steps_per_epoch"]
    first_epoch, step = _position(state)
    restore, saver = checkpoint.callbacks_for(
        run.out_dir, ident, minutes=run.checkpoint_minutes, steps_per_epoch=steps, epochs=run.epochs,
        state=state, watch=watch, history_csv=history_tmp)
    # The user's after TerminateOnNaN (a stop it asks for is no callback of theirs), and before what
    # logs an epoch, so that what they add to it (ReduceLROnPlateau's learning_rate) is logged too.
    callbacks = [keras.callbacks.TerminateOnNaN(), *theirs, None,
                 _objective_guard(list(run.checked), run.source, first_epoch)]
    if run.tensorboard_dir is not None:  # imported only when asked for: off costs nothing
        from kerasgrid.trial.tensorboard_logs import tensorboard_callback

        callbacks.append(tensorboard_callback(run.tensorboard_dir, params, record["trial_id"]))
    if timer is not None:
        callbacks.append(timer)
    callbacks.append(saver)  # last: a checkpoint at an epoch's end holds what the others did at it
    # Resumed runs too: on JAX and PyTorch, `fit` of an unbuilt model reads a batch to build it and
    # then starts the data anew, one iterator more than a built model's `fit` makes, so a resumed
    # run's reshuffled data would not continue where the run before left it.
    if not (strategy or model.run_eagerly):
        _build_before_fit(model, datasets["sources"]["train"].spec)
    # (first epoch, last epoch, batches per epoch, data, restore) of each fit.
    fits = [(first_epoch, first_epoch + 1, steps - step, datasets), (first_epoch + 1, run.epochs, steps, None)] \
        if step else [(first_epoch, run.epochs, steps, datasets)]
    if state:
        element_spec = datasets["sources"]["train"].spec
        fits[0] += (restore(element_spec) if "step" in state else resume.restore_callback(state, element_spec),)
    history = {name: list(values) for name, values in (state["history"] if state else {}).items()}
    fit_started = time.perf_counter()
    csv_logger = None
    try:
        for begin, end, steps_per_epoch, data, *restoring in fits:
            if begin >= end or getattr(model, "stop_training", False):
                break
            if data is None:  # the epochs after a resumed one's rest: the data at their start
                data = datasets_at(begin)
                if watch:
                    watch.carry_on()  # the callbacks' state as the first fit left it, set again at its begin
            csv_logger = keras.callbacks.CSVLogger(str(history_tmp), append=bool(state) or begin > first_epoch)
            fitted = model.fit(
                data["train"],
                epochs=end,
                initial_epoch=begin,
                steps_per_epoch=steps_per_epoch,
                validation_data=data.get("validation"),
                # One pass each epoch (kerasgrid.trial.data.validation_passes): every epoch evaluates
                # the same batches, as model.evaluate of the same data does.
                validation_steps=data.get("validation_steps"),
                callbacks=restoring + [csv_logger if c is None else c for c in callbacks],
                shuffle=False,  # the datasets come shuffled (or not) as the user made them
                verbose=2,
            )
            for name, values in fitted.history.items():
                history[name] = history.get(name, []) + values
        return history
    finally:
        record["fit_seconds"] = round(time.perf_counter() - fit_started, 3)
        record["checkpoints_saved"], record["checkpoint_seconds"] = saver.saved, round(saver.seconds, 3)
        if getattr(csv_logger, "csv_file", None) and not csv_logger.csv_file.closed:
            csv_logger.csv_file.close()  # Keras closes it only when training ends normally


def _measure(record: dict, model, datasets: dict, timer=None) -> None:
    """What the trial measures besides its history (records.MEASURES): trainable parameters, fit
    seconds, and predict_ms, the milliseconds a batch takes warm: with validation data, the median
    batch of the last epoch's validation pass (the model's forward pass, its loss and metrics:
    `timer`'s, at no cost); without, or if that pass had a single batch, the median of 10
    predictions of one batch, timed after training. A prediction that fails leaves predict_ms None:
    the trial trained, and is no worse for it."""
    import numpy as np

    measures = {"params_count": int(sum(np.prod(v.shape, dtype=np.int64) for v in model.trainable_weights)),
                "fit_seconds": record["fit_seconds"], "predict_ms": None}
    record["measures"] = measures
    if timer is not None and timer.batch_ms is not None:
        measures["predict_ms"] = timer.batch_ms
        return
    try:
        sources = datasets["sources"]
        batch = sources["validation" if "validation" in sources else "train"].first()  # NumPy, on every backend
        inputs = batch[0] if isinstance(batch, tuple) else batch
        model.predict_on_batch(inputs)  # traces the predict function: not timed
        times = []
        for _ in range(10):
            started = time.perf_counter()
            model.predict_on_batch(inputs)
            times.append(time.perf_counter() - started)
        measures["predict_ms"] = round(statistics.median(times) * 1000, 4)
    except Exception as exc:  # noqa: BLE001 - a measure is no reason to fail a trained trial
        print(f"kerasgrid: could not time a prediction ({type(exc).__name__}: {exc}); predict_ms is null",
              flush=True)


def _record_failure(record: dict, exc: Exception) -> None:
    """The user's code raised: the trial failed, with the error in its log and its record."""
    traceback.print_exc()
    record["status"] = Status.FAILED.value
    record["error"] = devices.uneven_batch_error(exc) or f"{type(exc).__name__}: {exc}".strip()
    record["reason"] = reasons.reason(exc, record["error"])
    print(f"kerasgrid: trial failed: {record['error']}", flush=True)


def _judge(run: TrialRun, record: dict, history: dict) -> None:
    """The metrics of the history, and how an ok trial ended: diverged if a metric became NaN or
    infinite or training stopped before `run.epochs` (unless a callback of the user's stopped it:
    `_stopped_early`), else with its objective's value, its last epoch's."""
    metrics = summarise(history)
    record["metrics"] = metrics
    record["epochs_run"] = len(next(iter(history.values()), []))
    if record["status"] == Status.OK.value:
        broken = sorted(name for name, values in history.items() if not all(map(math.isfinite, values)))
        if broken or (record["epochs_run"] < run.epochs and not record["stopped_early"]):
            record["status"] = Status.DIVERGED.value
            record["error"] = (
                f"{', '.join(broken) or 'loss'} became NaN or infinite in epoch {record['epochs_run']}; "
                "training stopped there"
            )
            record["reason"] = reasons.one_line(record["error"])
            print(f"kerasgrid: trial diverged: {record['error']}", flush=True)
        else:
            metric = run.objective["metric"]
            record["objective"]["value"] = (metrics[metric]["final"] if metric in metrics
                                            else record["measures"][metric])


def _write(run: TrialRun, record: dict, history: dict, history_tmp: Path, model, build, started: float,
           watch=None) -> dict:
    """history.csv, the model and the state an ok trial keeps (with its callbacks' state, from
    `watch`), then metrics.json: the record."""
    if history_tmp.exists():
        os.replace(history_tmp, run.out_dir / "history.csv")
    else:
        records.write_text(run.out_dir / "history.csv", "epoch\n")
    if run.model_path is not None and record["status"] == Status.OK.value:
        record["saved_model"] = save_model(model, run.model_path, custom_objects=module_classes(build))
    if run.save_state_to is not None and record["status"] == Status.OK.value:
        resume.save_state(model, run.save_state_to, epochs=record["epochs_run"], history=history,
                          callbacks=watch.state() if watch else None)
    record["wall_seconds"] = round(time.perf_counter() - started, 3)
    # metrics.json is written last: its presence means the trial finished.
    records.write_json(run.out_dir / "metrics.json", record)
    checkpoint.remove(run.out_dir)  # the trial is done: a rerun of it starts from the start
    return record
