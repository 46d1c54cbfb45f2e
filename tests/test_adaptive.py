"""Adaptive search in real sweeps: every round a cached checkpoint, its trials ordinary train jobs."""

import os
import signal
import subprocess
import sys

import pytest
import yaml

from conftest import copy_of_workflow
from kerasgrid.records import read_json
from kerasgrid.results.leaderboard import read_leaderboard
from test_faults import start, wait_for
from test_halving import KNOWN_LOSSES, jobs_run, rank_only
from test_halving import trained as trained_per_rung


def tpe_config(trials, batch=2, **grid):
    """A TPE search of the known-losses model (loss = q squared, so the smallest q wins)."""
    return {
        "model": "known.py:build_model",
        "data": {"train": "known.py:data"},
        "budget": {"epochs": 1, "steps_per_epoch": 1},
        "search": {"strategy": "tpe", "trials": trials, "batch": batch},
        "grid": {"q": {"low": 0.01, "high": 1.0, "log": True}, "fault": ["none"], **grid},
    }


@pytest.fixture
def known(workflow):
    workflow.path("known.py").write_text(KNOWN_LOSSES, encoding="utf-8")
    return workflow


def trained(output) -> set[str]:
    """The trials a snakemake run trained."""
    return set().union(*trained_per_rung(output).values())


def proposed_rounds(output) -> set[str]:
    """The rounds a snakemake run proposed."""
    return {wildcards.removeprefix("round=") for rule, wildcards in jobs_run(output) if rule == "propose"}


def rounds_of(workflow) -> list[dict]:
    paths = sorted(workflow.root.glob("results/rounds/*.json"), key=lambda path: int(path.stem))
    return [read_json(path) for path in paths]


def round_ids(round_file) -> list[str]:
    return [entry["trial_id"] for entry in round_file["proposals"]]


def files(workflow, pattern) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(workflow.root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in workflow.root.glob(pattern)}


def test_a_tpe_sweep_proposes_round_after_round_from_what_finished_and_reruns_as_nothing_to_be_done(known):
    config = tpe_config(6, fault=["none", "nan", "raise"])
    result = known.sweep(config)
    rounds = rounds_of(known)
    assert [r["round"] for r in rounds] == [0, 1, 2] and [len(r["proposals"]) for r in rounds] == [2, 2, 2]
    proposed = [tid for r in rounds for tid in round_ids(r)]
    assert len(set(proposed)) == 6
    # Each round was told every trial of the rounds before it, in order, as it ended.
    for index, round_file in enumerate(rounds):
        told = [(entry["trial_id"], entry["status"], entry["objective"]) for entry in round_file["told"]]
        records = [read_json(known.path(f"results/trials/{tid}/metrics.json")) for tid in proposed[: 2 * index]]
        assert told == [(r["trial_id"], r["status"], r["objective"]["value"]) for r in records]
    statuses = {entry["status"] for entry in rounds[-1]["told"]}
    assert "ok" in statuses and statuses & {"failed", "diverged"}  # failures were told, as such

    # Every trial trained once, as a train job; rounds were proposed here, not as jobs.
    assert trained(result.output) == set(proposed)
    assert proposed_rounds(result.output) == {"0", "1", "2"}
    assert "localcheckpoint propose:" in result.output
    rows = read_leaderboard(known.path("results/leaderboard.tsv"))
    assert {row["trial_id"]: int(row["round"]) for row in rows} == {tid: i // 2 for i, tid in enumerate(proposed)}
    ok = [row for row in rows if row["status"] == "ok"]
    assert [float(row["q"]) for row in ok] == sorted(float(row["q"]) for row in ok)  # loss q^2: the smallest q wins
    best = yaml.safe_load(known.path("results/best_params.yaml").read_text())
    assert best["trial_id"] == rows[0]["trial_id"] and f"Best params found: {best['params']}" in result.output
    assert known.path("results/plots/optimization_history.png").stat().st_size > 10_000
    assert "round" in result.output.split("Leaderboard:")[1].splitlines()[1]  # the console table shows it

    again = known.sweep(config)
    assert "Nothing to be done" in again.output
    # The report shows the optimization history and says what kind of search this was.
    known.run("--configfile", "my.yaml", "--report", "results/report.html")
    html = known.path("results/report.html").read_text(encoding="utf-8")
    assert "TPE sampler proposed" in html and "6 combinations of the space below, 2 per round" in html
    assert "the best value so far as a green line" in html and "optimization_history.png" in html
    # Planning it (reading every round's file) loads neither TensorFlow nor Optuna.
    probe = known.path("probe.py")
    probe.write_text(
        "import sys, runpy\n"
        "sys.argv = ['snakemake', '--dry-run', '--configfile', 'my.yaml', '--cores', '1']\n"
        "try:\n    runpy.run_module('snakemake', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED', sorted(name for name in ('tensorflow', 'optuna') if name in sys.modules))\n"
    )
    planned = subprocess.run([sys.executable, str(probe)], cwd=known.root, capture_output=True, text=True, timeout=120)
    assert "Nothing to be done" in planned.stderr + planned.stdout and "LOADED []" in planned.stdout, planned.stdout


def test_raising_trials_trains_only_the_new_rounds(known):
    rank_only(known, tpe_config(4))
    before, rounds_before = known.snapshot(), files(known, "results/rounds/*.json")
    assert len(rounds_before) == 2

    grown = rank_only(known, tpe_config(7))  # rounds of 2, 2, 2 and 1
    rounds = rounds_of(known)
    assert [len(r["proposals"]) for r in rounds] == [2, 2, 2, 1]
    assert trained(grown.output) == set(round_ids(rounds[2]) + round_ids(rounds[3]))
    assert proposed_rounds(grown.output) == {"2", "3"}
    assert {k: v for k, v in files(known, "results/rounds/*.json").items() if k in rounds_before} == rounds_before
    assert {path: stamp for path, stamp in known.snapshot().items() if path in before} == before

    # One more trial grows the last round: its first proposal stays, one new trial trains.
    last = rank_only(known, tpe_config(8))
    assert round_ids(rounds_of(known)[3])[0] == round_ids(rounds[3])[0]
    assert trained(last.output) == {round_ids(rounds_of(known)[3])[1]} and proposed_rounds(last.output) == {"3"}
    assert len(read_leaderboard(known.path("results/leaderboard.tsv"))) == 8


def test_a_killed_tpe_sweep_resumes_losing_only_unfinished_trials_and_proposes_as_an_unbroken_run(known, tmp_path):
    config = tpe_config(6, sleep=[1])
    run = start(known, config, "--cores", "1", "results/leaderboard.tsv")
    wait_for(lambda: len(rounds_of(known)) >= 2 and any(
        known.path(f"results/trials/{tid}/metrics.json").exists() for tid in round_ids(rounds_of(known)[1])))
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    finished = {path: stamp for path, stamp in known.snapshot().items() if path.endswith("metrics.json")}
    rounds_done = files(known, "results/rounds/*.json")
    assert 3 <= len(finished) < 6 and not known.path("results/leaderboard.tsv").exists()

    resumed = rank_only(known, config)
    assert not trained(resumed.output) & {path.split("/")[2] for path in finished}
    assert {path: stamp for path, stamp in known.snapshot().items() if path in finished} == finished
    assert {k: v for k, v in files(known, "results/rounds/*.json").items() if k in rounds_done} == rounds_done

    # The same proposals and leaderboard as a run never interrupted.
    unbroken = copy_of_workflow(tmp_path / "unbroken")
    unbroken.path("known.py").write_text(KNOWN_LOSSES, encoding="utf-8")
    rank_only(unbroken, config)
    assert [round_ids(r) for r in rounds_of(known)] == [round_ids(r) for r in rounds_of(unbroken)]
    strip = lambda rows: [{k: v for k, v in row.items() if k != "fit_seconds"} for row in rows]  # noqa: E731
    assert strip(read_leaderboard(known.path("results/leaderboard.tsv"))) == strip(
        read_leaderboard(unbroken.path("results/leaderboard.tsv")))
