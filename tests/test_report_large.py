"""The report of a large sweep: success rates, quantile bands, a histogram, a sample of
boundaries, the best and the worst; read from the store's columns, never every member's frame."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xorlab.errors import XorlabError
from xorlab.report import build_report, large
from xorlab.store import SweepStore
from xorlab.sweep import build_sweep
from xorlab.sweeprun import run_sweep

BASE = {"data": {"kind": "xor", "n": 40}, "model": {"hidden": [3], "bias": True},
        "train": {"steps": 60}, "plots": {"enabled": False}}  # fmt: skip
SPEC = {
    "name": "big",
    "config": BASE,
    "random": {"n": 12, "seed": 0, "params": {"optim.lr": {"loguniform": [0.05, 20.0]}}},
    "grid": {"regularization.strength": [0.0, 0.001]},
    "seeds": [0, 1],
}  # 2 x 12 x 2 = 48 members


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("big")
    return run_sweep(build_sweep(SPEC, file="s.yaml", base_dir=root), root).folder


@pytest.fixture
def large_from(monkeypatch):
    monkeypatch.setattr(large, "LARGE_FROM", 20)  # 48 members is a large sweep here


def test_a_large_sweep_gets_the_views_that_make_sense_at_its_size(big, large_from, monkeypatch,
                                                                   tmp_path):  # fmt: skip
    def no_frames(*_a, **_k):
        raise AssertionError("a large sweep's report read a member's whole metrics frame")

    monkeypatch.setattr(SweepStore, "metrics", no_frames)
    out = build_report(big, out=tmp_path / "r")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["boundaries.png", "final_loss_hist.png", "index.html", "loss_bands.png",
                     "report.md", "success.png"]  # fmt: skip
    for p in out.glob("*.png"):
        Image.open(p).verify()
    md = (out / "report.md").read_text()
    summary = pd.read_csv(big / "summary.csv")
    ok = (summary["status"].isin(["completed", "diverged"])) & (summary["final_train_acc"] >= 0.9)
    assert "**48 members** (" in md
    assert f"**{int(ok.sum())} of 48 ({ok.mean():.1%}) succeeded**" in md
    # the best member by data loss heads the table
    finished = summary[summary["status"] == "completed"]
    best = finished.sort_values(["final_data_loss", "index"], kind="stable")["index"].iloc[0]
    rows = [r for r in md.splitlines() if r.startswith("| best |")]
    assert len(rows) == 10 and f"| best | {best} |" in rows[0]
    assert re.search(r"By lr: the success rate is highest at .* and lowest at ", md)
    assert "summary.csv" in md and "xorlab export SWEEP INDEX --to DIR" in md


def test_success_rates_by_bins_and_the_curves_read_from_columns(big, large_from):
    view = large.read_large(big, x=None, y=None, metric="final_loss")
    assert view is not None and view.x == "optim.lr" and view.y == "regularization.strength"
    lr = large.binned(view, "optim.lr")  # 24 distinct numbers over 400x: 8 log-spaced bins
    assert len(lr.labels) == 8 and lr.edges is not None
    assert np.allclose(np.diff(np.log(lr.edges)), np.log(lr.edges[-1] / lr.edges[0]) / 8)
    reg = large.binned(view, "regularization.strength")  # 2 values: categories as they are
    assert reg.labels == ["0", "0.001"] and reg.edges is None
    rate, count = large.rates(view.success, reg.codes, 2)
    assert count.tolist() == [24, 24]
    steps, curves, column = large.loss_curves(view)
    assert column == "data_loss" and curves.shape == (48, len(steps)) and steps[-1] == 59
    store = SweepStore(big)
    m = store.metrics(5)  # one member, the ordinary way
    want = m.set_index("step")["data_loss"].reindex(steps).to_numpy(np.float32)
    assert np.array_equal(curves[5], want, equal_nan=True)


def test_options_are_checked_against_the_large_sweep(big, large_from, tmp_path):
    with pytest.raises(XorlabError, match="'nope' is not a key this sweep varies; use one of: "
                       "reg.strength, lr, seed"):  # fmt: skip
        build_report(big, out=tmp_path / "a", x="nope")
    with pytest.raises(XorlabError, match="unknown metric 'max_spike' for a large sweep"):
        build_report(big, out=tmp_path / "b", metric="max_spike")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    view = large.read_large(big, x="reg.strength", y="seed", metric="final_train_acc")
    assert view is not None and (view.x, view.y) == ("regularization.strength", "seed")


def test_a_sweep_of_at_most_large_from_members_keeps_the_full_report(big, tmp_path):
    assert large.read_large(big, x=None, y=None, metric="final_loss") is None  # 48 <= 200
    out = build_report(big, out=tmp_path / "r")
    assert (out / "loss_curves.png").exists() and not (out / "success.png").exists()
