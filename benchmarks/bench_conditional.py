"""Conditional hyperparameters (issue 24): a `choose` against the flat product a user writes today.

    python benchmarks/bench_conditional.py [--json FILE]

One space on the bundled digits (benchmarks/cond_digits.py, nothing downloaded): an MLP of
`units` ReLUs whose optimizer is Adam (its `lr`) or SGD (its `lr` and `momentum`).
  conditional   grid: {units, optimizer: {choose: {adam: {lr}, sgd: {lr, momentum}}}}, Adam's lr
                0.003 to 0.03, SGD's 0.03 to 0.3: 2 x (3 + 3 x 2) = 18 trials
  flat          the same values as one product, as written without choose: optimizer [adam, sgd]
                x lr (every branch's values, 5 distinct) x momentum x units = 2 x 5 x 2 x 2 = 40
                trials; Adam ignores momentum and trains twice each, and every lr goes to both
Each runs `snakemake --cores 2` from an empty folder, the whole workflow (ranking, plots, the
winner's model). Reported: trials trained, wall seconds, the winner and its objective, and
whether the flat grid's winner is the conditional one's (the same model: momentum dropped from an
Adam winner). Wall times are a ratio within one run: run it beside other work (nice) and the
ratio holds, not the seconds.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "benchmarks", "profiles"]
# Each optimizer's learning rates where it trains well; the flat grid can only give every rate to both.
UNITS, ADAM_LR, SGD_LR, MOMENTUM = [32, 128], [0.003, 0.01, 0.03], [0.03, 0.1, 0.3], [0.0, 0.9]


def config(grid: dict) -> dict:
    return {
        "model": "benchmarks/cond_digits.py:build_model",
        "data": {"train": "benchmarks/cond_digits.py:train_data", "validation": "benchmarks/cond_digits.py:val_data"},
        "budget": {"epochs": 6, "steps_per_epoch": 20, "validation_steps": 1},
        "objective": {"metric": "val_loss", "direction": "min"},
        "seed": 0,
        "grid": grid,
    }


GRIDS = {
    "conditional": {"units": UNITS, "optimizer": {"choose": {"adam": {"lr": ADAM_LR},
                                                              "sgd": {"lr": SGD_LR, "momentum": MOMENTUM}}}},
    "flat": {"units": UNITS, "optimizer": ["adam", "sgd"], "lr": ADAM_LR + SGD_LR, "momentum": MOMENTUM},
}


def run(name: str, scratch: Path) -> dict:
    folder = scratch / name
    folder.mkdir(parents=True)
    for entry in WORKFLOW_FILES:
        source = REPO / entry
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, folder / entry)
    (folder / "bench.yaml").write_text(yaml.safe_dump(config(GRIDS[name])))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SNAKEMAKE")}
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "bench.yaml"], cwd=folder,
                   env=env, check=True, capture_output=True)
    wall = time.monotonic() - start
    best = yaml.safe_load((folder / "results/best_params.yaml").read_text())
    return {"trials": len(list(folder.glob("results/trials/*/metrics.json"))), "wall_seconds": round(wall, 1),
            "winner": best["params"], "objective": best["objective"]["value"]}


def model_of(params: dict) -> dict:
    """The model a trial trains: Adam ignores momentum."""
    return {key: value for key, value in params.items() if not (key == "momentum" and params["optimizer"] == "adam")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        figures = {name: run(name, Path(tmp)) for name in ("conditional", "flat")}
    cond, flat = figures["conditional"], figures["flat"]
    figures["same_winner"] = model_of(cond["winner"]) == model_of(flat["winner"])
    figures["trials_ratio"] = round(cond["trials"] / flat["trials"], 3)
    figures["wall_ratio"] = round(cond["wall_seconds"] / flat["wall_seconds"], 3)
    print("| grid | trials trained | wall (s) | winner | val_loss |\n|---|---|---|---|---|")
    for name in ("conditional", "flat"):
        f = figures[name]
        print(f"| {name} | {f['trials']} | {f['wall_seconds']} | {json.dumps(f['winner'])} | {f['objective']:.4f} |")
    print(f"same winner: {figures['same_winner']}; conditional/flat: {figures['trials_ratio']} of the trials, "
          f"{figures['wall_ratio']} of the wall")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
