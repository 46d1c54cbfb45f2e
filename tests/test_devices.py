"""Finding GPUs without TensorFlow, handing them out, and the config checks around them."""

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kerasgrid.config import check, sweep_from_config
from kerasgrid.errors import ConfigError
from kerasgrid.trial.devices import (Gpus, GpuSlots, check_gpu_limit, check_mirrored, check_packing, cpu_devices, find_gpus,
                                     gpu_memory_mb, memory_fraction, out_of_memory)
from test_config import SCHEMA, full_config, in_repo  # noqa: F401 - in_repo: the config tests' cwd

NO_PROC = Path("/nonexistent/driver/gpus")

# What `nvidia-smi -L` prints on a machine with two GPUs, the second split into MIG instances.
NVIDIA_SMI_L = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5a1f6c36-1d47-4bfe-9a6e-3c1f0e2b9d11)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-0b9c2f51-7e2a-4c5d-8f3b-6a4d1e9c2b77)
  MIG 3g.20gb     Device  0: (UUID: MIG-2f8e5d0c-4b1a-5c6d-9e7f-0a1b2c3d4e5f)
"""


@pytest.mark.parametrize(
    "value, ids",
    [
        ("0,1,2,3", ("0", "1", "2", "3")),
        ("2, 3", ("2", "3")),
        ("", ()),
        ("-1", ()),
        ("1,-1,2", ("1",)),  # CUDA ignores everything from the first invalid entry on
        ("GPU-5a1f6c36-1d47-4bfe-9a6e-3c1f0e2b9d11", ("GPU-5a1f6c36-1d47-4bfe-9a6e-3c1f0e2b9d11",)),
        ("NoDevFiles", ()),
    ],
)
def test_cuda_visible_devices_names_the_gpus_when_set(value, ids):
    found = find_gpus({"CUDA_VISIBLE_DEVICES": value}, nvidia_smi="", proc=NO_PROC)
    assert found.ids == ids and found.found_by == f"CUDA_VISIBLE_DEVICES={value!r}"


def test_without_it_nvidia_smi_counts_the_gpus(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{NVIDIA_SMI_L}EOF\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert find_gpus({}, nvidia_smi=str(fake), proc=NO_PROC) == Gpus(("0", "1"), "nvidia-smi -L")


def test_then_the_drivers_proc_entries(tmp_path):
    for bus in ("0000:17:00.0", "0000:65:00.0", "0000:ca:00.0"):
        (tmp_path / bus).mkdir()
    failing = tmp_path / "broken-nvidia-smi"  # not executable: nvidia-smi present but unusable
    failing.write_text("")
    assert find_gpus({}, nvidia_smi=str(failing), proc=tmp_path) == Gpus(("0", "1", "2"), str(tmp_path))
    assert find_gpus({}, nvidia_smi="", proc=NO_PROC).ids == ()


def test_slots_hand_out_each_gpu_once_and_take_it_back():
    slots = GpuSlots(Gpus(("0", "1", "2", "3"), "test"))
    assert slots.try_take(1) == ("0",) and slots.try_take(2) == ("1", "2")
    assert slots.try_take(2) is None and slots.free == ("3",)  # nothing taken when too few are free
    slots.give_back(("1", "2"))
    assert slots.free == ("1", "2", "3") and slots.try_take(0) == ()
    assert slots.try_take(3) == ("1", "2", "3") and slots.free == ()


def test_with_trials_per_gpu_each_gpu_takes_that_many_the_least_loaded_first():
    slots = GpuSlots(Gpus(("0", "1", "2"), "test"), per_gpu=2)
    taken = [slots.try_take(1) for _ in range(6)]
    assert taken == [("0",), ("1",), ("2",), ("0",), ("1",), ("2",)]  # spread evenly
    assert slots.try_take(1) is None and slots.loads == {"0": 2, "1": 2, "2": 2}
    slots.give_back(("1",))
    assert slots.try_take(1) == ("1",)  # the one place free
    slots.give_back(("2",))
    slots.give_back(("2",))
    assert slots.free == ("2",) and slots.try_take(1) == ("2",)


def test_a_trial_that_must_train_alone_waits_for_a_gpu_to_empty_and_takes_all_of_it():
    slots = GpuSlots(Gpus(("0", "1"), "test"), per_gpu=3)
    for _ in range(3):
        slots.try_take(1)  # 0, 1, 0
    assert slots.try_take(1, alone=True) is None
    assert slots.reserve(1) == ("1",)  # the least loaded, to empty
    assert slots.try_take(1) == ("0",)  # new workers go elsewhere, even to a fuller GPU
    assert slots.try_take(1) is None  # "0" is full and "1" reserved
    slots.give_back(("1",))
    assert slots.try_take(1, alone=True) is None  # empty, but reserved for another trial
    assert slots.try_take(1, alone=True, mine=("1",)) == ("1",) and slots.loads == {"0": 3, "1": 3}
    assert slots.reserved() == frozenset() and slots.try_take(1) is None
    slots.share(("1",))  # its trial done: one place of three, as any worker
    assert slots.loads == {"0": 3, "1": 1} and slots.try_take(1) == ("1",)
    slots.give_back(("1",), 2)
    assert slots.loads["1"] == 0


def test_packing_is_for_one_gpu_trials():
    slots = GpuSlots(Gpus(("0", "1"), "nvidia-smi -L"), per_gpu=4)
    slots.check(1)
    with pytest.raises(ConfigError, match=r"^each train job asks for 2 GPUs .*but with gpus\.trials_per_gpu 4 a job's `gpu` counts places on one GPU, and a trial takes one\. Ask for gpu=1"):
        slots.check(2)
    check_packing(None, 4, "my.yaml")
    check_packing({"strategy": "mirrored", "cpu_devices": 1}, 1, "my.yaml")
    with pytest.raises(ConfigError, match=r"^my\.yaml: gpus\.trials_per_gpu is 4, but distribute\.strategy is 'mirrored'"):
        check_packing({"strategy": "mirrored", "cpu_devices": 1}, 4, "my.yaml")


def test_resources_gpu_counts_places_with_trials_per_gpu():
    gpus = Gpus(("0", "1"), "CUDA_VISIBLE_DEVICES='0,1'")
    check_gpu_limit(8, gpus, per_gpu=4)
    with pytest.raises(ConfigError, match=r"^--resources gpu=9 .*lets Snakemake train 9 trials on GPUs at once, but with gpus\.trials_per_gpu 4 the 2 GPUs kerasgrid sees \(CUDA_VISIBLE_DEVICES='0,1'\) hold 8\. Set gpu=8 or less"):
        check_gpu_limit(9, gpus, per_gpu=4)


def test_out_of_memory_errors_of_each_backend_are_told_by_name():
    import tensorflow as tf

    assert out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))
    XlaRuntimeError = type("XlaRuntimeError", (RuntimeError,), {})  # jaxlib's, without jaxlib
    assert out_of_memory(XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB"))
    assert not out_of_memory(XlaRuntimeError("INVALID_ARGUMENT: wrong shape"))
    OutOfMemoryError = type("OutOfMemoryError", (RuntimeError,), {})  # torch.OutOfMemoryError's name
    assert out_of_memory(OutOfMemoryError("CUDA out of memory"))
    try:
        try:
            raise OutOfMemoryError("CUDA out of memory")
        except RuntimeError as exc:
            raise ValueError("wrapped by the user's code") from exc
    except ValueError as wrapped:
        assert out_of_memory(wrapped)
    assert not out_of_memory(ValueError("no")) and not out_of_memory(MemoryError())


def test_a_memory_cap_for_jax_is_a_fraction_of_the_gpu(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 81559\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert gpu_memory_mb("0", nvidia_smi=str(fake)) == 81559 and gpu_memory_mb("0", nvidia_smi="") is None
    assert memory_fraction(8000, 81559) == "0.0981" and memory_fraction(90000, 81559) == "1.0000"


@pytest.mark.parametrize(
    "have, message",
    [
        (("0",), r"^each train job asks for 2 GPUs \(its `gpu` resource: `set-resources` in a profile or on the command line\), but kerasgrid sees 1 on this machine \(nvidia-smi -L\)\. Give each job at most 1 \(set-resources: \{train: \{gpu: 1\}, best_model: \{gpu: 1\}\} in the profile\), or 0 to train on the CPU\. If the machine has GPUs kerasgrid does not see, name them for the run: CUDA_VISIBLE_DEVICES=0,1 snakemake"),
        ((), r"^each train job asks for 2 GPUs .*but kerasgrid sees 0 on this machine \(nvidia-smi -L\)\. Give each job at most 0 \(set-resources: .*\)\. If the machine"),
    ],
)
def test_a_job_asking_for_more_gpus_than_there_are_is_a_config_error(have, message):
    slots = GpuSlots(Gpus(have, "nvidia-smi -L"))
    slots.check(len(have))
    with pytest.raises(ConfigError, match=message):
        slots.check(2)


def test_resources_gpu_may_not_exceed_the_machines_gpus():
    gpus = Gpus(("0", "1"), "CUDA_VISIBLE_DEVICES='0,1'")
    check_gpu_limit(None, gpus)
    check_gpu_limit(2, gpus)
    with pytest.raises(ConfigError, match=r"^--resources gpu=4 \(on the command line or under `resources:` in a profile\) lets Snakemake train on 4 GPUs at once, but kerasgrid sees 2 on this machine \(CUDA_VISIBLE_DEVICES='0,1'\)\. Set gpu=2 or less, or leave it out"):
        check_gpu_limit(4, gpus)


def test_a_config_without_distribute_keeps_its_settings_and_so_its_trials():
    # Settings are the train rule's params, a rerun trigger: these are what every trial trained
    # without distribute is recorded with (since TRAINING_VERSION 3, issue 31's NumPy shuffle).
    before = {
        "model": "examples/digits.py:build_model",
        "train": "examples/digits.py:train_data",
        "validation": "examples/digits.py:val_data",
        "budget": {"batch_size": 32, "epochs": 1, "steps_per_epoch": 2, "validation_steps": 1},
        "seed": 0,
        "training_version": 3,
    }
    assert sweep_from_config(full_config(), "my.yaml").settings() == before
    none = full_config(distribute={"strategy": "none", "cpu_devices": 4})
    assert sweep_from_config(none, "my.yaml").settings() == before
    mirrored = sweep_from_config(full_config(distribute={"strategy": "mirrored", "cpu_devices": 2}), "my.yaml")
    assert mirrored.settings() == {**before, "distribute": {"cpu_devices": 2, "strategy": "mirrored"}}
    assert cpu_devices(mirrored.settings()) == 2 and cpu_devices(before) == 1
    assert cpu_devices({**before, "distribute": None}) == 1


@pytest.mark.parametrize(
    "distribute, message",
    [
        ({"strategy": "mirror"}, r"my\.yaml: distribute\.strategy is \"mirror\", which is wrong: .* none trains each trial on one device; mirrored builds"),
        ({"strategy": "mirrored", "cpu_devices": 0}, r"my\.yaml: distribute\.cpu_devices is 0, which is wrong: .*split the CPU into this many logical devices"),
        ({"strategy": "mirrored", "replicas": 2}, r"my\.yaml: 'distribute\.replicas' is not a key kerasgrid knows\. Remove or rename it; the keys allowed in distribute are: strategy, cpu_devices"),
    ],
)
def test_distribute_schema_errors(distribute, message):
    with pytest.raises(ConfigError, match=message):
        check(full_config(distribute=distribute), SCHEMA, "my.yaml")


def test_mirroring_on_one_cpu_device_is_refused_before_any_trial():
    no_gpu = Gpus((), "CUDA_VISIBLE_DEVICES=''")
    check_mirrored(None, no_gpu, "my.yaml")
    check_mirrored({"strategy": "mirrored", "cpu_devices": 2}, no_gpu, "my.yaml")
    check_mirrored({"strategy": "mirrored", "cpu_devices": 1}, Gpus(("0", "1"), "nvidia-smi -L"), "my.yaml")
    with pytest.raises(ConfigError, match=r"^my\.yaml: distribute\.strategy is 'mirrored', but each trial would see one device \(the CPU; kerasgrid sees no GPU: CUDA_VISIBLE_DEVICES=''\), and mirroring over one device only adds overhead\. Give each trial two or more: .*distribute\.cpu_devices: 2 to split the CPU into logical devices\. Or remove distribute"):
        check_mirrored({"strategy": "mirrored", "cpu_devices": 1}, no_gpu, "my.yaml")


def test_finding_gpus_imports_no_tensorflow():
    code = "import sys; from kerasgrid.trial import devices; devices.visible_gpus(); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
