"""Workload W2: the default grid with a small CNN on the same digits data (compute-bound).

The data callables are examples/digits.py's, as in W1.
"""

import keras


def build_model(params):
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Reshape((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation=params["act_in"]),
            keras.layers.Conv2D(64, 3, padding="same", activation=params["act_in"]),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation=params["act_in"]),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation=params["act_in"]),
            keras.layers.Dense(10, activation=params["act_out"]),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params["lr"]),
        loss=params["loss"],
        metrics=["categorical_accuracy"],
    )
    return model
