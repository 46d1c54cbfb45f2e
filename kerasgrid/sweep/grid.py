"""Expanding a grid (a dict of lists) into trials, each named by its parameters alone."""

import hashlib
import itertools
import json
import math
import re

# PyYAML follows YAML 1.1, which reads `1e-3` (no dot) as the string "1e-3"; YAML 1.2, Python and
# every Keras user read a number. A grid value spelled like that is taken as the float it means.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$")


def normalise_value(value):
    """A grid value as a model receives it: YAML's value, with `1e-3`-style strings as floats."""
    if isinstance(value, str) and _EXPONENT_FLOAT.match(value):
        return float(value)
    if isinstance(value, list):
        return [normalise_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): normalise_value(item) for key, item in value.items()}
    return value


def canonical(params: dict) -> str:
    """The one text of a combination: sorted keys, shortest float repr, `1` and `1.0` distinct."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def trial_id(params: dict) -> str:
    """A stable, path-safe id (12 hex digits) derived from the canonical parameters alone."""
    return hashlib.sha256(canonical(params).encode("utf-8")).hexdigest()[:12]


def grid_values(grid: dict) -> dict[str, list]:
    """Each key's distinct normalised values, keys sorted so that grid order never matters."""
    values = {}
    for key in sorted(grid, key=str):
        distinct = {}
        for value in grid[key]:
            value = normalise_value(value)
            distinct.setdefault(canonical({"v": value}), value)
        values[str(key)] = list(distinct.values())
    return values


def count_trials(grid: dict) -> int:
    """How many trials `expand_grid` would make, without making them."""
    return math.prod(len(values) for values in grid_values(grid).values())


def expand_grid(grid: dict) -> dict[str, dict]:
    """Every combination of the grid, keyed by its trial id, in a deterministic order."""
    values = grid_values(grid)
    keys = list(values)
    trials = {}
    for combination in itertools.product(*values.values()):
        params = dict(zip(keys, combination))
        trials[trial_id(params)] = params
    return trials
