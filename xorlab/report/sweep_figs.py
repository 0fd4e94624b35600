"""The sweep figures that aggregate over members, each drawn from a ``Plan`` (which keys colour
and split what).

- ``loss_figure``: loss per step, one line per point (the median over its seeds, with a min-max
  band), coloured by ``plan.color``, one panel per value of ``plan.facet``.
- ``heatmap_figure`` (drawn in ``heatmap``, imported from here too): a final metric over
  ``plan.x`` x ``plan.y`` (the median of the members in each cell); a scatter plot instead when
  a key has too many distinct numbers for cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots
from .figs import (
    GHOST_COLOR,
    WIDTH,
    finite_xy,
    log_y,
    masked,
    note,
    wants_log,
)
from .heatmap import heatmap_figure  # sweep.py imports it from here
from .points import Plan, Point
from .read import Member, show

__all__ = ["heatmap_figure", "line_styles", "loss_figure", "median_band"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_CURVE_POINTS = 1500  # per median line; longer runs are thinned evenly


# --- loss curves --------------------------------------------------------------------------------


def _curve(m: Member) -> tuple[np.ndarray, np.ndarray]:
    return m.run.column("step"), m.run.column("loss")


def median_band(
    curves: list[tuple[np.ndarray, np.ndarray]], log: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, median, min, max) of the finite values of several curves at their common steps;
    NaN at steps where no curve has a value, so a plotted line breaks there."""
    curves = [(x[np.isfinite(x)], masked(y[np.isfinite(x)], log)) for x, y in curves]
    curves = [(x, y) for x, y in curves if np.isfinite(y).any()]
    if not curves:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    xs = np.unique(np.concatenate([x for x, _ in curves]))  # (S,)
    if xs.size > MAX_CURVE_POINTS:
        xs = xs[np.linspace(0, xs.size - 1, MAX_CURVE_POINTS).round().astype(int)]
    M = np.full((xs.size, len(curves)), np.nan)  # (S, members)
    for j, (x, y) in enumerate(curves):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        idx = np.clip(np.searchsorted(x, xs), 0, x.size - 1)
        hit = x[idx] == xs
        M[hit, j] = y[idx[hit]]
    rows = np.isfinite(M).any(axis=1)  # nanmedian warns on all-NaN rows: leave those NaN
    med, lo, hi = (np.full(xs.size, np.nan) for _ in range(3))
    med[rows] = np.nanmedian(M[rows], axis=1)
    lo[rows] = np.nanmin(M[rows], axis=1)
    hi[rows] = np.nanmax(M[rows], axis=1)
    return xs, med, lo, hi


def _grid_shape(n: int) -> tuple[int, int]:
    ncols = n if n <= 4 else (3 if n in (5, 6, 9) else 4)
    return math.ceil(n / ncols), ncols


LINE_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (6, 1.5, 1, 1.5, 1, 1.5)), (0, (9, 3)))


@dataclass
class LineStyles:
    """How lines of one colour in one panel are told apart: the axes neither the colour nor the
    panel shows, one line style per combination of their values (its legend label)."""

    keys: list[str]  # the axes the line styles stand for
    styles: dict[str, Any]  # a combination's label ("reg.strength=0, hidden=[3]") -> line style
    merged: int = 0  # combinations, when there are too many to draw apart (all drawn solid)

    def label(self, plan: Plan, p: Point) -> str:
        return ", ".join(f"{plan.name(k)}={show(p.values.get(k))}" for k in self.keys)

    def __call__(self, plan: Plan, p: Point) -> Any:
        return self.styles.get(self.label(plan, p), "-")


def line_styles(plan: Plan, panels: list[tuple[str, list[Point]]]) -> LineStyles:
    """A line style per combination of the other axes, when a panel holds two points that the
    colour does not tell apart; none needed otherwise."""
    color = plan.color
    tie = set(plan.view.part("zip"))
    shown = {color.key if color is not None else None, plan.facet}
    if shown & tie:  # zipped keys move with the key that is shown
        shown |= tie
    keys = [a for a in plan.view.axes if a not in shown]
    alike = any(
        len(group) != len({show(p.values.get(color.key)) if color else "" for p in group})
        for _, group in panels
    )
    if not keys or not alike:
        return LineStyles([], {})
    out = LineStyles(keys, {})
    combos = list(dict.fromkeys(out.label(plan, p) for _, group in panels for p in group))
    if len(combos) > len(LINE_STYLES):
        out.merged = len(combos)
        return out
    out.styles = dict(zip(combos, LINE_STYLES))
    return out


def _draw_point(
    ax: Axes, p: Point, color: str, log: bool, *, lw: float = 1.8, ls: Any = "-"
) -> bool:
    """A point's median loss with its band and x marks where members diverged."""
    curves = [_curve(m) for m in p.members]
    xs, med, lo, hi = median_band(curves, log)
    if not xs.size:
        return False
    if sum(1 for x, y in curves if np.isfinite(y).any()) > 1:
        ax.fill_between(xs, lo, hi, color=color, alpha=0.18, lw=0)
    ax.plot(xs, med, color=color, lw=lw, ls=ls, zorder=3)
    for m in p.diverged:
        x, y = finite_xy(*_curve(m), log=log)
        if x.size:
            ax.plot(x[-1:], y[-1:], ls="none", marker="x", ms=8, mew=2, color=color, zorder=4)
    return True


def loss_figure(plan: Plan) -> Figure:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    points, color, facet = plan.points, plan.color, plan.facet
    solo = facet is not None and color is not None and facet == color.key
    panels: list[tuple[str, list[Point]]]
    if facet is None:
        panels = [("", points)]
    else:
        panels = []
        for v in plan.view.values(facet):
            members = [p for p in points if show(p.values.get(facet)) == show(v)]
            if members:
                title = members[0].label if solo else f"{plan.name(facet)}={show(v)}"
                panels.append((title, members))
    nrows, ncols = _grid_shape(len(panels))
    if len(panels) == 1:
        fig = plots.new_figure(WIDTH * 0.85, 5.4)
    else:
        fig = plots.new_figure(WIDTH, 0.6 + 3.2 * nrows)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    every = np.concatenate([m.run.column("loss") for m in plan.view.members] + [np.zeros(0)])
    log = wants_log(every)
    styles = line_styles(plan, panels)
    for ax, (title, group) in zip(axes, panels):
        if solo:
            for other in points:
                if other not in group:
                    xs, med, _, _ = median_band([_curve(m) for m in other.members], log)
                    ax.plot(xs, med, color=GHOST_COLOR, lw=1.0, zorder=1)
        drawn = [
            _draw_point(
                ax,
                p,
                color(p.values.get(color.key)) if color else "#333333",
                log,
                ls=styles(plan, p),
            )
            for p in group
        ]
        if not any(drawn):
            note(ax, "no loss values")
        if solo and group:
            p = group[0]
            title += f"\n{len(p.bad)}/{len(p.finished)} blew up or diverged"
        ax.set_title(title, fontsize=10.5, color="#111111")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if log:
        from matplotlib.ticker import NullLocator

        log_y(axes[0], every)
        axes[0].yaxis.set_minor_locator(NullLocator())  # shared by every panel; saves ~1 s
    for ax in axes[: len(panels)]:
        if ax.get_subplotspec().is_last_row() or len(panels) <= ncols:
            ax.set_xlabel("training step")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("loss" + (" (log scale)" if log else ""))
    handles: list[Any] = []
    if color is not None and not solo:
        handles += color.legend_handles()
    seeds = max((len(p.members) for p in points), default=1)
    if seeds > 1:
        handles.append(Patch(color="#888888", alpha=0.3, label="min–max over seeds"))
    if any(p.diverged for p in points):
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="x",
                ms=8,
                mew=2,
                color="#444444",
                label="diverged (last finite loss)",
            )
        )
    if handles:
        legend_title = color.name if color is not None and not solo else None
        fig.legend(handles=handles, loc="outside right upper", fontsize=9, title=legend_title)
    if styles.styles:
        style_handles = [
            Line2D([], [], color="#444444", lw=1.8, ls=ls, label=lab)
            for lab, ls in styles.styles.items()
        ]
        fig.legend(
            handles=style_handles,
            loc="outside right lower",
            fontsize=9,
            title=", ".join(plan.name(k) for k in styles.keys),
            handlelength=3.2,
        )
    if color is not None and not solo:
        color.colorbar(fig, axes[: len(panels)].tolist())
    what = "median over seeds" if seeds > 1 else "one line per member"
    split = f", one panel per {plan.name(facet)}" if facet and not solo else ""
    if solo:
        split = f", one panel per {plan.name(facet)} (the others in grey)"
    by = f", coloured by {color.name}" if color is not None and not solo else ""
    title = f"Loss per step ({what}){by}{split}"
    if styles.styles:  # the second line: what the line styles stand for
        title = f"Loss per step ({what}){split}\n{by[2:]}, line style by "
        title += " and ".join(plan.name(k) for k in styles.keys)
    if styles.merged:
        title += (
            f"\nlines of one colour in a panel differ in "
            f"{' and '.join(plan.name(k) for k in styles.keys)} ({styles.merged} combinations, "
            "too many to tell apart: drawn alike)"
        )
    fig.suptitle(title, fontsize=12, fontweight="bold")
    return fig
