"""The tutorial's figure: accuracy | learned decision boundary | loss, under the run's title, and
handles to what a GIF frame changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ..data import Dataset
from .boundary import BoundaryArtists, Grid, draw_boundary
from .curves import draw_accuracy, draw_loss
from .figure import PNG_DPI, suptitle
from .layout import Cell, layout_row

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

PANEL_SIZE = (16.0, 5.2)  # inches: three plots side by side
PANEL_TITLE_PT = 12.0


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
    text = suptitle(fig, title, PANEL_TITLE_PT)
    cells = (Cell(ax_acc), Cell(ax_bnd, (), bnd.colorbar, 1.05), Cell(ax_loss, fig.axes[n_axes:]))
    layout_row(fig, cells, text)  # the penalty's axis, if any, is the loss plot's twin
    return Panel(fig, (ax_acc, ax_bnd, ax_loss), bnd, acc, loss, text, cells)
