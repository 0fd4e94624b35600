"""The sweep store (DESIGN.md section 3): how a sweep keeps its members, writing and reading.

    <sweep>/
      metrics/<part>.parquet   every per-step metric of a part's finished members: ``member``
                               (summary.csv's index), then a run's metrics.csv columns, the same
                               float64 and int64 values; each part carries the sweep's union of
                               columns (null where a member has none), so any reader sees one table
      weights/<part>.npz       ``members`` (K,), ``init/W1`` (K, fan_in, fan_out), ``final/W1``, ...
      data/<key>.npz           each distinct data set once (key: a hash of the data config)
      records/<part>.json      each member's summary; written last, it marks the members finished
      members/<NNN-label>/     only for members with something of their own to show (plots, an
                               error): config.yaml, summary.json, plots/, error.txt
      attempts/                what a resume set aside: earlier attempts of members it runs again

A *part* is one finished training task: a group of members trained as one stack, or a solo
member. The worker encodes its bytes (``encode_part``: Parquet and npz, in the worker process);
the driver writes them (``SweepStore.write_part``), syncs them to disk and only then writes the
record. Members that failed or were interrupted get a record entry but no metrics rows, so a
resume, which runs exactly the members without a finished entry, never stores a member twice.

Readers go through ``members``: ``read_metrics(sweep)`` is the whole table, ``open_sweep(sweep)``
each member as the shapes a run folder gives (config, summary, metrics, parameters, data). The
bytes of a part are encoded in ``parts``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import zipfile
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import Config
from .data import Dataset
from .parts import NULLABLE_INT_COLUMNS, Params, Part, parquet_bytes
from .rundir import (
    FINISHED,
    _json_safe,
    atomic_write_bytes,
    fsync_dir,
    npz_bytes,
    read_json,
    write_json,
)

METRICS, WEIGHTS, DATA, RECORDS, MEMBERS, ATTEMPTS = (
    "metrics",
    "weights",
    "data",
    "records",
    "members",
    "attempts",
)
# record entry keys that are the store's, not a run's summary.json
ENTRY_ONLY = ("part", "data", "started_at", "group_size", "blas_threads", "final_data_loss",
              "columns")  # fmt: skip
# what reading a damaged .npz (or Parquet footer) raises: empty -> EOFError, cut -> BadZipFile
NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


class SweepStore:
    """A sweep folder's store: the driver writes through it, every reader reads through it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries: dict[int, dict[str, Any]] | None = None

    # --- writing (the driver) -------------------------------------------------------------------

    def new_part_id(self, first: int) -> str:
        return f"{first:06d}-{secrets.token_hex(3)}"

    def write_data(self, key: str, data: Dataset) -> None:
        """data/<key>.npz, unless it is there already. One that cannot be read (cut short,
        overwritten) goes to attempts/ and is written again: a data set is a pure function of
        its config, so this gives the bytes the sweep wrote first."""
        path = self.path / DATA / f"{key}.npz"
        if path.exists():
            try:
                if {"X_train", "y_train", "X_test", "y_test"} <= set(_npz(path)):
                    return
            except NPZ_ERRORS:
                pass
            self._set_aside(path)
        path.parent.mkdir(exist_ok=True)
        arrays = {"X_train": data.X_train, "y_train": data.y_train, "X_test": data.X_test,
                  "y_test": data.y_test}  # fmt: skip
        atomic_write_bytes(path, npz_bytes(arrays), sync=True)
        fsync_dir(path.parent)

    def write_part(self, part_id: str, part: Part) -> None:
        """The part's metrics and weights (synced), then its record: the members are finished."""
        written = []
        for sub, data, ext in ((METRICS, part.metrics, "parquet"), (WEIGHTS, part.weights, "npz")):
            if data is None:
                continue
            folder = self.path / sub
            folder.mkdir(exist_ok=True)
            atomic_write_bytes(folder / f"{part_id}.{ext}", data, sync=True)
            written.append(folder)
        for folder in written:
            fsync_dir(folder)
        self.write_record(part_id, part.entries, columns=part.columns, stored=bool(written))

    def write_record(
        self,
        part_id: str,
        entries: dict[int, dict[str, Any]],
        *,
        columns: Sequence[str] = (),
        stored: bool = False,
    ) -> None:
        """records/<part_id>.json (synced): each member's entry, with the part it lives in."""
        folder = self.path / RECORDS
        folder.mkdir(exist_ok=True)
        doc = {
            "part": part_id,
            "stored": stored,  # metrics/<part>.parquet and weights/<part>.npz exist
            "columns": list(columns),
            "members": {str(i): e for i, e in sorted(entries.items())},
        }
        # compact: json's C encoder (indent= falls back to the pure-Python one, 10x slower, and
        # the driver writes one record per part while the workers wait for nothing else)
        text = json.dumps(_json_safe(doc), separators=(",", ":"), allow_nan=False)
        atomic_write_bytes(folder / f"{part_id}.json", text.encode("utf-8"), sync=True)
        fsync_dir(folder)
        if self._entries is not None:
            shared = list(columns)  # one list for the part's members
            for i, e in entries.items():
                self._remember(self._entries, i, {**e, "part": part_id}, stored, shared)

    # --- reading --------------------------------------------------------------------------------

    def records(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Every readable record, oldest first (unreadable ones are left out), read one at a
        time (100,000 members' records at once would be 200 MB)."""
        folder = self.path / RECORDS
        try:
            paths = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        except OSError:
            return
        for p in paths:
            try:
                doc = read_json(p)
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("members"), dict):
                yield p, doc

    def entries(self) -> dict[int, dict[str, Any]]:
        """Member index -> its record entry (with ``part``): a finished one wins, else the
        latest. Read once, then kept up to date by this object's own writes."""
        if self._entries is None:
            entries: dict[int, dict[str, Any]] = {}
            for _, doc in self.records():
                for key, e in doc["members"].items():
                    if not (isinstance(e, dict) and str(key).isdigit()):
                        continue
                    entry = e  # the document is read for this alone: no copy
                    entry["part"] = doc.get("part")
                    stored, columns = bool(doc.get("stored")), doc.get("columns") or []
                    self._remember(entries, int(key), entry, stored, columns)
            self._entries = entries
        return self._entries

    @staticmethod
    def _remember(
        entries: dict[int, dict[str, Any]],
        index: int,
        entry: dict[str, Any],
        stored: bool,
        columns: Sequence[str],
    ) -> None:
        old = entries.get(index)
        if old is not None and old.get("status") in FINISHED:
            return  # a finished member is never replaced (it is never run again)
        if entry.get("status") in FINISHED and stored:
            entry.setdefault("columns", columns)  # the record's list, shared by its members
        for k, v in entry.items():  # status, part, data, started_at: one string for all members
            if isinstance(v, str):
                entry[k] = sys.intern(v)
        entries[index] = entry

    def entry(self, index: int) -> dict[str, Any] | None:
        return self.entries().get(index)

    def metrics(self, index: int, cfg: Config | None = None) -> pd.DataFrame:
        """A member's metrics, equal (values, dtypes, column order) to its metrics.csv."""
        e = self.entry(index)
        if e is None or e.get("status") not in FINISHED:
            return pd.DataFrame({"step": pd.Series([], dtype=np.int64)})
        table = _part_table(self.path / METRICS / f"{e['part']}.parquet")
        cols = e.get("columns") or [c for c in table.column_names if c != "member"]
        lo, hi = _member_rows(table, index)
        piece = table.slice(lo, hi - lo).select(list(cols))
        return pd.DataFrame({c: _column(piece.column(c), c) for c in cols})

    def params(self, index: int) -> tuple[Params, Params]:
        e = self.entry(index)
        if e is None or e.get("status") not in FINISHED:
            raise KeyError(f"member {index} has no stored weights")
        arrays = _npz(self.path / WEIGHTS / f"{e['part']}.npz")
        where = np.flatnonzero(arrays["members"] == index)
        if not where.size:
            raise KeyError(f"member {index} is not in weights/{e['part']}.npz")
        k = int(where[0])
        init = {n[5:]: np.ascontiguousarray(a[k]) for n, a in arrays.items() if n[:5] == "init/"}
        final = {n[6:]: np.ascontiguousarray(a[k]) for n, a in arrays.items() if n[:6] == "final/"}
        return init, final

    def data(self, key: str) -> Dataset:
        d = _npz(self.path / DATA / f"{key}.npz")
        return Dataset(d["X_train"], d["y_train"], d["X_test"], d["y_test"])

    def member_folders(self) -> set[str]:
        """The labels of the members that have a folder of their own."""
        try:
            return {e.name for e in os.scandir(self.path / MEMBERS) if e.is_dir()}
        except OSError:
            return set()

    # --- resume ---------------------------------------------------------------------------------

    def prepare_resume(self) -> list[Path]:
        """Before a resume: move to attempts/ every record, part file and entry of a member that is
        not finished, so the store then holds finished members only (each once). Returns what
        was moved."""
        moved: list[Path] = []
        kept_parts = set()
        for path, doc in self.records():
            members = doc["members"]
            done = {k: e for k, e in members.items() if isinstance(e, dict)
                    and e.get("status") in FINISHED}  # fmt: skip
            part = str(doc.get("part"))
            rows = self._part_members(part) if doc.get("stored") else set()
            if rows is None:  # its files cannot be read: no result to keep, its members run again
                done, rows = {}, set()
            if len(done) == len(members) and rows <= {int(k) for k in done}:
                kept_parts.add(part)
                continue
            moved.append(self._set_aside(path, copy=bool(done)))
            if done:  # keep the finished members' entries and rows, only theirs
                kept_parts.add(part)
                if rows:
                    moved += self._keep_rows(part, {int(k) for k in done})
                write_json(path, {**doc, "members": done}, sync=True)
        for sub in (METRICS, WEIGHTS):  # parts without a record: written, never marked finished
            folder = self.path / sub
            for p in sorted(folder.glob("*")) if folder.is_dir() else []:
                if p.name.startswith("."):
                    p.unlink(missing_ok=True)  # a temp file of a write cut short
                elif p.name.split(".")[0] not in kept_parts:
                    moved.append(self._set_aside(p))
        if moved:
            fsync_dir(self.path / RECORDS)
        self._entries = None
        _part_table.cache_clear()
        return moved

    def _part_members(self, part: str) -> set[int] | None:
        """The members whose weights (and so rows) a part holds; None when its weights or its
        metrics' footer cannot be read (missing, cut short, overwritten)."""
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(self.path / METRICS / f"{part}.parquet")
            with np.load(self.path / WEIGHTS / f"{part}.npz", allow_pickle=False) as z:
                return {int(i) for i in z["members"]}
        except (*NPZ_ERRORS, KeyError):
            return None

    def _keep_rows(self, part: str, keep: set[int]) -> list[Path]:
        """Rewrite a part's files with only ``keep``'s rows and weights (originals set aside)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        moved = []
        metrics = self.path / METRICS / f"{part}.parquet"
        weights = self.path / WEIGHTS / f"{part}.npz"
        table = pq.read_table(metrics)
        mask = np.isin(table.column("member").to_numpy(), sorted(keep))
        arrays = _npz(weights)
        rows = np.isin(arrays["members"], sorted(keep))  # (K,)
        kept = {k: a[rows] for k, a in arrays.items()}
        data_ = parquet_bytes(table.filter(pa.array(mask)))
        for path, data in ((metrics, data_), (weights, npz_bytes(kept))):
            moved.append(self._set_aside(path, copy=True))
            atomic_write_bytes(path, data, sync=True)
            fsync_dir(path.parent)
        _part_table.cache_clear()
        return moved

    def _set_aside(self, path: Path, *, copy: bool = False) -> Path:
        """Move (or copy) ``path`` to the same place under attempts/."""
        dst = self.path / ATTEMPTS / path.relative_to(self.path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            dst = dst.with_name(f"{dst.name}.{secrets.token_hex(3)}")
        if copy:
            atomic_write_bytes(dst, path.read_bytes(), sync=True)
        else:
            os.replace(path, dst)
        return dst


def _column(values: Any, name: str) -> Any:
    """A Parquet column as metrics_frame makes it: int64, pandas Int64 or float64."""
    if name in NULLABLE_INT_COLUMNS:
        missing = values.is_null().to_numpy(zero_copy_only=False)
        ints = values.fill_null(0).to_numpy().astype(np.int64)
        return pd.arrays.IntegerArray(ints, missing)
    return values.to_numpy()


def _member_rows(table: Any, index: int) -> tuple[int, int]:
    """The row range of ``index`` in a part (its rows are contiguous)."""
    members = table.column("member").to_numpy()
    hits = np.flatnonzero(members == index)
    if not hits.size:
        return 0, 0
    return int(hits[0]), int(hits[-1]) + 1


@lru_cache(maxsize=4)
def _part_table(path: Path) -> Any:
    """A part's Parquet table (a few kept: a reader goes member by member, part by part)."""
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
