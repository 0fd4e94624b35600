"""The figures of a large sweep's report (``large.py`` reads the sweep and writes the page):
success rate by one or two keys, the loss as quantile bands, the final-loss histogram and a
sample of decision boundaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import plots
from ..parts import data_key
from ..store import SweepStore
from .figs import DIVERGE_COLOR, SMALL_RES, WIDTH, boundary_thumbnail, fmt_acc
from .large import (
    FAIL_COLOR,
    OK_COLOR,
    SUCCESS_ACC,
    LargeSweepView,
    _num,
    _pct,
    _plain,
    binned,
    rates,
    sample_members,
)
from .read import show

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(w: float, h: float) -> Figure:
    return plots.new_figure(w, h)


def success_figure(view: LargeSweepView) -> Figure | None:
    """Success rate over x and y (a heatmap), or over x alone (bars)."""
    if view.x is None:
        return None
    ok = view.success
    bx = binned(view, view.x)
    if view.y is None:
        rate, count = rates(ok, bx.codes, len(bx.labels))
        fig = _figure(min(WIDTH, 2.2 + 0.9 * len(bx.labels)), 4.0)
        ax = fig.add_subplot()
        pos = np.arange(len(bx.labels))
        ax.bar(pos, np.nan_to_num(rate), color=OK_COLOR, width=0.7, label="succeeded")
        ax.bar(pos, np.where(count > 0, 1 - np.nan_to_num(rate), 0), bottom=np.nan_to_num(rate),
               color=FAIL_COLOR, width=0.7, alpha=0.35, label="failed")  # fmt: skip
        for p, r, c in zip(pos.tolist(), rate.tolist(), count.tolist()):
            text = "no members" if c == 0 else f"{round(r * c)} of {int(c)}\n({_pct(r)})"
            ax.text(p, 0.5 if c == 0 else min(r, 0.9) + 0.03, text, ha="center", va="bottom",
                    fontsize=8.5)  # fmt: skip
        ax.set_xticks(pos, bx.labels, rotation=30 if bx.edges is not None else 0, ha="right"
                      if bx.edges is not None else "center", fontsize=8.5)  # fmt: skip
        ax.set_ylim(0, 1.08)
        ax.set_ylabel(f"share with final train accuracy ≥ {SUCCESS_ACC:g}")
        ax.set_xlabel(bx.name)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8.5, frameon=False)
        return fig
    by = binned(view, view.y)
    nx, ny = len(bx.labels), len(by.labels)
    cell = np.where((bx.codes >= 0) & (by.codes >= 0), by.codes * nx + bx.codes, -1)
    rate, count = rates(ok, cell, nx * ny)
    rate, count = rate.reshape(ny, nx), count.reshape(ny, nx)
    fig = _figure(min(WIDTH, 3.0 + 1.0 * nx), 1.6 + 0.55 * ny)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(rate), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto",
                   origin="lower")  # fmt: skip
    for r in range(ny):
        for c in range(nx):
            if count[r, c]:
                v = rate[r, c]
                ink = "white" if v < 0.25 or v > 0.8 else "black"
                ax.text(c, r, f"{v:.0%}\n{int(count[r, c])}", ha="center", va="center",
                        fontsize=7.5, color=ink)  # fmt: skip
    ax.set_xticks(range(nx), bx.labels, rotation=30 if bx.edges is not None else 0,
                  ha="right" if bx.edges is not None else "center", fontsize=8)  # fmt: skip
    ax.set_yticks(range(ny), by.labels, fontsize=8)
    ax.set_xlabel(bx.name)
    ax.set_ylabel(by.name)
    fig.colorbar(im, ax=ax, label=f"share with final train accuracy ≥ {SUCCESS_ACC:g}")
    return fig


def bands_figure(
    view: LargeSweepView, steps: np.ndarray, curves: np.ndarray, column: str
) -> Figure:
    """One panel per bin of x: its members' loss as quantile bands, the sweep's median in grey."""
    groups: list[tuple[str, np.ndarray]] = [("all members", np.arange(len(curves)))]
    if view.x is not None:
        bx = binned(view, view.x)
        groups = [(f"{bx.name} {label}", np.flatnonzero(bx.codes == g))
                  for g, label in enumerate(bx.labels)]  # fmt: skip
    n = len(groups)
    cols = n if n <= 5 else 4
    rows = -(-n // cols)
    fig = _figure(WIDTH if cols > 1 else 6.0, 0.6 + 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    with np.errstate(all="ignore"):
        shown = np.where(np.isfinite(curves) & (curves > 0), curves, np.nan)
        overall = _nanquantile(shown, [0.5])[0]
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        label, rows_k = groups[k]
        block = shown[rows_k]
        alive = np.isfinite(block).any(axis=1).sum()
        ax.plot(steps, overall, color="#b0b0b0", lw=1.2, label="whole sweep, median")
        if alive:
            q = _nanquantile(block, [0.1, 0.25, 0.5, 0.75, 0.9])
            ax.fill_between(steps, q[0], q[4], color="#4575b4", alpha=0.18, lw=0,
                            label="10–90 %")  # fmt: skip
            ax.fill_between(steps, q[1], q[3], color="#4575b4", alpha=0.35, lw=0,
                            label="25–75 %")  # fmt: skip
            ax.plot(steps, q[2], color="#08306b", lw=1.5, label="median")
        ax.set_title(f"{label} ({len(rows_k)})", fontsize=8.5)
        ax.set_yscale("log")
        ax.tick_params(labelsize=7.5)
        if k % cols == 0:
            ax.set_ylabel(column.replace("_", " "), fontsize=8.5)
        if k + cols >= n:  # nothing below it: the step axis is labelled here
            ax.set_xlabel("step", fontsize=8.5)
            ax.tick_params(labelbottom=True)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    return fig


def _nanquantile(a: np.ndarray, qs: list[float]) -> np.ndarray:
    """Quantiles over members (axis 0) ignoring NaN; NaN where a step has no value at all."""
    out = np.full((len(qs), a.shape[1]), np.nan)
    has = np.isfinite(a).any(axis=0)
    if has.any():
        out[:, has] = np.nanquantile(a[:, has].astype(np.float64), qs, axis=0)
    return out


def histogram_figure(view: LargeSweepView) -> Figure | None:
    """Final data loss of the finished members, succeeded and failed stacked (log x); members
    a search pruned are left out (their loss is from an early rung, not an end)."""
    t = view.table
    v = pd.to_numeric(t["final_data_loss"], errors="coerce").to_numpy(float)
    pruned = (t["status"] == "pruned").to_numpy()
    good = np.isfinite(v) & (v > 0) & ~pruned
    if not good.any():
        return None
    ok = view.success
    lo, hi = v[good].min(), v[good].max()
    edges = np.geomspace(lo, hi * 1.0001, 41) if hi > lo else np.array([lo * 0.9, lo * 1.1])
    fig = _figure(8.0, 3.6)
    ax = fig.add_subplot()
    ax.hist([v[good & ok], v[good & ~ok]], bins=edges.tolist(), stacked=True,
            color=[OK_COLOR, FAIL_COLOR],
            label=[f"final train accuracy ≥ {SUCCESS_ACC:g}",
                   f"below {SUCCESS_ACC:g}"])  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("final data loss")
    ax.set_ylabel("members")
    diverged = int((t["status"] == "diverged").sum())
    if diverged:
        ax.plot([], [], " ", label=f"{diverged} diverged (not shown)")
    if pruned.any():
        ax.plot([], [], " ", label=f"{int(pruned.sum())} pruned by the search (not shown)")
    ax.legend(fontsize=8.5, frameon=False)
    return fig


def boundaries_figure(view: LargeSweepView) -> tuple[Figure | None, list[str]]:
    from ..train import net_spec

    chosen = sample_members(view)
    if not chosen:
        return None, []
    cols = 4
    rows = -(-len(chosen) // cols)
    fig = _figure(WIDTH * 0.8, 0.5 + 2.55 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    problems = []
    store: SweepStore = view.members.store
    t = view.table.set_index("index")
    for ax, (why, i) in zip(axes.flat, chosen):
        m = view.members.sweep.members[i]
        ax.set_xticks([])
        ax.set_yticks([])
        try:
            _, final = store.params(i)
            data = store.data(data_key(m.config))
        except (KeyError, OSError, ValueError) as exc:
            problems.append(f"member {i}: no weights ({exc})")
            continue
        boundary_thumbnail(ax, final, net_spec(m.config), data, res=SMALL_RES, point_size=5.0)
        keys = ", ".join(f"{view.names.get(k, k)}={show(_plain(t.at[i, k]))}"
                         for k in view.keys[:2])  # fmt: skip
        acc = fmt_acc(_num(t.at[i, "final_train_acc"]))
        ax.set_title(f"#{i} {why} · acc {acc}\n{keys}", fontsize=7.5,
                     color=DIVERGE_COLOR if why == "worst" else "black")  # fmt: skip
    for ax in list(axes.flat)[len(chosen) :]:
        ax.set_visible(False)
    return fig, problems
