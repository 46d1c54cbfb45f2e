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


# Two objectives at odds: `units` hidden units (3 units + 1 trainable parameters) and a loss of
# (q * 16 / units) squared, known as KNOWN_LOSSES' is (no learning: the kernels are zeros, lr 0).
SIZED_LOSSES = """
import keras
import numpy as np


def build_model(params):
    units = params["units"]
    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(units, kernel_initializer="zeros", bias_initializer="zeros"),
        keras.layers.Dense(1, kernel_initializer="zeros",
                           bias_initializer=keras.initializers.Constant(params["q"] * 16 / units)),
    ])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


def data(params):
    yield np.zeros((4, 1), dtype="float32"), np.zeros((4, 1), dtype="float32")
"""


def two_objective_config(strategy, trials, batch, **search):
    return {
        "model": "sized.py:build_model",
        "data": {"train": "sized.py:data"},
        "budget": {"epochs": 1, "steps_per_epoch": 1},
        "objective": [{"metric": "loss", "direction": "min"}, {"metric": "params_count", "direction": "min"}],
        "constraints": ["params_count <= 100"],
        "search": {"strategy": strategy, "trials": trials, "batch": batch, **search},
        "grid": {"q": {"low": 0.01, "high": 1.0, "log": True}, "units": [4, 8, 16, 32, 64]},
    }


@pytest.mark.parametrize("strategy, trials, batch, search", [("tpe", 14, 4, {}), ("nsga2", 8, 2, {"population": 3})])
def test_a_sweep_on_two_objectives_tells_the_sampler_both_and_the_constraints_and_proposes_again_the_same(
        workflow, strategy, trials, batch, search, monkeypatch):
    workflow.path("sized.py").write_text(SIZED_LOSSES, encoding="utf-8")
    config = two_objective_config(strategy, trials, batch, **search)
    rank_only(workflow, config)
    rounds = rounds_of(workflow)
    assert [len(r["proposals"]) for r in rounds] == [batch] * (trials // batch) + ([trials % batch] if trials % batch else [])
    assert {r["strategy"] for r in rounds} == {strategy}
    proposed = [tid for r in rounds for tid in round_ids(r)]
    for index, round_file in enumerate(rounds):
        told = [(e["trial_id"], e["status"], e["objective"], e["values"], e["constraints"]) for e in round_file["told"]]
        expected = []
        for tid in proposed[: batch * index]:
            record = read_json(workflow.path(f"results/trials/{tid}/metrics.json"))
            loss, size = record["metrics"]["loss"]["final"], record["measures"]["params_count"]
            expected.append((tid, "ok", loss, [loss, size], [size - 100]))
        assert told == expected  # both values, and params_count <= 100 as its violation
    assert any(entry["constraints"][0] > 0 for entry in rounds[-1]["told"])  # units 64: 257 parameters

    # The rounds are a function of the files and the seed: proposed again from them, the same bytes.
    from snakemake.utils import validate

    from kerasgrid.config import sweep_from_config
    from kerasgrid.search.rounds import write_round

    given = yaml.safe_load(workflow.path("my.yaml").read_text())
    validate(given, str(workflow.path("workflow/schemas/config.schema.yaml")))  # the defaults, as the workflow
    monkeypatch.chdir(workflow.root)
    sweep = sweep_from_config(given, "my.yaml")
    records = [workflow.path(f"results/trials/{tid}/metrics.json") for tid in proposed]
    paths = [workflow.path(f"results/rounds/{i}.json") for i in range(len(rounds))]
    for index in range(len(rounds)):
        again = workflow.path(f"again/{index}.json")
        write_round(paths[:index], records[: batch * index], sweep.round_settings(index), index, again)
        assert again.read_bytes() == paths[index].read_bytes()
    # Ranked by Pareto front: the feasible front first.
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert len(rows) == trials and (rows[0]["feasible"], rows[0]["pareto_rank"]) == ("yes", "1")
