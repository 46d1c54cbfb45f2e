"""A trial's TensorBoard logs: its per-epoch metrics and its hyperparameters in HParams format.

`tensorboard --logdir results/tensorboard` then lists every trial as a run and shows them all in
the HParams dashboard's table and parallel-coordinates view, as KerasTuner's logs do: each
trial's folder holds its hyperparameters (a session of the HParams plugin, named by the trial id)
and Keras' `train/` and `validation/` runs of `epoch_<metric>` scalars, which the dashboard offers
as the session's metrics. Imported only by trials of a sweep with `tensorboard: true`.
"""

import json

import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api


def hparam_value(value):
    """A grid value as the HParams plugin holds it: bools, numbers and strings as they are,
    anything else (lists, mappings, null) as its JSON text, as the leaderboard shows it."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, ensure_ascii=False)


def write_hparams(log_dir, params: dict, trial_id: str) -> None:
    """Record the trial's hyperparameters in `log_dir`: one HParams session, named `trial_id`."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hparams_api.hparams({key: hparam_value(value) for key, value in params.items()}, trial_id=trial_id)
    writer.close()


def tensorboard_callback(log_dir, params: dict, trial_id: str) -> keras.callbacks.Callback:
    """Write the trial's hyperparameters now; the returned callback writes each epoch's metrics."""
    write_hparams(log_dir, params, trial_id)
    # Epoch scalars only: no graph, no profiling, no histograms, which would cost training time.
    return keras.callbacks.TensorBoard(
        str(log_dir), histogram_freq=0, write_graph=False, write_images=False, update_freq="epoch", profile_batch=0
    )
