"""How kerasgrid calls a data callable: with the trial's params (so `batch_size` can be a grid
key) or with nothing, and with `fraction` where it names that parameter."""

import inspect
import sys

from kerasgrid.errors import DataError


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


def whole_arrays(source) -> bool:
    """Whether a callable returned whole `(x, y)` or `(x, y, sample_weight)` arrays."""
    return isinstance(source, (tuple, list)) and len(source) in (2, 3)


def is_dataset(source) -> bool:
    """Whether `source` is a tf.data.Dataset, asked without importing TensorFlow: a Dataset exists
    only where TensorFlow was imported already (by the user's callable)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(source, tf.data.Dataset)


def not_data(source, name: str) -> DataError:
    return DataError(
        f"{name} returned {type(source).__name__}; return a generator of (x, y) batches, a "
        "tf.data.Dataset, or an (x, y) tuple of arrays"
    )
