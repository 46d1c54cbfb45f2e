"""Trials run in a process of their own on the Keras backend of $KERAS_BACKEND (the test process
has Keras on TensorFlow): each function prints one JSON line for the test that started it.

    KERAS_BACKEND=jax python -c "import backend_trials; backend_trials.evaluated('/tmp/x')"
"""

import json
import os
from pathlib import Path

import keras

from kerasgrid.trial import checkpoint
from kerasgrid.trial.training import run_trial
from test_training import MODELS
from test_training import settings as tensorflow_settings

VALIDATION = ("val_arrays", "val_generator", "val_dataset")


def settings(**given) -> dict:
    """test_training's settings, on the backend of $KERAS_BACKEND (the config's `backend`)."""
    backend = os.environ["KERAS_BACKEND"]
    made = tensorflow_settings(**given)
    return made if backend == "tensorflow" else {**made, "backend": backend}


def _history(out) -> str:
    return (Path(out) / "history.csv").read_text()


def evaluated(folder) -> None:
    """Per kind of validation data: the trial's record (twice), its history twice, and what
    model.evaluate of the saved model gives on the validation data (all of it, in batches of 8)."""
    from trial_models import val_arrays

    folder, results = Path(folder), {"backend": keras.backend.backend()}
    x_val, y_val = val_arrays()
    for validation in VALIDATION:
        trial = settings(validation=validation, validation_steps=None, epochs=3)
        runs = [run_trial({"lr": 0.01}, trial, folder / f"{validation}{i}", model_path=folder / f"{validation}{i}.keras")
                for i in range(2)]
        model = keras.models.load_model(folder / f"{validation}0.keras")
        results[validation] = {
            "records": runs, "histories": [_history(folder / f"{validation}{i}") for i in range(2)],
            "evaluate": model.evaluate(x_val, y_val, batch_size=8, return_dict=True, verbose=0)["loss"]}
    print(json.dumps(results))


def resumed(folder) -> None:
    """Per kind of data (generators, whole arrays with dropout, a Dataset): a trial straight
    through, the same in rungs of 1, 2 and 4 epochs, and the same stopped mid-epoch and resumed
    from its checkpoint; their records and histories."""
    folder, results = Path(folder), {"backend": keras.backend.backend()}
    kinds = {"generator": settings(epochs=4),
             "arrays": settings(model="dropout_mlp", train="arrays", validation="arrays", epochs=4),
             "dataset": settings(model="subclassed_dropout", train="dataset", validation="dataset", epochs=4)}
    for kind, trial in kinds.items():
        runs = {"straight": run_trial({"lr": 0.01}, trial, folder / kind / "straight", trial_id="t")}
        before = None
        for epochs in (1, 2, 4):
            out = folder / kind / f"rung{epochs}"
            runs["rungs"] = run_trial({"lr": 0.01}, trial, out, epochs=epochs, resume_from=before, trial_id="t",
                                      save_state_to=None if epochs == 4 else out)
            before = out
        stopping = {**trial, "callbacks": f"{MODELS}:reduce_lr_asks_to_stop"}
        runs["unbroken"] = run_trial({"lr": 0.01}, stopping, folder / kind / "unbroken", trial_id="t")
        os.environ["KERASGRID_TEST_STOP_AT"] = "2,3"
        try:
            run_trial({"lr": 0.01}, stopping, folder / kind / "stopped", trial_id="t")
        except checkpoint.Interrupted:
            pass
        del os.environ["KERASGRID_TEST_STOP_AT"]
        runs["checkpoint"] = run_trial({"lr": 0.01}, stopping, folder / kind / "stopped", trial_id="t")
        results[kind] = {"records": runs, "histories": {
            "straight": _history(folder / kind / "straight"), "rungs": _history(folder / kind / "rung4"),
            "unbroken": _history(folder / kind / "unbroken"), "checkpoint": _history(folder / kind / "stopped")}}
    print(json.dumps(results))
