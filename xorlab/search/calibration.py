"""Calibration: whether a rung's early ranks can be trusted, from members trained in full first
(calibration.csv), and the first rung that ``min_steps: auto`` places from it."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .policy import badness

TRUST = 0.8  # a rung whose rank correlation with the final ranks is below this is not trusted


def spearman(a: Iterable[float], b: Iterable[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks, ties given their average
    rank; NaN when either side has a single rank (no order to compare)."""
    ra = pd.Series(list(a), dtype=np.float64).rank(method="average").to_numpy()  # (n,)
    rb = pd.Series(list(b), dtype=np.float64).rank(method="average").to_numpy()  # (n,)
    da, db = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float(da @ da) * float(db @ db))
    return float(da @ db) / den if den > 0 else math.nan


def calibration_table(
    curves: pd.DataFrame, *, mode: str, final: pd.Series | None = None
) -> pd.DataFrame:
    """calibration.csv (step, spearman): at each logged step, the rank correlation between the
    calibration members' metric and their final metric. ``curves`` is step (index) x member
    (columns); a step a member did not log reads its last logged row (as a rung would), and NaN,
    inf rank last. ``final`` (member -> value) defaults to each curve's last row."""
    c = curves.sort_index().ffill()
    last = c.iloc[-1] if final is None else final.reindex(c.columns)
    fin = badness(last, mode)
    rho = [spearman(badness(row, mode), fin) for row in c.to_numpy()]
    return pd.DataFrame({"step": c.index.to_numpy(dtype=np.int64), "spearman": rho})


def curves_from_metrics(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The long metrics table (member, step, ...) as step x member of one metric."""
    return metrics.pivot(index="step", columns="member", values=metric)


def rung_correlation(calibration: pd.DataFrame, rung: int) -> float:
    """The correlation of the row a rung after ``rung`` steps reads (the last step < rung)."""
    before = calibration[calibration["step"] < rung]
    return float(before["spearman"].iloc[-1]) if len(before) else math.nan


def auto_min_steps(
    calibration: pd.DataFrame, eta: int, train_steps: int, threshold: float = TRUST
) -> int | None:
    """min_steps: auto: the first rung reads the earliest logged step s whose correlation reaches
    ``threshold``, so it comes after s + 1 steps; None when no such step leaves a rung
    ((s + 1) * eta <= train_steps)."""
    ok = calibration[calibration["spearman"] >= threshold]
    if ok.empty:
        return None
    first = int(ok["step"].iloc[0]) + 1
    return first if first * eta <= train_steps else None
