"""The consoles the command line prints through: text from files escaped, pipes never wrapped.

Imported when a command first prints, so `xorlab --help` does not load rich's console.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from .errors import safe_text

PIPE_WIDTH = 100_000  # output to a pipe or file: no line is wrapped or cut, so grep finds paths


class SafeConsole(Console):
    """A console that shows text from files and folder names escaped (control and format
    characters as repr writes them, newlines kept), so a folder named with escape sequences can
    neither recolour nor retitle the terminal."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        if not text.isprintable():
            text = "\n".join(safe_text(line) for line in text.split("\n"))
        return super().render_str(text, **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        """Whatever else reaches the screen (a table's Text cells): escaped too."""
        return super()._render_buffer(
            seg if seg.control or seg.text.isprintable() or seg.text == "\n"
            else Segment("\n".join(safe_text(x) for x in seg.text.split("\n")), seg.style)
            for seg in buffer
        )  # fmt: skip


class PipeConsole(SafeConsole):
    """Output to a pipe or a file: lines as long as their text, whatever COLUMNS says, so that
    `xorlab runs | grep NAME` sees every folder name whole, on one line. A table is as wide as
    its cells and at least as wide as its title and caption (rich wraps those at its width)."""

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, highlight=False, width=PIPE_WIDTH)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for obj in objects:
            if isinstance(obj, Table):
                notes = [t for t in (obj.title, obj.caption) if t]
                widths = [(t if isinstance(t, Text) else Text.from_markup(str(t))).cell_len
                          for t in notes]  # fmt: skip
                obj.min_width = max([obj.min_width or 0, *widths])
        super().print(*objects, **kwargs)


def make_console(*, stderr: bool = False) -> Console:
    """A terminal's width for a terminal; for a pipe or a file, no line wrapped or cut."""
    console = SafeConsole(stderr=stderr, highlight=False)
    return console if console.is_terminal else PipeConsole(stderr=stderr)
