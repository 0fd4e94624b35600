"""`xorlab train` and `xorlab gradcheck`: one network, its summary table, its gradient check.

Functions return exit codes or data and print only through the Console they are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
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

from .. import nn
from ..config import Config, load_config
from ..errors import XorlabError
from .common import EXIT_INTERRUPTED, EXIT_OK, _acc, _fmt, _loss, check_folder_option


def train_command(
    config: Path,
    sets: list[str],
    name: str | None,
    runs_dir: Path,
    no_plots: bool,
    quiet: bool,
    console: Console,
) -> int:
    from ..runner import run_config

    cfg = load_config(config, sets, name=name)
    check_folder_option(runs_dir, "--runs-dir")
    if no_plots:
        cfg = cfg.model_copy(update={"plots": cfg.plots.model_copy(update={"enabled": False})})
    show_progress = not quiet and console.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    )
    task = progress.add_task(cfg.name, total=cfg.train.steps, loss="-", acc="-")

    def on_step(done: int, loss: float, acc: float) -> None:
        progress.update(task, completed=done, loss=_fmt(loss), acc=_fmt(acc, 3))

    try:
        with progress:
            outcome = run_config(cfg, runs_dir, on_step=on_step)
    except KeyboardInterrupt:
        # Ctrl-C outside the training loop (while writing plots): the run itself is saved.
        console.print("interrupted", style="yellow")
        return EXIT_INTERRUPTED
    r = outcome.result
    if quiet:
        console.print(str(outcome.folder), markup=False, soft_wrap=True)
    else:
        console.print(summary_table(cfg, r, outcome.wall_s, outcome.folder))
    return EXIT_INTERRUPTED if r.status == "interrupted" else EXIT_OK


def summary_table(cfg: Config, r: Any, wall_s: float, folder: Path) -> Table:
    status_style = {"completed": "green", "diverged": "red", "interrupted": "yellow"}
    t = Table(title=f"{cfg.name}", show_header=False, title_justify="left")
    t.add_column("key", style="bold")
    t.add_column("value")
    status = r.status + (f" at step {r.diverged_at}" if r.diverged_at is not None else "")
    t.add_row("status", f"[{status_style.get(r.status, 'white')}]{status}[/]")
    t.add_row("steps", f"{r.steps_done} / {cfg.train.steps}")
    t.add_row("final loss", _loss(r.final["loss"]))
    t.add_row("train accuracy", _acc(r.final["train_acc"]))
    if r.final["test_acc"] is not None:
        t.add_row("test accuracy", _acc(r.final["test_acc"]))
    best_step = r.best["step"]
    at = f" (step {int(best_step)})" if best_step is not None else ""
    t.add_row("best train acc.", _acc(r.best["train_acc"]) + at)
    rate = r.steps_done / wall_s if wall_s > 0 else float("nan")
    t.add_row("time", f"{wall_s:.2f} s ({rate:,.0f} steps/s)")
    t.add_row("folder", str(folder))
    return t


def gradcheck_command(config: Path, sets: list[str], tol: float, console: Console) -> bool:
    from ..gradcheck import check_gradients
    from ..train import build_data, net_spec

    if not (np.isfinite(tol) and tol > 0):  # -1 or nan would fail every parameter
        raise XorlabError(f"must be a finite number > 0, got {tol:g}", key="--tol")
    cfg = load_config(config, sets)
    spec = net_spec(cfg)
    params = nn.init_params(spec, cfg.model.init, np.random.RandomState(cfg.seed))
    if cfg.model.bias:  # zero biases would leave their neighbourhood untested
        rs = np.random.RandomState(cfg.seed + 1)
        for k in params:
            if k.startswith("b"):
                params[k] = 0.1 * rs.randn(*params[k].shape)
    data = build_data(cfg)
    rows = min(data.n_train, cfg.train.batch_size or data.n_train, 64)
    checks = check_gradients(
        params, data.X_train[:rows], data.y_train[:rows], spec, n_penalty=data.n_train
    )
    t = Table(title=f"gradient check: {cfg.name} ({rows} rows, tolerance {tol:g})")
    for col in ("parameter", "shape", "checked", "kinks", "max |grad|", "max rel. error", ""):
        t.add_column(col, justify="right" if col not in ("parameter", "") else "left")
    ok = True
    for c in checks:
        good = c.max_rel_error <= tol
        ok &= good
        t.add_row(
            c.key,
            "x".join(map(str, c.shape)),
            str(c.checked),
            str(c.skipped),
            f"{c.max_abs_grad:.3g}",
            f"{c.max_rel_error:.2e}",
            "[green]ok[/]" if good else "[red]FAIL[/]",
        )
    console.print(t)
    return ok
