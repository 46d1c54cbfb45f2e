"""The search space: each grid key is a list of values to choose from, or a numeric range.

    grid:
      act: [relu, swish, tanh]                       # a Choice
      units: {low: 32, high: 256, step: 32}          # a Range of integers (low, high, step all whole)
      lr: {low: 1.0e-4, high: 1.0e-2, log: true}     # a continuous Range (random search only)
      dropout: {low: 0.0, high: 0.5, num: 6}         # a Range cut into 6 values
      optimizer:                                     # Branches: a choice among named sub-grids
        choose:
          adam: {lr: [0.001, 0.01]}
          sgd: {lr: [0.1], momentum: [0.0, 0.9]}

A trial of a `choose` holds the branch's name under the choice's key and that branch's keys
flat beside the others (`optimizer: sgd, lr: 0.1, momentum: 0.9`), and no key of another
branch; a branch's sub-grid is a grid like the top one and may hold a `choose` of its own. So a
trial's params, and its id, hold only the keys it has: adding a branch changes no trial's id.

A grid search needs finitely many values per key (a list, or a range with `step` or `num`);
random search samples any of them. Values drawn or cut from a range are rounded to
`SIGNIFICANT_DIGITS`, so that a trial's params (what its id hashes and its model receives) read
well in YAML and in the leaderboard.
"""

import itertools
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


def parse_dimension(key: str, spec, source: str, path: str | None = None) -> Dimension:
    """A grid key's Choice or Range; ConfigError naming the key (at `path`, grid.<key> by
    default) and the fix if it is neither."""
    if isinstance(spec, list):
        return Choice(tuple(grid_values({key: spec})[key]))
    spec = {k: normalise_value(v) for k, v in spec.items()}
    where = f"{source}: {path or 'grid.' + key} is {json.dumps(spec)}, but"
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


@dataclass(frozen=True)
class Branches:
    """A choice among named branches (`choose`), each a space of its own: the choice's key takes
    a branch's name, and the trial that branch's keys. Branches sorted by name."""

    branches: dict  # name -> {key: Dimension | Branches}

    def names(self) -> list[str]:
        return list(self.branches)


def parse_space(grid: dict, source: str, path: str = "grid") -> dict[str, Dimension]:
    """Every grid key's Dimension (or Branches, for a `choose`), keys sorted (the grid's order
    never matters); ConfigError naming the key's path and the fix for a malformed `choose` or a
    key that two parts of the grid would both give a trial."""
    space = {}
    for key in sorted(grid, key=str):
        spec, where = grid[key], f"{path}.{key}"
        if isinstance(spec, dict) and "choose" in spec:
            space[str(key)] = _parse_branches(str(key), spec, source, where)
        elif not (isinstance(spec, dict) or (isinstance(spec, list) and spec)):  # the schema checks the top level only
            raise ConfigError(
                f"{source}: {where} is {json.dumps(spec, default=str)}, but every grid value must be a non-empty list or a "
                f"range. Write the values to try as a list, e.g. {key}: [{json.dumps(spec, default=str) if not isinstance(spec, list) else 'value'}], "
                f"or a numeric range, e.g. {key}: {{low: 1, high: 10}}."
            )
        else:
            space[str(key)] = parse_dimension(str(key), spec, source, where)
    _check_clashes(space, source, path)
    return space


def _parse_branches(key: str, spec: dict, source: str, path: str) -> Branches:
    where = f"{source}: {path}"
    if set(spec) != {"choose"}:
        other = sorted(str(name) for name in spec if name != "choose")[0]
        raise ConfigError(
            f"{where} has '{other}' beside choose, but a choice holds only its branches. Move {other} into the "
            f"branches that use it (e.g. {path}.choose.<branch>.{other}), or to the top of the grid if every trial has it."
        )
    branches = spec["choose"]
    if not isinstance(branches, dict) or not branches:
        raise ConfigError(
            f"{where}.choose is {json.dumps(branches, default=str)}, but a choice needs at least one named branch, each a "
            f"sub-grid of the keys that branch uses: {key}: {{choose: {{adam: {{lr: [0.001, 0.01]}}, sgd: {{momentum: "
            "[0.0, 0.9]}}}. For a plain list of values, write " + f"{key}: [a, b]."
        )
    for name in branches:
        if not isinstance(name, str):
            written = "null" if name is None else str(name).lower() if isinstance(name, bool) else str(name)
            raise ConfigError(
                f"{where}.choose has a branch named {written} ({type(name).__name__}), but a branch's name is what the "
                f"model receives as params['{key}'] and must be a string: YAML reads 1, true or null as other types. "
                f"Quote it: '{written}': {{...}}."
            )
    parsed = {}
    for name in sorted(branches):
        sub = branches[name] if branches[name] is not None else {}  # `sgd:` with nothing: an empty branch
        if not isinstance(sub, dict):
            raise ConfigError(
                f"{where}.choose.{name} is {json.dumps(sub, default=str)}, but a branch is a sub-grid: a mapping of "
                f"its keys to lists or ranges, e.g. {name}: {{momentum: [0.0, 0.9]}}, or {{}} for a branch with no keys of its own."
            )
        if key in sub:
            raise ConfigError(
                f"{source}: {path}.choose.{name}.{key} has the name of its choice, {key}, whose value in a trial is "
                f"the branch's name ('{name}'). Rename the branch's key (e.g. {key}_{name})."
            )
        parsed[name] = parse_space(sub, source, f"{path}.choose.{name}")
    return Branches(parsed)


def _keys_given(key: str, dim, path: str) -> dict[str, str]:
    """Every key a part of the grid may give a trial -> the path it is written at: the key, and
    with a choice its branches' keys (a key of several branches: the first branch's)."""
    given = {key: path}
    if isinstance(dim, Branches):
        for name, branch in dim.branches.items():
            for sub_key, sub_dim in branch.items():
                for found, where in _keys_given(sub_key, sub_dim, f"{path}.choose.{name}.{sub_key}").items():
                    given.setdefault(found, where)
    return given


def _check_clashes(space: dict, source: str, path: str) -> None:
    seen: dict[str, tuple[str, str]] = {}  # key given -> (the key of this level giving it, where)
    for key, dim in space.items():
        for given, where in _keys_given(key, dim, f"{path}.{key}").items():
            if given in seen and seen[given][0] != key:
                first, second = sorted([seen[given][1], where], key=len)
                raise ConfigError(
                    f"{source}: {second} clashes with {first}: both would give a trial the key '{given}' (a branch's "
                    "keys sit flat beside the grid's other keys, in one params dict). Rename one of them, or, if every "
                    f"trial has it, keep it at {path}.{given} only."
                )
            seen.setdefault(given, (key, where))


def combinations(space: dict) -> list[dict]:
    """Every combination of a finite space, in a deterministic order: keys sorted, a list's values
    as written, a range's in order, branches by name (each branch's combinations in turn)."""
    parts = []
    for key, dim in space.items():
        if isinstance(dim, Branches):
            parts.append([{key: name, **sub} for name, branch in dim.branches.items() for sub in combinations(branch)])
        else:
            parts.append([{key: value} for value in dim.finite_values()])
    # Keys sorted within a trial, as a space without a choice gives them: params read alike in every file.
    return [dict(sorted((k, v) for part in combination for k, v in part.items())) for combination in itertools.product(*parts)]


def sample(space: dict, rng) -> dict:
    """One random combination: each key in sorted order; a choice draws a branch uniformly, then
    that branch's keys (so a space without a choice draws exactly as it always did)."""
    params = {}
    for key, dim in space.items():
        if isinstance(dim, Branches):
            names = dim.names()
            name = names[int(rng.integers(len(names)))]
            params[key] = name
            params.update(sample(dim.branches[name], rng))
        else:
            params[key] = dim.sample(rng)
    return dict(sorted(params.items()))


def representatives(space: dict) -> list[dict]:
    """A combination of each branch of the space, as `combinations` gives them (each key's first
    value, a continuous range's low end), the first combination first: every model the branches
    build, in a handful of combinations however large the space. A space without a choice has one:
    its first combination."""
    first = {key: _first(key, dim) for key, dim in space.items()}
    found = [first]
    for key, dim in space.items():
        if isinstance(dim, Branches):
            for name, branch in dim.branches.items():
                for sub in representatives(branch):
                    found.append({**first, key: {key: name, **sub}})
    unique = {canonical(_flat(parts)): _flat(parts) for parts in found}
    return list(unique.values())


def _first(key: str, dim) -> dict:
    if isinstance(dim, Branches):
        name, branch = next(iter(dim.branches.items()))
        return {key: name, **representatives(branch)[0]}
    return {key: dim.finite_values()[0] if isinstance(dim, Choice) or dim.finite else dim.value(dim.low)}


def _flat(parts: dict) -> dict:
    return dict(sorted((k, v) for part in parts.values() for k, v in part.items()))


def conditional(space: dict) -> bool:
    return any(isinstance(dim, Branches) for dim in space.values())


def dimensions(space: dict) -> dict[str, list]:
    """Each key any trial may have -> its Dimensions (a key of several branches has one in each;
    a choice's key has its Branches), keys in the order met."""
    found: dict[str, list] = {}
    for key, dim in space.items():
        found.setdefault(key, []).append(dim)
        if isinstance(dim, Branches):
            for branch in dim.branches.values():
                for sub_key, dims in dimensions(branch).items():
                    found.setdefault(sub_key, []).extend(dims)
    return found


def branch_keys(space: dict, within: str = "") -> dict[str, list[str]]:
    """Each key a choice's branches give -> those branches, each named by its path of branch
    names ('sgd', or 'sgd/step' for a nested choice): what the plots and the importance say of a
    key set per branch."""
    found: dict[str, list[str]] = {}
    for dim in space.values():
        if not isinstance(dim, Branches):
            continue
        for name, branch in dim.branches.items():
            here = f"{within}/{name}" if within else name
            for key in branch:
                found.setdefault(key, []).append(here)
            for key, paths in branch_keys(branch, here).items():
                found.setdefault(key, []).extend(paths)
    return found


def always(space: dict) -> list[str]:
    """The keys every trial of a space has: its own, and those every branch of a choice gives."""
    keys = list(space)
    for dim in space.values():
        if isinstance(dim, Branches):
            keys += sorted(set.intersection(*(set(always(b)) for b in dim.branches.values())))
    return keys


def continuous_keys(space: dict[str, Dimension], within: str = "") -> list[str]:
    """The continuous ranges' keys, a branch's as its path below grid (optimizer.choose.adam.lr)."""
    found = []
    for key, dim in space.items():
        if isinstance(dim, Branches):
            for name, branch in dim.branches.items():
                found += continuous_keys(branch, f"{within}{key}.choose.{name}.")
        elif isinstance(dim, Range) and not dim.finite:
            found.append(within + key)
    return found


def size(space: dict[str, Dimension]) -> float:
    """How many distinct combinations the space holds (infinite with a continuous range): a
    choice holds the sum of its branches' sizes."""
    if continuous_keys(space):
        return math.inf
    return math.prod(_size(dim) for dim in space.values())


def _size(dim) -> int:
    if isinstance(dim, Branches):
        return sum(size(branch) for branch in dim.branches.values())
    return len(dim.values) if isinstance(dim, Choice) else dim.count()


def describe_space(space: dict[str, Dimension]) -> dict:
    """The grid that `parse_space` reads back into `space`, in one canonical form: keys sorted,
    each list's values in the order of their canonical JSON, a range's keys as given, a choice
    as {choose: {branch: its grid}}. Two grids that differ only in the order of their keys or
    list values describe the same space."""
    described = {}
    for key, dim in space.items():
        if isinstance(dim, Branches):
            described[key] = {"choose": {name: describe_space(branch) for name, branch in dim.branches.items()}}
        elif isinstance(dim, Choice):
            described[key] = sorted(dim.values, key=canonical)
        else:
            spec = {"low": dim.low, "high": dim.high, "step": dim.step, "num": dim.num, "log": dim.log}
            described[key] = {name: value for name, value in spec.items() if value is not None}
    return described
