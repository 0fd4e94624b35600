"""Telemetry columns of metrics.csv (DESIGN.md section 1): sharpness, saturation, dead units and
update ratios, checked against a dense Hessian and against the arrays of replayed runs."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from xorlab import nn, telemetry
from xorlab.config import load_config, validate
from xorlab.rundir import csv_text
from xorlab.train import RunResult, net_spec, train

from .conftest import CONFIGS

EXPLODE = CONFIGS / "xor_h50_explode.yaml"


@cache
def _explode(*overrides: str) -> RunResult:
    return train(load_config(EXPLODE, ["plots.enabled=false", *overrides]))


def _dense_hessian(params, X, Y, spec, n):
    """The Hessian of the step's objective, column j = H @ e_j."""
    keys = spec.keys
    _, fwd = nn.forward(params, X, spec)
    sizes = [params[k].size for k in keys]
    H = np.empty((sum(sizes), sum(sizes)))
    for j in range(H.shape[0]):
        e = np.zeros(H.shape[0])
        e[j] = 1.0
        parts = np.split(e, np.cumsum(sizes)[:-1])
        V = {k: p.reshape(params[k].shape) for k, p in zip(keys, parts)}
        hv = nn.hvp(params, fwd, Y, spec, V, n)
        H[:, j] = np.concatenate([hv[k].ravel() for k in keys])
    return H


@pytest.mark.parametrize("step", [45, 52])
def test_sharpness_agrees_with_a_dense_hessian_to_1e_3(step):
    """Step 52 is the explode run's first blow-up (loss > 10x its running minimum), step 45 in
    the stretch above 2/lr before it. The warm-started power iteration's value at the default
    tolerance agrees with the top eigenvalue of the 252 x 252 Hessian of the parameters before
    that update."""
    r = _explode("telemetry.sharpness_every=1")
    got = float(r.metrics.set_index("step").loc[step, "sharpness"])
    before = _explode(f"train.steps={step}")  # its final parameters: those before update `step`
    H = _dense_hessian(
        before.final_params, r.data.X_train, r.data.y_train, net_spec(r.config), r.data.n_train
    )
    top = np.linalg.eigvalsh(H)[-1]
    assert got == pytest.approx(top, rel=1e-3)
    assert got > 2 / 2.5  # above the 2/lr line at both


def test_sharpness_every_k_fills_every_kth_row_and_warm_starts():
    r = _explode("telemetry.sharpness_every=10")
    m = r.metrics
    measured = m["sharpness"].notna()
    assert m["step"][measured].tolist() == list(range(0, 1000, 10))
    assert m["sharpness_iters"].dtype == "Int64"
    assert m["sharpness_iters"][~measured].isna().all()
    iters = m["sharpness_iters"][measured].astype(int)
    assert iters.iloc[0] > iters.median()  # the cold start costs most
    assert iters.median() <= 3 and iters.max() <= telemetry.SHARPNESS_MAX_ITER
    # the CSV leaves unmeasured rows empty, and integers stay integers
    lines = csv_text(m).splitlines()
    head = lines[0].split(",")
    i = head.index("sharpness")
    assert lines[2].split(",")[i : i + 2] == ["", ""]  # step 1
    assert lines[1].split(",")[i + 1] == str(iters.iloc[0])


def test_telemetry_changes_no_other_number():
    """Sharpness and activations only read the step's arrays: every other column, the final
    parameters and the status are bit-identical with telemetry off."""
    off = _explode("telemetry.activations=false", "telemetry.sharpness_every=0")
    on = _explode("telemetry.sharpness_every=1")  # activations on: the default
    assert "sharpness" not in off.metrics and "dead_h1" not in off.metrics
    assert "sharpness" in _explode().metrics  # the shipped config logs it every 5th step
    pd.testing.assert_frame_equal(on.metrics[list(off.metrics.columns)], off.metrics)
    assert all(np.array_equal(on.final_params[k], off.final_params[k]) for k in off.final_params)


def test_update_ratio_and_dead_units_match_replayed_parameters():
    r = _explode()  # telemetry.activations: on by default
    m = r.metrics.set_index("step")
    for t in (0, 52, 999):
        W_t = _explode(f"train.steps={t}").final_params["W1"] if t else r.init_params["W1"]
        W_next = _explode(f"train.steps={t + 1}").final_params["W1"]
        want = np.linalg.norm(W_next - W_t) / np.linalg.norm(W_t)
        assert m.loc[t, "update_ratio_W1"] == pytest.approx(want, rel=1e-12)
    # dead units: ReLU units that are 0 on every training row, at the parameters before step t
    for t in (0, 500):
        params = _explode(f"train.steps={t}").final_params if t else r.init_params
        _, fwd = nn.forward(params, r.data.X_train, net_spec(r.config))
        dead = np.mean(~(fwd.hs[1] > 0).any(axis=0))
        assert m.loc[t, "dead_h1"] == dead
    assert list(r.metrics.columns[-2:]) == ["dead_h1", "update_ratio_W1"]
    assert "saturated_h1" not in r.metrics  # ReLU has no flat tail above 0


def test_layer_health_by_hand():
    # sigmoid: entries below 0.01 or above 0.99 (2 of 6); tanh: |h| > 0.99 (3 of 6)
    h = np.array([[0.005, 0.5, 0.995], [0.2, 0.01, 0.99]])
    assert telemetry.layer_health([h], "sigmoid") == [2 / 6]
    t = np.array([[-0.999, 0.5, 0.995], [0.2, -0.1, 0.9999]])
    assert telemetry.layer_health([t], "tanh") == [3 / 6]
    # relu: unit 1 is 0 on both rows, unit 0 is on in one row: 1 of 3 dead
    r = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 3.0]])
    assert telemetry.layer_health([r], "relu") == [1 / 3]


def test_two_hidden_layers_get_columns_per_layer():
    cfg = validate(
        {
            "model": {"hidden": [4, 3], "activation": "tanh"},
            "train": {"steps": 5},
            "plots": {"enabled": False},
            "telemetry": {"activations": True, "sharpness_every": 2},
        }
    )
    m = train(cfg).metrics
    assert list(m.columns[-6:]) == [
        "sharpness",
        "sharpness_iters",
        "saturated_h1",
        "saturated_h2",
        "update_ratio_W1",
        "update_ratio_W2",
    ]
    assert m["sharpness"].notna().tolist() == [True, False, True, False, True]
    assert m["update_ratio_W1"].notna().all()


def test_telemetry_config_is_validated():
    assert validate({}).telemetry.sharpness_every == 0
    with pytest.raises(Exception, match="sharpness_every"):
        validate({"telemetry": {"sharpness_every": -1}})
    with pytest.raises(Exception, match="unknown key"):
        validate({"telemetry": {"sharpnes_every": 1}})


def test_stability_limit():
    assert telemetry.stability_limit(2.5, "sgd", 0.9) == 0.8
    assert telemetry.stability_limit(1.0, "momentum", 0.5) == 3.0
    assert np.isnan(telemetry.stability_limit(1.0, "adam", 0.9))


# --- population members get the same telemetry, bit for bit --------------------------------------


@pytest.mark.parametrize(
    ("model", "batch"),
    [
        ({"hidden": [6], "activation": "relu", "loss": "cross_entropy", "bias": True}, None),
        ({"hidden": [4, 3], "activation": "tanh"}, 16),  # two hidden layers, minibatches
        ({"hidden": [5], "activation": "sigmoid"}, None),  # the wide first-layer step
    ],
)
def test_population_members_log_the_telemetry_train_logs(model, batch):
    """Three members, one of which diverges (its last row has no update ratio): each
    member's metrics.csv bytes equal train()'s for its config alone."""
    from xorlab.population import train_population

    base = {
        "data": {"n": 40},
        "model": model,
        "optim": {"lr": 0.5},
        "train": {"steps": 12, "batch_size": batch, "log_every": 2},
        "plots": {"enabled": False},
    }
    cfgs = []
    for seed, lr, above in ((0, 0.5, None), (1, 2.0, None), (2, 0.5, 1e-9)):
        raw = {**base, "seed": seed, "optim": {"lr": lr}}
        raw["train"] = {**base["train"], "diverge_above": above}
        cfgs.append(validate(raw))
    results = train_population(cfgs)
    for cfg, r in zip(cfgs, results):
        alone = train(cfg)
        assert csv_text(r.metrics) == csv_text(alone.metrics)
        assert "update_ratio_W1" in r.metrics
    assert results[2].status == "diverged"
    assert np.isnan(results[2].metrics["update_ratio_W1"].iloc[-1])


def test_a_config_with_sharpness_trains_alone_in_a_sweep():
    from xorlab.population import group_configs

    cfgs = [
        validate({"seed": s, "telemetry": {"sharpness_every": k}}) for s, k in enumerate([0, 5, 0])
    ]
    assert group_configs(cfgs) == [[0, 2], [1]]
