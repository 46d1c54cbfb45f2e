"""A trial's training state on disk, so that a later rung continues it exactly where it stopped.

What training after epoch k depends on, and where it is kept:
- every variable of the model (weights, and the states of its `keras.random.SeedGenerator`s,
  which Dropout and noise layers draw from and which `load_model` would not restore) and every
  variable of its optimizer (moments, iteration count): `state.npz`, in Keras' own order;
- the data streams' position: not stored; the resumed trial rebuilds its datasets and skips the
  batches already used (`epochs x steps`), as the seeded pipelines replay them identically;
- the history so far (exact floats), and the state of the user's callbacks (what training changed
  of them: kerasgrid.trial.callbacks): `state.json`, written last, so that its presence means the
  state is whole.

The model is rebuilt by the user's function and the variables are assigned once Keras has built
the model and its optimizer (the start of `fit`), which works for Sequential, functional and
subclassed models alike: no `get_config` is needed.
"""

import io
from pathlib import Path

from kerasgrid import records

STATE = "state.npz"
META = "state.json"


def _variables(model) -> list:
    return list(model.variables) + list(model.optimizer.variables)


def pack(variables) -> bytes:
    """The values of `variables`, in their order, as the bytes of an .npz file (`unpack` reads them)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, *[np.asarray(v.numpy()) for v in variables])
    return buffer.getvalue()


def unpack(file) -> list:
    """The arrays of an .npz file that `pack` wrote (a path, or a file object), in their order."""
    import numpy as np

    with np.load(file) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def save_state(model, directory, *, epochs: int, history: dict, callbacks: list | None = None) -> None:
    """Write the state of `model` (trained for `epochs` epochs, with `history`) to `directory`;
    with `callbacks`, the user's callbacks' state (kerasgrid.trial.callbacks)."""
    directory = Path(directory)
    variables = _variables(model)
    records.write_bytes(directory / STATE, pack(variables))
    records.write_json(directory / META, {
        "epochs": epochs,
        "history": {name: [float(v) for v in values] for name, values in history.items()},
        "shapes": [list(v.shape) for v in variables],
        **({"callbacks": callbacks} if callbacks is not None else {}),
    })


def load_state(directory) -> dict | None:
    """The state saved in `directory` ({epochs, history, shapes, arrays}), or None if there is none."""
    directory = Path(directory)
    try:
        meta = records.read_json(directory / META)
        meta["arrays"] = unpack(directory / STATE)
    except (OSError, ValueError, KeyError):
        return None
    return meta


def restore_callback(state: dict, element_spec):
    """A Keras callback that assigns `state`'s variables when `fit` starts.

    `element_spec`: the training dataset's, to build what Keras would otherwise build at the first
    step (a subclassed model's layers, the optimizer's slots) symbolically, reading no data.
    """
    import keras

    class RestoreState(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            assign(self.model, state, element_spec)

    return RestoreState()


def assign(model, state: dict, element_spec) -> None:
    """Give the compiled `model` the variables of `state`, building first what is not built yet
    (symbolically, from the training data's `element_spec`: no data is read). ResumeMismatch if
    the model has other variables than the state."""
    build(model, element_spec)
    variables = _variables(model)
    shapes = [list(v.shape) for v in variables]
    if shapes != state["shapes"]:
        raise ResumeMismatch(
            f"the model built now has {len(shapes)} variables of other shapes than the "
            f"{len(state['shapes'])} saved after epoch {state['epochs']}"
        )
    for variable, value in zip(variables, state["arrays"]):
        variable.assign(value)


def build(model, element_spec) -> None:
    """Build what Keras builds at the first training step, symbolically from the training data's
    `element_spec` (no data is read): a subclassed model's layers, the compiled metrics and loss,
    the optimizer's slots. Keras does this itself only under a distribution strategy; otherwise
    they are created while `tf.function` traces the first step, and a function that creates
    variables is traced twice. Built first, the train step is traced once, a third of `fit`'s
    fixed cost; the variables and every result are the same."""
    model._symbolic_build(data_batch=element_spec)


class ResumeMismatch(Exception):
    """The saved state does not fit the model the user's function builds now."""


def remove_state(directory) -> None:
    """Remove a saved state (its marker first, so that a half-removed state is never read)."""
    directory = Path(directory)
    for name in (META, STATE):
        (directory / name).unlink(missing_ok=True)
