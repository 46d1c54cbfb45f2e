"""The real workflow, run with the real snakemake on tiny sweeps."""

import json
import os
import re
import subprocess
import sys

import yaml

from conftest import tiny_config, trained_trials
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.sweep.grid import expand_grid


def test_a_sweep_trains_every_combination_and_names_the_winner(workflow):
    config = tiny_config()
    result = workflow.sweep(config)
    trials = expand_grid(config["grid"])
    assert len(trials) == 4
    for tid, params in trials.items():
        trial = workflow.path(f"results/trials/{tid}")
        assert json.loads((trial / "params.json").read_text()) == params
        metrics = json.loads((trial / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["epochs_run"] == 1
        assert (trial / "history.csv").read_text().count("\n") == 2
        assert workflow.path(f"logs/trials/{tid}.log").read_text().count("- val_loss: ") == 1
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert sorted(r["trial_id"] for r in rows) == sorted(trials)
    assert [float(r["objective"]) for r in rows] == sorted(float(r["objective"]) for r in rows)
    best = yaml.safe_load(workflow.path("results/best_params.yaml").read_text())
    assert best["trial_id"] == rows[0]["trial_id"] and best["params"] == trials[best["trial_id"]]
    assert f"Best params found: {best['params']}" in result.output.splitlines()

    again = workflow.sweep(config)
    assert "Nothing to be done" in again.output


def test_the_winner_is_on_the_console_before_the_figures_are_drawn_and_again_last(workflow):
    # stdout (the winner's lines) and stderr (Snakemake's jobs) in one pipe, in the order printed.
    path = workflow.write_config(tiny_config())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
    console = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(path)],
                             cwd=workflow.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=600, check=True).stdout.splitlines()
    best = yaml.safe_load(workflow.path("results/best_params.yaml").read_text())
    winner = [n for n, line in enumerate(console) if line == f"Best params found: {best['params']}"]
    finished = {rule: n for n, line in enumerate(console)
                if (rule := re.fullmatch(r"Finished jobid: \d+ \(Rule: (\w+)\)", line)) and (rule := rule[1])}
    # Once by best_params, as soon as it is written: before the figures and the winner's model are
    # done; then again as the run's last word, after its leaderboard.
    assert len(winner) == 2
    assert winner[0] < finished["best_params"] < min(finished["plots"], finished["importance"], finished["best_model"])
    assert winner[1] > finished["all"] and console[winner[1] - 1].startswith("Best trial: ")
    # The drawers drew; each job's log holds only what drawing printed, nothing.
    assert workflow.path("logs/plots.log").read_text() == workflow.path("logs/importance.log").read_text() == ""
    assert "ready after" in workflow.path("logs/drawers.log").read_text()


def test_a_users_config_alone_defines_the_sweep(workflow):
    # The demo config.yaml sits in the same folder; had its grid (act_in, act_out, loss) merged
    # into this one, the plan would hold 2 x 2 x 3 x 2 x 1 = 24 trials instead of 4.
    config = tiny_config(grid={"lr": [0.001, 0.01], "units": [4, 8]})
    plan = workflow.sweep(config, "--dry-run").output
    assert len(trained_trials(plan)) == 4


def test_the_whole_config_comes_from_the_users_file(workflow):
    config = tiny_config(grid={"lr": [0.001, 0.01], "units": [4, 8]})
    config["model"] = "examples/multi_input.py:build_model"
    config["data"] = {"train": "examples/multi_input.py:train_data", "validation": "examples/multi_input.py:val_data"}
    config["objective"] = {"metric": "val_digit_accuracy", "direction": "max"}
    result = workflow.sweep(config)
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert list(rows[0])[2:4] == ["lr", "units"]
    assert [float(r["objective"]) for r in rows] == sorted((float(r["objective"]) for r in rows), reverse=True)
    assert "Best params found: {'lr': " in result.output


def test_a_bad_config_stops_before_training_with_one_paragraph(workflow):
    config = tiny_config()
    config["budget"]["epochs"] = 0
    result = workflow.sweep(config, check=False)
    assert result.returncode != 0
    # The paragraph alone: not after Snakemake's 'ConfigError in file ".../common.smk", line 31:', nor
    # followed by frames of kerasgrid's code. Snakemake names its profile before it reads the workflow.
    profile, paragraph = result.output.splitlines()
    assert profile.startswith("Using workflow specific profile profiles/default")
    assert paragraph.startswith(f"kerasgrid: {workflow.path('my.yaml')}: budget.epochs is 0, which is wrong: 0 is less "
                                "than the minimum of 1. Epochs per trial")
    assert not workflow.path("results").exists()


def test_a_yaml_syntax_error_in_the_default_config_names_its_line(workflow):
    # Snakemake's own message for it ("Config file is not valid JSON or YAML") names no line and,
    # given --configfile, not even the file: tests/test_project.py says what kerasgrid does then.
    config = workflow.path("config.yaml")
    config.write_text(config.read_text(encoding="utf-8").replace("lr: [0.001, 0.0005]", "lr: [0.001, 0.0005"),
                      encoding="utf-8")
    result = workflow.run("--cores", "1", "--dry-run", check=False)
    assert result.returncode != 0
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if text.startswith("  loss:"))
    assert (f"config.yaml, line {line}, column 7 is not valid YAML: expected ',' or ']', but got ':' (while parsing a "
            f"flow sequence that starts at line {line - 1}, column 7); line {line} reads '  loss: [mean_squared_error]'. "
            "Fix the YAML there or just before it") in result.output
    assert "Config file is not valid JSON or YAML" not in result.output


def test_a_missing_model_function_is_named_before_training(workflow):
    result = workflow.sweep(tiny_config(model="examples/digits.py:build"), check=False)
    assert result.returncode != 0
    assert "my.yaml: model is 'examples/digits.py:build', but examples/digits.py defines no 'build' at its top level" in result.output
    assert not workflow.path("results").exists()


def test_a_trial_whose_model_raises_is_ranked_last_and_never_wins(workflow):
    # units=0 makes Keras refuse to build the Dense layer: that trial fails, the sweep goes on.
    config = tiny_config(grid={"units": [0, 8], "lr": [0.01], "act_in": ["relu"], "act_out": ["sigmoid"], "loss": ["mean_squared_error"]})
    result = workflow.sweep(config)
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert [(r["units"], r["status"]) for r in rows] == [("8", "ok"), ("0", "failed")]
    assert "units" in rows[1]["error"] or "0" in rows[1]["error"]
    assert yaml.safe_load(workflow.path("results/best_params.yaml").read_text())["params"]["units"] == 8
    assert "Best params found: {'act_in': 'relu', 'act_out': 'sigmoid', 'loss': 'mean_squared_error', 'lr': 0.01, 'units': 8}" in result.output


def test_an_objective_the_model_does_not_log_stops_the_sweep(workflow):
    config = tiny_config(objective={"metric": "val_accuracy", "direction": "max"})
    result = workflow.sweep(config, "--retries", "0", check=False)
    assert result.returncode != 0
    assert "my.yaml: objective.metric is 'val_accuracy', but the model logs only: categorical_accuracy, loss, val_categorical_accuracy, val_loss." in result.output
