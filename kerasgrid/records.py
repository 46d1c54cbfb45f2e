"""Reading and writing the plain files a sweep leaves behind, atomically."""

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path

from kerasgrid.errors import storage_error

# What a trial measures besides its Keras history, in its metrics.json under `measures`: trainable
# parameters, seconds in fit, and the median milliseconds to predict one batch, warm, after training.
# Each is usable as an objective or in a constraint, as a logged metric is.
MEASURES = ("params_count", "fit_seconds", "predict_ms")


def write_text(path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the whole new one, never half."""
    write_bytes(path, text.encode("utf-8"))


def _new_temporary(path: Path) -> Path:
    """Create an empty, uniquely named file beside `path`, with the mode `open(path, "w")` gives.

    Not `tempfile.mkstemp`: its files are 0600 whatever the umask, and the rename would carry
    that onto the result, which teammates and web servers sharing the folder could not read.
    Created with 0666 and the umask applied by the kernel (and a directory's default ACL), as
    `open()` does; O_EXCL keeps two writers apart, as mkstemp's does.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def _replacing(path):
    """A temporary file beside `path`, moved onto it when the block ends, removed if it fails.

    A full, read-only or vanished disk raises a StorageError that names `path` and says what to do.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_temporary(path)
    except OSError as exc:
        if error := storage_error(exc, path):
            raise error
        raise
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # Writing the file, not reading what goes into it (copy_file's source).
        ours = isinstance(exc, OSError) and exc.filename in (None, str(tmp), str(path))
        if ours and (error := storage_error(exc, path)):
            raise error
        raise


def check_writable(folder) -> None:
    """Raise a StorageError if files cannot be created in `folder` (read-only, not ours, gone),
    so that a run says so before it starts rather than in its first job."""
    folder = Path(folder)
    if not folder.is_dir():
        return  # Snakemake makes it, or says why it cannot
    try:
        os.unlink(_new_temporary(folder / ".kerasgrid-check"))
    except OSError as exc:
        raise storage_error(exc, folder, where=folder) or exc


def write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically, as `write_text` writes text."""
    with _replacing(path) as tmp, open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def write_json(path, data) -> None:
    # allow_nan=False: a NaN must become null (or a diverged status) before it reaches a file.
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def copy_file(source, path) -> None:
    """Copy `source` to `path` atomically, as `write_text` writes."""
    with _replacing(path) as tmp:
        shutil.copyfile(source, tmp)


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
