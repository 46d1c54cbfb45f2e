"""What pyproject.toml declares kerasgrid needs, and the lower ends of its ranges.

For tests/test_install.py, the virtual environment without TensorFlow (tests/test_without_tensorflow.py)
and `make oldest`, which installs the lower ends: `python tests/declared.py lower tensorflow` prints them
as pip constraints (`keras==3.7.0`, ...), `python tests/declared.py requirements jax` the requirements of
kerasgrid[jax], one a line.
"""

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
EXTRAS = ("tensorflow", "jax", "torch", "test", "mlflow", "bench")


def requirements(*extras: str) -> list[Requirement]:
    """The runtime dependencies, then those of each of `extras`, as declared."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    return [Requirement(line) for line in declared]


def lower_end(requirement: Requirement) -> Version:
    """The oldest version a requirement allows: its `>=` bound, which every one of ours has."""
    (bound,) = [spec for spec in requirement.specifier if spec.operator == ">="]
    return Version(bound.version)


def lower_ends(*extras: str) -> list[str]:
    """`name==version` of every requirement's lower end (the same package's once: the highest)."""
    oldest: dict[str, Version] = {}
    for requirement in requirements(*extras):
        name = canonicalize_name(requirement.name)
        oldest[name] = max(oldest.get(name, lower_end(requirement)), lower_end(requirement))
    return [f"{name}=={version}" for name, version in oldest.items()]


def locked() -> dict[str, Version]:
    """requirements.lock: package name (canonical) -> its exact version."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


if __name__ == "__main__":
    what, *extras = sys.argv[1:]
    lines = lower_ends(*extras) if what == "lower" else [str(r) for r in requirements(*extras)]
    print("\n".join(lines))
