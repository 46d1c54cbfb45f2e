"""TPE: Optuna's Tree-structured Parzen Estimator proposes each round's trials from those before.

Nothing of Optuna's persists between rounds. A round rebuilds an in-memory study from the history
(kerasgrid.search.optuna_space.rebuild_study), seeds Optuna's TPESampler with the round's seed,
and asks it for the round's trials one after another. `constant_liar` counts the trials asked but
not yet told as bad, which keeps the trials of one round apart; a suggestion equal to a trial
already tried (or already proposed this round) is left running the same way and the sampler is
asked again, so a round proposes only trials that are new. Proposals are thus a pure function of
(history, seed, count), and those of a smaller count are a prefix of them.

With several objectives (`direction` a tuple), the study has one direction per objective and
each ok trial all its values: Optuna's multi-objective TPE then splits the trials by Pareto front
(and hypervolume within one) rather than by value. Constraints go in as each trial's constraint
values (Observation.constraints): TPE puts infeasible trials behind feasible ones, the least
infeasible first.

TPE samples its first `n_startup_trials` (Optuna's 10) at random; failed and diverged trials do
not count towards them and do not shape its model (Optuna's TPE leaves FAIL trials out), but they
are never proposed again.
"""

from dataclasses import dataclass

from kerasgrid.search.base import Observation
from kerasgrid.sweep.space import Dimension
from kerasgrid.sweep.grid import trial_id

# Suggestions allowed per trial asked for before a round settles for fewer: only a space nearly
# used up (every combination left already tried) makes TPE suggest known trials over and over.
ATTEMPTS_PER_PROPOSAL = 100


@dataclass(frozen=True)
class TPESampler:
    name = "tpe"
    # Random proposals before the model: None for Optuna's (10); with halving, BOHB's
    # (kerasgrid.search.rounds.min_points).
    startup: int | None = None

    def propose(
        self, space: dict[str, Dimension], history: list[Observation], count: int, seed: int,
        direction: str | tuple[str, ...],
    ) -> dict[str, dict]:
        import optuna  # here only: planning a sweep never loads Optuna

        from kerasgrid.search.optuna_space import rebuild_study

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" per round
        startup = {} if self.startup is None else {"n_startup_trials": self.startup}
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True, **startup)
        return ask_new(rebuild_study(space, history, direction, sampler), space, history, count)


def ask_new(study, space: dict[str, Dimension], history: list[Observation], count: int) -> dict[str, dict]:
    """`count` suggestions of the study's sampler that are new: neither tried in the history nor
    suggested before; a suggestion that is not new is left running and the sampler asked again."""
    from kerasgrid.search.optuna_space import ask

    tried = {observation.trial_id for observation in history}
    proposed: dict[str, dict] = {}
    for _ in range(count * ATTEMPTS_PER_PROPOSAL):
        if len(proposed) == count:
            break
        params = ask(study, space)
        new = trial_id(params)
        if new not in tried and new not in proposed:
            proposed[new] = params
    return proposed
