"""Where sweep members run: in this process, in local worker processes, or on a Dask cluster.

Workers compute and return results; they never write files (a cluster needs no shared disk).
Every executor yields the same events, so the sweep driver does not care which one runs:
``Started(index)``, ``Done(index, output)``, ``Failed(index, error_text)``.

The local pool is hand-made rather than ``concurrent.futures``: there, one killed worker breaks
the pool and fails every pending future. Here each worker runs one member at a time, so a dead
worker costs exactly the member it was running; it is replaced and the rest go on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .config import Config
from .errors import XorlabError
from .rundir import now_iso
from .train import RunResult, train


@dataclass
class MemberOutput:
    result: RunResult
    plots: dict[str, bytes]  # file name -> bytes, rendered in the worker
    wall_s: float
    started_at: str


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


Event = Started | Done | Failed


def run_member(cfg_dict: dict[str, Any]) -> MemberOutput:
    """Train one member from its resolved config and render its plots; runs in a worker."""
    cfg = Config.model_validate(cfg_dict)
    started = now_iso()
    t0 = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - t0
    plots: dict[str, bytes] = {}
    if cfg.plots.enabled:
        from .plots import render_run_bytes

        plots = render_run_bytes(result, gif=cfg.plots.gif_frames > 1)
    return MemberOutput(result=result, plots=plots, wall_s=wall, started_at=started)


def _pin_blas() -> None:
    """One BLAS thread per worker, so --jobs N uses N cores, not N x cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return
    threadpool_limits(1)


# --- in process ---------------------------------------------------------------------------------


def run_serial(tasks: list[tuple[int, dict[str, Any]]]) -> Iterator[Event]:
    for index, cfg_dict in tasks:
        yield Started(index)
        try:
            out = run_member(cfg_dict)
        except Exception:  # noqa: BLE001 - a member's failure is recorded, not raised
            yield Failed(index, traceback.format_exc())
            continue
        yield Done(index, out)
        if out.result.status == "interrupted":  # Ctrl-C inside train(): keep it, then stop
            raise KeyboardInterrupt


# --- local worker processes ---------------------------------------------------------------------


def _worker_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _pin_blas()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, cfg_dict = msg
        try:
            out: tuple[int, bool, Any] = (index, True, run_member(cfg_dict))
        except Exception:  # noqa: BLE001
            out = (index, False, traceback.format_exc())
        try:
            conn.send(out)
        except Exception:  # noqa: BLE001 - e.g. an unpicklable result
            conn.send((index, False, traceback.format_exc()))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    index: int | None = None  # the member it is running


@dataclass
class LocalPool:
    """``jobs`` worker processes, each running one member at a time."""

    jobs: int
    workers: list[_Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        methods = mp.get_all_start_methods()
        self.ctx: Any = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self.ctx.set_forkserver_preload(["xorlab.executors"])

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker_main, args=(child,), daemon=True)
        proc.start()
        child.close()
        w = _Worker(proc, parent)
        self.workers.append(w)
        return w

    def running(self) -> list[int]:
        return [w.index for w in self.workers if w.index is not None]

    def run(self, tasks: list[tuple[int, dict[str, Any]]]) -> Iterator[Event]:
        pending = deque(tasks)
        for _ in range(min(self.jobs, len(tasks))):
            self._spawn()
        while pending or self.running():
            for w in self.workers:
                if w.index is None and pending:
                    index, cfg_dict = pending.popleft()
                    w.index = index
                    w.conn.send((index, cfg_dict))
                    yield Started(index)
            busy = [w for w in self.workers if w.index is not None]
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for w in busy:
                if w.conn in ready or (w.proc.sentinel in ready and w.conn.poll()):
                    try:
                        index, ok, payload = w.conn.recv()
                    except (EOFError, OSError):
                        yield from self._lost(w)
                        continue
                    w.index = None
                    yield Done(index, payload) if ok else Failed(index, payload)
                elif w.proc.sentinel in ready:
                    yield from self._lost(w)

    def _lost(self, w: _Worker) -> Iterator[Event]:
        """A worker died mid-member: that member failed; a new worker takes its place."""
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        index = w.index
        self.workers.remove(w)
        w.conn.close()
        self._spawn()
        if index is not None:
            yield Failed(index, f"worker process died ({how}) while running this member\n")

    def close(self) -> None:
        for w in self.workers:
            if w.proc.is_alive():
                if w.index is None:
                    try:
                        w.conn.send(None)
                    except OSError:
                        pass
                else:
                    w.proc.terminate()
        for w in self.workers:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)
            w.conn.close()
        self.workers.clear()


# --- Dask ---------------------------------------------------------------------------------------


def _dask_worker_setup() -> None:
    _pin_blas()


@dataclass
class DaskPool:
    """Members as tasks on a Dask distributed cluster: ``scheduler`` or a LocalCluster."""

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
        self.client.run(_dask_worker_setup)
        self._running: set[int] = set()

    def running(self) -> list[int]:
        return sorted(self._running)

    def run(self, tasks: list[tuple[int, dict[str, Any]]]) -> Iterator[Event]:
        from dask.distributed import as_completed

        token = os.urandom(4).hex()
        futures = {}
        for index, cfg_dict in tasks:
            fut = self.client.submit(
                run_member, cfg_dict, key=f"xorlab-{token}-{index}", pure=False
            )
            futures[fut] = index
            self._running.add(index)
            yield Started(index)
        for fut in as_completed(futures):
            index = futures[fut]
            self._running.discard(index)
            try:
                yield Done(index, fut.result())
            except Exception:  # noqa: BLE001 - includes KilledWorker
                yield Failed(index, traceback.format_exc())

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
