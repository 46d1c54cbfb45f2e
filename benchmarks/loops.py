"""The two in-process contenders of bench_sweep.py, each run as its own process.

    python benchmarks/loops.py baseline|kerastuner CONFIG.yaml OUT.json

`baseline` is the seed-style framework: one process, a nested loop over the combinations,
build -> fit on the same endless generators -> record the loss, clear_session between trials.
`kerastuner` is KerasTuner's GridSearch on the same search space, data, budget and seed.
"""

import itertools
import json
import sys
import tempfile

import yaml

from kerasgrid.sweep import refs
from kerasgrid.sweep.grid import grid_values


def load(config_path):
    config = yaml.safe_load(open(config_path))
    get = lambda key: refs.load(refs.Ref(key, key, config_path))  # noqa: E731
    return config, get(config["model"]), get(config["data"]["train"]), get(config["data"]["validation"])


def validation(val, params: dict, budget: dict) -> dict:
    """fit's validation arguments as a kerasgrid trial has them: the same batches every epoch, all
    of the validation data unless budget.validation_steps says how many."""
    from kerasgrid.trial.data import as_validation_dataset

    dataset, steps = as_validation_dataset(val, params, batch_size=budget.get("batch_size", 32),
                                           steps=budget.get("validation_steps"))
    return {"validation_data": dataset, "validation_steps": steps}


def baseline(config_path):
    import keras

    from kerasgrid.trial.data import as_dataset

    config, build, train, val = load(config_path)
    budget, seed = config["budget"], config.get("seed", 0)
    values = grid_values(config["grid"])
    results = []
    for combination in itertools.product(*values.values()):
        params = dict(zip(values, combination))
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = build(params)
        history = model.fit(
            as_dataset(train, params, batch_size=32, seed=seed),
            epochs=budget["epochs"],
            steps_per_epoch=budget["steps_per_epoch"],
            **validation(val, params, budget),
            shuffle=False,
            verbose=0,
        )
        results.append((history.history["val_loss"][-1], params))
    value, params = min(results, key=lambda r: r[0])
    return {"params": params, "value": value, "trials": len(results)}


def kerastuner(config_path):
    import keras_tuner

    from kerasgrid.trial.data import as_dataset

    config, build, train, val = load(config_path)
    budget, seed = config["budget"], config.get("seed", 0)
    values = grid_values(config["grid"])

    def hypermodel(hp):
        return build({key: hp.Choice(key, options) for key, options in values.items()})

    n_trials = 1
    for options in values.values():
        n_trials *= len(options)
    with tempfile.TemporaryDirectory() as directory:
        tuner = keras_tuner.GridSearch(
            hypermodel, objective="val_loss", max_trials=n_trials, seed=seed,
            directory=directory, project_name="bench", overwrite=True,
        )
        tuner.search(
            as_dataset(train, {}, batch_size=32, seed=seed),
            epochs=budget["epochs"],
            steps_per_epoch=budget["steps_per_epoch"],
            **validation(val, {}, budget),
            shuffle=False,
            verbose=0,
        )
        best = tuner.oracle.get_best_trials(1)[0]
        return {"params": best.hyperparameters.values, "value": best.score, "trials": len(tuner.oracle.trials)}


if __name__ == "__main__":
    tool, config_path, out = sys.argv[1:4]
    result = {"baseline": baseline, "kerastuner": kerastuner}[tool](config_path)
    json.dump(result, open(out, "w"))
