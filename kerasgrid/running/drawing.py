"""Warm drawing processes: the plots and the importance of a sweep drawn by processes that
imported Matplotlib and Optuna's fANOVA while the trials trained.

Those imports cost about 2 s of CPU (scikit-learn and SciPy alone, for fANOVA's forest, about
1 s), and a rule script pays them after the last trial, when nothing else is left to do, as does
the Python and Snakemake start of every script job: the sweep's tail. So when a run will draw
(rule plots or importance; workflow/rules/drawing.smk), the main `snakemake` process starts these
processes before its first job; each imports at the lowest priority (nice 19, in a thread of its
own on Linux), taking the CPU that the trials leave idle, and then waits. The rules' `run:` blocks
hand them their work, one task at a time each, and wait for its reply; the files and logs are
those the rule scripts wrote. A drawer never imports TensorFlow, and neither does the main
process, which only talks to them.

Protocol: as kerasgrid.running.workers': one JSON task per line on the drawer's stdin, one JSON
reply per line on a pipe whose fd is given on the command line.
"""

import contextlib
import json
import os
import subprocess
import sys
import threading
import traceback

from kerasgrid.errors import KerasgridError

PRIORITY = 19  # the imports' nice value: only the CPU the trials leave idle


class DrawingError(KerasgridError):
    """A drawing task failed in its drawer; the message is the drawer's error."""


def plots(leaderboard, objective, grid_keys, learning_curves_png, param_effects_png, ranking_png, rungs, seeds,
          space):
    from kerasgrid.results.plots import write_plots

    write_plots(leaderboard, objective, grid_keys, learning_curves_png=learning_curves_png,
                param_effects_png=param_effects_png, ranking_png=ranking_png, rungs=rungs, seeds=seeds, space=space)


def importance(leaderboard, objectives, space, seed, table, plot, rungs, seeds, confirmed):
    from kerasgrid.search.importance import write_importance

    write_importance(leaderboard, objectives, space, seed, table=table, plot=plot, rungs=rungs, seeds=seeds,
                     confirmed=confirmed)


TASKS = {"plots": plots, "importance": importance}


def run_task(task: dict) -> None:
    """Run a drawing task in this process, its output in its log (what a drawer does per line).
    `task`: {"kind": a key of TASKS, "args": its keyword arguments, "log": the rule's log}."""
    from kerasgrid.running.logs import job_log

    with job_log(task["log"]):
        TASKS[task["kind"]](**task["args"])


def preload() -> None:
    """Import what drawing needs and draw a figure once (Matplotlib loads its fonts then)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    import kerasgrid.results.plots  # noqa: F401
    import kerasgrid.search.importance  # noqa: F401
    import optuna.importance  # noqa: F401 - fANOVA's forest: scikit-learn, SciPy

    figure = Figure(figsize=(2, 1))
    FigureCanvasAgg(figure)
    figure.subplots().set_title("kerasgrid")
    figure.savefig(io.BytesIO(), format="png")


def _preload_quietly() -> None:
    """preload() at the lowest priority: a thread's nice value is its own on Linux (elsewhere the
    imports run at the process's priority)."""
    import time

    started = time.perf_counter()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PRIORITY)
    try:
        preload()
    except Exception as exc:  # noqa: BLE001 - the task that needs the import fails with its error
        print(f"kerasgrid: drawer {os.getpid()} could not load what drawing needs: {exc}", flush=True)
    else:  # in logs/drawers.log: whether the imports were done before the first task came
        print(f"kerasgrid: drawer {os.getpid()} ready after {time.perf_counter() - started:.1f} s", flush=True)


class Drawer:
    """One warm drawing process."""

    def __init__(self, log_path: str):
        read_fd, write_fd = os.pipe()
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        # One BLAS thread: drawers run beside each other and beside the trials.
        env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **os.environ}
        with open(log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "kerasgrid.running.drawing", str(write_fd)],
                                            stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=[write_fd],
                                            env=env, text=True)
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r", encoding="utf-8")

    def run(self, task: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(task) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it died while idle: the empty reply says so
        line = self.replies.readline()
        if not line:
            code = self.process.wait()
            raise DrawingError(f"the drawing process ended (code {code}) before it finished; see {task['log']}")
        return json.loads(line)

    def end_input(self) -> None:
        """No more tasks: the drawer ends once its current one is done."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()

    def close(self) -> None:
        self.end_input()
        self.replies.close()
        self.process.wait()


class Drawers:
    """Idle drawers; `start` starts some ahead of need, `run` takes an idle one or starts one."""

    def __init__(self, log_path: str = "logs/drawers.log"):
        self.log_path = log_path
        self._idle: list[Drawer] = []
        self._lock = threading.Lock()

    def start(self, count: int) -> None:
        started = [Drawer(self.log_path) for _ in range(count)]
        with self._lock:
            self._idle += started

    def run(self, task: dict) -> None:
        with self._lock:
            drawer = self._idle.pop() if self._idle else None
        drawer = drawer or Drawer(self.log_path)
        try:
            reply = drawer.run(task)
        except BaseException:
            drawer.close()
            raise
        with self._lock:
            self._idle.append(drawer)
        if not reply["ok"]:
            raise DrawingError(reply["error"])

    def end(self) -> None:
        """Tell every idle drawer to end, without waiting: `close` then finds them ended."""
        with self._lock:
            for drawer in self._idle:
                drawer.end_input()

    def close(self) -> None:
        self.end()  # all told to end first, so that they end side by side
        with self._lock:
            drawers, self._idle = self._idle, []
        for drawer in drawers:
            drawer.close()


def serve(reply_fd: int) -> None:
    from kerasgrid.running.logs import Reported
    from kerasgrid.running.workers import _die_with_parent

    _die_with_parent()
    loading = threading.Thread(target=_preload_quietly, daemon=True)
    loading.start()
    replies = os.fdopen(reply_fd, "w", encoding="utf-8")
    for line in sys.stdin:
        loading.join()
        try:
            run_task(json.loads(line))
            reply = {"ok": True}
        except Reported as exc:  # a KerasgridError, already in the log
            reply = {"ok": False, "error": str(exc.error)}
        except BaseException as exc:  # noqa: BLE001 - reported to the job, which fails
            reply = {"ok": False, "error": "".join(traceback.format_exception(exc))}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    # No more tasks, every file written and closed: ending here skips the interpreter's shutdown with
    # Matplotlib, SciPy and scikit-learn loaded, which would hold up the end of the run.
    replies.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
