"""Which devices a trial trains on: one GPU per warm worker, and mirrored training across devices.

Two halves. The first runs in the `snakemake` process, which must never import TensorFlow:
`visible_gpus` finds this machine's GPUs (CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, else the
NVIDIA driver's /proc entries), and `GpuSlots` hands them to warm workers, each of which keeps its
GPUs for its life; no GPU is ever given to two live workers. The second runs in a trial's process:
memory growth, logical CPU devices, the MirroredStrategy, and the names of the devices a trial
trained on. Logical devices can only be configured before TensorFlow initialises its devices,
which is why a worker is started with its device layout and keeps it.
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


def check_gpu_limit(limit, gpus: Gpus) -> None:
    """A run's `--resources gpu=N` must not promise more GPUs than this machine has."""
    if limit is None or limit <= len(gpus.ids):
        return
    raise ConfigError(
        f"--resources gpu={limit} (on the command line or under `resources:` in a profile) lets "
        f"Snakemake train on {limit} GPUs at once, but kerasgrid sees {len(gpus.ids)} on this machine "
        f"({gpus.found_by}). Set gpu={len(gpus.ids)} or less, or leave it out (trials then wait for "
        f"a free GPU). {UNSEEN_GPUS_FIX}"
    )


class GpuSlots:
    """The run's GPUs, handed to worker processes: a worker keeps what it took until it is gone.

    Thread-safe: Snakemake runs each local job in a thread of the main process.
    """

    def __init__(self, gpus: Gpus):
        self.gpus = gpus
        self._free = list(gpus.ids)
        self._lock = threading.Lock()

    def check(self, count: int, rule: str = "train") -> None:
        """ConfigError unless `count` GPUs per job can ever be given."""
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

    def try_take(self, count: int) -> tuple[str, ...] | None:
        """`count` free GPUs, now the caller's, or None if fewer are free."""
        with self._lock:
            if len(self._free) < count:
                return None
            taken, self._free = tuple(self._free[:count]), self._free[count:]
            return taken

    def give_back(self, ids) -> None:
        """Return GPUs whose worker process has ended."""
        with self._lock:
            self._free = sorted(self._free + list(ids), key=self.gpus.ids.index)

    @property
    def free(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._free)


# ---- Inside a trial's process, where the backend is (TensorFlow's functions on TensorFlow only) ----


def cpu_devices(settings: dict) -> int:
    """How many logical CPU devices a trial's process needs: more than one only to mirror on CPU."""
    distribute = settings.get("distribute") or {}
    return distribute.get("cpu_devices", 1) if distribute.get("strategy") == "mirrored" else 1


def configure(cpu_devices: int = 1) -> None:
    """Memory growth on every GPU, and `cpu_devices` logical CPU devices, while TensorFlow still
    allows it (before it initialises its devices); afterwards, a no-op that `strategy` checks."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
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
    ConfigError if that is a single device. On JAX and PyTorch (no strategy: the config refuses
    mirrored there), the device by the backend's name for it, and TensorFlow is not imported.
    """
    from kerasgrid.trial import backends

    if backends.of(settings) != "tensorflow":
        return None, backends.devices(backends.of(settings))
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
