"""Run a sweep: one folder, a run folder per member, summary.csv; resumable.

The driver alone writes files: each member's config when it is handed out, its results as soon as
it finishes, and summary.csv after every finished member (throttled) and at the end. Ctrl-C stops
handing out members, marks the running ones ``interrupted`` and keeps everything finished;
``resume`` runs exactly the members that are not ``completed`` or ``diverged``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import yamlio
from .config import Config
from .errors import XorlabError
from .executors import (
    DaskPool,
    Done,
    Drawn,
    Event,
    Failed,
    LocalPool,
    Member,
    Serial,
    Started,
    TaskQueue,
    plot_sample,
)
from .population import group_configs
from .proc import Terminated
from .rundir import (
    FINISHED,
    SweepFolder,
    csv_text,
    member_row_values,
    now_iso,
    write_plots,
    write_status,
)
from .sweep import MAX_RUNS, Sweep, build_sweep, expanded_listing

SUMMARY_EVERY_S = 1.0  # rewrite summary.csv at most this often while members finish


@dataclass
class Progress:
    total: int
    done: int = 0
    running: int = 0
    diverged: int = 0
    failed: int = 0
    skipped: int = 0  # already finished (resume)


@dataclass
class SweepOutcome:
    folder: Path
    sweep: Sweep
    summary: pd.DataFrame
    interrupted: bool = False
    ran: list[int] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return int((self.summary["status"] == "failed").sum())


OnEvent = Callable[[Progress], None]


def sweep_yaml_text(sweep: Sweep) -> str:
    doc = {
        "name": sweep.name,
        "source": sweep.source,
        "sweep": sweep.spec,
        "base_config": sweep.base_raw,
        "variant_configs": sweep.variant_bases,
        "members": expanded_listing(sweep),
    }
    return yamlio.dumps(doc)


def final_data_loss(run_dir: Path, cfg: Config) -> float | None:
    """The loss without its penalty of a member's final weights on its training rows.

    What a sweep ranks by: the total loss would rank the penalty, whose strength a sweep may
    vary. None when the member has no final weights or they give no finite loss."""
    from . import nn
    from .train import net_spec

    try:
        with np.load(run_dir / "final.npz", allow_pickle=False) as z:
            params = {k: z[k] for k in z.files}
        with np.load(run_dir / "data.npz", allow_pickle=False) as z:
            X, Y = z["X_train"], z["y_train"]  # (N, 2), (N, C)
    except (OSError, ValueError, KeyError):
        return None
    if X.shape[0] == 0:
        return None
    spec = net_spec(cfg)
    with np.errstate(all="ignore"):
        try:
            _, cache = nn.forward(params, X, spec)
            value = float(nn.data_loss(cache, Y, spec))
        except (KeyError, ValueError):  # weights that do not fit the config: a damaged folder
            return None
    return value if math.isfinite(value) else None


def summary_frame(
    sweep: Sweep, folder: SweepFolder, data_losses: dict[int, float | None] | None = None
) -> pd.DataFrame:
    """One row per member, read from the member folders on disk.

    ``data_losses`` caches each finished member's ``final_data_loss`` (by index) between calls,
    so that rewriting summary.csv while members finish reads each member's weights once."""
    cache: dict[int, float | None] = {} if data_losses is None else data_losses
    has_variants = any(m.variant for m in sweep.members)
    keys = [k for k in sweep.varied_keys if k != "seed"]
    rows = []
    for m in sweep.members:
        row: dict[str, Any] = {"index": m.index, "run_dir": f"members/{m.label}"}
        if has_variants:
            row["variant"] = m.variant
        row["seed"] = m.seed
        for k in keys:
            v = m.varied.get(k)
            row[k] = yamlio.dumps(v).strip() if isinstance(v, (list, dict)) else v
        values = member_row_values(folder.member_path(m.label))
        finished = values["status"] in FINISHED
        if finished and m.index not in cache:
            cache[m.index] = final_data_loss(folder.member_path(m.label), m.config)
        for k, v in values.items():
            row[k] = v
            if k == "final_loss":
                row["final_data_loss"] = cache.get(m.index) if finished else None
        rows.append(row)
    df = pd.DataFrame(rows)
    if "diverged_at" in df:  # a step: an integer, empty where none (never 5.0)
        df["diverged_at"] = df["diverged_at"].astype("Int64")
    return df


def members_left(sweep: Sweep, folder: Path) -> list[int]:
    """The indices of the members a resume of ``folder`` would run: those not finished."""
    sf = SweepFolder(folder)
    return [
        m.index
        for m in sweep.members
        if member_row_values(sf.member_path(m.label))["status"] not in FINISHED
    ]


def load_for_resume(sweep_dir: Path) -> Sweep:
    """Rebuild a sweep from the sweep.yaml in its folder (the base config is stored inline)."""
    path = sweep_dir / "sweep.yaml"
    if not path.exists():
        raise XorlabError("not a sweep folder (no sweep.yaml)", file=str(sweep_dir))
    doc = yamlio.load_file(path)
    try:
        spec = dict(doc["sweep"])
        spec.pop("base", None)
        spec["config"] = doc["base_config"] or None
        variant_configs = doc.get("variant_configs") or {}
        variants = []
        for v in spec.get("variants") or []:
            v = dict(v)
            if v["name"] in variant_configs:
                v.pop("base", None)
                v["config"] = variant_configs[v["name"]]
            variants.append(v)
        if variants:
            spec["variants"] = variants
        listed = [m["folder"] for m in doc["members"]]
        name = doc["name"]
    except (KeyError, TypeError):
        raise XorlabError("sweep.yaml is damaged (expected sweep, base_config, members)",
                          file=str(path)) from None  # fmt: skip
    sweep = build_sweep(spec, file=str(path), base_dir=sweep_dir, default_name=name,
                        max_runs=max(MAX_RUNS, len(listed)))  # fmt: skip
    sweep.name = name
    if [m.label for m in sweep.members] != listed:
        raise XorlabError("sweep.yaml's member list does not match its definition",
                          file=str(path))  # fmt: skip
    return sweep


def training_groups(sweep: Sweep, todo: list[int], *, by_cost: bool) -> list[list[Member]]:
    """The members of ``todo`` (indices) in their training groups.

    Groups come from the whole sweep, in its order (``population.group_configs``), so a member
    trains with the same companions whatever the executor, ``--jobs`` or what is left to resume
    (and its results never depend on its companions anyway). ``by_cost`` puts the costliest
    groups first, so parallel workers finish together.
    """
    wanted = set(todo)
    members = sweep.members
    groups = [
        [(members[i].index, members[i].config.to_dict()) for i in g if members[i].index in wanted]
        for g in group_configs([m.config for m in members])
    ]
    groups = [g for g in groups if g]
    if by_cost:
        cfg_of = {m.index: m.config for m in members}
        groups.sort(key=lambda g: -len(g) * _step_cost(cfg_of[g[0][0]]))
    return groups


def _step_cost(cfg: Config) -> float:
    """A network's training cost in arbitrary units: steps x rows x layer widths."""
    rows = 4 if cfg.data.kind == "xor4" else cfg.data.n
    return float(cfg.train.steps) * rows * (sum(cfg.model.hidden) + 4)


def run_sweep(
    sweep: Sweep,
    runs_dir: str | Path,
    *,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    resume_dir: Path | None = None,
    on_start: Callable[[Path], None] | None = None,
    on_event: OnEvent | None = None,
) -> SweepOutcome:
    """Run every member not yet finished; returns when all are done or on Ctrl-C."""
    parallel = executor == "dask" or jobs > 1
    queue = TaskQueue([])
    pool: Any
    if executor == "dask":
        pool = DaskPool(queue, jobs=jobs, scheduler=scheduler)  # fails early if Dask is missing
    elif jobs > 1:
        pool = LocalPool(queue, jobs=jobs)
    else:
        pool = Serial(queue)
    if resume_dir is None:
        folder = SweepFolder.create(runs_dir, sweep.name)
        folder.write_sweep(sweep_yaml_text(sweep))
    else:
        folder = SweepFolder(resume_dir)
    if on_start is not None:
        on_start(folder.path)

    by_index = {m.index: m for m in sweep.members}
    todo = []
    progress = Progress(total=len(sweep.members))
    for m in sweep.members:
        status = member_row_values(folder.member_path(m.label))["status"]
        if status in FINISHED:
            progress.skipped += 1
            progress.done += 1
            progress.diverged += status == "diverged"
        else:
            folder.set_aside(m.label)
            todo.append(m.index)
    queue.eager = plot_sample(todo, len(sweep.members))
    for group in training_groups(sweep, todo, by_cost=parallel):
        queue.add(group)

    def notify() -> None:
        if on_event is not None:
            on_event(progress)

    last_summary = 0.0
    data_losses: dict[int, float | None] = {}
    interrupted = False
    ran: list[int] = []
    notify()
    try:
        for event in pool.run():
            _handle(event, folder, by_index, progress, ran)
            now = time.monotonic()
            if isinstance(event, (Done, Failed)) and now - last_summary > SUMMARY_EVERY_S:
                _write_summary(folder, summary_frame(sweep, folder, data_losses))
                last_summary = now
            notify()
    except KeyboardInterrupt as exc:
        interrupted = True
        how = "stopped by SIGTERM" if isinstance(exc, Terminated) else "stopped by Ctrl-C"
        for index in pool.running():
            path = folder.member_path(by_index[index].label)
            if path.is_dir():  # else Ctrl-C came before its start was written: still pending
                write_status(path, "interrupted", how)
    finally:
        pool.close()
    summary = summary_frame(sweep, folder, data_losses)
    _write_summary(folder, summary)
    return SweepOutcome(folder.path, sweep, summary, interrupted=interrupted, ran=ran)


def _write_summary(folder: SweepFolder, df: pd.DataFrame) -> None:
    """summary.csv, unless it already holds exactly this (a resume with nothing left)."""
    path = folder.path / "summary.csv"
    try:
        if path.read_text(encoding="utf-8") == csv_text(df):
            return
    except (OSError, UnicodeDecodeError):
        pass
    folder.write_summary(df)


def _handle(
    event: Event,
    folder: SweepFolder,
    by_index: dict[int, Any],
    progress: Progress,
    ran: list[int],
) -> None:
    m = by_index[event.index]
    run = folder.member(m.label)
    if isinstance(event, Drawn):  # the best or the worst of a large sweep, done already
        write_plots(run.path / "plots", event.plots)
        return
    if isinstance(event, Started):
        run.write_start(m.config.to_yaml(), now_iso())
        progress.running += 1
        return
    progress.running -= 1
    progress.done += 1
    ran.append(event.index)
    if isinstance(event, Done):
        out = event.output
        write_plots(run.path / "plots", out.plots)
        run.write_result(out.result, started_at=out.started_at, wall_s=out.wall_s,
                         files=out.files,
                         meta_extra={"group_size": out.group_size,
                                     "blas_threads": out.blas_threads})  # fmt: skip
        progress.diverged += out.result.status == "diverged"
    else:
        run.write_failure(event.error)
        progress.failed += 1
