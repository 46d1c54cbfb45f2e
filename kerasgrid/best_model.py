"""The winner's trained model in one file: results/best_model.keras.

Trials keep no weights by default (a 10,000-trial sweep of checkpoints fills a disk), so the
winner is trained once more: the same params, settings, seed and `run_trial` as in the sweep,
which are deterministic, and the retrained objective must equal the recorded one exactly, or no
model is written. With `keep_models: true` every trial saves its model as it trains, and the
winner's file is copied instead.
"""

import shutil
from pathlib import Path

import yaml

from kerasgrid import records, runs
from kerasgrid.errors import NotReproducible, Status
from kerasgrid.training import TRIAL_MODEL, run_trial


def kept_model(trial_dir) -> Path | None:
    """The model a trial saved as it trained, if its record vouches for the file on disk."""
    trial_dir = Path(trial_dir)
    path = trial_dir / TRIAL_MODEL
    try:
        saved = records.read_json(trial_dir / "metrics.json").get("saved_model")
    except (OSError, ValueError):
        return None
    if saved and path.exists() and records.sha256(path) == saved["sha256"]:
        return path
    return None


def save_best_model(
    best_params_path,
    settings: dict,
    model_path,
    *,
    trials_dir,
    scratch_dir,
    threads: int = 1,
    source: str = "the config",
) -> dict:
    """Write the winner named in best_params.yaml to `model_path`; say how in the returned dict.

    Copies the winner's kept model if there is one; otherwise retrains the winner in
    `scratch_dir`/<trial id> (params.json, history.csv, metrics.json as for any trial) and
    raises NotReproducible, writing no model, unless its objective equals the recorded value.
    """
    winner = yaml.safe_load(Path(best_params_path).read_text(encoding="utf-8"))
    trial, objective = winner["trial_id"], winner["objective"]
    # The run that won (with the config's seed): the trial's own, or its confirmation.
    run_dir = runs.run_dir(Path(trials_dir) / trial, confirm=bool(winner.get("confirmed")))
    if winner.get("repeats"):  # best_params holds the mean over seeds; this run's own value is this
        objective = {**objective, "value": winner["repeats"]["values"][0]}
    kept = kept_model(run_dir)
    if kept:
        records.copy_file(kept, model_path)
        print(f"kerasgrid: copied trial {trial}'s kept model {kept} to {model_path}", flush=True)
        return {"trial_id": trial, "how": "copied", "from": str(kept)}

    shutil.rmtree(scratch_dir, ignore_errors=True)  # only the current winner's retrain stays
    record = run_trial(
        winner["params"],
        settings,
        Path(scratch_dir) / trial,
        threads=threads,
        objective={"metric": objective["metric"], "direction": objective["direction"], "source": source},
        model_path=model_path,
    )
    value = record["objective"]["value"]
    if record["status"] != Status.OK.value or value != objective["value"]:
        Path(model_path).unlink(missing_ok=True)
        got = f"{objective['metric']} = {value!r}" if value is not None else f"status {record['status']}"
        recorded_threads = records.read_json(run_dir / "metrics.json").get("threads", threads)
        threads_differ = (
            f"it trained with {recorded_threads} threads and this retrain with {threads} (give best_model "
            "the train rule's threads and resources), " if recorded_threads != threads else ""
        )
        raise NotReproducible(
            f"training the winner, trial {trial}, again gave {got}, but the sweep recorded "
            f"{objective['metric']} = {objective['value']!r}: training is not deterministic here, so "
            f"no {model_path} was written (it would not be the model that won). Likely: {threads_differ}"
            "another device (a GPU for the trials, none for best_model), or randomness the seed does not "
            "reach in the model or data functions (an unseeded generator, the clock, files read in "
            "varying order). Or set keep_models: true, which saves every trial's model as it trains."
        )
    print(f"kerasgrid: retrained trial {trial} to {objective['metric']} = {value!r}, as recorded; "
          f"saved it to {model_path}", flush=True)
    return {"trial_id": trial, "how": "retrained", "objective_value": value}
