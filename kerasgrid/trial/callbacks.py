"""The user's own Keras callbacks (config key `callbacks`): made for each run of a trial, passed to
`fit` after kerasgrid's, their state carried from one halving rung to the next, and the one that
stopped training early named.

What a callback's state is: every attribute that training changed and that JSON can hold (numbers,
strings, booleans, None, and lists and dicts of them), e.g. ReduceLROnPlateau's `wait`, `best`
and `cooldown_counter`, ModelCheckpoint's `best`. A resumed rung sets those again after the
callbacks' `on_train_begin` (which resets them), so training continues as if straight through.
Not carried: anything else a callback holds (open files, tensors, a copy of the best weights), nor
attributes changed outside training. The learning rate a callback sets is the optimizer's, and
travels with the optimizer's variables (kerasgrid.trial.resume).
"""

import inspect
import json
import math
from pathlib import Path

from kerasgrid.errors import ModelError

# The keyword by which a callbacks function receives the run's folder (for a ModelCheckpoint).
TRIAL_DIR = "trial_dir"
# Attributes that hold the model or what Keras sets at the start of `fit`, not a callback's state.
_NOT_STATE = frozenset({"model", "_model", "params", "validation_data"})


def make(function, params: dict, trial_dir: Path) -> list:
    """The callbacks `function` returns for this run: it is called with the params if it takes an
    argument, and with `trial_dir=` if it has a parameter of that name. ModelError if it returns
    anything but a list of keras.callbacks.Callback."""
    import keras

    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        names = ["params"]
    keywords = {TRIAL_DIR: Path(trial_dir)} if TRIAL_DIR in names else {}
    made = function(dict(params), **keywords) if any(name != TRIAL_DIR for name in names) else function(**keywords)
    if not isinstance(made, (list, tuple)) or not all(isinstance(c, keras.callbacks.Callback) for c in made):
        kinds = ", ".join(type(c).__name__ for c in made) if isinstance(made, (list, tuple)) else type(made).__name__
        raise ModelError(f"the callbacks function returned {kinds or 'an empty list'}, not a list of "
                         "keras.callbacks.Callback; return e.g. [keras.callbacks.ReduceLROnPlateau()]")
    return list(made)


def stoppers(callbacks: list) -> list[str]:
    """The class names of the callbacks made to stop training early (EarlyStopping and its kin)."""
    import keras

    return [type(c).__name__ for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]


def _encode(value):
    """`value` as JSON can hold it exactly (non-finite floats as strings), or raise TypeError."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a NumPy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def _decode(value):
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _attributes(callback) -> dict[str, str]:
    """The callback's attributes that JSON can hold, each as its JSON text."""
    found = {}
    for name, value in vars(callback).items():
        if name in _NOT_STATE:
            continue
        try:
            found[name] = json.dumps(_encode(value), sort_keys=True)
        except TypeError:
            continue
    return found


def _settle(callback) -> None:
    """Set up now what a callback would set up lazily during the first epoch, so that it does not
    count as state. Keras' monitoring callbacks (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint)
    choose their comparison at the first epoch's end, and turn `min_delta`'s sign as they do: a
    resumed rung given the turned value would turn it back."""
    if getattr(callback, "monitor_op", False) is None and callable(getattr(callback, "_set_monitor_op", None)):
        callback._set_monitor_op()


def watch(callbacks: list, saved: list[dict] | None = None):
    """The callbacks to pass to `fit` in place of `callbacks`, and the Watch that knows which of
    them stopped training and what their state is. `saved`: `Watch.state()` of the run this one
    continues (a halving rung), set again once training begins."""
    import keras

    class StopSeen(keras.callbacks.Callback):
        """Placed after each user callback: notes the first one after which training is to stop."""

        def __init__(self, watcher, name):
            super().__init__()
            self.watcher, self.name = watcher, name

        def on_epoch_end(self, epoch, logs=None):
            if self.model.stop_training and self.watcher.stopped is None:
                self.watcher.stopped = {"by": self.name, "epoch": epoch + 1}

    class Watch(keras.callbacks.Callback):
        """Last of all: after the callbacks' own on_train_begin, notes their attributes and sets the
        saved state again."""

        def __init__(self):
            super().__init__()
            self.stopped, self.began, self.saved = None, [], saved

        def on_train_begin(self, logs=None):
            for callback in callbacks:
                _settle(callback)
            self.began = [_attributes(c) for c in callbacks]
            if self.saved:
                if [entry["class"] for entry in self.saved] != [type(c).__name__ for c in callbacks]:
                    raise ModelError(
                        "the callbacks function returns other callbacks than it did in the rung before "
                        f"({', '.join(e['class'] for e in self.saved)}); return the same ones every time"
                    )
                for callback, entry in zip(callbacks, self.saved):
                    for name, value in entry["state"].items():
                        setattr(callback, name, _decode(value))

        def carry_on(self) -> None:
            """The next `fit` continues this one (a trial resumed mid-epoch trains the rest of that
            epoch, then the epochs after it): its begin sets the state this one leaves."""
            self.saved = self.state()

        def state(self) -> list[dict]:
            """Each callback's class and the attributes that differ from when training began."""
            states = []
            for callback, began in zip(callbacks, self.began):
                now = _attributes(callback)
                changed = {name: json.loads(text) for name, text in now.items() if began.get(name) != text}
                states.append({"class": type(callback).__name__, "state": changed})
            return states

    watcher = Watch()
    # A watcher before the user's callbacks too: a stop already asked for there (kerasgrid's
    # TerminateOnNaN, a batch-level stop) is no user callback's.
    chain = [StopSeen(watcher, None)]
    for callback in callbacks:
        chain += [callback, StopSeen(watcher, type(callback).__name__)]
    return chain + [watcher], watcher
