"""The default sweep: a small MLP on scikit-learn's bundled 8x8 digits (no download needed).

`build_model` turns one combination of the grid into a compiled model; `train_data` and
`val_data` are generators of (x, y) batches, the most common shape of a user's data.
`train_arrays` returns the same training data as whole arrays, from which kerasgrid draws
`data.fraction` itself; `train_data` takes the fraction as a keyword and draws it with
kerasgrid's own function, as a generator must.
"""

import keras
import numpy as np
from sklearn.datasets import load_digits

from kerasgrid import fraction as fractions

VALIDATION_FRACTION = 0.2


def _split():
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = np.eye(10, dtype="float32")[digits.target]  # one-hot, so mean_squared_error also works
    order = np.random.default_rng(0).permutation(len(x))
    n_val = int(len(x) * VALIDATION_FRACTION)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def build_model(params):
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(params.get("units", 32), activation=params["act_in"]),
            keras.layers.Dense(10, activation=params["act_out"]),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params["lr"]),
        loss=params["loss"],
        metrics=["categorical_accuracy"],
    )
    return model


def callbacks(params):
    """Your own Keras callbacks for each trial (config key `callbacks`), after kerasgrid's own."""
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2)]


def _batches(x, y, batch_size, shuffle_seed=None, remainder=False):
    """One pass over the data, in whole batches (and the smaller last one, with `remainder`);
    kerasgrid restarts a training generator when it runs dry."""
    order = np.arange(len(x))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(x))
    for start in range(0, len(x) - (1 if remainder else batch_size) + 1, batch_size):
        batch = order[start : start + batch_size]
        yield x[batch], y[batch]


def train_data(params, fraction=1.0):
    (x, y), _ = _split()
    if fraction < 1:  # data.fraction: kerasgrid's seeded draw, stratified by class
        x, y = fractions.take((x, y), fraction, seed=0)
    return _batches(x, y, params.get("batch_size", 32), shuffle_seed=0)


def train_arrays():
    (x, y), _ = _split()
    return x, y


def val_data(params):
    # Every example once, in order: the val_loss that ranks a trial is model.evaluate(x_val, y_val)'s.
    _, (x, y) = _split()
    return _batches(x, y, params.get("batch_size", 32), remainder=True)
