"""Early stopping and the plateau schedule as small pure state machines (DESIGN.md section 2).

Both count logged rows: the caller feeds each logged row's metric to ``update`` and acts on the
decision it returns. Nothing here trains, prints or reads the clock, so ``train`` and the
population engine (one machine per member) can share them.

- ``EarlyStopping``: Keras's ``EarlyStopping``. Row t improves when it beats the best so far by
  more than ``min_delta`` (min: value + min_delta < best; max: value - min_delta > best); else a
  wait counter grows. When the wait reaches ``patience`` (never on the first row), update t is not
  applied: steps_done = t, the metrics end at row t, status ``stopped_early``. With
  ``restore_best`` the final parameters are those of the best row (the first row's until a row
  improves). The best starts at inf (min) or -inf (max), as in tf.keras, so a NaN first row is
  not a best that nothing could beat.
- ``ReduceOnPlateau``: PyTorch's ``ReduceLROnPlateau`` with ``threshold_mode='rel'``. A row is
  better when value < best * (1 - threshold) (min) or value > best * (1 + threshold) (max); else
  it is bad. When the bad rows exceed ``patience``, lr becomes max(lr * factor, lr_min) (a change
  of at most 1e-8 is not applied) and the next ``cooldown`` rows count no bad rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Metric = Literal["loss", "data_loss", "train_acc", "test_acc"]
EPS = 1e-8  # PyTorch's ReduceLROnPlateau eps: smaller lr changes are ignored


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, defer_build=True)


class EarlyStoppingConfig(_Section):
    """``train.early_stopping`` (null: off)."""

    metric: Metric = "loss"  # a metrics.csv column, read on every logged row
    mode: Literal["min", "max"] = "min"  # min for losses, max for accuracies
    patience: int = Field(100, ge=0)  # logged rows without improvement before the stop
    min_delta: float = Field(0.0, ge=0.0)  # an improvement must beat the best by more than this
    restore_best: bool = False  # on a stop, end with the parameters of the best row


class PlateauConfig(_Section):
    """The keys ``optim.schedule`` gains for ``kind: reduce_on_plateau`` (``lr_min`` is there)."""

    factor: float = Field(0.5, gt=0.0, lt=1.0)  # lr multiplied by this on a plateau
    patience: int = Field(50, ge=0)  # bad logged rows tolerated; one more reduces lr
    cooldown: int = Field(0, ge=0)  # logged rows after a reduction that count no bad rows
    lr_min: float = Field(0.0, ge=0.0)  # lr never goes below this
    metric: Metric = "loss"  # a metrics.csv column, read on every logged row
    mode: Literal["min", "max"] = "min"  # min for losses, max for accuracies
    threshold: float = Field(1.0e-4, ge=0.0)  # relative: better means beyond best*(1 -+ this)


@dataclass(frozen=True)
class StopDecision:
    row: int  # the logged row's step
    improved: bool  # this row beats the best by more than min_delta (the wait was reset)
    stop: bool  # do not apply update ``row``: steps_done = row, status stopped_early
    best: float
    best_row: int | None  # restore_best: keep the parameters of every row where best_row == row
    wait: int


@dataclass
class EarlyStopping:
    patience: int
    min_delta: float = 0.0
    mode: str = "min"
    best: float = math.nan  # set in __post_init__: inf (min) or -inf (max)
    best_row: int | None = None
    wait: int = 0
    rows: int = 0

    def __post_init__(self) -> None:
        if math.isnan(self.best):
            self.best = math.inf if self.mode == "min" else -math.inf

    @classmethod
    def from_config(cls, c: EarlyStoppingConfig) -> EarlyStopping:
        return cls(patience=c.patience, min_delta=c.min_delta, mode=c.mode)

    def improves(self, value: float) -> bool:
        if self.mode == "min":
            return value + self.min_delta < self.best  # NaN compares False: never improves
        return value - self.min_delta > self.best

    def update(self, value: float, row: int) -> StopDecision:
        """Keras's on_epoch_end: the wait grows, an improvement resets it, a wait of
        ``patience`` stops (not on the first row)."""
        first = self.rows == 0
        self.rows += 1
        self.wait += 1
        improved = self.improves(value)
        if improved:
            self.best, self.best_row, self.wait = value, row, 0
        elif first:  # as Keras's restore_best_weights: the first row's weights until one improves
            self.best_row = row
        stop = not improved and self.wait >= self.patience and not first
        return StopDecision(row, improved, stop, self.best, self.best_row, self.wait)


@dataclass(frozen=True)
class PlateauDecision:
    lr: float  # the learning rate for the next update
    reduced: bool  # this row lowered it
    bad: int  # bad rows counted so far
    cooldown: int  # rows of cooldown left
    best: float


@dataclass
class ReduceOnPlateau:
    lr: float
    factor: float = 0.5
    patience: int = 50
    cooldown: int = 0
    lr_min: float = 0.0
    mode: str = "min"
    threshold: float = 1e-4
    best: float = math.nan  # set in __post_init__: inf (min) or -inf (max)
    bad: int = 0
    cooldown_left: int = 0

    def __post_init__(self) -> None:
        if math.isnan(self.best):
            self.best = math.inf if self.mode == "min" else -math.inf

    @classmethod
    def from_config(cls, lr: float, c: PlateauConfig) -> ReduceOnPlateau:
        return cls(lr=lr, factor=c.factor, patience=c.patience, cooldown=c.cooldown,
                   lr_min=c.lr_min, mode=c.mode, threshold=c.threshold)  # fmt: skip

    def is_better(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best * (1.0 - self.threshold)
        return value > self.best * (1.0 + self.threshold)

    def update(self, value: float) -> PlateauDecision:
        """PyTorch's step(metrics): count a bad row or a new best; cooldown rows count none; more
        than ``patience`` bad rows multiply lr by ``factor`` (floored at ``lr_min``)."""
        if self.is_better(value):
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad = 0
        reduced = False
        if self.bad > self.patience:
            new = max(self.lr * self.factor, self.lr_min)
            if self.lr - new > EPS:
                self.lr, reduced = new, True
            self.cooldown_left, self.bad = self.cooldown, 0
        return PlateauDecision(self.lr, reduced, self.bad, self.cooldown_left, self.best)
