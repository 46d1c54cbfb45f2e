"""Warm trial processes: Keras and its backend are imported once per process, not once per trial.

A tiny model trains in a second or two, while starting Python and importing TensorFlow takes
about four; so when Snakemake runs jobs on this machine, each train job hands its trial to an
idle worker process kept by the main `snakemake` process, starting one only when none is idle.
A worker runs one trial at a time, resets Keras and every seed before each (as the in-process
loop it replaces does), and writes the same files and log as a fresh process would. Trials stay
isolated where it matters: a worker whose trial dies or raises is discarded, and the job fails
as it would have (so Snakemake's retries apply, except to errors kerasgrid raises on purpose: see
kerasgrid.running.attempts); Snakemake still decides what runs, so every caching guarantee is the same.

GPUs: a task asks for `gpus` (the job's `gpu` resource). On a machine with GPUs each worker is
started with its own CUDA_VISIBLE_DEVICES, taken from the pool's `GpuSlots` (kerasgrid/trial/devices.py)
and kept for the worker's life (none for a job that asks for 0, so that it trains on the CPU
without taking GPU memory); they return to the pool when the worker ends. With
`gpus.trials_per_gpu` k, up to k live workers share a GPU, each new one on the least-loaded GPU;
a trial that runs out of GPU memory there is not failed but trained again on a GPU alone. A
worker also keeps the number of logical CPU devices it started with (TensorFlow fixes its devices
at start), and its Keras backend (kerasgrid.trial.backends: Keras reads it once, at its import),
with that backend's environment (its threads, its GPU memory); so idle workers are kept by thread
count, GPU count, CPU devices and backend.

Protocol: one JSON task per line on the worker's stdin; one JSON reply per line on a pipe whose
fd is given on the command line (stdout and stderr belong to the trial's log).
"""

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import traceback

from kerasgrid.errors import KerasgridError
from kerasgrid.trial import backends, checkpoint, devices

# A worker is replaced once its peak memory has grown this much since TensorFlow started in it,
# or after this many trials. TensorFlow 2.21 keeps every trained model's weights and optimizer
# slots after Keras' clear_session() (keras-team/keras#21090): about 50 MiB a trial for a model of
# 4M parameters trained with Adam, 3.5 MiB for a tiny one; and a user's code may leak too. So a
# worker is replaced after every trial of a 100M-parameter model, after about 20 of a 4M one.
MEMORY_GROWTH_LIMIT = 1 << 30  # bytes
TRIALS_PER_WORKER = 200


# A trial whose process dies this many times in one run (the OOM killer, SIGKILL) is recorded as
# failed, so that one such trial does not stop the sweep; before that, its job fails and
# Snakemake's retries (1 in the default profile) run it again. On a cluster too, where each attempt
# is a job of its own and the SLURM profile allows more of them (for trials that go on over
# several jobs): deaths there count across the run's jobs.
DEATHS_BEFORE_FAILED = 2


class TrialProcessError(KerasgridError):
    """A trial's process died, or kerasgrid itself failed in it; the job fails and may be retried."""


class TrialKilled(TrialProcessError):
    """The trial's process died without a word: a signal, most often the out-of-memory killer."""


class TrialInterrupted(TrialProcessError):
    """The trial saved its checkpoint and stopped, as a signal asked (kerasgrid.running.interruptions):
    the job fails, and its next attempt continues from the checkpoint."""


class Worker:
    """One warm process. `gpus`: its CUDA_VISIBLE_DEVICES entries, or None to inherit ours;
    `backend`: the Keras backend it trains with, for life; `alone`: it holds its GPUs alone (every
    place on them); `env`: more environment for it."""

    def __init__(self, threads: int, log_path: str, gpus: tuple[str, ...] | None = None, cpu_devices: int = 1,
                 backend: str = backends.DEFAULT, alone: bool = False, env: dict | None = None):
        self.threads = threads
        self.gpus = gpus
        self.cpu_devices = cpu_devices
        self.backend = backend
        self.alone = alone
        self.trials = 0
        self.grown = 0  # bytes of peak memory since TensorFlow started in it, as of its last reply
        read_fd, write_fd = os.pipe()
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        env = {**os.environ, **backends.environment(backend, threads), **(env or {})}
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        # Between trials (TensorFlow's start-up chatter) a worker writes to its own log, not to
        # the console; during a trial, to the trial's log.
        with open(log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kerasgrid.running.workers", str(threads), str(write_fd), str(cpu_devices),
                 backend],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=[write_fd],
                env=env,
                text=True,
            )
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r", encoding="utf-8")

    def run(self, task: dict) -> dict:
        self.trials += 1
        try:
            self.process.stdin.write(json.dumps(task) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the worker died while idle: the empty reply below says so
        line = self.replies.readline()
        if not line:
            code = self.process.wait()
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise TrialKilled(f"the trial's process {how} (out of memory?); see {task['log']}")
        reply = json.loads(line)
        self.grown = reply.get("grown", 0)
        return reply

    @property
    def spent(self) -> str | None:
        """Why to replace the worker instead of giving it another trial, or None."""
        if self.grown > MEMORY_GROWTH_LIMIT:
            return (f"its memory grew by {self.grown / 2**20:.0f} MiB in {self.trials} trial(s) (TensorFlow keeps "
                    f"every trained model until its process ends: keras-team/keras#21090)")
        if self.trials >= TRIALS_PER_WORKER:
            return f"it trained {self.trials} trials"
        return None

    def end_input(self):
        """No more tasks: the worker ends once its current one is done."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def close(self):
        self.end_input()
        self.replies.close()
        self.process.wait()

    def kill(self):
        self.process.kill()
        self.close()


class WorkerPool:
    """Idle workers by thread count, GPU count, CPU devices and backend; at most as many as jobs
    that ran at once.

    `gpus`: the GPUs to hand out, a devices.Gpus or CUDA_VISIBLE_DEVICES entries; with none,
    workers inherit this process's environment. `trials_per_gpu`: live workers a GPU takes at
    most (gpus.trials_per_gpu); `memory_limit_mb`: each worker's cap on its GPU's memory
    (gpus.memory_limit_mb), None for none.
    """

    def __init__(self, log_path: str = "logs/workers.log", gpus=(), trials_per_gpu: int = 1,
                 memory_limit_mb: int | None = None):
        self.log_path = log_path
        if not isinstance(gpus, devices.Gpus):
            gpus = devices.Gpus(tuple(gpus), "the worker pool's gpus")
        self.gpus = devices.GpuSlots(gpus, trials_per_gpu)
        self.memory_limit_mb = memory_limit_mb
        self._idle: dict[tuple, list[Worker]] = {}
        self._deaths: dict[str, int] = {}
        self._lock = threading.Lock()
        # Signalled when a worker goes idle or ends: a job waiting for GPUs looks again.
        self._changed = threading.Condition(self._lock)

    def run(self, task: dict) -> list[str]:
        """Run the task in a worker; the paragraphs it noted for the console (see `run_task`).

        A trial that runs out of GPU memory beside other trials on its GPU is trained again alone on
        a GPU, as it would have trained without neighbours (its numbers do not depend on them), and
        a note says so."""
        notes = []
        worker = self._worker_for(task)
        while True:
            # In a cluster's group job, the task says so itself (workflow/rules/running.smk).
            shared = task.get("gpu_shared", False) or (
                self.gpus.per_gpu > 1 and bool(worker.gpus) and not worker.alone)
            try:
                reply = self._run_in(worker, {**task, "gpu_shared": True} if shared else task)
            except devices.SharedGpuOutOfMemory as exc:
                note = (f"{task.get('trial_id') or os.path.basename(task.get('out_dir', ''))}: {exc}; "
                        f"training it again alone on a GPU (see {task['log']})")
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(f"kerasgrid: {note}\n")
                notes.append(note)
                worker = self._worker_for(task, alone=True)
                continue
            return notes + reply

    def _run_in(self, worker: "Worker", task: dict) -> list[str]:
        try:
            reply = worker.run(task)
        except TrialKilled as exc:
            self._retire(worker, kill=True)
            if "out_dir" not in task or self._died(task) < DEATHS_BEFORE_FAILED:
                raise
            from kerasgrid.trial.training import record_killed

            record_killed(task["params"], task["settings"], task["out_dir"], task["threads"], task["objective"],
                          f"TrialKilled: {exc}, {DEATHS_BEFORE_FAILED} times")
            return []
        except BaseException:
            self._retire(worker, kill=True)
            raise
        if worker.alone:  # its trial, which needed the GPU alone, is done: the GPU is shared again
            self.gpus.share(worker.gpus)
            worker.alone = False
        if not reply["ok"]:
            if reply.get("out_of_memory"):
                # Its process may hold GPU memory it cannot give back: it goes, and the retry's
                # worker holds a GPU alone (until its trial ends).
                self._retire(worker, kill=True)
                if not self.gpus.gpus.ids:  # a cluster job's: the GPU is its SLURM job's to share
                    raise TrialProcessError(
                        f"{reply['error']}; its job fails and trains it again on its next attempt, "
                        "with fewer trials beside it (docs/gpus.md, on SLURM)")
                raise devices.SharedGpuOutOfMemory(reply["error"])
            if reply.get("interrupted"):  # the worker is sound: it stopped a trial on request
                self._keep(worker)
                raise TrialInterrupted(reply["error"])
            if not reply.get("kerasgrid_error"):
                self._retire(worker, kill=True)  # whatever broke may have broken the process too
            elif not worker.spent:
                with self._changed:  # an error kerasgrid raised on purpose leaves the worker sound
                    self._idle[self._key(worker)].append(worker)
                    self._changed.notify_all()
            else:
                self._replace(worker)
            raise TrialProcessError(reply["error"])
        self._keep(worker)
        return reply.get("notes", [])

    def _keep(self, worker: Worker) -> None:
        """A worker whose task ended: idle for the next, or replaced if spent."""
        if worker.spent:
            self._replace(worker)
        else:
            with self._changed:
                self._idle[self._key(worker)].append(worker)
                self._changed.notify_all()

    @staticmethod
    def _key(worker: Worker) -> tuple:
        return worker.threads, len(worker.gpus or ()), worker.cpu_devices, worker.backend

    def _worker_for(self, task: dict, alone: bool = False) -> Worker:
        """An idle worker that fits the task, or a new one on GPUs of its own (shared with at most
        trials_per_gpu - 1 others); with `alone`, a new one on GPUs no other live worker holds."""
        threads, count = task["threads"], task.get("gpus", 0)
        cpu_devices = devices.cpu_devices(task["settings"])
        backend = backends.of(task["settings"])
        key = (threads, count, cpu_devices, backend)
        slots = self.gpus
        slots.check(count, rule="best_model" if "best_params" in task else "train")
        wanted = ()  # with `alone`: the GPUs reserved for it, to empty
        while True:
            with self._changed:
                # Not one on a GPU that a trial waits to have alone: that GPU must empty.
                reserved = slots.reserved()
                idle = [w for w in self._idle.setdefault(key, []) if not reserved.intersection(w.gpus or ())]
                if idle and not alone:
                    self._idle[key].remove(idle[-1])
                    return idle[-1]
                if not slots.gpus.ids:
                    taken = None  # no GPUs to share out: the worker's environment is ours
                    break
                # A job that asks for no GPU gets none (an empty CUDA_VISIBLE_DEVICES), so that it
                # cannot take GPU memory from the others.
                taken = slots.try_take(count, alone=alone, mine=wanted)
                if taken is not None:
                    slots.unreserve(set(wanted) - set(taken))  # it found others empty first
                    break
                # Idle workers of another kind may hold the GPUs (and busy ones too, when no
                # `--resources gpu=N` keeps Snakemake from starting more GPU jobs than GPUs);
                # to have GPUs alone, every idle worker on the GPUs reserved for it goes.
                if alone and len(wanted) < count:  # kept until taken; more if others held them
                    wanted = (*wanted, *slots.reserve(count - len(wanted)))
                holder = next((w for workers in self._idle.values() for w in workers
                               if w.gpus and (not alone or set(wanted).intersection(w.gpus))), None)
                if holder is None:
                    self._changed.wait()  # until a worker goes idle or ends
                    continue
                self._idle[self._key(holder)].remove(holder)
            self._retire(holder)
        try:
            return Worker(threads, self.log_path, taken, cpu_devices, backend, alone=alone,
                          env=self._memory_env(taken))
        except BaseException:
            if taken:
                slots.give_back(taken, slots.per_gpu if alone else 1)
            raise

    def _memory_env(self, gpus) -> dict:
        """A worker's memory cap on its GPU (gpus.memory_limit_mb), for TensorFlow and for JAX."""
        if not gpus or self.memory_limit_mb is None:
            return {}
        env = {devices.MEMORY_LIMIT_ENV: str(self.memory_limit_mb)}
        total = devices.gpu_memory_mb(gpus[0])
        if total:  # JAX caps its allocator by a fraction of the GPU
            env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = devices.memory_fraction(self.memory_limit_mb, total)
        return env

    def _replace(self, worker: Worker) -> None:
        """Retire a spent worker, saying why in the workers' log; the next task starts a new one."""
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"kerasgrid: worker {worker.process.pid} replaced: {worker.spent}\n")
        self._retire(worker)

    def _retire(self, worker: Worker, kill: bool = False) -> None:
        """End a worker's process, then free its GPUs (never while it is alive)."""
        try:
            worker.kill() if kill else worker.close()
        finally:
            if worker.gpus:
                self.gpus.give_back(worker.gpus, self.gpus.per_gpu if worker.alone else 1)
            with self._changed:
                self._changed.notify_all()

    def _died(self, task: dict) -> int:
        """The deaths of the task's trial: in this pool, or in this run's earlier jobs where each
        attempt is a job of its own (a cluster's: kerasgrid.running.attempts), whichever counted more."""
        from kerasgrid.running import attempts

        with self._lock:
            self._deaths[task["out_dir"]] = self._deaths.get(task["out_dir"], 0) + 1
            here = self._deaths[task["out_dir"]]
        return max(here, attempts.died(task["log"]))

    def close(self) -> None:
        with self._lock:
            workers = [w for idle in self._idle.values() for w in idle]
            self._idle.clear()
        for worker in workers:  # all told to end first, so that they end side by side
            worker.end_input()
        for worker in workers:
            self._retire(worker)


def run_in_own_worker(task: dict) -> list[str]:
    """Run one task in a worker process of its own, which ends with it: a cluster job's trial.

    There the worker, not the job's `snakemake`, is the process that can answer SLURM's warning
    before a time limit and a preemption's SIGTERM by saving the trial and stopping
    (kerasgrid.running.interruptions); TensorFlow is then imported in the worker instead of the
    job's `snakemake`, at the same cost, on the task's backend. Its start-up lines go to the task's log, as they did."""
    pool = WorkerPool(log_path=task["log"])
    try:
        return pool.run(task)
    finally:
        pool.close()


def run_task(task: dict) -> list[str]:
    """Run one task in this process, its output in its log (what a worker does per line).

    A task trains a trial, or with "best_params" writes the winner's model (kerasgrid.results.best_model).
    An error kerasgrid raises on purpose would only happen again: the task's next attempt in the
    same run raises it at once (kerasgrid.running.attempts) instead of training again.
    Returns the paragraphs, already in the log, that the console should show too: a trial that
    could not be logged to MLflow (the job still succeeds).
    """
    from kerasgrid.running import attempts
    from kerasgrid.running.logs import Reported, job_log

    stopped = None
    try:
        with job_log(task["log"]):
            attempts.raise_if_failed_before(task["log"])
            try:
                notes = _run(task)
            except (checkpoint.Interrupted, devices.SharedGpuOutOfMemory) as exc:
                # Asked to stop (kerasgrid.running.interruptions), or out of GPU memory beside other
                # trials: no error of the trial's, so one line in the log and none of job_log's
                # traceback; nor is it remembered as an error of this run, since the job's next
                # attempt continues from the checkpoint, or the pool trains it again alone.
                print(f"kerasgrid: {exc}", flush=True)
                stopped = exc
            else:
                for note in notes:
                    print(f"kerasgrid: {note}", flush=True)
                return notes
    except Reported as exc:
        if not isinstance(exc.error, attempts.RepeatedError):
            attempts.remember(task["log"], str(exc.error))
        raise
    raise stopped


def _run(task: dict) -> list[str]:
    if "best_params" in task:
        from kerasgrid.results.best_model import save_best_model

        save_best_model(
            task["best_params"], task["settings"], task["model_path"], manifest_path=task["manifest_path"],
            trials_dir=task["trials_dir"], scratch_dir=task["scratch_dir"], threads=task["threads"],
            source=task["source"],
        )
        return []
    from kerasgrid.trial.training import TRIAL_MODEL, run_trial

    model_path = os.path.join(task["out_dir"], TRIAL_MODEL) if task.get("keep_model") else None
    run_trial(task["params"], task["settings"], task["out_dir"], threads=task["threads"],
              objective=task["objective"], model_path=model_path, tensorboard_dir=task.get("tensorboard_dir"),
              epochs=task.get("epochs"), resume_from=task.get("resume_from"),
              save_state_to=task.get("save_state_to"), trial_id=task.get("trial_id"),
              halving=task.get("halving", False), checkpoint_minutes=task.get("checkpoint_minutes", 0),
              gpu_shared=task.get("gpu_shared", False))
    if task.get("resume_from") and not task.get("keep_states"):
        from kerasgrid.trial.resume import remove_state

        remove_state(task["resume_from"])  # a halving rung's state, now carried on
    if task.get("mlflow"):  # after the trial's files: a tracker's outage loses nothing
        from kerasgrid.results.tracking import Target, log_trial

        note = log_trial(Target(**task["mlflow"]), task["out_dir"])
        return [note] if note else []
    return []


def _die_with_parent():
    # Linux: the worker goes when the snakemake that started it goes, even on SIGKILL.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(threads: int, reply_fd: int, cpu_devices: int = 1, backend: str = backends.DEFAULT) -> None:
    _die_with_parent()
    from kerasgrid.running import interruptions
    from kerasgrid.running.logs import Reported

    interruptions.install()  # SIGUSR1, SIGTERM: the trial saves its checkpoint and stops

    # Imports Keras and its backend, and fixes the backend's thread pools and devices, once.
    backends.configure(backend, threads, seed=0, cpu_devices=cpu_devices)
    settle()
    started = peak_memory()
    replies = os.fdopen(reply_fd, "w", encoding="utf-8")
    for line in sys.stdin:
        task = json.loads(line)
        try:
            reply = {"ok": True, "notes": run_task(task)}
        except Reported as exc:  # a KerasgridError, already in the log
            reply = {"ok": False, "error": str(exc.error), "kerasgrid_error": True}
        except checkpoint.Interrupted as exc:  # saved and stopped on request, already in the log
            reply = {"ok": False, "error": str(exc), "interrupted": True}
        except devices.SharedGpuOutOfMemory as exc:  # beside other trials: the pool retries it alone
            reply = {"ok": False, "error": str(exc), "out_of_memory": True}
        except BaseException as exc:  # noqa: BLE001 - reported to the job, which fails
            reply = {"ok": False, "error": "".join(traceback.format_exception(exc))}
        # A request that came as the trial finished was for that trial, not the next.
        checkpoint.clear_request()
        settle()
        reply["grown"] = peak_memory() - started
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    # No more tasks: every file of every trial is written and closed. Ending here skips the
    # interpreter's shutdown with TensorFlow loaded, which takes over a second, at the end of
    # every run (and of every worker retired mid-run).
    replies.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def settle() -> None:
    """Free what the last trial left (Keras' clear_session() collects garbage), then hide what is
    left from Python's garbage collector: TensorFlow's import (390,000 objects) and what each
    trial leaves for good (TensorFlow keeps a trial's traced functions). Every later collection,
    such as the one in clear_session() before each trial, then scans only what is new. Unfrozen,
    a full collection took 0.2 s after the import, and 0.002 s longer with every trial before."""
    import keras

    keras.backend.clear_session()
    gc.freeze()


def peak_memory() -> int:
    """This process's peak resident memory in bytes.

    On Linux, the high-water mark of this process's own memory (VmHWM). Not getrusage's
    ru_maxrss: a process started with fork and exec inherits its parent's peak there, so a worker
    started by a parent of 2 GiB would count none of its first 2 GiB as grown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # kilobytes on Linux


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
