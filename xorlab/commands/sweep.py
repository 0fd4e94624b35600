"""`xorlab sweep`: run (or list) a sweep's members; the members and best tables.

Functions return exit codes or data and print only through the Console they are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..errors import XorlabError, note_folder
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, _acc, _loss, check_folder_option
from .validate import _count, members_text, search_text


def sweep_command(
    sweep_file: Path | None,
    sets: list[str],
    jobs: int | None,
    executor: str,
    scheduler: str | None,
    resume: Path | None,
    max_runs: int,
    runs_dir: Path,
    dry_run: bool,
    quiet: bool,
    console: Console,
    *,
    report: bool = False,
) -> int:
    import os

    from ..searchrun import run
    from ..sweep import load_sweep
    from ..sweeprun import load_for_resume, members_left

    if executor not in ("local", "dask"):
        raise XorlabError(f"must be local or dask, got {executor!r}", key="--executor")
    if scheduler and executor != "dask":
        raise XorlabError("--scheduler needs --executor dask", key="--scheduler")
    if resume is not None:
        if sweep_file is not None or sets:
            raise XorlabError("give either SWEEP (with --set) or --resume SWEEP_DIR, not both",
                              key="--resume")  # fmt: skip
        if not resume.is_dir():
            raise XorlabError("no such sweep folder", file=str(resume))
        note_folder(resume)  # an internal error's traceback goes here
        sweep = load_for_resume(resume)
        left: list[int] | None = members_left(sweep, resume)
    elif sweep_file is None:
        raise XorlabError("give a SWEEP file, or --resume SWEEP_DIR", key="sweep")
    else:
        sweep = load_sweep(sweep_file, sets, max_runs=max_runs)
        check_folder_option(runs_dir, "--runs-dir")
        left = None
    if left is not None:
        left_line = f"{len(left)} of {_count(len(sweep.members), 'member')} left"
        left_line += " to run" if left else ": the sweep is finished, nothing to run"
    if dry_run:
        if left is None:
            console.print(members_table(sweep))
            console.print(members_text(sweep), soft_wrap=True)
            if sweep.search is not None:
                console.print(f"search: {search_text(sweep)}", markup=False, soft_wrap=True)
        else:
            if left:
                console.print(members_table(sweep, [sweep.members[i] for i in left]))
            console.print(left_line, soft_wrap=True)
        return EXIT_OK
    if left is not None and not quiet:
        console.print(left_line, soft_wrap=True)
    n_jobs = jobs or os.cpu_count() or 1
    show = not quiet and console.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "running {task.fields[running]}  diverged {task.fields[diverged]}  "
            "failed {task.fields[failed]}{task.fields[stage]}"
        ),  # fmt: skip
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=True,
    )
    task = progress.add_task(sweep.name, total=len(sweep.members), running=0, diverged=0, failed=0,
                             stage="")  # fmt: skip

    def on_event(p: Any) -> None:
        stage = f"  {p.stage}" if p.stage else ""  # a search's rung or round, as watch says it
        progress.update(task, completed=p.done, running=p.running, diverged=p.diverged,
                        failed=p.failed, stage=stage)  # fmt: skip

    def on_start(folder: Path) -> None:
        note_folder(folder)  # an internal error's traceback goes here
        if not quiet:
            progress.console.print(f"sweep folder: {folder}", markup=False, soft_wrap=True)

    with progress:
        outcome = run(sweep, runs_dir, jobs=n_jobs, executor=executor, scheduler=scheduler,
                      resume_dir=resume, on_start=on_start, on_event=on_event)  # fmt: skip
    for line in outcome.warnings:  # e.g. a first rung whose ranks cannot be trusted
        Console(stderr=True, highlight=False).print(line, markup=False, soft_wrap=True)
    if quiet:
        console.print(str(outcome.folder), markup=False, soft_wrap=True)
    else:
        console.print(best_table(outcome.summary, labels=[m.label for m in sweep.members]))
        counts = outcome.summary["status"].value_counts().to_dict()
        console.print(
            ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f"  ->  {outcome.folder}",
            markup=False,
            soft_wrap=True,
        )
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if report:
        from .folders import report_command

        report_command([outcome.folder], None, None, None, "final_loss", quiet, console)
    return EXIT_FAILED if outcome.n_failed else EXIT_OK


def members_table(sweep: Any, members: list[Any] | None = None) -> Table:
    """The members to run: all of the sweep's, or ``members`` (what a resume has left)."""
    shown = sweep.members if members is None else members
    title = f"sweep {sweep.name}: {_count(len(shown), 'member')}"
    if members is not None:
        title += f" left of {len(sweep.members)}"
    t = Table(title=title, title_justify="left")
    t.add_column("index", justify="right")
    t.add_column("folder")
    t.add_column("overrides")
    for m in shown:
        sets = ", ".join(f"{k}={v}" for k, v in m.overrides.items())
        t.add_row(str(m.index), m.label, sets or "-")
    return t


def best_table(summary: Any, n: int = 10, labels: list[str] | None = None) -> Table:
    """The best ``n`` members: by test accuracy when they hold out a test set, else by data loss.

    Never by the total loss: a sweep that varies the penalty's strength would rank its penalty.
    Ties go by data loss, then by index. ``labels`` names the members (by index); without it,
    their run_dir does."""
    loss = "final_data_loss" if "final_data_loss" in summary else "final_loss"
    has_test = "final_test_acc" in summary and bool(summary["final_test_acc"].notna().any())
    if has_test:
        keys, ascending, by = ["final_test_acc", loss], [False, True], "test accuracy"
    else:
        keys, ascending, by = [loss], [True], "data loss" if loss == "final_data_loss" else "loss"
    df = summary.sort_values(keys, ascending=ascending, na_position="last", kind="stable")
    df = df.head(n)
    t = Table(title=f"best {min(n, len(summary))} of {len(summary)} by {by}", title_justify="left")
    cols = ["index", "member", "status", "data loss" if loss == "final_data_loss" else "loss"]
    cols += ["train acc", "test acc"] if has_test else ["train acc"]
    for col in cols:
        t.add_column(col, justify="right" if col not in ("member", "status") else "left")

    def num(v: Any) -> float | None:
        return None if pd.isna(v) else float(v)

    for _, r in df.iterrows():
        name = labels[r["index"]] if labels else str(r["run_dir"]).removeprefix("members/")
        cells = [str(r["index"]), name, str(r["status"]),
                 _loss(num(r[loss])), _acc(num(r["final_train_acc"]))]  # fmt: skip
        if has_test:
            cells.append(_acc(num(r["final_test_acc"])))
        t.add_row(*cells)
    return t
