"""A trial trained in rungs ends exactly where it would have trained straight through
(kerasgrid/trial/resume.py, run_trial's epochs/resume_from/save_state_to)."""

import pytest

from kerasgrid.trial import resume
from kerasgrid.trial.training import run_trial
from test_training import MODELS, settings

DIGITS = {
    "model": "examples/digits.py:build_model",
    "train": "examples/digits.py:train_data",
    "validation": "examples/digits.py:val_data",
    "budget": {"epochs": 4, "steps_per_epoch": 6, "validation_steps": 2, "batch_size": 32},
    "seed": 0,
    "training_version": 1,
}
DIGITS_PARAMS = {"lr": 0.01, "act_in": "relu", "act_out": "sigmoid", "loss": "mean_squared_error"}


def in_rungs(params, trial_settings, tmp_path, rungs):
    """Train to each of `rungs` epochs in turn, each continuing the one before; the last record."""
    before = None
    for epochs in rungs:
        out = tmp_path / f"rung{epochs}"
        last = epochs == rungs[-1]
        record = run_trial(params, trial_settings, out, epochs=epochs, resume_from=before,
                           save_state_to=None if last else out, trial_id="t")
        before = out
    return record, out


@pytest.mark.parametrize(
    "name, params, trial_settings",
    [
        # The demo model, generators of batches for training and validation.
        ("digits", DIGITS_PARAMS, DIGITS),
        # Dropout (its SeedGenerator's state), whole arrays reshuffled every pass, validation included.
        ("dropout-arrays", {"lr": 0.01}, settings(model="dropout_mlp", train="arrays", validation="arrays", epochs=4)),
        # A subclassed model without get_config, on a user's tf.data.Dataset.
        ("subclassed-dataset", {"lr": 0.01}, settings(model="subclassed_dropout", train="dataset", validation="dataset", epochs=4)),
    ],
)
def test_resumed_training_equals_straight_training_bit_for_bit(name, params, trial_settings, tmp_path, monkeypatch):
    monkeypatch.chdir(MODELS.parent.parent)  # DIGITS names examples/ relative to the checkout
    straight = run_trial(params, trial_settings, tmp_path / "straight", trial_id="t")
    resumed, out = in_rungs(params, trial_settings, tmp_path, [1, 2, 4])
    assert straight["status"] == resumed["status"] == "ok"
    assert resumed["resumed_from_epoch"] == 2 and resumed["epochs_run"] == 4
    assert resumed["metrics"] == straight["metrics"]  # every metric, every epoch's min/max: exact floats
    assert (out / "history.csv").read_text() == (tmp_path / "straight" / "history.csv").read_text()
    # Each rung before the last left a state; the last left none.
    assert resume.load_state(tmp_path / "rung2")["epochs"] == 2 and resume.load_state(out) is None


def test_a_rung_without_a_state_to_resume_trains_from_the_start(tmp_path):
    trial = settings(epochs=3)
    straight = run_trial({"lr": 0.01}, trial, tmp_path / "straight")
    fresh = run_trial({"lr": 0.01}, trial, tmp_path / "fresh", resume_from=tmp_path / "nothing-here")
    assert fresh["resumed_from_epoch"] == 0 and fresh["metrics"] == straight["metrics"]


def test_a_state_that_does_not_fit_the_model_fails_the_trial_with_a_reason(tmp_path):
    run_trial({"lr": 0.01}, settings(model="sequential"), tmp_path / "one", epochs=1, save_state_to=tmp_path / "one")
    other = run_trial({"lr": 0.01}, settings(model="dropout_mlp"), tmp_path / "two", resume_from=tmp_path / "one")
    assert other["status"] == "failed" and "ResumeMismatch" in other["error"] and "saved after epoch 1" in other["error"]


def test_a_removed_state_is_gone_marker_first(tmp_path):
    run_trial({"lr": 0.01}, settings(), tmp_path / "one", epochs=1, save_state_to=tmp_path / "one")
    assert resume.load_state(tmp_path / "one") is not None
    resume.remove_state(tmp_path / "one")
    assert resume.load_state(tmp_path / "one") is None
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["history.csv", "metrics.json", "params.json"]
