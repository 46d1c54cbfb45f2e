"""The one family of errors kerasgrid raises on purpose, and the states a trial ends in."""

import contextlib
import errno
import os
import site
import sys
import sysconfig
import traceback
from enum import Enum
from pathlib import Path


class KerasgridError(Exception):
    """Base of every error kerasgrid raises on purpose."""


class ConfigError(KerasgridError):
    """The sweep's configuration is wrong; the message names the file, the key and the fix."""


class DataError(KerasgridError):
    """A data callable returned something kerasgrid cannot train on."""


class ModelError(KerasgridError):
    """A model callable returned something kerasgrid cannot train."""


class NoSuccessfulTrial(KerasgridError):
    """Every trial of the sweep failed or diverged, so there is no winner."""


class NotReproducible(KerasgridError):
    """Training a trial again did not reproduce the objective recorded for it."""


class StorageError(KerasgridError):
    """A file of the sweep could not be written: the disk is full, read-only, or gone."""


@contextlib.contextmanager
def exit_with_paragraph():
    """For the checks the workflow makes while Snakemake reads it (the Snakefile, common.smk): a
    KerasgridError ends the run with its paragraph alone on stderr, as "kerasgrid: <paragraph>",
    and exit status 1. Raised on into Snakemake, the paragraph would come after "ConfigError in
    file ".../workflow/rules/common.smk", line 31:" and before frames of kerasgrid's own code,
    which is what Snakemake prints for any exception a Snakefile raises, WorkflowError included.
    Nothing has run yet at that point, so nothing is lost by ending there."""
    try:
        yield
    except KerasgridError as error:
        print(f"kerasgrid: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
# Code that is not the user's, wherever it is installed (an editable install is not in
# site-packages): a frame of these modules is never the one an error's line names.
NOT_THE_USERS = ("kerasgrid", "keras", "tensorflow", "tf_keras")


def _library_folders() -> list[str]:
    """Where Python's own modules and installed packages live."""
    paths = sysconfig.get_paths()
    folders = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    folders += [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    return [os.path.realpath(folder) for folder in folders if folder]


def _is_users(frame, libraries: list[str]) -> bool:
    filename = frame.f_code.co_filename
    if not filename or filename.startswith("<"):  # <frozen ...>, <string>: Python's or generated
        return False
    if str(frame.f_globals.get("__name__", "")).partition(".")[0] in NOT_THE_USERS:
        return False
    path = os.path.realpath(filename)
    parts = Path(path).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not any(path == folder or path.startswith(folder + os.sep) for folder in libraries)


def shown_path(filename: str) -> str:
    """A file as the user would write it: relative to the working folder (where snakemake runs, as
    the config's references are), unless its absolute path is shorter."""
    absolute = os.path.abspath(filename)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive
        return absolute
    return relative if len(relative) <= len(absolute) else absolute


def user_line(exc: BaseException) -> tuple[str, int] | None:
    """Where the user's code raised `exc`, as (file as `shown_path` writes it, line): its deepest
    frame outside Python's, the installed packages', Keras', TensorFlow's and kerasgrid's own, or
    the line of a SyntaxError; None if no frame of the user's is in it (Keras raised while
    building, say)."""
    if isinstance(exc, SyntaxError) and exc.filename:  # in a module the user's file imports
        return shown_path(exc.filename), exc.lineno
    libraries = _library_folders()
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if _is_users(frame, libraries):
            found = shown_path(frame.f_code.co_filename), line
    return found


# What each storage errno means to the user, and what to do about it ({folder}: the folder that
# could not be written). Anything else that goes wrong with a file is a bug or the user's code's.
_STORAGE = {
    errno.ENOSPC: ("the disk is full", "Free space on the disk that holds {folder} (`df -h {folder}` shows how much is left)"),
    errno.EDQUOT: ("your disk quota is used up", "Free some of your quota (`quota -s` shows it) or ask for more"),
    errno.EROFS: ("the file system is read-only", "Mount {folder} writable, or run the sweep from a folder on a writable disk"),
    errno.EACCES: ("this user may not write there", "Give the user running snakemake write permission on {folder} (`ls -ld {folder}`)"),
    errno.EPERM: ("this user may not write there", "Give the user running snakemake write permission on {folder} (`ls -ld {folder}`)"),
    errno.ENOENT: ("its folder has vanished (deleted or unmounted)", "Check that {folder} exists and its disk is mounted"),
    errno.ESTALE: ("its network file system lost track of it", "Check that {folder}'s network disk is mounted and reachable"),
    errno.EIO: ("the disk reported an input/output error", "Check the disk that holds {folder}"),
}


# These say something about the disk whatever the file; a permission error or a missing folder
# could as well be the user's code reading its data, so they count only for the sweep's own files.
_ANY_FILE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ESTALE, errno.EIO}


def storage_error(exc: BaseException, path=None, within=None, where=None) -> StorageError | None:
    """The one-paragraph StorageError for an OSError (or one it was raised from) that a full,
    read-only or vanished disk caused while writing `path` (default: the file the error names, or
    else some file in the folder `where`); None for any other error. `within`: the folders the
    sweep writes, to tell a permission error or a vanished folder there from one the user's code
    met elsewhere (default: any)."""
    while exc is not None and not (isinstance(exc, OSError) and exc.errno in _STORAGE):
        if isinstance(exc, StorageError):
            return exc
        exc = exc.__cause__ or exc.__context__
    if exc is None:
        return None
    path = os.fspath(path or exc.filename or where or ".")
    if within is not None and exc.errno not in _ANY_FILE and not _inside(path, within):
        return None
    what, fix = _STORAGE[exc.errno]
    if path == os.fspath(where or ""):
        target, folder = f"a file in {path}", path
    else:
        target, folder = path, os.path.dirname(path) or "."
    while exc.errno != errno.ENOENT and not os.path.isdir(folder) and os.path.dirname(folder) not in ("", folder):
        folder = os.path.dirname(folder)  # the nearest that is there, for `df` or `ls`
    error = StorageError(
        f"could not write {target}: {what} ({os.strerror(exc.errno)}). Every trial that finished is kept "
        "(a trial's metrics.json is written whole or not at all), and the next snakemake run trains only "
        f"the trials that did not finish. {fix.format(folder=folder)}, then run snakemake again."
    )
    error.__cause__ = exc
    return error


def _inside(path, folders) -> bool:
    path = os.path.abspath(path)
    return any(os.path.commonpath([path, os.path.abspath(f)]) == os.path.abspath(f) for f in folders if f)


class Status(str, Enum):
    """How a trial ended. Ranked in this order: ok trials first, failed ones last."""

    OK = "ok"
    DIVERGED = "diverged"
    FAILED = "failed"


class Direction(str, Enum):
    """Whether a smaller or a larger objective is better."""

    MIN = "min"
    MAX = "max"
