"""A SLURM job's runtime from the pace of the runs finished here (kerasgrid/running/job_time.py)."""

import json

from kerasgrid.running import job_time
from kerasgrid.running.job_time import JobTime

BUDGET = {"epochs": 10, "steps_per_epoch": 100, "validation_steps": 10, "batch_size": 32}


def finish(trials_dir, trial, fit_seconds, wall_seconds, epochs=10, budget=BUDGET, rung=None):
    folder = trials_dir / trial / (f"rungs/{rung}" if rung else "")
    folder.mkdir(parents=True)
    record = {"budget": {**budget, "epochs": epochs}, "epochs_run": epochs, "resumed_from_epoch": 0,
              "fit_seconds": fit_seconds, "wall_seconds": wall_seconds}
    (folder / "metrics.json").write_text(json.dumps(record), encoding="utf-8")


def test_a_job_asks_for_its_runs_time_with_a_margin_at_least_the_floor_at_most_the_default():
    assert job_time.minutes(3600, most=240) == 90 + 5  # 1.5 x an hour, and 5 minutes for the job's own start
    assert job_time.minutes(30, most=240) == job_time.FLOOR_MINUTES
    assert job_time.minutes(10 * 3600, most=240) == 240  # longer trials go on over several jobs


def test_the_slowest_finished_run_of_the_budget_sizes_the_jobs_and_the_default_until_one_has(tmp_path):
    trials, now = tmp_path / "trials", [0.0]
    sized = JobTime(BUDGET, most=120, trials_dir=trials, clock=lambda: now[0])
    assert sized.minutes(10) == 120  # nothing finished here: the profile's default runtime
    # 60 and 30 s per epoch, 100 and 20 s besides fit; a run of another budget says nothing.
    finish(trials, "fast", fit_seconds=300, wall_seconds=320)
    finish(trials, "slow", fit_seconds=600, wall_seconds=700)
    finish(trials, "other", fit_seconds=6000, wall_seconds=6000, budget={**BUDGET, "batch_size": 8})
    assert sized.minutes(10) == 120  # read again only once REFRESH_SECONDS have passed
    now[0] += job_time.REFRESH_SECONDS
    assert sized.pace().epoch_seconds == 60 and sized.pace().run_seconds == 100
    assert sized.minutes(10) == job_time.minutes(100 + 60 * 10, most=120) == 23
    # A halving rung: the epochs it trains, or what its own trial took for them if that is longer.
    assert sized.minutes(2) == job_time.minutes(100 + 60 * 2, most=120) == 11
    assert sized.minutes(2, measured=1800) == job_time.minutes(100 + 1800, most=120) == 53


def test_rungs_count_at_the_pace_of_their_epochs(tmp_path):
    trials = tmp_path / "trials"
    finish(trials, "t", fit_seconds=120, wall_seconds=130, epochs=1, rung=1)  # halving's first rung
    assert JobTime(BUDGET, most=120, trials_dir=trials).minutes(9) == job_time.minutes(10 + 120 * 9, most=120)
