"""Several objectives on W3 (issue 22): how much of the true Pareto front each search reaches.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_motpe.py [--seeds 0 1 2] [--methods ...] [--json FILE]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_motpe.py --json FILE --replay 50

W3 (benchmarks/w3.yaml, w3.py: 81 MLPs on the bundled digits, 27 epochs) with two objectives,
`val_loss` and `params_count` (trainable parameters), both minimised:
  grid          kerasgrid, every combination: the true front, and the baseline of every ratio
  halving       kerasgrid, the grid with search.halving {eta: 3, min_epochs: 3} (rungs at 3, 9, 27),
                promotions by Pareto front; judged on the trials that reached the last rung
  tpe           kerasgrid, search {strategy: tpe, trials: 27, batch: 2}: multi-objective TPE
  random        kerasgrid, search {strategy: random, trials: 27}
  optuna-tpe    Optuna's study.optimize, directions [minimize, minimize], its TPESampler, 27 trials
  optuna-nsga2  the same with its NSGAIISampler (population 9: generation 0 random, then 2 evolved)
(benchmarks/motpe_loops.py). The seeded methods run once per --seeds value, which seeds the search
only; training is seeded by W3's seed everywhere, so a trial's values are the grid's for its params.

The yardstick is the hypervolume of the trials a method trained to the full budget (the points
it can offer as its front), computed by Optuna's own `optuna._hypervolume.compute_hypervolume`
(WFG; exact in 2-D) on objectives normalised over the full grid's ok trials: 0 the grid's best
value of each objective, 1 its worst, and the reference point (1.1, 1.1). Every run is measured as
bench_sweep.py measures runs (wall and CPU seconds of the process tree, peak RSS).

--replay N trains nothing: it replays tpe, random and the Optuna loops on the grid's measured
values (a lookup: training is deterministic here) over N search seeds, in seconds.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from bench_adaptive import machine
from bench_sweep import REPO, copy_workflow, measure
from kerasgrid.sweep.grid import count_trials, trial_id

WORKLOAD = REPO / "benchmarks" / "w3.yaml"
OBJECTIVES = [{"metric": "val_loss", "direction": "min"}, {"metric": "params_count", "direction": "min"}]
METHODS = ["tpe", "random", "optuna-tpe", "optuna-nsga2"]
POPULATION = 9
REFERENCE = 1.1  # the reference point, in normalised units, on every objective
TARGET = 0.95


def workload() -> dict:
    config = yaml.safe_load(WORKLOAD.read_text())
    config["objective"] = OBJECTIVES
    return config


def method_config(method: str, seed: int, trials: int) -> dict:
    config = workload()
    if method == "halving":
        config["search"] = {"strategy": "grid", "halving": {"eta": 3, "min_epochs": 3, "brackets": 1}}
    elif method == "tpe":
        config["search"] = {"strategy": "tpe", "trials": trials, "batch": 2, "seed": seed}
    elif method in ("random", "nsga2"):
        config["search"] = {"strategy": method, "trials": trials, "seed": seed}
        if method == "nsga2":
            config["search"].update(batch=2, population=POPULATION)
    return config


def points(results: Path, epochs: int) -> dict[str, list[float]]:
    """{trial id: [val_loss, params_count]} of every ok record trained to `epochs`."""
    found = {}
    for path in sorted((results / "trials").rglob("metrics.json")):
        record = json.loads(path.read_text())
        target = record.get("epochs_target") or record["budget"]["epochs"]
        if record["status"] == "ok" and target == epochs:
            found[record["trial_id"]] = [record["metrics"]["val_loss"]["final"], record["measures"]["params_count"]]
    return found


def run(method: str, seed: int, trials: int, scratch: Path) -> dict:
    scratch.mkdir(parents=True)
    config = method_config(method, seed, trials)
    epochs = config["budget"]["epochs"]
    if method.startswith("optuna"):
        for name in ("examples", "benchmarks"):
            shutil.copytree(REPO / name, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
        config["objective"] = OBJECTIVES[0]  # the loop measures params_count itself
        (scratch / "bench.yaml").write_text(yaml.safe_dump(config))
        out = scratch / "result.json"
        result = measure([sys.executable, str(REPO / "benchmarks/motpe_loops.py"), method, "bench.yaml", str(out),
                          "--seed", str(seed), "--trials", str(trials), "--population", str(POPULATION)], scratch)
        loop = json.loads(out.read_text())
        found = {trial_id(t["params"]): t["values"] for t in loop["tried"] if t["values"] is not None}
        result.update(trials=loop["trials"], distinct=loop["distinct"], epochs=loop["epochs"])
    else:
        copy_workflow(scratch)
        (scratch / "bench.yaml").write_text(yaml.safe_dump(config))
        result = measure([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "bench.yaml"], scratch)
        found = points(scratch / "results", epochs)
        result.update(trials=len(list((scratch / "results/trials").glob("*/metrics.json"))))
        result["distinct"] = result["trials"]
    result.pop("output")
    result.update(method=method, seed=seed, points=found)
    return result


def normaliser(truth: dict[str, list[float]], box: str):
    """Objectives scaled so that 0 is the best value of each and 1 the worst: over every ok trial
    of the grid (`box` "grid"), or over the true front alone, its ideal and nadir points ("front")."""
    keys = front_ids(truth) if box == "front" else truth
    values = np.array([truth[t] for t in keys], dtype=float)
    low, high = values.min(axis=0), values.max(axis=0)
    return lambda pts: (np.array(pts, dtype=float).reshape(-1, len(low)) - low) / (high - low)


def hypervolume(pts, scale) -> float:
    """Optuna's hypervolume of the points (scaled) against (REFERENCE, REFERENCE); points beyond
    the reference point add nothing and are left out, as Optuna requires."""
    from optuna._hypervolume import compute_hypervolume

    scaled = scale(pts) if pts else np.zeros((0, 2))
    inside = scaled[np.all(scaled <= REFERENCE, axis=1)]
    return float(compute_hypervolume(inside, np.full(2, REFERENCE))) if len(inside) else 0.0


BOXES = ("front", "grid")


def front_ids(truth: dict[str, list[float]]) -> set[str]:
    from kerasgrid.results.pareto import pareto_ranks

    ids = list(truth)
    return {tid for tid, rank in zip(ids, pareto_ranks([tuple(truth[t]) for t in ids])) if rank == 1}


def score(result: dict, truth: dict) -> None:
    """The run's hypervolume in both normalisations, as a share of the grid's; its true-front points."""
    mismatched = [t for t, v in result["points"].items() if t in truth and not np.allclose(v, truth[t], rtol=1e-6)]
    result.update(front_found=len(front_ids(truth) & set(result["points"])), mismatched=len(mismatched))
    for box in BOXES:
        scale = normaliser(truth, box)
        result[f"hv_{box}"] = hypervolume(list(result["points"].values()), scale) / hypervolume(list(truth.values()), scale)


def replay(method: str, seed: int, trials: int, truth: dict, config: dict) -> list[str]:
    """The trials `method` would train, told the grid's measured values."""
    from kerasgrid.search import ADAPTIVE_SAMPLERS, Observation, RandomSampler, parse_space
    from kerasgrid.search.rounds import round_seed, round_sizes

    space = parse_space(config["grid"], str(WORKLOAD))
    if method == "random":
        return list(RandomSampler(trials).candidates(space, seed))
    if method in ADAPTIVE_SAMPLERS:
        history = []
        sampler = ADAPTIVE_SAMPLERS[method](**({"population": POPULATION} if method == "nsga2" else {}))
        for index, size in enumerate(round_sizes(trials, 2)):
            for tid, params in sampler.propose(space, history, size, round_seed(seed, index), ("min", "min")).items():
                values = tuple(truth[tid]) if tid in truth else None
                history.append(Observation(tid, params, "ok" if values else "failed", values and values[0], values,
                                           round=index))
        return [o.trial_id for o in history]
    import optuna

    from kerasgrid.sweep.grid import grid_values

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values = grid_values(config["grid"])
    sampler = (optuna.samplers.TPESampler(seed=seed) if method == "optuna-tpe"
               else optuna.samplers.NSGAIISampler(seed=seed, population_size=POPULATION))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    def measured(trial):
        tid = trial_id({key: trial.suggest_categorical(key, options) for key, options in values.items()})
        return tuple(truth[tid]) if tid in truth else (float("nan"), float("nan"))

    study.optimize(measured, n_trials=trials)
    return [trial_id(t.params) for t in study.trials]


def replayed(methods, seeds: int, trials: int, truth: dict, config: dict) -> dict:
    """{method: {box: [share of the grid's hypervolume, per search seed 0, 1, ...]}} by lookup."""
    shares = {}
    for method in methods:
        tried = [[truth[t] for t in dict.fromkeys(replay(method, seed, trials, truth, config)) if t in truth]
                 for seed in range(seeds)]
        shares[method] = {}
        for box in BOXES:
            scale = normaliser(truth, box)
            whole = hypervolume(list(truth.values()), scale)
            shares[method][box] = [hypervolume(points, scale) / whole for points in tried]
    return shares


def report(saved: dict, replays: dict | None) -> list[str]:
    grid, truth = saved["grid"], saved["truth"]
    front = sorted(front_ids(truth), key=lambda t: truth[t][1])
    lines = [f"The true front (of the grid's {len(truth)} ok trials): "
             + "; ".join(f"val_loss {truth[t][0]:.5f} with {truth[t][1]:,} parameters" for t in front), "",
             "| run | seed | wall s | CPU s | wall / grid | trials (distinct) | hypervolume, front box | grid box | "
             "true front points | values unlike the grid's |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in [grid] + ([saved["halving"]] if "halving" in saved else []) + saved["runs"]:
        lines.append(f"| {r['method']} | {r['seed'] if r['method'] not in ('grid', 'halving') else '-'} | {r['wall']:.1f} | "
                     f"{r['cpu']:.1f} | {r['wall'] / grid['wall']:.2f}x | {r['trials']} ({r['distinct']}) | "
                     f"{r['hv_front']:.1%} | {r['hv_grid']:.1%} | {r['front_found']} of {len(front)} | {r['mismatched']} |")
    if replays:
        seeds = len(next(iter(replays.values()))["front"])
        lines += ["", f"Shares of the grid's hypervolume by lookup on the grid's values (front box; grid box in brackets), "
                  f"search seeds 0-2, and over seeds 0-{seeds - 1}:", "",
                  "| method | seed 0 | seed 1 | seed 2 | median of 3 | median of all | mean of all | seeds at >= 95% |",
                  "|---|---|---|---|---|---|---|---|"]
        for method, by_box in replays.items():
            f, g = by_box["front"], by_box["grid"]
            lines.append(f"| {method} | " + " | ".join(f"{f[i]:.1%} ({g[i]:.1%})" for i in range(3)) +
                         f" | {statistics.median(f[:3]):.1%} ({statistics.median(g[:3]):.1%}) | {statistics.median(f):.1%} "
                         f"({statistics.median(g):.1%}) | {statistics.mean(f):.1%} ({statistics.mean(g):.1%}) | "
                         f"{sum(x >= TARGET for x in f)} ({sum(x >= TARGET for x in g)}) of {seeds} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["grid", "halving", *METHODS],
                        choices=["grid", "halving", *METHODS, "nsga2"], help="nsga2: kerasgrid's, for --replay")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", default="motpe.json", help="raw figures, rewritten after every run; reused if it exists")
    parser.add_argument("--replay", type=int, metavar="SEEDS", help="train nothing: report, with lookups over SEEDS seeds")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])  # this checkout's kerasgrid
    config = workload()
    trials = count_trials(config["grid"]) // 3
    path = Path(args.json)
    saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
    saved.setdefault("machine", machine())
    if args.replay:
        for r in [saved["grid"]] + ([saved["halving"]] if "halving" in saved else []) + saved["runs"]:
            score(r, saved["truth"])
        methods = [m for m in args.methods if m not in ("grid", "halving")]
        print("\n".join(report(saved, replayed(methods, args.replay, trials, saved["truth"], config))))
        return
    print(f"# {saved['machine']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "grid" not in saved:
            saved["grid"] = run("grid", 0, trials, Path(tmp) / "grid")
            saved["truth"] = saved["grid"]["points"]
            path.write_text(json.dumps(saved, indent=1))
            print(f"grid: wall {saved['grid']['wall']:.1f} s", flush=True)
        truth = saved["truth"]
        score(saved["grid"], truth)
        if "halving" in args.methods and "halving" not in saved:
            saved["halving"] = run("halving", 0, trials, Path(tmp) / "halving")
            score(saved["halving"], truth)
            path.write_text(json.dumps(saved, indent=1))
            print(f"halving: wall {saved['halving']['wall']:.1f} s, {saved['halving']['hv_front']:.1%}", flush=True)
        done = {(r["method"], r["seed"]) for r in saved["runs"]}
        for seed in args.seeds:
            for method in [m for m in args.methods if m not in ("grid", "halving")]:
                if (method, seed) in done:
                    continue
                result = run(method, seed, trials, Path(tmp) / f"{method}-{seed}")
                score(result, truth)
                saved["runs"].append(result)
                path.write_text(json.dumps(saved, indent=1))
                print(f"{method} seed {seed}: wall {result['wall']:.1f} s, {result['hv_front']:.1%} of the grid's "
                      f"hypervolume, {result['mismatched']} values unlike the grid's", flush=True)
    print("\n".join(report(saved, None)))


if __name__ == "__main__":
    main()
