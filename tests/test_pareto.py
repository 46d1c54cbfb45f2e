"""Several objectives at once (issue 22): Pareto fronts and the knee on known points, ranking and
halving's promotions on known records, constraints, the measures a trial records, the config, the
leaderboard, and sweeps of every strategy end to end with two objectives."""

import json
import math

import keras
import pytest
import yaml

from conftest import tiny_config
from kerasgrid.cli import summary, summary_rows
from kerasgrid.config import sweep_from_config
from kerasgrid.errors import ConfigError, NoSuccessfulTrial
from kerasgrid.results import pareto
from kerasgrid.results.leaderboard import leaderboard_rows, read_leaderboard, write_best, write_leaderboard
from kerasgrid.results.ranking import rank
from kerasgrid.results.tables import leaderboard_lines
from kerasgrid.search.halving import Halving
from kerasgrid.trial.training import run_trial
from test_config import full_config
from test_training import settings

LOSS_AND_SIZE = {"metric": "val_loss", "direction": "min",
                 "objectives": [{"metric": "val_loss", "direction": "min"}, {"metric": "params_count", "direction": "min"}],
                 "constraints": [], "winner": "first"}


def record(trial_id, val_loss=None, params_count=100, status="ok", seed=0, epochs=4, predict_ms=1.0):
    return {"trial_id": trial_id, "status": status, "params": {"k": trial_id}, "seed": seed, "error": None,
            "metrics": {} if val_loss is None else {"val_loss": {"final": val_loss}, "val_acc": {"final": 1 - val_loss}},
            "measures": {"params_count": params_count, "fit_seconds": 1.0, "predict_ms": predict_ms},
            "fit_seconds": 1.0, "budget": {"epochs": 4}, "epochs_target": epochs}


def test_fronts_of_known_points():
    points = [(1, 5), (2, 2), (5, 1), (3, 3), (4, 4), (2, 2), (6, 6)]
    assert pareto.pareto_ranks(points) == [1, 1, 1, 2, 3, 1, 4]  # equal points share a front
    assert pareto.dominates((1, 1), (1, 2)) and not pareto.dominates((1, 2), (2, 1))
    assert pareto.pareto_ranks([(1, 2, 3), (3, 2, 1), (2, 2, 2), (3, 3, 3)]) == [1, 1, 1, 2]


def test_the_knee_is_the_front_point_nearest_the_ideal_once_scaled():
    # Scaled to [0, 1]: (0, 1), (0.1, 0.2), (1, 0): the middle one is nearest (0, 0).
    assert pareto.knee([(0.0, 1000.0), (0.1, 200.0), (1.0, 0.0)]) == 1
    assert pareto.knee([(3.0, 3.0)]) == 0


def test_ranking_by_front_then_the_first_objective_with_directions():
    records = [record("a", 0.30, 100), record("b", 0.10, 900), record("c", 0.20, 500), record("d", 0.25, 950),
               record("e", status="failed"), record("f", 0.35, 100)]
    ranked = rank(records, LOSS_AND_SIZE)
    assert [(r["trial_id"], r["pareto_rank"]) for r in ranked] == [
        ("b", 1), ("c", 1), ("a", 1), ("d", 2), ("f", 2), ("e", None)]
    assert ranked[0]["objective_values"] == [0.10, 900]
    # Maximising the second objective turns the fronts around.
    bigger = {**LOSS_AND_SIZE, "objectives": [LOSS_AND_SIZE["objectives"][0], {"metric": "params_count", "direction": "max"}]}
    assert [(r["trial_id"], r["pareto_rank"]) for r in rank(records, bigger)][:3] == [("b", 1), ("d", 1), ("c", 2)]


def test_the_knee_rule_puts_the_knee_first_and_the_rest_stays_in_order():
    records = [record("a", 0.30, 100), record("b", 0.10, 900), record("c", 0.12, 200)]
    assert [r["trial_id"] for r in rank(records, LOSS_AND_SIZE)] == ["b", "c", "a"]
    assert [r["trial_id"] for r in rank(records, {**LOSS_AND_SIZE, "winner": "knee"})] == ["c", "b", "a"]


def test_a_trial_that_breaks_a_constraint_ranks_after_every_feasible_one():
    records = [record("a", 0.10, 5000), record("b", 0.30, 100), record("c", 0.20, 200, predict_ms=9.0)]
    constrained = {**LOSS_AND_SIZE, "constraints": ["params_count <= 1000", "predict_ms < 3"]}
    ranked = rank(records, constrained)
    assert [(r["trial_id"], r["feasible"], r["pareto_rank"]) for r in ranked] == [
        ("b", True, 1), ("a", False, 1), ("c", False, 1)]
    # One objective with a constraint: feasible first, then the objective; no winner among the infeasible.
    one = {"metric": "val_loss", "direction": "min", "objectives": [LOSS_AND_SIZE["objectives"][0]],
           "constraints": ["params_count <= 1000"], "winner": "first"}
    assert [r["trial_id"] for r in rank(records, one)] == ["c", "b", "a"]


def test_with_repeats_a_trial_is_ranked_on_each_objectives_mean():
    records = [record("a", 0.1, 100, seed=0), record("a", 0.5, 100, seed=1), record("b", 0.2, 200, seed=0),
               record("b", 0.2, 200, seed=1)]
    ranked = rank(records, LOSS_AND_SIZE)
    assert [(r["trial_id"], r["objective_values"]) for r in ranked] == [("b", [0.2, 200]), ("a", [pytest.approx(0.3), 100])]
    assert {r["pareto_rank"] for r in ranked} == {1}


def test_halving_promotes_by_front_at_each_rung():
    records = [record(t, v, n, epochs=1) for t, v, n in
               [("a", 0.1, 900), ("b", 0.2, 100), ("c", 0.3, 950), ("d", 0.4, 990), ("e", 0.5, 980), ("f", 0.6, 50)]]
    # Front 1: a, b, f; eta 3 keeps 2 of 6: the front's best on the first objective.
    assert Halving(eta=3).promote(records, 6, LOSS_AND_SIZE) == ["a", "b"]
    assert Halving(eta=2).promote(records, 6, LOSS_AND_SIZE) == ["a", "b", "f"]


@pytest.mark.parametrize("text", ["params_count", "params_count <= big", "__import__('os').system('true') < 1",
                                  "params_count <= 1 or 1", "params_count == 5"])
def test_a_constraint_kerasgrid_cannot_read_is_a_config_error_naming_it(text):
    with pytest.raises(ConfigError, match=rf"my\.yaml: constraints\[1\] is .*, which is not a constraint kerasgrid "
                                          r"can read\. Write '<metric> <op> <number>', with op one of <=, <, >=, >"):
        sweep_from_config(full_config(constraints=["predict_ms < 3", text]), "my.yaml")


def test_the_config_takes_one_objective_as_ever_or_several():
    assert sweep_from_config(full_config(), "a.yaml").objective == {"metric": "val_loss", "direction": "min"}
    several = sweep_from_config(full_config(objective=[{"metric": "val_loss"}, {"metric": "params_count"}],
                                            constraints=["predict_ms<=3"], winner="knee"), "a.yaml")
    assert several.objective == {**LOSS_AND_SIZE, "constraints": ["predict_ms <= 3"], "winner": "knee"}
    assert several.several_objectives
    with pytest.raises(ConfigError, match=r"a\.yaml: objective\[1\]\.metric is 'val_loss', which an objective before"):
        sweep_from_config(full_config(objective=[{"metric": "val_loss"}, {"metric": "val_loss", "direction": "max"}]), "a.yaml")
    with pytest.raises(ConfigError, match=r"a\.yaml: winner is 'knee', but there is one objective"):
        sweep_from_config(full_config(winner="knee"), "a.yaml")


def test_the_leaderboard_and_best_params_show_every_objective(tmp_path):
    paths = []
    for r in [record("a", 0.30, 100), record("b", 0.10, 900), record("c", 0.35, 950)]:
        path = tmp_path / "trials" / r["trial_id"] / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(r))
        paths.append(path)
    write_leaderboard(paths, LOSS_AND_SIZE, ["k"], tmp_path / "leaderboard.tsv")
    rows = read_leaderboard(tmp_path / "leaderboard.tsv")
    assert list(rows[0])[-4:] == ["pareto_rank", "feasible", "val_loss", "params_count"]
    assert [(r["trial_id"], r["pareto_rank"], r["feasible"], r["params_count"]) for r in rows] == [
        ("b", "1", "yes", "900"), ("a", "1", "yes", "100"), ("c", "2", "yes", "950")]
    winner = write_best(tmp_path / "leaderboard.tsv", LOSS_AND_SIZE, tmp_path / "best_params.yaml")
    assert winner["objectives"] == [{"metric": "val_loss", "direction": "min", "value": 0.1},
                                    {"metric": "params_count", "direction": "min", "value": 900}]
    lines = leaderboard_lines(tmp_path / "leaderboard.tsv", LOSS_AND_SIZE)
    assert lines[0] == ("Leaderboard: 3 trials by Pareto front of val_loss (lower is better), "
                        "params_count (lower is better)")
    assert lines[-3:] == ["Pareto front: 2 trials that no other beats on every objective:",
                          "  b  val_loss = 0.1  params_count = 900  (k=b)", "  a  val_loss = 0.3  params_count = 100  (k=a)"]
    # An objective named like a column of its own keeps both apart.
    timed = {**LOSS_AND_SIZE, "objectives": [LOSS_AND_SIZE["objectives"][0], {"metric": "fit_seconds", "direction": "min"}]}
    header, _ = leaderboard_rows(rank([record("a", 0.3)], timed), ["k"], objectives=timed["objectives"])
    assert header[-2:] == ["val_loss", "objective.fit_seconds"] and "fit_seconds" in header

    # No trial keeps the constraints: no winner, and the error says why.
    write_leaderboard(paths, {**LOSS_AND_SIZE, "constraints": ["params_count < 50"]}, ["k"], tmp_path / "none.tsv")
    with pytest.raises(NoSuccessfulTrial, match=r"None of the 3 trials that finished ok keeps every constraint "
                                                r"\(params_count < 50\), so there is no best model"):
        write_best(tmp_path / "none.tsv", {**LOSS_AND_SIZE, "constraints": ["params_count < 50"]}, tmp_path / "b.yaml")


def test_a_trial_records_its_measures(tmp_path):
    record_ = run_trial({"lr": 0.01}, settings(), tmp_path / "t")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    measures = record_["measures"]
    assert measures["params_count"] == model.count_params() == 4 * 8 + 8 + 8 + 1
    assert measures["fit_seconds"] == record_["fit_seconds"] > 0
    assert 0 < measures["predict_ms"] < 1000
    # Any measure can be the objective: the record's value is the measure's.
    sized = run_trial({"lr": 0.01}, settings(), tmp_path / "u", objective={"metric": "params_count", "direction": "min"})
    assert sized["objective"] == {"metric": "params_count", "direction": "min", "value": 49}


def test_a_grid_sweep_with_two_objectives_and_a_constraint_end_to_end(workflow):
    config = tiny_config(objective=[{"metric": "val_loss"}, {"metric": "params_count"}],
                         constraints=["params_count <= 2500", "predict_ms < 10000"])
    config["grid"].update(units=[8, 32, 64], act_in=["relu"])
    result = workflow.sweep(config)
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert len(rows) == 6 and {r["feasible"] for r in rows if r["units"] == "64"} == {"no"}
    assert all(r["feasible"] == "yes" for r in rows[:4]) and [r["units"] for r in rows[4:]] == ["64", "64"]
    front = read_leaderboard(workflow.path("results/pareto.tsv"))
    assert front == [r for r in rows if r["pareto_rank"] == "1" and r["feasible"] == "yes"] and front
    assert workflow.path("results/plots/pareto.png").stat().st_size > 10_000
    best = yaml.safe_load(workflow.path("results/best_params.yaml").read_text())
    assert best["trial_id"] == rows[0]["trial_id"] and [o["metric"] for o in best["objectives"]] == ["val_loss", "params_count"]
    assert "Pareto front: " in result.output and f"Best params found: {best['params']}" in result.output
    # `kerasgrid summary` is the leaderboard: its rows, its front and every objective on the console.
    assert summary_rows(workflow.path("results")) == rows
    shown = summary(workflow.path("results"), top=6)
    assert shown[2].startswith("Leaderboard: 6 trials by Pareto front of val_loss (lower is better), params_count")
    assert shown[3].split()[-4:] == ["status", "pareto_rank", "feasible", "params_count"]
    assert [line.split()[1] for line in shown[4:10]] == [r["trial_id"] for r in rows]
    assert f"Best trial: {best['trial_id']} with val_loss = " in shown[-2] and "params_count = " in shown[-2]
    assert [line for line in shown if line.startswith("Pareto front: ")] == [
        line for line in result.output.splitlines() if line.startswith("Pareto front: ")]
    # The objective only ranks: a third objective retrains nothing.
    config["objective"].append({"metric": "predict_ms"})
    assert "train" not in workflow.plan(config)


def test_halving_over_a_random_search_and_repeats_with_confirm_rank_by_front(workflow):
    two = [{"metric": "val_loss"}, {"metric": "params_count"}]
    config = tiny_config(objective=two, budget={"epochs": 2, "steps_per_epoch": 3, "validation_steps": 1},
                         # One bracket: Hyperband's second (the default) would start all 4 at the last rung.
                         search={"strategy": "random", "trials": 4, "halving": {"eta": 2, "min_epochs": 1, "brackets": 1}})
    config["grid"].update(units=[4, 8, 16, 32], act_in=["relu"], lr=[0.01])
    workflow.run("results/leaderboard.tsv", "--cores", "2", "--configfile", str(workflow.write_config(config)))
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    promoted = json.loads(workflow.path("results/brackets/0/2.json").read_text())["promoted"]
    assert [r["trial_id"] for r in rows[:2]] == promoted and {r["rung"] for r in rows[:2]} == {"1"}
    # Rung 0's ranking by front decided who went on.
    first = rank([json.loads(p.read_text()) for p in workflow.root.glob("results/trials/*/rungs/1/metrics.json")],
                 {**LOSS_AND_SIZE, "objectives": [{"metric": "val_loss", "direction": "min"},
                                                  {"metric": "params_count", "direction": "min"}]})
    assert [r["trial_id"] for r in first[:2]] == promoted
    assert summary_rows(workflow.path("results")) == rows  # halving's rungs and brackets, by front

    repeated = tiny_config(objective=two, repeats=2, confirm={"top": 2, "budget": {"epochs": 2}},
                           data={**tiny_config()["data"], "fraction": 0.5})
    repeated["data"]["train"] = "examples/digits.py:train_arrays"
    repeated["grid"].update(units=[8, 16, 32], act_in=["relu"], lr=[0.01])
    result = workflow.sweep(repeated)
    rows = read_leaderboard(workflow.path("results/leaderboard.tsv"))
    assert [r["confirmed"] for r in rows] == ["yes", "yes", "no"] and rows[0]["pareto_rank"] == "1"
    assert rows[0]["seeds"] == "2" and float(rows[0]["val_loss"]) == float(rows[0]["objective"])
    assert "Best params found:" in result.output


def violation(text, value):
    return pareto.parse_constraint(text, 0, "my.yaml").violation(value)


def test_a_violation_is_how_far_a_value_breaks_its_constraint_and_not_positive_if_kept():
    """Constraints as a sampler is told them (Optuna's convention: a value <= 0 is feasible)."""
    assert violation("params_count <= 50000", 60000) == 10000 and violation("params_count <= 50000", 40000) == -10000
    assert violation("val_accuracy >= 0.9", 0.85) == 0.9 - 0.85 and violation("val_accuracy > 0.9", 0.95) < 0
    assert violation("params_count <= 50000", 50000) == 0  # reached, kept: Optuna counts 0 as feasible
    # A strict bound reached is broken, if only just; a value that is not finite breaks any bound.
    assert 0 < violation("val_loss < 0.5", 0.5) < 1e-300 and 0 < violation("fit_seconds > 2", 2)
    assert violation("val_loss < 0.5", math.nan) == math.inf and violation("val_loss >= 0.5", math.inf) == math.inf


def test_ranking_on_a_measure_a_trial_never_recorded_says_to_retrain_it():
    old = {**record("a", 0.1), "measures": None}
    with pytest.raises(ConfigError, match=r"my\.yaml: objective\[1\]\.metric is 'params_count', but trial a was "
                                          r"trained before kerasgrid measured params_count\. Retrain it \(snakemake "
                                          r"--forcerun train\), or rank on what it logged: val_acc, val_loss\."):
        rank([old, record("b", 0.2)], LOSS_AND_SIZE, "my.yaml")
