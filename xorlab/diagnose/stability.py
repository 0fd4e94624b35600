"""Instability in a run's metrics: blow-ups (the total or the data loss above 10x its running
minimum) and divergence, each with the stretch of sharpness above the stability line 2/lr_t that
came before it (the edge of stability), and step-to-step oscillation of the loss."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from ..telemetry import stability_limit
from .findings import Event, column, json_num, short

SPIKE_RATIO = 10.0  # above this multiple of the running minimum, the loss has blown up
STRETCH_WINDOW = 5  # a stretch above the line may end this many steps (or 2 k) before the onset
OSC_WINDOW = 20  # rows per oscillation window
OSC_FLIPS = 0.7  # share of sign changes of consecutive loss differences
OSC_AMPLITUDE = 0.01  # median |loss change| relative to the loss


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
    lr = column(m, "lr")
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


def blowup_events(m, cfg, steps, sharp, limit, has_sharp) -> list[Event]:
    loss, data = column(m, "loss"), column(m, "data_loss")
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
    grad = column(m, "grad_norm")
    clipped = column(m, "clipped")
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
            "ratio": json_num(max(x for x in (peak_l, peak_d) if math.isfinite(x))),
            "loss_ratio": json_num(peak_l),
            "data_loss_ratio": json_num(peak_d),
            "peak_step": int(steps[peak_row]),
            "rows_above": b - a + 1,
        }
        name = {"data_loss": "data loss", "loss": "total loss"}.get(curve, "loss")
        text = f"step {steps[a]}: the {name} blew up"
        text += f" to {short(ev['ratio'])}x its running minimum (peak at step {steps[peak_row]})"
        hidden = ""
        if curve == "data_loss":
            pen = column(m, "reg_loss")[a]
            ev["penalty"] = json_num(pen)
            hidden = (
                f"; the total loss rose only {short(peak_l)}x: the penalty ({short(pen)}) is a "
                "floor that hides the spike"
            )
        elif curve == "loss" and math.isfinite(peak_d):
            hidden = f"; the data loss rose only {short(peak_d)}x"
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
                    max_sharpness=json_num(float(np.nanmax(seg))),
                    limit=json_num(float(limit[a])),
                )
                when = (
                    f"at step {steps[f]}" if f == last else f"from step {steps[f]} to {steps[last]}"
                )
                text += (
                    f", after sharpness stood above 2/lr = {short(limit[a])} {when} "
                    f"(max {short(float(np.nanmax(seg)))})"
                )
            else:
                ev["sharpness_at_onset"] = json_num(float(sharp[a]))
                text += "; the sharpness was not above 2/lr just before it"
        if clip_on:
            lo = ev.get("above_from")
            first = int(np.searchsorted(steps, lo)) if lo is not None else a
            ev["clipped_share"] = json_num(float(np.nanmean(clipped[first : a + 1] > 0)))
            if cfg.optim.clip.kind == "norm" and grad[a] > cfg.optim.clip.max:
                ev["clip_factor"] = json_num(cfg.optim.clip.max / grad[a])
            share = ev["clipped_share"]
            if share is not None:
                text += f"; {share:.0%} of the steps from step {steps[first]} on were clipped"
                if "clip_factor" in ev:
                    text += f" (by a factor {short(ev['clip_factor'])} at the onset)"
        out.append(Event("blow_up", int(steps[a]), cause, ev, text + hidden))
    return out


def divergence_events(m, cfg, summary, steps, sharp, limit, has_sharp) -> list[Event]:
    s = summary or {}
    at = s.get("diverged_at")
    if s.get("status") != "diverged" or not isinstance(at, int):
        return []
    rows = np.flatnonzero(steps == at)
    ev: dict[str, Any] = {}
    cause = "non-finite value"
    if rows.size:
        r = int(rows[-1])
        loss = column(m, "loss")[r]
        limit_above = cfg.train.diverge_above
        if math.isfinite(loss) and limit_above is not None and loss > limit_above:
            cause = "above_diverge_above"
            ev["loss"] = json_num(loss)
        elif not math.isfinite(loss):
            cause = "non-finite loss"
        if has_sharp:
            st = stretch_before(steps, sharp, limit, r)
            if st is not None:
                ev.update(reason=cause, above_from=int(steps[st[0]]), above_to=int(steps[st[1]]))
                ev["max_sharpness"] = json_num(float(np.nanmax(sharp[st[0] : st[1] + 1])))
                cause = "edge_of_stability"
    text = f"step {at}: training diverged ({ev.get('reason', cause).replace('_', ' ')})"
    if cause == "edge_of_stability":
        text += f", after sharpness stood above 2/lr from step {ev['above_from']}"
    return [Event("diverged", at, cause, ev, text)]


def oscillation_events(m, steps) -> list[Event]:
    loss = column(m, "loss")
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
        "flip_share": json_num(share),
        "relative_amplitude": json_num(rel),
        "first_step": int(steps[found[0][0]]),
    }
    text = (
        f"step {steps[found[0][0]]}: the loss oscillates step to step ({len(found)} windows of "
        f"{OSC_WINDOW} rows; up to {rel:.1%} of the loss per step)"
    )
    return [Event("oscillation", int(steps[found[0][0]]), "step_too_large", ev, text)]
