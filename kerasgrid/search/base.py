"""The two small interfaces of search, kept apart as Optuna keeps samplers from pruners.

A `Sampler` says which combinations a sweep trains: `candidates(space, seed)` returns them as
{trial id: params}, in a deterministic order, computed from the config alone (Snakemake needs
the DAG up front). A `Schedule` says how much each trains: the epochs of its rungs, and which
candidates go on from one rung to the next.
"""

from typing import Protocol

from kerasgrid.search.space import Dimension


class Sampler(Protocol):
    name: str

    def candidates(self, space: dict[str, Dimension], seed: int) -> dict[str, dict]: ...


class Schedule(Protocol):
    def rungs(self, epochs: int) -> list[int]: ...

    def promote(self, records: list[dict], entrants: int, objective: dict) -> list[str]: ...
