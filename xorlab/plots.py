"""Plots of one run: loss, accuracy, decision boundary, and the tutorial's panel (the training GIF
of that panel is in ``gif``).

The panel reproduces the tutorial's figure: accuracy | learned decision boundary | loss.
Everything is drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas directly (no
pyplot, no global state), rendered to bytes in memory, and written with ``atomic_write_bytes``.

The decision boundary shows P(class 1) on a grid covering the data. For a softmax output that is
the second output; for the tutorial's sigmoid + mse output it is ``h1 / (h0 + h1)``, so that 0.5
is exactly where the argmax (the prediction used for accuracy) changes. Grid points where the
network's output is not finite (a diverged run) are NaN and drawn grey.

Each figure is one row of plots under a title, placed by ``layout_row`` in a single measuring
pass instead of matplotlib's constrained layout, which measures every axes twice per draw.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from .data import Dataset
from .nn import NetSpec, forward, stack_params
from .rundir import atomic_write_bytes
from .train import RunResult, net_spec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

Params = Mapping[str, np.ndarray]
Grid = tuple[np.ndarray, np.ndarray, np.ndarray]  # xx, yy, prob: each (res, res)

BOUNDARY_RES = 200  # grid points per side for the PNGs
PANEL_SIZE = (16.0, 5.2)  # inches: three plots side by side
PANEL_TITLE_PT = 12.0
PNG_DPI = 100
PNG_COMPRESS = 3  # zlib level: RGB at 3 is as small as matplotlib's RGBA at 6, in half the time
PLOT_MAX = 1e250  # larger "finite" losses are off the chart (axis maths would overflow)
LOG_SPAN = 100.0  # log loss axis when max/min of the positive finite losses exceeds this

CLASS_COLORS = ("#b2182b", "#2166ac")  # class 0 red, class 1 blue: the ends of RdBu
BAD_COLOR = "#c8c8c8"  # grid points where the network's output is not finite
IMAGE_ALPHA = 0.6  # a lighter background so points of either class stand out on it
SERIES_STYLE: dict[str, dict[str, Any]] = {
    "loss": {"color": "#222222", "lw": 1.8},
    "data_loss": {"color": "#1b9e77", "lw": 1.2, "ls": "--"},
    "reg_loss": {"color": "#d95f02", "lw": 1.2, "ls": ":"},
    "train_acc": {"color": "#2166ac", "lw": 1.8},
    "test_acc": {"color": "#e08214", "lw": 1.6, "ls": "--"},
}
DIVERGE_COLOR = "#cc0000"
# the colorbar's width, gap and height, each as a fraction of the plot's
CBAR: dict[str, Any] = {"fraction": 0.046, "pad": 0.03, "shrink": 0.9}


# --- titles -------------------------------------------------------------------------------------


def run_title(config: Any, *, status: str | None = None, diverged_at: int | None = None) -> str:
    """One line of the config's key facts, parts joined by ' · '.

    e.g. ``xor-h3 · hidden [3] sigmoid, bias · mse loss · sgd lr 0.5 · l2 λ=0.0001 · 1000 steps``;
    clip when not none, schedule when not constant, and the status when not 'completed'
    (``DIVERGED at step 31``). ``config`` is a ``Config``.
    """
    m, o, r = config.model, config.optim, config.regularization
    hidden = "[" + ", ".join(str(h) for h in m.hidden) + "]"
    parts = [
        str(config.name),
        (f"hidden {hidden} {m.activation}" if m.hidden else "no hidden layer")
        + (", bias" if m.bias else ""),
        f"{m.loss} loss",
        f"{o.kind} lr {o.lr:g}",
    ]
    if o.schedule.kind != "constant":
        parts.append(f"{o.schedule.kind} schedule")
    if o.clip.kind != "none":
        parts.append(f"clip {o.clip.kind} {o.clip.max:g}")
    parts.append("no penalty" if r.kind == "none" else f"{r.kind} λ={r.strength:g}")
    steps = config.train.steps
    parts.append(f"{steps} step" + ("" if steps == 1 else "s"))
    if status == "diverged":
        parts.append("DIVERGED" + (f" at step {diverged_at}" if diverged_at is not None else ""))
    elif status not in (None, "completed"):
        parts.append(str(status))
    return " · ".join(parts)


def wrap_title(title: str, max_chars: int) -> str:
    """Break a ' · '-joined title at the separators into lines of about equal length, each at
    most ``max_chars`` where possible."""
    n_lines = -(-len(title) // max(max_chars, 1))
    target = min(max_chars, -(-len(title) // max(n_lines, 1)) + 8)
    lines: list[str] = []
    for part in title.split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= target:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def _title_chars(fig_width_in: float, fontsize: float) -> int:
    return max(30, int(fig_width_in * 72 / (fontsize * 0.6)))


def fit_title(title: str, fig_width_in: float, fontsize: float) -> str:
    """``title`` on as few lines as fit a figure this wide in bold type, no end cut off: broken
    before a '(' and after a ';' where it can be (the lines as even as possible), else at
    spaces."""
    import itertools
    import re
    import textwrap

    chars = max(20, int(fig_width_in * 72 / (fontsize * 0.62)))
    if len(title) <= chars:
        return title
    parts = [p for p in re.split(r" (?=\()|(?<=;) ", title) if p]
    for k in range(2, len(parts) + 1):
        best: list[str] | None = None
        for cuts in itertools.combinations(range(1, len(parts)), k - 1):
            bounds = (0, *cuts, len(parts))
            lines = [" ".join(parts[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
            if max(map(len, lines)) <= chars and (
                best is None or max(map(len, lines)) < max(map(len, best))
            ):
                best = lines
        if best is not None:
            return "\n".join(best)
    return "\n".join(textwrap.wrap(title, chars, break_long_words=False)) or title


# --- the decision boundary ----------------------------------------------------------------------


def grid_bounds(X: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) covering the finite rows of ``X`` (N, 2), padded by ``margin`` x span."""
    X = np.asarray(X, dtype=float).reshape(-1, 2)
    X = X[np.isfinite(X).all(axis=1)]
    if X.shape[0] == 0:
        return -1.0, 1.0, -1.0, 1.0
    lo, hi = X.min(axis=0), X.max(axis=0)  # (2,)
    pad = np.maximum(margin * (hi - lo), 0.25)
    return (
        float(lo[0] - pad[0]),
        float(hi[0] + pad[0]),
        float(lo[1] - pad[1]),
        float(hi[1] + pad[1]),
    )


def class1_prob(params: Params, X: np.ndarray, spec: NetSpec) -> np.ndarray:
    """P(class 1) per row of ``X`` (N, 2) -> (N,), NaN where the output is not finite.

    softmax output: h[:, 1]; sigmoid (mse) output: h1 / (h0 + h1), so 0.5 is the argmax boundary.
    """
    with np.errstate(all="ignore"):
        out, _ = forward(params, X, spec)  # (..., N, C): params may be a stack
        out = np.asarray(out, dtype=float)
        p = out[..., 1] / (out[..., 0] + out[..., 1]) if spec.loss == "mse" else out[..., 1].copy()
        p[~np.isfinite(p)] = np.nan
        np.clip(p, 0.0, 1.0, out=p)  # NaN stays NaN
    return p


def boundary_grid(
    params: Params,
    spec: NetSpec,
    X: np.ndarray,
    resolution: int = BOUNDARY_RES,
    *,
    margin: float = 0.1,
) -> Grid:
    """Evaluate the network on a ``resolution`` x ``resolution`` grid covering ``X`` (N, 2).

    Returns ``(xx, yy, prob)``, each (res, res), rows along y: prob[i, j] = P(class 1) at
    (xx[i, j], yy[i, j]); NaN where the network's output is not finite.
    """
    xx, yy, pts = _grid_points(X, resolution, margin)
    prob = class1_prob(params, pts, spec).reshape(xx.shape)  # (res, res)
    return xx, yy, prob


def _grid_points(X: np.ndarray, resolution: int, margin: float = 0.1) -> Grid:
    """xx, yy (res, res), rows along y, covering ``X``, and their points (res*res, 2)."""
    x0, x1, y0, y1 = grid_bounds(X, margin)
    xx, yy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def boundary_grids(
    stack: Sequence[Params], spec: NetSpec, X: np.ndarray, resolution: int, chunk: int = 8
) -> list[Grid]:
    """``boundary_grid(params, spec, X, resolution)`` for each params of ``stack`` (the GIF's
    snapshots), ``chunk`` networks at a time as one stacked forward pass."""
    xx, yy, pts = _grid_points(X, resolution)
    grids: list[Grid] = []
    for i in range(0, len(stack), chunk):
        part = stack[i : i + chunk]
        probs = class1_prob(stack_params(part), pts, spec).reshape(
            len(part), *xx.shape
        )  # (F, r, r)
        grids += [(xx, yy, prob) for prob in probs]
    return grids


def _contour_segments(xx: np.ndarray, yy: np.ndarray, prob: np.ndarray) -> list[np.ndarray]:
    """The 0.5 level of ``prob`` as polylines (each (n, 2)); NaN cells are left out."""
    finite = np.isfinite(prob)
    if not finite.any():
        return []
    vals = prob[finite]
    if not (vals.min() < 0.5 < vals.max()):
        return []
    import contourpy  # a matplotlib dependency

    z = np.ma.masked_invalid(prob)
    gen = contourpy.contour_generator(xx[0], yy[:, 0], z, line_type="Separate")
    lines: list[np.ndarray] = cast(list, gen.lines(0.5))  # Separate: one (n, 2) array per line
    return [seg for seg in lines if len(seg) > 1]


@dataclass
class BoundaryArtists:
    image: AxesImage
    contour: LineCollection
    note: Text  # "network output not finite", shown only when nothing is finite
    points: list[Any]  # the scatter collections drawn over the image
    colorbar: Axes | None = None  # the colorbar's axes, when there is one


def draw_boundary(
    ax: Axes,
    grid: Grid,
    data: Dataset | None = None,
    *,
    title: str = "decision boundary",
    colorbar: bool = True,
    point_size: float = 16.0,
) -> BoundaryArtists:
    """P(class 1) as an image (RdBu, 0..1, grey where not finite), the 0.5 contour, the points.

    Training points are circles coloured by class; test points, if any, are triangles.
    """
    import matplotlib
    from matplotlib.collections import LineCollection

    xx, yy, prob = grid
    extent = (float(xx[0, 0]), float(xx[0, -1]), float(yy[0, 0]), float(yy[-1, 0]))
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad=BAD_COLOR)
    image = ax.imshow(
        prob,
        origin="lower",
        extent=extent,
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
        interpolation="bilinear",
        aspect="equal",
        alpha=IMAGE_ALPHA,
    )
    contour = LineCollection(
        _contour_segments(xx, yy, prob), colors="#111111", linewidths=1.4, zorder=2
    )
    ax.add_collection(contour, autolim=False)
    note = ax.text(
        0.5,
        0.5,
        "network output\nnot finite",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=11,
        color="#444444",
        zorder=4,
        bbox={"boxstyle": "round", "fc": "white", "ec": "#999999", "alpha": 0.9},
    )
    note.set_visible(not np.isfinite(prob).any())
    points: list[Any] = []
    if data is not None:
        for X, Y, marker, kind in (
            (data.X_train, data.y_train, "o", "train"),
            (data.X_test, data.y_test, "^", "test"),
        ):
            if X.shape[0] == 0:
                continue
            cls = Y.argmax(axis=-1)  # (n,)
            for c, color in enumerate(CLASS_COLORS):
                rows = cls == c
                if not rows.any():
                    continue
                points.append(
                    ax.scatter(
                        X[rows, 0],
                        X[rows, 1],
                        s=point_size * (1.4 if kind == "test" else 1.0),
                        c=color,
                        marker=marker,
                        edgecolors="white" if kind == "train" else "black",
                        linewidths=0.6,
                        zorder=3,
                        label=f"{kind}, class {c}",
                    )
                )
        if data.n_test > 0:
            from matplotlib.lines import Line2D

            proxy: dict[str, Any] = {"ls": "none", "mfc": "#888888", "ms": 6}
            ax.legend(
                handles=[
                    Line2D([], [], marker="o", mec="white", label="train", **proxy),
                    Line2D([], [], marker="^", mec="black", label="test", **proxy),
                ],
                loc="best",
                fontsize=8,
                framealpha=0.85,
                handletextpad=0.3,
            )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(title, fontsize=11)
    fig = ax.get_figure()
    art = BoundaryArtists(image=image, contour=contour, note=note, points=points)
    if colorbar and fig is not None:
        # not in a gridspec: constrained layout or ``layout_row`` places it
        cb = fig.colorbar(image, ax=ax, use_gridspec=False, **CBAR)
        cb.set_label("P(class 1)")
        cb.ax.tick_params(labelsize=8)
        art.colorbar = cb.ax
    return art


def update_boundary(art: BoundaryArtists, grid: Grid) -> None:
    """Show a new grid (same extent) in artists made by ``draw_boundary``."""
    xx, yy, prob = grid
    art.image.set_data(prob)
    art.contour.set_segments(_contour_segments(xx, yy, prob))
    art.note.set_visible(not np.isfinite(prob).any())


# --- curves -------------------------------------------------------------------------------------


def _series(metrics: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    x = metrics["step"].to_numpy(dtype=float)
    y = pd.to_numeric(metrics[col], errors="coerce").to_numpy(dtype=float)
    return x, y


def step_axis(ax: Axes, metrics: pd.DataFrame, xmax: float | None) -> None:
    """The step axis: every logged step, whole-number ticks only (no step 0.2)."""
    from matplotlib.ticker import MaxNLocator

    steps = metrics["step"].to_numpy(dtype=float) if len(metrics) else np.zeros(1)
    lo = float(steps.min())
    hi = float(max(steps.max(), xmax if xmax is not None else -np.inf))
    if hi <= lo:
        hi = lo + 1.0
    pad = 0.02 * (hi - lo)
    ax.set_xlim(lo - pad, hi + pad)
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))


MIN_REL_SPAN = 0.02  # a linear loss axis spans at least this fraction of its largest value


def _plain_y(ax: Axes, y: np.ndarray) -> None:
    """A linear y axis in plain numbers: no offset ('1e-7 + 2.5e-1'), and at least MIN_REL_SPAN
    of the values' size tall, so values that differ in the 7th digit are drawn together, not at
    opposite ends of the axis."""
    y = y[np.isfinite(y) & (np.abs(y) <= PLOT_MAX)]
    if y.size:
        lo, hi = float(y.min()), float(y.max())
        need = MIN_REL_SPAN * max(abs(lo), abs(hi))
        if 0 < need and hi - lo < need:
            mid = (lo + hi) / 2
            ax.set_ylim(mid - need / 2 - 0.05 * need, mid + need / 2 + 0.05 * need)
        if 1e-3 <= max(abs(lo), abs(hi)) < 1e6:  # else a ×1e-7 multiplier reads better
            ax.ticklabel_format(axis="y", style="plain")
    ax.ticklabel_format(axis="y", useOffset=False)


def _few(metrics: pd.DataFrame) -> dict[str, Any]:
    """Markers on the curves when there are too few rows for a line to show."""
    return {"marker": "o", "ms": 4} if len(metrics) <= 25 else {}


def _mark_divergence(ax: Axes, diverged_at: int | None) -> Line2D | None:
    if diverged_at is None:
        return None
    return ax.axvline(
        diverged_at,
        color=DIVERGE_COLOR,
        lw=1.2,
        ls="--",
        label=f"diverged at step {diverged_at}",
        zorder=1,
    )


Loc = Literal[
    "upper right",
    "lower left",
    "upper left",
    "lower right",
    "center right",
    "center left",
    "upper center",
    "lower center",
]
LEGEND_SPOTS: tuple[Loc, ...] = (
    "upper right",
    "lower left",
    "upper left",
    "lower right",
    "center right",
    "center left",
    "upper center",
    "lower center",
)
_SPOT_BOX = {  # (x0, x1, y0, y1) in axes fractions, sized for a small legend
    "upper right": (0.55, 1.0, 0.7, 1.0),
    "upper left": (0.0, 0.45, 0.7, 1.0),
    "lower left": (0.0, 0.45, 0.0, 0.3),
    "lower right": (0.55, 1.0, 0.0, 0.3),
    "center right": (0.55, 1.0, 0.35, 0.65),
    "center left": (0.0, 0.45, 0.35, 0.65),
    "upper center": (0.28, 0.72, 0.7, 1.0),
    "lower center": (0.28, 0.72, 0.0, 0.3),
}


def legend_spot(lines: Sequence[Line2D], n_entries: int) -> Loc:
    """The legend corner crossed by the fewest curve points, counting curves on twin axes too
    (matplotlib's own loc="best" only sees the legend's axes)."""
    if not lines:
        return "upper right"
    pts = []
    for line in lines:
        ax = line.axes
        if ax is None:
            continue
        ax.get_xlim(), ax.get_ylim()  # settle autoscaled limits first
        xy = np.column_stack(line.get_data()).astype(float)  # (n, 2)
        frac = (ax.transScale + ax.transLimits).transform(xy)  # data -> axes fraction
        if len(frac) > 1:  # fill in between vertices so a sparse line still counts
            t = np.linspace(0, len(frac) - 1, 400)
            frac = np.column_stack([np.interp(t, np.arange(len(frac)), frac[:, k]) for k in (0, 1)])
        pts.append(frac)
    if not pts:
        return "upper right"
    P = np.concatenate(pts)  # (m, 2)
    shrink = max(0.0, 0.3 - 0.06 * (n_entries + 1))  # fewer entries, shorter box

    def crossed(spot: str) -> int:
        x0, x1, y0, y1 = _SPOT_BOX[spot]
        if spot.startswith("upper"):
            y0 += shrink
        elif spot.startswith("lower"):
            y1 -= shrink
        return int(((P[:, 0] >= x0) & (P[:, 0] <= x1) & (P[:, 1] >= y0) & (P[:, 1] <= y1)).sum())

    return min(LEGEND_SPOTS, key=crossed)  # ties: the earlier spot


def _empty_note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666")


def _positive(y: np.ndarray) -> np.ndarray:
    return y[np.isfinite(y) & (y > 0) & (y <= PLOT_MAX)]


def _wants_log(y: np.ndarray) -> bool:
    pos = _positive(y)
    return pos.size > 0 and pos.max() / pos.min() > LOG_SPAN


def _log_y(ax: Axes, y: np.ndarray) -> None:
    """Log y axis with explicit limits (matplotlib's autoscale margin overflows near 1e308) and,
    over many decades, ticks at round multiples of decades (10^0, 10^50, ...)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    pos = _positive(y)
    lo, hi = float(np.log10(pos.min())), float(np.log10(pos.max()))
    pad = max(0.05 * (hi - lo), 0.05)
    lo, hi = max(lo - pad, -300.0), min(hi + pad, 300.0)
    ax.set_ylim(10.0**lo, 10.0**hi)
    ax.set_yscale("log")
    if hi - lo > 12:
        stride = next((k for k in (2, 5, 10, 20, 25, 50, 100) if (hi - lo) / k <= 7), 200)
        ticks = 10.0 ** np.arange(np.ceil(lo / stride) * stride, hi, stride)
        ax.yaxis.set_major_locator(FixedLocator(ticks.tolist()))
        ax.yaxis.set_minor_locator(NullLocator())


def _plot_finite(ax: Axes, metrics: pd.DataFrame, col: str, label: str, log: bool) -> Line2D | None:
    """Plot the finite (and for a log axis, positive) values of a column; None if there are none."""
    if col not in metrics or not len(metrics):
        return None
    x, y = _series(metrics, col)
    keep = np.isfinite(y) & (np.abs(y) <= PLOT_MAX) & ((y > 0) if log else True)
    if not keep.any():
        return None
    (line,) = ax.plot(x[keep], y[keep], label=label, **SERIES_STYLE[col], **_few(metrics))
    return line


def draw_loss(
    ax: Axes,
    metrics: pd.DataFrame,
    *,
    diverged_at: int | None = None,
    title: str = "loss",
    xmax: float | None = None,
) -> dict[str, Line2D]:
    """Loss per step (finite values only), and the data and penalty terms when the penalty is
    not 0. The penalty, often orders of magnitude smaller, gets its own y axis on the right.

    A y axis is logarithmic when its positive finite values span more than LOG_SPAN (100x).
    Returns the drawn lines by column name (the penalty line's ``.axes`` is the right axis).
    """
    reg = _series(metrics, "reg_loss")[1] if "reg_loss" in metrics and len(metrics) else None
    with_penalty = reg is not None and bool((np.isfinite(reg) & (reg != 0)).any())
    loss = _series(metrics, "loss")[1] if len(metrics) else np.zeros(0)
    log = _wants_log(loss)
    lines: dict[str, Line2D] = {}
    for col, label in (
        ("loss", "total loss" if with_penalty else "loss"),
        ("data_loss", "data loss"),
    ):
        if col == "loss" or with_penalty:
            line = _plot_finite(ax, metrics, col, label, log)
            if line is not None:
                lines[col] = line
    if not lines:
        _empty_note(ax, "no finite loss values")
    if log:
        _log_y(ax, loss)
    else:
        both = [_series(metrics, c)[1] for c in lines]
        _plain_y(ax, np.concatenate(both) if both else loss)
    if with_penalty and reg is not None:
        right = ax.twinx()
        ax.set_zorder(right.get_zorder() + 1)  # main curves and legend above the penalty's
        ax.patch.set_visible(False)
        reg_log = _wants_log(reg)
        line = _plot_finite(right, metrics, "reg_loss", "penalty (right axis)", reg_log)
        if line is not None:
            lines["reg_loss"] = line
        if reg_log:
            _log_y(right, reg)
        else:
            _plain_y(right, reg)
        color = SERIES_STYLE["reg_loss"]["color"]
        right.set_ylabel("penalty" + (" (log scale)" if reg_log else ""), color=color)
        right.tick_params(axis="y", colors=color, labelsize=8)
    div = _mark_divergence(ax, diverged_at)
    step_axis(ax, metrics, xmax if diverged_at is None else max(xmax or 0, diverged_at))
    hidden = int((~(np.isfinite(loss) & (np.abs(loss) <= PLOT_MAX))).sum())
    ax.set_xlabel(
        "training step"
        + (
            f"\n({hidden} loss value{'s' * (hidden > 1)} not finite or > {PLOT_MAX:.0e}: not shown)"
            if hidden
            else ""
        )
    )
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    if len(lines) > 1 or diverged_at is not None:
        handles = list(lines.values()) + ([div] if div is not None else [])
        loc = legend_spot(list(lines.values()), len(handles))
        ax.legend(handles=handles, loc=loc, fontsize=8, framealpha=0.85)
    return lines


def draw_accuracy(
    ax: Axes,
    metrics: pd.DataFrame,
    *,
    diverged_at: int | None = None,
    title: str = "accuracy",
    xmax: float | None = None,
) -> dict[str, Line2D]:
    """Train (and test, when the metrics have it) accuracy per step, y from 0 to 1."""
    lines: dict[str, Line2D] = {}
    labels = {"train_acc": "train", "test_acc": "test"}
    for col in ("train_acc", "test_acc"):
        if col not in metrics or not len(metrics):
            continue
        x, y = _series(metrics, col)
        keep = np.isfinite(y)
        if not keep.any():
            continue
        (lines[col],) = ax.plot(
            x[keep], y[keep], label=labels[col], **SERIES_STYLE[col], **_few(metrics)
        )
    if not lines:
        _empty_note(ax, "no accuracy values")
    ax.axhline(0.5, color="#888888", lw=0.8, ls=":", zorder=0)  # chance for two classes
    _mark_divergence(ax, diverged_at)
    step_axis(ax, metrics, xmax if diverged_at is None else max(xmax or 0, diverged_at))
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    if len(lines) > 1 or diverged_at is not None:
        loc = legend_spot(list(lines.values()), len(lines) + (diverged_at is not None))
        ax.legend(loc=loc, fontsize=8, framealpha=0.85)
    return lines


# --- figures ------------------------------------------------------------------------------------


def new_figure(width_in: float, height_in: float, dpi: int = PNG_DPI) -> Figure:
    """A Figure on an Agg canvas with constrained layout (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure drawn on its Agg canvas, on white, as RGB PNG bytes."""
    from PIL import Image

    canvas = cast("FigureCanvasAgg", fig.canvas)
    face = fig.get_facecolor()
    fig.set_facecolor("white")
    canvas.draw()
    fig.set_facecolor(face)
    size = canvas.get_width_height(physical=True)
    rgb = Image.frombytes("RGB", size, canvas.buffer_rgba(), "raw", "RGBX")  # opaque: drop alpha
    buf = io.BytesIO()
    rgb.save(buf, format="png", compress_level=PNG_COMPRESS, dpi=(fig.dpi,) * 2)
    return buf.getvalue()


def _suptitle(fig: Figure, title: str, fontsize: float = 11.0) -> Text:
    text = wrap_title(title, _title_chars(fig.get_figwidth(), fontsize))
    return fig.suptitle(text, fontsize=fontsize, fontweight="bold")


# --- layout: one row of plots under a title -----------------------------------------------------
# Constrained layout measures every axes twice on every draw (~0.1 s a figure); a run's figures
# are one row of plots, placed here by measuring their decorations once or twice.

PAD_PT = 3.0  # around each plot's decorations (as constrained layout's w_pad and h_pad)
WSPACE = 0.02  # of the figure's width, shared by the gaps between plots (as constrained layout)
Margins = tuple[float, float, float, float]  # left, bottom, right, top: pixels around a plot


@dataclass
class Cell:
    """One plot of a row: its axes, axes sharing its box (a twin y axis) and its colorbar."""

    ax: Axes
    twins: Sequence[Axes] = ()
    colorbar: Axes | None = None
    width: float = 1.0  # of the plot (without its colorbar), relative to the row's other plots
    margins: Margins | None = None  # as last measured: the guess for the next layout

    def set_visible(self, visible: bool) -> None:
        for ax in (self.ax, *self.twins, self.colorbar):
            if ax is not None:
                ax.set_visible(visible)


def layout_row(fig: Figure, cells: Sequence[Cell], title: Text | None = None) -> None:
    """Place a row of plots under ``title``: tick labels, axis labels, titles, twin axes and
    colorbars fit inside the figure, PAD_PT around each plot plus WSPACE between plots.

    The plots share one height and split the free width by ``Cell.width``; a plot with a fixed
    aspect (the boundary) gets no more width than it uses at that height. What sticks out of each
    plot is measured around a first guess (the last measurement, if any) and the plots placed
    from that; a first layout is measured once more, and placed again if something grew.
    """
    renderer = cast("FigureCanvasAgg", fig.canvas).get_renderer()
    pad = PAD_PT * fig.dpi / 72
    top = pad
    if title is not None and title.get_text():
        title.set_y(1 - pad / fig.bbox.height)  # va="top"
        top += title.get_window_extent(renderer).height + pad
    margins = [c.margins or _guess(c, fig.dpi) for c in cells]
    known = all(c.margins for c in cells)
    for _ in range(2):
        boxes = _place(fig, cells, margins, top, pad)
        measured = [_margins(c, box, renderer) for c, box in zip(cells, boxes, strict=True)]
        fits = np.all(np.asarray(measured) <= np.asarray(margins) + 1.0)
        if fits and (known or np.allclose(measured, margins, atol=1.0)):
            break
        margins, known = measured, True
    else:
        _place(fig, cells, margins, top, pad)
    for c, m in zip(cells, margins, strict=True):
        c.margins = m


def _guess(cell: Cell, dpi: float) -> Margins:
    """Typical margins (y tick labels and label; x tick labels and label; a title)."""
    return (0.55 * dpi, 0.45 * dpi, (0.45 if cell.twins or cell.colorbar else 0.1) * dpi, 0.2 * dpi)


def _place(
    fig: Figure, cells: Sequence[Cell], margins: Sequence[Margins], top: float, pad: float
) -> list[Any]:
    """Set the axes positions for these margins; returns each plot's box (with its colorbar) in
    display pixels."""
    from matplotlib.transforms import Bbox

    W, H = fig.bbox.width, fig.bbox.height
    left, bottom, right, above = (np.asarray(m, dtype=float) for m in zip(*margins, strict=True))
    y0, y1 = pad + bottom.max(), H - top - above.max()
    gap = 2 * pad + (WSPACE * W / (len(cells) - 1) if len(cells) > 1 else 0.0)
    grow = np.array([1 + (CBAR["fraction"] + CBAR["pad"] if c.colorbar else 0.0) for c in cells])
    ratio = np.array([c.width for c in cells]) * grow
    free = W - 2 * pad - (len(cells) - 1) * gap - left.sum() - right.sum()
    foot = free * ratio / ratio.sum()  # (n,): each plot's width with its colorbar
    fixed = np.array([ax.get_aspect() != "auto" for ax in (c.ax for c in cells)])
    for i in map(int, np.flatnonzero(fixed)):  # shrink to the width the plot has at this height
        aspect = float(cast(float, cells[i].ax.get_aspect())) * cells[i].ax.get_data_ratio()
        foot[i] = min(foot[i], (y1 - y0) / aspect * grow[i])
    spare = free - foot.sum()
    if (~fixed).any():  # to the other plots, else on both sides
        foot[~fixed] += spare * ratio[~fixed] / ratio[~fixed].sum()
    x = pad + (0.0 if (~fixed).any() else spare / 2)
    boxes = []
    for c, f, g, lft, r in zip(cells, foot, grow, left, right, strict=True):
        c.ax.set_position(Bbox.from_bounds((x + lft) / W, y0 / H, f / g / W, (y1 - y0) / H))
        if c.colorbar is not None:
            c.ax.apply_aspect()
            p = c.ax.get_position()  # the plot as drawn, after its aspect
            h = CBAR["shrink"] * p.height
            x0 = p.x1 + CBAR["pad"] * p.width
            c.colorbar.set_position((x0, p.y0 + (p.height - h) / 2, CBAR["fraction"] * p.width, h))
        boxes.append(Bbox.from_extents(x + lft, y0, x + lft + f, y1))
        x += lft + f + r + gap
    return boxes


def _margins(cell: Cell, box: Any, renderer: Any) -> Margins:
    """How far the cell's decorations reach beyond its box, in pixels (left, bottom, right, top):
    tick labels, axis labels and offsets of every axis, and the title. A title's width and a
    y label's height don't count (as in constrained layout): they may overhang."""
    from matplotlib.transforms import Bbox

    ax = cell.ax
    parts = [ax.xaxis, ax.yaxis, *(twin.yaxis for twin in cell.twins)]
    parts += [cell.colorbar.yaxis] if cell.colorbar is not None else []
    bboxes = [bb for axis in parts if (bb := axis.get_tightbbox(renderer, for_layout_only=True))]
    if ax.title.get_visible() and ax.title.get_text():
        bb = ax.title.get_window_extent(renderer)
        bboxes.append(Bbox.from_extents(bb.x0 + bb.width / 2, bb.y0, bb.x0 + bb.width / 2, bb.y1))
    tight = Bbox.union([box, *bboxes])
    return (box.x0 - tight.x0, box.y0 - tight.y0, tight.x1 - box.x1, tight.y1 - box.y1)


# --- the panel ----------------------------------------------------------------------------------


@dataclass
class Panel:
    """The tutorial's figure, and handles to what a GIF frame changes."""

    fig: Figure
    axes: tuple[Axes, Axes, Axes]  # accuracy, boundary, loss
    boundary: BoundaryArtists
    acc_lines: dict[str, Line2D]
    loss_lines: dict[str, Line2D]
    title: Text
    cells: tuple[Cell, Cell, Cell] | None = None  # as laid out; the same order as ``axes``


def panel_figure(
    metrics: pd.DataFrame,
    grid: Grid,
    data: Dataset | None,
    *,
    title: str = "",
    diverged_at: int | None = None,
    boundary_title: str = "decision boundary",
    dpi: int = PNG_DPI,
    xmax: float | None = None,
) -> Panel:
    """Accuracy | decision boundary | loss side by side, as in the tutorial."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=PANEL_SIZE, dpi=dpi)  # no layout engine: ``layout_row`` places it
    FigureCanvasAgg(fig)
    ax_acc, ax_bnd, ax_loss = (fig.add_subplot(1, 3, i + 1) for i in range(3))
    acc = draw_accuracy(ax_acc, metrics, diverged_at=diverged_at, xmax=xmax)
    bnd = draw_boundary(ax_bnd, grid, data, title=boundary_title)
    n_axes = len(fig.axes)
    loss = draw_loss(ax_loss, metrics, diverged_at=diverged_at, xmax=xmax)
    text = _suptitle(fig, title, PANEL_TITLE_PT)
    cells = (Cell(ax_acc), Cell(ax_bnd, (), bnd.colorbar, 1.05), Cell(ax_loss, fig.axes[n_axes:]))
    layout_row(fig, cells, text)  # the penalty's axis, if any, is the loss plot's twin
    return Panel(fig, (ax_acc, ax_bnd, ax_loss), bnd, acc, loss, text, cells)


def _alone(panel: Panel, cell: Cell, size: tuple[float, float], title: str) -> Figure:
    """The panel's figure resized to show one of its plots alone, under ``title``. The plot's
    ticks, texts and lines are reused, which is faster than drawing a new figure; ``_restore``
    undoes it."""
    fig = panel.fig
    fig.set_size_inches(size)
    for c in panel.cells or ():
        c.set_visible(c is cell)
    layout_row(fig, [cell], _suptitle(fig, title) if title else None)
    return fig


@dataclass
class _Geometry:
    """What ``_alone`` changes in a panel: its size, each axes' box and visibility, the title."""

    size: tuple[float, float]
    boxes: list[tuple[Axes, Any, bool]]
    title: tuple[str, float, float]  # text, font size, y

    @classmethod
    def of(cls, panel: Panel) -> _Geometry:
        fig = panel.fig
        boxes = [(ax, ax.get_position(), ax.get_visible()) for ax in fig.axes]
        t = panel.title
        size = (float(fig.get_figwidth()), float(fig.get_figheight()))
        return cls(size, boxes, (t.get_text(), float(t.get_fontsize()), float(t.get_position()[1])))

    def restore(self, panel: Panel) -> None:
        fig = panel.fig
        fig.set_size_inches(self.size)
        for ax, box, visible in self.boxes:
            ax.set_position(box)
            ax.set_visible(visible)
        text, size, y = self.title
        panel.title = fig.suptitle(text, fontsize=size, fontweight="bold", y=y)


# --- one run ------------------------------------------------------------------------------------


def _all_points(data: Dataset) -> np.ndarray:
    return np.concatenate([data.X_train, data.X_test.reshape(-1, 2)])  # (n_train + n_test, 2)


def _boundary_source(result: RunResult, spec: NetSpec, X: np.ndarray) -> tuple[Grid, str]:
    """The final network's grid and a subtitle; for a run whose final weights give nothing finite,
    the last GIF snapshot that does (labelled as such)."""
    n = result.steps_done
    grid = boundary_grid(result.final_params, spec, X, BOUNDARY_RES)
    title = f"decision boundary after {n} step" + ("" if n == 1 else "s")
    if not np.isfinite(grid[2]).any():
        for fr in reversed(result.frames):
            g = boundary_grid(fr.params, spec, X, BOUNDARY_RES)
            if np.isfinite(g[2]).any():
                grid, title = g, f"decision boundary at step {fr.step} (final weights not finite)"
                break
    if not np.isfinite(grid[2]).all() and np.isfinite(grid[2]).any():
        title += "\ngrey: network output not finite"
    return grid, title


def render_run_bytes(result: RunResult, *, gif: bool = True) -> dict[str, bytes]:
    """The plots of a run as ``{file name: bytes}`` (see ``_render_run_bytes``), drawn with one
    BLAS thread."""
    from .proc import one_blas_thread

    with one_blas_thread():
        return _render_run_bytes(result, gif=gif)


def _render_run_bytes(result: RunResult, *, gif: bool = True) -> dict[str, bytes]:
    """The plots of a run as ``{file name: bytes}``, in memory (for a sweep worker to send home):
    panel.png and, when ``gif`` is True and the run has at least 2 frames, training.gif; with
    ``plots.single``, also loss.png, accuracy.png and boundary.png, drawn from the panel."""
    spec = net_spec(result.config)
    title = run_title(result.config, status=result.status, diverged_at=result.diverged_at)
    m, d, div = result.metrics, result.data, result.diverged_at
    grid, bnd_title = _boundary_source(result, spec, _all_points(d))
    xmax = result.steps_done  # the run's length, as the GIF's step axis has it
    panel = panel_figure(
        m, grid, d, title=title, diverged_at=div, boundary_title=bnd_title, xmax=xmax
    )
    pngs = {"panel.png": figure_png(panel.fig)}
    geometry = _Geometry.of(panel)
    if result.config.plots.single:  # the panel's three cells again, each on its own
        acc, bnd, loss = cast(tuple[Cell, Cell, Cell], panel.cells)
        for name, cell, size in (
            ("loss.png", loss, (7.5, 4.8)),
            ("accuracy.png", acc, (7.5, 4.8)),
            ("boundary.png", bnd, (6.8, 6.0)),
        ):
            pngs[name] = figure_png(_alone(panel, cell, size, title))
    order = ("loss.png", "accuracy.png", "boundary.png", "panel.png")
    out = {name: pngs[name] for name in order if name in pngs}
    if gif and len(result.frames) >= 2:
        from .gif import training_gif  # gif builds on this module

        geometry.restore(panel)  # the GIF animates this same panel, laid out once
        out["training.gif"] = training_gif(result.frames, m, d, spec, title=title, panel=panel)
    return out


def render_run(result: RunResult, plots_dir: str | Path, *, gif: bool = True) -> list[Path]:
    """Write panel.png, training.gif and (``plots.single``) the single plots into ``plots_dir``.

    The GIF is skipped when ``gif`` is False or the run has fewer than 2 frames. Everything is
    rendered in memory first, then each file written atomically; returns the paths written.
    """
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    return [
        atomic_write_bytes(plots_dir / name, data)
        for name, data in render_run_bytes(result, gif=gif).items()
    ]
