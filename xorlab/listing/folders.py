"""Reading runs folders into ``RunInfo`` rows: ``scan`` a runs folder, one run, one sweep, or a
sweep's members. Reading only, never writing; every problem with a folder is recorded in its
row, never raised (see the package's docstring for the statuses)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .. import yamlio
from ..errors import XorlabError
from ..members import StoredMember, member_ref, open_sweep
from ..rundir import FINISHED, read_json
from ..store import SweepStore
from .info import (
    MEMBER_STATUSES,
    RUN_FILES,
    RUN_STATUSES,
    SETTINGS,
    STAMP_RE,
    RunInfo,
    _dotted,
    _float,
    _int,
    _iso,
    _setting,
    _stamp_iso,
    _str,
    sort_by,
)

# --- scanning -----------------------------------------------------------------------------------


def scan(root: str | Path = "runs") -> list[RunInfo]:
    """Runs and sweeps directly under ``root``, newest first.

    ``root`` may also be one run folder (-> that run), one sweep folder (-> that sweep) or a
    sweep's members/ folder (-> its members). A root that does not exist or is a file is an
    XorlabError; nothing inside it ever is.
    """
    root = Path(root)
    if member_ref(root) is not None:  # <sweep>/members/<label>: from the store
        return [member_info(root)]
    if root.name == "members" and is_sweep_folder(
        root.parent
    ):  # every member, whether their folders exist or not
        return sort_by(member_infos(root.parent), "started")
    if not root.exists():
        raise XorlabError("no such folder", file=str(root))
    if not root.is_dir():
        raise XorlabError("not a folder", file=str(root))
    if is_sweep_folder(root):
        return [sweep_info(root)]
    if is_run_folder(root):
        return [run_info(root)]
    in_sweep = None
    infos = []
    for child in _children(root):
        if is_sweep_folder(child):
            infos.append(sweep_info(child))
        elif is_run_folder(child) or (in_sweep is not None and _is_empty_dir(child)):
            info = run_info(child)
            info.sweep = in_sweep
            infos.append(info)
    return sort_by(infos, "started")


def _children(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:
        return []


def _is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not any(path.iterdir())
    except OSError:
        return False


def is_run_folder(path: Path) -> bool:
    try:
        if not path.is_dir():
            return False
        if any((path / f).exists() for f in RUN_FILES):
            return True
        return bool(STAMP_RE.match(path.name)) and _is_empty_dir(path)
    except OSError:
        return False


def is_sweep_folder(path: Path) -> bool:
    try:
        if (path / "sweep.yaml").is_file():
            return True
        return (path / "summary.csv").is_file() and (path / "members").is_dir()
    except OSError:
        return False


# --- one run ------------------------------------------------------------------------------------


def run_info(path: Path) -> RunInfo:
    """A run folder's row; every unreadable file becomes a line in ``problems``."""
    return _folder_info(Path(path), "run", "unfinished", _fill_run)


def _folder_info(
    path: Path, kind: str, status: str, fill: Callable[[RunInfo, Path], None]
) -> RunInfo:
    """A folder's row, as ``fill`` completes it; whatever ``fill`` raises makes it damaged."""
    info = RunInfo(path=str(path), folder=path.name, kind=kind, name=None, started=None,
                   status=status)  # fmt: skip
    try:
        fill(info, path)
    except Exception as exc:  # a listing shows a broken folder, never crashes
        info.status = "damaged"
        info.problems.append(f"cannot read: {_first_line(exc)}")
    return info


def _fill_run(info: RunInfo, path: Path) -> None:
    problems = info.problems
    summary, bad = _load_json(path / "summary.json")
    if bad:
        problems.append(bad)
    status = "unfinished" if summary is None else str(summary.get("status"))
    if summary is not None and status not in RUN_STATUSES:
        problems.append(f"summary.json: unknown status {status!r}")
    if summary is not None:
        final = _final_block(summary)
        info.steps_done = _int(summary.get("steps_done"))
        info.final_loss = _float(final.get("loss"))
        info.final_train_acc = _float(final.get("train_acc"))
        info.final_test_acc = _float(final.get("test_acc"))
        info.diverged_at = _int(summary.get("diverged_at"))
        info.wall_s = _float(summary.get("wall_s"))
        info.note = _str(summary.get("note")) or _str(summary.get("error")) or None

    config, bad = _load_yaml(path / "config.yaml")
    if bad:
        problems.append(bad)
    elif config is None and (path / "meta.json").exists():
        problems.append("config.yaml missing")  # it is written before meta.json
    if config is not None:
        info.name = _str(config.get("name"))
        info.steps_total = _int(_dotted(config, "train.steps"))
        for attr, key in SETTINGS.items():
            setattr(info, attr, _setting(attr, _dotted(config, key)))
        if info.clip == "none":
            info.clip_max = None

    meta, bad = _load_json(path / "meta.json")
    if bad:
        problems.append(bad)
    elif meta is None and config is not None:
        problems.append("meta.json missing")
    if meta is not None:
        info.started = _iso(meta.get("started_at"))
        info.finished = _iso(meta.get("finished_at"))

    if status in FINISHED:  # metrics.csv is written just before summary.json
        bad = _check_csv_header(path / "metrics.csv", "step")
        if bad:
            problems.append(bad)

    stamp = STAMP_RE.match(path.name)
    if info.started is None and stamp:
        info.started = _stamp_iso(stamp.group(1))
    if info.name is None and stamp:
        info.name = stamp.group(2)
    if info.name is None:
        info.name = path.name
    info.status = "damaged" if problems else status


# --- one sweep ----------------------------------------------------------------------------------


def sweep_info(path: Path) -> RunInfo:
    """A sweep folder's row: member counts from summary.csv (rows it does not show as finished
    are checked in their folders, since summary.csv lags a running or killed sweep)."""
    return _folder_info(Path(path), "sweep", "partial", _fill_sweep)


def member_infos(sweep_dir: Path) -> list[RunInfo]:
    """One row per member of a sweep, read through its store."""
    members = open_sweep(sweep_dir)
    return [_stored_info(m, sweep_dir.name) for m in members.all()]


def member_info(path: Path) -> RunInfo:
    """``<sweep>/members/<label>``'s row, read through the store (its folder need not exist)."""
    sweep_dir, label = member_ref(path) or (path, "")
    members = open_sweep(sweep_dir)
    if label not in members.by_label:
        raise XorlabError(f"no member {label!r} in this sweep", file=str(sweep_dir))
    return _stored_info(members.get(members.by_label[label]), sweep_dir.name)


def _stored_info(m: StoredMember, sweep_name: str) -> RunInfo:
    e = m.entry or {}
    final = _final_block(e)
    config = m.config.to_dict()
    info = RunInfo(
        path=str(m.path), folder=m.label, kind="run", name=m.config.name,
        started=_iso(e.get("started_at")), status=m.status, sweep=sweep_name,
        note=_str(e.get("note")) or None, steps_done=_int(e.get("steps_done")),
        steps_total=m.config.train.steps, final_loss=_float(final.get("loss")),
        final_train_acc=_float(final.get("train_acc")),
        final_test_acc=_float(final.get("test_acc")), diverged_at=_int(e.get("diverged_at")),
        wall_s=_float(e.get("wall_s")),
    )  # fmt: skip
    for attr, key in SETTINGS.items():
        setattr(info, attr, _setting(attr, _dotted(config, key)))
    if info.clip == "none":
        info.clip_max = None
    return info


def _fill_sweep(info: RunInfo, path: Path) -> None:
    problems = info.problems
    doc, bad = _load_yaml(path / "sweep.yaml")
    if bad:
        problems.append(bad)
    elif doc is None:
        problems.append("sweep.yaml missing")
    doc = doc or {}
    listed = doc.get("members") if isinstance(doc.get("members"), list) else None
    if doc and listed is None:
        problems.append("sweep.yaml: no member list")
    members = [m for m in listed or [] if isinstance(m, dict) and isinstance(m.get("folder"), str)]

    rows: dict[int, dict[str, Any]] = {}  # member index -> its summary.csv row
    if (path / "summary.csv").exists():
        try:
            df = pd.read_csv(path / "summary.csv")
            if "index" not in df or "status" not in df:
                raise ValueError("no index or status column")
            for r in df.to_dict("records"):
                rows[int(r["index"])] = r
        except (OSError, ValueError, TypeError):  # pandas' parser errors, UnicodeDecodeError
            problems.append("summary.csv: not a readable table")

    if members:  # the record entries say which are finished (summary.csv may lag)
        indices = [_int(m.get("index")) for m in members]
        keys = [i if i is not None else n for n, i in enumerate(indices)]
        labels = [m["folder"] for m in members]
    else:  # without sweep.yaml's member list: summary.csv's rows
        keys = sorted(rows)
        labels = [f"member {i}" for i in keys]
    entries = SweepStore(path).entries()
    results = [_member_result(entries.get(k), rows.get(k)) for k in keys]
    counts = dict.fromkeys(MEMBER_STATUSES, 0)
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    info.n_members = len(labels)
    info.counts = {s: n for s, n in counts.items() if n}

    done = [(label, r) for label, r in zip(labels, results) if r["final_loss"] is not None]
    if done:
        label, best = min(done, key=lambda lr: lr[1]["final_loss"])
        info.best_member = label
        info.final_loss = best["final_loss"]
        info.final_train_acc = best["final_train_acc"]
        info.final_test_acc = best["final_test_acc"]
    if results and all(r["status"] in FINISHED for r in results):
        info.wall_s = math.fsum(r["wall_s"] or 0.0 for r in results)  # compute time, not elapsed

    info.name = _str(doc.get("name"))
    if members:
        _sweep_settings(info, doc, members)

    stamp = STAMP_RE.match(path.name)
    if stamp:
        info.started = _stamp_iso(stamp.group(1))
        info.name = info.name or stamp.group(2)
    info.name = info.name or path.name
    if listed is None:
        info.status = "damaged"  # without sweep.yaml's member list a sweep cannot be resumed
    elif labels and all(r["status"] in FINISHED for r in results):
        info.status = "completed"
    else:
        info.status = "partial"


def _member_result(entry: dict[str, Any] | None, row: dict[str, Any] | None) -> dict[str, Any]:
    """status, final_* and wall_s of one member: its record entry in the store; without one,
    its summary.csv row if that says it finished (a store whose records were lost), else
    pending."""
    keys = ("final_loss", "final_train_acc", "final_test_acc", "wall_s")
    out: dict[str, Any] = dict.fromkeys(keys)
    if entry is None:
        if row is not None and row.get("status") in FINISHED:
            return {"status": row["status"], **{k: _float(row.get(k)) for k in keys}}
        out["status"] = "pending"
        return out
    if entry.get("status") not in RUN_STATUSES:
        out["status"] = "damaged"
        return out
    final = _final_block(entry)
    out.update(
        status=entry["status"],
        final_loss=_float(final.get("loss")),
        final_train_acc=_float(final.get("train_acc")),
        final_test_acc=_float(final.get("test_acc")),
        wall_s=_float(entry.get("wall_s")),
    )
    return out


def _sweep_settings(info: RunInfo, doc: dict[str, Any], members: list[dict[str, Any]]) -> None:
    """Each setting of each member, from sweep.yaml alone: the member's base config (its
    variant's own, else the sweep's ``base_config``; defaults filled in) and its ``set``.
    A setting all members share goes in its field; one that differs, in ``varied``."""
    from ..config import Config

    defaults = Config().to_dict()
    bases = {}
    for name, raw in _dict(doc.get("variant_configs")).items():
        bases[name] = _merge(defaults, _dict(raw))
    common = _merge(defaults, _dict(doc.get("base_config")))
    configs = [(bases.get(str(m.get("variant")), common), _dict(m.get("set"))) for m in members]
    varied: dict[str, list[Any]] = {}
    for attr, key in SETTINGS.items():
        distinct: dict[Any, Any] = {}  # hashable form -> value, in first-seen order (a list
        for base, sets in configs:  # search here was quadratic: minutes at 100,000 members)
            v = _setting(attr, _member_value(base, sets, key))
            distinct.setdefault(tuple(v) if isinstance(v, list) else v, v)
        values = list(distinct.values())
        if len(values) == 1:
            setattr(info, attr, values[0])
        else:
            varied[key] = values
    steps = {_int(_member_value(base, sets, "train.steps")) for base, sets in configs}
    info.steps_total = steps.pop() if len(steps) == 1 else None
    if info.clip == "none":
        info.clip_max = None
    info.varied = varied


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _member_value(base: dict[str, Any], sets: dict[str, Any], key: str) -> Any:
    """``key``'s value in a member: the longest override that covers it, else the base's."""
    best = None
    for k in sets:
        if (key == k or key.startswith(k + ".")) and (best is None or len(k) > len(best)):
            best = k
    if best is None:
        return _dotted(base, key)
    if best == key:
        return sets[best]
    return _dotted(sets[best], key[len(best) + 1 :])


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# --- reading helpers ----------------------------------------------------------------------------


def _load_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the object, None); (None, None) when the file is missing; (None, problem) when bad."""
    if not path.exists():
        return None, None
    try:
        obj = read_json(path)
    except json.JSONDecodeError as exc:
        return None, f"{path.name}: not valid JSON (line {exc.lineno})"
    except UnicodeDecodeError:
        return None, f"{path.name}: not UTF-8 text"
    except OSError as exc:
        return None, f"{path.name}: cannot read ({exc.strerror or type(exc).__name__})"
    if not isinstance(obj, dict):
        return None, f"{path.name}: expected an object, got {type(obj).__name__}"
    return obj, None


def _load_yaml(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Like ``_load_json``, through yamlio (libyaml's parser, yamlio's checks and messages)."""
    if not path.exists():
        return None, None
    try:
        obj = yamlio.load_file(path)
    except XorlabError as exc:
        where = re.search(r"line \d+, column \d+", exc.message)
        what = exc.message.split(":", 1)[0]  # "invalid YAML", "cannot read", ...
        return None, f"{path.name}: {what}" + (f" ({where.group()})" if where else "")
    if not isinstance(obj, dict):
        return None, f"{path.name}: expected a mapping, got {type(obj).__name__}"
    return obj, None


def _check_csv_header(path: Path, first_column: str) -> str | None:
    """A problem when the CSV is missing or does not start with ``first_column``; reads only the
    first line, so listing many runs stays fast."""
    try:
        with path.open("rb") as f:
            head = f.readline(4096).decode("utf-8")
    except FileNotFoundError:
        return f"{path.name} missing"
    except UnicodeDecodeError:
        return f"{path.name}: not UTF-8 text"
    except OSError as exc:
        return f"{path.name}: cannot read ({exc.strerror or type(exc).__name__})"
    if head.split(",", 1)[0].strip() != first_column:
        return f"{path.name}: no '{first_column}' column"
    return None


def _final_block(summary: dict[str, Any]) -> dict[str, Any]:
    final = summary.get("final")
    return final if isinstance(final, dict) else {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
