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

from ..compare import RUN_COLORS
from ..plots import LOG_SPAN, PLOT_MAX
from .read import show

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
STATUS_COLORS = {
    "completed": "#1a9850",
    "diverged": DIVERGE_COLOR,
    "interrupted": "#e6a100",
    "unfinished": "#e6a100",
    "failed": "#7b3294",
    "pending": "#bbbbbb",
    "damaged": "#7b3294",
}


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


# --- axes ---------------------------------------------------------------------------------------


def positive(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return y[np.isfinite(y) & (y > 0) & (y <= PLOT_MAX)]


def wants_log(y: np.ndarray) -> bool:
    pos = positive(y)
    return pos.size > 1 and float(pos.max() / pos.min()) > LOG_SPAN


def log_y(ax: Axes, y: np.ndarray) -> None:
    """A log y axis whose limits cover the positive finite values of ``y``."""
    from ..plots import _log_y  # the run plots' own log axis (limits safe near 1e308)

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
    """A number for a table or a sentence: 0.0163, 12, 1.2e-05; '–' when unknown."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    return f"{float(v):.{digits}g}"


def fmt_acc(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"
