"""The figure of ``xorlab compare``: loss | accuracy per step, one colour per run, overlaid
(the runs as ``compare.load_runs`` reads them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .axes import short_names
from .compare import RunData, differing_keys, legend_labels
from .errors import XorlabError
from .show import format_value, run_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_POINTS = 4000  # per curve in the overlay; longer metrics are thinned evenly (last row kept)


def overlay_figure(runs: Sequence[RunData], *, title: str | None = None) -> Figure:
    """Loss (log scale when it spans more than 100x) | accuracy, per step, one colour per run;
    test accuracy dashed; a diverged run's curve ends in an x. One legend below both plots."""
    from matplotlib.lines import Line2D

    from .draw.figure import log_y as _log_y
    from .draw.figure import new_figure
    from .draw.figure import wants_log as _wants_log

    if not runs:
        raise XorlabError("nothing to compare: give at least one run folder")
    labels = [
        label + (f"  ({note})" if (note := _status_note(r)) else "")
        for r, label in zip(runs, legend_labels(runs))
    ]
    if any(r.diverged_at is not None for r in runs):
        labels.append("last value shown before divergence")
    colors = run_colors(len(runs))
    legend_rows = math.ceil(len(labels) / _legend_cols(labels))
    fig = new_figure(13.0, 5.4 + 0.22 * legend_rows)
    ax_loss, ax_acc = fig.subplots(1, 2)

    all_loss = np.concatenate([_values(r.metrics, "loss") for r in runs] or [np.zeros(0)])
    log = _wants_log(all_loss)
    has_test = any(np.isfinite(_values(r.metrics, "test_acc")).any() for r in runs)
    handles = []
    for r, label, color in zip(runs, labels, colors):
        m = _thin(r.metrics)
        few: dict[str, Any] = {"marker": "o", "ms": 3.5} if 0 < len(m) <= 25 else {}
        _curve(ax_loss, m, "loss", color=color, lw=1.7, positive=log, **few)
        _curve(ax_acc, m, "train_acc", color=color, lw=1.7, **few)
        _curve(ax_acc, m, "test_acc", color=color, lw=1.3, ls="--", alpha=0.85, **few)
        if r.diverged_at is not None:
            _end_mark(ax_loss, m, "loss", color, positive=log)
            _end_mark(ax_acc, m, "train_acc", color)
        handles.append(Line2D([], [], color=color, lw=2.2, label=label))

    _style_loss(ax_loss, all_loss, log)
    if log:
        _log_y(ax_loss, all_loss)
    ax_acc.axhline(0.5, color="#888888", lw=0.8, ls=":", zorder=0)  # chance for two classes
    ax_acc.set_ylim(-0.03, 1.03)
    ax_acc.set_xlabel("training step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title(
        "accuracy" + (" (solid: train, dashed: test)" if has_test else " (train)"), fontsize=11
    )
    ax_acc.grid(True, alpha=0.3)
    if any(r.diverged_at is not None for r in runs):
        handles.append(
            Line2D([], [], color="#444444", ls="none", marker="x", ms=8, mew=2, label=labels[-1])
        )
    for ax in (ax_loss, ax_acc):
        _share_step_limits(ax, runs)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=_legend_cols(labels),
        fontsize=9.5,
        frameon=False,
    )
    fig.suptitle(title or overlay_title(runs), fontsize=12, linespacing=1.5)
    return fig


def overlay_figure_png(runs: Sequence[RunData], *, title: str | None = None) -> bytes:
    """``overlay_figure`` as PNG bytes."""
    from .draw.figure import figure_png

    return figure_png(overlay_figure(runs, title=title))


def overlay_title(runs: Sequence[RunData]) -> str:
    """``3 runs: lr and hidden differ`` and, on a second line, what they share."""
    diff = differing_keys(runs)
    names = list(short_names(list(diff)).values())
    if len(runs) == 1:
        head = runs[0].label
    elif not diff:
        head = f"{len(runs)} runs with the same config"
    elif len(names) <= 3:
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        head = f"{len(runs)} runs: {joined} differ" + ("s" if len(names) == 1 else "")
    else:
        head = f"{len(runs)} runs: {len(names)} settings differ"
    shared = _shared_facts(runs[0].config, set(diff)) if runs else ""
    what = "settings" if len(runs) == 1 else "shared"
    return head + (f"\n{what}: {shared}" if shared else "")


def _shared_facts(cfg: dict[str, Any], differ: set[str]) -> str:
    """The main settings all runs share, a few words each: ``xor data (n=40) · sigmoid · ...``."""

    def shared(*keys: str) -> bool:
        return all(k in cfg for k in keys) and not differ.intersection(keys)

    v = {k: format_value(x) for k, x in cfg.items()}
    parts = []
    if shared("data.kind", "data.n"):
        parts.append(f"{v['data.kind']} data (n={v['data.n']})")
    if shared("model.hidden"):
        parts.append(f"hidden {v['model.hidden']}")
    if shared("model.activation"):
        parts.append(v["model.activation"])
    if shared("model.loss"):
        parts.append(f"{v['model.loss']} loss")
    if shared("optim.kind"):
        parts.append(v["optim.kind"])
    if shared("optim.lr"):
        parts.append(f"lr {v['optim.lr']}")
    if shared("regularization.kind", "regularization.strength"):
        kind = v["regularization.kind"]
        parts.append("no penalty" if kind == "none" else f"{kind} λ={v['regularization.strength']}")
    if shared("optim.clip.kind", "optim.clip.max") and v["optim.clip.kind"] != "none":
        parts.append(f"clip {v['optim.clip.kind']} {v['optim.clip.max']}")
    if shared("train.steps"):
        parts.append(f"{v['train.steps']} steps")
    if shared("seed"):
        parts.append(f"seed {v['seed']}")
    return " · ".join(parts)


def _legend_cols(labels: Sequence[str]) -> int:
    """As many columns as fit under the figure (at most 4), then balanced: 6 entries -> 3 x 2."""
    longest = max((len(s) for s in labels), default=10)
    fit = max(1, min(len(labels), 120 // (longest + 6), 4))
    rows = math.ceil(len(labels) / fit)
    return max(1, math.ceil(len(labels) / rows))


def _values(metrics: pd.DataFrame, col: str) -> np.ndarray:
    if col not in metrics or not len(metrics):
        return np.zeros(0)
    return pd.to_numeric(metrics[col], errors="coerce").to_numpy(dtype=float)


def _thin(metrics: pd.DataFrame) -> pd.DataFrame:
    """At most MAX_POINTS rows, evenly spaced, keeping the last (where divergence shows)."""
    if len(metrics) <= MAX_POINTS:
        return metrics
    idx = np.linspace(0, len(metrics) - 1, MAX_POINTS).round().astype(int)  # (MAX_POINTS,)
    return metrics.iloc[idx]


def _finite(metrics: pd.DataFrame, col: str, positive: bool) -> tuple[np.ndarray, np.ndarray]:
    from .draw.figure import PLOT_MAX

    x = _values(metrics, "step")
    y = _values(metrics, col)
    if not y.size:
        return x[:0], y
    keep = np.isfinite(y) & (np.abs(y) <= PLOT_MAX) & ((y > 0) if positive else True)
    return x[keep], y[keep]


def _curve(
    ax: Axes, metrics: pd.DataFrame, col: str, *, positive: bool = False, **style: Any
) -> None:
    x, y = _finite(metrics, col, positive)
    if y.size:
        ax.plot(x, y, **style)


def _end_mark(
    ax: Axes, metrics: pd.DataFrame, col: str, color: str, *, positive: bool = False
) -> None:
    x, y = _finite(metrics, col, positive)
    if y.size:
        ax.plot(x[-1:], y[-1:], ls="none", marker="x", ms=9, mew=2.2, color=color, zorder=5)


def _status_note(r: RunData) -> str:
    if r.status == "diverged":
        return f"diverged at step {r.diverged_at}" if r.diverged_at is not None else "diverged"
    if r.status != "completed":
        return r.status + ("" if len(r.metrics) else ", no metrics")
    return ""


def _style_loss(ax: Axes, all_loss: np.ndarray, log: bool) -> None:
    from .draw.figure import PLOT_MAX

    if not np.isfinite(all_loss).any():
        ax.text(
            0.5,
            0.5,
            "no finite loss values",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#666666",
        )
    hidden = not (np.isfinite(all_loss) & (np.abs(all_loss) <= PLOT_MAX)).all()
    ax.set_xlabel(
        "training step"
        + (f"\n(loss values not finite or > {PLOT_MAX:.0e}: not shown)" if hidden else "")
    )
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))
    ax.set_title("loss", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)


def _share_step_limits(ax: Axes, runs: Sequence[RunData]) -> None:
    """The same step range on both plots: every run's logged steps and divergence point."""
    from matplotlib.ticker import MaxNLocator

    ends = [float(s.max()) for r in runs if (s := _values(r.metrics, "step")).size]
    ends += [float(r.diverged_at) for r in runs if r.diverged_at is not None]
    starts = [float(s.min()) for r in runs if (s := _values(r.metrics, "step")).size]
    lo, hi = (min(starts) if starts else 0.0), (max(ends) if ends else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    pad = 0.02 * (hi - lo)
    ax.set_xlim(lo - pad, hi + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps: no 2.5
