"""The versions the winner trained with (each trial's record keeps them: `versions` in metrics.json)
against those installed now.

A version is no part of a trial's settings: upgrading Keras, a backend or NumPy retrains nothing,
and a finished trial keeps the result its versions gave (in the last digits they can differ from
what the new ones would give). So that no one takes a winner's record for what the installed
versions give, the end of a run and `kerasgrid.load_best_model` say where the winner's versions
differ from the installed ones. Read from the packages' metadata: nothing is imported, so the
Snakemake process never loads TensorFlow, Keras or JAX.
"""

import importlib.metadata
import platform

# The names compared, as kerasgrid.trial.training.versions() records them (a record's other entries, such
# as a setting, are not versions of anything installed).
COMPARED = ("kerasgrid", "python", "keras", "tensorflow", "jax", "jaxlib", "torch", "numpy")

# The distributions that can provide a recorded name (the first installed wins): TensorFlow's CPU-only
# and macOS builds record themselves as tensorflow.
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")}


class VersionsDiffer(UserWarning):
    """The winner `kerasgrid.load_best_model` loads trained with other versions than the installed ones."""


def installed(name: str) -> str | None:
    """The version of `name` (as `versions` in a trial's record names it) installed now; None if none is."""
    if name == "python":
        return platform.python_version()
    if name == "kerasgrid":
        import kerasgrid

        return kerasgrid.__version__
    for distribution in DISTRIBUTIONS.get(name, (name,)):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def differences(recorded: dict | None) -> dict[str, tuple[str, str | None]]:
    """name -> (recorded, installed now) for every recorded version that differs from the installed one."""
    found = {}
    for name, version in sorted((recorded or {}).items()):
        if name not in COMPARED:
            continue
        now = installed(name)
        if now != version:
            found[name] = (version, now)
    return found


def warning(recorded: dict | None, trial_id: str) -> str | None:
    """One paragraph saying how the versions trial `trial_id` trained with differ from the installed
    ones, and what that means; None where they do not."""
    differ = differences(recorded)
    if not differ:
        return None
    was = ", ".join(f"{name} {old}" for name, (old, _) in differ.items())
    now = ", ".join(f"{name} {new or '(not installed)'}" for name, (_, new) in differ.items())
    return (f"Note: the winner, trial {trial_id}, trained with {was}; installed now: {now}. A finished trial "
            "is not trained again when versions change, so its result is what its own versions gave "
            "(results/trials/<id>/metrics.json records them, for every trial). To train every trial with the "
            "installed versions, run snakemake again with --forceall.")
