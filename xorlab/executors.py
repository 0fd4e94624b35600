"""What sweep members' work is, wherever it runs (the pools that run it, in this process, in local
worker processes or on a Dask cluster, are in ``pools``).

The unit of work is a task: ``TrainTask`` trains a group of members as one stack
(``population.train_population``; the groups come from the sweep file alone, so no result depends on
the executor or ``--jobs``), ``RenderTask`` draws one trained member's plots, ``SegmentTask`` trains
an adaptive search's members from where they are to its next decision (``searchrun``). A member
whose config wants plots goes back into the queue as a render task once trained, so drawing, the
costly part, spreads over every worker. A large sweep draws only a sample (``plot_sample``): the
rest of its members are done without plots, and once every member is trained the best and the worst
of them are drawn too (trained again alone: training is deterministic). Workers compute and return
bytes; they never write files (a cluster needs no shared disk): a training task's reply carries its
*part* of the sweep store (``parts.Part``: the members' metrics as Parquet, their weights, their
records), encoded in the worker. A member's RunResult travels back only when its plots are to be
drawn. ``TaskQueue`` holds what is left and turns replies into events, the same for every executor:
``Started(index)``, ``Stored(part)`` (before the Done events of its members), ``Done(index,
output)``, ``Failed(index, error)``, and ``Drawn(index, plots)`` for a member drawn after it was
done.

Faults stay with their member. A member that raises is failed; if it raised inside a group, the
group's members are trained again one by one (in the same worker), so only the culprit fails. A
worker that dies while training a group costs no member: each is queued again alone; a worker
that dies while training or drawing one member fails that member. The local pool is hand-made
(``pools``) rather than ``concurrent.futures``, where one killed worker breaks the pool and every
pending future.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .config import Config
from .parts import Part, encode_part, final_data_loss, summary_entry
from .population import train_population
from .proc import blas_threads, keep_freed_memory, pin_blas
from .rundir import FINISHED, now_iso
from .stack import Net, last_values, results, start
from .stepping import advance
from .train import RunResult, train

# (index in the sweep, its resolved config: a Config, whose sections identical to the previous
# member's are one object, so a task of 58 pickles them once; or the same as a dict)
Member = tuple[int, Config | dict[str, Any]]


@dataclass(frozen=True)
class TrainTask:
    members: tuple[Member, ...]
    keep: frozenset[int] = frozenset()  # members whose RunResult comes back (to draw plots)
    columns: tuple[str, ...] = ()  # the sweep's metrics columns (every part carries them all)


@dataclass(frozen=True)
class RenderTask:
    index: int
    result: RunResult | None  # None: train ``config`` again first (a late drawing)
    late: bool = False  # the member is done already; its plots come as a Drawn event
    config: Config | dict[str, Any] | None = None


@dataclass(frozen=True)
class SegmentTask:
    """An adaptive search's members trained from where they are (a ``Net``, or a fresh start
    from the config) to ``stop`` updates as one stack. Those still training at ``stop <
    train.steps`` come back ``Paused`` with their whole state; the others finish as in a
    ``TrainTask``. ``end`` ends the running ones where they are, untrained (``pruned``); with
    ``hold`` (PBT) a network that diverges or stops early comes back paused too, to copy a donor."""

    members: tuple[tuple[int, Config, Net | None], ...]
    stop: int
    end: str | None = None
    hold: bool = False
    metric: str = "data_loss"  # the value a Paused (or a finished Trained) reply carries
    keep: frozenset[int] = frozenset()
    columns: tuple[str, ...] = ()
    skip: frozenset[int] = frozenset()  # stored already (a resume replays the search): no part


Task = TrainTask | RenderTask | SegmentTask
Reply = tuple[int, bool, Any]  # (index, ok, Trained | plots | traceback), or (PART, True, Part)
PART = -1  # the index of a training task's first reply: its part of the store


@dataclass
class Trained:
    """One member's training, as a worker returns it (its numbers travel in the Part)."""

    status: str
    wants_plots: bool  # its config enables plots
    rank: float  # best/worst among the undrawn (``_rank_value``)
    result: RunResult | None = None  # only for members in the task's ``keep``
    value: float | None = None  # a search's metric on its last logged row (SegmentTask)


@dataclass
class Paused:
    """A search member at a decision step: its whole state and its metric on its last logged row
    (``out``: it diverged or stopped early, so it ranks last)."""

    index: int
    net: Net
    value: float
    out: bool


@dataclass
class MemberOutput:
    status: str
    plots: dict[str, bytes]  # file name -> bytes, rendered in a worker
    plot_error: str | None = None  # the traceback when drawing failed (the member stays done)
    value: float | None = None  # a search member's metric on its last logged row


@dataclass
class Stored:
    """A training task's part of the store, to be written before its members are done."""

    part: Part


@dataclass
class Started:
    index: int


@dataclass
class Done:
    index: int
    output: MemberOutput


@dataclass
class Failed:
    index: int
    error: str  # a traceback, or what happened to the worker


@dataclass
class Drawn:
    """Plots of a member that is done already (the best or worst of a large sweep)."""

    index: int
    plots: dict[str, bytes]  # empty if drawing failed: the member stays done, without plots


Event = Started | Stored | Done | Failed | Drawn | Paused

PLOT_ALL_UP_TO = 24  # a sweep of at most this many members draws every member's plots
PLOT_SAMPLE = 10  # a larger one draws this many, evenly spaced by index, then its best and worst


def plot_sample(indices: Sequence[int], n_members: int) -> set[int]:
    """The members of a sweep of ``n_members`` whose plots are drawn as soon as they are trained.

    All of a small sweep; of a large one ``PLOT_SAMPLE`` spread evenly over the sweep's index
    range (the best and the worst are added once all are trained). ``indices`` are those to run.
    """
    if n_members <= PLOT_ALL_UP_TO:
        return set(indices)
    step = n_members / PLOT_SAMPLE
    spread = {int(k * step) for k in range(PLOT_SAMPLE)}
    return spread & set(indices)


def _rank_value(result: RunResult) -> float:
    """What makes a member best or worst: its data loss on the last logged row (inf if none)."""
    m = result.metrics
    if result.status == "diverged" or len(m) == 0 or "data_loss" not in m:
        return float("inf")
    v = float(m["data_loss"].iloc[-1])
    return v if v == v else float("inf")  # NaN ranks worst


# --- what a worker does -------------------------------------------------------------------------


def work(task: Task) -> list[Reply]:
    """Run one task; one reply per member. Never raises for a member's fault."""
    if isinstance(task, RenderTask):
        try:
            from .plots import render_run_bytes  # matplotlib only where plots are drawn

            result = task.result
            if result is None:
                assert task.config is not None  # a late drawing carries its config
                result = train(Config.model_validate(task.config))
            gif = result.config.plots.gif_frames > 1
            return [(task.index, True, render_run_bytes(result, gif=gif))]
        except Exception:  # noqa: BLE001 - a member's failure is recorded, not raised
            return [(task.index, False, traceback.format_exc())]
    if isinstance(task, SegmentTask):
        return train_segment(task)
    return train_group(task.members, keep=task.keep, columns=task.columns)


def train_group(
    members: Sequence[Member], keep: frozenset[int] = frozenset(), columns: Sequence[str] = ()
) -> list[Reply]:
    """Train members as one stack (if that raises, each alone, so only the culprit fails); the
    first reply is the task's part of the store, encoded here, then one reply per member."""
    trained, failed = _train(members)
    return _replies(trained, keep, columns) + [(index, False, tb) for index, tb in failed]


def _replies(
    trained: Sequence[tuple[int, RunResult, dict[str, Any]]],
    keep: frozenset[int],
    columns: Sequence[str],
    *,
    skip: frozenset[int] = frozenset(),
    values: dict[int, float] | None = None,
) -> list[Reply]:
    """The part of the store of the trained members (but those in ``skip``), then one Trained
    reply each."""
    replies: list[Reply] = []
    stored = [t for t in trained if t[0] not in skip]
    if stored:
        results = [(i, r) for i, r, _ in stored]
        metrics, weights, done = encode_part(results, columns)
        entries = {}
        for index, r, info in stored:
            timing = {k: v for k, v in info.items() if k != "wall_s"}  # wall_s: rounded
            entry = {**summary_entry(r, info["wall_s"]), **timing}
            entry["final_data_loss"] = (
                final_data_loss(r.final_params, r.data, r.config) if r.status in FINISHED else None
            )
            entries[index] = entry
        cols = list(stored[0][1].metrics.columns)
        replies.append((PART, True, Part(done, metrics, weights, cols, entries)))
    for index, r, _ in trained:
        wants = r.config.plots.enabled
        kept = r if wants and index in keep and r.status != "interrupted" else None
        value = None if values is None else values.get(index)
        replies.append((index, True, Trained(r.status, wants, _rank_value(r), kept, value)))
    return replies


def train_segment(task: SegmentTask) -> list[Reply]:
    """Carry out a SegmentTask (if the stack raises, each member alone, so only the culprit
    fails): Paused replies for the members that go on, a part and Trained replies for the rest."""
    started = now_iso()
    t0 = time.perf_counter()
    try:
        fresh = [start([cfg])[0] if net is None else None for _, cfg, net in task.members]
        # a worker gets a copy (pickled); in the driver's process (Serial) the driver's own objects
        # must stay as they were: a group that raises is trained again member by member from them
        nets: list[Net] = [f if f is not None else net if _IN_WORKER else net.clone()  # type: ignore[misc,union-attr]
                           for f, (_, _, net) in zip(fresh, task.members)]  # fmt: skip
        if task.end is None:
            advance(nets, task.stop)
        else:
            for net in nets:
                if net.running:
                    net.status = task.end
        values = last_values(nets, task.metric)
        ending = task.end is not None or task.stop >= task.members[0][1].train.steps
        over = ("completed", "interrupted")
        done = [ending or n.status in over or (not n.running and not task.hold) for n in nets]
        wall = (time.perf_counter() - t0) / len(nets)
        finished = [n for n, d in zip(nets, done) if d]
        out = results(finished) if finished else []
    except Exception:  # noqa: BLE001
        if len(task.members) == 1:
            return [(task.members[0][0], False, traceback.format_exc())]
        replies: list[Reply] = []
        for m in task.members:
            replies += train_segment(replace(task, members=(m,)))
        return replies
    info = {"started_at": started, "group_size": len(nets), "blas_threads": blas_threads()}
    trained, paused = [], []
    it = iter(out)
    by_index: dict[int, float] = {}
    for (index, _, _), net, d, v in zip(task.members, nets, done, values.tolist()):
        net.wall_s += wall
        by_index[index] = v
        if d:
            trained.append((index, next(it), {**info, "wall_s": net.wall_s}))
        else:
            net.config = None  # type: ignore[assignment]  # the driver has it: spared the pipe
            paused.append((index, True, Paused(index, net, v, not net.running)))
    return _replies(trained, task.keep, task.columns, skip=task.skip, values=by_index) + paused


def _train(
    members: Sequence[Member],
) -> tuple[list[tuple[int, RunResult, dict[str, Any]]], list[tuple[int, str]]]:
    """(index, result, timing) of each member trained, (index, traceback) of each that raised."""
    started = now_iso()
    t0 = time.perf_counter()
    try:
        configs = [Config.model_validate(d) for _, d in members]
        results = train_population(configs) if len(configs) > 1 else [train(configs[0])]
    except Exception:  # noqa: BLE001
        if len(members) == 1:
            return [], [(members[0][0], traceback.format_exc())]
        trained, failed = [], []
        for m in members:
            t, f = _train([m])
            trained += t
            failed += f
        return trained, failed
    info = {"wall_s": (time.perf_counter() - t0) / len(members), "started_at": started,
            "group_size": len(members), "blas_threads": blas_threads()}  # fmt: skip
    return [(index, r, info) for (index, _), r in zip(members, results)], []


# --- the queue, shared by every executor --------------------------------------------------------


class TaskQueue:
    """Tasks not yet handed out, and what each reply or lost task means for its members."""

    def __init__(self, groups: Sequence[Sequence[Member]], eager: set[int] | None = None):
        self.tasks: deque[Task] = deque(TrainTask(tuple(g)) for g in groups if g)
        self.open: set[int] = set()  # members started and not yet done or failed
        self.trained: dict[int, Trained] = {}  # waiting for their plots
        self.interrupted = False  # a member came back interrupted (Ctrl-C in this process)
        self.eager = eager  # members whose plots are drawn when trained (None: all)
        self.untrained = {i for g in groups for i, _ in g}  # to see when the last one is back
        # the best and the worst members trained without plots: (rank value, index, config)
        self.extremes: dict[str, tuple[float, int, Config | dict[str, Any]]] = {}
        self.columns: tuple[str, ...] = ()  # the sweep's metrics columns, for every part
        self.configs: dict[int, Config | dict[str, Any]] = {}  # members that may be drawn late

    def add(self, group: Sequence[Member]) -> None:
        """Queue one training group."""
        keep = frozenset(i for i, _ in group if self.eager is None or i in self.eager)
        self.tasks.append(TrainTask(tuple(group), keep, self.columns))
        self.untrained.update(i for i, _ in group)
        for i, d in group:
            enabled = d.plots.enabled if isinstance(d, Config) else d["plots"]["enabled"]
            if i not in keep and enabled:
                self.configs[i] = d

    def add_segment(self, task: SegmentTask, *, late: bool = True) -> None:
        """Queue a search's stage; ``late``: a member without plots may be drawn after all are
        done, by training its config again (not PBT's: no config does)."""
        self.tasks.append(task)
        for i, cfg, _ in task.members:
            self.untrained.add(i)
            if late and i not in task.keep and cfg.plots.enabled:
                self.configs[i] = cfg

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def pop(self) -> tuple[Task, list[Started]]:
        """The next task, and a Started event for each member that starts with it."""
        task = self.tasks.popleft()
        fresh = []
        if isinstance(task, (TrainTask, SegmentTask)):  # one put back alone has started already
            fresh = [m[0] for m in task.members if m[0] not in self.open]
        self.open.update(fresh)
        return task, [Started(i) for i in fresh]

    def unpop(self, task: Task, events: list[Started]) -> None:
        """Put back a task that never reached a worker."""
        self.tasks.appendleft(task)
        self.open.difference_update(e.index for e in events)

    def finish(self, task: Task, replies: list[Reply]) -> list[Event]:
        events: list[Event] = []
        for index, ok, payload in replies:
            if index == PART:
                events.append(Stored(payload))
            elif isinstance(payload, Paused):  # a search member between two decisions
                events.append(payload)
            elif isinstance(task, RenderTask) and task.late:
                events.append(Drawn(index, payload if ok else {}))
            elif not ok and isinstance(task, RenderTask):  # trained and stored: it stays done
                trained = self.trained.pop(index)
                out = MemberOutput(trained.status, {}, payload, trained.value)
                events.append(self._close(Done(index, out)))
            elif not ok:
                self.untrained.discard(index)
                events.append(self._close(Failed(index, payload)))
            elif isinstance(task, RenderTask):
                trained = self.trained.pop(index)
                out = MemberOutput(trained.status, payload, value=trained.value)
                events.append(self._close(Done(index, out)))
            else:
                self.untrained.discard(index)
                if payload.result is not None:
                    self.trained[index] = payload
                    self.tasks.appendleft(RenderTask(index, payload.result))  # before training
                    continue
                # a pruned member's config trains further than it went: not drawn late
                if payload.wants_plots and payload.status not in ("interrupted", "pruned"):
                    self._consider(index, payload.rank)
                self.interrupted |= payload.status == "interrupted"
                out = MemberOutput(payload.status, {}, value=payload.value)
                events.append(self._close(Done(index, out)))
        self._draw_extremes()
        return events

    def _draw_extremes(self) -> None:
        """Once every member is trained, queue the drawing of the best and the worst."""
        if self.untrained or not self.extremes or self.interrupted:
            return
        for index, config in {i: c for _, i, c in self.extremes.values()}.items():
            self.tasks.append(RenderTask(index, None, late=True, config=config))
        self.extremes.clear()

    def _consider(self, index: int, rank: float) -> None:
        """Keep ``index`` if it is the best or the worst so far (ties: the lower index)."""
        best, worst = self.extremes.get("best"), self.extremes.get("worst")
        config = self.configs.pop(index, None)
        if config is None:  # not to be drawn late (a search member that a plain run is not)
            return
        if best is None or rank < best[0]:
            self.extremes["best"] = (rank, index, config)
        if worst is None or rank > worst[0]:
            self.extremes["worst"] = (rank, index, config)

    def lost(self, task: Task, how: str) -> list[Event]:
        """The worker running ``task`` died: a group's members go again alone; one member fails."""
        if isinstance(task, RenderTask) and task.late:
            return [Drawn(task.index, {})]
        if isinstance(task, RenderTask):  # trained and stored: it stays done, without plots
            trained = self.trained.pop(task.index)
            msg = f"worker process died ({how}) while drawing this member's plots\n"
            return [self._close(Done(task.index, MemberOutput(trained.status, {}, msg)))]
        if len(task.members) > 1:
            for m in reversed(task.members):
                self.tasks.appendleft(replace(task, members=(m,)))  # type: ignore[arg-type]
            return []
        msg = f"worker process died ({how}) while running this member\n"
        self.untrained.discard(task.members[0][0])
        self._draw_extremes()
        return [self._close(Failed(task.members[0][0], msg))]

    def _close(self, event: Done | Failed) -> Event:
        self.open.discard(event.index)
        return event


_IN_WORKER = False  # set in worker processes: a task arrived pickled, a copy of the driver's


def _worker_setup() -> None:
    """One BLAS thread per worker, so --jobs N uses N cores, not N x cores; no allocator churn."""
    global _IN_WORKER
    _IN_WORKER = True
    keep_freed_memory()
    pin_blas(1)
