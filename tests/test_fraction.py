"""The data fraction: a seeded, stratified draw, what a trial records of it, and a sweep on one."""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kerasgrid import fraction
from kerasgrid.errors import ConfigError
from kerasgrid.trial.data import call_data_fn, fraction_batches


def imbalanced(seed=0):
    """1,000 integer labels: classes 0 to 3 in shares 57%, 42%, 0.8% and 0.2%, shuffled."""
    labels = np.repeat([0, 1, 2, 3], [570, 420, 8, 2])
    return np.random.default_rng(seed).permutation(labels)


def test_the_draw_is_seeded():
    labels = imbalanced()
    assert np.array_equal(fraction.indices(labels, 0.1, seed=3), fraction.indices(labels, 0.1, seed=3))
    assert not np.array_equal(fraction.indices(labels, 0.1, seed=3), fraction.indices(labels, 0.1, seed=4))
    rows = fraction.indices(labels, 0.1, seed=3)
    assert list(rows) == sorted(set(rows.tolist())) and len(rows) == 101  # 100, and class 3 kept once


@pytest.mark.parametrize("encode", [
    lambda y: y,  # integer classes
    lambda y: y.reshape(-1, 1),  # a column of them
    lambda y: np.eye(4, dtype="float32")[y],  # one-hot
    lambda y: np.array(["cat", "dog", "eel", "fox"])[y],  # strings
    lambda y: y.astype("float32"),  # whole floats, as 0/1 labels often are
])
def test_the_draw_keeps_each_class_share_and_every_rare_class(encode):
    labels = imbalanced()
    rows = fraction.indices(encode(labels), 0.1, seed=0)
    # 10% of 570, 420, 8 and 2, rounded to whole examples by largest remainders: 57, 42, 1 (0.8
    # rounds up) and 0.2, kept once so that the class is there at all.
    assert np.bincount(labels[rows], minlength=4).tolist() == [57, 42, 1, 1]
    assert fraction.strata(encode(labels))[1] == "class"


def test_a_class_with_one_example_is_kept_at_any_fraction():
    labels = np.array([0] * 9_999 + [1])
    rows = fraction.indices(labels, 0.001, seed=0)
    assert labels[rows].tolist().count(1) == 1 and len(rows) == 10


def test_a_plain_random_draw_of_the_same_size_can_lose_a_rare_class():
    # What stratification prevents: over 200 seeds, numpy's plain draw of 100 of these 1,000
    # examples leaves class 3 (2 examples) out almost every time.
    labels = imbalanced()
    plain = [np.random.default_rng(s).choice(1000, 100, replace=False) for s in range(200)]
    assert sum(3 not in labels[rows] for rows in plain) > 150
    assert all(3 in labels[fraction.indices(labels, 0.1, seed=s)] for s in range(200))


def test_a_regression_target_is_stratified_by_quantile_bins():
    target = np.random.default_rng(0).lognormal(size=1000).astype("float32")  # skewed: a long right tail
    codes, how, labels = fraction.strata(target)
    assert how == "10 quantile bins of the target" and len(labels) == 10
    rows = fraction.indices(target, 0.1, seed=0)
    assert np.bincount(codes[rows], minlength=10).tolist() == [10] * 10
    assert target[rows].max() > np.quantile(target, 0.9)  # the tail is there


def test_targets_that_are_neither_classes_nor_one_number_are_drawn_plainly():
    multi_label = (np.random.default_rng(0).random((200, 5)) > 0.5).astype("float32")
    assert fraction.strata(multi_label)[0] is None
    rows = fraction.indices(multi_label, 0.25, seed=1)
    assert len(rows) == 50 and np.array_equal(rows, fraction.indices(multi_label, 0.25, seed=1))
    assert fraction.describe(multi_label, rows, 0.25)["stratified_by"] is None


def test_take_cuts_every_array_of_tuples_and_dicts_alike():
    labels = imbalanced()
    x = {"image": np.arange(1000).reshape(-1, 1), "meta": np.arange(1000) * 2}
    y = {"digit": labels, "even": labels % 2}
    weights = np.arange(1000) * 3
    small_x, small_y, small_w = fraction.take((x, y, weights), 0.1, seed=0)
    rows = fraction.indices(labels, 0.1, seed=0)  # stratified on the first target, "digit"
    assert np.array_equal(small_x["image"][:, 0], rows) and np.array_equal(small_x["meta"], rows * 2)
    assert np.array_equal(small_y["digit"], labels[rows]) and np.array_equal(small_w, rows * 3)


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_a_fraction_outside_0_to_1_is_refused(share):
    with pytest.raises(ValueError, match=f"fraction must be above 0 and at most 1, not {share}"):
        fraction.indices(imbalanced(), share)


def test_the_record_gives_each_class_share_in_the_fraction_and_the_whole():
    labels = imbalanced()
    record = fraction.describe(labels, fraction.indices(labels, 0.1, seed=0), 0.1)
    assert {k: record[k] for k in ("fraction", "examples", "whole_examples", "stratified_by")} == {
        "fraction": 0.1, "examples": 101, "whole_examples": 1000, "stratified_by": "class"}
    assert record["strata"] == [
        {"label": "0", "examples": 57, "whole": 570}, {"label": "1", "examples": 42, "whole": 420},
        {"label": "2", "examples": 1, "whole": 8}, {"label": "3", "examples": 1, "whole": 2}]
    # Class 2's share (8 in 1,000 of 101 kept: 0.81) rounds to 1: no warning. Class 3's (0.2) rounds to 0.
    assert record["warnings"] == [
        "class 3 is 0.99% of the fraction against 0.20% of the whole (1 example where its share is 0.202, "
        "kept so that it is not missing)"]


def test_a_missing_class_and_a_share_off_by_more_than_the_margin_are_warned_about():
    labels = np.repeat([0, 1, 2], [500, 400, 100])
    rows = np.concatenate([np.arange(0, 62), np.arange(500, 538)])  # 62 of class 0, 38 of 1, none of 2
    warnings = fraction.describe(labels, rows, 0.1)["warnings"]
    assert warnings == [
        "class 0 is 62.00% of the fraction against 50.00% of the whole (62 examples where its share is 50)",
        "class 2 is missing from the fraction (10.00% of the whole)"]
    # Class 1 is 38 where its share is 40: off by less than the margin (20%), no warning.
    rows = np.concatenate([np.arange(0, 60), np.arange(500, 532), np.arange(900, 908)])  # at the margin: 60 for 50
    assert fraction.describe(labels, rows, 0.1)["warnings"] == []


def test_the_module_imports_no_tensorflow():
    code = "import sys, kerasgrid.fraction; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# --- fraction_batches: what a trial trains on -----------------------------------------------------------------


def arrays():
    labels = imbalanced()
    return np.arange(1000, dtype="float32").reshape(-1, 1), labels.astype("int64")


def examples_seen(stream, batches) -> set:
    return {int(v) for x, _ in itertools.islice(stream.numpy(), batches) for v in x.ravel()}


def test_whole_arrays_train_on_the_drawn_fraction_only():
    dataset, record = fraction_batches(arrays, {}, 0.1, draw_seed=5, batch_size=10, seed=0)
    rows = fraction.indices(arrays()[1], 0.1, seed=5)
    assert examples_seen(dataset, 40) == set(rows.tolist())  # four passes over the 101 kept
    assert record["examples"] == 101 and record["drawn_by"] == "kerasgrid" and len(record["warnings"]) == 1


def test_at_fraction_1_the_data_is_what_as_dataset_gives():
    dataset, record = fraction_batches(arrays, {}, 1.0, draw_seed=5, batch_size=100, seed=0)
    assert examples_seen(dataset, 10) == set(range(1000)) and record["examples"] == 1000 and record["warnings"] == []


def test_a_callable_with_a_fraction_parameter_draws_it_itself_and_its_draw_is_recorded():
    received = []
    draw = fraction.indices  # what the callable imports as kerasgrid.fraction.indices

    def train(params, fraction=1.0):
        received.append((params, fraction))
        x, y = arrays()
        keep = draw(y, fraction, seed=2)
        for start in range(0, len(keep) - 9, 10):
            yield x[keep[start:start + 10]], y[keep[start:start + 10]]

    dataset, record = fraction_batches(train, {"lr": 1}, 0.1, draw_seed=0, batch_size=10, seed=0)
    assert received[0] == ({"lr": 1}, 0.1)
    assert examples_seen(dataset, 10) == set(fraction.indices(arrays()[1], 0.1, seed=2)[:100].tolist())
    assert record["drawn_by"] == "the data callable" and record["examples"] == 101 and record["whole_examples"] == 1000


def test_a_callable_that_draws_otherwise_is_recorded_without_counts():
    def train(fraction):
        x, y = arrays()
        return tf.data.Dataset.from_tensor_slices((x[: int(1000 * fraction)], y[: int(1000 * fraction)])).batch(10)

    dataset, record = fraction_batches(train, {}, 0.1, draw_seed=0, batch_size=10, seed=0)
    assert examples_seen(dataset, 10) == set(range(100))
    assert record["drawn_by"] == "the data callable" and record["examples"] is None and record["strata"] == []


def test_a_generator_that_cannot_take_the_fraction_stops_the_sweep_with_the_fix():
    def train(params):
        x, y = arrays()
        yield x[:10], y[:10]

    with pytest.raises(ConfigError, match=(
            r"^my\.yaml: data\.fraction is 0\.1, but data\.train returned generator, which kerasgrid cannot cut a "
            r"fraction from\. Return whole \(x, y\) arrays, .* give the function a fraction parameter .*"
            r"kerasgrid\.fraction\.indices\(labels, fraction, seed=0\)\.$")):
        fraction_batches(train, {}, 0.1, draw_seed=0, batch_size=10, seed=0, name="data.train", source="my.yaml")
    # On all the data (a confirmation) there is nothing to cut.
    dataset, record = fraction_batches(train, {}, 1.0, draw_seed=0, batch_size=10, seed=0)
    assert record["examples"] is None and len(examples_seen(dataset, 3)) == 10


def test_only_a_callable_that_names_fraction_receives_it():
    assert call_data_fn(lambda params: params, {"a": 1}, 0.5) == {"a": 1}
    assert call_data_fn(lambda: "none", {"a": 1}, 0.5) == "none"
    assert call_data_fn(lambda fraction: fraction, {"a": 1}, 0.5) == 0.5
    assert call_data_fn(lambda params, fraction=1.0: (params, fraction), {"a": 1}, 0.5) == ({"a": 1}, 0.5)
    assert call_data_fn(lambda params, fraction=1.0: (params, fraction), {"a": 1}) == ({"a": 1}, 1.0)


# --- a sweep on a fraction ------------------------------------------------------------------------------------

# A model that never learns (lr 0) and predicts q: with one batch holding all the examples, the
# training loss is exactly the mean of (y - q)^2 over the examples the trial trained on.
CONSTANT = """
import keras
import numpy as np

LABELS = np.repeat(np.array([0, 1, 2, 3], dtype="float32"), [570, 420, 8, 2])


def build_model(params):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(params["q"]))])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


def train():
    y = np.random.default_rng(0).permutation(LABELS)
    return np.zeros((len(y), 1), dtype="float32"), y.reshape(-1, 1)


def validation():
    return np.zeros((50, 1), dtype="float32"), np.linspace(0, 3, 50, dtype="float32").reshape(-1, 1)
"""


def constant_config(**overrides):
    config = {
        "model": "constant.py:build_model",
        "data": {"train": "constant.py:train", "validation": "constant.py:validation", "fraction": 0.05},
        "budget": {"epochs": 1, "steps_per_epoch": 4, "validation_steps": 1, "batch_size": 1000},
        "objective": {"metric": "loss"},
        "grid": {"q": [0.5, 1.0]},
    }
    config.update(overrides)
    return config


def test_a_sweep_trains_on_the_fraction_records_it_and_warns_once(workflow):
    workflow.path("constant.py").write_text(CONSTANT, encoding="utf-8")
    result = workflow.sweep(constant_config())
    y = np.random.default_rng(0).permutation(np.repeat([0.0, 1, 2, 3], [570, 420, 8, 2]))
    rows = fraction.indices(y, 0.05, seed=0)
    for trial in workflow.root.glob("results/trials/*/metrics.json"):
        record = json.loads(trial.read_text())
        q = record["params"]["q"]
        # Trained on exactly the drawn rows (one batch: steps_per_epoch 4 x 0.05 rounds to 1)...
        assert record["budget"]["steps_per_epoch"] == 1
        assert record["metrics"]["loss"]["final"] == pytest.approx(np.mean((y[rows] - q) ** 2), rel=1e-5)
        # ... and validated on all the validation data.
        assert record["metrics"]["val_loss"]["final"] == pytest.approx(np.mean((np.linspace(0, 3, 50) - q) ** 2), rel=1e-5)
        data = record["training_data"]
        assert (data["fraction"], data["examples"], data["whole_examples"]) == (0.05, 51, 1000)
        assert [s["examples"] for s in data["strata"]] == [28, 21, 1, 1]
    summary = json.loads(workflow.path("results/training_data.json").read_text())
    assert summary["runs"] == summary["same_draw"] == 2
    lines = result.output.splitlines()
    assert "Tuned on 5% of the training data: 51 of 1,000 examples, stratified by class." in lines
    warnings = [line for line in lines if line.startswith("Warning: the fraction is not representative")]
    assert len(warnings) == 2 and "class 3 is 1.96% of the fraction against 0.20% of the whole" in warnings[1]
    page = workflow.path("results/leaderboard.html").read_text()
    assert "<h2>Training data</h2>" in page and page.count("Not representative:") == 2
    # The default config (no fraction) neither records nor summarises one.
    assert "Tuned on" not in workflow.sweep(constant_config(data={"train": "constant.py:train"},
                                                            objective={"metric": "loss"})).output
