"""Adaptive search without training: Optuna's TPE proposing rounds from a history (kerasgrid/search/
tpe.py, optuna_space.py, rounds.py), and the config that asks for it."""

import math
import statistics
import os
import subprocess
import sys

import pytest
from optuna.trial import TrialState

from kerasgrid import records
from kerasgrid.config import sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.search import Observation, TPESampler, parse_space
from kerasgrid.search.optuna_space import distributions, from_optuna, rebuild_study, to_optuna
from kerasgrid.search.rounds import observations, proposal_order, round_seed, round_sizes, trial_rounds, write_round
from kerasgrid.sweep.grid import trial_id
from test_config import REPO, full_config

SPACE = {
    "lr": {"low": 1.0e-4, "high": 1.0e-1, "log": True},  # continuous, log-uniform: rounded to 3 digits
    "units": {"low": 16, "high": 256, "step": 16},  # integers with a step
    "dropout": {"low": 0.0, "high": 0.5, "step": 0.1},  # floats with a step
    "width": {"low": 1.0e-3, "high": 1.0, "num": 4, "log": True},  # 4 values on a log scale
    "act": ["relu", "tanh", [1, "two"], None],  # any YAML values
}


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # the configs name examples/digits.py


def parse(grid):
    return parse_space(grid, "my.yaml")


def loss(params) -> float:
    """A smooth objective, least at lr 0.01, units 128, dropout 0, act tanh (a key not given: there)."""
    best = {"lr": 0.01, "units": 128, "dropout": 0.0, "act": "tanh"}
    params = {**best, **params}
    return (math.log10(params["lr"]) + 2) ** 2 + ((params["units"] - 128) / 64) ** 2 + params["dropout"] \
        + (0.0 if params["act"] == "tanh" else 1.0)


def told(space, rounds, batch, seed=0, fails=lambda params: False):
    """The history after `rounds` rounds of `batch` proposals each, every one told its loss."""
    history = []
    for index in range(rounds):
        for tid, params in TPESampler().propose(space, history, batch, round_seed(seed, index), "min").items():
            failed = fails(params)
            history.append(Observation(tid, params, "failed" if failed else "ok", None if failed else loss(params)))
    return history


def test_every_kind_of_grid_value_goes_to_optuna_and_back_exactly():
    space = parse(SPACE)
    dists = distributions(space)
    assert dists["width"].low == 0 and dists["width"].high == 3  # the index of its 4 values
    assert dists["units"].step == 16 and dists["units"].high == 256
    assert sorted(dists["act"].choices) == sorted(['"relu"', '"tanh"', '[1,"two"]', "null"])
    params = {"lr": 0.00703, "units": 96, "dropout": 0.3, "width": 0.01, "act": [1, "two"]}
    internal = to_optuna(space, params)
    assert all(dists[key]._contains(dists[key].to_internal_repr(value)) for key, value in internal.items())
    assert from_optuna(space, internal) == params
    # Optuna's full-precision floats become the values a random draw would give: rounded, in range.
    assert from_optuna(space, {**internal, "lr": 0.007028834702774832})["lr"] == 0.00703


def test_proposals_are_a_function_of_history_and_seed():
    space = parse(SPACE)
    history = told(space, rounds=3, batch=4)  # 12 trials: past TPE's 10 random ones
    first = TPESampler().propose(space, history, 4, seed=7, direction="min")
    assert TPESampler().propose(space, list(history), 4, seed=7, direction="min") == first
    assert TPESampler().propose(space, history, 4, seed=8, direction="min") != first
    assert TPESampler().propose(space, history[:-1], 4, seed=7, direction="min") != first
    assert TPESampler().propose(space, history, 4, seed=7, direction="max") != first
    # A bigger round begins with the smaller one's proposals.
    assert list(TPESampler().propose(space, history, 7, seed=7, direction="min"))[:4] == list(first)
    assert len(first) == 4 and all(tid == trial_id(params) for tid, params in first.items())
    assert not set(first) & {observation.trial_id for observation in history}


def printed_under_two_hash_seeds(code: str) -> set[str]:
    """What `code` prints in two processes whose string hashes are salted differently: one text if
    nothing it prints depends on iterating a set of strings."""
    return {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                       cwd=REPO / "tests", env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }


def test_proposals_are_the_same_in_every_process():
    outputs = printed_under_two_hash_seeds("from test_tpe import SPACE, parse, told\n"
                                           "print([o.trial_id for o in told(parse(SPACE), rounds=4, batch=4)])")
    assert len(outputs) == 1 and len(outputs.pop()) > 100


def test_proposals_are_valid_values_of_the_space():
    space = parse(SPACE)
    for observation in told(space, rounds=4, batch=5):
        params = observation.params
        assert 1.0e-4 <= params["lr"] <= 0.1 and float(f"{params['lr']:.3g}") == params["lr"]
        assert params["units"] in range(16, 257, 16) and isinstance(params["units"], int)
        assert params["dropout"] in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
        assert params["width"] in (0.001, 0.01, 0.1, 1.0) and params["act"] in ("relu", "tanh", [1, "two"], None)


def test_tpe_learns_from_the_history():
    # After its 10 random trials, TPE proposes near the best trials so far: over 3 seeds, its later
    # rounds find lower losses than as many random draws.
    space = parse({key: SPACE[key] for key in ("lr", "units", "dropout")} | {"act": ["relu", "tanh"]})
    for seed in range(3):
        history = told(space, rounds=8, batch=4, seed=seed)
        random_phase = [o.value for o in history[:12]]
        adaptive_phase = [o.value for o in history[12:]]
        assert sorted(adaptive_phase)[len(adaptive_phase) // 2] < sorted(random_phase)[len(random_phase) // 2]


def test_a_list_of_numbers_is_ordered_for_the_sampler_whatever_order_it_is_written_in():
    space = parse({"units": [256, 16, 64, 32], "rate": [0.5, 0.1], "act": ["relu", "tanh"], "flag": [True, False]})
    dists = distributions(space)
    assert (dists["units"].low, dists["units"].high) == (0, 3) and (dists["rate"].low, dists["rate"].high) == (0, 1)
    assert sorted(dists["act"].choices) == ['"relu"', '"tanh"'] and sorted(dists["flag"].choices) == ["false", "true"]
    params = {"units": 64, "rate": 0.5, "act": "tanh", "flag": False}
    assert to_optuna(space, params)["units"] == 2 and to_optuna(space, params)["rate"] == 1
    assert from_optuna(space, to_optuna(space, params)) == params
    # Written in another order, the same space: the same proposals, so the same trials.
    same = parse({"units": [16, 32, 64, 256], "rate": [0.1, 0.5], "act": ["tanh", "relu"], "flag": [False, True]})
    assert [o.params for o in told(space, rounds=5, batch=3)] == [o.params for o in told(same, rounds=5, batch=3)]


def test_tpe_learns_from_the_neighbours_of_a_number_in_a_list():
    # 30 even numbers, the loss least at 34: after the random start, TPE proposes nearer 34 than it
    # does when the same values are labels (strings), which it can only tell apart, not order.
    def late_losses(values, as_number):
        space = parse({"x": values, "act": ["relu", "tanh"]})
        medians = []
        for seed in range(5):
            history = []
            for index in range(8):
                for tid, params in TPESampler().propose(space, history, 3, round_seed(seed, index), "min").items():
                    value = abs(as_number(params["x"]) - 34) + (params["act"] == "relu")
                    history.append(Observation(tid, params, "ok", value))
            medians.append(statistics.median(o.value for o in history[12:]))
        return statistics.mean(medians)

    numbers = list(range(0, 60, 2))
    assert late_losses(numbers, int) < 0.8 * late_losses([str(n) for n in numbers], int)


def test_a_failed_trial_is_told_as_failed_and_never_proposed_again():
    space = parse({"units": {"low": 16, "high": 64, "step": 16}, "act": ["relu", "tanh"]})  # 8 combinations
    history = told(space, rounds=3, batch=2, fails=lambda params: params["act"] == "relu" and params["units"] == 16)
    failed = [o for o in history if o.status == "failed"]
    assert failed, "the failing combination was among the first 6 proposals"
    study = rebuild_study(space, history, "min", sampler=None)
    states = {trial.user_attrs["trial_id"]: trial.state for trial in study.trials}
    assert states[failed[0].trial_id] == TrialState.FAIL
    assert {tid for tid, state in states.items() if state == TrialState.COMPLETE} == {o.trial_id for o in history if o.value is not None}
    later = TPESampler().propose(space, history, 2, seed=round_seed(0, 3), direction="min")
    assert failed[0].trial_id not in later and len(later) == 2


def test_a_space_nearly_used_up_still_gives_its_last_combinations():
    space = parse({"units": [16, 32, 64], "act": ["relu", "tanh"]})
    history = told(space, rounds=1, batch=5)
    last = TPESampler().propose(space, history, 3, seed=1, direction="min")
    assert len(last) == 1 and len({o.trial_id for o in history} | set(last)) == 6


def test_rounds_split_the_trials_and_seed_each_round_apart():
    assert round_sizes(60, 6) == [6] * 10 and round_sizes(10, 4) == [4, 4, 2] and round_sizes(3, 8) == [3]
    assert round_seed(0, 1) == round_seed(0, 1) and len({round_seed(0, i) for i in range(100)}) == 100
    assert round_seed(1, 0) != round_seed(0, 1)


def test_a_round_file_lists_the_proposals_and_what_the_sampler_was_told(tmp_path):
    sweep = sweep_from_config(tpe_config(trials=5, batch=2), "my.yaml")
    first = write_round([], [], sweep.round_settings(0), 0, tmp_path / "rounds/0.json")
    record_paths = []
    for number, (tid, params) in enumerate(first.items()):
        status = "failed" if number == 0 else "ok"
        metrics = {} if status == "failed" else {"val_loss": {"final": loss(params)}}
        record_paths.append(tmp_path / f"trials/{tid}/metrics.json")
        records.write_json(record_paths[-1], {"trial_id": tid, "params": params, "status": status, "metrics": metrics})
    second = write_round([tmp_path / "rounds/0.json"], record_paths, sweep.round_settings(1), 1, tmp_path / "rounds/1.json")
    written = records.read_json(tmp_path / "rounds/1.json")
    assert written["round"] == 1 and written["seed"] == round_seed(0, 1) and written["strategy"] == "tpe"
    assert [entry["trial_id"] for entry in written["proposals"]] == list(second) and len(second) == 2
    assert [(entry["trial_id"], entry["status"]) for entry in written["told"]] == [(tid, s) for tid, s in zip(first, ["failed", "ok"])]
    assert written["told"][0]["objective"] is None and written["told"][1]["objective"] > 0
    paths = [tmp_path / "rounds/1.json", tmp_path / "rounds/0.json"]
    assert proposal_order(paths) == [*first, *second]
    assert trial_rounds(paths) == {**dict.fromkeys(first, 0), **dict.fromkeys(second, 1)}
    history = observations(paths[1:], record_paths, {"metric": "val_loss", "direction": "min"})
    assert [(o.trial_id, o.status) for o in history] == [(tid, s) for tid, s in zip(first, ["failed", "ok"])]


def tpe_config(**search):
    return full_config(grid={"lr": {"low": 1.0e-4, "high": 1.0e-1, "log": True}, "act": ["relu", "tanh"]},
                       search={"strategy": "tpe", "trials": None, "batch": None, **search})


def test_raising_trials_changes_no_round_but_the_last_and_adds_new_ones():
    six, nine = (sweep_from_config(tpe_config(trials=t, batch=4), "my.yaml") for t in (6, 9))
    assert six.round_sizes == [4, 2] and nine.round_sizes == [4, 4, 1] and six.trials == {} and six.adaptive
    assert six.round_settings(0) == nine.round_settings(0) and six.round_settings(1) != nine.round_settings(1)
    # Reordering the grid's keys or a list's values proposes nothing again.
    reordered = tpe_config(trials=6, batch=4)
    reordered["grid"] = {"act": ["tanh", "relu"], "lr": reordered["grid"]["lr"]}
    assert sweep_from_config(reordered, "my.yaml").round_settings(0) == six.round_settings(0)
    assert sweep_from_config(tpe_config(trials=6, batch=4) | {"seed": 1}, "my.yaml").round_settings(0) != six.round_settings(0)
    # search.seed seeds the proposals only; the trials train as `seed` says.
    other = sweep_from_config(tpe_config(trials=6, batch=4, seed=1), "my.yaml")
    assert other.round_settings(0) == {**six.round_settings(0), "seed": 1} and other.settings() == six.settings()


def search(**kwargs):
    return {"strategy": "tpe", "trials": 6, "batch": 2, **kwargs}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"search": search(trials=None)}, r"search\.strategy is tpe, but search\.trials is not set\. .*\{strategy: tpe, trials: 60, batch: 6\}"),
        ({"search": search(batch=None)}, r"search\.strategy is tpe, but search\.batch is not set\. Say how many trials each round proposes"),
        ({"search": search(trials=2000)}, r"search\.trials is 2,000, more than max_trials \(1,000\)"),
        ({"search": search(trials=7), "grid": {"act": ["relu", "tanh"], "units": [8, 16, 32]}},
         r"search\.trials is 7, but the space holds only 6 distinct combinations\. Lower search\.trials"),
        ({"search": {**search(halving={"eta": 3, "min_epochs": 1}), "strategy": "nsga2", "population": 2}},
         r"search\.halving is set, but nsga2 search trains every trial it proposes .* Remove search\.halving, or use search\.strategy: tpe"),
        ({"search": {"strategy": "random", "trials": 6, "batch": 2}},
         r"search\.batch is 2, but only an adaptive search \(search\.strategy: tpe\) proposes its trials in rounds; random"),
        ({"search": {"strategy": "grid", "trials": None, "batch": 2}}, r"search\.batch is 2, but only an adaptive search"),
    ],
)
def test_tpe_config_errors_name_file_key_and_fix(overrides, message):
    with pytest.raises(ConfigError, match=r"^my\.yaml: " + message):
        sweep_from_config(full_config(**overrides), "my.yaml")


def test_loading_the_search_settings_imports_no_optuna():
    code = ("import sys\nfrom kerasgrid.config import sweep_from_config\nimport kerasgrid.search.rounds\n"
            "print('OPTUNA_LOADED', 'optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "OPTUNA_LOADED False" in out.stdout, out.stdout + out.stderr


def size(params) -> float:
    """A second objective at odds with `loss`: units cost, and the best loss wants 128 of them."""
    return float(params["units"])


def told_two(space, rounds, batch, seed=0, directions=("min", "min"), least_units=None):
    """As `told`, with two objectives (loss, size), and with `least_units` the constraint
    units >= least_units, told as its violation."""
    history = []
    for index in range(rounds):
        for tid, params in TPESampler().propose(space, history, batch, round_seed(seed, index), directions).items():
            values = (loss(params), size(params))
            broken = (least_units - params["units"],) if least_units is not None else ()
            history.append(Observation(tid, params, "ok", values[0], values, broken, index))
    return history


def test_several_objectives_and_constraints_go_into_the_rebuilt_study():
    space = parse({"units": [16, 32], "act": ["relu", "tanh"]})
    history = [Observation("a", {"units": 16, "act": "relu"}, "ok", 0.5, (0.5, 16.0), (-4.0, 2.0)),
               Observation("b", {"units": 32, "act": "tanh"}, "failed", None)]
    study = rebuild_study(space, history, ("min", "max"), sampler=None)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.trials[0].values == [0.5, 16.0] and study.trials[0].constraints == {"0": -4.0, "1": 2.0}
    assert study.trials[1].state == TrialState.FAIL and study.trials[1].values is None
    # One objective, no constraints: the study as ever.
    single = rebuild_study(space, [Observation("a", {"units": 16, "act": "relu"}, "ok", 0.5)], "min", sampler=None)
    assert single.trials[0].value == 0.5 and single.trials[0].constraints == {} and single.trials[0].system_attrs == {}


def test_multi_objective_proposals_are_a_function_of_history_seed_and_directions():
    space = parse({key: SPACE[key] for key in ("lr", "units", "dropout")} | {"act": ["relu", "tanh"]})
    history = told_two(space, rounds=4, batch=3)  # 12 trials: past TPE's random ones
    first = TPESampler().propose(space, history, 3, seed=7, direction=("min", "min"))
    assert TPESampler().propose(space, list(history), 3, seed=7, direction=("min", "min")) == first
    assert TPESampler().propose(space, history, 3, seed=7, direction=("min", "max")) != first
    assert TPESampler().propose(space, history, 3, seed=8, direction=("min", "min")) != first
    assert list(TPESampler().propose(space, history, 5, seed=7, direction=("min", "min")))[:3] == list(first)
    # A one-tuple is the one objective it names.
    single = [Observation(o.trial_id, o.params, o.status, o.value) for o in history]
    assert TPESampler().propose(space, single, 3, seed=7, direction=("min",)) == \
        TPESampler().propose(space, single, 3, seed=7, direction="min")


def test_constraints_steer_multi_objective_tpe_towards_trials_that_keep_them():
    # Told units >= 160 (against the size objective, which wants few), TPE's rounds after its
    # random start propose mostly trials that keep it; told no constraint, almost none.
    space = parse({key: SPACE[key] for key in ("lr", "units", "dropout")} | {"act": ["relu", "tanh"]})
    for seed in range(3):
        late = told_two(space, rounds=8, batch=3, seed=seed, least_units=160)[12:]
        free = told_two(space, rounds=8, batch=3, seed=seed)[12:]
        assert sum(o.params["units"] >= 160 for o in late) >= len(late) / 2 > 2 * sum(o.params["units"] >= 160 for o in free)


def test_a_round_file_tells_every_objective_and_constraint(tmp_path):
    config = tpe_config(trials=6, batch=3)
    config["objective"] = [{"metric": "val_loss", "direction": "min"}, {"metric": "params_count", "direction": "min"}]
    config["constraints"] = ["params_count <= 1000", "val_loss < 0.5"]
    sweep = sweep_from_config(config, "my.yaml")
    first = write_round([], [], sweep.round_settings(0), 0, tmp_path / "rounds/0.json")
    record_paths = []
    for number, (tid, params) in enumerate(first.items()):
        status = "diverged" if number == 0 else "ok"
        record_paths.append(tmp_path / f"trials/{tid}/metrics.json")
        records.write_json(record_paths[-1], {
            "trial_id": tid, "params": params, "status": status,
            "metrics": {} if status != "ok" else {"val_loss": {"final": 0.25 * number}},
            "measures": {"params_count": 900 + 100 * number, "fit_seconds": 1.0, "predict_ms": 1.0},
        })
    write_round([tmp_path / "rounds/0.json"], record_paths, sweep.round_settings(1), 1, tmp_path / "rounds/1.json")
    told_ = records.read_json(tmp_path / "rounds/1.json")["told"]
    assert [entry["status"] for entry in told_] == ["diverged", "ok", "ok"]
    assert told_[0] == {"trial_id": told_[0]["trial_id"], "status": "diverged", "objective": None, "values": None,
                        "constraints": []}
    # params_count 1000 keeps the first constraint (0), 1100 breaks it by 100; val_loss 0.5 breaks
    # the strict second one, if only just.
    assert [entry["values"] for entry in told_[1:]] == [[0.25, 1000], [0.5, 1100]]
    assert told_[1]["constraints"] == [0.0, -0.25] and told_[2]["constraints"][0] == 100.0
    assert 0 < told_[2]["constraints"][1] < 1e-300
    history = observations([tmp_path / "rounds/0.json"], record_paths, sweep.objective)
    assert [o.round for o in history] == [0, 0, 0] and history[1].values == (0.25, 1000)
