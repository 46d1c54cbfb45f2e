"""Where a sweep's wall goes (issue 23): its epochs, each job's fixed cost, idle cores, and what the
sweep costs outside its jobs. For a halving method against the grid, this says how near the wall
can come to the method's share of the grid's epochs at all.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/sweep_timeline.py --workload benchmarks/cnn27.yaml \
        --methods grid grid-halving brackets --keep /tmp/timeline

Each method runs as bench_search.py runs it (`snakemake --cores 2` in a fresh folder under --keep,
kept for a look), then its jobs are read from their records: a job ended when its metrics.json was
written and began `wall_seconds` before. Over every job of every method, fit's seconds are fitted
as E x (epochs the job trained) + T: E an epoch's cost, T what fit costs once per job (Keras traces
its train and test functions in the first epoch). A job's cost outside fit (building the model and
its data, restoring a rung's state, timing predictions, writing files) is its wall minus its fit.
Then, per method: the whole wall, the span from the first job's start to the last job's end, the
seconds outside it (Snakemake's start, the workers' TensorFlow import before the first job, the
ranking, plots and best model after the last), and within the span the core-seconds of epochs,
of T, of the cost outside fit, and idle (2 cores x span - busy), rung by rung.

The tail (issue 31): each line of Snakemake's console is stamped as it arrives (kept in
<run>/console.txt), so that every job that ended after the last trial's record is listed with its
rule and its start and end, in seconds after that record, as is the winner's line ("Best params
found") and the run's exit. The default sweep, three times (medians of the tails at the end):

    PYTHONPATH=$PWD .venv/bin/python benchmarks/sweep_timeline.py --workload config.yaml --methods grid \
        --reps 3 --keep /tmp/timeline
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import WORKLOAD, method_config  # noqa: E402
from bench_sweep import REPO, copy_workflow  # noqa: E402

CORES = 2


def stamped_run(config: dict, scratch: Path) -> dict:
    """`snakemake --cores 2` on `config` in the fresh folder `scratch`, as bench_sweep.run_tool runs it,
    every console line stamped with the clock (time.time(), as the records' mtimes) when it arrived.
    Python's own output is made unbuffered, so that a line's stamp is when it was printed."""
    scratch.mkdir(parents=True)
    copy_workflow(scratch)
    (scratch / "bench.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.time()
    process = subprocess.Popen([str(REPO / ".venv/bin/snakemake"), "--cores", "2", "--configfile", "bench.yaml"],
                               cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = [(time.time(), line.rstrip("\n")) for line in process.stdout]
    process.wait()
    ended = time.time()
    (scratch / "console.txt").write_text("".join(f"{stamp - started:9.3f} {line}\n" for stamp, line in lines))
    if process.returncode != 0:
        raise RuntimeError(f"snakemake failed in {scratch}:\n" + "\n".join(line for _, line in lines[-40:]))
    return {"wall": ended - started, "started": started, "ended": ended, "lines": lines}


def console_jobs(lines: list[tuple[float, str]]) -> list[dict]:
    """Each job Snakemake ran, from its console: the rule, when its entry was printed (the job's
    start) and when "Finished jobid" was."""
    found, current = {}, None
    for stamp, line in lines:
        text = line.strip()
        if match := re.fullmatch(r"(?:local)?rule (\w+):", text):
            current = {"rule": match[1], "start": stamp}
        elif match := re.match(r"Job (\d+): ", text):  # a rule with a message (train): the message alone
            found[match[1]] = {"rule": None, "start": stamp}
        elif (match := re.fullmatch(r"jobid: (\d+)", text)) and current:
            found[match[1]], current = current, None
        elif match := re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", text):
            job = found.setdefault(match[1], {"start": None})
            job.update(rule=match[2], end=stamp)
    return [job for job in found.values() if "end" in job]


def tail_report(run: dict, found: list[dict]) -> tuple[float, str]:
    """(seconds from the last record to the run's exit, what happened in them)."""
    last = max(job["end"] for job in found)
    tail = run["ended"] - last
    lines = [f"  after the last record: {tail:.2f} s to exit"]
    for job in sorted(console_jobs(run["lines"]), key=lambda job: job["end"]):
        if job["end"] > last and job["rule"] != "train":
            start = f"{job['start'] - last:+6.2f}" if job["start"] is not None else "     ?"
            lines.append(f"    {job['rule']:20s} {start} to {job['end'] - last:+6.2f} s")
    winner = [stamp for stamp, line in run["lines"] if line.startswith("Best params found: ")]
    if winner:
        lines.append(f"    winner's line at {winner[0] - last:+.2f} s")
    return tail, "\n".join(lines)


def jobs(results: Path) -> list[dict]:
    """Every run of a trial (to a rung, or whole) the sweep trained, from its record."""
    found = []
    for path in results.glob("trials/**/metrics.json"):
        record = json.loads(path.read_text())
        if "fit_seconds" not in record:
            continue
        end = os.stat(path).st_mtime
        found.append({"start": end - record["wall_seconds"], "end": end, "wall": record["wall_seconds"],
                      "fit": record["fit_seconds"], "rung": record.get("epochs_target"),
                      "epochs": record["epochs_run"] - record.get("resumed_from_epoch", 0)})
    return sorted(found, key=lambda job: job["start"])


def fixed_costs(runs: dict[str, list[dict]]) -> tuple[float, float]:
    """(E, T): fit seconds = E x epochs + T, least squares over every job of every run."""
    every = [job for found in runs.values() for job in found]
    a = np.array([[job["epochs"], 1.0] for job in every])
    b = np.array([job["fit"] for job in every])
    (epoch, per_job), *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(epoch), float(per_job)


def report(method: str, wall: float, found: list[dict], epoch: float, per_job: float, grid: dict | None) -> str:
    first, last = found[0]["start"], max(job["end"] for job in found)
    span, busy = last - first, sum(job["wall"] for job in found)
    epochs = sum(job["epochs"] for job in found)
    outside_fit = sum(job["wall"] - job["fit"] for job in found)
    lines = [f"{method}: wall {wall:.1f} s; {len(found)} jobs, {epochs} epochs; outside the jobs' span "
             f"{wall - span:.1f} s; in the span ({span:.1f} s) core-seconds of epochs {epochs * epoch:.1f}, "
             f"of fit's once-a-job cost {len(found) * per_job:.1f}, outside fit {outside_fit:.1f}, "
             f"idle {CORES * span - busy:.1f}"]
    for rung in sorted({job["rung"] for job in found}, key=lambda r: r or 0):
        at = [job for job in found if job["rung"] == rung]
        start, end = min(job["start"] for job in at), max(job["end"] for job in at)
        lines.append(f"  rung {rung}: {len(at)} jobs, {start - first:.1f} to {end - first:.1f} s, idle core-seconds "
                     f"{CORES * (end - start) - sum(job['wall'] for job in at):.1f}")
    if grid is not None and grid["epochs"]:
        share = epochs / grid["epochs"]
        # The floor: this method's epochs at the grid's rate, with no cost per job and no idle core,
        # plus what the sweep costs outside its jobs.
        floor = wall - span + epochs * epoch / CORES
        lines.append(f"  / grid: wall {wall / grid['wall']:.2f}x, epochs {share:.2f} (wall share / epochs share "
                     f"{wall / grid['wall'] / share:.2f}); with no job cost beyond its epochs and no idle core: "
                     f"{floor:.1f} s, {floor / grid['wall'] / share:.2f} of the epochs' share")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", type=Path, default=WORKLOAD)
    parser.add_argument("--methods", nargs="+", default=["grid", "grid-halving", "brackets"],
                        choices=["grid", "grid-halving", "brackets", "tpe", "tpe-halving"])
    parser.add_argument("--min-epochs", type=int, default=1, help="grid-halving's")
    parser.add_argument("--seed", type=int, default=0, help="the seeded methods' search.seed")
    parser.add_argument("--keep", type=Path, required=True, help="a folder for the runs (must not exist)")
    parser.add_argument("--reps", type=int, default=1, help="runs of each method (<keep>/<method>-<rep>)")
    args = parser.parse_args()
    tails = {}
    for rep in range(args.reps):
        walls, runs, consoles = {}, {}, {}
        for method in args.methods:
            config = method_config(method, args.seed, args.min_epochs, workload=args.workload.resolve())
            folder = args.keep / (f"{method}-{rep}" if args.reps > 1 else method)
            consoles[method] = stamped_run(config, folder)
            walls[method] = consoles[method]["wall"]
            runs[method] = jobs(folder / "results")
        epoch, per_job = fixed_costs(runs)
        print(f"rep {rep}: fit = {epoch:.3f} s an epoch x epochs + {per_job:.3f} s a job, "
              f"over {sum(map(len, runs.values()))} jobs")
        grid = ({"wall": walls["grid"], "epochs": sum(job["epochs"] for job in runs["grid"])}
                if "grid" in runs else None)
        for method in args.methods:
            print(report(method, walls[method], runs[method], epoch, per_job, grid if method != "grid" else None))
            tail, lines = tail_report(consoles[method], runs[method])
            tails.setdefault(method, []).append((tail, walls[method]))
            print(lines, flush=True)
    if args.reps > 1:
        for method, found in tails.items():
            print(f"{method}: median over {len(found)} runs: after the last record "
                  f"{statistics.median(tail for tail, _ in found):.2f} s "
                  f"({', '.join(f'{tail:.2f}' for tail, _ in found)}), wall "
                  f"{statistics.median(wall for _, wall in found):.1f} s")


if __name__ == "__main__":
    main()
