"""The figures of a search's report sections (``search.py`` reads the files and writes the text):
the curves with pruned members greyed and cut where they stopped, the calibration panel, and
PBT's winner's schedule over the population's spread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import plots
from ..search import TRUST
from ..show import RUN_COLORS
from .figs import GHOST_COLOR, WIDTH, log_y, wants_log
from .search import CURVE_POINTS, SearchView, rung_steps
from .search_pbt import population, schedule

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RUNG_COLOR = "#555555"
CAL_COLOR = "#6a6a6a"
PALETTE = tuple(c for c in RUN_COLORS if c not in ("#000000", "#7F7F7F"))  # no grey survivors
WINNER_COLOR = "#d62728"
BAND_COLOR = "#4575b4"


def curves(sv: SearchView) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """member -> (steps, values) of the search's metric: rows with step < its steps_done (a
    pruned member's end at its rung), thinned to about CURVE_POINTS steps (each member keeps its
    last row). Read one column of metrics/ for every member at once."""
    from ..members import read_metrics

    try:
        df = read_metrics(sv.path, columns=["step", sv.metric])
    except Exception as exc:  # noqa: BLE001 - a damaged part file, whatever pyarrow raises
        sv.problems.append(f"metrics/ cannot be read for the curves ({type(exc).__name__})")
        return {}
    if df.empty or "step" not in df:
        return {}
    done = sv.steps_done.reindex(df["member"].to_numpy()).to_numpy(dtype=float)
    df = df[~(df["step"].to_numpy() >= done)]  # NaN steps_done: the whole curve
    steps = np.unique(df["step"].to_numpy())
    keep = set(steps[np.unique(np.linspace(0, len(steps) - 1, CURVE_POINTS).round().astype(int))]
               .tolist()) if len(steps) else set()  # fmt: skip
    last = df.groupby("member", sort=False)["step"].transform("max")
    df = df[df["step"].isin(keep) | (df["step"] == last)]
    out = {}
    for m, g in df.groupby("member", sort=True):
        out[int(m)] = (g["step"].to_numpy(), g[sv.metric].to_numpy(dtype=float))
    return out


def _rungs(ax: Axes, steps: list[int], width_in: float = WIDTH) -> None:
    """Dashed lines at the rungs, each labelled on top (labels closer than ~0.8 inch staggered)."""
    for s in steps:
        ax.axvline(s, color=RUNG_COLOR, ls="--", lw=0.9, alpha=0.7, zorder=1)
    top = ax.get_xaxis_transform()
    lo, hi = ax.get_xlim()
    prev, level = -np.inf, 0
    for k, s in enumerate(steps):
        level = level + 1 if (s - prev) < 0.8 / width_in * (hi - lo) else 0
        ax.text(s, 1.005 + 0.055 * (level % 2), f"rung {k}", transform=top, ha="center",
                va="bottom", fontsize=8, color=RUNG_COLOR)  # fmt: skip
        prev = s


def curves_figure(sv: SearchView) -> Figure | None:
    """One panel (halving) or one per bracket (hyperband): pruned members thin grey lines cut
    at their steps_done, calibration members dark dotted, the members that trained in full in
    colour (a palette for up to 10 per panel, else a colormap by final rank)."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    data = curves(sv)
    if not data:
        return None
    bracket = pd.to_numeric(sv.column("bracket"), errors="coerce")
    groups = sorted({int(b) for b in bracket.dropna()}) if sv.kind == "hyperband" else []
    panels: list[int | None] = list(groups) if groups else [None]
    pruned, cal = sv.pruned, sv.calibrated
    allv = np.concatenate([v for _, v in data.values()])
    log = wants_log(allv)
    n = len(panels)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = plots.new_figure(WIDTH, 4.2 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax, b in zip(axes, panels):
        members = [m for m in data if b is None or bracket.get(m) == b]
        grey = [np.column_stack(data[m]) for m in members if pruned.get(m, False)]
        ax.add_collection(LineCollection(grey, colors=GHOST_COLOR, linewidths=0.6, alpha=0.7,
                                         zorder=2))  # fmt: skip
        for m in members:
            if cal.get(m, False):
                ax.plot(*data[m], color=CAL_COLOR, lw=0.8, ls=":", alpha=0.8, zorder=3)
        full = [m for m in members if not pruned.get(m, False) and not cal.get(m, False)]
        sign = 1.0 if sv.mode == "min" else -1.0
        full.sort(key=lambda m: (np.nan_to_num(sign * data[m][1][-1], nan=np.inf), m))
        colors: list[Any] = list(PALETTE[: len(full)])
        if len(full) > len(PALETTE):
            import matplotlib

            cmap = matplotlib.colormaps["viridis"]
            colors = [cmap(0.85 * i / max(len(full) - 1, 1)) for i in range(len(full))]
        for m, c in zip(full, colors):
            ax.plot(*data[m], color=c, lw=1.4, zorder=4, label=f"member {m}")
        if log:
            log_y(ax, allv)
        ax.autoscale_view()
        ax.set_xlim(0, sv.train_steps or None)
        _rungs(ax, rung_steps(sv, b), WIDTH / cols)
        n_pr = sum(bool(pruned.get(m, False)) for m in members)
        title = "" if b is None else f"bracket {b}: "
        ax.set_title(f"{title}{len(members)} members, {n_pr} pruned", fontsize=10, pad=30)
        ax.set_xlabel("step")
        ax.set_ylabel(sv.metric)
        handles = [Line2D([], [], color=GHOST_COLOR, lw=1.5, label=f"pruned ({n_pr})")]
        if any(cal.get(m, False) for m in members):
            handles.append(Line2D([], [], color=CAL_COLOR, ls=":", label="calibration"))
        shown = list(zip(full, colors)) if len(full) <= len(PALETTE) else []
        handles += [Line2D([], [], color=c, lw=1.4, label=f"member {m}") for m, c in shown]
        if len(full) > len(shown):
            handles.append(
                Line2D(
                    [],
                    [],
                    color=colors[0],
                    lw=1.4,
                    label=f"{len(full)} trained in full (darker: better)",
                )
            )
        ax.legend(handles=handles, fontsize=7, loc="upper right", ncol=2 if len(handles) > 6
                  else 1, framealpha=0.85)  # fmt: skip
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig


def calibration_figure(sv: SearchView) -> Figure:
    """Spearman against step, the TRUST line, the rungs marked and each rung's value dotted."""
    cal = sv.calibration
    if cal is None:
        cal = pd.DataFrame({"step": [], "spearman": []})
    fig = plots.new_figure(WIDTH * 0.75, 3.8)
    ax = fig.add_subplot()
    x, y = cal["step"].to_numpy(), cal["spearman"].to_numpy(dtype=float)
    ax.plot(x, y, color=BAND_COLOR, lw=1.6, label="Spearman ρ (step vs final ranks)")
    ax.axhline(TRUST, color="#1a9850", ls=":", lw=1.4, label=f"{TRUST:g}: ranks to trust")
    ax.axhline(0, color="#999999", lw=0.6)
    steps = rung_steps(sv)
    for s in steps:
        before = cal[cal["step"] < s]
        if len(before):
            r = float(before["spearman"].iloc[-1])
            ok = np.isfinite(r) and r >= TRUST
            ax.plot(s, r, "o", color="#1a9850" if ok else "#d73027", ms=7, zorder=5)
            ax.annotate(f"{r:.2f}", (s, r), textcoords="offset points", xytext=(6, -12),
                        fontsize=8)  # fmt: skip
    ax.set_xlim(0, sv.train_steps or None)
    lo = np.nanmin(y) if np.isfinite(y).any() else 0.0
    ax.set_ylim(min(-0.05, lo - 0.05), 1.05)
    _rungs(ax, steps)
    ax.set_xlabel("step")
    ax.set_ylabel("Spearman ρ")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def pbt_figure(sv: SearchView, member: int) -> Figure:
    """One panel per mutable key: the population's 10-90 % and 25-75 % bands and median per
    round, and ``member``'s schedule with its copies marked; a log axis for loguniform keys."""
    starts, values = population(sv)
    sched, copies = schedule(sv, member)
    keys = sv.mutable
    names = sv.names
    end = sv.train_steps or (starts[-1] + 1)
    edges = np.array([*starts, end])
    fig = plots.new_figure(WIDTH, 3.8 if len(keys) <= 2 else 3.4 * (-(-len(keys) // 2)))
    axes = fig.subplots(-(-len(keys) // 2), min(len(keys), 2), squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        v = values[key]  # (segments, members)
        with np.errstate(all="ignore"):
            q = np.nanpercentile(v, [10, 25, 50, 75, 90], axis=1)  # (5, segments)
        x = edges
        ext = np.column_stack([q, q[:, -1]])  # a step function: the last value to the end
        ax.fill_between(x, ext[0], ext[4], step="post", color=BAND_COLOR, alpha=0.15,
                        lw=0, label="10–90 % of members")  # fmt: skip
        ax.fill_between(x, ext[1], ext[3], step="post", color=BAND_COLOR, alpha=0.3, lw=0,
                        label="25–75 %")  # fmt: skip
        ax.step(x, ext[2], where="post", color=BAND_COLOR, lw=1.0, label="median")
        sx = np.array([*sched["step"].to_numpy(), end])
        sy = np.array([*sched[key].to_numpy(dtype=float), float(sched[key].iloc[-1])])
        ax.step(sx, sy, where="post", color=WINNER_COLOR, lw=2.2, label=f"winner (member {member})")
        for step, _, p in copies:
            y = float(sched.loc[sched["step"] == step, key].iloc[-1])
            ax.plot(step, y, "o", color=WINNER_COLOR, ms=5, zorder=5)
            ax.annotate(f"copied {p}", (step, y), textcoords="offset points", xytext=(3, 5),
                        fontsize=7, color=WINNER_COLOR)  # fmt: skip
        if key in sv.log_keys:
            ax.set_yscale("log")
        ax.set_xlim(0, end)
        ax.set_xlabel("step")
        ax.set_ylabel(names.get(key, key))
        ax.set_title(key + (" (log scale)" if key in sv.log_keys else ""), fontsize=10)
        if ax is axes[0]:
            ax.legend(fontsize=7, loc="best")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    return fig
