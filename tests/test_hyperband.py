"""Hyperband's brackets and TPE with halving (BOHB): the plans, the deal, the budget the sampler
learns from, and real sweeps, killed and resumed."""

import os
import re
import signal

import pytest
import yaml

from conftest import REPO, copy_of_workflow
from kerasgrid.cli import summary
from kerasgrid.config import fill_defaults, load_schema, sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.records import read_json, write_json
from kerasgrid.results.leaderboard import read_leaderboard
from kerasgrid.search import hyperband
from kerasgrid.search.halving import Halving
from kerasgrid.search.rounds import STOPPED, budget, min_points, write_round
from kerasgrid.sweep.space import parse_space
from kerasgrid.sweep.grid import trial_id
from test_adaptive import rounds_of
from test_faults import start, wait_for
from test_halving import KNOWN_LOSSES, rank_only, trained
from test_tpe import printed_under_two_hash_seeds


SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")


# -- The plans ----------------------------------------------------------------------------------

def test_bracket_sizes_follow_hyperbands_proportions_scaled_to_the_pool():
    # W3: 81 candidates, rungs at 1, 3, 9, 27 (s_max 3), eta 3: Hyperband's 27, 12, 6, 4 times 3.
    assert hyperband.sizes(81, rungs=4, brackets=4, eta=3) == [81, 36, 18, 12]
    # Hyperband's own bracket sizes for s_max 2, eta 3 (Li et al., Table 1: 9, 5, 3), from a pool of 9.
    assert hyperband.sizes(9, rungs=3, brackets=3, eta=3) == [9, 5, 3]
    assert hyperband.sizes(9, rungs=3, brackets=1, eta=3) == [9]  # brackets: 1 is successive halving
    assert hyperband.sizes(2, rungs=4, brackets=4, eta=2) == [2, 2, 1, 1]  # never above the pool, at least 1
    assert [(b.index, b.start, b.size) for b in hyperband.plan(27, 3, 2, 3)] == [(0, 0, 27), (1, 1, 14)]


def test_the_deal_gives_later_brackets_distinct_candidates_until_the_pool_runs_out():
    pool = [f"{i:012x}" for i in range(20)]
    brackets = hyperband.plan(20, rungs=4, brackets=4, eta=3)  # sizes 20, 9, 5, 3
    dealt = hyperband.deal(pool, brackets, seed=0)
    assert dealt[0] == sorted(pool) and [len(trials) for trials in dealt] == [20, 9, 5, 3]
    later = [trial for trials in dealt[1:] for trial in trials]
    assert len(set(later)) == 17  # 9 + 5 + 3 of 20: no candidate twice before each has had one
    # A pure function of the set of ids and the seed: the grid's order does not matter, the seed does.
    assert hyperband.deal(list(reversed(pool)), brackets, seed=0) == dealt
    assert hyperband.deal(pool, brackets, seed=1) != dealt
    # Round again where the later brackets want more than the pool holds.
    small = hyperband.deal(pool[:4], hyperband.plan(4, rungs=3, brackets=3, eta=2), seed=0)
    assert [len(trials) for trials in small] == [4, 3, 3] and len(set(small[1]) | set(small[2])) == 4
    assert hyperband.protected(small) == set(small[1]) | set(small[2])


def test_reached_names_the_bracket_where_a_trial_went_furthest():
    entries = {0: (0, ["a", "b", "c"]), 1: (1, ["b", "c"]), 2: (2, ["c"])}
    promoted = {(0, 1): ["a"], (0, 2): ["a"], (1, 2): ["b"]}
    assert hyperband.reached(entries, promoted) == {"a": (0, 2), "b": (1, 2), "c": (2, 2)}


def test_rounds_with_halving_go_through_the_brackets_in_turn():
    brackets = hyperband.plan(9, rungs=3, brackets=3, eta=3)  # 9, 5, 3
    assert hyperband.round_sizes(30, brackets) == ([9, 5, 3, 9, 4], [0, 1, 2, 0, 1])


def sweep_of(config):
    base = {"model": "m.py:f", "data": {"train": "m.py:f"}, "budget": {"epochs": 9, "steps_per_epoch": 1},
            "grid": {"q": [1, 2, 3, 4, 5, 6]}}
    return sweep_from_config(fill_defaults({**base, **config}, SCHEMA), "my.yaml")


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text("def f(params):\n    pass\n")


@pytest.mark.parametrize("halving, brackets", [
    ({"eta": 3, "min_epochs": 1}, 3),  # left out: one per rung, as Hyperband
    ({"eta": 3, "min_epochs": 1, "brackets": 1}, 1),
    ({"eta": 3, "min_epochs": 3, "brackets": 2}, 2),
])
def test_brackets_default_to_one_per_rung(user_code, halving, brackets):
    sweep = sweep_of({"search": {"halving": halving}})
    assert len(sweep.brackets) == brackets and sweep.dealt[0] == sorted(sweep.trials)
    assert sweep.plan()["halving"]["brackets"] == [b.size for b in sweep.brackets]


def test_a_tpe_search_with_halving_sizes_its_rounds_by_bracket(user_code):
    search = {"strategy": "tpe", "trials": 5, "batch": 3, "halving": {"eta": 3, "min_epochs": 1}}
    sweep = sweep_of({"search": search, "grid": {"q": {"low": 0.0, "high": 1.0}}})
    assert sweep.rungs == [1, 3, 9] and sweep.round_sizes == [3, 2] and sweep.round_brackets == [0, 1]
    settings = sweep.round_settings(1)
    assert settings["rungs"] == [1, 3, 9] and settings["bracket"] == 1 and "startup" not in settings.get("sampler", {})


def test_more_brackets_than_rungs_is_an_error_naming_the_most(user_code):
    search = {"halving": {"eta": 3, "min_epochs": 1, "brackets": 4}}
    with pytest.raises(ConfigError, match=r"^my\.yaml: search\.halving\.brackets is 4, but the rungs end at 1, 3, 9 "
                                          r"epochs, so at most 3 brackets .* Lower search\.halving\.brackets to 3"):
        sweep_of({"search": search})


def test_a_grid_takes_a_search_seed_only_where_brackets_deal_from_it(user_code):
    dealt = {"seed": 5, "halving": {"eta": 3, "min_epochs": 1}}
    assert sweep_of({"search": dealt}).plan()["halving"]["deal_seed"] == 5
    one = {**dealt, "halving": {"eta": 3, "min_epochs": 1, "brackets": 1}}
    with pytest.raises(ConfigError, match=r"search\.seed is 5, but a grid search draws nothing"):
        sweep_of({"search": one})


# -- What TPE learns from with halving (BOHB) ----------------------------------------------------

def record(trial, epochs, value, status="ok"):
    return {"trial_id": trial, "epochs_target": epochs, "status": status, "params": {"q": value},
            "metrics": {"loss": {"final": value}}, "objective": {"metric": "loss", "direction": "min"},
            "objective_value": value if status == "ok" else None, "fit_seconds": 0.1, "epochs_run": epochs}


def test_the_sampler_learns_from_the_largest_budget_with_enough_results():
    space = parse_space({"q": {"low": 0.0, "high": 1.0}}, "test")
    assert min_points(space) == 4  # one dimension: BOHB's N_min (d + 1) + 2
    at_1 = [record(f"t{i}", 1, i / 10) for i in range(6)]
    at_3 = [record(f"t{i}", 3, i / 10) for i in range(3)]
    assert budget(at_1 + at_3, [1, 3, 9], space) == 1  # 3 at epoch 3 are too few
    assert budget(at_1 + at_3 + [record("t3", 3, 0.3)], [1, 3, 9], space) == 3
    assert budget(at_1 + at_3 + [record("t3", 3, None, "failed")], [1, 3, 9], space) == 1  # ok ones count
    assert budget(at_1[:3], [1, 3, 9], space) is None  # the sampler draws at random


def test_a_round_with_halving_tells_the_budgets_results_and_marks_the_rest_stopped(tmp_path):
    grid = {"q": {"low": 0.0, "high": 1.0, "num": 11}}
    space = parse_space(grid, "test")
    params = [{"q": i / 10} for i in range(6)]
    ids = [trial_id(p) for p in params]
    write_json(tmp_path / "0.json", {"round": 0, "strategy": "tpe", "seed": 1, "told": [],
                                     "proposals": [{"trial_id": t, "params": p} for t, p in zip(ids, params)]})
    paths = []
    for rung in (1, 3):
        for number, (trial, p) in enumerate(zip(ids, params)):
            if rung == 3 and number >= 4:
                continue  # the last two stopped at epoch 1
            path = tmp_path / f"{trial}.{rung}.json"
            write_json(path, {**record(trial, rung, p["q"]), "trial_id": trial, "params": p})
            paths.append(str(path))
    settings = {"strategy": "tpe", "seed": 7, "size": 3, "grid": grid,
                "objective": {"metric": "loss", "direction": "min"}, "rungs": [1, 3, 9], "bracket": 1}
    proposed = write_round([str(tmp_path / "0.json")], paths, settings, 1, tmp_path / "1.json")
    written = read_json(tmp_path / "1.json")
    assert written["budget"] == 3 and written["bracket"] == 1
    assert [(t["trial_id"], t["status"]) for t in written["told"]] == [
        *[(trial, "ok") for trial in ids[:4]], *[(trial, STOPPED) for trial in ids[4:]]]
    assert len(proposed) == 3 and not set(proposed) & set(ids)  # nothing tried is proposed again
    again = write_round([str(tmp_path / "0.json")], paths, settings, 1, tmp_path / "1b.json")
    assert again == proposed


def test_proposals_with_halving_are_the_same_in_every_process():
    code = ("from test_hyperband import bohb_round\n"
            "print(bohb_round())\n")
    outputs = printed_under_two_hash_seeds(code)
    assert len(outputs) == 1 and "budget" in outputs.pop()


def bohb_round() -> str:
    """A BOHB round proposed from made-up records, as text (for test_proposals_with_halving...)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        params = [{"q": i / 10, "r": str(i % 3)} for i in range(8)]
        ids = [trial_id(p) for p in params]
        write_json(folder / "0.json", {"round": 0, "strategy": "tpe", "seed": 1, "told": [],
                                        "proposals": [{"trial_id": t, "params": p} for t, p in zip(ids, params)]})
        paths = []
        for number, (trial, p) in enumerate(zip(ids, params)):
            path = folder / f"{trial}.json"
            write_json(path, {**record(trial, 1, p["q"] + number / 100), "params": p})
            paths.append(str(path))
        settings = {"strategy": "tpe", "seed": 3, "size": 4,
                    "grid": {"q": {"low": 0.0, "high": 1.0}, "r": ["0", "1", "2"]},
                    "objective": {"metric": "loss", "direction": "min"}, "rungs": [1, 3, 9], "bracket": 0}
        write_round([str(folder / "0.json")], paths, settings, 1, folder / "1.json")
        return (folder / "1.json").read_text()


# -- Real sweeps -------------------------------------------------------------------------------

def known_config(qs, **search):
    """The known-losses model (loss q squared at every epoch): rungs at 1, 3 and 9 epochs."""
    return {
        "model": "known.py:build_model",
        "data": {"train": "known.py:data"},
        "budget": {"epochs": 9, "steps_per_epoch": 1},
        "search": {"halving": {"eta": 3, "min_epochs": 1}, **search},
        "grid": {"q": qs},
    }


@pytest.fixture
def known(workflow):
    workflow.path("known.py").write_text(KNOWN_LOSSES, encoding="utf-8")
    return workflow


def records_of(workflow) -> list[dict]:
    return [read_json(path) for path in sorted(workflow.root.glob("results/trials/**/metrics.json"))]


def furthest_epochs(workflow) -> dict[str, int]:
    """Each trial's furthest rung's epochs, from the records on disk."""
    furthest = {}
    for found in records_of(workflow):
        furthest[found["trial_id"]] = max(furthest.get(found["trial_id"], 0), found["epochs_target"])
    return furthest


def without_timing(rows):
    return [{key: value for key, value in row.items() if not key.endswith("_seconds")} for row in rows]


def test_brackets_share_every_rung_and_train_each_trial_only_to_its_furthest_rung(known):
    qs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    result = rank_only(known, known_config(qs))
    rows = read_leaderboard(known.path("results/leaderboard.tsv"))
    ids = {trial_id({"q": q}): q for q in qs}
    brackets = hyperband.plan(9, rungs=3, brackets=3, eta=3)  # 9 candidates from 1 epoch, 5 from 3, 3 from 9
    dealt = hyperband.deal(list(ids), brackets, seed=0)
    # Each bracket's promotions ranked its own entrants: bracket 1's at 3 epochs are its 5 dealt ones.
    assert read_json(known.path("results/brackets/1/9.json"))["entrants"] == 5
    assert {entry["trial_id"] for entry in read_json(known.path("results/brackets/1/9.json"))["ranked"]} == set(dealt[1])
    assert sorted(p.relative_to(known.root).as_posix() for p in known.root.glob("results/brackets/*/*.json")) == [
        "results/brackets/0/3.json", "results/brackets/0/9.json", "results/brackets/1/9.json"]
    # Every entrant of the last bracket, and every trial promoted there in another, reached 9 epochs.
    promoted = {(int(path.parent.name), [1, 3, 9].index(read_json(path)["epochs"])): read_json(path)["promoted"]
                for path in known.root.glob("results/brackets/*/*.json")}
    reached = hyperband.reached({b.index: (b.start, trials) for b, trials in zip(brackets, dealt)}, promoted)
    assert {row["trial_id"]: (int(row["bracket"]), int(row["rung"])) for row in rows} == reached
    assert {t for t, (_, rung) in reached.items() if rung == 2} >= set(dealt[2])
    assert rows[0]["q"] == "0.1" and rows[0]["rung"] == "2"
    # `kerasgrid summary` names the same bracket and rung from the files alone.
    table = [line.split() for line in summary(known.path("results"), top=9) if re.match(r"^\s+\d+\s+[0-9a-f]{12}", line)]
    assert [(row[1], row[-3], row[-2]) for row in table] == [(r["trial_id"], r["bracket"], r["rung"]) for r in rows]
    # A rung two brackets asked for trained once, and a later bracket's entrant continued from the
    # furthest rung its trial had trained: every trial trained exactly its furthest rung's epochs.
    trained_epochs = {}
    for found in records_of(known):
        trained_epochs[found["trial_id"]] = (trained_epochs.get(found["trial_id"], 0)
                                             + found["epochs_run"] - found["resumed_from_epoch"])
    assert trained_epochs == furthest_epochs(known)
    assert sum(trained_epochs.values()) < 9 * len(qs)  # fewer than the grid's (here 55 of 81)
    jobs = trained(result.output)
    assert sum(len(trials) for trials in jobs.values()) == len(records_of(known))  # no job twice

    # Fewer brackets retrain nothing: bracket 0 alone is what ran first.
    before = known.snapshot()
    fewer = rank_only(known, known_config(qs, halving={"eta": 3, "min_epochs": 1, "brackets": 1}))
    assert trained(fewer.output) == {}
    assert {path: stamp for path, stamp in known.snapshot().items() if path in before} == before
    again = rank_only(known, known_config(qs))
    assert trained(again.output) == {} and read_leaderboard(known.path("results/leaderboard.tsv")) == rows


def test_a_later_brackets_entrant_ends_exactly_as_if_trained_straight_through(faulty):
    lrs = [0.002, 0.004, 0.006, 0.008, 0.01, 0.012]
    config = {"model": "faulty.py:build_model", "data": {"train": "faulty.py:data"},
              "budget": {"epochs": 9, "steps_per_epoch": 3}, "grid": {"lr": lrs, "units": [8]}}
    straight = copy_of_workflow(faulty.root.parent / "straight")
    straight.path("faulty.py").write_text(faulty.path("faulty.py").read_text())
    rank_only(straight, config)
    rank_only(faulty, {**config, "search": {"halving": {"eta": 3, "min_epochs": 1}}})
    finals = [found for found in records_of(faulty) if found["epochs_target"] == 9]
    # Some reached 9 epochs from 1 (a bracket that starts at the last rung, their trials cut at 1
    # in bracket 0), some from 3: both end as the straight run ends, history and all.
    assert {found["resumed_from_epoch"] for found in finals} == {1, 3}
    for found in finals:
        folder = f"results/trials/{found['trial_id']}"
        assert found["metrics"] == read_json(straight.path(f"{folder}/metrics.json"))["metrics"]
        assert faulty.path(f"{folder}/history.csv").read_text() == straight.path(f"{folder}/history.csv").read_text()


# TPE with halving: its rounds' promotions and proposals on top of the brackets' rungs (a grid's
# brackets resume as plain halving does: test_halving's kill test; each run here costs a minute).
@pytest.mark.parametrize("search", [
    {"strategy": "tpe", "trials": 6, "batch": 3, "halving": {"eta": 3, "min_epochs": 1}},
], ids=["tpe"])
def test_a_sweep_with_brackets_killed_and_resumed_ends_as_an_unbroken_one(known, search, monkeypatch):
    qs = {"low": 0.05, "high": 0.95, "num": 19} if "strategy" in search else [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    config = known_config(qs, **search)
    unbroken = copy_of_workflow(known.root.parent / "unbroken")
    unbroken.path("known.py").write_text(KNOWN_LOSSES, encoding="utf-8")
    monkeypatch.setenv("PYTHONHASHSEED", "1")
    rank_only(unbroken, config)

    monkeypatch.setenv("PYTHONHASHSEED", "2")  # the proposals depend on no hash order
    # Slow enough to be killed mid-way; the same losses, and a code change retrains nothing of its own.
    known.path("known.py").write_text(KNOWN_LOSSES.replace("    time.sleep(params.get(\"sleep\", 0))",
                                                            "    time.sleep(0.3)"), encoding="utf-8")
    assert "time.sleep(0.3)" in known.path("known.py").read_text()
    run = start(known, config, "--cores", "2")
    wait_for(lambda: len(list(known.root.glob("results/trials/*/rungs/3/metrics.json"))) >= 2, timeout=300)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    finished = {path: stamp for path, stamp in known.snapshot().items() if path.endswith("metrics.json")}
    resumed = rank_only(known, config)
    retrained = {(epochs, trial) for epochs, trials in trained(resumed.output).items() for trial in trials}
    kept = {(int(path.split("/")[4]) if "/rungs/" in path else 9, path.split("/")[2]) for path in finished}
    assert not retrained & kept  # no finished rung trained again
    assert {path: stamp for path, stamp in known.snapshot().items() if path in finished} == finished

    def ranked(workflow):
        return without_timing(read_leaderboard(workflow.path("results/leaderboard.tsv")))

    assert ranked(known) == ranked(unbroken)
    if "strategy" in search:
        assert rounds_of(known) == rounds_of(unbroken)  # proposals, what each was told, and from which budget
