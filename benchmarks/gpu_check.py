"""On a machine with GPUs: one trial per GPU, then mirrored trials across all of them.

    .venv/bin/python benchmarks/gpu_check.py [--trials 8] [--cpu]

With the N GPUs kerasgrid finds (CUDA_VISIBLE_DEVICES, else nvidia-smi -L), in a scratch copy of
the workflow and with benchmarks/digits_cnn.py's small CNN on the default digits budget:

1. `--resources gpu=1`: the sweep of `--trials` trials, one trial at a time (the baseline);
2. `--resources gpu=N`: the same sweep, N trials at a time, each on a GPU of its own;
3. `distribute: {strategy: mirrored}` with `--set-resources train:gpu=N best_model:gpu=N`: two
   trials, each across all N GPUs (needs N >= 2).

For every trial it prints the devices TensorFlow trained on, the job's CUDA_VISIBLE_DEVICES, fit
and wall seconds and the objective; for every sweep its wall time, how many trials ran at once,
and whether every trial of step 2 had a GPU to itself. Each step starts from an empty results/.

--cpu runs the same steps on a machine without GPUs, to check the script and the plumbing: it
names two GPUs that do not exist (CUDA_VISIBLE_DEVICES=0,1: TensorFlow finds none and trains on
the CPU) and mirrors over two logical CPU devices. Its times say nothing about GPUs.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from bench_sweep import REPO, copy_workflow
from kerasgrid.trial.devices import visible_gpus



def sweep_config(model: str, trials: int, distribute: dict | None = None) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["model"] = model
    config["grid"] = {
        "lr": [round(0.0005 * (i + 1), 4) for i in range(trials)],
        "act_in": ["relu"],
        "act_out": ["softmax"],
        "loss": ["categorical_crossentropy"],
    }
    if distribute:
        config["distribute"] = distribute
    return config


def run_sweep(name: str, config: dict, args: list[str], scratch: Path, env: dict) -> dict:
    folder = scratch / name
    folder.mkdir(parents=True)
    copy_workflow(folder)
    (folder / "check.yaml").write_text(yaml.safe_dump(config))
    command = [str(REPO / ".venv/bin/snakemake"), "--configfile", "check.yaml", *args]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{name}: {' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    trials = [json.loads(path.read_text()) for path in sorted(folder.glob("results/trials/*/metrics.json"))]
    return {"name": name, "command": " ".join(command[1:]), "wall": wall, "trials": trials}


def most_at_once(trials: list[dict]) -> int:
    """How many trials trained at the same time, at most (from each trial's end and wall time)."""
    spans = [(t["ended"] - t["wall_seconds"], t["ended"]) for t in trials]
    return max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)


def report(run: dict) -> None:
    print(f"\n## {run['name']}: {run['wall']:.1f} s wall for {len(run['trials'])} trials\n    snakemake {run['command']}")
    print(f"    {'trial':12s}  {'CUDA_VISIBLE_DEVICES':20s}  {'fit s':>6s}  {'wall s':>6s}  {'val_loss':>9s}  devices")
    for t in run["trials"]:
        value = t["objective"]["value"]
        print(f"    {t['trial_id']:12s}  {str(t['cuda_visible_devices']):20s}  {t['fit_seconds']:6.1f}  "
              f"{t['wall_seconds']:6.1f}  {value if value is None else format(value, '9.5f'):>9}  {', '.join(t['devices'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="trials per sweep of steps 1 and 2 (8)")
    parser.add_argument("--cpu", action="store_true", help="run on a machine without GPUs (see above)")
    parser.add_argument("--model", default="benchmarks/digits_cnn.py:build_model",
                        help="the model function (default: the small CNN; examples/digits.py:build_model is the MLP)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
    if args.cpu:
        env["CUDA_VISIBLE_DEVICES"] = "0,1"
        gpus = ("0", "1")
        mirrored = {"strategy": "mirrored", "cpu_devices": 2}
    else:
        gpus = visible_gpus().ids
        mirrored = {"strategy": "mirrored"}
        if not gpus:
            raise SystemExit(f"kerasgrid sees no GPU here ({visible_gpus().found_by}): this check is for machines "
                             "with GPUs; --cpu runs it without, to check the script")
    n = len(gpus)
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, {n} GPUs {gpus}{' (pretended, --cpu)' if args.cpu else ''}, "
          f"Python {platform.python_version()}, {platform.platform()}")
    if not args.cpu:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True) if shutil.which("nvidia-smi") else None
        print("\n".join(f"#   {line}" for line in (listed.stdout if listed else "").splitlines()))

    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        steps = [
            ("one GPU, one trial at a time", sweep_config(args.model, args.trials), ["--cores", str(n), "--resources", "gpu=1"]),
            (f"one trial per GPU, {n} at a time", sweep_config(args.model, args.trials), ["--cores", str(n), "--resources", f"gpu={n}"]),
        ]
        if n >= 2:
            steps.append((f"mirrored across {n} GPUs", sweep_config(args.model, 2, mirrored),
                          ["--cores", str(n), "--resources", f"gpu={n}", "--set-resources", f"train:gpu={n}", f"best_model:gpu={n}"]))
        for name, config, snakemake_args in steps:
            run = run_sweep(name, config, snakemake_args, Path(scratch), env)
            for t in run["trials"]:
                t["ended"] = (Path(scratch) / name / "results/trials" / t["trial_id"] / "metrics.json").stat().st_mtime
            runs.append(run)
            report(run)

    baseline, parallel = runs[0], runs[1]
    own_gpu = all(t["cuda_visible_devices"] in gpus for t in parallel["trials"])
    print(f"\none trial per GPU: {parallel['wall']:.1f} s against {baseline['wall']:.1f} s one at a time "
          f"({parallel['wall'] / baseline['wall']:.2f}x); at most {most_at_once(parallel['trials'])} trials at once; "
          f"every trial on a GPU of its own: {'yes' if own_gpu else 'NO'}")
    if len(runs) > 2:
        across = all(len(t["devices"]) == n for t in runs[2]["trials"])
        print(f"mirrored: every trial across {n} devices: {'yes' if across else 'NO'}")
        one_device = {t["trial_id"]: t for t in baseline["trials"]}
        for t in runs[2]["trials"]:
            single = one_device[t["trial_id"]]
            drift = {name: abs(summary["final"] - single["metrics"][name]["final"]) / abs(single["metrics"][name]["final"])
                     for name, summary in t["metrics"].items()}
            worst = max(drift, key=drift.get)
            print(f"mirrored trial {t['trial_id']} against the same trial on one device: largest relative difference "
                  f"of a final metric {drift[worst]:.2g} ({worst}); fit {t['fit_seconds']:.1f} s against {single['fit_seconds']:.1f} s")


if __name__ == "__main__":
    main()
