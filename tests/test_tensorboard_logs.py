"""TensorBoard logs of a real sweep: every trial's hyperparameters and metrics, off by default."""

import csv
import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from kerasgrid.sweep.grid import expand_grid
from kerasgrid.trial.tensorboard_logs import hparam_value

MODELS = Path(__file__).resolve().parent / "trial_models.py"


@pytest.mark.parametrize("value, held", [
    (0.01, 0.01), (3, 3), (True, True), ("relu", "relu"), (None, "null"), ([1, "two"], '[1, "two"]'),
    ({"a": 1}, '{"a": 1}'), ("ünï", "ünï"),
])
def test_grid_values_become_values_the_hparams_plugin_holds(value, held):
    assert hparam_value(value) == held


def session_of(folder: Path) -> tuple[str, dict]:
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return start.group_name, {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}


def test_a_sweep_with_tensorboard_logs_every_trial_and_flipping_it_retrains_nothing(workflow):
    shutil.copy(MODELS, workflow.path("models.py"))
    config = {
        "model": "models.py:sequential",
        "data": {"train": "models.py:data", "validation": "models.py:data"},
        "budget": {"epochs": 2, "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 8},
        "tensorboard": True,
        "grid": {"lr": [0.01, 0.05], "units": ["a/b", "c"]},
    }
    workflow.sweep(config)
    trials = expand_grid(config["grid"])
    logs = workflow.path("results/tensorboard")
    assert sorted(p.name for p in logs.iterdir()) == sorted(trials)
    for trial, params in trials.items():
        assert session_of(logs / trial) == (trial, params)
        events = EventAccumulator(str(logs / trial / "validation"), size_guidance={"tensors": 0})
        events.Reload()
        values = [tf.make_ndarray(e.tensor_proto).item() for e in events.Tensors("epoch_loss")]
        with workflow.path(f"results/trials/{trial}/history.csv").open() as history:
            recorded = [float(row["val_loss"]) for row in csv.DictReader(history)]
        assert len(values) == 2 and values == pytest.approx(recorded, rel=1e-6)

    # Logs change no result: flipping the key retrains nothing.
    assert workflow.plan({**config, "tensorboard": False}) == {}
    # A trial trained again with tensorboard off leaves no logs of its earlier training.
    workflow.sweep({**config, "tensorboard": False}, "--forcerun", "train")
    assert not any(logs.iterdir())
