"""results/best_model.keras (or .weights.h5): the winner restored from the state its training
ended in, retrained to the recorded loss, or its kept model copied; results/best_model.yaml says
which."""

import json
import shutil
import sys
from pathlib import Path

import keras
import pytest
import yaml

from conftest import Workflow, tiny_config, trained_trials
from kerasgrid import load_best_model
from kerasgrid.config import TRAINING_VERSION
from kerasgrid.errors import NotReproducible
from kerasgrid.records import sha256
from kerasgrid.results.best_model import WinnerState, kept_model, save_best_model
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.sweep import refs
from kerasgrid.trial.resume import remove_state
from kerasgrid.trial.training import run_trial
from test_training import MODELS, settings

TRIAL_MODELS = Path(__file__).resolve().parent / "trial_models.py"


def test_the_best_model_loads_and_reproduces_the_recorded_validation_loss(tiny_sweep):
    best = yaml.safe_load(tiny_sweep.path("results/best_params.yaml").read_text())
    model = keras.models.load_model(tiny_sweep.path("results/best_model.keras"))
    budget = tiny_config()["budget"]
    val_data = refs.load(refs.Ref(f"{tiny_sweep.path('examples/digits.py')}:val_data", "data.validation", "test"))
    # Every epoch validates on the same first validation_steps batches, in order (all of the
    # validation data without it): the ranked val_loss is what model.evaluate gives on them.
    _, (x_val, y_val) = sys.modules[val_data.__module__]._split()
    seen = budget["validation_steps"] * 32
    loss = model.evaluate(x_val[:seen], y_val[:seen], batch_size=32, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(best["objective"]["value"], rel=1e-6, abs=0)

    # The winner was not trained again: it was built and given the state its trial's training
    # ended in, the only state left on disk; no trial kept a model.
    trial = best["trial_id"]
    assert not tiny_sweep.path("results/best_model").exists()
    assert f"restored trial {trial} from the state its training ended in (val_loss = {best['objective']['value']!r})" \
        in tiny_sweep.path("logs/best_model.log").read_text()
    assert [p.parent.name for p in tiny_sweep.root.glob("results/trials/*/state.json")] == [trial]
    assert not list(tiny_sweep.root.glob("results/trials/*/model.keras"))

    # The manifest, the step's declared output, names the file and how to load it.
    manifest = yaml.safe_load(tiny_sweep.path("results/best_model.yaml").read_text())
    assert {k: manifest[k] for k in ("trial_id", "saved", "path", "how", "load", "params")} == {
        "trial_id": trial, "saved": "model", "path": "results/best_model.keras", "how": "restored",
        "load": 'keras.models.load_model("results/best_model.keras")', "params": best["params"]}
    assert manifest["sha256"] == sha256(tiny_sweep.path("results/best_model.keras"))
    assert not tiny_sweep.path("results/best_model.weights.h5").exists()
    loaded = load_best_model(tiny_sweep.path("results/best_model.yaml"))
    assert [w.tolist() for w in loaded.get_weights()] == [w.tolist() for w in model.get_weights()]


def test_a_restored_winner_is_the_model_a_retrain_gives_and_without_its_state_it_is_retrained(tiny_sweep, tmp_path):
    sweep = Workflow(Path(shutil.copytree(tiny_sweep.root, tmp_path / "sweep", symlinks=True)))
    best = yaml.safe_load(sweep.path("results/best_params.yaml").read_text())
    restored = keras.models.load_model(sweep.path("results/best_model.keras"))

    # Without the state (a cluster job trained the winner), best_model trains it again, which must
    # give the recorded numbers; the model is the restored one, variable for variable, the
    # optimizer's moments and step count included.
    trial = best["trial_id"]
    remove_state(sweep.path(f"results/trials/{trial}"))
    sweep.path("results/best_model.yaml").unlink()
    result = sweep.sweep(tiny_config())
    assert "best_model" in result.output and not trained_trials(result.output)
    retrained = json.loads(sweep.path(f"results/best_model/{trial}/metrics.json").read_text())
    recorded = json.loads(sweep.path(f"results/trials/{trial}/metrics.json").read_text())
    assert retrained["metrics"] == recorded["metrics"]
    assert retrained["saved_model"]["sha256"] == sha256(sweep.path("results/best_model.keras"))
    assert f"retrained trial {trial} to val_loss = {best['objective']['value']!r}, as recorded" in \
        sweep.path("logs/best_model.log").read_text()
    assert yaml.safe_load(sweep.path("results/best_model.yaml").read_text())["how"] == "retrained"
    again = keras.models.load_model(sweep.path("results/best_model.keras"))
    assert [v.numpy().tolist() for v in again.variables + again.optimizer.variables] == \
        [v.numpy().tolist() for v in restored.variables + restored.optimizer.variables]


def test_the_winner_state_keeps_only_the_best_so_far(tmp_path):
    def finished(trial, value, status="ok"):
        run_dir = tmp_path / trial
        run_dir.mkdir()
        (run_dir / "metrics.json").write_text(json.dumps({"status": status, "objective": {"value": value}}))
        for name in ("state.json", "state.npz"):
            (run_dir / name).write_text("state")
        return run_dir

    def states():
        return sorted(p.parent.name for p in tmp_path.glob("*/state.json"))

    kept = WinnerState("min")
    kept.offer(finished("bbb", 0.5))
    kept.offer(finished("ccc", 0.7))  # worse: its state goes at once
    assert states() == ["bbb"]
    kept.offer(finished("aaa", 0.5))  # a tie goes to the lower trial id, as on the leaderboard
    assert states() == ["aaa"]
    kept.offer(finished("ddd", None, status="diverged"))
    kept.offer(finished("eee", float("nan")))
    assert states() == ["aaa"]
    kept.offer(finished("fff", 0.1))
    assert states() == ["fff"] and not (tmp_path / "aaa" / "state.npz").exists()
    highest = WinnerState("max")
    for trial, value in [("ggg", 0.1), ("hhh", 0.9), ("iii", 0.5)]:
        highest.offer(finished(trial, value))
    assert states() == ["fff", "hhh"]


def test_a_winner_that_does_not_train_to_its_recorded_loss_is_not_saved(tiny_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_sweep.root)
    best = yaml.safe_load(tiny_sweep.path("results/best_params.yaml").read_text())
    true_value = best["objective"]["value"]
    best["objective"]["value"] = true_value * (1 + 1e-7)  # as if the sweep's run had drawn other numbers
    (tmp_path / "best_params.yaml").write_text(yaml.safe_dump(best))
    config = tiny_config()
    sweep_settings = {"model": config["model"], "train": config["data"]["train"], "validation": config["data"]["validation"],
                "budget": {**config["budget"], "batch_size": 32}, "seed": 0, "training_version": TRAINING_VERSION}
    message = (rf"training the winner, trial {best['trial_id']}, again gave val_loss = {true_value!r}, but the sweep "
               rf"recorded val_loss = {best['objective']['value']!r}: training is not deterministic here, so no .*"
               r"best_model\.keras was written .* Or set keep_models: true")
    trials = shutil.copytree(tiny_sweep.path("results/trials"), tmp_path / "trials")
    remove_state(trials / best["trial_id"])  # as if a cluster job had trained it: it is retrained
    with pytest.raises(NotReproducible, match=message):
        save_best_model(tmp_path / "best_params.yaml", sweep_settings, tmp_path / "best_model.keras",
                        manifest_path=tmp_path / "best_model.yaml", trials_dir=trials,
                        scratch_dir=tmp_path / "scratch", source="my.yaml")
    assert not (tmp_path / "best_model.keras").exists() and not (tmp_path / "best_model.yaml").exists()
    assert not list(tmp_path.glob(".*"))


def test_kept_models_are_saved_by_ok_trials_and_the_winners_is_copied(faulty_sweep):
    rows = read_leaderboard(faulty_sweep.path("results/leaderboard.tsv"))
    for row in rows:
        trial = faulty_sweep.path(f"results/trials/{row['trial_id']}")
        saved = json.loads((trial / "metrics.json").read_text())["saved_model"]
        if row["status"] == "ok":
            assert saved == {"path": f"results/trials/{row['trial_id']}/model.keras", "sha256": sha256(trial / "model.keras"),
                             "format": "keras", "error": None}
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


def winner_of(tmp_path, model, *, keep: bool, units=3) -> tuple[Path, dict]:
    """A one-trial sweep of a trial_models.py model trained by hand: its trials folder and winner."""
    trial = tmp_path / "results" / "trials" / "abcdefabcdef"
    record = run_trial({"units": units}, settings(model=model), trial, model_path=trial / "model.keras" if keep else None)
    best = {"trial_id": trial.name, "objective": {**record["objective"], "direction": "min"}, "params": {"units": units}}
    (tmp_path / "results" / "best_params.yaml").write_text(yaml.safe_dump(best))
    return tmp_path / "results", best


def save(results: Path, model: str) -> dict:
    return save_best_model(results / "best_params.yaml", settings(model=model), results / "best_model.keras",
                           manifest_path=results / "best_model.yaml", trials_dir=results / "trials",
                           scratch_dir=results / "best_model")


def recorded_loss_of(model, best) -> float:
    """The loss of `model` on the validation batches the trial was ranked on."""
    validation = refs.load(refs.Ref(f"{MODELS}:data", "data", "test"))({})  # the generator, as a user has it
    loss = model.evaluate(validation, steps=2, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(best["objective"]["value"], rel=1e-6, abs=0)
    return loss


@pytest.mark.parametrize("keep", [False, True], ids=["retrained", "kept"])
def test_a_winner_that_cannot_be_saved_whole_is_saved_as_weights_that_load_back(tmp_path, keep):
    results, best = winner_of(tmp_path, "subclassed_with_args", keep=keep)
    (results / "best_model.keras").write_text("an earlier winner's model")  # it goes
    manifest = save(results, "subclassed_with_args")

    weights = results / "best_model.weights.h5"
    assert not (results / "best_model.keras").exists() and not (results / "best_model.weights.h5.tmp").exists()
    assert yaml.safe_load((results / "best_model.yaml").read_text()) == manifest
    assert manifest["saved"] == "weights" and manifest["path"] == str(weights) and manifest["sha256"] == sha256(weights)
    assert manifest["how"] == ("copied" if keep else "retrained")
    assert (results / "best_model").exists() is not keep  # a kept model is copied, nothing retrained
    assert manifest["why_not_whole"].startswith("NotImplementedError: Object Net was created by passing non-serializable")
    assert manifest["fix"] == ("Give Net (and any custom layer in it) a get_config() that returns its __init__ arguments "
                               "and an __init__ that passes **kwargs on to super().__init__(), and register it with "
                               "@keras.saving.register_keras_serializable(); the next run then saves "
                               f"{results / 'best_model.keras'}.")
    assert manifest["load"].startswith("kerasgrid.load_best_model(), run in this folder. By hand: model = build_model(params);")
    recorded_loss_of(load_best_model(results / "best_model.yaml"), best)

    # The next winner can be saved whole: its model replaces these weights. Its class is not
    # registered: load_best_model gives Keras the classes of the model's file.
    results, best = winner_of(tmp_path, "configured", keep=keep)
    manifest = save(results, "configured")
    assert manifest["saved"] == "model" and not weights.exists()
    with pytest.raises(TypeError, match="Could not locate class 'ConfiguredNet'"):
        keras.models.load_model(results / "best_model.keras")
    recorded_loss_of(load_best_model(results / "best_model.yaml"), best)


def test_kept_models_that_cannot_be_saved_whole_keep_their_weights_and_the_winners_are_copied(workflow):
    shutil.copy(TRIAL_MODELS, workflow.path("models.py"))
    config = {
        "model": "models.py:subclassed_with_args",
        "data": {"train": "models.py:data", "validation": "models.py:data"},
        "budget": {"epochs": 1, "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 8},
        "keep_models": True,
        "grid": {"units": [3, 5]},
    }
    result = workflow.sweep(config)
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert [row["status"] for row in rows] == ["ok", "ok"]
    for row in rows:
        trial = workflow.path(f"results/trials/{row['trial_id']}")
        saved = json.loads((trial / "metrics.json").read_text())["saved_model"]
        assert saved["path"] == f"results/trials/{row['trial_id']}/model.weights.h5" and saved["format"] == "weights"
        assert saved["sha256"] == sha256(trial / "model.weights.h5") and not (trial / "model.keras").exists()
    winner = workflow.path(f"results/trials/{rows[0]['trial_id']}/model.weights.h5")
    assert workflow.path("results/best_model.weights.h5").read_bytes() == winner.read_bytes()
    assert not workflow.path("results/best_model").exists()  # copied, not retrained
    manifest = yaml.safe_load(workflow.path("results/best_model.yaml").read_text())
    assert (manifest["saved"], manifest["how"], manifest["sha256"]) == ("weights", "copied", sha256(winner))
    assert "Its weights are in results/best_model.weights.h5; results/best_model.yaml says how to load them." in result.stdout
    assert "Nothing to be done" in workflow.sweep(config).output
