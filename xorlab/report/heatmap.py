"""The sweep page's heatmap: a final metric over ``plan.x`` x ``plan.y`` (the median of the
members in each cell); a scatter plot instead when a key has too many distinct numbers for cells."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots
from ..plots import PLOT_MAX
from .figs import DIVERGE_COLOR, WIDTH, fmt, readable, wants_log
from .points import FINISHED, Plan, metric_value
from .read import Member, show

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_CELLS = 12  # distinct values per heatmap axis; more numbers -> a scatter plot


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
