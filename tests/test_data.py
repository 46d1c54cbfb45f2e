import itertools

import numpy as np
import pytest
import tensorflow as tf

from kerasgrid.errors import ConfigError, DataError
from kerasgrid.trial import data as data_module
from kerasgrid.trial.data import as_dataset, as_validation_dataset, call_data_fn, infer_signature


def batches(n_batches, batch=4, features=3):
    for i in range(n_batches):
        x = np.full((batch, features), i, dtype="float32")
        yield x, np.full((batch, 1), i, dtype="float32")


def first_values(dataset, n, part=0):
    """The first value of each of the dataset's first n batches' part `part`."""
    return [float(tf.nest.flatten(element[part])[0].numpy().flat[0]) for element in dataset.take(n)]


def test_tuple_generator_is_made_endless_by_calling_the_callable_again():
    calls = []

    def data(params):
        calls.append(params)
        return batches(3)

    dataset = as_dataset(data, {"lr": 1}, batch_size=8, seed=0)
    assert first_values(dataset, 7) == [0, 1, 2, 0, 1, 2, 0]
    assert all(c == {"lr": 1} for c in calls) and len(calls) >= 3


def test_signature_is_inferred_with_an_open_batch_dimension():
    x, y = next(batches(1))
    spec = infer_signature((x, y))
    assert spec[0].shape.as_list() == [None, 3] and spec[0].dtype == tf.float32


def test_dict_generator_for_multi_input_multi_output_models():
    def data():
        for i in itertools.count():
            yield ({"image": np.ones((2, 8), "float32") * i, "meta": np.zeros((2, 1), "int64")},
                   {"digit": np.zeros((2, 10), "float32"), "even": np.ones((2, 1), "float32")})
            if i == 1:
                return

    dataset = as_dataset(data, {}, batch_size=8, seed=0)
    x, y = next(iter(dataset))
    assert set(x) == {"image", "meta"} and set(y) == {"digit", "even"}
    assert x["meta"].dtype == tf.int64
    assert first_values(dataset, 4) == [0, 1, 0, 1]


def test_lists_yielded_by_a_generator_become_tuples():
    dataset = as_dataset(lambda: ([x, y] for x, y in batches(2)), {}, batch_size=8, seed=0)
    assert isinstance(next(iter(dataset)), tuple)


def test_a_dataset_is_repeated():
    source = tf.data.Dataset.from_tensor_slices((np.arange(6.0).reshape(6, 1), np.zeros(6))).batch(3)
    dataset = as_dataset(lambda: source, {}, batch_size=8, seed=0)
    assert first_values(dataset, 5) == [0, 3, 0, 3, 0]


def test_whole_arrays_are_shuffled_with_the_seed_and_batched_by_the_params_batch_size():
    x = np.arange(10.0).reshape(10, 1)
    y = np.arange(10.0)
    data = lambda params: (x, y)  # noqa: E731
    one = as_dataset(data, {"batch_size": 5}, batch_size=2, seed=3)
    two = as_dataset(data, {"batch_size": 5}, batch_size=2, seed=3)
    xs = [b[0].numpy().ravel().tolist() for b in one.take(4)]
    assert [len(b) for b in xs] == [5, 5, 5, 5]
    assert sorted(xs[0] + xs[1]) == list(range(10))
    assert xs == [b[0].numpy().ravel().tolist() for b in two.take(4)]


def test_the_callable_may_take_params_or_nothing():
    assert call_data_fn(lambda: "none", {"a": 1}) == "none"
    assert call_data_fn(lambda params: params["a"], {"a": 1}) == 1


def test_a_generator_that_yields_nothing_is_an_error():
    with pytest.raises(DataError, match="data.train returned a generator that yielded nothing"):
        as_dataset(lambda: iter(()), {}, batch_size=8, seed=0, name="data.train")


def test_an_unusable_return_value_is_an_error():
    with pytest.raises(DataError, match="data.train returned int; return a generator of"):
        as_dataset(lambda: 3, {}, batch_size=8, seed=0, name="data.train")


def test_batches_of_python_objects_are_an_error():
    def data():
        yield np.array([{"a": 1}, None], dtype=object), np.zeros(2)

    with pytest.raises(DataError, match=r"^data\.train: a batch holds a numpy array of Python objects \(shape \(2,\)\); yield numeric or string arrays"):
        as_dataset(data, {}, batch_size=8, seed=0, name="data.train")


def passes(validation, times=2):
    """The first values of each batch's x in each of `times` passes (as_validation_dataset's: each
    from a fresh iterator, as Keras makes one each epoch)."""
    dataset, steps = validation
    return [[float(x.numpy().flat[0]) for x, *_ in dataset.take(steps)] for _ in range(times)]


def test_validation_arrays_are_read_in_order_all_of_them_every_pass():
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10.0)
    validation = as_validation_dataset(lambda params: (x, y), {"batch_size": 4}, batch_size=2, steps=None)
    assert validation[1] == 3  # 4 + 4 + 2: the last batch smaller, none left out
    assert passes(validation) == [[0, 4, 8], [0, 4, 8]]
    # validation_steps: the first batches, the same every pass; starting over where there are fewer.
    first = as_validation_dataset(lambda: (x, y), {}, batch_size=4, steps=2)
    assert passes(first) == [[0, 4], [0, 4]]
    assert passes(as_validation_dataset(lambda: (x, y), {}, batch_size=4, steps=5), 1) == [[0, 4, 8, 0, 4]]


def test_a_validation_generator_is_one_call_per_pass_and_counted():
    calls = []

    def data():
        calls.append(1)
        return batches(3)

    validation = as_validation_dataset(data, {}, batch_size=8, steps=None)
    assert validation[1] == 3  # read once to count: an epoch is as many batches
    assert passes(validation) == [[0, 1, 2], [0, 1, 2]]
    assert len(calls) == 3  # the first call's generator counted, then one call per pass
    assert passes(as_validation_dataset(lambda: batches(3), {}, batch_size=8, steps=2)) == [[0, 1], [0, 1]]


def test_a_validation_dataset_is_read_as_it_is():
    source = tf.data.Dataset.from_tensor_slices((np.arange(6.0).reshape(6, 1), np.zeros(6))).batch(4)
    assert passes(as_validation_dataset(lambda: source, {}, batch_size=8, steps=None)) == [[0, 4], [0, 4]]


def test_endless_validation_data_without_validation_steps_is_a_config_error(monkeypatch):
    source = tf.data.Dataset.from_tensor_slices((np.zeros((4, 1)), np.zeros(4))).batch(2).repeat()
    with pytest.raises(ConfigError, match=r"^my\.yaml: budget\.validation_steps is not set, which means validating on "
                       r"all of the validation data every epoch, but data\.validation = m\.py:val returns a Dataset "
                       r"that repeats for ever\. Set budget\.validation_steps to the number of batches"):
        as_validation_dataset(lambda: source, {}, batch_size=8, steps=None, ref="m.py:val", source="my.yaml")
    assert passes(as_validation_dataset(lambda: source, {}, batch_size=8, steps=3), 1) == [[0, 0, 0]]
    # A generator has no length to ask: one that yields more than COUNT_LIMIT batches is taken for endless.
    monkeypatch.setattr(data_module, "COUNT_LIMIT", 20)
    with pytest.raises(ConfigError, match=r"data\.validation = m\.py:val returns more than 20 batches, endless it "
                       r"seems\. Set budget\.validation_steps"):
        as_validation_dataset(lambda: batches(10**9), {}, batch_size=8, steps=None, ref="m.py:val", source="my.yaml")
