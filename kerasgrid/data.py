"""The data micro-framework: whatever a data callable returns becomes an endless tf.data.Dataset.

A data callable takes the trial's params (so `batch_size` can be a grid key) or nothing, and returns
one of:
- a generator (any iterator) of `(x, y)` or `(x, y, sample_weight)` batches, where each part is a
  numpy array or a dict of arrays (multi-input / multi-output models); it is made endless by
  calling the callable again whenever it runs dry;
- a `tf.data.Dataset` of batches, repeated;
- an `(x, y)` tuple of whole arrays (or dicts of arrays), shuffled with the seed and batched.

Endless streams are what make "every trial trains on exactly epochs x steps_per_epoch batches" true
whatever the source's length.
"""

import inspect
import itertools

import numpy as np
import tensorflow as tf

from kerasgrid.errors import DataError


def call_data_fn(fn, params: dict):
    """Call `fn(params)` if it takes an argument, else `fn()`."""
    try:
        takes_params = bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        takes_params = True
    return fn(params) if takes_params else fn()


def _as_tuple(element):
    # Keras reads an (x, y) pair from a tuple; a generator may yield a list.
    return tuple(element) if isinstance(element, list) else element


def _spec(array) -> tf.TensorSpec:
    array = np.asarray(array)
    if array.dtype == object:
        raise DataError(f"a batch holds a numpy array of Python objects (shape {array.shape}); "
                        "yield numeric or string arrays")
    # The batch dimension is left open: a source's last batch may be smaller.
    shape = (None,) + array.shape[1:] if array.ndim else ()
    return tf.TensorSpec(shape=shape, dtype=tf.as_dtype(array.dtype))


def infer_signature(element):
    """The tf.data signature of one batch: its structure, dtypes and shapes bar the batch size."""
    return tf.nest.map_structure(_spec, _as_tuple(element))


def endless(make_iterator, first=None):
    """Yield from `first` (or a fresh iterator), then from fresh ones for ever."""
    iterator = first if first is not None else make_iterator()
    while True:
        empty = True
        for element in iterator:
            empty = False
            yield _as_tuple(element)
        if empty:
            raise DataError("the data callable returned a generator that yielded nothing")
        iterator = make_iterator()


def as_dataset(fn, params: dict, *, batch_size: int, seed: int, name: str = "data") -> tf.data.Dataset:
    """An endless, prefetched tf.data.Dataset of batches from data callable `fn`."""
    source = call_data_fn(fn, params)
    if isinstance(source, tf.data.Dataset):
        dataset = source.repeat()
    elif isinstance(source, (tuple, list)) and len(source) in (2, 3):
        arrays = tuple(source)
        n = len(tf.nest.flatten(arrays[0])[0])
        dataset = (
            tf.data.Dataset.from_tensor_slices(arrays)
            .shuffle(n, seed=seed, reshuffle_each_iteration=True)
            .batch(params.get("batch_size", batch_size))
            .repeat()
        )
    elif hasattr(source, "__next__"):
        try:
            first = next(source)
        except StopIteration:
            raise DataError(f"{name} returned a generator that yielded nothing") from None
        try:
            signature = infer_signature(first)
        except DataError as exc:
            raise DataError(f"{name}: {exc}") from None

        def restart():
            return call_data_fn(fn, params)

        # The first pass reuses the generator we peeked at; re-iterating the dataset (Keras does
        # for validation) starts over from a fresh call, so every trial sees the same batches.
        started = []

        def generator():
            if started:
                return endless(restart)
            started.append(True)
            return endless(restart, itertools.chain([first], source))

        dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    else:
        raise DataError(
            f"{name} returned {type(source).__name__}; return a generator of (x, y) batches, a "
            "tf.data.Dataset, or an (x, y) tuple of arrays"
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
