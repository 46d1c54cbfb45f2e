"""Search spaces, samplers and the halving schedule (kerasgrid/search/), without training."""

import math

import pytest

from kerasgrid.config import sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.search import Choice, GridSampler, Halving, RandomSampler, Range, SpaceTooSmall, parse_space, size
from kerasgrid.sweep.grid import expand_grid, trial_id
from test_config import full_config

RANGES = {
    "lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
    "units": {"low": 32, "high": 256, "step": 32},
    "dropout": {"low": 0.0, "high": 0.5},
    "act": ["relu", "swish", "tanh"],
}


def parse(grid):
    return parse_space(grid, "my.yaml")


def test_lists_are_choices_and_ranges_are_typed_by_their_bounds():
    space = parse(RANGES)
    assert space["act"] == Choice(("relu", "swish", "tanh"))
    assert space["units"] == Range(32, 256, step=32, integer=True)
    assert space["lr"] == Range(1.0e-4, 1.0e-2, log=True) and not space["lr"].finite
    assert list(space) == sorted(RANGES)  # the grid's order never matters


def test_finite_ranges_expand_to_readable_values():
    assert parse({"u": {"low": 32, "high": 256, "step": 32}})["u"].finite_values() == [32, 64, 96, 128, 160, 192, 224, 256]
    assert parse({"d": {"low": 0.0, "high": 0.5, "step": 0.1}})["d"].finite_values() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert parse({"d": {"low": 0.0, "high": 1.0, "num": 4}})["d"].finite_values() == [0.0, 0.333, 0.667, 1.0]
    assert parse({"lr": {"low": 1.0e-4, "high": 1.0e-1, "num": 4, "log": True}})["lr"].finite_values() == [0.0001, 0.001, 0.01, 0.1]
    assert parse({"n": {"low": 1, "high": 3}})["n"].finite_values() == [1, 2, 3]
    assert parse({"lr": {"low": "1e-4", "high": "1e-2", "num": 3, "log": True}})["lr"].finite_values() == [0.0001, 0.001, 0.01]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"low": 1, "hi": 2}, r"'hi' is not a key of a range\. A range takes low and high"),
        ({"low": "a", "high": 2}, r"a range needs numbers low and high"),
        ({"low": 2, "high": 1}, r"low is not below high\. Write low < high"),
        ({"low": 1, "high": 2, "step": 1, "num": 3}, r"it gives both step and num\. Give one"),
        ({"low": 1, "high": 2, "step": 0}, r"step is not a positive number"),
        ({"low": 1, "high": 2, "num": 1}, r"num is not a whole number of at least 2"),
        ({"low": 0, "high": 1, "log": True}, r"a log range needs low above 0"),
        ({"low": 1, "high": 8, "step": 1, "log": True}, r"a log range cannot have a step\. Use num"),
    ],
)
def test_bad_ranges_name_the_key_and_the_fix(spec, message):
    with pytest.raises(ConfigError, match=r"^my\.yaml: grid\.lr is \{.*\}, but " + message):
        parse({"lr": spec})


def test_a_grid_of_lists_keeps_todays_trials_and_ids():
    grid = {"lr": [0.001, "1e-3", 0.0005], "act": ["relu", "tanh"]}
    assert GridSampler().candidates(parse(grid), seed=0) == expand_grid(grid)
    sweep = sweep_from_config(full_config(grid=grid), "my.yaml")
    assert sweep.trials == expand_grid(grid) and sweep.rungs == [1] and not sweep.halving


def test_random_draws_are_seeded_distinct_and_in_range():
    space = parse(RANGES)
    draws = RandomSampler(40).candidates(space, seed=3)
    assert draws == RandomSampler(40).candidates(space, seed=3)
    assert draws != RandomSampler(40).candidates(space, seed=4)
    assert len(draws) == 40 and all(tid == trial_id(params) for tid, params in draws.items())
    for params in draws.values():
        assert 1.0e-4 <= params["lr"] <= 1.0e-2 and float(f"{params['lr']:.3g}") == params["lr"]
        assert params["units"] in range(32, 257, 32) and isinstance(params["units"], int)
        assert 0.0 <= params["dropout"] <= 0.5 and params["act"] in ("relu", "swish", "tanh")
    # Log-uniform: about as many draws per decade, not nine in ten in the top one.
    low_decade = sum(params["lr"] < 1.0e-3 for params in RandomSampler(200).candidates(space, seed=0).values())
    assert 70 <= low_decade <= 130


def test_random_draws_are_prefix_stable():
    space = parse(RANGES)
    twenty, forty = RandomSampler(20).candidates(space, 0), RandomSampler(40).candidates(space, 0)
    assert list(forty)[:20] == list(twenty) and list(RandomSampler(5).candidates(space, 0)) == list(twenty)[:5]


def test_random_skips_duplicates_and_refuses_more_trials_than_the_space_holds():
    space = parse({"act": ["relu", "tanh"], "units": [8, 16, 32]})
    assert size(space) == 6
    assert sorted(RandomSampler(6).candidates(space, seed=0)) == sorted(expand_grid({"act": ["relu", "tanh"], "units": [8, 16, 32]}))
    with pytest.raises(SpaceTooSmall, match="only 6 distinct combinations"):
        RandomSampler(7).candidates(space, seed=0)
    config = full_config(grid={"act": ["relu", "tanh"], "units": [8, 16, 32]}, search={"strategy": "random", "trials": 7})
    with pytest.raises(ConfigError, match=r"my\.yaml: search\.trials is 7, but the space holds only 6 distinct combinations\. Lower search\.trials"):
        sweep_from_config(config, "my.yaml")


def test_a_search_seed_draws_other_candidates_that_train_as_the_seed_says():
    def sweep(**search):
        return sweep_from_config(full_config(grid=RANGES, search={"strategy": "random", "trials": 20, **search}), "my.yaml")

    default, zero, one = sweep(), sweep(seed=0), sweep(seed=1)
    assert zero.trials == default.trials and "search_seed" not in default.plan()
    assert one.trials == RandomSampler(20).candidates(parse(RANGES), seed=1) != default.trials
    # Training is seeded by `seed` alone: a combination both searches draw is the same trial.
    assert one.settings() == default.settings() and one.plan()["search_seed"] == 1


def search(**kwargs):
    return {"strategy": "grid", "trials": None, **kwargs}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"grid": {"lr": {"low": 0.001, "high": 0.1}}},
         r"grid\.lr is a continuous range, which a grid search cannot enumerate\. Give it a step or num .* search: \{strategy: random, trials: N\}"),
        ({"search": search(trials=5)}, r"search\.trials is 5, but a grid search trains every combination"),
        ({"search": search(seed=1)}, r"search\.seed is 1, but a grid search draws nothing: it trains every combination\. Remove search\.seed"),
        ({"search": search(strategy="random")}, r"search\.strategy is random, but search\.trials is not set\. .*trials: 60"),
        ({"search": search(strategy="random", trials=2000)}, r"search\.trials is 2,000, more than max_trials \(1,000\)"),
        ({"grid": {f"k{i}": list(range(10)) for i in range(4)}},
         r"grid expands to 10,000 trials \(10 k0 x 10 k1 x 10 k2 x 10 k3\), more than max_trials \(1,000\)\. .*strategy: random"),
        ({"search": search(halving={"eta": 3, "min_epochs": 1})},
         r"search\.halving\.min_epochs is 1, but budget\.epochs is 1, so there is no rung before the last"),
    ],
)
def test_search_config_errors_name_file_key_and_fix(overrides, message):
    with pytest.raises(ConfigError, match=r"^my\.yaml: " + message):
        sweep_from_config(full_config(**overrides), "my.yaml")


def test_halving_rungs_grow_by_eta_and_end_at_the_budget():
    assert Halving(eta=3, min_epochs=1).rungs(27) == [1, 3, 9, 27]
    assert Halving(eta=3, min_epochs=1).rungs(10) == [1, 3, 9, 10]
    assert Halving(eta=2, min_epochs=2).rungs(10) == [2, 4, 8, 10]
    config = full_config(budget={"epochs": 27, "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 32},
                         search=search(strategy="random", trials=3, halving={"eta": 3, "min_epochs": 1}),
                         grid={"lr": {"low": 0.001, "high": 0.1, "log": True}})
    sweep = sweep_from_config(config, "my.yaml")
    assert sweep.halving and sweep.rungs == [1, 3, 9, 27] and len(sweep.trials) == 3


def record(tid, status="ok", loss=None):
    return {"trial_id": tid, "status": status, "metrics": {"loss": {"final": loss}} if loss is not None else {},
            "budget": {"epochs": 9}, "fit_seconds": 1.0, "error": None, "params": {}}


def test_promotions_keep_the_best_third_ties_by_id_never_a_failed_or_diverged_trial():
    objective = {"metric": "loss", "direction": "min"}
    entrants = [record("e", loss=0.5), record("b", loss=0.2), record("a", loss=0.2), record("d", "diverged"),
                record("f", "failed"), record("c", loss=0.9), record("g", loss=0.1)]
    assert Halving(eta=3).promote(entrants, len(entrants), objective) == ["g", "a", "b"]  # ceil(7 / 3)
    assert Halving(eta=2).promote(entrants, len(entrants), objective) == ["g", "a", "b", "e"]
    only_bad = [record("d", "diverged"), record("f", "failed"), record("c", loss=0.3)]
    assert Halving(eta=2).promote(only_bad, 3, objective) == ["c"]
    assert math.ceil(7 / 3) == Halving(eta=3).keep(7)


def test_a_wide_integer_range_is_sized_and_sampled_without_listing_it():
    space = parse({"seed": {"low": 1, "high": 10**9}, "units": {"low": 32, "high": 256, "step": 32}})
    assert size(space) == 10**9 * 8
    draws = RandomSampler(50).candidates(space, seed=0)
    assert len(draws) == 50 and all(1 <= p["seed"] <= 10**9 and p["units"] in range(32, 257, 32) for p in draws.values())
    with pytest.raises(ConfigError, match=r"grid expands to 8,000,000,000 trials \(1,000,000,000 seed x 8 units\)"):
        sweep_from_config(full_config(grid={"seed": {"low": 1, "high": 10**9}, "units": [1, 2, 3, 4, 5, 6, 7, 8]}), "my.yaml")
