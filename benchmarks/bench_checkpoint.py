"""What checkpoints inside a trial cost (issue 30): a trial's wall with `checkpoint.minutes` at its
default (10), at a short interval, and off (0), against the code before checkpoints, in one run.

    python benchmarks/bench_checkpoint.py [--reps 3] [--short 0.01] [--baseline main]

Two workloads: the default sweep (config.yaml: 12 digits MLPs, 10 epochs of 40 batches), and one
model of about 5M parameters (`big_model` below: 64-2000-2000-512-10) on the same data and budget.
Each variant trains a workload's trials with run_trial, one after the other, in a child process
(as a warm worker does; TensorFlow's import is not timed): `baseline` with kerasgrid as committed
on the baseline git ref (no checkpoint callback at all), `off`, `default` and `short` with this
checkout's, checkpoint.minutes 0, 10 and `--short`. The variants alternate within each
repetition, each first in turn. Printed: per workload and variant, the medians over repetitions of
the trials' summed wall and CPU seconds, their ratios to `off` and to `baseline`, the checkpoints
saved and the seconds saving took (the records' checkpoint_seconds, timed around each save: the
cost itself, which a shared machine's noise in the walls hides); then the checkpoints' callback's
cost at a batch end where it saves nothing, in microseconds.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench_tensorboard import baseline_tree  # the code before, from git

REPO = Path(__file__).resolve().parent.parent


def big_model(params):
    """About 5.1M parameters: the 64 features of the digits through 2000, 2000 and 512 units."""
    import keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2000, "relu"), keras.layers.Dense(2000, "relu"),
                              keras.layers.Dense(512, "relu"), keras.layers.Dense(10, "softmax")])
    model.compile(optimizer=keras.optimizers.Adam(params.get("lr", 0.001)), loss="categorical_crossentropy")
    return model


# Run in a child process: trains the workload's trials, prints their wall and CPU seconds.
TRAIN_ALL = """
import json, shutil, sys, tempfile, time
from pathlib import Path
import yaml
from kerasgrid.config import fill_defaults, load_schema, sweep_from_config
from kerasgrid.trial.backends import configure
from kerasgrid.trial.training import run_trial

workload, minutes, schema = sys.argv[1], sys.argv[2], sys.argv[3]
config = fill_defaults(yaml.safe_load(open("config.yaml")), load_schema(schema))
config.pop("checkpoint", None)  # the baseline's Sweep has no such field
sweep = sweep_from_config(config, "config.yaml")
settings = sweep.settings()
trials = list(sweep.trials.values())
if workload == "big":
    settings = {**settings, "model": "benchmarks/bench_checkpoint.py:big_model"}
    trials = [{"lr": 0.001}]
extra = {} if minutes == "baseline" else {"checkpoint_minutes": float(minutes)}
configure("tensorflow", 1, 0)  # TensorFlow imported before timing, as in a warm worker
out = Path(tempfile.mkdtemp())
wall = cpu = saving = 0.0
saved = batches = 0
for i, params in enumerate(trials):
    started, cpu_started = time.perf_counter(), time.process_time()
    record = run_trial(params, settings, out / str(i), objective=dict(sweep.objective), **extra)
    wall += time.perf_counter() - started
    cpu += time.process_time() - cpu_started
    saved += record.get("checkpoints_saved", 0)
    saving += record.get("checkpoint_seconds", 0)
    batches += settings["budget"]["epochs"] * settings["budget"]["steps_per_epoch"]
shutil.rmtree(out)
print("SECONDS " + json.dumps([wall, cpu, saved, saving, batches]))
"""

# Run in a child process: the checkpoints' callback's cost at a batch's end where it saves nothing
# (a flag and the clock read), called as Keras calls it, in microseconds.
PER_BATCH = """
import json, sys, time
from pathlib import Path
from kerasgrid.trial import checkpoint

restore, saver = checkpoint.callbacks_for(Path("unused"), {}, minutes=10, steps_per_epoch=10**9, epochs=2,
                                          state=None, watch=None, history_csv=Path("unused"))
saver.on_train_begin()
saver.on_epoch_begin(0)
logs = {"loss": 0.5}
calls = 200000
started = time.perf_counter()
for batch in range(calls):
    saver.on_train_batch_end(batch, logs)
print("MICROSECONDS " + json.dumps((time.perf_counter() - started) / calls * 1e6))
"""


def run(workload: str, minutes: str, baseline: str) -> list[float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": baseline if minutes == "baseline" else str(REPO)}  # ahead of the editable install
    result = subprocess.run([sys.executable, "-c", TRAIN_ALL, workload, minutes,
                             str(REPO / "workflow/schemas/config.schema.yaml")],
                            cwd=REPO, env=env, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("SECONDS "))
    return json.loads(line[len("SECONDS "):])  # wall, CPU, checkpoints saved, seconds saving, batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", default="default,big", help="default (the default sweep), big (5M)")
    parser.add_argument("--short", default="0.01", help="the short interval, in minutes (default 0.01: 0.6 s)")
    parser.add_argument("--baseline", default="main", help="git ref of the code before (default: main)")
    args = parser.parse_args()
    baseline = baseline_tree(args.baseline)
    variants = {"baseline": "baseline", "off": "0", "default": "10", "short": args.short}
    results = {}
    try:
        for workload in args.workloads.split(","):
            measured = {variant: [] for variant in variants}
            order = list(variants)
            for rep in range(args.reps):
                for variant in order[rep % len(order):] + order[:rep % len(order)]:
                    measured[variant].append(run(workload, variants[variant], baseline))
            median = {variant: [statistics.median(m[i] for m in runs) for i in range(5)]
                      for variant, runs in measured.items()}
            results[workload] = {
                variant: {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "checkpoints": saved,
                          "saving_s": round(saving, 3), "saving_share_of_wall": round(saving / wall, 4),
                          "ms_per_checkpoint": round(saving / saved * 1000, 1) if saved else None,
                          "ms_per_batch": round(median["off"][0] / batches * 1000, 3),
                          "wall_vs_off": round(wall / median["off"][0], 3), "cpu_vs_off": round(cpu / median["off"][1], 3),
                          "wall_vs_baseline": round(wall / median["baseline"][0], 3),
                          "cpu_vs_baseline": round(cpu / median["baseline"][1], 3),
                          "walls": [round(m[0], 2) for m in measured[variant]],
                          "cpus": [round(m[1], 2) for m in measured[variant]]}
                for variant, (wall, cpu, saved, saving, batches) in median.items()}
            print(json.dumps({workload: results[workload]}), flush=True)
        per_batch = subprocess.run([sys.executable, "-c", PER_BATCH], cwd=REPO, capture_output=True, text=True,
                                   check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
        print(per_batch.strip(), flush=True)
    finally:
        shutil.rmtree(baseline, ignore_errors=True)


if __name__ == "__main__":
    main()
