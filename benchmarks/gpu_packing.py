"""Several trials per GPU (issue 32): the default sweep and the 27-CNN space on one GPU, at 1, 2, 4
and 8 trials per GPU (gpus.trials_per_gpu).

    python benchmarks/gpu_packing.py --out packing/ [--backend jax] [--per-gpu 1,2,4,8] [--spaces default,cnn27]

For each space and each k, in a scratch copy of the workflow with an empty results/, on the
machine's first GPU only (CUDA_VISIBLE_DEVICES), it runs

    python -m snakemake --cores K --resources gpu=K --config 'gpus={trials_per_gpu: K}' ...

while `nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -lms 200` samples the GPU
in the background. It writes to --out: packing.md (the table, also printed), packing.json (every
run, with its samples), and each run's leaderboard. The table gives the wall time, the speed-up
over one trial per GPU, the GPU's mean and 90th-percentile utilisation and its peak memory, the
most trials seen training at once, and whether the leaderboard equals the one of k=1 (every
column but the timings: trial ids, ranks, objectives to the last digit).

`--backend jax` writes `backend: jax` into each config (issue 31's key): then nothing here or in
the sweep imports TensorFlow, and the script runs on a machine with CUDA JAX and no TensorFlow.
It installs nothing and needs no network (the data are scikit-learn's bundled digits).

On a machine without a GPU it stops at once: exit status 2 and one line saying why. Both spaces
at 1, 2, 4 and 8 trials per GPU take about 5 minutes on one H100 (estimated; not run yet).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "examples", "benchmarks", "profiles"]
SPACES = {"default": "config.yaml", "cnn27": "benchmarks/cnn27.yaml"}
SAMPLE_MS = 200
# Leaderboard columns that are timings, which packing changes: compared without them.
TIMINGS = re.compile(r"(_seconds|_ms|^wall|^fit)")


class NoGpu(SystemExit):
    pass


def first_gpu(nvidia_smi: str | None = None) -> tuple[str, str]:
    """(index, name) of this machine's first GPU as nvidia-smi lists it; NoGpu (one line) if none."""
    nvidia_smi = shutil.which("nvidia-smi") if nvidia_smi is None else nvidia_smi
    if not nvidia_smi:
        raise NoGpu("gpu_packing.py: no GPU here: nvidia-smi is not on PATH; this benchmark needs one NVIDIA GPU")
    try:
        listed = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoGpu(f"gpu_packing.py: no GPU here: nvidia-smi -L failed ({exc}); this benchmark needs one NVIDIA GPU")
    found = re.findall(r"^GPU (\d+): (.*?)(?: \(UUID|$)", listed.stdout, flags=re.M)
    if listed.returncode != 0 or not found:
        said = (listed.stdout + listed.stderr).strip().splitlines()
        raise NoGpu(f"gpu_packing.py: no GPU here: nvidia-smi -L listed none ({said[0] if said else 'no output'}); "
                    "this benchmark needs one NVIDIA GPU")
    return found[0]


def parse_samples(text: str) -> list[tuple[float, float]]:
    """(utilisation %, memory used MiB) of each line of `nvidia-smi --query-gpu=utilization.gpu,
    memory.used --format=csv -lms N`; the header (printed again now and then) and lines the GPU
    could not answer ("[N/A]", "[Not Supported]") are left out."""
    samples = []
    for line in text.splitlines():
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*,\s*(\d+(?:\.\d+)?)\s*MiB\s*", line)
        if found:
            samples.append((float(found.group(1)), float(found.group(2))))
    return samples


def summarise_samples(samples: list[tuple[float, float]]) -> dict:
    """Mean and 90th-percentile utilisation (%), peak memory (MiB), and how many samples."""
    if not samples:
        return {"util_mean": None, "util_p90": None, "memory_peak_mib": None, "samples": 0}
    util = sorted(u for u, _ in samples)
    return {
        "util_mean": round(statistics.fmean(util), 1),
        "util_p90": util[min(len(util) - 1, int(0.9 * len(util)))],
        "memory_peak_mib": max(m for _, m in samples),
        "samples": len(samples),
    }


def comparable(leaderboard: str) -> list[dict]:
    """A leaderboard's rows without its timing columns."""
    lines = leaderboard.splitlines()
    header = lines[0].split("\t")
    return [{key: value for key, value in zip(header, line.split("\t")) if not TIMINGS.search(key)}
            for line in lines[1:]]


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """How many (start, end) spans overlap at most."""
    return max((sum(start <= moment < end for start, end in spans) for moment, _ in spans), default=0)


def table(runs: list[dict]) -> str:
    """The Markdown table of `runs` (each: space, per_gpu, trials, wall, util_*, memory_peak_mib,
    at_once, same), with each space's speed-up over its k=1 run."""
    base = {run["space"]: run["wall"] for run in runs if run["per_gpu"] == 1}
    rows = ["| space | trials/GPU | trials | wall s | vs 1/GPU | GPU util mean % | util p90 % | GPU memory peak MiB "
            "| most at once | leaderboard as 1/GPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def number(value, spec):
        return "n/a" if value is None else format(value, spec)

    for run in runs:
        speed = f"{base[run['space']] / run['wall']:.2f}x" if run["space"] in base else "n/a"
        same = {True: "same", False: "DIFFERENT", None: "(baseline)"}[run["same"]]
        rows.append(f"| {run['space']} | {run['per_gpu']} | {run['trials']} | {run['wall']:.1f} | {speed} "
                    f"| {number(run['util_mean'], '.1f')} | {number(run['util_p90'], '.0f')} "
                    f"| {number(run['memory_peak_mib'], '.0f')} | {run['at_once']} | {same} |")
    return "\n".join(rows) + "\n"


def copy_workflow(folder: Path) -> None:
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_symlink():
            os.symlink(os.readlink(source), folder / name)
        elif source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__", "results", "logs"))
        elif source.exists():
            shutil.copy2(source, folder / name)


def run_one(space: str, per_gpu: int, backend: str | None, scratch: Path, env: dict, gpu: str) -> dict:
    folder = scratch / f"{space}-{per_gpu}"
    folder.mkdir(parents=True)
    copy_workflow(folder)
    config = yaml.safe_load((REPO / SPACES[space]).read_text())
    if backend:
        config["backend"] = backend
    (folder / "bench.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--configfile", "bench.yaml", "--cores", str(max(per_gpu, 1)),
               "--resources", f"gpu={per_gpu}", "--config", f"gpus={{trials_per_gpu: {per_gpu}}}"]
    sampler = subprocess.Popen(["nvidia-smi", "-i", gpu, "--query-gpu=utilization.gpu,memory.used", "--format=csv",
                                "-lms", str(SAMPLE_MS)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    finally:
        sampler.terminate()
        sampled, _ = sampler.communicate(timeout=30)
    if result.returncode != 0:
        raise SystemExit(f"gpu_packing.py: {space} at {per_gpu} per GPU failed: {' '.join(command)}\n"
                         f"{(result.stdout + result.stderr)[-3000:]}")
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("results/trials/*/metrics.json"))]
    spans = [(p.stat().st_mtime - r["wall_seconds"], p.stat().st_mtime)
             for p, r in zip(sorted(folder.glob("results/trials/*/metrics.json")), records)]
    return {
        "space": space, "per_gpu": per_gpu, "trials": len(records), "wall": round(wall, 2),
        "command": " ".join(command[1:]), "at_once": most_at_once(spans),
        "gpus_seen": sorted({str(r.get("cuda_visible_devices")) for r in records}),
        "statuses": sorted({r["status"] for r in records}),
        "leaderboard": (folder / "results/leaderboard.tsv").read_text(),
        **summarise_samples(parse_samples(sampled)), "raw_samples": sampled,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for packing.md, packing.json, leaderboards")
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], help="write `backend:` into each config")
    parser.add_argument("--per-gpu", default="1,2,4,8", help="trials per GPU to run, comma-separated (1,2,4,8)")
    parser.add_argument("--spaces", default="default,cnn27", help=f"of {', '.join(SPACES)} (both)")
    args = parser.parse_args(argv)
    try:
        gpu, name = first_gpu()
    except NoGpu as exc:
        print(exc.code, file=sys.stderr)
        return 2
    ks = [int(k) for k in args.per_gpu.split(",")]
    spaces = args.spaces.split(",")
    # The first GPU only; no Snakemake variables of a calling run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
    env["CUDA_VISIBLE_DEVICES"] = gpu
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.out.mkdir(parents=True, exist_ok=True)
    heading = (f"{platform.node()}: GPU {gpu} ({name}), {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"backend {args.backend or 'the config default'}")
    print(f"# {heading}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for space in spaces:
            baseline = None
            for k in ks:
                run = run_one(space, k, args.backend, Path(scratch), env, gpu)
                if k == 1:
                    baseline, run["same"] = comparable(run["leaderboard"]), None
                else:
                    run["same"] = None if baseline is None else comparable(run["leaderboard"]) == baseline
                (args.out / f"leaderboard-{space}-{k}.tsv").write_text(run["leaderboard"])
                print(f"{space} at {k}/GPU: {run['wall']:.1f} s, {run['trials']} trials, "
                      f"util mean {run['util_mean']} %, "
                      f"at most {run['at_once']} at once, statuses {run['statuses']}", flush=True)
                runs.append(run)
    text = f"# Several trials per GPU\n\n{heading}\n\n{table(runs)}"
    (args.out / "packing.md").write_text(text)
    (args.out / "packing.json").write_text(json.dumps({"heading": heading, "runs": runs}, indent=1))
    print(f"\n{table(runs)}", flush=True)
    return 0 if all(run["same"] is not False for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
