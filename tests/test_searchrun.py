"""The adaptive search's executor (xorlab.searchrun): halving, Hyperband and PBT carried out on
stacked populations, checked against sweeps run without the search and the pure policies."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xorlab import search as S
from xorlab.members import open_sweep, read_metrics
from xorlab.searchrun import run
from xorlab.stack import results, start
from xorlab.stepping import advance
from xorlab.sweep import load_sweep

from .conftest import write

BASE = """\
name: cen
data: {kind: xor, n: 60}
model: {hidden: [3]}
optim: {lr: 1.0}
train: {steps: 120}
plots: {enabled: false}
"""

RANDOM = """\
random:
  n: 27
  seed: 3
  params:
    optim.lr: {loguniform: [0.01, 10]}
    regularization.strength: {loguniform: [1.0e-6, 0.1]}
"""


def _sweep(tmp_path: Path, search: str | None, name: str = "s.yaml", base: str = BASE):
    tmp_path.mkdir(parents=True, exist_ok=True)
    write(tmp_path, base, "base.yaml")
    text = "base: base.yaml\n" + RANDOM + (f"search: {search}\n" if search else "")
    return load_sweep(write(tmp_path, text, name))


def _run(tmp_path: Path, search: str | None, sub: str, **kw):
    return run(_sweep(tmp_path, search), tmp_path / sub, **kw)


def _weights(folder: Path) -> dict[int, dict[str, np.ndarray]]:
    return {m.index: m.params()[1] for m in open_sweep(folder).all()}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The same 27 members trained in full, without the search: the ground truth."""
    tmp = tmp_path_factory.mktemp("full")
    out = _run(tmp, None, "runs")
    return out.folder, read_metrics(out.folder)


def test_halving_decisions_are_the_policy_replayed_on_the_full_sweeps_curves(tmp_path, full):
    folder, metrics = full
    out = _run(tmp_path, "{kind: halving, eta: 3, min_steps: 4}", "runs")
    plan = S.make_plan(out.sweep.search, 27, 120)
    assert plan.brackets[0].rungs == (4, 12, 36)  # r * eta <= 120 (DESIGN.md's example)
    events = (out.folder / "events.csv").read_text()
    # the survivors at every rung are exactly the top ceil(n/eta) by the full sweep's metric on
    # the last logged row before the rung: the offline replay on full curves gives the same bytes
    assert events == S.events_text(S.replay(plan, metrics[["member", "step", "data_loss"]]))
    ev = S.read_events(events)
    promoted = ev.groupby("step")["action"].apply(lambda a: (a == "promoted").sum())
    assert promoted.tolist() == [9, 3, 1]
    summary = out.summary.set_index("index")
    done = S.steps_done(plan, ev)
    assert summary["steps_done"].to_dict() == done
    assert (summary["status"] == "pruned").sum() == 26
    assert summary.loc[summary["steps_done"] == 120, "status"].tolist() == ["completed"]


def test_a_survivors_metrics_and_weights_equal_its_uninterrupted_training(tmp_path, full):
    folder, metrics = full
    out = _run(tmp_path, "{kind: halving, eta: 3, min_steps: 4}", "runs")
    mine = read_metrics(out.folder)
    summary = out.summary.set_index("index")
    for m, steps in summary["steps_done"].items():
        a = mine[mine["member"] == m].reset_index(drop=True)
        b = metrics[(metrics["member"] == m) & (metrics["step"] < steps)].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)  # bit for bit, up to its rung
    winner = int(summary.index[summary["status"] == "completed"][0])
    for k, v in _weights(out.folder)[winner].items():
        assert np.array_equal(v, _weights(folder)[winner][k])


def test_hyperband_brackets_each_halve_their_own_members(tmp_path, full):
    folder, metrics = full
    out = _run(tmp_path, "{kind: hyperband, eta: 3, min_steps: 4}", "runs")
    plan = S.make_plan(out.sweep.search, 27, 120)
    events = (out.folder / "events.csv").read_text()
    assert events == S.events_text(S.replay(plan, metrics[["member", "step", "data_loss"]]))
    summary = out.summary
    assert "bracket" in summary and summary["bracket"].notna().all()
    assert summary.groupby("bracket")["index"].count().tolist() == [
        len(b.members) for b in plan.brackets
    ]


def test_jobs_1_jobs_2_and_dask_agree(tmp_path):
    search = "{kind: halving, eta: 3, min_steps: 4}"
    outs = [
        _run(tmp_path / "a", search, "runs", jobs=1),
        _run(tmp_path / "b", search, "runs", jobs=2),
        _run(tmp_path / "c", search, "runs", jobs=2, executor="dask"),
    ]
    texts = [(o.folder / "events.csv").read_bytes() for o in outs]
    assert texts[0] == texts[1] == texts[2]
    cols = [c for c in outs[0].summary if c not in ("wall_s",)]
    for o in outs[1:]:
        pd.testing.assert_frame_equal(o.summary[cols], outs[0].summary[cols], check_exact=True)
        w0, w = _weights(outs[0].folder), _weights(o.folder)
        assert all(np.array_equal(w[i][k], w0[i][k]) for i in w0 for k in w0[i])


def test_ctrl_c_in_a_rung_then_resume_equals_a_search_never_stopped(tmp_path):
    search = "{kind: halving, eta: 3, min_steps: 4}"
    whole = _run(tmp_path / "a", search, "runs")

    def on_event(progress):  # Ctrl-C once some members of the second rung are done
        if progress.done >= 20:
            raise KeyboardInterrupt

    sweep = _sweep(tmp_path / "b", search)
    cut = run(sweep, tmp_path / "b" / "runs", on_event=on_event)
    assert cut.interrupted
    assert set(cut.summary["status"]) <= {"pruned", "interrupted"}
    again = run(sweep, tmp_path / "b" / "runs", resume_dir=cut.folder)
    assert not again.interrupted
    assert (again.folder / "events.csv").read_bytes() == (whole.folder / "events.csv").read_bytes()
    cols = [c for c in whole.summary if c != "wall_s"]
    pd.testing.assert_frame_equal(again.summary[cols], whole.summary[cols], check_exact=True)
    w0, w = _weights(whole.folder), _weights(again.folder)
    assert sorted(w) == list(range(27))
    assert all(np.array_equal(w[i][k], w0[i][k]) for i in w0 for k in w0[i])
    m = read_metrics(again.folder)
    assert not m.duplicated(["member", "step"]).any()  # nothing stored twice


PBT = "{kind: pbt, interval: 30, quantile: 0.25, seed: 1}"


def test_pbt_copies_the_donors_whole_state_and_perturbs_its_keys(tmp_path):
    out = _run(tmp_path, PBT, "runs")
    ev = S.read_events((out.folder / "events.csv").read_text())
    assert sorted(set(ev["step"])) == [30, 60, 90]
    q = S.pbt_count(27, 0.25)
    assert (ev["action"] == "exploited").groupby(ev["step"]).sum().tolist() == [q, q, q]
    summary = out.summary.set_index("index")
    assert (summary["steps_done"] == 120).all() and summary["parent"].notna().any()
    # replay one copier's last copy by hand: the donor's state at the round, the new keys, on
    copies = ev[ev["action"] == "exploited"]
    last = copies[copies["step"] == 90].iloc[0]
    m, donor = int(last["member"]), int(last["parent"])
    moves = ev[(ev["member"] == m) & (ev["step"] == 90) & (ev["action"] == "perturbed")]
    new = dict(zip(moves["key"], moves["new"]))
    assert set(new) == {"optim.lr", "regularization.strength"}
    assert summary.loc[m, "optim.lr"] == new["optim.lr"]
    mine = read_metrics(out.folder)
    rows = mine[(mine["member"] == m) & (mine["step"] >= 90)].reset_index(drop=True)
    assert rows["lr"].iloc[0] == new["optim.lr"]
    # the donor's own rows up to 90 were logged by the state the copier took
    d_rows = mine[(mine["member"] == donor) & (mine["step"] < 90)]
    assert len(d_rows) == 90


def test_pbt_runs_the_same_with_two_jobs(tmp_path):
    a = _run(tmp_path / "a", PBT, "runs")
    b = _run(tmp_path / "b", PBT, "runs", jobs=2)
    assert (a.folder / "events.csv").read_bytes() == (b.folder / "events.csv").read_bytes()
    wa, wb = _weights(a.folder), _weights(b.folder)
    assert all(np.array_equal(wa[i][k], wb[i][k]) for i in wa for k in wa[i])


def test_segments_give_the_bits_of_one_go_whatever_the_group(tmp_path):
    sweep = _sweep(tmp_path, None)
    configs = [m.config for m in sweep.members[:6]]
    whole = results((lambda n: (advance(n, 120), n)[1])(start(configs)))
    nets = start(configs)
    advance(nets, 7)
    advance(nets[:2], 50)  # re-formed groups: two, then the other four, then each alone
    advance(nets[2:], 50)
    for net in nets:
        advance([net], 120)
    parts = results(nets)
    for a, b in zip(whole, parts):
        pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
        assert all(np.array_equal(a.final_params[k], b.final_params[k]) for k in a.final_params)


def test_calibration_writes_the_rank_correlations_and_warns_below_trust(tmp_path):
    out = _run(tmp_path, "{kind: halving, eta: 3, min_steps: 2, calibrate: 6}", "runs")
    cal = pd.read_csv(out.folder / "calibration.csv")
    assert list(cal.columns) == ["step", "spearman"] and len(cal) == 120
    assert math.isclose(cal["spearman"].iloc[-1], 1.0)
    summary = out.summary.set_index("index")
    cal_members = summary.index[summary["calibration"]].tolist()
    assert len(cal_members) == 6 and (summary.loc[cal_members, "steps_done"] == 120).all()
    first = S.rung_correlation(cal, 2)
    warned = any(w.startswith("warning:") for w in out.warnings)
    assert warned == (first < S.TRUST)


def test_min_steps_auto_places_the_first_rung_where_the_ranks_reach_trust(tmp_path):
    out = _run(tmp_path, "{kind: halving, eta: 3, min_steps: auto, calibrate: 8}", "runs")
    cal = pd.read_csv(out.folder / "calibration.csv")
    first = S.auto_min_steps(cal, 3, 120)
    ev = S.read_events((out.folder / "events.csv").read_text()) if first else None
    if first is None:
        assert not (out.folder / "events.csv").exists()
    else:
        assert int(ev["step"].min()) == first


def test_export_of_a_pruned_member_is_the_run_its_config_trains(tmp_path):
    from xorlab.api import load_config
    from xorlab.members import export_member
    from xorlab.rundir import result_files
    from xorlab.train import train

    out = _run(tmp_path, "{kind: halving, eta: 3, min_steps: 4}", "runs")
    summary = out.summary.set_index("index")
    m = int(summary.index[summary["steps_done"] == 12][0])
    _, folder = export_member(out.folder, str(m), tmp_path / "exp")
    cfg = load_config(folder / "config.yaml")
    assert cfg.train.steps == 12
    assert '"status": "pruned"' in (folder / "summary.json").read_text()
    again = result_files(train(cfg))  # what `xorlab train` of its config.yaml writes
    for name in ("metrics.csv", "final.npz", "init.npz", "data.npz"):
        assert (folder / name).read_bytes() == again[name], name


def test_export_of_a_pbt_member_replays_its_lineage_to_the_sweeps_weights(tmp_path):
    from xorlab.members import export_member

    out = _run(tmp_path, PBT, "runs")
    ev = S.read_events((out.folder / "events.csv").read_text())
    copies = ev[ev["action"] == "exploited"]
    m = int(copies[copies["step"] == 90]["member"].iloc[0])
    _, folder = export_member(out.folder, str(m), tmp_path / "exp")
    lineage = S.read_events((folder / "lineage.csv").read_text())
    assert lineage.equals(S.lineage(ev, m))
    assert lineage["step"].max() == 90
    final = dict(np.load(folder / "final.npz"))
    stored = _weights(out.folder)[m]
    assert all(np.array_equal(final[k], stored[k]) for k in stored)
    exported = pd.read_csv(folder / "metrics.csv")
    mine = read_metrics(out.folder)
    after = mine[(mine["member"] == m) & (mine["step"] >= 90)].drop(columns="member")
    tail = exported[exported["step"] >= 90].reset_index(drop=True)
    assert np.array_equal(tail["loss"].to_numpy(), after["loss"].to_numpy())
    cfg = (folder / "config.yaml").read_text()
    lr = float(out.summary.set_index("index").loc[m, "optim.lr"])
    assert f"lr: {lr!r}" in cfg
    assert lr == lineage[lineage["key"] == "optim.lr"]["new"].iloc[-1]


def test_runs_and_diagnose_understand_a_pruned_member(tmp_path):
    import json

    from typer.testing import CliRunner

    from xorlab.cli import app

    out = _run(tmp_path, "{kind: halving, eta: 3, min_steps: 4}", "runs")
    runner = CliRunner()
    res = runner.invoke(app, ["runs", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    assert "1 completed, 26 pruned" in res.output and "damaged" not in res.output
    label = out.sweep.members[0].label
    res = runner.invoke(app, ["diagnose", str(out.folder / "members" / label), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    ev = S.read_events((out.folder / "events.csv").read_text())
    assert info["search"] == ev.loc[ev["member"] == 0, "reason"].tolist()
    assert info["search"][-1].startswith("pruned at rung")
    assert info["sharpness"]["source"] == "replayed"  # the member's config trains as far as it went


EDGY = BASE.replace("train: {steps: 120}", "train: {steps: 120, diverge_above: 0.2563, "
                    "early_stopping: {metric: loss, patience: 10, min_delta: 0.0002}}")  # fmt: skip


@pytest.mark.parametrize("kind", ["halving", "hyperband"])
def test_members_that_diverge_or_stop_early_are_decided_as_on_full_curves(tmp_path, kind):
    full = run(_sweep(tmp_path / "full", None, base=EDGY), tmp_path / "full" / "runs")
    statuses = full.summary["status"].value_counts().to_dict()
    assert statuses.get("diverged", 0) >= 2 and statuses.get("stopped_early", 0) >= 1, statuses
    metrics = read_metrics(full.folder)
    pairs = zip(full.summary["index"], full.summary["diverged_at"])
    diverged_at = {int(i): int(d) for i, d in pairs if not pd.isna(d)}
    out = run(_sweep(tmp_path / "s", f"{{kind: {kind}, eta: 3, min_steps: 4}}", base=EDGY),
              tmp_path / "s" / "runs")  # fmt: skip
    plan = S.make_plan(out.sweep.search, 27, 120)
    last_row = metrics.groupby("member")["step"].max()
    early = full.summary.loc[full.summary["status"] == "stopped_early", "index"]
    stopped_at = {int(i): int(last_row[i]) for i in early}  # stopped at row s: rows 0..s
    replayed = S.replay(plan, metrics[["member", "step", "data_loss"]], diverged_at=diverged_at,
                        stopped_at=stopped_at)  # fmt: skip
    assert (out.folder / "events.csv").read_text() == S.events_text(replayed)
    summary = out.summary.set_index("index")
    ev = S.read_events((out.folder / "events.csv").read_text())
    for i, status in full.summary.set_index("index")["status"].items():
        end = diverged_at.get(i, stopped_at.get(i))
        pruned_at = ev.loc[(ev["member"] == i) & (ev["action"] == "pruned"), "step"]
        if end is not None and (pruned_at.empty or end < int(pruned_at.iloc[0])):
            assert summary.loc[i, "status"] == status, i  # it ended first: never relabelled
        if i in stopped_at:  # done, so never ranked after it stopped
            assert (ev.loc[ev["member"] == i, "step"] <= stopped_at[i]).all(), i
    mine = read_metrics(out.folder)
    for i, steps in summary["steps_done"].items():  # bit for bit the full sweep's rows, so far
        a = mine[mine["member"] == i].reset_index(drop=True)
        b = metrics[(metrics["member"] == i) & (metrics["step"] <= steps)].reset_index(drop=True)
        b = b[b["step"] < steps] if summary.loc[i, "status"] == "pruned" else b
        pd.testing.assert_frame_equal(a, b.reset_index(drop=True), check_exact=True)


def test_progress_json_and_the_sweeps_own_display_show_the_search_stage(tmp_path):
    import json

    from xorlab.progress import stage_text

    seen = []
    out = run(_sweep(tmp_path, "{kind: halving, eta: 3, min_steps: 4}"), tmp_path / "runs",
              on_event=lambda p: seen.append(p.stage))  # fmt: skip
    assert seen[0] == "halving: rung 0 at step 4"
    assert "halving: rung 2 at step 36" in seen
    assert seen[-1] == "halving: after the last rung, to step 120"
    doc = json.loads((out.folder / "progress.json").read_text())
    plan = S.make_plan(out.sweep.search, 27, 120)
    spent = int(out.summary["steps_done"].sum())
    assert doc["finished"] and doc["counts"] == {"completed": 1, "pruned": 26}
    assert doc["network_steps"]["planned"] == S.planned_network_steps(plan) == spent
    assert doc["network_steps"]["done"] == spent
    assert stage_text(doc["stage"]) == seen[-1]
    pbt = run(_sweep(tmp_path / "p", PBT), tmp_path / "p" / "runs")
    doc = json.loads((pbt.folder / "progress.json").read_text())
    ev = S.read_events((pbt.folder / "events.csv").read_text())
    last = ev[ev["action"] == "exploited"].groupby("member")["parent"].last()
    parents = {b["index"]: b["parent"] for b in doc["best"]}
    assert all(p == (int(last[i]) if i in last else None) for i, p in parents.items())
    assert stage_text({"kind": "pbt", "step": 400, "round": 3}) == "pbt: round 3 at step 400"


def test_a_search_draws_late_only_members_a_config_can_train_again(tmp_path):
    from xorlab.executors import plot_sample

    base = BASE.replace("plots: {enabled: false}", "plots: {enabled: true, gif_frames: 0}")
    out = run(_sweep(tmp_path, "{kind: halving, eta: 3, min_steps: 4}", base=base),
              tmp_path / "runs")  # fmt: skip
    drawn = {int(p.name.split("-")[0]) for p in (out.folder / "members").iterdir()
             if (p / "plots" / "panel.png").exists()}  # fmt: skip
    sample = plot_sample(range(27), 27)
    late = drawn - sample
    status = out.summary.set_index("index")["status"]
    assert sample <= drawn and late and all(status[i] == "completed" for i in late)


def test_a_resume_of_a_finished_search_trains_nothing(tmp_path, monkeypatch):
    from xorlab import executors

    out = _run(tmp_path, "{kind: halving, eta: 3, min_steps: 4}", "runs")
    before = {p.name: p.read_bytes() for p in out.folder.iterdir() if p.is_file()}

    def no_training(task):
        raise AssertionError("a finished search trained again")

    monkeypatch.setattr(executors, "train_segment", no_training)
    again = run(out.sweep, tmp_path / "runs", resume_dir=out.folder)
    assert not again.interrupted and again.ran == []
    assert {p.name: p.read_bytes() for p in out.folder.iterdir() if p.is_file()} == before
    assert (again.summary["status"] == "pruned").sum() == 26
