"""Schedules, clipping and optimizers against their formulas, worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xorlab import optim
from xorlab.optim import OptimSpec, Schedule, get_lr


@pytest.mark.parametrize(
    ("schedule", "t", "expected"),
    [
        (Schedule("constant", lr=0.3), 500, 0.3),
        (Schedule("step", lr=1.0, gamma=0.5, every=100), 99, 1.0),
        (Schedule("step", lr=1.0, gamma=0.5, every=100), 100, 0.5),
        (Schedule("step", lr=1.0, gamma=0.5, every=100), 250, 0.25),
        (Schedule("exponential", lr=2.0, gamma=0.99), 10, 2.0 * 0.99**10),
        (Schedule("inverse_time", lr=1.0, decay=0.1), 30, 1.0 / 4.0),
        (Schedule("cosine", lr=1.0, lr_min=0.1, steps=100), 0, 1.0),
        (Schedule("cosine", lr=1.0, lr_min=0.1, steps=100), 50, 0.55),
        (Schedule("cosine", lr=1.0, lr_min=0.1, steps=100), 100, 0.1),
        (Schedule("constant", lr=1.0, warmup=4), 0, 0.25),
        (Schedule("constant", lr=1.0, warmup=4), 2, 0.75),
        (Schedule("constant", lr=1.0, warmup=4), 4, 1.0),
        (Schedule("step", lr=1.0, gamma=0.1, every=2, warmup=4), 3, 0.1 * 1.0),
    ],
)
def test_schedule_at_known_steps(schedule, t, expected):
    assert get_lr(schedule, t) == pytest.approx(expected, rel=1e-12)


def test_clip_value_bounds_each_element():
    g = {"W1": np.array([[3.0, -0.5], [-7.0, 0.2]]), "W2": np.array([[0.1], [0.9]])}
    assert optim.clip(g, "value", 1.0, 0.0) is True
    np.testing.assert_array_equal(g["W1"], [[1.0, -0.5], [-1.0, 0.2]])
    np.testing.assert_array_equal(g["W2"], [[0.1], [0.9]])
    assert optim.clip(g, "value", 1.0, 0.0) is False  # already within bounds


def test_clip_norm_scales_every_gradient():
    g = {"W1": np.array([[3.0]]), "W2": np.array([[4.0]])}  # global norm 5
    assert optim.clip(g, "norm", 1.0, 5.0) is True
    assert g["W1"][0, 0] == pytest.approx(0.6) and g["W2"][0, 0] == pytest.approx(0.8)
    assert optim.clip(g, "norm", 10.0, 1.0) is False


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.floats(1e-3, 100))
def test_clipped_norm_never_exceeds_max(values, max_norm):
    g = {"W1": np.array(values).reshape(-1, 1)}
    norm = math.sqrt(sum(optim.sq_norms(g).values()))
    optim.clip(g, "norm", max_norm, norm)
    assert math.sqrt(sum(optim.sq_norms(g).values())) <= max_norm * (1 + 1e-12)


def test_sgd_step():
    p, g = {"W1": np.array([[1.0, 2.0]])}, {"W1": np.array([[0.5, -1.0]])}
    optim.update(OptimSpec("sgd"), p, g, {}, 0.1, 0)
    np.testing.assert_allclose(p["W1"], [[0.95, 2.1]])


def test_momentum_first_two_steps():
    spec = OptimSpec("momentum", momentum=0.9)
    p, g = {"W1": np.array([[1.0]])}, {"W1": np.array([[2.0]])}
    state = optim.init_state(spec, p)
    optim.update(spec, p, g, state, 0.1, 0)  # v = 2, theta = 1 - 0.2 = 0.8
    assert p["W1"][0, 0] == pytest.approx(0.8)
    optim.update(spec, p, g, state, 0.1, 1)  # v = 0.9*2 + 2 = 3.8, theta = 0.8 - 0.38
    assert p["W1"][0, 0] == pytest.approx(0.42)


def test_adam_first_two_steps():
    spec = OptimSpec("adam", beta1=0.9, beta2=0.999, eps=1e-8)
    p, g = {"W1": np.array([[1.0]])}, {"W1": np.array([[2.0]])}
    state = optim.init_state(spec, p)
    # step 0: m = 0.2, v = 0.004; m_hat = 2, v_hat = 4; theta -= 0.1 * 2/(2 + 1e-8)
    optim.update(spec, p, g, state, 0.1, 0)
    assert p["W1"][0, 0] == pytest.approx(1.0 - 0.1 * 2 / (2 + 1e-8), rel=1e-12)
    # step 1 with g = 1: m = 0.18 + 0.1 = 0.28, v = 0.003996 + 0.001 = 0.004996
    optim.update(spec, p, {"W1": np.array([[1.0]])}, state, 0.1, 1)
    m_hat, v_hat = 0.28 / (1 - 0.81), 0.004996 / (1 - 0.999**2)
    expected = 1.0 - 0.1 * 2 / (2 + 1e-8) - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert p["W1"][0, 0] == pytest.approx(expected, rel=1e-12)
