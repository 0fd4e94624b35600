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
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import Config
from .telemetry import stability_limit

SPIKE_RATIO = 10.0  # above this multiple of the running minimum, the loss has blown up
STRETCH_WINDOW = 5  # a stretch above the line may end this many steps (or 2 k) before the onset
UNDERFIT_ACC = 0.9  # final train accuracy below this is underfitting
NARROW_UNITS = 8  # a hidden layer this narrow limits capacity
STILL_FALLING = 0.05  # the last quarter's relative loss drop above this: still learning
PLATEAU_SHARE = 0.2  # a plateau lasts at least this share of the steps
PLATEAU_GAIN = 0.01  # ... with less than this relative improvement
SATURATED = 0.5  # share of saturated entries in a layer
DEAD = 0.25  # share of dead ReLU units in a layer
VANISHING = 1e-2  # ||dW1||/||W1|| below this times the last layer's
OSC_WINDOW = 20  # rows per oscillation window
OSC_FLIPS = 0.7  # share of sign changes of consecutive loss differences
OSC_AMPLITUDE = 0.01  # median |loss change| relative to the loss
GAP = 0.1  # train - test accuracy


@dataclass
class Event:
    kind: str  # blow_up | diverged | plateau | underfit | saturation | dead_units |
    # vanishing_gradient | oscillation | overfit
    step: int | None
    cause: str | None
    evidence: dict[str, Any]
    text: str  # one sentence a person can read


@dataclass
class Remedy:
    name: str  # a variant name for the remedy sweep
    set: dict[str, Any]  # dotted config key -> value
    why: str
    fixes: list[str] = field(default_factory=list)  # the event kinds it addresses


@dataclass
class Diagnosis:
    events: list[Event]
    remedies: list[Remedy]
    sharpness: dict[str, Any]  # source (logged | replayed | none), max, stretches, ...

    @property
    def problems(self) -> list[str]:
        """The kinds of event found, in order, once each."""
        return list(dict.fromkeys(e.kind for e in self.events))

    def to_json(self) -> dict[str, Any]:
        return {
            "events": [
                {k: v for k, v in asdict(e).items() if k != "text"} | {"text": e.text}
                for e in self.events
            ],
            "remedies": [
                {"set": r.set, "why": r.why, "name": r.name, "fixes": r.fixes}
                for r in self.remedies
            ],
            "sharpness": self.sharpness,
        }


# --- series helpers -----------------------------------------------------------------------------


def _col(m: pd.DataFrame, name: str) -> np.ndarray:
    if name not in m or not len(m):
        return np.full(len(m), np.nan)
    return pd.to_numeric(m[name], errors="coerce").to_numpy(dtype=float)


def _num(x: float) -> float | None:
    """A JSON-safe number, rounded to 6 significant digits."""
    return float(f"{x:.6g}") if x is not None and math.isfinite(x) else None


def _g(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}"


@dataclass
class Spike:
    onset: int  # row index of the first row above
    end: int  # row index of the last row above (contiguous)
    peak: int  # row index of the largest ratio
    ratio: float  # that ratio


def spikes(values: np.ndarray) -> tuple[list[Spike], np.ndarray]:
    """Runs of rows whose value is above SPIKE_RATIO x the lowest value before them (finite,
    positive values only), and the ratio per row (NaN where undefined)."""
    ok = np.isfinite(values) & (values > 0)
    v = np.where(ok, values, np.inf)
    before = np.concatenate([[np.inf], np.minimum.accumulate(v)[:-1]])  # (rows,)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(ok & np.isfinite(before), values / before, np.nan)
    hit = ratio > SPIKE_RATIO
    out: list[Spike] = []
    i, n = 0, len(values)
    while i < n:
        if hit[i]:
            j = i
            while j + 1 < n and hit[j + 1]:
                j += 1
            seg = ratio[i : j + 1]
            peak = i + int(np.nanargmax(seg))
            out.append(Spike(i, j, peak, float(ratio[peak])))
            i = j + 1
        else:
            i += 1
    return out, ratio


def limits(m: pd.DataFrame, cfg: Config) -> np.ndarray:
    """The stability limit 2/lr_t ((2 + 2mu)/lr_t) per row."""
    lr = _col(m, "lr")
    return np.array([stability_limit(x, cfg.optim.kind, cfg.optim.momentum) for x in lr])


def stretch_before(
    steps: np.ndarray, sharp: np.ndarray, limit: np.ndarray, at: int
) -> tuple[int, int] | None:
    """(first, last) row index of the stretch of measured sharpness above the limit that ends
    at or at most STRETCH_WINDOW steps before row ``at``; None when there is none."""
    measured = np.flatnonzero(np.isfinite(sharp[: at + 1]))
    above = [int(i) for i in measured if sharp[i] > limit[i]]
    every = np.diff(steps[np.isfinite(sharp)])  # sharpness measured every k-th step: k
    window = max(STRETCH_WINDOW, 2 * int(np.median(every))) if every.size else STRETCH_WINDOW
    if not above or steps[at] - steps[above[-1]] > window:
        return None
    last = above[-1]
    pos = int(np.searchsorted(measured, last))
    first = last
    while pos > 0 and sharp[measured[pos - 1]] > limit[measured[pos - 1]]:
        pos -= 1
        first = int(measured[pos])
    return first, last


def stretches(sharp: np.ndarray, limit: np.ndarray) -> list[tuple[int, int]]:
    """Every maximal run of measured rows with sharpness above the limit, as row indices."""
    out: list[tuple[int, int]] = []
    prev = -1  # the last measured row seen
    for i in np.flatnonzero(np.isfinite(sharp)).tolist():
        if sharp[i] > limit[i]:
            if out and out[-1][1] == prev:
                out[-1] = (out[-1][0], i)
            else:
                out.append((i, i))
        prev = i
    return out


# --- the diagnosis ------------------------------------------------------------------------------


def diagnose(
    metrics: pd.DataFrame,
    cfg: Config,
    summary: dict[str, Any] | None,
    *,
    sharpness_source: str | None = None,
) -> Diagnosis:
    """Every event found in the run's metrics, and the remedies, ranked."""
    m = metrics.reset_index(drop=True)
    steps = _col(m, "step").astype(np.int64) if len(m) else np.zeros(0, dtype=np.int64)
    sharp = _col(m, "sharpness")
    limit = limits(m, cfg)
    has_sharp = bool(np.isfinite(sharp).any())
    source = sharpness_source or ("logged" if has_sharp else "none")
    events: list[Event] = []
    events += _blowups(m, cfg, steps, sharp, limit, has_sharp)
    events += _divergence(m, cfg, summary, steps, sharp, limit, has_sharp)
    events += _fit(m, cfg, summary, steps)
    events += _health(m, cfg, steps)
    events += _oscillation(m, steps)
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
            times_lr = sharp * _col(m, "lr")
        sharp_info.update(
            max=_num(float(np.nanmax(sharp))),
            max_step=int(steps[int(np.nanargmax(sharp))]),
            max_times_lr=_num(float(np.nanmax(times_lr))),
            stretches_above=len(runs),
            stretches_followed_by_blow_up=followed,
            rows_above=int(np.sum(sharp > limit)),
            rows_measured=int(np.isfinite(sharp).sum()),
        )
    return Diagnosis(events, remedies(events, cfg, m, sharp_info), sharp_info)


def _blowups(m, cfg, steps, sharp, limit, has_sharp) -> list[Event]:
    loss, data = _col(m, "loss"), _col(m, "data_loss")
    s_loss, r_loss = spikes(loss)
    s_data, r_data = spikes(data) if np.isfinite(data).any() else ([], np.full(len(m), np.nan))
    # merge the two curves' runs of rows above: one event per onset
    rows = sorted({i for s in s_loss + s_data for i in range(s.onset, s.end + 1)})
    episodes: list[tuple[int, int]] = []
    for i in rows:
        if episodes and i == episodes[-1][1] + 1:
            episodes[-1] = (episodes[-1][0], i)
        else:
            episodes.append((i, i))
    out = []
    grad = _col(m, "grad_norm")
    clipped = _col(m, "clipped")
    clip_on = cfg.optim.clip.kind != "none"
    for a, b in episodes:
        seg_l, seg_d = r_loss[a : b + 1], r_data[a : b + 1]
        peak_l = float(np.nanmax(seg_l)) if np.isfinite(seg_l).any() else float("nan")
        peak_d = float(np.nanmax(seg_d)) if np.isfinite(seg_d).any() else float("nan")
        on_loss, on_data = peak_l > SPIKE_RATIO, peak_d > SPIKE_RATIO
        curve = "both" if on_loss and on_data else ("loss" if on_loss else "data_loss")
        use = seg_d if curve == "data_loss" else seg_l
        peak_row = a + int(np.nanargmax(use))
        ev: dict[str, Any] = {
            "curve": curve,
            "ratio": _num(max(x for x in (peak_l, peak_d) if math.isfinite(x))),
            "loss_ratio": _num(peak_l),
            "data_loss_ratio": _num(peak_d),
            "peak_step": int(steps[peak_row]),
            "rows_above": b - a + 1,
        }
        text = f"step {steps[a]}: the {'data loss' if curve == 'data_loss' else 'loss'} blew up"
        text += f" to {_g(ev['ratio'])}x its running minimum (peak at step {steps[peak_row]})"
        if curve == "data_loss":
            pen = _col(m, "reg_loss")[a]
            ev["penalty"] = _num(pen)
            text += (
                f"; the total loss rose only {_g(peak_l)}x: the penalty ({_g(pen)}) is a floor "
                "that hides the spike"
            )
        cause = None
        if has_sharp:
            st = stretch_before(steps, sharp, limit, a)
            if st is not None:
                f, last = st
                seg = sharp[f : last + 1]
                cause = "edge_of_stability"
                ev.update(
                    above_from=int(steps[f]),
                    above_to=int(steps[last]),
                    steps_above=int(steps[last] - steps[f] + 1),
                    max_sharpness=_num(float(np.nanmax(seg))),
                    limit=_num(float(limit[a])),
                )
                text += (
                    f", after sharpness stood above 2/lr = {_g(limit[a])} from step "
                    f"{steps[f]} to {steps[last]} (max {_g(float(np.nanmax(seg)))})"
                )
            else:
                ev["sharpness_at_onset"] = _num(float(sharp[a]))
                text += "; the sharpness was not above 2/lr just before it"
        if clip_on:
            lo = ev.get("above_from")
            first = int(np.searchsorted(steps, lo)) if lo is not None else a
            ev["clipped_share"] = _num(float(np.nanmean(clipped[first : a + 1] > 0)))
            if cfg.optim.clip.kind == "norm" and grad[a] > cfg.optim.clip.max:
                ev["clip_factor"] = _num(cfg.optim.clip.max / grad[a])
        out.append(Event("blow_up", int(steps[a]), cause, ev, text))
    return out


def _divergence(m, cfg, summary, steps, sharp, limit, has_sharp) -> list[Event]:
    s = summary or {}
    at = s.get("diverged_at")
    if s.get("status") != "diverged" or not isinstance(at, int):
        return []
    rows = np.flatnonzero(steps == at)
    ev: dict[str, Any] = {}
    cause = "non-finite value"
    if rows.size:
        r = int(rows[-1])
        loss = _col(m, "loss")[r]
        limit_above = cfg.train.diverge_above
        if math.isfinite(loss) and limit_above is not None and loss > limit_above:
            cause = "above_diverge_above"
            ev["loss"] = _num(loss)
        elif not math.isfinite(loss):
            cause = "non-finite loss"
        if has_sharp:
            st = stretch_before(steps, sharp, limit, r)
            if st is not None:
                ev.update(reason=cause, above_from=int(steps[st[0]]), above_to=int(steps[st[1]]))
                ev["max_sharpness"] = _num(float(np.nanmax(sharp[st[0] : st[1] + 1])))
                cause = "edge_of_stability"
    text = f"step {at}: training diverged ({ev.get('reason', cause).replace('_', ' ')})"
    if cause == "edge_of_stability":
        text += f", after sharpness stood above 2/lr from step {ev['above_from']}"
    return [Event("diverged", at, cause, ev, text)]


def _final_acc(m: pd.DataFrame, summary: dict[str, Any] | None, key: str) -> float:
    final = (summary or {}).get("final")
    v = final.get(key) if isinstance(final, dict) else None
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    col = _col(m, key)
    col = col[np.isfinite(col)]
    return float(col[-1]) if col.size else float("nan")


def _fit(m, cfg, summary, steps) -> list[Event]:
    out: list[Event] = []
    ev: dict[str, Any]
    loss = _col(m, "loss")
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
            flat = {"until": int(steps_ok[j]), "loss": _num(float(run_min[i]))}
            text = (
                f"step {steps_ok[i]}: a plateau until step {steps_ok[j]} (the loss stayed near "
                f"{_g(run_min[i])} for {steps_ok[j] - steps_ok[i]} steps), then training escaped"
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
            "train_acc": _num(acc),
            "final_loss": _num(float(loss_ok[-1])),
            "last_quarter_drop": _num(drop),
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
        elif sat and max(_col(m, c)[-1] for c in sat) >= SATURATED:
            cause = "saturation"
            text = f"underfit: train accuracy ends at {acc:.3f} with saturated hidden units"
        elif dead and max(_col(m, c)[-1] for c in dead) >= DEAD:
            cause = "dead_units"
            text = f"underfit: train accuracy ends at {acc:.3f} with dead ReLU units"
        else:
            cause = "stuck"
            text = f"underfit: train accuracy ends at {acc:.3f} and the loss stopped falling"
        out.append(Event("underfit", int(steps_ok[since]), cause, ev, text))
    test = _final_acc(m, summary, "test_acc")
    if math.isfinite(acc) and math.isfinite(test) and acc - test >= GAP:
        tr, te = _col(m, "train_acc"), _col(m, "test_acc")
        with np.errstate(invalid="ignore"):
            first = np.flatnonzero(tr - te >= GAP)
        at = int(steps[first[0]]) if first.size else int(steps[-1])
        ev = {"train_acc": _num(acc), "test_acc": _num(test), "gap": _num(acc - test)}
        text = f"step {at}: train accuracy {acc:.3f} vs test {test:.3f} at the end: overfitting"
        out.append(Event("overfit", at, "train_test_gap", ev, text))
    return out


def _health(m, cfg, steps) -> list[Event]:
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
            v = _col(m, c)
            if not (np.isfinite(v[-1]) and v[-1] >= bound):
                continue
            first = int(np.flatnonzero(v >= bound)[0])
            layer = int(c[len(prefix) :])
            ev = {"layer": layer, "final": _num(v[-1]), "max": _num(float(np.nanmax(v)))}
            text = (
                f"step {steps[first]}: {v[-1]:.0%} of hidden layer {layer}'s "
                f"{'entries' if kind == 'saturation' else 'units'} are {word} at the end"
            )
            out.append(Event(kind, int(steps[first]), cfg.model.activation, ev, text))
    L = len(cfg.model.hidden) + 1
    g1, w1 = _col(m, "grad_norm_W1"), _col(m, "weight_norm_W1")
    gl, wl = _col(m, f"grad_norm_W{L}"), _col(m, f"weight_norm_W{L}")
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (g1 / w1) / (gl / wl)
    ok = np.isfinite(rel)
    if L >= 3 and ok.sum() >= 4:
        med = float(np.median(rel[ok]))
        if med < VANISHING:
            first = int(np.flatnonzero(ok & (rel < VANISHING))[0])
            ev = {"median_ratio": _num(med), "layers": L}
            text = (
                f"step {steps[first]}: vanishing gradients: the first layer's relative gradient "
                f"||dW1||/||W1|| is {med:.2g}x the last layer's (median over the run)"
            )
            out.append(
                Event("vanishing_gradient", int(steps[first]), cfg.model.activation, ev, text)
            )
    return out


def _oscillation(m, steps) -> list[Event]:
    loss = _col(m, "loss")
    if len(loss) < OSC_WINDOW + 2 or not np.isfinite(loss).all():
        return []
    d = np.diff(loss)  # (rows-1,)
    flips = np.sign(d[1:]) * np.sign(d[:-1]) < 0  # (rows-2,)
    found = []
    for start in range(0, len(flips) - OSC_WINDOW + 1, OSC_WINDOW // 2):
        share = float(flips[start : start + OSC_WINDOW].mean())
        amp = float(np.median(np.abs(d[start : start + OSC_WINDOW])))
        level = float(np.median(loss[start : start + OSC_WINDOW]))
        if share >= OSC_FLIPS and level > 0 and amp / level >= OSC_AMPLITUDE:
            found.append((start, share, amp / level))
    if not found:
        return []
    start, share, rel = max(found, key=lambda f: f[2])
    ev = {
        "windows": len(found),
        "flip_share": _num(share),
        "relative_amplitude": _num(rel),
        "first_step": int(steps[found[0][0]]),
    }
    text = (
        f"step {steps[found[0][0]]}: the loss oscillates step to step ({len(found)} windows of "
        f"{OSC_WINDOW} rows; up to {rel:.1%} of the loss per step)"
    )
    return [Event("oscillation", int(steps[found[0][0]]), "step_too_large", ev, text)]


# --- remedies -----------------------------------------------------------------------------------


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
                f"optim.lr <= {'(2 + 2μ)' if mu else '2'}/max sharpness = {_g(bound)} (max "
                f"sharpness {_g(s_max)} at lr {_g(lr)}): GD is then stable along the sharpest "
                "direction"
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
            g = _col(m, "grad_norm")
            first = min((e.step for e in unstable if e.step is not None), default=None)
            before = g[: int(np.searchsorted(_col(m, "step"), first))] if first else g
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
            out.append(Remedy(f"steps_{steps}", {"train.steps": steps}, why, ["underfit"]))
            s_lr = sharp.get("max_times_lr")
            if s_lr is not None and s_lr < 0.5:
                new_lr = _nice(lr * min(4.0, 1.0 / s_lr))
                why = (
                    f"sharpness x lr peaked at {_g(s_lr)}, far below 2: a larger lr ({new_lr:g}) "
                    "is still stable"
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
