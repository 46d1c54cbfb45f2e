"""Workload W3 (issue 10): a space where search matters, on scikit-learn's bundled digits.

`layers` dense blocks of `units` ReLUs, each followed by `dropout`, trained with Adam from `lr`
down to zero along a cosine over the whole budget (benchmarks/w3.yaml: a 3x3x3x3 grid, 27 epochs
of 90 batches of 128). The decay is what makes the objective after the budget a measurement
rather than a draw: at a constant rate, dropout models' val_loss swings by tens of percent from
one epoch to the next. Early rankings mislead: after an epoch the big models at the highest rate
lead, and by the end they have overfitted (the first epoch's leader finished 45th of 81 when this
was sized); moderate, regularised models win.
A resumed trial must restore the optimizer's step count to stay on the schedule (kerasgrid's
rungs do; KerasTuner's Hyperband reloads weights only, so a continued model starts the schedule
again, with fresh Adam moments).

The training stream never repeats an epoch's batches: it is endless, reshuffling the training set
on every pass with one seeded generator, so it is the same stream in every trial and every tool
(and a resumed trial can continue it by dropping the batches it has used). The validation set is
one batch: the whole held-out fifth, the same every epoch.
"""

import keras
import numpy as np
from sklearn.datasets import load_digits

BATCH_SIZE = 128
SHUFFLE_SEED = 0
# budget.epochs x budget.steps_per_epoch in w3.yaml: the rate reaches zero as the budget ends.
DECAY_STEPS = 27 * 90


def _split():
    """Training and validation arrays: a fixed random fifth of the 1,797 digits held out."""
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = np.eye(10, dtype="float32")[digits.target]
    order = np.random.default_rng(0).permutation(len(x))
    n_val = len(x) // 5
    return (x[order[n_val:]], y[order[n_val:]]), (x[order[:n_val]], y[order[:n_val]])


def build_model(params):
    inputs = keras.Input(shape=(64,))
    x = inputs
    for _ in range(params["layers"]):
        x = keras.layers.Dense(params["units"], activation="relu")(x)
        x = keras.layers.Dropout(params["dropout"])(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(params["lr"], DECAY_STEPS)),
        loss="categorical_crossentropy",
        metrics=["categorical_accuracy"],
    )
    return model


def train_data():
    (x, y), _ = _split()
    yield from shuffled_batches(x, y, BATCH_SIZE)


def shuffled_batches(x, y, batch_size: int):
    """Endless batches, reshuffled every pass from one seeded generator: the same stream in every run."""
    rng = np.random.default_rng(SHUFFLE_SEED)
    while True:
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch_size + 1, batch_size):
            batch = order[start : start + batch_size]
            yield x[batch], y[batch]


def val_data():
    _, (x, y) = _split()
    yield x, y
