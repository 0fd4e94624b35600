"""The run folder's encoders: CSV bytes equal to pandas', whichever path writes them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from xorlab.config import validate
from xorlab.rundir import csv_text
from xorlab.train import train

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


def pandas_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, lineterminator="\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(floats, st.integers(-(2**62), 2**62), floats), min_size=0, max_size=30))
def test_fast_csv_is_pandas_csv(rows):
    df = pd.DataFrame(
        {
            "loss": np.array([r[0] for r in rows], dtype=np.float64),
            "step": np.array([r[1] for r in rows], dtype=np.int64),
            "lr": np.array([r[2] for r in rows], dtype=np.float64),
        }
    )
    assert csv_text(df) == pandas_csv(df)


def test_edge_values_round_trip_exactly():
    values = [0.0, -0.0, 1e-5, 1e16, 1.0 / 3, 5e-324, 1.7976931348623157e308, np.inf, -np.inf]
    df = pd.DataFrame({"x": np.array([*values, np.nan]), "i": np.arange(len(values) + 1)})
    text = csv_text(df)
    assert text == pandas_csv(df)
    back = pd.read_csv(io.StringIO(text))
    np.testing.assert_array_equal(back["x"].to_numpy(), df["x"].to_numpy())  # bit for bit
    assert text.splitlines()[-1] == ",9"  # NaN is an empty field


def test_other_tables_go_to_pandas():
    df = pd.DataFrame({"name": ["a,b", "c"], "flag": [True, False], "x": [1.5, np.nan]})
    assert csv_text(df) == pandas_csv(df)
    quoted = pd.DataFrame({"a,b": [1.0]})
    assert csv_text(quoted) == pandas_csv(quoted) == '"a,b"\n1.0\n'


def test_a_runs_metrics_csv_is_pandas_csv():
    cfg = validate(
        {"data": {"test_fraction": 0.2}, "train": {"steps": 30}, "plots": {"enabled": False}}
    )
    metrics = train(cfg).metrics
    assert csv_text(metrics) == pandas_csv(metrics)
    assert csv_text(metrics.iloc[:0]) == pandas_csv(metrics.iloc[:0])
