"""kerasgrid: grid search over Keras models, one Snakemake job per combination.

The library holds the logic the workflow's rules call; it imports neither Snakemake nor, outside
`training` and `data`, TensorFlow, so that planning and aggregating a sweep stay fast.
"""

__version__ = "0.1.0"

from kerasgrid.results.best_model import load_best_model  # noqa: E402 - the one name a user imports

__all__ = ["load_best_model"]
