"""`xorlab runs`, `compare`, `export` and `report`: commands that read run and sweep folders.

Functions return exit codes or data and print only through the Console they are given.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..errors import XorlabError
from .common import check_folder_option


def runs_command(
    folder: Path, status: str | None, sort: str, as_json: bool, console: Console
) -> None:
    from ..listing import SORT_KEYS, filter_status, runs_table, scan, sort_by, to_json

    if sort not in SORT_KEYS:
        raise XorlabError(f"must be one of {', '.join(SORT_KEYS)}, got {sort!r}", key="--sort")
    if not folder.exists() and folder == Path("runs"):
        infos = []  # a fresh project: nothing run yet
    else:
        infos = scan(folder)
    if status:
        infos = filter_status(infos, status)
    infos = sort_by(infos, sort)
    if as_json:
        import sys

        sys.stdout.write(to_json(infos) + "\n")
        return
    if not infos:
        console.print(f"no runs in {folder}", markup=False)
        return
    console.print(runs_table(infos))


def compare_command(paths: list[Path], out_dir: Path | None, console: Console) -> None:
    """Print the table; with ``out_dir``, also write compare.png (the overlay) and compare.json
    (the table) there. Without it, nothing is written."""
    import json

    from ..compare import compare_record, compare_table, load_runs, path_lines
    from ..overlay import overlay_figure_png
    from ..rundir import atomic_write_bytes, atomic_write_text

    if len(paths) < 2:
        raise XorlabError("give at least two run folders", key="compare")
    if out_dir is not None:
        check_folder_option(out_dir, "--out")
    runs = load_runs(paths)
    console.print(compare_table(runs))
    for line in path_lines(runs):
        console.print(line, markup=False, soft_wrap=True)
    if out_dir is None:
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise XorlabError(f"cannot create it ({exc.strerror})", file=str(out_dir),
                          key="--out") from None  # fmt: skip
    png = atomic_write_bytes(out_dir / "compare.png", overlay_figure_png(runs))
    record = json.dumps(compare_record(runs), indent=2, allow_nan=False) + "\n"
    table = atomic_write_text(out_dir / "compare.json", record)
    console.print(f"wrote {png} and {table}", markup=False, soft_wrap=True)


def export_command(sweep_dir: Path, member: str, to: Path, console: Console) -> None:
    import sys

    from ..members import export_member

    m, folder = export_member(sweep_dir, member, to, argv=sys.argv)
    console.print(f"member {m.index} ({m.label}) -> {folder}", markup=False, soft_wrap=True)


def report_command(
    paths: list[Path],
    out_dir: Path | None,
    x: str | None,
    y: str | None,
    metric: str,
    quiet: bool,
    console: Console,
) -> None:
    import time

    from ..report import check_report, write_report

    checked = []  # every path and option checked before the first report is written
    for path in paths:
        if out_dir is None:
            target = None
        else:
            target = out_dir if len(paths) == 1 else out_dir / path.resolve().name
        checked.append(check_report(path, out=target, x=x, y=y, metric=metric))
    seen: dict[Path, Path] = {}
    for path, c in zip(paths, checked):
        if (other := seen.setdefault(c.folder.resolve(), path)) is not path:
            raise XorlabError(f"{other} and {path} would write the same report folder",
                              file=str(c.folder))  # fmt: skip
    for c in checked:
        t0 = time.perf_counter()
        folder = write_report(c)
        index = folder / "index.html"
        if quiet:
            console.print(str(index), markup=False, soft_wrap=True)
        else:
            took = time.perf_counter() - t0
            console.print(f"report: {index}  ({took:.1f} s)", markup=False, soft_wrap=True)
