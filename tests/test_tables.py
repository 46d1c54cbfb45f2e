from kerasgrid.results.tables import console_lines, failure_lines, page, trial_message

MIN = {"metric": "val_loss", "direction": "min"}


def row(rank, trial_id, objective, status="ok", error="", **params):
    return {"rank": str(rank), "trial_id": trial_id, **params, "objective": objective, "status": status,
            "fit_seconds": "1.50", "error": error}


ROWS = [
    row(1, "aaaaaaaaaaaa", "0.0314844123", lr="0.001", act="relu"),
    row(2, "bbbbbbbbbbbb", "0.25", lr="0.01", act="x" * 40),
    row(3, "cccccccccccc", "", "diverged", "loss became NaN or infinite in epoch 1", lr="1.0", act="relu"),
    row(4, "dddddddddddd", "", "failed", "ValueError: <b>bad</b>", lr="0.1", act="tanh"),
]


def test_the_console_table_is_aligned_and_cut_to_the_top_rows():
    lines = console_lines(ROWS, MIN, top=3)
    assert lines[0] == "Leaderboard: top 3 of 4 trials by val_loss (lower is better)"
    assert lines[1].split() == ["rank", "trial_id", "lr", "act", "val_loss", "status"]
    assert lines[2].split() == ["1", "aaaaaaaaaaaa", "0.001", "relu", "0.0314844", "ok"]
    assert "x" * 23 + "…" in lines[3] and "x" * 25 not in lines[3]
    assert lines[4].split()[-2:] == ["-", "diverged"] and len(lines) == 5
    # Every column starts where its header does.
    for name in ("trial_id", "lr", "act", "status"):
        start = lines[1].index(name)
        assert all(line[start - 2 : start] == "  " for line in lines[2:])
    assert console_lines(ROWS[:1], {"metric": "acc", "direction": "max"})[0] == "Leaderboard: 1 trials by acc (higher is better)"


def test_the_page_names_the_winner_marks_failures_and_escapes_values():
    html = page(ROWS, MIN)
    assert "Winner: trial <code>aaaaaaaaaaaa</code> with val_loss = <b>0.0314844</b>" in html
    assert "4 trials (2 ok, 1 diverged, 1 failed)" in html
    assert '<tr class="rank3 diverged">' in html and '<tr class="rank4 failed">' in html
    assert "ValueError: &lt;b&gt;bad&lt;/b&gt;" in html and "<b>bad</b>" not in html
    failed_first = page([ROWS[3]], MIN)
    assert "No trial finished ok, so there is no winner." in failed_first


def test_the_trials_that_did_not_finish_ok_are_said_with_their_reason_the_count_and_where_their_logs_are():
    failed = {**ROWS[3], "reason": "ValueError: <b>bad</b> (model.py:21)"}
    rows = [*ROWS[:3], failed]
    assert failure_lines(rows) == [
        "Trial cccccccccccc diverged: loss became NaN or infinite in epoch 1",
        "Trial dddddddddddd failed: ValueError: <b>bad</b> (model.py:21)",
        "1 of 4 trials failed and 1 diverged; each one's log is in logs/trials/, named by its trial id.",
    ]
    assert failure_lines(rows, "my/leaderboard.tsv", top=1)[1:] == [
        "... 1 more: my/leaderboard.tsv lists them all",
        "1 of 4 trials failed and 1 diverged; each one's log is in logs/trials/, named by its trial id."]
    assert failure_lines(rows[:3])[-1] == "1 of 3 trials diverged; each one's log is in logs/trials/, named by its trial id."
    assert failure_lines(ROWS[:2]) == []
    # The page says the same reason, the whole error on hover.
    assert ('<td class="error" title="ValueError: &lt;b&gt;bad&lt;/b&gt;">ValueError: &lt;b&gt;bad&lt;/b&gt; '
            "(model.py:21)</td>") in page(rows, MIN)


def test_a_train_jobs_message_names_its_place_and_its_params_shortly():
    params = {"units": 128, "lr": 0.01, "act": "relu", "note": "a long\tdescription " * 3, "shape": [1, 2],
              "flag": True, "none": None}
    assert trial_message(5, 16, params, "307daa763fbd") == (
        "Model 5 of 16: act=relu, flag=true, lr=0.01, none=null, note=a long description a lo…, shape=[1, 2], "
        "units=128 (trial 307daa763fbd)"
    )


def test_an_adaptive_search_shows_the_round_of_each_trial():
    rows = [{**r, "round": str(number // 2)} for number, r in enumerate(ROWS)]
    lines = console_lines(rows, MIN)
    assert lines[1].split() == ["rank", "trial_id", "lr", "act", "val_loss", "status", "round"]
    assert [line.split()[-1] for line in lines[2:]] == ["0", "0", "1", "1"]
    assert "<th>round</th>" in page(rows, MIN) and '<td class="num">1</td>' in page(rows, MIN)
