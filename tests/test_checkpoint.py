"""Checkpoints inside a trial (kerasgrid/trial/checkpoint.py): a trial stopped mid-epoch or
killed continues from its checkpoint and ends bit-identical to an unbroken run; a checkpoint
that does not fit is ignored with a line in the log."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import tiny_config
from kerasgrid.trial import checkpoint
from kerasgrid.trial.training import run_trial
from test_training import MODELS, settings

# Dropout (a SeedGenerator's state), arrays reshuffled every pass, and a ReduceLROnPlateau whose
# count must carry on: 4 epochs of 6 batches. AsksToStop asks to save and stop where
# $KERASGRID_TEST_STOP_AT says, as a signal handler would.
TRIAL = {**settings(model="dropout_mlp", train="arrays", validation="arrays", epochs=4, steps_per_epoch=6),
         "callbacks": f"{MODELS}:reduce_lr_asks_to_stop"}
PARAMS = {"lr": 0.01}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The unbroken run: its record and folder (with its model)."""
    out = tmp_path_factory.mktemp("straight") / "t"
    return run_trial(PARAMS, TRIAL, out, trial_id="t", model_path=out / "model.keras"), out


def weights(path):
    import keras

    return [np.asarray(v) for v in keras.models.load_model(path).get_weights()]


def assert_same(record, out, straight):
    expected, expected_out = straight
    assert record["status"] == expected["status"] == "ok"
    assert record["metrics"] == expected["metrics"]  # exact floats, every metric
    assert (out / "history.csv").read_bytes() == (expected_out / "history.csv").read_bytes()
    for mine, theirs in zip(weights(out / "model.keras"), weights(expected_out / "model.keras"), strict=True):
        assert np.array_equal(mine, theirs)


def stopped_at(out, epoch, step, trial=TRIAL, **keywords):
    """Run the trial until it is asked to save and stop after batch `step` of epoch `epoch`."""
    os.environ["KERASGRID_TEST_STOP_AT"] = f"{epoch},{step}"
    try:
        with pytest.raises(checkpoint.Interrupted, match="saved its checkpoint"):
            run_trial(PARAMS, trial, out, trial_id="t", model_path=out / "model.keras", **keywords)
    finally:
        del os.environ["KERASGRID_TEST_STOP_AT"]
    assert not (out / "metrics.json").exists()  # not finished, nor recorded as failed
    assert (checkpoint.folder(out) / checkpoint.META).exists()


@pytest.mark.parametrize("epoch, step, resumed", [(2, 3, (1, 3)), (2, 6, (2, 0))], ids=["mid-epoch", "epoch-end"])
def test_a_trial_asked_to_stop_saves_and_resumes_bit_for_bit(epoch, step, resumed, straight, tmp_path, capsys):
    out = tmp_path / "t"
    stopped_at(out, epoch, step)
    record = run_trial(PARAMS, TRIAL, out, trial_id="t", model_path=out / "model.keras")
    assert (record["resumed_from_epoch"], record["resumed_from_step"]) == resumed
    assert record["resumed_from_checkpoint"]
    assert_same(record, out, straight)
    assert not checkpoint.folder(out).exists()  # removed once the record is written
    assert "kerasgrid: resuming from the checkpoint at" in capsys.readouterr().out


def test_a_subclassed_model_on_reshuffled_datasets_resumes_mid_epoch_bit_for_bit(tmp_path):
    # A user's tf.data.Dataset reshuffled every pass, for training and validation alike (the rest
    # of the resumed epoch validates on the pass that epoch would have), and a model without
    # get_config, whose weights are saved instead of the whole model.
    trial = {**settings(model="subclassed_dropout", train="dataset", validation="dataset", epochs=3, steps_per_epoch=5),
             "callbacks": f"{MODELS}:reduce_lr_asks_to_stop"}
    unbroken = run_trial(PARAMS, trial, tmp_path / "unbroken", trial_id="t")
    stopped_at(tmp_path / "t", 2, 4, trial=trial)
    record = run_trial(PARAMS, trial, tmp_path / "t", trial_id="t")
    assert (record["resumed_from_epoch"], record["resumed_from_step"]) == (1, 4)
    assert record["metrics"] == unbroken["metrics"]
    assert (tmp_path / "t" / "history.csv").read_bytes() == (tmp_path / "unbroken" / "history.csv").read_bytes()


def test_periodic_checkpoints_change_no_result(straight, tmp_path):
    # A tiny interval: a checkpoint at every batch's end.
    record = run_trial(PARAMS, TRIAL, tmp_path / "t", trial_id="t", model_path=tmp_path / "t" / "model.keras",
                       checkpoint_minutes=1e-9)
    assert record["checkpoints_saved"] == 4 * 6 - 1  # none after the last batch: the record follows
    assert_same(record, tmp_path / "t", straight)
    assert not checkpoint.folder(tmp_path / "t").exists()


def test_a_halving_rung_resumes_its_own_checkpoint_over_the_rung_before(straight, tmp_path):
    run_trial(PARAMS, TRIAL, tmp_path / "rung1", trial_id="t", epochs=1, save_state_to=tmp_path / "rung1")
    out = tmp_path / "rung4"
    stopped_at(out, 3, 2, epochs=4, resume_from=tmp_path / "rung1", halving=True)
    record = run_trial(PARAMS, TRIAL, out, trial_id="t", epochs=4, resume_from=tmp_path / "rung1", halving=True,
                       model_path=out / "model.keras")
    assert (record["resumed_from_epoch"], record["resumed_from_step"]) == (2, 2)
    assert_same(record, out, straight)


@pytest.mark.parametrize("spoil, why", [
    (lambda out: out.joinpath("state.npz").write_bytes(out.joinpath("state.npz").read_bytes()[:100]),
     "state.npz is not the one checkpoint.json was written with"),
    (lambda out: out.joinpath("checkpoint.json").unlink(), r"no checkpoint.json \(a half-written checkpoint\)"),
    (lambda out: out.joinpath("checkpoint.json").write_text('{"identity": {"trial'), "it cannot be read"),
], ids=["truncated-state", "no-marker", "truncated-marker"])
def test_a_half_written_checkpoint_is_ignored_and_the_trial_trains_from_the_start(spoil, why, straight, tmp_path,
                                                                                  capsys):
    out = tmp_path / "t"
    stopped_at(out, 2, 3)
    spoil(checkpoint.folder(out))
    record = run_trial(PARAMS, TRIAL, out, trial_id="t", model_path=out / "model.keras")
    assert record["resumed_from_checkpoint"] is False and record["resumed_from_epoch"] == 0
    assert_same(record, out, straight)
    log = capsys.readouterr().out
    assert len([line for line in log.splitlines() if "ignoring the checkpoint" in line]) == 1
    assert pytest.importorskip("re").search(why, log)


@pytest.mark.parametrize("change, named", [
    (lambda s: {**s, "training_version": 99}, "settings, training_version"),
    (lambda s: {**s, "budget": {**s["budget"], "batch_size": 4}}, "settings"),
], ids=["another-version", "other-settings"])
def test_a_stale_checkpoint_is_ignored(change, named, tmp_path, capsys):
    out = tmp_path / "t"
    stopped_at(out, 2, 3)
    other = change(TRIAL)
    record = run_trial(PARAMS, other, out, trial_id="t")
    fresh = run_trial(PARAMS, other, tmp_path / "fresh", trial_id="t")
    assert record["resumed_from_epoch"] == 0 and record["metrics"] == fresh["metrics"]
    assert f"its {named} differ from this run's; training from the start" in capsys.readouterr().out


KILLED = """
import sys
from kerasgrid.trial.training import run_trial
sys.path.insert(0, "tests")
from test_checkpoint import PARAMS, SLOW
run_trial(PARAMS, SLOW, sys.argv[1], trial_id="t", model_path=sys.argv[1] + "/model.keras", checkpoint_minutes=0.004)
"""
# The same trial with batches that take 20 ms to come: 1 s of training, a checkpoint every 0.24 s.
SLOW = {**TRIAL, "train": f"{MODELS}:slow_arrays"}


def test_a_trial_killed_mid_epoch_continues_from_its_checkpoint(tmp_path):
    out = tmp_path / "t"
    root = MODELS.parent.parent
    child = subprocess.Popen([sys.executable, "-c", KILLED, str(out)], cwd=root, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(root)})
    marker = checkpoint.folder(out) / checkpoint.META
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, "the trial ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in 120 s"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (out / "metrics.json").exists()
    record = run_trial(PARAMS, SLOW, out, trial_id="t", model_path=out / "model.keras")
    assert record["resumed_from_checkpoint"] and (record["resumed_from_epoch"], record["resumed_from_step"]) > (0, 0)
    unbroken = run_trial(PARAMS, SLOW, tmp_path / "unbroken", trial_id="t",
                         model_path=tmp_path / "unbroken" / "model.keras")
    assert_same(record, out, (unbroken, tmp_path / "unbroken"))


def test_a_sweep_killed_mid_trial_continues_each_run_from_its_checkpoint(workflow, monkeypatch):
    # TPE rounds with halving: the last rung's train job both continues the rung before and finds
    # its own checkpoint. snakemake and the worker training the trial are SIGKILLed at once.
    config = tiny_config(budget={"epochs": 3, "steps_per_epoch": 40, "validation_steps": 2}, checkpoint={"minutes": 0.003},
                         search={"strategy": "tpe", "trials": 2, "batch": 2,
                                 "halving": {"eta": 3, "min_epochs": 1, "brackets": 1}})
    workflow.write_config(config)
    with open(workflow.path("run.log"), "w") as log:
        run = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "my.yaml"],
                               cwd=workflow.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (saved := list(workflow.root.glob("results/trials/*/checkpoint/checkpoint.json"))):
        assert run.poll() is None, workflow.path("run.log").read_text()
        assert time.monotonic() < deadline, "no checkpoint of a last rung in 300 s"
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    trial = saved[0].parent.parent
    assert not (trial / "metrics.json").exists()

    workflow.sweep(config)  # Snakemake reruns the incomplete job
    assert "kerasgrid: resuming from the checkpoint at" in workflow.path(f"logs/trials/{trial.name}.log").read_text()
    record = json.loads((trial / "metrics.json").read_text())
    assert record["resumed_from_checkpoint"] and record["resumed_from_epoch"] >= 1  # the rung before's 1, or later
    assert not checkpoint.folder(trial).exists()

    # The same trial trained straight through, here: the same metrics and history, bit for bit.
    from snakemake.utils import validate

    from kerasgrid.config import sweep_from_config

    given = yaml.safe_load(workflow.path("my.yaml").read_text())
    validate(given, str(workflow.path("workflow/schemas/config.schema.yaml")))
    monkeypatch.chdir(workflow.root)
    params = json.loads((trial / "params.json").read_text())
    unbroken = run_trial(params, sweep_from_config(given, "my.yaml").settings(), workflow.path("unbroken"),
                         trial_id=trial.name, objective=record["objective"])
    assert record["metrics"] == unbroken["metrics"]
    assert (trial / "history.csv").read_bytes() == workflow.path("unbroken/history.csv").read_bytes()
