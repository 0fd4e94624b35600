"""The plots of one run, rendered to bytes in memory and written with ``atomic_write_bytes``:
panel.png (the tutorial's figure: accuracy | learned decision boundary | loss), training.gif (that
panel animated, ``xorlab.gif``) and, with ``plots.single``, loss.png, accuracy.png and
boundary.png, each one of the panel's plots alone.

The drawing itself lives in ``xorlab.draw`` (figure, layout, boundary, curves, panel); its names
are re-exported here, so ``from xorlab.plots import figure_png`` and ``plots.draw_loss`` work as
they always have. Only this module imports ``xorlab.gif``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .draw.boundary import (
    BAD_COLOR,
    BOUNDARY_RES,
    CLASS_COLORS,
    IMAGE_ALPHA,
    BoundaryArtists,
    Grid,
    Params,
    boundary_grid,
    boundary_grids,
    class1_prob,
    draw_boundary,
    grid_bounds,
    update_boundary,
)
from .draw.boundary import all_points as _all_points
from .draw.curves import (
    DIVERGE_COLOR,
    LEGEND_SPOTS,
    MIN_REL_SPAN,
    SERIES_STYLE,
    Loc,
    draw_accuracy,
    draw_loss,
    legend_spot,
)
from .draw.figure import (
    CBAR,
    LOG_SPAN,
    PLOT_MAX,
    PNG_COMPRESS,
    PNG_DPI,
    figure_png,
    fit_title,
    new_figure,
    run_title,
    step_axis,
    suptitle,
    wrap_title,
)
from .draw.layout import PAD_PT, WSPACE, Cell, Margins, layout_row
from .draw.panel import PANEL_SIZE, PANEL_TITLE_PT, Panel, panel_figure
from .nn import NetSpec
from .rundir import atomic_write_bytes
from .train import RunResult, net_spec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BAD_COLOR",
    "BOUNDARY_RES",
    "CBAR",
    "CLASS_COLORS",
    "DIVERGE_COLOR",
    "IMAGE_ALPHA",
    "LEGEND_SPOTS",
    "LOG_SPAN",
    "MIN_REL_SPAN",
    "PAD_PT",
    "PANEL_SIZE",
    "PANEL_TITLE_PT",
    "PLOT_MAX",
    "PNG_COMPRESS",
    "PNG_DPI",
    "SERIES_STYLE",
    "WSPACE",
    "BoundaryArtists",
    "Cell",
    "Grid",
    "Loc",
    "Margins",
    "Panel",
    "Params",
    "boundary_grid",
    "boundary_grids",
    "class1_prob",
    "draw_accuracy",
    "draw_boundary",
    "draw_loss",
    "figure_png",
    "fit_title",
    "grid_bounds",
    "layout_row",
    "legend_spot",
    "new_figure",
    "panel_figure",
    "render_run",
    "render_run_bytes",
    "run_title",
    "step_axis",
    "update_boundary",
    "wrap_title",
]


# --- one plot of the panel alone ----------------------------------------------------------------


def _alone(panel: Panel, cell: Cell, size: tuple[float, float], title: str) -> Figure:
    """The panel's figure resized to show one of its plots alone, under ``title``. The plot's
    ticks, texts and lines are reused, which is faster than drawing a new figure; ``_restore``
    undoes it."""
    fig = panel.fig
    fig.set_size_inches(size)
    for c in panel.cells or ():
        c.set_visible(c is cell)
    layout_row(fig, [cell], suptitle(fig, title) if title else None)
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
        from .gif import training_gif  # gif builds on xorlab.draw; only this module imports it

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
