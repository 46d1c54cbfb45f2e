"""The model of benchmarks/bench_conditional.py (issue 24): an MLP on scikit-learn's bundled digits
whose optimizer is a conditional hyperparameter. `momentum` means something only with SGD, so the
flat grid a user writes without `choose` trains each Adam combination once per momentum value:
the same model, trained again (params.get: the flat grid gives Adam a momentum it ignores)."""

import keras
import numpy as np
from sklearn.datasets import load_digits

BATCH_SIZE = 64


def _split():
    """Training and validation arrays: a fixed random fifth of the 1,797 digits held out."""
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = np.eye(10, dtype="float32")[digits.target]
    order = np.random.default_rng(0).permutation(len(x))
    n_val = len(x) // 5
    return (x[order[n_val:]], y[order[n_val:]]), (x[order[:n_val]], y[order[:n_val]])


def build_model(params):
    if params["optimizer"] == "sgd":
        optimizer = keras.optimizers.SGD(params["lr"], momentum=params.get("momentum", 0.0))
    else:
        optimizer = keras.optimizers.Adam(params["lr"])
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        keras.layers.Dense(params["units"], activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    return model


def train_data():
    (x, y), _ = _split()
    rng = np.random.default_rng(0)
    while True:
        order = rng.permutation(len(x))
        for start in range(0, len(x) - BATCH_SIZE + 1, BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            yield x[batch], y[batch]


def val_data():
    _, (x, y) = _split()
    yield x, y
