"""The trainer: deterministic, metrics as the contract says, divergence a result."""

from __future__ import annotations

import numpy as np
import pytest

from xorlab import funcs, nn
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
        "saturated_h1", "update_ratio_W1",  # telemetry.activations, on by default
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


# --- the fast path is the textbook arithmetic, bit for bit ----------------------------------------


def _textbook_step(p, X, Y, act, loss, pen, lam, n_train=None):
    """One step written the plain way (a new array per operation): (loss, dl, rl, acc, grads).
    The penalty's N is ``n_train``, the training rows (default: X's rows, the full batch)."""
    acts = {
        "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0))),
        "tanh": np.tanh,
        "relu": lambda z: np.maximum(z, 0.0),
    }
    ders = {
        "sigmoid": lambda h: h * (1.0 - h),
        "tanh": lambda h: 1.0 - h * h,
        "relu": lambda h: (h > 0).astype(h.dtype),
    }
    L = sum(k.startswith("W") for k in p)
    n = X.shape[0]
    hs, log_h = [X], None
    for layer in range(1, L + 1):
        z = hs[-1] @ p[f"W{layer}"] + p[f"b{layer}"]
        if layer < L:
            hs.append(acts[act](z))
        elif loss == "mse":
            hs.append(acts["sigmoid"](z))
        else:
            shifted = z - z.max(axis=-1, keepdims=True)
            e = np.exp(shifted)
            s = e.sum(axis=-1, keepdims=True)
            hs.append(e / s)
            log_h = shifted - np.log(s)
    h = hs[-1]
    if loss == "mse":
        diff = Y - h
        dl = (diff * diff).sum(axis=(-2, -1)) / (2 * n)
        dz = (h - Y) * (h * (1.0 - h)) / n
    else:
        dl = -(Y * log_h).sum(axis=(-2, -1)) / n
        dz = (h - Y) / n
    Ws = [p[f"W{i}"] for i in range(1, L + 1)]
    n = n if n_train is None else n_train  # the penalty's N: training rows at every batch size
    if pen == "l2":
        rl = sum(lam * (W * W).sum(axis=(-2, -1)) / (2 * n) for W in Ws)
    else:
        rl = sum(lam * np.abs(W).sum(axis=(-2, -1)) / n for W in Ws)
    grads = {}
    for layer in range(L, 0, -1):
        W = p[f"W{layer}"]
        pen_der = (lam / n) * W if pen == "l2" else (lam / n) * np.sign(W)
        grads[f"W{layer}"] = hs[layer - 1].T @ dz + pen_der
        grads[f"b{layer}"] = dz.sum(axis=0)
        if layer > 1:
            dz = (dz @ W.T) * ders[act](hs[layer - 1])
    acc = float((h.argmax(axis=-1) == Y.argmax(axis=-1)).mean())
    return float(dl) + float(rl), float(dl), float(rl), acc, grads


@pytest.mark.parametrize(
    ("act", "loss", "pen"),
    [("sigmoid", "mse", "l2"), ("relu", "cross_entropy", "l1"), ("tanh", "mse", "l1")],
)
def test_training_is_the_textbook_arithmetic_bit_for_bit(act, loss, pen):
    """In-place buffers, cached keys, BLAS-dot norms: the numbers are the plain expressions'."""
    cfg = cfg_with(
        model={"hidden": [6, 4], "activation": act, "loss": loss, "bias": True},
        regularization={"kind": pen, "strength": 0.05},
        train={"steps": 3},
    )
    r = train(cfg)
    p = {k: v.copy() for k, v in r.init_params.items()}
    X, Y = r.data.X_train, r.data.y_train
    for t in range(3):
        total, dl, rl, acc, g = _textbook_step(p, X, Y, act, loss, pen, 0.05)
        row = r.metrics.iloc[t]
        assert (row["loss"], row["data_loss"], row["reg_loss"], row["train_acc"]) == (
            total,
            dl,
            rl,
            acc,
        )
        keys = list(p)
        gsq = [float(np.dot(g[k].ravel(), g[k].ravel())) for k in keys]
        assert row["grad_norm"] == np.sqrt(sum(gsq))
        assert [row[f"grad_norm_{k}"] for k in keys] == [np.sqrt(s) for s in gsq]
        assert [row[f"weight_norm_{k}"] for k in keys] == [
            np.sqrt(np.dot(p[k].ravel(), p[k].ravel())) for k in keys
        ]
        p = {k: p[k] - 0.5 * g[k] for k in keys}
    for k in p:
        assert r.final_params[k].tobytes() == p[k].tobytes()


def test_sigmoid_is_the_textbook_expression_and_0_where_exp_overflows():
    """1/(1 + exp(-z)) to the bit wherever exp(-z) is finite; 0.0 (the correctly rounded value)
    below that, with no overflow reported; and h @ (-W) in the forward pass is exactly -z."""
    for dtype, overflow in ((np.float64, -709.8), (np.float32, -88.8)):
        z = np.r_[np.linspace(-2000, 2000, 40001), np.inf, -np.inf, np.nan, 0.0, -0.0].astype(dtype)
        s = funcs.sigmoid(z)  # warnings are errors in the tests: an overflow report would raise
        with np.errstate(all="ignore"):
            textbook = 1.0 / (1.0 + np.exp(-z))
        fine = z > overflow
        assert s[fine].tobytes() == textbook[fine].tobytes()
        assert (s[z < overflow] == 0.0).all() and s.dtype == dtype
        assert funcs.sigmoid_of_negated(-z).tobytes() == s.tobytes()
    X, W = np.random.RandomState(0).randn(50, 3), np.random.RandomState(1).randn(3, 7) * 300
    assert (X @ np.negative(W)).tobytes() == np.negative(X @ W).tobytes()


def test_metrics_from_an_array_equal_metrics_from_tuples():
    from xorlab.train import metrics_frame

    spec = net_spec(cfg_with())
    rows = [
        (t, t // 3, 0.5, 0.25, 0.2, 0.05, 0.75, 1.5, t % 2, 4.0, 9.0, 16.0, 25.0) for t in range(6)
    ]
    a = metrics_frame(rows, spec, False)
    b = metrics_frame(np.array(rows, dtype=float), spec, False)
    assert a.to_csv() == b.to_csv() and list(a.dtypes) == list(b.dtypes)
    assert a["grad_norm_W1"].tolist() == [2.0] * 6  # squared norms go in, norms come out
    assert a["clipped"].dtype == np.int64 and a["step"].dtype == np.int64


def test_skipped_steps_compute_no_accuracy(monkeypatch):
    """log_every > 1: accuracy passes over the data only on logged steps (and for the end)."""
    import importlib

    train_module = importlib.import_module("xorlab.train")  # xorlab.train is the API's function

    calls = []
    real = train_module.accuracy_on
    monkeypatch.setattr(
        train_module,
        "accuracy_on",
        lambda *a: calls.append(1) or real(*a),  # noqa: B023
    )
    r = train(cfg_with(train={"steps": 25, "log_every": 10, "batch_size": 16}))
    assert r.metrics["step"].tolist() == [0, 10, 20, 24] and len(calls) == 4


# --- the penalty's N is the number of training rows at every batch size --------------------------


@pytest.mark.parametrize("pen", ["l2", "l1"])
def test_minibatch_steps_are_the_textbook_arithmetic_with_n_training_rows(pen):
    """Batches of 7 of 60 rows (the 9th has 4): every row's loss terms and every update are the
    plain expressions with the penalty's N = 60, bit for bit; the full-batch rows (N = 60 = the
    batch's rows) are checked the same way above, so full-batch runs did not change."""
    cfg = cfg_with(
        model={"hidden": [6, 4], "activation": "tanh", "bias": True},
        regularization={"kind": pen, "strength": 0.5},
        train={"steps": 12, "batch_size": 7},
    )
    r = train(cfg)
    p = {k: v.copy() for k, v in r.init_params.items()}
    X, Y = r.data.X_train, r.data.y_train
    for t in range(12):
        j = t % 9  # ceil(60 / 7) = 9 batches per epoch, in order
        Xb, Yb = X[j * 7 : (j + 1) * 7], Y[j * 7 : (j + 1) * 7]
        total, dl, rl, _, g = _textbook_step(p, Xb, Yb, "tanh", "mse", pen, 0.5, n_train=60)
        row = r.metrics.iloc[t]
        assert (row["loss"], row["data_loss"], row["reg_loss"]) == (total, dl, rl), t
        p = {k: p[k] - 0.5 * g[k] for k in p}
    for k in p:
        assert r.final_params[k].tobytes() == p[k].tobytes()


@pytest.mark.parametrize("pen", ["l2", "l1"])
def test_a_minibatch_update_follows_the_objective_with_n_training_rows(pen):
    """One SGD step on a batch of 7 of 60 rows: (init - final) / lr against central differences
    of the batch's data loss + the penalty with N = 60 (float64, rel. error < 1e-6)."""
    from tests.test_nn import _fd_objective_gradient

    cfg = cfg_with(
        model={"hidden": [4], "bias": True},
        regularization={"kind": pen, "strength": 0.9},
        train={"steps": 1, "batch_size": 7},
    )
    r = train(cfg)
    spec = net_spec(cfg)
    init = {k: v.copy() for k, v in r.init_params.items()}
    X, Y = r.data.X_train[:7], r.data.y_train[:7]
    numeric = _fd_objective_gradient(init, X, Y, spec, 60)
    for k in spec.keys:
        g = (r.init_params[k] - r.final_params[k]) / 0.5
        err = np.abs(g - numeric[k]) / np.maximum(np.abs(g) + np.abs(numeric[k]), 1e-8)
        assert err.max() < 1e-6, (k, err.max())


def _sum_w2_from_norms(metrics):
    return metrics["weight_norm_W1"] ** 2 + metrics["weight_norm_W2"] ** 2


def test_reg_loss_uses_the_training_rows_with_batches_of_10():
    """Batch 10 of 300 rows: reg_loss = lam/(2*300) * sum W**2 of the row's weights, and the
    summary's final loss holds the same penalty of the final weights."""
    cfg = cfg_with(
        data={"n": 300},
        model={"bias": True},
        regularization={"kind": "l2", "strength": 1.0},
        train={"steps": 60, "batch_size": 10},
    )
    r = train(cfg)
    m = r.metrics
    w0 = sum(float((r.init_params[k] ** 2).sum()) for k in ("W1", "W2"))
    assert m["reg_loss"].iloc[0] == pytest.approx(1.0 / (2 * 300) * w0, rel=1e-15)
    np.testing.assert_allclose(m["reg_loss"], 1.0 / 600 * _sum_w2_from_norms(m), rtol=1e-12)
    spec = net_spec(cfg)
    _, cache = nn.forward(r.final_params, r.data.X_train, spec)
    final_pen = r.final["loss"] - float(nn.data_loss(cache, r.data.y_train, spec))
    w_end = sum(float((r.final_params[k] ** 2).sum()) for k in ("W1", "W2"))
    assert final_pen == pytest.approx(1.0 / 600 * w_end, rel=1e-9)
    assert m["reg_loss"].iloc[-1] == pytest.approx(final_pen, rel=0.05)  # one update apart


def test_reg_loss_has_no_jump_at_a_short_last_batch():
    """Batch 7 of 300 rows: step 42 (and 85) is a batch of 6 rows. With N = the batch's rows the
    penalty jumped by 7/6 there; with N = 300 it moves smoothly with the weights."""
    cfg = cfg_with(
        data={"n": 300},
        regularization={"kind": "l2", "strength": 0.5},
        optim={"lr": 0.2},
        train={"steps": 90, "batch_size": 7},
    )
    m = train(cfg).metrics
    reg = m["reg_loss"].to_numpy()
    np.testing.assert_allclose(reg, 0.5 / 600 * _sum_w2_from_norms(m), rtol=1e-12)
    steps = np.abs(np.diff(np.log(reg)))
    assert steps.max() < 0.03, (int(steps.argmax()), steps.max())  # log(7/6) = 0.154
    assert m["epoch"].iloc[42] == 0 and m["epoch"].iloc[43] == 1


# --- accuracy of non-finite outputs -------------------------------------------------------------


def _nan_run_config():
    return cfg_with(
        data={"test_fraction": 0.25},
        model={"hidden": [5], "activation": "relu", "loss": "cross_entropy", "bias": True},
        optim={"lr": 1e8},
        train={"steps": 60},
    )


def test_a_run_whose_outputs_are_nan_has_no_accuracy():
    r = train(_nan_run_config())
    assert r.status == "diverged"
    assert r.final == {"loss": None, "train_acc": None, "test_acc": None}
    last = r.metrics.iloc[-1]
    assert np.isnan(last["loss"]) or np.isinf(last["loss"])
    assert np.isnan(last["train_acc"]) and np.isnan(last["test_acc"])
    assert r.best["train_acc"] is not None and r.best["step"] < r.diverged_at


def test_no_accuracy_is_null_empty_and_a_dash_on_disk_and_screen(tmp_path):
    import json

    import yaml
    from typer.testing import CliRunner

    from xorlab.cli import app

    cfg = tmp_path / "nan.yaml"
    cfg.write_text(yaml.safe_dump(_nan_run_config().to_dict()))
    runs = tmp_path / "runs"
    res = CliRunner().invoke(app, ["train", str(cfg), "--runs-dir", str(runs), "--no-plots"])
    assert res.exit_code == 0, res.output
    (run,) = list(runs.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"] == {"loss": None, "train_acc": None, "test_acc": None}
    lines = (run / "metrics.csv").read_text().splitlines()
    cols = lines[0].split(",")
    last = dict(zip(cols, lines[-1].split(",")))
    assert last["train_acc"] == "" and last["test_acc"] == ""
    shown = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in
             res.output.splitlines() if line.count("│") == 3}  # fmt: skip
    assert shown["train accuracy"] == "-" and shown["final loss"] == "-"
