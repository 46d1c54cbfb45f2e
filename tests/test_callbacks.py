"""The user's own Keras callbacks (config key `callbacks`, kerasgrid/trial/callbacks.py): in every
trial's fit, carried across halving's rungs, stopping early, failing a trial; and in the workflow."""

import csv
import json

import keras
import pytest

from kerasgrid.errors import ConfigError
from kerasgrid.results.leaderboard import leaderboard_rows, read_leaderboard
from kerasgrid.results.ranking import rank
from kerasgrid.trial import resume
from kerasgrid.trial.training import run_trial
from test_resume import in_rungs
from test_training import MODELS, settings


def with_callbacks(name, **budget):
    return {**settings(**budget), "callbacks": f"{MODELS}:{name}"}


def history(out_dir) -> list[dict]:
    with (out_dir / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name", ["logger_and_checkpoint", "logger_without_params"])
def test_the_users_callbacks_see_every_epoch_and_may_write_into_the_trials_folder(name, tmp_path):
    out = tmp_path / "t"
    record = run_trial({"lr": 0.01}, with_callbacks(name, epochs=3), out)
    assert record["status"] == "ok" and record["epochs_run"] == 3 and record["stopped_early"] is None
    seen = (out / "epochs_seen.txt").read_text().split("\n")[:-1]
    # After kerasgrid's own: each epoch's logged loss is the one history.csv holds.
    assert [line.split()[0] for line in seen] == ["0", "1", "2"]
    assert [float(line.split()[1]) for line in seen] == [float(row["loss"]) for row in history(out)]
    if name == "logger_and_checkpoint":
        assert isinstance(keras.models.load_model(out / "checkpoint.keras"), keras.Model)


def test_a_callbacks_state_carries_across_rungs_bit_for_bit(tmp_path):
    """ReduceLROnPlateau's wait counter and best loss go from rung to rung with the optimizer's rate:
    the trial ends as if trained straight through; without them it would not."""
    trial = with_callbacks("reduce_lr", epochs=5)
    straight = run_trial({"lr": 0.01}, trial, tmp_path / "straight", trial_id="t")
    rates = [float(row["learning_rate"]) for row in history(tmp_path / "straight")]
    assert rates == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005])  # it did reduce (logged from the epoch after)

    resumed, out = in_rungs({"lr": 0.01}, trial, tmp_path, [1, 2, 5])
    assert resumed["metrics"] == straight["metrics"]
    assert (out / "history.csv").read_text() == (tmp_path / "straight" / "history.csv").read_text()
    saved = resume.load_state(tmp_path / "rung2")
    assert saved["callbacks"] == [{"class": "ReduceLROnPlateau", "state": {"best": saved["history"]["loss"][0], "wait": 1}}]

    # The same rungs with the callback's state dropped between them: another learning rate schedule.
    meta = tmp_path / "rung2" / resume.META
    meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "callbacks"}))
    forgetful = run_trial({"lr": 0.01}, trial, tmp_path / "forgetful", epochs=5, resume_from=tmp_path / "rung2")
    assert [float(row["learning_rate"]) for row in history(tmp_path / "forgetful")] != rates
    assert forgetful["metrics"] != straight["metrics"]


@pytest.mark.parametrize("name, by, epochs", [("early_stopping", "EarlyStopping", 2), ("stops_after_one", "StopsAfter", 1)])
def test_a_trial_a_callback_stops_early_is_ok_and_ranked_on_its_last_epoch(name, by, epochs, tmp_path):
    record = run_trial({"lr": 0.01}, with_callbacks(name, epochs=4), tmp_path / "t")
    assert record["status"] == "ok" and record["error"] is None
    assert record["epochs_run"] == epochs and record["stopped_early"] == {"by": by, "epoch": epochs}
    assert record["objective"]["value"] == record["metrics"]["val_loss"]["final"]
    assert len(history(tmp_path / "t")) == epochs

    # The leaderboard shows the epochs each trial trained when one stopped early.
    full = run_trial({"lr": 0.02}, settings(epochs=4), tmp_path / "u")
    ranked = rank([record, full], {"metric": "val_loss", "direction": "min"})
    header, rows = leaderboard_rows(ranked, ["lr"])
    assert header[-1] == "epochs"
    assert {row[1]: row[-1] for row in rows} == {"t": str(epochs), "u": "4"}
    assert leaderboard_rows(rank([full], {"metric": "val_loss", "direction": "min"}), ["lr"])[0][-1] != "epochs"


def test_with_halving_an_early_stopping_callback_is_a_config_error_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"callbacks: the function returns EarlyStopping.*search\.halving"):
        run_trial({"lr": 0.01}, with_callbacks("early_stopping", epochs=4), tmp_path / "t", epochs=2, halving=True)
    assert not (tmp_path / "t" / "metrics.json").exists()


def test_with_halving_a_callback_that_stops_a_rung_early_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"StopsAfter stopped trial t after epoch 1 of the rung's 2.*halving"):
        run_trial({"lr": 0.01}, with_callbacks("stops_after_one", epochs=4), tmp_path / "t", epochs=2, halving=True)
    assert not (tmp_path / "t" / "metrics.json").exists()


@pytest.mark.parametrize("name, message", [
    ("raising_callback", "RuntimeError: the user's callback raised"),
    ("not_callbacks", "the callbacks function returned TerminateOnNaN, str, not a list of keras.callbacks.Callback"),
])
def test_a_callback_that_raises_fails_only_its_trial(name, message, tmp_path):
    record = run_trial({"lr": 0.01}, with_callbacks(name), tmp_path / "t")
    assert record["status"] == "failed" and message in record["error"]
    assert json.loads((tmp_path / "t" / "metrics.json").read_text()) == record


# A user's project: model, data and callbacks in one file. stop_after > 0 stops a trial that early.
USER_FILE = '''
import keras
import numpy as np


class EpochsSeen(keras.callbacks.Callback):
    def __init__(self, trial_dir):
        super().__init__()
        self.path = trial_dir / "epochs_seen.txt"

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{epoch}\\n")


class StopsAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if self.epochs and epoch + 1 >= self.epochs:
            self.model.stop_training = True


def build_model(params):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(params["lr"]), "mse")
    return model


def data(params):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    for start in range(0, 32, 8):
        yield x[start : start + 8], x[start : start + 8].sum(axis=1, keepdims=True)


def callbacks(params, trial_dir):
    return [EpochsSeen(trial_dir), StopsAfter(params.get("stop_after", 0))]


def early_stopping(params):
    return [keras.callbacks.EarlyStopping(monitor="loss", patience=1)]
'''


def user_config(**overrides) -> dict:
    config = {
        "model": "user.py:build_model",
        "data": {"train": "user.py:data"},
        "callbacks": "user.py:callbacks",
        "budget": {"epochs": 3, "steps_per_epoch": 2},
        "grid": {"lr": [0.01], "stop_after": [0, 1]},
    }
    config.update(overrides)
    return config


def test_a_sweep_passes_the_users_callbacks_to_every_trial_and_their_file_is_a_trials_input(workflow):
    from kerasgrid.sweep.grid import trial_id

    workflow.path("user.py").write_text(USER_FILE, encoding="utf-8")
    config = user_config()
    result = workflow.sweep(config)
    stopped, full = trial_id({"lr": 0.01, "stop_after": 1}), trial_id({"lr": 0.01, "stop_after": 0})
    rows = {row["trial_id"]: row for row in read_leaderboard(workflow.path("results/leaderboard.tsv"))}
    assert {t: (row["status"], row["epochs"]) for t, row in rows.items()} == {stopped: ("ok", "1"), full: ("ok", "3")}
    assert workflow.path(f"results/trials/{stopped}/epochs_seen.txt").read_text() == "0\n"
    assert workflow.path(f"results/trials/{full}/epochs_seen.txt").read_text() == "0\n1\n2\n"
    assert "StopsAfter stopped training after epoch 1 of 3" in workflow.path(f"logs/trials/{stopped}.log").read_text()
    assert "Best params found:" in result.output

    # Like the model's file, the callbacks' file is an input of every trial: edited, all retrain.
    assert workflow.plan(config) == {}
    with workflow.path("user.py").open("a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    assert workflow.plan(config)["train"] == sorted([stopped, full])
    # And the setting is one of every trial's settings: removed, all retrain.
    assert workflow.plan({k: v for k, v in config.items() if k != "callbacks"})["train"] == sorted([stopped, full])


def test_with_halving_early_stopping_stops_the_sweep_with_why(workflow):
    workflow.path("user.py").write_text(USER_FILE, encoding="utf-8")
    config = user_config(callbacks="user.py:early_stopping", grid={"lr": [0.01, 0.02, 0.03]},
                         search={"halving": {"eta": 3, "min_epochs": 1}})
    result = workflow.sweep(config, check=False)
    assert result.returncode != 0
    assert "my.yaml: callbacks: the function returns EarlyStopping, which stops trials early; but search.halving" in result.output
    assert not list(workflow.root.glob("results/trials/**/metrics.json"))


def test_a_rung_whose_callbacks_differ_from_the_rung_before_fails_with_why(tmp_path):
    run_trial({"lr": 0.01}, with_callbacks("reduce_lr", epochs=4), tmp_path / "one", epochs=2, save_state_to=tmp_path / "one")
    record = run_trial({"lr": 0.01}, with_callbacks("logger_without_params", epochs=4), tmp_path / "two",
                       resume_from=tmp_path / "one")
    assert record["status"] == "failed"
    assert ("the callbacks function returns other callbacks than it did in the rung before (ReduceLROnPlateau); "
            "return the same ones every time") in record["error"]
