"""The sweep a config describes, and one-paragraph errors for configs that describe none."""

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from kerasgrid import refs, repeats, runs, search
from kerasgrid.confirm import Confirm
from kerasgrid.errors import ConfigError
from kerasgrid.grid import canonical

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
    elif path[:1] == ["grid"] and len(path) >= 2:
        value = json.dumps(config["grid"][path[1]], default=str)
        problem = f"grid.{path[1]} is {value}, but every grid value must be a non-empty list or a range"
        instance = config["grid"][path[1]]
        example = instance if not isinstance(instance, (list, dict)) else "value"
        fix = (f"Write the values to try as a list, e.g. {path[1]}: [{example}], or a numeric range, e.g. "
               f"{path[1]}: {{low: 1, high: 10}} (with step, num or log: true as needed).")
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
    strategy: str = "grid"
    # The epochs at which each rung ends: [budget.epochs] without halving.
    rungs: list[int] = field(default_factory=list)
    schedule: search.FullBudget | search.Halving = search.FullBudget()
    # data.fraction: the share of the training data that tuning runs train on (1: all of it).
    fraction: float = 1
    repeats: int = 1
    # The finalists' confirmation, or None without `confirm`.
    confirm: Confirm | None = None

    @property
    def halving(self) -> bool:
        return len(self.rungs) > 1

    @property
    def seeds(self) -> list[int]:
        """The seed of each run of a combination: seed, then seed+1, ... with repeats."""
        return repeats.seeds(self.seed, self.repeats)

    def plan(self) -> dict:
        """How the candidates are found and trained: results/search.json. With confirm and repeats,
        those too: a leaderboard that waits on a checkpoint (finalists, promotions) must be redone
        when they change."""
        plan = {"strategy": self.strategy, "rungs": self.rungs}
        if self.halving:
            plan["halving"] = {"eta": self.schedule.eta, "min_epochs": self.schedule.min_epochs}
        if self.confirm:
            plan["confirm"] = {"top": self.confirm.top, "budget": self.confirm.budget}
        if self.repeats > 1:
            plan["repeats"] = self.repeats
        return plan

    def settings(self, seed: int | None = None) -> dict:
        """Everything a tuning run's result depends on besides its params (the objective is not):
        the run with the config's seed, or with `seed` (repeats).

        Keys sorted at every level, so that its repr (what Snakemake compares) is canonical. A config
        without fraction or repeats gives exactly the settings it gave before they existed.
        """
        budget, drawn = dict(self.budget), {}
        if self.fraction < 1:
            budget["steps_per_epoch"] = runs.fraction_steps(budget["steps_per_epoch"], self.fraction)
            drawn = {"fraction": self.fraction, "draw_seed": self.seed}
        return self._settings(budget, seed, drawn)

    def confirm_settings(self, seed: int | None = None) -> dict:
        """The settings of a finalist's confirmation: all the data, the budget with confirm.budget."""
        drawn = {"fraction": 1.0, "draw_seed": self.seed} if self.fraction < 1 else {}
        return self._settings({**self.budget, **self.confirm.budget}, seed, drawn)

    def winner_settings(self) -> dict:
        """What the winner's run (with the config's seed) trained with: its confirmation's with confirm."""
        return self.confirm_settings() if self.confirm else self.settings()

    def _settings(self, budget: dict, seed: int | None, drawn: dict) -> dict:
        return json.loads(canonical({
            "model": self.model.text,
            "train": self.train.text,
            "validation": self.validation.text if self.validation else None,
            "budget": budget,
            "seed": self.seed if seed is None else seed,
            "training_version": TRAINING_VERSION,
            **drawn,
        }))


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

    space = search.parse_space(config["grid"], source)
    sampler = _sampler(config["search"], space, config["max_trials"], source)
    try:
        trials = sampler.candidates(space, config["seed"])
    except search.SpaceTooSmall as exc:
        raise ConfigError(
            f"{source}: search.trials is {sampler.trials}, but {exc}. Lower search.trials, widen the grid's "
            "values or ranges, or use search.strategy: grid to train every combination."
        ) from None
    schedule = _schedule(config["search"], config["budget"], source)
    fraction = config["data"].get("fraction", 1)
    confirmation = _confirm(config, len(trials), source)
    return Sweep(
        source=source,
        model=model,
        train=train,
        validation=validation,
        budget=dict(config["budget"]),
        objective=objective,
        seed=config["seed"],
        grid_keys=[str(key) for key in config["grid"]],
        trials=trials,
        code_files=code_files,
        keep_models=config.get("keep_models", False),
        strategy=sampler.name,
        rungs=schedule.rungs(config["budget"]["epochs"]),
        schedule=schedule,
        fraction=fraction,
        repeats=config.get("repeats", 1),
        confirm=confirmation,
    )


def _confirm(config: dict, candidates: int, source: str) -> Confirm | None:
    """The confirmation `confirm` asks for, checked against the candidates and the tuning."""
    settings = config.get("confirm")
    if settings is None:
        return None
    confirmation = Confirm(top=settings.get("top", 5), budget=dict(settings.get("budget") or {}))
    if confirmation.top >= candidates:
        raise ConfigError(
            f"{source}: confirm.top is {confirmation.top}, but the sweep has {candidates} candidates, so every one "
            "would be confirmed: that is tuning on all the data, with the tuning run first for nothing. Lower "
            f"confirm.top below {candidates}, or remove confirm and data.fraction to tune on all the data."
        )
    budget = config["budget"]
    if config["data"].get("fraction", 1) == 1 and {**budget, **confirmation.budget} == budget:
        raise ConfigError(
            f"{source}: confirm is set, but data.fraction is 1 and confirm.budget changes nothing, so each "
            "finalist would train again exactly as it was tuned, to the same result. Tune on a part of the "
            "data (e.g. data.fraction: 0.1), or give the confirmation a bigger budget (e.g. confirm: "
            "{top: 5, budget: {epochs: 30}}), or remove confirm."
        )
    return confirmation


def _sampler(settings: dict, space: dict, max_trials: int, source: str):
    """The sampler that `search` names, checked against the space and max_trials."""
    strategy, trials = settings["strategy"], settings.get("trials")
    if strategy == "grid":
        continuous = search.continuous_keys(space)
        if continuous:
            key = continuous[0]
            raise ConfigError(
                f"{source}: grid.{key} is a continuous range, which a grid search cannot enumerate. Give "
                f"it a step or num (e.g. grid.{key}: {{low: ..., high: ..., num: 5}}), or sample the space "
                "with search: {strategy: random, trials: N}."
            )
        if trials is not None:
            raise ConfigError(
                f"{source}: search.trials is {trials}, but a grid search trains every combination, so it "
                "takes no count. Remove search.trials, or set search.strategy: random to draw that many."
            )
        count = search.size(space)
        if count > max_trials:
            sizes = " x ".join(f"{len(dim.finite_values())} {key}" for key, dim in space.items())
            raise ConfigError(
                f"{source}: grid expands to {count:,} trials ({sizes}), more than max_trials "
                f"({max_trials:,}). Shrink the grid, sample it (search: {{strategy: random, trials: N}}, "
                "with halving: {eta: 3} to stop poor trials early), or raise max_trials if you mean it."
            )
        return search.GridSampler()
    if trials is None:
        raise ConfigError(
            f"{source}: search.strategy is random, but search.trials is not set. Say how many "
            "combinations to draw, e.g. search: {strategy: random, trials: 60}."
        )
    if trials > max_trials:
        raise ConfigError(
            f"{source}: search.trials is {trials:,}, more than max_trials ({max_trials:,}). Lower "
            "search.trials, or raise max_trials if you mean it."
        )
    return search.RandomSampler(trials)


def _schedule(settings: dict, budget: dict, source: str):
    """Halving if `search.halving` asks for it (checked against the budget), else the full budget."""
    halving = settings.get("halving")
    if halving is None:
        return search.FullBudget()
    schedule = search.Halving(eta=halving["eta"], min_epochs=halving["min_epochs"])
    if schedule.min_epochs >= budget["epochs"]:
        raise ConfigError(
            f"{source}: search.halving.min_epochs is {schedule.min_epochs}, but budget.epochs is "
            f"{budget['epochs']}, so there is no rung before the last and nothing to halve. Lower "
            "search.halving.min_epochs (1 is usual), raise budget.epochs, or remove search.halving."
        )
    return schedule


def config_source(configfiles) -> str:
    """How to name the user's config in messages: the file(s) given, or the default config.yaml."""
    names = [str(Path(f)) for f in configfiles] or ["config.yaml"]
    return " + ".join(names)
