"""Sweeps at scale: what makes a 10,000-member sweep fast keeps every number exact."""

from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from xorlab import listing, sweeprun, telemetry, yamlio
from xorlab.errors import XorlabError
from xorlab.members import read_metrics
from xorlab.rundir import csv_text
from xorlab.store import SweepStore
from xorlab.sweep import build_sweep
from xorlab.sweeprun import load_for_resume, run_sweep, summary_frame, sweep_yaml_text

BASE = {"data": {"n": 24}, "model": {"hidden": [3]}, "train": {"steps": 6},
        "plots": {"enabled": False}}  # fmt: skip


def test_layer_health_counts_equal_count_nonzero_on_the_wide_layout():
    """The stack's saturated share is the same integer count over the same size as
    np.count_nonzero gives, on the strided (K, N, H) view of the wide (N, K, H) array."""
    rs = np.random.RandomState(0)
    wide = 1 / (1 + np.exp(-8 * rs.randn(50, 7, 3)))  # (N, K, H), many entries in the tails
    h = wide.transpose(1, 0, 2)  # (K, N, H), not contiguous
    for kind, lo in (("sigmoid", None), ("tanh", None)):
        x = h if kind == "sigmoid" else 2 * h - 1
        got = telemetry.layer_health_each([x], kind)[0]
        if kind == "sigmoid":
            flat = np.count_nonzero((x < 0.01) | (x > 0.99), axis=(-2, -1))
        else:
            flat = np.count_nonzero(np.abs(x) > 0.99, axis=(-2, -1))
        assert got.tolist() == (flat / 150).tolist() and lo is None
        alone = [telemetry.layer_health([x[k]], kind)[0] for k in range(7)]
        assert got.tolist() == alone


def test_parts_are_byte_stream_split_floats_and_read_back_exactly(tmp_path):
    spec = {"name": "p", "config": BASE, "grid": {"optim.lr": [0.1, 0.5]}, "seeds": [0, 1]}
    folder = run_sweep(build_sweep(spec, file="s.yaml", base_dir=tmp_path), tmp_path).folder
    part = next((folder / "metrics").glob("*.parquet"))
    meta = pq.ParquetFile(part).metadata
    encodings = {
        meta.schema.column(c).name: meta.row_group(0).column(c).encodings
        for c in range(meta.num_columns)
    }
    assert "BYTE_STREAM_SPLIT" in encodings["loss"]
    assert "BYTE_STREAM_SPLIT" not in encodings["step"]
    table = read_metrics(folder)
    store = SweepStore(folder)
    from xorlab.train import train

    for m in load_for_resume(folder).members:
        solo = train(m.config).metrics
        mine = table[table["member"] == m.index].drop(columns="member").reset_index(drop=True)
        assert csv_text(mine[list(solo.columns)]) == csv_text(solo)
        assert csv_text(store.metrics(m.index)) == csv_text(solo)


def test_summary_frame_column_wise_gives_the_same_bytes(tmp_path):
    spec = {"name": "s", "config": BASE, "variants": [{"name": "a"}, {"name": "b",
            "set": {"model.hidden": [4]}}], "grid": {"optim.lr": [0.1, 1e6]},
            "set": {"train.diverge_above": 100.0}, "seeds": [0, 1]}  # fmt: skip
    folder = run_sweep(build_sweep(spec, file="s.yaml", base_dir=tmp_path), tmp_path).folder
    sweep = load_for_resume(folder)
    df = summary_frame(sweep, SweepStore(folder).entries(), set())
    assert csv_text(df) == (folder / "summary.csv").read_text()
    assert list(df.columns[:4]) == ["index", "run_dir", "variant", "seed"]
    assert str(df["diverged_at"].dtype) == "Int64" and df["status"].tolist().count("diverged") == 4
    pending = summary_frame(sweep, {}, set())
    assert set(pending["status"]) == {"pending"} and pending["final_loss"].isna().all()


def test_a_large_sweep_record_reads_back(tmp_path):
    """sweep.yaml of a sweep with more than 100,000 YAML values (7,500 members) is read; an
    alias bomb of the same size is still refused."""
    spec = {"name": "big", "config": BASE, "random": {"n": 7500, "seed": 0, "params": {
        "optim.lr": {"loguniform": [0.01, 10.0]},
        "regularization.strength": {"loguniform": [1e-6, 0.1]}}}}  # fmt: skip
    sweep = build_sweep(spec, file="s.yaml", base_dir=tmp_path)
    (tmp_path / "sweep.yaml").write_text(sweep_yaml_text(sweep))
    again = load_for_resume(tmp_path)
    assert [m.label for m in again.members] == [m.label for m in sweep.members]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcde", "bcdef")
    )
    with pytest.raises(XorlabError, match="more than 100000 values"):
        yamlio.loads(bomb)


def test_runs_lists_a_many_valued_sweep_in_linear_time(tmp_path):
    """The distinct values of a varied setting are collected with a dict (a list search was
    quadratic: seconds at 10,000 members, minutes at 100,000)."""
    members = [{"index": i, "folder": f"{i:05d}", "seed": 0, "set": {"optim.lr": 0.001 * (i + 1)}}
               for i in range(20000)]  # fmt: skip
    doc = {"base_config": {"model": {"hidden": [3]}}, "members": members}
    info = listing.RunInfo(path="p", folder="f", kind="sweep", name=None, started=None,
                           status="partial")  # fmt: skip
    t0 = time.perf_counter()
    listing.folders._sweep_settings(info, doc, members)
    assert time.perf_counter() - t0 < 1.5
    assert len(info.varied["optim.lr"]) == 20000 and info.hidden == [3]


def test_summary_rewrites_take_a_bounded_share(monkeypatch, tmp_path):
    """While members finish, summary.csv is rewritten no more than SUMMARY_SHARE of the time
    (a rewrite that costs 0.1 s waits 2 s for the next); the last one is always written."""
    writes: list[float] = []
    real = sweeprun._write_summary

    def slow(folder, df):
        writes.append(time.monotonic())
        time.sleep(0.1)
        real(folder, df)

    monkeypatch.setattr(sweeprun, "_write_summary", slow)
    monkeypatch.setattr(sweeprun, "SUMMARY_EVERY_S", 0.0)
    monkeypatch.setattr(sweeprun, "SUMMARY_SHARE", 0.05)
    monkeypatch.setattr(sweeprun, "training_groups",
                        lambda sw, todo, by_cost: [[(i, sw.members[i].config.to_dict())]
                                                   for i in todo])  # fmt: skip
    spec = {"name": "w", "config": BASE, "seeds": list(range(6))}
    folder = run_sweep(build_sweep(spec, file="s.yaml", base_dir=tmp_path), tmp_path).folder
    assert len(writes) == 2  # after the first member, and at the end (not after each of 6)
    assert (folder / "summary.csv").read_text().count("completed") == 6


def test_members_share_identical_config_sections_and_stay_equal_to_their_own(tmp_path):
    """A section equal to the previous member's is that very object (memory at 100,000 members);
    each config still equals the one validated alone, and training tasks carry them as is."""
    from xorlab.config import validate

    spec = {"name": "s", "config": BASE, "random": {"n": 3, "seed": 0, "params": {
        "optim.lr": {"loguniform": [0.01, 1.0]}}}, "seeds": [0, 1]}  # fmt: skip
    sweep = build_sweep(spec, file="s.yaml", base_dir=tmp_path)
    a, b, c = (m.config for m in sweep.members[:3])
    assert (
        a.data is b.data is c.data and a.model is c.model and a.optim.schedule is c.optim.schedule
    )
    assert a.optim is b.optim and a.optim is not c.optim  # seeds 0, 1 of one draw; another draw
    for m in sweep.members:
        alone = validate({**BASE, "seed": m.seed, "optim": {"lr": m.config.optim.lr}, "name": "s"})
        assert m.config.to_dict() == {**alone.to_dict(), "name": m.config.name}
    groups = sweeprun.training_groups(sweep, [0, 1, 2, 3, 4, 5], by_cost=False)
    assert [[i for i, _ in g] for g in groups] == [[0, 1, 2, 3, 4, 5]]
    assert all(cfg is sweep.members[i].config for i, cfg in groups[0])


def test_sweep_yaml_dumped_in_chunks_is_the_same_text(monkeypatch, tmp_path):
    from xorlab import yamlio
    from xorlab.sweep import expanded_listing

    spec = {"name": "y", "config": BASE, "variants": [{"name": "a"}, {"name": "b", "set": {
        "model.hidden": [4]}}], "grid": {"optim.lr": [0.1, 0.5]}, "seeds": [0, 1]}  # fmt: skip
    sweep = build_sweep(spec, file="s.yaml", base_dir=tmp_path)
    whole = yamlio.dumps({"name": sweep.name, "source": sweep.source, "sweep": sweep.spec,
                          "base_config": sweep.base_raw, "variant_configs": sweep.variant_bases,
                          "members": expanded_listing(sweep)})  # fmt: skip
    monkeypatch.setattr(sweeprun, "YAML_CHUNK", 3)  # 8 members: chunks of 3, 3 and 2
    assert sweep_yaml_text(sweep) == whole
    (tmp_path / "sweep.yaml").write_text(whole)
    assert [m.label for m in load_for_resume(tmp_path).members] == [m.label for m in sweep.members]
