"""The sweep report's sharpness x lr: per point (a variant, or a setting of the grid), the median
over its seeds of sharpness x lr_t against the step, with the stability line at 2 (gradient
descent is unstable along the sharpest direction above it; (2 + 2mu) with momentum) and each
member's blow-ups marked. Drawn only when members logged sharpness (telemetry.sharpness_every).

The columns come from the sweep store, only the five needed (``members.read_metrics``); a sweep
folder without a store (members as run folders) is read from its members' metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import plots
from ..plots import PLOT_MAX
from .figs import WIDTH, wants_log
from .points import Plan, Point
from .read import SPIKE_RATIO, SweepView

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .doc import Doc

COLUMNS = ("step", "lr", "sharpness", "loss", "data_loss")
MAX_PANELS = 12  # points drawn; more are left out (evenly spaced through the sweep's order)
LINE_COLOR = "#D55E00"
BLOWUP_COLOR = "#CC79A7"
TITLE = "Sharpness × lr"
CAPTION = (
    "Sharpness (the largest eigenvalue of the loss's Hessian) times the step's learning rate, "
    "one panel per point: the line is the median over its seeds, the band spans the lowest and "
    "highest seed; the title gives the share of steps where the median is above the line. Above "
    "the dashed line at 2 ((2+2μ) with momentum; dotted) gradient descent is "
    "unstable along the sharpest direction (the edge of stability); triangles along the top mark "
    f"where a member's loss (the total or the data loss) blew up, above {SPIKE_RATIO:g}× its "
    "running minimum."
)


@dataclass
class PointSharpness:
    """One point's sharpness x lr: the median over its members at their common steps."""

    point: Point
    steps: np.ndarray  # (S,)
    median: np.ndarray  # (S,) NaN where no member has a value
    low: np.ndarray  # (S,)
    high: np.ndarray  # (S,)
    members: int  # members with a measured sharpness
    blowups: list[int] = field(default_factory=list)  # onset steps, every member's
    limit: float = 2.0  # the stability line of sharpness x lr: 2 + 2mu with momentum


def member_table(view: SweepView) -> dict[int, pd.DataFrame]:
    """Each member's rows of COLUMNS, by member index: from the store when the sweep has one
    (only these columns read), else, or when a part cannot be read, from the members' own
    metrics (where the report has already noted what is damaged)."""
    from ..members import read_metrics
    from ..store import METRICS

    if (view.path / METRICS).is_dir():
        try:
            df = read_metrics(view.path, list(COLUMNS))
        except Exception:  # noqa: BLE001 - a damaged part file, whatever pyarrow raises
            df = None
        if df is not None:
            return {int(k): g.reset_index(drop=True) for k, g in df.groupby("member", sort=True)}
    out = {}
    for m in view.members:
        cols = [c for c in COLUMNS if c in m.run.metrics]
        out[m.index] = m.run.metrics[cols].reset_index(drop=True)
    return out


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)


def blowup_onsets(df: pd.DataFrame) -> list[int]:
    """The steps where a run of rows above SPIKE_RATIO x the running minimum of the total or
    of the data loss begins (the same count as ``xorlab diagnose``)."""
    from ..diagnose import spikes

    hit = np.zeros(len(df), dtype=bool)
    for col in ("loss", "data_loss"):
        v = _num(df, col)
        if np.isfinite(v).any():
            for s in spikes(v)[0]:
                hit[s.onset : s.end + 1] = True
    starts = np.flatnonzero(hit & ~np.concatenate([[False], hit[:-1]]))
    steps = _num(df, "step")
    return [int(steps[i]) for i in starts]


def _limit(p: Point) -> float:
    cfg = next((m.run.config for m in p.members if m.run.config is not None), None)
    if cfg is None or cfg.optim.kind != "momentum":
        return 2.0
    return 2.0 + 2.0 * cfg.optim.momentum


def point_sharpness(pl: Plan, tables: dict[int, pd.DataFrame]) -> list[PointSharpness]:
    """Sharpness x lr_t per point that has a measured sharpness, in the plan's order."""
    from .sweep_figs import median_band

    out = []
    for p in pl.points:
        curves, onsets = [], []
        for m in p.members:
            df = tables.get(m.index)
            if df is None or not len(df):
                continue
            onsets += blowup_onsets(df)
            s, lr, st = _num(df, "sharpness"), _num(df, "lr"), _num(df, "step")
            with np.errstate(invalid="ignore", over="ignore"):
                y = s * lr
            ok = np.isfinite(y)
            if ok.any():
                curves.append((st[ok], y[ok]))
        if not curves:
            continue
        xs, med, lo, hi = median_band(curves, log=False)
        item = PointSharpness(p, xs, med, lo, hi, len(curves), sorted(onsets), _limit(p))
        out.append(item)
    return out


def sharpness_figure(pl: Plan, series: list[PointSharpness]) -> tuple[Figure, int]:
    """Small multiples, one panel per point (at most MAX_PANELS, evenly spaced); returns the
    figure and how many points were left out."""
    n = len(series)
    if n > MAX_PANELS:
        keep = np.linspace(0, n - 1, MAX_PANELS).round().astype(int)
        series = [series[i] for i in keep]
    ncols = min(len(series), 4 if len(series) != 3 else 3)
    nrows = math.ceil(len(series) / ncols)
    fig = plots.new_figure(WIDTH * (0.55 if ncols == 1 else 1.0), 0.7 + 2.9 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
    axes = axes.ravel()
    every = np.concatenate([s.high[np.isfinite(s.high)] for s in series] + [np.zeros(0)])
    every = every[np.abs(every) <= PLOT_MAX]
    log = wants_log(every)
    for ax, s in zip(axes, series):
        color = pl.color(s.point.values.get(pl.color.key)) if pl.color else "#333333"
        lo, hi, med = (
            np.where(np.abs(v) <= PLOT_MAX, v, np.nan) for v in (s.low, s.high, s.median)
        )
        if log:
            lo, hi, med = (np.where(v > 0, v, np.nan) for v in (lo, hi, med))
        if s.members > 1:
            ax.fill_between(s.steps, lo, hi, color=color, alpha=0.18, lw=0)
        ax.plot(s.steps, med, color=color, lw=1.6, zorder=3)
        ax.axhline(2.0, color=LINE_COLOR, lw=1.2, ls="--", zorder=2)
        if s.limit != 2.0:
            ax.axhline(s.limit, color=LINE_COLOR, lw=1.2, ls=":", zorder=2)
        if s.blowups:  # along the top: a member's onset, not a value of the median
            at = np.array(s.blowups, dtype=float)
            ax.plot(at, np.full(at.size, 0.95), ls="none", marker="v", ms=6, color=BLOWUP_COLOR,
                    mec="#111111", mew=0.5, zorder=4, transform=ax.get_xaxis_transform(),
                    clip_on=False)  # fmt: skip
        ok = np.isfinite(med)
        above = float(np.mean(med[ok] > s.limit)) if ok.any() else 0.0
        seeds = f"{s.members} seed" + ("" if s.members == 1 else "s")
        title = f"{s.point.label}\n{len(s.blowups)} blow-ups, {seeds}; above {s.limit:g}: "
        ax.set_title(f"{title}{above:.0%}", fontsize=9.5, color="#111111")
        ax.grid(True, alpha=0.3)
    if log:
        axes[0].set_yscale("log")
    else:
        top = max([float(np.nanmax(every)) if every.size else 0.0, 2.2])
        axes[0].set_ylim(0, top * 1.08)
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel("training step")
    for ax in axes[::ncols]:
        ax.set_ylabel("sharpness × lr_t")
    fig.suptitle("sharpness × lr per point, against the stability line at 2", fontsize=11)
    return fig, max(0, n - MAX_PANELS)


def sharpness_section(doc: Doc, pl: Plan) -> None:
    """The section, when at least one member logged sharpness; nothing otherwise."""
    series = point_sharpness(pl, member_table(pl.view))
    if not series:
        return
    fig, left_out = sharpness_figure(pl, series)
    sec = doc.section(TITLE)
    sec.image("sharpness_lr.png", plots.figure_png(fig), CAPTION)
    if left_out:
        sec.note(f"{MAX_PANELS} of {len(series)} points drawn, evenly spaced; {left_out} left out.")
    missing = len(pl.points) - len(series)
    if missing:
        sec.note(f"{missing} points logged no sharpness (telemetry.sharpness_every: 0).")
