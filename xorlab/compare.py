"""Side by side runs, for ``xorlab compare A B ...``: what differs in their configs, how each
ended, and (``overlay``) their loss and accuracy curves overlaid in one figure.

Runs may come from anywhere: separate ``train`` runs, members of one sweep or of different
sweeps. A run that is unfinished or has unreadable metrics is still compared (its status says so
and its curves are missing); a path that is not a run folder at all is an XorlabError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table
from rich.text import Text

from . import yamlio
from .axes import short_names
from .errors import XorlabError
from .listing import STATUS_STYLE
from .listing.folders import _load_json
from .members import member_ref, open_sweep
from .rundir import FINISHED
from .show import flatten, format_value

IGNORED_KEYS = ("name",)  # never a difference worth showing: it only names the folder


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
