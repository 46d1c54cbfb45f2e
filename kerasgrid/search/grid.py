"""Grid search: every combination of the space's values (today's behaviour, ids unchanged)."""

from dataclasses import dataclass

from kerasgrid.search.space import Dimension
from kerasgrid.sweep.grid import expand_grid


@dataclass(frozen=True)
class GridSampler:
    name = "grid"

    def candidates(self, space: dict[str, Dimension], seed: int) -> dict[str, dict]:
        return expand_grid({key: dim.finite_values() for key, dim in space.items()})
