"""JSON Schemas of the config and the sweep file, for editors (a YAML language server completes,
documents and checks a file that names its schema) and for any other tool.

Both come from the pydantic models. Each knob's description is the comment written beside it in
the model's source (``lr: float = Field(0.003, gt=0.0)  # base learning rate; ...``), so the
comment a reader of ``config.py`` sees is the hover text an editor shows: one source for both.
"""

from __future__ import annotations

import inspect
import io
import re
import tokenize
from typing import Any

from pydantic import BaseModel

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KINDS = ("config", "sweep")

_FIELD_LINE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s*:")


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment on the line that declares it, in ``model``'s class body."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):  # no source (a frozen build): no descriptions, still a schema
        return {}
    comments: dict[str, str] = {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        row = tok.start[0] - 1
        m = _FIELD_LINE.match(lines[row])
        text = tok.string.lstrip("#").strip()
        if m and m.group(1) in model.model_fields and text and not text.startswith("noqa"):
            comments.setdefault(m.group(1), text)
    return comments


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``root`` through its fields, by class name."""
    found: dict[str, type[BaseModel]] = {}

    def visit(model: type[BaseModel]) -> None:
        if model.__name__ in found:
            return
        found[model.__name__] = model
        for f in model.model_fields.values():
            for t in _types_in(f.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    visit(t)

    visit(root)
    return found


def _types_in(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [annotation, *(t for a in args for t in _types_in(a))]


def _describe(schema: dict[str, Any], root: type[BaseModel]) -> None:
    """Put each field's source comment into its schema as ``description``."""
    defs = schema.get("$defs", {})
    for name, model in _models(root).items():
        target = schema if model is root else defs.get(name)
        if target is None:
            continue
        props = target.get("properties", {})
        for field, text in field_comments(model).items():
            if field in props:
                props[field]["description"] = text


def config_schema() -> dict[str, Any]:
    """The run config (DESIGN.md section 2): every key optional, unknown keys errors."""
    from .config import Config

    schema = Config.model_json_schema()
    _describe(schema, Config)
    schema["title"] = "xorlab config"
    schema["description"] = (
        "A network, its data and how it trains; every key has a default, so a file gives only "
        "what differs. See `xorlab train --help`."
    )
    return {"$schema": SCHEMA_DIALECT, **schema}


def sweep_schema() -> dict[str, Any]:
    """The sweep file: a base config (inline ones checked against the config schema) and axes."""
    from .sweep import SweepSpec

    schema = SweepSpec.model_json_schema()
    _describe(schema, SweepSpec)
    config = config_schema()
    defs = schema.setdefault("$defs", {})
    for name, d in config.get("$defs", {}).items():
        defs.setdefault(name, d)
    defs["Config"] = {k: v for k, v in config.items() if k not in ("$defs", "$schema")}
    inline = {"anyOf": [{"$ref": "#/$defs/Config"}, {"type": "null"}], "default": None}
    dotted = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"}
    for props in (schema["properties"], defs.get("Variant", {}).get("properties", {})):
        if "config" in props:
            props["config"] = {**inline, "description": props["config"].get("description", "")}
        if "set" in props:
            props["set"]["propertyNames"] = dotted
    for axis in ("grid", "zip"):
        props = schema["properties"][axis]
        props["propertyNames"] = dotted
        props["additionalProperties"] = {"type": "array", "minItems": 1}
    schema["title"] = "xorlab sweep"
    schema["description"] = (
        "Members = variants x grid x zip x random x seeds over a base config. "
        "See `xorlab sweep --help`."
    )
    return {"$schema": SCHEMA_DIALECT, **schema}


def schema(kind: str) -> dict[str, Any]:
    """``config`` or ``sweep``."""
    return config_schema() if kind == "config" else sweep_schema()
