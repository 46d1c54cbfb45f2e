"""What a finished run shows: the console leaderboard and `snakemake --report`'s HTML."""

import base64
import json
import re

from kerasgrid.results.leaderboard import read_leaderboard


def test_the_run_ends_with_the_leaderboard_and_then_the_winner(tiny_sweep):
    rows = read_leaderboard(tiny_sweep.path("results/leaderboard.tsv"))
    lines = tiny_sweep.result.stdout.splitlines()
    start = lines.index("Leaderboard: 4 trials by val_loss (lower is better)")
    table = lines[start + 1 :]
    assert table[0].split() == ["rank", "trial_id", "act_in", "act_out", "loss", "lr", "val_loss", "status"]
    assert [line.split()[:2] for line in table[1:5]] == [[row["rank"], row["trial_id"]] for row in rows]
    assert table[1].split()[-2:] == [f"{float(rows[0]['objective']):.6g}", "ok"]
    assert table[5] == "" and table[6].startswith(f"Best trial: {rows[0]['trial_id']} with val_loss = ")
    assert table[7:] == ["Best params found: {'act_in': " + repr(rows[0]["act_in"]) + ", 'act_out': 'sigmoid', "
                         f"'loss': 'mean_squared_error', 'lr': {rows[0]['lr']}}}"]


def embedded(html: str) -> dict[str, bytes]:
    """The report's embedded files (base64 data URIs), by file name."""
    found = re.findall(r"data:[\w/+.-]+;charset=[\w-]+;filename=([^;]+);base64,([A-Za-z0-9+/=]+)", html)
    return {name: base64.b64decode(data) for name, data in found}


def test_the_report_shows_the_winner_the_leaderboard_the_plots_and_the_config(tiny_sweep):
    tiny_sweep.run("--configfile", "my.yaml", "--report", "results/report.html")
    html = tiny_sweep.path("results/report.html").read_text(encoding="utf-8")
    files = embedded(html)
    for name in ("learning_curves.png", "param_effects.png", "ranking.png", "importance.png"):
        assert files[name] == tiny_sweep.path(f"results/plots/{name}").read_bytes()
    assert files["leaderboard.tsv"] == tiny_sweep.path("results/leaderboard.tsv").read_bytes()

    page = files["leaderboard.html"].decode("utf-8")
    rows = read_leaderboard(tiny_sweep.path("results/leaderboard.tsv"))
    assert f"Winner: trial <code>{rows[0]['trial_id']}</code> with val_loss = <b>{float(rows[0]['objective']):.6g}</b>" in page
    assert [re.sub("<.*?>", "", cell) for cell in re.findall(r"<tr class=.*?</tr>", page)][0].startswith(f"1{rows[0]['trial_id']}")
    assert all(f"<td>{row['trial_id']}</td>" in page for row in rows)

    description = json.loads(re.search(r"var workflow_desc = (.*);\n", html).group(1))
    assert "&quot;model&quot;: &quot;examples/digits.py:build_model&quot;" in description  # the config
    assert "the trials are ranked on the objective after the last epoch" in description
    assert "ranked on the objective" in description and "Plots</a>" in description
    captions = {entry["name"]: entry["caption"] for entry in json.loads(re.search(r"var results = ({.*});\n", html).group(1)).values()}
    assert "<tt class=\"docutils literal\">val_loss</tt> after each epoch for every trial" in captions["learning_curves.png"]
    assert "(lower is better); the winner's bar is green" in captions["ranking.png"]
    assert "the star is" in captions["param_effects.png"] and "the winner on top" in captions["leaderboard.html"]
    assert "explains on its own" in captions["importance.png"] and "With halving" not in captions["importance.png"]
