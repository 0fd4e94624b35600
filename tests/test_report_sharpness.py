"""The sweep report's sharpness x lr (report/sharpness.py): per point the median over its seeds
of sharpness x lr_t, the stability line, every member's blow-ups; read from the sweep store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xorlab import yamlio
from xorlab.members import read_metrics
from xorlab.report import build_report
from xorlab.report.points import plan
from xorlab.report.read import read_sweep
from xorlab.report.sharpness import COLUMNS, member_table, point_sharpness
from xorlab.sweep import build_sweep
from xorlab.sweeprun import run_sweep

from .conftest import CONFIGS


@pytest.fixture(scope="module")
def explode_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The explode config and lr 1.0, seeds 0 and 1, 200 steps, sharpness every 5th step."""
    root = tmp_path_factory.mktemp("sharp")
    cfg = yamlio.load_file(CONFIGS / "xor_h50_explode.yaml")
    cfg.update(plots={"enabled": False}, train={"steps": 200}, telemetry={"sharpness_every": 5})
    spec = {
        "name": "sharp",
        "config": cfg,
        "variants": [{"name": "explode", "set": {}}, {"name": "low_lr", "set": {"optim.lr": 1.0}}],
        "seeds": [0, 1],
    }
    sweep = build_sweep(spec, file="s.yaml", base_dir=root)
    return run_sweep(sweep, root / "runs", jobs=1).folder


def test_sharpness_times_lr_per_point_from_the_store(explode_sweep: Path) -> None:
    view = read_sweep(explode_sweep)
    tables = member_table(view)
    assert sorted(tables) == [0, 1, 2, 3]
    assert all(list(t.columns) == ["member", *COLUMNS] for t in tables.values())  # only these
    series = {
        s.point.label: s
        for s in point_sharpness(plan(view, x=None, y=None, metric="final_loss"), tables)
    }
    assert list(series) == ["explode", "low_lr"]
    ex, low = series["explode"], series["low_lr"]
    # seed 0 blows up at steps 52 and 121, seed 1 at 82 and 182 (the measurements)
    assert ex.blowups == [52, 82, 121, 182] and low.blowups == []
    assert ex.steps.tolist() == list(range(0, 200, 5)) and ex.members == 2 and ex.limit == 2.0
    whole = read_metrics(explode_sweep)
    by = dict(list(whole.groupby("member")))
    seeds = [by[m.index] for m in view.members if m.variant == "explode"]
    at = [(g["sharpness"] * g["lr"]).to_numpy()[g["step"].to_numpy() == 50][0] for g in seeds]
    assert ex.median[ex.steps == 50][0] == pytest.approx(np.median(at), rel=1e-12)
    assert np.nanmax(ex.high) > 2.0 > np.nanmax(low.high)  # lr 1 stays under the line


def test_sweep_report_shows_sharpness_times_lr_only_when_logged(
    explode_sweep: Path, tmp_path: Path
) -> None:
    out = build_report(explode_sweep, out=tmp_path / "rep")
    md = (out / "report.md").read_text()
    assert "## Sharpness × lr" in md
    assert (out / "sharpness_lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_metrics_of_a_column_no_part_has_is_all_nan(explode_sweep: Path) -> None:
    df = read_metrics(explode_sweep, ["step", "no_such_column"])
    assert list(df.columns) == ["member", "step", "no_such_column"]
    assert len(df) == 4 * 200 and df["no_such_column"].isna().all()


def test_a_damaged_part_falls_back_to_the_members_read_one_by_one(
    explode_sweep: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(explode_sweep, folder)
    (folder / "metrics" / "damaged.parquet").write_bytes(b"not parquet")
    view = read_sweep(folder)
    series = point_sharpness(plan(view, x=None, y=None, metric="final_loss"), member_table(view))
    assert [s.point.label for s in series] == ["explode", "low_lr"]
    assert series[0].blowups == [52, 82, 121, 182]
