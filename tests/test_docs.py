"""The documentation (README.md and the MkDocs site in docs/): it builds strictly, and its examples work.

How examples are checked, so that a page whose example is wrong fails the tests:

- Every ```yaml block is a sweep config, whole or in part, unless the line before its fence is
  `<!-- not a config: why -->` (a Snakemake profile, say). The block's top-level keys replace
  those of the default config.yaml, and the result must pass what a run checks before it plans:
  the schema (with kerasgrid's one-paragraph errors), its defaults filled in, and the sweep's own
  checks (ranges, search, confirm). Files the block names that the repository does not hold (your
  `model.py`) are stubbed with the functions named, so a reference's form is checked, not its code.
- A ```python block runs when the line before its fence is `<!-- runnable -->`. A page's runnable
  blocks (the README sections it includes too) run in order, in one fresh Python process in a
  scratch folder, with this checkout's kerasgrid importable; a block titled `title="model.py"` is
  saved under that name before it runs, so that later blocks import it. Keep them fast: no sweep,
  at most a step of training.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml
from snakemake.utils import validate

from kerasgrid.config import check, load_schema, sweep_from_config

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
NOT_A_CONFIG = "<!-- not a config"
RUNNABLE = "<!-- runnable -->"
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
SNIPPET = re.compile(r'^--8<-- "(?P<file>[^":]+)(?::(?P<section>[\w-]+))?"$', re.MULTILINE)
REFERENCE = re.compile(r"^(?P<file>[\w./-]+\.py):(?P<name>\w+)$")
# Material's notice about its successor, printed on every build; not a warning about the site.
QUIET = {"NO_MKDOCS_2_WARNING": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    title: str | None
    marker: str
    body: str

    def __str__(self):
        return f"{self.page.relative_to(REPO)}:{self.line}"


def expand_snippets(text: str) -> str:
    """The page as MkDocs renders it: `--8<-- "FILE:section"` lines replaced by that section of FILE
    and `--8<-- "FILE"` by the whole file (pymdownx.snippets, which the docs use to show the
    README's first sweep and the project `kerasgrid init` writes without a copy)."""

    def section(match):
        lines = (REPO / match["file"]).read_text(encoding="utf-8").splitlines()
        if match["section"] is None:
            return "\n".join(lines)
        start = next(i for i, line in enumerate(lines) if f"--8<-- [start:{match['section']}]" in line)
        end = next(i for i, line in enumerate(lines) if f"--8<-- [end:{match['section']}]" in line)
        return "\n".join(lines[start + 1 : end])

    return SNIPPET.sub(section, text)


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, each with the comment line just before it (if any)."""
    text = expand_snippets(page.read_text(encoding="utf-8"))
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marker = before[-1].strip() if before and before[-1].strip().startswith("<!--") else ""
        title = re.search(r'title="([^"]+)"', match["attrs"])
        body = "\n".join(line[len(match["indent"]):] for line in match["body"].splitlines())
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match["lang"],
                           title and title[1], marker, body + "\n"))
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
CONFIGS = [b for b in ALL_BLOCKS if b.lang == "yaml" and not b.marker.startswith(NOT_A_CONFIG)]
RUNNABLE_PAGES = sorted({b.page for b in ALL_BLOCKS if b.marker == RUNNABLE})


def mkdocs_build(config_file: Path, site_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config_file),
         "--site-dir", str(site_dir)],
        capture_output=True, text=True, timeout=300, env={**os.environ, **QUIET},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = mkdocs_build(REPO / "mkdocs.yml", site_dir)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    return site_dir


def test_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert "load_best_model" in (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")


def test_a_broken_link_fails_the_build(tmp_path):
    """Strict mode stays strict: a link to a page or an anchor that does not exist fails the build."""
    for name in ("kerasgrid", "workflow", "examples"):  # examples: Getting started shows examples/starter
        os.symlink(REPO / name, tmp_path / name)
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(REPO / name, tmp_path)
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    page = tmp_path / "docs" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[gone](results.md#no-such-heading)\n", encoding="utf-8")
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-heading" in result.stdout + result.stderr


def config_reference_hook():
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "docs" / "hooks" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_lists_every_schema_key(site):
    hook = config_reference_hook()
    page = (site / "reference" / "configuration" / "index.html").read_text(encoding="utf-8")
    schema = load_schema(SCHEMA_FILE)
    missing = [".".join(path) for path, _, _ in hook.keys(schema) if f'id="{hook.anchor(path)}"' not in page]
    assert not missing, f"keys of the schema without a section in the configuration reference: {missing}"
    assert len(list(hook.keys(schema))) > len(schema["properties"])  # nested keys too


def test_schema_examples_fit_their_keys():
    hook = config_reference_hook()
    for path, subschema, _ in hook.keys(load_schema(SCHEMA_FILE)):
        for example in subschema.get("examples", []):
            jsonschema.validate(example, {k: v for k, v in subschema.items() if k != "examples"})


def test_markers_sit_on_blocks_they_apply_to():
    assert CONFIGS and RUNNABLE_PAGES
    wrong = [str(b) for b in ALL_BLOCKS
             if (b.marker == RUNNABLE and b.lang != "python") or (b.marker.startswith(NOT_A_CONFIG) and b.lang != "yaml")]
    assert not wrong, f"markers on blocks of another language (they would check nothing): {wrong}"


def stub_references(config: dict, folder: Path) -> None:
    """Write each `file.py` the config names but the folder lacks, defining the functions named."""
    stubs: dict[Path, list[str]] = {}
    for text in [config.get("model"), *(config.get("data") or {}).values()]:
        found = REFERENCE.match(text) if isinstance(text, str) else None
        if found and not (folder / found["file"]).exists():
            stubs.setdefault(folder / found["file"], []).append(found["name"])
    for path, names in stubs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"def {name}(*args, **kwargs):\n    pass\n\n\n" for name in names), encoding="utf-8")


@pytest.mark.parametrize("block", CONFIGS, ids=str)
def test_yaml_example_is_a_valid_config(block, tmp_path, monkeypatch):
    snippet = yaml.safe_load(block.body)
    assert isinstance(snippet, dict), f"{block} is not a mapping; mark it {NOT_A_CONFIG}: why -->"
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config.update(snippet)
    os.symlink(REPO / "examples", tmp_path / "examples")
    stub_references(config, tmp_path)
    monkeypatch.chdir(tmp_path)
    source = str(block)
    check(config, load_schema(SCHEMA_FILE), source)
    validate(config, str(SCHEMA_FILE))
    sweep_from_config(config, source)


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_runnable_examples_run(page, tmp_path):
    scripts = []
    for number, block in enumerate(b for b in blocks(page) if b.marker == RUNNABLE):
        path = tmp_path / (block.title or f"block_{number}_line_{block.line}.py")
        path.write_text(block.body, encoding="utf-8")
        scripts.append(path.name)
    driver = f"import runpy\nfor script in {scripts!r}:\n    runpy.run_path(script, run_name='__main__')\n"
    env = {**os.environ, **QUIET, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", driver], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, f"a runnable example of {page.name} failed:\n{result.stdout}{result.stderr}"
