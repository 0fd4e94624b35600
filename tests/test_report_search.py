"""The sweep report's search sections: the rung table read from events.csv, the curves cut at
steps_done, the network-steps share, the calibration panel and its sentence, PBT's winner, its
lineage and the population per round; none of it for a sweep without a search. The folders are
made by tests/conftest.py: a real sweep, then the pure policies' decisions written as the
executor writes them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xorlab import search as S
from xorlab.report import build_report, large
from xorlab.report.large import read_large
from xorlab.report.read import read_sweep
from xorlab.report.search import (
    SECTIONS,
    SearchView,
    calibration_text,
    network_steps,
    read_search,
    rung_table,
)
from xorlab.report.search_figs import curves
from xorlab.report.search_pbt import lineage_table, lineage_text, population, schedule, winner

from .conftest import SEARCH_BASE, pbt_fixture, rung_fixture, search_sweep_run


@pytest.fixture(scope="module")
def halving(tmp_path_factory) -> Path:
    return rung_fixture(tmp_path_factory.mktemp("halving"), calibrate=5)


@pytest.fixture(scope="module")
def hyperband(tmp_path_factory) -> Path:
    return rung_fixture(tmp_path_factory.mktemp("hyperband"), kind="hyperband", n=30)


@pytest.fixture(scope="module")
def pbt(tmp_path_factory) -> Path:
    return pbt_fixture(tmp_path_factory.mktemp("pbt"))


def _sv(folder: Path) -> SearchView:
    sv = read_search(read_sweep(folder))
    assert sv is not None
    return sv


def test_the_rung_table_counts_the_events(halving):
    ev = S.read_events((halving / "events.csv").read_text())
    rt = rung_table(ev)
    # 27 members, 5 calibrated: 22 halved; rung 0 keeps ceil(22/3) = 8, rung 1 ceil(8/3) = 3
    assert rt[["bracket", "rung", "step", "alive", "promoted", "pruned"]].values.tolist() == [
        [-1, 0, 6, 22, 8, 14],
        [-1, 1, 18, 8, 3, 5],
    ]
    for r in rt.itertuples():
        rows = ev[ev["step"] == r.step]
        kept = rows.loc[rows["action"] == "promoted", "value"]
        assert r.cutoff == kept.max()  # the last member kept: the worst promoted loss
        assert len(rows) == r.alive
    md = (build_report(halving) / "report.md").read_text()
    assert "| rung | step | alive | promoted | pruned | cutoff |" in md
    assert f"| 0 | 6 | 22 | 8 | 14 | {rt['cutoff'][0]:.4g} |" in md
    assert f"| 1 | 18 | 8 | 3 | 5 | {rt['cutoff'][1]:.4g} |" in md


def test_network_steps_are_the_sum_of_steps_done(halving):
    sv = _sv(halving)
    # 5 calibration x 60 + 14 pruned x 6 + 5 pruned x 18 + 3 survivors x 60 = 654 of 27 x 60
    assert network_steps(sv) == (654, 1620)
    plan = S.make_plan(S.SearchSpec(kind="halving", min_steps=6, calibrate=5), 27, 60)
    assert S.planned_network_steps(plan) == 654
    md = (build_report(halving) / "report.md").read_text()
    assert "**Network-steps: 654 of the full sweep's 1,620 (40%)**" in md
    assert "**19 of 27** members were pruned; 5 calibration members trained in full" in md


def test_pruned_curves_end_at_their_rung(halving):
    sv = _sv(halving)
    data = curves(sv)
    done = pd.read_csv(halving / "summary.csv").set_index("index")
    assert sorted(data) == list(range(27))
    for m, (steps, values) in data.items():
        assert steps[-1] == done.at[m, "steps_done"] - 1  # rows with step < steps_done
        assert np.isfinite(values).all()
    pruned = done.index[done["status"] == "pruned"]
    assert len(pruned) == 19 and {int(done.at[m, "steps_done"]) for m in pruned} == {6, 18}


def test_the_report_has_the_search_sections_and_figures(halving, tmp_path):
    out = build_report(halving, out=tmp_path / "r")
    names = sorted(p.name for p in out.iterdir())
    assert {"search_curves.png", "calibration.png"} <= set(names)
    for p in out.glob("*.png"):
        Image.open(p).verify()
    html = (out / "index.html").read_text()
    md = (out / "report.md").read_text()
    for title in SECTIONS[:3]:
        assert f"## {title}\n" in md
        assert f">{title}</h2>" in html
    assert SECTIONS[3] not in md
    # pruned members are finished, not failures
    assert "This sweep trained **27** networks" in md
    assert "Status: 8 completed, 19 pruned." in md


def test_the_calibration_sentence_reads_calibration_csv(halving):
    sv = _sv(halving)
    cal = pd.read_csv(halving / "calibration.csv")
    rho = S.rung_correlation(cal, 6)
    text = calibration_text(sv)
    assert f"after 6 steps) the ranks of the 5 calibration members by `data_loss` correlate " \
           f"ρ = {rho:.3g} with their final ranks" in text  # fmt: skip
    assert ("can be trusted" in text) == (rho >= 0.8)
    # a hand-made ramp: rho(step) = step / 59; the rung after 6 steps reads step 5: 5/59 = 0.0847
    sv.calibration = pd.DataFrame({"step": range(60), "spearman": [s / 59 for s in range(60)]})
    text = calibration_text(sv)
    assert "correlate ρ = 0.0847 with their final ranks, below 0.8: **the early ranks cannot " \
           "be trusted**" in text  # fmt: skip
    # 0.8 first at step 48 (48/59 = 0.814), so the first rung after 49 steps: 49 * 3 > 60, none
    assert "The correlation first reaches 0.8 at step 48; a later first rung" in text


def test_hyperband_gets_a_row_per_bracket_and_rung(hyperband, tmp_path):
    sv = _sv(hyperband)
    rt = rung_table(sv.events)
    summary = pd.read_csv(hyperband / "summary.csv")
    sizes = summary.groupby("bracket").size().to_dict()
    first = rt.groupby("bracket")["alive"].first().to_dict()
    assert first == {b: n for b, n in sizes.items() if b in first}
    for _, g in rt.groupby("bracket"):  # who is promoted at a rung is who is alive at the next
        assert g["alive"].tolist()[1:] == g["promoted"].tolist()[:-1]
    assert network_steps(sv)[0] == int(summary["steps_done"].sum())
    out = build_report(hyperband, out=tmp_path / "r")
    md = (out / "report.md").read_text()
    assert "| bracket | rung | step | alive | promoted | pruned | cutoff |" in md
    assert (out / "search_curves.png").exists() and not (out / "calibration.png").exists()


def test_pbt_names_the_winner_and_its_lineage(pbt, tmp_path):
    sv = _sv(pbt)
    summary = pd.read_csv(pbt / "summary.csv")
    best = summary.sort_values(["final_data_loss", "index"]).iloc[0]
    w = winner(sv)
    assert w == int(best["index"])
    lin = S.lineage(sv.events, w)
    copies = lin[lin["action"] == "exploited"]
    assert len(copies) >= 1
    table = lineage_table(sv, w)
    assert table is not None and len(table.rows) == len(copies)
    first = copies.iloc[0]
    assert f"its state began as member {int(first['parent'])}'s" in lineage_text(sv, w)
    sched, cps = schedule(sv, w)
    assert cps == [(int(r.step), int(r.member), int(r.parent)) for r in copies.itertuples()]
    last = lin[(lin["action"] == "perturbed") & (lin["step"] == copies["step"].max())]
    for r in last.itertuples():  # the winner ends on its last perturbation's values
        assert sched[r.key].iloc[-1] == r.new == summary.at[w, r.key]
    out = build_report(pbt, out=tmp_path / "r")
    md = (out / "report.md").read_text()
    assert f"## {SECTIONS[3]}\n" in md and f"The winner is **member {w}**" in md
    assert "**Population-based training** ranked the members by `data_loss` (lower is " \
           "better): 6 copies in 3 rounds (at steps 10, 20 and 30)." in md  # fmt: skip
    assert (out / "pbt_schedule.png").exists() and not (out / "search_curves.png").exists()


def test_the_population_and_a_schedule_replay_the_copies_by_hand(pbt):
    sv = _sv(pbt)
    # members 0-3 start at lr 1, 2, 3, 4; at step 10 member 3 copies 0 (lr 1 x 1.2 = 1.2); at
    # step 20 member 2 copies 3 (lr 1.2 x 0.8 = 0.96)
    sv.configs = [_cfg(lr) for lr in (1.0, 2.0, 3.0, 4.0)]
    sv.interval, sv.train_steps = 10, 30
    sv.events = S.events_frame([
        {"step": 10, "round": 0, "member": 3, "action": "exploited", "parent": 0, "value": 0.4,
         "rank": 4, "cutoff": 0.3, "reason": "x"},
        {"step": 10, "round": 0, "member": 3, "action": "perturbed", "key": "optim.lr",
         "old": 1.0, "new": 1.2, "reason": "x"},
        {"step": 20, "round": 1, "member": 2, "action": "exploited", "parent": 3, "value": 0.5,
         "rank": 4, "cutoff": 0.3, "reason": "x"},
        {"step": 20, "round": 1, "member": 2, "action": "perturbed", "key": "optim.lr",
         "old": 1.2, "new": 0.96, "reason": "x"},
    ])  # fmt: skip
    starts, values = population(sv)
    assert starts == [0, 10, 20]
    assert values["optim.lr"].tolist() == [[1, 2, 3, 4], [1, 2, 3, 1.2], [1, 2, 0.96, 1.2]]
    sched, copies = schedule(sv, 2)
    assert sched["step"].tolist() == [0, 10, 20]
    assert sched["optim.lr"].tolist() == [1.0, 1.2, 0.96]
    assert copies == [(10, 3, 0), (20, 2, 3)]


def _cfg(lr: float):
    from xorlab.config import Config

    return Config.model_validate({"optim": {"lr": lr}})


def test_a_sweep_without_a_search_has_none_of_it(tmp_path):
    params = {"optim.lr": {"loguniform": [0.1, 5.0]}}
    spec = {"name": "plain", "config": SEARCH_BASE, "random": {"n": 4, "seed": 0, "params": params}}
    folder = search_sweep_run(tmp_path, spec)
    assert read_search(read_sweep(folder)) is None
    out = build_report(folder, out=tmp_path / "r")
    md = (out / "report.md").read_text()
    assert not any(f"## {t}" in md for t in SECTIONS)
    assert not {"search_curves.png", "calibration.png", "pbt_schedule.png"} & {
        p.name for p in out.iterdir()
    }


def test_a_large_search_sweep_gets_the_sections_and_does_not_fail_its_pruned(
    halving, monkeypatch, tmp_path
):
    monkeypatch.setattr(large, "LARGE_FROM", 20)  # 27 members is a large sweep here
    view = read_large(halving, x=None, y=None, metric="final_loss")
    assert view is not None
    sv = read_search(view)
    assert sv is not None and network_steps(sv) == (654, 1620)
    out = build_report(halving, out=tmp_path / "r")
    md = (out / "report.md").read_text()
    assert f"## {SECTIONS[0]}\n" in md and (out / "search_curves.png").exists()
    ok = view.success[(view.table["status"] != "pruned").to_numpy()]
    assert (f"**27 members** (8 completed, 19 pruned). **{int(ok.sum())} of 8 "
            f"({ok.mean():.1%}) succeeded**: final train accuracy ≥ 0.9, of the members the "
            "search did not prune.") in md  # fmt: skip
    failed = md.split("Failed, by lr: ")[1].split("\n")[0]  # per bin "k of n, p%": n sum to 8
    assert sum(int(n) for n in re.findall(r"\d+ of (\d+),", failed)) == 8


def test_the_final_loss_histogram_leaves_out_pruned_members(halving, monkeypatch):
    from xorlab.report.large_figs import histogram_figure

    monkeypatch.setattr(large, "LARGE_FROM", 20)
    view = read_large(halving, x=None, y=None, metric="final_loss")
    fig = histogram_figure(view)
    ax = fig.axes[0]
    shown = sum(p.get_height() for p in ax.patches)
    assert shown == 8  # the 8 members that trained in full, not the 19 pruned
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "19 pruned by the search (not shown)" in labels
