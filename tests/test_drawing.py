"""Warm drawing processes (kerasgrid/running/drawing.py): they draw what the rule scripts drew,
byte for byte, report a task's error and stay usable, and end when the run does."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import tiny_config
from kerasgrid.results.plots import write_plots
from kerasgrid.running.drawing import Drawers, DrawingError, run_task
from kerasgrid.search import describe_space, parse_space
from kerasgrid.search.importance import write_importance

OBJECTIVE = {"metric": "val_loss", "direction": "min"}


def plots_task(sweep, out, log):
    grid = tiny_config()["grid"]
    return {"kind": "plots", "log": str(log), "args": {
        "leaderboard": str(sweep.path("results/leaderboard.tsv")), "objective": OBJECTIVE, "grid_keys": sorted(grid),
        "learning_curves_png": str(out / "learning_curves.png"), "param_effects_png": str(out / "param_effects.png"),
        "ranking_png": str(out / "ranking.png"), "rungs": [1], "seeds": [0],
        "space": describe_space(parse_space(grid, "the config")),
    }}


def importance_task(sweep, out, log):
    grid = tiny_config()["grid"]
    return {"kind": "importance", "log": str(log), "args": {
        "leaderboard": str(sweep.path("results/leaderboard.tsv")), "objectives": [OBJECTIVE],
        "space": describe_space(parse_space(grid, "the config")), "seed": 0, "table": str(out / "importance.tsv"),
        "plot": str(out / "importance.png"), "rungs": [1], "seeds": [0], "confirmed": False,
    }}


def test_a_warm_drawer_draws_what_this_process_draws_byte_for_byte(tiny_sweep, tmp_path):
    drawers = Drawers(log_path=str(tmp_path / "drawers.log"))
    drawers.start(2)
    (tmp_path / "drawn").mkdir()
    (tmp_path / "here").mkdir()
    try:  # side by side, as Snakemake runs the two jobs: each in a drawer of its own
        with ThreadPoolExecutor(2) as pool:
            drawn = [pool.submit(drawers.run, plots_task(tiny_sweep, tmp_path / "drawn", tmp_path / "plots.log")),
                     pool.submit(drawers.run, importance_task(tiny_sweep, tmp_path / "drawn", tmp_path / "importance.log"))]
            for future in drawn:
                future.result()
    finally:
        drawers.close()
    args = plots_task(tiny_sweep, tmp_path / "here", tmp_path / "unused.log")["args"]
    write_plots(args.pop("leaderboard"), args.pop("objective"), args.pop("grid_keys"), **args)
    args = importance_task(tiny_sweep, tmp_path / "here", tmp_path / "unused.log")["args"]
    write_importance(args.pop("leaderboard"), args.pop("objectives"), args.pop("space"), args.pop("seed"), **args)
    for name in ("learning_curves.png", "param_effects.png", "ranking.png", "importance.tsv", "importance.png"):
        assert (tmp_path / "drawn" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name
    # The jobs' logs hold only what drawing printed (nothing); the drawers' log, when each drawer
    # that drew was ready (a task waits for its drawer's imports; one that never drew may not be).
    assert (tmp_path / "plots.log").read_text() == (tmp_path / "importance.log").read_text() == ""
    assert 1 <= (tmp_path / "drawers.log").read_text().count(" ready after ") <= 2


def test_a_failing_task_fails_its_job_with_the_error_and_the_drawer_draws_the_next(tiny_sweep, tmp_path):
    drawers = Drawers(log_path=str(tmp_path / "drawers.log"))
    broken = plots_task(tiny_sweep, tmp_path, tmp_path / "broken.log")
    broken["args"]["leaderboard"] = str(tmp_path / "missing.tsv")
    try:
        with pytest.raises(DrawingError, match="FileNotFoundError: .*missing.tsv"):
            drawers.run(broken)
        assert "FileNotFoundError" in (tmp_path / "broken.log").read_text()  # the traceback, in the job's log
        drawers.run(plots_task(tiny_sweep, tmp_path, tmp_path / "plots.log"))  # the same drawer, still sound
        assert len(drawers._idle) == 1
    finally:
        drawers.close()
    assert (tmp_path / "ranking.png").exists()


def test_close_ends_every_drawer(tmp_path):
    drawers = Drawers(log_path=str(tmp_path / "drawers.log"))
    drawers.start(2)
    processes = [drawer.process for drawer in drawers._idle]
    drawers.close()
    assert [process.returncode for process in processes] == [0, 0]


def test_run_task_draws_in_this_process_as_a_spawned_job_does(tiny_sweep, tmp_path):
    run_task(plots_task(tiny_sweep, tmp_path, tmp_path / "plots.log"))
    assert (tmp_path / "learning_curves.png").exists() and (tmp_path / "plots.log").read_text() == ""
