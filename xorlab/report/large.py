"""The report of a large sweep (more than ``LARGE_FROM`` members): views that still say something
at 10,000 members, where a curve per member or a picture per point would be a blur.

- success rate (final train accuracy >= ``SUCCESS_ACC``) over two keys as a heatmap, or over one
  as bars; a continuous key (a random search's) is binned, log-spaced when it spans decades;
- the loss curves as quantile bands (median, 25-75 % and 10-90 % of members) per bin of the
  first key, the whole sweep's median in grey behind each;
- a histogram of the final data loss, succeeded and failed members stacked;
- a sample of decision boundaries: the best, the worst and members spread through the sweep;
- the best and the worst members as a table (``xorlab export`` writes any member's run folder).

The whole table stays in summary.csv. What is read: the records (the summary table, in memory,
as summary.csv has it), one loss column of metrics/ part by part with pyarrow (``member``, ``step``
and ``data_loss`` only, each member's curve thinned to ``CURVE_STEPS`` steps as float32: 10,000
members hold 5 MB), and the weights of the dozen members drawn. Never every member's metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import XorlabError
from ..members import Members, open_sweep
from ..rundir import FINISHED
from ..store import METRICS
from .doc import Doc, Table
from .figs import fmt, fmt_acc
from .read import display_names, show

if TYPE_CHECKING:
    pass

LARGE_FROM = 200  # a sweep of more members than this gets this report
SUCCESS_ACC = 0.9  # a member succeeded when its final train accuracy is at least this
CURVE_STEPS = 120  # step positions kept per member for the bands
MAX_CATEGORIES = 10  # a key with more distinct values than this is binned
N_BINS = 8
N_EXTREMES = 10  # rows in the best and the worst tables
N_BOUNDARIES = 4  # best, worst and spread each
METRIC_NAMES = {  # --metric: what ranks the best and the worst members
    "final_loss": ("final_data_loss", "final data loss", True),  # never the penalty's strength
    "final_train_acc": ("final_train_acc", "final train accuracy", False),
    "final_test_acc": ("final_test_acc", "final test accuracy", False),
    "wall_s": ("wall_s", "wall time (s)", True),
}
OK_COLOR, FAIL_COLOR = "#1a9850", "#d73027"


@dataclass
class Binned:
    """One key's members in bins: ``codes[i]`` is member i's bin (-1: no value)."""

    key: str
    name: str
    labels: list[str]
    codes: np.ndarray
    edges: np.ndarray | None = None  # bin edges of a continuous key


@dataclass
class LargeSweepView:
    path: Path
    name: str
    members: Members
    table: pd.DataFrame  # summary.csv's rows, as the records have them now
    keys: list[str]  # varied keys (summary.csv columns), variant first
    x: str | None
    y: str | None
    metric: str
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> dict[str, str]:
        return {"variant": "variant", "seed": "seed", **display_names(self.keys)}

    @property
    def success(self) -> np.ndarray:
        acc = pd.to_numeric(self.table["final_train_acc"], errors="coerce").to_numpy(float)
        finished = self.table["status"].isin(FINISHED).to_numpy()
        with np.errstate(invalid="ignore"):
            return finished & (acc >= SUCCESS_ACC)


def read_large(path: Path, *, x: str | None, y: str | None, metric: str) -> LargeSweepView | None:
    """A large sweep's view (``x``, ``y`` and ``metric`` checked), or None for a small sweep or
    one whose sweep.yaml cannot be read (the ordinary report handles those)."""
    from ..sweeprun import summary_frame

    try:
        members = open_sweep(path)
    except XorlabError:
        return None
    if len(members) <= LARGE_FROM:
        return None
    sweep = members.sweep
    store = members.store
    table = summary_frame(sweep, store.entries(), store.member_folders())
    keys = (["variant"] if "variant" in table else []) + [
        k for k in sweep.varied_keys if k != "seed" and k in table
    ]
    if table["seed"].nunique() > 1:
        keys.append("seed")
    view = LargeSweepView(path, sweep.name, members, table, keys, None, None, metric)
    if metric not in METRIC_NAMES:
        raise XorlabError(f"unknown metric {metric!r} for a large sweep; use one of: "
                          f"{', '.join(METRIC_NAMES)}", file=str(path), key="--metric")  # fmt: skip
    view.x = _resolve(view, x, "--x") if x is not None else None
    view.y = _resolve(view, y, "--y") if y is not None else None
    if view.x is not None and view.x == view.y:
        raise XorlabError(f"--x and --y are both {view.x!r}; give two different keys",
                          file=str(path), key="--y")  # fmt: skip
    by_count = sorted(keys, key=lambda k: -table[k].nunique())  # ties keep the sweep's order
    defaults = [k for k in by_count if k not in (view.x, view.y) and k != "seed"]
    if view.x is None and defaults:
        view.x = defaults.pop(0)
    if view.y is None and defaults:
        view.y = defaults.pop(0)
    return view


def _resolve(view: LargeSweepView, key: str, option: str) -> str:
    by_name = {view.names.get(k, k): k for k in view.keys}
    if key in view.keys:
        return key
    if key in by_name:
        return by_name[key]
    allowed = ", ".join(view.names.get(k, k) for k in view.keys) or "(none: nothing varies)"
    raise XorlabError(f"{key!r} is not a key this sweep varies; use one of: {allowed}",
                      file=str(view.path), key=option)  # fmt: skip


# --- binning ------------------------------------------------------------------------------------


def binned(view: LargeSweepView, key: str) -> Binned:
    """A key's values in at most ``MAX_CATEGORIES`` categories (as they are) or ``N_BINS`` bins
    (numbers with more distinct values: log-spaced when all positive and spanning 20x or more)."""
    name = view.names.get(key, key)
    col = view.table[key]
    numbers = pd.to_numeric(col, errors="coerce")
    distinct = col.dropna().unique()
    numeric = bool(len(distinct)) and numbers.notna().sum() == col.notna().sum()
    if len(distinct) <= MAX_CATEGORIES or not numeric:
        order = sorted(distinct, key=float) if numeric else list(dict.fromkeys(col.dropna()))
        where = {v: i for i, v in enumerate(order)}
        codes = np.array([where.get(v, -1) if v == v else -1 for v in col], dtype=int)
        codes = np.where(_pruned(view), -1, codes)
        return Binned(key, name, [show(_plain(v)) for v in order], codes)
    v = numbers.to_numpy(float)
    lo, hi = np.nanmin(v), np.nanmax(v)
    log = lo > 0 and hi / lo >= 20
    edges = np.geomspace(lo, hi, N_BINS + 1) if log else np.linspace(lo, hi, N_BINS + 1)
    codes = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, N_BINS - 1)
    codes = np.where(np.isnan(v) | _pruned(view), -1, codes)
    labels = [f"{show(float(a))}–{show(float(b))}" for a, b in zip(edges[:-1], edges[1:])]
    return Binned(key, name, labels, codes, edges)


def _pruned(view: LargeSweepView) -> np.ndarray:
    """Members a search stopped: in no bin, neither succeeded nor failed."""
    return (view.table["status"] == "pruned").to_numpy()


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def rates(ok: np.ndarray, codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(success rate, member count) per bin 0..n-1 (NaN rate where a bin is empty)."""
    inside = codes >= 0
    counts = np.bincount(codes[inside], minlength=n).astype(float)
    wins = np.bincount(codes[inside], weights=ok[inside].astype(float), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, wins / counts, np.nan), counts


# --- reading the curves -------------------------------------------------------------------------


def loss_curves(view: LargeSweepView) -> tuple[np.ndarray, np.ndarray, str]:
    """(steps (S,), curves (members, S) float32, column): each finished member's data loss
    (else loss) at ``CURVE_STEPS`` evenly spaced steps (its last logged row at or before each;
    NaN past its last row), read part by part, three columns at a time."""
    import pyarrow.parquet as pq

    n = len(view.table)
    total = int(max((m.config.train.steps for m in view.members.sweep.members), default=1))
    steps = np.unique(np.linspace(0, max(total - 1, 0), CURVE_STEPS).round().astype(np.int64))
    curves = np.full((n, len(steps)), np.nan, dtype=np.float32)
    folder = view.path / METRICS
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    column = "loss"
    if files and "data_loss" in pq.read_schema(files[0]).names:
        column = "data_loss"
    finished = set(view.table.loc[view.table["status"].isin(FINISHED), "index"].tolist())
    for f in files:
        try:
            t = pq.read_table(f, columns=["member", "step", column])
        except (OSError, ValueError, KeyError) as exc:
            view.problems.append(f"metrics/{f.name} cannot be read ({exc})")
            continue
        member = t.column("member").to_numpy()
        step = t.column("step").to_numpy()
        value = t.column(column).to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.r_[True, member[1:] != member[:-1]])
        ends = np.r_[starts[1:], len(member)]
        for a, b in zip(starts.tolist(), ends.tolist()):
            i = int(member[a])
            if i not in finished or not 0 <= i < n:
                continue  # rows of a member a resume set aside, or not this sweep's
            s = step[a:b]
            at = np.searchsorted(s, steps, side="right") - 1
            ok = (at >= 0) & (steps <= s[-1])
            curves[i, ok] = value[a:b][at[ok]]
    return steps, curves, column


# --- helpers of the figures (large_figs.py) ---------------------------------------------------


def sample_members(view: LargeSweepView) -> list[tuple[str, int]]:
    """(why, index): the best and the worst finished members by the metric, then members spread
    evenly through the sweep's order."""
    ranked = _ranked(view)
    chosen: list[tuple[str, int]] = []
    for why, idx in (("best", ranked[:N_BOUNDARIES]), ("worst", ranked[::-1][:N_BOUNDARIES])):
        chosen += [(why, i) for i in idx if i not in {c for _, c in chosen}]
    finished = view.table.loc[view.table["status"].isin(FINISHED), "index"].tolist()
    if finished:
        spread = [finished[int(k * len(finished) / N_BOUNDARIES)] for k in range(N_BOUNDARIES)]
        chosen += [("spread", i) for i in spread if i not in {c for _, c in chosen}]
    return chosen


def _ranked(view: LargeSweepView) -> list[int]:
    """Indices of the finished members with a value, best first (ties: lower index)."""
    col, _, lower = METRIC_NAMES[view.metric]
    t = view.table
    v = pd.to_numeric(t[col], errors="coerce")
    keep = t["status"].isin(FINISHED) & v.notna()
    df = pd.DataFrame({"index": t["index"][keep], "v": v[keep]})
    df = df.sort_values(["v", "index"], ascending=[lower, True], kind="stable")
    return [int(i) for i in df["index"]]


def _pct(r: float) -> str:
    """A share as a reader wants it: 40%, 0.3% (never "0%" for 3 of 1000), 100%."""
    if 0 < r < 0.01 or 0.99 < r < 1:
        return f"{r:.1%}"
    return f"{r:.0%}"


def _share(r: float, n: float) -> str:
    return f"{round(r * n)} of {int(n)}, {_pct(r)}"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# --- the document -------------------------------------------------------------------------------


def extremes_table(view: LargeSweepView) -> Table:
    col, label, _ = METRIC_NAMES[view.metric]
    ranked = _ranked(view)
    t = view.table.set_index("index")
    labels = [m.label for m in view.members.sweep.members]
    best = ranked[:N_EXTREMES]
    worst = [i for i in ranked[::-1][:N_EXTREMES] if i not in best]
    names = [view.names.get(k, k) for k in view.keys]
    columns = ["", "index", "member", "status", *names, label, "final train acc"]
    rows = []
    for why, idx in (("best", best), ("worst", worst)):
        for i in idx:
            row = [why, str(i), labels[i], str(t.at[i, "status"])]
            row += [show(_plain(t.at[i, k])) for k in view.keys]
            value = _num(t.at[i, col])
            row += [fmt_acc(value) if "acc" in col else fmt(value, 4),
                    fmt_acc(_num(t.at[i, "final_train_acc"]))]  # fmt: skip
            rows.append(row)
    numeric = {1, *range(4 + len(names), len(columns))}
    caption = (f"The {len(best)} best and {len(worst)} worst finished members by {label}; every "
               "member is in summary.csv. `xorlab export SWEEP INDEX --to DIR` writes one's run "
               "folder (metrics.csv, weights, plots).")  # fmt: skip
    return Table(columns, rows, caption, numeric=numeric)


def intro(view: LargeSweepView) -> list[str]:
    t = view.table
    n = len(t)
    counts = t["status"].value_counts().to_dict()
    judged = ~_pruned(view)  # a pruned member was stopped by the search: not a failure
    ok = view.success  # pruned members are in no bin of binned()
    status = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    n_ok, n_j = int(ok[judged].sum()), int(judged.sum())
    of = f"{n_ok:,} of {n_j:,} ({n_ok / n_j if n_j else 0.0:.1%})"
    text = [f"**{n:,} members** ({status}). **{of} succeeded**: final train accuracy ≥ "
            f"{SUCCESS_ACC:g}" + ("." if judged.all() else ", of the members the search did "
                                  "not prune.")]  # fmt: skip
    if view.x is not None:
        bx = binned(view, view.x)
        rate, count = rates(ok, bx.codes, len(bx.labels))
        have = [g for g in range(len(bx.labels)) if count[g] > 0]
        if len(have) > 1:
            best = max(have, key=lambda g: (rate[g], -g))
            worst = min(have, key=lambda g: (rate[g], g))
            text.append(
                f"By {bx.name}: the success rate is highest at {bx.labels[best]} "
                f"({_share(rate[best], count[best])}) and lowest at {bx.labels[worst]} "
                f"({_share(rate[worst], count[worst])}). Failed, by {bx.name}: "
                + "; ".join(f"{bx.labels[g]}: {_share(1 - rate[g], count[g])}" for g in have)
                + "."
            )
    ranked = _ranked(view)
    if ranked:
        i = ranked[0]
        _, label, _ = METRIC_NAMES[view.metric]
        m = view.members.sweep.members[i]
        text.append(f"Best by {label}: member {i} (`{m.label}`).")
    text.append(
        "Each member's numbers are in summary.csv, its per-step metrics in metrics/ "
        "(`pandas.read_parquet(SWEEP / 'metrics')`, DuckDB or polars read it as one table)."
    )
    return text


def large_doc(view: LargeSweepView) -> Doc:
    from .large_figs import bands_figure, boundaries_figure, histogram_figure, success_figure
    from .search import search_sections
    from .sweep import png

    doc = Doc(f"Sweep report: {view.name}", str(view.path.name))
    top = doc.section("")
    for p in intro(view):
        top.para(p)
    steps, curves, column = loss_curves(view)
    for text in view.problems[:12]:
        top.note(text)
    search_sections(doc, view)  # only for a sweep with an adaptive search

    fig = success_figure(view)
    sec = doc.section("Success rate")
    if fig is None:
        sec.note("Nothing varies between the members but the seed: see the numbers above.")
    else:
        over = view.names.get(view.x or "", view.x or "")
        if view.y:
            over += f" and {view.names.get(view.y, view.y)}"
        sec.image("success.png", png(fig), f"Share of members whose final train accuracy is at "
                  f"least {SUCCESS_ACC:g}, by {over} (a number's range in bins; each cell: the "
                  "share and its member count). Choose the keys with --x and --y.")  # fmt: skip
    doc.section("Loss curves").image(
        "loss_bands.png",
        png(bands_figure(view, steps, curves, column)),
        f"The {column.replace('_', ' ')} of the finished members per step: median line, the "
        "middle 50 % and 80 % of members as bands, the whole sweep's median in grey. A member "
        "that diverged leaves the bands at its last logged step.",
    )
    hist = histogram_figure(view)
    if hist is not None:
        doc.section("Final loss").image(
            "final_loss_hist.png", png(hist),
            "How the final data loss of the finished members is spread (log scale): members "
            "that learned XOR and members that did not, stacked.",
        )  # fmt: skip
    fig, problems = boundaries_figure(view)
    sec = doc.section("Decision boundaries")
    if fig is not None:
        sec.image("boundaries.png", png(fig), "P(class 1) after training of a sample: the best "
                  "and the worst members by the metric, then members spread through the "
                  "sweep.")  # fmt: skip
    for p in problems:
        sec.note(p)
    doc.section("Best and worst members").table(extremes_table(view))
    return doc
