"""Early stopping and reduce_on_plateau wired into train() and the population engine
(DESIGN.md section 2): cases whose metric sequence is known by hand, and member == solo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xorlab.cli import app
from xorlab.config import validate
from xorlab.population import group_configs, train_population
from xorlab.rundir import FINISHED
from xorlab.train import train

from .conftest import write
from .test_population import assert_batched_equals_alone, variants

runner = CliRunner()

BASE = {
    "data": {"n": 40},
    "model": {"hidden": [4]},
    "optim": {"lr": 1e-6},  # so small that the loss barely moves: every later row is "no better"
    "train": {"steps": 60},
    "plots": {"enabled": False},
}


def config(**sections):
    raw = {k: dict(v) for k, v in BASE.items()}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return validate(raw)


def test_stop_at_row_patience_skips_that_update_and_restores_the_first_row():
    # min_delta 1e9: row 0 improves on inf (best row 0); no later row can (value + 1e9 < best
    # never holds), so the wait is 1, 2, 3 at rows 1, 2, 3 (steps 4, 8, 12 with log_every 4):
    # the stop comes at row 3, step 12; update 12 is not applied, so steps_done = 12
    stop = {"patience": 3, "min_delta": 1e9}
    r = train(config(train={"log_every": 4, "early_stopping": stop}))
    assert (r.status, r.steps_done, r.diverged_at) == ("stopped_early", 12, None)
    assert r.metrics["step"].tolist() == [0, 4, 8, 12]
    # the parameters are those before update 12: a plain run stopped there has them too
    plain = train(config(train={"log_every": 4}), stop_at=12)
    assert all(
        r.final_params[k].tobytes() == plain.final_params[k].tobytes() for k in r.final_params
    )
    # and its rows are an uninterrupted run's first four, but for row 12's update ratio, which
    # stays empty as update 12 was never applied
    full = train(config(train={"log_every": 4}))
    ratio = [c for c in r.metrics if c.startswith("update_ratio")]
    assert ratio and r.metrics[ratio].iloc[-1].isna().all()
    assert r.metrics.drop(columns=ratio).to_csv() == full.metrics.drop(columns=ratio)[:4].to_csv()
    assert r.metrics[ratio][:3].to_csv() == full.metrics[ratio][:3].to_csv()
    # restore_best: the best row is row 0, so the final parameters are the initial ones
    r = train(config(train={"log_every": 4, "early_stopping": {**stop, "restore_best": True}}))
    assert (r.status, r.steps_done) == ("stopped_early", 12)
    assert all(r.final_params[k].tobytes() == r.init_params[k].tobytes() for k in r.final_params)
    assert r.final["loss"] == pytest.approx(r.metrics["loss"].iloc[0], rel=0, abs=0)


def test_max_mode_on_a_flat_accuracy_and_restore_best_of_a_later_row():
    # train_acc stays put at lr 1e-6: row 0 beats -inf, rows 1 and 2 equal it (not > best):
    # patience 2 stops at row 2, step 2
    r = train(config(train={"early_stopping": {"metric": "train_acc", "mode": "max",
                                               "patience": 2}}))  # fmt: skip
    assert len(set(r.metrics["train_acc"])) == 1
    assert (r.status, r.steps_done, r.metrics["step"].tolist()) == ("stopped_early", 2, [0, 1, 2])
    # loss, min_delta 0: the loss falls on every row, so nothing stops before the end
    r = train(config(train={"early_stopping": {"patience": 1}}))
    assert (r.status, r.steps_done, len(r.metrics)) == ("completed", 60, 60)


def test_restore_best_keeps_the_best_rows_parameters():
    # at lr 2 this net's loss jumps about; the row with the lowest loss up to the stop is the
    # best, and restore_best ends with the parameters logged at that row (row 12 of 17)
    cfg = config(data={"n": 60}, optim={"lr": 2.0},
                 model={"hidden": [6], "activation": "relu", "loss": "cross_entropy",
                        "bias": True},
                 train={"steps": 200, "log_every": 5,
                        "early_stopping": {"patience": 4, "restore_best": True}})  # fmt: skip
    r = train(cfg)
    assert (r.status, r.steps_done, len(r.metrics)) == ("stopped_early", 80, 17)
    losses = r.metrics["loss"].to_numpy()
    best_i = int(np.argmin(losses))
    assert len(losses) - 1 - best_i == 4  # four rows without improvement after the best
    best_step = int(r.metrics["step"].iloc[best_i])
    at_best = train(cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"early_stopping": None})}), stop_at=best_step)  # fmt: skip
    assert all(r.final_params[k].tobytes() == at_best.final_params[k].tobytes()
               for k in r.final_params)  # fmt: skip


def plateau(**kw):
    return {"kind": "reduce_on_plateau", "factor": 0.5, "patience": 2, "cooldown": 1,
            "threshold": 0.5, **kw}  # fmt: skip


def test_reduce_on_plateau_lowers_lr_from_the_next_update_by_hand():
    # threshold 0.5: row 0 is the best (< inf); no later row goes below best * 0.5, so each is
    # bad. patience 2, cooldown 1, factor 0.5:
    # row 1 bad 1, row 2 bad 2, row 3 bad 3 > 2: lr 1e-6 -> 5e-7 (from update 4), cooldown 1;
    # row 4 cooldown: bad 0; row 5 bad 1, row 6 bad 2, row 7 bad 3: 2.5e-7 from update 8; ...
    r = train(config(optim={"schedule": plateau()}, train={"steps": 12}))
    assert r.metrics["lr"].tolist() == [1e-6] * 4 + [5e-7] * 4 + [2.5e-7] * 4
    # the rows counted are the logged ones: with log_every 2, row k is step 2k, and a lower lr
    # applies from the update after its row (unlogged steps included)
    r = train(config(optim={"schedule": plateau()}, train={"steps": 24, "log_every": 2}))
    assert r.metrics["step"].tolist() == list(range(0, 24, 2)) + [23]
    # row 11 (step 22) lowers it again, for update 23 (the last row)
    assert r.metrics["lr"].tolist() == [1e-6] * 4 + [5e-7] * 4 + [2.5e-7] * 4 + [1.25e-7]
    # lr_min floors the reductions: max(1e-6 * 0.25, 4e-7) = 4e-7, and no change stays put
    r = train(config(optim={"schedule": plateau(lr_min=4e-7, cooldown=0)}, train={"steps": 12}))
    assert r.metrics["lr"].tolist() == [1e-6] * 4 + [5e-7] * 3 + [4e-7] * 5


def test_plateau_updates_use_the_lowered_lr_on_unlogged_steps():
    # log_every 3: rows at steps 0, 3, 6, 9, 12 and 14 (the last). threshold 10: min mode needs
    # value < best * (1 - 10), which never holds (inf * -9 = -inf on row 0), so every row is bad
    # and, with patience 0, halves lr from the next update on: a hand-written loop of plain SGD
    # steps that halves its lr after steps 0, 3, 6, ... must give the same bits
    cfg = config(optim={"lr": 0.5, "schedule": plateau(patience=0, cooldown=0, threshold=10.0)},
                 train={"steps": 15, "log_every": 3})  # fmt: skip
    r = train(cfg)
    assert r.metrics["lr"].tolist() == [0.5 * 0.5**k for k in range(6)]
    from xorlab import nn, optim
    from xorlab.train import build_data, net_spec

    spec, data = net_spec(cfg), build_data(cfg)
    params = nn.init_params(spec, cfg.model.init, np.random.RandomState(cfg.seed), "float64")
    lr = 0.5
    for t in range(15):
        grads = nn.backward(params, nn.forward(params, data.X_train, spec)[1], data.y_train, spec,
                            data.n_train)  # fmt: skip
        optim.update(optim.OptimSpec(), params, grads, {}, lr, t)
        if t % 3 == 0:
            lr *= 0.5
    assert all(r.final_params[k].tobytes() == params[k].tobytes() for k in params)


SPREAD = [
    {"seed": 0},
    {"seed": 1, "optim.lr": 0.3, "train.early_stopping": None},
    {"seed": 2, "optim.lr": 0.8, "train.early_stopping": {"patience": 2, "min_delta": 0.002}},
    {"seed": 3, "train.early_stopping": {"patience": 1, "min_delta": 0.01, "restore_best": True}},
    {"seed": 4, "train.early_stopping": {"metric": "test_acc", "mode": "max", "patience": 3}},
    {"seed": 5, "optim.lr": 1e6, "train.diverge_above": 2.0},  # diverges
]


@pytest.mark.parametrize("minibatch", [False, True])
def test_members_stop_in_the_stack_as_they_do_alone(minibatch):
    extra = {"batch_size": 16, "shuffle": True} if minibatch else {}
    base = config(data={"n": 60, "test_fraction": 0.25},
                  model={"hidden": [6], "activation": "relu", "loss": "cross_entropy",
                         "bias": True},
                  optim={"lr": 0.5},
                  train={"steps": 80, "log_every": 3, **extra,
                         "early_stopping": {"patience": 3, "min_delta": 0.001}})  # fmt: skip
    cfgs = variants(base, SPREAD)
    assert group_configs(cfgs, max_k=16) == [list(range(len(cfgs)))]
    results = assert_batched_equals_alone(cfgs)
    statuses = [r.status for r in results]
    assert "stopped_early" in statuses and "completed" in statuses and "diverged" in statuses
    assert statuses[1] == "completed"  # no early stopping: it trains on beside the stopped ones
    for r in results:
        if r.status == "stopped_early":
            assert r.steps_done == r.metrics["step"].iloc[-1] < 80


def test_plateau_members_in_the_stack_equal_solo():
    base = config(data={"n": 60}, model={"hidden": [5]},
                  optim={"kind": "momentum", "lr": 2.0,
                         "schedule": plateau(patience=1, cooldown=0, threshold=0.01)},
                  train={"steps": 80, "log_every": 2})  # fmt: skip
    cfgs = variants(base, [
        {"seed": 0},
        {"seed": 1, "optim.schedule.factor": 0.1, "optim.schedule.patience": 3},
        {"seed": 2, "optim.schedule.metric": "train_acc", "optim.schedule.mode": "max",
         "optim.schedule.warmup": 6},
        {"seed": 3, "train.early_stopping": {"patience": 5}, "optim.schedule.lr_min": 1.0},
    ])  # fmt: skip
    results = assert_batched_equals_alone(cfgs)
    lrs = [sorted(set(r.metrics["lr"]), reverse=True) for r in results]
    assert all(len(x) > 1 for x in lrs[:2]), lrs  # each lowered its own lr at its own rows
    assert lrs[0] != lrs[1]
    assert min(lrs[3]) == 1.0  # floored at its lr_min
    # and a reduction in one member leaves another's lr alone: the same member alone
    assert train_population(cfgs[:2])[1].metrics.to_csv() == results[1].metrics.to_csv()


def test_stopped_early_is_a_finished_status():
    assert "stopped_early" in FINISHED


def test_test_acc_needs_a_test_set_exit_2_one_line(tmp_path: Path):
    runs = tmp_path / "runs"
    for text, key in [
        ("train: {early_stopping: {metric: test_acc}}", "train.early_stopping.metric"),
        (
            "optim: {schedule: {kind: reduce_on_plateau, metric: test_acc}}\ndata: {n: 4, "
            "test_fraction: 0.2}",
            "optim.schedule.metric",
        ),
        ("train: {early_stopping: {patience: -1}}", "train.early_stopping.patience"),
        ("optim: {schedule: {kind: reduce_on_plateau, factor: 1.5}}", "optim.schedule.factor"),
    ]:
        cfg = write(tmp_path, text)
        res = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(runs)])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {cfg}: {key}: "), res.output
        assert not runs.exists()
    msg = "test_acc needs a test set (a data.test_fraction that holds out a row)"
    cfg = write(tmp_path, "train: {early_stopping: {metric: test_acc}}")
    assert msg in runner.invoke(app, ["validate", str(cfg)]).output


def test_train_writes_stopped_early_and_steps_done(tmp_path: Path):
    text = "train: {steps: 50, early_stopping: {patience: 2, min_delta: 1.0}}\n"
    cfg = write(tmp_path, "data: {n: 40}\noptim: {lr: 1.0e-6}\nplots: {enabled: false}\n" + text)
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(runs), "-q"])
    assert res.exit_code == 0, res.output
    (run,) = runs.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["steps_done"]) == ("stopped_early", 2)
    assert (run / "metrics.csv").read_text().count("\n") == 1 + 3  # header, rows 0, 1, 2


def test_a_sweep_records_stopped_early_and_resume_does_not_rerun_it(tmp_path: Path):
    write(tmp_path, "data: {n: 40}\nmodel: {hidden: [3]}\noptim: {lr: 1.0e-6}\n"
                    "train: {steps: 30, early_stopping: {patience: 2, min_delta: 1.0}}\n",
          "base.yaml")  # fmt: skip
    grid = "grid: {train.early_stopping.patience: [2, 4]}\n"
    sweep = write(tmp_path, "base: base.yaml\nset: {plots.enabled: false}\n" + grid, "s.yaml")
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["sweep", str(sweep), "-q", "-j", "1", "--runs-dir", str(runs)])
    assert res.exit_code == 0, res.output
    (folder,) = runs.iterdir()
    import pandas as pd

    summary = pd.read_csv(folder / "summary.csv")
    assert summary["status"].tolist() == ["stopped_early", "stopped_early"]
    metrics = pd.read_parquet(folder / "metrics")
    assert metrics.groupby("member")["step"].max().tolist() == [2, 4]  # rows 0..patience
    before = {f: f.stat().st_mtime_ns for f in folder.rglob("*")}
    res = runner.invoke(app, ["sweep", "--resume", str(folder), "-q"])
    assert res.exit_code == 0, res.output
    assert before == {f: f.stat().st_mtime_ns for f in folder.rglob("*")}
