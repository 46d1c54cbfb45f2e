"""Grid search: every combination of the space's values (today's behaviour, ids unchanged), and
with a `choose`, every branch's combinations in turn."""

from dataclasses import dataclass

from kerasgrid.sweep.space import Dimension, combinations, conditional
from kerasgrid.sweep.grid import expand_grid, trial_id


@dataclass(frozen=True)
class GridSampler:
    name = "grid"

    def candidates(self, space: dict[str, Dimension], seed: int) -> dict[str, dict]:
        if conditional(space):
            return {trial_id(params): params for params in combinations(space)}
        return expand_grid({key: dim.finite_values() for key, dim in space.items()})
