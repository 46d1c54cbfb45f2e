"""Data that would fail every trial, refused before any trains."""

from kerasgrid.errors import ConfigError
from kerasgrid.trial.data.structure import flatten, rank


def check_batched(spec, model, name: str, source: str) -> None:
    """A ConfigError, before any training, if the data of batch spec `spec` (a source's `spec`)
    holds single examples rather than batches: its inputs have one dimension fewer than the
    model's (which Keras would report in every trial as a shape error of some layer). A model whose
    inputs are not known yet is not checked."""
    x = flatten(spec[0] if isinstance(spec, tuple) else spec)
    try:
        inputs = flatten(model.inputs or [])
        given = sorted(rank(s) if rank(s) is not None else -1 for s in x)
        wanted = sorted(len(i.shape) for i in inputs)
    except (AttributeError, TypeError, ValueError):  # a subclassed model not built yet; an odd spec
        return
    if not inputs or -1 in given or [r + 1 for r in given] != wanted:
        return
    shape = tuple(x[0].shape)
    raise ConfigError(
        f"{source}: {name} returns single examples, not batches (its inputs have shape {shape}; the "
        f"model's take a batch of them, {tuple(inputs[0].shape)}), so every trial would fail on Keras' "
        "shape error. Return a Dataset of batches: add .batch(n) to it, e.g. .batch(params['batch_size']) "
        "or .batch(32) (a generator: yield batches of examples, not one at a time)."
    )
