"""Seeded 2-D toy data sets with one-hot targets (DESIGN.md section 1).

xor (the tutorial's): X = RandomState(seed).randn(n, 2); class = (x0 > 0) XOR (x1 > 0);
class 0 -> [1, 0], class 1 -> [0, 1]. ``noise`` adds Gaussian jitter to X after labelling.
xor4: the 4-row truth table (n is ignored). circles, moons, spiral: as in scikit-learn's
make_circles / make_moons and CS231n's spiral, with ``noise`` the std of Gaussian jitter.
``test_fraction`` holds out a seeded random subset; both parts keep the generated row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("xor", "xor4", "circles", "moons", "spiral")


@dataclass(frozen=True)
class Dataset:
    X_train: np.ndarray  # (n_train, 2)
    y_train: np.ndarray  # (n_train, 2) one-hot
    X_test: np.ndarray  # (n_test, 2), may have 0 rows
    y_test: np.ndarray  # (n_test, 2)

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])


def one_hot(labels: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """Class indices (n,) -> one-hot (n, C)."""
    return np.eye(n_classes)[labels]  # (n, C)


def _xor(n: int, noise: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    X = rs.randn(n, 2)  # (n, 2)
    labels = np.logical_xor(X[:, 0] > 0, X[:, 1] > 0).astype(int)
    if noise > 0:
        X = X + noise * rs.randn(n, 2)
    return X, labels


def _xor4(n: int, noise: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # (4, 2)
    labels = np.array([0, 1, 1, 0])
    if noise > 0:
        X = X + noise * rs.randn(4, 2)
    return X, labels


def _circles(n: int, noise: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.concatenate(
        [np.c_[np.cos(t_out), np.sin(t_out)], 0.5 * np.c_[np.cos(t_in), np.sin(t_in)]]
    )  # (n, 2)
    labels = np.r_[np.zeros(n_out, int), np.ones(n_in, int)]
    perm = rs.permutation(n)
    X, labels = X[perm], labels[perm]
    if noise > 0:
        X = X + noise * rs.randn(n, 2)
    return X, labels


def _moons(n: int, noise: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    n_a = n // 2
    n_b = n - n_a
    ta = np.linspace(0, np.pi, n_a)
    tb = np.linspace(0, np.pi, n_b)
    X = np.concatenate(
        [np.c_[np.cos(ta), np.sin(ta)], np.c_[1 - np.cos(tb), 0.5 - np.sin(tb)]]
    )  # (n, 2)
    labels = np.r_[np.zeros(n_a, int), np.ones(n_b, int)]
    perm = rs.permutation(n)
    X, labels = X[perm], labels[perm]
    if noise > 0:
        X = X + noise * rs.randn(n, 2)
    return X, labels


def _spiral(n: int, noise: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    n_a = n // 2
    parts, labels = [], []
    for cls, m in enumerate((n_a, n - n_a)):
        r = np.linspace(0.05, 1.0, m)
        theta = np.linspace(0, 3 * np.pi, m) + cls * np.pi
        parts.append(np.c_[r * np.cos(theta), r * np.sin(theta)])
        labels.append(np.full(m, cls))
    X = np.concatenate(parts)  # (n, 2)
    lab = np.concatenate(labels)
    perm = rs.permutation(n)
    X, lab = X[perm], lab[perm]
    if noise > 0:
        X = X + noise * rs.randn(n, 2)
    return X, lab


GENERATORS = {
    "xor": _xor,
    "xor4": _xor4,
    "circles": _circles,
    "moons": _moons,
    "spiral": _spiral,
}


def make_data(
    kind: str,
    n: int,
    *,
    noise: float = 0.0,
    test_fraction: float = 0.0,
    seed: int = 0,
    dtype: str = "float64",
) -> Dataset:
    """Generate a data set and split off ``test_fraction`` of its rows, all from ``seed``."""
    rs = np.random.RandomState(seed)
    X, labels = GENERATORS[kind](n, noise, rs)
    Y = one_hot(labels)
    rows = X.shape[0]
    n_test = int(np.floor(rows * test_fraction))
    if n_test > 0:
        perm = rs.permutation(rows)
        test_idx = np.sort(perm[:n_test])
        train_idx = np.sort(perm[n_test:])
    else:
        test_idx = np.arange(0)
        train_idx = np.arange(rows)
    return Dataset(
        X_train=X[train_idx].astype(dtype),
        y_train=Y[train_idx].astype(dtype),
        X_test=X[test_idx].reshape(-1, 2).astype(dtype),
        y_test=Y[test_idx].reshape(-1, 2).astype(dtype),
    )
