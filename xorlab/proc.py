"""Process-wide settings for fast training: BLAS threads and how malloc keeps freed memory.

The shell decides them (the CLI's entry point, sweep workers); the trainer never does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

WORKER_MODULES = ["xorlab.pools"]  # what a forkserver imports once for all its workers


def start_forkserver() -> bool:
    """Start multiprocessing's fork server now, if the platform has one; False if not.

    The server imports WORKER_MODULES (numpy, pandas, pydantic: ~0.4 s) once, and every worker
    is then forked from it ready to work. Started before the driver's own imports and the sweep's
    validation, that import runs beside them, on another core, instead of after them. It writes
    nothing, and exits with this process.
    """
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(WORKER_MODULES)
    forkserver.ensure_running()
    return True


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; False where that is not possible.

    Training allocates the same few arrays every step. From about 128 KiB (e.g. 2000 rows x 50
    hidden units, or a stack of 10 networks of 300 x 50) glibc serves them with mmap, or trims
    them off the heap, and gives them back to the kernel on free, so every step page-faults them
    in again. Measured on a 2-core machine: 500 steps of 2000 rows x 50 hidden took 1.1 s (0.35 s
    of it system time, 180k minor page faults) by default and 0.6 s (0.0 s, 700 faults) with
    this; 10 stacked networks of 50 hidden ~1.6x faster per step. (-3, -1, -2 are glibc's
    M_MMAP_THRESHOLD, M_TRIM_THRESHOLD and M_TOP_PAD.)
    """
    import ctypes
    import ctypes.util

    try:  # glibc's soname first: find_library runs ldconfig (~15 ms of every start-up)
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        libc = None
    try:
        libc = libc or ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    settings = ((-3, 32 << 20), (-1, 1 << 30), (-2, 64 << 20))
    return all(mallopt(param, value) == 1 for param, value in settings)


def pin_blas(threads: int) -> None:
    """Limit every BLAS library in this process to ``threads`` threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return
    threadpool_limits(threads)


def blas_threads() -> int | None:
    """The most threads any BLAS library of this process may use (None: unknown)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
               default=None)  # fmt: skip


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Within the block, BLAS uses one thread (as it was after). For the small matrix products
    of drawing, where a second OpenBLAS thread only spins: one run's plots took the same wall
    time with one thread as with two, and 0.85 s of CPU instead of 1.3 s."""
    controller = _controller()
    if controller is None:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return ThreadpoolController()


# --- SIGTERM, handled as Ctrl-C is ------------------------------------------------------------

_terminated: list[int] = []  # the SIGTERMs this process received


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler, a container or systemd stopping the job), raised where Ctrl-C's
    KeyboardInterrupt would be, so the same code keeps what finished and marks the rest
    ``interrupted``."""


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises ``Terminated`` in the main thread, as SIGINT raises
    KeyboardInterrupt; ``interrupt_exit_code`` then says 143 instead of 130."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        _terminated.append(signum)
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def interrupt_exit_code() -> int:
    """130 after Ctrl-C, 143 (128 + SIGTERM) after a SIGTERM."""
    return 143 if _terminated else 130
