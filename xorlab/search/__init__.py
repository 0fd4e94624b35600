"""Adaptive search as pure policies (DESIGN.md section 2): successive halving, Hyperband and
population-based training (PBT), the calibration that says whether early ranks can be trusted,
and the ``events.csv`` record of every decision (section 3).

A policy is a function from the live members' metric values at a decision step to decision rows
(``events.csv``'s columns). It knows nothing of how members train: the executors carry the rows
out (a ``pruned`` member leaves the stack, an ``exploited`` one copies its parent's whole state, a
``perturbed`` one changes a key). Nothing here prints, writes files or reads the clock; every
random draw comes from ``numpy.random.default_rng([seed, member, round])``.

Steps and rows: metrics row t describes the parameters before update t, so after r steps a member
has logged the rows with step < r, and a decision after r steps reads each member's last logged
row with step < r (``values_at``).

The driver's loop, with training between the decisions::

    plan = make_plan(search, n_members, train_steps, distributions=..., min_steps=...)
    for step in plan.decision_steps():
        # train every live member (and, for pbt, every member) up to `step`
        rows = decide(plan, step, table)    # table: member, value[, diverged][, mutable keys]
        # carry rows out; write events_text(all rows so far) to events.csv

The rooms, each importing only those above it:
- ``spec``: the sweep file's ``search:`` block, its load-time checks, PBT's distributions;
- ``plan``: rungs, brackets, rounds, calibration members, network-steps, ``describe``;
- ``events``: events.csv's columns, table, text writer and reader;
- ``policy``: ranking, the rung and PBT decisions, replay, steps done, lineage;
- ``calibration``: rank correlations of early and final ranks, ``min_steps: auto``.
"""

from __future__ import annotations

from .calibration import (
    TRUST,
    auto_min_steps,
    calibration_table,
    curves_from_metrics,
    rung_correlation,
    spearman,
)
from .events import ACTIONS, EVENT_COLUMNS, events_frame, events_text, read_events
from .plan import (
    CALIBRATION_STREAM,
    Bracket,
    Plan,
    calibration_members,
    describe,
    halving_rungs,
    hyperband_weights,
    make_plan,
    pbt_count,
    planned_network_steps,
    split_proportionally,
)
from .policy import (
    badness,
    decide,
    lineage,
    pbt_events,
    ranked,
    replay,
    rung_events,
    steps_done,
    values_at,
)
from .spec import (
    ACCURACIES,
    LOSSES,
    METRICS,
    ONLY_FOR,
    SHAPE_KEYS,
    Distribution,
    SearchSpec,
    check_search,
    config_value,
    mutable_distributions,
)

__all__ = [
    "ACCURACIES",
    "ACTIONS",
    "CALIBRATION_STREAM",
    "EVENT_COLUMNS",
    "LOSSES",
    "METRICS",
    "ONLY_FOR",
    "SHAPE_KEYS",
    "TRUST",
    "Bracket",
    "Distribution",
    "Plan",
    "SearchSpec",
    "auto_min_steps",
    "badness",
    "calibration_members",
    "calibration_table",
    "check_search",
    "config_value",
    "curves_from_metrics",
    "decide",
    "describe",
    "events_frame",
    "events_text",
    "halving_rungs",
    "hyperband_weights",
    "lineage",
    "make_plan",
    "mutable_distributions",
    "pbt_count",
    "pbt_events",
    "planned_network_steps",
    "ranked",
    "read_events",
    "replay",
    "rung_correlation",
    "rung_events",
    "spearman",
    "split_proportionally",
    "steps_done",
    "values_at",
]
