"""Loss and accuracy per step: finite values only, a log axis when they span more than LOG_SPAN,
the penalty on its own right axis, the divergence marked, and the legend where the curves are
not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .figure import PLOT_MAX, log_y, step_axis, wants_log

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D

SERIES_STYLE: dict[str, dict[str, Any]] = {
    "loss": {"color": "#222222", "lw": 1.8},
    "data_loss": {"color": "#1b9e77", "lw": 1.2, "ls": "--"},
    "reg_loss": {"color": "#d95f02", "lw": 1.2, "ls": ":"},
    "train_acc": {"color": "#2166ac", "lw": 1.8},
    "test_acc": {"color": "#e08214", "lw": 1.6, "ls": "--"},
}
DIVERGE_COLOR = "#cc0000"


def _series(metrics: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    x = metrics["step"].to_numpy(dtype=float)
    y = pd.to_numeric(metrics[col], errors="coerce").to_numpy(dtype=float)
    return x, y


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
    log = wants_log(loss)
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
        log_y(ax, loss)
    else:
        both = [_series(metrics, c)[1] for c in lines]
        _plain_y(ax, np.concatenate(both) if both else loss)
    if with_penalty and reg is not None:
        right = ax.twinx()
        ax.set_zorder(right.get_zorder() + 1)  # main curves and legend above the penalty's
        ax.patch.set_visible(False)
        reg_log = wants_log(reg)
        line = _plot_finite(right, metrics, "reg_loss", "penalty (right axis)", reg_log)
        if line is not None:
            lines["reg_loss"] = line
        if reg_log:
            log_y(right, reg)
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
