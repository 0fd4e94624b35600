"""Where sweep members run: in this process, in local worker processes, or on a Dask cluster.

The unit of work is a task: ``TrainTask`` trains a group of members as one stack
(``population.train_population``; the groups come from the sweep file alone, so no result
depends on the executor or ``--jobs``), ``RenderTask`` draws one trained member's plots. A member
whose config wants plots goes back into the queue as a render task once trained, so drawing, the
costly part, spreads over every worker. A large sweep draws only a sample (``plot_sample``): the
rest of its members are done without plots, and once every member is trained the best and the
worst of them are drawn too. Workers compute and return bytes; they never write files (a cluster
needs no shared disk). ``TaskQueue`` holds what is left and turns replies into events, the same for
every executor: ``Started(index)``, ``Done(index, output)``, ``Failed(index, error)``, and
``Drawn(index, plots)`` for a member drawn after it was done.

Faults stay with their member. A member that raises is failed; if it raised inside a group, the
group's members are trained again one by one (in the same worker), so only the culprit fails. A
worker that dies while training a group costs no member: each is queued again alone; a worker
that dies while training or drawing one member fails that member. The local pool is hand-made
rather than ``concurrent.futures``, where one killed worker breaks the pool and every pending
future.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .config import Config
from .errors import XorlabError
from .population import train_population
from .proc import WORKER_MODULES, blas_threads, keep_freed_memory, pin_blas
from .rundir import now_iso, result_files
from .train import RunResult, train

Member = tuple[int, dict[str, Any]]  # (index in the sweep, resolved config as a dict)


@dataclass(frozen=True)
class TrainTask:
    members: tuple[Member, ...]


@dataclass(frozen=True)
class RenderTask:
    index: int
    result: RunResult
    late: bool = False  # the member is done already; its plots come as a Drawn event


Task = TrainTask | RenderTask
Reply = tuple[int, bool, Any]  # (index, ok, Trained | plots | traceback text)


@dataclass
class Trained:
    """One member's training, as a worker returns it."""

    result: RunResult
    files: dict[str, bytes]  # rundir.result_files, encoded in the worker
    wall_s: float  # its share of the group's training time
    started_at: str
    group_size: int
    blas_threads: int | None  # in the process that trained it


@dataclass
class MemberOutput:
    result: RunResult
    files: dict[str, bytes]
    plots: dict[str, bytes]  # file name -> bytes, rendered in a worker
    wall_s: float
    started_at: str
    group_size: int
    blas_threads: int | None


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


Event = Started | Done | Failed | Drawn

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

            gif = task.result.config.plots.gif_frames > 1
            return [(task.index, True, render_run_bytes(task.result, gif=gif))]
        except Exception:  # noqa: BLE001 - a member's failure is recorded, not raised
            return [(task.index, False, traceback.format_exc())]
    return train_group(task.members)


def train_group(members: Sequence[Member]) -> list[Reply]:
    """Train members as one stack; if that raises, train each alone so only the culprit fails."""
    started = now_iso()
    t0 = time.perf_counter()
    try:
        configs = [Config.model_validate(d) for _, d in members]
        results = train_population(configs) if len(configs) > 1 else [train(configs[0])]
        wall = (time.perf_counter() - t0) / len(members)
        threads = blas_threads()
        return [
            (index, True, Trained(r, result_files(r), wall, started, len(members), threads))
            for (index, _), r in zip(members, results)
        ]
    except Exception:  # noqa: BLE001
        if len(members) == 1:
            return [(members[0][0], False, traceback.format_exc())]
        return [reply for m in members for reply in train_group([m])]


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
        # the best and the worst members trained without plots: (rank value, index, result)
        self.extremes: dict[str, tuple[float, int, RunResult]] = {}

    def add(self, group: Sequence[Member]) -> None:
        """Queue one training group."""
        self.tasks.append(TrainTask(tuple(group)))
        self.untrained.update(i for i, _ in group)

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def pop(self) -> tuple[Task, list[Event]]:
        """The next task, and a Started event for each member that starts with it."""
        task = self.tasks.popleft()
        fresh = []
        if isinstance(task, TrainTask):  # a member put back alone has started already
            fresh = [i for i, _ in task.members if i not in self.open]
        self.open.update(fresh)
        return task, [Started(i) for i in fresh]

    def unpop(self, task: Task, events: list[Event]) -> None:
        """Put back a task that never reached a worker."""
        self.tasks.appendleft(task)
        self.open.difference_update(e.index for e in events)

    def finish(self, task: Task, replies: list[Reply]) -> list[Event]:
        events: list[Event] = []
        for index, ok, payload in replies:
            if isinstance(task, RenderTask) and task.late:
                events.append(Drawn(index, payload if ok else {}))
            elif not ok:
                self.trained.pop(index, None)
                self.untrained.discard(index)
                events.append(self._close(Failed(index, payload)))
            elif isinstance(task, RenderTask):
                trained = self.trained.pop(index)
                events.append(self._close(Done(index, self._output(trained, payload))))
            else:
                self.untrained.discard(index)
                result = payload.result
                wants = result.config.plots.enabled and result.status != "interrupted"
                if wants and (self.eager is None or index in self.eager):
                    self.trained[index] = payload
                    self.tasks.appendleft(RenderTask(index, result))  # before new training
                    continue
                if wants:
                    self._consider(index, result)
                self.interrupted |= result.status == "interrupted"
                events.append(self._close(Done(index, self._output(payload, {}))))
        self._draw_extremes()
        return events

    def _draw_extremes(self) -> None:
        """Once every member is trained, queue the drawing of the best and the worst."""
        if self.untrained or not self.extremes or self.interrupted:
            return
        for index, result in {i: r for _, i, r in self.extremes.values()}.items():
            self.tasks.append(RenderTask(index, result, late=True))
        self.extremes.clear()

    def _consider(self, index: int, result: RunResult) -> None:
        """Keep ``result`` if it is the best or the worst so far (ties: the lower index)."""
        v = _rank_value(result)
        best, worst = self.extremes.get("best"), self.extremes.get("worst")
        if best is None or v < best[0]:
            self.extremes["best"] = (v, index, result)
        if worst is None or v > worst[0]:
            self.extremes["worst"] = (v, index, result)

    def lost(self, task: Task, how: str) -> list[Event]:
        """The worker running ``task`` died: a group's members go again alone; one member fails."""
        if isinstance(task, RenderTask) and task.late:
            return [Drawn(task.index, {})]
        if isinstance(task, RenderTask):
            self.trained.pop(task.index, None)
            msg = f"worker process died ({how}) while drawing this member's plots\n"
            return [self._close(Failed(task.index, msg))]
        if len(task.members) > 1:
            for m in reversed(task.members):
                self.tasks.appendleft(TrainTask((m,)))
            return []
        msg = f"worker process died ({how}) while running this member\n"
        self.untrained.discard(task.members[0][0])
        self._draw_extremes()
        return [self._close(Failed(task.members[0][0], msg))]

    def _close(self, event: Done | Failed) -> Event:
        self.open.discard(event.index)
        return event

    @staticmethod
    def _output(t: Trained, plots: dict[str, bytes]) -> MemberOutput:
        return MemberOutput(
            t.result, t.files, plots, t.wall_s, t.started_at, t.group_size, t.blas_threads
        )


def _worker_setup() -> None:
    """One BLAS thread per worker, so --jobs N uses N cores, not N x cores; no allocator churn."""
    keep_freed_memory()
    pin_blas(1)


# --- in process ---------------------------------------------------------------------------------


@dataclass
class Serial:
    """Every task in this process, one after another."""

    queue: TaskQueue

    def running(self) -> list[int]:
        return sorted(self.queue.open)

    def run(self) -> Iterator[Event]:
        keep_freed_memory()
        while self.queue:
            task, events = self.queue.pop()
            yield from events
            yield from self.queue.finish(task, work(task))
            if self.queue.interrupted:  # Ctrl-C inside training: keep what came back, then stop
                raise KeyboardInterrupt

    def close(self) -> None:
        pass


# --- local worker processes ---------------------------------------------------------------------


def _worker_main(conn: Connection) -> None:
    # Ctrl-C and SIGTERM are the driver's to handle (a terminal or a scheduler may signal the whole
    # process group): it marks running members interrupted, keeps what finished, then kills us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _worker_setup()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        replies = work(task)
        try:
            conn.send(replies)
        except Exception:  # noqa: BLE001 - e.g. an unpicklable result
            tb = traceback.format_exc()
            conn.send([(index, False, tb) for index, _, _ in replies])


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    task: Task | None = None


@dataclass
class LocalPool:
    """Up to ``jobs`` worker processes, each running one task at a time."""

    queue: TaskQueue
    jobs: int
    workers: list[_Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        methods = mp.get_all_start_methods()
        self.ctx: Any = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            # the same modules as proc.start_forkserver's, if it started the server already
            self.ctx.set_forkserver_preload(WORKER_MODULES)

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker_main, args=(child,), daemon=True)
        proc.start()
        child.close()
        w = _Worker(proc, parent)
        self.workers.append(w)
        return w

    def running(self) -> list[int]:
        return sorted(self.queue.open)

    def run(self) -> Iterator[Event]:
        while True:
            while self.queue:
                idle = [w for w in self.workers if w.task is None]
                if not idle and len(self.workers) < self.jobs:
                    idle = [self._spawn()]
                if not idle:
                    break
                w = idle[0]
                task, events = self.queue.pop()
                try:
                    w.conn.send(task)
                except OSError:  # it died while idle: drop it, the task waits for another
                    self.queue.unpop(task, events)
                    self._lost(w)
                    continue
                w.task = task
                yield from events
            busy = [w for w in self.workers if w.task is not None]
            if not busy:
                return
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for w in busy:
                if w.conn in ready or (w.proc.sentinel in ready and w.conn.poll()):
                    try:
                        replies = w.conn.recv()
                    except (EOFError, OSError):
                        yield from self._lost(w)
                        continue
                    assert w.task is not None  # only busy workers are waited on
                    task, w.task = w.task, None
                    yield from self.queue.finish(task, replies)
                elif w.proc.sentinel in ready:
                    yield from self._lost(w)

    def _lost(self, w: _Worker) -> list[Event]:
        """A worker died mid-task; it is dropped (a new one starts when there is work)."""
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        self.workers.remove(w)
        w.conn.close()
        return self.queue.lost(w.task, how) if w.task is not None else []

    def close(self) -> None:
        for w in self.workers:
            if w.proc.is_alive():
                if w.task is None:
                    try:
                        w.conn.send(None)
                    except OSError:
                        pass
                else:
                    w.proc.kill()  # it ignores SIGTERM; its member is marked interrupted
        for w in self.workers:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)
            w.conn.close()
        self.workers.clear()


# --- Dask ---------------------------------------------------------------------------------------


@dataclass
class DaskPool:
    """Tasks on a Dask distributed cluster: ``scheduler``, or a LocalCluster of ``jobs``."""

    queue: TaskQueue
    jobs: int
    scheduler: str | None = None
    client: Any = None
    cluster: Any = None

    def __post_init__(self) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise XorlabError(
                "Dask is not installed; install it with: pip install 'xorlab[dask]'",
                key="--executor dask",
            ) from None
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise XorlabError(
                    f"cannot reach the Dask scheduler at {self.scheduler}: {exc}",
                    key="--scheduler",
                ) from None
        else:
            self.cluster = LocalCluster(
                n_workers=self.jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            self.client = Client(self.cluster)
        self.client.run(_worker_setup)

    def running(self) -> list[int]:
        return sorted(self.queue.open)

    def run(self) -> Iterator[Event]:
        from dask.distributed import as_completed

        token = os.urandom(4).hex()
        tasks: dict[Any, Task] = {}
        done = as_completed()
        n = 0

        def submit() -> Iterator[Event]:
            nonlocal n
            while self.queue:
                task, events = self.queue.pop()
                fut = self.client.submit(work, task, key=f"xorlab-{token}-{n}", pure=False)
                n += 1
                tasks[fut] = task
                done.add(fut)
                yield from events

        yield from submit()
        for fut in done:
            task = tasks.pop(fut)
            try:
                replies = fut.result()
            except Exception:  # noqa: BLE001 - e.g. KilledWorker
                yield from self.queue.lost(task, traceback.format_exc().strip().splitlines()[-1])
            else:
                yield from self.queue.finish(task, replies)
            yield from submit()

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
