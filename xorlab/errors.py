"""Error types for bad user input: each carries the file, the key and what is allowed."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path


def safe_text(text: str) -> str:
    """``text`` with every control or format character escaped as Python's repr would write it
    (newline as \\n, ESC as \\x1b, a bidi override as \\u202e), so text from a config file can
    neither split a one-line error in two nor recolour, retitle or reorder the terminal."""
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable() or c == " ":
            out.append(c)
        elif unicodedata.category(c) in ("Zs",):  # other spaces read as spaces
            out.append(" ")
        else:
            out.append(repr(c)[1:-1] if c != "'" else c)
    return "".join(out)


class XorlabError(Exception):
    """Bad input from the user (a config, a flag, a path). The CLI prints it and exits 2."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.key = key

    def lines(self) -> list[str]:
        """One line per problem, ready to print: ``file: key: message``."""
        parts = [p for p in (self.file, self.key) if p]
        return [safe_text(": ".join([*parts, self.message]))]

    def __str__(self) -> str:
        return "\n".join(self.lines())


class ConfigError(XorlabError):
    """A config or sweep file that cannot be used; may hold several problems."""

    def __init__(self, problems: Sequence[tuple[str | None, str]], *, file: str | None = None):
        self.problems = list(problems)  # (dotted key or None, message)
        first_key, first_msg = problems[0]
        super().__init__(first_msg, file=file, key=first_key)

    def lines(self) -> list[str]:
        out = []
        for key, msg in self.problems:
            parts = [p for p in (self.file, key) if p]
            out.append(safe_text(": ".join([*parts, msg])))
        return out


_folder: list[Path] = []  # the run or sweep folder this command made or resumed, if any


def note_folder(path: Path | None) -> None:
    """Remember the first run or sweep folder a command creates or resumes (None: forget it), so
    that an internal error's traceback is written there rather than to a temporary file."""
    if path is None:
        _folder.clear()
    elif not _folder:
        _folder.append(Path(path))


def noted_folder() -> Path | None:
    return _folder[0] if _folder else None
