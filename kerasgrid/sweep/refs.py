"""References to the user's callables: "file.py:function" or "package.module:function".

They are checked without being imported (so that planning a sweep never pays for TensorFlow) and
loaded only inside a trial.
"""

import ast
import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from kerasgrid.errors import ConfigError

_FORMS = "'path/to/file.py:function' or 'package.module:function'"


@dataclass(frozen=True)
class Ref:
    """A callable named in the config, with the config key and file that named it."""

    text: str
    key: str
    source: str

    @property
    def target(self) -> str:
        return self.text.rpartition(":")[0]

    @property
    def name(self) -> str:
        return self.text.rpartition(":")[2]

    @property
    def is_file(self) -> bool:
        return self.target.endswith(".py") or "/" in self.target

    def error(self, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.key} is '{self.text}', but {problem}. {fix}")


def parse_ref(text, key: str, source: str) -> Ref:
    """A Ref, or a ConfigError when `text` is not of either form."""
    ref = Ref(str(text), key, source)
    if not isinstance(text, str) or text.count(":") < 1 or not ref.name.isidentifier():
        raise ref.error("that is not a reference to a callable", f"Write it as {_FORMS}.")
    return ref


def source_file(ref: Ref) -> Path | None:
    """The file that defines `ref`, checked to define its name; raises ConfigError otherwise."""
    if ref.is_file:
        path = Path(ref.target)
        if not path.is_file():
            raise ref.error(
                f"the file {path} does not exist (looked for it relative to {Path.cwd()})",
                "Fix the path, or run snakemake from the folder the path is relative to.",
            )
    else:
        try:
            spec = importlib.util.find_spec(ref.target)
        except (ImportError, ValueError) as exc:
            spec, cause = None, exc
        else:
            cause = None
        if spec is None:
            raise ref.error(
                f"no module '{ref.target}' can be imported ({cause or 'not found'})",
                f"Install the package that provides it, or write the reference as {_FORMS}.",
            )
        if not spec.origin or not spec.origin.endswith(".py"):
            return None  # compiled or namespace module: nothing to read, nothing to track
        path = Path(spec.origin)
    names = _top_level_names(path, ref)
    if names is not None and ref.name not in names:
        callables = ", ".join(sorted(n for n in names if not n.startswith("_"))) or "none"
        raise ref.error(
            f"{path} defines no '{ref.name}' at its top level (it defines: {callables})",
            "Fix the function name after the colon.",
        )
    return path


def _top_level_names(path: Path, ref: Ref) -> set[str] | None:
    """Names bound at the top level of a module, or None when a star import hides them."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise ref.error(
            f"{path} has a syntax error at line {exc.lineno}: {exc.msg}", "Fix the file."
        ) from None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def load(ref: Ref):
    """Import the module or file and return the callable. Imports the user's code: in trials only."""
    if ref.is_file:
        path = Path(ref.target).resolve()
        module_name = f"kerasgrid_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        module = sys.modules.get(module_name)
        if module is None:
            # The file may import helpers that sit beside it, as it could when run as a script.
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
    else:
        module = importlib.import_module(ref.target)
    function = getattr(module, ref.name, None)
    if not callable(function):
        raise ref.error(f"'{ref.name}' in it is {function!r}, not a callable", "Point it to a function.")
    return function
