"""The sweep figures that aggregate over members, each drawn from a ``Plan`` (which keys colour
and split what).

- ``loss_figure``: loss per step, one line per point (the median over its seeds, with a min-max
  band), coloured by ``plan.color``, one panel per value of ``plan.facet``.
- ``heatmap_figure``: a final metric over ``plan.x`` x ``plan.y`` (the median of the members in
  each cell); a scatter plot instead when a key has too many distinct numbers for cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots
from ..plots import PLOT_MAX
from .figs import (
    DIVERGE_COLOR,
    GHOST_COLOR,
    WIDTH,
    finite_xy,
    fmt,
    log_y,
    note,
    readable,
    wants_log,
)
from .points import FINISHED, Plan, Point, metric_value
from .read import Member, show

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_CURVE_POINTS = 1500  # per median line; longer runs are thinned evenly
MAX_CELLS = 12  # distinct values per heatmap axis; more numbers -> a scatter plot


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


def masked(y: np.ndarray, log: bool) -> np.ndarray:
    """``y`` with the values a plot cannot show (non-finite, huge, <= 0 on a log axis) as NaN."""
    keep = np.isfinite(y) & (np.abs(y) <= PLOT_MAX) & ((y > 0) if log else True)
    return np.where(keep, y, np.nan)


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


# --- heatmap ------------------------------------------------------------------------------------


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _cmap(plan: Plan) -> str:
    return "viridis_r" if plan.metric.lower_is_better else "viridis"  # bright is good


def _norm(values: np.ndarray) -> Any:
    """(norm, log scale?) for a colour scale over the values a plot can show: finite and at most
    PLOT_MAX in size (the axis maths of larger ones overflows); larger ones get the colour of the
    top of the scale (see ``_extend``)."""
    from matplotlib.colors import LogNorm, Normalize

    fin = values[np.isfinite(values) & (np.abs(values) <= PLOT_MAX)]
    if not fin.size:
        return Normalize(0, 1), False
    if wants_log(fin) and (fin > 0).all():
        return LogNorm(float(fin.min()), float(fin.max())), True
    lo, hi = float(fin.min()), float(fin.max())
    return Normalize(lo, hi if hi > lo else lo + 1e-12), False


def _extend(values: np.ndarray, norm: Any) -> str:
    """'max' when some value lies above the colour scale (shown as its top colour), or 'neither'."""
    fin = values[np.isfinite(values)]
    return "max" if norm.vmax is not None and (fin > norm.vmax).any() else "neither"


def _onto_scale(values: np.ndarray, norm: Any) -> np.ndarray:
    """Finite values clipped to just outside the colour scale, so that those beyond it take its
    end colours and no colour lookup overflows (1e296 on a scale that ends at 1e3); NaN stays."""
    lo, hi = float(norm.vmin), float(norm.vmax)
    if norm.__class__.__name__ == "LogNorm":
        below, above = lo / 2, hi * 2
    else:
        below, above = lo - (hi - lo), hi + (hi - lo)
    out = values.astype(float).copy()
    fin = np.isfinite(out)
    out[fin] = np.clip(out[fin], below, above)
    return out


def _cell_text(vals: list[float], members: list[Member], metric: str) -> str:
    """The median, and how many of the cell's finished members diverged or blew up."""
    done = [m for m in members if m.run.status in FINISHED]
    div = sum(m.run.status == "diverged" for m in done)
    blew = sum(m.run.first_blowup is not None and m.run.status != "diverged" for m in done)
    if vals:
        med = float(np.median(vals))
        text = f"{med:.3f}" if "acc" in metric else fmt(med, 3)
    else:
        text = "–" if done else "\n".join(sorted({m.run.status for m in members}))
    of = f"/{len(done)} " if len(done) > 1 else " "
    if div:
        text += f"\n{div if len(done) > 1 else ''}{of}diverged".replace("\n ", "\n")
    if blew:
        text += f"\n{blew if len(done) > 1 else ''}{of}blew up".replace("\n ", "\n")
    return text


def heatmap_figure(plan: Plan) -> Figure | None:
    """The metric over plan.x (columns) and plan.y (rows); None when there is no x key."""
    if plan.x is None:
        return None
    view, metric = plan.view, plan.metric
    xv = view.values(plan.x)
    yv = view.values(plan.y) if plan.y is not None else [None]
    if (len(xv) > MAX_CELLS and _numeric(xv)) or (len(yv) > MAX_CELLS and _numeric(yv)):
        return scatter_figure(plan)
    cells: dict[tuple[str, str], list[Member]] = {}
    for m in view.members:
        key = (show(view.value(m, plan.x)), show(view.value(m, plan.y)) if plan.y else "")
        cells.setdefault(key, []).append(m)
    Z = np.full((len(yv), len(xv)), np.nan)  # (rows, cols)
    texts = [["" for _ in xv] for _ in yv]
    for i, y in enumerate(yv):
        for j, x in enumerate(xv):
            members = cells.get((show(x), show(y) if plan.y else ""), [])
            done = [m for m in members if m.run.status in FINISHED]
            vals = [v for m in done if (v := metric_value(m, metric.name)) is not None]
            if vals:
                Z[i, j] = float(np.median(vals))
            texts[i][j] = _cell_text(vals, members, metric.name) if members else ""
    import matplotlib

    cmap = matplotlib.colormaps[_cmap(plan)].with_extremes(bad="#eeeeee")
    norm, log = _norm(Z)
    extend = _extend(Z, norm)
    Z = _onto_scale(Z, norm)
    w = min(WIDTH, max(6.0, 1.15 * len(xv) + 3.2))
    h = min(9.0, max(3.0, 0.62 * len(yv) + 2.2))
    fig = plots.new_figure(w, h)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(Z), cmap=cmap, norm=norm, aspect="auto")
    for i in range(len(yv)):
        for j in range(len(xv)):
            rgba = cmap(norm(Z[i, j])) if np.isfinite(Z[i, j]) else (0.93, 0.93, 0.93, 1)
            dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
            ax.text(
                j,
                i,
                texts[i][j],
                ha="center",
                va="center",
                fontsize=8.5,
                color="white" if dark else "#111111",
            )
    ax.set_xticks(range(len(xv)), [show(v) for v in xv], rotation=30 if len(xv) > 6 else 0)
    ax.set_yticks(range(len(yv)), [show(v) if v is not None else "" for v in yv])
    _color_ticks(plan, ax.get_xticklabels(), xv, plan.x)
    _color_ticks(plan, ax.get_yticklabels(), yv, plan.y)
    ax.set_xlabel(plan.name(plan.x))
    ax.set_ylabel(plan.name(plan.y) if plan.y else "")
    ax.tick_params(length=0)
    cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02, extend=extend)
    cb.set_label(metric.label + (" (log scale)" if log else ""))
    seeds = "median over the members in each cell" if _multi(cells) else "one member per cell"
    better = "lower is better" if metric.lower_is_better else "higher is better"
    ax.set_title(f"{seeds}; {better}, shown brighter", fontsize=10.5)
    fig.suptitle(
        f"{metric.label} by {plan.name(plan.x)}" + (f" and {plan.name(plan.y)}" if plan.y else ""),
        fontsize=12,
        fontweight="bold",
    )
    return fig


def _float(v: Any) -> float:
    return float(v) if _numeric([v]) and v is not None else float("nan")


def _multi(cells: dict[Any, list[Member]]) -> bool:
    return any(len(v) > 1 for v in cells.values())


def _color_ticks(plan: Plan, labels: list[Any], values: list[Any], key: str | None) -> None:
    if plan.color is None or key != plan.color.key or plan.color.continuous:
        return
    for lab, v in zip(labels, values):
        lab.set_color(readable(plan.color(v)))
        lab.set_fontweight("bold")


def scatter_figure(plan: Plan) -> Figure:
    """Each member at (x, y), coloured by the metric: for keys with many distinct numbers."""
    import matplotlib

    view, metric = plan.view, plan.metric
    fig = plots.new_figure(9.5, 6.5)
    ax = fig.add_subplot()
    coords = []
    for key, set_ticks in ((plan.x, ax.set_xticks), (plan.y, ax.set_yticks)):
        if key is None:
            coords.append([0.0] * len(view.members))
            continue
        vals = view.values(key)
        if _numeric(vals):
            coords.append([_float(view.value(m, key)) for m in view.members])
        else:  # categories at 0, 1, 2, ...
            where = {show(v): i for i, v in enumerate(vals)}
            coords.append(
                [float(where.get(show(view.value(m, key)), np.nan)) for m in view.members]
            )
            set_ticks(range(len(vals)), [show(v) for v in vals])
    zs = [metric_value(m, metric.name) for m in view.members]
    x, y = np.array(coords[0], dtype=float), np.array(coords[1], dtype=float)
    z = np.array([np.nan if v is None else v for v in zs], dtype=float)
    d = np.array([m.run.status == "diverged" for m in view.members])
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, z, d = x[keep], y[keep], z[keep], d[keep]
    norm, log = _norm(z)
    extend = _extend(z, norm)
    z = _onto_scale(z, norm)
    cmap = matplotlib.colormaps[_cmap(plan)]
    ok = np.isfinite(z)
    sc = ax.scatter(x[ok], y[ok], c=z[ok], cmap=cmap, norm=norm, s=60, edgecolors="#333333", lw=0.5)
    if (~ok).any():
        ax.scatter(
            x[~ok],
            y[~ok],
            marker="x",
            color=DIVERGE_COLOR,
            s=60,
            lw=2,
            label="no value (diverged or failed)" if d[~ok].any() else "no value",
        )
        ax.legend(fontsize=9, loc="best")
    for key, arr, setter in ((plan.x, x, ax.set_xscale), (plan.y, y, ax.set_yscale)):
        if key is not None and _numeric(view.values(key)) and wants_log(arr) and (arr > 0).all():
            setter("log")
    ax.set_xlabel(plan.name(plan.x))
    ax.set_ylabel(plan.name(plan.y) if plan.y else "")
    ax.grid(True, alpha=0.3)
    cb = fig.colorbar(sc, ax=ax, shrink=0.9, extend=extend)
    cb.set_label(metric.label + (" (log scale)" if log else ""))
    by = plan.name(plan.x) + (f" and {plan.name(plan.y)}" if plan.y else "")
    fig.suptitle(f"{metric.label} by {by} (one dot per member)", fontsize=12, fontweight="bold")
    return fig
