"""``xorlab diagnose`` and ``xorlab explain RUN --step T`` between parsing (cli.py) and the
library (diagnose, replay): load, call, render. Prints only through the Console it is given."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .errors import XorlabError

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def _check_out_file(path: Path) -> None:
    if path.is_dir():
        raise XorlabError("is a folder; give a file name for the sweep", file=str(path))
    if not path.parent.is_dir():
        raise XorlabError("its folder does not exist", file=str(path))


def diagnose_command(
    run: Path, write_sweep: Path | None, run_it: bool
) -> tuple[dict[str, Any], int]:
    """The diagnosis as one JSON-ready object, and the exit code. With ``write_sweep`` the
    remedies are written as a sweep file; with ``run_it`` they are trained (as a sweep beside
    the run's folder) and each is judged by the same criteria."""
    from . import yamlio
    from .replay import diagnose_subject, load_subject, remedy_results, remedy_sweep
    from .rundir import atomic_write_text

    if write_sweep is not None:
        _check_out_file(write_sweep)
    subject = load_subject(run)
    diagnosis, _ = diagnose_subject(subject)
    info: dict[str, Any] = {"run": str(run), **diagnosis.to_json()}
    decisions = search_decisions(run)
    if decisions:
        info["search"] = decisions
    doc = remedy_sweep(subject, diagnosis)
    if write_sweep is not None:
        header = f"# remedies for {run}, written by `xorlab diagnose --write-sweep`\n"
        atomic_write_text(write_sweep, header + yamlio.dumps(doc))
        info["sweep_file"] = str(write_sweep)
    code = EXIT_OK
    if run_it and diagnosis.remedies:
        from .sweep import build_sweep
        from .sweeprun import run_sweep

        sweep = build_sweep(
            doc,
            file=str(write_sweep or "remedies"),
            base_dir=(write_sweep or run).parent,
            default_name=doc["name"],
        )
        member = "members" in Path(run).parts[-2:-1]
        runs_dir = Path(run).parent.parent.parent if member else Path(run).parent
        outcome = run_sweep(sweep, runs_dir, jobs=os.cpu_count() or 1)
        info["sweep"] = str(outcome.folder)
        if outcome.interrupted:
            return info, EXIT_INTERRUPTED
        info["results"] = remedy_results(outcome.folder, diagnosis)
        code = EXIT_FAILED if outcome.n_failed else EXIT_OK
    return info, code


def search_decisions(run: Path) -> list[str]:
    """The reasons events.csv gives for a sweep member's search decisions (promoted, pruned,
    copied, perturbed), by step; empty for a run or a sweep without a search."""
    from .lineage import search_events
    from .members import find_member, member_ref

    ref = member_ref(run)
    if ref is None:
        return []
    sweep_dir, label = ref
    events = search_events(sweep_dir)
    if events is None or events.empty:
        return []
    index = find_member(sweep_dir, label).index
    return [str(r) for r in events.loc[events["member"] == index, "reason"]]


def _steps(e: dict[str, Any]) -> str:
    return "-" if e["step"] is None else str(e["step"])


def render_diagnosis(info: dict[str, Any], console: Console) -> None:
    for reason in info.get("search", []):
        console.print(f"Search: {reason}.", markup=False, soft_wrap=True)
    if info.get("search") and info["search"][-1].startswith("pruned"):
        console.print("What follows covers only the steps it trained before it was pruned.",
                      markup=False, soft_wrap=True)  # fmt: skip
    sharp = info["sharpness"]
    src = sharp.get("source")
    if src == "replayed":
        console.print(
            "The run logged no sharpness: replayed from its config.yaml with telemetry on "
            "(the losses match the run's own).",
            markup=False,
            soft_wrap=True,
        )
    elif src == "none":
        console.print(
            "No sharpness: the replay did not reproduce the run's losses (an interrupted or "
            "edited run), so the events come from its own rows only.",
            markup=False,
            soft_wrap=True,
        )
    if sharp.get("max") is not None:
        console.print(
            f"Sharpness: max {sharp['max']:.4g} at step {sharp['max_step']} (sharpness x lr up "
            f"to {sharp['max_times_lr']:.3g}); {sharp['stretches_above']} stretches above 2/lr, "
            f"{sharp['stretches_followed_by_blow_up']} followed by a blow-up.",
            markup=False,
            soft_wrap=True,
        )
    if not info["events"]:
        none = "No problem found: no blow-up, divergence, underfitting, saturation, dead units, "
        none += "vanishing gradient, oscillation or overfitting."
        console.print(none, markup=False, soft_wrap=True)
    else:
        t = Table(title="What happened", title_justify="left")
        t.add_column("step", justify="right")
        t.add_column("event")
        t.add_column("cause")
        t.add_column("evidence")
        for e in info["events"]:
            t.add_row(_steps(e), e["kind"], e["cause"] or "-", e["text"])
        console.print(t)
    if info["remedies"]:
        t = Table(title="What to change first", title_justify="left")
        t.add_column("#", justify="right")
        t.add_column("set")
        t.add_column("why")
        for i, r in enumerate(info["remedies"], 1):
            sets = ", ".join(f"{k}={_show(v)}" for k, v in r["set"].items())
            t.add_row(str(i), sets, r["why"])
        console.print(t)
    if "sweep_file" in info:
        console.print(f"remedy sweep: {info['sweep_file']}", markup=False, soft_wrap=True)
    if "results" in info:
        t = Table(title=f"Remedies tried: {info['sweep']}", title_justify="left")
        for col in ("variant", "set", "status", "fixed", "problems after", "train acc"):
            t.add_column(col)
        for r in info["results"]:
            fixed = r.get("fixed")
            acc = r.get("final_train_acc")
            t.add_row(
                r["variant"],
                ", ".join(f"{k}={_show(v)}" for k, v in r["set"].items()) or "(as run)",
                r["status"],
                "-" if fixed is None else ("yes" if fixed else "no"),
                ", ".join(r.get("problems") or []) or "none",
                "-" if acc is None else f"{acc:.3f}",
            )
        console.print(t)


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def explain_at_step(
    run: Path, step: int, x: str | None, y: str | None, lr: float | None
) -> dict[str, Any]:
    """``explain RUN --step T``: replay the run to step T and explain that step on one sample
    (the first row of step T's batch unless --x/--y say otherwise), at the step's own lr."""
    import numpy as np

    from .explain import explain_step, parse_one_hot, parse_vector
    from .replay import load_subject, params_at
    from .train import net_spec

    subject = load_subject(run)
    cfg = subject.config
    params, lr_t, result = params_at(cfg, step)
    spec = net_spec(cfg)
    data = result.data
    n = data.n_train
    B = n if cfg.train.batch_size is None else min(cfg.train.batch_size, n)
    row = 0
    if not cfg.train.shuffle:
        row = (step % -(-n // B)) * B  # the first row of step T's batch
    xv = data.X_train[row].astype(np.float64) if x is None else parse_vector(x, "--x", 2)
    yv = data.y_train[row].astype(np.float64) if y is None else parse_one_hot(y, "--y", 2)
    step_lr = lr_t if lr is None else lr
    if not np.isfinite(step_lr) or step_lr <= 0:
        raise XorlabError(f"must be a finite number > 0, got {step_lr}", key="--lr")
    info = explain_step(params, xv, yv, spec, step_lr)
    info["step"] = step
    info["run"] = str(run)
    return info
