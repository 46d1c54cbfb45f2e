"""Running a rule script's body with its output, TensorFlow's C++ logging included, in its log."""

import contextlib
import os
import sys
import traceback

from kerasgrid.errors import KerasgridError


@contextlib.contextmanager
def job_log(path):
    """Redirect file descriptors 1 and 2 (not just sys.stdout) to `path` for the block.

    A KerasgridError ends the job with its one-paragraph message on the console and in the log,
    without a traceback; any other error keeps its traceback in both.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(2), "w", encoding="utf-8")
    with open(path, "a", encoding="utf-8") as log, console:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except KerasgridError as exc:
            for stream in (sys.stderr, console):
                print(f"kerasgrid: {exc}", file=stream, flush=True)
            raise SystemExit(1) from None
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
