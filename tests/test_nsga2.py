"""NSGA-II without training: its state rebuilt from the rounds' files (kerasgrid/search/nsga2.py)
proposes what one Optuna study kept in memory across the rounds would."""

import optuna
import pytest
from optuna.trial import TrialState

from kerasgrid.config import sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.search import NSGA2Sampler, Observation, parse_space
from kerasgrid.search.nsga2 import generations
from kerasgrid.search.optuna_space import distributions, from_optuna
from kerasgrid.search.rounds import round_seed
from kerasgrid.sweep.grid import trial_id
from test_config import REPO, full_config
from test_tpe import printed_under_two_hash_seeds

GRID = {"lr": [0.001, 0.003, 0.01], "units": [16, 64, 256], "layers": [1, 2, 3], "dropout": [0.0, 0.25, 0.5]}


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # the configs name examples/digits.py


def measured(params) -> tuple[float, float] | None:
    """Two objectives in conflict (a loss that wants a big model, its size); None: the trial failed."""
    if params["layers"] == 3 and params["lr"] == 0.01:
        return None
    loss = abs(params["lr"] - 0.003) * 100 + abs(params["units"] - 128) / 64 + abs(params["dropout"] - 0.25) + 0.2 * params["layers"]
    return loss, float(params["layers"] * params["units"] ** 2)


def observe(tid, params, index) -> Observation:
    values = measured(params)
    return Observation(tid, params, "ok" if values else "failed", values and values[0], values, round=index)


def from_files(space, rounds, batch, population, seed=0) -> list[list[str]]:
    """A search as kerasgrid runs it: every round proposed by a study rebuilt from the history."""
    history, proposed = [], []
    for index in range(rounds):
        got = NSGA2Sampler(population).propose(space, history, batch, round_seed(seed, index), ("min", "min"))
        proposed.append(list(got))
        history += [observe(tid, params, index) for tid, params in got.items()]
    return proposed


def in_memory(space, rounds, batch, population, seed=0) -> list[list[str]]:
    """The same search in one Optuna study kept across the rounds, its sampler seeded anew each round."""
    study = optuna.create_study(directions=["minimize", "minimize"])
    tried, proposed = set(), []
    for index in range(rounds):
        study.sampler = optuna.samplers.NSGAIISampler(seed=round_seed(seed, index), population_size=population)
        asked = {}
        while len(asked) < batch:  # a suggestion already tried is left running and asked again
            trial = study.ask(distributions(space))
            params = from_optuna(space, trial.params)
            if trial_id(params) not in tried and trial_id(params) not in asked:
                asked[trial_id(params)] = (trial, params)
        for tid, (trial, params) in asked.items():
            values = measured(params)
            study.tell(trial, values) if values else study.tell(trial, state=TrialState.FAIL)
        tried |= set(asked)
        proposed.append(list(asked))
    return proposed


@pytest.mark.parametrize("batch, population", [(2, 6), (3, 5), (1, 4)])
def test_rounds_rebuilt_from_files_propose_what_one_study_kept_in_memory_would(batch, population):
    space = parse_space(GRID, "my.yaml")
    rounds = 24 // batch  # past NSGA-II's first generations, with failures among them
    assert from_files(space, rounds, batch, population) == in_memory(space, rounds, batch, population)


def test_generations_follow_optunas_rule_round_by_round():
    def history(oks_per_round):
        return [Observation(f"{i}-{j}", {}, "ok" if ok else "failed", 1.0 if ok else None, round=i)
                for i, oks in enumerate(oks_per_round) for j, ok in enumerate(oks)]

    # Population 4, rounds of 3: the second round's 3 join generation 0 (2 ok trials before it).
    assert generations(history([[1, 0, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]]), 4) == [0] * 6 + [1] * 3 + [1] * 3
    # A failed trial does not count towards a generation; without rounds, each trial is asked alone.
    assert generations([Observation(str(i), {}, "ok", 1.0) for i in range(5)], 2) == [0, 0, 1, 1, 2]


def test_proposals_are_the_same_in_every_process():
    outputs = printed_under_two_hash_seeds("from test_nsga2 import GRID, from_files\nfrom kerasgrid.search import "
                                           "parse_space\nprint(from_files(parse_space(GRID, 'my.yaml'), 12, 2, 6))")
    assert len(outputs) == 1 and len(outputs.pop()) > 300


def test_constraints_reach_nsga2_as_the_trials_constraint_values():
    from kerasgrid.search.optuna_space import rebuild_study

    space = parse_space(GRID, "my.yaml")
    history = [Observation("a", {"lr": 0.001, "units": 16, "layers": 1, "dropout": 0.0}, "ok", 1.0, (1.0, 2.0), (-3.0,), 0),
               Observation("b", {"lr": 0.01, "units": 256, "layers": 3, "dropout": 0.5}, "ok", 0.5, (0.5, 9.0), (4.0,), 0)]
    study = rebuild_study(space, history, ("min", "min"), optuna.samplers.NSGAIISampler(population_size=2))
    assert [t.constraints for t in study.trials] == [{"0": -3.0}, {"0": 4.0}]
    assert [t.values for t in study.trials] == [[1.0, 2.0], [0.5, 9.0]]


def nsga2_config(**search):
    return full_config(grid={"lr": [0.001, 0.01, 0.1], "act": ["relu", "tanh"], "units": [8, 16, 32]},
                       search={"strategy": "nsga2", "trials": 12, "batch": 2, "population": 4, **search})


def test_an_nsga2_config_proposes_in_rounds_with_its_population_among_the_round_settings():
    sweep = sweep_from_config(nsga2_config(), "my.yaml")
    assert sweep.adaptive and sweep.round_sizes == [2] * 6
    assert sweep.round_settings(0)["sampler"] == {"population": 4} and sweep.round_settings(0)["strategy"] == "nsga2"
    assert sweep_from_config(nsga2_config(population=5), "my.yaml").round_settings(0) != sweep.round_settings(0)


@pytest.mark.parametrize(
    "search, message",
    [
        ({"population": 12}, r"search\.trials is 12, but NSGA-II's first generation is search\.population \(12\) random "
                             r"trials, so this search would never breed one\. Lower search\.population \(e\.g\. to 4"),
        ({"population": None}, r"search\.trials is 12, but NSGA-II's first generation is search\.population \(50\)"),
        ({"strategy": "tpe"}, r"search\.population is 4, but only NSGA-II \(search\.strategy: nsga2\) breeds generations; "
                              r"tpe search has none\. Remove search\.population"),
        ({"batch": None}, r"search\.strategy is nsga2, but search\.batch is not set"),
        ({"trials": None}, r"search\.strategy is nsga2, but search\.trials is not set\. .*\{strategy: nsga2, trials: 60, batch: 6\}"),
    ],
)
def test_nsga2_config_errors_name_file_key_and_fix(search, message):
    with pytest.raises(ConfigError, match=r"^my\.yaml: " + message):
        sweep_from_config(nsga2_config(**search), "my.yaml")
