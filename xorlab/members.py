"""A sweep folder's members for readers (DESIGN.md section 3): ``open_sweep`` gives each member
as the shapes a run folder gives (config, summary, metrics, parameters, data), ``read_metrics``
every member's metrics as one table; a member found by index or path, and exported as a run folder.
They read through the store (``store.SweepStore``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import Config
from .data import Dataset
from .lineage import pruned_config
from .parts import Params, data_key
from .rundir import FINISHED, atomic_write_bytes, fsync_dir, write_json
from .store import ENTRY_ONLY, MEMBERS, METRICS, SweepStore

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
            config = pruned_config(config, entry["steps_done"])
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
    config, extra = m.config, {}  # a pruned member's: as far as the search let it (Members.get)
    events = lineage.search_events(sweep_dir)
    if m.status != "pruned" and lineage.is_pbt(events):
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
