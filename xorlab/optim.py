"""Learning-rate schedules, gradient clipping and parameter updates (DESIGN.md section 1).

All pure functions of their arguments, except ``clip``, ``clip_each`` and ``update``, which change
the gradient, parameter and state arrays in place (the trainer owns them; copies would cost time).

Like ``nn``, everything works for one network or a stack of K (arrays ``(K, ...)``): a scalar
setting (lr, momentum, betas, eps, clip max, schedule fields) may then be an array ``(K,)``, one
value per network, and each network gets exactly the numbers it would get alone (``scalar_for``
rounds and shapes it as numpy does a Python float; ``_pow`` uses Python's own power).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .funcs import scalar_for

Params = dict[str, np.ndarray]
Scalar = float | np.ndarray  # a number, or one per stacked network (K,)


def _pow(base: Scalar, e: int | np.ndarray) -> Scalar:
    """base**e; for arrays element by element with Python's float power, not np.power (whose
    SIMD versions may differ from the C library's pow in the last bit)."""
    if not isinstance(base, np.ndarray) and not isinstance(e, np.ndarray):
        return base**e
    b, x = np.broadcast_arrays(base, e)
    return np.array([bi**xi for bi, xi in zip(b.tolist(), x.tolist())], dtype=np.float64)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule; the fields used depend on ``kind``."""

    # constant | step | exponential | inverse_time | cosine | reduce_on_plateau
    kind: str = "constant"
    lr: Scalar = 0.003  # base learning rate
    steps: int = 1000  # T, the run's length (cosine)
    gamma: Scalar = 0.5  # step, exponential: the factor
    every: int | np.ndarray = 100  # step: steps between decays
    decay: Scalar = 0.01  # inverse_time: lr / (1 + decay*t)
    lr_min: Scalar = 0.0  # cosine: the floor
    warmup: int | np.ndarray = 0  # linear warm-up steps (0: none)


def get_lr(s: Schedule, t: int) -> Scalar:
    """Learning rate at step t (0-based); one per network when the schedule's fields are arrays.

    1. the schedule proper:
       constant: lr;  step: lr * gamma**floor(t/every);  exponential: lr * gamma**t;
       inverse_time: lr / (1 + decay*t);  cosine: lr_min + (lr - lr_min)*(1 + cos(pi*t/T))/2
       reduce_on_plateau: lr, which the trainer lowers on a plateau (stopping.ReduceOnPlateau)
    2. warm-up: for t < warmup, times (t + 1)/warmup.
    """
    if s.kind in ("constant", "reduce_on_plateau"):  # plateau: the caller lowers s.lr itself
        lr = s.lr
    elif s.kind == "step":
        lr = s.lr * _pow(s.gamma, t // s.every)
    elif s.kind == "exponential":
        lr = s.lr * _pow(s.gamma, t)
    elif s.kind == "inverse_time":
        lr = s.lr / (1.0 + s.decay * t)
    elif s.kind == "cosine":
        lr = s.lr_min + (s.lr - s.lr_min) * (1.0 + math.cos(math.pi * t / s.steps)) / 2.0
    else:
        raise ValueError(f"unknown schedule {s.kind!r}")
    if isinstance(s.warmup, np.ndarray):
        warming = t < s.warmup  # (K,)
        if warming.any():
            lr = np.where(warming, lr * ((t + 1) / np.maximum(s.warmup, 1)), lr)
    elif t < s.warmup:
        lr = lr * ((t + 1) / s.warmup)
    return lr


def sq_norm(a: np.ndarray) -> float:
    """sum(a**2), by BLAS dot: the summation order every norm in the metrics uses."""
    flat = a.ravel()
    return float(flat.dot(flat))  # the method skips np.dot's dispatch: ~0.3 us a call


def sq_norms(arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Sum of squares of each array: the per-parameter squared norms."""
    return {k: sq_norm(a) for k, a in arrays.items()}


def sq_norm_each(a: np.ndarray) -> np.ndarray:
    """sq_norm(a[k]) for each network of a stack ``(K, ...)``, as one call, in float64.

    ``(K, 1, P) @ (K, P, 1)`` has numpy call the same BLAS dot once per k, so each value equals
    sq_norm(a[k]) to the bit (a sum over axes would add in another order).
    """
    flat = a.reshape(a.shape[0], 1, -1)  # (K, 1, P)
    return (flat @ flat.swapaxes(-1, -2)).reshape(a.shape[0]).astype(np.float64)  # (K,)


def clip(grads: Params, kind: str, max_value: float, total_norm: float) -> bool:
    """Clip the full gradient in place; returns whether anything changed.

    value: each element to [-max, max].
    norm:  g = sqrt(sum of squares of every gradient); if g > max, every gradient *= max/g.
    ``total_norm`` is g, computed by the caller for the metrics anyway.
    """
    if kind == "none":
        return False
    if kind == "value":
        changed = False
        for g in grads.values():
            if np.abs(g).max(initial=0.0) > max_value:
                np.clip(g, -max_value, max_value, out=g)
                changed = True
        return changed
    if kind == "norm":
        if total_norm > max_value:
            scale = max_value / total_norm
            for g in grads.values():
                g *= scale
            return True
        return False
    raise ValueError(f"unknown clip kind {kind!r}")


def clip_each(grads: Params, kind: str, max_value: Scalar, total_norm: np.ndarray) -> np.ndarray:
    """``clip`` for a stack of K networks (gradients ``(K, ...)``, ``total_norm`` ``(K,)``);
    returns whether each network's gradient changed, ``(K,)``.

    Clipping values already inside [-max, max], or scaling by 1.0, changes nothing, so every
    network is treated alike and each gets the numbers ``clip`` gives it alone.
    """
    K = total_norm.shape[0]
    if kind == "none":
        return np.zeros(K, dtype=bool)
    if kind == "value":
        changed = np.zeros(K, dtype=bool)
        for g in grads.values():
            biggest = np.abs(g).reshape(K, -1).max(axis=1, initial=0.0)  # (K,)
            changed |= biggest > scalar_for(max_value, biggest)
            bound = scalar_for(max_value, g)
            np.clip(g, -bound, bound, out=g)
        return changed
    if kind == "norm":
        changed = total_norm > max_value  # (K,)
        scale = np.where(changed, max_value / total_norm, 1.0)
        for g in grads.values():
            g *= scalar_for(scale, g)
        return changed
    raise ValueError(f"unknown clip kind {kind!r}")


@dataclass(frozen=True)
class OptimSpec:
    kind: str = "sgd"  # sgd | momentum | adam
    momentum: Scalar = 0.9  # mu, momentum only
    beta1: Scalar = 0.9  # adam
    beta2: Scalar = 0.999  # adam
    eps: Scalar = 1e-8  # adam


def init_state(spec: OptimSpec, params: Mapping[str, np.ndarray]) -> dict[str, Params]:
    """Optimizer state: velocity for momentum, first and second moments for adam."""
    if spec.kind == "momentum":
        return {"v": {k: np.zeros_like(p) for k, p in params.items()}}
    if spec.kind == "adam":
        return {
            "m": {k: np.zeros_like(p) for k, p in params.items()},
            "v": {k: np.zeros_like(p) for k, p in params.items()},
        }
    return {}


def update(
    spec: OptimSpec, params: Params, grads: Params, state: dict[str, Params], lr: Scalar, t: int
) -> None:
    """Apply update t (0-based) in place.

    sgd:      theta -= lr*g
    momentum: v = mu*v + g;  theta -= lr*v
    adam:     m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g**2;
              theta -= lr * (m/(1-b1**(t+1))) / (sqrt(v/(1-b2**(t+1))) + eps)

    Scalars are computed in float64, then rounded once to the parameters' dtype (scalar_for).
    """
    like = next(iter(params.values()))  # every parameter has the same dtype and rank
    lr = scalar_for(lr, like)
    if spec.kind == "sgd":
        for k, p in params.items():
            p -= lr * grads[k]
    elif spec.kind == "momentum":
        vs = state["v"]
        mu = scalar_for(spec.momentum, like)
        for k, p in params.items():
            v = vs[k]
            v *= mu
            v += grads[k]
            p -= lr * v
    elif spec.kind == "adam":
        b1, b2 = spec.beta1, spec.beta2
        c1 = scalar_for(1.0 - _pow(b1, t + 1), like)
        c2 = scalar_for(1.0 - _pow(b2, t + 1), like)
        keep1, new1 = scalar_for(b1, like), scalar_for(1.0 - b1, like)
        keep2, new2 = scalar_for(b2, like), scalar_for(1.0 - b2, like)
        eps = scalar_for(spec.eps, like)
        for k, p in params.items():
            g = grads[k]
            m = state["m"][k]
            v = state["v"][k]
            m *= keep1
            m += new1 * g
            v *= keep2
            v += new2 * (g * g)
            p -= lr * (m / c1) / (np.sqrt(v / c2) + eps)
    else:
        raise ValueError(f"unknown optimizer {spec.kind!r}")
