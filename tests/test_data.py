"""Data sets: the tutorial's XOR exactly, seeded splits, every kind well formed."""

from __future__ import annotations

import numpy as np
import pytest

from xorlab.data import KINDS, make_data


def test_xor_is_the_tutorials():
    d = make_data("xor", 300, seed=0)
    X = np.random.RandomState(0).randn(300, 2)
    np.testing.assert_array_equal(d.X_train, X)
    cls = np.logical_xor(X[:, 0] > 0, X[:, 1] > 0).astype(int)
    np.testing.assert_array_equal(d.y_train, np.eye(2)[cls])
    # the worked example's sample is the first row: [1.764, 0.400] -> class 0 -> [1, 0]
    np.testing.assert_allclose(d.X_train[0], [1.76405235, 0.40015721], atol=1e-8)
    np.testing.assert_array_equal(d.y_train[0], [1.0, 0.0])
    assert d.n_test == 0 and d.X_test.shape == (0, 2)


def test_xor4_is_the_truth_table():
    d = make_data("xor4", 123)
    np.testing.assert_array_equal(d.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(d.y_train.argmax(1), [0, 1, 1, 0])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_seeded_and_balanced(kind):
    a = make_data(kind, 200, noise=0.1, test_fraction=0.25, seed=3)
    b = make_data(kind, 200, noise=0.1, test_fraction=0.25, seed=3)
    c = make_data(kind, 200, noise=0.1, test_fraction=0.25, seed=4)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    if kind != "xor4":
        assert not np.array_equal(a.X_train, c.X_train)
        assert a.n_train + a.n_test == 200 and a.n_test == 50
        frac = a.y_train[:, 1].mean()
        assert 0.3 < frac < 0.7
    assert a.y_train.shape == (a.n_train, 2)
    assert np.all(a.y_train.sum(axis=1) == 1)


def test_test_split_is_disjoint_and_keeps_order():
    full = make_data("xor", 100, seed=1)
    split = make_data("xor", 100, test_fraction=0.3, seed=1)
    rows = {tuple(r) for r in full.X_train}
    train_rows = [tuple(r) for r in split.X_train]
    test_rows = [tuple(r) for r in split.X_test]
    assert set(train_rows) | set(test_rows) == rows
    assert not set(train_rows) & set(test_rows)
    order = {r: i for i, r in enumerate(tuple(r) for r in full.X_train)}
    assert [order[r] for r in train_rows] == sorted(order[r] for r in train_rows)


def test_dtype_float32():
    d = make_data("moons", 10, dtype="float32")
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.float32
