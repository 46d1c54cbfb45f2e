"""Where each run of a trial lives. A trial is a combination; a run is one training of it.

    results/trials/<id>/                       the run with the config's seed (as without repeats)
    results/trials/<id>/seeds/<seed>/          each further seed of `repeats`
    results/trials/<id>/confirm/               its confirmation on all the data (`confirm`)
    results/trials/<id>/confirm/seeds/<seed>/  the confirmation's further seeds
    <any of these>/rungs/<epochs>/             a halving rung before the last (kerasgrid.search.halving)

So a sweep without repeats or confirmation keeps today's layout, and raising `repeats` adds folders
beside the finished runs instead of moving them.
"""

from pathlib import Path

CONFIRM_DIR = "confirm"


def seed_path(seed: int, base_seed: int) -> str:
    """The part of a run's folder that names its seed: "" for the config's seed, "/seeds/<seed>" else."""
    return "" if seed == base_seed else f"/seeds/{seed}"


def run_dir(trial_dir, seed: int | None = None, base_seed: int | None = None, *, confirm: bool = False) -> Path:
    """The folder of one run of the trial in `trial_dir`."""
    folder = Path(trial_dir) / CONFIRM_DIR if confirm else Path(trial_dir)
    path = seed_path(seed, base_seed) if seed is not None else ""
    return Path(f"{folder}{path}")


def fraction_steps(steps_per_epoch: int, fraction: float) -> int:
    """Batches per epoch on a fraction of the data: that share of the whole's, at least 1, so that an
    epoch is the same number of passes over the examples trained on."""
    return max(1, int(steps_per_epoch * fraction + 0.5))
