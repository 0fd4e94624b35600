"""What to change first: one config change per remedy, ranked, each with the reason from the
evidence; and whether a remedy fixed a run, judged by the same criteria."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from .findings import Diagnosis, Event, Remedy, column, short


def _round_down(x: float) -> float:
    """Two significant digits, rounded down: 1.538 -> 1.5, 0.0172 -> 0.017."""
    if not (x > 0 and math.isfinite(x)):
        return x
    e = math.floor(math.log10(x)) - 1
    return math.floor(x / 10**e) * 10**e if e < 0 else float(math.floor(x / 10**e) * 10**e)


def _nice(x: float) -> float:
    return float(f"{_round_down(x):.2g}")


def remedies(
    events: list[Event], cfg: Config, m: pd.DataFrame, sharp: dict[str, Any]
) -> list[Remedy]:
    """One config change per remedy, most direct first, each with the evidence it answers."""
    out: list[Remedy] = []
    kinds = {e.kind for e in events}
    lr = cfg.optim.lr
    unstable = [e for e in events if e.kind in ("blow_up", "diverged")]
    if unstable or "oscillation" in kinds:
        fixes = sorted({e.kind for e in unstable} | ({"oscillation"} & kinds))
        s_max = sharp.get("max")
        eos = [e for e in unstable if e.cause == "edge_of_stability"]
        if s_max and cfg.optim.kind != "adam":
            mu = cfg.optim.momentum if cfg.optim.kind == "momentum" else 0.0
            bound = (2 + 2 * mu) / s_max
            new_lr = _nice(0.9 * bound) if bound < lr else _nice(lr / 2)
            why = (
                f"optim.lr <= {'(2 + 2μ)' if mu else '2'}/max sharpness = {short(bound)} (max "
                f"sharpness {short(s_max)} at lr {short(lr)}): GD is then stable along the "
                "sharpest direction"
            )
            if bound >= lr:
                why = f"the sharpness stayed below 2/lr; a smaller step ({new_lr:g}) damps the rise"
            out.append(Remedy(f"lr_{new_lr:g}", {"optim.lr": new_lr}, why, fixes))
            if eos and cfg.optim.schedule.kind == "constant":
                t1 = min(e.evidence["above_from"] for e in eos if "above_from" in e.evidence)
                decay = _nice(max((lr * s_max / (2 + 2 * mu) - 1) / max(t1, 1), 1e-4) * 1.2)
                why = (
                    f"inverse-time decay lr/(1 + {decay:g} t) brings lr_t below 2/max sharpness "
                    f"by about step {t1}, where the first stretch above 2/lr began"
                )
                out.append(
                    Remedy(
                        f"inverse_time_{decay:g}",
                        {"optim.schedule": {"kind": "inverse_time", "decay": decay}},
                        why,
                        fixes,
                    )
                )
        else:
            new_lr = _nice(lr / 4)
            why = f"the loss rose on its own steps; a 4x smaller lr ({new_lr:g}) damps that"
            out.append(Remedy(f"lr_{new_lr:g}", {"optim.lr": new_lr}, why, fixes))
        if cfg.optim.clip.kind == "none":
            g = column(m, "grad_norm")
            first = min((e.step for e in unstable if e.step is not None), default=None)
            before = g[: int(np.searchsorted(column(m, "step"), first))] if first else g
            before = before[np.isfinite(before)]
            if before.size:
                cmax = _nice(float(np.median(before)))
                why = (
                    f"norm clipping at {cmax:g} (the median gradient norm before the first "
                    "blow-up) caps each step's length, so it cannot run away along the sharpest "
                    "direction"
                )
                clip = {"kind": "norm", "max": cmax}
                out.append(Remedy(f"clip_norm_{cmax:g}", {"optim.clip": clip}, why, fixes))
    for e in events:
        if e.kind != "underfit":
            continue
        hidden = list(cfg.model.hidden)
        if e.cause == "capacity_limit":
            wider = [max(4 * h, 12) for h in hidden]
            why = (
                f"{min(hidden)} hidden units cannot draw the boundary; 4x the units ({wider}) "
                "lifts the capacity limit"
            )
            out.append(Remedy(f"hidden_{'x'.join(map(str, wider))}", {"model.hidden": wider}, why,
                              ["underfit"]))  # fmt: skip
        if e.cause in ("still_learning", "capacity_limit", "stuck"):
            steps = cfg.train.steps * 4
            drop = e.evidence.get("last_quarter_drop") or 0.0
            why = f"the loss still fell {drop:.1%} over the last quarter; 4x the steps ({steps})"
            if e.cause != "still_learning":  # it barely fell: more steps is the test, not a cure
                why = (
                    f"the loss fell only {drop:.1%} over the last quarter; 4x the steps ({steps}) "
                    "tells a slow descent from a limit"
                )
            out.append(Remedy(f"steps_{steps}", {"train.steps": steps}, why, ["underfit"]))
            s_lr = sharp.get("max_times_lr")
            if s_lr is not None and s_lr < 0.5:
                new_lr = _nice(lr * min(4.0, 1.0 / s_lr))
                why = (
                    f"sharpness x lr peaked at {short(s_lr)}, far below 2: a larger lr "
                    f"({new_lr:g}) is still stable"
                )
                out.append(Remedy(f"lr_{new_lr:g}", {"optim.lr": new_lr}, why, ["underfit"]))
        if e.cause == "saturation" and cfg.model.activation != "relu":
            why = "most hidden units sit in sigmoid/tanh's flat tails; ReLU has none above 0"
            out.append(Remedy("relu", {"model.activation": "relu"}, why, ["underfit"]))
    if "saturation" in kinds and cfg.model.init == "uniform":
        why = "saturated units: xavier init keeps the first pre-activations smaller"
        out.append(Remedy("xavier", {"model.init": "xavier"}, why, ["saturation"]))
    if "dead_units" in kinds:
        new_lr = _nice(lr / 2)
        why = "dead ReLU units: a large step pushed their inputs below 0 for every row"
        out.append(Remedy(f"lr_{new_lr:g}", {"optim.lr": new_lr}, why, ["dead_units"]))
    if "vanishing_gradient" in kinds and cfg.model.activation != "relu":
        why = "the early layers barely learn through sigmoid/tanh derivatives (<= 0.25 / 1)"
        out.append(Remedy("relu", {"model.activation": "relu"}, why, ["vanishing_gradient"]))
    if "overfit" in kinds:
        s = cfg.regularization.strength
        new = _nice(max(s * 10, 1e-3))
        why = f"train/test gap: a 10x stronger l2 penalty ({new:g})"
        reg = {"kind": "l2", "strength": new}
        out.append(Remedy(f"l2_{new:g}", {"regularization": reg}, why, ["overfit"]))
    seen: dict[str, Remedy] = {}
    for r in out:  # one remedy per variant name, the first (highest-ranked) reason kept
        if r.name in seen:
            seen[r.name].fixes = sorted(set(seen[r.name].fixes) | set(r.fixes))
        else:
            seen[r.name] = r
    return list(seen.values())


def fixed(remedy: Remedy, after: Diagnosis) -> bool:
    """A remedy fixed the run when none of the problems it addresses is found after it, by the
    same criteria."""
    return not (set(remedy.fixes) & set(after.problems))
