"""The in-process loop, KerasTuner's GridSearch and kerasgrid, side by side on the same sweep.

    .venv/bin/python benchmarks/bench_sweep.py [--reps 3] [--workloads W1 W2] [--tools ...]

W1 is the default config.yaml (a tiny MLP: overhead-bound); W2 is the same grid, data, budget and
seed with benchmarks/digits_cnn.py's small CNN (compute-bound). Repetitions alternate the tools
so that drift on a noisy machine hits all of them alike. For each run: wall time, CPU time of the
whole process tree, and peak memory (the tree's summed RSS, sampled every 50 ms); then medians,
ratios to the baseline, and whether all tools picked the same winner. Needs keras-tuner
(`pip install -e '.[bench]'`).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "examples", "benchmarks", "profiles"]


def workload(name: str) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if name == "W2":
        config["model"] = "benchmarks/digits_cnn.py:build_model"
    return config


def copy_workflow(folder: Path) -> None:
    """Copy the workflow's files into `folder` (links kept as links), as a user's checkout has them."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_symlink():
            os.symlink(os.readlink(source), folder / name)
        elif source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)


def measure(command, cwd) -> dict:
    """Run `command`; wall seconds, CPU seconds of the process tree, peak summed RSS in MiB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root] + root.children(recursive=True)
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{output[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_mib": peak / 2**20, "output": output}


def run_tool(tool: str, config: dict, scratch: Path, loops: str = "loops.py", args=()) -> dict:
    """`tool` on `config` in the fresh folder `scratch`: kerasgrid's workflow, or the in-process
    contender `tool` of benchmarks/`loops` (given `args` after its config and output paths)."""
    scratch.mkdir(parents=True)
    config_path = scratch / "bench.yaml"
    if tool == "kerasgrid":
        copy_workflow(scratch)
        config_path.write_text(yaml.safe_dump(config))
        result = measure([str(REPO / ".venv/bin/snakemake"), "--cores", "2", "--configfile", "bench.yaml"], scratch)
        best = yaml.safe_load((scratch / "results/best_params.yaml").read_text())
        result.update(params=best["params"], value=best["objective"]["value"])
    else:
        for name in ("examples", "benchmarks"):
            shutil.copytree(REPO / name, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
        config_path.write_text(yaml.safe_dump(config))
        out = scratch / "result.json"
        result = measure([sys.executable, str(REPO / "benchmarks" / loops), tool, "bench.yaml", str(out), *args], scratch)
        result.update(json.loads(out.read_text()))
    result.pop("output")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"])
    parser.add_argument("--tools", nargs="+", default=["baseline", "kerastuner", "kerasgrid"])
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}, {platform.platform()}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for workload_name in args.workloads:
            config = workload(workload_name)
            for rep in range(args.reps):
                order = args.tools[rep % len(args.tools):] + args.tools[: rep % len(args.tools)]
                for tool in order:
                    result = run_tool(tool, config, Path(tmp) / f"{workload_name}-{tool}-{rep}")
                    result.update(workload=workload_name, tool=tool, rep=rep)
                    runs.append(result)
                    print(f"{workload_name} rep {rep} {tool:10s} wall {result['wall']:6.1f} s  cpu {result['cpu']:6.1f} s  "
                          f"peak {result['peak_mib']:6.0f} MiB  winner {result['params']} ({result['value']:.5f})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    print()
    print("| workload | tool | wall s (median) | CPU s | peak MiB | wall / baseline | same winner as baseline |")
    print("|---|---|---|---|---|---|---|")
    for workload_name in args.workloads:
        medians = {}
        for tool in args.tools:
            mine = [r for r in runs if r["workload"] == workload_name and r["tool"] == tool]
            medians[tool] = {k: statistics.median(r[k] for r in mine) for k in ("wall", "cpu", "peak_mib")}
            medians[tool]["params"] = {json.dumps(r["params"], sort_keys=True) for r in mine}
        base = medians.get("baseline")
        for tool, m in medians.items():
            ratio = f"{m['wall'] / base['wall']:.2f}x" if base else "-"
            same = "yes" if base and m["params"] == base["params"] else ("-" if not base else "NO")
            print(f"| {workload_name} | {tool} | {m['wall']:.1f} | {m['cpu']:.1f} | {m['peak_mib']:.0f} | {ratio} | {same} |")


if __name__ == "__main__":
    main()
