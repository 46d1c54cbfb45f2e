"""The training data as one endless stream of NumPy batches, the same batches in the same order
whatever the Keras backend; `numpy(start)` resumes it after `start` batches without reading them
where it can. The backends' own forms are built from these (kerasgrid.trial.data.forms)."""

import itertools
import math

import numpy as np

from kerasgrid import fraction as fractions
from kerasgrid.errors import DataError
from kerasgrid.trial.data.calling import is_dataset, not_data, whole_arrays
from kerasgrid.trial.data.structure import as_tuple, infer_signature, map_structure


class ArrayBatches:
    """Whole `(x, y[, sample_weight])` arrays (or dicts of arrays): each pass over them in the order
    of a NumPy permutation seeded by (seed, the pass's number), cut into batches of `batch_size`,
    the last batch of a pass smaller if need be; pass after pass for ever."""

    def __init__(self, arrays, batch_size: int, seed: int, name: str):
        self.arrays = map_structure(np.asarray, tuple(arrays))
        try:
            self.examples = fractions.length(self.arrays)
        except ValueError as exc:
            raise DataError(f"{name}: {exc}") from None
        if self.examples == 0:
            raise DataError(f"{name} returned arrays of no examples")
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.per_pass = math.ceil(self.examples / self.batch_size)
        self.spec = infer_signature(self.arrays)

    def order(self, pass_index: int) -> np.ndarray:
        """The examples of pass `pass_index` (0 the first) in the order they are trained on."""
        return np.random.default_rng([self.seed, pass_index]).permutation(self.examples)

    def indices(self, start: int = 0):
        """The rows of each batch, endless, from batch `start` on (computed: nothing is skipped)."""
        pass_index, offset = divmod(start, self.per_pass)
        while True:
            order = self.order(pass_index)
            for batch in range(offset, self.per_pass):
                yield order[batch * self.batch_size:(batch + 1) * self.batch_size]
            pass_index, offset = pass_index + 1, 0

    def numpy(self, start: int = 0):
        for rows in self.indices(start):
            yield map_structure(lambda array: array[rows], self.arrays)

    def first(self):
        return next(self.numpy())


class GeneratorBatches:
    """A generator's batches, made endless by calling the callable again (`restart`) whenever one
    runs dry. Its first batch is read here (for the spec); the first stream goes on with the
    generator it came from, a later one starts from a fresh call."""

    def __init__(self, generator, restart, name: str):
        try:
            self.first_batch = as_tuple(next(generator))
        except StopIteration:
            raise DataError(f"{name} returned a generator that yielded nothing") from None
        try:
            self.spec = infer_signature(self.first_batch)
        except DataError as exc:
            raise DataError(f"{name}: {exc}") from None
        self.generator, self.restart, self.name = generator, restart, name

    def _fresh(self):
        if self.generator is not None:  # the one peeked at, once
            chained, self.generator = itertools.chain([self.first_batch], self.generator), None
            return chained
        return self.restart()

    def numpy(self, start: int = 0):
        """Endless, from batch `start` on: the batches before it are read and dropped (a generator
        has no other way to get there)."""
        iterator = self._fresh()
        while True:
            empty = True
            for element in iterator:
                empty = False
                if start:
                    start -= 1
                    continue
                yield as_tuple(element)
            if empty:
                raise DataError(f"{self.name} returned a generator that yielded nothing")
            iterator = self.restart()

    def first(self):
        return self.first_batch


class DatasetBatches:
    """A user's tf.data.Dataset of batches, repeated; read as NumPy (`as_numpy_iterator`) where the
    backend is not TensorFlow. A Dataset that reshuffles itself draws each pass's order as it would
    on TensorFlow: the same pipeline is iterated the same way."""

    def __init__(self, dataset, name: str):
        self.dataset, self.spec = dataset, dataset.element_spec

    def repeated(self, start: int = 0):
        """The tf.data form: repeated, from batch `start` on (tf.data skips without reading out)."""
        return self.dataset.repeat().skip(start)

    def numpy(self, start: int = 0):
        import tensorflow as tf

        yield from (as_tuple(batch) for batch in self.repeated(start).prefetch(tf.data.AUTOTUNE).as_numpy_iterator())

    def first(self):
        return as_tuple(next(self.dataset.take(1).as_numpy_iterator()))


def training_batches(source, restart, *, batch_size: int, seed: int, name: str):
    """The endless batches of what a data callable returned (`source`); `restart` calls it again.
    `batch_size` applies to whole arrays only; `seed` shuffles them."""
    if is_dataset(source):
        return DatasetBatches(source, name)
    if whole_arrays(source):
        return ArrayBatches(source, batch_size, seed, name)
    if hasattr(source, "__next__"):
        return GeneratorBatches(source, restart, name)
    raise not_data(source, name)

