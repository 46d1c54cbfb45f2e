"""The model of benchmarks/bench_conditional.py (issue 24): an MLP on scikit-learn's bundled digits
whose optimizer is a conditional hyperparameter. `momentum` means something only with SGD, so the
flat grid a user writes without `choose` trains each Adam combination once per momentum value:
the same model, trained again (params.get: the flat grid gives Adam a momentum it ignores)."""

import keras
import numpy as np

from w3 import _split, shuffled_batches, val_data  # noqa: F401 - W3's data: the same held-out fifth of the digits

BATCH_SIZE = 64


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
    yield from shuffled_batches(x, y, BATCH_SIZE)
