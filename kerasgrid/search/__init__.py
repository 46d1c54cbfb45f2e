"""Search: which combinations a sweep trains (samplers) and how much each one trains (schedules).

`strategy` names a sampler: `grid` and `random` pick every candidate from the config alone;
`tpe` and `nsga2` are adaptive, proposing candidates in rounds from the results of the rounds
before (kerasgrid.search.rounds). `halving` picks the Halving schedule over the full budget. See
kerasgrid.search.base for the interfaces. After a sweep, kerasgrid.search.importance says which
keys of the space mattered, with Optuna's fANOVA over the same kind of study TPE rebuilds.
"""

from kerasgrid.search.base import Observation
from kerasgrid.search.grid import GridSampler
from kerasgrid.search.halving import FullBudget, Halving
from kerasgrid.search.nsga2 import NSGA2Sampler
from kerasgrid.search.random import RandomSampler, SpaceTooSmall
from kerasgrid.sweep.space import Branches, Choice, Range, continuous_keys, describe_space, dimensions, parse_space, size
from kerasgrid.search.tpe import TPESampler

# The strategies that propose in rounds, by name.
ADAPTIVE_SAMPLERS = {TPESampler.name: TPESampler, NSGA2Sampler.name: NSGA2Sampler}

__all__ = [
    "ADAPTIVE_SAMPLERS", "Branches", "Choice", "FullBudget", "GridSampler", "Halving", "NSGA2Sampler", "Observation",
    "RandomSampler", "Range", "SpaceTooSmall", "TPESampler", "continuous_keys", "describe_space", "dimensions", "parse_space",
    "size",
]
