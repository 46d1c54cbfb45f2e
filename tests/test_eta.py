"""The size of a sweep under control (issue 24): the runs to train, the time left, the warning of a
big sweep. Unit tests of kerasgrid.running.eta on known records, then real snakemake runs."""

import json
import re

import pytest

from conftest import ETA, REPO, faulty_config
from kerasgrid.cli import main, summary
from kerasgrid.config import fill_defaults, load_schema, sweep_from_config
from kerasgrid.running import eta
from kerasgrid.running.eta import Estimate, Pace, Stage
from test_config import full_config

BUDGET = {"epochs": 5, "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 32}


def record(trial="a" * 12, fit=10.0, wall=12.0, epochs_run=5, resumed=0, **budget):
    return {"trial_id": trial, "status": "ok", "fit_seconds": fit, "wall_seconds": wall, "epochs_run": epochs_run,
            "resumed_from_epoch": resumed, "budget": {**BUDGET, **budget}}


def write_record(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(record(**fields)), encoding="utf-8")


def sweep(**overrides):
    return sweep_from_config(full_config(**overrides), "my.yaml")


def test_the_pace_is_fit_seconds_per_epoch_plus_what_a_run_costs_besides_of_the_same_budget_only():
    found = [
        record(fit=10.0, wall=12.0, epochs_run=5),  # 2 s an epoch, 2 s besides
        record(fit=3.0, wall=5.0, epochs_run=4, resumed=1, epochs=9),  # a rung: other epochs, same pace
        record(fit=100.0, wall=100.0, steps_per_epoch=20),  # another budget: not this one's pace
        record(fit=0.0, wall=0.5, epochs_run=0),  # failed before fitting
    ]
    pace = eta.pace(found, BUDGET)
    assert pace == Pace(epoch_seconds=1.5, run_seconds=2.0, measured=2)
    assert pace.seconds(5) == pytest.approx(9.5)
    assert eta.pace([found[2]], BUDGET) is None


def test_the_time_left_waits_for_each_stage_and_runs_as_many_side_by_side_as_cores():
    pace = Pace(epoch_seconds=2.0, run_seconds=1.0, measured=3)
    # 5 runs of 5 epochs (11 s each) on 2 cores: 3 rounds of them; with 2 done, 2 rounds.
    assert eta.seconds_left([Stage(5, 5, 25)], pace, cores=2) == 33
    assert eta.seconds_left([Stage(5, 5, 25, done=2)], pace, cores=2) == 22
    # Halving's rungs wait for each other: 9 runs of 1 epoch, then 3 of 2 more, then 1 of 6 more.
    rungs = [Stage(1, 9, 9), Stage(3, 3, 6), Stage(9, 1, 6)]
    assert eta.seconds_left(rungs, pace, cores=4) == 3 * 3 + 1 * 5 + 1 * 13
    assert eta.job_seconds(rungs, pace) == 9 * 3 + 3 * 5 + 13


def test_a_plain_grid_counts_its_finished_trials_from_their_files(tmp_path):
    grid = sweep(grid={"lr": [0.1, 0.2, 0.3]}, budget=BUDGET)
    trials = sorted(grid.trials)
    write_record(tmp_path / "trials" / trials[0])
    (tmp_path / "trials" / trials[1]).mkdir()  # started, never finished
    found = eta.estimate(grid, cores=2, trials_dir=tmp_path / "trials")
    assert found.stages == [Stage(5, 3, 15, done=1)]
    assert (found.runs, found.done, found.left) == (3, 1, 2)
    assert found.pace == Pace(2.0, 2.0, 1)
    assert found.seconds() == 12  # 2 runs of 12 s side by side
    assert found.lines() == ["kerasgrid: 2 trials to train, 1 of the 3 finished already; about 12 s left on 2 cores "
                             "(12 s a trial, the pace of 1 finished run)."]
    assert found.eta() == "ETA 12 s"
    # What Snakemake counts wins: a changed setting retrains the finished one too.
    assert found.with_jobs(3).left == 3


def test_halving_counts_the_runs_and_epochs_of_each_rung(tmp_path):
    halving = sweep(grid={"lr": [i / 10 for i in range(1, 10)]}, budget={**BUDGET, "epochs": 9},
                    search={"strategy": "grid", "trials": None, "halving": {"eta": 3, "min_epochs": 1, "brackets": 1}})
    trial = sorted(halving.trials)[0]
    write_record(tmp_path / "trials" / trial / "rungs" / "1", epochs_run=1, fit=2.0, wall=3.0, epochs=9)
    found = eta.estimate(halving, cores=3, trials_dir=tmp_path / "trials")
    # 9 candidates 1 epoch, 3 of them 2 more, 1 of them 6 more; one first-rung run finished.
    assert found.stages == [Stage(1, 9, 9, done=1), Stage(3, 3, 6), Stage(9, 1, 6)]
    assert found.pace == Pace(2.0, 1.0, 1)
    assert found.seconds() == 3 * 3 + 1 * 5 + 1 * 13
    assert found.lines()[0].startswith("kerasgrid: at most 12 runs to train, 1 of the 13 finished already; about 27 s")
    # The same plan with Hyperband's brackets counts each bracket's runs (kerasgrid check's "at most").
    hyperband = sweep(grid={"lr": [i / 10 for i in range(1, 10)]}, budget={**BUDGET, "epochs": 9},
                      search={"strategy": "grid", "trials": None, "halving": {"eta": 3, "min_epochs": 1}})
    from kerasgrid.project import _rung_jobs
    assert sum(stage.runs for stage in eta.plan(hyperband, tmp_path / "none")) == _rung_jobs(hyperband)


def test_an_adaptive_search_waits_for_each_round(tmp_path):
    tpe = sweep(grid={"lr": {"low": 0.001, "high": 0.1, "log": True}},
                search={"strategy": "tpe", "trials": 5, "batch": 2}, budget=BUDGET)
    found = eta.Estimate(eta.plan(tpe, tmp_path / "trials"), Pace(2.0, 2.0, 1), cores=2)
    assert [stage.runs for stage in found.stages] == [2, 2, 1]
    assert found.seconds() == 3 * 12  # three rounds, each one run's time on 2 cores


def test_on_a_cluster_the_estimate_is_seconds_a_job_and_job_seconds():
    found = Estimate([Stage(5, 10, 50, done=4)], Pace(2.0, 2.0, 4), cores=8, cluster=True)
    assert found.seconds() == 6 * 12
    assert found.eta() == "about 12 s a job"
    assert found.lines() == ["kerasgrid: 6 trials to train, 4 of the 10 finished already; about 12 s a trial (the pace "
                             "of 4 finished runs), 72 job-seconds in all: on a cluster the queue decides when each "
                             "starts."]


def test_progress_counts_each_run_finished_here_and_its_pace(tmp_path):
    progress = eta.Progress()
    assert progress.eta() == ""  # a dry run: nothing started
    progress.start(Estimate([Stage(5, 3, 15)], None, cores=1, budget=BUDGET))
    assert progress.eta() == ""  # nothing of this budget finished yet
    write_record(tmp_path)
    progress.finished(5, tmp_path / "metrics.json")
    assert progress.estimate.pace == Pace(2.0, 2.0, 1)
    assert progress.eta() == "ETA 24 s"  # 2 trials of 12 s, one after the other
    progress.finished(5, tmp_path / "missing.json")  # a record not there: one fewer all the same
    assert progress.eta() == "ETA 12 s"


def test_durations_read_as_people_say_them():
    assert [eta.duration(s) for s in (0.2, 40, 180, 9000, 86400 * 3.2)] == ["1 s", "40 s", "3 min", "2.5 h", "3.2 days"]


def test_a_long_sweep_warns_with_what_random_halving_and_tpe_would_cost_instead():
    grid = sweep(grid={"lr": [i / 100 for i in range(1, 101)]}, budget={**BUDGET, "epochs": 9})
    found = Estimate([Stage(9, 100, 900)], Pace(epoch_seconds=40.0, run_seconds=0.0, measured=5), cores=2,
                     budget=BUDGET)
    assert found.seconds() == 50 * 360  # 5 h
    assert eta.warning(grid, found, warn_hours=24, source="my.yaml") is None
    text = eta.warning(grid, found, warn_hours=1, source="my.yaml")
    assert "\n" not in text
    assert text.startswith("kerasgrid: warning: my.yaml asks for a grid search of 100 trials: about 5.0 h left on 2 "
                           "cores, above warn_hours (1). Instead, ")
    # 10 random trials: 5 rounds of 2 at 6 min; halving's brackets on the grid; tpe in rounds of 2.
    assert "search: {strategy: random, trials: 10}: about 30 min" in text
    # 100 trials 1 epoch, 34 of them 2 more, 12 of them 6 more, 2 at a time: 2,000 s + 1,360 s + 1,440 s.
    assert "the same grid with halving: {eta: 3, brackets: 1} (rungs at 1, 3, 9 epochs): about 80 min" in text
    assert "search: {strategy: tpe, trials: 10, batch: 2}: about 30 min" in text
    assert "It trains anyway (max_trials is the only hard cap)" in text


def test_a_grid_of_more_than_10000_combinations_warns_even_without_an_estimate():
    big = sweep(grid={"a": list(range(101)), "b": list(range(100))}, max_trials=20000)
    found = Estimate([Stage(1, 10100, 10100)], None, cores=4)
    text = eta.warning(big, found, warn_hours=24, source="my.yaml")
    assert text.startswith("kerasgrid: warning: my.yaml asks for a grid of 10,100 combinations (10,100 runs): no "
                           "estimate of its time exists yet")
    assert "search: {strategy: random, trials: 1,000}: 1,000 runs, 1,000 epochs" in text


def test_summary_reads_the_plan_and_counts_what_finished_since(tmp_path):
    found = Estimate([Stage(5, 4, 20, done=0)], None, cores=2, budget=BUDGET)
    eta.write_plan(found, tmp_path / "eta.json")
    for trial in ("a" * 12, "b" * 12):
        write_record(tmp_path / "trials" / trial, trial=trial)
        (tmp_path / "trials" / trial / "metrics.json").write_text(json.dumps(
            {**record(trial=trial), "params": {"q": 1}, "objective": {"metric": "loss", "direction": "min"},
             "objective_value": 1.0, "metrics": {"loss": {"final": 1.0}}, "error": None}),
            encoding="utf-8")
    lines = summary(tmp_path)
    assert lines[1] == ("2 trials to train, 2 of the 4 finished already; about 12 s left on 2 cores (12 s a trial, "
                        "the pace of 2 finished runs).")


# End to end: real snakemake runs of the faulty fixture's tiny model, one core, so that every
# Model line after the first finished trial comes after it.

MODEL = re.compile(r"^Job \d+: (Model \d+ of \d+: .* \(trial [0-9a-f]{12}\))(" + ETA + ")$", flags=re.M)


def test_a_grown_sweep_says_what_it_trains_and_when_it_ends_and_warns_above_the_threshold(faulty):
    config = faulty_config({"lr": [0.01, 0.02], "units": [4]})
    first = faulty.sweep(config, "--cores", "1").output
    assert "kerasgrid: 2 trials to train, 0 of the 2 finished already; no estimate yet" in first
    lines = MODEL.findall(first)
    assert [bool(tail) for _, tail in lines] == [False, True]  # the second starts after the first finished
    assert re.fullmatch(r", ETA \d+ s", lines[1][1])

    config["grid"]["lr"] += [0.03, 0.04]
    config["warn_hours"] = 1e-6
    second = faulty.sweep(config, "--cores", "1").output
    assert re.search(r"^kerasgrid: 2 trials to train, 2 of the 4 finished already; about \d+ s left on 1 core "
                     r"\(\d+ s a trial, the pace of 2 finished runs\)\.$", second, re.M)
    warning = re.search(r"^kerasgrid: warning: .*my\.yaml asks for a grid search of 4 trials: about \d+ s left on 1 "
                        r"core, above warn_hours \(1e-06\)\. Instead, .*It trains anyway.*$", second, re.M)
    assert warning and warning.start() < second.index("Model 3 of 4")
    assert all(tail.startswith(", ETA ") for _, tail in MODEL.findall(second))  # a pace from the start
    assert faulty.path("results/leaderboard.tsv").read_text().count("\n") == 5  # it trained all the same

    assert summary(faulty.path("results"))[1].startswith("all 4 trials of the plan finished")


def test_halving_rungs_say_their_epochs_then_the_eta(faulty):
    config = faulty_config({"lr": [0.01, 0.02, 0.03]}, budget={"epochs": 3, "steps_per_epoch": 3},
                           search={"halving": {"eta": 3, "min_epochs": 1, "brackets": 1}})
    output = faulty.sweep(config, "--cores", "1").output
    assert "kerasgrid: at most 4 runs to train, 0 of the 4 finished already; no estimate yet" in output
    rungs = re.findall(r"^Job \d+: Model \d+ of 3: .* \(trial \w{12}\), until epoch 1(" + ETA + ")$", output, re.M)
    assert [bool(tail) for tail in rungs] == [False, True, True]
    last = re.findall(r"^Job \d+: Model \d+ of 3: .* \(trial \w{12}\)(" + ETA + ")$", output, re.M)
    assert len(last) == 1 and last[0].startswith(", ETA ")


def test_check_and_a_dry_run_say_the_size_and_warn_of_a_20736_combination_grid_with_a_pace_here(faulty, monkeypatch,
                                                                                                 capsys):
    """The issue's grid (max_trials raised): the run warns only once it starts; `kerasgrid check` and
    `snakemake -n` say the same before, with the pace of the one trial finished in the folder."""
    config = faulty_config({"units": list(range(1, 145)), "lr": [i / 1000 for i in range(1, 145)]}, max_trials=30000)
    faulty.write_config(config)
    monkeypatch.chdir(faulty.root)
    filled = fill_defaults(json.loads(json.dumps(config)), load_schema(REPO / "workflow/schemas/config.schema.yaml"))
    grid = sweep_from_config(filled, "my.yaml")
    first = next(iter(grid.trials))
    write_record(faulty.path(f"results/trials/{first}"), trial=first, fit=30.0, wall=32.0, epochs_run=1,
                 **grid.settings()["budget"])
    assert main(["check", "my.yaml", "--no-build"]) == 0
    said = capsys.readouterr().out.splitlines()[-3:-1]
    # 20,735 trials 2 at a time, 32 s each: 10,368 x 32 s.
    assert said[0] == ("kerasgrid: 20,735 trials to train, 1 of the 20,736 finished already; about 3.8 days left on 2 "
                       "cores (32 s a trial, the pace of 1 finished run).")
    assert said[1].startswith("kerasgrid: warning: my.yaml asks for a grid of 20,736 combinations (20,736 runs): about "
                              "3.8 days left on 2 cores, above warn_hours (24). Instead, search: {strategy: random, "
                              "trials: 1,000}: about 4.4 h;")
    # A dry run of one trial's target: it says so of the whole sweep before Snakemake plans its jobs.
    second = list(grid.trials)[1]
    plan = faulty.run(f"results/trials/{second}/metrics.json", "-n", "--cores", "2", "--configfile", "my.yaml").stdout
    where = str(faulty.path("my.yaml"))
    assert [line.replace(where, "my.yaml") for line in plan.splitlines() if line.startswith("kerasgrid: ")] == said
    assert not faulty.path("results/eta.json").exists()  # a dry run writes nothing
