"""What pyproject.toml declares: ranges whose lower ends install together, and requirements.lock
(the exact install of `make` and CI) inside every one of them. A sweep on the lower ends is
`make oldest` (too slow for the suite: it installs TensorFlow 2.16 into a fresh environment)."""

import json
import subprocess
import sys

import pytest
from packaging.utils import canonicalize_name

from declared import EXTRAS, locked, lower_end, lower_ends, requirements

# Each Keras backend and the MLflow extra with the runtime's lower ends: what a user with old
# versions installs. The test and bench tools' own lower ends with the runtime in its ranges:
# they install with whatever runtime pip picks (the documentation theme needs a newer Pygments
# than the runtime's lower end, for instance).
WITH_OLDEST_RUNTIME = ("tensorflow", "jax", "torch", "mlflow")


def test_every_requirement_is_a_range_up_to_below_the_next_major_of_the_locked_version():
    pins = locked()
    for requirement in requirements(*EXTRAS):
        if requirement.name == "setuptools":  # a build tool: any newer one builds the wheel
            assert str(requirement.specifier) == ">=80.9", requirement
            continue
        lock = pins[canonicalize_name(requirement.name)]
        (high,) = [spec for spec in requirement.specifier if spec.operator == "<"]
        assert len(requirement.specifier) == 2 and lower_end(requirement) <= lock, requirement
        assert high.version == str(lock.major + 1 if lock.major else 1), requirement


def test_the_lock_lies_in_every_declared_range():
    pins = locked()
    for requirement in requirements(*EXTRAS):
        version = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=False), f"{requirement}: the lock has {version}"


def resolve(lines: list[str]) -> dict[str, str]:
    """What pip would install for `lines`, from the package index, installing nothing: name -> version."""
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--no-input", "--retries", "10", "--timeout", "60",
               "--report", "-", *lines]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"{' '.join(lines)}:\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout)
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}


@pytest.mark.parametrize("extra", EXTRAS)
def test_the_lower_ends_install_together(extra):
    if extra in WITH_OLDEST_RUNTIME:
        pinned = lower_ends(extra)
        lines = pinned
    else:
        pinned = [line for line in lower_ends(extra) if line not in lower_ends()]
        lines = pinned + [str(r) for r in requirements()]
    installed = resolve(lines)
    for line in pinned:
        name, version = line.split("==")
        assert installed[name].split("+")[0] in (version, version + ".0", version + ".0.0"), (line, installed[name])
