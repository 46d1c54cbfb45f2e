"""Hyperband's brackets: several successive halvings of the same candidates, each starting later.

Successive halving bets on one `min_epochs`: a candidate whose ranking after that many epochs
misleads is cut for good. Hyperband (Li et al., JMLR 2018) hedges that bet with brackets:
bracket b starts its candidates at rung b (min_epochs x eta^b epochs) and halves them from there,
with fewer candidates the later it starts, so that each bracket costs about as much. Bracket 0 is
plain successive halving; the last starts at the full budget, a plain random search.

kerasgrid's brackets share one pool of candidates (the grid, or `search.trials` random draws):
bracket 0 takes all of them, so `brackets: 1` is the halving that existed before brackets; each
later bracket takes its share of one seeded shuffle of the pool, dealt in turn, so that as many
distinct candidates as possible get a later first look before any gets two (Hyperband draws each
bracket's anew; from a pool the draws would repeat candidates, and repeating one costs epochs
without hedging anything). A candidate's run at a rung is the same job whichever bracket asks for
it (its folder is named by its id and the rung), so a rung two brackets need trains once, and a
later bracket's entrant continues from the furthest rung it already trained.

With `strategy: tpe`, each round of proposals is one bracket, the rounds going through the
brackets in turn (kerasgrid.search.rounds), as BOHB (Falkner et al., ICML 2018) does.
"""

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasgrid import records
from kerasgrid.sweep.grid import canonical


@dataclass(frozen=True)
class Bracket:
    """Bracket `index`: `size` candidates start at rung `start` (an index into the rungs)."""

    index: int
    start: int
    size: int


def bracket_count(rungs: list[int], brackets: int | None) -> int:
    """How many brackets a sweep runs: `brackets`, or with None, as Hyperband, one per rung."""
    return len(rungs) if brackets is None else brackets


def sizes(pool: int, rungs: int, brackets: int, eta: int) -> list[int]:
    """How many candidates each bracket starts, bracket 0 taking the whole `pool`.

    Hyperband's proportions: with s_max = rungs - 1, bracket b starts
    ceil((s_max + 1) / (s_max - b + 1) * eta^(s_max - b)) candidates, about the same epochs per
    bracket; here scaled so that bracket 0 starts `pool`, and never above it.
    """
    s_max = rungs - 1
    return [min(pool, math.ceil(pool * (s_max + 1) / ((s_max - b + 1) * eta**b) - 1e-9)) for b in range(brackets)]


def plan(pool: int, rungs: int, brackets: int, eta: int) -> list[Bracket]:
    return [Bracket(b, b, size) for b, size in enumerate(sizes(pool, rungs, brackets, eta))]


def deal(candidates: list[str], brackets: list[Bracket], seed: int) -> list[list[str]]:
    """Each bracket's candidates (trial ids): all of them in bracket 0; the later brackets' from one
    shuffle of the sorted ids (seeded by `seed`), each taking the next `size`, going round again
    where the pool runs out. A pure function of the set of ids, the seed and the sizes; each
    bracket's list sorted."""
    pool = sorted(candidates)
    if not pool:
        return [[] for _ in brackets]
    digest = hashlib.sha256(canonical(["brackets", seed]).encode("utf-8")).digest()
    order = [pool[i] for i in np.random.default_rng(int.from_bytes(digest[:8], "little")).permutation(len(pool))]
    dealt, position = [], 0
    for bracket in brackets:
        if bracket.index == 0:
            dealt.append(pool)
            continue
        taken = [order[(position + i) % len(order)] for i in range(bracket.size)]
        position += bracket.size
        dealt.append(sorted(set(taken)))
    return dealt


def groups(sweep) -> list[tuple[int, int]]:
    """(size, first rung index) of each successive halving a sweep runs: its brackets (grid,
    random), or its rounds, each in its bracket (adaptive). `sweep` is a kerasgrid.config.Sweep."""
    if sweep.round_sizes:
        return [(size, sweep.brackets[b].start) for size, b in zip(sweep.round_sizes, sweep.round_brackets)]
    return [(bracket.size, bracket.start) for bracket in sweep.brackets]


def rung_runs(schedule, rungs: int, halvings: list[tuple[int, int]]) -> list[int]:
    """The most runs each of the `rungs` rungs trains, over these halvings ((size, first rung
    index) each): a rung two brackets share counts twice, so an upper bound."""
    found = [0] * rungs
    for size, start in halvings:
        for offset, count in enumerate(schedule.entrants(size, rungs, start)):
            found[start + offset] += count
    return found


def protected(dealt: list[list[str]]) -> set[str]:
    """The trials in more than one bracket: a bracket that stops one keeps its state, since another
    bracket may still continue it from there (and which does, when, is up to the other's rankings)."""
    seen: set[str] = set()
    shared: set[str] = set()
    for trials in dealt:
        shared.update(seen.intersection(trials))
        seen.update(trials)
    return shared


def reached(entries: dict[int, tuple[int, list[str]]], promoted: dict[tuple[int, int], list[str]]) -> dict[str, tuple[int, int]]:
    """Each trial's bracket and the furthest rung index it reached there, {trial: (bracket, rung)}.

    `entries`: {bracket: (start rung index, its candidates)}; `promoted`: {(bracket, rung index):
    the trials promoted to that rung}. A trial in several brackets is reported in the one where
    it went furthest (the first of them on a tie)."""
    furthest: dict[str, tuple[int, int]] = {}
    for bracket in sorted(entries):
        start, trials = entries[bracket]
        at = {trial: start for trial in trials}
        for (b, k), names in sorted(promoted.items()):
            if b == bracket:
                at.update({trial: k for trial in names})
        for trial, k in at.items():
            if trial not in furthest or k > furthest[trial][1]:
                furthest[trial] = (bracket, k)
    return furthest


def round_sizes(trials: int, brackets: list[Bracket]) -> tuple[list[int], list[int]]:
    """An adaptive search's rounds with brackets: the rounds go through the brackets in turn, each
    proposing its bracket's size (bracket 0's is search.batch), until `trials` are proposed (the
    last round holding the rest). Returns each round's size and its bracket's index."""
    sizes_, indices = [], []
    while sum(sizes_) < trials:
        bracket = brackets[len(sizes_) % len(brackets)]
        sizes_.append(min(bracket.size, trials - sum(sizes_)))
        indices.append(bracket.index)
    return sizes_, indices


def trial_brackets(settings: dict | None, record_paths, promotion_paths, round_paths) -> dict[str, int] | None:
    """Each ranked trial's bracket, for the leaderboard's `bracket` column; None without halving.

    `settings` (the workflow's): {"sizes", "seed", "rungs"} of grid and random brackets, whose candidates
    are those of the records; or {"rounds": each round's bracket} of an adaptive search. A
    promotions file is results/<group>/<epochs>.json (group brackets/<b> or rounds/<i>)."""
    from kerasgrid.search.rounds import trial_rounds  # rounds needs the samplers: imported only here

    if settings is None:
        return None
    if "rounds" in settings:
        return {trial: settings["rounds"][index] for trial, index in trial_rounds(round_paths).items()}
    return dealt_brackets(settings, {records.read_json(path)["trial_id"] for path in record_paths}, promotion_paths)


def dealt_brackets(settings: dict, trials, promotion_paths) -> dict[str, int]:
    """Each of `trials`' bracket in a grid or random sweep (see trial_brackets)."""
    trials = sorted(trials)
    brackets = [Bracket(b, b, size) for b, size in enumerate(settings["sizes"])]
    entries = {b.index: (b.start, trials_) for b, trials_ in zip(brackets, deal(trials, brackets, settings["seed"]))}
    promoted = {}
    for path in promotion_paths:
        found = records.read_json(path)
        promoted[(int(Path(path).parent.name), settings["rungs"].index(found["epochs"]))] = found["promoted"]
    return {trial: bracket for trial, (bracket, _) in reached(entries, promoted).items()}
