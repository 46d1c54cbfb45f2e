"""What `kerasgrid check` builds before anything trains: the model of each branch of the space
(kerasgrid.sweep.space.representatives: the grid's first combination where there is no choice),
made by the user's function and built from the shapes of the training data's first batch, as a
trial builds it before `fit` (training._build_before_fit). No weight is trained.

A misspelt key (params["mometum"]), a string where Keras wants a number (units: ["8", 32]) or a
model that does not fit its data would fail every trial of that combination, each after its own
start-up; here it fails once, before the sweep, with one paragraph naming the combination, the
exception and the user's line. Imports TensorFlow: `kerasgrid check --no-build` skips this.
"""

import json

from kerasgrid.errors import ConfigError, user_line
from kerasgrid.sweep import refs
from kerasgrid.sweep.space import Branches, dimensions, representatives
from kerasgrid.trial.reasons import ANSI

SKIP = "or run `kerasgrid check --no-build` to skip building"


def build_each_branch(sweep) -> list[tuple[str, str]]:
    """Build the model of each branch of `sweep` (a kerasgrid.config.Sweep) on its training data's
    first batch: the (topic, text) `kerasgrid check` prints, or a ConfigError naming the
    combination, the exception, the user's file and line, and the fix."""
    import keras

    from kerasgrid.trial import data, resume, training  # Keras

    combinations = representatives(sweep.space)
    settings = sweep.settings()
    spec, first_batch = _first_batch(sweep, settings, combinations[0], data)
    build = refs.load(sweep.model)  # imported already by check: the module is cached
    for params in combinations:
        keras.backend.clear_session()  # each model's variables go with it
        try:
            _build(build, params, spec, first_batch, training, resume)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the user's code raises, said in one paragraph
            raise _failed(sweep, f"building the model of {_params(params)}", exc, sweep.model) from exc
    keras.backend.clear_session()
    choices = [key for key, dims in dimensions(sweep.space).items() if any(isinstance(d, Branches) for d in dims)]
    which = "the first combination's model"
    if len(combinations) > 1:
        labels = ("; ".join(", ".join(f"{key}={params[key]}" for key in choices if key in params)
                            for params in combinations))
        which = f"{len(combinations)} models, one per branch ({labels})"
    return [("build", f"{which} built from the first batch of {sweep.train.key} ({_shapes(spec)}); "
                      "none trained")]


def _build(build, params: dict, spec, first_batch, training, resume) -> None:
    """As a trial builds its model before `fit`: symbolically from the data's `spec`. A model that
    cannot be built so is built by `fit` at its first step, on data: here by evaluating the first
    batch, which updates no weight."""
    model = training.build_model(build, params)
    if not model.run_eagerly:
        try:
            resume.build(model, spec)
            return
        except Exception:  # noqa: BLE001 - fit would build it on data instead: so does the check
            pass
    model.test_on_batch(*first_batch())


def _first_batch(sweep, settings: dict, params: dict, data):
    """The training data's element spec (its structure, dtypes and shapes) and a function that
    gives its first batch as a tuple, read from the data function called as a trial calls it."""
    fn = refs.load(sweep.train)
    size = {"batch_size": settings["budget"]["batch_size"], "seed": settings["seed"], "name": sweep.train.key}
    try:
        if "fraction" in settings:  # data.fraction: what the tuning runs train on, as they read it
            batches, _ = data.fraction_batches(fn, params, settings["fraction"], draw_seed=settings["draw_seed"],
                                               source=sweep.source, **size)
        else:
            batches = data.train_batches(fn, params, **size)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's data function, in one paragraph
        raise _failed(sweep, f"reading the first batch of {sweep.train.key} with {_params(params)}", exc,
                      sweep.train) from exc

    def first_batch() -> tuple:
        batch = batches.first()
        return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)

    return batches.spec, first_batch


def _failed(sweep, doing: str, exc: BaseException, ref) -> ConfigError:
    where = user_line(exc)
    at = f" (line {where[1]} of {where[0]})" if where else ""
    fix = f"Fix {where[0]} line {where[1]}" if where else f"Fix {ref.text}, the config's {ref.key}"
    message = " ".join(ANSI.sub("", str(exc)).split()) or "(no message)"  # Keras bolds parts of its messages
    return ConfigError(
        f"{sweep.source}: {doing} raised {type(exc).__name__}: {message}{at}. Its trials would fail with the same "
        f"error. {fix}, {SKIP}."
    )


def _params(params: dict) -> str:
    return f"the combination {json.dumps(params, sort_keys=True, default=str)}"


def _shapes(spec) -> str:
    """The batch's parts as the model sees them: x (None, 64) float32, y (None,) int64."""
    parts = spec if isinstance(spec, tuple) else (spec,)
    return ", ".join(f"{name} {_shape(part)}" for name, part in zip(("x", "y", "sample_weight"), parts))


def _shape(part) -> str:
    if isinstance(part, dict):
        return "{" + ", ".join(f"{key}: {_shape(value)}" for key, value in part.items()) + "}"
    if isinstance(part, (tuple, list)):
        return "(" + ", ".join(_shape(value) for value in part) + ")"
    return f"{tuple(part.shape)} {getattr(part.dtype, 'name', part.dtype)}"  # a Spec's, or a tf.TensorSpec's
