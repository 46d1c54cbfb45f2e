"""What `fit` receives from kerasgrid.trial.data on the Keras backend of this process, as NumPy, so
that tests can compare backends (one process each). Imports TensorFlow only for a Dataset."""

import itertools
import sys

import numpy as np

import trial_models
from kerasgrid.trial import data

TRAIN = {"arrays": trial_models.arrays, "generator": trial_models.odd_data, "dataset": trial_models.dataset}
VALIDATION = {"arrays": trial_models.val_arrays, "generator": trial_models.val_generator,
              "dataset": trial_models.val_dataset}


def _flat(batch) -> list:
    return [np.asarray(array) for array in data.structure.flatten(batch)]


def seen(kind: str, backend: str, *, batches: int = 10, start: int = 0, steps: int | None = None,
         passes: int = 2) -> dict:
    """The first `batches` training batches (from batch `start` on) and `passes` validation passes
    of data kind `kind`, as `fit` on `backend` receives them, each batch a list of arrays."""
    import keras

    keras.utils.set_random_seed(0)  # a user's Dataset shuffles with TensorFlow's seed
    train = data.train_batches(TRAIN[kind], {}, batch_size=40, seed=0)
    validation = data.validation_passes(VALIDATION[kind], {}, batch_size=8, steps=steps)
    given = data.for_fit(train, validation, backend, start)
    if backend == "tensorflow":
        stream = given["train"].as_numpy_iterator()
        read_pass = lambda: itertools.islice(given["validation"].as_numpy_iterator(), given["validation_steps"])  # noqa: E731
    else:
        stream, sequence = given["train"], given["validation"]
        read_pass = lambda: (sequence[i] for i in range(len(sequence)))  # noqa: E731  as Keras reads a PyDataset
    return {"train": [_flat(b) for b in itertools.islice(stream, batches)],
            "validation": [[_flat(b) for b in read_pass()] for _ in range(passes)],
            "steps": given["validation_steps"]}


def dump(kinds: list[str], path: str, **keywords) -> None:
    """`seen` of each kind on this process's backend, saved to the .npz `path` (see `load`)."""
    import keras

    arrays = {}
    for kind in kinds:
        for part, values in seen(kind, keras.backend.backend(), **keywords).items():
            if part == "steps":
                arrays[f"{kind}/steps"] = np.asarray(values)
                continue
            for i, batch in enumerate(values if part == "train" else itertools.chain.from_iterable(values)):
                for j, array in enumerate(batch):
                    arrays[f"{kind}/{part}/{i}/{j}"] = array
    arrays["tensorflow_imported"] = np.asarray(sys.modules.get("tensorflow") is not None)
    np.savez(path, **arrays)


def flattened(kind: str, **keywords) -> dict:
    """`seen` in this process, on TensorFlow, flattened as `dump` saves it."""
    values = seen(kind, "tensorflow", **keywords)
    arrays = {f"{kind}/steps": np.asarray(values["steps"])}
    for part in ("train", "validation"):
        batches = values[part] if part == "train" else list(itertools.chain.from_iterable(values[part]))
        for i, batch in enumerate(batches):
            for j, array in enumerate(batch):
                arrays[f"{kind}/{part}/{i}/{j}"] = array
    return arrays
