"""Keras' backends side by side (issue 31): the same sweeps on TensorFlow and on JAX (and PyTorch).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_backends.py --keep /tmp/backends \
        [--backends tensorflow jax] [--reps 3] [--parts w1 cnn27 halving]

- w1: the default sweep (config.yaml, 12 MLPs) against the seed-style in-process TensorFlow loop
  (benchmarks/loops.py baseline), kerasgrid once per backend; `--reps` repetitions, the order
  rotated each time so that a noisy machine's drift hits every contender alike; medians.
- cnn27: the 27 CNNs of benchmarks/cnn27.yaml, the full grid, once per backend.
- halving: the same 27 CNNs under successive halving (bench_search.py's grid-halving), once per backend.

Every run is `snakemake --cores 2` in a fresh folder under --keep (kept for a look), as a user runs
it. Then the leaderboards side by side: for each sweep, how far each trial's objective on one
backend is from the same trial's on the first backend (the backends draw initial weights
differently, so they differ beyond the last digits), the rank correlation of the two orders, and
whether the winner is the same.
"""

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import machine, method_config  # noqa: E402
from bench_sweep import run_tool, workload  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CNN27 = REPO / "benchmarks" / "cnn27.yaml"


def board(results: Path) -> dict[str, dict]:
    """The leaderboard's rows by trial id (its final rung's, under halving)."""
    with open(results / "leaderboard.tsv", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return {row["trial_id"]: row for row in rows}


def compare(boards: dict[str, dict], metric: str) -> list[str]:
    """How far each backend's leaderboard is from the first one's: the objective of the trials
    both ranked, their order, and the winner."""
    from scipy.stats import kendalltau

    names = list(boards)
    first = boards[names[0]]
    lines = []
    for name in names[1:]:
        other = boards[name]
        shared = [t for t in first if t in other and first[t]["status"] == other[t]["status"] == "ok"]
        values = [(float(first[t][metric]), float(other[t][metric])) for t in shared]
        gaps = [abs(a - b) for a, b in values]
        relative = [abs(a - b) / abs(a) for a, b in values if a]
        tau = kendalltau([a for a, _ in values], [b for _, b in values]).statistic if len(values) > 1 else float("nan")
        winner = lambda rows: next(iter(rows.values()))["trial_id"]  # noqa: E731 - the leaderboard is ranked
        lines.append(
            f"{name} against {names[0]}: {len(shared)} trials; {metric} differs by {statistics.median(gaps):.2g} "
            f"(median), {max(gaps):.2g} (most), {100 * statistics.median(relative):.1f}% of it (median); "
            f"Kendall's tau of the two orders {tau:.2f}; winner {'the same' if winner(first) == winner(other) else 'DIFFERENT'} "
            f"({winner(first)} / {winner(other)})")
    return lines


def sweep(config: dict, backend: str, folder: Path) -> dict:
    config = {**config, "backend": backend}
    result = run_tool("kerasgrid", config, folder)
    result["board"] = board(folder / "results")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, required=True, help="a folder for every run's files (made anew)")
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--parts", nargs="+", default=["w1", "cnn27", "halving"])
    args = parser.parse_args()
    if args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"{args.keep} is not empty")
    print(f"# {machine()}")
    lines = ["| sweep | contender | wall s (median) | runs | wall / loop | wall / kerasgrid on tensorflow | winner |",
             "|---|---|---|---|---|---|---|"]
    comparisons = []
    if "w1" in args.parts:
        config = workload("W1")
        contenders = ["baseline", *args.backends]
        walls = {name: [] for name in contenders}
        boards, winners = {}, {}
        for rep in range(args.reps):
            for name in contenders[rep % len(contenders):] + contenders[: rep % len(contenders)]:
                folder = args.keep / f"w1-{name}-{rep}"
                result = (run_tool("baseline", config, folder) if name == "baseline"
                          else sweep(config, name, folder))
                walls[name].append(result["wall"])
                winners[name] = result["params"]
                if name != "baseline":
                    boards[name] = result["board"]
                print(f"w1 rep {rep} {name:10s} wall {result['wall']:6.1f} s  winner {result['params']}", flush=True)
        loop = statistics.median(walls["baseline"])
        tf = statistics.median(walls["tensorflow"]) if "tensorflow" in walls else None
        for name in contenders:
            wall = statistics.median(walls[name])
            label = "seed-style loop (TensorFlow)" if name == "baseline" else f"kerasgrid, backend {name}"
            lines.append(f"| W1 | {label} | {wall:.1f} | {len(walls[name])} | {wall / loop:.2f}x | "
                         f"{f'{wall / tf:.2f}x' if tf and name != 'baseline' else '-'} | {json.dumps(winners[name])} |")
        comparisons += [f"W1: {line}" for line in compare(boards, "objective")]
    for part, method in (("cnn27", "grid"), ("halving", "grid-halving")):
        if part not in args.parts:
            continue
        config = method_config(method, 0, workload=CNN27)
        boards, walls = {}, {}
        for name in args.backends:
            result = sweep(config, name, args.keep / f"{part}-{name}")
            boards[name], walls[name] = result["board"], result["wall"]
            print(f"{part} {name:10s} wall {result['wall']:6.1f} s  winner {result['params']}", flush=True)
            tf = walls.get("tensorflow")
            ratio = f"{walls[name] / tf:.2f}x" if tf else "-"
            lines.append(f"| 27 CNNs, {method} | kerasgrid, backend {name} | {walls[name]:.1f} | 1 | - | {ratio} | "
                         f"{json.dumps(result['params'])} |")
        comparisons += [f"27 CNNs, {method}: {line}" for line in compare(boards, "objective")]
    print()
    print("\n".join(lines))
    print()
    print("\n".join(f"- {line}" for line in comparisons))
    Path(args.keep / "walls.yaml").write_text(yaml.safe_dump({"lines": lines, "comparisons": comparisons}))


if __name__ == "__main__":
    main()
