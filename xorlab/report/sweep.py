"""The report of a sweep folder: one page that says what happened across its members.

It opens with a paragraph written from the data (how many blew up or diverged and where, what a
single changed setting did, which point did best), then: a table per point (replicates
aggregated), the loss curves, a heatmap of the chosen metric, the decision boundaries, the
divergence view, the settings of each variant, and every member sorted by the metric.
"""

from __future__ import annotations

from typing import Any

from .. import plots
from .doc import Doc, Table
from .figs import fmt, fmt_acc
from .outcomes import boundaries_figure, divergence_figure
from .points import Plan, metric_value, plan
from .read import SPIKE_RATIO, Member, SweepView, show
from .search import search_sections
from .sharpness import sharpness_section
from .story import span, story
from .sweep_figs import heatmap_figure, loss_figure

MAX_NOTES = 12


# --- tables --------------------------------------------------------------------------------------


def points_table(pl: Plan) -> Table:
    has_test = any(p.metric("final_test_acc").size for p in pl.points)
    cols = [
        "point",
        "members",
        "finished",
        "blew up",
        "diverged",
        "median final loss",
        "final loss range",
        "median train acc",
    ]
    if has_test:
        cols.append("median test acc")
    rows, classes = [], {}
    for i, p in enumerate(pl.points):
        blew = sum(m.run.first_blowup is not None for m in p.finished)
        loss = p.metric("final_loss")
        row = [
            p.label,
            str(len(p.members)),
            str(len(p.finished)),
            str(blew),
            str(len(p.diverged)),
            fmt(p.median("final_loss"), 3),
            span(loss),
            fmt_acc(p.median("final_train_acc")),
        ]
        if has_test:
            row.append(fmt_acc(p.median("final_test_acc")))
        if p.unstable:
            classes[(i, 0)] = "blowup"
        rows.append(row)
    caption = "One row per point (members that differ only in their seed)."
    return Table(cols, rows, caption, numeric=set(range(1, len(cols))), cell_class=classes)


NUMERIC_COLS = (
    "#",
    "final loss",
    "train acc",
    "test acc",
    "diverged at",
    "blew up at",
    "max loss ratio",
    "wall s",
)


def members_table(pl: Plan) -> Table:
    view, metric = pl.view, pl.metric
    names = view.names()
    keys = [a for a in view.axes if a != "variant"]
    has_test = any(m.run.final("test_acc") is not None for m in view.members)
    has_note = any(m.run.error or m.run.problems for m in view.members)
    cols = ["#", "member"] + (["variant"] if view.has_variants else [])
    cols += [names.get(k, k) for k in keys]
    cols += ["seed", "status", "final loss", "train acc"] + (["test acc"] if has_test else [])
    cols += ["diverged at", "blew up at", "max loss ratio", "wall s"] + (["note"] * has_note)
    sign = 1 if metric.lower_is_better else -1

    def order(m: Member) -> tuple[bool, float, int]:
        v = metric_value(m, metric.name)
        return (v is None, sign * v if v is not None else 0.0, m.index)

    rows, classes = [], {}
    status_col = cols.index("status")
    for i, m in enumerate(sorted(view.members, key=order)):
        r = m.run
        row = [str(m.index), m.label] + ([m.variant or ""] if view.has_variants else [])
        row += [show(view.value(m, k)) for k in keys]
        row += [fmt(m.seed), r.status, fmt(r.final("loss"), 4), fmt_acc(r.final("train_acc"))]
        row += [fmt_acc(r.final("test_acc"))] if has_test else []
        row += [fmt(r.diverged_at), fmt(r.first_blowup), fmt(r.max_ratio, 3)]
        wall = (r.summary or {}).get("wall_s")
        row.append(f"{wall:.2f}" if isinstance(wall, (int, float)) else "–")
        if has_note:
            row.append("; ".join(([r.error] if r.error else []) + r.problems))
        classes[(i, status_col)] = f"status-{r.status}"
        rows.append(row)
    numeric = {j for j, c in enumerate(cols) if c in NUMERIC_COLS}
    first = "lowest" if sign > 0 else "highest"
    caption = (
        f"Every member, sorted by {metric.label} ({first} first; members without a value last). "
        f"Max loss ratio: the largest loss divided by the lowest loss before it; above "
        f"{SPIKE_RATIO:g} the loss blew up."
    )
    return Table(cols, rows, caption, numeric=numeric, cell_class=classes)


def variants_table(pl: Plan) -> Table | None:
    view = pl.view
    dep = view.dependent
    if not view.has_variants or not dep:
        return None
    names = view.names()
    rows = []
    for v in view.values("variant"):
        ms = [m for m in view.members if m.variant == v and m.run.flat]
        rows.append([show(v)] + [show(ms[0].run.flat.get(k)) if ms else "–" for k in dep])
    return Table(
        ["variant"] + [names.get(k, k) for k in dep],
        rows,
        "The settings that differ between variants (from each member's config.yaml).",
    )


# --- the document -------------------------------------------------------------------------------


SECTIONS = (
    "Summary by point",
    "Loss curves",
    "Final metric heatmap",
    "Decision boundaries",
    "Divergence and blow-ups",
    "Members",
)
LOSS_CAPTION = (
    "Loss per step. Each line is the median over the seeds of one point, the band spans the "
    "lowest and highest seed; x marks the last finite loss of a diverged member."
)
BOUNDARY_CAPTION = (
    "P(class 1) after training, one small picture per point (its lowest seed), framed in the "
    "point's colour; the black line is the 0.5 boundary."
)
DIVERGENCE_CAPTION = (
    "Each bar is one member, as long as it trained; diamonds mark where the loss first blew "
    "up, crosses where training diverged."
)


def sweep_doc(view: SweepView, *, x: str | None, y: str | None, metric: str) -> Doc:
    pl = plan(view, x=x, y=y, metric=metric)
    doc = Doc(f"Sweep report: {view.name}", str(view.path.name))
    intro_section(doc, pl)
    search_sections(doc, view)  # only for a sweep with an adaptive search
    doc.section(SECTIONS[0]).table(points_table(pl))
    doc.section(SECTIONS[1]).image("loss_curves.png", png(loss_figure(pl)), LOSS_CAPTION)
    sharpness_section(doc, pl)  # only when members logged sharpness
    heatmap_section(doc, pl)
    boundaries_section(doc, pl)
    divergence_section(doc, pl)
    table = variants_table(pl)
    if table is not None:
        doc.section("Variants").table(table)
    doc.section(SECTIONS[5]).table(members_table(pl))
    return doc


def png(fig: Any) -> bytes:
    return plots.figure_png(fig)


def intro_section(doc: Doc, pl: Plan) -> None:
    view = pl.view
    intro = doc.section("")
    for block in story(pl):
        if isinstance(block, list):
            intro.bullets(block)
        else:
            intro.para(block)
    notes = view.problems + [
        f"{m.label}: " + "; ".join(([m.run.error] if m.run.error else []) + m.run.problems)
        for m in view.members
        if m.run.problems or m.run.error
    ]
    for text in notes[:MAX_NOTES]:
        intro.note(text)
    if len(notes) > MAX_NOTES:
        intro.note(f"… and {len(notes) - MAX_NOTES} more members with problems (see Members).")


def heatmap_section(doc: Doc, pl: Plan) -> None:
    sec = doc.section(SECTIONS[2])
    fig = heatmap_figure(pl)
    if fig is None:
        sec.note("Nothing varies between the members, so there is nothing to lay out.")
        return
    what = f"{pl.metric.label} by {pl.name(pl.x)}" + (f" and {pl.name(pl.y)}" if pl.y else "")
    sec.image("heatmap.png", png(fig), what + ". Choose others with --x, --y and --metric.")
    if not any(p.metric(pl.metric.name).size for p in pl.points):
        sec.note(f"No finished member has a value for {pl.metric.name}.")


def boundaries_section(doc: Doc, pl: Plan) -> None:
    sec = doc.section(SECTIONS[3])
    fig, left_out, problems = boundaries_figure(pl)
    if fig is not None:
        sec.image("boundaries.png", png(fig), BOUNDARY_CAPTION)
    if left_out:
        shown = len(pl.points) - left_out
        sec.note(
            f"{shown} of {len(pl.points)} points drawn, evenly spaced through the sweep's order; "
            f"{left_out} left out."
        )
    for p in problems[:MAX_NOTES]:
        sec.note(f"No boundary for {p}.")


def divergence_section(doc: Doc, pl: Plan) -> None:
    sec = doc.section(SECTIONS[4])
    fig, left = divergence_figure(pl)
    if fig is None:
        sec.para(
            "Every member completed all its steps; none diverged, and no loss rose above "
            f"{SPIKE_RATIO:g}× its running minimum."
        )
        return
    sec.image("divergence.png", png(fig), DIVERGENCE_CAPTION)
    if left:
        sec.note(f"{left} points where every member trained cleanly are not shown.")
