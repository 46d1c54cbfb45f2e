"""Checkpoints inside a trial: its whole state saved every few minutes of training, so that a trial
killed mid-way (kill -9, the OOM killer, a SLURM time limit or preemption) continues where it
stopped when its job runs again, and ends bit-identical to an unbroken run.

A checkpoint is what a halving rung's state holds (kerasgrid.trial.resume: every variable of the
model and its optimizer, the history, the user's callbacks' state), plus what a run stopped inside
an epoch needs: the step within the epoch, the epoch's metric states (the running mean of the
loss) and the history rows written so far. It lives in the trial's folder, `checkpoint/`, not a
declared output of any rule (Snakemake removes an incomplete job's outputs before rerunning it), and
is removed once the trial's record is written.

Stopping on request: a process that trains can be told to save and stop, e.g. from a signal
handler (SLURM's `--signal` before a time limit, SIGTERM before a preemption):

    signal.signal(signal.SIGUSR1, lambda *_: checkpoint.request_save_and_stop())

At the next batch end the trial writes its checkpoint (as a periodic one) and raises
`Interrupted`. The trial is not finished: no metrics.json is written, nothing is recorded as
failed. The process (a train job, a warm worker's task) must let it end the job with a non-zero
exit status, `EXIT_STATUS`, so that Snakemake counts the job as incomplete and runs it again
(the profile's retries, or the next invocation); the rerun resumes from the checkpoint.
"""

# A request to save and stop, set from a signal handler: a plain module global, which a handler can
# set without taking a lock (Python runs handlers in the main thread between bytecodes; a lock the
# interrupted code holds would deadlock). Reading and writing a bool is atomic under the GIL.
_stop = False

# The exit status of a process that ends because of `Interrupted`: EX_TEMPFAIL (sysexits.h),
# "try again later", which is what it means. Any non-zero status makes Snakemake rerun the job.
EXIT_STATUS = 75


def request_save_and_stop() -> None:
    """Ask the trial training in this process to save a checkpoint at its next batch end and stop
    (raising `Interrupted`). Safe to call from a signal handler or another thread: it sets a flag,
    nothing else. A process that trains no trial at the moment keeps the request for the next."""
    global _stop
    _stop = True


def stop_requested() -> bool:
    """Whether `request_save_and_stop` was called and not yet answered by a checkpoint."""
    return _stop


def clear_request() -> None:
    """Forget a request to stop (once a trial has saved and stopped for it)."""
    global _stop
    _stop = False


class Interrupted(Exception):
    """A trial saved its checkpoint and stopped because it was asked to (`request_save_and_stop`).

    Not a KerasgridError and not a failed trial: nothing is recorded. The process should end with
    `EXIT_STATUS` (non-zero), so that the job runs again and resumes from the checkpoint."""

    def __init__(self, trial_dir, epoch: int, step: int):
        self.trial_dir, self.epoch, self.step = trial_dir, epoch, step
        super().__init__(f"trial {trial_dir} saved its checkpoint at epoch {epoch}, step {step}, and stopped "
                         "as asked; run the job again to continue it")
