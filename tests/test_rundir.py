"""The run folder's encoders: CSV bytes equal to pandas', whichever path writes them."""

from __future__ import annotations

import io
from pathlib import Path

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


# --- file modes and durability ------------------------------------------------------------------


def _with_umask(mask: int):
    import os

    old = os.umask(mask)
    return lambda: os.umask(old)


def test_files_get_the_mode_the_umask_gives(tmp_path):
    from xorlab.rundir import atomic_write_bytes

    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        restore = _with_umask(mask)
        try:
            p = atomic_write_bytes(tmp_path / f"f{mask:o}.txt", b"x")
        finally:
            restore()
        assert p.stat().st_mode & 0o777 == mode, (oct(mask), oct(p.stat().st_mode))
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []  # no temp left


def test_every_result_file_is_synced_before_the_summary(tmp_path, monkeypatch):
    # the order of what reaches the disk: each file's fsync, the folder's, then summary.json's
    import os

    from xorlab import rundir

    cfg = validate({"name": "d", "data": {"n": 20}, "train": {"steps": 3}})
    result = train(cfg)
    folder = rundir.RunFolder.create(tmp_path / "runs", "d")
    folder.write_start(cfg.to_yaml(), rundir.now_iso())
    log: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (log.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (log.append(f"replace {Path(b).name}"), real_replace(a, b))[1]
    )
    folder.write_result(result, started_at=rundir.now_iso(), wall_s=0.1)
    names = [e.split()[1] for e in log if e.startswith("replace")]
    assert names[-1] == "summary.json"
    assert set(names) == {"data.npz", "init.npz", "final.npz", "metrics.csv", "meta.json",
                          "summary.json"}  # fmt: skip
    # every rename is preceded by its file's fsync; a folder fsync comes before summary.json's
    for i, e in enumerate(log):
        if e.startswith("replace"):
            assert log[i - 1] == "fsync", log
    s = log.index("replace summary.json")
    assert log[s - 2 : s] == ["fsync", "fsync"], log  # the folder's, then summary.json's own
    assert log[-1] == "fsync"  # and the folder again, so the summary's name is durable
