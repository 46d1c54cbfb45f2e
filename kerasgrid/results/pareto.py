"""Several objectives at once: which trials no other beats on every objective (the Pareto front,
and the fronts behind it), the knee of a front, and constraints a trial must keep to count.

Pure functions on numbers: kerasgrid.results.ranking applies them to trials.
"""

import math
import re
from dataclasses import dataclass

from kerasgrid.errors import ConfigError
from kerasgrid.records import MEASURES
# The rules that choose one winner from the front: the best of the first objective, or the knee.
WINNER_RULES = ("first", "knee")

_OPERATORS = {
    "<=": lambda value, bound: value <= bound,
    "<": lambda value, bound: value < bound,
    ">=": lambda value, bound: value >= bound,
    ">": lambda value, bound: value > bound,
}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_./-]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """`metric op bound`, e.g. params_count <= 50000: a trial whose value breaks it is infeasible."""

    metric: str
    operator: str
    bound: float
    text: str

    def holds(self, value) -> bool:
        return value is not None and math.isfinite(value) and _OPERATORS[self.operator](value, self.bound)

    def violation(self, value) -> float:
        """Optuna's constraint value for a trial's `value`: by how much it breaks the constraint
        (> 0), or 0 or less (the margin, negated) if it keeps it. A strict bound reached exactly is
        broken by the least positive float; a value that is not finite, by infinity."""
        distance = value - self.bound if self.operator in ("<=", "<") else self.bound - value
        if not math.isfinite(distance):
            return math.inf
        if distance <= 0 and not self.holds(value):
            return math.nextafter(0.0, 1.0)
        return float(distance)


def parse_constraint(text, index: int, source: str) -> Constraint:
    """A Constraint from the config's `constraints[index]`, read without eval; ConfigError otherwise."""
    match = _CONSTRAINT.match(text) if isinstance(text, str) else None
    if not match:
        raise ConfigError(
            f"{source}: constraints[{index}] is {text!r}, which is not a constraint kerasgrid can read. Write "
            "'<metric> <op> <number>', with op one of <=, <, >=, >, e.g. 'params_count <= 50000' or "
            f"'val_loss < 0.1', where the metric is one the model logs or one of {', '.join(MEASURES)}."
        )
    metric, operator, bound = match.groups()
    return Constraint(metric, operator, float(bound), " ".join(match.groups()))


def dominates(a: tuple, b: tuple) -> bool:
    """Whether `a` is at least as good as `b` on every objective and better on one (all minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_ranks(points: list[tuple]) -> list[int]:
    """Each point's front (1: no point dominates it; 2: only points of front 1 do; ...), every
    objective minimised. Non-dominated sorting as NSGA-II's (Deb et al. 2002), O(objectives x n^2)."""
    count = len(points)
    beaten_by = [0] * count  # how many points dominate each
    beats: list[list[int]] = [[] for _ in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            if dominates(points[i], points[j]):
                beats[i].append(j)
                beaten_by[j] += 1
            elif dominates(points[j], points[i]):
                beats[j].append(i)
                beaten_by[i] += 1
    ranks = [0] * count
    front = [i for i in range(count) if beaten_by[i] == 0]
    level = 1
    while front:
        following = []
        for i in front:
            ranks[i] = level
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        front, level = following, level + 1
    return ranks


def knee(points: list[tuple]) -> int:
    """The index of the front's knee: the point nearest the ideal point (the best value of every
    objective) once each objective is scaled to [0, 1] over the front; ties to the first."""
    if not points:
        raise ValueError("an empty front has no knee")
    low = [min(values) for values in zip(*points)]
    high = [max(values) for values in zip(*points)]
    scaled = [[(v - lo) / (hi - lo) if hi > lo else 0.0 for v, lo, hi in zip(point, low, high)] for point in points]
    distances = [math.fsum(v * v for v in point) for point in scaled]
    return distances.index(min(distances))
