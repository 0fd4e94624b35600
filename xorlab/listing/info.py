"""A row of ``xorlab runs`` (``RunInfo``), the constants that name its statuses and settings,
filtering and sorting rows, and how values read from run files are checked and converted
(a value of the wrong type becomes None, never an error)."""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import XorlabError

RUN_FILES = ("config.yaml", "meta.json", "summary.json", "metrics.csv", "final.npz")
RUN_STATUSES = ("completed", "diverged", "stopped_early", "pruned", "interrupted", "failed")
STATUSES = (*RUN_STATUSES, "unfinished", "damaged", "partial")  # what filter_status accepts
MEMBER_STATUSES = (*RUN_STATUSES, "unfinished", "pending", "damaged")  # counts, in this order
SORT_KEYS = ("started", "name", "status", "final_loss", "final_train_acc", "steps")
STAMP_RE = re.compile(r"^(\d{8}-\d{6})-(.+?)(?:-([0-9a-f]{6}))?$")  # stamp, name, short id

# RunInfo field -> dotted config key: the settings a listing shows
SETTINGS = {
    "hidden": "model.hidden",
    "activation": "model.activation",
    "loss": "model.loss",
    "optimizer": "optim.kind",
    "lr": "optim.lr",
    "regularization": "regularization.kind",
    "reg_strength": "regularization.strength",
    "clip": "optim.clip.kind",
    "clip_max": "optim.clip.max",
}


@dataclass
class RunInfo:
    """One row of ``xorlab runs``. For a sweep, the final_* fields are its best member's (lowest
    final loss, named in ``best_member``) and a setting that differs between members is None,
    its values listed in ``varied`` (dotted key -> distinct values)."""

    path: str
    folder: str  # the folder's name
    kind: str  # run | sweep
    name: str | None  # the config's (a sweep's) name
    started: str | None  # ISO 8601, from meta.json or the folder's YYYYMMDD-HHMMSS prefix
    status: str
    finished: str | None = None
    problems: list[str] = field(default_factory=list)  # what is damaged, one line each
    note: str | None = None  # why a run failed or stopped (summary.json's note or error)
    sweep: str | None = None  # for a sweep member: the sweep folder's name
    steps_done: int | None = None
    steps_total: int | None = None  # train.steps from config.yaml
    final_loss: float | None = None
    final_train_acc: float | None = None
    final_test_acc: float | None = None
    diverged_at: int | None = None
    wall_s: float | None = None  # a sweep's: the sum over its members, once all have finished
    hidden: list[int] | None = None
    activation: str | None = None
    loss: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    regularization: str | None = None
    reg_strength: float | None = None
    clip: str | None = None
    clip_max: float | None = None  # None when clip is none
    n_members: int | None = None  # sweeps only, from here on
    counts: dict[str, int] | None = None  # member status -> how many
    best_member: str | None = None
    varied: dict[str, list[Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: non-finite floats become None."""
        return _json_safe(asdict(self))


# --- filtering and sorting ----------------------------------------------------------------------


def filter_status(infos: Iterable[RunInfo], status: str | Iterable[str]) -> list[RunInfo]:
    """The rows whose status is one of ``status`` (a name, comma-separated names, or a list)."""
    wanted = status.split(",") if isinstance(status, str) else list(status)
    wanted = [s.strip() for s in wanted if s.strip()]
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown or not wanted:
        raise XorlabError(
            f"unknown status {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"allowed: {', '.join(STATUSES)}",
            key="--status",
        )
    return [i for i in infos if i.status in wanted]


def sort_by(
    infos: Iterable[RunInfo], key: str = "started", *, reverse: bool = False
) -> list[RunInfo]:
    """Sorted by ``key`` in its natural order, None values last whatever the order.

    started: newest first · name, status: A to Z · final_loss: lowest first ·
    final_train_acc, steps (steps done): highest first. ``reverse`` flips the order.
    """
    if key not in SORT_KEYS:
        raise XorlabError(
            f"unknown sort key {key!r}; allowed: {', '.join(SORT_KEYS)}", key="--sort"
        )
    value = {
        "started": lambda i: _sort_time(i.started),
        "name": lambda i: (i.name or "").lower(),
        "status": lambda i: i.status,
        "final_loss": lambda i: i.final_loss,
        "final_train_acc": lambda i: i.final_train_acc,
        "steps": lambda i: i.steps_done,
    }[key]
    descending = (key in ("started", "final_train_acc", "steps")) != reverse
    items = list(infos)
    known = [i for i in items if value(i) is not None]
    unknown = [i for i in items if value(i) is None]
    known.sort(key=lambda i: i.folder)  # ties: by folder, whatever the direction
    known.sort(key=value, reverse=descending)
    return known + unknown


# --- values read from files -----------------------------------------------------------------------


def _dotted(mapping: Any, key: str) -> Any:
    node = mapping
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _setting(attr: str, v: Any) -> Any:
    """A setting's value, if it has the expected type; else None."""
    if attr == "hidden":
        ok = isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        return list(v) if ok else None
    if attr in ("lr", "reg_strength", "clip_max"):
        return _float(v)
    return _str(v)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)  # summary.csv: an int column with blanks reads as float
    return None


def _float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:  # numpy scalars from pandas
            v = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    v = float(v)
    return v if math.isfinite(v) else None


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return _json_safe(obj.item())  # numpy scalars
    return obj


# --- times --------------------------------------------------------------------------------------


def _parse_time(text: Any) -> _dt.datetime | None:
    """An aware datetime from ISO text (a naive one is taken as local time)."""
    if not isinstance(text, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t.astimezone() if t.tzinfo is None else t


def _iso(text: Any) -> str | None:
    t = _parse_time(text)
    return None if t is None else t.isoformat(timespec="seconds")


def _stamp_iso(stamp: str) -> str | None:
    """``20250101-120000`` (local time, as rundir names folders) -> ISO 8601 with the offset."""
    try:
        t = _dt.datetime.strptime(stamp, "%Y%m%d-%H%M%S")
    except ValueError:
        return None
    return t.astimezone().isoformat(timespec="seconds")


def _sort_time(text: str | None) -> float | None:
    t = _parse_time(text)
    return None if t is None else t.timestamp()
