"""What the estimate before training costs (issue 24): kerasgrid.running.eta.estimate on big grids.

    .venv/bin/python benchmarks/bench_eta.py [--sizes 10000 100000] [--finished 0 1000 10000]

For each grid size and count of finished trials (records written into a scratch results/trials,
as a sweep leaves them), the seconds `estimate` takes: listing the trial folders, a stat of each
finished one's metrics.json, and reading a sample of at most 64 records. This is what onstart adds
to a run before its first job; `snakemake -n` never calls it. Best of 3.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from kerasgrid.config import sweep_from_config
from kerasgrid.running import eta

BUDGET = {"epochs": 5, "steps_per_epoch": 10, "validation_steps": 2, "batch_size": 32}


def config(size: int) -> dict:
    return {
        "model": "examples/digits.py:build_model",
        "data": {"train": "examples/digits.py:train_data"},
        "budget": BUDGET,
        "objective": {"metric": "loss", "direction": "min"},
        "seed": 0,
        "max_trials": size,
        "search": {"strategy": "grid", "trials": None},
        "grid": {"a": list(range(size // 100)), "b": list(range(100))},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--finished", type=int, nargs="*", default=[0, 1_000, 10_000])
    args = parser.parse_args()
    for size in args.sizes:
        sweep = sweep_from_config(config(size), "bench.yaml")
        trials = sorted(sweep.trials)
        for finished in args.finished:
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch) / "trials"
                folder.mkdir()
                for trial in trials[:finished]:
                    (folder / trial).mkdir()
                    (folder / trial / "metrics.json").write_text(json.dumps({
                        "trial_id": trial, "status": "ok", "budget": BUDGET, "epochs_run": 5, "fit_seconds": 10.0,
                        "wall_seconds": 11.0, "metrics": {"loss": {"final": 1.0}}}))
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    found = eta.estimate(sweep, cores=2, trials_dir=folder)
                    best = min(best, time.perf_counter() - started)
                print(f"{size:>7,} trials, {finished:>6,} finished: {best:.3f} s "
                      f"(left {found.left:,}, pace of {found.pace.measured if found.pace else 0} records)")


if __name__ == "__main__":
    main()
