import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kerasgrid.errors import ConfigError
from kerasgrid.trial import reasons
from kerasgrid.trial.training import run_trial

MODELS = Path(__file__).resolve().parent / "trial_models.py"


def settings(model="sequential", train="data", validation="data", **budget):
    return {
        "model": f"{MODELS}:{model}",
        "train": f"{MODELS}:{train}",
        "validation": f"{MODELS}:{validation}" if validation else None,
        "budget": {"epochs": 2, "steps_per_epoch": 4, "validation_steps": 2, "batch_size": 8, **budget},
        "seed": 0,
        "training_version": 1,
    }


def read(out_dir):
    return json.loads((out_dir / "metrics.json").read_text())


def test_a_trial_writes_params_history_and_metrics(tmp_path):
    out = tmp_path / "abc123abc123"
    record = run_trial({"lr": 0.01}, settings(), out)
    assert read(out) == record
    assert record["status"] == "ok" and record["error"] is None
    assert record["trial_id"] == "abc123abc123" and record["epochs_run"] == 2
    assert json.loads((out / "params.json").read_text()) == {"lr": 0.01}
    assert record["objective"] == {"metric": "val_loss", "value": record["metrics"]["val_loss"]["final"]}
    assert set(record["metrics"]) == {"loss", "mae", "val_loss", "val_mae"}
    with (out / "history.csv").open() as handle:
        history = list(csv.DictReader(handle))
    assert [row["epoch"] for row in history] == ["0", "1"]
    assert float(history[-1]["val_loss"]) == pytest.approx(record["metrics"]["val_loss"]["final"])
    assert record["fit_seconds"] > 0 and record["wall_seconds"] >= record["fit_seconds"]
    assert record["versions"]["tensorflow"].startswith("2.21")
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_the_same_trial_trains_to_identical_losses(tmp_path):
    one = run_trial({"lr": 0.01}, settings(), tmp_path / "one")
    two = run_trial({"lr": 0.01}, settings(), tmp_path / "two")
    assert one["metrics"] == two["metrics"]
    assert (tmp_path / "one/history.csv").read_text() == (tmp_path / "two/history.csv").read_text()


def test_objective_is_recorded_with_its_direction(tmp_path):
    record = run_trial({}, settings(), tmp_path / "t", objective={"metric": "val_mae", "direction": "min"})
    assert record["objective"] == {"metric": "val_mae", "direction": "min", "value": record["metrics"]["val_mae"]["final"]}


@pytest.mark.parametrize("model", ["subclassed", "sequential"])
def test_without_validation_the_objective_is_training_loss(tmp_path, model):
    record = run_trial({}, settings(model=model, validation=None), tmp_path / "t")
    assert record["status"] == "ok"
    assert set(record["metrics"]) == {"loss", "mae"}
    assert record["objective"]["metric"] == "loss" and record["objective"]["value"] == record["metrics"]["loss"]["final"]


def test_predict_ms_comes_from_the_last_validation_pass_at_no_cost_else_from_predictions(tmp_path, monkeypatch):
    import keras

    predictions = []
    predict_on_batch = keras.Model.predict_on_batch
    monkeypatch.setattr(keras.Model, "predict_on_batch", lambda model, x: predictions.append(1) or predict_on_batch(model, x))
    record = run_trial({"lr": 0.01}, settings(validation_steps=3), tmp_path / "validated")
    assert predictions == [] and 0 < record["measures"]["predict_ms"] < 1000  # timed as fit validated
    # A pass of one batch (whose time includes starting the data) or no validation data: a trace
    # and 10 timed predictions after training, as before.
    for name, run in (("one", settings(validation_steps=1)), ("none", settings(validation=None))):
        predictions.clear()
        record = run_trial({"lr": 0.01}, run, tmp_path / name)
        assert len(predictions) == 11 and 0 < record["measures"]["predict_ms"] < 1000


def test_multi_input_multi_output_model_with_dict_batches(tmp_path):
    record = run_trial({}, settings(model="multi_io", train="multi_io_data", validation="multi_io_data"), tmp_path / "t")
    assert record["status"] == "ok", record["error"]
    assert {"loss", "val_loss", "sum_loss", "flag_loss"} <= set(record["metrics"])


@pytest.mark.parametrize("validation", ["val_arrays", "val_generator", "val_dataset"])
def test_the_recorded_val_loss_is_what_model_evaluate_gives_on_the_validation_data(tmp_path, validation):
    """Issue 29: by default every epoch validates on all of the validation data in order, so the
    ranked number is what a user gets from the saved model: model.evaluate(x_val, y_val)."""
    import keras

    from trial_models import val_arrays

    record = run_trial({"lr": 0.01}, settings(validation=validation, validation_steps=None), tmp_path / "t",
                       model_path=tmp_path / "model.keras")
    model = keras.models.load_model(tmp_path / "model.keras")
    x_val, y_val = val_arrays()  # 90 examples: 11 batches of 8 and one of 2
    loss = model.evaluate(x_val, y_val, batch_size=8, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(record["objective"]["value"], rel=1e-6, abs=0)
    if validation == "val_arrays":  # validation_steps: its first batches, as evaluate reads them
        record = run_trial({"lr": 0.01}, settings(validation=validation, validation_steps=3), tmp_path / "t",
                           model_path=tmp_path / "model.keras")
        model = keras.models.load_model(tmp_path / "model.keras")
        loss = model.evaluate(x_val[:24], y_val[:24], batch_size=8, return_dict=True, verbose=0)["loss"]
        assert loss == pytest.approx(record["objective"]["value"], rel=1e-6, abs=0)


def test_every_epoch_validates_on_the_same_batches(tmp_path):
    # A learning rate of 0 never changes the model: every epoch's val_loss is the same only if its
    # batches are (whole arrays were reshuffled every epoch, so validation_steps took other ones).
    record = run_trial({"lr": 0.0}, settings(validation="val_arrays", validation_steps=3, epochs=3), tmp_path / "t")
    assert record["metrics"]["val_loss"]["min"] == record["metrics"]["val_loss"]["max"]


@pytest.mark.parametrize("key", ["train", "validation"])
def test_a_dataset_of_single_examples_stops_the_sweep_before_training(tmp_path, key):
    with pytest.raises(ConfigError, match=rf"^my\.yaml: data\.{key} = \S+trial_models\.py:unbatched returns single "
                       r"examples, not batches \(its inputs have shape \(4,\); the model's take a batch of them, "
                       r"\(None, 4\)\), so every trial would fail on Keras' shape error\. Return a Dataset of batches: "
                       r"add \.batch\(n\) to it"):
        run_trial({}, settings(**{key: "unbatched"}), tmp_path / "t", objective={"metric": "val_loss",
                                                                                "source": "my.yaml"})
    assert not (tmp_path / "t/metrics.json").exists()


@pytest.mark.parametrize(
    "model, train, message, where",
    [
        ("uncompiled", "data", r"ModelError: the model function returned an uncompiled model; call model\.compile", None),
        ("raises", "data", r"ValueError: cannot build with units=3", "tests/trial_models.py:74"),
        ("not_a_model", "data", r"ModelError: the model function returned str, not a keras\.Model", None),
        ("sequential", "failing_data", r"OSError: the data share is not mounted", "tests/trial_models.py:100"),
    ],
)
def test_errors_of_the_users_code_fail_the_trial_only(tmp_path, model, train, message, where):
    record = run_trial({"units": 3}, settings(model=model, train=train), tmp_path / "t")
    assert record["status"] == "failed"
    assert record["objective"]["value"] is None
    assert re.search(message, record["error"])
    # The reason: the error in a line, and the line of the user's file that raised it (kerasgrid's
    # own ModelError is raised in none).
    assert record["reason"] == (f"{record['error']} ({where})" if where else reasons.one_line(record["error"]))
    assert read(tmp_path / "t") == record


def test_a_nan_loss_stops_the_trial_as_diverged(tmp_path):
    record = run_trial({}, settings(train="nan_data", validation=None, epochs=3), tmp_path / "t")
    assert record["status"] == "diverged"
    assert record["epochs_run"] == 1 and "became NaN or infinite in epoch 1" in record["error"]
    assert record["reason"] == record["error"]  # a line already
    assert record["objective"]["value"] is None and record["metrics"]["loss"]["final"] is None


def test_an_objective_the_model_does_not_log_stops_the_sweep(tmp_path):
    with pytest.raises(ConfigError, match=r"my\.yaml: objective\.metric is 'val_accuracy', but the model logs only: loss, mae, val_loss, val_mae\. Set objective\.metric"):
        run_trial({}, settings(), tmp_path / "t", objective={"metric": "val_accuracy", "direction": "max", "source": "my.yaml"})
    assert not (tmp_path / "t/metrics.json").exists()


def test_a_model_of_an_unregistered_class_is_saved_whole_if_it_loads_back(tmp_path):
    record = run_trial({"units": 3}, settings(model="configured"), tmp_path / "t", model_path=tmp_path / "t" / "model.keras")
    assert record["saved_model"]["format"] == "keras" and record["saved_model"]["error"] is None
    assert not (tmp_path / "t" / "model.weights.h5").exists()


def test_the_fitted_model_is_saved_when_asked(tmp_path):
    import keras
    import numpy as np

    record = run_trial({"lr": 0.01}, settings(), tmp_path / "t", model_path=tmp_path / "t" / "model.keras")
    assert record["saved_model"]["path"] == str(tmp_path / "t" / "model.keras")
    assert len(record["saved_model"]["sha256"]) == 64 and read(tmp_path / "t") == record
    model = keras.models.load_model(tmp_path / "t" / "model.keras")
    assert model.predict(np.ones((2, 4), "float32"), verbose=0).shape == (2, 1)
    assert not list((tmp_path / "t").glob(".*"))

    # A later run of the same trial that keeps no model leaves none behind, nor does a failed one.
    assert run_trial({"lr": 0.01}, settings(), tmp_path / "t")["saved_model"] is None
    assert not (tmp_path / "t" / "model.keras").exists()
    failed = run_trial({}, settings(model="raises"), tmp_path / "f", model_path=tmp_path / "f" / "model.keras")
    assert failed["saved_model"] is None and not (tmp_path / "f" / "model.keras").exists()


@pytest.mark.parametrize("model, culprit", [
    # Keras cannot save it: a subclassed model whose __init__ takes arguments, without get_config().
    ("subclassed_with_args", r"NotImplementedError: Object Net was created by passing non-serializable argument values"),
    # Keras saves it but cannot load it back: its __init__ takes no **kwargs.
    ("subclassed", r"Keras saved it but cannot load it back: TypeError: Error encountered during deserialization: "
                   r"TwoLayers.__init__\(\) got an unexpected keyword argument 'trainable'$"),
    ("unsaveable", r"TypeError: "),
])
def test_a_model_keras_cannot_save_whole_keeps_its_weights_and_the_trial_ok(tmp_path, model, culprit):
    import numpy as np

    from kerasgrid.records import sha256
    from kerasgrid.sweep import refs
    from kerasgrid.trial.data import as_dataset

    out = tmp_path / "t"
    record = run_trial({"units": 3}, settings(model=model), out, model_path=out / "model.keras")
    assert record["status"] == "ok" and read(out) == record
    saved = record["saved_model"]
    assert saved["path"] == str(out / "model.weights.h5") and saved["format"] == "weights"
    assert saved["sha256"] == sha256(out / "model.weights.h5")
    assert re.match(culprit, saved["error"]) and "\n" not in saved["error"]
    assert "register_keras_serializable()" in saved["fix"]
    if model == "subclassed_with_args":
        assert saved["fix"].startswith("give Net (and any custom layer in it) a get_config() that returns its "
                                       "__init__ arguments and an __init__ that passes **kwargs on to super().__init__()")
    assert not (out / "model.keras").exists() and not list(out.glob(".*"))

    # build_model(params), one batch to create the variables, load_weights: the trained model,
    # whose loss on the validation batches is the one the trial recorded.
    rebuilt = refs.load(refs.Ref(f"{MODELS}:{model}", "model", "test"))({"units": 3})
    rebuilt(np.zeros((1, 4), "float32"))
    rebuilt.optimizer.build(rebuilt.trainable_variables)  # the file holds the optimizer's state too
    rebuilt.load_weights(out / "model.weights.h5")
    validation = as_dataset(refs.load(refs.Ref(f"{MODELS}:data", "data", "test")), {}, batch_size=8, seed=0)
    loss = rebuilt.evaluate(validation, steps=2, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(record["metrics"]["val_loss"]["final"], rel=1e-6, abs=0)

    # Rerun keeping nothing: the weights of the earlier run go too.
    assert run_trial({"units": 3}, settings(model=model), out)["saved_model"] is None
    assert not (out / "model.weights.h5").exists()


def test_tensorboard_logs_hold_the_trials_hparams_and_every_epochs_metrics(tmp_path):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    params = {"lr": 0.01, "units": 3, "act": "relu", "deep": True, "shape": [1, 2], "none": None}
    logs = tmp_path / "tensorboard" / "abcdefabcdef"
    logs.mkdir(parents=True)
    (logs / "stale.v2").write_text("an earlier training's logs")
    record = run_trial(params, settings(epochs=3), tmp_path / "abcdefabcdef", tensorboard_dir=logs)
    assert record["status"] == "ok" and not (logs / "stale.v2").exists()
    # Logging changes no result (which is why it is no param of the train rule).
    assert run_trial(params, settings(epochs=3), tmp_path / "without")["metrics"] == record["metrics"]

    def accumulated(folder):
        events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
        events.Reload()
        return events

    session = accumulated(logs)
    content = session.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.group_name == "abcdefabcdef"
    hparams = {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    assert hparams == {"lr": 0.01, "units": 3.0, "act": "relu", "deep": True, "shape": "[1, 2]", "none": "null"}

    with (tmp_path / "abcdefabcdef" / "history.csv").open() as handle:
        history = list(csv.DictReader(handle))
    for run, prefix in (("train", ""), ("validation", "val_")):
        events = accumulated(logs / run)
        for metric in ("loss", "mae"):
            scalars = [(e.step, tf.make_ndarray(e.tensor_proto).item()) for e in events.Tensors(f"epoch_{metric}")]
            assert [step for step, _ in scalars] == [0, 1, 2]
            assert [value for _, value in scalars] == pytest.approx([float(row[prefix + metric]) for row in history], rel=1e-6)


def test_tensorboard_off_writes_nothing_and_imports_nothing(tmp_path):
    code = (
        "import sys, json; from kerasgrid.trial.training import run_trial; from test_training import settings; "
        f"record = run_trial({{}}, settings(), {str(tmp_path / 't')!r}); "
        "print(json.dumps([record['status'], sorted(m for m in sys.modules if m.split('.')[0] == 'tensorboard' "
        "or m == 'kerasgrid.trial.tensorboard_logs')]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=MODELS.parent, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["ok", []]
    assert sorted(path.name for path in (tmp_path / "t").iterdir()) == ["history.csv", "metrics.json", "params.json"]


@pytest.mark.parametrize("model,train", [
    ("sequential", "data"), ("subclassed", "data"), ("subclassed_dropout", "data"), ("dropout_mlp", "dataset"),
    ("multi_io", "multi_io_data"),
])
def test_building_before_fit_changes_no_result(tmp_path, monkeypatch, model, train):
    """run_trial builds the model, its metrics and its optimizer before fit (so that fit traces its
    step once); every model kind must train exactly as when fit builds them itself."""
    from kerasgrid.trial import training

    built = []
    original = training._build_before_fit

    def build_and_check(model_, element_spec):
        original(model_, element_spec)
        built.append(model_.optimizer.built and model_.built)

    validation = None if model == "multi_io" else train
    trial_settings = settings(model=model, train=train, validation=validation)
    monkeypatch.setattr(training, "_build_before_fit", build_and_check)
    ours = run_trial({}, trial_settings, tmp_path / "ours", save_state_to=tmp_path / "ours")
    monkeypatch.setattr(training, "_build_before_fit", lambda *args: None)
    keras_own = run_trial({}, trial_settings, tmp_path / "keras", save_state_to=tmp_path / "keras")

    assert built == [True]
    assert ours["status"] == keras_own["status"] == "ok"
    assert (tmp_path / "ours/history.csv").read_text() == (tmp_path / "keras/history.csv").read_text()
    assert (tmp_path / "ours/state.npz").read_bytes() == (tmp_path / "keras/state.npz").read_bytes()


def on_jax(function: str, folder) -> dict:
    """backend_trials.`function`(folder) in a process of its own on Keras' JAX backend: its JSON."""
    import os

    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join([str(MODELS.parent.parent), str(MODELS.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", f"import backend_trials; backend_trials.{function}({str(folder)!r})"],
                            cwd=MODELS.parent, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found.pop("backend") == "jax"
    return found


def test_a_trial_on_jax_validates_as_evaluate_does_times_predictions_and_repeats_exactly(tmp_path):
    """On JAX, fit receives NumPy batches: the trial trains, its val_loss is model.evaluate's on the
    validation data (arrays, a generator, a Dataset: one pass every epoch), predict_ms is measured,
    and a second run trains to the same history."""
    for validation, found in on_jax("evaluated", tmp_path).items():
        one, two = found["records"]
        assert one["status"] == "ok", (validation, one["error"])
        assert one["measures"]["predict_ms"] is not None and one["measures"]["predict_ms"] > 0
        assert found["evaluate"] == pytest.approx(one["objective"]["value"], rel=1e-6, abs=0), validation
        assert one["metrics"] == two["metrics"] and found["histories"][0] == found["histories"][1]


def test_a_trial_on_jax_resumed_from_a_rung_or_a_checkpoint_ends_as_straight_through(tmp_path):
    for kind, found in on_jax("resumed", tmp_path).items():
        runs, histories = found["records"], found["histories"]
        assert {run["status"] for run in runs.values()} == {"ok"}, kind
        assert runs["rungs"]["resumed_from_epoch"] == 2 and runs["checkpoint"]["resumed_from_step"] == 3
        assert runs["rungs"]["metrics"] == runs["straight"]["metrics"], kind
        assert histories["rungs"] == histories["straight"]
        assert runs["checkpoint"]["metrics"] == runs["unbroken"]["metrics"], kind
        assert histories["checkpoint"] == histories["unbroken"]
