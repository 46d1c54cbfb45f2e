"""The sweep a config describes, and one-paragraph errors for configs that describe none."""

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from kerasgrid import refs
from kerasgrid.errors import ConfigError
from kerasgrid.grid import canonical, count_trials, expand_grid

# Bumped when a change to kerasgrid changes what a finished trial would compute, so that exactly
# then every trial reruns; edits that change no result (comments, refactors) rerun nothing.
TRAINING_VERSION = 1


def load_schema(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def explain(config: dict, schema: dict, source: str) -> str | None:
    """The first schema violation as a paragraph naming the file, the key and the fix, or None."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    path = [str(part) for part in error.absolute_path]
    key = ".".join(path) or "the top level"
    subschema = error.schema
    hint = subschema.get("description", "")
    kind = error.validator
    if kind == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        where = ".".join(path + [missing])
        hint = subschema["properties"][missing].get("description", "")
        problem = f"the required key '{where}' is missing"
        fix = f"Add it: {hint}"
    elif kind == "additionalProperties" and "properties" in subschema:
        known = list(subschema["properties"])
        unknown = [name for name in error.instance if name not in known]
        name = str(unknown[0])
        close = difflib.get_close_matches(name, known, n=1)
        where = ".".join(path + [name])
        problem = f"'{where}' is not a key kerasgrid knows" + (
            f" (did you mean '{close[0]}'?)" if close else ""
        )
        fix = f"Remove or rename it; the keys allowed {'in ' + key if path else 'here'} are: {', '.join(known)}."
    elif kind in ("type", "minItems") and path[:1] == ["grid"] and len(path) == 2:
        value = json.dumps(error.instance)
        problem = f"grid.{path[1]} is {value}, but every grid value must be a non-empty list"
        example = error.instance if kind == "type" else "value"
        fix = f"Write the values to try as a list, e.g. {path[1]}: [{example}]."
    elif kind == "minProperties" and path == ["grid"]:
        problem = "grid is empty"
        fix = f"Give at least one hyperparameter. {hint}"
    else:
        problem = f"{key} is {json.dumps(error.instance)}, which is wrong: {error.message}"
        fix = hint
    return f"{source}: {problem}. {fix}".strip()


def check(config: dict, schema: dict, source: str) -> None:
    """Raise ConfigError with `explain`'s paragraph if `config` breaks `schema`."""
    message = explain(config, schema, source)
    if message:
        raise ConfigError(message)


@dataclass(frozen=True)
class Sweep:
    """A validated config: what every trial trains with, and the trials themselves."""

    source: str
    model: refs.Ref
    train: refs.Ref
    validation: refs.Ref | None
    budget: dict
    objective: dict
    seed: int
    grid_keys: list[str]
    trials: dict[str, dict] = field(repr=False)
    code_files: list[str] = field(default_factory=list)
    # What to keep, not what to compute: not among the settings, so flipping it retrains nothing.
    keep_models: bool = False
    # {strategy, cpu_devices}, or None to train on one device (what every config did before).
    distribute: dict | None = None

    def settings(self) -> dict:
        """Everything a trial's result depends on besides its params (the objective is not).

        Keys sorted at every level, so that its repr (what Snakemake compares) is canonical.
        """
        settings = {
            "model": self.model.text,
            "train": self.train.text,
            "validation": self.validation.text if self.validation else None,
            "budget": self.budget,
            "seed": self.seed,
            "training_version": TRAINING_VERSION,
        }
        # Only when set, so that configs without it keep their trials (settings are a rerun trigger).
        if self.distribute:
            settings["distribute"] = self.distribute
        return json.loads(canonical(settings))


def sweep_from_config(config: dict, source: str) -> Sweep:
    """The Sweep of a schema-valid config with defaults filled in; ConfigError if it has none."""
    model = refs.parse_ref(config["model"], "model", source)
    train = refs.parse_ref(config["data"]["train"], "data.train", source)
    val_text = config["data"].get("validation")
    validation = refs.parse_ref(val_text, "data.validation", source) if val_text else None
    code_files = []
    for ref in (model, train, validation):
        path = ref and refs.source_file(ref)
        if path is not None and str(path) not in code_files:
            code_files.append(str(path))

    objective = dict(config["objective"])
    if objective.get("metric") is None:
        objective["metric"] = "val_loss" if validation else "loss"
    elif objective["metric"].startswith("val_") and not validation:
        raise ConfigError(
            f"{source}: objective.metric is '{objective['metric']}', a validation metric, but "
            "data.validation is not set, so no trial logs it. Set data.validation to a data "
            "callable, or rank on a training metric such as objective.metric: loss."
        )

    n_trials = count_trials(config["grid"])
    if n_trials > config["max_trials"]:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in config["grid"].items())
        raise ConfigError(
            f"{source}: grid expands to {n_trials:,} trials ({sizes}), more than max_trials "
            f"({config['max_trials']:,}). Shrink the grid, sample it (keep fewer values per "
            "key, or run several smaller sweeps), or raise max_trials if you mean it."
        )
    return Sweep(
        source=source,
        model=model,
        train=train,
        validation=validation,
        budget=dict(config["budget"]),
        objective=objective,
        seed=config["seed"],
        grid_keys=[str(key) for key in config["grid"]],
        trials=expand_grid(config["grid"]),
        code_files=code_files,
        keep_models=config.get("keep_models", False),
        distribute=_distribute(config.get("distribute") or {}),
    )


def _distribute(distribute: dict) -> dict | None:
    # strategy none trains on one device, as a config without the key does: the same settings.
    if distribute.get("strategy", "none") == "none":
        return None
    return {"strategy": distribute["strategy"], "cpu_devices": distribute.get("cpu_devices", 1)}


def config_source(configfiles) -> str:
    """How to name the user's config in messages: the file(s) given, or the default config.yaml."""
    names = [str(Path(f)) for f in configfiles] or ["config.yaml"]
    return " + ".join(names)
