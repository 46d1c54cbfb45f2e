"""The search space: each grid key is a list of values to choose from, or a numeric range.

    grid:
      act: [relu, swish, tanh]                       # a Choice
      units: {low: 32, high: 256, step: 32}          # a Range of integers (low, high, step all whole)
      lr: {low: 1.0e-4, high: 1.0e-2, log: true}     # a continuous Range (random search only)
      dropout: {low: 0.0, high: 0.5, num: 6}         # a Range cut into 6 values

A grid search needs finitely many values per key (a list, or a range with `step` or `num`);
random search samples any of them. Values drawn or cut from a range are rounded to
`SIGNIFICANT_DIGITS`, so that a trial's params (what its id hashes and its model receives) read
well in YAML and in the leaderboard.
"""

import json
import math
from dataclasses import dataclass

from kerasgrid.errors import ConfigError
from kerasgrid.sweep.grid import canonical, grid_values, normalise_value

SIGNIFICANT_DIGITS = 3
RANGE_KEYS = ("low", "high", "step", "num", "log")


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    return float(f"{value:.{digits}g}")


@dataclass(frozen=True)
class Choice:
    """One of a list of values, taken as they are written."""

    values: tuple

    def finite_values(self) -> list:
        return list(self.values)

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]


@dataclass(frozen=True)
class Range:
    """A number between low and high (both included): integers if low, high and step are whole."""

    low: float
    high: float
    step: float | None = None
    num: int | None = None
    log: bool = False
    integer: bool = False

    @property
    def finite(self) -> bool:
        return self.step is not None or self.num is not None or self.integer

    def count(self) -> int:
        """How many values `finite_values` gives at most, without making them (a range can be wide)."""
        if self.num is not None:
            return self.num
        return math.floor((self.high - self.low) / (self.step if self.step is not None else 1) + 1e-9) + 1

    def finite_values(self) -> list:
        if self.num is not None:
            if self.log:
                ratio = (self.high / self.low) ** (1 / (self.num - 1)) if self.num > 1 else 1
                points = [self.low * ratio**i for i in range(self.num)]
            else:
                width = (self.high - self.low) / (self.num - 1) if self.num > 1 else 0
                points = [self.low + width * i for i in range(self.num)]
            values = [self._typed(p) for p in points]
        else:
            step = self.step if self.step is not None else 1
            count = math.floor((self.high - self.low) / step + 1e-9) + 1
            values = [self._typed(self.low + step * i) for i in range(count)]
        return list(dict.fromkeys(values))  # rounding may merge neighbours

    def sample(self, rng):
        if self.num is not None:
            values = self.finite_values()
            return values[int(rng.integers(len(values)))]
        if self.step is not None:  # the i-th value of finite_values, without making them all
            return self._typed(self.low + self.step * int(rng.integers(self.count())))
        if self.log:
            point = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        elif self.integer:
            return int(rng.integers(self.low, self.high + 1))
        else:
            point = rng.uniform(self.low, self.high)
        return self._typed(point)

    def value(self, point: float):
        """The value of this range that a point drawn in it stands for: typed and rounded as
        every value of the range is (what an adaptive sampler's proposal becomes)."""
        return self._typed(point)

    def _typed(self, point: float):
        if self.integer:
            return int(round(point))
        if self.step is not None:
            # Cut by the step's own decimals, so 0.1 steps give 0.3, not 0.30000000000000004.
            return round(point, _decimals(self.step, self.low))
        return min(max(round_significant(point), self.low), self.high)


def _decimals(*numbers) -> int:
    return max(len(repr(float(n)).partition(".")[2].rstrip("0")) for n in numbers)


Dimension = Choice | Range


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_dimension(key: str, spec, source: str) -> Dimension:
    """A grid key's Choice or Range; ConfigError naming the key and the fix if it is neither."""
    if isinstance(spec, list):
        return Choice(tuple(grid_values({key: spec})[key]))
    spec = {k: normalise_value(v) for k, v in spec.items()}
    where = f"{source}: grid.{key} is {json.dumps(spec)}, but"
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise ConfigError(f"{where} '{unknown[0]}' is not a key of a range. A range takes low and high, and "
                          "optionally step or num, and log; a list of values is written [a, b, c].")
    if not all(_number(spec.get(k)) for k in ("low", "high")):
        raise ConfigError(f"{where} a range needs numbers low and high, e.g. {{low: 0.0001, high: 0.01, log: true}}. "
                          "For values that are not numbers, write a list: [a, b, c].")
    low, high, step, num, log = (spec.get(k) for k in RANGE_KEYS)
    if low >= high:
        raise ConfigError(f"{where} low is not below high. Write low < high (to try one value, write a list: [{low}]).")
    if step is not None and num is not None:
        raise ConfigError(f"{where} it gives both step and num. Give one: step (the distance between values) or "
                          "num (how many values, evenly spread).")
    if step is not None and (not _number(step) or step <= 0):
        raise ConfigError(f"{where} step is not a positive number. Give a positive step, e.g. step: {high - low}.")
    if num is not None and (not isinstance(num, int) or isinstance(num, bool) or num < 2):
        raise ConfigError(f"{where} num is not a whole number of at least 2. Give num: 2 or more.")
    if log is not None and not isinstance(log, bool):
        raise ConfigError(f"{where} log is not true or false. Write log: true for a log-uniform range.")
    if log and low <= 0:
        raise ConfigError(f"{where} a log range needs low above 0. Raise low, or drop log: true.")
    if log and step is not None:
        raise ConfigError(f"{where} a log range cannot have a step. Use num for values evenly spread on a log "
                          "scale, or drop log: true.")
    integer = all(isinstance(v, int) for v in (low, high, step) if v is not None)
    return Range(low=low, high=high, step=step, num=num, log=bool(log), integer=integer)


def parse_space(grid: dict, source: str) -> dict[str, Dimension]:
    """Every grid key's Dimension, keys sorted (the grid's order never matters)."""
    return {str(key): parse_dimension(str(key), grid[key], source) for key in sorted(grid, key=str)}


def continuous_keys(space: dict[str, Dimension]) -> list[str]:
    return [key for key, dim in space.items() if isinstance(dim, Range) and not dim.finite]


def size(space: dict[str, Dimension]) -> float:
    """How many distinct combinations the space holds (infinite with a continuous range)."""
    if continuous_keys(space):
        return math.inf
    return math.prod(len(dim.values) if isinstance(dim, Choice) else dim.count() for dim in space.values())



def describe_space(space: dict[str, Dimension]) -> dict:
    """The grid that `parse_space` reads back into `space`, in one canonical form: keys sorted,
    each list's values in the order of their canonical JSON, a range's keys as given. Two grids
    that differ only in the order of their keys or list values describe the same space."""
    described = {}
    for key, dim in space.items():
        if isinstance(dim, Choice):
            described[key] = sorted(dim.values, key=canonical)
        else:
            spec = {"low": dim.low, "high": dim.high, "step": dim.step, "num": dim.num, "log": dim.log}
            described[key] = {name: value for name, value in spec.items() if value is not None}
    return described
