"""One row of plots under a title. Constrained layout measures every axes twice on every draw
(~0.1 s a figure); a run's figures are one row of plots, placed here by measuring their
decorations once or twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .figure import CBAR

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

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
