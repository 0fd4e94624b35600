"""The math: forward against hand arithmetic, backward against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xorlab import nn
from xorlab.gradcheck import check_gradients

# The tutorial's worked example (DESIGN.md section 1).
X1 = np.array([[1.76405235, 0.40015721]])
Y1 = np.array([[1.0, 0.0]])
W1 = np.array([[-0.67746455, 0.37769425, -0.07365253], [-0.53663519, 0.60920496, 0.21149622]])
W2 = np.array([[-0.41491732, -0.30992816], [-0.31583913, -0.27706468], [-0.44701662, 0.15231059]])
TUTORIAL = nn.NetSpec((2, 3, 2), "sigmoid", "mse", bias=False)


def test_worked_example_forward():
    out, cache = nn.forward({"W1": W1, "W2": W2}, X1, TUTORIAL)
    # z1 = x @ W1 = [1.764*-0.677 + 0.400*-0.537, ...] = [-1.40982, 0.91005, -0.04530]
    # h1 = sigmoid(z1) = [1/(1+e^1.40982), 1/(1+e^-0.91005), 1/(1+e^0.04530)]
    np.testing.assert_allclose(cache.hs[1], [[0.19626223, 0.71301043, 0.48867814]], atol=1e-8)
    # z2 = h1 @ W2 = [-0.52508, -0.18395]; h2 = sigmoid(z2)
    np.testing.assert_allclose(out, [[0.37166596, 0.45414264]], atol=1e-8)


def test_worked_example_loss_and_output_gradient():
    out, cache = nn.forward({"W1": W1, "W2": W2}, X1, TUTORIAL)
    # loss = ((1 - 0.37166596)**2 + (0 - 0.45414264)**2) / 2 = (0.394803 + 0.206246)/2
    assert float(nn.data_loss(cache, Y1, TUTORIAL)) == pytest.approx(0.30052460, abs=1e-8)
    g = nn.backward({"W1": W1, "W2": W2}, cache, Y1, TUTORIAL)
    # dW2 = h1^T @ ((h2 - y) * h2 (1 - h2)); first entry 0.19626223 * -0.14673508
    assert g["W2"][0, 0] == pytest.approx(0.19626223 * (0.37166596 - 1) * 0.37166596 * 0.62833404)
    assert set(g) == {"W1", "W2"} and g["W1"].shape == W1.shape and g["W2"].shape == W2.shape


COMBOS = [
    (act, loss, pen, bias)
    for act in ("sigmoid", "tanh", "relu")
    for loss in ("mse", "cross_entropy")
    for pen in ("none", "l1", "l2")
    for bias in (False, True)
]


@pytest.mark.parametrize(("act", "loss", "pen", "bias"), COMBOS)
def test_gradient_matches_finite_differences(act, loss, pen, bias):
    rs = np.random.RandomState(3)
    spec = nn.NetSpec((2, 5, 4, 2), act, loss, bias, pen, 0.3)
    params = nn.init_params(spec, "uniform", rs)
    for k in params:  # keep weights away from 0 (L1's kink) and biases non-zero
        params[k] = params[k] + np.sign(params[k] + 1e-12) * 0.05 + 0.1 * rs.randn(*params[k].shape)
    X = rs.randn(12, 2)
    Y = np.eye(2)[rs.randint(0, 2, 12)]
    checks = check_gradients(params, X, Y, spec)
    assert [c.key for c in checks] == spec.param_keys()
    for c in checks:
        assert c.checked >= c.skipped
        assert c.max_rel_error < 1e-6, (c.key, c.max_rel_error)


def test_gradient_check_catches_the_tutorials_l2_slip():
    """The tutorial adds the scalar lam*sum(W**2) to the gradient instead of lam*W/N."""
    spec = nn.NetSpec((2, 3, 2), "sigmoid", "mse", False, "l2", 0.5)
    rs = np.random.RandomState(0)
    params = nn.init_params(spec, "uniform", rs)
    X, Y = rs.randn(8, 2), np.eye(2)[rs.randint(0, 2, 8)]
    _, cache = nn.forward(params, X, spec)
    good = nn.backward(params, cache, Y, spec)
    bad_W2 = good["W2"] - 0.5 / 8 * params["W2"] + 0.5 * (params["W2"] ** 2).sum()
    assert not np.allclose(good["W2"], bad_W2)
    numeric = nn.penalty({**params, "W2": params["W2"] + 1e-6}, spec, 8) - nn.penalty(
        params, spec, 8
    )
    assert numeric == pytest.approx(0.5 / 8 * params["W2"].sum() * 1e-6, rel=1e-3)


@settings(max_examples=25, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    n=st.integers(1, 9),
    act=st.sampled_from(["sigmoid", "tanh"]),
    loss=st.sampled_from(["mse", "cross_entropy"]),
    bias=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_gradients_for_any_shape(hidden, n, act, loss, bias, seed):
    rs = np.random.RandomState(seed)
    spec = nn.NetSpec((2, *hidden, 2), act, loss, bias, "l2", 0.1)
    params = nn.init_params(spec, "xavier", rs)
    X, Y = rs.randn(n, 2), np.eye(2)[rs.randint(0, 2, n)]
    out, cache = nn.forward(params, X, spec)
    assert out.shape == (n, 2)
    grads = nn.backward(params, cache, Y, spec)
    assert {k: g.shape for k, g in grads.items()} == {k: p.shape for k, p in params.items()}
    assert max(c.max_rel_error for c in check_gradients(params, X, Y, spec)) < 1e-6


def test_stacked_networks_match_single_ones():
    """The math is batch-agnostic: K stacked networks equal K separate passes."""
    spec = nn.NetSpec((2, 4, 2), "tanh", "cross_entropy", True, "l2", 0.2)
    rs = np.random.RandomState(1)
    singles = [nn.init_params(spec, "he", rs) for _ in range(3)]
    stacked = {k: np.stack([p[k] for p in singles]) for k in singles[0]}
    stacked = {k: (v[:, None, :] if k.startswith("b") else v) for k, v in stacked.items()}
    X, Y = rs.randn(6, 2), np.eye(2)[rs.randint(0, 2, 6)]
    out_k, cache_k = nn.forward(stacked, np.broadcast_to(X, (3, 6, 2)), spec)
    grads_k = nn.backward(stacked, cache_k, np.broadcast_to(Y, (3, 6, 2)), spec)
    for i, p in enumerate(singles):
        out, cache = nn.forward(p, X, spec)
        np.testing.assert_allclose(out_k[i], out, rtol=1e-12)
        g = nn.backward(p, cache, Y, spec)
        for k in g:
            np.testing.assert_allclose(grads_k[k][i].reshape(g[k].shape), g[k], rtol=1e-12)


def test_uniform_init_is_the_tutorials():
    spec = nn.NetSpec((2, 3, 2))
    p = nn.init_params(spec, "uniform", np.random.RandomState(7))
    rs = np.random.RandomState(7)
    w1 = (2 * rs.random_sample((2, 3)) - 1) / np.sqrt(2)
    w2 = (2 * rs.random_sample((3, 2)) - 1) / np.sqrt(3)
    np.testing.assert_array_equal(p["W1"], w1)
    np.testing.assert_array_equal(p["W2"], w2)
    assert set(p) == {"W1", "W2"}
    pb = nn.init_params(nn.NetSpec((2, 3, 2), bias=True), "he", np.random.RandomState(0))
    assert np.all(pb["b1"] == 0) and pb["b1"].shape == (3,)


def test_classes_is_argmax():
    rs = np.random.RandomState(0)
    out = rs.rand(4, 50, 2).round(1)  # ties on many rows
    for case in (out, rs.rand(30, 3)):
        np.testing.assert_array_equal(nn.classes(case), case.argmax(axis=-1))
    with_nan = out.copy()
    with_nan[0, :5, 1] = np.nan  # argmax picks a NaN: class 1 on these rows
    with_nan[1, :5, 0] = np.nan
    with_nan[2, :5] = [np.inf, -np.inf]
    np.testing.assert_array_equal(nn.classes(with_nan), with_nan.argmax(axis=-1))
    assert nn.classes(with_nan)[0, :5].tolist() == [1] * 5


def test_stack_params_shapes_a_population():
    spec = nn.NetSpec((2, 4, 2), "tanh", "mse", bias=True)
    nets = [nn.init_params(spec, "uniform", np.random.RandomState(s)) for s in range(3)]
    stack = nn.stack_params(nets)
    assert {k: v.shape for k, v in stack.items()} == {
        "W1": (3, 2, 4), "b1": (3, 1, 4), "W2": (3, 4, 2), "b2": (3, 1, 2),
    }  # fmt: skip
    X = np.random.RandomState(9).randn(5, 2)
    out, _ = nn.forward(stack, X, spec)  # (3, 5, 2): one forward for the three
    for i, p in enumerate(nets):
        np.testing.assert_array_equal(out[i], nn.forward(p, X, spec)[0])


# --- the penalty's N is the number of training rows (DESIGN.md section 1) ------------------------


def _fd_objective_gradient(params, X, Y, spec, n_train, eps=1e-4):
    """Fourth-order central differences of the batch's data loss + the penalty written out by
    hand with N = n_train: l2 lam/(2N) sum W**2, l1 lam/N sum|W| (independent of nn.penalty)."""
    lam = spec.strength

    def objective(p):
        _, cache = nn.forward(p, X, spec)
        Ws = [p[k] for k in spec.w_keys]
        if spec.penalty == "l2":
            pen = lam / (2 * n_train) * sum(float((W * W).sum()) for W in Ws)
        else:
            pen = lam / n_train * sum(float(np.abs(W).sum()) for W in Ws)
        return float(nn.data_loss(cache, Y, spec)) + pen

    num = {}
    for key, p in params.items():
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            f = {}
            for m in (-2, -1, 1, 2):
                flat[i] = old + m * eps
                f[m] = objective(params)
            flat[i] = old
            gflat[i] = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * eps)
        num[key] = g
    return num


@pytest.mark.parametrize("pen", ["l2", "l1"])
def test_minibatch_gradient_is_the_objective_with_n_training_rows(pen):
    """A batch of 7 rows out of 300: backward(..., n_penalty=300) is the gradient of the batch's
    data loss + the penalty with N = 300 (rel. error < 1e-6), and not the one with N = 7."""
    rs = np.random.RandomState(5)
    spec = nn.NetSpec((2, 4, 2), "tanh", "mse", True, pen, 0.8)
    params = nn.init_params(spec, "uniform", rs)
    for k in params:  # away from L1's kink at 0; non-zero biases
        params[k] = params[k] + np.sign(params[k] + 1e-12) * 0.1 + 0.1 * rs.randn(*params[k].shape)
    X, Y = rs.randn(7, 2), np.eye(2)[rs.randint(0, 2, 7)]
    _, cache = nn.forward(params, X, spec)
    grads = nn.backward(params, cache, Y, spec, 300)
    numeric = _fd_objective_gradient(params, X, Y, spec, 300)
    for k in spec.keys:
        err = np.abs(grads[k] - numeric[k]) / np.maximum(
            np.abs(grads[k]) + np.abs(numeric[k]), 1e-8
        )
        assert err.max() < 1e-6, (k, err.max())
    batch_n = nn.backward(params, cache, Y, spec)  # N = the batch's 7 rows: another objective
    assert not np.allclose(batch_n["W1"], numeric["W1"], rtol=1e-3)
    np.testing.assert_array_equal(batch_n["b1"], grads["b1"])  # biases carry no penalty
    assert float(nn.penalty(params, spec, 300)) == pytest.approx(
        0.8 / (2 * 300) * sum((params[k] ** 2).sum() for k in spec.w_keys)
        if pen == "l2"
        else 0.8 / 300 * sum(np.abs(params[k]).sum() for k in spec.w_keys),
        rel=1e-14,
    )
    checks = check_gradients(params, X, Y, spec, n_penalty=300)  # gradcheck's objective too
    assert max(c.max_rel_error for c in checks) < 1e-6


def test_backward_without_n_penalty_uses_the_batch_rows_bit_for_bit():
    """The full batch is the training set: n_penalty = rows gives the very same bytes."""
    rs = np.random.RandomState(2)
    spec = nn.NetSpec((2, 5, 2), "sigmoid", "mse", True, "l2", 0.3)
    params = nn.init_params(spec, "uniform", rs)
    X, Y = rs.randn(30, 2), np.eye(2)[rs.randint(0, 2, 30)]
    _, cache = nn.forward(params, X, spec)
    a, b = nn.backward(params, cache, Y, spec), nn.backward(params, cache, Y, spec, 30)
    assert all(a[k].tobytes() == b[k].tobytes() for k in spec.keys)


# --- accuracy is undefined for non-finite outputs ------------------------------------------------


def test_accuracy_of_non_finite_outputs_is_nan():
    """NaN outputs (a diverged network) have no classes: accuracy NaN, not where argmax's NaN
    rule puts them (class 0 on every all-NaN row: the share of class 0, e.g. 0.527)."""
    y = np.array([0, 0, 1, 0])
    finite = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    assert nn.accuracy(finite, y) == 0.75
    assert np.isnan(nn.accuracy(np.full((4, 2), np.nan), y))  # argmax alone would give 0.75
    one_row = finite.copy()
    one_row[1] = [np.nan, 0.3]
    assert np.isnan(nn.accuracy(one_row, y))
    inf_row = finite.copy()
    inf_row[2] = [np.inf, 1.0]
    assert np.isnan(nn.accuracy(inf_row, y))
    stack = np.stack([finite, one_row, np.full((4, 2), np.nan), finite[:, ::-1]])  # (4, N, C)
    acc = nn.accuracies(stack, y)
    assert acc.tolist()[0] == 0.75 and acc.tolist()[3] == 0.25
    assert np.isnan(acc[1]) and np.isnan(acc[2])
    for k in range(4):
        assert acc[k] == nn.accuracy(stack[k], y) or (np.isnan(acc[k]) and k in (1, 2))
