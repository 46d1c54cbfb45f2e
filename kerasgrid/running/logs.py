"""Running a rule script's body with its output, TensorFlow's C++ logging included, in its log;
and keeping that logging off the console where kerasgrid imports TensorFlow with no log to send it to."""

import contextlib
import os
import re
import sys
import threading
import traceback

from kerasgrid.errors import KerasgridError, storage_error

# What a job writes, relative to the workflow's folder: a permission error or a vanished folder
# there is the disk's doing; anywhere else it may be the user's code reading its data.
SWEEP_FOLDERS = ("results", "logs", ".snakemake")


class Reported(SystemExit):
    """A KerasgridError whose paragraph is already on the console and in the job's log: the job
    exits with status 1. `error` is the KerasgridError, for a warm worker to pass on."""

    def __init__(self, error: KerasgridError):
        super().__init__(1)
        self.error = error


@contextlib.contextmanager
def job_log(path):
    """Redirect file descriptors 1 and 2 (not just sys.stdout) to `path` for the block.

    A KerasgridError ends the job with its one-paragraph message on the console and in the log,
    without a traceback, and so does a disk that is full, read-only or gone (kerasgrid's
    StorageError); any other error keeps its traceback in both.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        log = open(path, "a", encoding="utf-8")
    except OSError as exc:  # logs/ itself cannot be written: the console alone hears of it
        if (error := storage_error(exc, path)) is None:
            raise
        print(f"kerasgrid: {error}", file=sys.stderr, flush=True)
        raise Reported(error) from None
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(2), "w", encoding="utf-8")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    except BaseException as exc:
        error = exc if isinstance(exc, KerasgridError) else storage_error(exc, within=SWEEP_FOLDERS)
        if error is None:
            traceback.print_exc()
            raise
        for stream in (sys.stderr, console):
            with contextlib.suppress(OSError):  # a full disk may hold the log too
                print(f"kerasgrid: {error}", file=stream, flush=True)
        raise Reported(error) from None
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        for handle in (console, log):
            with contextlib.suppress(OSError):
                handle.close()


@contextlib.contextmanager
def error_log(path):
    """The block's error, if any, in the job's log `path` (created, empty, if none); the error goes on.

    For a job whose run block runs in the main snakemake process: its file descriptors are the
    console's and every other job's, not the job's to redirect as job_log does. A KerasgridError is
    its one paragraph, any other error its traceback."""
    with open(path, "a", encoding="utf-8"):
        pass
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as log:
            if isinstance(exc, KerasgridError):
                print(f"kerasgrid: {exc}", file=log)
            else:
                traceback.print_exception(exc, file=log)
        raise


# A line of TensorFlow's C++ logging, as absl writes it ("I0000 00:00:1796624147.218632    7586
# port.cc:153] oneDNN custom operations are on...") or as TensorFlow's own logger did before it
# ("2024-01-11 05:40:05.061907: I tensorflow/core/platform/cpu_feature_guard.cc:182] ..."), of
# severity info, warning or error; and absl's note before the first of them.
TENSORFLOW_LOG_LINE = re.compile(
    r"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [^ \]]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$)"
)


@contextlib.contextmanager
def tensorflow_start_hidden():
    """Keep TensorFlow's C++ start-up lines off stderr while the block imports it, unless the user
    set TF_CPP_MIN_LOG_LEVEL, in which case TensorFlow's own filter applies and nothing changes.

    For a process whose stderr is the console (`kerasgrid check`), not for one whose output goes to a
    log: the trials' processes keep these lines in their logs. They are noise to a user ("oneDNN custom
    operations are on", "Could not find cuda drivers", "This TensorFlow binary is optimized to use
    available CPU instructions"), and TF_CPP_MIN_LOG_LEVEL alone does not hide them: TensorFlow 2.21
    writes some before it reads it. So the block's file descriptor 2 goes through a pipe that drops
    those lines and passes on everything else as it comes (Python's warnings, a fatal error, what the
    user's code prints); and TF_CPP_MIN_LOG_LEVEL is 3 for the block, which drops the rest, a
    message's further lines included (cpu_feature_guard's "To enable the following instructions").
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield
        return
    sys.stderr.flush()
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    read_fd, write_fd = os.pipe()
    console = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    forward = threading.Thread(target=_pass_on, args=(read_fd, console), daemon=True)
    forward.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os.dup2(console, 2)  # the pipe's last writer gone: _pass_on reads to its end and stops
        forward.join(timeout=10)  # unless a process the block started holds it still
        if not forward.is_alive():
            os.close(console)
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


def _pass_on(read_fd: int, console: int) -> None:
    with os.fdopen(read_fd, "rb") as pipe, os.fdopen(console, "wb", closefd=False) as out:
        for line in pipe:
            if not TENSORFLOW_LOG_LINE.match(line.decode("utf-8", "replace")):
                out.write(line)
                out.flush()
