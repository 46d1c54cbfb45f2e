"""What measuring a trial costs it (issue 22): the seconds `_measure` takes (trainable parameters,
and predict_ms: one traced prediction then 10 timed ones) against the trial's wall, per trial.

    python benchmarks/bench_measures.py [--config config.yaml]

Trains every trial of the config one after the other in this warm process (as a worker does),
timing kerasgrid.trial.training._measure inside each: a share of the same trial's wall, which the
machine's noise moves far less than comparing two runs would.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from kerasgrid.config import fill_defaults, load_schema, sweep_from_config
from kerasgrid.trial import backends, training

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    args = parser.parse_args()
    config = fill_defaults(yaml.safe_load(open(args.config)), load_schema(REPO / "workflow/schemas/config.schema.yaml"))
    sweep = sweep_from_config(config, args.config)
    backends.configure("tensorflow", 1, 0)
    spent = []
    measure = training._measure

    def timed(*a, **k):
        started = time.perf_counter()
        measure(*a, **k)
        spent.append(time.perf_counter() - started)

    training._measure = timed
    out, walls = Path(tempfile.mkdtemp()), []
    for trial, params in sweep.trials.items():
        record = training.run_trial(params, sweep.settings(), out / trial, objective=dict(sweep.objective))
        walls.append(record["wall_seconds"])
    shares = [s / w for s, w in zip(spent, walls)]
    print(f"{len(walls)} trials: measuring took a median {statistics.median(spent) * 1000:.1f} ms "
          f"(max {max(spent) * 1000:.1f} ms) of a median {statistics.median(walls):.2f} s trial wall: "
          f"{statistics.median(shares):.1%} (max {max(shares):.1%})")


if __name__ == "__main__":
    main()
