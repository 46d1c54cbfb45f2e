"""kerasgrid.trial.reasons: a failed trial's reason in a line, naming the user's file and line."""

import traceback

import pytest

from kerasgrid import records
from kerasgrid.sweep.refs import load, parse_ref
from kerasgrid.trial import reasons

USER_CODE = """\
import yaml
from kerasgrid import records
def build_model(params):
    return params["mometum"]
def reads_yaml(params):
    return yaml.safe_load("[unclosed")
def reads_records(params):
    return records.read_json("no/such/file.json")
"""


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """models/net.py in the working folder, loaded as a trial loads the config's references."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(USER_CODE, encoding="utf-8")
    return lambda name: load(parse_ref(f"models/net.py:{name}", "model", "my.yaml"))


def raised(function) -> BaseException:
    try:
        function({"momentum": 0.9})
    except Exception as exc:  # noqa: BLE001 - the test looks at whatever it raised
        # As run_trial catches it: the traceback starts in kerasgrid, not in this test.
        return exc.with_traceback(exc.__traceback__.tb_next)
    raise AssertionError("it did not raise")


def test_a_reason_names_the_exception_its_message_and_the_users_file_and_line(user_code):
    assert reasons.reason(raised(user_code("build_model"))) == "KeyError: 'mometum' (models/net.py:4)"


@pytest.mark.parametrize("name, line, raised_in", [("reads_yaml", 6, "yaml."), ("reads_records", 8, "kerasgrid.")])
def test_the_users_line_is_the_innermost_frame_in_their_files(user_code, name, line, raised_in):
    exc = raised(user_code(name))
    *_, (innermost, _) = traceback.walk_tb(exc.__traceback__)
    assert innermost.f_globals["__name__"].startswith(raised_in)  # an installed package's, kerasgrid's
    assert reasons.reason(exc).endswith(f" (models/net.py:{line})")


def test_a_message_is_cut_to_a_line():
    assert reasons.one_line("first   line\n\nsecond line") == "first line …"
    assert reasons.one_line("\n  only\n") == "only"
    long = reasons.one_line("x" * 500)
    assert len(long) == reasons.WIDTH and long.endswith("…")
    assert reasons.reason(ValueError("bad shape\n  with a long explanation"), None) == "ValueError: bad shape …"


def test_a_reason_drops_the_terminal_codes_keras_puts_in_its_messages():
    message = "Input 0 of layer \x1b[1m\"dense\"\x1b[0m is incompatible with the layer"
    assert reasons.reason(ValueError(message)) == 'ValueError: Input 0 of layer "dense" is incompatible with the layer'


def test_without_a_frame_of_the_users_the_reason_has_no_place():
    assert reasons.reason(KeyError("mometum")) == "KeyError: 'mometum'"  # never raised: no traceback
    exc = raised(records.read_json)  # raised in kerasgrid alone: open() of a dict
    assert reasons.reason(exc) == "TypeError: expected str, bytes or os.PathLike object, not dict"


@pytest.mark.parametrize("row, shown", [
    ({"status": "failed", "reason": "KeyError: 'mometum' (model.py:21)", "error": "KeyError: 'mometum'"},
     "failed: KeyError: 'mometum' (model.py:21)"),
    ({"status": "diverged", "reason": "", "error": "loss became NaN or infinite in epoch 3; training stopped there"},
     "diverged: loss became NaN or infinite in epoch 3; training stopped there"),  # a leaderboard of before
    ({"status": "failed", "error": "TrialKilled: killed\nby signal 9"}, "failed: TrialKilled: killed …"),
    ({"status": "failed", "reason": "", "error": ""}, "failed"),
    ({"status": "ok", "reason": "", "error": ""}, "ok"),
])
def test_the_console_plots_and_page_say_a_status_and_its_reason_alike(row, shown):
    assert reasons.of_row(row) == shown
