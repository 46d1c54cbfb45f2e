"""The sweep a config describes, and one-paragraph errors for configs that describe none."""

import copy
import dataclasses
import difflib
import importlib.util
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from kerasgrid import search
from kerasgrid.errors import ConfigError, Direction
from kerasgrid.results import pareto, repeats
from kerasgrid.results.confirm import Confirm
from kerasgrid.search import hyperband
from kerasgrid.search.rounds import round_sizes
from kerasgrid.sweep import refs, runs
from kerasgrid.sweep.grid import canonical
from kerasgrid.trial import backends

# Bumped when a change to kerasgrid changes what a finished trial would compute, so that exactly
# then every trial reruns; edits that change no result (comments, refactors) rerun nothing.
# 2: validation in order, all of it by default (issue 29). 3: whole training arrays shuffled by a
# seeded NumPy permutation per pass (the same batches on every Keras backend) instead of tf.data's
# shuffle, on TensorFlow too: each trial on whole arrays would see other batches; and predict_ms
# timed on the last validation pass (issue 31).
TRAINING_VERSION = 3


def load_schema(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def read_config(path) -> dict:
    """The config in the file `path` as Snakemake reads a configfile (JSON, else YAML with
    yaml.FullLoader: snakemake.common.configfile), or a ConfigError naming the line and column of a
    syntax error, which Snakemake's own message leaves out."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist (looked for it relative to {Path.cwd()}). Give the path of your sweep's "
            "config, relative to the folder you run from."
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not text in UTF-8 ({exc.reason} at byte {exc.start}). Save it as UTF-8.") from None
    try:
        config = json.loads(text)
    except ValueError:
        try:
            config = yaml.load(text, Loader=yaml.FullLoader)
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_error(path, text, exc)) from None
    if not isinstance(config, dict):
        what = "nothing" if config is None else json.dumps(config, default=str)[:60]
        raise ConfigError(
            f"{path} holds {what}, not keys: a sweep config is a mapping of keys to values (model: ..., data: ..., "
            "grid: ...). Write one key per line, as in the sweep.yaml that `kerasgrid init` writes."
        )
    return config


def yaml_error(path, text: str, exc: yaml.YAMLError) -> str:
    """A YAML syntax error as one paragraph: the file, the line and column, the line itself, the fix."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return f"{path} is not valid YAML: {exc}. Fix the file."
    problem = getattr(exc, "problem", None) or str(exc)
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    opened = f" ({context} that starts at line {start.line + 1}, column {start.column + 1})" if context and start else ""
    lines = text.splitlines()
    shown = lines[mark.line].rstrip() if mark.line < len(lines) else ""
    reads = f"; line {mark.line + 1} reads {shown!r}" if shown.strip() else ""
    return (
        f"{path}, line {mark.line + 1}, column {mark.column + 1} is not valid YAML: {problem}{opened}{reads}. "
        "Fix the YAML there or just before it: usually a [ or { left open, a tab in the indentation, or a value "
        "that holds ': ' or ' #', or starts with one of [ { * & ! | > ' \" % @, written without quotes."
    )


def gpus_from_command_line(config: dict) -> dict:
    """`config` with the values under `gpus` that Snakemake's --config read as text made numbers
    again, in place: it reads a nested value as text (`--config 'gpus={trials_per_gpu: 4}'` gives
    '4'), and gpus is the machine's to set there or in a profile (`config:`)."""
    gpus = config.get("gpus")
    if isinstance(gpus, dict):
        for key, value in gpus.items():
            if isinstance(value, str) and value.strip().isdigit():
                gpus[key] = int(value)
            elif isinstance(value, str) and value.strip() in ("null", "~", ""):
                gpus[key] = None
    return config


def fill_defaults(config: dict, schema: dict) -> dict:
    """`config` (schema-valid) with the schema's defaults filled in, in place, as the workflow's
    snakemake.utils.validate fills them: the recipe from jsonschema's FAQ, a default set wherever a
    `properties` keyword meets an object (those of a key's own default included). For `kerasgrid
    check`, which runs without Snakemake; tests/test_config.py holds the two to the same result."""
    base = jsonschema.validators.validator_for(schema)
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if validator.is_type(instance, "object"):
            for name, property_schema in properties.items():
                if "default" in property_schema:
                    # A copy: the schema is read once and may fill several configs.
                    instance.setdefault(name, copy.deepcopy(property_schema["default"]))
        yield from validate_properties(validator, properties, instance, subschema)

    jsonschema.validators.extend(base, {"properties": set_defaults})(schema).validate(config)
    return config


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
    elif path[:1] == ["grid"] and len(path) >= 2 and _choice_problem(config["grid"], path[1], source):
        return _choice_problem(config["grid"], path[1], source)
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


def _choice_problem(grid: dict, key: str, source: str) -> str | None:
    """The paragraph of kerasgrid.search.parse_space about a malformed choose at grid.<key>,
    which says more than the schema can (which branch, which key, the fix), or None."""
    spec = grid.get(key)
    if not (isinstance(spec, dict) and "choose" in spec):
        return None
    try:
        search.parse_space({key: spec}, source)
    except ConfigError as error:
        return str(error)
    return None


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
    # What to keep, not what to compute: not among the settings, so flipping them retrains nothing.
    keep_models: bool = False
    # {strategy, cpu_devices}, or None to train on one device (what every config did before).
    distribute: dict | None = None
    # The Keras backend every trial trains with (kerasgrid.trial.backends).
    backend: str = backends.DEFAULT
    strategy: str = "grid"
    # The epochs at which each rung ends: [budget.epochs] without halving.
    rungs: list[int] = field(default_factory=list)
    schedule: search.FullBudget | search.Halving = search.FullBudget()
    # Adaptive search: how many trials each round proposes (none otherwise; then `trials` are all
    # the candidates, while an adaptive search's come from its rounds' files).
    round_sizes: list[int] = field(default_factory=list)
    space: dict = field(default_factory=dict, repr=False)
    # data.fraction: the share of the training data that tuning runs train on (1: all of it).
    fraction: float = 1
    repeats: int = 1
    # The finalists' confirmation, or None without `confirm`.
    confirm: Confirm | None = None
    # search.seed: the seed of the draws (random) and proposals (tpe, nsga2), or None to use `seed`.
    search_seed: int | None = None
    # `mlflow`: {tracking_uri, experiment} to log to, or None to log nothing (and never import MLflow).
    # Not among the settings: logging changes no result, so setting it retrains nothing.
    mlflow: dict | None = None
    # An adaptive sampler's own settings, the arguments it is made with: {population} for NSGA-II.
    sampler_settings: dict = field(default_factory=dict)
    # The user's callbacks function, or None.
    callbacks: refs.Ref | None = None
    # With halving, Hyperband's brackets (kerasgrid.search.hyperband): grid and random deal their
    # candidates to them (`dealt`: each bracket's trial ids); an adaptive search's rounds go
    # through them in turn (`round_brackets`: each round's bracket index), sized from search.batch.
    brackets: list = field(default_factory=list)
    dealt: list[list[str]] = field(default_factory=list, repr=False)
    round_brackets: list[int] = field(default_factory=list)

    @property
    def sampler_seed(self) -> int:
        return self.seed if self.search_seed is None else self.search_seed

    @property
    def several_objectives(self) -> bool:
        """Whether the trials are ranked on several objectives, by Pareto front."""
        return len(self.objective.get("objectives") or []) > 1

    @property
    def halving(self) -> bool:
        return len(self.rungs) > 1

    @property
    def adaptive(self) -> bool:
        return bool(self.round_sizes)

    @property
    def seeds(self) -> list[int]:
        """The seed of each run of a combination: seed, then seed+1, ... with repeats."""
        return repeats.seeds(self.seed, self.repeats)

    def plan(self) -> dict:
        """How the candidates are found, trained and ranked: results/search.json. With confirm and repeats,
        those too: a leaderboard that waits on a checkpoint (finalists, promotions) must be redone
        when they change."""
        plan = {"strategy": self.strategy, "rungs": self.rungs}
        plan["objective"] = self.objective  # how the leaderboard ranks: what `kerasgrid summary` ranks by
        if self.halving:
            plan["halving"] = {"eta": self.schedule.eta, "min_epochs": self.schedule.min_epochs,
                               "brackets": [bracket.size for bracket in self.brackets]}
            if len(self.brackets) > 1 and not self.adaptive:
                plan["halving"]["deal_seed"] = self.sampler_seed  # which candidates the later brackets take
        if self.adaptive:
            plan["rounds"] = self.round_sizes  # raising search.trials adds rounds: the ranking is redone
        if self.confirm:
            plan["confirm"] = {"top": self.confirm.top, "budget": self.confirm.budget}
        if self.repeats > 1:
            plan["repeats"] = self.repeats
        if self.search_seed is not None:
            plan["search_seed"] = self.search_seed  # other candidates, trained with the same settings
        return plan
    tensorboard: bool = False
    # checkpoint.minutes: how often a trial saves its state as it trains (kerasgrid.trial.checkpoint).
    # Not among the settings: where a trial resumes changes no result, so changing it retrains nothing.
    checkpoint_minutes: float = 10
    # gpus: how many trials share a GPU, and each one's memory cap. Not among the settings either: a
    # trial's numbers do not depend on its neighbours (kerasgrid.running.workers).
    trials_per_gpu: int = 1
    gpu_memory_limit_mb: int | None = None

    def round_settings(self, index: int) -> dict:
        """What round `index` of an adaptive search proposes from besides the rounds before it:
        a change here proposes the round again. Canonical, as `settings`; `search.trials` is
        not among them, only this round's size, so raising it leaves the rounds before alone."""
        return json.loads(canonical({
            "strategy": self.strategy,
            "seed": self.sampler_seed,
            "size": self.round_sizes[index],
            "grid": search.describe_space(self.space),
            # What the sampler is told (not which trial of a front wins).
            "objective": {key: value for key, value in self.objective.items() if key != "winner"},
            # The sampler's own settings (NSGA-II's population); TPE has none, and its rounds' stay as they were.
            **({"sampler": self.sampler_settings} if self.sampler_settings else {}),
            # With halving (BOHB): the rungs, whose results the sampler is told, and this round's bracket.
            **({"rungs": self.rungs, "bracket": self.round_brackets[index]} if self.halving else {}),
        }))

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
        settings = {
            "model": self.model.text,
            "train": self.train.text,
            "validation": self.validation.text if self.validation else None,
            "budget": budget,
            "seed": self.seed if seed is None else seed,
            "training_version": TRAINING_VERSION,
            **drawn,
        }
        # Only when set, so that configs without them keep their trials (settings are a rerun trigger).
        if self.distribute:
            settings["distribute"] = self.distribute
        if self.callbacks:
            settings["callbacks"] = self.callbacks.text
        if self.backend != backends.DEFAULT:
            settings["backend"] = self.backend
        return json.loads(canonical(settings))


def _sampler_seed(config: dict) -> int:
    seed = config["search"].get("seed")
    return config["seed"] if seed is None else seed


def sweep_from_config(config: dict, source: str) -> Sweep:
    """The Sweep of a schema-valid config with defaults filled in; ConfigError if it has none."""
    model = refs.parse_ref(config["model"], "model", source)
    train = refs.parse_ref(config["data"]["train"], "data.train", source)
    val_text = config["data"].get("validation")
    validation = refs.parse_ref(val_text, "data.validation", source) if val_text else None
    callbacks = refs.parse_ref(config["callbacks"], "callbacks", source) if config.get("callbacks") else None
    code_files = []
    for ref in (model, train, validation, callbacks):
        path = ref and refs.source_file(ref)
        if path is not None and str(path) not in code_files:
            code_files.append(str(path))

    objective = _objective(config, validation is not None, source)

    space = search.parse_space(config["grid"], source)
    sampler = _sampler(config["search"], space, config["max_trials"], source)
    if config["search"]["strategy"] in search.ADAPTIVE_SAMPLERS:
        trials, sizes = {}, _round_sizes(config["search"], space, source)
    else:
        sizes = []
        try:
            trials = sampler.candidates(space, _sampler_seed(config))
        except search.SpaceTooSmall as exc:
            raise ConfigError(
                f"{source}: search.trials is {sampler.trials}, but {exc}. Lower search.trials, widen the grid's "
                "values or ranges, or use search.strategy: grid to train every combination."
            ) from None
    schedule = _schedule(config["search"], config["budget"], source)
    rungs = schedule.rungs(config["budget"]["epochs"])
    brackets, round_brackets, dealt = [], [], []
    if len(rungs) > 1 and sizes:  # adaptive: each round one bracket, bracket 0's size search.batch
        brackets = hyperband.plan(config["search"]["batch"], len(rungs), schedule.brackets, schedule.eta)
        sizes, round_brackets = hyperband.round_sizes(config["search"]["trials"], brackets)
    elif len(rungs) > 1:  # grid or random: bracket 0 takes every candidate, the later ones a share
        brackets = hyperband.plan(len(trials), len(rungs), schedule.brackets, schedule.eta)
        dealt = hyperband.deal(list(trials), brackets, _sampler_seed(config))
    fraction = config["data"].get("fraction", 1)
    backend = _backend(config, source)
    # An adaptive search's candidates are proposed round by round: search.trials of them.
    confirmation = _confirm(config, len(trials) or sum(sizes), source)
    return Sweep(
        source=source,
        model=model,
        train=train,
        validation=validation,
        budget=dict(config["budget"]),
        objective=objective,
        seed=config["seed"],
        search_seed=config["search"].get("seed"),
        # With a choose, its branches' keys too: a key of any trial is a column of the leaderboard.
        grid_keys=list(dict.fromkeys([str(key) for key in config["grid"]] + list(search.dimensions(space)))),
        trials=trials,
        code_files=code_files,
        keep_models=config.get("keep_models", False),
        distribute=_distribute(config.get("distribute") or {}),
        backend=backend,
        strategy=sampler.name,
        sampler_settings={key: value for key, value in dataclasses.asdict(sampler).items() if value is not None}
        if sampler.name in search.ADAPTIVE_SAMPLERS else {},
        rungs=rungs,
        schedule=schedule,
        brackets=brackets,
        dealt=dealt,
        round_brackets=round_brackets,
        tensorboard=config.get("tensorboard", False),
        checkpoint_minutes=(config.get("checkpoint") or {}).get("minutes", 10),
        trials_per_gpu=(config.get("gpus") or {}).get("trials_per_gpu", 1),
        gpu_memory_limit_mb=(config.get("gpus") or {}).get("memory_limit_mb"),
        round_sizes=sizes,
        space=space,
        fraction=fraction,
        repeats=config.get("repeats", 1),
        confirm=confirmation,
        callbacks=callbacks,
        mlflow=mlflow_settings(config, source),
    )


def _objective(config: dict, validation: bool, source: str) -> dict:
    """What ranks the trials (kerasgrid.results.ranking): {metric, direction} of one objective, as
    ever; with several, or with constraints, also `objectives`, `constraints` and `winner`."""
    given = config["objective"]
    listed = isinstance(given, list)
    objectives = []
    for i, item in enumerate(given if listed else [given]):
        key = f"objective[{i}].metric" if listed else "objective.metric"
        metric = item.get("metric")
        if metric is None:
            metric = "val_loss" if validation else "loss"
        elif metric.startswith("val_") and not validation:
            raise ConfigError(
                f"{source}: {key} is '{metric}', a validation metric, but data.validation is not set, "
                f"so no trial logs it. Set data.validation to a data callable, or rank on a training "
                f"metric such as {key}: loss."
            )
        if any(o["metric"] == metric for o in objectives):
            raise ConfigError(f"{source}: {key} is '{metric}', which an objective before it ranks on already. "
                              "Give each metric once.")
        objectives.append({"metric": metric, "direction": item.get("direction") or Direction.MIN.value})
    constraints = [pareto.parse_constraint(text, i, source).text for i, text in enumerate(config.get("constraints") or [])]
    winner = config.get("winner") or pareto.WINNER_RULES[0]
    if len(objectives) == 1 and not constraints:
        if winner != pareto.WINNER_RULES[0]:
            raise ConfigError(f"{source}: winner is '{winner}', but there is one objective, whose best trial wins. "
                              "Give objective a list of several, or leave winner out.")
        return dict(objectives[0])
    return {**objectives[0], "objectives": objectives, "constraints": constraints, "winner": winner}


def mlflow_settings(config: dict, source: str) -> dict | None:
    """The `mlflow` key of a config with its defaults filled in ({tracking_uri, experiment}), or
    None if it is not set.

    ConfigError if it is set but the mlflow package is not installed: said before any trial
    trains, and without importing MLflow (which takes a second and more).
    """
    settings = config.get("mlflow")
    if settings is None:
        return None
    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(
            f"{source}: mlflow is set (tracking_uri: {settings['tracking_uri']}), but the mlflow package is not "
            "installed in this Python, so no run could be logged. Install it: pip install 'kerasgrid[mlflow]' "
            "(in a checkout, .venv/bin/pip install -e '.[mlflow]'), or remove the mlflow key to train without "
            "tracking."
        )
    uri = settings["tracking_uri"]
    allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1")
    if urllib.parse.urlparse(uri).scheme in ("", "file") and not allowed:
        raise ConfigError(
            f"{source}: mlflow.tracking_uri is {uri}, a folder store, which MLflow 3 refuses (it keeps that backend "
            "in maintenance mode), so no run could be logged. Use a database store, e.g. tracking_uri: "
            "sqlite:///mlflow.db, or a tracking server (mlflow migrate-filestore moves a folder store's runs into "
            "a database); or set MLFLOW_ALLOW_FILE_STORE=true in the environment snakemake runs in."
        )
    return {"tracking_uri": uri, "experiment": settings["experiment"]}


def missing_config(folder, snakefile) -> ConfigError:
    """The error for a run given no --configfile in a folder without a config.yaml."""
    return ConfigError(
        f"no sweep to run: snakemake was given no --configfile, and {Path(folder) / 'config.yaml'} (the "
        "default) does not exist. Name your sweep's config: snakemake -s "
        f"{snakefile} --cores 4 --configfile sweep.yaml, run from the folder its paths are relative to "
        f"(a commented example: {Path(snakefile).parent / 'config.yaml'}); or name it config.yaml."
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
    strategy, trials, batch = settings["strategy"], settings.get("trials"), settings.get("batch")
    if batch is not None and strategy not in search.ADAPTIVE_SAMPLERS:
        raise ConfigError(
            f"{source}: search.batch is {batch}, but only an adaptive search (search.strategy: tpe) proposes "
            f"its trials in rounds; {strategy} search knows them all up front. Remove search.batch, or set "
            "search.strategy: tpe (or nsga2)."
        )
    population = settings.get("population")
    if population is not None and strategy != "nsga2":
        raise ConfigError(
            f"{source}: search.population is {population}, but only NSGA-II (search.strategy: nsga2) breeds "
            f"generations; {strategy} search has none. Remove search.population, or set search.strategy: nsga2."
        )
    deals = (settings.get("halving") or {}).get("brackets", 2) != 1  # Hyperband's later brackets draw from the grid
    if strategy == "grid" and settings.get("seed") is not None and not (settings.get("halving") is not None and deals):
        raise ConfigError(
            f"{source}: search.seed is {settings['seed']}, but a grid search draws nothing: it trains every "
            "combination. Remove search.seed (training is seeded by seed), or set search.strategy: random "
            "or tpe."
        )
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
            sizes = " x ".join(f"{search.size({key: dim}):,} {key}" for key, dim in space.items())
            raise ConfigError(
                f"{source}: grid expands to {count:,} trials ({sizes}), more than max_trials "
                f"({max_trials:,}). Shrink the grid, sample it (search: {{strategy: random, trials: N}}, "
                "with halving: {eta: 3} to stop poor trials early), or raise max_trials if you mean it."
            )
        return search.GridSampler()
    adaptive = strategy in search.ADAPTIVE_SAMPLERS
    example = f"{{strategy: {strategy}, trials: 60, batch: 6}}" if adaptive else "{strategy: random, trials: 60}"
    if trials is None:
        raise ConfigError(
            f"{source}: search.strategy is {strategy}, but search.trials is not set. Say how many "
            f"combinations to {'try in all' if adaptive else 'draw'}, e.g. search: {example}."
        )
    if trials > max_trials:
        raise ConfigError(
            f"{source}: search.trials is {trials:,}, more than max_trials ({max_trials:,}). Lower "
            "search.trials, or raise max_trials if you mean it."
        )
    if strategy == "nsga2":
        population = search.NSGA2Sampler.population if population is None else population
        if trials <= population:
            raise ConfigError(
                f"{source}: search.trials is {trials}, but NSGA-II's first generation is search.population "
                f"({population}) random trials, so this search would never breed one. Lower search.population "
                f"(e.g. to {max(2, trials // 3)}: three generations), or raise search.trials above it."
            )
        return search.NSGA2Sampler(population)
    if adaptive:
        return search.ADAPTIVE_SAMPLERS[strategy]()
    return search.RandomSampler(trials)


def _round_sizes(settings: dict, space: dict, source: str) -> list[int]:
    """The sizes of an adaptive search's rounds, once the search settings are checked."""
    strategy, trials, batch = settings["strategy"], settings["trials"], settings.get("batch")
    if batch is None:
        raise ConfigError(
            f"{source}: search.strategy is {strategy}, but search.batch is not set. Say how many trials each "
            f"round proposes and trains at once, e.g. search: {{strategy: {strategy}, trials: {trials}, batch: 6}}: "
            "as many as run side by side (your cores, or the cluster jobs you get at once)."
        )
    if settings.get("halving") is not None and strategy != "tpe":
        raise ConfigError(
            f"{source}: search.halving is set, but {strategy} search trains every trial it proposes for the "
            "whole budget; it does not stop trials early. Remove search.halving, or use search.strategy: tpe "
            "(which halves each round's proposals, as BOHB), random or grid with halving."
        )
    available = search.size(space)
    if available < trials:
        raise ConfigError(
            f"{source}: search.trials is {trials}, but the space holds only {int(available)} distinct "
            "combinations. Lower search.trials, widen the grid's values or ranges, or use search.strategy: "
            "grid to train every combination."
        )
    return round_sizes(trials, batch)


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
    rungs = schedule.rungs(budget["epochs"])
    brackets = halving.get("brackets")
    if brackets is not None and brackets > len(rungs):
        raise ConfigError(
            f"{source}: search.halving.brackets is {brackets}, but the rungs end at {', '.join(map(str, rungs))} "
            f"epochs, so at most {len(rungs)} brackets can start at a rung of their own (the last at the full "
            f"budget). Lower search.halving.brackets to {len(rungs)} or less, or leave it out for {len(rungs)} "
            "(Hyperband's, one per rung)."
        )
    return dataclasses.replace(schedule, brackets=hyperband.bracket_count(rungs, brackets))


def _backend(config: dict, source: str) -> str:
    """The config's backend, checked before any trial trains: installed (found, not imported), and
    able to do what the config asks of it."""
    backend = config.get("backend", backends.DEFAULT)
    backends.check_installed(backend, source)
    if backend != "tensorflow" and (config.get("distribute") or {}).get("strategy", "none") != "none":
        raise ConfigError(
            f"{source}: distribute.strategy is {config['distribute']['strategy']}, but backend is {backend}, and "
            "kerasgrid mirrors a trial across devices with TensorFlow's MirroredStrategy only. Set backend: "
            "tensorflow to mirror, or remove distribute to train each trial on one device."
        )
    if backend != "tensorflow" and config.get("tensorboard") and backends.missing("tensorflow"):
        raise ConfigError(
            f"{source}: tensorboard is true, but TensorFlow is not installed, and Keras writes TensorBoard logs "
            f"with TensorFlow's summary writer on every backend (here {backend}). Install it beside {backend}: "
            f"{backends.INSTALL['tensorflow']}; or set tensorboard: false."
        )
    return backend


def _distribute(distribute: dict) -> dict | None:
    # strategy none trains on one device, as a config without the key does: the same settings.
    if distribute.get("strategy", "none") == "none":
        return None
    return {"strategy": distribute["strategy"], "cpu_devices": distribute.get("cpu_devices", 1)}


def config_source(configfiles) -> str:
    """How to name the user's config in messages: the file(s) given, or the default config.yaml."""
    names = [str(Path(f)) for f in configfiles] or ["config.yaml"]
    return " + ".join(names)
