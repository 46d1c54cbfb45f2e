"""What `mlflow:` costs a sweep: the same sweep without it, logging to a local tracking server, and
logging to a local SQLite store.

    python benchmarks/bench_mlflow.py [--reps 3] [--config config.yaml] [--skip-sweeps]

Two measures, each variant in the same run, the variants alternating in order each repetition:

- sweeps: `snakemake --cores 2` of the config (default: config.yaml, 12 tiny trials) from an empty
  folder, everything the workflow makes included (with mlflow, its last step `mlflow_runs` too):
  wall and CPU seconds of the process tree, seconds per trial, ratios to the sweep without mlflow;
- per trial: one warm process trains the config's trials one after the other (as a worker does)
  and logs each to MLflow as a worker does (kerasgrid.results.tracking.log_trial); the seconds
  spent logging each trial, the first one (which imports MLflow) apart.

The server is `mlflow server` on a free local port with a SQLite store, started here and stopped
at the end; each repetition logs to an experiment of its own, so nothing is logged already.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "examples", "profiles"]
VARIANTS = ["off", "server", "sqlite"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
       "TF_CPP_MIN_LOG_LEVEL": "3"}

# Run in a child process: trains every trial of CONFIG, logs each with log_trial to URI (argv[2],
# "off" for none), prints the seconds each trial's training and logging took.
TRAIN_AND_LOG = """
import json, sys, time
from pathlib import Path
import yaml
from snakemake.utils import validate
from kerasgrid.config import sweep_from_config
from kerasgrid.results.tracking import Target, log_trial
from kerasgrid.trial.backends import configure
from kerasgrid.trial.training import run_trial

config = yaml.safe_load(open(sys.argv[1]))
validate(config, sys.argv[4])  # the schema's defaults filled in, as the workflow does
sweep = sweep_from_config(config, sys.argv[1])
configure("tensorflow", 1, 0)  # TensorFlow imported before timing, as in a warm worker
target = None if sys.argv[2] == "off" else Target(sys.argv[2], sys.argv[3], "results", "bench.yaml")
seconds = []
for trial, params in sweep.trials.items():
    started = time.perf_counter()
    run_trial(params, sweep.settings(), Path("results/trials") / trial, objective=dict(sweep.objective))
    trained, cpu = time.perf_counter(), time.process_time()
    note = log_trial(target, Path("results/trials") / trial) if target else None
    if note:
        raise SystemExit(note)
    seconds.append([trained - started, time.perf_counter() - trained, time.process_time() - cpu])
print("SECONDS " + json.dumps(seconds))  # per trial: training wall s, logging wall s, logging CPU s
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(folder / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/server.db",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5):
                return process, uri
        except OSError:
            time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"mlflow server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")


def stop_server(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def server_cpu(process: subprocess.Popen) -> float:
    """CPU seconds the server's processes have used so far."""
    try:
        root = psutil.Process(process.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in tree:
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def mlflow_key(variant: str, uri: str, folder: Path, experiment: str) -> dict:
    if variant == "off":
        return {}
    store = uri if variant == "server" else f"sqlite:///{folder}/mlflow.db"
    return {"mlflow": {"tracking_uri": store, "experiment": experiment}}


def sweep(variant: str, config: dict, folder: Path, uri: str, experiment: str) -> dict:
    """One snakemake sweep from an empty folder: wall and CPU seconds of the process tree."""
    folder.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, folder / name)
    (folder / "bench.yaml").write_text(yaml.safe_dump({**config, **mlflow_key(variant, uri, folder, experiment)}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "bench.yaml"],
                            cwd=folder, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{variant} sweep failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    if variant != "off":
        summary = json.loads((folder / "results" / "mlflow.json").read_text())
        assert summary["error"] is None and summary["up_to_date"] == len(summary["runs"]), summary
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def per_trial(variant: str, config_path: Path, folder: Path, uri: str, experiment: str) -> list:
    """[training s, logging s] of each trial, trained and logged one after the other in one process."""
    folder.mkdir(parents=True)
    shutil.copytree(REPO / "examples", folder / "examples")
    store = {"off": "off", "server": uri, "sqlite": f"sqlite:///{folder}/mlflow.db"}[variant]
    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    result = subprocess.run([sys.executable, "-c", TRAIN_AND_LOG, str(config_path), store, experiment, str(schema)],
                            cwd=folder, env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{variant} per-trial run failed:\n{result.stderr[-3000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("SECONDS "))
    return json.loads(line[len("SECONDS "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--skip-sweeps", action="store_true", help="measure the per-trial cost only")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    sweeps = {variant: [] for variant in VARIANTS}
    trials = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        tmp = Path(tmp)
        server, uri = start_server(tmp)
        try:
            for rep in range(args.reps):
                order = VARIANTS[rep % 3:] + VARIANTS[: rep % 3]
                for variant in order:
                    if not args.skip_sweeps:
                        before = server_cpu(server)
                        result = sweep(variant, config, tmp / f"sweep-{variant}-{rep}", uri, f"sweep-{rep}")
                        result["server_cpu"] = server_cpu(server) - before if variant == "server" else 0.0
                        sweeps[variant].append(result)
                        print(f"rep {rep} {variant:6s} sweep: wall {result['wall']:.2f} s, CPU {result['cpu']:.2f} s "
                              f"(+ the server's {result['server_cpu']:.2f} s)", flush=True)
                    before = server_cpu(server)
                    seconds = per_trial(variant, Path(args.config).resolve(), tmp / f"trials-{variant}-{rep}", uri,
                                        f"trials-{rep}")
                    served = server_cpu(server) - before if variant == "server" else 0.0
                    trials[variant].append({"seconds": seconds, "server_cpu": served})
                    print(f"rep {rep} {variant:6s} per trial: logging first {seconds[0][1]:.3f} s, then median "
                          f"{statistics.median(s[1] for s in seconds[1:]):.3f} s wall, "
                          f"{statistics.median(s[2] for s in seconds[1:]):.3f} s CPU (+ the server's "
                          f"{served / len(seconds):.3f} s per trial)", flush=True)
        finally:
            stop_server(server)
    count = len(trials["off"][0]["seconds"])
    if not args.skip_sweeps:
        print(f"\nSweeps of {count} trials (snakemake --cores 2, from an empty folder), medians of {args.reps}; CPU: "
              "the snakemake process tree's, plus the tracking server's:\n")
        print("| variant | wall s | wall runs | wall s per trial | wall / off | CPU s | CPU runs | CPU / off |")
        print("|---|---|---|---|---|---|---|---|")
        base = {key: statistics.median(s[key] for s in sweeps["off"]) for key in ("wall", "cpu")}
        for variant in VARIANTS:
            totals = [s["cpu"] + s["server_cpu"] for s in sweeps[variant]]
            wall, cpu = statistics.median(s["wall"] for s in sweeps[variant]), statistics.median(totals)
            walls = " / ".join(f"{s['wall']:.1f}" for s in sweeps[variant])
            cpus = " / ".join(f"{total:.1f}" for total in totals)
            print(f"| {variant} | {wall:.2f} | {walls} | {wall / count:.2f} | {wall / base['wall']:.3f}x | {cpu:.1f} | "
                  f"{cpus} | {cpu / base['cpu']:.3f}x |")
    print(f"\nPer trial: {count} trials trained and logged one after the other in one warm process, medians over "
          f"{args.reps} repetitions; logging CPU is the process's, plus the tracking server's:\n")
    print("| variant | training wall s per trial | logging wall s, first trial (imports MLflow) | logging wall s, "
          "later trials | logging CPU s, later trials | logging wall / training wall |")
    print("|---|---|---|---|---|---|")
    for variant in VARIANTS:
        runs = [run["seconds"] for run in trials[variant]]
        training = statistics.median(s[0] for run in runs for s in run)
        first = statistics.median(run[0][1] for run in runs)
        later = statistics.median(s[1] for run in runs for s in run[1:])
        served = statistics.median(run["server_cpu"] / count for run in trials[variant])
        cpu = statistics.median(s[2] for run in runs for s in run[1:]) + served
        print(f"| {variant} | {training:.3f} | {first:.3f} | {later:.3f} | {cpu:.3f} | {later / training:.3f} |")


if __name__ == "__main__":
    main()
