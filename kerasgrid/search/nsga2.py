"""NSGA-II: Optuna's genetic algorithm proposes each round's trials from the generations before.

NSGA-II keeps more state than TPE, all of it in Optuna's storage: each trial's generation (a
trial attribute, set when the trial is asked: the generation of the trials complete then, or the
next once `population` of them are complete), and each generation's parents (a study attribute,
chosen by non-dominated sorting and crowding distance when the generation's first trial is asked,
then kept). A round rebuilds both from the files alone, as they were when the round before ended:

- a round's trials are all asked before any of them is told, so they share one generation, that
  of the ok trials of the rounds before it (`generations`, Optuna's rule round by round);
- the parents of each generation begun in an earlier round are chosen again, oldest generation
  first, by the sampler itself (`NSGAIISampler.get_parent_population`), which keeps them as the
  first trial of that generation did.

So a round proposes exactly what one Optuna study kept in memory across the rounds would, with the
sampler seeded by the round's seed (tests/test_nsga2.py checks it against such a study); without
the parents restored, the rounds after a generation's first drew other children, and without the
generations, NSGA-II never leaves its first, random, generation. A suggestion already tried is
asked again, as with TPE (kerasgrid.search.tpe.ask_new).

Generation 0 is `population` random trials: a search of fewer trials than that is a random one.
Several objectives and constraints go in as with TPE (kerasgrid.search.optuna_space.rebuild_study):
NSGA-II ranks by constrained domination (a feasible trial before any infeasible one).
"""

import itertools
from dataclasses import dataclass

from kerasgrid.search.base import Observation
from kerasgrid.sweep.space import Dimension

# Optuna's NSGAIISampler default.
DEFAULT_POPULATION = 50


def generations(history: list[Observation], population: int) -> list[int]:
    """Each trial's NSGA-II generation, as Optuna gave it when the trial was asked
    (BaseGASampler.get_trial_generation): the highest generation among the ok trials of the rounds
    before, or the next one once it holds `population` of them. An observation with no round is
    taken as asked alone (Optuna's one-trial-at-a-time loop)."""
    found: list[int] = []
    done: list[int] = []  # the generations of the ok trials of the rounds before

    def asked_with(pair):  # what a trial was asked with: its round, or nothing else
        number, observation = pair
        return observation.round if observation.round is not None else -1 - number

    for _, members in itertools.groupby(enumerate(history), key=asked_with):
        members = [observation for _, observation in members]
        top = max(done, default=0)
        generation = top if done.count(top) < population else top + 1
        found += [generation] * len(members)
        done += [generation for observation in members if observation.value is not None]
    return found


@dataclass(frozen=True)
class NSGA2Sampler:
    population: int = DEFAULT_POPULATION
    name = "nsga2"

    def propose(
        self, space: dict[str, Dimension], history: list[Observation], count: int, seed: int,
        direction: str | tuple[str, ...],
    ) -> dict[str, dict]:
        import optuna  # here only: planning a sweep never loads Optuna

        from kerasgrid.search.optuna_space import rebuild_study
        from kerasgrid.search.tpe import ask_new

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=self.population)
        key = optuna.samplers.NSGAIISampler._get_generation_key()  # "NSGAIISampler:generation"
        found = generations(history, self.population)
        study = rebuild_study(space, history, direction, sampler, [{key: generation} for generation in found])
        for generation in range(1, max(found, default=0) + 1):
            sampler.get_parent_population(study, generation)
        return ask_new(study, space, history, count)
