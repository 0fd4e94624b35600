"""The decision boundary: P(class 1) on a grid covering the data, drawn as an image with the 0.5
contour and the points over it.

For a softmax output P(class 1) is the second output; for the tutorial's sigmoid + mse output it
is ``h1 / (h0 + h1)``, so that 0.5 is exactly where the argmax (the prediction used for accuracy)
changes. Grid points where the network's output is not finite (a diverged run) are NaN and drawn
grey."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..data import Dataset
from ..nn import NetSpec, forward, stack_params
from .figure import CBAR

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import LineCollection
    from matplotlib.image import AxesImage
    from matplotlib.text import Text

Params = Mapping[str, np.ndarray]
Grid = tuple[np.ndarray, np.ndarray, np.ndarray]  # xx, yy, prob: each (res, res)

BOUNDARY_RES = 200  # grid points per side for the PNGs
CLASS_COLORS = ("#b2182b", "#2166ac")  # class 0 red, class 1 blue: the ends of RdBu
BAD_COLOR = "#c8c8c8"  # grid points where the network's output is not finite
IMAGE_ALPHA = 0.6  # a lighter background so points of either class stand out on it


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


def all_points(data: Dataset) -> np.ndarray:
    """The training and test inputs, whose extent the boundary's grid covers."""
    return np.concatenate([data.X_train, data.X_test.reshape(-1, 2)])  # (n_train + n_test, 2)
