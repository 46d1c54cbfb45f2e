"""The rerun table of the README, checked with the real snakemake: dry-run plans and real runs."""

import re
import subprocess
import sys

from conftest import faulty_config
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.sweep.grid import trial_id

# Whatever the ranking changes is redone after it: the plots, the page and the winner's model.
AGGREGATION = {"leaderboard": [""], "best_params": [""], "plots": [""], "importance": [""], "leaderboard_page": [""], "best_model": [""]}


def ids(*lrs, units=4):
    return sorted(trial_id({"lr": lr, "units": units}) for lr in lrs)


def test_the_rerun_table(faulty):
    config = faulty_config({"lr": [0.01, 0.02], "units": [4]})
    faulty.sweep(config)
    finished = faulty.snapshot()

    # Nothing changed: nothing to do.
    assert faulty.plan(config) == {}
    assert "Nothing to be done" in faulty.sweep(config).output

    # A value added: only the new combination trains, then aggregation.
    config["grid"]["lr"].append(0.03)
    assert faulty.plan(config) == {"train": ids(0.03), **AGGREGATION}
    faulty.sweep(config)
    assert {k: v for k, v in faulty.snapshot().items() if k in finished} == finished
    finished = faulty.snapshot()

    # A value removed: nothing trains, the leaderboard covers the current grid, the files stay.
    config["grid"]["lr"] = [0.01, 0.03]
    assert faulty.plan(config) == AGGREGATION
    faulty.sweep(config)
    assert sorted(r["trial_id"] for r in read_leaderboard(faulty.path("results/leaderboard.tsv"))) == ids(0.01, 0.03)
    assert faulty.snapshot() == finished

    # Added back: free.
    config["grid"]["lr"] = [0.01, 0.02, 0.03]
    assert faulty.plan(config) == AGGREGATION
    faulty.sweep(config)

    # Keys and values reordered: nothing.
    reordered = faulty_config({"units": [4], "lr": [0.03, 0.01, 0.02]})
    assert faulty.plan(reordered) == {}

    # What is kept or logged, not what is computed: nothing.
    assert faulty.plan(dict(config, keep_models=True, tensorboard=True, checkpoint={"minutes": 0.5})) == {}

    # Objective-only change: only aggregation (results/search.json holds the objective, for kerasgrid summary).
    assert faulty.plan(dict(config, objective={"metric": "loss", "direction": "max"})) == {**AGGREGATION, "search_plan": [""]}

    # Budget, seed or data settings: every trial.
    every = {"train": ids(0.01, 0.02, 0.03), **AGGREGATION}
    # (The epochs are the plan's one rung, so results/search.json is rewritten too.)
    assert faulty.plan(dict(config, budget={"epochs": 2, "steps_per_epoch": 3})) == {**every, "search_plan": [""]}
    assert faulty.plan(dict(config, seed=1)) == every
    assert faulty.plan(dict(config, data={"train": "faulty.py:other_data"})) == every

    # A comment in our own rules and rule scripts: nothing reruns.
    for name in (
        "workflow/rules/train.smk", "workflow/rules/running.smk", "workflow/rules/common.smk", "scripts/search_plan.py",
    ):
        ours = faulty.path(name)
        ours.write_text(ours.read_text() + "# a comment\n")
    assert faulty.plan(config) == {}

    # An edit of the user's model file: every trial that uses it.
    model = faulty.path("faulty.py")
    model.write_text(model.read_text() + "# tuned\n")
    assert faulty.plan(config) == every
    assert faulty.snapshot() == finished


def test_a_changed_value_retrains_only_its_trial(faulty):
    faulty.sweep(faulty_config({"lr": [0.01, 0.02], "units": [4]}))
    assert faulty.plan(faulty_config({"lr": [0.01, 0.05], "units": [4]})) == {"train": ids(0.05), **AGGREGATION}


def test_planning_imports_no_tensorflow(faulty):
    # A dry run loads the Snakefile (and kerasgrid's config, grid and results modules) only.
    probe = faulty.path("probe.py")
    probe.write_text(
        "import sys, runpy\n"
        "sys.argv = ['snakemake', '--dry-run', '--configfile', 'my.yaml', '--cores', '1']\n"
        "try:\n    runpy.run_module('snakemake', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('TENSORFLOW_LOADED', 'tensorflow' in sys.modules)\n"
    )
    faulty.write_config(faulty_config({"lr": [0.01], "units": [4]}))
    out = subprocess.run([sys.executable, str(probe)], cwd=faulty.root, capture_output=True, text=True, timeout=120)
    assert "TENSORFLOW_LOADED False" in out.stdout, out.stdout + out.stderr


def test_each_train_job_names_its_model_and_its_place_without_changing_what_reruns(faulty):
    config = faulty_config({"lr": [0.01, 0.02], "units": [4]})
    first, second = ids(0.01)[0], ids(0.02)[0]
    named = [f"Model 1 of 2: lr=0.01, units=4 (trial {first})", f"Model 2 of 2: lr=0.02, units=4 (trial {second})"]
    assert sorted(re.findall(r"^Job \d+: (Model .*)$", faulty.sweep(config, "--dry-run").output, re.M)) == named
    assert sorted(re.findall(r"^Job \d+: (Model .*)$", faulty.sweep(config).output, re.M)) == named

    # A value added before the others renumbers the sweep; only the new trial trains.
    config["grid"]["lr"].insert(0, 0.005)
    plan = faulty.sweep(config, "--dry-run").output
    assert re.findall(r"^Job \d+: (Model .*)$", plan, re.M) == [f"Model 1 of 3: lr=0.005, units=4 (trial {ids(0.005)[0]})"]
    assert faulty.plan(config) == {"train": ids(0.005), **AGGREGATION}
