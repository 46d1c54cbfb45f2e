"""A multi-input, multi-output model fed by a generator of dict batches.

Point a config at it to try it (nothing else changes):

    model: examples/multi_input.py:build_model
    data: {train: examples/multi_input.py:train_data, validation: examples/multi_input.py:val_data}
    grid: {lr: [0.001, 0.01], units: [16, 32]}

Inputs: the 8x8 digit image and its row sums; outputs: the digit (softmax) and whether it is even.
"""

import keras
import numpy as np
from sklearn.datasets import load_digits


def build_model(params):
    image = keras.Input(shape=(64,), name="image")
    row_sums = keras.Input(shape=(8,), name="row_sums")
    hidden = keras.layers.Concatenate()([image, row_sums])
    hidden = keras.layers.Dense(params.get("units", 32), activation="relu")(hidden)
    outputs = {
        "digit": keras.layers.Dense(10, activation="softmax", name="digit")(hidden),
        "even": keras.layers.Dense(1, activation="sigmoid", name="even")(hidden),
    }
    model = keras.Model(inputs={"image": image, "row_sums": row_sums}, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(params.get("lr", 0.001)),
        loss={"digit": "sparse_categorical_crossentropy", "even": "binary_crossentropy"},
        metrics={"digit": ["accuracy"], "even": ["accuracy"]},
    )
    return model


def _batches(part, batch_size):
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    split = int(len(x) * 0.8)
    index = order[:split] if part == "train" else order[split:]
    for start in range(0, len(index) - batch_size + 1, batch_size):
        batch = index[start : start + batch_size]
        images = x[batch]
        yield (
            {"image": images, "row_sums": images.reshape(-1, 8, 8).sum(axis=2)},
            {"digit": digits.target[batch], "even": (digits.target[batch] % 2 == 0).astype("float32")},
        )


def train_data(params):
    return _batches("train", params.get("batch_size", 32))


def val_data(params):
    return _batches("val", params.get("batch_size", 32))
