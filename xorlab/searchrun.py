"""Run a sweep with an adaptive search (DESIGN.md section 2): successive halving, Hyperband, PBT.

The search runs in stages, one per decision step of its plan (``search.make_plan``), then one to
``train.steps``. In a stage every live member trains from where it is to the decision step as
part of a stack (``executors.SegmentTask``; groups are re-formed from the live members at every
stage, so a rung's cost follows its live members, and a member's bits never depend on its group).
A member still training comes back ``Paused``: its whole state (``stack.Net``) travels back
to the driver as bytes, so Dask needs no shared disk. The driver then asks the pure policy
(``search.decide``) for the decision rows and carries them out: a ``pruned`` member is ended
where it is and stored (its metrics end at its rung), an ``exploited`` one copies its donor's
whole state (``Net.copy_from``) with its mutable keys perturbed. ``events.csv`` is rewritten after
every decision; members that finish are stored as they come, as in a plain sweep (``sweeprun``).

``search.calibrate: n`` first trains n members to the full budget, writes calibration.csv (the
Spearman correlation of each logged step's ranks with the final ranks), warns when the first
rung's is below 0.8 and, with ``min_steps: auto``, places the first rung from it.

A resume replays the search from the start: decisions are a pure function of the sweep file, so
the replay takes the same decisions and writes the same events.csv, and members stored before
the interruption are trained again but not stored twice. It costs the compute of the part of the
search that had run; it needs no checkpoint files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import search as S
from .config import Config
from .executors import (
    Done,
    Failed,
    Paused,
    SegmentTask,
    Started,
    TaskQueue,
    plot_sample,
)
from .lineage import with_keys
from .members import read_metrics
from .population import group_configs
from .proc import Terminated
from .progress import ProgressWriter, now_iso, stage_text
from .rundir import FINISHED, SweepFolder, atomic_write_text, csv_text, no_result
from .stack import Net
from .store import SweepStore
from .sweep import Sweep
from .sweeprun import (
    SUMMARY_EVERY_S,
    SUMMARY_SHARE,
    OnEvent,
    Progress,
    SweepOutcome,
    _Driver,
    _step_cost,
    _store_data,
    _write_summary,
    open_run,
    summary_frame,
)

EVENTS, CALIBRATION = "events.csv", "calibration.csv"


def run_search(
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
    """Run ``sweep`` (which has a ``search:``) to the end of its search, or until Ctrl-C."""
    assert sweep.search is not None
    queue, pool, folder, store = open_run(sweep, runs_dir, jobs, executor, scheduler, resume_dir)
    if on_start is not None:
        on_start(folder.path)
    run = _SearchRun(sweep, folder, store, pool, queue, jobs > 1 or executor == "dask", on_event)
    summary_csv = folder.path / "summary.csv"
    if len(run.stored) == run.n and summary_csv.is_file():  # a resume with nothing left to do
        pool.close()
        return SweepOutcome(folder.path, sweep, pd.read_csv(summary_csv), ran=[])
    try:
        run.run()
    except KeyboardInterrupt as exc:
        run.interrupted = True
        how = "stopped by SIGTERM" if isinstance(exc, Terminated) else "stopped by Ctrl-C"
        run.record_unfinished(how)
    finally:
        pool.close()
        run.writer.close()  # an error: no final write (the file goes stale, as after a crash)
    summary = run.summary()
    _write_summary(folder, summary)
    run.writer.final(run.entries, (), **run.progress_state())
    return SweepOutcome(folder.path, sweep, summary, interrupted=run.interrupted, ran=run.ran,
                        warnings=run.warnings)  # fmt: skip


class _SearchRun:
    """The driver's state during a search: the live members' states, the decisions so far."""

    def __init__(
        self,
        sweep: Sweep,
        folder: SweepFolder,
        store: SweepStore,
        pool: Any,
        queue: TaskQueue,
        parallel: bool,
        on_event: OnEvent | None,
    ):
        search = sweep.search
        assert search is not None
        self.sweep, self.folder, self.store = sweep, folder, store
        self.pool, self.queue = pool, queue
        self.search = search
        self.parallel = parallel
        self.on_event = on_event
        self.n = len(sweep.members)
        self.T = sweep.members[0].config.train.steps
        self.entries = store.entries()
        self.folders = store.member_folders()
        # finished before a resume: trained again (the search replays), never stored twice
        self.stored = frozenset(i for i, e in self.entries.items() if e.get("status") in FINISHED)
        self.progress = Progress(total=self.n, done=len(self.stored), skipped=len(self.stored))
        self.progress.diverged = sum(self.entries[i].get("status") == "diverged"
                                     for i in self.stored)  # fmt: skip
        self.ran: list[int] = []
        self.driver = _Driver(sweep, folder, store, self.folders, self.progress, self.ran)
        self.queue.columns = tuple(_store_data(sweep, store))
        self.queue.eager = plot_sample(range(self.n), self.n) - set(self.stored)
        self.warnings: list[str] = []
        self.interrupted = False
        self.plan: S.Plan | None = None
        self.events: list[pd.DataFrame] = []
        self.events_csv = ",".join(S.EVENT_COLUMNS) + "\n"  # events.csv's text so far
        self.nets: dict[int, Net | None] = {}  # live members (None: not started)
        self.rows: dict[int, list[np.ndarray]] = {}  # their logged rows, kept here
        self.values: dict[int, float] = {}  # their metric on their last logged row
        self.next_summary = 0.0
        self.stage: dict[str, Any] | None = None  # the rung or round being trained to
        self.parents: dict[int, int] = {}  # PBT: each copier's latest donor
        self.writer = ProgressWriter(folder.path, sweep.members, now_iso())  # progress.json

    # --- the search ---------------------------------------------------------------------------

    def run(self) -> None:
        search = self.search
        dists: dict[str, S.Distribution] = {}
        if search.kind == "pbt":
            random_params = (self.sweep.spec.get("random") or {}).get("params")
            dists = S.mutable_distributions(search, random_params, file=self.sweep.source)
            self.plan = S.make_plan(search, self.n, self.T, distributions=dists)
        elif search.calibrate:
            self.plan = self._calibrate()
        else:
            self.plan = S.make_plan(search, self.n, self.T)
        plan = self.plan
        if plan.kind == "pbt":
            live = list(range(self.n))
        else:
            live = [i for b in plan.brackets for i in b.members]
        self.nets = dict.fromkeys(sorted(live))
        ending: list[int] = []  # pruned, or out of the stack, at the last decision
        for k, step in enumerate([*plan.decision_steps(), self.T]):
            if step < self.T:
                self.stage = {"kind": plan.kind, "step": step, "round": k, "bracket": None}
            else:
                self.stage = {"kind": plan.kind, "step": step, "round": None, "bracket": None}
            self.progress.stage = stage_text(self.stage)
            outcome = self._stage(step, {i: self.nets.pop(i) for i in ending})
            for i in [i for i in self.nets if outcome.get(i, (0, 0, None))[2] is None]:
                del self.nets[i]  # failed, or interrupted: nothing to carry on
            if step >= self.T:
                break
            if plan.kind == "pbt":
                ev = self._pbt_round(step, outcome, dists)
            else:
                ev = S.decide(plan, step, self._table(outcome))
                pruned = set(ev.loc[ev["action"] == "pruned", "member"].tolist())
                # a diverged member waits for its bracket's rung (which prunes it); one that
                # stopped early is done
                ending = [i for i, net in self.nets.items() if i in pruned
                          or (net is not None and net.status == "stopped_early")]  # fmt: skip
            self.events.append(ev)
            copies = ev[ev["action"] == "exploited"]
            self.parents.update(zip(copies["member"].astype(int), copies["parent"].astype(int)))
            # the rows so far, then this decision's (it comes after them in events.csv's order)
            self.events_csv += S.events_text(ev).split("\n", 1)[1]
            atomic_write_text(self.folder.path / EVENTS, self.events_csv)
        self.nets.clear()

    def _calibrate(self) -> S.Plan:
        """Train the calibration members in full, write calibration.csv, plan the rest."""
        search = self.search
        cal = S.calibration_members(self.n, search.calibrate, search.seed)
        self.nets = dict.fromkeys(cal)
        self._stage(self.T, {})
        self.nets.clear()
        metrics = read_metrics(self.folder.path, columns=["step", search.metric])
        metrics = metrics[metrics["member"].isin(cal)]
        table = S.calibration_table(S.curves_from_metrics(metrics, search.metric),
                                    mode=search.mode)  # fmt: skip
        atomic_write_text(self.folder.path / CALIBRATION, csv_text(table))
        if search.min_steps == "auto":
            first = S.auto_min_steps(table, search.eta, self.T)
            plan = S.make_plan(search, self.n, self.T, min_steps=first)
            if first is None:
                self.warnings.append(
                    f"warning: no step's rank correlation reaches {S.TRUST} in the "
                    f"{len(cal)} calibration members: no rung, every member trains in full"
                )
        else:
            plan = S.make_plan(search, self.n, self.T)
        rungs = sorted({b.rungs[0] for b in plan.brackets if b.rungs})
        if rungs:
            rho = S.rung_correlation(table, rungs[0])
            if not rho >= S.TRUST:
                self.warnings.append(
                    f"warning: at the first rung (step {rungs[0]}) the ranks of the {len(cal)} "
                    f"calibration members correlate {rho:.2f} with their final ranks (below "
                    f"{S.TRUST}): pruning there may drop members that would have won"
                )
        return plan

    def _stage(self, step: int, ending: dict[int, Net | None]) -> dict[int, tuple]:
        """Train the live members to ``step`` and end the ``ending`` ones where they are (a
        running one as ``pruned``); member -> (status, value, Net, or None once finished).

        Between decisions a member's logged rows stay here (``self.rows``): a state travels
        without them, and only a member that ends takes them along, to be stored."""
        search = self.search
        final = step >= self.T
        tasks = []
        common: dict[str, Any] = {
            "metric": search.metric,
            "keep": frozenset(self.queue.eager or ()),
            "skip": self.stored,
            "columns": self.queue.columns,
            "hold": True,  # a member out of the stack comes back: the decision says what next
        }
        for members, end in ((self.nets, None), (ending, "pruned")):
            order = sorted(members)
            configs = [self._config(i, members[i]) for i in order]
            nets = [self._rows_along(i, members[i], final or end is not None) for i in order]
            groups = group_configs(configs)
            if self.parallel:
                groups.sort(key=lambda g: -len(g) * _step_cost(configs[g[0]]))
            for g in groups:
                ms = tuple((order[j], configs[j], nets[j]) for j in g)
                tasks.append(SegmentTask(ms, step, end=end, **common))
        sent = {i: cfg for t in tasks for i, cfg, _ in t.members}
        for t in tasks:
            self.queue.add_segment(t, late=search.kind != "pbt")
        outcome: dict[int, tuple] = {}
        for event in self.pool.run():
            if isinstance(event, Paused):
                net, i = event.net, event.index
                net.config = sent[i]  # a paused state comes back without its config
                new_rows, net.rows = net.rows, []
                self.rows.setdefault(i, []).extend(new_rows)
                value = event.value if new_rows else self.values.get(i, math.nan)
                self.values[i] = value  # a member out of the stack keeps its last row's value
                outcome[i] = (net.status, value, net)
                self.nets[i] = net
                continue
            if isinstance(event, Done):
                outcome[event.index] = (event.output.status, event.output.value, None)
            elif isinstance(event, Failed):
                outcome[event.index] = ("failed", math.nan, None)
            if getattr(event, "index", None) in self.stored and isinstance(
                event, (Started, Done, Failed)
            ):
                continue  # stored before the resume: counted already
            self.driver.handle(event)
            now = time.monotonic()
            if isinstance(event, (Done, Failed)) and now >= self.next_summary:
                _write_summary(self.folder, self.summary())
                cost = time.monotonic() - now
                self.next_summary = now + max(SUMMARY_EVERY_S, cost / SUMMARY_SHARE)
            self.writer.maybe(self.entries, self.pool.running(), **self.progress_state())
            if self.on_event is not None:
                self.on_event(self.progress)
        return outcome

    def progress_state(self) -> dict[str, Any]:
        """progress.json's search part: the stage, the plan's network-steps, PBT's donors."""
        plan = self.plan
        planned = None if plan is None else S.planned_network_steps(plan)
        return {"stage": self.stage, "planned": planned, "parents": self.parents or None}

    def _rows_along(self, i: int, net: Net | None, ends: bool) -> Net | None:
        """``net`` to send: with its logged rows when it ends in this stage, else without."""
        if net is None or not ends:
            return net
        net.rows = self.rows.pop(i, [])
        return net

    def _config(self, i: int, net: Net | None) -> Config:
        return self.sweep.members[i].config if net is None else net.config

    def _table(self, outcome: dict[int, tuple]) -> pd.DataFrame:
        """The rung's table: the members live at the stage's start, but those that stopped
        early (done, not ranked) or failed; a diverged one is there, to be pruned."""
        rows = [(i, v, s == "diverged") for i, (s, v, n) in sorted(outcome.items())
                if n is not None and s in ("running", "diverged")]  # fmt: skip
        return pd.DataFrame(rows, columns=["member", "value", "diverged"]).astype(
            {"member": np.int64, "value": np.float64, "diverged": bool}
        )

    def _pbt_round(
        self, step: int, outcome: dict[int, tuple], dists: dict[str, S.Distribution]
    ) -> pd.DataFrame:
        """A PBT round: rank every member, copy and perturb; the copies happen here."""
        held = {i: n for i, n in self.nets.items() if n is not None}
        rows = []
        for i, net in sorted(held.items()):
            status, value, _ = outcome.get(i, (net.status, math.nan, net))
            row = {"member": i, "value": value, "diverged": not net.running}
            row.update({k: S.config_value(net.config, k) for k in dists})
            rows.append(row)
        table = pd.DataFrame(rows)
        ev = S.decide(self.plan, step, table)  # type: ignore[arg-type]
        # copiers are the bottom ranks and donors the top: no donor changes during a round
        moves: dict[int, dict[str, float]] = {}
        donors: dict[int, Net] = {}
        cols = (ev[c].tolist() for c in ("member", "action", "parent", "key", "new"))
        for member, action, parent, key, value in zip(*cols):
            if action == "exploited":
                donors[int(member)] = held[int(parent)]
            elif action == "perturbed":
                moves.setdefault(int(member), {})[str(key)] = float(value)
        for m, donor in donors.items():
            keys = {k: S.config_value(donor.config, k) for k in dists}
            held[m].copy_from(donor, with_keys(held[m].config, {**keys, **moves.get(m, {})}))
        return ev

    # --- what is written ------------------------------------------------------------------------

    def record_unfinished(self, how: str) -> None:
        """Ctrl-C: the members running or paused are recorded interrupted (a resume replays)."""
        done = self.store.entries()
        left = [i for i in sorted(set(self.queue.open) | set(self.nets))
                if (done.get(i) or {}).get("status") not in FINISHED]  # fmt: skip
        if left:
            self.store.write_record(self.store.new_part_id(left[0]),
                                    {i: no_result("interrupted", how) for i in left})  # fmt: skip
            self.entries = self.store.entries()

    def summary(self) -> pd.DataFrame:
        """summary.csv with the search's columns: steps_done, bracket, calibration, parent, and
        for PBT each mutable key's final value."""
        self.entries = self.store.entries()
        df = summary_frame(self.sweep, self.entries, self.folders)
        return search_columns(df, self.plan, self.events, self.entries)


def search_columns(
    df: pd.DataFrame,
    plan: S.Plan | None,
    events: list[pd.DataFrame],
    entries: dict[int, dict[str, Any]],
) -> pd.DataFrame:
    """summary.csv's search columns (DESIGN.md section 3), after ``status``."""
    at = list(df.columns).index("status") + 1
    steps = [(entries.get(i) or {}).get("steps_done") for i in df["index"]]
    df.insert(at, "steps_done", pd.array(steps, dtype="Int64"))
    if plan is None:
        return df
    if plan.kind == "hyperband":
        bracket = [getattr(plan.bracket_of(int(i)), "index", None) for i in df["index"]]
        df.insert(at + 1, "bracket", pd.array(bracket, dtype="Int64"))
    if plan.calibration:
        df["calibration"] = df["index"].isin(plan.calibration)
    if plan.kind == "pbt":
        ev = pd.concat(events, ignore_index=True) if events else S.events_frame([])
        copies = ev[ev["action"] == "exploited"]
        parent = copies.groupby("member")["parent"].last() if len(copies) else pd.Series()
        df["parent"] = pd.array([parent.get(int(i)) for i in df["index"]], dtype="Int64")
        moves = ev[ev["action"] == "perturbed"]
        for key in plan.distributions:
            last = moves[moves["key"] == key].groupby("member")["new"].last()
            if key in df:
                df[key] = [last.get(int(i), v) for i, v in zip(df["index"], df[key])]
    return df


def run(sweep: Sweep, runs_dir: str | Path, **kwargs: Any) -> SweepOutcome:
    """Run a sweep: with its adaptive search if it has one (``run_search``), else every member
    to train.steps (``sweeprun.run_sweep``)."""
    from .sweeprun import run_sweep

    return (run_search if sweep.search is not None else run_sweep)(sweep, runs_dir, **kwargs)
