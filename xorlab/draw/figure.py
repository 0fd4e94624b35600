"""A figure and its axes: the PNG constants, the run's title fitted to a figure's width, a figure
on an Agg canvas and its PNG bytes, the whole-number step axis and the log y axis that stays
finite near 1e308."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

PNG_DPI = 100
PNG_COMPRESS = 3  # zlib level: RGB at 3 is as small as matplotlib's RGBA at 6, in half the time
PLOT_MAX = 1e250  # larger "finite" losses are off the chart (axis maths would overflow)
LOG_SPAN = 100.0  # log loss axis when max/min of the positive finite losses exceeds this
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


def suptitle(fig: Figure, title: str, fontsize: float = 11.0) -> Text:
    """``title`` wrapped at its ' · ' to the figure's width, in bold over the figure."""
    text = wrap_title(title, _title_chars(fig.get_figwidth(), fontsize))
    return fig.suptitle(text, fontsize=fontsize, fontweight="bold")


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


# --- axes ---------------------------------------------------------------------------------------


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


def _positive(y: np.ndarray) -> np.ndarray:
    return y[np.isfinite(y) & (y > 0) & (y <= PLOT_MAX)]


def wants_log(y: np.ndarray) -> bool:
    pos = _positive(y)
    return pos.size > 0 and pos.max() / pos.min() > LOG_SPAN


def log_y(ax: Axes, y: np.ndarray) -> None:
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
