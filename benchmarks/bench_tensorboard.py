"""What `tensorboard: true` costs a trial, and that off costs nothing against the code before it.

    python benchmarks/bench_tensorboard.py [--reps 3] [--baseline main] [--config config.yaml]

Each variant trains every trial of the config, one after the other, in one warm process (as a
worker does): `baseline` with kerasgrid as committed on the baseline git ref (before TensorBoard
logging existed), `off` and `on` with this checkout's kerasgrid, tensorboard off and on. Variants
alternate in order each repetition. Printed: per variant, the medians over repetitions of the
trials' summed wall and CPU seconds (TensorFlow's import excluded), and their ratios to the
baseline's. On a shared machine CPU seconds are the steadier measure.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run in a child process: trains every trial of CONFIG with run_trial, prints their wall seconds.
TRAIN_ALL = """
import json, shutil, sys, tempfile, time
from pathlib import Path
import yaml
from kerasgrid.config import fill_defaults, load_schema, sweep_from_config
from kerasgrid.trial.backends import configure
from kerasgrid.trial.training import run_trial

# The schema's defaults, as the workflow fills them (this checkout's schema, for both variants).
config = fill_defaults(yaml.safe_load(open(sys.argv[1])), load_schema(sys.argv[3]))
config["objective"].setdefault("metric", "val_loss")
config["objective"].setdefault("direction", "min")
sweep = sweep_from_config(config, sys.argv[1])
configure("tensorflow", 1, 0)  # TensorFlow imported before timing, as in a warm worker
out = Path(tempfile.mkdtemp())
wall = cpu = 0.0
for trial, params in sweep.trials.items():
    extra = {"tensorboard_dir": out / "tensorboard" / trial} if sys.argv[2] == "on" else {}
    started, cpu_started = time.perf_counter(), time.process_time()
    run_trial(params, sweep.settings(), out / trial, objective=dict(sweep.objective), **extra)
    wall += time.perf_counter() - started
    cpu += time.process_time() - cpu_started
shutil.rmtree(out)
print("SECONDS " + json.dumps([wall, cpu]))
"""


def baseline_tree(ref: str) -> str:
    """The baseline's kerasgrid package, extracted from git into a temporary folder."""
    folder = tempfile.mkdtemp(prefix="kerasgrid-baseline-")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "kerasgrid"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def run(variant: str, config: str, baseline: str) -> list[float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if variant == "baseline":
        env["PYTHONPATH"] = baseline  # ahead of the editable install of this checkout
    result = subprocess.run([sys.executable, "-c", TRAIN_ALL, config, "on" if variant == "on" else "off",
                             str(REPO / "workflow/schemas/config.schema.yaml")],
                            cwd=REPO, env=env, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("SECONDS "))
    return json.loads(line[len("SECONDS "):])  # wall, CPU


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="git ref of the code before (default: main)")
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    args = parser.parse_args()
    baseline = baseline_tree(args.baseline)
    variants = ["baseline", "off", "on"]
    seconds = {variant: [] for variant in variants}
    for rep in range(args.reps):
        order = variants[rep % 3:] + variants[: rep % 3]
        for variant in order:
            seconds[variant].append(run(variant, args.config, baseline))
            wall, cpu = seconds[variant][-1]
            print(f"rep {rep} {variant}: wall {wall:.2f} s, CPU {cpu:.2f} s", flush=True)
    shutil.rmtree(baseline)
    base = [statistics.median(s[i] for s in seconds["baseline"]) for i in (0, 1)]
    print("| variant | wall s (median) | CPU s (median) | wall runs | CPU runs | wall / baseline | CPU / baseline |")
    print("|---|---|---|---|---|---|---|")
    for variant in variants:
        wall, cpu = (statistics.median(s[i] for s in seconds[variant]) for i in (0, 1))
        runs = [" / ".join(f"{s[i]:.2f}" for s in seconds[variant]) for i in (0, 1)]
        print(f"| {variant} | {wall:.2f} | {cpu:.2f} | {runs[0]} | {runs[1]} | {wall / base[0]:.3f}x | {cpu / base[1]:.3f}x |")

if __name__ == "__main__":
    main()
