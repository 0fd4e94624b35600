"""The trainer: deterministic, metrics as the contract says, divergence a result."""

from __future__ import annotations

import numpy as np
import pytest

from xorlab import nn
from xorlab.config import validate
from xorlab.train import frame_steps, net_spec, train

BASE = {"data": {"n": 60}, "model": {"hidden": [5]}, "optim": {"lr": 0.5}, "train": {"steps": 40}}


def cfg_with(**sections):
    raw = {k: dict(v) for k, v in BASE.items()}
    for section, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return validate(raw)


def test_same_config_same_numbers():
    cfg = cfg_with(train={"batch_size": 16, "shuffle": True})
    a, b = train(cfg), train(cfg)
    assert a.metrics.to_csv() == b.metrics.to_csv()
    for k in a.final_params:
        np.testing.assert_array_equal(a.final_params[k], b.final_params[k])
    c = train(cfg_with(train={"batch_size": 16, "shuffle": True}, seed=1))
    assert a.metrics.to_csv() != c.metrics.to_csv()


def test_metrics_row_describes_parameters_before_the_update():
    cfg = cfg_with(regularization={"kind": "l2", "strength": 0.1}, model={"bias": True})
    r = train(cfg)
    spec = net_spec(cfg)
    out, cache = nn.forward(r.init_params, r.data.X_train, spec)
    row0 = r.metrics.iloc[0]
    assert row0["step"] == 0 and row0["epoch"] == 0
    assert row0["data_loss"] == pytest.approx(float(nn.data_loss(cache, r.data.y_train, spec)))
    reg = 0.1 / (2 * 60) * sum((r.init_params[k] ** 2).sum() for k in ("W1", "W2"))
    assert row0["reg_loss"] == pytest.approx(reg)
    assert row0["loss"] == pytest.approx(row0["data_loss"] + row0["reg_loss"])
    assert row0["train_acc"] == pytest.approx(nn.accuracy(out, r.data.y_train.argmax(1)))
    assert row0["weight_norm_W1"] == pytest.approx(np.linalg.norm(r.init_params["W1"]))
    g = nn.backward(r.init_params, cache, r.data.y_train, spec)
    assert row0["grad_norm_W2"] == pytest.approx(np.linalg.norm(g["W2"]))
    total = np.sqrt(sum((v**2).sum() for v in g.values()))
    assert row0["grad_norm"] == pytest.approx(total)
    assert list(r.metrics.columns) == [
        "step", "epoch", "lr", "loss", "data_loss", "reg_loss", "train_acc", "grad_norm",
        "clipped", "grad_norm_W1", "grad_norm_b1", "grad_norm_W2", "grad_norm_b2",
        "weight_norm_W1", "weight_norm_b1", "weight_norm_W2", "weight_norm_b2",
    ]  # fmt: skip


def test_full_batch_sgd_is_the_plain_loop():
    """Two steps by hand: theta -= lr * grad, from the same init."""
    cfg = cfg_with(train={"steps": 2}, regularization={"kind": "none"})
    r = train(cfg)
    spec = net_spec(cfg)
    p = {k: v.copy() for k, v in r.init_params.items()}
    for _ in range(2):
        _, cache = nn.forward(p, r.data.X_train, spec)
        g = nn.backward(p, cache, r.data.y_train, spec)
        p = {k: p[k] - 0.5 * g[k] for k in p}
    for k in p:
        np.testing.assert_allclose(r.final_params[k], p[k], rtol=1e-13)


def test_log_every_keeps_the_last_step():
    r = train(cfg_with(train={"steps": 25, "log_every": 10}))
    assert r.metrics["step"].tolist() == [0, 10, 20, 24]


def test_minibatches_in_order_and_epochs():
    r = train(cfg_with(train={"steps": 9, "batch_size": 25}))  # 60 rows: batches of 25, 25, 10
    assert r.metrics["epoch"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert r.steps_done == 9


def test_test_accuracy_column():
    r = train(cfg_with(data={"test_fraction": 0.25}))
    assert "test_acc" in r.metrics and r.final["test_acc"] is not None
    assert r.data.n_test == 15


def test_divergence_is_a_result_not_an_exception():
    cfg = validate(
        {
            "model": {"hidden": [50], "activation": "relu", "loss": "cross_entropy", "bias": True},
            "optim": {"lr": 1e6},
            "train": {"steps": 200},
        }
    )
    r = train(cfg)  # RuntimeWarnings are errors in this test suite
    assert r.status == "diverged" and r.diverged_at is not None
    assert r.steps_done == r.diverged_at < 200
    assert r.metrics["step"].iloc[-1] == r.diverged_at
    last = r.metrics.iloc[-1]
    assert not np.isfinite(last["loss"]) or not np.isfinite(last["grad_norm"])


def test_diverge_above_stops_the_run():
    r = train(cfg_with(train={"diverge_above": 0.01, "steps": 50}))
    assert r.status == "diverged" and r.diverged_at == 0 and r.steps_done == 0


def test_interrupt_keeps_what_was_done():
    def on_step(done, loss, acc):
        if done >= 10:
            raise KeyboardInterrupt

    r = train(cfg_with(train={"steps": 40}), on_step=on_step)
    assert r.status == "interrupted" and r.steps_done == 9
    assert r.metrics["step"].tolist() == list(range(10))


@pytest.mark.parametrize("kind", ["value", "norm"])
def test_clipping_is_recorded(kind):
    r = train(cfg_with(optim={"lr": 0.5, "clip": {"kind": kind, "max": 1e-3}}))
    assert r.metrics["clipped"].all()
    r2 = train(cfg_with(optim={"lr": 0.5, "clip": {"kind": kind, "max": 1e6}}))
    assert not r2.metrics["clipped"].any()


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("sched", ["constant", "step", "exponential", "inverse_time", "cosine"])
def test_every_optimizer_and_schedule_trains(kind, sched):
    r = train(cfg_with(optim={"kind": kind, "lr": 0.05, "schedule": {"kind": sched, "warmup": 3}}))
    assert r.status == "completed"
    assert r.metrics["lr"].iloc[0] == pytest.approx(0.05 / 3)
    assert np.isfinite(r.metrics["loss"]).all()


def test_larger_l2_gives_smaller_weights():
    norms = []
    for lam in (0.0, 1.0, 10.0):
        r = train(cfg_with(regularization={"kind": "l2", "strength": lam}, train={"steps": 200}))
        norms.append(np.linalg.norm(r.final_params["W1"]))
    assert norms[0] > norms[1] > norms[2]


def test_float32_stays_float32():
    r = train(cfg_with(model={"dtype": "float32"}))
    assert all(v.dtype == np.float32 for v in r.final_params.values())
    assert r.status == "completed"


def test_no_hidden_layer_is_logistic_regression():
    r = train(cfg_with(model={"hidden": []}))
    assert set(r.final_params) == {"W1"} and r.final_params["W1"].shape == (2, 2)


def test_frames_for_the_gif():
    assert frame_steps(100, 5) == [0, 25, 50, 75, 100]
    assert frame_steps(3, 10) == [0, 1, 2, 3]
    r = train(cfg_with(plots={"gif_frames": 5}, train={"steps": 40}))
    assert [f.step for f in r.frames] == [0, 10, 20, 30, 40]
    np.testing.assert_array_equal(r.frames[-1].params["W1"], r.final_params["W1"])


def test_best_and_final():
    r = train(cfg_with(train={"steps": 100}))
    assert r.best["train_acc"] >= r.metrics["train_acc"].max() - 1e-12
    assert 0 <= r.final["train_acc"] <= 1 and r.final["loss"] > 0
