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
                              draw is (kerasgrid.search.space), so that it names a trial well

An Optuna study only ever holds values that `to_optuna` made from a trial's params, so a rebuilt
study is told exactly what the model received. Imported only where proposals are computed.
"""

import json

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from kerasgrid.search.base import Observation
from kerasgrid.search.space import Choice, Dimension, Range
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
    return {key: distribution(dim) for key, dim in space.items()}


def to_optuna(space: dict[str, Dimension], params: dict) -> dict:
    """A trial's params as Optuna's distributions hold them."""
    converted = {}
    for key, dim in space.items():
        value = params[key]
        if _indexed(dim):
            converted[key] = _indexed_values(dim).index(value)
        elif isinstance(dim, Choice):
            converted[key] = canonical(value)
        else:
            converted[key] = value
    return converted


def from_optuna(space: dict[str, Dimension], suggested: dict) -> dict:
    """The params a model receives for what Optuna suggested (see the module's table)."""
    params = {}
    for key, dim in space.items():
        value = suggested[key]
        if _indexed(dim):
            params[key] = _indexed_values(dim)[value]
        elif isinstance(dim, Choice):
            params[key] = json.loads(value)
        else:
            params[key] = dim.value(value)
    return params


def rebuild_study(space: dict[str, Dimension], history: list[Observation], direction: str, sampler) -> optuna.Study:
    """An in-memory study that holds the history, in its order: ok trials complete with their
    objective, failed and diverged ones as FAIL (as Optuna records a trial whose objective raised
    or was NaN)."""
    study = optuna.create_study(direction="minimize" if direction == "min" else "maximize", sampler=sampler)
    dists = distributions(space)
    for observation in history:
        study.add_trial(create_trial(
            params=to_optuna(space, observation.params),
            distributions=dists,
            value=observation.value,
            state=TrialState.FAIL if observation.value is None else TrialState.COMPLETE,
            user_attrs={"trial_id": observation.trial_id},
        ))
    return study


def ask(study: optuna.Study, space: dict[str, Dimension]) -> dict:
    """The sampler's next suggestion, as params; the Optuna trial stays running."""
    return from_optuna(space, study.ask(distributions(space)).params)
