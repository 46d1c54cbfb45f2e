"""The in-process contender of bench_adaptive.py, run as its own process.

    python benchmarks/adaptive_loops.py optuna-tpe CONFIG.yaml OUT.json [--seed 0] [--trials 27]

Optuna's own loop, `study.optimize`, with its TPE sampler (seeded with --seed) and no pruner: it
trains --trials trials one after another, each for the whole budget, the sampler told each result
as it comes. The space is the config's grid as choices, and trials train as kerasgrid's do (see
benchmarks/search_loops.py `setting`). A trial whose objective is NaN is failed, as Optuna records
it. OUT.json: the winner's params, the loop's own score for it, the trials run and epochs trained.
"""

import argparse
import json

from search_loops import epoch_counter, setting


def optuna_tpe(config_path, seed: int, trials: int):
    import keras
    import optuna

    config, build, values, objective, streams = setting(config_path)
    counter = epoch_counter()

    def trial_value(trial):
        params = {key: trial.suggest_categorical(key, options) for key, options in values.items()}
        keras.backend.clear_session()
        keras.utils.set_random_seed(config.get("seed", 0))
        history = build(params).fit(epochs=config["budget"]["epochs"], callbacks=[counter], **streams)
        return history.history[objective["metric"]][-1]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize" if objective["direction"] == "min" else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    study.optimize(trial_value, n_trials=trials)
    distinct = {json.dumps(trial.params, sort_keys=True) for trial in study.trials}
    return {
        "params": study.best_params,
        "value": study.best_value,
        "trials": len(study.trials),
        "distinct": len(distinct),  # the loop may try a combination twice; kerasgrid's rounds never do
        "epochs": type(counter).epochs,
    }


TOOLS = {"optuna-tpe": optuna_tpe}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--trials", type=int, default=27)
    args = parser.parse_args()
    with open(args.out, "w") as out:
        json.dump(TOOLS[args.tool](args.config, args.seed, args.trials), out)
