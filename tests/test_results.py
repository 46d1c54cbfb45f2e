import json

import pytest
import yaml

from kerasgrid.errors import ConfigError, NoSuccessfulTrial
from kerasgrid.results.leaderboard import read_leaderboard, winner_lines, write_best, write_leaderboard
from kerasgrid.results.ranking import rank

MIN = {"metric": "val_loss", "direction": "min"}


def record(trial_id, status="ok", val_loss=None, params=None, error=None):
    metrics = {} if val_loss is None else {
        "val_loss": {"final": val_loss}, "val_acc": {"final": 1 - val_loss}}
    return {"trial_id": trial_id, "status": status, "params": params or {"lr": 0.1, "act": "relu"},
            "metrics": metrics, "fit_seconds": 1.5, "error": error}


def write(tmp_path, records):
    paths = []
    for r in records:
        path = tmp_path / "trials" / r["trial_id"] / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(r))
        paths.append(path)
    return paths


def test_ok_trials_rank_by_objective_then_diverged_then_failed():
    records = [record("a", "failed", error="ValueError: x"), record("b", val_loss=0.5), record("c", "diverged"),
               record("d", val_loss=0.2), record("e", val_loss=0.5)]
    assert [r["trial_id"] for r in rank(records, MIN)] == ["d", "b", "e", "c", "a"]
    assert [r["trial_id"] for r in rank(records, {"metric": "val_acc", "direction": "max"})] == ["d", "b", "e", "c", "a"]
    assert [r["trial_id"] for r in rank(records, {"metric": "val_acc", "direction": "min"})] == ["b", "e", "d", "c", "a"]


def test_an_objective_no_trial_logged_names_what_they_log():
    with pytest.raises(ConfigError, match=r"my\.yaml: objective\.metric is 'val_auc', but trial b logged only: val_acc, val_loss\."):
        rank([record("b", val_loss=0.5)], {"metric": "val_auc", "direction": "max"}, "my.yaml")


def test_leaderboard_has_a_row_per_trial_best_first(tmp_path):
    records = [record("b", val_loss=0.5, params={"lr": 0.1, "act": "relu", "units": [8, 4]}),
               record("a", "failed", error="ValueError: bad\tinput\nline two", params={"lr": 1.0, "act": "tanh", "units": [8]}),
               record("d", val_loss=0.25, params={"lr": 0.01, "act": "a b", "units": [8]})]
    out = tmp_path / "leaderboard.tsv"
    write_leaderboard(write(tmp_path, records), MIN, ["lr", "act", "units"], out)
    rows = read_leaderboard(out)
    assert list(rows[0]) == ["rank", "trial_id", "lr", "act", "units", "objective", "status", "fit_seconds", "reason", "error"]
    assert [(r["rank"], r["trial_id"], r["status"]) for r in rows] == [("1", "d", "ok"), ("2", "b", "ok"), ("3", "a", "failed")]
    assert rows[0]["objective"] == "0.25" and rows[0]["act"] == "a b" and rows[1]["units"] == "[8, 4]"
    assert rows[2]["objective"] == "" and rows[2]["error"] == "ValueError: bad input line two"
    assert rows[2]["reason"] == "ValueError: bad input …" and rows[0]["reason"] == ""  # a line, as the console says it


def test_a_grid_key_named_like_a_column_gets_a_prefix(tmp_path):
    out = tmp_path / "leaderboard.tsv"
    write_leaderboard(write(tmp_path, [record("b", val_loss=0.5, params={"status": "x"})]), MIN, ["status"], out)
    assert read_leaderboard(out)[0]["param.status"] == "x"


def test_best_params_name_the_winner_and_the_console_line_reads_them(tmp_path):
    paths = write(tmp_path, [record("b", val_loss=0.5), record("d", val_loss=0.25, params={"lr": 0.01, "act": "ünï"})])
    write_leaderboard(paths, MIN, ["lr", "act"], tmp_path / "leaderboard.tsv")
    out = tmp_path / "best_params.yaml"
    write_best(tmp_path / "leaderboard.tsv", MIN, out)
    assert yaml.safe_load(out.read_text()) == {
        "trial_id": "d", "objective": {"metric": "val_loss", "direction": "min", "value": 0.25}, "params": {"lr": 0.01, "act": "ünï"}}
    assert winner_lines(out) == ["Best trial: d with val_loss = 0.25 (min)", "Best params found: {'lr': 0.01, 'act': 'ünï'}"]


def test_no_winner_when_every_trial_failed_or_diverged(tmp_path):
    paths = write(tmp_path, [record("a", "failed", error="ValueError: boom"), record("c", "diverged", error="loss became NaN")])
    write_leaderboard(paths, MIN, ["lr", "act"], tmp_path / "leaderboard.tsv")
    with pytest.raises(NoSuccessfulTrial, match=r"All 2 trials failed or diverged.*The errors: diverged: loss became NaN; failed: ValueError: boom$"):
        write_best(tmp_path / "leaderboard.tsv", MIN, tmp_path / "best_params.yaml")
    assert not (tmp_path / "best_params.yaml").exists()


def test_an_adaptive_search_leaderboard_names_the_round_of_each_trial(tmp_path):
    records = [record("b", val_loss=0.5, params={"round": "a grid key"}), record("a", "failed", error="E: x"),
               record("d", val_loss=0.25)]
    out = tmp_path / "leaderboard.tsv"
    write_leaderboard(write(tmp_path, records), MIN, ["round"], out, rounds={"a": 0, "b": 1, "d": 1})
    rows = read_leaderboard(out)
    assert list(rows[0]) == ["rank", "trial_id", "param.round", "objective", "status", "fit_seconds", "reason", "error", "round"]
    assert [(r["trial_id"], r["round"]) for r in rows] == [("d", "1"), ("b", "1"), ("a", "0")]
    assert rows[1]["param.round"] == "a grid key"
