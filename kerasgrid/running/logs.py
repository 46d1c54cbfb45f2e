"""Running a rule script's body with its output, TensorFlow's C++ logging included, in its log."""

import contextlib
import os
import sys
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
