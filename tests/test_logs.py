"""kerasgrid/running/logs.py: TensorFlow's C++ start-up lines kept off the console."""

import os

import pytest

from kerasgrid.errors import NoSuccessfulTrial
from kerasgrid.running.logs import error_log, tensorflow_start_hidden

# What TensorFlow 2.21 wrote to stderr on its import here (lines 1 to 5), before absl's format
# (6), and at level warning and error; then what must still reach the console: what the user's
# code prints, Python's warnings, a fatal error.
START_UP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796624118.594093    5168 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796624118.594810    5168 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "I1207 06:15:19.224359    5170 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available "
    "CPU instructions in performance-critical operations.",
    "E0000 00:00:1796624123.768822    5170 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "2024-01-11 05:40:05.061907: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "W0000 00:00:1758131045.228000 3722035 computation_placer.cc:177] computation placer already registered.",
]
KEPT = [
    "model.py: loading the digits",
    "model.py:3: DeprecationWarning: old_api is deprecated",
    "F0000 00:00:1796624118.594810    5168 cuda_executor.cc:12] Check failed: device",
]


def write_to_fd_2(lines):
    """As TensorFlow's C++ code and the user's do: to the file descriptor, past sys.stderr."""
    for line in lines:
        os.write(2, f"{line}\n".encode())


def test_tensorflow_start_up_lines_stay_off_the_console_and_all_else_reaches_it(monkeypatch, capfd):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with tensorflow_start_hidden():
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"  # what TensorFlow filters itself, once it reads it
        write_to_fd_2(START_UP[:3] + KEPT[:1] + START_UP[3:] + KEPT[1:])
    assert capfd.readouterr().err.splitlines() == KEPT
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    write_to_fd_2(START_UP[:1])  # stderr as it was
    assert capfd.readouterr().err.splitlines() == START_UP[:1]


def test_a_tf_cpp_min_log_level_of_the_users_lets_tensorflow_filter_alone(monkeypatch, capfd):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with tensorflow_start_hidden():
        write_to_fd_2(START_UP + KEPT)
    assert capfd.readouterr().err.splitlines() == START_UP + KEPT
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_error_log_puts_a_blocks_error_in_the_jobs_log_and_lets_it_go_on(tmp_path):
    log = tmp_path / "job.log"
    with error_log(log):  # a job in snakemake's own process: nothing of the console is redirected
        print("on the console")
    assert log.read_text() == ""  # created, as Snakemake expects a job's log
    with pytest.raises(NoSuccessfulTrial, match="no winner"), error_log(log):
        raise NoSuccessfulTrial("All 2 trials failed, no winner")
    assert log.read_text() == "kerasgrid: All 2 trials failed, no winner\n"  # the paragraph, no traceback
    with pytest.raises(ZeroDivisionError), error_log(log):
        1 / 0
    assert "Traceback" in log.read_text() and log.read_text().endswith("ZeroDivisionError: division by zero\n")
