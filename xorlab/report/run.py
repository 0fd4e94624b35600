"""The report of one run folder: how training went, figure by figure.

Sections: an opening paragraph written from summary.json and the metrics; the tutorial's panel
(accuracy | decision boundary | loss); the loss split into its data and penalty terms beside
train/test accuracy; the optimizer over time (learning rate, gradient norm per layer with the
clipping threshold and the clipped steps, weight norm per layer); the final decision boundary,
large; the training GIF when the run has one; the config and summary as tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots
from ..show import flatten
from .doc import Doc, Section, Table
from .dynamics import (
    DYNAMICS_CAPTION,
    UNITS_CAPTION,
    dynamics_figure,
    has_dynamics,
    hidden_units_figure,
)
from .figs import (
    BLOWUP_COLOR,
    DIVERGE_COLOR,
    divergence_reason,
    finite_xy,
    fmt,
    fmt_acc,
    fmt_ratio,
    log_y,
    note,
    wants_log,
)
from .read import SPIKE_RATIO, Blowup, RunView, load_network, show

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


def diagnosis_of(run: RunView) -> Any:
    """``xorlab diagnose``'s findings from the logged metrics (no replay), or None."""
    from ..diagnose import diagnose

    if run.config is None or not len(run.metrics) or "loss" not in run.metrics:
        return None
    return diagnose(run.metrics, run.config, run.summary)


def diagnosis_paragraph(d: Any) -> str:
    """The diagnosis in a few sentences: what happened, then the first remedy."""
    if not d.events:
        return (
            "**Diagnosis**: no problem found (`xorlab diagnose` checks blow-ups, divergence, "
            "underfitting, saturation, dead units, vanishing gradients, oscillation, overfitting)."
        )
    shown = d.events[:4]
    text = "**Diagnosis**: " + "; ".join(e.text for e in shown)
    if len(d.events) > len(shown):
        text += f"; and {len(d.events) - len(shown)} more (`xorlab diagnose` lists them all)"
    text += "."
    if d.remedies:
        r = d.remedies[0]
        sets = ", ".join(f"`{k}: {v}`" for k, v in r.set.items())
        text += f" First thing to try: {sets} ({r.why})."
    return text


def status_sentence(run: RunView) -> str:
    """A few sentences on how the run ended."""
    s, done, total = run.status, run.steps_done, run.steps_total
    steps = f"{fmt(done)} of {fmt(total)} steps" if total is not None else f"{fmt(done)} steps"
    wall = (run.summary or {}).get("wall_s")
    took = f" in {wall:.3g} s" if isinstance(wall, (int, float)) and wall else ""  # not 0.00 s
    if s == "completed":
        head = f"**Completed** {steps}{took}."
    elif s == "diverged":
        head = f"**Diverged** at step {fmt(run.diverged_at)} ({divergence_reason(run)}); "
        head += f"training stopped after {steps}{took}."
    elif s == "failed":
        head = "**Failed**" + (f": `{run.error}`." if run.error else " (no error message).")
    elif s == "interrupted":
        head = f"**Interrupted** after {steps}."
    elif s == "unfinished":
        head = "**Unfinished**: no summary.json yet (still running, or killed); "
        head += f"{len(run.metrics)} metric rows so far."
    elif s == "pending":
        head = "**Not started.**"
    elif s == "damaged":
        bad = [p for p in run.problems if p.startswith("summary.json")]
        head = "**Damaged**: " + ("; ".join(bad) if bad else "a file cannot be read") + "."
    else:
        head = f"**{s}**."
    parts = [head]
    loss, acc, test = run.final("loss"), run.final("train_acc"), run.final("test_acc")
    if loss is not None or acc is not None:
        text = f"Final loss {fmt(loss)}, train accuracy {fmt_acc(acc)}"
        if test is not None:
            text += f", test accuracy {fmt_acc(test)}"
        best = (run.summary or {}).get("best")
        if isinstance(best, dict) and isinstance(best.get("train_acc"), (int, float)):
            text += f" (best train accuracy {fmt_acc(best['train_acc'])}"
            text += f" at step {best.get('step')})"
        parts.append(text + ".")
    parts.append(blowup_sentence(run))
    return " ".join(p for p in parts if p)


def blowup_sentence(run: RunView) -> str:
    """The first blow-up with its own ratio, and the largest rise with its own step; where a
    penalty makes the total and the data loss differ, which of the two spiked, with each one's
    numbers (a penalty's floor under the total loss can hide a spike of the data loss)."""
    rule = f"(more than {SPIKE_RATIO:g}× counts as a blow-up)"
    total, data = run.blowups.get("loss"), run.blowups.get("data_loss")
    if total is not None and data is not None:
        return _two_curve_sentence(total, data, rule)
    if run.first_blowup is None:
        if run.max_ratio is None:
            return ""
        return (
            f"No blow-up: the loss never rose above {fmt_ratio(run.max_ratio)} its running minimum."
        )
    first = (
        f"The loss **blew up** at step {run.first_blowup}: it rose to "
        f"{fmt_ratio(run.first_ratio)} the lowest value reached before {rule}"
    )
    if run.max_step is None or run.max_step == run.first_blowup:
        return first + "."
    return (
        f"{first}. The largest rise came at step {run.max_step}: "
        f"{fmt_ratio(run.max_ratio)} the lowest value before it."
    )


def _largest(b: Blowup) -> str:
    """'3.2× at step 40', or '1×' when the curve never rose."""
    at = f" at step {b.max_step}" if b.max_step is not None else ""
    return f"{fmt_ratio(b.max_ratio)}{at}"


def _two_curve_sentence(total: Blowup, data: Blowup, rule: str) -> str:
    """``blowup_sentence`` for a run whose total loss (data + penalty) and data loss differ."""
    t, d = total.first_step, data.first_step
    if t is None and d is None:
        if total.max_ratio is None and data.max_ratio is None:
            return ""
        return (
            f"No blow-up: neither the total loss (at most {_largest(total)}) nor the data loss "
            f"(at most {_largest(data)}) rose above {SPIKE_RATIO:g}× its running minimum."
        )
    if t is None or d is None:
        spiked, calm = (data, total) if t is None else (total, data)
        name, other = ("data loss", "total loss") if t is None else ("total loss", "data loss")
        text = (
            f"The {name} **blew up** at step {spiked.first_step}: it rose to "
            f"{fmt_ratio(spiked.first_ratio)} the lowest value reached before {rule}; the "
            f"{other} did not (at most {_largest(calm)})"
        )
        if t is None:
            text += ": the penalty is a floor under the total loss that hides the spike"
        if spiked.max_step is not None and spiked.max_step != spiked.first_step:
            text += f". The {name}'s largest rise came at step {spiked.max_step}: "
            text += f"{fmt_ratio(spiked.max_ratio)} the lowest value before it"
        return text + "."
    if t == d:
        text = (
            f"The total and the data loss both **blew up** at step {t}: they rose to "
            f"{fmt_ratio(total.first_ratio)} and {fmt_ratio(data.first_ratio)} the lowest values "
            f"reached before {rule}"
        )
    else:
        text = (
            f"The total loss **blew up** at step {t} ({fmt_ratio(total.first_ratio)} the lowest "
            f"value reached before), the data loss at step {d} ({fmt_ratio(data.first_ratio)}) "
            f"{rule}"
        )
    if total.max_step == data.max_step:
        return (
            f"{text}. The largest rise of both came at step {total.max_step}: "
            f"{fmt_ratio(total.max_ratio)} (total) and {fmt_ratio(data.max_ratio)} (data loss)."
        )
    return (
        f"{text}. Their largest rises: the total loss {_largest(total)}, the data loss "
        f"{_largest(data)}."
    )


# --- figures ------------------------------------------------------------------------------------


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


# --- the document -------------------------------------------------------------------------------


def _kv_table(mapping: dict[str, Any], caption: str) -> Table:
    rows = [[k, "null" if v is None else show(v)] for k, v in mapping.items()]
    return Table(["key", "value"], rows, caption)


def run_doc(run: RunView) -> Doc:
    sub = ""
    if run.config is not None:
        sub = plots.run_title(run.config, status=run.status, diverged_at=run.diverged_at)
    doc = Doc(f"Run report: {run.path.name}", sub)
    intro = doc.section("")
    diagnosis = diagnosis_of(run)
    if diagnosis is not None:
        intro.para(diagnosis_paragraph(diagnosis))
    intro.para(status_sentence(run))
    for p in run.problems:
        if not (run.status == "damaged" and p.startswith("summary.json")):  # said just above
            intro.note(p)
    has_curves = len(run.metrics) > 0 and "loss" in run.metrics
    net = load_network(run)
    grid, data = None, None
    if isinstance(net, str):
        intro.note(f"No decision boundary: {net}.")
    else:
        params, data, spec = net
        grid = plots.boundary_grid(params, spec, np.concatenate([data.X_train, data.X_test]))
    panel_section(doc, run, grid, data, has_curves)
    sec = doc.section("Loss and accuracy")
    if has_curves:
        sec.image("curves.png", plots.figure_png(curves_figure(run)), CURVES_CAPTION)
        sec = doc.section("Optimizer")
        sec.image("optimizer.png", plots.figure_png(optimizer_figure(run)), OPTIMIZER_CAPTION)
        if run.config is not None and has_dynamics(run.metrics):
            sec = doc.section("Dynamics")
            fig = dynamics_figure(run.metrics, run.config, diagnosis)
            sec.image("dynamics.png", plots.figure_png(fig), DYNAMICS_CAPTION)
    else:
        sec.note("No metrics to plot (metrics.csv is missing, empty or damaged).")
    sec = doc.section("Decision boundary")
    if grid is not None:
        fig = boundary_figure(run, grid, data)
        sec.image("boundary.png", plots.figure_png(fig), BOUNDARY_CAPTION)
    else:
        sec.note(f"Not available: {net}." if isinstance(net, str) else "Not available.")
    if grid is not None and not isinstance(net, str) and net[2].n_layers > 1:
        sec = doc.section("Hidden units")
        fig = hidden_units_figure(net[0], net[2], net[1])
        sec.image("hidden_units.png", plots.figure_png(fig), UNITS_CAPTION)
    gif_section(doc, run)
    sec = doc.section("Config and summary")
    if run.config_raw is not None:
        sec.table(_kv_table(flatten(run.config_raw), "config.yaml (the resolved config)"))
    if run.summary is not None:
        sec.table(_kv_table(flatten(run.summary), "summary.json"))
    if run.config_raw is None and run.summary is None:
        sec.note("No readable config.yaml or summary.json.")
    return doc


def panel_section(doc: Doc, run: RunView, grid: Any, data: Any, has_curves: bool) -> Section:
    sec = doc.section("The tutorial's panel")
    if grid is None or not has_curves:
        sec.note("Needs both the metrics and the final weights; see the notes above.")
        return sec
    title = ""
    if run.config is not None:
        title = plots.run_title(run.config, status=run.status, diverged_at=run.diverged_at)
    panel = plots.panel_figure(run.metrics, grid, data, title=title, diverged_at=run.diverged_at)
    caption = "Accuracy | decision boundary | loss, as in the tutorial."
    sec.image("panel.png", plots.figure_png(panel.fig), caption)
    return sec


def gif_section(doc: Doc, run: RunView) -> None:
    gif = run.path / "plots" / "training.gif"
    if not gif.exists():
        return
    sec = doc.section("Training animation")
    try:
        data = gif.read_bytes()
    except OSError:
        sec.note("plots/training.gif cannot be read.")
        return
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        sec.note("plots/training.gif is not a GIF file.")
        return
    sec.image("training.gif", data, "The tutorial's panel as training goes (plots/training.gif).")
