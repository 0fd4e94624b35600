"""Safe YAML in and out: what users write means what they think.

- ``safe_load`` only: ``!!python/object`` and other tags are errors, never code.
- ``1e-3`` is the float 0.001 (PyYAML alone reads it as a string), as in YAML 1.2.
- A key given twice in one mapping is an error, with its line.
- Aliases may not expand beyond ``MAX_NODES`` values, or the text's length in characters when
  that is more (a "billion laughs" fails fast; a document without aliases never has more values
  than characters, so a sweep folder's record of 100,000 members still reads).
- Errors carry the file, line and column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import XorlabError

MAX_NODES = 100_000  # values in one document, aliases expanded; configs have a few dozen
MAX_BYTES = 10 * 2**20  # a config file over 10 MiB is not a config file

# YAML 1.2 floats PyYAML's 1.1 resolver misses: 1e-3, 1E5, 2.5e3 (no sign, no dot).
_FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


# libyaml's parser when PyYAML was built with it (10x faster); the same safe constructor either way
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc]
    """SafeLoader with YAML 1.2 exponent floats and duplicate-key detection."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                if key in seen:
                    mark = key_node.start_mark
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first given on line {seen[key].line + 1})",
                        mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


_SafeDumperBase: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~4x faster


class _Dumper(_SafeDumperBase):  # type: ignore[misc]
    """Block style for mappings, flow style for lists: ``hidden: [50]``.

    A value that appears twice is written twice, never as an anchor and alias (``&id001`` /
    ``*id001``): files are for people to read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(x, (list, dict)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def _check_size(obj: Any, file: str, limit: int = MAX_NODES) -> None:
    """Walk the document, counting values with aliases expanded; stop at ``limit``."""
    count = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            raise XorlabError(
                f"document expands to more than {limit} values "
                "(an alias bomb or not a config); refusing it",
                file=file,
            )
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if problem and "could not determine a constructor for the tag" in problem:
        problem = problem.replace(
            "could not determine a constructor for the tag",
            "YAML tags are not allowed (only plain YAML values):",
        )
    msg = f"{context} {problem}" if context and "duplicate" not in problem else problem
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {msg}"
    return msg


def loads(text: str, file: str = "<string>") -> Any:
    """Parse one YAML document safely. Raises XorlabError naming the file, line and column."""
    try:
        obj = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise XorlabError(f"invalid YAML: {_describe_yaml_error(exc)}", file=file) from None
    except RecursionError:
        raise XorlabError("invalid YAML: nested too deeply", file=file) from None
    except (ValueError, TypeError, AttributeError, OverflowError, LookupError):
        # a standard tag on a value it cannot hold: `!!timestamp {a: 1}`, `!!int x`
        raise XorlabError("invalid YAML: a value does not fit its tag (!!int, !!timestamp...)",
                          file=file) from None  # fmt: skip
    _check_size(obj, file, max(MAX_NODES, len(text)))
    return obj


def load_file(path: str | Path, *, max_bytes: int = MAX_BYTES) -> Any:
    """Read and parse a YAML file; a missing or unreadable file is an XorlabError. A file over
    ``max_bytes`` is refused (a sweep folder's own record of a large sweep passes a larger one)."""
    p = Path(path)
    if not p.exists():
        raise XorlabError("no such file", file=str(path))
    if p.is_dir():
        raise XorlabError("is a folder, expected a YAML file", file=str(path))
    if p.stat().st_size > max_bytes:
        raise XorlabError(f"file is larger than {max_bytes // 2**20} MiB", file=str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise XorlabError(f"cannot read: {exc}", file=str(path)) from None
    return loads(text, file=str(path))


def dumps(obj: Any) -> str:
    """YAML text for plain data, keys in the given order; loads(dumps(x)) == x."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
