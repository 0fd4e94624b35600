"""What each CLI command does, between parsing (cli.py) and the library: load, call, render.

Functions here return exit codes or data and print only through the Console they are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from . import nn
from .config import Config, load_config, validate
from .errors import XorlabError, note_folder

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not np.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}"
    return str(v)


def _acc(v: float | None) -> str:
    """An accuracy with three decimals, always: 0.000, 0.997, 1.000."""
    return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"


def _loss(v: float | None) -> str:
    """A loss to four significant digits, trailing zeros kept: 0.1000, 2.473e-05."""
    if v is None:
        return "-"
    return str(v) if not np.isfinite(v) else f"{v:#.4g}"


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


# --- train --------------------------------------------------------------------------------------


def train_command(
    config: Path,
    sets: list[str],
    name: str | None,
    runs_dir: Path,
    no_plots: bool,
    quiet: bool,
    console: Console,
) -> int:
    from .runner import run_config

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


# --- validate -----------------------------------------------------------------------------------


SWEEP_KEYS = {"base", "config", "variants", "grid", "zip", "random", "seeds"}


def validate_command(file: Path) -> str:
    from . import yamlio
    from .sweep import load_sweep, reject_folder_record

    raw = yamlio.load_file(file)
    reject_folder_record(raw, file)
    if isinstance(raw, dict) and SWEEP_KEYS & set(raw):
        sweep = load_sweep(file)
        search = f"; {search_text(sweep)}" if sweep.search is not None else ""
        return f"{file}: ok (sweep '{sweep.name}', {members_text(sweep)}{search})"
    cfg = load_config(file)
    n_params = sum(
        (a + 1 if cfg.model.bias else a) * b
        for a, b in zip([2, *cfg.model.hidden], [*cfg.model.hidden, 2])
    )
    return f"{file}: ok (config '{cfg.name}', {n_params} parameters, {cfg.train.steps} steps)"


# --- explain ------------------------------------------------------------------------------------

TUTORIAL: dict[str, dict[str, Any]] = {
    "model": {"activation": "sigmoid", "loss": "mse", "bias": False},
    "regularization": {"kind": "none"},
}


def explain_command(
    config: Path | None,
    weights: Path | None,
    x: str | None,
    y: str | None,
    lr: float | None,
    sets: list[str],
) -> dict[str, Any]:
    from .explain import explain_step, load_npz, params_from_npz, parse_one_hot, parse_vector
    from .train import build_data, net_spec

    if config is None and weights is None:
        raise XorlabError("give a CONFIG, --weights FILE.npz, or both", key="explain")
    params = None
    if weights is not None:
        params, sizes = params_from_npz(load_npz(weights), str(weights))
    if config is not None:
        cfg = load_config(config, sets)
    else:
        assert params is not None
        raw: dict[str, Any] = {k: dict(v) for k, v in TUTORIAL.items()}
        raw["model"]["hidden"] = list(sizes[1:-1])
        raw["model"]["bias"] = any(k.startswith("b") for k in params)
        cfg = validate(raw)
        from .config import apply_overrides

        cfg = validate(apply_overrides(cfg.to_dict(), sets))
    spec = net_spec(cfg)
    if params is None:
        params = nn.init_params(spec, cfg.model.init, np.random.RandomState(cfg.seed))
    else:
        want = tuple(sorted(spec.param_keys()))
        if tuple(spec.sizes) != sizes or tuple(sorted(params)) != want:
            raise XorlabError(
                f"weights have layer sizes {list(sizes)} and keys {sorted(params)}; the config "
                f"needs sizes {list(spec.sizes)} and keys {list(want)}",
                file=str(weights),
            )
    d_in, n_out = spec.sizes[0], spec.sizes[-1]
    if x is not None:
        xv = parse_vector(x, "--x", d_in)
    if y is not None:
        yv = parse_one_hot(y, "--y", n_out)
    if x is None or y is None:
        data = build_data(cfg)
        if x is None:
            xv = data.X_train[0].astype(np.float64)
        if y is None:
            yv = data.y_train[0].astype(np.float64)
    step_lr = cfg.optim.lr if lr is None else lr
    if not np.isfinite(step_lr) or step_lr <= 0:
        raise XorlabError(f"must be a finite number > 0, got {step_lr}", key="--lr")
    return explain_step(params, xv, yv, spec, step_lr)


def _vec(v: list[float] | None) -> str:
    if v is None:
        return "-"
    return "[" + ", ".join(f"{a: .8f}" for a in v) + "]"


def _matrix_table(name: str, m: list[list[float]] | list[float]) -> Group:
    """A title line, then a weight matrix (rows of numbers) or a bias vector (one row)."""
    rows = np.atleast_2d(np.asarray(m, dtype=float))  # (fan_in, fan_out), or (1, fan_out)
    t = Table(show_header=False, box=None, padding=(0, 1))
    for _ in range(rows.shape[1]):
        t.add_column(justify="right")
    for row in rows:
        t.add_row(*(f"{v: .8f}" for v in row))
    return Group(Text(name, style="italic"), t)


def _gradient_tables(info: dict[str, Any]) -> list[Group]:
    """Each gradient as its formula; with a penalty, a W's data part and penalty part first, so
    that dL_dW = data part + penalty part can be checked entry by entry."""
    s = info["settings"]
    pen = info.get("penalty_grads") or {}
    lam, n = s["strength"], s.get("penalty_n", 1)
    tables = []
    for k, m in info["grads"].items():
        layer = int(k[1:])
        data = f"h{layer - 1}^T @ dL_dz{layer}" if k.startswith("W") else f"dL_dz{layer}"
        if k not in pen:
            tables.append(_matrix_table(f"dL_d{k} = {data}", m))
            continue
        der = f"λ/N * {k}" if s["penalty"] == "l2" else f"λ/N * sign({k})"
        what = f"{s['penalty']} penalty, λ = {lam:g}, N = {n}"
        tables.append(_matrix_table(f"data part of dL_d{k}: {data}", info["data_grads"][k]))
        tables.append(_matrix_table(f"penalty part of dL_d{k}: {der}  ({what})", pen[k]))
        tables.append(_matrix_table(f"dL_d{k} = {data} + {der}", m))
    return tables


def render_explain(info: dict[str, Any], console: Console) -> None:
    s = info["settings"]
    n_layers = len(info["z"])
    fwd = Table(show_header=True, box=None, padding=(0, 2))
    fwd.add_column("quantity", style="bold")
    fwd.add_column("value")
    fwd.add_column("how")
    fwd.add_row("x = h0", _vec(info["x"]), "input sample")
    for i in range(n_layers):
        layer = i + 1
        last = layer == n_layers
        act = ("sigmoid" if s["loss"] == "mse" else "softmax") if last else s["activation"]
        bias = f" + b{layer}" if s["bias"] else ""
        fwd.add_row(f"z{layer}", _vec(info["z"][i]), f"h{layer - 1} @ W{layer}{bias}")
        fwd.add_row(f"h{layer}", _vec(info["h"][i]), f"{act}(z{layer})")
    fwd.add_row("y", _vec(info["y"]), "target")
    loss_txt = "sum((y - h)**2) / 2" if s["loss"] == "mse" else "-sum(y * log(h))"
    fwd.add_row("loss", f"{info['loss']:.8f}", f"{loss_txt} + penalty {info['reg_loss']:.3g}")

    back = Table(show_header=True, box=None, padding=(0, 2))
    back.add_column("chain-rule factor", style="bold")
    back.add_column("value")
    back.add_column("formula")
    for step in info["chain"]:
        layer = step["layer"]
        last = layer == n_layers
        back.add_row(
            f"dL_dh{layer}",
            _vec(step["dL_dh"]),
            ("h - y" if s["loss"] == "mse" else "-y / h")
            if last
            else f"dL_dz{layer + 1} @ W{layer + 1}^T",
        )
        if step["dh_dz"] is not None:
            der = (
                "h(1 - h)"
                if (last or s["activation"] == "sigmoid")
                else ("1 - h**2" if s["activation"] == "tanh" else "1 if h > 0 else 0")
            )
            back.add_row(f"dh{layer}_dz{layer}", _vec(step["dh_dz"]), der)
        back.add_row(
            f"dL_dz{layer}",
            _vec(step["dL_dz"]),
            "h - y (softmax + cross-entropy)"
            if step["dh_dz"] is None
            else f"dL_dh{layer} * dh{layer}_dz{layer}",
        )
        back.add_row(f"dz{layer}_dW{layer}", _vec(step["dz_dW"]), f"h{layer - 1}")

    grads = _gradient_tables(info)
    upd = [_matrix_table(f"{k} - {info['lr']:g} * dL_d{k}", m) for k, m in info["updated"].items()]
    wide = console.is_terminal  # piped: panels as wide as their contents, not PIPE_WIDTH
    console.print(Panel(fwd, title="1. forward", title_align="left", expand=wide))
    console.print(Panel(back, title="2. backward (chain rule)", title_align="left", expand=wide))
    console.print(Panel(Group(*grads), title="3. gradients", title_align="left", expand=wide))
    step_title = f"4. one SGD step, lr = {info['lr']:g}"
    console.print(Panel(Group(*upd), title=step_title, title_align="left", expand=wide))


# --- gradcheck ----------------------------------------------------------------------------------


def gradcheck_command(config: Path, sets: list[str], tol: float, console: Console) -> bool:
    from .gradcheck import check_gradients
    from .train import build_data, net_spec

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


# --- sweep --------------------------------------------------------------------------------------


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

    from .search import refuse_to_run
    from .sweep import load_sweep
    from .sweeprun import load_for_resume, members_left, run_sweep

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
    if not dry_run:
        refuse_to_run(sweep.search, file=sweep.source)
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
            "failed {task.fields[failed]}"
        ),  # fmt: skip
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=True,
    )
    task = progress.add_task(sweep.name, total=len(sweep.members), running=0, diverged=0, failed=0)

    def on_event(p: Any) -> None:
        progress.update(task, completed=p.done, running=p.running, diverged=p.diverged,
                        failed=p.failed)  # fmt: skip

    def on_start(folder: Path) -> None:
        note_folder(folder)  # an internal error's traceback goes here
        if not quiet:
            progress.console.print(f"sweep folder: {folder}", markup=False, soft_wrap=True)

    with progress:
        outcome = run_sweep(sweep, runs_dir, jobs=n_jobs, executor=executor, scheduler=scheduler,
                            resume_dir=resume, on_start=on_start, on_event=on_event)  # fmt: skip
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
        report_command([outcome.folder], None, None, None, "final_loss", quiet, console)
    return EXIT_FAILED if outcome.n_failed else EXIT_OK


def _count(n: int, noun: str) -> str:
    """``1 member``, ``2 members``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def members_text(sweep: Any) -> str:
    """``24 members``, and how many of them are identical to an earlier one."""
    text = _count(len(sweep.members), "member")
    if sweep.n_identical:
        verb = "is" if sweep.n_identical == 1 else "are"
        text += (f"; {sweep.n_identical} of them {verb} identical to an earlier member "
                 "(the random draws repeat)")  # fmt: skip
    return text


def search_text(sweep: Any) -> str:
    """The sweep's adaptive search in one line: its rungs and budget, or its PBT rounds."""
    from .search import describe, mutable_distributions

    s = sweep.search
    params = (sweep.spec.get("random") or {}).get("params") if s.kind == "pbt" else None
    n_keys = len(mutable_distributions(s, params)) if s.kind == "pbt" else 0
    return describe(s, len(sweep.members), sweep.members[0].config.train.steps, n_keys)


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


# --- runs and compare ---------------------------------------------------------------------------


def runs_command(
    folder: Path, status: str | None, sort: str, as_json: bool, console: Console
) -> None:
    from .listing import SORT_KEYS, filter_status, runs_table, scan, sort_by, to_json

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

    from .compare import compare_record, compare_table, load_runs, overlay_figure_png, path_lines
    from .rundir import atomic_write_bytes, atomic_write_text

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

    from .store import export_member

    m, folder = export_member(sweep_dir, member, to, argv=sys.argv)
    console.print(f"member {m.index} ({m.label}) -> {folder}", markup=False, soft_wrap=True)


# --- report -------------------------------------------------------------------------------------


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

    from .report import check_report, write_report

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
