"""An error that would only happen again is paid for once per run, not once per retry.

Snakemake's retries (1 in the default profile) are for jobs killed from outside, by the
out-of-memory killer or a time limit: tried again, they may well finish. An error kerasgrid raises
on purpose (an objective the model does not log, a winner that does not train to its recorded
objective again) says something about the config or the code, and would come back after as long
a training. So the job records it, and the job's next attempt in the same run raises it again at
once, on this machine or on a cluster node (the record is a file in the run's folder). Records
carry the run's id (`runlock.current_run`): the next run, after the user's fix, trains again.
"""

import contextlib
import hashlib
import shutil
from pathlib import Path

from kerasgrid import records
from kerasgrid.errors import KerasgridError, StorageError
from kerasgrid.running import runlock

ERRORS = Path(".snakemake/kerasgrid-errors")


class RepeatedError(KerasgridError):
    """A job's earlier attempt in this run stopped with this error, which would only happen again."""


def _record(job_log) -> Path:
    # One record per job, named by its log (logs/trials/<id>.log, logs/best_model.log).
    return ERRORS / f"{hashlib.sha256(str(job_log).encode('utf-8')).hexdigest()[:16]}.json"


def remember(job_log, error: str) -> None:
    """Record that the job logging to `job_log` stopped with `error` in the current run."""
    run = runlock.current_run()
    if run is not None:  # outside a run (a Python session) nothing is retried
        # On a disk too full for the record, the next attempt trains again, and fails as this did.
        with contextlib.suppress(StorageError):
            records.write_json(_record(job_log), {"run": run, "log": str(job_log), "error": error})


def raise_if_failed_before(job_log) -> None:
    """Raise RepeatedError if this job's earlier attempt in the current run stopped with an error."""
    run = runlock.current_run()
    try:
        earlier = records.read_json(_record(job_log))
    except (OSError, ValueError):
        return
    if run is not None and earlier.get("run") == run:
        raise RepeatedError(
            f"{earlier['error']} (The same error as this job's earlier attempt in this run; it would only "
            "happen again, so the job is not run again. Fix the cause and run snakemake again.)"
        )


def died(job_log) -> int:
    """Count a death of the process of the job logging to `job_log` (killed: out of memory,
    SIGKILL) in the current run; the deaths so far in this run, this one included. On a cluster
    each attempt is a job of its own, so the count lives in the run's folder as the errors do;
    outside a run it is 1."""
    run = runlock.current_run()
    path = _record(job_log).with_suffix(".deaths.json")
    try:
        earlier = records.read_json(path)
    except (OSError, ValueError):
        earlier = {}
    deaths = (earlier.get("deaths", 0) if run is not None and earlier.get("run") == run else 0) + 1
    if run is not None:
        with contextlib.suppress(StorageError):
            records.write_json(path, {"run": run, "log": str(job_log), "deaths": deaths})
    return deaths


def forget() -> None:
    """Drop every record: called when a run starts."""
    shutil.rmtree(ERRORS, ignore_errors=True)
