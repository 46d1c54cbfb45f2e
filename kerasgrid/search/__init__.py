"""Search: which combinations a sweep trains (samplers) and how much each one trains (schedules).

`strategy` names a sampler (`grid`, `random`); `halving` picks the Halving schedule over the
full budget. See kerasgrid.search.base for the two interfaces.
"""

from kerasgrid.search.grid import GridSampler
from kerasgrid.search.halving import FullBudget, Halving
from kerasgrid.search.random import RandomSampler, SpaceTooSmall
from kerasgrid.search.space import Choice, Range, continuous_keys, parse_space, size

__all__ = [
    "Choice", "FullBudget", "GridSampler", "Halving", "RandomSampler", "Range", "SpaceTooSmall",
    "continuous_keys", "parse_space", "size",
]
