"""A run replayed from its folder: what ``xorlab diagnose`` and ``xorlab explain RUN --step T``
read. Runs are deterministic (config.yaml reproduces a run byte for byte), so a run that logged
no sharpness can be trained again with telemetry on, and any step's parameters recovered.

- ``load_subject(path)``: a run folder or a sweep member as (config, metrics, summary).
- ``replay(cfg)``: its metrics with sharpness and activations on (nothing else changes).
- ``params_at(cfg, t)``: the parameters before update t, and the batch of step t.
- ``remedy_sweep``: a diagnosis's remedies as a sweep file over the run's config;
  ``remedy_results``: what each remedy did, by the diagnosis's own criteria.

No printing; training happens only through ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import yamlio
from .config import Config, validate
from .diagnose import Diagnosis, diagnose, fixed
from .errors import XorlabError
from .rundir import read_json


@dataclass
class Subject:
    """What diagnose reads of a run folder or a sweep member."""

    path: str
    config: Config
    config_raw: dict[str, Any]  # the resolved config as a mapping (the remedy sweep's base)
    metrics: pd.DataFrame
    summary: dict[str, Any] | None


def load_subject(path: Any) -> Subject:
    """A run folder (config.yaml, metrics.csv, summary.json) or a sweep member
    (``<sweep>/members/NNN-...``); XorlabError naming the file for anything unreadable."""
    p = Path(path)
    member = _sweep_member(p)
    if member is not None:
        return member
    if not p.exists():
        raise XorlabError("no such run folder", file=str(p))
    if not p.is_dir():
        raise XorlabError("not a run folder (expected a folder with config.yaml)", file=str(p))
    cfg_path = p / "config.yaml"
    if not cfg_path.is_file():
        raise XorlabError("not a run folder: no config.yaml", file=str(p))
    raw = yamlio.load_file(cfg_path)
    cfg = validate(raw, file=str(cfg_path))
    metrics_path = p / "metrics.csv"
    if not metrics_path.is_file():
        raise XorlabError("no metrics.csv (the run has not logged a step)", file=str(p))
    try:
        metrics = pd.read_csv(metrics_path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise XorlabError(
            f"cannot be read as CSV ({type(exc).__name__})", file=str(metrics_path)
        ) from None
    for col in ("step", "loss"):
        if col not in metrics:
            raise XorlabError(f"no '{col}' column", file=str(metrics_path))
    if not len(metrics):
        raise XorlabError("no rows", file=str(metrics_path))
    if not pd.api.types.is_numeric_dtype(metrics["step"]):
        raise XorlabError("'step' holds values that are not numbers", file=str(metrics_path))
    summary = None
    if (p / "summary.json").is_file():
        try:
            obj = read_json(p / "summary.json")
        except (OSError, ValueError):
            raise XorlabError("not valid JSON", file=str(p / "summary.json")) from None
        summary = obj if isinstance(obj, dict) else None
    return Subject(str(p), cfg, cfg.to_dict(), metrics, summary)


def _sweep_member(p: Any) -> Subject | None:
    """A ``<sweep>/members/<label>`` path through the sweep store; None for other paths."""
    from .members import member_ref, open_sweep

    ref = member_ref(p)
    if ref is None:
        return None
    sweep_dir, label = ref
    members = open_sweep(sweep_dir)
    index = members.by_label.get(label)
    if index is None:
        raise XorlabError("no such member in the sweep", file=str(p))
    m = members.get(index)
    if m.entry is None:
        raise XorlabError(f"the member has not finished (status {m.status})", file=str(p))
    return Subject(str(p), m.config, m.config.to_dict(), m.metrics(), m.summary)


def needs_replay(metrics: pd.DataFrame) -> bool:
    return "sharpness" not in metrics or not pd.to_numeric(metrics["sharpness"]).notna().any()


def replay(cfg: Config) -> pd.DataFrame:
    """The run's metrics with sharpness and activations on: the training is deterministic and
    telemetry changes no other number, so the losses are the run's own. Sharpness on every step
    (every ceil(steps/2000)-th for long runs)."""
    from .train import train

    every = max(1, -(-cfg.train.steps // 2000))
    raw = cfg.to_dict()
    raw["plots"]["enabled"] = False
    raw["telemetry"] = {"sharpness_every": every, "activations": True}
    return train(Config.model_validate(raw)).metrics


def same_losses(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """The replay reproduced the logged losses (to the CSV's round-trip precision)."""
    if len(a) != len(b):
        return False
    x = pd.to_numeric(a["loss"], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(b["loss"], errors="coerce").to_numpy(dtype=float)
    return bool(np.array_equal(x, y, equal_nan=True))


def diagnose_subject(subject: Subject) -> tuple[Diagnosis, pd.DataFrame]:
    """Diagnose a loaded run, replaying it with telemetry on when it logged no sharpness.
    Returns the diagnosis and the metrics it read (the replayed ones, if replayed)."""
    metrics, source = subject.metrics, None
    if needs_replay(metrics):
        replayed = replay(subject.config)
        if same_losses(metrics, replayed):
            metrics, source = replayed, "replayed"
        else:  # an interrupted or edited run: its own rows, no sharpness
            source = "none"
    return diagnose(metrics, subject.config, subject.summary, sharpness_source=source), metrics


def remedy_sweep(subject: Subject, diagnosis: Diagnosis) -> dict[str, Any]:
    """The remedies as a sweep file: the run's resolved config inline, a variant ``as_run``
    (no change) and one variant per remedy."""
    base = dict(subject.config_raw)
    variants: list[dict[str, Any]] = [{"name": "as_run", "set": {}}]
    variants += [{"name": r.name, "set": dict(r.set)} for r in diagnosis.remedies]
    return {"name": f"{subject.config.name}-remedies", "config": base, "variants": variants}


def params_at(cfg: Config, step: int) -> tuple[dict[str, np.ndarray], float, Any]:
    """The parameters before update ``step`` (0 = the initial ones), that step's learning
    rate, and the training result (its data). Replays the first ``step`` updates."""
    from .optim import get_lr
    from .train import schedule, train

    if not 0 <= step < cfg.train.steps:
        raise XorlabError(
            f"must be a step of the run, 0 to {cfg.train.steps - 1}, got {step}", key="--step"
        )
    raw = cfg.to_dict()
    raw["plots"]["enabled"] = False
    raw["telemetry"] = {"sharpness_every": 0, "activations": False}
    r = train(Config.model_validate(raw), stop_at=step)
    if r.steps_done < step:
        raise XorlabError(
            f"the run {r.status} at step {r.diverged_at}, before step {step}", key="--step"
        )
    return r.final_params, float(get_lr(schedule(cfg), step)), r


def remedy_results(folder: Path, original: Diagnosis) -> list[dict[str, Any]]:
    """Each member of a finished remedy sweep, diagnosed by the same criteria: did its change
    fix the problems its remedy addresses?"""
    from .members import open_sweep

    by_name = {r.name: r for r in original.remedies}
    members = open_sweep(folder)
    out = []
    for m in members.all():
        sweep_member = members.sweep.members[m.index]
        name = sweep_member.variant or m.label
        remedy = by_name.get(name)
        row: dict[str, Any] = {
            "variant": name,
            "set": dict(remedy.set) if remedy else {},
            "status": m.status,
        }
        if m.entry is not None:
            after = diagnose(m.metrics(), m.config, m.summary)
            final = (m.summary or {}).get("final") or {}
            row.update(
                problems=after.problems,
                fixed=fixed(remedy, after) if remedy else None,
                final_train_acc=final.get("train_acc"),
                final_loss=final.get("loss"),
                blow_ups=sum(e.kind == "blow_up" for e in after.events),
            )
        out.append(row)
    return out
