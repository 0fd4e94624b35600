"""The sweep figures that show each point or member on its own: how it ended.

- ``boundaries_figure``: a small decision boundary per point (its lowest seed with weights), at
  most ``MAX_BOUNDARIES``; laid out as a matrix when the points form an x-by-y grid.
- ``divergence_figure``: one bar per member, as far as it trained, with the steps where its loss
  blew up or training diverged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots
from .figs import (
    BLOWUP_COLOR,
    DIVERGE_COLOR,
    SMALL_RES,
    STATUS_COLORS,
    WIDTH,
    boundary_thumbnail,
    note,
    readable,
)
from .points import Plan, Point
from .read import SPIKE_RATIO, Member, load_network, number, show

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_BOUNDARIES = 36  # small pictures in the boundary grid
MAX_DIVERGENCE_ROWS = 40  # points in the divergence view
ALL_ROWS_UP_TO = 16  # with more points than this, only those where something happened


# --- decision boundaries ------------------------------------------------------------------------


def boundaries_figure(plan: Plan) -> tuple[Figure | None, int, list[str]]:
    """(figure, points left out, problems): at most MAX_BOUNDARIES points, evenly spaced."""
    points = plan.points
    if len(points) > MAX_BOUNDARIES:  # evenly through the sweep, so every range shows
        picks = np.linspace(0, len(points) - 1, MAX_BOUNDARIES).round().astype(int)
        points = [points[i] for i in picks]
    left_out = len(plan.points) - len(points)
    problems: list[str] = []
    if not points:
        return None, 0, problems
    x, y = plan.x, plan.y
    matrix = None
    if x is not None and y is not None and {x, y} == set(plan.view.axes) and not left_out:
        xv, yv = plan.view.values(x), plan.view.values(y)
        matrix = (xv, yv)
        nrows, ncols = len(yv), len(xv)
    else:
        n = len(points)
        ncols = n if n <= 7 else (6 if n > 8 else 4)
        nrows = math.ceil(n / ncols)
    size = min(2.3, (WIDTH - 0.8) / ncols)
    fig = plots.new_figure(0.8 + size * ncols, 0.9 + (size + 0.25) * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for k, p in enumerate(points):
        if matrix is not None and x is not None and y is not None:
            xv, yv = matrix
            j = [show(v) for v in xv].index(show(p.values[x]))
            i = [show(v) for v in yv].index(show(p.values[y]))
            ax = axes[i, j]
            title = ""
        else:
            ax = axes.ravel()[k]
            title = small_title(plan, p)
        ax.set_visible(True)
        _small_boundary(ax, plan, p, title, problems)
    if matrix is not None:
        xv, yv = matrix
        for j, v in enumerate(xv):
            axes[0, j].set_title(
                f"{plan.name(x)}={show(v)}",
                fontsize=9.5,
                color=_key_color(plan, x, v),
                fontweight="bold",
            )
        for i, v in enumerate(yv):
            axes[i, 0].set_ylabel(
                f"{plan.name(y)}={show(v)}",
                fontsize=9.5,
                color=_key_color(plan, y, v),
                fontweight="bold",
            )
    seeds = (
        "the lowest seed of each point"
        if any(len(p.members) > 1 for p in points)
        else "one per member"
    )
    title = f"Decision boundaries after training ({seeds}; red: class 0, blue: class 1)"
    width = float(fig.get_figwidth())
    fig.suptitle(plots.fit_title(title, width, 12), fontsize=12, fontweight="bold")
    return fig, left_out, problems


def small_title(plan: Plan, p: Point) -> str:
    """A point's values, short enough for a small picture: one key per line, 3 digits."""
    parts = [
        show(v) if k == "variant" else f"{plan.name(k)}={_short(v)}" for k, v in p.values.items()
    ]
    joined = " · ".join(parts)
    return joined if len(joined) <= 28 else "\n".join(parts)


def _short(v: Any) -> str:
    return number(v, 3) if isinstance(v, float) else show(v)


def _key_color(plan: Plan, key: str | None, value: Any) -> str:
    if plan.color is not None and key == plan.color.key:
        return readable(plan.color(value))
    return "#111111"


def _small_boundary(ax: Axes, plan: Plan, p: Point, title: str, problems: list[str]) -> None:
    m, net = p.first(), load_network(p.first().run)
    for other in sorted(p.finished, key=lambda m: (m.seed or 0, m.index)):
        if isinstance(net, str) and not isinstance(got := load_network(other.run), str):
            m, net = other, got  # a replicate that has weights, rather than none
    ax.set_xticks([])
    ax.set_yticks([])
    if isinstance(net, str):
        ax.set_box_aspect(1)  # square like its neighbours, which show an equal-aspect image
        note(ax, f"{m.run.status}\n{net}")
        problems.append(f"{m.label}: {net}")
    else:
        params, data, spec = net
        boundary_thumbnail(ax, params, spec, data, res=SMALL_RES, point_size=7.0)
    if plan.color is not None:
        c = plan.color(p.values.get(plan.color.key))
        for s in ax.spines.values():
            s.set_edgecolor(c)
            s.set_linewidth(2.5)
    status = m.run.status if m.run.status != "completed" else ""
    color = DIVERGE_COLOR if status else "#444444"
    if not status and m.run.first_blowup is not None:
        status, color = f"blew up at step {m.run.first_blowup}", BLOWUP_COLOR
    seed = f"seed {m.seed}" if m.seed is not None and len(p.members) > 1 else ""
    if title:
        ax.set_title(title, fontsize=8.5)
    ax.set_xlabel(" · ".join(s for s in (seed, status) if s), fontsize=8, color=color)


# --- divergence ---------------------------------------------------------------------------------


def eventful(p: Point) -> bool:
    return any(is_event(m) for m in p.members)


def is_event(m: Member) -> bool:
    return m.run.status != "completed" or m.run.first_blowup is not None


def divergence_figure(plan: Plan) -> tuple[Figure | None, int]:
    """(figure, points left out because every member trained cleanly); None if nothing
    happened."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    points = plan.points
    if not any(eventful(p) for p in points):
        return None, 0
    shown = points
    if len(points) > ALL_ROWS_UP_TO:
        shown = [p for p in points if eventful(p)][:MAX_DIVERGENCE_ROWS]
    left_out = len(points) - len(shown)
    per_row = max(len(p.members) for p in shown)
    height = min(0.34 * len(shown) * max(1.0, per_row / 3) + 1.8, 14.0)
    fig = plots.new_figure(WIDTH * 0.9, max(3.2, height))
    ax = fig.add_subplot()
    total = max((m.run.steps_total or 0 for p in shown for m in p.members), default=1) or 1
    events = []
    for r, p in enumerate(shown):
        k = len(p.members)
        for s, m in enumerate(sorted(p.members, key=lambda m: (m.seed or 0, m.index))):
            yy = r + (s - (k - 1) / 2) * (0.8 / max(k, 1))
            done = m.run.steps_done
            end = done if done is not None else 0
            c = STATUS_COLORS.get(m.run.status, "#999999")
            ax.plot(
                [0, max(end, 0.5)],
                [yy, yy],
                color=c,
                lw=min(5.0, 14.0 / max(k, 1)),
                alpha=0.55,
                solid_capstyle="butt",
            )
            if m.run.first_blowup is not None:
                ax.plot(m.run.first_blowup, yy, "D", color=BLOWUP_COLOR, ms=5, zorder=4)
                events.append(m.run.first_blowup)
            if m.run.diverged_at is not None:
                ax.plot(
                    m.run.diverged_at,
                    yy,
                    "X",
                    color=DIVERGE_COLOR,
                    ms=8,
                    zorder=5,
                    mec="white",
                    mew=0.6,
                )
                events.append(m.run.diverged_at)
    ax.set_yticks(range(len(shown)), [p.label for p in shown], fontsize=9)
    if plan.color is not None:
        for lab, p in zip(ax.get_yticklabels(), shown):
            lab.set_color(readable(plan.color(p.values.get(plan.color.key))))
    ax.set_ylim(len(shown) - 0.5, -0.5)
    if events and float(np.median(events)) < 0.05 * total:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("symlog", linthresh=1, linscale=0.25)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))  # steps: 1, 10
        ax.set_xlabel("training step (log scale)")
    else:
        ax.set_xlabel("training step")
    ax.set_xlim(0, total * 1.02)
    ax.grid(True, axis="x", alpha=0.3)
    present = {m.run.status for p in shown for m in p.members}
    statuses = [s for s in STATUS_COLORS if s in present]
    handles: list[Any] = [
        Patch(color=STATUS_COLORS.get(s, "#999"), alpha=0.55, label=s) for s in statuses
    ]
    if any(m.run.first_blowup not in (None, m.run.diverged_at) for p in shown for m in p.members):
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="D",
                color=BLOWUP_COLOR,
                label=f"loss blew up (> {SPIKE_RATIO:g}× its running minimum)",
            )
        )
    if any(m.run.diverged_at is not None for p in shown for m in p.members):
        causes = {
            "above" if m.run.diverge_cause == "above" else "non-finite"
            for p in shown
            for m in p.members
            if m.run.diverged_at is not None and m.run.diverge_cause not in (None, "unknown")
        }
        why = {
            frozenset(): "diverged",
            frozenset({"above"}): "diverged (loss above train.diverge_above)",
            frozenset({"non-finite"}): "diverged (a non-finite value)",
        }.get(frozenset(causes), "diverged (non-finite, or loss above train.diverge_above)")
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="X",
                color=DIVERGE_COLOR,
                ms=8,
                label=why,
            )
        )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(4, len(handles)),
        fontsize=9,
        title="bars: steps trained, coloured by status",
        title_fontsize=9,
    )
    per = "one bar per seed" if per_row > 1 else "one bar per member"
    fig.suptitle(
        f"Which members diverged or blew up, and when ({per})", fontsize=12, fontweight="bold"
    )
    return fig, left_out
