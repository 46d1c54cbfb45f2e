"""Models and data callables for the training tests, referenced as 'path/trial_models.py:name'."""

import keras
import numpy as np


def _compile(model, params):
    model.compile(optimizer=keras.optimizers.Adam(params.get("lr", 0.01)), loss="mse", metrics=["mae"])
    return model


def sequential(params):
    return _compile(keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)]), params)


class TwoLayers(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed(params):
    return _compile(TwoLayers(), params)


class Net(keras.Model):
    """As Keras and KerasTuner tutorials write a model: __init__ takes arguments, no get_config()."""

    def __init__(self, units, activation):
        super().__init__()
        self.hidden = keras.layers.Dense(units, activation=activation)
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed_with_args(params):
    return _compile(Net(params.get("units", 8), "relu"), params)


class ConfiguredNet(Net):
    """Net as Keras can save and load it whole: get_config() and **kwargs (but not registered)."""

    def __init__(self, units, activation, **kwargs):
        super().__init__(units, activation)
        self.units, self.activation = units, activation

    def get_config(self):
        return {"units": self.units, "activation": self.activation}


def configured(params):
    return _compile(ConfiguredNet(params.get("units", 8), "relu"), params)


def multi_io(params):
    a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
    h = keras.layers.Dense(8, "relu")(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, {"sum": keras.layers.Dense(1, name="sum")(h), "flag": keras.layers.Dense(1, "sigmoid", name="flag")(h)})
    model.compile(optimizer="adam", loss={"sum": "mse", "flag": "binary_crossentropy"})
    return model


def uncompiled(params):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])


def raises(params):
    raise ValueError(f"cannot build with units={params.get('units')}")


def not_a_model(params):
    return "a string"


def data(params):
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = rng.normal(size=(16, 4)).astype("float32")
        yield x, x.sum(axis=1, keepdims=True)


def nan_data(params):
    yield np.ones((16, 4), dtype="float32"), np.full((16, 1), np.nan, dtype="float32")


def multi_io_data():
    rng = np.random.default_rng(1)
    for _ in range(4):
        a, b = rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
        yield {"a": a, "b": b}, {"sum": a.sum(1, keepdims=True), "flag": (b[:, :1] > 0).astype("float32")}


def failing_data(params):
    raise OSError("the data share is not mounted")


def dies(params):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


class Unsaveable(keras.layers.Layer):
    def call(self, x):
        return x

    def get_config(self):
        return {**super().get_config(), "handle": object()}  # not JSON: Keras cannot save it


def unsaveable(params):
    return _compile(keras.Sequential([keras.Input((4,)), Unsaveable(), keras.layers.Dense(1)]), params)


class DropoutNet(keras.Model):
    """Written as Keras tutorials write them: __init__ takes arguments, no get_config."""

    def __init__(self, units, rate):
        super().__init__()
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.dropout = keras.layers.Dropout(rate)
        self.out = keras.layers.Dense(1)

    def call(self, x, training=False):
        return self.out(self.dropout(self.hidden(x), training=training))


def subclassed_dropout(params):
    return _compile(DropoutNet(8, 0.3), params)


def dropout_mlp(params):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dropout(0.3), keras.layers.Dense(1)])
    return _compile(model, params)


def arrays():
    x = np.random.default_rng(2).normal(size=(96, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def dataset(params):
    import tensorflow as tf

    x, y = arrays()
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(96, seed=1).batch(16)


def by_kind(params):
    """A ConfiguredNet (saved whole) or a Net (saved as weights), as the grid key `kind` says."""
    return {"configured": configured, "net": subclassed_with_args}[params["kind"]](params)


def odd_data(params):
    rng = np.random.default_rng(0)
    for size in (8, 8, 7):
        x = rng.normal(size=(size, 4)).astype("float32")
        yield x, x.sum(axis=1, keepdims=True)


def waits(params):
    """`sequential`, after `sleep` seconds, or once `parties` trials are in here at the same time
    (each leaves a file named after it in the folder `barrier`)."""
    import time
    from pathlib import Path

    if "barrier" in params:
        folder = Path(params["barrier"])
        folder.mkdir(exist_ok=True)
        (folder / params["name"]).touch()
        deadline = time.monotonic() + 30
        while (arrived := len(list(folder.iterdir()))) < params["parties"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {arrived} of {params['parties']} trials ran at the same time")
            time.sleep(0.05)
    time.sleep(params.get("sleep", 0))
    return sequential(params)


def wide(params):
    """Two hidden layers of `units` (4,000: 16M weights, 192 MiB with Adam's slots): a model whose
    memory TensorFlow keeps after the trial."""
    units = params.get("units", 4000)
    return _compile(keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, "relu"),
                                      keras.layers.Dense(units, "relu"), keras.layers.Dense(1)]), params)


# The user's callbacks (config key `callbacks`), as tests/test_callbacks.py uses them.
class EpochsSeen(keras.callbacks.Callback):
    """A user's logger: appends each epoch's number and loss to a file in the trial's folder."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{epoch} {logs['loss']!r}\n")


def logger_and_checkpoint(params, trial_dir):
    return [EpochsSeen(trial_dir / "epochs_seen.txt"),
            keras.callbacks.ModelCheckpoint(str(trial_dir / "checkpoint.keras"))]


def logger_without_params(trial_dir):
    return [EpochsSeen(trial_dir / "epochs_seen.txt")]


def reduce_lr(params):
    # min_delta 10: no epoch counts as an improvement after the first, so the rate halves after
    # every second epoch; what the callback counted must carry over from rung to rung.
    return [keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=10)]


def early_stopping(params):
    # Stops after the second epoch: no later epoch improves on the first by 100.
    return [keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=100)]


class StopsAfter(keras.callbacks.Callback):
    """A custom callback of the user's that stops training after `epochs` epochs."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


def stops_after_one(params):
    return [StopsAfter(1)]


class Raises(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("the user's callback raised")


def raising_callback(params):
    return [Raises()]


def not_callbacks(params):
    return [keras.callbacks.TerminateOnNaN(), "not a callback"]


class AsksToStop(keras.callbacks.Callback):
    """Asks the trial to save its checkpoint and stop after batch `step` of epoch `epoch` (1-based),
    as a signal handler would: "epoch,step" in $KERASGRID_TEST_STOP_AT; without it, does nothing."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        import os

        from kerasgrid.trial import checkpoint

        at = os.environ.get("KERASGRID_TEST_STOP_AT")
        if at and [int(n) for n in at.split(",")] == [self.epoch, batch + 1]:
            checkpoint.request_save_and_stop()


def reduce_lr_asks_to_stop(params):
    return [*reduce_lr(params), AsksToStop()]


def slow_arrays(params):
    """`arrays`, each batch 20 ms late: a trial of seconds, long enough to be killed mid-way."""
    import time

    x, y = arrays()
    while True:
        for start in range(0, len(x), 8):
            time.sleep(0.02)
            yield x[start:start + 8], y[start:start + 8]


def val_arrays():
    """90 examples: batches of 8 leave a smaller last batch of 2."""
    x = np.random.default_rng(3).normal(size=(90, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def val_generator(params):
    x, y = val_arrays()
    for start in range(0, len(x), 8):
        yield x[start : start + 8], y[start : start + 8]


def val_dataset(params):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(val_arrays()).batch(8)


def unbatched(params):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(arrays())


class SignalsItself(keras.callbacks.Callback):
    """Sends its own process the signal params["signal"] after batch 2 of epoch 2, as SLURM sends
    its warning or a preemption's SIGTERM: once per trial folder (a file there remembers it)."""

    def __init__(self, signum, marker):
        super().__init__()
        self.signum, self.marker = signum, marker

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        import os

        if (self.epoch, batch + 1) == (2, 2) and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), self.signum)


def signals_itself(params, trial_dir):
    return [SignalsItself(params["signal"], trial_dir / "signalled")]


def live_neighbours() -> list[int]:
    """The other live worker processes of this pool (children of our parent) that see the same
    CUDA_VISIBLE_DEVICES as this one, read from /proc."""
    import os
    from pathlib import Path

    ours = os.environ.get("CUDA_VISIBLE_DEVICES")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            after_name = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if after_name[0] == "Z" or int(after_name[1]) != os.getppid():
                continue
            if b"kerasgrid.running.workers" not in (entry / "cmdline").read_bytes():
                continue
            env = dict(item.split(b"=", 1) for item in (entry / "environ").read_bytes().split(b"\0") if b"=" in item)
        except (OSError, ValueError, IndexError):
            continue
        if env.get(b"CUDA_VISIBLE_DEVICES", b"").decode() == ours:
            found.append(int(entry.name))
    return found


def oom_beside_a_neighbour(params):
    """`waits`, then TensorFlow's out-of-memory error if another live worker shares this one's GPU:
    a model too big for a GPU shared, small enough for one alone."""
    import tensorflow as tf

    model = waits(params)
    if neighbours := live_neighbours():
        raise tf.errors.ResourceExhaustedError(
            None, None, f"OOM when allocating tensor with shape[4096,4096] (beside workers {neighbours})")
    return model
