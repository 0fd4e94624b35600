"""Shell completion (``xorlab --install-completion``): config and sweep files, run and sweep
folders, and ``--set`` keys with their allowed values.

Each function takes the word being typed and returns candidates; typer calls them from the
completion protocol of bash, zsh, fish or PowerShell. They read only folder listings and the
config's pydantic models, never a run's files, so completing stays instant in a large runs folder.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

YAML_SUFFIXES = (".yaml", ".yml")
RUN_MARKERS = ("summary.json", "config.yaml", "sweep.yaml")


def _listing(incomplete: str) -> tuple[Path, str, list[os.DirEntry[str]]]:
    """The folder ``incomplete`` points into, the name prefix typed there, and its entries."""
    head, _, prefix = incomplete.rpartition("/")
    folder = Path(head or ".") if head or not incomplete.startswith("/") else Path("/")
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return folder, prefix, []
    shown = [e for e in entries if e.name.startswith(prefix)]
    if not prefix.startswith("."):
        shown = [e for e in shown if not e.name.startswith(".")]
    return folder, prefix, shown


def _join(incomplete: str, name: str) -> str:
    head, sep, _ = incomplete.rpartition("/")
    return f"{head}{sep}{name}"


def yaml_files(incomplete: str) -> list[str]:
    """YAML files, and folders to descend into (with a trailing /)."""
    _, _, entries = _listing(incomplete)
    out = []
    for e in entries:
        if e.is_dir():
            out.append(_join(incomplete, e.name) + "/")
        elif e.name.endswith(YAML_SUFFIXES):
            out.append(_join(incomplete, e.name))
    return out


def run_folders(incomplete: str) -> list[str]:
    """Folders; a run or sweep folder (one holding summary.json, config.yaml or sweep.yaml)
    without a trailing /, any other folder with one, to descend into."""
    if not incomplete:
        incomplete = "runs/" if Path("runs").is_dir() else ""
    _, _, entries = _listing(incomplete)
    out = []
    for e in entries:
        if not e.is_dir():
            continue
        path = _join(incomplete, e.name)
        is_run = any(os.path.exists(os.path.join(e.path, m)) for m in RUN_MARKERS)
        out.append(path if is_run else path + "/")
    return out


def _leaves(model: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> annotation, for every leaf of a pydantic model."""
    from pydantic import BaseModel

    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(_leaves(ann, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = ann
    return out


def _choices(annotation: Any) -> list[str]:
    """The values a key allows, when they are few: Literal choices, true/false, null."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in args]
    if annotation is bool:
        return ["true", "false"]
    if args and type(None) in args:
        return [*(c for a in args if a is not type(None) for c in _choices(a)), "null"]
    return []


def set_keys(incomplete: str) -> list[tuple[str, str]]:
    """``--set`` completions: ``optim.l`` -> ``optim.lr=`` (with the knob's meaning);
    ``model.activation=s`` -> ``model.activation=sigmoid``."""
    from .config import Config
    from .schema import field_comments

    leaves = _leaves(Config)
    key, eq, value = incomplete.partition("=")
    if eq:
        ann = leaves.get(key)
        return [(f"{key}={c}", "") for c in _choices(ann) if c.startswith(value)] if ann else []
    help_of: dict[str, str] = {}
    for dotted in leaves:
        section, _, name = dotted.rpartition(".")
        model: Any = Config
        for part in section.split(".") if section else []:
            model = model.model_fields[part].annotation
        help_of[dotted] = field_comments(model).get(name, "")
    return [(f"{k}=", help_of[k]) for k in leaves if k.startswith(key)]
