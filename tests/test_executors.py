"""Which members of a sweep get plots: all of a small sweep, a sample plus best and worst of a
large one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from xorlab import executors
from xorlab.cli import app
from xorlab.executors import plot_sample
from xorlab.store import SweepStore

from .conftest import write

runner = CliRunner()
BASE = "name: base\ndata: {n: 40}\nmodel: {hidden: [3]}\ntrain: {steps: 15}\n"


def test_a_small_sweep_draws_every_member():
    assert plot_sample(range(24), 24) == set(range(24))
    assert plot_sample([3, 5], 24) == {3, 5}  # a resume: only what is left to run


def test_a_large_sweep_draws_an_evenly_spread_sample():
    # 36 members, 10 drawn: k * 3.6 rounded down, k = 0..9
    assert plot_sample(range(36), 36) == {0, 3, 7, 10, 14, 18, 21, 25, 28, 32}
    assert plot_sample(range(10_000), 10_000) == set(range(0, 10_000, 1000))
    assert plot_sample([1, 2, 3, 4], 36) == {3}  # a resume draws what it runs of the sample


def test_a_large_sweep_also_draws_its_best_and_worst(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(executors, "PLOT_ALL_UP_TO", 3)
    monkeypatch.setattr(executors, "PLOT_SAMPLE", 2)  # members 0 and 3 of 6
    write(tmp_path, BASE, "base.yaml")
    body = (
        "base: base.yaml\nset: {plots.gif_frames: 0}\n"
        "grid: {optim.lr: [0.01, 0.3, 3.0, 0.1, 1.0, 0.03]}\n"
    )
    p = write(tmp_path, body, "s.yaml")
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["sweep", str(p), "-j", "1", "-q", "--runs-dir", str(runs)])
    assert res.exit_code == 0, res.output
    sweep = next(runs.iterdir())
    store = SweepStore(sweep)
    last = {i: store.metrics(i)["data_loss"].iloc[-1] for i in range(6)}
    others = {i: v for i, v in last.items() if i not in (0, 3)}
    best, worst = min(others, key=others.get), max(others, key=others.get)
    assert best != worst
    drawn = {
        int(m.name[:3])
        for m in (sweep / "members").iterdir()
        if (m / "plots" / "panel.png").is_file()
    }
    assert drawn == {0, 3, best, worst}
    assert len(list((sweep / "members").iterdir())) == 4  # the others have no folder
    summary = pd.read_csv(sweep / "summary.csv")
    assert (summary["status"] == "completed").all()  # drawn or not, every member is done
