"""The data micro-framework: whatever a data callable returns becomes one endless stream of
batches, the same batches in the same order whatever the Keras backend, handed to `fit` in that
backend's own form.

A data callable takes the trial's params (so `batch_size` can be a grid key) or nothing, and returns
one of:
- a generator (any iterator) of `(x, y)` or `(x, y, sample_weight)` batches, where each part is a
  numpy array or a dict of arrays (multi-input / multi-output models); it is made endless by
  calling the callable again whenever it runs dry;
- a `tf.data.Dataset` of batches, repeated;
- an `(x, y)` tuple of whole arrays (or dicts of arrays): each pass over them in the order of a
  NumPy permutation seeded by the trial's seed and the pass's number, in batches of `batch_size`
  (the last of a pass smaller).

Endless streams are what make "every trial trains on exactly epochs x steps_per_epoch batches" true
whatever the source's length. The stream is NumPy (`sources`); `fit` receives it as a tf.data
pipeline with prefetch on TensorFlow (`tf_form`: its fast path) and as NumPy batches on JAX and
PyTorch (`numpy_form`: theirs). TensorFlow is imported only for the TensorFlow backend or where the
callable returned a tf.data.Dataset: arrays and generators need none.

Validation data is another matter (`validation_passes`): Keras evaluates it afresh every epoch,
and what a user checks it against is `model.evaluate` on the same data, which reads whole arrays in
order and all of them. So kerasgrid never shuffles validation data, and every epoch reads the same
batches: all of it (`validation_steps` None; a source that never ends is a ConfigError, not a
hang), or its first `validation_steps`.

With `data.fraction`, `fraction_batches` trains on a fraction of what the callable returns:
kerasgrid draws it from whole arrays itself (kerasgrid.fraction), and a callable that takes a
`fraction` keyword receives it and draws its own.
"""

from kerasgrid.trial.data.calling import call_data_fn, takes_fraction
from kerasgrid.trial.data.checks import check_batched
from kerasgrid.trial.data.on_fraction import fraction_batches
from kerasgrid.trial.data.sources import training_batches
from kerasgrid.trial.data.structure import Spec, infer_signature
from kerasgrid.trial.data.validation import validation_passes

BACKENDS = ("tensorflow", "jax", "torch")


def train_batches(fn, params: dict, *, batch_size: int, seed: int, name: str = "data"):
    """The endless training batches of data callable `fn` (kerasgrid.trial.data.sources):
    `spec`, `first()`, `numpy(start)`."""
    size = params.get("batch_size", batch_size)
    return training_batches(call_data_fn(fn, params), lambda: call_data_fn(fn, params), batch_size=size, seed=seed,
                            name=name)


def for_fit(train, validation, backend: str, start: int = 0) -> dict:
    """What `fit` takes on Keras backend `backend` ('tensorflow', 'jax' or 'torch'): `train` (the
    training batches from batch `start` on), `validation` and `validation_steps` (one pass of
    `validation` each epoch; absent without validation data)."""
    if backend == "tensorflow":
        from kerasgrid.trial.data import tf_form as form

        given = {"train": form.training_dataset(train, start)}
        if validation is not None:
            given["validation"] = form.validation_dataset(validation)
    else:
        from kerasgrid.trial.data import numpy_form as form

        given = {"train": form.training_generator(train, start)}
        if validation is not None:
            given["validation"] = form.validation_sequence(validation)
    if validation is not None:
        given["validation_steps"] = validation.steps
    return given


def as_dataset(fn, params: dict, *, batch_size: int, seed: int, name: str = "data"):
    """The training batches of `fn` as an endless, prefetched tf.data.Dataset (what a trial on
    TensorFlow trains on; for loops that feed `fit` themselves, as the benchmarks' do)."""
    from kerasgrid.trial.data import tf_form

    return tf_form.training_dataset(train_batches(fn, params, batch_size=batch_size, seed=seed, name=name))


def as_validation_dataset(fn, params: dict, *, batch_size: int, steps: int | None, **keywords):
    """The validation data of `fn` as a trial on TensorFlow has it: a tf.data.Dataset that gives
    one pass each epoch, and the batches of a pass (fit's validation_steps)."""
    from kerasgrid.trial.data import tf_form

    passes = validation_passes(fn, params, batch_size=batch_size, steps=steps, **keywords)
    return tf_form.validation_dataset(passes), passes.steps


__all__ = ["BACKENDS", "Spec", "as_dataset", "as_validation_dataset", "call_data_fn", "check_batched", "for_fit",
           "fraction_batches", "infer_signature", "takes_fraction", "train_batches", "training_batches",
           "validation_passes"]
