import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from kerasgrid.config import check, fill_defaults, load_schema, read_config, sweep_from_config
from kerasgrid.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")


def full_config(**overrides):
    """A valid config with the defaults filled in, as the workflow hands it on."""
    config = {
        "model": "examples/digits.py:build_model",
        "data": {"train": "examples/digits.py:train_data", "validation": "examples/digits.py:val_data"},
        "budget": {"epochs": 1, "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 32},
        "objective": {"metric": None, "direction": "min"},
        "seed": 0,
        "max_trials": 1000,
        "search": {"strategy": "grid", "trials": None},
        "grid": {"lr": [0.001], "act_in": ["relu"]},
    }
    config.update(overrides)
    return config


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("grid"), r"my\.yaml: the required key 'grid' is missing\. Add it: .*lr: \[0\.001"),
        (lambda c: c["grid"].update(lr=0.001), r"my\.yaml: grid\.lr is 0\.001, but every grid value must be a non-empty list or a range\. .*lr: \[0\.001\]"),
        (lambda c: c["grid"].update(lr=[]), r"my\.yaml: grid\.lr is \[\], but every grid value must be a non-empty list"),
        (lambda c: c.update(grid={}), r"my\.yaml: grid is empty\. Give at least one hyperparameter"),
        (lambda c: c.update(grdi={"a": [1]}), r"my\.yaml: 'grdi' is not a key kerasgrid knows \(did you mean 'grid'\?\)\. Remove or rename it"),
        (lambda c: c["budget"].update(epochs=0), r"my\.yaml: budget\.epochs is 0, which is wrong: .*Epochs per trial, a whole number of at least 1"),
        (lambda c: c["budget"].update(steps_per_epoch=-3), r"my\.yaml: budget\.steps_per_epoch is -3"),
        (lambda c: c["objective"].update(direction="down"), r"my\.yaml: objective\.direction is \"down\".*min when smaller is better"),
        (lambda c: c.update(checkpoint={"minutes": -1}), r"my\.yaml: checkpoint\.minutes is -1, which is wrong: .*Minutes of training between checkpoints"),
        (lambda c: c.update(checkpoint={"every": 5}), r"my\.yaml: 'checkpoint\.every' is not a key kerasgrid knows\. Remove or rename it; the keys allowed in checkpoint are: minutes"),
    ],
)
def test_schema_errors_name_file_key_and_fix(change, message):
    config = full_config()
    change(config)
    with pytest.raises(ConfigError, match=message):
        check(config, SCHEMA, "my.yaml")


def test_checkpoint_minutes_default_to_ten_and_are_no_setting():
    # Where a trial resumes changes no result: the key stays out of the settings, a rerun trigger.
    default, often = (sweep_from_config(fill_defaults(full_config(**extra), SCHEMA), "my.yaml")
                      for extra in ({}, {"checkpoint": {"minutes": 0.5}}))
    assert (default.checkpoint_minutes, often.checkpoint_minutes) == (10, 0.5)
    assert default.settings() == often.settings()


def test_a_valid_config_passes_the_schema():
    check(full_config(), SCHEMA, "my.yaml")


@pytest.mark.parametrize(
    "model, message",
    [
        ("examples/nope.py:build_model", r"model is 'examples/nope\.py:build_model', but the file examples/nope\.py does not exist"),
        ("examples/digits.py:build_modle", r"examples/digits\.py defines no 'build_modle' at its top level \(it defines: .*build_model"),
        ("no_such_package.models:build", r"no module 'no_such_package\.models' can be imported"),
        ("json:no_such_function", r"json/__init__\.py defines no 'no_such_function'"),
        ("build_model", r"that is not a reference to a callable\. Write it as 'path/to/file\.py:function'"),
    ],
)
def test_model_references_are_checked_without_importing(model, message):
    with pytest.raises(ConfigError, match=message):
        sweep_from_config(full_config(model=model), "my.yaml")


def test_module_references_resolve_to_their_file():
    sweep = sweep_from_config(full_config(model="json:dumps"), "my.yaml")
    assert sweep.code_files[0].endswith("json/__init__.py")


def test_objective_defaults_to_val_loss_with_validation_and_loss_without():
    assert sweep_from_config(full_config(), "my.yaml").objective["metric"] == "val_loss"
    no_val = full_config(data={"train": "examples/digits.py:train_data", "validation": None})
    assert sweep_from_config(no_val, "my.yaml").objective["metric"] == "loss"


def test_a_validation_objective_without_validation_data_is_refused():
    config = full_config(data={"train": "examples/digits.py:train_data", "validation": None})
    config["objective"]["metric"] = "val_categorical_accuracy"
    with pytest.raises(ConfigError, match=r"my\.yaml: objective\.metric is 'val_categorical_accuracy', a validation metric, but data\.validation is not set"):
        sweep_from_config(config, "my.yaml")


def test_a_grid_larger_than_max_trials_stops_before_expanding():
    config = full_config(max_trials=1000, grid={f"k{i}": list(range(10)) for i in range(4)})
    with pytest.raises(ConfigError, match=r"my\.yaml: grid expands to 10,000 trials \(10 k0 x 10 k1 x 10 k2 x 10 k3\), more than max_trials \(1,000\)"):
        sweep_from_config(config, "my.yaml")


def test_settings_hold_what_a_trial_depends_on_but_not_the_objective():
    a = sweep_from_config(full_config(), "a.yaml")
    b_config = full_config()
    b_config["objective"] = {"metric": "val_categorical_accuracy", "direction": "max"}
    b = sweep_from_config(b_config, "b.yaml")
    assert a.settings() == b.settings()
    assert sweep_from_config(full_config(seed=1), "a.yaml").settings() != a.settings()


def test_a_model_file_with_a_syntax_error_is_named_with_its_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def build_model(params):\n    return (\n")
    with pytest.raises(ConfigError, match=rf"my\.yaml: model is '{broken}:build_model', but {broken} has a syntax error at line \d+: .*\. Fix the file\."):
        sweep_from_config(full_config(model=f"{broken}:build_model"), "my.yaml")


def test_a_reference_to_something_not_callable_is_refused_when_loaded(tmp_path):
    from kerasgrid.sweep import refs

    module = tmp_path / "values.py"
    module.write_text("build_model = 3\n")
    ref = refs.parse_ref(f"{module}:build_model", "model", "my.yaml")
    assert refs.source_file(ref) == module  # the name exists, so planning accepts it
    with pytest.raises(ConfigError, match=r"my\.yaml: model is '.*values\.py:build_model', but 'build_model' in it is 3, not a callable\. Point it to a function\."):
        refs.load(ref)


MLFLOW = {"tracking_uri": "http://127.0.0.1:5000", "experiment": "digits"}


def test_mlflow_logs_nothing_unless_set_and_changes_no_setting():
    assert sweep_from_config(full_config(), "my.yaml").mlflow is None
    tracked = sweep_from_config(full_config(mlflow=MLFLOW), "my.yaml")
    assert tracked.mlflow == MLFLOW
    assert tracked.settings() == sweep_from_config(full_config(), "my.yaml").settings()  # retrains nothing


def test_mlflow_without_the_package_is_refused_before_training(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "mlflow" else real(name, *args))
    with pytest.raises(ConfigError, match=(
        r"^my\.yaml: mlflow is set \(tracking_uri: http://127\.0\.0\.1:5000\), but the mlflow package is not installed "
        r"in this Python, so no run could be logged\. Install it: pip install 'kerasgrid\[mlflow\]' \(in a checkout, "
        r"\.venv/bin/pip install -e '\.\[mlflow\]'\), or remove the mlflow key to train without tracking\.$")):
        sweep_from_config(full_config(mlflow=MLFLOW), "my.yaml")


def test_mlflow_needs_a_tracking_uri():
    with pytest.raises(ConfigError, match=r"my\.yaml: the required key 'mlflow\.tracking_uri' is missing\. Add it: Where MLflow keeps the runs"):
        check(full_config(mlflow={"experiment": "digits"}), SCHEMA, "my.yaml")


def test_mlflow_settings_take_their_defaults_from_the_schema():
    from kerasgrid.config import fill_defaults, mlflow_settings

    config = fill_defaults(full_config(mlflow={"tracking_uri": "sqlite:///mlflow.db"}), SCHEMA)
    assert mlflow_settings(config, "my.yaml") == {"tracking_uri": "sqlite:///mlflow.db", "experiment": "kerasgrid"}
    assert "mlflow" not in fill_defaults(full_config(), SCHEMA)  # off unless set


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "mlruns", "./mlruns"])
def test_a_folder_store_mlflow_refuses_is_named_before_training(uri, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError, match=(
        rf"^my\.yaml: mlflow\.tracking_uri is {re.escape(uri)}, a folder store, which MLflow 3 refuses .* Use a "
        r"database store, e\.g\. tracking_uri: sqlite:///mlflow\.db, or a tracking server .*MLFLOW_ALLOW_FILE_STORE=true")):
        sweep_from_config(full_config(mlflow={**MLFLOW, "tracking_uri": uri}), "my.yaml")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert sweep_from_config(full_config(mlflow={**MLFLOW, "tracking_uri": uri}), "my.yaml").mlflow["tracking_uri"] == uri
# The fix every YAML syntax error ends with.
YAML_FIX = r"Fix the YAML there or just before it: usually a \[ or \{ left open, a tab in the indentation, or a value"


@pytest.mark.parametrize(
    "text, message",
    [
        ("grid:\n  lr: [0.1, 0.2\n  act: [relu]\n",
         r"my\.yaml, line 3, column 6 is not valid YAML: expected ',' or '\]', but got ':' \(while parsing a flow "
         r"sequence that starts at line 2, column 7\); line 3 reads '  act: \[relu\]'\. "),
        ("grid:\n\tlr: [0.1]\n",
         r"my\.yaml, line 2, column 1 is not valid YAML: found character '\\t' that cannot start any token; "
         r"line 2 reads '\\tlr: \[0\.1\]'\. "),
        ("model: m.py:build\nname: a: b\n", r"my\.yaml, line 2, column 8 is not valid YAML: mapping values are not allowed here; line 2 reads 'name: a: b'\. "),
        ('model: "m.py:build\n', r"my\.yaml, line 2, column 1 is not valid YAML: found unexpected end of stream \(while "
                                  r"scanning a quoted scalar that starts at line 1, column 8\)\. "),
    ],
)
def test_a_yaml_syntax_error_names_the_line_and_column(text, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message + YAML_FIX):
        read_config("my.yaml")


@pytest.mark.parametrize("text, holds", [("", "nothing"), ("- a\n- b\n", r'\["a", "b"\]'), ("3\n", "3")])
def test_a_config_without_keys_is_refused(text, holds, tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"my\.yaml holds {holds}, not keys: a sweep config is a mapping of keys to values"):
        read_config(path)


def test_a_missing_config_is_named_with_the_folder_it_was_looked_for_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"nope\.yaml does not exist \(looked for it relative to {tmp_path}\)\. Give the path"):
        read_config("nope.yaml")


def test_a_config_reads_as_snakemake_reads_it(tmp_path):
    """JSON first, as Snakemake does: JSON's 1e-3 is a number, where YAML 1.1 reads a string."""
    (tmp_path / "my.json").write_text(json.dumps({"grid": {"lr": "LR"}}).replace('"LR"', "1e-3"), encoding="utf-8")
    assert read_config(tmp_path / "my.json") == {"grid": {"lr": 0.001}}
    (tmp_path / "my.yaml").write_text("grid: {lr: [1e-3, 0.5]}\n", encoding="utf-8")
    assert read_config(tmp_path / "my.yaml") == {"grid": {"lr": ["1e-3", 0.5]}}


def minimal(**keys) -> dict:
    config = {"model": "examples/digits.py:build_model", "data": {"train": "examples/digits.py:train_data"},
              "grid": {"lr": [0.001, 0.01]}}
    config.update(keys)
    return config


@pytest.mark.parametrize(
    "config",
    [
        yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8")),
        yaml.safe_load((REPO / "examples/starter/sweep.yaml").read_text(encoding="utf-8")),
        minimal(),
        minimal(budget={"epochs": 3}, objective={"direction": "max"}),
        minimal(search={"strategy": "random", "trials": 2, "halving": {}}),
        minimal(search={"halving": {"eta": 2}}, grid={"lr": {"low": 0.001, "high": 0.1, "num": 3}}),
        minimal(search={"strategy": "tpe", "trials": 4, "batch": 2}, repeats=2),
        minimal(data={"train": "examples/digits.py:train_arrays", "fraction": 0.5}, confirm={}),
        minimal(confirm={"budget": {"epochs": 20}}, distribute={"strategy": "mirrored"}, keep_models=True),
    ],
    ids=["config.yaml", "starter", "minimal", "budget-objective", "random-halving", "range-halving", "tpe-repeats",
         "fraction-confirm", "confirm-distribute"],
)
def test_defaults_are_filled_in_as_the_workflow_fills_them(config):
    """kerasgrid check fills in the schema's defaults without Snakemake: exactly as the workflow's
    snakemake.utils.validate does."""
    ours, snakemakes = copy.deepcopy(config), copy.deepcopy(config)
    validate(snakemakes, str(REPO / "workflow/schemas/config.schema.yaml"))
    assert fill_defaults(ours, SCHEMA) == snakemakes
    again = copy.deepcopy(config)
    assert fill_defaults(again, SCHEMA) == snakemakes, "filling in defaults changed the schema"
