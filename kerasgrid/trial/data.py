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

Validation data is another matter (`as_validation_dataset`): Keras evaluates it afresh every epoch,
and what a user checks it against is `model.evaluate` on the same data, which reads whole arrays in
order and all of them. So kerasgrid never shuffles validation data, and every epoch reads the same
batches: all of it (`validation_steps` None; a source that never ends is a ConfigError, not a
hang), or its first `validation_steps`.

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
        dataset = _generator_dataset(source, restart, name, forever=True)
    else:
        raise _not_data(source, name)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _not_data(source, name: str) -> DataError:
    return DataError(
        f"{name} returned {type(source).__name__}; return a generator of (x, y) batches, a "
        "tf.data.Dataset, or an (x, y) tuple of arrays"
    )


def _generator_dataset(source, restart, name: str, forever: bool) -> tf.data.Dataset:
    """A tf.data.Dataset of the batches of generator `source`: endless (`restart` called whenever
    one runs dry) or one generator's worth per pass (a fresh `restart()` each pass)."""
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
            return endless(restart) if forever else map(_as_tuple, restart())
        started.append(True)
        chained = itertools.chain([first], source)
        return endless(restart, chained) if forever else map(_as_tuple, chained)

    return tf.data.Dataset.from_generator(generator, output_signature=signature)


# The most batches a validation generator or dataset of unknown length is read for, to count them,
# when budget.validation_steps is not set: one that yields more is taken for endless. A pass over
# so many batches of anything Python makes takes seconds, and few validation sets are longer.
COUNT_LIMIT = 100_000


def as_validation_dataset(fn, params: dict, *, batch_size: int, steps: int | None, name: str = "data.validation",
                          ref: str | None = None, source: str = "the config", passes_before: int = 0
                          ) -> tuple[tf.data.Dataset, int]:
    """The validation data of data callable `fn` as passes of the same batches in the same order,
    as `model.evaluate` reads them: an endless tf.data.Dataset, and the batches of one pass (what
    `fit` takes as validation_steps: each epoch then reads one pass from a fresh iterator).

    - whole (x, y) arrays: batched in order, never shuffled, the last batch smaller if need be;
    - a generator: one call's batches per pass (the callable is called again for each);
    - a tf.data.Dataset: as it is (one that reshuffles itself, e.g. `.shuffle(n)` whose
      reshuffle_each_iteration is on by default, gives each pass its own order).

    `steps` None: all of it, every batch once per pass; a generator or dataset of unknown length is
    read once here to count its batches, and one that never ends is a ConfigError naming `source`,
    `name` (= `ref`, the function) and the fix. `steps` n: its first n batches, starting over from
    the first if it has fewer.

    `passes_before`: the passes earlier epochs made (a resumed run). A Dataset's are made again
    here, its pipeline only, so that one that reshuffles itself with a seed, which draws each
    pass's order from how many passes came before, goes on as if trained straight through; arrays
    and generators start every pass the same.
    """
    data = call_data_fn(fn, params)
    if isinstance(data, tf.data.Dataset):
        one_pass = data
    elif _whole_arrays(data):
        one_pass = tf.data.Dataset.from_tensor_slices(tuple(data)).batch(params.get("batch_size", batch_size))
    elif hasattr(data, "__next__"):
        one_pass = _generator_dataset(data, lambda: call_data_fn(fn, params), name, forever=False)
    else:
        raise _not_data(data, name)
    if steps is not None:
        one_pass = one_pass.repeat().take(steps)
    else:
        steps = _batches(one_pass, data, f"{name} = {ref}" if ref else name, source)
    for _ in range(passes_before if isinstance(data, tf.data.Dataset) else 0):
        for _ in one_pass:
            pass
    return _then_empty_batches(one_pass.prefetch(tf.data.AUTOTUNE)), steps


def _then_empty_batches(one_pass: tf.data.Dataset) -> tf.data.Dataset:
    """`one_pass`, then batches of no examples for ever. Keras takes `steps` batches an epoch from a
    fresh iterator but reads a few ahead; what it reads past the pass comes from these, so that the
    next pass starts, and a Dataset that reshuffles itself draws its next order, only in the next
    epoch. (Given a dataset of known length instead, Keras starts a pass after each epoch's.)"""
    def empty(spec):
        return tf.zeros([size or 0 for size in spec.shape], spec.dtype)

    try:
        filler = tf.nest.map_structure(empty, one_pass.element_spec)
    except (TypeError, ValueError):  # a spec of unknown rank, a ragged or sparse one
        return one_pass.repeat()
    return one_pass.concatenate(tf.data.Dataset.from_tensors(filler).repeat())


def _batches(one_pass: tf.data.Dataset, data, name: str, source: str) -> int:
    """The number of batches of `one_pass`, counted if tf.data cannot tell; a ConfigError if it
    never ends."""
    batches = int(one_pass.cardinality())
    if batches == tf.data.INFINITE_CARDINALITY:
        raise _endless(name, "a Dataset that repeats for ever", source)
    if batches != tf.data.UNKNOWN_CARDINALITY:
        return batches
    batches = int(one_pass.take(COUNT_LIMIT + 1).reduce(np.int64(0), lambda count, _: count + 1))
    if batches > COUNT_LIMIT:
        raise _endless(name, f"more than {COUNT_LIMIT:,} batches, endless it seems", source)
    if batches == 0:
        raise DataError(f"{name} returned a {type(data).__name__} that yielded nothing")
    return batches


def _endless(name: str, what: str, source: str) -> ConfigError:
    return ConfigError(
        f"{source}: budget.validation_steps is not set, which means validating on all of the validation "
        f"data every epoch, but {name} returns {what}. Set budget.validation_steps to the number of "
        "batches to validate on (the same first ones every epoch), or make the function return data that "
        "ends: whole (x, y) arrays, a generator that stops, or a Dataset without .repeat()."
    )


def check_batched(dataset: tf.data.Dataset, model, name: str, source: str) -> None:
    """A ConfigError, before any training, if `dataset` holds single examples rather than batches:
    its inputs have one dimension fewer than the model's (which Keras would report in every trial
    as a shape error of some layer). A model whose inputs are not known yet is not checked."""
    spec = dataset.element_spec
    x = tf.nest.flatten(spec[0] if isinstance(spec, tuple) else spec)
    try:
        inputs = tf.nest.flatten(model.inputs or [])
        given = sorted(s.shape.rank for s in x)
        wanted = sorted(len(i.shape) for i in inputs)
    except (AttributeError, TypeError, ValueError):  # a subclassed model not built yet; an odd spec
        return
    if not inputs or None in given or [rank + 1 for rank in given] != wanted:
        return
    shape = tuple(x[0].shape)
    raise ConfigError(
        f"{source}: {name} returns single examples, not batches (its inputs have shape {shape}; the "
        f"model's take a batch of them, {tuple(inputs[0].shape)}), so every trial would fail on Keras' "
        "shape error. Return a Dataset of batches: add .batch(n) to it, e.g. .batch(params['batch_size']) "
        "or .batch(32) (a generator: yield batches of examples, not one at a time)."
    )
