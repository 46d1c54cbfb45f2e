"""Tuning on a fraction of the data, then confirming the finalists, against tuning on all of it.

    .venv/bin/python benchmarks/bench_fraction.py [--seeds 0 1 2] [--fraction 0.1] [--top 5] [--epochs 20]

(About 30 minutes on 2 cores; `--smoke` checks the script in 3.)

On the digits data (examples/digits.py's split, whole arrays) with benchmarks/digits_cnn.py's
small CNN and a 48-combination grid, for each seed, three sweeps from an empty results/, each
`snakemake --cores 2` up to results/best_params.yaml (the ranking and the winner; plots and the
winner's model are the same work for all three):

- full:       every combination on all the training data;
- stratified: every combination on `data.fraction` (kerasgrid's stratified draw), then the best
              `--top` confirmed on all the data (`confirm: {top: N}`);
- random:     the same with a plain seeded random draw of the same size (a data callable that
              takes the fraction and draws with numpy's `choice`), to show what stratifying buys.

Per seed and draw: whether the fraction's ranking of the full data's top 5 agrees with the full
data's (Kendall's tau between the two orders of those 5), whether the confirmed winner is the
full data's (or within 2% of its objective), and the wall time against the full sweep. The
confirmation trains with the full sweep's budget and seed, so a confirmed objective is exactly
what the full sweep recorded for that combination. Target (issue 12): the confirmed winner is the
full data's, or within 2% of it, in at most 40% of the full sweep's wall time.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sweep import REPO, copy_workflow, measure  # noqa: E402

from kerasgrid.results.confirm import kendall_tau  # noqa: E402
from kerasgrid.results.leaderboard import read_leaderboard  # noqa: E402

# The plain draw the stratified one is compared with: the same number of rows, numpy's choice.
PLAIN_DRAW = '''
import numpy as np

from examples.digits import train_arrays

SEED = {seed}


def plain(fraction=1.0):
    x, y = train_arrays()
    if fraction < 1:
        rows = np.sort(np.random.default_rng(SEED).choice(len(y), size=round(fraction * len(y)), replace=False))
        x, y = x[rows], y[rows]
    return x, y
'''


def config(seed: int, epochs: int, draw: str, fraction: float, top: int) -> dict:
    data = {"train": "examples/digits.py:train_arrays", "validation": "examples/digits.py:val_data"}
    extra = {}
    if draw != "full":
        data["fraction"] = fraction
        extra["confirm"] = {"top": top}
        if draw == "random":
            data["train"] = "plain_draw.py:plain"
    return {
        "model": "benchmarks/digits_cnn.py:build_model",
        "data": data,
        "budget": {"epochs": epochs, "steps_per_epoch": 40, "validation_steps": 10, "batch_size": 32},
        "objective": {"metric": "val_loss", "direction": "min"},
        "seed": seed,
        "grid": {
            "lr": [0.0003, 0.001, 0.003, 0.01],
            "act_in": ["relu", "tanh", "swish", "elu"],
            "act_out": ["sigmoid", "softmax", "tanh"],
            "loss": ["mean_squared_error"],
        },
        **extra,
    }


def sweep(scratch: Path, settings: dict, seed: int) -> dict:
    scratch.mkdir(parents=True)
    copy_workflow(scratch)
    (scratch / "plain_draw.py").write_text(PLAIN_DRAW.format(seed=seed))
    (scratch / "bench.yaml").write_text(yaml.safe_dump(settings))
    result = measure([str(REPO / ".venv/bin/snakemake"), "results/best_params.yaml", "--cores", "2",
                      "--configfile", "bench.yaml"], scratch)
    result.pop("output")
    result["rows"] = read_leaderboard(scratch / "results/leaderboard.tsv")
    result["best"] = yaml.safe_load((scratch / "results/best_params.yaml").read_text())
    return result


def compare(full: dict, tuned: dict, top: int) -> dict:
    """How the fraction's sweep did against the full one."""
    full_order = [row["trial_id"] for row in full["rows"] if row["status"] == "ok"]
    tuning_rank = {row["trial_id"]: int(row["tuning_rank"]) for row in tuned["rows"]}
    best_ids = full_order[:top]
    tau = kendall_tau(list(range(1, len(best_ids) + 1)), [tuning_rank[trial] for trial in best_ids])
    full_values = {row["trial_id"]: float(row["objective"]) for row in full["rows"] if row["objective"]}
    winner = tuned["best"]["trial_id"]
    best_value = full_values[full_order[0]]
    gap = (full_values[winner] - best_value) / abs(best_value)
    return {
        "tau_top": tau,
        "confirmed_tau": tuned["best"]["confirmation"]["kendall_tau"],
        "full_winner_among_finalists": full_order[0] in {r["trial_id"] for r in tuned["rows"] if r["confirmed"] == "yes"},
        "same_winner": winner == full_order[0],
        "gap": gap,
        "within_2pc": gap <= 0.02,
        "wall_ratio": tuned["wall"] / full["wall"],
        "agreement": tuned["best"]["confirmation"]["agreement"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--top", type=int, default=5)
    # 20 epochs of 40 steps: each full-data trial is mostly training, as in a real tuning; with few
    # epochs the per-trial start-up (about 1.5 s) dominates and a fraction saves little.
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--json", help="also write every run's figures to this file")
    parser.add_argument("--smoke", action="store_true", help="a 12-combination grid of 1 epoch: checks the script")
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}, {platform.platform()}")
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            runs = {}
            for draw in ("full", "stratified", "random"):
                settings = config(seed, args.epochs, draw, args.fraction, args.top)
                if args.smoke:
                    settings["grid"].update(lr=[0.001, 0.01], act_in=["relu", "tanh"])
                runs[draw] = sweep(Path(tmp) / f"{draw}-{seed}", settings, seed)
                print(f"seed {seed} {draw:10s} wall {runs[draw]['wall']:6.1f} s  cpu {runs[draw]['cpu']:6.1f} s  "
                      f"winner {runs[draw]['best']['params']} ({runs[draw]['best']['objective']['value']:.5f})", flush=True)
            for draw in ("stratified", "random"):
                figure = {"seed": seed, "draw": draw, "full_wall": runs["full"]["wall"], "wall": runs[draw]["wall"],
                          **compare(runs["full"], runs[draw], args.top)}
                figures.append(figure)
                winner = "the same" if figure["same_winner"] else f"{figure['gap']:+.1%} off"
                print(f"seed {seed} {draw:10s} tau(top {args.top}) {figure['tau_top']:+.2f}  winner {winner}  "
                      f"wall {figure['wall_ratio']:.2f}x  ({figure['agreement']})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    print()
    print(f"| draw | tau of the full data's top {args.top}, per seed | mean tau | confirmed winner = full data's "
          "(or within 2%) | wall / full sweep (median) |")
    print("|---|---|---|---|---|")
    for draw in ("stratified", "random"):
        mine = [f for f in figures if f["draw"] == draw]
        taus = [f["tau_top"] for f in mine]
        hits = sum(f["same_winner"] or f["within_2pc"] for f in mine)
        print(f"| {draw} | {' / '.join(f'{t:+.2f}' for t in taus)} | {statistics.fmean(taus):+.2f} | "
              f"{hits} of {len(mine)} | {statistics.median(f['wall_ratio'] for f in mine):.2f}x |")


if __name__ == "__main__":
    main()
