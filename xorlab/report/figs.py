"""Figure helpers shared by the run and sweep reports: one colour per value, log axes, labels.

``ValueColors`` gives each value of one sweep key the same colour in every figure of a report: a
qualitative palette (the one ``xorlab compare`` uses) for up to 10 values, else a sequential
colormap over the numbers (log-spaced when they span decades) with a colorbar instead of a legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..draw.figure import LOG_SPAN, PLOT_MAX
from ..show import RUN_COLORS
from .read import SCI_FROM, RunView, number, show

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

WIDTH = 12.5  # inches: the widest figure, which fits a laptop screen at 100 dpi
MAX_CATEGORIES = len(RUN_COLORS)  # more values than this get a colormap (numbers) or grey
OTHER_COLOR = "#888888"
GHOST_COLOR = "#c9c9c9"  # other groups drawn for context in a facet
BLOWUP_COLOR = "#d95f02"
DIVERGE_COLOR = "#cc0000"
SMALL_RES = 60  # grid points per side of a small boundary picture (boundary_thumbnail)
STATUS_COLORS = {
    "completed": "#1a9850",
    "diverged": DIVERGE_COLOR,
    "stopped_early": "#4575b4",
    "interrupted": "#e6a100",
    "unfinished": "#e6a100",
    "failed": "#7b3294",
    "pending": "#bbbbbb",
    "damaged": "#7b3294",
}


def masked(y: np.ndarray, log: bool) -> np.ndarray:
    """``y`` with the values a plot cannot show (non-finite, huge, <= 0 on a log axis) as NaN."""
    keep = np.isfinite(y) & (np.abs(y) <= PLOT_MAX) & ((y > 0) if log else True)
    return np.where(keep, y, np.nan)


class ValueColors:
    """value -> colour for one key; the same mapping in every figure of a report."""

    def __init__(self, key: str, name: str, values: Sequence[Any]):
        self.key = key
        self.name = name  # the short name shown in legends: lr
        self.values = list(values)
        self.labels = [show(v) for v in self.values]
        nums = [v for v in self.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        self.continuous = len(self.values) > MAX_CATEGORIES and len(nums) == len(self.values)
        self.log = False
        self._index = {lab: i for i, lab in enumerate(self.labels)}
        self.cmap: Colormap | None = None
        self.norm: Normalize | None = None
        if self.continuous:
            import matplotlib
            from matplotlib.colors import LogNorm, Normalize

            lo, hi = float(min(nums)), float(max(nums))
            self.log = lo > 0 and hi / lo > LOG_SPAN / 10
            self.cmap = matplotlib.colormaps["viridis"]
            self.norm = LogNorm(lo, hi) if self.log else Normalize(lo, hi if hi > lo else lo + 1)

    def __call__(self, value: Any) -> str:
        from matplotlib.colors import to_hex

        if self.continuous and self.cmap is not None and self.norm is not None:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return to_hex(self.cmap(0.9 * float(self.norm(float(value)))))  # no pale yellow
            return OTHER_COLOR
        i = self._index.get(show(value))
        if i is None or i >= MAX_CATEGORIES:
            return OTHER_COLOR
        return RUN_COLORS[i]

    def legend_handles(self, **style: Any) -> list[Any]:
        """One line per value (categorical only; a colormap gets ``colorbar``)."""
        from matplotlib.lines import Line2D

        if self.continuous:
            return []
        return [
            Line2D([], [], color=self(v), lw=2.4, label=lab, **style)
            for v, lab in zip(self.values, self.labels)
        ]

    def colorbar(self, fig: Figure, axes: Any) -> None:
        from matplotlib.cm import ScalarMappable

        if not self.continuous or self.cmap is None or self.norm is None:
            return
        from matplotlib.colors import ListedColormap

        shown = ListedColormap(self.cmap(np.linspace(0, 0.9, 256)))
        cb = fig.colorbar(ScalarMappable(self.norm, shown), ax=axes, shrink=0.8, pad=0.01)
        cb.set_label(self.name + (" (log scale)" if self.log else ""))


def _luminance(rgb: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour (channels 0-1)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def readable(color: str, contrast: float = 4.5) -> str:
    """``color`` darkened (same hue) until text in it has at least ``contrast``:1 against white,
    WCAG's bar for normal text: pale yellow-green and light orange become olive and brown."""
    from matplotlib.colors import to_hex, to_rgb

    r, g, b = to_rgb(color)
    for _ in range(40):
        if 1.05 / (_luminance((r, g, b)) + 0.05) >= contrast:
            break
        r, g, b = r * 0.93, g * 0.93, b * 0.93
    return to_hex((r, g, b))


# --- axes ---------------------------------------------------------------------------------------


def positive(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return y[np.isfinite(y) & (y > 0) & (y <= PLOT_MAX)]


def wants_log(y: np.ndarray) -> bool:
    pos = positive(y)
    return pos.size > 1 and float(pos.max() / pos.min()) > LOG_SPAN


def log_y(ax: Axes, y: np.ndarray) -> None:
    """A log y axis whose limits cover the positive finite values of ``y``."""
    from ..draw.figure import log_y as _log_y  # the run plots' log axis (limits safe near 1e308)

    if positive(y).size:
        _log_y(ax, np.asarray(y, dtype=float))


def finite_xy(x: np.ndarray, y: np.ndarray, *, log: bool) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(y) & (np.abs(y) <= PLOT_MAX) & ((y > 0) if log else True)
    return x[keep], y[keep]


def note(ax: Axes, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#666666",
        fontsize=10,
        wrap=True,
    )


def fmt(v: float | int | None, digits: int = 4) -> str:
    """A number for a table or a sentence: 0.0163, 12, 1834, 1.2e-05, 4.7e+250 (scientific
    notation only past SCI_FROM, or when tiny); '–' when unknown. Integers (steps) stay whole."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v)) if abs(int(v)) < SCI_FROM else f"{float(v):.{digits}g}"
    return number(float(v), digits)


def fmt_ratio(v: float | None) -> str:
    """A loss ratio with its sign: 11.8×, 47.3×, 3.2e+250×; '–' when unknown."""
    return "–" if v is None or not math.isfinite(v) else fmt(v, 3) + "×"


def fmt_acc(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


CAUSE_TEXT = {
    "non-finite loss": "a non-finite loss",
    "non-finite gradient": "a non-finite gradient",
    "non-finite weights": "non-finite weights",
    "non-finite after the last step": "a non-finite loss or weights after the last step",
    "unknown": "metrics.csv does not show why",
}


def cause_text(cause: str | None, limit: float | None, loss: float | None = None) -> str:
    """A divergence cause (read_run.DIVERGE_CAUSES) in words; with ``loss``, the loss at fault."""
    if cause == "above":
        bound = f" = {fmt(limit)}" if limit is not None else ""
        if loss is None:
            return f"the loss rose above `train.diverge_above`{bound}"
        return f"a loss of {fmt(loss)}, above `train.diverge_above`{bound}"
    return CAUSE_TEXT.get(cause or "unknown", CAUSE_TEXT["unknown"])


def divergence_reason(run: RunView) -> str:
    """Why a diverged run stopped: 'a loss of 1434, above `train.diverge_above` = 100', or
    'a non-finite loss' (gradient, weights, ...)."""
    return cause_text(run.diverge_cause, run.diverge_limit, run.diverge_loss)


def boundary_thumbnail(
    ax: Any, params: Any, spec: Any, data: Any, *, res: int, point_size: float
) -> None:
    """A small decision boundary for a grid of pictures: no legend, labels or ticks."""
    from .. import plots

    X = np.concatenate([data.X_train, data.X_test])
    grid = plots.boundary_grid(params, spec, X, res)
    plots.draw_boundary(ax, grid, data, title="", colorbar=False, point_size=point_size)
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_xticks([])
    ax.set_yticks([])
