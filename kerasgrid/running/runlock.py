"""Freeing the lock of a `snakemake` run that was killed (SIGKILL, OOM, a closed terminal).

Snakemake locks the working directory for the length of a run and refuses a second run while the
lock stands, which is what we want; but a run killed with SIGKILL never removes its lock, and the
next run would refuse too until the user found `--unlock`. So each run records its pid and host,
and the next run on the same host removes the lock if that process is gone. A run on another host
(a shared file system) is never second-guessed.
"""

import json
import os
import shutil
import socket
import uuid
from pathlib import Path

OWNER = Path(".snakemake/kerasgrid-run.json")
LOCKS = Path(".snakemake/locks")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_stale_lock() -> str | None:
    """Remove the locks of a run on this host whose process is gone; return what was done."""
    try:
        owner = json.loads(OWNER.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if owner.get("host") != socket.gethostname() or _alive(owner.get("pid", -1)):
        return None
    shutil.rmtree(LOCKS, ignore_errors=True)
    OWNER.unlink(missing_ok=True)
    return f"kerasgrid: removed the lock left by a killed snakemake run (pid {owner['pid']})."


def claim() -> None:
    """Record this process as the run holding the lock, under a run id of its own."""
    OWNER.parent.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "run": uuid.uuid4().hex}
    OWNER.write_text(json.dumps(owner), encoding="utf-8")


def current_run() -> str | None:
    """The id of the run that holds this folder now (read by its jobs too), or None outside a run."""
    try:
        return json.loads(OWNER.read_text(encoding="utf-8")).get("run")
    except (OSError, ValueError):
        return None


def release() -> None:
    OWNER.unlink(missing_ok=True)
