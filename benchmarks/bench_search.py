"""Searching W3 (issue 10): kerasgrid's full grid, grid + halving and random + halving against
KerasTuner's Hyperband and Optuna, on one space, in one run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/bench_search.py [--methods ...] [--seeds 0 1 2] [--json FILE] [--truth FILE]

Every method searches benchmarks/w3.yaml: 81 combinations (lr, units, layers, dropout), 27 epochs
of 90 batches, objective val_loss.
  grid            kerasgrid, every combination for the whole budget: the baseline of every ratio
                  and the ground truth (every combination's objective after 27 epochs)
  grid-halving    kerasgrid, search.halving {eta: 3, min_epochs: M} for each M of --min-epochs:
                  rungs at 1, 3, 9 and 27 epochs with min_epochs 1; at 3, 9 and 27 with 3
  random-halving  kerasgrid, search.strategy random, 27 trials (a third of the grid), with halving
  hyperband       KerasTuner's Hyperband, max_epochs 27, factor 3
  optuna          Optuna's TPE sampler with its SuccessiveHalvingPruner (min_resource 1, factor 3),
                  81 trials: as many candidates as grid-halving starts, and like it the pruner lets
                  about a third through each rung (benchmarks/search_loops.py has both tools)
kerasgrid runs `snakemake --cores 2` from an empty results/ and makes everything the workflow
makes; the other tools run in one Python process each. random-halving, hyperband and optuna depend
on their seed and run once per --seeds value; grid and grid-halving run once.

For each run: wall and CPU seconds of the whole process tree and its peak RSS (as bench_sweep.py
measures them), epochs trained (kerasgrid: every history.csv under results/, the winner's retrain
included; the other tools: a callback), the candidates (distinct combinations) tried, the winner,
and the yardstick: the winner's objective after the full 27 epochs as the full grid measured it,
its rank there and its gap to the best. Then the targets, and how misleading W3's early rankings
are (from the full grid's histories).
Raw figures go to --json after every run. --truth takes the ground truth (and the grid's wall time)
from an earlier --json, so that a subset of methods can run without the full grid.
"""

import argparse
import csv
import itertools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import psutil
import yaml

from bench_sweep import REPO, run_tool
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.sweep.grid import count_trials, trial_id

WORKLOAD = REPO / "benchmarks" / "w3.yaml"
ETA = 3  # every halving method's (Hyperband's factor and Optuna's pruner's too)
KERASGRID_METHODS = ["grid", "grid-halving", "random-halving"]
IN_PROCESS_METHODS = ["hyperband", "optuna"]
SEEDED = {"random-halving", "hyperband", "optuna"}
# Targets of issue 10: halving's winner within 2% of the grid's best, in at most 35% of its wall.
WITHIN, WALL_SHARE = 0.02, 0.35


def method_config(method: str, seed: int, min_epochs: int = 1) -> dict:
    """W3's config as `method` runs it: kerasgrid's search section, or the plain grid."""
    config = yaml.safe_load(WORKLOAD.read_text())
    halving = {"eta": ETA, "min_epochs": min_epochs}
    if method == "grid-halving":
        config["search"] = {"strategy": "grid", "halving": halving}
    elif method == "random-halving":
        config["search"] = {"strategy": "random", "trials": count_trials(config["grid"]) // 3, "halving": halving}
        # The seed that draws the trials; it also seeds their training (kerasgrid has one seed).
        config["seed"] = seed
    return config


def epochs_trained(results: Path) -> dict[str, int]:
    """Epochs trained per model, from every history.csv under results/: a trial's own history and
    its rungs' (results/trials/<id>/...) count each epoch once; the winner's retrain
    (results/best_model/<id>/) is a model of its own."""
    epochs = {}
    for history in sorted(results.rglob("history.csv")):
        model = "/".join(history.relative_to(results).parts[:2])
        with open(history, newline="") as handle:
            epochs.setdefault(model, set()).update(row["epoch"] for row in csv.DictReader(handle))
    return {model: len(seen) for model, seen in epochs.items()}


def objective_history(history: Path, metric: str) -> list[float | None]:
    with open(history, newline="") as handle:
        values = [row.get(metric) for row in csv.DictReader(handle)]
    return [float(v) if v not in (None, "") and math.isfinite(float(v)) else None for v in values]


def ground_truth(results: Path, board: list[dict], metric: str) -> dict:
    """Every combination of the full grid: params, objective after the budget, rank, and history."""
    truth = {}
    for row in board:
        trial = results / "trials" / row["trial_id"]
        record = json.loads((trial / "metrics.json").read_text())
        truth[row["trial_id"]] = {
            "params": record["params"],
            "value": float(row["objective"]) if row["objective"] else None,
            "rank": int(row["rank"]),
            "status": row["status"],
            "history": objective_history(trial / "history.csv", metric),
        }
    return truth


def sweep_figures(results: Path, metric: str, with_truth: bool) -> dict:
    """Epochs trained, candidates, and with_truth the ground truth, from a finished sweep's results/."""
    by_model = epochs_trained(results)
    board = read_leaderboard(results / "leaderboard.tsv")
    figures = {"epochs": sum(by_model.values()), "epochs_by_model": by_model, "candidates": len(board)}
    if board and "epochs" in board[0]:
        # Halving's leaderboard says how far each candidate trained: a cross-check of the histories.
        figures["leaderboard_epochs"] = sum(int(row["epochs"] or 0) for row in board)
        figures["history_epochs"] = sum(n for model, n in by_model.items() if model.startswith("trials/"))
        figures["rungs_reached"] = sorted(int(row["rung"]) for row in board if row.get("rung"))
    if with_truth:
        figures["truth"] = ground_truth(results, board, metric)
    return figures


def run_kerasgrid(method: str, seed: int, min_epochs: int, scratch: Path, metric: str) -> dict:
    result = run_tool("kerasgrid", method_config(method, seed, min_epochs), scratch)
    result.update(sweep_figures(scratch / "results", metric, with_truth=method == "grid"))
    return result


def run_in_process(method: str, seed: int, scratch: Path, optuna_trials: int) -> dict:
    args = ["--seed", str(seed), "--trials", str(optuna_trials)]
    return run_tool(method, method_config("grid", seed), scratch, loops="search_loops.py", args=args)


def yardstick(result: dict, truth: dict, direction: str) -> None:
    """The winner's objective after the full budget in the full grid, its rank there, its gap."""
    best = min((t for t in truth.values() if t["value"] is not None), key=lambda t: t["rank"])
    found = truth.get(trial_id(result["params"]))
    if found is None or found["value"] is None:
        result.update(truth_value=None, truth_rank=found and found["rank"], gap=None)
        return
    sign = 1.0 if direction == "min" else -1.0
    gap = sign * (found["value"] - best["value"]) / abs(best["value"])
    result.update(truth_value=found["value"], truth_rank=found["rank"], gap=gap)


def rungs(epochs: int, min_epochs: int = 1) -> list[int]:
    """Halving's rungs: min_epochs * eta^k below the budget, then the budget."""
    below = [min_epochs * ETA**k for k in range(epochs)]
    return [e for e in below if e < epochs] + [epochs]


def ranked_after(truth: dict, trials, epoch: int, direction: str) -> list[str]:
    """`trials` best first by their objective after `epoch` epochs (None, or diverged: last), ties by id."""
    sign = 1.0 if direction == "min" else -1.0

    def key(t):
        history = truth[t]["history"]
        value = history[epoch - 1] if len(history) >= epoch else None
        return (value is None, 0.0 if value is None else sign * value, t)

    return sorted(trials, key=key)


def simulated_halving(truth: dict, epochs: int, direction: str, min_epochs: int) -> str:
    """The winner grid-halving picks if resumed training equals straight training: successive
    halving replayed on the full grid's histories (best ceil(n / eta) go on, ties by trial id)."""
    candidates = sorted(truth)
    for rung in rungs(epochs, min_epochs)[:-1]:
        candidates = ranked_after(truth, candidates, rung, direction)[: math.ceil(len(candidates) / ETA)]
    return ranked_after(truth, candidates, epochs, direction)[0]


def misleading(truth: dict, epochs: int, direction: str) -> list[str]:
    """How early rankings compare with the final one: per rung, where its leader ends up and the
    rank correlation (Spearman) with the ranking after the budget."""
    ok = [t for t in truth if truth[t]["value"] is not None]
    final = {t: r for r, t in enumerate(sorted(ok, key=lambda t: truth[t]["rank"]))}
    lines = []
    for rung in rungs(epochs)[:-1]:
        early = ranked_after(truth, ok, rung, direction)
        position = {t: r for r, t in enumerate(early)}
        n = len(ok)
        rho = 1 - 6 * sum((position[t] - final[t]) ** 2 for t in ok) / (n * (n * n - 1))
        lines.append(
            f"after {rung:2d} epochs: the leader ranks {truth[early[0]]['rank']} after {epochs}; "
            f"the final winner ranks {position[min(ok, key=lambda t: truth[t]['rank'])] + 1}; "
            f"Spearman {rho:.2f}"
        )
    return lines


def label(run: dict) -> str:
    """The method, and for halving its min_epochs."""
    return run["method"] + (f" (min_epochs {run['min_epochs']})" if run.get("min_epochs") else "")


def describe(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(params.items()))


def cell(value, form: str) -> str:
    return "-" if value is None else format(value, form)


def report(runs: list[dict], truth: dict, grid_wall: float, epochs: int, direction: str) -> list[str]:
    n = len(truth)
    lines = [
        f"| method | seed | wall s | CPU s | peak MiB | wall / grid | epochs trained | candidates | winner | "
        f"its objective after {epochs} epochs (grid) | its rank of {n} | gap to best |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {label(r)} | {r['seed'] if r['method'] in SEEDED else '-'} | {r['wall']:.1f} | {r['cpu']:.1f} | "
            f"{r['peak_mib']:.0f} | {r['wall'] / grid_wall:.2f}x | {r['epochs']:,} | {r['candidates']} | "
            f"{describe(r['params'])} | {cell(r.get('truth_value'), '.5f')} | {cell(r.get('truth_rank'), 'd')} | "
            f"{cell(r.get('gap'), '+.1%')} |"
        )
    methods = list(dict.fromkeys(label(r) for r in runs))
    if any(sum(label(r) == m for r in runs) > 1 for m in methods):
        lines += ["", "| method | runs | median wall / grid | median epochs | median gap | worst rank | within 2% |",
                  "|---|---|---|---|---|---|---|"]
        for m in methods:
            mine = [r for r in runs if label(r) == m]
            gaps = [r["gap"] for r in mine if r.get("gap") is not None]
            lines.append(
                f"| {m} | {len(mine)} | {statistics.median(r['wall'] for r in mine) / grid_wall:.2f}x | "
                f"{statistics.median(r['epochs'] for r in mine):,.0f} | "
                f"{cell(statistics.median(gaps) if gaps else None, '+.1%')} | "
                f"{max((r.get('truth_rank') or n + 1) for r in mine)} | "
                f"{sum(g <= WITHIN for g in gaps)} of {len(mine)} |"
            )
    for r in runs:
        if r.get("leaderboard_epochs", r.get("history_epochs")) != r.get("history_epochs"):
            lines.append(f"\nNOTE {label(r)} seed {r['seed']}: the leaderboard's epochs add up to "
                         f"{r['leaderboard_epochs']}, the trials' history files to {r['history_epochs']}")
    lines += ["", "Targets:"]
    if not any(r["method"].endswith("halving") for r in runs):
        lines.append("- none measured: no halving method in this run")
    hyperband = [r for r in runs if r["method"] == "hyperband"]
    for r in runs:
        if not r["method"].endswith("halving"):
            continue
        name = label(r) + (f" (seed {r['seed']})" if r["method"] in SEEDED else "")
        found = r.get("gap") is not None and r["gap"] <= WITHIN
        fast = r["wall"] <= WALL_SHARE * grid_wall
        lines.append(
            f"- {name}: winner {cell(r.get('gap'), '+.1%')} from the best (target <= {WITHIN:.0%}), "
            f"{r['wall'] / grid_wall:.0%} of the grid's wall (target <= {WALL_SHARE:.0%}): "
            f"{'met' if found and fast else 'NOT met'}"
        )
        for h in hyperband:
            better = r.get("gap") is not None and (h.get("gap") is None or r["gap"] < h["gap"])
            lines.append(
                f"  - against Hyperband (seed {h['seed']}): wall {r['wall']:.0f} s vs {h['wall']:.0f} s, gap "
                f"{cell(r.get('gap'), '+.1%')} vs {cell(h.get('gap'), '+.1%')}: "
                f"{'met' if better and r['wall'] <= h['wall'] else 'NOT met'}"
            )
    lines += ["", f"W3's early rankings, from the full grid's histories ({n} combinations):",
              *(f"- {line}" for line in misleading(truth, epochs, direction))]
    for min_epochs in sorted({r["min_epochs"] for r in runs if r.get("min_epochs")}):
        expected = simulated_halving(truth, epochs, direction, min_epochs)
        lines.append(
            f"- grid-halving with min_epochs {min_epochs} should pick {describe(truth[expected]['params'])} "
            f"(rank {truth[expected]['rank']}), if resumed training equals straight training"
        )
    return lines


def version(name: str) -> str:
    """A package's version, or "not installed" (keras-tuner is only needed for hyperband)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    versions = ", ".join(
        f"{name} {version(name)}" for name in ("tensorflow", "keras", "snakemake", "keras-tuner", "optuna")
    )
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.platform()}; {versions}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=KERASGRID_METHODS + IN_PROCESS_METHODS,
                        choices=KERASGRID_METHODS + IN_PROCESS_METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="seeds of random-halving, hyperband and optuna; the others run once")
    parser.add_argument("--min-epochs", nargs="+", type=int, default=[1, 3],
                        help="halving's min_epochs: grid-halving and random-halving run once per value")
    parser.add_argument("--json", default="bench_search.json", help="raw figures, rewritten after every run")
    parser.add_argument("--truth", help="an earlier --json holding the full grid's run")
    config = yaml.safe_load(WORKLOAD.read_text())
    parser.add_argument("--optuna-trials", type=int, default=count_trials(config["grid"]),
                        help="Optuna's trial count (default: the grid's, as many candidates as grid-halving)")
    args = parser.parse_args()
    objective, epochs = config["objective"], config["budget"]["epochs"]
    saved = {"machine": machine(), "command": sys.argv, "workload": config, "runs": []}
    print(f"# {saved['machine']}", flush=True)
    truth, grid_wall = None, None
    if args.truth:
        earlier = json.loads(Path(args.truth).read_text())
        truth, grid_wall = earlier["truth"], earlier["grid_wall"]
        saved.update(truth=truth, grid_wall=grid_wall, truth_from=args.truth)
        print(f"# ground truth and the grid's wall ({grid_wall:.1f} s) from {args.truth}")
    elif "grid" not in args.methods:
        parser.error("without the grid method there is no ground truth: add grid, or give --truth")

    # The full grid first: every other run is measured against it.
    order = sorted(args.methods, key=lambda m: m != "grid")
    with tempfile.TemporaryDirectory() as tmp:
        for method in order:
            halving = method.endswith("halving")
            for seed, min_epochs in itertools.product(args.seeds if method in SEEDED else args.seeds[:1],
                                                      args.min_epochs if halving else [None]):
                scratch = Path(tmp) / f"{method}-{seed}-{min_epochs}"
                if method in KERASGRID_METHODS:
                    result = run_kerasgrid(method, seed, min_epochs or 1, scratch, objective["metric"])
                else:
                    result = run_in_process(method, seed, scratch, args.optuna_trials)
                result.update(method=method, seed=seed, min_epochs=min_epochs)
                if method == "grid":
                    truth, grid_wall = result.pop("truth"), result["wall"]
                    saved.update(truth=truth, grid_wall=grid_wall)
                yardstick(result, truth, objective["direction"])
                saved["runs"].append(result)
                Path(args.json).write_text(json.dumps(saved, indent=1))
                print(f"{label(result)} seed {seed}: wall {result['wall']:.1f} s, cpu {result['cpu']:.1f} s, "
                      f"{result['epochs']} epochs, winner {describe(result['params'])}, "
                      f"rank {result.get('truth_rank')} in the grid", flush=True)
    print()
    print("\n".join(report(saved["runs"], truth, grid_wall, epochs, objective["direction"])))


if __name__ == "__main__":
    main()
