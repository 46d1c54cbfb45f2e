"""The package's layout: a subpackage per stage of a sweep, each importing only from the stages
before it, no import cycle, and few modules left at the top (kerasgrid/__init__.py says why this
order)."""

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kerasgrid"

# Each stage may import from itself and the stages before it, never from a later one.
STAGES = [
    "base",  # errors.py, records.py, fraction.py: what every stage uses
    "sweep",  # what a sweep's trials are called and where their runs live
    "trial",  # one trial: built, trained, recorded
    "results",  # finished trials ranked, the winner picked and saved
    "search",  # the next trials chosen, by the ranking of those finished
    "running",  # jobs run: warm workers, logs, retries, locks
    "entry",  # __init__.py, cli.py, config.py, project.py: what a user or the Snakefile imports first
]
BASE = {"errors", "records", "fraction"}
ENTRY = {"__init__", "cli", "config", "project"}
MAX_TOP_MODULES = 8


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "entry"  # kerasgrid/__init__.py
    if len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").is_file():
        return "base" if parts[1] in BASE else "entry" if parts[1] in ENTRY else f"unplaced top-level module {parts[1]}"
    return parts[1]


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, kerasgrid module) of every import in the file, function-level ones included: a lazy
    import climbs back up a stage as much as one at the top does."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            # `import kerasgrid` (for __version__) is the package every module is already inside.
            found += [(node.lineno, alias.name) for alias in node.names
                      if alias.name.startswith("kerasgrid.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "kerasgrid":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((node.lineno, submodule if is_module(submodule) else node.module))
    return found


def graph() -> dict[str, list[tuple[int, str]]]:
    return {module_name(path): imports(path) for path in sorted(PACKAGE.rglob("*.py")) if "_workflow" not in path.parts}


def test_every_import_goes_to_the_same_stage_or_an_earlier_one():
    climbs = []
    for module, edges in graph().items():
        for line, target in edges:
            here, there = stage(module), stage(target)
            assert here in STAGES, f"{module} is in no stage: add its package to STAGES, in order"
            assert there in STAGES, f"{target} is in no stage: add its package to STAGES, in order"
            if STAGES.index(there) > STAGES.index(here):
                climbs.append(f"{module}:{line} imports {target} ({there} comes after {here})")
    assert not climbs, "imports that climb back up a stage:\n" + "\n".join(climbs)


def test_no_module_imports_itself_back():
    edges = {module: {target for _, target in targets} for module, targets in graph().items()}
    done, cycles = set(), []

    def visit(module, path):
        if module in path:
            cycles.append(" -> ".join(path[path.index(module):] + [module]))
            return
        if module in done:
            return
        for target in sorted(edges.get(module, ())):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_few_modules_sit_at_the_top():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules at the top of kerasgrid/: {top}; put them in a stage"
    assert {path.stem for path in PACKAGE.glob("*.py")} == BASE | ENTRY


def test_every_subpackage_ships_in_the_wheel():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    found = {module_name(init) for init in PACKAGE.rglob("__init__.py")}
    assert found <= set(packages), f"pyproject.toml's packages leaves out {sorted(found - set(packages))}"


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_every_stage_says_what_it_is(package):
    docstring = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring and re.match(r"^[A-Z`]", docstring), f"kerasgrid/{package}/__init__.py needs a docstring"
