"""Why did a run go wrong, and what to change first: ``xorlab diagnose``'s logic, pure functions of
a run's metrics table, config and summary (no files, no printing).

Events (DESIGN.md section 4), each with ``kind``, ``step``, ``cause`` and ``evidence``:

- ``blow_up``: the total loss *or the data loss* rises above 10x its running minimum (so that a
  penalty cannot hide a spike behind its floor); one event per onset (a run of rows above). When
  the sharpness was logged (or replayed), the stretch of sharpness above 2/lr_t ((2 + 2mu)/lr_t
  with momentum) that ends at most a few steps before the onset is the cause
  ``edge_of_stability``, with ``evidence.above_from`` its first step. With clipping on, the
  evidence adds the clipped share of the stretch and the clipping factor at the onset.
- ``diverged``: the trainer's verdict (a non-finite value, or ``train.diverge_above``).
- ``underfit``: final train accuracy below 0.9. Cause ``capacity_limit`` for a narrow net
  (at most 8 units in a hidden layer), ``still_learning`` while the loss still falls, else
  ``saturation`` / ``dead_units`` when those dominate, else ``stuck``.
- ``plateau``: a long stretch (>= 20 % of the steps) without a 1 % improvement, that training
  later escapes.
- ``saturation`` / ``dead_units``: most of a hidden layer in sigmoid/tanh's flat tails, or a
  quarter of a ReLU layer dead, at the end of the run.
- ``vanishing_gradient``: the first layer's relative gradient ||dW1||/||W1|| 100x below the last
  layer's.
- ``oscillation``: the loss alternating up and down (period 2) by more than 1 %.
- ``overfit``: train accuracy 0.1 or more above test accuracy at the end.

Remedies: one config change each (``set``: {dotted key: value}), ranked, with the reason from
the evidence (``why``), e.g. ``optim.lr`` <= 2 / max sharpness.

The package, one idea a module (each imports only ``findings`` and the library below it):
``findings`` (Event, Remedy, Diagnosis and its JSON; reading and rounding numbers),
``stability`` (blow-ups, divergence, the sharpness stretches before them, oscillation),
``fit`` (plateaus, under- and overfitting, saturated and dead units, vanishing gradients),
``remedies`` (what to change first, and whether a remedy fixed a run); ``diagnose`` here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from .findings import Diagnosis, Event, Remedy, column, json_num
from .fit import fit_events, health_events
from .remedies import fixed, remedies
from .stability import (
    SPIKE_RATIO,
    STRETCH_WINDOW,
    Spike,
    blowup_events,
    divergence_events,
    limits,
    oscillation_events,
    spikes,
    stretch_before,
    stretches,
)

__all__ = [
    "SPIKE_RATIO",
    "Diagnosis",
    "Event",
    "Remedy",
    "Spike",
    "diagnose",
    "fixed",
    "limits",
    "remedies",
    "spikes",
    "stretch_before",
    "stretches",
]


def diagnose(
    metrics: pd.DataFrame,
    cfg: Config,
    summary: dict[str, Any] | None,
    *,
    sharpness_source: str | None = None,
) -> Diagnosis:
    """Every event found in the run's metrics, and the remedies, ranked."""
    m = metrics.reset_index(drop=True)
    steps = column(m, "step").astype(np.int64) if len(m) else np.zeros(0, dtype=np.int64)
    sharp = column(m, "sharpness")
    limit = limits(m, cfg)
    has_sharp = bool(np.isfinite(sharp).any())
    source = sharpness_source or ("logged" if has_sharp else "none")
    events: list[Event] = []
    events += blowup_events(m, cfg, steps, sharp, limit, has_sharp)
    events += divergence_events(m, cfg, summary, steps, sharp, limit, has_sharp)
    events += fit_events(m, cfg, summary, steps)
    events += health_events(m, cfg, steps)
    events += oscillation_events(m, steps)
    sharp_info: dict[str, Any] = {"source": source}
    if has_sharp:
        runs = stretches(sharp, limit)
        onsets = [e.step for e in events if e.kind in ("blow_up", "diverged")]
        followed = sum(
            1
            for a, b in runs
            if any(o is not None and steps[a] <= o <= steps[b] + STRETCH_WINDOW for o in onsets)
        )
        with np.errstate(invalid="ignore"):
            times_lr = sharp * column(m, "lr")
        sharp_info.update(
            max=json_num(float(np.nanmax(sharp))),
            max_step=int(steps[int(np.nanargmax(sharp))]),
            max_times_lr=json_num(float(np.nanmax(times_lr))),
            stretches_above=len(runs),
            stretches_followed_by_blow_up=followed,
            rows_above=int(np.sum(sharp > limit)),
            rows_measured=int(np.isfinite(sharp).sum()),
        )
    return Diagnosis(events, remedies(events, cfg, m, sharp_info), sharp_info)
