"""``xorlab report``: one folder of results -> a report folder a person can read.

    build_report(path, out=None, x=None, y=None, metric="final_loss") -> report folder
    check_report(path, out=None, x=None, y=None, metric="final_loss") -> Checked   (writes nothing)
    write_report(checked) -> report folder

``path`` is a run folder or a sweep folder (DESIGN.md section 3). The report folder (default
``<path>/report/``) gets:

    index.html   self-contained: images as data URIs, CSS inline, no scripts, no external URLs
    report.md    the same text for GitHub and notebooks; images linked by relative path
    *.png        every figure, and training.gif for a run that has one

Bad input (a path that is neither, a sweep with no members, an unknown ``--x``/``--y``/
``--metric``, a report folder that is a file or lies under one) raises XorlabError before anything
is written; ``check_report`` finds all of it without drawing or writing, so that a command given
several paths can check them all before it writes the first report. Damaged or unfinished runs
inside are reported as notes, never as tracebacks. Files are written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import XorlabError
from ..rundir import atomic_write_bytes, atomic_write_text
from .doc import Doc, render_html, render_markdown
from .read import (
    RunView,
    SweepView,
    is_run_dir,
    is_sweep_dir,
    read_member,
    read_run,
    read_sweep,
)

if TYPE_CHECKING:
    from .large import LargeSweepView

    View = RunView | SweepView | LargeSweepView  # a sweep of hundreds of members: large.py

DEFAULT_METRIC = "final_loss"


@dataclass(frozen=True)
class Checked:
    """A report that can be written: its folder was read and its options are valid."""

    view: View
    folder: Path  # where the report goes
    x: str | None
    y: str | None
    metric: str


def build_report(
    path: Path,
    *,
    out: Path | None = None,
    x: str | None = None,
    y: str | None = None,
    metric: str = DEFAULT_METRIC,
) -> Path:
    """Write the report of the run or sweep folder ``path``; return the report folder.

    ``x``, ``y``: the sweep keys of the heatmap (dotted config keys, their short names such as
    ``lr``, ``variant`` or ``seed``); by default the two varied keys with the most values.
    ``metric``: a summary.csv column (final_loss, final_train_acc, final_test_acc, diverged_at,
    wall_s) or max_spike (the largest loss / running-minimum ratio).
    """
    return write_report(check_report(path, out=out, x=x, y=y, metric=metric))


def check_report(
    path: Path,
    *,
    out: Path | None = None,
    x: str | None = None,
    y: str | None = None,
    metric: str = DEFAULT_METRIC,
) -> Checked:
    """Read ``path`` and check everything ``build_report`` would reject: the kind of folder,
    ``x``/``y``/``metric``, and the report folder (default ``<path>/report``: not a file, not
    under one). Nothing is drawn or written."""
    path = Path(path)
    view = _read(path, x=x, y=y, metric=metric)
    folder = Path(out) if out is not None else path / "report"
    for p in (folder, *folder.parents):
        if p.is_dir():
            break
        if p.exists() or p.is_symlink():
            what = "a file" if p == folder else f"{p} is a file"
            raise XorlabError(f"cannot create the report folder: {what}", file=str(folder))
    return Checked(view, folder, x, y, metric)


def write_report(checked: Checked) -> Path:
    """Draw and write a checked report; return its folder."""
    doc = _render(checked.view, x=checked.x, y=checked.y, metric=checked.metric)
    folder = checked.folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise XorlabError(
            f"cannot create the report folder ({exc.strerror})", file=str(folder)
        ) from None
    write_doc(doc, folder)
    return folder


def make_doc(
    path: Path, *, x: str | None = None, y: str | None = None, metric: str = DEFAULT_METRIC
) -> Doc:
    """The report of ``path`` in memory (figures rendered, nothing written)."""
    return _render(_read(path, x=x, y=y, metric=metric), x=x, y=y, metric=metric)


def _read(path: Path, *, x: str | None, y: str | None, metric: str) -> View:
    """The run or sweep folder ``path``, read, with ``x``/``y``/``metric`` checked against it."""
    member = read_member(path)  # <sweep>/members/<label>, whether or not its folder exists
    if member is not None:
        if x is not None or y is not None or metric != DEFAULT_METRIC:
            raise XorlabError(
                "--x, --y and --metric apply to a sweep folder, not a run", file=str(path)
            )
        return member
    if not path.exists():
        raise XorlabError("no such folder", file=str(path))
    if not path.is_dir():
        raise XorlabError("not a run or sweep folder (a file)", file=str(path))
    if is_sweep_dir(path):
        from .large import read_large
        from .points import plan

        large = read_large(path, x=x, y=y, metric=metric)  # None: a sweep of a few hundred
        if large is not None:
            return large
        view = read_sweep(path)
        plan(view, x=x, y=y, metric=metric)  # an unknown key or metric: XorlabError
        return view
    if is_run_dir(path):
        if x is not None or y is not None or metric != DEFAULT_METRIC:
            raise XorlabError(
                "--x, --y and --metric apply to a sweep folder, not a run", file=str(path)
            )
        return read_run(path)
    if any(is_run_dir(p) or is_sweep_dir(p) for p in path.iterdir()):
        raise XorlabError(
            "a folder of runs, not a run or sweep folder: give one of the folders inside",
            file=str(path),
        )
    raise XorlabError(
        "not a run or sweep folder (expected config.yaml, summary.json or sweep.yaml)",
        file=str(path),
    )


def _render(view: View, *, x: str | None, y: str | None, metric: str) -> Doc:
    from .large import LargeSweepView, large_doc

    if isinstance(view, LargeSweepView):
        return large_doc(view)
    if isinstance(view, SweepView):
        from .sweep import sweep_doc

        return sweep_doc(view, x=x, y=y, metric=metric)
    from .run import run_doc

    return run_doc(view)


def write_doc(doc: Doc, folder: Path) -> None:
    """Images first, then report.md, then index.html (its presence means the report is whole)."""
    for name, data in doc.files().items():
        atomic_write_bytes(folder / name, data)
    atomic_write_text(folder / "report.md", render_markdown(doc))
    atomic_write_text(folder / "index.html", render_html(doc))
