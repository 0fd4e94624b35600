"""The run folder on disk (DESIGN.md section 3). This module alone names folders and writes files.

    runs/<YYYYMMDD-HHMMSS>-<name>-<short id>/
      config.yaml  meta.json  metrics.csv  summary.json  data.npz  init.npz  final.npz  plots/

Every file is written atomically (a temp file in the same folder, then ``os.replace``), so a
reader never sees half a file. A folder is created with ``os.mkdir`` and a random short id, so
two runs started in the same second, in one process or many, never share one.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import platform
import secrets
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__

UNFINISHED = ("interrupted", "failed")
FINISHED = ("completed", "diverged", "stopped_early", "pruned")  # a resume never reruns these


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


# --- atomic writes ------------------------------------------------------------------------------


def atomic_write_bytes(path: str | Path, data: bytes, *, sync: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    The file gets the mode any program's new files get (0o666 less the umask: 0o644 under umask
    022), not mkstemp's 0o600. ``sync`` flushes it to disk (fsync) before the rename, for files
    that must be whole before a record says they are done; the folder itself is synced by
    ``fsync_dir``.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temp file beside {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def fsync_dir(path: str | Path) -> None:
    """Make the folder's entries (new files, renames) durable; a no-op where folders can't be
    opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: nothing more can be done
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str, *, sync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


def _json_safe(obj: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN); numpy scalars become Python ones."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | Path, obj: Any, *, sync: bool = False) -> Path:
    return atomic_write_text(path, json.dumps(_json_safe(obj), indent=2) + "\n", sync=sync)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def csv_text(df: pd.DataFrame) -> str:
    """CSV with floats written by repr (shortest round-trip), so equal runs give equal bytes.

    A table of only float64 and int64 columns (a run's metrics) is written here, column by
    column, the same bytes as ``DataFrame.to_csv`` gives (NaN as an empty field) in about 40 % of
    its time; anything else goes to pandas.
    """
    simple = all(dt in (np.float64, np.int64) for dt in df.dtypes)
    names = [str(c) for c in df.columns]
    if not simple or not len(df.columns) or any(_needs_quotes(n) for n in names):
        return df.to_csv(index=False, lineterminator="\n")
    columns = []
    for _, col in df.items():
        values = col.to_numpy().tolist()
        if col.dtype == np.float64:
            columns.append([repr(v) if v == v else "" for v in values])  # v != v: NaN
        else:
            columns.append(list(map(str, values)))
    lines = [",".join(names), *map(",".join, zip(*columns))]
    return "\n".join(lines) + "\n"


def _needs_quotes(field: str) -> bool:
    return any(c in field for c in ',"\n\r') or field == ""


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    return atomic_write_bytes(path, npz_bytes(arrays))


def write_csv(path: str | Path, df: pd.DataFrame) -> Path:
    return atomic_write_text(path, csv_text(df))


def result_files(result: Any) -> dict[str, bytes]:
    """A run's result files as bytes: data.npz, init.npz, final.npz, metrics.csv.

    Pure, so a sweep worker can encode them (the costly part: floats to text) and the driver
    only writes bytes."""
    d = result.data
    data = {"X_train": d.X_train, "y_train": d.y_train, "X_test": d.X_test, "y_test": d.y_test}
    return {
        "data.npz": npz_bytes(data),
        "init.npz": npz_bytes(param_arrays(result.init_params)),
        "final.npz": npz_bytes(param_arrays(result.final_params)),
        "metrics.csv": csv_text(result.metrics).encode("utf-8"),
    }


# --- folders ------------------------------------------------------------------------------------


def new_folder(parent: str | Path, name: str, *, stamp: str | None = None) -> Path:
    """Create ``parent/<YYYYMMDD-HHMMSS>-<name>-<short id>``; never an existing folder."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = stamp or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        path = parent / f"{stamp}-{name}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"could not create a new folder in {parent}")


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the working directory's git repository, if there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def meta(
    started_at: str,
    finished_at: str | None = None,
    argv: list[str] | None = None,
    **extra: Any,
) -> dict:
    """meta.json's content; ``extra`` adds keys."""
    return {
        "xorlab": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "command": list(sys.argv if argv is None else argv),
        "git_commit": git_commit(),
        "started_at": started_at,
        "finished_at": finished_at,
        **extra,
    }


def param_arrays(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Parameters in npz order: W1, b1, W2, b2, ..."""
    return dict(sorted(params.items(), key=lambda kv: (int(kv[0][1:]), kv[0][0] != "W")))


class RunFolder:
    """One run's folder; create it first, then write its parts as they become known."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunFolder:
        return cls(new_folder(runs_dir, name))

    @classmethod
    def at(cls, path: str | Path) -> RunFolder:
        """A folder at a given path (a sweep member's), created if needed."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        return cls(p)

    @property
    def plots_dir(self) -> Path:
        d = self.path / "plots"
        d.mkdir(exist_ok=True)
        return d

    def write_start(self, config_yaml: str, started_at: str, argv: list[str] | None = None) -> None:
        atomic_write_text(self.path / "config.yaml", config_yaml)
        write_json(self.path / "meta.json", meta(started_at, None, argv))

    def write_result(
        self,
        result: Any,
        *,
        started_at: str,
        wall_s: float,
        argv: list[str] | None = None,
        files: dict[str, bytes] | None = None,
        meta_extra: dict[str, Any] | None = None,
    ) -> None:
        """Everything but the plots; summary.json last, since its presence means 'finished'.

        Every file is on disk (fsynced, and the folder too) before summary.json is written, so a
        crash or power cut never leaves a run that says it finished with a file missing or cut.

        ``files`` are the result's files already encoded (``result_files``), as sweep workers
        send them; ``meta_extra`` adds keys to meta.json (a sweep member's ``group_size``: how
        many networks trained as one stack, and ``blas_threads``).
        """
        for name, data in (result_files(result) if files is None else files).items():
            atomic_write_bytes(self.path / name, data, sync=True)
        extra = meta_extra or {}
        write_json(self.path / "meta.json", meta(started_at, now_iso(), argv, **extra), sync=True)
        fsync_dir(self.path)  # config.yaml (written at the start) and the files above, whole
        write_json(self.path / "summary.json", summary(result, wall_s), sync=True)
        fsync_dir(self.path)

    def write_failure(self, error_text: str) -> None:
        """A member that raised or whose worker died: error.txt, then status ``failed``."""
        atomic_write_text(self.path / "error.txt", error_text, sync=True)
        lines = error_text.strip().splitlines()
        write_status(self.path, "failed", lines[-1] if lines else "")


def summary(result: Any, wall_s: float) -> dict[str, Any]:
    steps = result.steps_done
    return {
        "status": result.status,
        "steps_done": steps,
        "diverged_at": result.diverged_at,
        "final": result.final,
        "best": result.best,
        "wall_s": round(wall_s, 6),
        "steps_per_s": round(steps / wall_s, 3) if wall_s > 0 and steps else None,
    }


def read_status(run_dir: str | Path) -> str:
    """'completed' | 'diverged' | 'stopped_early' | 'interrupted' | 'failed' | 'unfinished'
    (no summary.json)."""
    p = Path(run_dir) / "summary.json"
    try:
        return str(read_json(p).get("status", "unfinished"))
    except (OSError, ValueError, AttributeError):
        return "unfinished"


# --- sweeps -------------------------------------------------------------------------------------


class SweepFolder:
    """``runs/<stamp>-<sweep>-<id>/`` with sweep.yaml, summary.csv and members/<label>/."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> SweepFolder:
        return cls(new_folder(runs_dir, name))

    @property
    def sweep_yaml(self) -> Path:
        return self.path / "sweep.yaml"

    def member(self, label: str) -> RunFolder:
        return RunFolder.at(self.path / "members" / label)

    def member_path(self, label: str) -> Path:
        return self.path / "members" / label

    def write_sweep(self, text: str) -> None:
        atomic_write_text(self.sweep_yaml, text, sync=True)
        fsync_dir(self.path)

    def write_summary(self, df: pd.DataFrame) -> None:
        write_csv(self.path / "summary.csv", df)

    def set_aside(self, label: str) -> Path | None:
        """Move an unfinished member's folder to attempts/ before it runs again (resume)."""
        src = self.member_path(label)
        if not src.exists():
            return None
        attempts = self.path / "attempts"
        attempts.mkdir(exist_ok=True)
        for i in range(1, 10_000):
            dst = attempts / f"{label}.{i}"
            if not dst.exists():
                os.replace(src, dst)
                return dst
        raise RuntimeError(f"too many attempts of {label}")


def member_row_values(run_dir: Path) -> dict[str, Any]:
    """status, final metrics, diverged_at and wall_s from a member's summary.json."""
    try:
        s = read_json(run_dir / "summary.json")
        final = s.get("final") or {}
    except (OSError, ValueError, AttributeError):
        s, final = {"status": "unfinished" if run_dir.exists() else "pending"}, {}
    return {
        "status": s.get("status", "unfinished"),
        "final_loss": final.get("loss"),
        "final_train_acc": final.get("train_acc"),
        "final_test_acc": final.get("test_acc"),
        "diverged_at": s.get("diverged_at"),
        "wall_s": s.get("wall_s"),
    }


def write_status(run_dir: Path, status: str, note: str = "") -> None:
    """A summary.json for a run that produced no result (failed or interrupted)."""
    fsync_dir(run_dir)
    write_json(run_dir / "summary.json", no_result(status, note), sync=True)


def no_result(status: str, note: str = "") -> dict[str, Any]:
    """The summary of a run or member that produced no result (failed or interrupted)."""
    return {
        "status": status,
        "steps_done": 0,
        "diverged_at": None,
        "final": {"loss": None, "train_acc": None, "test_acc": None},
        "best": {"train_acc": None, "step": None},
        "wall_s": None,
        "steps_per_s": None,
        "note": note,
    }


def write_plots(plots_dir: Path, plots: dict[str, bytes]) -> None:
    if not plots:
        return
    plots_dir.mkdir(exist_ok=True)
    for name, data in plots.items():
        atomic_write_bytes(plots_dir / name, data)
