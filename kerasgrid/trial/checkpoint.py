"""Checkpoints inside a trial: its whole state saved every few minutes of training, so that a trial
killed mid-way (kill -9, the OOM killer, a SLURM time limit or preemption) continues where it
stopped when its job runs again, and ends bit-identical to an unbroken run.

A checkpoint is what a halving rung's state holds (kerasgrid.trial.resume: every variable of the
model and its optimizer, the history, the user's callbacks' state), plus what a run stopped inside
an epoch needs: the step within the epoch, the epoch's metric states (the running mean of the
loss) and the history rows written so far. It lives in the trial's folder, `checkpoint/`, not a
declared output of any rule (Snakemake removes an incomplete job's outputs before rerunning it), and
is removed once the trial's record is written.

Stopping on request: a process that trains can be told to save and stop, e.g. from a signal
handler (SLURM's `--signal` before a time limit, SIGTERM before a preemption):

    signal.signal(signal.SIGUSR1, lambda *_: checkpoint.request_save_and_stop())

At the next batch end the trial writes its checkpoint (as a periodic one) and raises
`Interrupted`. The trial is not finished: no metrics.json is written, nothing is recorded as
failed. The process (a train job, a warm worker's task) lets it end the job with a non-zero exit
status (kerasgrid.running.interruptions), so that Snakemake counts the job as incomplete and runs
it again (the profile's retries, or the next invocation); the rerun resumes from the checkpoint.
"""

import contextlib
import hashlib
import io
import json
import time
from pathlib import Path

from kerasgrid import records
from kerasgrid.trial import resume

# A request to save and stop, set from a signal handler: a plain module global, which a handler can
# set without taking a lock (Python runs handlers in the main thread between bytecodes; a lock the
# interrupted code holds would deadlock). Reading and writing a bool is atomic under the GIL.
_stop = False

def request_save_and_stop() -> None:
    """Ask the trial training in this process to save a checkpoint at its next batch end and stop
    (raising `Interrupted`). Safe to call from a signal handler or another thread: it sets a flag,
    nothing else. A process that trains no trial at the moment keeps the request for the next."""
    global _stop
    _stop = True


def stop_requested() -> bool:
    """Whether `request_save_and_stop` was called and not yet answered by a checkpoint."""
    return _stop


def clear_request() -> None:
    """Forget a request to stop (once a trial has saved and stopped for it)."""
    global _stop
    _stop = False


class Interrupted(Exception):
    """A trial saved its checkpoint and stopped because it was asked to (`request_save_and_stop`).

    Not a KerasgridError and not a failed trial: nothing is recorded. The job it ends fails, so that
    it runs again and resumes from the checkpoint."""

    def __init__(self, trial_dir, epoch: int, step: int):
        # `epoch` whole epochs trained, and `step` batches of the next.
        self.trial_dir, self.epoch, self.step = trial_dir, epoch, step
        super().__init__(f"trial {trial_dir} saved its checkpoint at {where(epoch, step)} and stopped as asked; "
                         "run the job again to continue it")


def where(epoch: int, step: int) -> str:
    """Where a run trained to `epoch` whole epochs and `step` batches of the next is, as logs say it."""
    return f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"


FOLDER = "checkpoint"  # in the trial's folder (results/trials/<id>/checkpoint/, a rung's: .../rungs/<e>/checkpoint/)
STATE = "state.npz"
META = "checkpoint.json"  # written last, with the SHA-256 of state.npz: its presence means the checkpoint is whole


def folder(out_dir) -> Path:
    """Where the trial whose files are in `out_dir` keeps its checkpoint."""
    return Path(out_dir) / FOLDER


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _code_digest(settings: dict) -> str:
    """The SHA-256 of the files that hold the user's model, data and callbacks functions (those given
    as file paths), so that a checkpoint left before the code changed is not resumed with other code."""
    from kerasgrid.sweep import refs

    digest = hashlib.sha256()
    for key in ("model", "train", "validation", "callbacks"):
        if not settings.get(key):
            continue
        try:
            path = refs.source_file(refs.parse_ref(settings[key], key, "the config"))
        except Exception:  # noqa: BLE001 - the trial itself says what is wrong with the reference
            path = None
        if path is not None:
            digest.update(key.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def identity(trial_id: str, params: dict, settings: dict, epochs: int) -> dict:
    """What a checkpoint must match to be resumed: the trial, its params and settings (which hold
    the training version), the epochs it trains to (a halving rung's), and its code's files."""
    return {
        "trial_id": trial_id,
        "params_sha256": _digest(params),
        "settings_sha256": _digest(settings),
        "training_version": settings.get("training_version"),
        "epochs_target": epochs,
        "code_sha256": _code_digest(settings),
    }


def _variables(model, metrics: bool = True) -> list:
    # What kerasgrid.trial.resume saves (the model's variables, SeedGenerator states included, and
    # the optimizer's), then the metrics' (the running means of the epoch in progress).
    variables = list(model.variables) + list(model.optimizer.variables)
    return variables + list(model.metrics_variables) if metrics else variables


def save(out_dir, model, ident: dict, *, epoch: int, step: int, history: dict, callbacks: list | None,
         history_csv: str) -> None:
    """Write the checkpoint of a trial that has trained `epoch` whole epochs and `step` batches of
    the next one, atomically: state.npz, then checkpoint.json naming its SHA-256."""
    directory = folder(out_dir)
    variables = _variables(model)
    data = resume.pack(variables)
    records.write_bytes(directory / STATE, data)
    records.write_json(directory / META, {
        "identity": ident,
        "epochs": epoch,
        "step": step,
        "history": {name: [float(v) for v in values] for name, values in history.items()},
        "shapes": [list(v.shape) for v in variables],
        "callbacks": callbacks,
        "history_csv": history_csv,
        "state_sha256": hashlib.sha256(data).hexdigest(),
    })


def load(out_dir, ident: dict) -> tuple[dict | None, str | None]:
    """The checkpoint in `out_dir` if it is whole and matches `ident`, else None; with the reason
    it is not resumed (None where there is no checkpoint at all).

    The state is as kerasgrid.trial.resume.load_state gives it ({epochs, history, shapes, arrays,
    callbacks}), plus `step` (batches of epoch `epochs` + 1 already trained), `metric_arrays` (the
    metrics' variables) and `history_csv` (history.csv's rows so far)."""
    directory = folder(out_dir)
    if not (directory / META).exists():
        return None, ("there is a state.npz but no checkpoint.json (a half-written checkpoint)"
                      if (directory / STATE).exists() else None)
    try:
        meta = records.read_json(directory / META)
        data = (directory / STATE).read_bytes()
    except (OSError, ValueError) as exc:
        return None, f"it cannot be read ({type(exc).__name__}: {exc})"
    if not isinstance(meta, dict) or not isinstance(meta.get("identity"), dict):
        return None, "checkpoint.json is not a checkpoint's"
    differs = [key for key in ident if meta["identity"].get(key) != ident[key]]
    if differs:
        return None, f"its {', '.join(key.removesuffix('_sha256') for key in differs)} differ from this run's"
    if hashlib.sha256(data).hexdigest() != meta.get("state_sha256"):
        return None, "state.npz is not the one checkpoint.json was written with (a half-written checkpoint)"
    try:
        values = resume.unpack(io.BytesIO(data))
    except (OSError, ValueError, KeyError) as exc:
        return None, f"state.npz cannot be read ({type(exc).__name__}: {exc})"
    if len(values) != len(meta.get("shapes", ())):
        return None, "state.npz holds other arrays than checkpoint.json names"
    meta["arrays"] = values
    return meta, None


def assign(model, state: dict, element_spec) -> None:
    """Give the compiled `model` the variables of a checkpoint's `state` (the metrics' are assigned
    by `assign_metrics`, once Keras has reset them for the epoch). ResumeMismatch if the model has
    other variables than the checkpoint."""
    resume.build(model, element_spec)
    variables = _variables(model)
    shapes = [list(v.shape) for v in variables]
    if shapes != state["shapes"]:
        raise resume.ResumeMismatch(
            f"the model built now has {len(shapes)} variables of other shapes than the {len(state['shapes'])} "
            f"of its checkpoint (epoch {state['epochs']}, step {state['step']})")
    for variable, value in zip(_variables(model, metrics=False), state["arrays"]):
        variable.assign(value)


def assign_metrics(model, state: dict) -> None:
    """Give the model's metrics the running values they had at the checkpoint, mid-epoch."""
    ours = len(_variables(model, metrics=False))
    for variable, value in zip(model.metrics_variables, state["arrays"][ours:]):
        variable.assign(value)


def remove(out_dir) -> None:
    """Remove the checkpoint in `out_dir` (checkpoint.json first: a half-removed one is never
    resumed) and what a save killed mid-write left."""
    directory = folder(out_dir)
    if not directory.is_dir():
        return
    (directory / META).unlink(missing_ok=True)
    for path in directory.iterdir():
        if path.is_file():
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


def callbacks_for(out_dir, ident: dict, *, minutes: float, steps_per_epoch: int, epochs: int, state: dict | None,
                  watch, history_csv: Path):
    """The Keras callbacks of a trial's checkpoints: the class of one that restores `state` (a
    checkpoint's) as `fit` begins, and the Saver, last of the trial's callbacks, that saves every `minutes`
    of training (0: only when asked to, `request_save_and_stop`) and raises Interrupted when asked.
    `state`: what the run resumes from (a checkpoint's or a rung's state), or None.
    `watch`: the user's callbacks' Watch (kerasgrid.trial.callbacks), or None."""
    import keras

    class Restore(keras.callbacks.Callback):
        """Assigns the checkpoint's variables when fit begins, and its metrics' mid-epoch values
        once Keras has reset them at the start of the epoch it was saved in."""

        def __init__(self, element_spec):
            super().__init__()
            self.element_spec, self.metrics_pending = element_spec, bool(state.get("step"))

        def on_train_begin(self, logs=None):
            assign(self.model, state, self.element_spec)

        def on_epoch_begin(self, epoch, logs=None):
            if self.metrics_pending:
                assign_metrics(self.model, state)
                self.metrics_pending = False

    class Saver(keras.callbacks.Callback):
        """Saves at a batch end once `minutes` have passed since the last save (or since training
        began), or at the epoch end where epochs are short next to the interval; and at the next
        batch end after `request_save_and_stop`, then raises Interrupted.

        On each batch end it reads a flag and the clock, nothing else: kerasgrid's TerminateOnNaN
        already has Keras hand every batch's logs to the callbacks, so it adds no wait for the device."""

        def __init__(self):
            super().__init__()
            self.interval = minutes * 60
            self.history = {name: list(values) for name, values in (state["history"] if state else {}).items()}
            self.epoch, self.offset = (state["epochs"], state.get("step", 0)) if state else (0, 0)
            self.last = None
            self.epoch_seconds = None  # the last whole epoch's
            self.saved, self.seconds = 0, 0.0  # checkpoints written, and the time writing them took

        def on_train_begin(self, logs=None):
            if self.last is None:
                self.last = time.monotonic()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.epoch_started = epoch, time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            step = self.offset + batch + 1
            if step >= steps_per_epoch:
                return  # the epoch's end follows: its validation, its logged row
            if _stop:
                self._save(self.epoch, step)
                self._stop_here(self.epoch, step)
            if self.interval and time.monotonic() - self.last >= self.interval and not self._short_epochs():
                self._save(self.epoch, step)

        def on_epoch_end(self, epoch, logs=None):
            for name, value in (logs or {}).items():
                self.history.setdefault(name, []).append(value)
            now = time.monotonic()
            if self.offset == 0:
                self.epoch_seconds = now - self.epoch_started
            self.offset = 0
            if epoch + 1 >= epochs or self.model.stop_training:
                return  # the trial ends now: its record follows
            if _stop:
                self._save(epoch + 1, 0)
                self._stop_here(epoch + 1, 0)
            if self.interval and now - self.last >= self.interval:
                self._save(epoch + 1, 0)

        def _short_epochs(self) -> bool:
            # Where an epoch takes under a tenth of the interval, the epoch's end is soon enough.
            return self.epoch_seconds is not None and self.epoch_seconds < self.interval / 10

        def _save(self, epoch: int, step: int) -> None:
            started = time.perf_counter()
            try:
                rows = history_csv.read_bytes().decode("utf-8")  # as written: Keras ends its rows with \r\n
            except FileNotFoundError:
                rows = ""
            save(out_dir, self.model, ident, epoch=epoch, step=step, history=self.history,
                 callbacks=watch.state() if watch else None, history_csv=rows)
            self.saved += 1
            self.seconds += time.perf_counter() - started
            self.last = time.monotonic()
            print(f"kerasgrid: checkpoint saved at {where(epoch, step)} of {steps_per_epoch} batches"
                  if step else f"kerasgrid: checkpoint saved at {where(epoch, step)}", flush=True)

        def _stop_here(self, epoch: int, step: int):
            clear_request()
            raise Interrupted(out_dir, epoch, step)

    return Restore, Saver()
