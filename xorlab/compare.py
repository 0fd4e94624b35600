"""Side by side runs, for ``xorlab compare A B ...``: what differs in their configs, how each
ended, and their loss and accuracy curves overlaid in one figure.

Runs may come from anywhere: separate ``train`` runs, members of one sweep or of different
sweeps. A run that is unfinished or has unreadable metrics is still compared (its status says so
and its curves are missing); a path that is not a run folder at all is an XorlabError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text

from . import yamlio
from .errors import XorlabError
from .listing import STATUS_STYLE
from .listing.folders import _load_json
from .rundir import FINISHED
from .show import flatten, format_value, run_colors
from .store import member_ref, open_sweep
from .sweep import short_names

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

IGNORED_KEYS = ("name",)  # never a difference worth showing: it only names the folder
MAX_POINTS = 4000  # per curve in the overlay; longer metrics are thinned evenly (last row kept)


@dataclass
class RunData:
    """One run folder, read: its config as dotted keys, its summary and its metrics."""

    path: Path
    label: str  # the folder's name; for a sweep member, "<sweep folder>/<member>"
    config: dict[str, Any]  # dotted key -> value: {"optim.lr": 0.1, "model.hidden": [3], ...}
    summary: dict[str, Any] | None  # summary.json, None while unfinished or when unreadable
    metrics: pd.DataFrame  # metrics.csv; empty when missing or unreadable
    status: str  # completed | diverged | interrupted | failed | unfinished | damaged
    problems: list[str] = field(default_factory=list)

    def final(self, key: str) -> float | None:
        """A value of the summary's ``final`` block (loss, train_acc, test_acc), if known."""
        final = (self.summary or {}).get("final")
        v = final.get(key) if isinstance(final, dict) else None
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    @property
    def diverged_at(self) -> int | None:
        v = (self.summary or {}).get("diverged_at")
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    @property
    def steps_done(self) -> int | None:
        v = (self.summary or {}).get("steps_done")
        return v if isinstance(v, int) and not isinstance(v, bool) else None


# --- loading ------------------------------------------------------------------------------------


def load_run(path: str | Path) -> RunData:
    """Read a run folder. Not a folder, a sweep folder, no config.yaml or a config.yaml that is
    not a YAML mapping: XorlabError. A missing or bad summary.json or metrics.csv is noted in
    ``status`` and ``problems`` instead."""
    p = Path(path)
    if member_ref(p) is not None:  # <sweep>/members/<label>: read through the sweep's store
        return _load_member(p)
    if not p.exists():
        raise XorlabError("no such run folder", file=str(path))
    if not p.is_dir():
        raise XorlabError("not a run folder (a file)", file=str(path))
    if (p / "sweep.yaml").exists():
        raise XorlabError(
            "a sweep folder, not a run: compare its members (members/<NNN-...>)", file=str(path)
        )
    if not (p / "config.yaml").is_file():
        raise XorlabError("not a run folder (no config.yaml)", file=str(path))
    raw = yamlio.load_file(p / "config.yaml")  # an XorlabError naming the file when invalid
    if not isinstance(raw, dict):
        raise XorlabError("config.yaml is not a mapping of keys", file=str(p / "config.yaml"))

    problems: list[str] = []
    summary, bad = _load_json(p / "summary.json")
    if bad:
        problems.append(bad)
    status = "unfinished" if summary is None else str(summary.get("status"))
    if summary is not None and status not in (*FINISHED, "interrupted", "failed"):
        problems.append(f"summary.json: unknown status {status!r}")
    metrics = _read_metrics(p / "metrics.csv", problems, required=status in FINISHED)
    return RunData(
        path=p,
        label=run_label(p),
        config=flatten(raw),
        summary=summary,
        metrics=metrics,
        status="damaged" if problems else status,
        problems=problems,
    )


def _load_member(path: Path) -> RunData:
    sweep_dir, label = member_ref(path) or (path, "")
    members = open_sweep(sweep_dir)
    if label not in members.by_label:
        raise XorlabError(f"no member {label!r} in this sweep", file=str(sweep_dir))
    m = members.get(members.by_label[label])
    problems: list[str] = []
    metrics = pd.DataFrame({"step": []})
    if m.status in FINISHED:
        try:
            metrics = m.metrics()
        except Exception as exc:  # noqa: BLE001 - a damaged part file, whatever pyarrow raises
            problems.append(f"metrics cannot be read ({type(exc).__name__})")
    return RunData(
        path=path,
        label=run_label(path),
        config=flatten(m.config.to_dict()),
        summary=m.summary,
        metrics=metrics,
        status="damaged" if problems else m.status,
        problems=problems,
    )


def load_runs(paths: Iterable[str | Path]) -> list[RunData]:
    return [load_run(p) for p in paths]


def run_label(path: Path) -> str:
    """The folder's name; for a sweep member also its sweep's (members of two sweeps share
    names like ``000-lr=0.1``)."""
    path = Path(path)
    if path.parent.name == "members" and path.parent.parent.name:
        return f"{path.parent.parent.name}/{path.name}"
    return path.name


def _read_metrics(path: Path, problems: list[str], *, required: bool) -> pd.DataFrame:
    if not path.exists():
        if required:  # metrics.csv is written just before a finished run's summary.json
            problems.append("metrics.csv missing")
        return pd.DataFrame({"step": []})
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError):  # pandas' parser errors and UnicodeDecodeError too
        problems.append("metrics.csv: not a readable table")
        return pd.DataFrame({"step": []})
    if "step" not in df:
        problems.append("metrics.csv: no 'step' column")
        return pd.DataFrame({"step": []})
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    return df[df["step"].notna()].reset_index(drop=True)


# --- what differs -------------------------------------------------------------------------------


def differing_keys(runs: Sequence[RunData]) -> dict[str, list[Any]]:
    """Dotted config key -> each run's value (None where a run lacks the key), for exactly the
    keys whose values are not all equal; ``name`` is ignored. Keys in config order."""
    keys: dict[str, None] = {}
    for r in runs:
        keys.update(dict.fromkeys(r.config))
    out = {}
    for k in keys:
        if k in IGNORED_KEYS:
            continue
        values = [r.config.get(k) for r in runs]
        if any(not _same(values[0], v) for v in values[1:]):
            out[k] = values
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as config values: 1 == 1.0, but True != 1 (a bool is not a number here)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def legend_labels(runs: Sequence[RunData]) -> list[str]:
    """One label per run from the keys that differ: ``lr=0.1, hidden=[50]``; the run's folder
    when nothing differs; a ``#n`` suffix where two labels would otherwise be equal."""
    diff = differing_keys(runs)
    names = short_names(list(diff))
    if diff:
        labels = [
            ", ".join(f"{names[k]}={format_value(vs[i])}" for k, vs in diff.items())
            for i in range(len(runs))
        ]
    else:
        labels = [r.label for r in runs]
    return [f"{lab} #{i + 1}" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]


# --- the table ----------------------------------------------------------------------------------


def compare_table(runs: Sequence[RunData]) -> Table:
    """One column per run; rows: each differing config key, then status, steps, final loss,
    train and test accuracy, diverged at. Each column is headed by #n and the folder's name;
    ``path_lines`` gives the full paths (printed below the table, never wrapped)."""
    diff = differing_keys(runs)
    t = Table(title=f"{len(runs)} runs compared", title_justify="left")
    t.add_column("", style="bold", no_wrap=True)
    for i, r in enumerate(runs):
        t.add_column(f"#{i + 1}\n{r.path.name}", overflow="fold", justify="right")
    if diff:
        for key, values in diff.items():
            t.add_row(key, *(format_value(v) for v in values))
    else:
        t.add_row("config", *(["same"] * len(runs)), style="dim")
    t.add_section()
    t.add_row("status", *(_status_text(r) for r in runs))
    t.add_row("steps done", *(_num(r.steps_done) for r in runs))
    t.add_row("final loss", *(_num(r.final("loss"), 4) for r in runs))
    t.add_row("train acc", *(_num(r.final("train_acc"), 3) for r in runs))
    if any(r.final("test_acc") is not None for r in runs):
        t.add_row("test acc", *(_num(r.final("test_acc"), 3) for r in runs))
    t.add_row("diverged at", *(_num(r.diverged_at) for r in runs))
    return t


def path_lines(runs: Sequence[RunData]) -> list[str]:
    """``#1 runs/20260101-000000-tiny-0001``: the column numbers of ``compare_table``, with each
    run's path as given."""
    return [f"#{i + 1} {r.path}" for i, r in enumerate(runs)]


def compare_record(runs: Sequence[RunData]) -> dict[str, Any]:
    """The table as JSON-ready data: the differing keys, then one object per run (path, label,
    its values of those keys, status, problems, steps done, final loss, train and test accuracy,
    diverged at). Numbers that are unknown or not finite are None."""
    diff = differing_keys(runs)
    return {
        "differing_keys": list(diff),
        "runs": [
            {
                "path": str(r.path),
                "label": r.label,
                "config": {k: _json_value(vs[i]) for k, vs in diff.items()},
                "status": r.status,
                "problems": list(r.problems),
                "steps_done": r.steps_done,
                "final_loss": r.final("loss"),
                "final_train_acc": r.final("train_acc"),
                "final_test_acc": r.final("test_acc"),
                "diverged_at": r.diverged_at,
            }
            for i, r in enumerate(runs)
        ],
    }


def _json_value(v: Any) -> Any:
    """A config value as JSON can hold it: non-finite floats become None, other odd values
    their text."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    return str(v)


def _status_text(r: RunData) -> Text:
    text = Text(r.status, style=STATUS_STYLE.get(r.status, ""))
    for problem in r.problems:
        text.append("\n" + problem, style=STATUS_STYLE["damaged"])
    return text


def _num(v: float | int | None, digits: int = 6) -> str:
    if v is None:
        return "-"
    return str(v) if isinstance(v, int) else f"{v:.{digits}g}"


# --- the figure ---------------------------------------------------------------------------------


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
    from matplotlib.ticker import MaxNLocator

    """The same step range on both plots: every run's logged steps and divergence point."""
    ends = [float(s.max()) for r in runs if (s := _values(r.metrics, "step")).size]
    ends += [float(r.diverged_at) for r in runs if r.diverged_at is not None]
    starts = [float(s.min()) for r in runs if (s := _values(r.metrics, "step")).size]
    lo, hi = (min(starts) if starts else 0.0), (max(ends) if ends else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    pad = 0.02 * (hi - lo)
    ax.set_xlim(lo - pad, hi + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps: no 2.5
