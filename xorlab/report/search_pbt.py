"""PBT in the sweep report: the winner, the lineage that made its final state (``events.csv``'s
exploited and perturbed rows, through ``xorlab.search.lineage``), its hyperparameter schedule, and
every member's mutable keys per round (the initial values from sweep.yaml's member configs, then
each round's copies and perturbations replayed)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..rundir import FINISHED
from ..search import lineage
from .doc import Table
from .figs import fmt
from .search import FINAL_COLUMNS, SearchView, round_steps


def winner(sv: SearchView) -> int | None:
    """The best finished member by the search's metric at the end (summary.csv's final column;
    ties: the lower index)."""
    col = FINAL_COLUMNS.get(sv.metric, "final_data_loss")
    v = pd.to_numeric(sv.column(col), errors="coerce")
    ok = sv.column("status").isin(FINISHED) & np.isfinite(v)
    if not ok.any():
        return None
    t = pd.DataFrame({"i": v.index[ok], "v": v[ok].to_numpy()})
    t = t.sort_values(["v", "i"], ascending=[sv.mode == "min", True], kind="stable")
    return int(t["i"].iloc[0])


def initial_values(sv: SearchView) -> pd.DataFrame:
    """member x mutable key: the values each member started with (sweep.yaml's configs)."""
    out = {}
    for key in sv.mutable:
        vals = []
        for c in sv.configs:
            obj: Any = c
            for part in key.split("."):
                obj = getattr(obj, part, None)
            vals.append(float(obj) if isinstance(obj, (int, float)) else math.nan)
        out[key] = vals
    return pd.DataFrame(out, index=pd.RangeIndex(len(sv.configs)))


def population(sv: SearchView) -> tuple[list[int], dict[str, np.ndarray]]:
    """(starts, key -> (segments, members)): every member's value of each mutable key from each
    start (0, then each round) to the next, replaying exploited (copy the donor's values) and
    perturbed (set the new value) rows."""
    state = initial_values(sv)
    starts = [0, *round_steps(sv)]
    values = {k: [state[k].to_numpy(copy=True)] for k in state}
    ev = sv.events
    for r in starts[1:]:
        now = ev[ev["step"] == r]
        before = state.copy()
        for row in now[now["action"] == "exploited"].itertuples():
            state.loc[int(row.member)] = before.loc[int(row.parent)]
        for row in now[now["action"] == "perturbed"].itertuples():
            state.loc[int(row.member), str(row.key)] = float(row.new)
        for k in values:
            values[k].append(state[k].to_numpy(copy=True))
    return starts, {k: np.vstack(v) for k, v in values.items()}


def schedule(sv: SearchView, member: int) -> tuple[pd.DataFrame, list[tuple[int, int, int]]]:
    """(the values of ``member``'s final state by start step, its copies as (step, member,
    parent)): from the root of its lineage (its own start, or the first donor's) through every
    copy that made it."""
    lin = lineage(sv.events, member)
    copies = [(int(r.step), int(r.member), int(r.parent))
              for r in lin[lin["action"] == "exploited"].itertuples()]  # fmt: skip
    root = copies[0][2] if copies else member
    init = initial_values(sv)
    rows = [{"step": 0, **init.loc[root].to_dict()}]
    for step, m, _ in copies:
        row = dict(rows[-1], step=step)
        mine = lin[(lin["step"] == step) & (lin["member"] == m) & (lin["action"] == "perturbed")]
        for r in mine.itertuples():
            row[str(r.key)] = float(r.new)
        rows.append(row)
    return pd.DataFrame(rows), copies


def lineage_text(sv: SearchView, member: int) -> str:
    col = FINAL_COLUMNS.get(sv.metric, "final_data_loss")
    v = pd.to_numeric(sv.column(col), errors="coerce").get(member, math.nan)
    sched, copies = schedule(sv, member)
    names = sv.names
    head = f"The winner is **member {member}** (final `{sv.metric}` {fmt(float(v), 4)})"
    if not copies:
        vals = ", ".join(f"{names[k]} {fmt(float(sched[k].iloc[0]), 4)}" for k in sv.mutable)
        return f"{head}. It never copied another member: it kept its own start ({vals})."
    parts = [f"its state began as member {copies[0][2]}'s"]
    for (step, m, p), (_, row) in zip(copies, sched.iloc[1:].iterrows()):
        vals = ", ".join(f"{names[k]} {fmt(float(row[k]), 4)}" for k in sv.mutable)
        parts.append(f"at step {step} member {m} copied member {p} ({vals})")
    return f"{head}: " + "; ".join(parts) + "."


def lineage_table(sv: SearchView, member: int) -> Table | None:
    lin = lineage(sv.events, member)
    if lin.empty:
        return None
    names = sv.names
    cols = ["step", "round", "member", "copied member"] + [names[k] for k in sv.mutable]
    rows = []
    for (step, m), g in lin.groupby(["step", "member"], sort=True):
        cp = g[g["action"] == "exploited"]
        row = [str(step), str(int(g["round"].iloc[0])), str(m), str(int(cp["parent"].iloc[0]))]
        for k in sv.mutable:
            p = g[(g["action"] == "perturbed") & (g["key"] == k)]
            if p.empty:
                row.append("–")
                continue
            r = p.iloc[0]
            how = "resampled" if "resampled" in str(r["reason"]) else "×"
            row.append(f"{fmt(float(r['old']), 4)} → {fmt(float(r['new']), 4)} ({how})")
        rows.append(row)
    caption = ("The copies that made the winner's final state, its donors' included: at each "
               "step the member copied the other's whole state, then each mutable key was "
               "multiplied (×) or resampled (old → new).")  # fmt: skip
    return Table(cols, rows, caption, numeric={0, 1, 2, 3})
