"""kerasgrid: grid search over Keras models, one Snakemake job per combination.

The library holds the logic the workflow's rules call, a subpackage per stage of a sweep:

- `sweep/`: what the sweep's trials are called (ids from their params) and where their runs live;
- `trial/`: one trial, built, trained on the fixed budget and recorded;
- `results/`: the finished trials ranked, the winner picked, shown and saved (and logged to MLflow);
- `search/`: which trials to train next, and for how long (samplers, halving, adaptive rounds);
- `running/`: how jobs run (warm workers, logs, retries, locks).

Each imports only from the ones before it (search learns from the ranking, so it comes after
results) and from the modules at the top that they share: `errors`, `records` and `fraction` (which
a user's data function may import too). `config` (a config read into the sweep), `project` (a
user's project started and its config checked), `cli` and this module stand on all of them. tests/test_layout.py holds that order. The library imports neither
Snakemake nor, outside the code that builds, trains or loads a model, TensorFlow, so that planning
and aggregating a sweep stay fast.
"""

__version__ = "0.1.0"

from kerasgrid.results.best_model import load_best_model  # noqa: E402 - the one name a user imports

__all__ = ["load_best_model"]
