"""MkDocs hook: the configuration reference, written from workflow/schemas/config.schema.yaml.

The schema is the one home of every key, its type, default and description. A page holding the
marker below gets a table of every key (nested ones included) and a section per key, so a key
added to the schema appears in the docs without editing a page.
"""

import html
import json
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
MARKER = "<!-- config-reference -->"
# What a grid key stands for in the reference: any name the user gives a hyperparameter.
GRID_KEY = "<name>"
GRID_KEY_EXAMPLE = "units"
INLINE_WIDTH = 50


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference(yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))))


def keys(schema: dict, path: tuple = ()):
    """(path, subschema, required) for every key the schema defines, parents before children."""
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        yield path + (name,), sub, name in required
        yield from keys(sub, path + (name,))
    free = schema.get("additionalProperties")
    if isinstance(free, dict) and "anyOf" in free:
        yield path + (GRID_KEY,), free, False
        for form in free["anyOf"]:
            yield from keys(form, path + (GRID_KEY,))


def anchor(path: tuple) -> str:
    return ".".join(path).replace(GRID_KEY, "name")


def type_text(schema: dict) -> str:
    if "anyOf" in schema:
        return " or ".join(type_text(form) for form in schema["anyOf"])
    names = {"object": "mapping", "array": "list", "null": "null", "number": "number",
             "integer": "whole number", "string": "string", "boolean": "true or false"}
    kinds = schema.get("type", [])
    return " or ".join(names[kind] for kind in ([kinds] if isinstance(kinds, str) else kinds))


def limits(schema: dict) -> list[str]:
    found = []
    if "enum" in schema:
        found.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    if "minimum" in schema:
        found.append(f"at least {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        found.append(f"above {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        found.append(f"at most {schema['maximum']}")
    if "minItems" in schema:
        found.append(f"at least {schema['minItems']} item")
    if "minProperties" in schema:
        found.append(f"at least {schema['minProperties']} key")
    return found


def inline(value) -> str:
    """A value as the YAML a user would write, on one line, quoted only where YAML needs it."""
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{key}: {inline(item)}" for key, item in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(inline(item) for item in value) + "]"
    elif isinstance(value, str) and not any(mark in value for mark in ",[]{}#") and _plain(value):
        text = value
    else:
        text = json.dumps(value)
    assert yaml.safe_load(text) == value, f"{value!r} does not read back from {text!r}"
    return text


def _plain(text: str) -> bool:
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def example(path: tuple, schema: dict):
    """The schema's first example, else its default when that says something (not null or {})."""
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("default") not in (None, {}):
        return schema["default"]
    if "anyOf" in schema:
        return example(path, schema["anyOf"][0])
    return None


def example_block(path: tuple, value) -> str:
    """The example as YAML nested under the key's parents; short mappings and lists inline."""
    names = [GRID_KEY_EXAMPLE if name == GRID_KEY else name for name in path]
    lines = [f"{'  ' * depth}{name}:" for depth, name in enumerate(names)]
    if isinstance(value, dict) and len(inline(value)) > INLINE_WIDTH:
        lines += [f"{'  ' * len(names)}{key}: {inline(item)}" for key, item in value.items()]
    else:
        lines[-1] += f" {inline(value)}"
    text = "\n".join(lines)
    assert yaml.safe_load(text) == _nested(names, value), f"the example of {path} does not read back"
    return f"```yaml\n{text}\n```"


def _nested(names: list, value):
    for name in reversed(names):
        value = {name: value}
    return value


def prose(text: str) -> str:
    """A description as Markdown text: <id> and the like are text, not HTML tags."""
    return html.escape(" ".join(text.split()), quote=False)


def section(path: tuple, schema: dict, required: bool) -> str:
    level = "#" * min(len(path) + 1, 4)
    facts = [f"**Type:** {type_text(schema)}"]
    if required:
        facts.append("**required**")
    elif "default" in schema:
        facts.append(f"**Default:** `{inline(schema['default'])}`")
    facts += limits(schema)
    parts = [f"{level} `{'.'.join(path)}` {{ #{anchor(path)} }}", " · ".join(facts)]
    if schema.get("description"):
        parts.append(prose(schema["description"]))
    for form in schema.get("anyOf", []):
        parts.append(f"- *{type_text(form)}*: {prose(form.get('description', ''))}")
    value = example(path, schema)
    if value is not None:
        parts.append(example_block(path, value))
    return "\n\n".join(parts)


def reference(schema: dict) -> str:
    entries = list(keys(schema))
    rows = ["| key | type | default |", "|---|---|---|"]
    for path, sub, required in entries:
        default = "required" if required else (f"`{inline(sub['default'])}`" if "default" in sub else "")
        rows.append(f"| [`{'.'.join(path)}`](#{anchor(path)}) | {type_text(sub)} | {default} |")
    body = [prose(schema.get("description", "")), "\n".join(rows)]
    body += [section(path, sub, required) for path, sub, required in entries]
    return "\n\n".join(body) + "\n"


if __name__ == "__main__":
    print(reference(yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))))
