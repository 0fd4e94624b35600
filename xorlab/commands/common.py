"""What the command modules share: number formats, exit codes, the folder-option check."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import XorlabError

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}"
    return str(v)


def _acc(v: float | None) -> str:
    """An accuracy with three decimals, always: 0.000, 0.997, 1.000."""
    return "-" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _loss(v: float | None) -> str:
    """A loss to four significant digits, trailing zeros kept: 0.1000, 2.473e-05."""
    if v is None:
        return "-"
    return str(v) if not math.isfinite(v) else f"{v:#.4g}"


def check_folder_option(path: Path, option: str) -> None:
    """A folder that an option names and xorlab will create or write into: XorlabError, before
    any work, when it is a file or lies under one (mkdir would fail only after training)."""
    for p in (path, *path.parents):
        if p.is_dir():
            return
        if p.is_symlink() and not p.exists():
            raise XorlabError(f"{p} is a broken symbolic link", file=str(path), key=option)
        if p.exists():
            what = "a file, not a folder" if p == path else f"{p} is a file, not a folder"
            raise XorlabError(what, file=str(path), key=option)
