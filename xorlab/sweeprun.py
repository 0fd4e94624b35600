"""Run a sweep: one folder, its members in the sweep store (``store``), summary.csv; resumable.

The driver alone writes files, from bytes the workers encoded: each training task's part of the
store as soon as it comes back (metrics, weights, then the record that marks its members
finished), a folder for each member with plots or an error, and summary.csv, rebuilt from the
records in memory, at most once a second and at the end. Ctrl-C stops handing out members,
records the running ones ``interrupted`` and keeps every finished part; ``resume`` runs exactly
the members without a ``completed`` or ``diverged`` record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import yamlio
from .config import Config
from .errors import XorlabError
from .executors import (
    Done,
    Drawn,
    Event,
    Failed,
    Member,
    Paused,
    RenderTask,
    Started,
    Stored,
    TaskQueue,
    plot_sample,
)
from .parts import data_key, member_columns, union_columns
from .pools import DaskPool, LocalPool, Serial
from .population import group_configs
from .proc import Terminated
from .progress import ProgressWriter, now_iso
from .rundir import (
    FINISHED,
    SweepFolder,
    atomic_write_text,
    csv_text,
    no_result,
    write_json,
    write_plots,
)
from .store import ENTRY_ONLY, SweepStore
from .sweep import MAX_RUNS, Sweep, build_sweep, expanded_listing

SUMMARY_EVERY_S = 1.0  # rewrite summary.csv at most this often while members finish
# ... and at most this share of the time (a 10,000-member rewrite costs the driver ~0.15 s, and the
# driver shares the cores with the workers): the next waits 50x the last one's cost
SUMMARY_SHARE = 0.02
RECORD_MAX_BYTES = 1 << 30  # sweep.yaml lists every member: ~160 bytes each


@dataclass
class Progress:
    total: int
    done: int = 0
    running: int = 0
    diverged: int = 0
    failed: int = 0
    skipped: int = 0  # already finished (resume)
    stage: str = ""  # an adaptive search's rung or round (progress.stage_text)


@dataclass
class SweepOutcome:
    folder: Path
    sweep: Sweep
    summary: pd.DataFrame
    interrupted: bool = False
    ran: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # lines for the terminal ("warning: ...")

    @property
    def n_failed(self) -> int:
        return int((self.summary["status"] == "failed").sum())


OnEvent = Callable[[Progress], None]


YAML_CHUNK = 1000  # members dumped at a time into sweep.yaml


def sweep_yaml_text(sweep: Sweep) -> str:
    """sweep.yaml: the sweep as given, then the member list. The list is dumped a thousand members
    at a time (the same text as one dump: a top-level key's list items are not indented), since
    PyYAML builds a node per value first: 100,000 members at once would take 300 MB."""
    doc = {
        "name": sweep.name,
        "source": sweep.source,
        "sweep": sweep.spec,
        "base_config": sweep.base_raw,
        "variant_configs": sweep.variant_bases,
    }
    listing = expanded_listing(sweep)
    chunks = [yamlio.dumps(listing[a : a + YAML_CHUNK]) for a in range(0, len(listing), YAML_CHUNK)]
    return yamlio.dumps(doc) + "members:\n" + "".join(chunks)


def summary_frame(
    sweep: Sweep, entries: dict[int, dict[str, Any]], folders: set[str]
) -> pd.DataFrame:
    """One row per member, from the store's record entries (``folders``: the labels of the
    members that have a folder of their own, the only ones with a ``run_dir``).

    Built column by column (a list per column, not a dict per row): at 10,000 members that is
    ~5x cheaper, and the driver rebuilds it while the workers train."""
    members = sweep.members
    keys = [k for k in sweep.varied_keys if k != "seed"]
    cols: dict[str, list[Any]] = {
        "index": [m.index for m in members],
        "run_dir": [f"members/{m.label}" if m.label in folders else None for m in members],
    }
    if any(m.variant for m in members):
        cols["variant"] = [m.variant for m in members]
    cols["seed"] = [m.seed for m in members]
    for k in keys:
        values = (m.varied.get(k) for m in members)
        cols[k] = [yamlio.dumps(v).strip() if isinstance(v, (list, dict)) else v for v in values]
    names = ("status", "final_loss", "final_data_loss", "final_train_acc", "final_test_acc",
             "diverged_at", "wall_s")  # fmt: skip
    out: list[list[Any]] = [[] for _ in names]
    none: dict[str, Any] = {}
    for m in members:
        e = entries.get(m.index) or none
        final = e.get("final")
        if not isinstance(final, dict):
            final = none
        status = e.get("status", "pending")
        for column, value in zip(out, (
            status,
            final.get("loss"),
            e.get("final_data_loss") if status in FINISHED else None,
            final.get("train_acc"),
            final.get("test_acc"),
            e.get("diverged_at"),
            e.get("wall_s"),
        )):  # fmt: skip
            column.append(value)
    cols.update(zip(names, out))
    df = pd.DataFrame(cols)
    df["diverged_at"] = df["diverged_at"].astype("Int64")  # a step: never 5.0, empty where none
    return df


def members_left(sweep: Sweep, folder: Path) -> list[int]:
    """The indices of the members a resume of ``folder`` would run: those not finished."""
    entries = SweepStore(folder).entries()
    return [
        m.index for m in sweep.members if (entries.get(m.index) or {}).get("status") not in FINISHED
    ]


def load_for_resume(sweep_dir: Path) -> Sweep:
    """Rebuild a sweep from the sweep.yaml in its folder (the base config is stored inline)."""
    path = sweep_dir / "sweep.yaml"
    if not path.exists():
        raise XorlabError("not a sweep folder (no sweep.yaml)", file=str(sweep_dir))
    doc = yamlio.load_file(path, max_bytes=RECORD_MAX_BYTES)
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
    groups: list[list[Member]] = [
        [(members[i].index, members[i].config) for i in g if members[i].index in wanted]
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


def open_run(
    sweep: Sweep,
    runs_dir: str | Path,
    jobs: int,
    executor: str,
    scheduler: str | None,
    resume_dir: Path | None,
) -> tuple[TaskQueue, Any, SweepFolder, SweepStore]:
    """A run's task queue and the pool that empties it, and the sweep folder (new, or the one
    resumed: its unfinished members' records and parts set aside) with its store."""
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
    store = SweepStore(folder.path)
    if resume_dir is not None:
        store.prepare_resume()  # unfinished members' records and parts go to attempts/
    return queue, pool, folder, store


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
    queue, pool, folder, store = open_run(sweep, runs_dir, jobs, executor, scheduler, resume_dir)
    if on_start is not None:
        on_start(folder.path)

    entries = store.entries()
    folders = store.member_folders()
    todo = []
    progress = Progress(total=len(sweep.members))
    for m in sweep.members:
        status = (entries.get(m.index) or {}).get("status")
        if status in FINISHED:
            progress.skipped += 1
            progress.done += 1
            progress.diverged += status == "diverged"
        else:
            if folder.set_aside(m.label) is not None:
                folders.discard(m.label)
            todo.append(m.index)
    queue.columns = tuple(_store_data(sweep, store))
    queue.eager = plot_sample(todo, len(sweep.members))
    for group in training_groups(sweep, todo, by_cost=parallel):
        queue.add(group)
    undrawn = plot_sample(range(len(sweep.members)), len(sweep.members)) - set(todo)
    for i in sorted(undrawn):  # finished before a Ctrl-C came, their plots not yet drawn
        m = sweep.members[i]
        if m.config.plots.enabled and m.label not in folders:
            queue.tasks.append(RenderTask(i, None, late=True, config=m.config.to_dict()))

    def notify() -> None:
        if on_event is not None:
            on_event(progress)

    next_summary = 0.0  # monotonic time of the next summary.csv rewrite while members finish
    interrupted = False
    ran: list[int] = []
    driver = _Driver(sweep, folder, store, folders, progress, ran)
    # progress.json, for `xorlab watch`; a resume with nothing left to do leaves the folder be
    writer = ProgressWriter(folder.path, sweep.members, now_iso()) if queue else None
    notify()
    try:
        if writer is not None:
            writer.maybe(entries, pool.running())
        for event in pool.run():
            driver.handle(event)
            now = time.monotonic()
            if isinstance(event, (Done, Failed)) and now >= next_summary:
                _write_summary(folder, summary_frame(sweep, entries, folders))
                cost = time.monotonic() - now
                next_summary = now + max(SUMMARY_EVERY_S, cost / SUMMARY_SHARE)
            if writer is not None:
                writer.maybe(entries, pool.running())
            notify()
    except KeyboardInterrupt as exc:
        interrupted = True
        how = "stopped by SIGTERM" if isinstance(exc, Terminated) else "stopped by Ctrl-C"
        running = [i for i in pool.running()
                   if (entries.get(i) or {}).get("status") not in FINISHED]  # fmt: skip
        if running:  # recorded as interrupted; they have no part: a resume runs them again
            store.write_record(store.new_part_id(running[0]),
                               {i: no_result("interrupted", how) for i in running})  # fmt: skip
    finally:
        pool.close()
        if writer is not None:
            writer.close()  # an error: no final write (the file goes stale, as after a crash)
    summary = summary_frame(sweep, entries, folders)
    _write_summary(folder, summary)
    if writer is not None:
        writer.final(entries)
    return SweepOutcome(folder.path, sweep, summary, interrupted=interrupted, ran=ran)


def _store_data(sweep: Sweep, store: SweepStore) -> list[str]:
    """Write each distinct data set of the sweep into data/ (once; on a resume, again where the
    file is missing or damaged: finished members need theirs too); return the sweep's metrics
    columns (every member's, in a run's order), which every part carries."""
    from .train import build_data

    has_test: dict[str, bool] = {}
    columns: dict[tuple, list[str]] = {}
    for m in sweep.members:
        cfg = m.config
        key = data_key(cfg)
        if key not in has_test:
            data = build_data(cfg)
            has_test[key] = data.n_test > 0
            store.write_data(key, data)
        shape = (repr(cfg.model), repr(cfg.telemetry), has_test[key])  # what sets the columns
        if shape not in columns:
            columns[shape] = member_columns(cfg, has_test[key])
    return union_columns(columns.values())


def _write_summary(folder: SweepFolder, df: pd.DataFrame) -> None:
    """summary.csv, unless it already holds exactly this (a resume with nothing left)."""
    path = folder.path / "summary.csv"
    try:
        if path.read_text(encoding="utf-8") == csv_text(df):
            return
    except (OSError, UnicodeDecodeError):
        pass
    folder.write_summary(df)


@dataclass
class _Driver:
    """What the driver does with each event: write bytes the workers encoded, count."""

    sweep: Sweep
    folder: SweepFolder
    store: SweepStore
    folders: set[str]  # labels of the members with a folder of their own
    progress: Progress
    ran: list[int]

    def handle(self, event: Event) -> None:
        progress = self.progress
        if isinstance(event, Stored):
            part = event.part
            self.store.write_part(self.store.new_part_id(min(part.entries)), part)
            return
        m = self.sweep.members[event.index]
        if isinstance(event, Drawn):  # drawn after it was done (best, worst, or after a resume)
            if event.plots:
                self._member_folder(m, plots=event.plots)
            return
        if isinstance(event, Started):
            progress.running += 1
            return
        if isinstance(event, Paused):  # a search member between two decisions: the search's
            return
        progress.running -= 1
        progress.done += 1
        self.ran.append(event.index)
        if isinstance(event, Done):
            out = event.output
            if out.plots or out.plot_error:
                self._member_folder(m, plots=out.plots, plot_error=out.plot_error)
            progress.diverged += out.status == "diverged"
        else:
            lines = event.error.strip().splitlines()
            entry = no_result("failed", lines[-1] if lines else "")
            self._member_folder(m, error=event.error, entry=entry)
            self.store.write_record(self.store.new_part_id(event.index), {event.index: entry})
            progress.failed += 1

    def _member_folder(
        self,
        m: Any,
        *,
        plots: dict[str, bytes] | None = None,
        plot_error: str | None = None,
        error: str | None = None,
        entry: dict[str, Any] | None = None,
    ) -> None:
        """members/<label>/: config.yaml, summary.json, and plots/ or error.txt."""
        run = self.folder.member(m.label)
        atomic_write_text(run.path / "config.yaml", m.config.to_yaml())
        if error is not None:
            atomic_write_text(run.path / "error.txt", error, sync=True)
        if plot_error is not None:
            atomic_write_text(run.path / "plots_error.txt", plot_error)
        write_plots(run.path / "plots", plots or {})
        e = entry if entry is not None else self.store.entry(m.index)
        if e is not None:
            summary = {k: v for k, v in e.items() if k not in ENTRY_ONLY}
            write_json(run.path / "summary.json", summary)
        self.folders.add(m.label)
