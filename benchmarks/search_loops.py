"""The in-process contenders of bench_search.py, each run as its own process.

    python benchmarks/search_loops.py hyperband|optuna|optuna-hyperband CONFIG.yaml OUT.json [--seed 0] [--trials 81]

Both search the config's grid as a space of choices, with its model, data, budget and objective,
and train as a kerasgrid trial does: the same endless data streams, `budget.steps_per_epoch`
batches an epoch, the same validation batches every epoch (`budget.validation_steps` of them, or all), and `keras.utils.set_random_seed`
with the config's seed before each model is built, so that a combination starts from the same
weights in every tool.

`hyperband` is KerasTuner's Hyperband with `max_epochs` = `budget.epochs` and factor 3; it
continues a promoted model from the weights of its best epoch so far. `optuna` is Optuna's TPE
sampler (seeded with --seed) with its SuccessiveHalvingPruner (min_resource 1, reduction factor
3): each trial reports the objective after every epoch and stops when the pruner says so; a trial
that has trained the whole budget is complete, never pruned. `optuna-hyperband` is the same loop
with Optuna's HyperbandPruner (min_resource 1, max_resource `budget.epochs`, reduction factor 3):
its brackets are successive halvings that start at 1, 3, 9 ... epochs, each trial assigned to one
by a hash of its number (Optuna's TPE then learns, per bracket, from that bracket's trials). --trials
is Optuna's trial count.

OUT.json: the winner's params, the tool's own score for it, how many trials it ran, how many
distinct combinations they tried, and how many epochs it trained (counted by a callback on every
fit).
"""

import argparse
import json
import tempfile

from kerasgrid.sweep.grid import grid_values
from loops import load, validation

ETA = 3  # the reduction factor of every halving method in bench_search.py


def setting(config_path):
    """What both tools need: the config's pieces, its space, objective and data streams."""
    from kerasgrid.trial.data import as_dataset

    config, build, train, val = load(config_path)
    budget, seed = config["budget"], config.get("seed", 0)
    given = {key: value for key, value in config.get("objective", {}).items() if value is not None}
    objective = {"metric": "val_loss", "direction": "min", **given}
    streams = {
        "x": as_dataset(train, {}, batch_size=budget.get("batch_size", 32), seed=seed),
        **validation(val, {}, budget),
        "steps_per_epoch": budget["steps_per_epoch"],
        "shuffle": False,
        "verbose": 0,
    }
    return config, build, grid_values(config["grid"]), objective, streams


def distinct(combinations: list[dict]) -> int:
    """How many different combinations were tried (a tool may try one twice)."""
    return len({json.dumps(params, sort_keys=True) for params in combinations})


def epoch_counter():
    import keras

    class EpochCounter(keras.callbacks.Callback):
        # A class attribute: KerasTuner deep-copies the callbacks it is given for every trial.
        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            type(self).epochs += 1

    return EpochCounter()


def hyperband(config_path, seed: int, trials: int):
    import keras
    import keras_tuner

    config, build, values, objective, streams = setting(config_path)

    def hypermodel(hp):
        params = {key: hp.Choice(key, options) for key, options in values.items()}
        keras.backend.clear_session()
        keras.utils.set_random_seed(config.get("seed", 0))
        return build(params)

    counter = epoch_counter()
    with tempfile.TemporaryDirectory() as directory:
        tuner = keras_tuner.Hyperband(
            hypermodel,
            objective=keras_tuner.Objective(objective["metric"], objective["direction"]),
            max_epochs=config["budget"]["epochs"],
            factor=ETA,
            seed=seed,
            directory=directory,
            project_name="bench",
            overwrite=True,
        )
        tuner.search(callbacks=[counter], **streams)
        best = tuner.oracle.get_best_trials(1)[0]
        hp = best.hyperparameters.values
        tried = [trial.hyperparameters.values for trial in tuner.oracle.trials.values()]
        return {
            "params": {key: hp[key] for key in values},
            "value": best.score,
            "value_at_epochs": hp.get("tuner/epochs"),
            # KerasTuner counts every continuation of a model as a trial of its own.
            "trials": len(tried),
            "candidates": distinct([{key: hp[key] for key in values} for hp in tried]),
            "epochs": type(counter).epochs,
        }


def optuna_tpe(config_path, seed: int, trials: int, pruner: str = "successive-halving"):
    import keras
    import optuna

    config, build, values, objective, streams = setting(config_path)
    epochs = config["budget"]["epochs"]
    counter = epoch_counter()

    class ReportAndPrune(keras.callbacks.Callback):
        def __init__(self, trial):
            super().__init__()
            self.trial, self.pruned = trial, False

        def on_epoch_end(self, epoch, logs=None):
            self.trial.report(logs[objective["metric"]], epoch + 1)
            if epoch + 1 < epochs and self.trial.should_prune():
                self.pruned = self.model.stop_training = True

    def trial_value(trial):
        params = {key: trial.suggest_categorical(key, options) for key, options in values.items()}
        keras.backend.clear_session()
        keras.utils.set_random_seed(config.get("seed", 0))
        model = build(params)
        pruning = ReportAndPrune(trial)
        history = model.fit(epochs=epochs, callbacks=[counter, pruning], **streams)
        if pruning.pruned:
            raise optuna.TrialPruned()
        return history.history[objective["metric"]][-1]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize" if objective["direction"] == "min" else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=(
            optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=ETA)
            if pruner == "hyperband"
            else optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=ETA)
        ),
    )
    study.optimize(trial_value, n_trials=trials)
    states = [trial.state.name for trial in study.trials]
    return {
        "params": study.best_params,
        "value": study.best_value,
        "value_at_epochs": epochs,
        "trials": len(study.trials),
        "candidates": distinct([trial.params for trial in study.trials]),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "epochs": type(counter).epochs,
    }


def optuna_hyperband(config_path, seed: int, trials: int):
    return optuna_tpe(config_path, seed, trials, pruner="hyperband")


TOOLS = {"hyperband": hyperband, "optuna": optuna_tpe, "optuna-hyperband": optuna_hyperband}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0, help="the search's seed (not the training seed)")
    parser.add_argument("--trials", type=int, default=81, help="optuna: how many trials")
    args = parser.parse_args()
    result = TOOLS[args.tool](args.config, args.seed, args.trials)
    with open(args.out, "w") as out:
        json.dump(result, out)
