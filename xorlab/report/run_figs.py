"""The run page's figures: the loss and accuracy curves, the optimizer over time (learning rate,
gradient norm per layer with the clipping threshold and the clipped steps, weight norm per
layer) and the final decision boundary, large; each with its caption. ``run`` lays them out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots
from .figs import BLOWUP_COLOR, DIVERGE_COLOR, finite_xy, fmt, log_y, note, wants_log
from .read import RunView

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CLIP_COLOR = "#E69F00"  # shading of clipped steps
CLIP_LINE = "#b35806"  # the clipping threshold
LAYER_COLORS = ("#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#8C564B", "#BCBD22")
LR_COLOR = "#444444"

CURVES_CAPTION = (
    "Left: the loss per step; with a penalty, the total, the data term (dashed) and the penalty "
    "(dotted, on the right axis). Right: accuracy; the dotted line is chance (0.5)."
)
OPTIMIZER_CAPTION = (
    "Top: the learning rate. Middle: the gradient norm of each weight matrix and bias, and of "
    "all of them together, before clipping; shading marks clipped steps. Bottom: the norm of "
    "each weight matrix and bias. Dashed red: divergence; dotted orange: the first blow-up."
)
BOUNDARY_CAPTION = (
    "P(class 1) over the input plane after the last update; the black line is the 0.5 "
    "boundary, the points are the training data coloured by class (red 0, blue 1)."
)


def _layer_styles(keys: list[str]) -> dict[str, dict[str, Any]]:
    """W_l solid and b_l dashed, both in the colour of layer l."""
    out = {}
    for k in keys:
        layer = int(k[1:]) - 1 if k[1:].isdigit() else 0
        solid = k[0] == "W"
        out[k] = {
            "color": LAYER_COLORS[layer % len(LAYER_COLORS)],
            "lw": 1.6 if solid else 1.1,
            "ls": "-" if solid else "--",
            "label": k,
        }
    return out


def _param_keys(run: RunView, prefix: str) -> list[str]:
    keys = [c[len(prefix) :] for c in run.metrics.columns if c.startswith(prefix)]
    return sorted(keys, key=lambda k: (int(k[1:]) if k[1:].isdigit() else 0, k[0] != "W"))


def _mark(ax: Axes, run: RunView) -> list[Any]:
    """Vertical lines at the divergence and the first blow-up; returns them (legend handles)."""
    out = []
    if run.diverged_at is not None:
        label = f"diverged at step {run.diverged_at}"
        out.append(ax.axvline(run.diverged_at, color=DIVERGE_COLOR, lw=1.2, ls="--", label=label))
    if run.first_blowup is not None:
        label = f"loss blew up at step {run.first_blowup}"
        out.append(ax.axvline(run.first_blowup, color=BLOWUP_COLOR, lw=1.1, ls=":", label=label))
    return out


def _curves(ax: Axes, run: RunView, cols: dict[str, dict[str, Any]], label: str) -> list[Any]:
    """Plot the metric columns present (log y when they span decades); returns the lines."""
    x = run.column("step")
    ys = {c: run.column(c) for c in cols if c in run.metrics}
    every = np.concatenate(list(ys.values()) or [np.zeros(0)])
    log = wants_log(every)
    lines: list[Any] = []
    for c, y in ys.items():
        xs, yk = finite_xy(x, y, log=log)
        if yk.size:
            few: dict[str, Any] = {"marker": "o", "ms": 3} if len(xs) <= 25 else {}
            lines += ax.plot(xs, yk, **cols[c], **few)
    if not lines:
        note(ax, f"no {label} values")
    elif log:
        log_y(ax, every)
    ax.set_ylabel(label + (" (log scale)" if log and lines else ""))
    ax.grid(True, which="major", alpha=0.3)
    return lines


def _side_legend(ax: Axes, handles: list[Any]) -> None:
    if handles:
        ax.legend(handles=handles, fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _suptitle(fig: Figure, run: RunView, width: int) -> None:
    if run.config is not None:
        title = plots.run_title(run.config, status=run.status, diverged_at=run.diverged_at)
        fig.suptitle(plots.wrap_title(title, width), fontsize=11, fontweight="bold")


def optimizer_figure(run: RunView) -> Figure:
    """Learning rate, gradient norms per layer, weight norms per layer, on one step axis."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = plots.new_figure(12.0, 9.0)
    ax_lr, ax_g, ax_w = fig.subplots(3, 1, sharex=True, height_ratios=(1.0, 1.8, 1.5))
    lr = run.column("lr")
    if _curves(ax_lr, run, {"lr": {"color": LR_COLOR, "lw": 1.8}}, "learning rate"):
        if not wants_log(lr):  # a flat or gently falling line reads best against 0
            ax_lr.set_ylim(0, float(np.max(lr[np.isfinite(lr)])) * 1.15)
    sched = run.flat.get("optim.schedule.kind", "constant")
    ax_lr.set_title(f"learning rate ({sched} schedule)", fontsize=11)

    layers = _layer_styles(_param_keys(run, "grad_norm_"))
    g_cols = {"grad_norm": {"color": "#111111", "lw": 2.0, "label": "all parameters"}}
    g_cols.update({f"grad_norm_{k}": st for k, st in layers.items()})
    handles: list[Any] = _curves(ax_g, run, g_cols, "gradient norm")
    clip_kind = run.flat.get("optim.clip.kind", "none")
    clip_max = run.flat.get("optim.clip.max")
    title = "gradient norms, before clipping"
    if clip_kind == "norm" and isinstance(clip_max, (int, float)):
        ax_g.axhline(clip_max, color=CLIP_LINE, lw=1.4, ls="--", zorder=1)
        label = f"clip threshold {clip_max:g}"
        handles.append(Line2D([], [], color=CLIP_LINE, ls="--", label=label))
        title += f" (norm clipping scales the global norm down to ≤ {clip_max:g})"
    elif clip_kind == "value" and isinstance(clip_max, (int, float)):
        title += f" (value clipping limits each gradient element to ±{clip_max:g})"
    clipped, steps = run.column("clipped"), run.column("step")
    n_clip = int(np.sum(clipped > 0)) if clipped.size == steps.size else 0
    if n_clip:
        ax_g.fill_between(
            steps,
            0,
            1,
            where=clipped > 0,
            transform=ax_g.get_xaxis_transform(),
            color=CLIP_COLOR,
            alpha=0.18,
            step="mid",
            lw=0,
        )
        label = f"clipped steps\n({n_clip} of {len(steps)} logged)"
        handles.append(Patch(color=CLIP_COLOR, alpha=0.35, label=label))
    ax_g.set_title(title, fontsize=11)

    layers = _layer_styles(_param_keys(run, "weight_norm_"))
    w_lines = _curves(ax_w, run, {f"weight_norm_{k}": st for k, st in layers.items()}, "norm")
    ax_w.set_title("weight norms ‖W‖ and ‖b‖ per layer (biases dashed)", fontsize=11)
    ax_w.set_xlabel("training step")
    if len(run.metrics):  # every logged step, whole-number ticks (a one-step run too)
        plots.step_axis(ax_w, run.metrics, run.diverged_at)
    marks = [_mark(ax, run) for ax in (ax_lr, ax_g, ax_w)][0]
    _side_legend(ax_lr, marks)
    _side_legend(ax_g, handles)
    _side_legend(ax_w, w_lines)
    _suptitle(fig, run, 130)
    return fig


def curves_figure(run: RunView) -> Figure:
    """Loss (data term and penalty) | train and test accuracy."""
    fig = plots.new_figure(12.0, 4.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    div = run.diverged_at
    plots.draw_loss(ax_loss, run.metrics, diverged_at=div, title="loss: data term and penalty")
    has_test = bool(np.isfinite(run.column("test_acc")).any())
    title = "accuracy: train and test" if has_test else "accuracy on the training set (no test set)"
    plots.draw_accuracy(ax_acc, run.metrics, diverged_at=div, title=title)
    return fig


def boundary_figure(run: RunView, grid: Any, data: Any) -> Figure:
    """The final decision boundary, large."""
    fig = plots.new_figure(8.6, 7.6)
    n = run.steps_done
    sub = f"decision boundary after {fmt(n)} step" + ("" if n == 1 else "s")
    plots.draw_boundary(fig.add_subplot(), grid, data, title=sub, point_size=20.0)
    _suptitle(fig, run, 80)
    return fig
