"""The pools that empty a ``TaskQueue`` (``executors``): in this process (``Serial``), in local
worker processes (``LocalPool``), or on a Dask cluster (``DaskPool``). Each yields the queue's
events as tasks come back; a worker that dies costs only what the queue's ``lost`` says.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .errors import XorlabError
from .executors import PART, Event, Task, TaskQueue, _worker_setup, work
from .proc import WORKER_MODULES, keep_freed_memory

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
            conn.send([(index, False, tb) for index, _, _ in replies if index != PART])


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
        yield from self._hand_out()
        while True:
            busy = [w for w in self.workers if w.task is not None]
            if not busy:
                return
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            events: list[Event] = []
            for w in busy:
                if w.conn in ready or (w.proc.sentinel in ready and w.conn.poll()):
                    try:
                        replies = w.conn.recv()
                    except (EOFError, OSError):
                        events += self._lost(w)
                        continue
                    assert w.task is not None  # only busy workers are waited on
                    task, w.task = w.task, None
                    events += self.queue.finish(task, replies)
                elif w.proc.sentinel in ready:
                    events += self._lost(w)
            # the idle workers get their next task before the driver writes what came back
            # (parts are synced to disk: milliseconds a worker would otherwise wait)
            yield from self._hand_out()
            yield from events

    def _hand_out(self) -> Iterator[Event]:
        """Give each idle worker (starting new ones up to ``jobs``) a task while there are any."""
        while self.queue:
            idle = [w for w in self.workers if w.task is None]
            if not idle and len(self.workers) < self.jobs:
                idle = [self._spawn()]
            if not idle:
                return
            w = idle[0]
            task, started = self.queue.pop()
            try:
                w.conn.send(task)
            except OSError:  # it died while idle: drop it, the task waits for another
                self.queue.unpop(task, started)
                yield from self._lost(w)
                continue
            w.task = task
            yield from started

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
