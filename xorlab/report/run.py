"""The report of one run folder: how training went, figure by figure.

Sections: an opening paragraph written from summary.json and the metrics; the tutorial's panel
(accuracy | decision boundary | loss); the loss split into its data and penalty terms beside
train/test accuracy; the optimizer over time (learning rate, gradient norm per layer with the
clipping threshold and the clipped steps, weight norm per layer); the final decision boundary,
large; the training GIF when the run has one; the config and summary as tables. The figures are
drawn in ``run_figs``, the dynamics and hidden units in ``dynamics``.
"""

from __future__ import annotations

from typing import Any

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
from .figs import divergence_reason, fmt, fmt_acc, fmt_ratio
from .read import SPIKE_RATIO, Blowup, RunView, load_network, show
from .run_figs import (
    BOUNDARY_CAPTION,
    CURVES_CAPTION,
    OPTIMIZER_CAPTION,
    boundary_figure,
    curves_figure,
    optimizer_figure,
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
