"""What a batch is made of: `(x, y)` or `(x, y, sample_weight)`, each part an array or a dict (or
tuple) of arrays; and its `Spec`, the shapes and dtypes Keras builds a model for. Plain NumPy: no
framework is needed to take a batch apart."""

import numpy as np

from kerasgrid.errors import DataError


class Spec:
    """One array of a batch as Keras builds for it: its shape with the batch dimension left open
    (None: a source's last batch may be smaller), and its dtype's name as Keras spells it
    ('float32', 'int64', 'string' for text of any length). Keras reads `.shape` and `.dtype`
    (Trainer._symbolic_build), as it reads a tf.TensorSpec's."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype):
        dtype = np.dtype(dtype) if not isinstance(dtype, str) or dtype != "string" else dtype
        self.shape = tuple(shape)
        self.dtype = "string" if dtype == "string" or dtype.kind in "SU" else dtype.name

    def __eq__(self, other):
        return isinstance(other, Spec) and (self.shape, self.dtype) == (other.shape, other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __repr__(self):
        return f"Spec(shape={self.shape}, dtype={self.dtype})"


def as_tuple(element):
    # Keras reads an (x, y) pair from a tuple; a generator may yield a list.
    return tuple(element) if isinstance(element, list) else element


def map_structure(fn, structure):
    """`structure` (tuples, lists and dicts of leaves) with `fn` applied to each leaf."""
    if isinstance(structure, dict):
        return {key: map_structure(fn, value) for key, value in structure.items()}
    if isinstance(structure, (tuple, list)):
        return type(structure)(map_structure(fn, value) for value in structure)
    return fn(structure)


def flatten(structure) -> list:
    """The leaves of `structure`, dicts in the order of their sorted keys (as tf.nest and keras.tree)."""
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in flatten(structure[key])]
    if isinstance(structure, (tuple, list)):
        return [leaf for value in structure for leaf in flatten(value)]
    return [structure]


def _spec(array) -> Spec:
    array = np.asarray(array)
    if array.dtype == object:
        raise DataError(f"a batch holds a numpy array of Python objects (shape {array.shape}); "
                        "yield numeric or string arrays")
    return Spec((None,) + array.shape[1:] if array.ndim else (), array.dtype)


def infer_signature(batch):
    """The Spec of each array of `batch`, in its structure: its dtypes and shapes bar the batch size."""
    return map_structure(_spec, as_tuple(batch))


def rank(spec) -> int | None:
    """The number of dimensions of a Spec or tf.TensorSpec; None where unknown."""
    try:
        return len(spec.shape)
    except (TypeError, ValueError):  # a TensorShape of unknown rank
        return None
