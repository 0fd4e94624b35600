"""The command line: parse, call the library, render, pick the exit code.

Exit codes: 0 success; 1 a run or sweep member failed (or gradcheck above tolerance);
2 bad input, nothing written; 130 interrupted, what finished kept.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import typer
from rich.console import Console

from . import __version__
from .errors import XorlabError
from .proc import keep_freed_memory

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130

app = typer.Typer(
    name="xorlab",
    help="Train, sweep and understand small NumPy neural networks written from scratch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set optim.lr=0.3 (value is YAML)."),
]


def fail(exc: XorlabError) -> NoReturn:
    """Print a bad-input error, one line per problem, and exit 2."""
    for line in exc.lines():
        err.print(f"error: {line}", markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def version_callback(value: bool) -> None:
    if value:
        out.print(f"xorlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version."),
    ] = None,
) -> None:
    """Train, sweep and understand small NumPy neural networks written from scratch."""


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    set_: SetOpt = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: the config's).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip plots/.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the folder.")] = False,
) -> None:
    """Train one network from a YAML config into a new run folder."""
    from .commands import train_command

    try:
        code = train_command(config, set_ or [], name, runs_dir, no_plots, quiet, out)
    except XorlabError as exc:
        fail(exc)
    raise typer.Exit(code)


@app.command()
def sweep(
    sweep_file: Annotated[
        Path | None, typer.Argument(metavar="SWEEP", help="Sweep YAML file.")
    ] = None,
    set_: SetOpt = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: cores).")
    ] = None,
    executor: Annotated[str, typer.Option(help="Where members run: local or dask.")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a LocalCluster).")
    ] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the sweep in this folder.")] = None,
    max_runs: Annotated[int, typer.Option(min=1, help="Refuse sweeps with more members.")] = 10000,
    runs_dir: Annotated[Path, typer.Option(help="Where sweep folders go.")] = Path("runs"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the members and exit.")] = False,
    report: Annotated[
        bool, typer.Option("--report", help="Write the sweep's report when it is done.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the folder.")] = False,
) -> None:
    """Run many configs (variants, grids, random draws, seeds) in parallel; resumable."""
    from .commands import sweep_command

    try:
        code = sweep_command(
            sweep_file, set_ or [], jobs, executor, scheduler, resume, max_runs, runs_dir,
            dry_run, quiet, out, report=report,
        )  # fmt: skip
    except XorlabError as exc:
        fail(exc)
    except KeyboardInterrupt:  # Ctrl-C outside the members' loop: what finished is on disk
        err.print("interrupted", style="yellow")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    raise typer.Exit(code)


@app.command()
def report(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Run or sweep folders.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: PATH/report).")
    ] = None,
    x: Annotated[str | None, typer.Option("--x", help="Sweep key across the heatmap.")] = None,
    y: Annotated[str | None, typer.Option("--y", help="Sweep key down the heatmap.")] = None,
    metric: Annotated[
        str, typer.Option(help="final_loss, final_train_acc, final_test_acc, diverged_at, ...")
    ] = "final_loss",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the paths.")] = False,
) -> None:
    """Write an HTML page, a markdown file and PNG figures for runs and sweeps."""
    from .commands import report_command

    try:
        report_command(paths, out_dir, x, y, metric, quiet, out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def runs(
    folder: Annotated[Path, typer.Argument(metavar="[DIR]", help="Folder of runs.")] = Path("runs"),
    status: Annotated[
        str | None, typer.Option(help="Only these statuses, e.g. completed,diverged.")
    ] = None,
    sort: Annotated[
        str, typer.Option(help="started, name, status, final_loss, final_train_acc, steps.")
    ] = "started",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """List runs and sweeps, newest first."""
    from .commands import runs_command

    try:
        runs_command(folder, status, sort, as_json, out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def compare(
    paths: Annotated[list[Path], typer.Argument(metavar="RUN...", help="Run folders.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write compare.png (and .json) here.")
    ] = None,
) -> None:
    """Put runs side by side: the config keys that differ, final metrics, one overlay figure."""
    from .commands import compare_command

    try:
        compare_command(paths, out_dir, out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="A config or sweep YAML file.")]) -> None:
    """Check a config or sweep file without running anything."""
    from .commands import validate_command

    try:
        message = validate_command(file)
    except XorlabError as exc:
        fail(exc)
    out.print(message, markup=False)


@app.command()
def explain(
    config: Annotated[Path | None, typer.Argument(help="Config (default: the tutorial's).")] = None,
    weights: Annotated[Path | None, typer.Option(help="NPZ with W1.. (and b1..).")] = None,
    x: Annotated[str | None, typer.Option("--x", help="Input sample, e.g. 1.76,0.40.")] = None,
    y: Annotated[str | None, typer.Option("--y", help="One-hot target, e.g. 1,0.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate of the shown step.")] = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show one training step on one sample: every z, h, chain-rule factor and gradient."""
    from .commands import explain_command, render_explain

    try:
        info = explain_command(config, weights, x, y, lr, set_ or [])
    except XorlabError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        render_explain(info, out)


@app.command()
def gradcheck(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    set_: SetOpt = None,
    tol: Annotated[float, typer.Option(help="Largest relative error allowed.")] = 1e-6,
) -> None:
    """Compare backprop gradients with finite differences for the config's network."""
    from .commands import gradcheck_command

    try:
        ok = gradcheck_command(config, set_ or [], tol, out)
    except XorlabError as exc:
        fail(exc)
    raise typer.Exit(0 if ok else EXIT_FAILED)


def main() -> None:
    """Console-script entry point."""
    np.seterr(all="ignore")  # the trainer reports overflow as divergence, never as a warning
    keep_freed_memory()  # no page faults for arrays freed and allocated again every step
    if _may_use_local_workers(sys.argv[1:]):
        from .proc import start_forkserver

        start_forkserver()  # the workers' imports (~0.4 s) run beside ours and the parsing
    try:
        app()
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


def _exit(code: object) -> NoReturn:
    """Exit as SystemExit(code) would, minus the interpreter's teardown of every module's objects
    (numpy, pandas, pydantic: ~80 ms of a sweep's end, for nothing): the atexit handlers run
    (multiprocessing's clean-up among them) and the output is flushed, then os._exit."""
    import atexit

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # SystemExit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(status)


def _may_use_local_workers(args: list[str]) -> bool:
    """Whether this command line looks like a sweep in local worker processes. Read before typer
    parses it, so a wrong guess only costs an idle fork server (or a later start)."""
    if not args or args[0] != "sweep":
        return False
    single = {"--dry-run", "--help", "--jobs=1", "-j1", "--executor=dask"}
    pairs = set(zip(args, args[1:]))
    return not (single & set(args) or {("--jobs", "1"), ("-j", "1"), ("--executor", "dask")} & pairs
                or (os.cpu_count() or 1) < 2)  # fmt: skip


if __name__ == "__main__":
    main()
