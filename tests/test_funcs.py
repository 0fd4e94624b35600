"""The network's functions (funcs): activations and their derivatives, the output layers, the
penalties. Their derivatives are checked in the whole network by test_nn.py's gradient checks."""

from __future__ import annotations

import numpy as np
import pytest

from xorlab import funcs


def test_sigmoid_and_softmax_are_stable_at_extremes():
    z = np.array([[-1e4, 0.0, 1e4]])
    s = funcs.sigmoid(z)
    assert np.all(np.isfinite(s)) and 0.0 <= s[0, 0] < 1e-300 and s[0, 1] == 0.5 and s[0, 2] == 1.0
    h, log_h = funcs.softmax(np.array([[1e4, -1e4], [0.0, 0.0]]))
    np.testing.assert_allclose(h, [[1.0, 0.0], [0.5, 0.5]])
    assert np.all(np.isfinite(log_h))
    assert funcs.sigmoid(np.array([100.0], dtype=np.float32)).dtype == np.float32


def test_activation_derivatives_written_from_the_output():
    z = np.linspace(-3, 3, 13)
    for name in ("sigmoid", "tanh", "relu"):
        f, d = funcs.ACTIVATIONS[name], funcs.DERIVATIVES[name]
        numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6
        mask = np.abs(z) > 1e-3  # relu's kink
        np.testing.assert_allclose(d(f(z))[mask], numeric[mask], atol=1e-6)
    assert funcs.tanh(np.array([1.0]))[0] == pytest.approx(np.tanh(1.0))  # not tanh(z/2)


def test_penalties_follow_the_formulas():
    W = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert funcs.l2_penalty(W, 0.5, 4) == pytest.approx(0.5 / 8 * 14)
    assert funcs.l1_penalty(W, 0.5, 4) == pytest.approx(0.5 / 4 * 6)
    np.testing.assert_array_equal(funcs.l1_penalty_der(W, 0.5, 4), 0.125 * np.sign(W))
    assert funcs.l1_penalty_der(W, 0.5, 4)[1, 0] == 0.0
