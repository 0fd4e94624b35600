"""What a diagnosis says (DESIGN.md section 4): its events, its remedies, the whole as JSON; and
how its numbers are read from a metrics table and written (rounded for JSON and for sentences)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd


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


def column(m: pd.DataFrame, name: str) -> np.ndarray:
    if name not in m or not len(m):
        return np.full(len(m), np.nan)
    return pd.to_numeric(m[name], errors="coerce").to_numpy(dtype=float)


def json_num(x: float) -> float | None:
    """A JSON-safe number, rounded to 6 significant digits."""
    return float(f"{x:.6g}") if x is not None and math.isfinite(x) else None


def short(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}"
