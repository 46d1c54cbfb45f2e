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

With `data.fraction`, `as_fraction_dataset` trains on a fraction of what the callable returns:
kerasgrid draws it from whole arrays itself (kerasgrid.fraction), and a callable that takes a
`fraction` keyword receives it and draws its own.
"""

import inspect
import itertools

import numpy as np
import tensorflow as tf

from kerasgrid import fraction as fractions
from kerasgrid.errors import ConfigError, DataError


def _parameters(fn) -> list[str] | None:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return None


def takes_fraction(fn) -> bool:
    """Whether a data callable draws its own fraction: it has a parameter named `fraction`."""
    return "fraction" in (_parameters(fn) or [])


def call_data_fn(fn, params: dict, fraction: float | None = None):
    """Call `fn(params)` if it takes an argument, else `fn()`; with `fraction`, a callable that takes
    a `fraction` parameter receives it as a keyword."""
    names = _parameters(fn)
    keywords = {"fraction": fraction} if fraction is not None and "fraction" in (names or []) else {}
    takes_params = names is None or any(name != "fraction" for name in names)
    return fn(params, **keywords) if takes_params else fn(**keywords)


def _whole_arrays(source) -> bool:
    return isinstance(source, (tuple, list)) and len(source) in (2, 3)


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
    return _dataset(call_data_fn(fn, params), lambda: call_data_fn(fn, params), params, batch_size, seed, name)


def as_fraction_dataset(
    fn, params: dict, fraction: float, *, draw_seed: int, batch_size: int, seed: int, name: str = "data",
    source: str = "the config",
) -> tuple[tf.data.Dataset, dict]:
    """`as_dataset` of a `fraction` of what `fn` gives, and the record of what that fraction holds
    (kerasgrid.fraction.describe: examples kept and in all, class shares, warnings).

    Whole arrays are drawn from here, by `draw_seed`; a callable with a `fraction` parameter receives
    the fraction and draws it itself (recorded if it uses kerasgrid.fraction.indices). Anything
    else cannot be cut from outside: ConfigError, naming `source` (the config) and the fix.
    """
    if takes_fraction(fn):
        fractions.start_recording()
        try:
            data = call_data_fn(fn, params, fraction)
            # A generator runs its body, and so its draw, when _dataset peeks at its first batch.
            dataset = _dataset(data, lambda: call_data_fn(fn, params, fraction), params, batch_size, seed, name)
        finally:
            draws = fractions.stop_recording()
        examples = fractions.length(data[:2]) if _whole_arrays(data) else None
        return dataset, draws[0] if draws else fractions.unmeasured(fraction, "the data callable", examples)
    data = call_data_fn(fn, params)
    if not _whole_arrays(data):
        if fraction == 1:  # all of it: nothing to cut
            dataset = _dataset(data, lambda: call_data_fn(fn, params), params, batch_size, seed, name)
            return dataset, fractions.unmeasured(fraction, None)
        raise ConfigError(
            f"{source}: data.fraction is {fraction}, but {name} returned {type(data).__name__}, which kerasgrid "
            "cannot cut a fraction from. Return whole (x, y) arrays, which kerasgrid draws the fraction from, or "
            "give the function a fraction parameter (def train_data(params, fraction=1.0)) and keep that fraction "
            "inside it, e.g. with kerasgrid.fraction.indices(labels, fraction, seed=0)."
        )
    arrays = tuple(data)
    try:
        fractions.length(arrays)
    except ValueError as exc:
        raise DataError(f"{name}: {exc}") from None
    labels = fractions.first_target(arrays)
    rows = fractions.draw(labels, fraction, draw_seed)
    record = fractions.describe(labels, rows, fraction)
    if fraction < 1:
        arrays = fractions.subset(arrays, rows)
    return _dataset(arrays, None, params, batch_size, seed, name), record


def _dataset(source, restart, params: dict, batch_size: int, seed: int, name: str) -> tf.data.Dataset:
    """What as_dataset makes of a callable's return value; `restart` calls the callable again."""
    if isinstance(source, tf.data.Dataset):
        dataset = source.repeat()
    elif _whole_arrays(source):
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
