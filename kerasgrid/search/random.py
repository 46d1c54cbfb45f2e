"""Random search: `trials` distinct combinations drawn from the space, seeded and prefix-stable.

Draws come one after another from one generator seeded by the config's `seed`, each key in
sorted order (a choice's branch, uniformly, then that branch's keys), and a combination already drawn is skipped; so the first 20 of 40 draws are the 20
draws of a sweep with `trials: 20`, and raising or lowering `trials` keeps every finished trial.
"""

from dataclasses import dataclass

import numpy as np

from kerasgrid.sweep.space import Dimension, sample, size
from kerasgrid.sweep.grid import trial_id

# Draws allowed per trial asked for before the space is judged too small to give them.
ATTEMPTS_PER_TRIAL = 100


class SpaceTooSmall(ValueError):
    """The space holds fewer distinct combinations than the trials asked for."""


@dataclass(frozen=True)
class RandomSampler:
    trials: int
    name = "random"

    def candidates(self, space: dict[str, Dimension], seed: int) -> dict[str, dict]:
        available = size(space)
        if available < self.trials:
            raise SpaceTooSmall(f"the space holds only {int(available)} distinct combinations")
        rng = np.random.default_rng(seed)
        drawn: dict[str, dict] = {}
        for _ in range(self.trials * ATTEMPTS_PER_TRIAL):
            params = sample(space, rng)
            drawn.setdefault(trial_id(params), params)
            if len(drawn) == self.trials:
                return drawn
        raise SpaceTooSmall(f"{self.trials * ATTEMPTS_PER_TRIAL:,} draws gave only {len(drawn)} distinct combinations")

