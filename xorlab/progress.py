"""progress.json: a sweep's state in a few hundred bytes, for `xorlab watch` (DESIGN.md section 3).

The driver writes it atomically (``ProgressWriter``), about once a second while the sweep runs
and once at the end, ``finished`` true (after a Ctrl-C too: ``counts`` then still show pending
or interrupted members); ``watch`` reads it (and summary.csv, events.csv), never the metrics.
Its content:

```
{"format": 1,
 "started_at": "2025-01-01T12:00:00+00:00", "updated_at": "...", "finished": false,
 "members": 10000,                       # the sweep's members
 "counts": {"running": 4, "pending": 9000, "completed": 990, ...},   # nonzero, in STATUS_ORDER
 "network_steps": {"done": 990000, "planned": 10000000, "at_start": 0},  # at_start: done
                                         # before this driver began (a resume), for the ETA
 "stage": {"kind": "halving", "step": 333, "round": 2, "bracket": null} | null,
 "ranked_by": ["final_data_loss"],      # or ["final_test_acc", "final_data_loss"]
 "best": [{"index": 7, "label": "007-lr=0.3", "status": "completed", "steps_done": 1000,
           "final_loss": ..., "final_data_loss": ..., "final_train_acc": ..., "final_test_acc": ...,
           "params": {"optim.lr": 0.3, "seed": 0}, "parent": null}, ...]}   # at most TOP
```

The best members are ranked as the sweep's own best table ranks them: by test accuracy (highest
first) when any member has one, then by data loss (``final_data_loss``, else ``final_loss``),
lowest first; a member without the value comes last, ties go by index. Only finished members
(FINISHED_STATUSES) are ranked.

``progress_doc`` is pure (rows in, a JSON-ready mapping out); ``sweep_rows`` makes the rows from
the driver's members and store entries, and ``summary_rows`` from a summary.csv, so a finished
sweep without progress.json gets the same view. Nothing here imports numpy or pandas.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
FILE = "progress.json"
TOP = 5  # the best members listed
EVERY_S = 1.0  # the driver rewrites progress.json at most this often (and once at the end)
STATUS_ORDER = ("running", "pending", "completed", "stopped_early", "pruned", "diverged",
                "interrupted", "failed")  # fmt: skip
FINISHED_STATUSES = ("completed", "stopped_early", "pruned", "diverged")
FINALS = ("final_loss", "final_data_loss", "final_train_acc", "final_test_acc")
# summary.csv's columns that are not a member's hyperparameters
NOT_PARAMS = frozenset({"index", "run_dir", "status", *FINALS, "diverged_at", "wall_s",
                        "steps_done", "parent", "bracket", "calibration"})  # fmt: skip


def _number(x: Any) -> float | None:
    """A finite float, else None (JSON has no NaN)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(x: Any) -> int | None:
    f = _number(x)
    return None if f is None else int(f)


def _plain(v: Any) -> Any:
    """A JSON-ready parameter value: numbers finite or None, the rest as they are or as text."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def steps_of(row: Mapping[str, Any]) -> int:
    """A member's network-steps done: its ``steps_done``; where that is not known, a completed
    member's ``steps_planned``, a diverged one's ``diverged_at``, else 0."""
    steps = _int(row.get("steps_done"))
    if steps is not None:
        return steps
    if row.get("status") == "completed":
        return _int(row.get("steps_planned")) or 0
    if row.get("status") == "diverged":
        return _int(row.get("diverged_at")) or 0
    return 0


def ranking(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns the best members are ranked by (see the module docstring)."""
    loss = "final_data_loss" if any(r.get("final_data_loss") is not None for r in rows) else (
        "final_loss")  # fmt: skip
    has_test = any(_number(r.get("final_test_acc")) is not None for r in rows)
    return ["final_test_acc", loss] if has_test else [loss]


def best_rows(rows: Sequence[Mapping[str, Any]], n: int = TOP) -> list[Mapping[str, Any]]:
    """The best ``n`` finished rows by ``ranking``; the rest of the order by index."""
    keys = ranking(rows)
    sign = [-1.0 if k == "final_test_acc" else 1.0 for k in keys]

    def key(r: Mapping[str, Any]) -> tuple:
        out: list[Any] = []
        for k, s in zip(keys, sign):
            v = _number(r.get(k))
            out += [v is None, 0.0 if v is None else s * v]
        return (*out, int(r["index"]))

    import heapq

    done = (r for r in rows if r.get("status") in FINISHED_STATUSES)
    return heapq.nsmallest(n, done, key=key)


def progress_doc(
    rows: Sequence[Mapping[str, Any]],
    *,
    started_at: str,
    updated_at: str,
    finished: bool = False,
    planned: int | None = None,
    stage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """progress.json's content from one row per member.

    A row: ``index``, ``status`` (``running`` for a member in training, ``pending`` before),
    ``steps_done`` (None: not known; then a completed member counts ``steps_planned`` and a
    diverged one its ``diverged_at``), ``steps_planned`` (its ``train.steps``), ``final_loss``,
    ``final_data_loss``, ``final_train_acc``, ``final_test_acc``, ``params`` (its varied keys,
    seed and variant included) and, when known, ``label`` and ``parent``. ``planned``: the
    network-steps the sweep will spend (a search's plan), else the rows' ``steps_planned`` summed.
    ``stage``: the search's current rung or round (``kind``, ``step``, ``round``, ``bracket``).
    """
    counts: dict[str, int] = {}
    done = planned_sum = 0
    for r in rows:
        status = str(r.get("status") or "pending")
        counts[status] = counts.get(status, 0) + 1
        planned_sum += _int(r.get("steps_planned")) or 0
        done += steps_of(r)
    order = [s for s in STATUS_ORDER if s in counts] + sorted(set(counts) - set(STATUS_ORDER))
    best = []
    for r in best_rows(rows):
        item: dict[str, Any] = {"index": int(r["index"])}
        if r.get("label") is not None:
            item["label"] = str(r["label"])
        item["status"] = str(r["status"])
        item["steps_done"] = steps_of(r)
        item.update({k: _number(r.get(k)) for k in FINALS})
        item["params"] = _plain(dict(r.get("params") or {}))
        item["parent"] = _int(r.get("parent"))
        best.append(item)
    return {
        "format": FORMAT,
        "started_at": started_at,
        "updated_at": updated_at,
        "finished": bool(finished),
        "members": len(rows),
        "counts": {s: counts[s] for s in order},
        "network_steps": {"done": done, "planned": planned if planned is not None else planned_sum},
        "stage": None if stage is None else _plain(dict(stage)),
        "ranked_by": ranking(rows),
        "best": best,
    }


def progress_text(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def write_progress(folder: str | Path, doc: Mapping[str, Any]) -> Path:
    """<folder>/progress.json, written atomically (temp file + rename)."""
    from .rundir import atomic_write_text

    return atomic_write_text(Path(folder) / FILE, progress_text(doc))


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


class ProgressWriter:
    """A driver's progress.json: ``maybe`` after each event, ``final`` at the end (or ``close``
    on an error: the file then goes stale, as after a crash).

    ``maybe`` writes at once when EVERY_S has passed since the last write; otherwise it keeps its
    arguments and the writer's own thread writes them when that time comes, and keeps rewriting
    the latest state about every EVERY_S while the driver waits on long tasks (``watch`` calls a
    file not rewritten for a minute the sign of a dead driver). A write that costs more than
    SHARE of the time since the one before delays the next (100,000 members: ~0.35 s a write).
    The thread only reads what it is given: ``entries`` with ``get``, which the driver may go on
    filling (a dict lookup is atomic), and copies of ``running`` and ``stage``.
    """

    SHARE = 0.05

    def __init__(
        self,
        folder: str | Path,
        members: Sequence[Any],
        started_at: str | None = None,
        *,
        every_s: float = EVERY_S,
    ) -> None:
        self.folder = Path(folder)
        self.members = members
        self.started_at = started_at or now_iso()
        self.every_s = every_s
        self.writes = 0
        self.at_start: int | None = None  # network-steps done before this driver began
        self._state: tuple | None = None  # the latest maybe()'s arguments
        self._next = 0.0  # monotonic time the next write is due
        self._lock = threading.Lock()  # one write at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def doc(
        self,
        entries: Mapping[int, Mapping[str, Any] | None],
        running: Iterable[int] = (),
        *,
        stage: Mapping[str, Any] | None = None,
        planned: int | None = None,
        parents: Mapping[int, int] | None = None,
        finished: bool = False,
    ) -> dict[str, Any]:
        """progress.json's content now (``planned``: a search's plan, else the train.steps
        summed; ``parents``: PBT's donors)."""
        rows = sweep_rows(self.members, entries, running, parents)
        doc = progress_doc(rows, started_at=self.started_at, updated_at=now_iso(),
                           finished=finished, planned=planned, stage=stage)  # fmt: skip
        if self.at_start is None:
            self.at_start = doc["network_steps"]["done"]
        doc["network_steps"]["at_start"] = self.at_start
        return doc

    def maybe(
        self,
        entries: Mapping[int, Mapping[str, Any] | None],
        running: Iterable[int] = (),
        *,
        stage: Mapping[str, Any] | None = None,
        planned: int | None = None,
        parents: Mapping[int, int] | None = None,
    ) -> bool:
        """Note the sweep's state; write it if one is due (True when written here)."""
        self._state = (entries, tuple(running), None if stage is None else dict(stage), planned,
                       parents)  # fmt: skip
        if time.monotonic() < self._next or not self._lock.acquire(blocking=False):
            return False  # the thread writes it
        try:
            self._write()
        finally:
            self._lock.release()
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="progress.json", daemon=True)
            self._thread.start()
        return True

    def final(
        self,
        entries: Mapping[int, Mapping[str, Any] | None],
        running: Iterable[int] = (),
        *,
        stage: Mapping[str, Any] | None = None,
        planned: int | None = None,
        parents: Mapping[int, int] | None = None,
    ) -> dict[str, Any]:
        """The last write: ``finished`` true (the driver has ended; ``counts`` say whether every
        member finished). Returns the document."""
        self.close()
        doc = self.doc(entries, running, stage=stage, planned=planned, parents=parents,
                       finished=True)  # fmt: skip
        write_progress(self.folder, doc)
        self.writes += 1
        return doc

    def close(self) -> None:
        """Stop the thread (no more writes from it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _write(self) -> None:
        """Write the noted state (the lock held)."""
        assert self._state is not None
        entries, running, stage, planned, parents = self._state
        start = time.monotonic()
        write_progress(self.folder, self.doc(entries, running, stage=stage, planned=planned,
                                             parents=parents))  # fmt: skip
        self.writes += 1
        cost = time.monotonic() - start
        self._next = start + max(self.every_s, cost / self.SHARE)

    def _beat(self) -> None:
        while not self._stop.wait(max(0.0, self._next - time.monotonic()) + 0.01):
            with self._lock:
                if self._stop.is_set() or time.monotonic() < self._next:
                    continue
                try:
                    self._write()
                except Exception:  # never a traceback from here: the driver's final write
                    return  # meets the same trouble and says so


# --- rows ---------------------------------------------------------------------------------------


def sweep_rows(
    members: Iterable[Any],
    entries: Mapping[int, Mapping[str, Any] | None],
    running: Iterable[int] = (),
    parents: Mapping[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Rows for ``progress_doc`` from the driver's state: the sweep's members (``index``,
    ``label``, ``seed``, ``variant``, ``varied``, ``config``), the store's record entries by
    index (status, steps_done, final, final_data_loss, diverged_at) and the indices in training.
    """
    busy = set(running)
    rows = []
    for m in members:
        e = entries.get(m.index) or {}
        final: Mapping[str, Any] = e["final"] if isinstance(e.get("final"), Mapping) else {}
        status = e.get("status") or ("running" if m.index in busy else "pending")
        if status not in FINISHED_STATUSES and m.index in busy:
            status = "running"  # an interrupted or failed record being run again
        params = {"variant": m.variant} if getattr(m, "variant", None) else {}
        params["seed"] = m.seed
        params.update((k, v) for k, v in m.varied.items() if k != "seed")
        rows.append({
            "index": m.index,
            "label": m.label,
            "status": status,
            "steps_done": e.get("steps_done") if status in FINISHED_STATUSES else 0,
            "steps_planned": m.config.train.steps,
            "final_loss": final.get("loss"),
            "final_data_loss": e.get("final_data_loss"),
            "final_train_acc": final.get("train_acc"),
            "final_test_acc": final.get("test_acc"),
            "diverged_at": e.get("diverged_at"),
            "params": params,
            "parent": (parents or {}).get(m.index),
        })  # fmt: skip
    return rows


def _cell(text: str) -> Any:
    """A summary.csv cell as the value it was: int, float, bool, None or text."""
    if text == "":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def summary_rows(text: str, steps: Mapping[str, int] | int | None = None) -> list[dict[str, Any]]:
    """Rows for ``progress_doc`` from summary.csv's text (one row per member). ``steps``: each
    member's ``train.steps`` (a number, or by variant name); a ``train.steps`` column wins."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or "index" not in header or "status" not in header:
        raise ValueError("not a sweep's summary.csv (no index and status columns)")
    pos = {c: i for i, c in enumerate(header)}
    params = [(c, i) for i, c in enumerate(header) if c not in NOT_PARAMS]
    wanted = [c for c in (*FINALS, "steps_done", "diverged_at", "parent") if c in pos]
    i_index, i_status = pos["index"], pos["status"]
    i_steps, i_variant = pos.get("train.steps"), pos.get("variant")
    rows = []
    for cells in reader:
        if len(cells) != len(header):
            continue  # a torn line cannot be: summary.csv is written whole; skip it anyway
        row: dict[str, Any] = {"index": int(cells[i_index]), "status": cells[i_status]}
        for c in wanted:
            row[c] = _cell(cells[pos[c]])
        row["params"] = {c: _cell(cells[i]) for c, i in params}
        if i_steps is not None:
            row["steps_planned"] = _cell(cells[i_steps])
        elif isinstance(steps, Mapping):
            row["steps_planned"] = steps.get(cells[i_variant] if i_variant is not None else "")
        else:
            row["steps_planned"] = steps
        rows.append(row)
    return rows


def stage_text(stage: Mapping[str, Any]) -> str:
    """A search's stage in one line, as ``watch`` and the sweep's own progress display show it:
    ``halving: rung 1 at step 111``, ``pbt: round 3 at step 400``, or, after the last decision,
    ``halving: after the last rung, to step 1000``."""
    kind = stage.get("kind") or "search"
    what = "round" if kind == "pbt" else "rung"
    step = _count(stage.get("step"))
    if stage.get("round") is None:  # the last stage: from the last decision to train.steps
        text = f"{kind}: after the last {what}, to step {step}"
    else:
        text = f"{kind}: {what} {_count(stage.get('round'))} at step {step}"
    if stage.get("bracket") is not None:
        text += f", bracket {stage['bracket']}"
    return text


def _count(v: Any) -> str:
    return "-" if v is None else str(v)
