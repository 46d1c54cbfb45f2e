"""Conditional hyperparameters (`choose`, kerasgrid/sweep/space.py): parsing and its errors, the
candidates of every strategy, ids that hold only a trial's keys, the importance and the plots'
axes; and end to end with real Snakemake, a nested choice under grid, random with halving, and
TPE, where adding a branch retrains nothing."""

import json
import math

import numpy as np
import pytest

from conftest import REPO
from kerasgrid.cli import summary_rows
from kerasgrid.config import check, load_schema, sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.project import describe
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.search import (Branches, GridSampler, NSGA2Sampler, Observation, RandomSampler, TPESampler,
                              describe_space, parse_space, size)
from kerasgrid.search.importance import Observed, importances, table_text
from kerasgrid.search.optuna_space import rebuild_study, to_optuna, trial_distributions
from kerasgrid.search.rounds import min_points, round_seed
from kerasgrid.sweep.space import always, branch_keys, representatives, sample
from kerasgrid.sweep.grid import expand_grid, trial_id
from test_config import full_config
from test_tpe import printed_under_two_hash_seeds

# The issue's example: 2 x (3 + 4) = 14 combinations.
ISSUE = {
    "units": [32, 64],
    "optimizer": {"choose": {
        "adam": {"lr": {"low": 1.0e-4, "high": 1.0e-2, "num": 3, "log": True}},
        "sgd": {"lr": [0.1, 0.01], "momentum": [0.0, 0.9]},
    }},
}
# A nested choice, an empty branch, and a continuous range inside a branch (random and TPE only).
NESTED = {
    "units": [16, 32],
    "optimizer": {"choose": {
        "adam": {"lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True}},
        "sgd": {"lr": [0.1, 0.01], "momentum": [0.0, 0.9],
                "schedule": {"choose": {"step": {"drop": [0.1, 0.5]}, "none": {}}}},
    }},
}
KEYS = {"adam": {"units", "optimizer", "lr"}, "sgd": {"units", "optimizer", "lr", "momentum", "schedule"}}


def parse(grid):
    return parse_space(grid, "my.yaml")


def well_formed(params) -> bool:
    """Exactly the keys of the branches a trial took: none of another branch's, none None."""
    expected = KEYS[params["optimizer"]] | ({"drop"} if params.get("schedule") == "step" else set())
    return set(params) == expected and None not in params.values()


def test_the_issues_grid_holds_14_trials_each_with_its_branchs_keys_only():
    space = parse(ISSUE)
    assert isinstance(space["optimizer"], Branches) and size(space) == 14
    trials = GridSampler().candidates(space, 0)
    assert len(trials) == 14 and all(tid == trial_id(params) for tid, params in trials.items())
    assert sum(p["optimizer"] == "adam" for p in trials.values()) == 6
    assert {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "units": 64} in trials.values()
    assert all("momentum" not in p for p in trials.values() if p["optimizer"] == "adam")
    # Keys sorted, branches by name, values as written: the order is the config's, whatever its order.
    assert list(trials.values())[:2] == [{"lr": 0.0001, "optimizer": "adam", "units": 32},
                                         {"lr": 0.0001, "optimizer": "adam", "units": 64}]
    shuffled = {"optimizer": {"choose": dict(reversed(ISSUE["optimizer"]["choose"].items()))}, "units": [32, 64]}
    assert list(GridSampler().candidates(parse(shuffled), 0)) == list(trials)


def test_a_nested_choice_and_an_empty_branch_enumerate_every_branch():
    grid = {**NESTED, "optimizer": {"choose": {**NESTED["optimizer"]["choose"], "adam": {"lr": [0.001]}}}}
    trials = GridSampler().candidates(parse(grid), 0)
    # units 2 x (adam 1 + sgd 2 lr x 2 momentum x (step 2 + none 1)) = 2 x 13
    assert len(trials) == size(parse(grid)) == 26 and all(well_formed(p) for p in trials.values())
    assert sum(p.get("schedule") == "none" for p in trials.values()) == 8


def test_kerasgrid_check_builds_a_combination_of_each_branch_the_grids_first_first():
    space = parse(NESTED)  # the continuous lr of adam: its low end
    assert representatives(space) == [
        {"lr": 0.0001, "optimizer": "adam", "units": 16},
        {"lr": 0.1, "momentum": 0.0, "optimizer": "sgd", "schedule": "none", "units": 16},
        {"drop": 0.1, "lr": 0.1, "momentum": 0.0, "optimizer": "sgd", "schedule": "step", "units": 16},
    ]
    assert representatives(parse(ISSUE))[0] == next(iter(GridSampler().candidates(parse(ISSUE), 0).values()))
    assert representatives(parse({"units": ["8", 32], "act": ["relu"]})) == [{"act": "relu", "units": "8"}]


def test_a_grid_without_choose_keeps_todays_ids_and_order():
    grid = {"lr": [0.001, 0.01], "act": ["relu", "tanh"], "units": {"low": 16, "high": 48, "step": 16}}
    space = parse(grid)
    assert list(GridSampler().candidates(space, 0).items()) == list(expand_grid(
        {key: dim.finite_values() for key, dim in space.items()}).items())


def test_adding_a_branch_or_a_value_to_another_branch_keeps_every_id():
    before = GridSampler().candidates(parse(ISSUE), 0)
    grown = json.loads(json.dumps(ISSUE))
    grown["optimizer"]["choose"]["rmsprop"] = {"rho": [0.9, 0.99]}
    grown["optimizer"]["choose"]["sgd"]["momentum"].append(0.5)
    after = GridSampler().candidates(parse(grown), 0)
    assert set(before) < set(after) and len(after) == 14 + 4 + 4
    assert all(after[tid] == params for tid, params in before.items())


def test_random_draws_a_branch_uniformly_then_its_keys_seeded_and_distinct():
    space = parse(NESTED)
    drawn = RandomSampler(40).candidates(space, 3)
    assert len(drawn) == 40 and all(well_formed(p) and trial_id(p) == tid for tid, p in drawn.items())
    assert drawn == RandomSampler(40).candidates(space, 3) and drawn != RandomSampler(40).candidates(space, 4)
    assert list(RandomSampler(10).candidates(space, 3).items()) == list(drawn.items())[:10]
    rng = np.random.default_rng(0)
    adam = sum(sample(space, rng)["optimizer"] == "adam" for _ in range(2000))
    assert 900 < adam < 1100  # a branch is drawn uniformly, not in proportion to its size
    lrs = [p["lr"] for p in drawn.values() if p["optimizer"] == "adam"]
    assert lrs and all(1e-4 <= lr <= 1e-2 for lr in lrs)


def test_random_draws_of_a_space_without_choose_are_todays():
    space = parse({"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "act": ["relu", "tanh"]})
    rng = np.random.default_rng(5)
    expected = [{key: dim.sample(rng) for key, dim in space.items()} for _ in range(5)]
    assert list(RandomSampler(5).candidates(space, 5).values()) == expected


def loss(params) -> float:
    """Least for sgd with momentum 0.9, lr 0.1 and no schedule; adam's best is worse."""
    if params["optimizer"] == "adam":
        return 1.0 + abs(math.log10(params["lr"]) + 3)
    return (0.9 - params["momentum"]) + (0.1 - params["lr"]) + params.get("drop", 0.0) + params["units"] / 1000


def told(sampler, space, rounds, batch, seed=0):
    history = []
    for index in range(rounds):
        for tid, params in sampler.propose(space, history, batch, round_seed(seed, index), "min").items():
            history.append(Observation(tid, params, "ok", loss(params), round=index))
    return history


def test_tpe_asks_a_branchs_keys_only_when_it_picks_the_branch():
    space = parse(NESTED)
    history = told(TPESampler(), space, rounds=6, batch=4)
    assert len({o.trial_id for o in history}) == 24 and all(well_formed(o.params) for o in history)
    study = rebuild_study(space, history, "min", None)
    for trial, observation in zip(study.trials, history):
        # Define-by-run: the study holds a trial's own keys, a branch's named by its branch path.
        assert set(trial.params) == set(trial_distributions(space, observation.params))
        assert ("optimizer=sgd/momentum" in trial.params) == (observation.params["optimizer"] == "sgd")
        assert ("optimizer=sgd/schedule=step/drop" in trial.params) == ("drop" in observation.params)
    names = {name for trial in study.trials for name in trial.params}
    # lr of adam (a continuous log range) and of sgd (a list) are two params of the study, not one clash.
    assert {"optimizer=adam/lr", "optimizer=sgd/lr", "optimizer", "units"} <= names
    # Every branch is asked, the nested one's both branches too.
    assert {(o.params["optimizer"], o.params.get("schedule")) for o in history} == {
        ("adam", None), ("sgd", "step"), ("sgd", "none")}


def test_tpe_proposals_of_a_conditional_space_are_a_function_of_history_and_seed():
    space = parse(NESTED)
    first = [o.trial_id for o in told(TPESampler(), space, rounds=4, batch=3)]
    assert first == [o.trial_id for o in told(TPESampler(), space, rounds=4, batch=3)]
    assert first != [o.trial_id for o in told(TPESampler(), space, rounds=4, batch=3, seed=1)]
    outputs = printed_under_two_hash_seeds(
        "from test_conditional import NESTED, parse, told\nfrom kerasgrid.search import TPESampler\n"
        "print([o.trial_id for o in told(TPESampler(), parse(NESTED), rounds=4, batch=3)])")
    assert len(outputs) == 1 and len(outputs.pop()) > 100


def test_nsga2_proposes_from_a_conditional_space_too():
    history = told(NSGA2Sampler(4), parse(NESTED), rounds=4, batch=3)
    assert len({o.trial_id for o in history}) == 12 and all(well_formed(o.params) for o in history)


def test_a_params_round_trip_to_optuna_names_each_branch_key_by_its_path():
    space = parse(NESTED)
    params = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "schedule": "step", "drop": 0.5, "units": 16}
    assert to_optuna(space, params) == {"optimizer": "sgd", "optimizer=sgd/lr": 0, "optimizer=sgd/momentum": 1,
                                        "optimizer=sgd/schedule": "step", "optimizer=sgd/schedule=step/drop": 1,
                                        "units": 0}
    assert min_points(space) == 6 + 3  # each key once: units, optimizer, lr (of two branches), momentum, schedule, drop


def test_describe_space_writes_the_choice_back_and_the_keys_of_branches_are_known():
    space = parse(NESTED)
    assert parse(describe_space(space)) == parse(describe_space(parse(describe_space(space))))
    assert describe_space(space)["optimizer"]["choose"]["sgd"]["schedule"] == {"choose": {"none": {}, "step": {"drop": [0.1, 0.5]}}}
    assert branch_keys(space) == {"lr": ["adam", "sgd"], "momentum": ["sgd"], "schedule": ["sgd"], "drop": ["sgd/step"]}
    assert set(always(space)) == {"optimizer", "units", "lr"}


def config(grid, **overrides):
    return {**full_config(), "grid": grid, **overrides}


def test_the_config_takes_a_choice_lists_every_key_and_kerasgrid_check_counts_14(monkeypatch):
    monkeypatch.chdir(REPO)
    conf = config(ISSUE)
    check(conf, load_schema(REPO / "workflow/schemas/config.schema.yaml"), "my.yaml")
    sweep = sweep_from_config(conf, "my.yaml")
    assert len(sweep.trials) == 14 and set(sweep.grid_keys) == {"units", "optimizer", "lr", "momentum"}
    found = dict(describe(sweep))["search"]
    assert "14 candidates (7 optimizer (adam 3 + sgd 4) x 2 units)" in found


def chosen(branches):
    return {"units": [1], "optimizer": {"choose": branches}}


@pytest.mark.parametrize("grid, message", [
    (chosen({}), "my.yaml: grid.optimizer.choose is {}, but a choice needs at least one named branch"),
    (chosen([]), "my.yaml: grid.optimizer.choose is [], but a choice needs at least one named branch"),
    (chosen({1: {}, "b": {}}), "grid.optimizer.choose has a branch named 1 (int), but a branch's name is what the "
                                "model receives as params['optimizer'] and must be a string"),
    (chosen({True: {}}), "Quote it: 'true': {...}."),
    (chosen({"a": {"units": [2]}}), "my.yaml: grid.optimizer.choose.a.units clashes with grid.units: both would give "
                                   "a trial the key 'units'"),
    (chosen({"a": {"optimizer": ["x"]}}), "my.yaml: grid.optimizer.choose.a.optimizer has the name of its choice, "
                                         "optimizer, whose value in a trial is the branch's name ('a'). Rename"),
    (chosen({"a": {"m": 0.9}}), "my.yaml: grid.optimizer.choose.a.m is 0.9, but every grid value must be a non-empty list"),
    (chosen({"a": [1, 2]}), "my.yaml: grid.optimizer.choose.a is [1, 2], but a branch is a sub-grid"),
    (chosen({"a": {"m": {"low": 1, "high": 0}}}), "my.yaml: grid.optimizer.choose.a.m is {\"low\": 1, \"high\": 0}, "
                                                 "but low is not below high"),
    ({"units": [1], "optimizer": {"choose": {"a": {}}, "lr": [1]}}, "my.yaml: grid.optimizer has 'lr' beside choose"),
    ({"a": {"choose": {"x": {"m": [1]}}}, "b": {"choose": {"y": {"m": [2]}}}},
     "my.yaml: grid.b.choose.y.m clashes with grid.a.choose.x.m: both would give a trial the key 'm'"),
    (chosen({"a": {"lr": {"low": 0.1, "high": 1.0}}}), "my.yaml: grid.optimizer.choose.a.lr is a continuous range, "
                                                       "which a grid search cannot enumerate"),
])
def test_a_malformed_choice_is_one_paragraph_naming_file_key_path_and_fix(monkeypatch, grid, message):
    monkeypatch.chdir(REPO)
    conf = config(grid)
    with pytest.raises(ConfigError) as error:
        check(conf, load_schema(REPO / "workflow/schemas/config.schema.yaml"), "my.yaml")
        sweep_from_config(conf, "my.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_importance_measures_the_keys_every_trial_has_and_says_why_not_a_branchs():
    space = parse(ISSUE)
    trials = GridSampler().candidates(parse(ISSUE), 0)
    observed = [Observed(tid, params, [loss({**params, "drop": 0.0})]) for tid, params in trials.items()]
    result = importances(observed, [{"metric": "val_loss", "direction": "min"}], space, seed=0)
    assert result.reason is None and result.scores["optimizer"][0] > 0.5
    assert result.scores["momentum"] == [None] and result.scores["lr"] == [None]
    table = table_text(result)
    assert "momentum is a key of the branches sgd of optimizer, not of every trial: not measured on its own" in table
    assert "lr is a key of the branches adam, sgd of optimizer" in table


def test_the_plots_take_a_branchs_range_on_its_axis_and_name_its_branch():
    from kerasgrid.results.plots import _axes

    ranges, partial = _axes(describe_space(parse(NESTED)))
    assert ranges == {"lr": {"log": True}} or "lr" not in ranges  # lr is a list in sgd: categories
    assert partial == {"momentum": ["sgd"], "schedule": ["sgd"], "drop": ["sgd/step"]}
    only_adam = {"optimizer": {"choose": {"adam": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "sgd": {}}}}
    assert _axes(describe_space(parse(only_adam))) == ({"lr": {"log": True}}, {"lr": ["adam"]})


# End to end: a model that checks it receives exactly its branch's keys, and whose loss is known.
CONDITIONAL_MODEL = """
import keras
import numpy as np

KEYS = {"adam": {"optimizer", "lr", "units"}, "sgd": {"optimizer", "lr", "momentum", "schedule", "units"}}


def loss(params):
    if params["optimizer"] == "adam":
        return 0.5 + params["lr"]
    return params["lr"] + (0.9 - params["momentum"]) + params.get("drop", 0.0) + params["units"] / 100


def build_model(params):
    expected = KEYS[params["optimizer"]] | ({"drop"} if params.get("schedule") == "step" else set())
    if set(params) != expected or None in params.values():
        raise RuntimeError(f"got {sorted(params)}, expected {sorted(expected)}")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(loss(params) ** 0.5))])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


def data(params):
    yield np.zeros((4, 1), dtype="float32"), np.zeros((4, 1), dtype="float32")
"""
E2E_GRID = {
    "units": [1],
    "optimizer": {"choose": {
        "adam": {"lr": [0.01]},
        "sgd": {"lr": [0.1], "momentum": [0.0, 0.9], "schedule": {"choose": {"step": {"drop": [0.1, 0.2]}, "none": {}}}},
    }},
}


def e2e_config(grid=E2E_GRID, **search):
    return {
        "model": "cond.py:build_model",
        "data": {"train": "cond.py:data"},
        "budget": {"epochs": 1, "steps_per_epoch": 1},
        "grid": grid,
        **({"search": search} if search else {}),
    }


@pytest.fixture
def conditional(workflow):
    workflow.path("cond.py").write_text(CONDITIONAL_MODEL, encoding="utf-8")
    return workflow


def ranked(workflow) -> list[dict]:
    return read_leaderboard(workflow.path("results/leaderboard.tsv"))


def test_a_nested_grid_trains_every_branch_ranks_with_absent_keys_and_adding_a_branch_retrains_nothing(conditional):
    conditional.sweep(e2e_config())
    rows = ranked(conditional)
    # adam 1 + sgd 2 momentum x (step 2 + none 1) = 7 trials, every one ok: each got its keys only.
    assert len(rows) == 7 and {row["status"] for row in rows} == {"ok"}
    best = rows[0]
    assert (best["optimizer"], best["momentum"], best["schedule"], best["drop"]) == ("sgd", "0.9", "none", "n/a")
    adam = next(row for row in rows if row["optimizer"] == "adam")
    assert adam["momentum"] == adam["schedule"] == adam["drop"] == "n/a" and adam["lr"] == "0.01"  # one lr column
    for name in ("param_effects.png", "importance.png"):
        assert conditional.path(f"results/plots/{name}").stat().st_size > 0
    assert "optimizer is a key" not in conditional.path("results/importance.tsv").read_text()
    assert "drop is a key of the branches sgd/step of optimizer" in conditional.path("results/importance.tsv").read_text()

    before = conditional.snapshot()
    grown = json.loads(json.dumps(E2E_GRID))
    grown["optimizer"]["choose"]["rmsprop"] = {}
    conditional.write_config(e2e_config(grown))
    assert conditional.plan(e2e_config(grown))["train"] and len(conditional.plan(e2e_config(grown))["train"]) == 1
    conditional.sweep(e2e_config(grown))
    after = conditional.snapshot()
    assert {path: value for path, value in after.items() if path in before} == before  # nothing retrained
    assert len(ranked(conditional)) == 8


def test_random_with_halving_over_a_nested_choice(conditional):
    grid = {**E2E_GRID, "units": [1, 2, 3]}
    config = e2e_config(grid, strategy="random", trials=9, halving={"eta": 3, "min_epochs": 1, "brackets": 1})
    config["budget"]["epochs"] = 3
    conditional.sweep(config)
    rows = ranked(conditional)
    assert len(rows) == 9 and {row["status"] for row in rows} == {"ok"}
    assert [row["rung"] for row in rows].count("1") == 3  # a third went on to the full budget
    assert rows[0]["optimizer"] == "sgd" and rows[0]["momentum"] == "0.9"


def test_tpe_over_a_nested_choice_proposes_define_by_run_in_rounds(conditional):
    grid = {**E2E_GRID, "units": [1, 2, 3], "optimizer": {"choose": {
        **E2E_GRID["optimizer"]["choose"], "adam": {"lr": {"low": 0.001, "high": 0.1, "log": True}}}}}
    config = e2e_config(grid, strategy="tpe", trials=6, batch=3)
    conditional.sweep(config)
    rows = ranked(conditional)
    assert len(rows) == 6 and {row["status"] for row in rows} == {"ok"}
    rounds = [json.loads(conditional.path(f"results/rounds/{i}.json").read_text()) for i in (0, 1)]
    assert [len(r["proposals"]) for r in rounds] == [3, 3] and len(rounds[1]["told"]) == 3
    for entry in rounds[0]["proposals"] + rounds[1]["proposals"]:
        params = entry["params"]
        assert entry["trial_id"] == trial_id(params)
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
    again = conditional.sweep(config)
    assert "Nothing to be done" in again.output


def test_nsga2_with_two_objectives_and_repeats_over_a_nested_choice(conditional):
    # The strategies' last, with what "works unchanged" promises: several objectives and seeds.
    config = e2e_config(strategy="nsga2", trials=6, batch=3, population=3)
    config["objective"] = [{"metric": "loss"}, {"metric": "params_count"}]
    config["repeats"] = 2
    result = conditional.sweep(config)
    rows = ranked(conditional)
    assert len(rows) == 6 and {row["status"] for row in rows} == {"ok"} and {row["seeds"] for row in rows} == {"2"}
    for row in rows:
        assert (row["momentum"] != "n/a") == (row["optimizer"] == "sgd")  # n/a where the branch has no such key
        assert (row["drop"] != "n/a") == (row["schedule"] == "step")
    assert summary_rows(conditional.path("results")) == rows  # `kerasgrid summary`: rounds, fronts, seeds
    assert "pareto_rank" in rows[0] and "Best params found: {" in result.output
    rounds = [json.loads(conditional.path(f"results/rounds/{i}.json").read_text()) for i in (0, 1)]
    assert all(entry["trial_id"] == trial_id(entry["params"]) for r in rounds for entry in r["proposals"])
