"""Planning and no-op reruns on large grids, against Snakemake's own floor.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000] [--finished 1000]
        [--halving-sizes 10000] [--halving-finished 1000]

For each size: `snakemake -n` on a kerasgrid sweep of that many trials from an empty results/,
and, as the baseline, on a trivial workflow with as many `touch` jobs (what Snakemake itself
costs per job). Then a sweep of --finished trials (digits MLP, 1 step: a trivial model) is run
to the end, and a no-op rerun of it is timed. Wall seconds and peak RSS of each command.

With successive halving (issue 10; eta 3, rungs at 1, 3 and 9 epochs of 1 step): for each
--halving-sizes, `snakemake -n` on that many candidates with halving, against the same grid and
budget without it (target: at most 2x); then a halving sweep of --halving-finished candidates is
run to the end and its no-op rerun timed (target: at most 3 s), beside the trivial workflow's.
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
    # Both streams to a file (Snakemake prints its errors on stdout); an undrained pipe would stall it.
    output = tempfile.TemporaryFile()
    process = psutil.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode:
        output.seek(0)
        raise RuntimeError(f"{command} failed:\n{output.read().decode()[-2000:]}")
    return time.perf_counter() - started, peak / 2**20


# Rungs at 1, 3 and 9 epochs; the plain sweep it is compared with gets the same budget.
HALVING_BUDGET = {"epochs": 9, "steps_per_epoch": 1}
HALVING = {"halving": {"eta": 3, "min_epochs": 1, "brackets": 1}}


def kerasgrid_copy(root: Path, n: int, budget: dict | None = None, search: dict | None = None) -> Path:
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
    if budget:
        config["budget"] = budget
    if search:
        config["search"] = search
    (root / "sweep.yaml").write_text(yaml.safe_dump(config))
    return root


def trivial_copy(root: Path) -> Path:
    root.mkdir()
    (root / "Snakefile").write_text(TRIVIAL)
    return root


DRY_RUN = [SNAKEMAKE, "-n", "--configfile", "sweep.yaml", "--cores", "2", "--quiet"]
RUN = [SNAKEMAKE, "--configfile", "sweep.yaml", "--cores", "2", "--quiet"]


def dry_runs(tmp: Path, sizes):
    for n in sizes:
        ours = kerasgrid_copy(tmp / f"kg{n}", n)
        trivial = trivial_copy(tmp / f"trivial{n}")
        seconds, peak = timed(DRY_RUN, ours)
        base, _ = timed([SNAKEMAKE, "-n", "--config", f"count={n}", "--cores", "2", "--quiet"], trivial)
        print(f"| dry-run, empty results/ | {n:,} | {seconds:.1f} | {peak:.0f} | {base:.1f} | {seconds / base:.2f}x |", flush=True)


def finished_rerun(tmp: Path, n: int, label: str, **sweep):
    """Run a sweep of n candidates to the end, then time its no-op rerun beside the trivial one's."""
    ours = kerasgrid_copy(tmp / f"finished-{label.replace(' ', '-')}{n}", n, **sweep)
    trivial = trivial_copy(tmp / f"trivial-finished-{label.replace(' ', '-')}{n}")
    full, peak = timed(RUN, ours)
    timed([SNAKEMAKE, "--config", f"count={n}", "--cores", "2", "--quiet"], trivial)
    print(f"| full {label}, 1-step epochs | {n:,} | {full:.1f} | {peak:.0f} | - | - |", flush=True)
    seconds, peak = timed(RUN, ours)
    base, _ = timed([SNAKEMAKE, "--config", f"count={n}", "--cores", "2", "--quiet"], trivial)
    print(f"| no-op rerun of the finished {label} | {n:,} | {seconds:.1f} | {peak:.0f} | {base:.1f} | {seconds / base:.2f}x |", flush=True)


def halving_dry_runs(tmp: Path, sizes):
    print("| what | candidates | with halving s | peak MiB | without halving s | ratio |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        halving = kerasgrid_copy(tmp / f"halving{n}", n, budget=HALVING_BUDGET, search=HALVING)
        plain = kerasgrid_copy(tmp / f"plain{n}", n, budget=HALVING_BUDGET)
        seconds, peak = timed(DRY_RUN, halving)
        base, _ = timed(DRY_RUN, plain)
        print(f"| dry-run, empty results/ | {n:,} | {seconds:.1f} | {peak:.0f} | {base:.1f} | {seconds / base:.2f}x |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--finished", type=int, default=1000, help="0 to skip the finished sweep")
    parser.add_argument("--halving-sizes", nargs="*", type=int, default=[], help="candidates planned with halving")
    parser.add_argument("--halving-finished", type=int, default=0, help="candidates of a finished halving sweep")
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.sizes or args.finished or args.halving_finished:
            print("| what | trials | kerasgrid s | peak MiB | trivial-rule baseline s | ratio |")
            print("|---|---|---|---|---|---|")
        dry_runs(tmp, args.sizes)
        if args.finished:
            finished_rerun(tmp, args.finished, "sweep")
        if args.halving_finished:
            finished_rerun(tmp, args.halving_finished, "halving sweep", budget=HALVING_BUDGET, search=HALVING)
        if args.halving_sizes:
            print()
            halving_dry_runs(tmp, args.halving_sizes)


if __name__ == "__main__":
    main()
