import re

from kerasgrid.sweep.grid import canonical, count_trials, expand_grid, normalise_value, trial_id

GRID = {"lr": [0.001, 0.0005], "loss": ["mean_squared_error"], "act_in": ["relu", "swish", "tanh"], "act_out": ["tanh", "sigmoid"]}


def test_expand_grid_makes_one_trial_per_combination():
    trials = expand_grid(GRID)
    assert len(trials) == 12 == count_trials(GRID)
    assert {"lr": 0.0005, "loss": "mean_squared_error", "act_in": "swish", "act_out": "tanh"} in trials.values()


def test_trial_ids_do_not_depend_on_key_or_value_order():
    reordered = {"act_out": ["sigmoid", "tanh"], "act_in": ["tanh", "relu", "swish"], "loss": ["mean_squared_error"], "lr": [0.0005, 0.001]}
    assert set(expand_grid(reordered)) == set(expand_grid(GRID))


def test_growing_the_grid_keeps_existing_ids():
    grown = dict(GRID, lr=[0.001, 0.0005, 0.01])
    old, new = expand_grid(GRID), expand_grid(grown)
    assert set(old) < set(new)
    assert len(new) - len(old) == 6
    assert all(new[tid] == params for tid, params in old.items())


def test_exponent_spellings_are_the_same_float_trial():
    # PyYAML reads 1e-3 as a string; it must be the float 0.001 like 0.001 and 1.0e-3.
    assert normalise_value("1e-3") == 0.001 and isinstance(normalise_value("1e-3"), float)
    assert trial_id({"lr": normalise_value("1e-3")}) == trial_id({"lr": 0.001})
    assert expand_grid({"lr": ["1e-3", 0.001, 1.0e-3]}) == {trial_id({"lr": 0.001}): {"lr": 0.001}}


def test_ints_floats_and_booleans_stay_distinct():
    ids = {trial_id({"units": v}) for v in (1, 1.0, True, "1", None)}
    assert len(ids) == 5
    assert canonical({"b": 1, "a": [1.0, None]}) == '{"a":[1.0,null],"b":1}'


def test_ids_are_path_safe_for_hostile_values():
    hostile = ["../../etc", "a/b", "with space", "quo'te\"s", "$(rm -rf /); `x`", "ünï©ødé", "x" * 5000, True, None, [1, [2, 3]], {"k": "v"}]
    trials = expand_grid({"value": hostile})
    assert len(trials) == len(hostile)
    assert all(re.fullmatch(r"[0-9a-f]{12}", tid) for tid in trials)
    assert [p["value"] for p in trials.values()] == hostile


def test_strings_that_merely_contain_digits_stay_strings():
    for text in ("1e", "e5", "1.5", "1_000", "v1e3", "1e-3x"):
        assert normalise_value(text) == text
