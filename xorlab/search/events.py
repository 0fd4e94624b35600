"""events.csv, the record of every decision (DESIGN.md section 3): its columns, the table in its
order and types, and its text written and read back exactly."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

EVENT_COLUMNS = (
    "step",
    "round",
    "bracket",
    "member",
    "action",
    "parent",
    "key",
    "old",
    "new",
    "value",
    "rank",
    "cutoff",
    "reason",
)
ACTIONS = ("promoted", "pruned", "exploited", "perturbed")  # events.csv's order within a step
_INTS, _NULLABLE_INTS = ("step", "round", "member"), ("bracket", "parent", "rank")
_FLOATS = ("old", "new", "value", "cutoff")
_APPLIES = {  # the columns each action fills; the others are empty in events.csv
    "promoted": {"value", "rank", "cutoff"},
    "pruned": {"value", "rank", "cutoff"},
    "exploited": {"parent", "value", "rank", "cutoff"},
    "perturbed": {"key", "old", "new"},
}


def events_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Decision rows as a table with events.csv's columns and types, in its order: step,
    bracket, action (promoted, pruned, exploited, perturbed), member, key."""
    df = pd.DataFrame(list(rows), columns=list(EVENT_COLUMNS))
    for c in _INTS:
        df[c] = df[c].astype(np.int64)
    for c in _NULLABLE_INTS:
        df[c] = pd.array([None if pd.isna(x) else int(x) for x in df[c]], dtype="Int64")
    for c in _FLOATS:
        df[c] = df[c].astype(np.float64)
    for c in ("action", "key", "reason"):
        text = [None if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
                for x in df[c]]  # fmt: skip
        df[c] = pd.Series(text, index=df.index, dtype=object)
    if not df["action"].isin(ACTIONS).all():
        raise ValueError(f"actions must be among {ACTIONS}")
    sort = pd.DataFrame(
        {
            "step": df["step"],
            "bracket": df["bracket"].fillna(-1).astype(np.int64),
            "action": df["action"].map(ACTIONS.index),
            "member": df["member"],
            "key": df["key"].fillna(""),
        }
    )
    order = sort.sort_values(list(sort.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


def events_text(events: pd.DataFrame) -> str:
    """events.csv's text: numbers as Python's repr (so they read back exactly), a column an
    action does not fill left empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(EVENT_COLUMNS)
    for rec in events_frame(events.to_dict("records")).to_dict("records"):
        fills = _APPLIES[rec["action"]]
        cells = []
        for c in EVENT_COLUMNS:
            v = rec[c]
            if c in _INTS or c == "bracket":
                cells.append("" if pd.isna(v) else repr(int(v)))
            elif c in _NULLABLE_INTS:
                cells.append(repr(int(v)) if c in fills and not pd.isna(v) else "")
            elif c in _FLOATS:
                cells.append(repr(float(v)) if c in fills else "")
            elif c == "key":
                cells.append(v if c in fills and v is not None else "")
            else:
                cells.append("" if v is None else str(v))
        w.writerow(cells)
    return buf.getvalue()


def read_events(text: str) -> pd.DataFrame:
    """events.csv's text back as the table ``events_text`` wrote."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != EVENT_COLUMNS:
        raise ValueError(f"not an events.csv: its header is not {','.join(EVENT_COLUMNS)}")
    rows = []
    for cells in reader:
        rec: dict[str, Any] = {}
        for c, s in zip(EVENT_COLUMNS, cells):
            if c in _INTS or c in _NULLABLE_INTS:
                rec[c] = int(s) if s else None
            elif c in _FLOATS:
                rec[c] = float(s) if s else math.nan
            else:
                rec[c] = s if s else None
        rows.append(rec)
    return events_frame(rows)
