"""Confirming the finalists: the best of the tuning train again on all the data, and the winner is
the best of them there.

Tuning on a fraction of the data (or a short budget) ranks the candidates cheaply; `confirm:
{top: 5}` then trains the top 5 again with data.fraction 1 (and `confirm.budget`) as jobs of their
own, in results/trials/<id>/confirm/. The leaderboard ranks the finalists by their confirmation,
then every other candidate in its tuning order, and says how well the two rankings of the
finalists agree (Kendall's tau and a plain sentence).
"""

from dataclasses import dataclass, field

from kerasgrid import records
from kerasgrid.errors import Direction, Status
from kerasgrid.results.ranking import rank


@dataclass(frozen=True)
class Confirm:
    """How many finalists to confirm, and the budget keys their runs change."""

    top: int = 5
    budget: dict = field(default_factory=dict)


def finalists(tuning: list[dict], top: int) -> list[str]:
    """The ids of the first `top` entries of a tuning ranking (ranking.rank) that ended ok."""
    return [entry["trial_id"] for entry in tuning if entry["status"] == Status.OK.value][:top]


def write_finalists(metrics_paths, objective: dict, top: int, path, source: str = "the config") -> list[str]:
    """Rank the tuning records given and write the finalists' ids, best first, to `path`."""
    chosen = finalists(rank([records.read_json(p) for p in metrics_paths], objective, source), top)
    records.write_json(path, {"top": top, "finalists": chosen})
    return chosen


def merge(tuning: list[dict], confirmed: list[dict], objective: dict) -> list[dict]:
    """The final ranking: finalists confirmed ok, by their confirmation's objective; then the other
    candidates ok, in their tuning order; then, in tuning order, every entry diverged or failed (a
    finalist whose confirmation did). Each entry is its confirmation's (if any) with `confirmed`,
    `tuning` (its tuning entry) and its new `rank`."""
    sign = -1.0 if Direction(objective["direction"]) is Direction.MAX else 1.0
    confirmations = {entry["trial_id"]: entry for entry in confirmed}
    order = {Status.OK.value: 0, Status.DIVERGED.value: 1, Status.FAILED.value: 1}
    entries = []
    for entry in tuning:
        confirmation = confirmations.get(entry["trial_id"])
        chosen = confirmation or entry
        entries.append({**chosen, "confirmed": confirmation is not None, "tuning": entry})

    def key(entry):
        ok = entry["status"] == Status.OK.value
        first = ok and entry["confirmed"]
        # The confirmations' own order: by objective, or by Pareto front (kerasgrid.results.ranking).
        within = (entry["rank"] if "pareto_rank" in entry else sign * entry["objective_value"]) if first else 0.0
        return (order[entry["status"]], not first, within, entry["tuning"]["rank"])

    return [{**entry, "rank": position} for position, entry in enumerate(sorted(entries, key=key), 1)]


def kendall_tau(first: list, second: list) -> float | None:
    """Kendall's tau between two rankings of the same items (1: the same order, -1: reversed);
    None for fewer than two items."""
    if len(first) < 2:
        return None
    from scipy.stats import kendalltau  # only when a sweep confirms: it takes half a second to load

    return float(kendalltau(first, second).statistic)


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def agreement(finalists_: list[dict], fraction: float) -> dict:
    """How the tuning's ranking of the finalists held up: their count, Kendall's tau between the
    tuning's order and the confirmation's (over finalists confirmed ok), and a sentence.

    `finalists_`: for each finalist, {"tuning_rank": int, "rank": int, "status": str}, where rank
    is its place in the final ranking.
    """
    tuned, full = ("the fraction", "the full data") if fraction < 1 else ("the tuning budget", "the confirmation budget")
    on_tuned, on_full = ("on " + tuned, "on " + full) if fraction < 1 else ("with " + tuned, "with " + full)
    by_tuning = sorted(finalists_, key=lambda f: f["tuning_rank"])
    ok = [f for f in by_tuning if f["status"] == Status.OK.value]
    tau = kendall_tau([f["tuning_rank"] for f in ok], [f["rank"] for f in ok])
    if not by_tuning:
        sentence = "no finalist was confirmed"
    elif by_tuning[0]["status"] != Status.OK.value:
        sentence = f"{tuned}'s winner {by_tuning[0]['status']} {on_full}"
    elif len(ok) < 2:
        sentence = f"only {tuned}'s winner was confirmed {on_full}, so there is no order to compare"
    else:
        by_full = sorted(ok, key=lambda f: f["rank"])
        place = by_full.index(by_tuning[0]) + 1
        if by_full == ok:
            sentence = f"{tuned} ranked the {len(ok)} finalists as {full} did"
        elif place == 1:
            sentence = f"{tuned}'s winner won {on_full} too; the other finalists changed places"
        else:
            sentence = (f"{tuned}'s winner came {ordinal(place)} {on_full}; {full}'s winner was "
                        f"{ordinal(by_tuning.index(by_full[0]) + 1)} {on_tuned}")
    if tau is not None:
        sentence += f" (Kendall's tau {tau:.2f} over {len(ok)} finalists)"
    return {"finalists": len(by_tuning), "kendall_tau": tau, "agreement": sentence}
