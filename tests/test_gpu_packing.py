"""benchmarks/gpu_packing.py without a GPU: its refusal, and its parsing and table on recorded
`nvidia-smi` output (the runs themselves need a GPU: benchmarks/RESULTS.md)."""

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks/gpu_packing.py"
spec = importlib.util.spec_from_file_location("gpu_packing", SCRIPT)
gpu_packing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_packing)

# `nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -lms 200` on an H100 while a
# sweep starts, trains and ends (the header is printed again when the loop restarts; a sample the
# driver could not take reads [N/A]).
RECORDED = """utilization.gpu [%], memory.used [MiB]
0 %, 1 MiB
0 %, 1 MiB
12 %, 517 MiB
38 %, 1503 MiB
41 %, 2011 MiB
utilization.gpu [%], memory.used [MiB]
[N/A], 2011 MiB
57 %, 2990 MiB
44 %, 2990 MiB
3 %, 1020 MiB
"""

NVIDIA_SMI_L = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-2c1b6f7e-9a44-4f0e-8d0e-5b8f3a7c9e21)\n"


def test_samples_are_parsed_and_summarised():
    samples = gpu_packing.parse_samples(RECORDED)
    assert samples == [(0, 1), (0, 1), (12, 517), (38, 1503), (41, 2011), (57, 2990), (44, 2990), (3, 1020)]
    assert gpu_packing.summarise_samples(samples) == {"util_mean": 24.4, "util_p90": 57, "memory_peak_mib": 2990,
                                                      "samples": 8}
    assert gpu_packing.summarise_samples([]) == {"util_mean": None, "util_p90": None, "memory_peak_mib": None,
                                                 "samples": 0}


def test_leaderboards_compare_without_their_timings_and_the_table_says_so():
    one = "rank\ttrial_id\tlr\tobjective\tstatus\tfit_seconds\treason\terror\n1\tab12\t0.01\t0.25\tok\t3.1\t\t\n"
    packed = one.replace("3.1", "4.7")
    other = one.replace("0.25", "0.26")
    assert gpu_packing.comparable(one) == gpu_packing.comparable(packed) != gpu_packing.comparable(other)
    run = {"space": "cnn27", "trials": 27, "memory_peak_mib": 2990, "util_p90": 57}
    runs = [{**run, "per_gpu": 1, "wall": 120.0, "util_mean": 9.5, "at_once": 1, "same": None},
            {**run, "per_gpu": 4, "wall": 40.0, "util_mean": 31.25, "at_once": 4, "same": True},
            {**run, "per_gpu": 8, "wall": 30.0, "util_mean": None, "at_once": 8, "same": False}]
    assert gpu_packing.table(runs).splitlines()[2:] == [
        "| cnn27 | 1 | 27 | 120.0 | 1.00x | 9.5 | 57 | 2990 | 1 | (baseline) |",
        "| cnn27 | 4 | 27 | 40.0 | 3.00x | 31.2 | 57 | 2990 | 4 | same |",
        "| cnn27 | 8 | 27 | 30.0 | 4.00x | n/a | 57 | 2990 | 8 | DIFFERENT |",
    ]
    assert gpu_packing.most_at_once([(0, 2), (1, 3), (2, 4), (5, 6)]) == 2


def fake_nvidia_smi(folder: Path, output: str, code: int = 0) -> Path:
    fake = folder / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {code}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def test_the_first_gpu_is_the_one_nvidia_smi_lists_first(tmp_path):
    assert gpu_packing.first_gpu(str(fake_nvidia_smi(tmp_path, NVIDIA_SMI_L))) == ("0", "NVIDIA H100 80GB HBM3")
    with pytest.raises(gpu_packing.NoGpu, match=r"^gpu_packing\.py: no GPU here: nvidia-smi -L listed none \(NVIDIA-SMI has failed"):
        gpu_packing.first_gpu(str(fake_nvidia_smi(tmp_path, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9)))


@pytest.mark.parametrize("nvidia_smi", [None, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"])
def test_without_a_gpu_it_refuses_in_one_line(tmp_path, nvidia_smi):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if nvidia_smi:
        fake_nvidia_smi(bin_dir, nvidia_smi, 9)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("gpu_packing.py: no GPU here: nvidia-smi ")
    assert not (tmp_path / "out").exists()
