"""How well a run learned and how healthy its hidden layers are: plateaus, underfitting (with its
cause: a capacity limit, still learning, saturation, dead units, stuck), overfitting, saturated
or dead units at the end, and vanishing gradients in the early layers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .findings import Event, column, json_num, short

UNDERFIT_ACC = 0.9  # final train accuracy below this is underfitting
NARROW_UNITS = 8  # a hidden layer this narrow limits capacity
STILL_FALLING = 0.05  # the last quarter's relative loss drop above this: still learning
PLATEAU_SHARE = 0.2  # a plateau lasts at least this share of the steps
PLATEAU_GAIN = 0.01  # ... with less than this relative improvement
SATURATED = 0.5  # share of saturated entries in a layer
DEAD = 0.25  # share of dead ReLU units in a layer
VANISHING = 1e-2  # ||dW1||/||W1|| below this times the last layer's
GAP = 0.1  # train - test accuracy


def _final_acc(m: pd.DataFrame, summary: dict[str, Any] | None, key: str) -> float:
    final = (summary or {}).get("final")
    v = final.get(key) if isinstance(final, dict) else None
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    col = column(m, key)
    col = col[np.isfinite(col)]
    return float(col[-1]) if col.size else float("nan")


def fit_events(m, cfg, summary, steps) -> list[Event]:
    out: list[Event] = []
    ev: dict[str, Any]
    loss = column(m, "loss")
    ok = np.isfinite(loss)
    if ok.sum() < 8 or (summary or {}).get("status") == "diverged":
        return out
    steps_ok, loss_ok = steps[ok], loss[ok]
    run_min = np.minimum.accumulate(loss_ok)
    n = len(loss_ok)
    # plateaus: stretches where the running minimum gains < 1 % over >= 20 % of the rows, and
    # training then escapes (improves by more than 10 % later)
    i = 0
    while i < n - 1:
        j = i
        while j + 1 < n and run_min[j + 1] >= run_min[i] * (1 - PLATEAU_GAIN):
            j += 1
        if (j - i + 1) >= PLATEAU_SHARE * n and j < n - 1 and run_min[-1] < 0.9 * run_min[j]:
            flat = {"until": int(steps_ok[j]), "loss": json_num(float(run_min[i]))}
            text = (
                f"step {steps_ok[i]}: a plateau until step {steps_ok[j]} (the loss stayed near "
                f"{short(run_min[i])} for {steps_ok[j] - steps_ok[i]} steps), then training escaped"
            )
            out.append(Event("plateau", int(steps_ok[i]), "flat_region", flat, text))
        i = j + 1
    acc = _final_acc(m, summary, "train_acc")
    if math.isfinite(acc) and acc < UNDERFIT_ACC:
        q = max(1, n // 4)
        drop = 1 - loss_ok[-1] / loss_ok[-q - 1] if loss_ok[-q - 1] > 0 else 0.0
        since = int(np.argmax(run_min <= run_min[-1] * 1.05))
        width = min(cfg.model.hidden) if cfg.model.hidden else 0
        ev = {
            "train_acc": json_num(acc),
            "final_loss": json_num(float(loss_ok[-1])),
            "last_quarter_drop": json_num(drop),
            "within_5pct_since": int(steps_ok[since]),
            "hidden": list(cfg.model.hidden),
        }
        sat = [c for c in m.columns if c.startswith("saturated_h")]
        dead = [c for c in m.columns if c.startswith("dead_h")]
        if width <= NARROW_UNITS:
            cause = "capacity_limit"
            text = (
                f"underfit: train accuracy ends at {acc:.3f} with {width} hidden units; the loss "
                f"fell only {drop:.1%} over the last quarter of the run: a capacity limit"
            )
        elif drop > STILL_FALLING:
            cause = "still_learning"
            text = (
                f"underfit: train accuracy ends at {acc:.3f} while the loss is still falling "
                f"({drop:.1%} over the last quarter)"
            )
        elif sat and max(column(m, c)[-1] for c in sat) >= SATURATED:
            cause = "saturation"
            text = f"underfit: train accuracy ends at {acc:.3f} with saturated hidden units"
        elif dead and max(column(m, c)[-1] for c in dead) >= DEAD:
            cause = "dead_units"
            text = f"underfit: train accuracy ends at {acc:.3f} with dead ReLU units"
        else:
            cause = "stuck"
            text = f"underfit: train accuracy ends at {acc:.3f} and the loss stopped falling"
        out.append(Event("underfit", int(steps_ok[since]), cause, ev, text))
    test = _final_acc(m, summary, "test_acc")
    if math.isfinite(acc) and math.isfinite(test) and acc - test >= GAP:
        tr, te = column(m, "train_acc"), column(m, "test_acc")
        with np.errstate(invalid="ignore"):
            first = np.flatnonzero(tr - te >= GAP)
        at = int(steps[first[0]]) if first.size else int(steps[-1])
        ev = {"train_acc": json_num(acc), "test_acc": json_num(test), "gap": json_num(acc - test)}
        text = f"step {at}: train accuracy {acc:.3f} vs test {test:.3f} at the end: overfitting"
        out.append(Event("overfit", at, "train_test_gap", ev, text))
    return out


def health_events(m, cfg, steps) -> list[Event]:
    out: list[Event] = []
    if not len(m):
        return out
    for c in m.columns:
        for prefix, kind, bound, word in (
            ("saturated_h", "saturation", SATURATED, "saturated (in a flat tail)"),
            ("dead_h", "dead_units", DEAD, "dead (0 on every row)"),
        ):
            if not c.startswith(prefix):
                continue
            v = column(m, c)
            if not (np.isfinite(v[-1]) and v[-1] >= bound):
                continue
            first = int(np.flatnonzero(v >= bound)[0])
            layer = int(c[len(prefix) :])
            ev = {"layer": layer, "final": json_num(v[-1]), "max": json_num(float(np.nanmax(v)))}
            text = (
                f"step {steps[first]}: {v[-1]:.0%} of hidden layer {layer}'s "
                f"{'entries' if kind == 'saturation' else 'units'} are {word} at the end"
            )
            out.append(Event(kind, int(steps[first]), cfg.model.activation, ev, text))
    L = len(cfg.model.hidden) + 1
    g1, w1 = column(m, "grad_norm_W1"), column(m, "weight_norm_W1")
    gl, wl = column(m, f"grad_norm_W{L}"), column(m, f"weight_norm_W{L}")
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (g1 / w1) / (gl / wl)
    ok = np.isfinite(rel)
    if L >= 3 and ok.sum() >= 4:
        med = float(np.median(rel[ok]))
        if med < VANISHING:
            first = int(np.flatnonzero(ok & (rel < VANISHING))[0])
            ev = {"median_ratio": json_num(med), "layers": L}
            text = (
                f"step {steps[first]}: vanishing gradients: the first layer's relative gradient "
                f"||dW1||/||W1|| is {med:.2g}x the last layer's (median over the run)"
            )
            out.append(
                Event("vanishing_gradient", int(steps[first]), cfg.model.activation, ev, text)
            )
    return out
