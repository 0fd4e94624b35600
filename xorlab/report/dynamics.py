"""The run report's dynamics: sharpness against the stability line 2/lr_t with the blow-ups
marked, the share of saturated or dead hidden units, update ratios; and the hidden units' views
of the input plane (what each first-layer unit computes, as TensorFlow Playground draws its
neurons)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import funcs, nn, plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..config import Config
    from ..diagnose import Diagnosis

SHARP_COLOR = "#0072B2"
LIMIT_COLOR = "#D55E00"
LOSS_COLOR = "#777777"
SPIKE_COLOR = "#CC79A7"
LAYER_COLORS = ("#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#8C564B", "#BCBD22")

DYNAMICS_CAPTION = (
    "Top: the sharpness (the largest eigenvalue of the loss's Hessian) against the stability "
    "line 2/lr_t (dashed; (2+2μ)/lr_t with momentum): gradient descent is unstable along the "
    "sharpest direction above it. The grey curve is the data loss (right axis, log); dotted "
    "lines mark blow-ups (above 10× the running minimum of the total or the data loss). "
    "Middle: the share of saturated (sigmoid/tanh in a flat tail) or dead (ReLU, 0 on every "
    "row) hidden units per layer. Bottom: the update ratio ‖ΔW‖/‖W‖ per hidden layer."
)
UNITS_CAPTION = (
    "What each first-layer hidden unit computes over the input plane after training (its "
    "activation h = act(x·w + b); dark where high); the points are the training data."
)


def _col(m: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(m[name], errors="coerce").to_numpy(dtype=float)


def has_dynamics(m: pd.DataFrame) -> bool:
    return any(
        c == "sharpness" or c.startswith(("saturated_h", "dead_h", "update_ratio_"))
        for c in m.columns
    )


def dynamics_figure(m: pd.DataFrame, cfg: Config, diagnosis: Diagnosis | None) -> Figure:
    from ..telemetry import stability_limit

    health = [c for c in m.columns if c.startswith(("saturated_h", "dead_h"))]
    ratios = [c for c in m.columns if c.startswith("update_ratio_")]
    rows = 1 + bool(health) + bool(ratios)
    fig = plots.new_figure(12.0, 3.4 + 2.4 * (rows - 1))
    axes = np.atleast_1d(fig.subplots(rows, 1, sharex=True))
    steps = _col(m, "step")
    ax = axes[0]
    blow = [e for e in (diagnosis.events if diagnosis else []) if e.kind == "blow_up"]
    if "sharpness" in m and np.isfinite(_col(m, "sharpness")).any():
        s = _col(m, "sharpness")
        ok = np.isfinite(s)
        lim = np.array(
            [stability_limit(x, cfg.optim.kind, cfg.optim.momentum) for x in _col(m, "lr")]
        )
        ax.plot(steps[ok], s[ok], color=SHARP_COLOR, lw=1.4, label="sharpness")
        ax.plot(steps, lim, color=LIMIT_COLOR, lw=1.4, ls="--", label="2/lr_t")
        above = ok & (s > lim)
        if above.any():
            ax.scatter(steps[above], s[above], s=9, color=LIMIT_COLOR, zorder=3,
                       label="above the line")  # fmt: skip
        top = float(np.nanmax(np.concatenate([s[ok], lim[np.isfinite(lim)]])))
        ax.set_ylim(0, top * 1.1)
        ax.set_ylabel("sharpness")
        ax.set_title("sharpness against the stability line 2/lr_t", fontsize=11)
    else:
        ax.text(0.5, 0.5, "no sharpness logged (telemetry.sharpness_every: 0); `xorlab diagnose` "
                "replays the run to measure it", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="#555555")  # fmt: skip
        ax.set_title("sharpness", fontsize=11)
    twin = ax.twinx()
    dl = _col(m, "data_loss") if "data_loss" in m else _col(m, "loss")
    ok = np.isfinite(dl) & (dl > 0)
    twin.plot(steps[ok], dl[ok], color=LOSS_COLOR, lw=1.0, alpha=0.8, label="data loss")
    twin.set_yscale("log")
    twin.set_ylabel("data loss (log)", color=LOSS_COLOR)
    for i, e in enumerate(blow):
        label = "blow-up" if i == 0 else None
        ax.axvline(e.step, color=SPIKE_COLOR, ls=":", lw=1.3, label=label)
        if e.evidence.get("above_from") is not None:
            ax.axvspan(e.evidence["above_from"], e.step, color=LIMIT_COLOR, alpha=0.08, lw=0)
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, fontsize=8, loc="upper right")
    ax.grid(True, alpha=0.3)
    k = 1
    if health:
        ax = axes[k]
        k += 1
        for i, c in enumerate(health):
            ax.plot(steps, _col(m, c), color=LAYER_COLORS[i % 6], lw=1.4, label=c)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("share of units")
        ax.set_title("saturated (sigmoid/tanh) or dead (ReLU) hidden units", fontsize=11)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(True, alpha=0.3)
    if ratios:
        ax = axes[k]
        for i, c in enumerate(ratios):
            v = _col(m, c)
            ok = np.isfinite(v) & (v > 0)
            ax.plot(steps[ok], v[ok], color=LAYER_COLORS[i % 6], lw=1.2, label=c)
        ax.set_yscale("log")
        ax.set_ylabel("‖ΔW‖/‖W‖ (log)")
        ax.set_title("update ratio per hidden layer", fontsize=11)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("training step")
    return fig


def hidden_units_figure(params: dict[str, np.ndarray], spec: nn.NetSpec, data: Any) -> Figure:
    """One small map per first-layer hidden unit (at most 50): its activation over the plane."""
    W = params["W1"]  # (2, H)
    b = params.get("b1", np.zeros(W.shape[1]))
    H = min(W.shape[1], 50)
    X = np.concatenate([data.X_train, data.X_test])
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 60)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 60)
    xx, yy = np.meshgrid(xs, ys)
    pts = np.column_stack([xx.ravel(), yy.ravel()])  # (3600, 2)
    with np.errstate(all="ignore"):
        h = funcs.ACTIVATIONS[spec.activation](pts @ W[:, :H] + b.reshape(-1)[:H])  # (3600, H)
    cols = min(10, H)
    nrows = -(-H // cols)
    fig = plots.new_figure(1.25 * cols + 0.4, 1.3 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, cols)).ravel()
    y_idx = data.y_train.argmax(axis=-1)
    for j, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= H:
            ax.set_axis_off()
            continue
        img = h[:, j].reshape(xx.shape)
        lo_v, hi_v = (0.0, 1.0) if spec.activation == "sigmoid" else (-1.0, 1.0)
        if spec.activation == "relu":
            lo_v, hi_v = 0.0, max(float(np.nanmax(img)), 1e-12)
        ax.imshow(img, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), cmap="Greys",
                  vmin=lo_v, vmax=hi_v, aspect="auto")  # fmt: skip
        ax.scatter(data.X_train[:, 0], data.X_train[:, 1], c=np.where(y_idx == 1, "#2166ac",
                   "#b2182b"), s=1.5, lw=0, alpha=0.6)  # fmt: skip
        ax.set_title(f"h1[{j}]", fontsize=7, pad=2)
    more = f" (the first 50 of {W.shape[1]})" if W.shape[1] > 50 else ""
    fig.suptitle(f"first-layer hidden units, {spec.activation}{more}", fontsize=10)
    return fig
