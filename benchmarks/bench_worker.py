"""What a warm worker's trials leave behind: the garbage collector's time and the process's memory.

    .venv/bin/python benchmarks/bench_worker.py [--trials 40] [--model w3|wide] [--no-freeze]

Trains --trials trials one after another in this process, as a worker does (kerasgrid's
run_trial, then kerasgrid.running.workers.settle: Keras' clear_session() and gc.freeze()); --no-freeze
only clears the session, as workers did before. Every 10th trial it prints how long the last full
collection took (the one in clear_session() before each trial) and the process's RSS.
  w3    W3's best combination (benchmarks/w3.yaml) for one epoch: what a sweep's worker does
  wide  two hidden layers of 2,000 units on 64 inputs, trained with Adam for 2 steps: 4M
        parameters, which TensorFlow keeps after the trial (keras-team/keras#21090)
"""

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parent.parent
WIDE = """
import keras
import numpy as np


def build_model(params):
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2000, activation="relu"),
                              keras.layers.Dense(2000, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.001), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def train_data(params):
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 64)).astype("float32"), rng.integers(0, 10, 64)
"""


def settings_of(model: str, folder: Path) -> tuple[dict, dict]:
    from kerasgrid.config import sweep_from_config

    if model == "w3":
        config = yaml.safe_load((REPO / "benchmarks" / "w3.yaml").read_text())
        config["budget"]["epochs"] = 1
        shutil.copy(REPO / "benchmarks" / "w3.py", folder / "w3.py")
        config["model"], config["data"] = "w3.py:build_model", {"train": "w3.py:train_data", "validation": "w3.py:val_data"}
        params = {"dropout": 0.25, "layers": 2, "lr": 0.003, "units": 64}
    else:
        (folder / "wide.py").write_text(WIDE)
        config = {"model": "wide.py:build_model", "data": {"train": "wide.py:train_data"},
                  "budget": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 32}, "grid": {"x": [0]}}
        params = {"x": 0}
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return params, sweep_from_config(config, "bench").settings()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--model", choices=["w3", "wide"], default="w3")
    parser.add_argument("--no-freeze", action="store_true")
    args = parser.parse_args()

    import keras

    from kerasgrid.running.workers import settle
    from kerasgrid.trial.backends import configure
    from kerasgrid.trial.training import run_trial

    folder = Path(tempfile.mkdtemp())
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    params, settings = settings_of(args.model, folder)
    configure("tensorflow", 1, 0)
    settle()  # as a worker starts: TensorFlow's import out of the collector's sight
    full = []

    def timed(phase, info):
        if info["generation"] == 2:
            if phase == "start":
                timed.started = time.perf_counter()
            else:
                full.append(time.perf_counter() - timed.started)

    gc.callbacks.append(timed)
    print(f"# {args.model}, {'clear_session() only' if args.no_freeze else 'settle(): clear_session() and gc.freeze()'}")
    for trial in range(1, args.trials + 1):
        shutil.rmtree(folder / "out", ignore_errors=True)
        record = run_trial(params, settings, folder / "out" / "trial")
        keras.backend.clear_session() if args.no_freeze else settle()
        if trial % 10 == 0 or trial <= 5:
            rss = psutil.Process().memory_info().rss / 2**20
            print(f"trial {trial:4d}: wall {record['wall_seconds']:.3f} s, last full collection {full[-1]:.4f} s, "
                  f"RSS {rss:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
