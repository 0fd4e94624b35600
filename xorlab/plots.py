"""Plots of one run: loss, accuracy, decision boundary, the tutorial's panel, and a training GIF.

The panel reproduces the tutorial's figure: accuracy | learned decision boundary | loss.
Everything is drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas directly (no
pyplot, no global state), rendered to bytes in memory, and written with ``atomic_write_bytes``.

The decision boundary shows P(class 1) on a grid covering the data. For a softmax output that is
the second output; for the tutorial's sigmoid + mse output it is ``h1 / (h0 + h1)``, so that 0.5
is exactly where the argmax (the prediction used for accuracy) changes. Grid points where the
network's output is not finite (a diverged run) are NaN and drawn grey.

The GIF builds the panel once at low resolution, draws the parts that never change (axes, ticks,
legends, colorbar) into a saved background, and per frame restores it and redraws only what moves
(boundary image, 0.5 contour, growing curves, step cursors, title).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from .data import Dataset
from .nn import NetSpec, forward
from .rundir import atomic_write_bytes
from .train import Frame, RunResult, net_spec

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
GIF_RES = 60  # grid points per side for GIF frames (cheap; bilinear smoothing hides it)
PNG_DPI = 100
GIF_DPI = 80
GIF_FRAME_MS = 120  # per frame; the last frame is held longer
GIF_LAST_MS = 1500
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
        out, _ = forward(params, X, spec)  # (N, C)
        out = np.asarray(out, dtype=float)
        p = out[:, 1] / (out[:, 0] + out[:, 1]) if spec.loss == "mse" else out[:, 1].copy()
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
    x0, x1, y0, y1 = grid_bounds(X, margin)
    xx, yy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    pts = np.column_stack([xx.ravel(), yy.ravel()])  # (res*res, 2)
    prob = class1_prob(params, pts, spec).reshape(xx.shape)  # (res, res)
    return xx, yy, prob


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
    if colorbar and fig is not None:
        cb = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, shrink=0.9)
        cb.set_label("P(class 1)")
        cb.ax.tick_params(labelsize=8)
    return BoundaryArtists(image=image, contour=contour, note=note, points=points)


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


def _step_limits(ax: Axes, metrics: pd.DataFrame, xmax: float | None) -> None:
    steps = metrics["step"].to_numpy(dtype=float) if len(metrics) else np.zeros(1)
    lo = float(steps.min())
    hi = float(max(steps.max(), xmax if xmax is not None else -np.inf))
    if hi <= lo:
        hi = lo + 1.0
    pad = 0.02 * (hi - lo)
    ax.set_xlim(lo - pad, hi + pad)


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
        color = SERIES_STYLE["reg_loss"]["color"]
        right.set_ylabel("penalty" + (" (log scale)" if reg_log else ""), color=color)
        right.tick_params(axis="y", colors=color, labelsize=8)
    div = _mark_divergence(ax, diverged_at)
    _step_limits(ax, metrics, xmax if diverged_at is None else max(xmax or 0, diverged_at))
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
    _step_limits(ax, metrics, xmax if diverged_at is None else max(xmax or 0, diverged_at))
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
    return buf.getvalue()


def _suptitle(fig: Figure, title: str, fontsize: float = 11.0) -> Text:
    text = wrap_title(title, _title_chars(fig.get_figwidth(), fontsize))
    return fig.suptitle(text, fontsize=fontsize, fontweight="bold")


def loss_figure(
    metrics: pd.DataFrame, *, title: str = "", diverged_at: int | None = None
) -> Figure:
    fig = new_figure(7.5, 4.8)
    draw_loss(fig.add_subplot(), metrics, diverged_at=diverged_at)
    if title:
        _suptitle(fig, title)
    return fig


def accuracy_figure(
    metrics: pd.DataFrame, *, title: str = "", diverged_at: int | None = None
) -> Figure:
    fig = new_figure(7.5, 4.8)
    draw_accuracy(fig.add_subplot(), metrics, diverged_at=diverged_at)
    if title:
        _suptitle(fig, title)
    return fig


def boundary_figure(
    grid: Grid, data: Dataset | None, *, title: str = "", subtitle: str = "decision boundary"
) -> Figure:
    fig = new_figure(6.8, 6.0)
    draw_boundary(fig.add_subplot(), grid, data, title=subtitle)
    if title:
        _suptitle(fig, title)
    return fig


@dataclass
class Panel:
    """The tutorial's figure, and handles to what a GIF frame changes."""

    fig: Figure
    axes: tuple[Axes, Axes, Axes]  # accuracy, boundary, loss
    boundary: BoundaryArtists
    acc_lines: dict[str, Line2D]
    loss_lines: dict[str, Line2D]
    title: Text


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
    fig = new_figure(*PANEL_SIZE, dpi)
    gs = fig.add_gridspec(1, 3, width_ratios=(1.0, 1.05, 1.0))
    ax_acc, ax_bnd, ax_loss = (fig.add_subplot(gs[0, i]) for i in range(3))
    acc = draw_accuracy(ax_acc, metrics, diverged_at=diverged_at, xmax=xmax)
    bnd = draw_boundary(ax_bnd, grid, data, title=boundary_title)
    loss = draw_loss(ax_loss, metrics, diverged_at=diverged_at, xmax=xmax)
    text = _suptitle(fig, title, PANEL_TITLE_PT)
    return Panel(fig, (ax_acc, ax_bnd, ax_loss), bnd, acc, loss, text)


# --- the GIF ------------------------------------------------------------------------------------


def _gif_palette(sample: Any) -> Any:
    """A 256-colour palette image: 128 colours of the boundary colormap as the GIF shows it
    (RdBu at IMAGE_ALPHA over white, and the grey for non-finite), so gradients don't band;
    white, black, and 126 colours from an octree quantization of ``sample`` (the first frame,
    which already has every axis, legend, marker and point colour)."""
    import matplotlib
    from matplotlib.colors import to_rgb
    from PIL import Image

    cmap = matplotlib.colormaps["RdBu"]
    ramp = np.vstack([cmap(np.linspace(0, 1, 127))[:, :3], [to_rgb(BAD_COLOR)]])  # (128, 3)
    ramp = IMAGE_ALPHA * ramp + (1 - IMAGE_ALPHA) * 1.0  # over a white background
    rest = sample.quantize(colors=126, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    colors = np.concatenate(
        [
            np.round(ramp * 255).ravel(),
            [255, 255, 255, 0, 0, 0],  # exact white and black: backgrounds and text
            np.array(rest.getpalette()[: 126 * 3]),
        ]
    )
    colors = colors.reshape(-1, 3)  # (256, 3)
    # PIL maps pixels to the palette through a coarse cache (about 2 levels per channel), so
    # white could land on a near-white entry: snap near-white and near-black entries exactly
    colors[(colors >= 248).all(axis=1)] = 255
    colors[(colors <= 7).all(axis=1)] = 0
    pal = Image.new("P", (1, 1))
    pal.putpalette(colors.astype(np.uint8).tobytes())
    return pal


def training_gif(
    frames: Sequence[Frame],
    metrics: pd.DataFrame,
    data: Dataset,
    spec: NetSpec,
    *,
    title: str = "",
    resolution: int = GIF_RES,
    dpi: int = GIF_DPI,
    frame_ms: int = GIF_FRAME_MS,
    last_ms: int = GIF_LAST_MS,
) -> bytes:
    """The panel at each frame's parameters, curves drawn up to the frame's step, as GIF bytes."""
    from PIL import Image

    if not frames:
        raise ValueError("a GIF needs at least one frame")
    X = _all_points(data)
    steps = metrics["step"].to_numpy(dtype=float) if len(metrics) else np.zeros(0)
    last_step = max(frames[-1].step, int(steps.max()) if steps.size else 0)

    def frame_title(step: int) -> str:  # the step counter lives in this short axes title
        return f"decision boundary at step {step} / {last_step}"

    grid0 = boundary_grid(frames[0].params, spec, X, resolution)
    panel = panel_figure(
        metrics,
        grid0,
        data,
        title=title,
        dpi=dpi,
        xmax=last_step,
        boundary_title=frame_title(last_step),  # the widest text, for the layout
    )
    fig, (ax_acc, ax_bnd, ax_loss) = panel.fig, panel.axes
    full = {
        k: (np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
        for k, ln in {**panel.acc_lines, **panel.loss_lines}.items()
    }
    for ax in fig.axes:  # limits as drawn with the full curves, whatever the frame shows
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())

    canvas = cast("FigureCanvasAgg", fig.canvas)
    engine = fig.get_layout_engine()
    if engine is not None:  # lay out with every artist in place, then freeze the layout
        engine.execute(fig)
    fig.set_layout_engine("none")

    cursors = [
        ax.axvline(0, color="#555555", lw=1.0, alpha=0.8, zorder=1) for ax in (ax_acc, ax_loss)
    ]
    dots: list[tuple[Line2D, str]] = []
    for ax, lines in ((ax_acc, panel.acc_lines), (ax_loss, panel.loss_lines)):
        for key in ("train_acc", "loss"):
            if key in lines:
                (dot,) = ax.plot([], [], "o", color=lines[key].get_color(), ms=6, zorder=5)
                dots.append((dot, key))
    b = panel.boundary
    moving: list[tuple[Any, Any]] = [(ax_bnd, b.image), (ax_bnd, b.contour)]
    moving += [(ax_bnd, p) for p in b.points] + [(ax_bnd, s) for s in ax_bnd.spines.values()]
    moving += [(ax_bnd, b.note)]
    moving += [(ln.axes, ln) for ln in (*panel.acc_lines.values(), *panel.loss_lines.values())]
    moving += [(ax_acc, cursors[0]), (ax_loss, cursors[1])]
    moving += [(d.axes, d) for d, _ in dots] + [(ax_bnd, ax_bnd.title)]
    legends = [leg for ax in fig.axes if (leg := ax.get_legend()) is not None]

    visible = {id(a): a.get_visible() for _, a in moving}
    title_at = ax_bnd.title.get_position()
    for a in [a for _, a in moving] + legends:
        a.set_visible(False)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    for _, a in moving:
        a.set_visible(visible[id(a)])
    ax_bnd.title.set_position(title_at)  # the draw misplaces a hidden title
    # legends go on top of the moving curves: drawn once, then pasted back as pixels per frame
    legend_pixels = []
    for leg in legends:
        leg.set_visible(True)
        leg.axes.draw_artist(leg)
        legend_pixels.append(canvas.copy_from_bbox(leg.get_window_extent().expanded(1.02, 1.1)))

    def render(k: int, fr: Frame) -> Any:  # an RGB PIL image of frame k
        grid = grid0 if k == 0 else boundary_grid(fr.params, spec, X, resolution)
        update_boundary(b, grid)
        for key, ln in {**panel.acc_lines, **panel.loss_lines}.items():
            x, y = full[key]
            n = int(np.searchsorted(x, fr.step, side="right"))
            ln.set_data(x[:n], y[:n])
        for dot, key in dots:
            x, y = full[key]
            n = int(np.searchsorted(x, fr.step, side="right"))
            dot.set_data(x[n - 1 : n], y[n - 1 : n])
        for c in cursors:
            c.set_xdata([fr.step, fr.step])
        ax_bnd.title.set_text(frame_title(fr.step))
        canvas.restore_region(background)
        for owner, a in moving:
            if a.get_visible():
                owner.draw_artist(a)
        for pixels in legend_pixels:
            canvas.restore_region(pixels)
        size = canvas.get_width_height(physical=True)
        rgba = Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        return rgba.convert("RGB")  # a copy: the canvas buffer is reused for the next frame

    first = render(0, frames[0])
    pal = _gif_palette(first)

    def quantized() -> Iterator[Any]:  # frame by frame, so only palette images are kept
        for k, fr in enumerate(frames[1:], start=1):
            yield render(k, fr).quantize(palette=pal, dither=Image.Dither.NONE)

    buf = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [last_ms]
    first.quantize(palette=pal, dither=Image.Dither.NONE).save(
        buf,
        format="GIF",
        save_all=True,
        append_images=quantized(),
        duration=durations if len(frames) > 1 else last_ms,
        loop=0,
    )
    return buf.getvalue()


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
    """The plots of a run as ``{file name: bytes}``, in memory (for a sweep worker to send home):
    loss.png, accuracy.png, boundary.png, panel.png and, when ``gif`` is True and the run has at
    least 2 frames, training.gif."""
    spec = net_spec(result.config)
    title = run_title(result.config, status=result.status, diverged_at=result.diverged_at)
    m, d, div = result.metrics, result.data, result.diverged_at
    grid, bnd_title = _boundary_source(result, spec, _all_points(d))
    out = {
        "loss.png": figure_png(loss_figure(m, title=title, diverged_at=div)),
        "accuracy.png": figure_png(accuracy_figure(m, title=title, diverged_at=div)),
        "boundary.png": figure_png(boundary_figure(grid, d, title=title, subtitle=bnd_title)),
        "panel.png": figure_png(
            panel_figure(m, grid, d, title=title, diverged_at=div, boundary_title=bnd_title).fig
        ),
    }
    if gif and len(result.frames) >= 2:
        out["training.gif"] = training_gif(result.frames, m, d, spec, title=title)
    return out


def render_run(result: RunResult, plots_dir: str | Path, *, gif: bool = True) -> list[Path]:
    """Write loss.png, accuracy.png, boundary.png, panel.png and training.gif into ``plots_dir``.

    The GIF is skipped when ``gif`` is False or the run has fewer than 2 frames. Everything is
    rendered in memory first, then each file written atomically; returns the paths written.
    """
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    return [
        atomic_write_bytes(plots_dir / name, data)
        for name, data in render_run_bytes(result, gif=gif).items()
    ]
