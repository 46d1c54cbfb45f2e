"""The small interfaces of search, kept apart as Optuna keeps samplers from pruners.

A `Sampler` says which combinations a sweep trains: `candidates(space, seed)` returns them as
{trial id: params}, in a deterministic order, computed from the config alone (Snakemake needs
the DAG up front). A `Schedule` says how much each trains: the epochs of its rungs, and which
candidates go on from one rung to the next.

An `AdaptiveSampler` learns from results, so its candidates cannot be known up front: it proposes
them in rounds, each from the `Observation`s of the rounds before, and the workflow asks it once
per round from a checkpoint (workflow/rules/adaptive.smk). It is told the history rather than
keeping any: the finished trials' files are its only state.
"""

from dataclasses import dataclass
from typing import Protocol

from kerasgrid.sweep.space import Dimension


class Sampler(Protocol):
    name: str

    def candidates(self, space: dict[str, Dimension], seed: int) -> dict[str, dict]: ...


class Schedule(Protocol):
    def rungs(self, epochs: int) -> list[int]: ...

    def promote(self, records: list[dict], entrants: int, objective: dict) -> list[str]: ...


@dataclass(frozen=True)
class Observation:
    """A finished trial as an adaptive sampler is told it: its params, how it ended (a
    kerasgrid.errors.Status value) and its objective, None unless it ended ok.

    With several objectives, `values` holds each one's value in order (`value` is the first's),
    None unless ok. With constraints, `constraints` holds one number per constraint in Optuna's
    convention: how far the trial breaks it (> 0), or 0 or less if it keeps it; () unless ok.
    `round` is the round that proposed the trial."""

    trial_id: str
    params: dict
    status: str
    value: float | None
    values: tuple[float, ...] | None = None
    constraints: tuple[float, ...] = ()
    round: int | None = None


class AdaptiveSampler(Protocol):
    name: str

    def propose(
        self, space: dict[str, Dimension], history: list[Observation], count: int, seed: int,
        direction: str | tuple[str, ...],
    ) -> dict[str, dict]:
        """`count` new combinations (none of the history's), {trial id: params} in the order
        proposed: the same for the same arguments, and those of a smaller count a prefix of them.
        `direction` is the objective's, or a tuple of one per objective with several (the
        observations' `values`)."""
        ...
