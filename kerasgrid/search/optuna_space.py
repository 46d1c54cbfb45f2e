"""The search space in Optuna's terms: a distribution per grid key, and values to and fro.

    a list of numbers         IntDistribution over the index of the numbers sorted: TPE's Parzen
                              estimator then learns from a value's neighbours, as for a range
                              (KerasTuner's Choice is ordered for numbers too); exactly the
                              values listed are given back
    any other list            CategoricalDistribution of their canonical JSON (any YAML value,
                              lists included; the order they are written in does not matter)
    a range with num, or a    IntDistribution over the index of its values: their order and even
    float range with step     spacing (linear or log) kept, and exactly the values listed given back
    an integer range          IntDistribution(low, high, step), log-scaled with log: true
    a continuous float range  FloatDistribution(low, high, log), the proposal rounded as a random
                              draw is (kerasgrid.sweep.space), so that it names a trial well

A choice (`choose`) is asked as Optuna's define-by-run asks it: its key as a
CategoricalDistribution of the branch names, then the chosen branch's keys only. A branch's key
is named in the study by its branch path, `optimizer=sgd/lr`, so that `lr` of two branches, with
other values or distributions, are two params of the study (one would clash: Optuna requires one
distribution per name); a key outside any branch keeps its own name, so a space without a
choice is the study it always was.

An Optuna study only ever holds values that `to_optuna` made from a trial's params, so a rebuilt
study is told exactly what the model received. Imported only where proposals are computed.
"""

import json

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from kerasgrid.search.base import Observation
from kerasgrid.sweep.space import Branches, Choice, Dimension, Range
from kerasgrid.sweep.grid import canonical


def _indexed(dim: Dimension) -> bool:
    if isinstance(dim, Choice):
        return len(dim.values) > 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in dim.values)
    return dim.num is not None or (dim.step is not None and not dim.integer)


def _indexed_values(dim: Dimension) -> list:
    """The values an index stands for: a list's numbers sorted, a range's values in order."""
    return sorted(dim.values) if isinstance(dim, Choice) else dim.finite_values()


def distribution(dim: Dimension) -> BaseDistribution:
    if _indexed(dim):
        return IntDistribution(0, len(dim.finite_values()) - 1)
    if isinstance(dim, Choice):
        return CategoricalDistribution(sorted(canonical(value) for value in dim.values))
    if dim.integer:
        step = int(dim.step or 1)
        # The last value the step reaches: Optuna warns about (and moves) a high it does not reach.
        high = int(dim.low) + step * ((int(dim.high) - int(dim.low)) // step)
        return IntDistribution(int(dim.low), high, step=step, log=dim.log)
    return FloatDistribution(float(dim.low), float(dim.high), log=dim.log)


def distributions(space: dict[str, Dimension]) -> dict[str, BaseDistribution]:
    """The distribution of each key of the space's top level (a choice's: of its branch names)."""
    return {key: _choice(dim) if isinstance(dim, Branches) else distribution(dim) for key, dim in space.items()}


def _choice(dim: Branches) -> CategoricalDistribution:
    return CategoricalDistribution(dim.names())


def _walk(space: dict, params: dict, prefix: str = ""):
    """(study name, dimension, value) of each key the params hold, a choice's branch's keys
    right after its key: the order define-by-run asks them in."""
    for key, dim in space.items():
        yield prefix + key, dim, params[key]
        if isinstance(dim, Branches):
            yield from _walk(dim.branches[params[key]], params, f"{prefix}{key}={params[key]}/")


def trial_distributions(space: dict[str, Dimension], params: dict) -> dict[str, BaseDistribution]:
    """The distribution of each param of a trial, by its name in the study."""
    return {name: _choice(dim) if isinstance(dim, Branches) else distribution(dim) for name, dim, _ in _walk(space, params)}


def to_optuna(space: dict[str, Dimension], params: dict) -> dict:
    """A trial's params as Optuna's distributions hold them, by their names in the study."""
    converted = {}
    for name, dim, value in _walk(space, params):
        if isinstance(dim, Branches):
            converted[name] = value
        elif _indexed(dim):
            converted[name] = _indexed_values(dim).index(value)
        elif isinstance(dim, Choice):
            converted[name] = canonical(value)
        else:
            converted[name] = value
    return converted


def from_optuna(space: dict[str, Dimension], suggested: dict, prefix: str = "") -> dict:
    """The params a model receives for what Optuna suggested, {study name: value}."""
    params = {}
    for key, dim in space.items():
        value = suggested[prefix + key]
        if isinstance(dim, Branches):
            params[key] = value
            params.update(from_optuna(dim.branches[value], suggested, f"{prefix}{key}={value}/"))
        else:
            params[key] = _from_optuna(dim, value)
    return dict(sorted(params.items()))


def _from_optuna(dim: Dimension, value):
    """The value a model receives for what Optuna suggested (see the module's table)."""
    if _indexed(dim):
        return _indexed_values(dim)[value]
    if isinstance(dim, Choice):
        return json.loads(value)
    return dim.value(value)


def optuna_directions(direction: str | tuple[str, ...]) -> list[str]:
    """Optuna's name of each objective's direction: one for a str, one per objective for a tuple."""
    return ["minimize" if d == "min" else "maximize" for d in ([direction] if isinstance(direction, str) else direction)]


def rebuild_study(
    space: dict[str, Dimension], history: list[Observation], direction: str | tuple[str, ...], sampler,
    system_attrs: list[dict] | None = None,
) -> optuna.Study:
    """An in-memory study that holds the history, in its order: ok trials complete with their
    objective, failed and diverged ones as FAIL (as Optuna records a trial whose objective raised
    or was NaN). With several directions, ok trials complete with every objective's value
    (`Observation.values`); an observation's `constraints` become the trial's constraint values
    (keys "0", "1", ...), which Optuna's TPE and NSGA-II read. `system_attrs`, one per
    observation, restores what a sampler keeps in its trials (NSGA-II's generation)."""
    directions = optuna_directions(direction)
    if len(directions) == 1:
        study = optuna.create_study(direction=directions[0], sampler=sampler)
    else:
        study = optuna.create_study(directions=directions, sampler=sampler)
    for number, observation in enumerate(history):
        ok = observation.value is not None
        study.add_trial(create_trial(
            params=to_optuna(space, observation.params),
            distributions=trial_distributions(space, observation.params),
            value=observation.value if len(directions) == 1 else None,
            values=list(observation.values) if len(directions) > 1 and ok else None,
            state=TrialState.COMPLETE if ok else TrialState.FAIL,
            user_attrs={"trial_id": observation.trial_id},
            system_attrs=system_attrs[number] if system_attrs else None,
            constraints={str(i): value for i, value in enumerate(observation.constraints)} or None,
        ))
    return study


def ask(study: optuna.Study, space: dict[str, Dimension]) -> dict:
    """The sampler's next suggestion, as params, asked define-by-run (a chosen branch's keys
    after its choice); the Optuna trial stays running."""
    trial = study.ask()

    def visit(level: dict, prefix: str) -> None:
        for key, dim in level.items():
            if isinstance(dim, Branches):
                branch = trial.suggest_categorical(prefix + key, dim.names())
                visit(dim.branches[branch], f"{prefix}{key}={branch}/")
            else:
                _suggest(trial, prefix + key, distribution(dim))

    visit(space, "")
    return from_optuna(space, trial.params)


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution):
    """Optuna's public suggest_* for a distribution: the same distribution, so the same value
    as `study.ask(distributions)` would give a space without a choice."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
