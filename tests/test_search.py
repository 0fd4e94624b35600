"""Adaptive search as pure policies, checked on tables without training anything: halving's and
Hyperband's rungs, PBT's copies and perturbations, calibration, events.csv, and the `search:`
block's load-time rules through `xorlab validate`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from xorlab import search as S
from xorlab.cli import app
from xorlab.sweep import load_sweep

from .conftest import write

runner = CliRunner()
BASE = "name: base\ndata: {n: 40}\nmodel: {hidden: [3]}\noptim: {lr: 0.5}\ntrain: {steps: 1000}\n"
LR_L2 = ("{optim.lr: {loguniform: [0.01, 10.0]}, "
         "regularization.strength: {loguniform: [1.0e-6, 0.1]}}")  # fmt: skip


def spec(**kw) -> S.SearchSpec:
    return S.SearchSpec.model_validate(kw)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sweep_file(tmp_path, body: str):
    write(tmp_path, BASE, "base.yaml")
    return write(tmp_path, "base: base.yaml\nset: {plots.enabled: false}\n" + body, "s.yaml")


# --- rungs and brackets -------------------------------------------------------------------------


def test_halving_rungs_follow_li_et_al_ladder():
    # 37*3 = 111 <= 1000, 111*3 = 333 <= 1000, 333*3 = 999 <= 1000, 999*3 > 1000: DESIGN.md's 37,
    # 111, 333; the survivors of 333 train to 1000
    assert S.halving_rungs(37, 3, 1000) == [37, 111, 333]
    assert S.halving_rungs(37, 3, 999) == [37, 111, 333]
    assert S.halving_rungs(37, 3, 998) == [37, 111]  # 333*3 = 999 > 998
    assert S.halving_rungs(1, 2, 8) == [1, 2, 4]
    assert S.halving_rungs(400, 3, 1000) == []


def test_hyperband_bracket_sizes_are_li_et_al_n_s():
    # Li et al., Table 1 (R = 81, eta = 3): n = 81, 34, 15, 8, 5 for s = 4..0
    assert S.hyperband_weights(4, 3) == [81, 34, 15, 8, 5]
    # s_max = 2: ceil(3/3*9) = 9, ceil(3/2*3) = 5, ceil(3/1*1) = 3
    assert S.hyperband_weights(2, 3) == [9, 5, 3]
    assert S.split_proportionally(143, [81, 34, 15, 8, 5]) == [81, 34, 15, 8, 5]
    # 10 * (9, 5, 3) / 17 = 5.29, 2.94, 1.76: floors 5, 2, 1; the 2 left go to the largest
    # remainders (90 % 17 = 5, 50 % 17 = 16, 30 % 17 = 13): brackets 1 and 2
    assert S.split_proportionally(10, [9, 5, 3]) == [5, 3, 2]
    assert S.split_proportionally(3, [1, 1, 1, 1]) == [1, 1, 1, 0]  # ties go to the earlier


def test_hyperband_plan_is_contiguous_brackets_each_a_halving_from_its_own_rung():
    plan = S.make_plan(spec(kind="hyperband", min_steps=111, eta=3), 10, 1000)
    # ladder 111, 333 (s_max = 2): bracket 0 halves from 111, bracket 1 from 333, bracket 2 none
    assert [(b.index, b.members, b.rungs) for b in plan.brackets] == [
        (0, (0, 1, 2, 3, 4), (111, 333)),
        (1, (5, 6, 7), (333,)),
        (2, (8, 9), ()),
    ]
    assert plan.decision_steps() == [111, 333]
    assert [plan.next_stop(0, 0), plan.next_stop(5, 0), plan.next_stop(8, 0)] == [111, 333, 1000]
    big = S.make_plan(spec(kind="hyperband", min_steps=12), 143, 1000)
    assert [len(b.members) for b in big.brackets] == [81, 34, 15, 8, 5]
    assert [b.rungs[0] if b.rungs else None for b in big.brackets] == [12, 36, 108, 324, None]


def test_network_steps_of_a_plan_by_hand():
    # 27 members, rungs 37, 111, 333 of 1000: 27*37 + 9*(111-37) + 3*(333-111) + 1*(1000-333)
    # = 999 + 666 + 666 + 667 = 2998
    plan = S.make_plan(spec(kind="halving", min_steps=37), 27, 1000)
    assert S.planned_network_steps(plan) == 2998
    # the issue's census: 243 members: 8991 + 5994 + 5994 + 9*667 = 26982, 11% of 243000
    plan = S.make_plan(spec(kind="halving", min_steps=37), 243, 1000)
    assert S.planned_network_steps(plan) == 26982
    # 3 calibration members train in full: 24 halved (24*37 + 8*74 + 3*222 + 1*667 = 2813)
    plan = S.make_plan(spec(kind="halving", min_steps=37, calibrate=3), 27, 1000)
    assert S.planned_network_steps(plan) == 3 * 1000 + 2813
    assert S.planned_network_steps(S.make_plan(spec(kind="pbt"), 32, 1000)) == 32000


# --- halving on a synthetic metrics table --------------------------------------------------------


def synthetic_metrics(n: int, steps: int, seed: int = 0) -> tuple[pd.DataFrame, dict[int, int]]:
    """Curves that cross: a + b*exp(-t/c); member 3 copies member 2 (a tie all along), member 5
    logs every 5th step, member 7 leads until it diverges (NaN) at step 10, its last row."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.uniform(0.1, 0.5, n), rng.uniform(0.0, 1.0, n), rng.uniform(2.0, 60.0, n)
    a[3], b[3], c[3] = a[2], b[2], c[2]
    a[7], b[7] = 0.05, 0.0  # the best until it diverges
    rows = []
    for m in range(n):
        every = 5 if m == 5 else 1
        for t in [*range(0, steps, every), steps - 1]:
            v = math.nan if (m == 7 and t == 10) else a[m] + b[m] * math.exp(-t / c[m])
            rows.append((m, t, v))
            if m == 7 and t == 10:
                break
    df = pd.DataFrame(rows, columns=["member", "step", "data_loss"]).drop_duplicates()
    return df, {7: 10}


def last_before(df: pd.DataFrame, m: int, r: int) -> float:
    rows = [(t, v) for mm, t, v in df.itertuples(index=False) if mm == m and t < r]
    return max(rows)[1]


def test_halving_survivors_at_every_rung_are_exactly_the_top_ceil_n_over_eta():
    df, diverged = synthetic_metrics(27, 120)
    plan = S.make_plan(spec(kind="halving", min_steps=4, eta=3), 27, 120)
    assert plan.decision_steps() == [4, 12, 36]
    events = S.replay(plan, df, diverged_at=diverged)
    live = list(range(27))
    for r in (4, 12, 36):
        # by hand: each live member's last logged row with step < r; NaN last, ties by index
        vals = {m: last_before(df, m, r) for m in live}
        order = sorted(live, key=lambda m: (math.isnan(vals[m]), vals[m], m))
        keep = [m for m in order[: -(-len(live) // 3)] if not math.isnan(vals[m])]
        at = events[events["step"] == r]
        assert sorted(at["member"]) == live  # every live member gets one row
        assert at.loc[at["action"] == "promoted", "member"].tolist() == sorted(keep)
        assert dict(zip(at["member"], at["rank"])) == {m: order.index(m) + 1 for m in live}
        live = sorted(keep)
    assert len(live) == 1
    # member 7 diverged at step 10: pruned at the rung after 12 steps, ranked last
    row = events[(events["member"] == 7) & (events["step"] == 12)].iloc[0]
    assert row["action"] == "pruned" and row["rank"] == 9
    assert (
        row["reason"] == "pruned at rung 1 (step 12): diverged (data_loss nan), rank 9/9, keeping 3"
    )
    done = S.steps_done(plan, events)
    assert (
        done[live[0]] == 120
        and done[7] == 12
        and sum(done.values()) == (S.planned_network_steps(plan))
    )


def test_a_tie_goes_to_the_lower_member_index():
    # members 2 and 3 have identical curves: wherever they straddle the cut, 2 stays
    plan = S.make_plan(spec(kind="halving", min_steps=10, eta=2), 4, 100)
    table = pd.DataFrame({"member": [3, 2, 1, 0], "value": [0.2, 0.2, 0.1, 0.3]})
    ev = S.decide(plan, 10, table)
    assert ev[["member", "action", "rank"]].values.tolist() == [
        [1, "promoted", 1], [2, "promoted", 2], [0, "pruned", 4], [3, "pruned", 3]
    ]  # fmt: skip
    assert ev["reason"].tolist() == [
        "promoted at rung 0 (step 10): data_loss 0.1 < cutoff 0.2, rank 1/4, keeping 2",
        "promoted at rung 0 (step 10): data_loss 0.2 = cutoff, rank 2/4, keeping 2",
        "pruned at rung 0 (step 10): data_loss 0.3 > cutoff 0.2, rank 4/4, keeping 2",
        "pruned at rung 0 (step 10): data_loss 0.2 = cutoff, a tie kept by the lower member "
        "index, rank 3/4, keeping 2",
    ]


def test_the_issue_s_reason_line():
    # 27 live members at the third rung (step 333), keep ceil(27/3) = 9: rank 9 is the cutoff
    values = [0.2400 + 0.0001 * i for i in range(8)] + [0.2452, 0.2455, 0.2458, 0.2461]
    values += [0.2500 + 0.001 * i for i in range(15)]  # ranks 13..27
    plan = S.make_plan(spec(kind="halving", min_steps=37), 27, 1000)
    ev = S.decide(plan, 333, pd.DataFrame({"member": range(27), "value": values}))
    row = ev[ev["member"] == 11].iloc[0]
    assert row["reason"] == (
        "pruned at rung 2 (step 333): data_loss 0.2461 > cutoff 0.2452, rank 12/27, keeping 9"
    )
    assert (row["step"], row["round"], row["value"], row["cutoff"]) == (333, 2, 0.2461, 0.2452)
    # values that agree to 4 digits get as many more as it takes to tell them apart
    ev = S.decide(plan, 37, pd.DataFrame({"member": [0, 1, 2], "value": [0.24521, 0.24524, 9.0]}))
    assert ev["reason"][1].startswith(
        "pruned at rung 0 (step 37): data_loss 0.24524 > cutoff 0.24521"
    )


def test_max_mode_keeps_the_highest_and_nan_is_out():
    plan = S.make_plan(spec(kind="halving", metric="train_acc", mode="max", min_steps=10), 4, 100)
    t = pd.DataFrame({"member": [0, 1, 2, 3], "value": [0.5, math.nan, 0.9, 0.7]})
    ev = S.decide(plan, 10, t)
    assert ev.loc[ev["action"] == "promoted", "member"].tolist() == [2, 3]
    assert ev.set_index("member")["rank"].to_dict() == {2: 1, 3: 2, 0: 3, 1: 4}
    assert (
        ev["reason"][0]
        == "promoted at rung 0 (step 10): train_acc 0.9 > cutoff 0.7, rank 1/4, keeping 2"
    )


def test_a_diverged_member_is_out_even_when_it_ranks_among_the_kept():
    plan = S.make_plan(spec(kind="halving", min_steps=10, eta=2), 4, 100)
    t = pd.DataFrame({"member": [0, 1, 2, 3], "value": [0.1, 0.2, 0.3, 0.4],
                      "diverged": [True, False, False, False]})  # fmt: skip
    ev = S.decide(plan, 10, t)  # 0's finite value was above diverge_above: it ranks last, out
    assert ev.loc[ev["action"] == "promoted", "member"].tolist() == [1, 2]
    assert ev.set_index("member")["rank"][0] == 4


def test_decide_refuses_a_step_that_is_not_a_decision():
    plan = S.make_plan(spec(kind="halving", min_steps=37), 9, 1000)
    with pytest.raises(ValueError, match="no decision at step 40"):
        S.decide(plan, 40, pd.DataFrame({"member": [0], "value": [1.0]}))


# --- events.csv ----------------------------------------------------------------------------------


def test_events_are_ordered_by_step_bracket_action_member_key_and_read_back_exactly():
    rows = [
        {"step": 300, "round": 2, "member": 5, "action": "perturbed", "key": "optim.lr",
         "old": 0.1, "new": 0.1 + 0.2, "reason": "p"},
        {"step": 300, "round": 2, "member": 5, "action": "perturbed", "key": "l2",
         "old": 1e-05, "new": 1.2e-05, "reason": "p"},
        {"step": 300, "round": 2, "member": 5, "action": "exploited", "parent": 1,
         "value": math.nan, "rank": 8, "cutoff": 0.25, "reason": "copies member 1, says \"x\""},
        {"step": 100, "round": 0, "member": 4, "action": "exploited", "parent": 0,
         "value": math.inf, "rank": 8, "cutoff": 0.5, "reason": "e, with a comma"},
        {"step": 300, "round": 2, "member": 2, "action": "exploited", "parent": 0,
         "value": 0.7, "rank": 7, "cutoff": 0.25, "reason": "e"},
    ]  # fmt: skip
    ev = S.events_frame(rows)
    assert ev[["step", "member", "action", "key"]].values.tolist() == [
        [100, 4, "exploited", None], [300, 2, "exploited", None], [300, 5, "exploited", None],
        [300, 5, "perturbed", "l2"], [300, 5, "perturbed", "optim.lr"],
    ]  # fmt: skip
    text = S.events_text(ev)
    assert text.splitlines()[0] == ",".join(S.EVENT_COLUMNS)
    assert text.splitlines()[1] == '100,0,,4,exploited,0,,,,inf,8,0.5,"e, with a comma"'
    assert text.splitlines()[5] == "300,2,,5,perturbed,,optim.lr,0.1,0.30000000000000004,,,,p"
    back = S.read_events(text)
    assert S.events_text(back) == text
    pd.testing.assert_frame_equal(back, ev)
    # hyperband: rows of two brackets deciding at one step, bracket before action
    hb = S.make_plan(spec(kind="hyperband", min_steps=111), 10, 1000)
    table = pd.DataFrame({"member": range(8), "value": [0.8, 0.1, 0.5, 0.3, 0.2, 0.6, 0.4, 0.7]})
    ev = S.decide(hb, 333, table)
    assert ev[["bracket", "action", "member"]].values.tolist() == [
        [0, "promoted", 1], [0, "promoted", 4], [0, "pruned", 0], [0, "pruned", 2],
        [0, "pruned", 3], [1, "promoted", 6], [1, "pruned", 5], [1, "pruned", 7],
    ]  # fmt: skip
    assert ev["reason"][0].startswith("promoted at bracket 0, rung 1 (step 333): data_loss 0.1")
    text = S.events_text(ev)
    assert text.splitlines()[1].startswith("333,1,0,1,promoted,,,,,0.1,1,0.2,")
    assert S.events_text(S.read_events(text)) == text


def test_read_events_refuses_another_csv():
    with pytest.raises(ValueError, match="not an events.csv"):
        S.read_events("step,loss\n1,2\n")


# --- population-based training -------------------------------------------------------------------

DISTS = {"optim.lr": S.Distribution("loguniform", 0.01, 10.0),
         "regularization.strength": S.Distribution("loguniform", 1e-6, 0.1)}  # fmt: skip


def pbt_plan(**kw) -> S.Plan:
    return S.make_plan(spec(kind="pbt", interval=100, **kw), 8, 1000, distributions=DISTS)


def pbt_table() -> pd.DataFrame:
    return pd.DataFrame({
        "member": range(8),
        "value": [0.5, 0.1, math.nan, 0.3, 0.2, 0.9, 0.4, 0.6],
        "optim.lr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 9.0, 0.8],
        "regularization.strength": [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4],
    })  # fmt: skip


def test_pbt_bottom_copy_donors_drawn_from_the_seed_and_only_copiers_perturbed():
    plan = pbt_plan(seed=7)
    ev = S.decide(plan, 300, pbt_table())
    # K = 8, quantile 0.25: 2 copy. Ranked: 1 (0.1), 4, 3, 6, 0, 7, 5 (0.9), 2 (NaN last)
    ex = ev[ev["action"] == "exploited"]
    assert ex["member"].tolist() == [2, 5] and ex["rank"].tolist() == [8, 7]
    assert set(ex["parent"]) <= {1, 4} and (ex["round"] == 2).all() and (ex["cutoff"] == 0.6).all()
    for m, parent in zip(ex["member"], ex["parent"]):
        rng = np.random.default_rng([7, m, 2])  # the donor is the copier's first draw
        assert parent == [1, 4][int(rng.integers(2))]
    pert = ev[ev["action"] == "perturbed"]
    assert sorted(set(pert["member"])) == [2, 5]  # only copiers
    assert pert.groupby("member")["key"].apply(list).to_dict() == {
        2: ["optim.lr", "regularization.strength"], 5: ["optim.lr", "regularization.strength"]
    }  # fmt: skip
    lr = pbt_table().set_index("member")["optim.lr"]
    for _, r in pert[pert["key"] == "optim.lr"].iterrows():
        parent = int(ex.set_index("member")["parent"][r["member"]])
        assert r["old"] == lr[parent]  # a copier perturbs what it copied
    pd.testing.assert_frame_equal(S.decide(plan, 300, pbt_table()), ev)  # same seed, same rows
    other = S.decide(pbt_plan(seed=8), 300, pbt_table())
    assert not other.equals(ev)
    assert ev["reason"][0].startswith(
        "exploited at round 2 (step 300): data_loss nan ranks last, rank 8/8 (the bottom 2 copy "
        "the top 2); copies member"
    )


def test_pbt_perturbation_by_hand_and_clipped_to_the_bounds():
    plan = pbt_plan(seed=0, perturb=[1000.0], resample_probability=0.0)
    ev = S.decide(plan, 100, pbt_table())
    pert = ev[ev["action"] == "perturbed"].set_index(["member", "key"])
    # every key x 1000 leaves [0.01, 10] or [1e-6, 0.1]: clipped to the upper bound
    assert (pert.xs("optim.lr", level="key")["new"] == 10.0).all()
    assert (pert.xs("regularization.strength", level="key")["new"] == 0.1).all()
    r = pert.xs("optim.lr", level="key").iloc[0]
    assert "x 1000 = " in r["reason"] and r["reason"].endswith(
        "clipped to 10 (loguniform [0.01, 10] bounds)"
    )
    plan = pbt_plan(seed=0, perturb=[0.5], resample_probability=0.0)
    ev = S.decide(plan, 100, pbt_table())
    pert = ev[ev["action"] == "perturbed"]
    assert (pert["new"] == pert["old"] * 0.5).all()  # 0.5 keeps every value inside
    donor = int(ev.loc[ev["action"] == "exploited", "parent"].iloc[0])
    lr = pbt_table()["optim.lr"][donor]
    assert pert["reason"].iloc[0] == (
        f"perturbed at round 0 (step 100): optim.lr {lr:.4g} from member {donor} x 0.5 = "
        f"{lr * 0.5:.4g}"
    )


def test_pbt_resample_draws_inside_the_distribution_and_says_so():
    ev = S.decide(pbt_plan(seed=3, resample_probability=1.0), 500, pbt_table())
    pert = ev[ev["action"] == "perturbed"]
    lr = pert[pert["key"] == "optim.lr"]
    assert ((lr["new"] >= 0.01) & (lr["new"] <= 10.0)).all() and (lr["new"] != lr["old"]).all()
    assert all("resampled from loguniform [0.01, 10] (probability 1)" in s for s in lr["reason"])
    # the draw: fourth of the copier's draws for its first key (donor, u, factor, redraw)
    m = int(lr["member"].iloc[0])
    rng = np.random.default_rng([3, m, 4])
    rng.integers(2), rng.random(), rng.integers(2)
    want = math.exp(math.log(0.01) + (math.log(10.0) - math.log(0.01)) * rng.random())
    assert lr["new"].iloc[0] == want


def test_pbt_copy_count():
    assert S.pbt_count(32, 0.25) == 8
    assert S.pbt_count(10, 0.3) == 3  # not ceil(10 * 0.30000000000000004) = 4
    assert S.pbt_count(3, 0.5) == 1  # at most K // 2
    assert S.pbt_count(1, 0.5) == 0
    assert S.make_plan(spec(kind="pbt", interval=100), 4, 1000).rounds == tuple(
        range(100, 1000, 100)
    )


def test_lineage_follows_the_copies_back_to_a_start():
    rows = [
        {"step": 100, "round": 0, "member": 5, "action": "exploited", "parent": 1, "value": 0.9,
         "rank": 8, "cutoff": 0.5, "reason": "e"},
        {"step": 100, "round": 0, "member": 5, "action": "perturbed", "key": "optim.lr",
         "old": 0.1, "new": 0.12, "reason": "p"},
        {"step": 200, "round": 1, "member": 7, "action": "exploited", "parent": 5, "value": 0.8,
         "rank": 8, "cutoff": 0.5, "reason": "e"},
        {"step": 200, "round": 1, "member": 7, "action": "perturbed", "key": "optim.lr",
         "old": 0.12, "new": 0.096, "reason": "p"},
        {"step": 200, "round": 1, "member": 1, "action": "exploited", "parent": 3, "value": 0.7,
         "rank": 7, "cutoff": 0.5, "reason": "e"},
    ]  # fmt: skip
    ev = S.events_frame(rows)
    lin = S.lineage(ev, 7)
    assert lin[["step", "member", "action", "parent"]].astype(object).values.tolist() == [
        [100, 5, "exploited", 1], [100, 5, "perturbed", pd.NA],
        [200, 7, "exploited", 5], [200, 7, "perturbed", pd.NA],
    ]  # fmt: skip
    assert S.lineage(ev, 3).empty  # never copied: it is its own start


# --- calibration ----------------------------------------------------------------------------------


def test_spearman_by_hand():
    # ranks 1..5 against 2,1,4,3,5: sum d^2 = 1+1+1+1+0 = 4, rho = 1 - 6*4/(5*24) = 0.8
    assert S.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8, abs=1e-15)
    # ties: x ranks 1, 2.5, 2.5, 4; y ranks 1, 3, 2, 4; deviations (-1.5, 0, 0, 1.5) and
    # (-1.5, .5, -.5, 1.5): cov 4.5, var 4.5 and 5: 4.5 / sqrt(22.5) = sqrt(0.9)
    assert S.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9), abs=1e-15)
    assert S.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0, abs=1e-15)
    assert math.isnan(S.spearman([1, 1, 1], [1, 2, 3]))  # no order on one side


def test_calibration_table_auto_min_steps_and_the_rung_it_reads():
    # 4 members, rows at steps 0, 10, 20, 29 (train.steps 30). Final order: a < b < c < d.
    curves = pd.DataFrame(
        {0: [1.0, 0.9, 0.4, 0.1], 1: [1.0, 0.5, 0.5, 0.2],
         2: [1.0, 0.6, 0.6, 0.3], 3: [1.0, 0.7, math.nan, math.nan]},
        index=[0, 10, 20, 29],
    )  # fmt: skip
    cal = S.calibration_table(curves, mode="min")
    assert cal["step"].tolist() == [0, 10, 20, 29]
    # step 0: all tied -> NaN; step 10: ranks 4,1,2,3 vs 1,2,3,4: d = 3,-1,-1,-1, sum d^2 = 12,
    # rho = 1 - 6*12/(4*15) = -0.2; step 20: 0.4, 0.5, 0.6, NaN(last) = 1,2,3,4: rho = 1
    assert math.isnan(cal["spearman"][0])
    assert cal["spearman"][1:].tolist() == pytest.approx([-0.2, 1.0, 1.0], abs=1e-15)
    assert S.auto_min_steps(cal, eta=3, train_steps=30) is None  # 21*3 > 30
    assert S.auto_min_steps(cal, eta=3, train_steps=63) == 21  # the rung after 21 reads row 20
    assert S.rung_correlation(cal, 21) == 1.0 and S.rung_correlation(cal, 20) == pytest.approx(-0.2)
    assert math.isnan(S.rung_correlation(cal, 0))
    long = curves.stack(future_stack=True).rename("data_loss").reset_index()
    long.columns = ["step", "member", "data_loss"]
    pd.testing.assert_frame_equal(
        S.curves_from_metrics(long, "data_loss"), curves, check_names=False
    )


def test_calibration_members_are_drawn_by_the_search_seed_and_never_halved():
    a = S.calibration_members(27, 3, 0)
    assert len(a) == 3 and list(a) == sorted(a) and a == S.calibration_members(27, 3, 0)
    assert a != S.calibration_members(27, 3, 1)
    plan = S.make_plan(spec(kind="halving", min_steps=37, calibrate=3), 27, 1000)
    assert plan.calibration == a
    assert set(plan.brackets[0].members) == set(range(27)) - set(a)
    with pytest.raises(ValueError, match="auto"):
        S.make_plan(spec(kind="halving", min_steps="auto", calibrate=3), 27, 1000)
    auto = S.make_plan(spec(kind="halving", min_steps="auto", calibrate=3), 27, 1000, min_steps=21)
    assert auto.brackets[0].rungs == (21, 63, 189)


# --- the search: block of a sweep file ------------------------------------------------------------


def test_a_sweep_carries_its_search_and_validate_describes_it(tmp_path):
    p = sweep_file(tmp_path, f"random: {{n: 27, seed: 0, params: {LR_L2}}}\n"
                             "search: {kind: halving, min_steps: 37}\n")  # fmt: skip
    s = load_sweep(p)
    assert s.search == spec(kind="halving", min_steps=37)
    res = invoke("validate", p)
    assert res.exit_code == 0, res.output
    assert res.output == (
        f"{p}: ok (sweep 's', 27 members; halving by data_loss (min), eta 3; rungs at 37, 111, "
        "333; 11% of the full sweep's network-steps if nothing diverges)\n"
    )
    res = invoke("sweep", p, "--dry-run", "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    assert res.output.endswith("\n27 members\nsearch: halving by data_loss (min), eta 3; rungs "
                               "at 37, 111, 333; 11% of the full sweep's network-steps if "
                               "nothing diverges\n")  # fmt: skip
    p2 = sweep_file(tmp_path, f"random: {{n: 32, seed: 0, params: {LR_L2}}}\n"
                              "search: {kind: pbt, interval: 100}\n")  # fmt: skip
    assert invoke("validate", p2).output == (
        f"{p2}: ok (sweep 's', 32 members; pbt: 9 rounds (every 100 steps), the bottom 8 copy "
        "the top 8 and perturb 2 keys)\n"
    )
    assert load_sweep(p2).search.mutate is None  # the default: random's uniform/loguniform keys


def test_a_sweep_with_a_search_runs_it_from_the_command_line_and_the_api(tmp_path):
    p = sweep_file(tmp_path, f"random: {{n: 9, seed: 0, params: {LR_L2}}}\n"
                             "search: {kind: halving, min_steps: 5}\n")  # fmt: skip
    res = invoke("sweep", p, "--runs-dir", tmp_path / "runs", "-j", "1", "--set", "train.steps=60")
    assert res.exit_code == 0, res.output
    (folder,) = (tmp_path / "runs").iterdir()
    events = S.read_events((folder / "events.csv").read_text())
    assert events["step"].unique().tolist() == [5, 15]  # 9 -> 3 -> 1; 45 * 3 > 60
    assert "1 completed, 8 pruned" in res.output
    import xorlab

    table = xorlab.sweep(p, runs_dir=tmp_path / "api", jobs=1, overrides=["train.steps=60"])
    assert (table["status"] == "pruned").sum() == 8
    on_disk = pd.read_csv(folder / "summary.csv")
    assert table["steps_done"].tolist() == on_disk["steps_done"].tolist()


RANDOM = f"random: {{n: 6, seed: 0, params: {LR_L2}}}\n"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            "grid: {train.steps: [1000, 500]}\nsearch: {kind: halving, min_steps: 10}",
            "search: needs one train.steps for every member; members 0 and 1 have 1000 and 500",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: auto}",
            "search.min_steps: auto needs calibrate: n, the members trained in full whose "
            "curves place the first rung",
        ),
        (
            RANDOM + "search: {kind: halving}",
            "search.min_steps: halving needs the step of its first rung (37 for 1000 steps and "
            "eta 3), or auto with calibrate",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 334}",
            "search.min_steps: 334 leaves no rung: a rung at r needs r*eta <= train.steps (1000)",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: x}",
            "search.min_steps: must be a whole number >= 1 or auto, got 'x'",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 37, interval: 50}",
            "search.interval: is for pbt only; this search is halving",
        ),
        (
            RANDOM + "search: {kind: pbt, eta: 3}",
            "search.eta: is for halving and hyperband only; this search is pbt",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 37, calibrate: 2}",
            "search.calibrate: needs at least 3 members for a rank correlation (or 0: none)",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 37, calibrate: 6}",
            "search.calibrate: 6 of 6 members leaves none to search",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 37, metric: train_acc}",
            "search.mode: min would keep the members with the lowest train_acc; give mode: max",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 37, metric: test_acc, mode: max}",
            "search.metric: test_acc needs a test set; member 0 has data.test_fraction 0",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 37, metric: acc}",
            "search.metric: must be one of data_loss, loss, reg_loss, train_acc, test_acc, "
            "grad_norm, got 'acc'",
        ),
        (
            RANDOM + "search: {kind: halving, min_steps: 37, patience: 3}",
            "search.patience: unknown search key; allowed: kind, metric, mode, eta, min_steps, "
            "calibrate, interval, quantile, perturb, resample_probability, mutate, seed",
        ),
        (
            RANDOM + "search: {kind: asha}",
            "search.kind: input should be 'halving', 'hyperband' or 'pbt'",
        ),
        (
            RANDOM + "search: {kind: pbt, interval: 1000}",
            "search.interval: 1000 leaves no round: rounds come at multiples of interval below "
            "train.steps (1000)",
        ),
        (
            RANDOM + "search: {kind: pbt, quantile: 0.6}",
            "search.quantile: input should be less than or equal to 0.5",
        ),
        (
            "grid: {optim.lr: [0.1, 0.2]}\nsearch: {kind: pbt}",
            "search.mutate: no key to mutate: pbt mutates the uniform or loguniform keys of "
            "random.params, and this sweep has no `random:`",
        ),
        (
            "random: {n: 4, params: {optim.lr: {uniform: [0.1, 1.0]}, "
            "optim.momentum: {choice: [0.5, 0.9]}}}\nsearch: {kind: pbt, mutate: [optim.momentum]}",
            "search.mutate: optim.momentum is drawn from choice; only uniform and loguniform keys "
            "may mutate",
        ),
        (
            RANDOM + "search: {kind: pbt, mutate: [optim.momentum]}",
            "search.mutate: optim.momentum is not drawn by random.params; pbt mutates uniform or "
            "loguniform keys there",
        ),
        (
            RANDOM + "grid: {model.hidden: [[3], [4]]}\nsearch: {kind: pbt}",
            "search: pbt copies whole training states, so every member needs the same "
            "model.hidden; members 0 and 6 differ ([3] and [4])",
        ),
        (
            "random: {n: 1, params: {optim.lr: {uniform: [0.1, 1.0]}}}\nsearch: {kind: pbt}",
            "search.kind: pbt needs at least 2 members (the bottom copy the top)",
        ),
        (
            RANDOM + "search: {kind: pbt, perturb: [0.8, 0.0]}",
            "search.perturb.1: input should be greater than 0",
        ),
    ],
)
def test_search_rules_are_exit_2_one_line(tmp_path, body, line):
    p = sweep_file(tmp_path, body + "\n")
    for args in (("validate", p), ("sweep", p, "--dry-run", "--runs-dir", tmp_path / "runs")):
        res = invoke(*args)
        assert res.exit_code == 2, res.output
        assert res.output == f"error: {p}: {line}\n"


def test_the_readme_search_example_validates_as_it_says(tmp_path):
    from .conftest import CONFIGS

    readme = (CONFIGS.parent / "README.md").read_text()
    block = next(b.split("\n```", 1)[0] for b in readme.split("```yaml\n")[1:] if "\nsearch:" in b)
    (tmp_path / "xor_h3.yaml").write_bytes((CONFIGS / "xor_h3.yaml").read_bytes())
    (tmp_path / "sweeps").mkdir()
    p = write(tmp_path / "sweeps", block, "adaptive.yaml")
    res = invoke("validate", p)
    assert res.exit_code == 0, res.output
    said = res.output.split("27 members; ", 1)[1].removesuffix(")\n")
    flat = " ".join(readme.split())  # the README's lines wrap anywhere
    assert f"(`{said}`)" in flat
