"""The in-process contenders of bench_motpe.py, each run as its own process.

    python benchmarks/motpe_loops.py optuna-tpe|optuna-nsga2 CONFIG.yaml OUT.json [--seed 0] [--trials 27]
        [--population 9]

Optuna's own multi-objective loop, `study.optimize` with directions [minimize, minimize], told
each trial's (val_loss after the budget, trainable parameters) as it ends: with its TPESampler, or
with its NSGAIISampler (population --population), seeded with --seed, no pruner, one trial after
another. Trials train as kerasgrid's do (benchmarks/search_loops.py `setting`); the parameter
count is kerasgrid's `params_count` measure (the trainable weights' sizes summed). A trial whose
val_loss is NaN is failed, as Optuna records it. OUT.json: every trial's params and values.
"""

import argparse
import json

import numpy as np

from search_loops import epoch_counter, setting


def optuna_loop(config_path, sampler_name: str, seed: int, trials: int, population: int):
    import keras
    import optuna

    config, build, values, objective, streams = setting(config_path)
    counter = epoch_counter()

    def trial_values(trial):
        params = {key: trial.suggest_categorical(key, options) for key, options in values.items()}
        keras.backend.clear_session()
        keras.utils.set_random_seed(config.get("seed", 0))
        model = build(params)
        history = model.fit(epochs=config["budget"]["epochs"], callbacks=[counter], **streams)
        size = int(sum(np.prod(v.shape, dtype=np.int64) for v in model.trainable_weights))
        return history.history[objective["metric"]][-1], size

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sampler_name == "optuna-tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
    else:
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(trial_values, n_trials=trials)
    return {
        "tried": [{"params": t.params, "values": t.values} for t in study.trials],
        "trials": len(study.trials),
        "distinct": len({json.dumps(t.params, sort_keys=True) for t in study.trials}),
        "epochs": type(counter).epochs,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=["optuna-tpe", "optuna-nsga2"])
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--population", type=int, default=9, help="NSGA-II's population size")
    args = parser.parse_args()
    with open(args.out, "w") as out:
        json.dump(optuna_loop(args.config, args.tool, args.seed, args.trials, args.population), out)
