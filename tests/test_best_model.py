"""results/best_model.keras: the winner retrained to the recorded loss, or its kept model copied."""

import json
import shutil

import keras
import pytest
import yaml

from conftest import tiny_config
from kerasgrid import refs
from kerasgrid.best_model import kept_model, save_best_model
from kerasgrid.config import TRAINING_VERSION
from kerasgrid.data import as_dataset
from kerasgrid.errors import NotReproducible
from kerasgrid.records import sha256
from kerasgrid.results import read_leaderboard


def test_the_best_model_loads_and_reproduces_the_recorded_validation_loss(tiny_sweep):
    best = yaml.safe_load(tiny_sweep.path("results/best_params.yaml").read_text())
    model = keras.models.load_model(tiny_sweep.path("results/best_model.keras"))
    budget = tiny_config()["budget"]
    val_data = refs.load(refs.Ref(f"{tiny_sweep.path('examples/digits.py')}:val_data", "data.validation", "test"))
    # Keras validates every epoch on a fresh pass over the validation data (evaluate() resets its
    # iterator), so the last epoch's val_loss is the fitted model's mean loss on the first
    # validation_steps batches: the same batches, the same computation.
    batches = as_dataset(val_data, best["params"], batch_size=32, seed=0, name="data.validation")
    loss = model.evaluate(batches, steps=budget["validation_steps"], return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(best["objective"]["value"], rel=1e-6, abs=0)

    # The retrain recorded the very numbers the sweep did, and no trial kept a model.
    trial = best["trial_id"]
    retrained = json.loads(tiny_sweep.path(f"results/best_model/{trial}/metrics.json").read_text())
    recorded = json.loads(tiny_sweep.path(f"results/trials/{trial}/metrics.json").read_text())
    assert retrained["metrics"] == recorded["metrics"]
    assert retrained["saved_model"]["sha256"] == sha256(tiny_sweep.path("results/best_model.keras"))
    assert f"retrained trial {trial} to val_loss = {best['objective']['value']!r}, as recorded" in \
        tiny_sweep.path("logs/best_model.log").read_text()
    assert not list(tiny_sweep.root.glob("results/trials/*/model.keras"))


def test_a_winner_that_does_not_train_to_its_recorded_loss_is_not_saved(tiny_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_sweep.root)
    best = yaml.safe_load(tiny_sweep.path("results/best_params.yaml").read_text())
    true_value = best["objective"]["value"]
    best["objective"]["value"] = true_value * (1 + 1e-7)  # as if the sweep's run had drawn other numbers
    (tmp_path / "best_params.yaml").write_text(yaml.safe_dump(best))
    config = tiny_config()
    settings = {"model": config["model"], "train": config["data"]["train"], "validation": config["data"]["validation"],
                "budget": {**config["budget"], "batch_size": 32}, "seed": 0, "training_version": TRAINING_VERSION}
    message = (rf"training the winner, trial {best['trial_id']}, again gave val_loss = {true_value!r}, but the sweep "
               rf"recorded val_loss = {best['objective']['value']!r}: training is not deterministic here, so no .*"
               r"best_model\.keras was written .* Or set keep_models: true")
    with pytest.raises(NotReproducible, match=message):
        save_best_model(tmp_path / "best_params.yaml", settings, tmp_path / "best_model.keras",
                        trials_dir="results/trials", scratch_dir=tmp_path / "scratch", source="my.yaml")
    assert not (tmp_path / "best_model.keras").exists() and not list(tmp_path.glob(".*"))


def test_kept_models_are_saved_by_ok_trials_and_the_winners_is_copied(faulty_sweep):
    rows = read_leaderboard(faulty_sweep.path("results/leaderboard.tsv"))
    for row in rows:
        trial = faulty_sweep.path(f"results/trials/{row['trial_id']}")
        saved = json.loads((trial / "metrics.json").read_text())["saved_model"]
        if row["status"] == "ok":
            assert saved == {"path": f"results/trials/{row['trial_id']}/model.keras", "sha256": sha256(trial / "model.keras")}
        else:
            assert saved is None and not (trial / "model.keras").exists()
    winner = faulty_sweep.path(f"results/trials/{rows[0]['trial_id']}/model.keras")
    assert faulty_sweep.path("results/best_model.keras").read_bytes() == winner.read_bytes()
    assert "copied trial" in faulty_sweep.path("logs/best_model.log").read_text()
    assert not faulty_sweep.path("results/best_model").exists()  # nothing was retrained
    keras.models.load_model(faulty_sweep.path("results/best_model.keras"))


def test_a_kept_model_counts_only_if_its_record_vouches_for_it(faulty_sweep, tmp_path):
    winner = read_leaderboard(faulty_sweep.path("results/leaderboard.tsv"))[0]["trial_id"]
    trial = shutil.copytree(faulty_sweep.path(f"results/trials/{winner}"), tmp_path / winner)
    assert kept_model(trial) == trial / "model.keras"
    with open(trial / "model.keras", "ab") as model:
        model.write(b"changed since")
    assert kept_model(trial) is None
