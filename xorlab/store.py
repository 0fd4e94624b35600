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

Readers go through here: ``read_metrics(sweep)`` is the whole table, ``SweepStore.member(i)``
one member as the shapes a run folder gives (config, summary, metrics, parameters, data).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import Config
from .data import Dataset
from .rundir import (
    FINISHED,
    _json_safe,
    atomic_write_bytes,
    fsync_dir,
    npz_bytes,
    param_arrays,
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
INT_COLUMNS = ("step", "epoch", "clipped")  # a run's integer metrics (int64)
NULLABLE_INT_COLUMNS = ("sharpness_iters",)  # integers, empty on some rows (pandas Int64)
# every other metric is float64
Params = dict[str, np.ndarray]
# what reading a damaged .npz (or Parquet footer) raises: empty -> EOFError, cut -> BadZipFile
NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


# --- keys and columns ---------------------------------------------------------------------------


def data_key(cfg: Config) -> str:
    """A member's data set's name in data/: a hash of what generates it (data config, dtype)."""
    text = json.dumps({"data": cfg.data.model_dump(), "dtype": cfg.model.dtype}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def member_columns(cfg: Config, has_test: bool) -> list[str]:
    """The metrics.csv columns of a member with this config."""
    from .train import metric_columns, net_spec

    tele = cfg.telemetry
    return metric_columns(net_spec(cfg), has_test, sharpness=tele.sharpness_every > 0,
                          activations=tele.activations)  # fmt: skip


def union_columns(column_lists: Iterable[Sequence[str]]) -> list[str]:
    """Every column of every list, in a run's order (step first, test_acc after train_acc)."""
    out: list[str] = []
    for cols in column_lists:
        for i, c in enumerate(cols):
            if c not in out:
                before = [x for x in cols[:i] if x in out]  # insert after its predecessor
                out.insert(out.index(before[-1]) + 1 if before else 0, c)
    return out


def final_data_loss(params: Params, data: Dataset, cfg: Config) -> float | None:
    """The loss without its penalty of ``params`` on the training rows: what a sweep ranks by
    (the total loss would rank the penalty, whose strength a sweep may vary). None when it is
    not a finite number or the weights do not fit the config."""
    import math

    from . import nn
    from .train import net_spec

    if data.X_train.shape[0] == 0:
        return None
    with np.errstate(all="ignore"):
        try:
            _, cache = nn.forward(params, data.X_train, net_spec(cfg))  # (N, C)
            value = float(nn.data_loss(cache, data.y_train, net_spec(cfg)))
        except (KeyError, ValueError):
            return None
    return value if math.isfinite(value) else None


# --- what a worker encodes ----------------------------------------------------------------------


@dataclass
class Part:
    """One finished training task, encoded in the worker: bytes for the driver to write."""

    members: list[int]  # indices with metrics rows and weights (completed or diverged)
    metrics: bytes | None  # Parquet; None when no member of the task finished
    weights: bytes | None  # npz
    columns: list[str]  # the metrics columns of the part's members
    entries: dict[int, dict[str, Any]]  # every member of the task that came back: its record


def summary_entry(result: Any, wall_s: float) -> dict[str, Any]:
    """A member's record entry from its RunResult (what summary.json holds for a run)."""
    from .rundir import summary

    return {**summary(result, wall_s), "data": data_key(result.config)}


def encode_part(results: Sequence[tuple[int, Any]], columns: Sequence[str]) -> tuple[
    bytes | None, bytes | None, list[int]
]:  # fmt: skip
    """Parquet bytes of the finished members' metrics (``columns``: the sweep's union, null where
    a member has none) and npz bytes of their parameters with a member axis; and their indices.

    Interrupted members are left out: a resume runs them again."""
    import pyarrow as pa

    done = [(i, r) for i, r in results if r.status in FINISHED]
    if not done:
        return None, None, []
    lengths = [len(r.metrics) for _, r in done]
    # a column the driver did not foresee is kept (this part's schema then differs), never lost
    columns = union_columns([columns, *(list(r.metrics.columns) for _, r in done)])
    total = sum(lengths)
    where = {c: j for j, c in enumerate(columns)}
    table = np.zeros((len(columns), total))  # column-major: each column one contiguous array
    missing = np.ones((len(columns), total), dtype=bool)  # null: no such column, or an empty int
    start = 0
    for (_, r), n in zip(done, lengths):
        # one conversion per member (not per column): ints are exact in float64 below 2**53
        block = r.metrics.to_numpy(dtype=np.float64, na_value=np.nan)  # (n, its columns)
        for j, col in enumerate(r.metrics.columns):
            c = where[col]
            table[c, start : start + n] = block[:, j]
            if col in INT_COLUMNS or col in NULLABLE_INT_COLUMNS:  # an empty field is null
                missing[c, start : start + n] = np.isnan(block[:, j])
            else:  # a float's NaN stays a NaN value
                missing[c, start : start + n] = False
        start += n
    arrays: dict[str, Any] = {
        "member": pa.array(np.repeat([i for i, _ in done], lengths).astype(np.int64))
    }
    for c, col in enumerate(columns):
        values, mask = table[c], missing[c]
        if col in INT_COLUMNS or col in NULLABLE_INT_COLUMNS:
            values = np.where(mask, 0.0, values).astype(np.int64)
        arrays[col] = pa.array(values, mask=mask if mask.any() else None)
    parquet = parquet_bytes(pa.table(arrays))
    stacked: dict[str, np.ndarray] = {"members": np.array([i for i, _ in done], dtype=np.int64)}
    for when in ("init", "final"):
        per_net = [param_arrays(getattr(r, f"{when}_params")) for _, r in done]
        for k in per_net[0]:
            stacked[f"{when}/{k}"] = np.stack([p[k] for p in per_net])  # (K, *shape)
    return parquet, npz_bytes(stacked), [i for i, _ in done]


def parquet_bytes(table: Any) -> bytes:
    """A part's Parquet file. Float columns are written BYTE_STREAM_SPLIT (the bytes of each
    significance together, which zstd compresses far better) without a dictionary (17-digit
    floats rarely repeat: a dictionary costs time and is dropped); the integer columns (member,
    step, epoch, clipped) keep theirs, where repeats make them nearly free. Measured on a part of
    58 members x 1000 rows x 15 columns: 3.1 MB in 9 ms, against 4.9 MB in 33 ms with the defaults.
    Every Parquet reader (pyarrow, pandas, DuckDB, polars) reads this encoding."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    others = [f.name for f in table.schema if f.name not in floats]
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=others,
                   use_byte_stream_split=floats or False)  # fmt: skip
    return buf.getvalue()


# --- the folder ---------------------------------------------------------------------------------


def is_sweep_folder(path: Path) -> bool:
    return (path / "sweep.yaml").is_file()


def member_ref(path: str | Path) -> tuple[Path, str] | None:
    """``<sweep>/members/NNN-...`` -> (the sweep folder, the member's label), whether or not the
    member's folder exists; None for any other path."""
    p = Path(path)
    if p.parent.name != MEMBERS or not is_sweep_folder(p.parent.parent):
        return None
    return p.parent.parent, p.name


@dataclass
class StoredMember:
    """One member as a run folder would give it (``metrics`` etc. read on demand)."""

    store: SweepStore
    index: int
    label: str
    config: Config
    entry: dict[str, Any] | None  # its record entry; None when it has none (not yet run)

    @property
    def status(self) -> str:
        return str(self.entry["status"]) if self.entry else "pending"

    @property
    def path(self) -> Path:
        """Where its folder is or would be: ``<sweep>/members/<label>``."""
        return self.store.path / MEMBERS / self.label

    @property
    def summary(self) -> dict[str, Any] | None:
        """summary.json's content (status, steps_done, diverged_at, final, best, wall_s, ...)."""
        if self.entry is None:
            return None
        return {k: v for k, v in self.entry.items() if k not in ENTRY_ONLY}

    def metrics(self) -> pd.DataFrame:
        """Exactly the metrics.csv a run of its config writes (empty frame when not finished)."""
        return self.store.metrics(self.index, self.config)

    def params(self) -> tuple[Params, Params]:
        """(initial, final) parameters; KeyError when it has none stored."""
        return self.store.params(self.index)

    def data(self) -> Dataset:
        return self.store.data(data_key(self.config))


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


def read_metrics(sweep_dir: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every member's metrics as one table (``member`` first), sorted by member and step; the
    schema is the union of the parts' (null, NaN in pandas, where a member has none).
    ``columns``: only these are read (one no part has comes back all NaN)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    folder = Path(sweep_dir) / METRICS
    files = sorted(str(p) for p in folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return pd.DataFrame({"member": pd.Series([], dtype=np.int64)})
    schemas = [ds.dataset(f, format="parquet").schema for f in files]
    dataset = ds.dataset(files, format="parquet", schema=pa.unify_schemas(schemas))
    have = set(dataset.schema.names)
    wanted = [c for c in columns if c in have] if columns else None
    df = dataset.to_table(columns=["member", *wanted] if wanted is not None else None).to_pandas()
    for c in columns or ():
        if c not in have:
            df[c] = np.nan
    return df.sort_values(["member", "step"] if "step" in df else ["member"],
                          kind="stable").reset_index(drop=True)  # fmt: skip


@dataclass
class Members:
    """A sweep's members for readers: the sweep (its configs, from sweep.yaml) and the store."""

    store: SweepStore
    sweep: Any  # sweep.Sweep
    by_label: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_label = {m.label: m.index for m in self.sweep.members}

    def __len__(self) -> int:
        return len(self.sweep.members)

    def get(self, index: int) -> StoredMember:
        """Member ``index``; a member a search pruned has the config of the run it is (its
        ``train.steps`` = its ``steps_done``), so every reader replays it as far as it went."""
        m = self.sweep.members[index]
        entry = self.store.entry(m.index)
        config = m.config
        if entry and entry.get("status") == "pruned" and isinstance(entry.get("steps_done"), int):
            train = config.train.model_copy(update={"steps": entry["steps_done"]})
            config = config.model_copy(update={"train": train})
        return StoredMember(self.store, m.index, m.label, config, entry)

    def initial_config(self, index: int) -> Config:
        """Member ``index``'s config as the sweep file gave it (before a search changed it)."""
        return self.sweep.members[index].config

    def all(self) -> list[StoredMember]:
        return [self.get(i) for i in range(len(self))]


def open_sweep(sweep_dir: str | Path) -> Members:
    """A sweep folder's members (XorlabError when sweep.yaml is missing or damaged)."""
    from .sweeprun import load_for_resume

    path = Path(sweep_dir)
    return Members(SweepStore(path), load_for_resume(path))


# --- export -------------------------------------------------------------------------------------


def find_member(sweep_dir: Path, member: str) -> StoredMember:
    """``member``: summary.csv's index, or a ``<sweep>/members/NNN-...`` path (or its label)."""
    from .errors import XorlabError

    if not is_sweep_folder(sweep_dir):
        raise XorlabError("not a sweep folder (no sweep.yaml)", file=str(sweep_dir))
    members = open_sweep(sweep_dir)
    n = len(members)
    label = Path(member).name
    if member.strip().isdigit():
        index = int(member)
    elif label in members.by_label:
        index = members.by_label[label]
    else:
        raise XorlabError(f"no member {member!r}: give an index 0 to {n - 1} or a members/"
                          "NNN-... path", key="MEMBER")  # fmt: skip
    if index >= n:
        raise XorlabError(f"no member {index}: the sweep has {n} (0 to {n - 1})", key="MEMBER")
    return members.get(index)


def export_member(
    sweep_dir: Path, member: str, to: Path, argv: list[str] | None = None
) -> tuple[StoredMember, Path]:
    """Write a member's full run folder at ``to`` (which must not exist, or be an empty folder):
    config.yaml, meta.json, metrics.csv, summary.json, data.npz, init.npz, final.npz, and plots/
    when its config enables them (copied from its member folder, else drawn after training it
    again: training is deterministic). The same files ``xorlab train`` of its config writes."""
    from types import SimpleNamespace

    from .errors import XorlabError
    from .rundir import RunFolder, meta, now_iso, result_files, write_plots

    if to.exists() and not to.is_dir():
        raise XorlabError("a file, not a folder", file=str(to), key="--to")
    if to.is_dir() and any(to.iterdir()):
        raise XorlabError("the folder is not empty", file=str(to), key="--to")
    m = find_member(sweep_dir, member)
    if m.status not in FINISHED:
        raise XorlabError(f"member {m.index} ({m.label}) has not finished ({m.status}): "
                          "nothing to export", file=str(sweep_dir))  # fmt: skip
    from . import lineage

    init, final = m.params()  # everything is read before anything is written
    result: Any = SimpleNamespace(data=m.data(), init_params=init, final_params=final,
                                  metrics=m.metrics())  # fmt: skip
    config, extra = m.config, {}
    events = lineage.search_events(sweep_dir)
    if m.status == "pruned":  # the run that trains exactly as far as the search let it
        config = lineage.pruned_config(m.config, int((m.entry or {})["steps_done"]))
    elif lineage.is_pbt(events):
        assert events is not None
        members = open_sweep(sweep_dir)
        replayed, rows = lineage.replay(members.initial_config, events, m.index)
        if any(not np.array_equal(replayed.final_params[k], final[k]) for k in final):
            raise XorlabError(f"member {m.index}'s lineage does not replay to its final weights",
                              file=str(sweep_dir / "events.csv"))  # fmt: skip
        from .search import events_text

        result, config = replayed, lineage.final_config(m.config, events, m.index)
        extra["lineage.csv"] = events_text(rows).encode()
    files = {**result_files(result), **extra}
    plots: dict[str, bytes] = {}
    if config.plots.enabled:
        drawn = m.path / "plots"
        if drawn.is_dir() and "lineage.csv" not in extra:
            plots = {p.name: p.read_bytes() for p in sorted(drawn.iterdir()) if p.is_file()}
        else:
            from .plots import render_run_bytes
            from .train import RunResult, train

            run = result if isinstance(result, RunResult) else train(config)
            plots = render_run_bytes(run, gif=config.plots.gif_frames > 1)
    folder = RunFolder.at(to)
    started = (m.entry or {}).get("started_at") or now_iso()
    folder.write_start(config.to_yaml(), started, argv)
    for name, data in files.items():
        atomic_write_bytes(folder.path / name, data, sync=True)
    write_json(folder.path / "meta.json", meta(started, now_iso(), argv, exported_from=str(
        sweep_dir), member=m.index), sync=True)  # fmt: skip
    fsync_dir(folder.path)
    write_json(folder.path / "summary.json", m.summary, sync=True)
    write_plots(folder.path / "plots", plots)
    return m, folder.path
