"""A sweep seen as *points*: the members that share every setting but the seed (replicates).

``plan(view, x, y, metric)`` decides, once for the whole report, which key each figure uses, so
the same value keeps the same colour everywhere:

- ``x``, ``y``: the heatmap's keys; by default the two axes (variant, grid, zip or random keys)
  with the most distinct values; with one axis, the seed is ``y``.
- ``color``: the key that colours curves, boundary frames and row labels (``x``, unless that is
  the seed).
- ``facet``: the key that splits the loss curves into panels: ``y`` when it is an axis with at
  most ``MAX_FACETS`` values; with a single axis, that axis itself (one panel per value, the
  other values in grey behind it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import XorlabError
from ..rundir import FINISHED
from .figs import ValueColors
from .read import Member, SweepView, show

MAX_FACETS = 6  # panels for a second key
MAX_SOLO_FACETS = 12  # panels when the sweep has one axis (one panel per value)


@dataclass(frozen=True)
class Metric:
    name: str  # a summary.csv column, or max_spike
    label: str  # for axes and tables: "final loss"
    lower_is_better: bool


METRICS = {
    "final_loss": Metric("final_loss", "final loss", True),
    "final_train_acc": Metric("final_train_acc", "final train accuracy", False),
    "final_test_acc": Metric("final_test_acc", "final test accuracy", False),
    "diverged_at": Metric("diverged_at", "step of divergence", False),
    "wall_s": Metric("wall_s", "wall time (s)", True),
    "max_spike": Metric("max_spike", "largest loss / running minimum", True),
}


def metric_value(m: Member, metric: str) -> float | None:
    run = m.run
    if metric.startswith("final_"):
        return run.final(metric[len("final_") :])
    if metric == "diverged_at":
        return None if run.diverged_at is None else float(run.diverged_at)
    if metric == "max_spike":
        return run.max_ratio
    v = (run.summary or {}).get(metric)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def is_bad(m: Member) -> bool:
    """Diverged, or its loss blew up."""
    return m.run.status == "diverged" or m.run.first_blowup is not None


@dataclass
class Point:
    values: dict[str, Any]  # axis key -> value
    label: str
    members: list[Member] = field(default_factory=list)

    @property
    def finished(self) -> list[Member]:
        return [m for m in self.members if m.run.status in FINISHED]

    @property
    def bad(self) -> list[Member]:
        return [m for m in self.finished if is_bad(m)]

    @property
    def diverged(self) -> list[Member]:
        return [m for m in self.members if m.run.status == "diverged"]

    @property
    def unstable(self) -> bool:
        n = len(self.finished)
        return n > 0 and 2 * len(self.bad) >= n

    def metric(self, metric: str) -> np.ndarray:
        """The metric of each finished member that has it, as floats."""
        vals = [metric_value(m, metric) for m in self.finished]
        return np.array([v for v in vals if v is not None], dtype=float)

    def median(self, metric: str) -> float | None:
        v = self.metric(metric)
        return float(np.median(v)) if v.size else None

    def first(self) -> Member:
        """The replicate shown alone (decision boundary): the lowest seed that finished."""
        done = self.finished or self.members
        return min(done, key=lambda m: (m.seed if m.seed is not None else 0, m.index))


def group_points(view: SweepView) -> list[Point]:
    """Members grouped by their non-seed axis values, in the axes' value order."""
    names = view.names()
    order = {a: {show(v): i for i, v in enumerate(view.values(a))} for a in view.axes}
    groups: dict[tuple[str, ...], Point] = {}
    for m in view.members:
        vals = {a: view.value(m, a) for a in view.axes}
        key = tuple(show(v) for v in vals.values())
        if key not in groups:
            groups[key] = Point(vals, point_label(vals, names))
        groups[key].members.append(m)

    def rank(p: Point) -> tuple[int, ...]:
        return tuple(order[a].get(show(p.values[a]), 10**6) for a in view.axes)

    return sorted(groups.values(), key=rank)


def point_label(values: dict[str, Any], names: dict[str, str]) -> str:
    if not values:
        return "all members"
    return ", ".join(
        show(v) if k == "variant" else f"{names.get(k, k)}={show(v)}" for k, v in values.items()
    )


@dataclass
class Plan:
    view: SweepView
    points: list[Point]
    metric: Metric
    x: str | None  # heatmap columns
    y: str | None  # heatmap rows
    color: ValueColors | None
    facet: str | None

    @property
    def names(self) -> dict[str, str]:
        return self.view.names()

    def name(self, key: str | None) -> str:
        return "" if key is None else self.names.get(key, key)


def resolve_key(view: SweepView, key: str, option: str) -> str:
    """A dotted key, a short name (lr), 'variant' or 'seed' -> the sweep's key."""
    known = ["seed", *view.axes, *[k for k in view.varied if k not in view.axes]]
    if key in known:
        return key
    by_name = {view.names().get(k, k): k for k in known}
    if key in by_name:
        return by_name[key]
    allowed = ", ".join(view.names().get(k, k) for k in known)
    raise XorlabError(
        f"{key!r} is not a key this sweep varies; use one of: {allowed}",
        file=str(view.path),
        key=option,
    )


def plan(view: SweepView, *, x: str | None, y: str | None, metric: str) -> Plan:
    if metric not in METRICS:
        raise XorlabError(
            f"unknown metric {metric!r}; use one of: {', '.join(METRICS)}",
            file=str(view.path),
            key="--metric",
        )
    x = resolve_key(view, x, "--x") if x is not None else None
    y = resolve_key(view, y, "--y") if y is not None else None
    if x is not None and x == y:
        raise XorlabError(
            f"--x and --y are both {x!r}; give two different keys", file=str(view.path), key="--y"
        )
    seeds_vary = len(view.values("seed")) > 1
    by_count = sorted(view.independent, key=lambda a: -len(view.values(a)))  # ties keep order
    defaults = [a for a in by_count if a not in (x, y)]
    if seeds_vary:
        defaults.append("seed")
    if x is None and defaults:
        x = defaults.pop(0)
    if y is None:
        y = next((d for d in defaults if d != x), None)
    points = group_points(view)
    axes = view.independent
    color_key = x if x not in (None, "seed") else (axes[0] if axes else None)
    color = None
    if color_key is not None:
        color = ValueColors(
            color_key, view.names().get(color_key, color_key), view.values(color_key)
        )
    facet = None
    others = [a for a in axes if a != color_key]
    if y in others and len(view.values(y)) <= MAX_FACETS:
        facet = y
    elif others:
        fewest = min(others, key=lambda a: len(view.values(a)))
        facet = fewest if len(view.values(fewest)) <= MAX_FACETS else None
    elif color_key is not None and 2 <= len(view.values(color_key)) <= MAX_SOLO_FACETS:
        facet = color_key
    return Plan(view, points, METRICS[metric], x, y, color, facet)
