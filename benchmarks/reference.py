"""The hand-written reference for the scale benchmark: the same random search as
benchmarks/sweep_scale.yaml, written as a person would without xorlab.

Groups of 64 networks as one stacked NumPy loop (weights (K, fan_in, fan_out)), the groups spread
over a 2-process pool, every step's 15 metrics that xorlab keeps for this network (step, epoch,
lr, loss, data and penalty loss, train accuracy, gradient norm, clip flag, per-matrix gradient and
weight norms, the saturated share of the hidden layer, the first layer's update ratio) kept in
float64 and saved as one .npy array per group, the final weights as one more. Same data, same
initialization (each member's RandomState(seed)), same update.

    python benchmarks/reference.py N STEPS OUT_DIR
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np

GROUP = 64


def draws(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lr, strength, seed) of the scale sweep's first n members, drawn as xorlab draws them
    (draw by draw from one RandomState, so the first n do not depend on the file's n)."""
    from xorlab import yamlio
    from xorlab.axes import draw_random
    from xorlab.sweep import RandomSpec

    doc = yamlio.load_file(Path(__file__).with_name("sweep_scale.yaml"))
    d = draw_random(RandomSpec.model_validate({**doc["random"], "n": n}), "sweep_scale.yaml")
    lr = np.array([x["optim.lr"] for x in d])
    lam = np.array([x["regularization.strength"] for x in d])
    return lr, lam, np.zeros(n, dtype=int)  # no seeds axis: every member has the base's seed 0


def group(args: tuple[int, np.ndarray, np.ndarray, np.ndarray, int, str]) -> int:
    """Train one group and save its metrics (steps, K, 15) and final weights."""
    first, lr_, lam, seeds, steps, out = args
    from xorlab.data import make_data

    K = len(lr_)
    d = make_data(kind="xor", n=300, noise=0.0, test_fraction=0.0, seed=0)
    X, Y = d.X_train, d.y_train
    cls = Y.argmax(1)
    n = X.shape[0]
    inits = [np.random.RandomState(int(s)) for s in seeds]
    W1 = np.stack([(2 * rs.random_sample((2, 3)) - 1) / np.sqrt(2) for rs in inits])
    W2 = np.stack([(2 * rs.random_sample((3, 2)) - 1) / np.sqrt(3) for rs in inits])
    lr = lr_[:, None, None]
    table = np.empty((steps, K, 15))
    for t in range(steps):
        h1 = 1 / (1 + np.exp(-(X @ W1)))  # (K, N, 3)
        h2 = 1 / (1 + np.exp(-(h1 @ W2)))  # (K, N, 2)
        dl = ((Y - h2) ** 2).sum(axis=(1, 2)) / (2 * n)
        s1, s2 = (W1**2).sum(axis=(1, 2)), (W2**2).sum(axis=(1, 2))
        rl = lam / (2 * n) * (s1 + s2)
        acc = (h2.argmax(2) == cls).mean(axis=1)
        sat = ((h1 < 0.01) | (h1 > 0.99)).mean(axis=(1, 2))
        dz2 = (h2 - Y) / n * h2 * (1 - h2)
        dW2 = h1.swapaxes(1, 2) @ dz2 + (lam / n)[:, None, None] * W2
        dz1 = (dz2 @ W2.swapaxes(1, 2)) * h1 * (1 - h1)
        dW1 = X.T @ dz1 + (lam / n)[:, None, None] * W1
        g1, g2 = (dW1**2).sum(axis=(1, 2)), (dW2**2).sum(axis=(1, 2))
        step1 = lr * dW1
        row = table[t]
        row[:, 0], row[:, 1], row[:, 2] = t, t, lr_
        row[:, 3], row[:, 4], row[:, 5], row[:, 6] = dl + rl, dl, rl, acc
        row[:, 7], row[:, 8] = np.sqrt(g1 + g2), 0
        row[:, 9], row[:, 10], row[:, 11], row[:, 12] = (
            np.sqrt(g1),
            np.sqrt(g2),
            np.sqrt(s1),
            np.sqrt(s2),
        )
        row[:, 13] = sat
        row[:, 14] = np.sqrt((step1**2).sum(axis=(1, 2)) / s1)
        W1 -= step1
        W2 -= lr * dW2
    np.save(Path(out) / f"metrics-{first:06d}.npy", table)
    np.savez(Path(out) / f"weights-{first:06d}.npz", W1=W1, W2=W2)
    return K


def run(n: int, steps: int, out: Path, jobs: int = 2) -> int:
    """The whole sweep: groups of 64 over a ``jobs``-process pool; returns the networks trained."""
    lr, lam, seeds = draws(n)  # (a few ms; xorlab's sweep draws them inside its timing too)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(a, lr[a : a + GROUP], lam[a : a + GROUP], seeds[a : a + GROUP], steps, str(out))
             for a in range(0, n, GROUP)]  # fmt: skip
    with mp.get_context("forkserver").Pool(jobs, initializer=_one_thread) as pool:
        return sum(pool.imap_unordered(group, tasks))


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


if __name__ == "__main__":
    print(run(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
