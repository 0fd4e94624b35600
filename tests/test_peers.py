"""benchmarks/peers.py: the NumPy reference is plain_loop's math; absent peers are skipped quietly.

The PyTorch and JAX peers are optional: their tests skip where torch or jax is not installed
(as in the project's own .venv), and run the same workload against the NumPy loop where it is.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def peers(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("peers", "bench"):
        sys.modules.pop(name, None)
    import peers

    return peers


@pytest.fixture
def no_peers(monkeypatch):
    """Make `import torch` and `import jax` fail, as where neither is installed."""
    for module in ("torch", "jax"):
        monkeypatch.setitem(sys.modules, module, None)


def test_importing_peers_imports_neither_torch_nor_jax(peers):
    source = (BENCH / "peers.py").read_text()
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in top_level if "torch" in line or "jax" in line]


def test_available_reflects_what_is_installed(peers):
    installed = {p: importlib.util.find_spec(m) is not None for p, m in peers.PEERS.items()}
    assert peers.available() == installed


def test_absent_peers_are_skipped_without_error_or_warning(peers, no_peers):
    assert peers.available() == {"pytorch": False, "jax": False}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert peers.measure_peers(hidden=3, steps=5, repeats=1) == []
        assert peers.check_agreement(hidden=3, steps=5) == []


@pytest.mark.parametrize(
    "hidden, steps, kw",
    [(3, 50, {}), (50, 50, {}), (3, 7, {"lr": 3.0, "lam": 1e-2, "seed": 4}), (2, 1, {})],
)
def test_numpy_loop_is_plain_loops_math(peers, hidden, steps, kw):
    import bench

    loss, acc = peers.numpy_loop(hidden, steps, **kw)
    # plain_loop returns loss + accuracy, computed by the same operations in the same order
    assert loss + acc == bench.plain_loop(hidden, steps, **kw)
    assert 0 < loss < 1  # 2N squared errors, each below 1, over 2N (+ a small penalty)
    assert round(acc * peers.N) == pytest.approx(acc * peers.N, abs=1e-9)  # k points of 300


def test_zero_steps_reports_zero_like_plain_loop(peers):
    assert peers.numpy_loop(3, 0) == (0.0, 0.0)


def test_xor_problem_is_plain_loops_data_and_init(peers):
    import numpy as np

    X, Y, cls, W1, W2 = peers.xor_problem(hidden=4, seed=1)
    assert X.shape == (300, 2) and Y.shape == (300, 2) and cls.shape == (300,)
    assert W1.shape == (2, 4) and W2.shape == (4, 2)
    assert (cls == ((X[:, 0] > 0) != (X[:, 1] > 0))).all()
    assert (Y.argmax(1) == cls).all() and (Y.sum(1) == 1).all()
    assert np.abs(W1).max() <= 1 / np.sqrt(2) and np.abs(W2).max() <= 1 / np.sqrt(4)


@pytest.mark.parametrize("peer, module", [("pytorch", "torch"), ("jax", "jax")])
@pytest.mark.parametrize("hidden", [3, 50])
def test_peer_runs_the_same_workload(peers, peer, module, hidden):
    pytest.importorskip(module)
    rows = [r for r in peers.check_agreement(hidden, steps=50) if r["peer"] == peer]
    assert len(rows) == 1 and rows[0]["ok"], rows
    assert rows[0]["rel_err"] <= 1e-9


@pytest.mark.parametrize("peer, module", [("pytorch", "torch"), ("jax", "jax")])
def test_measure_peers_row(peers, peer, module):
    pytest.importorskip(module)
    (row,) = [r for r in peers.measure_peers(hidden=3, steps=20, repeats=2) if r["peer"] == peer]
    assert set(row) == {"peer", "version", "hidden", "us_per_step", "compile_s", "final_loss"}
    assert row["hidden"] == 3 and row["us_per_step"] > 0 and row["version"]
    assert (row["compile_s"] is None) == (peer == "pytorch")
    assert row["final_loss"] == pytest.approx(peers.numpy_loop(3, 20)[0], rel=1e-9)
