"""Learning-rate schedules, gradient clipping and parameter updates (DESIGN.md section 1).

All pure functions of their arguments, except the ``*_update`` functions, which update the
parameter and state arrays in place (the trainer owns them and the copies would cost time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule; the fields used depend on ``kind``."""

    kind: str = "constant"  # constant | step | exponential | inverse_time | cosine
    lr: float = 0.003  # base learning rate
    steps: int = 1000  # T, the run's length (cosine)
    gamma: float = 0.5  # step, exponential: the factor
    every: int = 100  # step: steps between decays
    decay: float = 0.01  # inverse_time: lr / (1 + decay*t)
    lr_min: float = 0.0  # cosine: the floor
    warmup: int = 0  # linear warm-up steps (0: none)


def get_lr(s: Schedule, t: int) -> float:
    """Learning rate at step t (0-based).

    1. the schedule proper:
       constant: lr;  step: lr * gamma**floor(t/every);  exponential: lr * gamma**t;
       inverse_time: lr / (1 + decay*t);  cosine: lr_min + (lr - lr_min)*(1 + cos(pi*t/T))/2
    2. warm-up: for t < warmup, times (t + 1)/warmup.
    """
    if s.kind == "constant":
        lr = s.lr
    elif s.kind == "step":
        lr = s.lr * s.gamma ** (t // s.every)
    elif s.kind == "exponential":
        lr = s.lr * s.gamma**t
    elif s.kind == "inverse_time":
        lr = s.lr / (1.0 + s.decay * t)
    elif s.kind == "cosine":
        lr = s.lr_min + (s.lr - s.lr_min) * (1.0 + math.cos(math.pi * t / s.steps)) / 2.0
    else:
        raise ValueError(f"unknown schedule {s.kind!r}")
    if t < s.warmup:
        lr *= (t + 1) / s.warmup
    return lr


def sq_norm(a: np.ndarray) -> float:
    """sum(a**2), by BLAS dot: the summation order every norm in the metrics uses."""
    flat = a.ravel()
    return float(flat.dot(flat))  # the method skips np.dot's dispatch: ~0.3 us a call


def sq_norm_list(arrays: Iterable[np.ndarray]) -> list[float]:
    """sq_norm of each array, in order."""
    return [float(a.ravel().dot(a.ravel())) for a in arrays]


def sq_norms(arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Sum of squares of each array: the per-parameter squared norms."""
    return {k: sq_norm(a) for k, a in arrays.items()}


def sq_norm_each(a: np.ndarray) -> np.ndarray:
    """sq_norm(a[k]) for each network of a stack ``(K, ...)``, as one call: ``(K, 1, P) @ (K, P, 1)``
    has numpy call the same BLAS dot for each k, so each value equals sq_norm(a[k]) to the bit."""
    flat = a.reshape(a.shape[0], 1, -1)  # (K, 1, P)
    return (flat @ flat.swapaxes(-1, -2)).reshape(a.shape[0])  # (K,)


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


@dataclass(frozen=True)
class OptimSpec:
    kind: str = "sgd"  # sgd | momentum | adam
    momentum: float = 0.9  # mu, momentum only
    beta1: float = 0.9  # adam
    beta2: float = 0.999  # adam
    eps: float = 1e-8  # adam


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
    spec: OptimSpec, params: Params, grads: Params, state: dict[str, Params], lr: float, t: int
) -> None:
    """Apply update t (0-based) in place.

    sgd:      theta -= lr*g
    momentum: v = mu*v + g;  theta -= lr*v
    adam:     m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g**2;
              theta -= lr * (m/(1-b1**(t+1))) / (sqrt(v/(1-b2**(t+1))) + eps)
    """
    if spec.kind == "sgd":
        for k, p in params.items():
            p -= lr * grads[k]
    elif spec.kind == "momentum":
        vs = state["v"]
        for k, p in params.items():
            v = vs[k]
            v *= spec.momentum
            v += grads[k]
            p -= lr * v
    elif spec.kind == "adam":
        b1, b2 = spec.beta1, spec.beta2
        c1 = 1.0 - b1 ** (t + 1)
        c2 = 1.0 - b2 ** (t + 1)
        for k, p in params.items():
            g = grads[k]
            m = state["m"][k]
            v = state["v"][k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            p -= lr * (m / c1) / (np.sqrt(v / c2) + spec.eps)
    else:
        raise ValueError(f"unknown optimizer {spec.kind!r}")
