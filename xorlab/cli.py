"""The command line: parse, call the library, render, pick the exit code.

Exit codes: 0 success; 1 a run or sweep member failed (or gradcheck above tolerance), or an
internal error (one line on screen, the traceback in a file; --debug shows it); 2 bad input,
nothing written; 130 interrupted (143 by SIGTERM), what finished kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from . import cliapp as shell
from .cliapp import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    _exit,
    _light,
    _may_use_local_workers,
    app,
    fail,
    say,
)
from .errors import XorlabError
from .proc import keep_freed_memory, stop_on_sigterm

RUNS = Path("runs")  # the default folder of runs, relative to the current folder


def _complete_yaml(incomplete: str) -> list[str]:
    from .completion import yaml_files

    return yaml_files(incomplete)


def _complete_run(incomplete: str) -> list[str]:
    from .completion import run_folders

    return run_folders(incomplete)


def _complete_set(incomplete: str) -> list[tuple[str, str]]:
    from .completion import set_keys

    return set_keys(incomplete)


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="K=V",
        help="Override a config key: --set optim.lr=0.3 (value is YAML).",
        autocompletion=_complete_set,
    ),
]


def version_callback(value: bool) -> None:
    if value:
        shell.out.print(f"xorlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version."),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show an internal error's traceback on screen.")
    ] = False,
) -> None:
    """Train, sweep and understand small NumPy neural networks written from scratch."""
    shell.begin(ctx.invoked_subcommand, debug)


@app.command()
def train(
    config: Annotated[
        Path,
        typer.Argument(metavar="CONFIG", help="YAML config file.", autocompletion=_complete_yaml),
    ],
    set_: SetOpt = None,
    name: Annotated[
        str | None, typer.Option(metavar="NAME", help="Run name (default: the config's).")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(metavar="DIR", help="Where run folders go.")] = RUNS,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip plots/.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the folder.")] = False,
) -> None:
    """Train one network from a YAML config into a new run folder."""
    from .commands import train_command

    try:
        code = train_command(config, set_ or [], name, runs_dir, no_plots, quiet, shell.out)
    except XorlabError as exc:
        fail(exc)
    raise typer.Exit(code)


@app.command()
def sweep(
    sweep_file: Annotated[
        Path | None,
        typer.Argument(metavar="SWEEP", help="Sweep YAML file.", autocompletion=_complete_yaml),
    ] = None,
    set_: SetOpt = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", metavar="N", min=1, help="Worker processes (default: cores)."),
    ] = None,
    executor: Annotated[
        str, typer.Option(metavar="local|dask", help="Where members run: local or dask.")
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(metavar="ADDR", help="Dask scheduler address (default: a LocalCluster)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Continue the sweep in this folder.", autocompletion=_complete_run
        ),
    ] = None,
    max_runs: Annotated[
        int, typer.Option(metavar="N", min=1, help="Refuse sweeps with more members.")
    ] = 10000,
    runs_dir: Annotated[Path, typer.Option(metavar="DIR", help="Where sweep folders go.")] = RUNS,
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
            dry_run, quiet, shell.out, report=report,
        )  # fmt: skip
    except XorlabError as exc:
        fail(exc)
    except KeyboardInterrupt:  # Ctrl-C outside the members' loop: what finished is on disk
        shell.err.print("interrupted", style="yellow")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    raise typer.Exit(code)


@app.command()
def report(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...", help="Run or sweep folders.", autocompletion=_complete_run
        ),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Report folder (default: PATH/report)."),
    ] = None,
    x: Annotated[
        str | None, typer.Option("--x", metavar="KEY", help="Sweep key across the heatmap.")
    ] = None,
    y: Annotated[
        str | None, typer.Option("--y", metavar="KEY", help="Sweep key down the heatmap.")
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            metavar="NAME", help="final_loss, final_train_acc, final_test_acc, diverged_at, ..."
        ),
    ] = "final_loss",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the paths.")] = False,
) -> None:
    """Write an HTML page, a markdown file and PNG figures for runs and sweeps."""
    from .commands import report_command

    try:
        report_command(paths, out_dir, x, y, metric, quiet, shell.out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def runs(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder of runs.")] = RUNS,
    status: Annotated[
        str | None,
        typer.Option(metavar="S[,S...]", help="Only these statuses, e.g. completed,diverged."),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            metavar="KEY", help="started, name, status, final_loss, final_train_acc, steps."
        ),
    ] = "started",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """List runs and sweeps, newest first."""
    from .commands import runs_command

    try:
        runs_command(folder, status, sort, as_json, shell.out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def compare(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="RUN...", help="Run folders.", autocompletion=_complete_run),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Write compare.png (the overlay) and compare.json (the table) into this folder. "
            "Without --out nothing is written.",
        ),
    ] = None,
) -> None:
    """Put runs side by side: the config keys that differ and the final metrics, as a table;
    with --out DIR, also the overlay figure and the table as JSON."""
    from .commands import compare_command

    try:
        compare_command(paths, out_dir, shell.out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def export(
    sweep_dir: Annotated[Path, typer.Argument(metavar="SWEEP_DIR", help="A sweep folder.")],
    member: Annotated[
        str,
        typer.Argument(metavar="MEMBER", help="Its index in summary.csv, or members/NNN-..."),
    ],
    to: Annotated[
        Path, typer.Option("--to", metavar="DIR", help="The run folder to write (new or empty).")
    ],
) -> None:
    """Write one sweep member's full run folder: what `xorlab train` of its config writes."""
    from .commands import export_command

    try:
        export_command(sweep_dir, member, to, shell.out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def watch(
    sweep_dir: Annotated[
        Path,
        typer.Argument(metavar="SWEEP_DIR", help="A sweep folder.", autocompletion=_complete_run),
    ],
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    interval: Annotated[
        float, typer.Option(metavar="S", min=0.1, help="Seconds between frames.")
    ] = 1.0,
) -> None:
    """Watch a running or finished sweep: counts by status, elapsed time and ETA, network-steps
    done, the search's rungs or rounds, and the best 5 members. Reads progress.json (else
    summary.csv) and events.csv, never the metrics."""
    from .commands import watch_command

    try:
        watch_command(sweep_dir, once, interval, shell.out)
    except XorlabError as exc:
        fail(exc)


@app.command()
def validate(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="A config or sweep YAML file.", autocompletion=_complete_yaml
        ),
    ],
) -> None:
    """Check a config or sweep file without running anything."""
    from .commands import validate_command

    try:
        message = validate_command(file)
    except XorlabError as exc:
        fail(exc)
    say(message)


@app.command()
def explain(
    config: Annotated[
        Path | None, typer.Argument(metavar="CONFIG", help="Config (default: the tutorial's).")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(metavar="FILE", help=".npz file with W1.. (and b1..).")
    ] = None,
    x: Annotated[
        str | None, typer.Option("--x", metavar="A,B", help="Input sample, e.g. 1.76,0.40.")
    ] = None,
    y: Annotated[
        str | None, typer.Option("--y", metavar="A,B", help="One-hot target, e.g. 1,0.")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(metavar="F", help="Learning rate of the shown step.")
    ] = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    step: Annotated[
        int | None,
        typer.Option(metavar="T", min=0, help="With a RUN folder: replay it to step T, show T."),
    ] = None,
) -> None:
    """Show one training step on one sample: every z, h, chain-rule factor and gradient.

    CONFIG may be a run folder with --step T: the run is replayed to step T and that step is
    shown at its own learning rate."""
    from .commands import explain_command, render_explain

    try:
        if step is not None or (config is not None and config.is_dir()):
            from .diagnose_command import explain_at_step

            if step is None:
                raise XorlabError("a run folder needs --step T (the step to show)", key="--step")
            if config is None or weights is not None or set_:
                raise XorlabError("--step needs a RUN folder, without --weights or --set",
                                  key="--step")  # fmt: skip
            info = explain_at_step(config, step, x, y, lr)
        else:
            info = explain_command(config, weights, x, y, lr, set_ or [])
    except XorlabError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        if step is not None:
            line = f"step {step} of {config}, replayed from its config.yaml (lr_t = {info['lr']:g})"
            shell.out.print(line, markup=False, soft_wrap=True)
        render_explain(info, shell.out)


@app.command()
def diagnose(
    run: Annotated[
        Path,
        typer.Argument(
            metavar="RUN", help="A run folder or a sweep member.", autocompletion=_complete_run
        ),  # fmt: skip
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    write_sweep: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Write the remedies as a sweep file."),
    ] = None,
    run_it: Annotated[
        bool, typer.Option("--run", help="Run the remedies as a sweep and say which fixed it.")
    ] = False,
) -> None:
    """Say what went wrong in a run, when, with the evidence, and what to change first."""
    from .diagnose_command import diagnose_command, render_diagnosis

    try:
        info, code = diagnose_command(run, write_sweep, run_it)
    except XorlabError as exc:
        fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        render_diagnosis(info, shell.out)
    raise typer.Exit(code)


@app.command()
def gradcheck(
    config: Annotated[
        Path,
        typer.Argument(metavar="CONFIG", help="YAML config file.", autocompletion=_complete_yaml),
    ],
    set_: SetOpt = None,
    tol: Annotated[
        float, typer.Option(metavar="F", help="Largest relative error allowed (> 0).")
    ] = 1e-6,
) -> None:
    """Compare backprop gradients with finite differences for the config's network."""
    from .commands import gradcheck_command

    try:
        ok = gradcheck_command(config, set_ or [], tol, shell.out)
    except XorlabError as exc:
        fail(exc)
    raise typer.Exit(0 if ok else EXIT_FAILED)


@app.command()
def schema(
    kind: Annotated[
        str, typer.Argument(metavar="KIND", help="config (the default) or sweep.")
    ] = "config",
) -> None:
    """Print the JSON Schema of a config or a sweep file (for editors and other tools)."""
    from .schema import KINDS
    from .schema import schema as build

    if kind not in KINDS:
        fail(XorlabError(f"must be config or sweep, got {kind!r}", key="schema"))
    sys.stdout.write(json.dumps(build(kind), indent=2) + "\n")


def main() -> None:
    """Console-script entry point."""
    if not _light(sys.argv[1:]):
        import numpy as np

        np.seterr(all="ignore")  # the trainer reports overflow as divergence, never as a warning
    stop_on_sigterm()  # SIGTERM keeps what finished and marks the rest interrupted, as Ctrl-C does
    if not _light(sys.argv[1:]):
        keep_freed_memory()  # no page faults for arrays freed and allocated again every step
    if _may_use_local_workers(sys.argv[1:]):
        from .proc import start_forkserver

        start_forkserver()  # the workers' imports (~0.4 s) run beside ours and the parsing
    try:
        app()
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


if __name__ == "__main__":
    main()
