"""Planning and no-op reruns on large grids, against Snakemake's own floor.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000] [--finished 1000]

For each size: `snakemake -n` on a kerasgrid sweep of that many trials from an empty results/,
and, as the baseline, on a trivial workflow with as many `touch` jobs (what Snakemake itself
costs per job). Then a sweep of --finished trials (digits MLP, 1 step: a trivial model) is run
to the end, and a no-op rerun of it is timed. Wall seconds and peak RSS of each command.
"""

import argparse
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(REPO / ".venv/bin/snakemake")
TRIVIAL = """
rule all:
    input: expand("out/{i}.txt", i=range(int(config["count"])))

rule touch:
    output: "out/{i}.txt"
    shell: "touch {output}"
"""


def grid_of(n: int) -> dict:
    """A grid of exactly n trials: keys of 10 values, and one key for the rest."""
    grid, rest = {}, n
    for key in itertools.count():
        if rest % 10 or rest == 1:
            break
        grid[f"k{key}"] = list(range(10))
        rest //= 10
    if rest > 1:
        grid["rest"] = list(range(rest))
    return grid


def timed(command, cwd) -> tuple[float, float]:
    started = time.perf_counter()
    # Output to a file: an undrained pipe would fill and stall the run.
    err = tempfile.TemporaryFile()
    process = psutil.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode:
        err.seek(0)
        raise RuntimeError(f"{command} failed: {err.read().decode()[-2000:]}")
    return time.perf_counter() - started, peak / 2**20


def kerasgrid_copy(root: Path, n: int) -> Path:
    root.mkdir()
    for name in ("Snakefile", "workflow", "scripts", "examples"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)
    os.symlink("workflow/profiles", root / "profiles")
    config = {
        "model": "examples/digits.py:build_model",
        "data": {"train": "examples/digits.py:train_data"},
        "budget": {"epochs": 1, "steps_per_epoch": 1},
        "max_trials": n,
        "grid": {"lr": [0.01], "act_in": ["relu"], "act_out": ["sigmoid"], "loss": ["mean_squared_error"], **grid_of(n)},
    }
    (root / "sweep.yaml").write_text(yaml.safe_dump(config))
    return root


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--finished", type=int, default=1000, help="0 to skip the finished sweep")
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")
    print("| what | trials | kerasgrid s | peak MiB | trivial-rule baseline s | ratio |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            ours = kerasgrid_copy(Path(tmp) / f"kg{n}", n)
            trivial = Path(tmp) / f"trivial{n}"
            trivial.mkdir()
            (trivial / "Snakefile").write_text(TRIVIAL)
            seconds, peak = timed([SNAKEMAKE, "-n", "--configfile", "sweep.yaml", "--cores", "2", "--quiet"], ours)
            base, _ = timed([SNAKEMAKE, "-n", "--config", f"count={n}", "--cores", "2", "--quiet"], trivial)
            print(f"| dry-run, empty results/ | {n:,} | {seconds:.1f} | {peak:.0f} | {base:.1f} | {seconds / base:.2f}x |", flush=True)

        n = args.finished
        if not n:
            return
        ours = kerasgrid_copy(Path(tmp) / f"finished{n}", n)
        trivial = Path(tmp) / f"trivial-finished{n}"
        trivial.mkdir()
        (trivial / "Snakefile").write_text(TRIVIAL)
        full, peak = timed([SNAKEMAKE, "--configfile", "sweep.yaml", "--cores", "2", "--quiet"], ours)
        timed([SNAKEMAKE, "--config", f"count={n}", "--cores", "2", "--quiet"], trivial)
        print(f"| full sweep, 1-step trials | {n:,} | {full:.1f} | {peak:.0f} | - | - |", flush=True)
        seconds, peak = timed([SNAKEMAKE, "--configfile", "sweep.yaml", "--cores", "2", "--quiet"], ours)
        base, _ = timed([SNAKEMAKE, "--config", f"count={n}", "--cores", "2", "--quiet"], trivial)
        print(f"| no-op rerun, all finished | {n:,} | {seconds:.1f} | {peak:.0f} | {base:.1f} | {seconds / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
