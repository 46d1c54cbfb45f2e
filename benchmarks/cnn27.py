"""A compute-bound space for bench_search.py (issue 23): 27 small CNNs on the bundled digits.

W3's epochs take a fraction of a second, so each halving job's fixed cost (building, tracing,
records: about half a second) weighs as much as its epochs. Here an epoch costs about a second of
one core (benchmarks/cnn27.yaml: 64 batches of 128 through three 3x3 convolutions), so what
halving saves in epochs should show in its wall time.

The three hyperparameters (`lr`, `dropout`, AdamW's decoupled `weight_decay`) leave every model
the same size, so an epoch costs about the same in every trial and a method's share of the grid's
epochs is its share of the grid's compute. Weight decay is decoupled (AdamW), not an L2 penalty:
a penalty would add to val_loss, the objective, and favour the smallest decay for that alone.
As in W3 (benchmarks/w3.py, whose data streams this reuses), the learning rate falls to zero along
a cosine over the whole budget, so a rung's first E epochs are the grid trial's first E.
"""

import keras

# budget.epochs x budget.steps_per_epoch in cnn27.yaml: the rate reaches zero as the budget ends.
DECAY_STEPS = 9 * 64


def build_model(params):
    inputs = keras.Input(shape=(64,))
    x = keras.layers.Reshape((8, 8, 1))(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(params["dropout"])(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(params["dropout"])(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.AdamW(
            keras.optimizers.schedules.CosineDecay(params["lr"], DECAY_STEPS), weight_decay=params["weight_decay"]
        ),
        loss="categorical_crossentropy",
        metrics=["categorical_accuracy"],
    )
    return model
