import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import data_streams
from kerasgrid.errors import ConfigError, DataError
from kerasgrid.trial import data
from kerasgrid.trial.data import as_dataset, call_data_fn, for_fit, infer_signature, train_batches, validation_passes
from kerasgrid.trial.data import validation as validation_module

TESTS = Path(__file__).resolve().parent


def batches(n_batches, batch=4, features=3):
    for i in range(n_batches):
        x = np.full((batch, features), i, dtype="float32")
        yield x, np.full((batch, 1), i, dtype="float32")


def first_values(stream, n, part=0):
    """The first value of each of the first n batches' part `part` of a NumPy stream."""
    return [float(data.structure.flatten(element[part])[0].flat[0]) for element in itertools.islice(stream, n)]


def both_forms(make, n, start=0):
    """The first n batches of the training batches `make()` gives (from batch `start`) as
    TensorFlow's form and as JAX's receive them (each form from its own, as in a trial), checked
    equal array by array; the NumPy ones."""
    given_tf = for_fit(make(), None, "tensorflow", start)["train"].take(n).as_numpy_iterator()
    tf_batches = [data.structure.flatten(b) for b in given_tf]
    numpy_batches = list(itertools.islice(for_fit(make(), None, "jax", start)["train"], n))
    assert len(tf_batches) == len(numpy_batches) == n
    for one, other in zip(tf_batches, numpy_batches):
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(one, data.structure.flatten(other),
                                                                                strict=True))
    return numpy_batches


def test_tuple_generator_is_made_endless_by_calling_the_callable_again():
    calls = []

    def source(params):
        calls.append(params)
        return batches(3)

    stream = train_batches(source, {"lr": 1}, batch_size=8, seed=0).numpy()
    assert first_values(stream, 7) == [0, 1, 2, 0, 1, 2, 0]
    assert all(c == {"lr": 1} for c in calls) and len(calls) >= 3
    assert first_values(as_dataset(source, {}, batch_size=8, seed=0).as_numpy_iterator(), 4) == [0, 1, 2, 0]


def test_signature_is_inferred_with_an_open_batch_dimension():
    x, y = next(batches(1))
    spec = infer_signature((x, y))
    assert spec[0].shape == (None, 3) and spec[0].dtype == "float32"
    text = infer_signature((np.array(["a", "bc"]), np.array([b"x", b"y"]), np.zeros(2, "int64")))
    assert [part.dtype for part in text] == ["string", "string", "int64"] and text[2].shape == (None,)


def test_dict_generator_for_multi_input_multi_output_models():
    def source():
        for i in itertools.count():
            yield ({"image": np.ones((2, 8), "float32") * i, "meta": np.zeros((2, 1), "int64")},
                   {"digit": np.zeros((2, 10), "float32"), "even": np.ones((2, 1), "float32")})
            if i == 1:
                return

    stream = train_batches(source, {}, batch_size=8, seed=0)
    x, y = both_forms(lambda: stream, 1)[0]
    assert set(x) == {"image", "meta"} and set(y) == {"digit", "even"}
    assert x["meta"].dtype == np.int64
    assert [float(b[0]["image"][0, 0]) for b in itertools.islice(stream.numpy(), 4)] == [0, 1, 0, 1]


def test_lists_yielded_by_a_generator_become_tuples():
    stream = train_batches(lambda: ([x, y] for x, y in batches(2)), {}, batch_size=8, seed=0)
    assert isinstance(next(stream.numpy()), tuple)
    assert isinstance(next(iter(for_fit(stream, None, "tensorflow")["train"])), tuple)


def test_a_dataset_is_repeated():
    source = tf.data.Dataset.from_tensor_slices((np.arange(6.0).reshape(6, 1), np.zeros(6))).batch(3)
    stream = train_batches(lambda: source, {}, batch_size=8, seed=0)
    assert first_values(stream.numpy(), 5) == [0, 3, 0, 3, 0]
    both_forms(lambda: stream, 5)


def test_whole_arrays_are_shuffled_each_pass_by_a_seeded_numpy_permutation_and_batched():
    x = np.arange(10.0).reshape(10, 1)
    y = np.arange(10.0)
    stream = train_batches(lambda params: (x, y), {"batch_size": 4}, batch_size=2, seed=3)
    rows = [b[0].ravel().astype(int).tolist() for b in both_forms(lambda: stream, 7)]
    # Passes of 4 + 4 + 2 (the last batch of each pass smaller), each in its own seeded order.
    assert [len(r) for r in rows] == [4, 4, 2, 4, 4, 2, 4]
    for pass_index, pass_rows in enumerate([rows[:3], rows[3:6]]):
        order = np.random.default_rng([3, pass_index]).permutation(10).tolist()
        assert sum(pass_rows, []) == order
    assert sum(rows[:3], []) != sum(rows[3:6], [])
    # Another seed, another order; sample weights and dicts are cut alike.
    assert [b[0].ravel().tolist() for b in itertools.islice(
        train_batches(lambda: (x, y), {}, batch_size=4, seed=4).numpy(), 3)] != rows[:3]
    w = np.arange(10.0) * 2
    x2, y2, w2 = next(train_batches(lambda: ({"a": x}, y, w), {}, batch_size=4, seed=3).numpy())
    assert np.array_equal(x2["a"].ravel(), y2) and np.array_equal(w2, y2 * 2)


@pytest.mark.parametrize("kind", ["arrays", "generator", "dataset"])
def test_a_stream_started_at_a_batch_continues_exactly_there(kind):
    """A resumed trial's data: from batch `start` on, the batches a stream from the start gives
    there, in both forms (whole arrays compute the position; a generator's batches are read)."""
    def stream():  # the sources of the cross-backend test
        import keras

        keras.utils.set_random_seed(0)
        return train_batches(data_streams.TRAIN[kind], {}, batch_size=40, seed=0)

    whole = both_forms(stream, 11)
    resumed = both_forms(stream, 4, start=7)
    for one, other in zip(whole[7:], resumed, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(data.structure.flatten(one), data.structure.flatten(other)))


def test_the_callable_may_take_params_or_nothing():
    assert call_data_fn(lambda: "none", {"a": 1}) == "none"
    assert call_data_fn(lambda params: params["a"], {"a": 1}) == 1


def test_a_generator_that_yields_nothing_is_an_error():
    with pytest.raises(DataError, match="data.train returned a generator that yielded nothing"):
        train_batches(lambda: iter(()), {}, batch_size=8, seed=0, name="data.train")


def test_an_unusable_return_value_is_an_error():
    with pytest.raises(DataError, match="data.train returned int; return a generator of"):
        train_batches(lambda: 3, {}, batch_size=8, seed=0, name="data.train")


def test_arrays_of_different_lengths_are_an_error():
    with pytest.raises(DataError, match=r"^data\.train: the arrays hold different numbers of examples: \[3, 4\]"):
        train_batches(lambda: (np.zeros((4, 1)), np.zeros(3)), {}, batch_size=8, seed=0, name="data.train")


def test_batches_of_python_objects_are_an_error():
    def source():
        yield np.array([{"a": 1}, None], dtype=object), np.zeros(2)

    with pytest.raises(DataError, match=r"^data\.train: a batch holds a numpy array of Python objects \(shape \(2,\)\); yield numeric or string arrays"):
        train_batches(source, {}, batch_size=8, seed=0, name="data.train")


def passes(validation, times=2):
    """The first values of each batch's x in each of `times` passes, as fit on TensorFlow (each
    pass from a fresh iterator, as Keras makes one each epoch) and on JAX (a PyDataset read from its
    first batch) receive them, checked equal."""
    forms = {backend: for_fit(train_batches(lambda: batches(1), {}, batch_size=8, seed=0), validation, backend)
             for backend in ("tensorflow", "jax")}
    steps = validation.steps
    tf_passes = [[float(x.flat[0]) for x, *_ in forms["tensorflow"]["validation"].take(steps).as_numpy_iterator()]
                 for _ in range(times)]
    sequence = forms["jax"]["validation"]
    assert len(sequence) == steps == forms["jax"]["validation_steps"] == forms["tensorflow"]["validation_steps"]
    numpy_passes = [[float(sequence[i][0].flat[0]) for i in range(steps)] for _ in range(times)]
    assert tf_passes == numpy_passes
    return numpy_passes


def test_validation_arrays_are_read_in_order_all_of_them_every_pass():
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10.0)
    validation = validation_passes(lambda params: (x, y), {"batch_size": 4}, batch_size=2, steps=None)
    assert validation.steps == 3  # 4 + 4 + 2: the last batch smaller, none left out
    assert passes(validation) == [[0, 4, 8], [0, 4, 8]]
    # validation_steps: the first batches, the same every pass; starting over where there are fewer.
    first = validation_passes(lambda: (x, y), {}, batch_size=4, steps=2)
    assert passes(first) == [[0, 4], [0, 4]]
    assert passes(validation_passes(lambda: (x, y), {}, batch_size=4, steps=5), 1) == [[0, 4, 8, 0, 4]]


def test_a_validation_generator_is_one_call_per_pass_and_counted():
    calls = []

    def source():
        calls.append(1)
        return batches(3)

    validation = validation_passes(source, {}, batch_size=8, steps=None)
    assert validation.steps == 3  # read once to count: an epoch is as many batches
    assert passes(validation) == [[0, 1, 2], [0, 1, 2]]
    assert len(calls) == 1 + 2 * 2  # the first call's generator counted, then one call per pass in each form
    assert passes(validation_passes(lambda: batches(3), {}, batch_size=8, steps=2)) == [[0, 1], [0, 1]]
    assert passes(validation_passes(lambda: batches(3), {}, batch_size=8, steps=5), 1) == [[0, 1, 2, 0, 1]]


def test_a_validation_dataset_is_read_as_it_is():
    source = tf.data.Dataset.from_tensor_slices((np.arange(6.0).reshape(6, 1), np.zeros(6))).batch(4)
    assert passes(validation_passes(lambda: source, {}, batch_size=8, steps=None)) == [[0, 4], [0, 4]]


def test_endless_validation_data_without_validation_steps_is_a_config_error(monkeypatch):
    source = tf.data.Dataset.from_tensor_slices((np.zeros((4, 1)), np.zeros(4))).batch(2).repeat()
    with pytest.raises(ConfigError, match=r"^my\.yaml: budget\.validation_steps is not set, which means validating on "
                       r"all of the validation data every epoch, but data\.validation = m\.py:val returns a Dataset "
                       r"that repeats for ever\. Set budget\.validation_steps to the number of batches"):
        validation_passes(lambda: source, {}, batch_size=8, steps=None, ref="m.py:val", source="my.yaml")
    assert passes(validation_passes(lambda: source, {}, batch_size=8, steps=3), 1) == [[0, 0, 0]]
    # A generator has no length to ask: one that yields more than COUNT_LIMIT batches is taken for endless.
    monkeypatch.setattr(validation_module, "COUNT_LIMIT", 20)
    with pytest.raises(ConfigError, match=r"data\.validation = m\.py:val returns more than 20 batches, endless it "
                       r"seems\. Set budget\.validation_steps"):
        validation_passes(lambda: batches(10**9), {}, batch_size=8, steps=None, ref="m.py:val", source="my.yaml")


def run_on_jax(code: str, *, without_tensorflow: bool = False) -> subprocess.CompletedProcess:
    """`code` in a fresh Python on Keras' JAX backend (where TensorFlow cannot be imported, if asked)."""
    prefix = "import sys; sys.modules['tensorflow'] = None; " if without_tensorflow else ""
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", prefix + code], cwd=TESTS, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def assert_same_as_here(path, kinds, **keywords):
    saved = np.load(path)
    for kind in kinds:
        here = data_streams.flattened(kind, **keywords)
        theirs = {key: saved[key] for key in saved.files if key.startswith(f"{kind}/")}
        assert sorted(theirs) == sorted(here)
        for key, array in here.items():
            assert np.array_equal(theirs[key], array) and theirs[key].dtype == array.dtype, key


@pytest.mark.parametrize("steps", [None, 5])
def test_fit_on_jax_receives_the_batches_fit_on_tensorflow_does(tmp_path, steps):
    """Ten training batches across pass boundaries and two validation passes of each kind of data,
    as fit on JAX receives them (NumPy, in another process) and fit on TensorFlow (tf.data, here):
    the same arrays."""
    kinds = ["arrays", "generator", "dataset"]
    run_on_jax(f"import data_streams; data_streams.dump({kinds!r}, {str(tmp_path / 'jax.npz')!r}, steps={steps})")
    assert_same_as_here(tmp_path / "jax.npz", kinds, steps=steps)


def test_arrays_and_generators_need_no_tensorflow(tmp_path):
    code = ("import data_streams, keras, json; "
            f"data_streams.dump(['arrays', 'generator'], {str(tmp_path / 'batches.npz')!r}, steps=5); "
            "print(json.dumps([keras.backend.backend(), sorted(m for m in sys.modules if m.startswith('tensorflow') "
            "and sys.modules[m] is not None)]))")
    result = run_on_jax(code, without_tensorflow=True)
    assert json.loads(result.stdout.splitlines()[-1]) == ["jax", []]
    assert_same_as_here(tmp_path / "batches.npz", ["arrays", "generator"], steps=5)
