"""Early stopping (Keras) and reduce_on_plateau (PyTorch, threshold_mode rel) against hand
computations, row by row."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from xorlab.stopping import (
    EarlyStopping,
    EarlyStoppingConfig,
    PlateauConfig,
    ReduceOnPlateau,
)


def run_stop(es: EarlyStopping, values: list[float]) -> list[tuple[bool, bool, int, int | None]]:
    out = []
    for t, v in enumerate(values):
        d = es.update(v, t)
        out.append((d.improved, d.stop, d.wait, d.best_row))
        if d.stop:
            break
    return out


def test_early_stopping_min_with_min_delta_by_hand():
    # patience 2, min_delta 0.1: a row improves when value + 0.1 < best
    # row 0: 1.0 + 0.1 < inf              -> best 1.0 (row 0), wait 0
    # row 1: 0.95 + 0.1 = 1.05 < 1.0? no  -> wait 1
    # row 2: 0.85 + 0.1 = 0.95 < 1.0      -> best 0.85 (row 2), wait 0
    # row 3: 0.8 + 0.1 = 0.9 < 0.85? no   -> wait 1
    # row 4: 0.79 + 0.1 = 0.89 < 0.85? no -> wait 2 = patience: stop; update 4 is not applied
    es = EarlyStopping(patience=2, min_delta=0.1)
    assert run_stop(es, [1.0, 0.95, 0.85, 0.8, 0.79, 0.1]) == [
        (True, False, 0, 0), (False, False, 1, 0), (True, False, 0, 2),
        (False, False, 1, 2), (False, True, 2, 2),
    ]  # fmt: skip
    assert es.best == 0.85


def test_early_stopping_max_nan_and_patience_zero():
    # max: improves when value - 0 > best. row 0: NaN > -inf? no -> wait 1, but never a stop on
    # the first row (Keras's epoch > 0); best_row 0 (restore_best keeps the first row's weights)
    # row 1: 0.5 > -inf -> best 0.5, wait 0; row 2: 0.5 > 0.5? no -> wait 1 >= 1: stop
    es = EarlyStopping(patience=1, mode="max")
    assert run_stop(es, [math.nan, 0.5, 0.5]) == [
        (False, False, 1, 0), (True, False, 0, 1), (False, True, 1, 1)
    ]  # fmt: skip
    # patience 0: the first row that does not improve stops
    es = EarlyStopping(patience=0)
    assert run_stop(es, [3.0, 2.0, 2.0]) == [
        (True, False, 0, 0), (True, False, 0, 1), (False, True, 1, 1)
    ]  # fmt: skip


def test_reduce_on_plateau_by_hand():
    # lr 1, factor 0.5, patience 2, cooldown 1, threshold 0.1 (rel, min: better < best * 0.9)
    # row 0: 1.0 < inf          -> best 1.0, bad 0
    # row 1: 0.95 < 0.9? no     -> bad 1
    # row 2: 0.95               -> bad 2 (not > 2)
    # row 3: 0.95               -> bad 3 > 2: lr 0.5, cooldown 1, bad 0
    # row 4: 0.8 < 0.9          -> best 0.8, bad 0; cooldown 1 -> 0
    # row 5: 0.8 < 0.72? no     -> bad 1
    # row 6: 0.8                -> bad 2
    # row 7: 0.8                -> bad 3 > 2: lr 0.25, cooldown 1, bad 0
    # row 8: 0.8                -> bad 1, but in cooldown: cooldown 0, bad 0
    # row 9: 0.8                -> bad 1
    p = ReduceOnPlateau(lr=1.0, factor=0.5, patience=2, cooldown=1, threshold=0.1)
    got = [(d.lr, d.reduced, d.bad, d.cooldown) for d in map(p.update, [1.0, *[0.95] * 3,
                                                                       *[0.8] * 6])]  # fmt: skip
    assert got == [
        (1.0, False, 0, 0), (1.0, False, 1, 0), (1.0, False, 2, 0), (0.5, True, 0, 1),
        (0.5, False, 0, 0), (0.5, False, 1, 0), (0.5, False, 2, 0), (0.25, True, 0, 1),
        (0.25, False, 0, 0), (0.25, False, 1, 0),
    ]  # fmt: skip


def test_reduce_on_plateau_floor_and_max_mode():
    # lr_min 0.3: 1 -> max(0.5, 0.3) = 0.5 -> max(0.25, 0.3) = 0.3 -> max(0.15, 0.3) = 0.3, a
    # change of 0 (<= 1e-8): not reduced. patience 0: every non-improving row is one too many.
    # max mode, threshold 0: better means > best; 0.5 > -inf -> best; then 0.5 > 0.5 never.
    p = ReduceOnPlateau(lr=1.0, factor=0.5, patience=0, lr_min=0.3, mode="max", threshold=0.0)
    got = [(d.lr, d.reduced) for d in map(p.update, [0.5, 0.5, 0.5, 0.5, math.nan])]
    assert got == [(1.0, False), (0.5, True), (0.3, True), (0.3, False), (0.3, False)]


def test_config_models_defaults_and_from_config():
    es = EarlyStopping.from_config(EarlyStoppingConfig(patience=3, min_delta=0.01))
    assert (es.patience, es.min_delta, es.mode, es.best) == (3, 0.01, "min", math.inf)
    p = ReduceOnPlateau.from_config(0.1, PlateauConfig())
    assert (p.lr, p.factor, p.patience, p.cooldown, p.lr_min, p.threshold) == (
        0.1, 0.5, 50, 0, 0.0, 1e-4
    )  # fmt: skip
    assert EarlyStoppingConfig().model_dump() == {
        "metric": "loss", "mode": "min", "patience": 100, "min_delta": 0.0, "restore_best": False
    }  # fmt: skip
    with pytest.raises(ValidationError):
        PlateauConfig(factor=1.0)
    with pytest.raises(ValidationError):
        EarlyStoppingConfig(metric="accuracy")
