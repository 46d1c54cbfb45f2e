"""Validation data as Keras reads it each epoch and `model.evaluate` reads it once: passes of the
same batches in the same order, never shuffled by kerasgrid; all of it (`steps` None) or its first
`steps` batches. NumPy batches, whatever the backend (kerasgrid.trial.data.forms hands them over)."""

import itertools

from kerasgrid.errors import ConfigError, DataError
from kerasgrid.trial.data.calling import call_data_fn, is_dataset, not_data, whole_arrays
from kerasgrid.trial.data.sources import ArrayBatches
from kerasgrid.trial.data.structure import as_tuple, infer_signature, map_structure

# The most batches a validation generator or dataset of unknown length is read for, to count them,
# when budget.validation_steps is not set: one that yields more is taken for endless. A pass over
# so many batches of anything Python makes takes seconds, and few validation sets are longer.
COUNT_LIMIT = 100_000


class ArrayPasses:
    """Whole arrays in order, batched; the batch after a pass's last is the pass's first again."""

    def __init__(self, arrays, batch_size: int, steps: int | None, name: str):
        self.batches = ArrayBatches(arrays, batch_size, 0, name)  # for its checks, spec and sizes
        self.arrays, self.batch_size, self.spec = self.batches.arrays, self.batches.batch_size, self.batches.spec
        self.steps = self.batches.per_pass if steps is None else steps

    def rows(self, batch: int) -> slice:
        batch %= self.batches.per_pass
        return slice(batch * self.batch_size, (batch + 1) * self.batch_size)

    def one_pass(self):
        for batch in range(self.steps):
            rows = self.rows(batch)
            yield map_structure(lambda array: array[rows], self.arrays)

    def first(self):
        return next(self.one_pass())


class GeneratorPasses:
    """One call's batches per pass (the callable is called again for each, and again within a pass
    that needs more batches than a call gives). The generator peeked at serves the first pass, or
    the count where `steps` is None."""

    def __init__(self, generator, restart, steps: int | None, name: str, source: str, counted_as: str):
        try:
            self.first_batch = as_tuple(next(generator))
        except StopIteration:
            raise DataError(f"{name} returned a generator that yielded nothing") from None
        try:
            self.spec = infer_signature(self.first_batch)
        except DataError as exc:
            raise DataError(f"{name}: {exc}") from None
        self.restart, self.name = restart, name
        self.peeked = itertools.chain([self.first_batch], generator)
        if steps is None:
            steps, self.peeked = _count(self.peeked, counted_as, source, "generator"), None
        self.steps = steps

    def _call(self):
        if self.peeked is not None:
            peeked, self.peeked = self.peeked, None
            return peeked
        return self.restart()

    def one_pass(self):
        left, iterator = self.steps, self._call()
        while left:
            empty = True
            for element in iterator:
                empty = False
                yield as_tuple(element)
                left -= 1
                if not left:
                    return
            if empty:
                raise DataError(f"{self.name} returned a generator that yielded nothing")
            iterator = self.restart()

    def first(self):
        return self.first_batch


class DatasetPasses:
    """A user's tf.data.Dataset as it is, each pass a new iteration of it (one that reshuffles
    itself, e.g. `.shuffle(n)`, gives each pass its own order); its first `steps` batches (repeated
    where it has fewer)."""

    def __init__(self, dataset, steps: int | None, name: str, source: str):
        import tensorflow as tf

        if steps is None:
            steps = int(dataset.cardinality())
            if steps == tf.data.INFINITE_CARDINALITY:
                raise endless_error(name, "a Dataset that repeats for ever", source)
            if steps == tf.data.UNKNOWN_CARDINALITY:
                steps = _count(dataset.take(COUNT_LIMIT + 1).as_numpy_iterator(), name, source, "Dataset")
            elif steps == 0:
                raise DataError(f"{name} returned a Dataset that yielded nothing")
            self.pass_dataset = dataset
        else:
            self.pass_dataset = dataset.repeat().take(steps)
        self.steps, self.spec = steps, dataset.element_spec

    def one_pass(self):
        yield from (as_tuple(batch) for batch in self.pass_dataset.as_numpy_iterator())

    def first(self):
        return next(self.one_pass())


def validation_passes(fn, params: dict, *, batch_size: int, steps: int | None, name: str = "data.validation",
                      ref: str | None = None, source: str = "the config", passes_before: int = 0):
    """The validation data of data callable `fn` as passes of the same batches in the same order,
    as `model.evaluate` reads them: an object with `steps` (the batches of a pass: what `fit` takes
    as validation_steps), `spec`, `one_pass()` (a fresh pass of NumPy batches) and `first()`.

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
    named = f"{name} = {ref}" if ref else name
    if is_dataset(data):
        passes = DatasetPasses(data, steps, named, source)
        for _ in range(passes_before):
            for _ in passes.pass_dataset:
                pass
        return passes
    if whole_arrays(data):
        return ArrayPasses(data, params.get("batch_size", batch_size), steps, name)
    if hasattr(data, "__next__"):
        return GeneratorPasses(data, lambda: call_data_fn(fn, params), steps, name, source, named)
    raise not_data(data, name)


def _count(iterator, name: str, source: str, kind: str) -> int:
    """The batches of one pass of `iterator`, read out; a ConfigError if it seems never to end."""
    batches = sum(1 for _ in itertools.islice(iterator, COUNT_LIMIT + 1))
    if batches > COUNT_LIMIT:
        raise endless_error(name, f"more than {COUNT_LIMIT:,} batches, endless it seems", source)
    if batches == 0:
        raise DataError(f"{name} returned a {kind} that yielded nothing")
    return batches


def endless_error(name: str, what: str, source: str) -> ConfigError:
    return ConfigError(
        f"{source}: budget.validation_steps is not set, which means validating on all of the validation "
        f"data every epoch, but {name} returns {what}. Set budget.validation_steps to the number of "
        "batches to validate on (the same first ones every epoch), or make the function return data that "
        "ends: whole (x, y) arrays, a generator that stops, or a Dataset without .repeat()."
    )
