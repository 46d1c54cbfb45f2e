"""A trial told to stop before its job is killed: SLURM's warning before a time limit, a preemption.

On a cluster each train job asks SLURM for a warning before its time limit (the SLURM profile's
`slurm_extra: --signal=USR1@120`: SIGUSR1 to every process of the job's step; SLURM checks its
timers every 30 s and warns up to a minute early, so it comes 2.5 to 3 minutes before the limit). A preemption sends
SIGTERM, then kills the job once the partition's GraceTime has passed; the time limit itself sends
SIGTERM too, then SIGKILL after the cluster's KillWait (30 s by default).

The process that trains the trial (a worker, kerasgrid.running.workers) answers either signal with
`checkpoint.request_save_and_stop()`: at the next batch end the trial saves its checkpoint and
stops (`checkpoint.Interrupted`), its job ends with a non-zero status, Snakemake submits it again
(the profile's `preemptible-retries`), and the new job continues from the checkpoint.

That process is a worker of kerasgrid's, not the job's `snakemake`, because only a process's main
thread can set a signal handler, and in the job's `snakemake` the main thread is Snakemake's: its
scheduler takes SIGTERM for itself (it waits for the running job, which is what we want of it).
SIGUSR1, which SLURM sends to the `snakemake` of the job's step too, would end it (Python's
default), killing its worker with it: `shelter` has the job's `snakemake` ignore it.
"""

import os
import signal

from kerasgrid.trial import checkpoint

# What each signal means to a trial, for the line its log gets.
MEANINGS = {
    signal.SIGUSR1: "the warning SLURM sends before the job's time limit",
    signal.SIGTERM: "a preemption, the job's time limit, or a shutdown",
}


def install() -> None:
    """In the process that trains (its main thread): SIGUSR1 and SIGTERM save the trial and stop it."""
    for signum in MEANINGS:
        signal.signal(signum, _save_and_stop)


def _save_and_stop(signum, frame) -> None:
    checkpoint.request_save_and_stop()
    # os.write, not print: a handler may interrupt a print to the same stream, which print refuses.
    name = signal.Signals(signum).name
    line = (f"kerasgrid: {name} ({MEANINGS[signum]}): the trial saves its checkpoint at the next batch end and "
            "stops; its job then ends and runs again from there\n")
    try:
        os.write(2, line.encode("utf-8"))
    except OSError:
        pass


def in_cluster_job() -> bool:
    """Whether this process runs inside a SLURM job (the job's snakemake, or what it started)."""
    return "SLURM_JOB_ID" in os.environ


def shelter() -> None:
    """In a SLURM job's `snakemake` (main thread): ignore SIGUSR1, which is meant for the trial's
    worker (whose `install` sets its own handler: an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
