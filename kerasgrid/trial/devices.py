"""Which devices a trial trains on: a GPU per warm worker (or a place on one), and mirrored
training across devices.

Two halves. The first runs in the `snakemake` process, which must never import TensorFlow:
`visible_gpus` finds this machine's GPUs (CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, else the
NVIDIA driver's /proc entries), and `GpuSlots` hands them to warm workers, each of which keeps its
GPUs for its life; a GPU is given to at most `gpus.trials_per_gpu` live workers (one by default),
and `out_of_memory` tells a GPU out-of-memory error of any Keras backend by name. The second runs
in a trial's process: memory growth (or a memory cap), logical CPU devices, the MirroredStrategy,
and the names of the devices a trial trained on. Logical devices can only be configured before
TensorFlow initialises its devices, which is why a worker is started with its device layout and
keeps it.
"""

import functools
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from kerasgrid.errors import ConfigError, KerasgridError

NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")

# What CUDA accepts in CUDA_VISIBLE_DEVICES: indices or UUIDs; it ignores the list from the first
# entry that is neither (so "-1" hides every GPU).
_CUDA_DEVICE = re.compile(r"^(\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+)$")


@dataclass(frozen=True)
class Gpus:
    """The GPUs a run may hand out, as CUDA_VISIBLE_DEVICES entries, and how they were found."""

    ids: tuple[str, ...]
    found_by: str


def find_gpus(environ=None, nvidia_smi: str | None = None, proc: Path = NVIDIA_PROC) -> Gpus:
    """This machine's GPUs, without TensorFlow. `nvidia_smi`: the command's path ("" for none)."""
    environ = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in environ:
        value = environ["CUDA_VISIBLE_DEVICES"]
        ids = []
        for entry in value.split(","):
            if not _CUDA_DEVICE.match(entry.strip()):
                break
            ids.append(entry.strip())
        return Gpus(tuple(ids), f"CUDA_VISIBLE_DEVICES={value!r}")
    nvidia_smi = shutil.which("nvidia-smi") if nvidia_smi is None else nvidia_smi
    if nvidia_smi:
        try:
            listed = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            listed = None
        if listed is not None and listed.returncode == 0:
            return Gpus(tuple(re.findall(r"^GPU (\d+):", listed.stdout, flags=re.M)), "nvidia-smi -L")
    if proc.is_dir():
        count = sum(1 for entry in proc.iterdir() if entry.is_dir())
        return Gpus(tuple(str(i) for i in range(count)), str(proc))
    return Gpus((), f"no CUDA_VISIBLE_DEVICES, nvidia-smi or {proc}")


@functools.cache
def visible_gpus() -> Gpus:
    """`find_gpus()` for this process, looked up once."""
    return find_gpus()


UNSEEN_GPUS_FIX = (
    "If the machine has GPUs kerasgrid does not see, name them for the run: CUDA_VISIBLE_DEVICES=0,1 snakemake ..."
)


def check_gpu_limit(limit, gpus: Gpus, per_gpu: int = 1) -> None:
    """A run's `--resources gpu=N` must not promise more trials on GPUs than this machine holds:
    one per GPU, or `per_gpu` (gpus.trials_per_gpu), each a unit of the `gpu` resource."""
    if limit is None or limit <= len(gpus.ids) * per_gpu:
        return
    have = len(gpus.ids)
    if per_gpu == 1:
        raise ConfigError(
            f"--resources gpu={limit} (on the command line or under `resources:` in a profile) lets "
            f"Snakemake train on {limit} GPUs at once, but kerasgrid sees {have} on this machine "
            f"({gpus.found_by}). Set gpu={have} or less, or leave it out (trials then wait for "
            f"a free GPU). {UNSEEN_GPUS_FIX}"
        )
    raise ConfigError(
        f"--resources gpu={limit} (on the command line or under `resources:` in a profile) lets "
        f"Snakemake train {limit} trials on GPUs at once, but with gpus.trials_per_gpu {per_gpu} the "
        f"{have} GPU{'s' * (have != 1)} kerasgrid sees ({gpus.found_by}) hold {have * per_gpu}. Set "
        f"gpu={have * per_gpu} or less (GPUs times trials_per_gpu), or leave it out (trials then wait "
        f"for a free place on a GPU). {UNSEEN_GPUS_FIX}"
    )


def check_packing(distribute: dict | None, per_gpu: int, source: str) -> None:
    """Several trials on one GPU are one-GPU trials: a mirrored trial takes whole GPUs."""
    if distribute and per_gpu > 1:
        raise ConfigError(
            f"{source}: gpus.trials_per_gpu is {per_gpu}, but distribute.strategy is 'mirrored', whose "
            "trials each take every GPU they see. Set gpus.trials_per_gpu to 1 (the default) to mirror, "
            "or remove distribute to train several one-GPU trials on each GPU."
        )


class SharedGpuOutOfMemory(Exception):
    """A trial ran out of GPU memory while other trials shared its GPU: not the trial's failure,
    so it is not recorded; the worker pool trains it again alone on a GPU."""


# The exceptions of each Keras backend that say a GPU (or its allocator) ran out of memory. By name,
# so that telling them needs none of the frameworks imported; JAX's carries XLA's status code.
_OUT_OF_MEMORY = {"ResourceExhaustedError", "OutOfMemoryError"}  # TensorFlow, torch (torch.OutOfMemoryError)
_XLA_ERRORS = {"XlaRuntimeError", "JaxRuntimeError"}


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, is a framework's out-of-memory error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & _OUT_OF_MEMORY or (names & _XLA_ERRORS and "RESOURCE_EXHAUSTED" in str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class GpuSlots:
    """The run's GPUs, handed to worker processes: a worker keeps its place on a GPU until it is
    gone. Each GPU holds `per_gpu` live workers at most (gpus.trials_per_gpu); a new worker goes to
    the least-loaded GPU, so trials spread evenly. A worker can also take a GPU alone (all of its
    places): a trial that ran out of memory beside others trains again so. While such a worker
    waits, the GPUs it waits for (`reserve`) take no new workers, so that they empty.

    Thread-safe: Snakemake runs each local job in a thread of the main process.
    """

    def __init__(self, gpus: Gpus, per_gpu: int = 1):
        self.gpus = gpus
        self.per_gpu = per_gpu
        self._load = dict.fromkeys(gpus.ids, 0)  # places taken on each GPU: its live workers
        self._reserved: set[str] = set()
        self._lock = threading.Lock()

    def check(self, count: int, rule: str = "train") -> None:
        """ConfigError unless `count` GPUs per job can ever be given."""
        if count > 1 and self.per_gpu > 1:
            raise ConfigError(
                f"each {rule} job asks for {count} GPUs (its `gpu` resource: `set-resources` in a profile "
                f"or on the command line), but with gpus.trials_per_gpu {self.per_gpu} a job's `gpu` counts "
                f"places on one GPU, and a trial takes one. Ask for gpu=1 (or 0 to train on the CPU), or "
                f"set gpus.trials_per_gpu to 1 to give each trial {count} GPUs."
            )
        if count <= len(self.gpus.ids):
            return
        have = len(self.gpus.ids)
        raise ConfigError(
            f"each {rule} job asks for {count} GPU{'s' * (count != 1)} (its `gpu` resource: "
            f"`set-resources` in a profile or on the command line), but kerasgrid sees {have} on "
            f"this machine ({self.gpus.found_by}). Give each job at most {have} "
            f"(set-resources: {{train: {{gpu: {have}}}, best_model: {{gpu: {have}}}}} in the profile)"
            f"{', or 0 to train on the CPU' if have else ''}. {UNSEEN_GPUS_FIX}"
        )

    def try_take(self, count: int, alone: bool = False, mine=()) -> tuple[str, ...] | None:
        """A place on each of `count` GPUs, the least loaded first, now the caller's; with `alone`,
        `count` empty GPUs whole (every place on them), not reserved for another (`mine`: those
        reserved for the caller). None if there are not enough."""
        with self._lock:
            if alone:
                open_ = [gpu for gpu, load in self._load.items()
                         if load == 0 and (gpu not in self._reserved or gpu in mine)]
            else:
                open_ = [gpu for gpu, load in self._load.items() if load < self.per_gpu and gpu not in self._reserved]
            if len(open_) < count:
                return None
            chosen = sorted(open_, key=lambda gpu: (self._load[gpu], gpu in self._reserved, self.gpus.ids.index(gpu)))
            taken = tuple(sorted(chosen[:count], key=self.gpus.ids.index))
            for gpu in taken:
                self._load[gpu] += self.per_gpu if alone else 1
                self._reserved.discard(gpu)
            return taken

    def reserve(self, count: int) -> tuple[str, ...]:
        """The `count` least-loaded GPUs (fewer if too few are not reserved yet), which take no new
        worker until a worker takes them alone: a trial waits to train alone there."""
        with self._lock:
            open_ = [gpu for gpu in self.gpus.ids if gpu not in self._reserved]
            chosen = sorted(open_, key=lambda gpu: (self._load[gpu], self.gpus.ids.index(gpu)))[:count]
            self._reserved.update(chosen)
            return tuple(chosen)

    def unreserve(self, ids) -> None:
        with self._lock:
            self._reserved.difference_update(ids)

    def reserved(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._reserved)

    def share(self, ids) -> None:
        """A worker that had its GPUs alone now holds one place on each, as others do."""
        self.give_back(ids, self.per_gpu - 1)

    def give_back(self, ids, places: int = 1) -> None:
        """Return a worker's places (`per_gpu` each for one that held its GPUs alone) once its
        process has ended."""
        with self._lock:
            for gpu in ids:
                self._load[gpu] -= places

    @property
    def loads(self) -> dict[str, int]:
        """Places taken on each GPU."""
        with self._lock:
            return dict(self._load)

    @property
    def free(self) -> tuple[str, ...]:
        """The GPUs no live worker holds."""
        with self._lock:
            return tuple(gpu for gpu, load in self._load.items() if load == 0)


# ---- Inside a trial's process, where the backend is (TensorFlow's functions on TensorFlow only) ----


def cpu_devices(settings: dict) -> int:
    """How many logical CPU devices a trial's process needs: more than one only to mirror on CPU."""
    distribute = settings.get("distribute") or {}
    return distribute.get("cpu_devices", 1) if distribute.get("strategy") == "mirrored" else 1


# The environment variable by which the worker pool gives a trial's process its memory cap on each
# GPU (gpus.memory_limit_mb), in MiB; JAX's own cap is XLA_PYTHON_CLIENT_MEM_FRACTION, set beside it.
MEMORY_LIMIT_ENV = "KERASGRID_GPU_MEMORY_MB"


def memory_fraction(limit_mb: int, total_mb: int) -> str:
    """XLA_PYTHON_CLIENT_MEM_FRACTION for a cap of `limit_mb` on a GPU of `total_mb`."""
    return f"{min(limit_mb / total_mb, 1.0):.4f}"


def gpu_memory_mb(gpu: str, nvidia_smi: str | None = None) -> int | None:
    """A GPU's total memory in MiB (an index or UUID, as CUDA_VISIBLE_DEVICES names it), by
    nvidia-smi; None where it cannot say."""
    nvidia_smi = shutil.which("nvidia-smi") if nvidia_smi is None else nvidia_smi
    if not nvidia_smi:
        return None
    try:
        listed = subprocess.run([nvidia_smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", gpu],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.match(r"\s*(\d+)", listed.stdout) if listed.returncode == 0 else None
    return int(found.group(1)) if found else None


def configure(cpu_devices: int = 1) -> None:
    """Memory growth on every GPU (or, where the worker pool set a cap, one logical device of that
    much memory on each), and `cpu_devices` logical CPU devices, while TensorFlow still allows it
    (before it initialises its devices); afterwards, a no-op that `strategy` checks."""
    import tensorflow as tf

    limit = os.environ.get(MEMORY_LIMIT_ENV)
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            if limit:
                # At most this much (TensorFlow does not always hold to it: tensorflow#53822).
                # A logical device and memory growth exclude each other.
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(limit))])
            else:
                # Take GPU memory as needed, not all of it at start.
                tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        except RuntimeError:
            pass


def strategy(settings: dict, source: str = "the config"):
    """The trial's tf.distribute strategy (None for Keras' default) and the names of the devices
    it trains on, as tf.config.list_logical_devices gives them.

    Mirrored training uses every GPU the process sees, else its logical CPU devices. Raises
    ConfigError if that is a single device. TensorFlow's only: on JAX and PyTorch a trial has no
    strategy (the config refuses mirrored there) and kerasgrid.trial.backends.devices names its device.
    """
    import tensorflow as tf

    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    distribute = settings.get("distribute") or {}
    if distribute.get("strategy") != "mirrored":
        return None, (gpus or cpus)[:1]  # Keras places a model on the first GPU, else the CPU
    wanted = cpu_devices(settings)
    if not gpus and len(cpus) != wanted and wanted > 1:
        raise KerasgridError(
            f"distribute.cpu_devices is {wanted}, but TensorFlow in this process already started with "
            f"{len(cpus)} CPU device{'s' * (len(cpus) != 1)}, and its devices cannot change once "
            "started. Run the trial in a fresh Python process (as the workflow does)."
        )
    names = gpus or cpus
    if len(names) < 2:
        raise ConfigError(_one_device(source, names[0]))
    return tf.distribute.MirroredStrategy(names), names


def check_mirrored(distribute: dict | None, gpus: Gpus, source: str) -> None:
    """Before any trial: a mirrored sweep on a machine without GPUs needs cpu_devices of 2 or more."""
    if distribute and not gpus.ids and distribute["cpu_devices"] < 2:
        raise ConfigError(_one_device(source, f"the CPU; kerasgrid sees no GPU: {gpus.found_by}"))


def _one_device(source: str, device: str) -> str:
    return (
        f"{source}: distribute.strategy is 'mirrored', but each trial would see one device ({device}), "
        "and mirroring over one device only adds overhead. Give each trial two or more: on a "
        "machine with GPUs, set-resources: {train: {gpu: 2}, best_model: {gpu: 2}} in a profile "
        "(or --set-resources train:gpu=2 best_model:gpu=2); without GPUs, distribute.cpu_devices: 2 "
        "to split the CPU into logical devices. Or remove distribute to train on one device."
    )


UNEVEN_BATCH = "kerasgrid, uneven batch: "


def split_evenly(dataset, replicas: int, name: str):
    """`dataset` with a check that every batch splits evenly across `replicas`: TensorFlow's
    MirroredStrategy fails on a remainder with an error that does not say so."""
    import tensorflow as tf

    message = (
        f"{UNEVEN_BATCH}{name} gave a batch that does not split evenly across the {replicas} replicas "
        f"of distribute.strategy mirrored; make every batch size a multiple of {replicas} "
        "(a smaller last batch included: drop it, e.g. batch(n, drop_remainder=True))"
    )

    def check(*element):
        first = tf.nest.flatten(element)[0]
        size = tf.shape(first)[0]
        with tf.control_dependencies([tf.debugging.assert_equal(size % replicas, 0, message=message)]):
            checked = tf.nest.map_structure(tf.identity, element)
        return checked if len(checked) > 1 else checked[0]

    return dataset.map(check)


def uneven_batch_error(exc: BaseException) -> str | None:
    """The one-line error of a batch that split_evenly refused, out of TensorFlow's long one."""
    found = re.search(rf"\[{UNEVEN_BATCH}([^\]]*)\]", str(exc))
    return f"DataError: {found.group(1)}" if found else None
