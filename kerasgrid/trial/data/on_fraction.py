"""Training on a fraction of what the data callable returns (config key data.fraction)."""

from kerasgrid import fraction as fractions
from kerasgrid.errors import ConfigError, DataError
from kerasgrid.trial.data.calling import call_data_fn, takes_fraction, whole_arrays
from kerasgrid.trial.data.sources import training_batches


def fraction_batches(fn, params: dict, fraction: float, *, draw_seed: int, batch_size: int, seed: int,
                     name: str = "data", source: str = "the config") -> tuple:
    """The training batches (kerasgrid.trial.data.sources) of a `fraction` of what `fn` gives, and
    the record of what that fraction holds (kerasgrid.fraction.describe: examples kept and in all,
    class shares, warnings).

    Whole arrays are drawn from here, by `draw_seed`; a callable with a `fraction` parameter receives
    the fraction and draws it itself (recorded if it uses kerasgrid.fraction.indices). Anything
    else cannot be cut from outside: ConfigError, naming `source` (the config) and the fix.
    """
    size = {"batch_size": params.get("batch_size", batch_size), "seed": seed, "name": name}
    if takes_fraction(fn):
        fractions.start_recording()
        try:
            data = call_data_fn(fn, params, fraction)
            # A generator runs its body, and so its draw, when its first batch is peeked at.
            batches = training_batches(data, lambda: call_data_fn(fn, params, fraction), **size)
        finally:
            draws = fractions.stop_recording()
        examples = fractions.length(data[:2]) if whole_arrays(data) else None
        return batches, draws[0] if draws else fractions.unmeasured(fraction, "the data callable", examples)
    data = call_data_fn(fn, params)
    if not whole_arrays(data):
        if fraction == 1:  # all of it: nothing to cut
            return training_batches(data, lambda: call_data_fn(fn, params), **size), fractions.unmeasured(fraction, None)
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
    return training_batches(arrays, None, **size), record
