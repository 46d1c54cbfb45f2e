"""`kerasgrid init` and `kerasgrid check` (kerasgrid/project.py), run as a user runs them."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, tiny_config
from kerasgrid.cli import main
from kerasgrid.running.logs import TENSORFLOW_LOG_LINE
from test_project_folder import installed  # noqa: F401 - the fixture: kerasgrid installed from its wheel

STARTER = REPO / "examples" / "starter"
# A job that trains, as `snakemake -n` names it: also a halving rung's ("..., until epoch 1") or a seed's.
TRAIN_JOB = re.compile(r"^Job \d+: Model \d+ of \d+: .* \(trial [0-9a-f]{12}\)", flags=re.M)


def kerasgrid(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`kerasgrid ARGS` run in `folder` with this checkout's kerasgrid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "kerasgrid.cli", *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)


def planned_runs(check_output: str) -> int:
    """The training runs `kerasgrid check` says the tuning starts with (with halving, the first rung's)."""
    line = next(line for line in check_output.splitlines() if line.startswith("  runs "))
    return int(re.match(r"  runs +([\d,]+)", line)[1].replace(",", ""))


def test_init_writes_a_project_whose_printed_commands_run_at_once(installed, tmp_path):  # noqa: F811
    """From a folder outside the checkout, with kerasgrid installed from its wheel, as a user would:
    the two commands `kerasgrid init` prints are pasted into a shell."""
    bin_dirs = [installed / "bin", Path(sys.executable).parent]  # the wheel's kerasgrid, the venv's snakemake
    # Not TF_CPP_MIN_LOG_LEVEL: Keras set it in this process when a test module imported it; a user's shell
    # has none, and kerasgrid check leaves one that is set alone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE") and k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(installed), PATH=os.pathsep.join([*map(str, bin_dirs), env["PATH"]]))

    def shell(command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        result.output = result.stdout + result.stderr
        return result

    init = shell("kerasgrid init 'my sweep'")  # a space, as users' folders have
    assert init.returncode == 0, init.output
    wrote, check_it, run_it = init.stdout.splitlines()
    assert wrote.startswith("Wrote my sweep/model.py (a small Keras model and its data, scikit-learn's bundled digits)")
    assert check_it == "Check it (trains nothing): cd 'my sweep' && kerasgrid check sweep.yaml"
    assert run_it == ("Run it (under a minute on 2 cores): cd 'my sweep' && snakemake -s $(kerasgrid workflow) "
                      "--cores 2 --configfile sweep.yaml")
    assert wrote.endswith(", and my sweep/.gitignore (which keeps results/, logs/ and .snakemake/ out of git).")
    project = tmp_path / "my sweep"
    assert {p.name: p.read_bytes() for p in project.iterdir() if p.name != ".gitignore"} == {
        name: (STARTER / name).read_bytes() for name in ("model.py", "sweep.yaml")}

    checked = shell(check_it.partition(": ")[2])
    assert checked.returncode == 0, checked.output
    assert checked.stdout.splitlines()[:6] == [
        "sweep.yaml: a valid sweep; nothing was trained.",
        "  search     grid: every combination, 8 candidates (2 activation x 2 lr x 2 units)",
        "  halving    off: every candidate trains the whole budget",
        "  budget     10 epochs of 20 steps, each validated on all the validation data; batch size 32 where a data function returns "
        "whole arrays",
        "  objective  val_loss, lower is better (min)",
        "  runs       8: one per candidate, seed 0",
    ]

    ran = shell(run_it.partition(": ")[2])
    assert ran.returncode == 0, ran.output
    assert len(TRAIN_JOB.findall(ran.output)) == 8
    assert ran.stdout.splitlines()[-1].startswith("Best params found: {'activation': ")
    # TensorFlow's C++ start-up lines, which the warm workers' log keeps, reach neither console: check's
    # and the run's. (Where TensorFlow wrote them here, the pattern knows them: the test means something.)
    for output in (checked.output, ran.output):
        assert not [line for line in output.splitlines() if TENSORFLOW_LOG_LINE.match(line)]
        assert "To enable the following instructions" not in output  # cpu_feature_guard's second line
    start_up = re.compile(r"\] (?:oneDNN custom operations|Could not find cuda drivers|This TensorFlow binary is opt)")
    workers_log = project.joinpath("logs/workers.log").read_text().splitlines()
    assert all(TENSORFLOW_LOG_LINE.match(line) for line in workers_log if start_up.search(line))
    written = {"results", "logs", ".snakemake"}
    assert {p.name for p in project.iterdir()} == {"model.py", "sweep.yaml", ".gitignore", *written}
    # What the sweep wrote is what the .gitignore keeps out of git.
    assert {f"{name}/" for name in written} == set(project.joinpath(".gitignore").read_text().splitlines()[1:])

    # The leaderboard's val_loss is what the winner gives on all of the validation data (issue 29).
    evaluate = ("import kerasgrid, model; x_val, y_val = model.val_data(); m = kerasgrid.load_best_model(); "
                "print(repr(m.evaluate(x_val, y_val, batch_size=32, return_dict=True, verbose=0)['loss']))")
    evaluated = shell(f"cd 'my sweep' && python -c \"{evaluate}\"")
    assert evaluated.returncode == 0, evaluated.output
    best = yaml.safe_load((project / "results/best_params.yaml").read_text())
    assert float(evaluated.stdout.split()[-1]) == pytest.approx(best["objective"]["value"], rel=1e-6, abs=0)


def test_init_writes_into_the_current_folder_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "model.py", "sweep.yaml"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["Check it (trains nothing): kerasgrid check sweep.yaml",
                         "Run it (under a minute on 2 cores): snakemake -s $(kerasgrid workflow) --cores 2 "
                         "--configfile sweep.yaml"]


@pytest.mark.parametrize("existing", [["sweep.yaml"], ["model.py", "sweep.yaml"]])
def test_init_overwrites_nothing_and_then_writes_nothing(existing, tmp_path, capsys):
    for name in existing:
        (tmp_path / name).write_text("mine\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 1
    taken = " and ".join(str(tmp_path / name) for name in existing)
    those = "that file" if len(existing) == 1 else "those files"
    assert capsys.readouterr().err == (
        f"kerasgrid: {taken} already exist{'s' * (len(existing) == 1)}, and kerasgrid init overwrites nothing, so it "
        "wrote no file. Give it a new or empty folder (kerasgrid init my-sweep), or move "
        f"{those} away first.\n"
    )
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {name: "mine\n" for name in existing}


@pytest.mark.parametrize("mine, added, said", [
    ("*.pyc\n/results\n", ["logs/", ".snakemake/"], ", and added logs/ and .snakemake/ to {}."),
    # without a final newline
    ("*.pyc", ["results/", "logs/", ".snakemake/"], ", and added results/, logs/ and .snakemake/ to {}."),
    ("results/\nlogs/\n.snakemake/\n", [], "(the sweep: a small grid, commented)."),
])
def test_init_adds_to_a_users_gitignore_only_what_it_lacks(mine, added, said, tmp_path, capsys):
    (tmp_path / ".gitignore").write_text(mine, encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(said.format(tmp_path / ".gitignore"))
    assert tmp_path.joinpath(".gitignore").read_text(encoding="utf-8").splitlines() == mine.splitlines() + added


def test_init_refuses_a_file_for_a_folder(tmp_path, capsys):
    (tmp_path / "notes").write_text("mine\n", encoding="utf-8")
    assert main(["init", str(tmp_path / "notes")]) == 1
    assert capsys.readouterr().err.startswith(f"kerasgrid: {tmp_path}/notes is a file, not a folder: kerasgrid init ")


@pytest.fixture
def starter(tmp_path) -> Path:
    """The project `kerasgrid init` writes, for a test to break."""
    for name in ("model.py", "sweep.yaml"):
        shutil.copy(STARTER / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "file, old, new, message",
    [
        ("sweep.yaml", "  units: [16, 64]\n", "  units: [16, 64\n",
         r"sweep\.yaml, line \d+, column 13 is not valid YAML: expected ',' or '\]', but got ':' \(while parsing a flow "
         r"sequence that starts at line \d+, column 10\); line \d+ reads '  activation: \[relu, tanh\]'\. Fix the YAML"),
        ("sweep.yaml", "seed: 0 ", "sed: 0 ",
         r"sweep\.yaml: 'sed' is not a key kerasgrid knows \(did you mean 'seed'\?\)\. Remove or rename it; the keys "
         r"allowed here are: model, callbacks, data, "),
        ("sweep.yaml", "model: model.py:", "model: models.py:",
         rf"sweep\.yaml: model is 'models\.py:build_model', but the file models\.py does not exist \(looked for it "
         rf"relative to {{folder}}\)\. Fix the path, or run snakemake from the folder the path is relative to\."),
        ("sweep.yaml", "  train: model.py:train_data", "  train: model.py:training_data",
         r"sweep\.yaml: data\.train is 'model\.py:training_data', but model\.py defines no 'training_data' at its top "
         r"level \(it defines: build_model, keras, load_digits, np, train_data, val_data\)\. Fix the function name"),
        ("sweep.yaml", "  lr: [0.01, 0.001]", "  lr: {low: 0.01, high: 0.001, num: 2}",
         r"sweep\.yaml: grid\.lr is \{.*\}, but low is not below high\."),
        ("sweep.yaml", "  direction: min", "  direction: down",
         r"sweep\.yaml: objective\.direction is \"down\", which is wrong: 'down' is not one of \['min', 'max'\]\. min when"),
        ("model.py", "import keras\n", "import kears\n",
         r"sweep\.yaml: model is 'model\.py:build_model', but importing model\.py raised ModuleNotFoundError: No module "
         r"named 'kears' \(line 8 of model\.py\)\. Fix that file \(or install what it imports\): every trial would fail"),
    ],
    ids=["yaml-syntax", "unknown-key", "missing-file", "missing-function", "bad-range", "bad-direction", "import-error"],
)
def test_check_stops_at_the_first_error_with_one_paragraph(starter, file, old, new, message):
    edit(starter / file, old, new)
    result = kerasgrid(starter, "check", "sweep.yaml")
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(r"kerasgrid: " + message.replace("{folder}", re.escape(str(starter))) + r".*\n",
                        result.stderr), result.stderr


def test_check_names_a_config_that_is_not_there(tmp_path):
    result = kerasgrid(tmp_path, "check")
    assert result.returncode == 1
    assert result.stderr == (f"kerasgrid: config.yaml does not exist (looked for it relative to {tmp_path}). Give "
                             "the path of your sweep's config, relative to the folder you run from.\n")


def test_a_yaml_error_in_a_configfile_is_named_by_check_not_by_snakemake(workflow):
    """Snakemake reads --configfile before it runs the Snakefile (snakemake/settings/types.py,
    ConfigSettings.__post_init__) and says only that the file is not valid JSON or YAML: the
    troubleshooting page sends the user to `kerasgrid check`, which names the line."""
    path = workflow.write_config(tiny_config())
    edit(path, "  lr:\n", "  lr: [\n")
    result = workflow.run("--cores", "1", "--dry-run", "--configfile", "my.yaml", check=False)
    assert result.returncode == 1
    assert result.stdout == ("WorkflowError:\nConfig file is not valid JSON or YAML. In case of YAML, make sure to not "
                             "mix whitespace and tab indentation.\n")
    checked = kerasgrid(workflow.root, "check", "my.yaml")
    assert checked.returncode == 1
    assert checked.stderr.startswith("kerasgrid: my.yaml, line ")


def dry_run_and_check(workflow, config: dict | None):
    """What `snakemake -n` and `kerasgrid check` say of the same config (None: the default config.yaml)."""
    args = ()
    if config is not None:
        workflow.write_config(config)
        args = ("--configfile", "my.yaml")
    plan = workflow.run("--cores", "1", "--dry-run", *args, check=False)
    return plan, kerasgrid(workflow.root, "check", *args[1:])


@pytest.mark.parametrize(
    "config",
    [
        None,
        tiny_config(),
        tiny_config(repeats=2, search={"strategy": "random", "trials": 3}),
        tiny_config(search={"strategy": "random", "trials": 5, "halving": {"eta": 2}}, repeats=2,
                    grid={"lr": {"low": 0.001, "high": 0.1, "log": True}, "act_in": ["relu", "tanh"],
                          "act_out": ["sigmoid"], "loss": ["mean_squared_error"]},
                    budget={"epochs": 3, "steps_per_epoch": 5, "validation_steps": 2}),
    ],
    ids=["config.yaml", "grid", "random-repeats", "halving-repeats"],
)
def test_check_plans_the_jobs_a_dry_run_plans(workflow, config):
    plan, checked = dry_run_and_check(workflow, config)
    assert plan.returncode == 0, plan.output
    assert checked.returncode == 0, checked.stderr
    assert planned_runs(checked.stdout) == len(TRAIN_JOB.findall(plan.output)) > 0


@pytest.mark.parametrize(
    "config",
    [
        tiny_config(grdi={"a": [1]}),
        tiny_config(grid={"lr": {"low": 1, "high": 0, "num": 3}}),
        tiny_config(search={"strategy": "random"}),
    ],
    ids=["unknown-key", "bad-range", "no-trials"],
)
def test_check_stops_with_the_paragraph_a_run_stops_with(workflow, config):
    plan, checked = dry_run_and_check(workflow, config)
    assert plan.returncode == 1 and checked.returncode == 1
    paragraph = checked.stderr.removeprefix("kerasgrid: my.yaml: ").rstrip("\n")
    assert f"{workflow.path('my.yaml')}: {paragraph}" in plan.output


def test_check_describes_halving_adaptive_search_repeats_and_confirm(workflow):
    data = {"train": "examples/digits.py:train_arrays", "validation": "examples/digits.py:val_data", "fraction": 0.5}
    config = tiny_config(search={"strategy": "tpe", "trials": 5, "batch": 2}, repeats=2, data=data,
                         confirm={"top": 2, "budget": {"epochs": 3}})
    config["grid"]["lr"] = [0.001, 0.003, 0.01]
    workflow.write_config(config)
    lines = kerasgrid(workflow.root, "check", "my.yaml").stdout.splitlines()
    assert lines[1:7] == [
        "  search     tpe: Optuna's TPE proposes 5 candidates in 3 rounds of 2, the last of 1, each round learning "
        "from those before (seed 0)",
        "  halving    off: every candidate trains the whole budget",
        "  budget     1 epoch of 5 steps, each validated on the validation data's first 2 batches; batch size 32 where a data function returns "
        "whole arrays",
        "  objective  val_loss, lower is better (min)",
        "  runs       4 in the first round, 10 in all: 5 candidates x 2 seeds (0, 1), ranked by their mean",
        "  data       the tuning runs train on a fraction 0.5 of the training data",
    ]
    assert lines[7] == "  confirm    the best 2 train again on all the data, with epochs 3; the best of them wins"
    # Built on the first batch of the fraction the tuning runs train on, read as they read it.
    assert ("  build      the first combination's model built from the first batch of data.train (x (None, 64) float32, "
            "y (None, 10) float32); none trained") in lines
    assert lines[-1] == "Run it: snakemake -s $(kerasgrid workflow) --cores 2 --configfile my.yaml"

    config.update(search={"strategy": "random", "trials": 9, "halving": {"brackets": 1}}, repeats=1)
    del config["confirm"]
    config["budget"]["epochs"] = 9
    config["grid"]["act_out"] = ["sigmoid", "tanh"]
    workflow.write_config(config)
    lines = kerasgrid(workflow.root, "check", "my.yaml", "--no-build").stdout.splitlines()
    assert lines[1] == "  search     random: 9 candidates drawn from 12 combinations (seed 0)"
    assert lines[2] == "  halving    on (eta 3): rungs end at 1, 3, 9 epochs, which at most 9, 3, 1 candidates reach"
    assert lines[5] == "  runs       9 in the first rung, at most 13 in all: one per candidate, seed 0"

    config["search"]["halving"] = {}  # Hyperband's brackets, one per rung
    workflow.write_config(config)
    lines = kerasgrid(workflow.root, "check", "my.yaml", "--no-build").stdout.splitlines()
    assert lines[2] == ("  halving    on (eta 3): rungs end at 1, 3, 9 epochs; 3 brackets (Hyperband) start candidates "
                        "at an epoch: 9 from 1, 5 from 3, 3 from 9")
    assert lines[5] == "  runs       9 in the first rung, at most 23 in all: one per candidate, seed 0"  # 13 + (5+2) + 3

    config["search"] = {"strategy": "tpe", "trials": 10, "batch": 3, "halving": {}}
    workflow.write_config(config)
    lines = kerasgrid(workflow.root, "check", "my.yaml", "--no-build").stdout.splitlines()
    assert lines[1] == ("  search     tpe: Optuna's TPE proposes 10 candidates in 5 rounds (3, 2, 1, 3, 1), each round "
                        "learning from the results of those before at the longest budget that has enough of them (seed 0)")
    assert lines[2] == ("  halving    on (eta 3): rungs end at 1, 3, 9 epochs; 3 brackets (BOHB), a round each in turn, "
                        "starting candidates at an epoch: 3 from 1, 2 from 3, 1 from 9")


def test_check_describes_several_objectives_constraints_and_callbacks(workflow):
    config = tiny_config(objective=[{"metric": "val_loss"}, {"metric": "params_count"}], winner="knee",
                         constraints=["predict_ms <= 3"], callbacks="examples/digits.py:callbacks")
    workflow.write_config(config)
    lines = kerasgrid(workflow.root, "check", "my.yaml", "--no-build").stdout.splitlines()
    assert ("  objective  by Pareto front of val_loss, lower is better (min); params_count, lower is better (min); "
            "the winner: knee") in lines
    assert any(line.split() == ["constraints", "predict_ms", "<=", "3", "(others", "rank", "after", "these)"]
               for line in lines)
    assert any(line.split()[:2] == ["callbacks", "examples/digits.py:callbacks"] for line in lines)


# `kerasgrid check` builds each branch's model on the first batch of data (kerasgrid/trial/build_check.py).
# In this process, as main() runs it: TensorFlow is imported once for all of them.

BRANCHED = '''import keras
import numpy as np


def build_model(params):
    if params["optimizer"] == "sgd":
        optimizer = keras.optimizers.SGD(params["lr"], momentum=params["mometum"])
    else:
        optimizer = keras.optimizers.Adam(params["lr"])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(params["units"]), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    return model


def data(params):
    x = np.zeros((64, 4), "float32")
    return x, x[:, :1]
'''
CHOICE = {"units": [8, 32], "optimizer": {"choose": {"adam": {"lr": [0.01]}, "sgd": {"lr": [0.1], "momentum": [0.9]}}}}


def checked(tmp_path: Path, monkeypatch, capsys, grid: dict, *args: str, model="model.py:build_model",
            data="model.py:data", cwd=None):
    """`kerasgrid check my.yaml ARGS` of a sweep of `model` and `data` over `grid`, in `cwd` (default:
    tmp_path, where my.yaml is written): exit code, stdout, stderr."""
    config = {"model": model, "data": {"train": data}, "budget": {"epochs": 1, "steps_per_epoch": 2},
              "max_trials": 30000, "grid": grid}
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.chdir(cwd or tmp_path)
    code = main(["check", "my.yaml" if cwd is None else str(tmp_path / "my.yaml"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_builds_each_branch_and_names_the_line_of_a_misspelt_key(tmp_path, monkeypatch, capsys):
    (tmp_path / "model.py").write_text(BRANCHED, encoding="utf-8")
    code, out, err = checked(tmp_path, monkeypatch, capsys, CHOICE)
    assert (code, out) == (1, "")
    assert err == ('kerasgrid: my.yaml: building the model of the combination {"lr": 0.1, "momentum": 0.9, '
                   '"optimizer": "sgd", "units": 8} raised KeyError: \'mometum\' (line 7 of model.py). Its trials '
                   "would fail with the same error. Fix model.py line 7, or run `kerasgrid check --no-build` to skip "
                   "building.\n")
    code, out, err = checked(tmp_path, monkeypatch, capsys, CHOICE, "--no-build")
    assert code == 0 and err == ""
    assert "  model      model.py:build_model imports" in out and "  build " not in out


def test_check_names_a_string_where_keras_wants_an_int(tmp_path, monkeypatch, capsys):
    (tmp_path / "model.py").write_text(BRANCHED, encoding="utf-8")
    code, out, err = checked(tmp_path, monkeypatch, capsys, {"units": ["8", 32], "optimizer": ["adam"], "lr": [0.01]})
    assert (code, out) == (1, "")
    assert err.startswith('kerasgrid: my.yaml: building the model of the combination {"lr": 0.01, "optimizer": '
                          '"adam", "units": "8"} raised ValueError: Received an invalid value for `units`, expected a '
                          "positive integer. Received: units=8 (line 10 of model.py). Its trials would fail with the "
                          "same error. Fix model.py line 10, or run `kerasgrid check --no-build`")


def test_check_builds_branches_a_multi_input_and_a_subclassed_model_without_training(tmp_path, monkeypatch, capsys):
    (tmp_path / "fixed.py").write_text(BRANCHED.replace("mometum", "momentum"), encoding="utf-8")
    code, out, err = checked(tmp_path, monkeypatch, capsys, CHOICE, model="fixed.py:build_model", data="fixed.py:data")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-3] == ("  build      2 models, one per branch (optimizer=adam; optimizer=sgd) built from the first "
                         "batch of data.train (x (None, 4) float32, y (None, 1) float32); none trained")
    assert lines[-2].startswith("kerasgrid: 4 trials to train, 0 of the 4 finished already; no estimate yet")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fixed.py", "my.yaml"]  # nothing written

    # A generator of dict batches (two inputs, two outputs); a subclassed model, built by its first call.
    code, out, err = checked(tmp_path, monkeypatch, capsys, {"units": [16]}, model="examples/multi_input.py:build_model",
                             data="examples/multi_input.py:train_data", cwd=REPO)
    assert code == 0, err
    assert ("  build      the first combination's model built from the first batch of data.train (x {image: (None, 64) "
            "float32, row_sums: (None, 8) float32}, y {digit: (None,) int64, even: (None,) float32}); none trained"
            ) in out.splitlines()
    code, out, err = checked(tmp_path, monkeypatch, capsys, {"lr": [0.01]}, model="tests/trial_models.py:subclassed",
                             data="tests/trial_models.py:data", cwd=REPO)
    assert code == 0, err
    assert ("  build      the first combination's model built from the first batch of data.train (x (None, 4) float32, "
            "y (None, 1) float32); none trained") in out.splitlines()
