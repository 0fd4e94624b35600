"""Peer implementations of bench.plain_loop's workload, for an outside view of per-step time.

    python benchmarks/peers.py                       # both sizes, 2000 steps, 5 repeats
    python benchmarks/peers.py --hidden 3 --steps 1000 --repeats 3

The workload is plain_loop's exactly: the 300 XOR points ``RandomState(0).randn(300, 2)``, class
``x0 > 0 XOR x1 > 0``, one-hot targets; a 2-H-2 network, sigmoid hidden and output, no biases;
uniform init ``(2*rs.random_sample((fan_in, fan_out)) - 1) / sqrt(fan_in)`` with
``rs = RandomState(seed)``; loss ``sum((Y - h2)**2)/(2N) + lam/(2N) * (sum(W1**2) + sum(W2**2))``;
full-batch plain SGD; loss and accuracy computed every step.

Peers, each optional (torch and jax are imported inside functions, never at import time):

- ``pytorch``: eager float64 tensors, gradients by autograd, ``torch.set_num_threads(1)``.
- ``jax``: float64 (``jax_enable_x64``) on the CPU, ``jax.value_and_grad`` inside ``lax.scan``
  over the steps, all under ``jax.jit``; compile time is reported apart from steady-state time.

``us_per_step`` is the median over repeats of one training run's wall time divided by its steps.
Data and initial weights are made in NumPy before the clock starts (and handed to every peer, so
all start from the same numbers); each peer gets one untimed warm-up run first. A loss of
~1e-9 relative between a peer and ``numpy_loop`` (``check_agreement``) shows it ran the same math.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

PEERS = {"pytorch": "torch", "jax": "jax"}  # peer name -> the module it needs
N = 300  # XOR points, full batch


# --- the workload, in NumPy --------------------------------------------------------------------


def xor_problem(hidden: int, seed: int) -> tuple[np.ndarray, ...]:
    """plain_loop's data and initial weights: X (N, 2), Y (N, 2), cls (N,), W1, W2; N = 300."""
    rs = np.random.RandomState(seed)
    X = np.random.RandomState(0).randn(N, 2)  # (N, 2)
    cls = np.logical_xor(X[:, 0] > 0, X[:, 1] > 0).astype(int)  # (N,)
    Y = np.eye(2)[cls]  # (N, 2)
    W1 = (2 * rs.random_sample((2, hidden)) - 1) / np.sqrt(2)  # (2, H)
    W2 = (2 * rs.random_sample((hidden, 2)) - 1) / np.sqrt(hidden)  # (H, 2)
    return X, Y, cls, W1, W2


def numpy_loop(
    hidden: int, steps: int, lr: float = 0.5, lam: float = 1e-4, seed: int = 0
) -> tuple[float, float]:
    """plain_loop's math, returning (loss, accuracy) of the last step instead of their sum.

    Loss and accuracy are those of the weights before the last update, as in plain_loop.
    """
    X, Y, cls, W1, W2 = xor_problem(hidden, seed)
    n = X.shape[0]
    loss = acc = 0.0
    for _ in range(steps):
        h1 = 1 / (1 + np.exp(-(X @ W1)))  # (N, H)
        h2 = 1 / (1 + np.exp(-(h1 @ W2)))  # (N, 2)
        loss = ((Y - h2) ** 2).sum() / (2 * n) + lam / (2 * n) * ((W1**2).sum() + (W2**2).sum())
        acc = (h2.argmax(1) == cls).mean()
        dz2 = (h2 - Y) / n * h2 * (1 - h2)  # (N, 2)
        dW2 = h1.T @ dz2 + lam / n * W2  # (H, 2)
        dz1 = (dz2 @ W2.T) * h1 * (1 - h1)  # (N, H)
        dW1 = X.T @ dz1 + lam / n * W1  # (2, H)
        W1 -= lr * dW1
        W2 -= lr * dW2
    return float(loss), float(acc)


# --- PyTorch: eager + autograd -----------------------------------------------------------------


def torch_loop(
    hidden: int, steps: int, lr: float = 0.5, lam: float = 1e-4, seed: int = 0
) -> tuple[float, float]:
    """The workload in eager PyTorch (float64, one thread); returns the last (loss, accuracy)."""
    fn = _torch_runner(hidden, lr, lam, seed)
    return fn(steps)


def _torch_runner(hidden: int, lr: float, lam: float, seed: int) -> Callable[[int], Any]:
    """A function of steps that trains from fresh copies of the initial weights."""
    import torch

    torch.set_num_threads(1)
    X_np, Y_np, cls_np, W1_np, W2_np = xor_problem(hidden, seed)
    X, Y, cls = (torch.from_numpy(a) for a in (X_np, Y_np, cls_np))
    n = X.shape[0]

    def run(steps: int) -> tuple[float, float]:
        W1 = torch.tensor(W1_np, requires_grad=True)  # (2, H), a copy
        W2 = torch.tensor(W2_np, requires_grad=True)  # (H, 2)
        loss = acc = torch.zeros((), dtype=torch.float64)
        for _ in range(steps):
            h1 = torch.sigmoid(X @ W1)  # (N, H)
            h2 = torch.sigmoid(h1 @ W2)  # (N, 2)
            penalty = lam / (2 * n) * ((W1**2).sum() + (W2**2).sum())
            loss = ((Y - h2) ** 2).sum() / (2 * n) + penalty
            acc = (h2.detach().argmax(1) == cls).double().mean()
            dW1, dW2 = torch.autograd.grad(loss, (W1, W2))
            with torch.no_grad():
                W1 -= lr * dW1
                W2 -= lr * dW2
        return loss.item(), acc.item()

    return run


# --- JAX: jit + lax.scan -----------------------------------------------------------------------


def jax_loop(
    hidden: int, steps: int, lr: float = 0.5, lam: float = 1e-4, seed: int = 0
) -> tuple[float, float]:
    """The workload in JAX (float64, CPU, jit over a scan); returns the last (loss, accuracy)."""
    compiled, args = _jax_compiled(hidden, steps, lr, lam, seed)
    return _jax_result(compiled(*args))


def _jax_compiled(
    hidden: int, steps: int, lr: float, lam: float, seed: int
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The ahead-of-time compiled training run and its CPU-resident arguments.

    Data and weights are arguments, not closed-over constants, so XLA cannot fold them away.
    The scan records every step's loss and accuracy (a trainer's metrics), so none is dropped.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    cpu = jax.devices("cpu")[0]
    args = tuple(jax.device_put(a, cpu) for a in xor_problem(hidden, seed))
    n = args[0].shape[0]

    def loss_fn(W: tuple[Any, Any], X: Any, Y: Any) -> tuple[Any, Any]:
        W1, W2 = W
        h1 = jax.nn.sigmoid(X @ W1)  # (N, H)
        h2 = jax.nn.sigmoid(h1 @ W2)  # (N, 2)
        penalty = lam / (2 * n) * ((W1**2).sum() + (W2**2).sum())
        return ((Y - h2) ** 2).sum() / (2 * n) + penalty, h2

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train(X: Any, Y: Any, cls: Any, W1: Any, W2: Any) -> tuple[Any, Any]:
        def step(W: tuple[Any, Any], _: None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
            (loss, h2), (dW1, dW2) = grad_fn(W, X, Y)
            acc = (h2.argmax(1) == cls).mean(dtype=X.dtype)  # bool's mean is float32 otherwise
            return (W[0] - lr * dW1, W[1] - lr * dW2), (loss, acc)

        _, (losses, accs) = jax.lax.scan(step, (W1, W2), None, length=steps)  # (steps,) each
        return losses, accs

    return jax.jit(train).lower(*args).compile(), args


def _jax_result(out: tuple[Any, Any]) -> tuple[float, float]:
    losses, accs = out
    return float(losses[-1]), float(accs[-1])


# --- measuring ---------------------------------------------------------------------------------


def available() -> dict[str, bool]:
    """Which peers can be imported here: {"pytorch": bool, "jax": bool}."""
    found = {}
    for peer, module in PEERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            found[peer] = False
        else:
            found[peer] = True
    return found


def _median_wall(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    walls, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), out


def _measure_torch(hidden: int, steps: int, repeats: int) -> dict[str, Any]:
    import torch

    run = _torch_runner(hidden, 0.5, 1e-4, 0)
    run(min(steps, 20))  # warm-up: first-call dispatch and allocator setup
    wall, (loss, _) = _median_wall(lambda: run(steps), repeats)
    return _row("pytorch", torch.__version__, hidden, wall / steps, None, loss)


def _measure_jax(hidden: int, steps: int, repeats: int) -> dict[str, Any]:
    import jax

    t0 = time.perf_counter()
    compiled, args = _jax_compiled(hidden, steps, 0.5, 1e-4, 0)
    compile_s = time.perf_counter() - t0
    _jax_result(compiled(*args))  # warm-up: the first call's buffer setup

    wall, (loss, _) = _median_wall(lambda: _jax_result(compiled(*args)), repeats)
    return _row("jax", jax.__version__, hidden, wall / steps, compile_s, loss)


def _row(
    peer: str, version: str, hidden: int, s_per_step: float, compile_s: float | None, loss: float
) -> dict[str, Any]:
    return {
        "peer": peer,
        "version": version,
        "hidden": hidden,
        "us_per_step": s_per_step * 1e6,
        "compile_s": compile_s,
        "final_loss": loss,
    }


MEASURES = {"pytorch": _measure_torch, "jax": _measure_jax}
LOOPS = {"pytorch": torch_loop, "jax": jax_loop}


def measure_peers(hidden: int, steps: int, repeats: int) -> list[dict[str, Any]]:
    """One row per installed peer (others are skipped): median µs/step over ``repeats`` runs.

    Row: {"peer", "version", "hidden", "us_per_step", "compile_s" (jax only, else None),
    "final_loss"}. compile_s is jax's trace + lower + compile time, excluded from us_per_step.
    """
    found = available()
    return [MEASURES[peer](hidden, steps, repeats) for peer in PEERS if found[peer]]


def check_agreement(
    hidden: int = 3, steps: int = 50, rtol: float = 1e-9, **kw: float
) -> list[dict[str, Any]]:
    """Each installed peer's last (loss, accuracy) against numpy_loop's after the same steps.

    Row: {"peer", "hidden", "steps", "loss", "numpy_loss", "rel_err", "acc", "numpy_acc", "ok"};
    ok when the relative loss error is at most rtol and the same number of points is right
    (a mean's last bit may differ with its summation order, a count's may not).
    kw (lr, lam, seed) is passed to both loops.
    """
    ref_loss, ref_acc = numpy_loop(hidden, steps, **kw)  # type: ignore[arg-type]
    found = available()
    rows = []
    for peer in PEERS:
        if not found[peer]:
            continue
        loss, acc = LOOPS[peer](hidden, steps, **kw)  # type: ignore[arg-type]
        rel = abs(loss - ref_loss) / abs(ref_loss)
        rows.append(
            {
                "peer": peer,
                "hidden": hidden,
                "steps": steps,
                "loss": loss,
                "numpy_loss": ref_loss,
                "rel_err": rel,
                "acc": acc,
                "numpy_acc": ref_acc,
                "ok": rel <= rtol and round(acc * N) == round(ref_acc * N),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hidden", type=int, nargs="+", default=[3, 50], help="hidden units (3, 50)")
    ap.add_argument("--steps", type=int, default=2000, help="training steps per run (2000)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per figure; the median (5)")
    args = ap.parse_args(argv)

    checks = [row for h in args.hidden for row in check_agreement(h, 50)]
    rows = [row for h in args.hidden for row in measure_peers(h, args.steps, args.repeats)]
    print(json.dumps({"available": available(), "agreement": checks, "rows": rows}, indent=2))
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
