"""The Keras backend a trial trains with (the config's `backend`): TensorFlow, JAX or PyTorch.

Two halves, as in kerasgrid.trial.devices. The first runs in the `snakemake` process, which
imports no backend: which backend a trial's settings name, whether its package is installed
(found, not imported), and the environment a process that trains with it starts with. Keras reads
KERAS_BACKEND once, at its import, so a warm worker keeps one backend for its life. The second
runs in the trial's process: `configure`, which pins the backend's threads to the job's, seeds
every generator and asks for deterministic kernels, each backend in its own way.
"""

import importlib.metadata
import importlib.util
import os
import sys

from kerasgrid.errors import ConfigError, KerasgridError

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"

# The packages each backend imports, and how a user installs them.
PACKAGES = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"), "torch": ("torch",)}
INSTALL = {
    "tensorflow": 'pip install "kerasgrid[tensorflow]"',
    "jax": 'pip install "kerasgrid[jax]" (CPU; on a GPU machine, pip install "jax[cuda12]" of the same version)',
    "torch": 'pip install "kerasgrid[torch]" (without a GPU, the CPU-only build of torch is a fifth of the '
             "size: pip install torch --index-url https://download.pytorch.org/whl/cpu first)",
}


def of(settings: dict) -> str:
    """The backend a trial's settings (kerasgrid.config.Sweep.settings) train with."""
    return settings.get("backend", DEFAULT)


def missing(backend: str) -> list[str]:
    """The packages of `backend` that this Python cannot import, found without importing them."""
    return [name for name in PACKAGES[backend] if importlib.util.find_spec(name) is None]


def check_installed(backend: str, source: str) -> None:
    """ConfigError, before any trial trains, if `backend`'s package is not installed."""
    absent = missing(backend)
    if not absent:
        return
    others = [name for name in BACKENDS if name != backend and not missing(name)]
    instead = f", or set backend: {others[0]} (installed)" if others else ""
    raise ConfigError(
        f"{source}: backend is {backend}, but {' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} not "
        f"installed in this Python ({sys.executable}), so no trial could train. Install it: {INSTALL[backend]}"
        f"{instead}."
    )


def environment(backend: str, threads: int, base=None) -> dict[str, str]:
    """The variables a process that trains with `backend` on `threads` threads starts with, over
    `base` (default: this process's environment); all read once, when the backend starts.

    JAX: XLA sizes its CPU thread pools by NPROC where set (xla::DefaultThreadPoolSize), else by the
    cores it may run on; measured with jax 0.10.2 (/proc/<pid>/status, a jitted matmul), NPROC=1
    gives 15 threads, unset 17 on 2 cores, NPROC=8 29, while `--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=1` in XLA_FLAGS changes nothing. On a GPU, XLA takes memory as
    needed instead of 75% of the GPU at start, and its GPU kernels are deterministic ones.
    PyTorch: cuBLAS deterministic (what torch.use_deterministic_algorithms requires on CUDA).
    """
    base = os.environ if base is None else base
    env = {"KERAS_BACKEND": backend}
    if backend == "jax":
        env["NPROC"] = str(threads)
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        flags = base.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:  # the user's own choice stands
            flags = f"{flags} --xla_gpu_deterministic_ops=true".strip()
        env["XLA_FLAGS"] = flags
    elif backend == "torch":
        env["CUBLAS_WORKSPACE_CONFIG"] = base.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return env


def activate(backend: str, threads: int) -> None:
    """Make this process train with `backend`: its environment, set before Keras is imported.
    KerasgridError if Keras was imported already, on another backend."""
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise KerasgridError(
            f"this process imported Keras on the {keras.backend.backend()} backend before kerasgrid could set "
            f"{backend}, and Keras' backend cannot change once imported. Run it in a fresh Python process "
            f"(as the workflow and kerasgrid check do), or set KERAS_BACKEND={backend} before importing Keras."
        )
    os.environ.update(environment(backend, threads))
    if backend != "tensorflow":
        _tensorflow_only_if_imported()


def configure(backend: str, threads: int, seed: int, cpu_devices: int = 1) -> None:
    """Set up this process to train with `backend` (`activate`): its threads pinned to `threads`,
    its devices (TensorFlow: GPU memory growth, `cpu_devices` logical CPU devices), every
    generator seeded with `seed`, and deterministic kernels. Once per process and again before each
    trial: what can only be set once stays as it was first set."""
    activate(backend, threads)
    import keras

    if backend == "tensorflow":
        import tensorflow as tf

        from kerasgrid.trial import devices

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TensorFlow already started in this process; its pools are fixed for its lifetime
        devices.configure(cpu_devices)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:
            pass  # set once per process, before its first parallel work
        torch.use_deterministic_algorithms(True)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def versions(backend: str) -> dict:
    """The versions of the backend's packages in this process (jax and jaxlib, torch, tensorflow),
    and TensorFlow's too if it is installed (the data pipeline may use it on any backend)."""
    found = {"backend": backend}
    if backend == "jax":
        import jax
        import jaxlib

        found.update(jax=jax.__version__, jaxlib=jaxlib.__version__)
    elif backend == "torch":
        import torch

        found["torch"] = torch.__version__
    if backend == "tensorflow" or "tensorflow" in sys.modules:
        import tensorflow

        found["tensorflow"] = tensorflow.__version__
    elif not missing("tensorflow"):
        found["tensorflow"] = importlib.metadata.version("tensorflow")
    return found


def devices(backend: str) -> list[str]:
    """The device a trial on JAX or PyTorch trains on, by the backend's name for it (Keras places
    a model on the first GPU, else the CPU)."""
    if backend == "jax":
        import jax

        return [str(jax.devices()[0])]
    import torch

    return ["cuda:0" if torch.cuda.is_available() else "cpu"]


def _tensorflow_only_if_imported() -> None:
    """Keras asks whether TensorFlow is installed, and imports it to find out (3-5 s), where a JAX or
    PyTorch trial only needs to know whether a value is one of TensorFlow's types (saving a model)
    or TensorFlow's generator is to be seeded (keras.utils.set_random_seed): neither can be so
    unless something imported TensorFlow. So Keras' answer becomes whether it is imported."""
    from keras.src.utils import module_utils

    class ImportedOnly(module_utils.LazyModule):
        @property
        def available(self):
            return "tensorflow" in sys.modules and module_utils.LazyModule.available.fget(self)

    lazy = module_utils.tensorflow
    if type(lazy) is module_utils.LazyModule:
        lazy.__class__ = ImportedOnly
