"""The model and data of a first kerasgrid sweep: a small network that reads handwritten digits.

kerasgrid calls `build_model` once per trial with one combination of sweep.yaml's grid, and
trains what it returns on `train_data`, validating on `val_data`. Change them into your own:
anything that builds a compiled Keras model from a dict of hyperparameters will do.
"""

import keras
import numpy as np
from sklearn.datasets import load_digits  # 1,797 8x8 images that ship with scikit-learn: no download


def build_model(params):
    """One trial's model. `params` is one combination of the grid, e.g.
    {"units": 64, "activation": "relu", "lr": 0.01}: read every grid key you declared."""
    model = keras.Sequential([
        keras.Input(shape=(64,)),  # the 8x8 pixels, flattened
        keras.layers.Dense(params["units"], activation=params["activation"]),
        keras.layers.Dense(10, activation="softmax"),  # one probability per digit, 0 to 9
    ])
    # Compile it here: kerasgrid trains the model as it gets it, with this optimizer and loss.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params["lr"]),
        loss="sparse_categorical_crossentropy",  # the labels are the digits themselves, 0 to 9
        metrics=["accuracy"],  # logged as accuracy and val_accuracy: sweep.yaml may rank on either
    )
    return model


def _split():
    """The digits, scaled to [0, 1], shuffled with a fixed seed and split 80/20 into training and
    validation: every trial sees the same data."""
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target
    order = np.random.default_rng(0).permutation(len(x))
    validation, train = order[:360], order[360:]
    return (x[train], y[train]), (x[validation], y[validation])


# A data function returns whole (x, y) arrays, as here (kerasgrid shuffles training arrays with the
# seed and cuts batches of budget.batch_size; validation arrays it reads in order, all of them, as
# model.evaluate does), a generator of (x, y) batches, or a tf.data.Dataset of batches. It may take
# the trial's params, e.g. to read a batch_size from the grid; these need none.
def train_data():
    train, _ = _split()
    return train


def val_data():
    _, validation = _split()
    return validation
