"""The training GIF: the run's panel (accuracy | decision boundary | loss) at each snapshot.

The panel is built and laid out once (or taken from the run's PNGs, ``render_run_bytes``, and
redrawn at GIF_DPI: its layout is in figure fractions and points). What never changes (axes,
ticks, labels, the colorbar, the titles but for the step number) is drawn once into a saved
background; each frame restores it and draws only what moves:
- the boundary image, painted here straight into the canvas pixels: the GIF_RES x GIF_RES grid
  interpolated bilinearly to the plot's pixels (two small matrix products) and looked up in the
  colormap pre-blended with white, as matplotlib draws it at IMAGE_ALPHA over the white plot;
- the 0.5 contour, the points and the plot's frame over it, and the note when nothing is finite;
- the curves up to the frame's step: the pixels of the full curves (drawn once over the
  background) left of the step's cursor; then the cursor and a dot on each curve, and the
  legends pasted back on top;
- the ``{step} / {last}`` in the boundary plot's title.
The frames share one 256-colour palette, made from the first frame.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from .data import Dataset
from .draw.boundary import BAD_COLOR, IMAGE_ALPHA, all_points, boundary_grids, update_boundary
from .draw.panel import Panel, panel_figure
from .nn import NetSpec
from .train import Frame

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.lines import Line2D

GIF_RES = 60  # grid points per side for GIF frames (cheap; bilinear smoothing hides it)
GIF_DPI = 80
GIF_FRAME_MS = 120  # per frame; the last frame is held longer
GIF_LAST_MS = 1500


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


def _bilinear(n: int, lo: float, hi: float, first: int, count: int) -> np.ndarray:
    """Bilinear sampling of ``n`` cells spread evenly over the display span lo..hi at the centres
    of the pixels first .. first+count-1, clamped at the edges, as a matrix (count, n): row i
    holds pixel i's weights of its two cells (summing to 1)."""
    u = (np.arange(first, first + count) + 0.5 - lo) / (hi - lo) * n - 0.5  # (count,) in cells
    u = np.clip(u, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(u).astype(np.intp), max(n - 2, 0))
    i1 = np.minimum(i0 + 1, n - 1)
    t = u - i0
    weights = np.zeros((count, n), dtype=np.float32)
    rows = np.arange(count)
    np.add.at(weights, (rows, i0), 1 - t)
    np.add.at(weights, (rows, i1), t)
    return weights


def _image_painter(canvas: FigureCanvasAgg, ax: Axes, res: int) -> Callable[[np.ndarray], None]:
    """A function painting a (res, res) P(class 1) grid (rows along y, NaN: not finite) over
    the pixels of ``ax``, as ``draw_boundary``'s image looks (interpolated before the colormap;
    grey wherever a NaN cell contributes)."""
    import matplotlib
    from matplotlib.colors import to_rgb

    ramp = matplotlib.colormaps["RdBu"](np.arange(256))[:, :3]  # (256, 3): index int(256 p)
    rgb = np.vstack([ramp, [to_rgb(BAD_COLOR)]])  # (257, 3): the last one for NaN
    rgba = np.full((257, 4), 255, np.uint8)
    rgba[:, :3] = np.round(255 * (IMAGE_ALPHA * rgb + 1 - IMAGE_ALPHA))  # over white
    lut = rgba.view(np.uint32)[:, 0]  # (257,): one RGBA pixel each, in the canvas's byte order
    pixels = np.asarray(canvas.buffer_rgba())  # (H, W, 4), a view: row 0 is the top
    H = pixels.shape[0]
    box = ax.bbox  # display pixels, y up: the canvas row of display height y is H - y
    c0, c1, r0, r1 = round(box.x0), round(box.x1), round(H - box.y1), round(H - box.y0)
    along_x = _bilinear(res, box.x0, box.x1, c0, c1 - c0).T  # (res, w)
    along_y = _bilinear(res, H - box.y0, H - box.y1, r0, r1 - r0)  # (h, res), top down
    target = pixels.view(np.uint32)[r0:r1, c0:c1, 0]  # (h, w)

    def paint(prob: np.ndarray) -> None:
        finite = np.isfinite(prob)  # (res, res)
        value = along_y @ np.where(finite, prob, 0.0).astype(np.float32) @ along_x  # (h, w)
        weight = along_y @ finite.astype(np.float32) @ along_x  # (h, w): 1 where all finite
        index = np.minimum(value * 256, 255).astype(np.intp)
        index[weight < 1 - 1e-4] = 256  # a NaN cell contributes
        target[...] = lut[index]

    return paint


def _overlay(canvas: FigureCanvasAgg, artists: Sequence[Any]) -> Callable[[], None]:
    """Draw ``artists`` (each with its axes) once onto a cleared canvas and return a function that
    lays those pixels over the canvas as it is then: what drawing them again would do, for a
    fraction of the time (300 points are ~2 ms to draw, 0.2 ms to lay over)."""
    pixels = np.asarray(canvas.buffer_rgba()).reshape(-1, 4)  # (H * W, 4), a view
    saved = canvas.copy_from_bbox(canvas.figure.bbox)
    canvas.get_renderer().clear()  # transparent
    for a in artists:
        a.axes.draw_artist(a)
    where = np.flatnonzero(pixels[:, 3])  # (k,): the pixels they touch
    color = pixels[where, :3].astype(np.float32)  # (k, 3): not premultiplied
    alpha = pixels[where, 3:].astype(np.float32) / 255  # (k, 1)
    canvas.restore_region(saved)

    def lay_over() -> None:
        under = pixels[where, :3].astype(np.float32)
        pixels[where, :3] = (color * alpha + under * (1 - alpha) + 0.5).astype(np.uint8)

    return lay_over


def _step_counter(ax: Axes, canvas: FigureCanvasAgg, last_step: int) -> Callable[[str], None]:
    """Split the boundary plot's title, laid out as the widest ``decision boundary at step
    {last} / {last}``, into a fixed ``decision boundary at step`` and, after it, the
    ``{step} / {last}`` that changes: returns a function drawing that text. It goes straight to
    the renderer, as ``Text.draw`` would put it (the same pixels), for half of Text.draw's time:
    a new string there is laid out twice."""
    from matplotlib.text import Text
    from matplotlib.transforms import IdentityTransform

    title, fig = ax.title, ax.figure
    renderer = canvas.get_renderer()
    prop = title.get_fontproperties()
    x0 = title.get_window_extent(renderer).x0  # display pixels
    _, y = title.get_transform().transform(title.get_position())  # the baseline

    def width(text: str) -> float:
        return float(renderer.get_text_width_height_descent(text, prop, False)[0])

    head = "decision boundary at step"
    style: dict[str, Any] = {
        "fontproperties": prop,
        "color": title.get_color(),
        "va": "baseline",
        "ha": "left",
    }
    fig.text(x0, y, head, transform=IdentityTransform(), **style)
    title.set_visible(False)
    x = x0 + width(f"{head} {last_step}") - width(str(last_step))
    number = Text(x, y, "", transform=IdentityTransform(), **style)  # never added: a template

    def draw(text: str) -> None:
        r = canvas.get_renderer()
        gc = r.new_gc()
        gc.set_foreground(number.get_color())
        gc.set_antialiased(number.get_antialiased())
        r.draw_text(gc, x, r.height - y, text, prop, 0.0, mtext=number)  # Agg's y runs down
        gc.restore()

    return draw


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
    panel: Panel | None = None,
) -> bytes:
    """The panel at each frame's parameters, curves drawn up to the frame's step, as GIF bytes.

    ``panel``: the run's panel as ``draw.panel.panel_figure`` drew it (with ``xmax`` the last step),
    to animate instead of building and laying out a new one; it is changed for good.
    """
    from PIL import Image

    if not frames:
        raise ValueError("a GIF needs at least one frame")
    X = all_points(data)
    steps = metrics["step"].to_numpy(dtype=float) if len(metrics) else np.zeros(0)
    last_step = max(frames[-1].step, int(steps.max()) if steps.size else 0)

    grids = boundary_grids([fr.params for fr in frames], spec, X, resolution)
    grid0 = grids[0]
    widest = f"decision boundary at step {last_step} / {last_step}"
    if panel is None:
        panel = panel_figure(
            metrics, grid0, data, title=title, dpi=dpi, xmax=last_step, boundary_title=widest
        )
    else:  # positions are fractions of the figure, sizes in points: the layout holds at any dpi
        panel.fig.set_dpi(dpi)
        panel.axes[1].set_title(widest, fontsize=11)
    fig, (ax_acc, ax_bnd, ax_loss) = panel.fig, panel.axes
    canvas = cast("FigureCanvasAgg", fig.canvas)
    curves = {**panel.acc_lines, **panel.loss_lines}
    full = {
        k: (np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
        for k, ln in curves.items()
    }
    for ax in fig.axes:  # limits as drawn with the full curves, whatever the frame shows
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())
    draw_number = _step_counter(ax_bnd, canvas, last_step)

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
    over = [*b.points, *ax_bnd.spines.values()]  # laid over the image and contour as pixels
    moving = [*cursors, *(d for d, _ in dots)]
    legends = [leg for ax in fig.axes if (leg := ax.get_legend()) is not None]

    hidden = [b.image, b.contour, b.note, *over, *curves.values(), *moving, *legends]
    visible = [a.get_visible() for a in hidden]
    for a in hidden:
        a.set_visible(False)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    for a, v in zip(hidden, visible, strict=True):
        a.set_visible(v)
    # the curves at full length over the background: a frame shows their pixels left of its
    # step's cursor, which hides the seam (the curves are clipped to their axes)
    canvas_px = np.asarray(canvas.buffer_rgba())  # (H, W, 4), a view: row 0 is the top
    for ln in curves.values():
        if ln.get_visible():
            cast("Axes", ln.axes).draw_artist(ln)
    full_curves = canvas_px.copy()
    canvas.restore_region(background)
    H = canvas_px.shape[0]
    strips = [(ax, round(H - ax.bbox.y1), round(H - ax.bbox.y0), round(ax.bbox.x0))
              for ax in (ax_acc, ax_loss)]  # fmt: skip
    lay_over = _overlay(canvas, over)
    # legends go on top of the moving curves: drawn once, then pasted back as pixels per frame
    legend_pixels = []
    for leg in legends:
        leg.set_visible(True)
        leg.axes.draw_artist(leg)
        legend_pixels.append(canvas.copy_from_bbox(leg.get_window_extent().expanded(1.02, 1.1)))
    paint = _image_painter(canvas, ax_bnd, resolution)

    def render(k: int, fr: Frame) -> Any:  # an RGB PIL image of frame k
        grid = grids[k]
        update_boundary(b, grid)
        for dot, key in dots:
            x, y = full[key]
            n = int(np.searchsorted(x, fr.step, side="right"))
            dot.set_data(x[n - 1 : n], y[n - 1 : n])
        for c in cursors:
            c.set_xdata([fr.step, fr.step])
        canvas.restore_region(background)
        paint(grid[2])
        ax_bnd.draw_artist(b.contour)
        lay_over()
        for ax, r0, r1, c0 in strips:  # the curves up to this step
            c1 = max(c0, round(float(ax.transData.transform((fr.step, 0.0))[0])))
            canvas_px[r0:r1, c0:c1] = full_curves[r0:r1, c0:c1]
        for a in [b.note, *moving]:
            if a.get_visible():
                cast("Axes", a.axes).draw_artist(a)
        for pixels in legend_pixels:
            canvas.restore_region(pixels)
        draw_number(f"{fr.step} / {last_step}")
        size = canvas.get_width_height(physical=True)
        # a copy without alpha (the canvas is opaque): its buffer is reused for the next frame
        return Image.frombytes("RGB", size, canvas.buffer_rgba(), "raw", "RGBX")

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
