"""Training telemetry (DESIGN.md section 1): the sharpness and the health of the hidden layers.

Pure functions of the arrays a training step already has, called by ``train`` (and, per member,
by the population engine, so a sweep member gets the numbers a run trained alone gets).

- ``sharpness``: the top eigenvalue of the Hessian of the step's objective (the batch's data
  loss + the penalty, N = training rows), by power iteration on ``nn.hvp``, warm-started from the
  previous measurement's vector; ``sharpness_iters``: the Hessian-vector products it took.
  Gradient descent is stable along the top eigenvector while sharpness < 2/lr_t
  ((2 + 2*momentum)/lr_t with momentum).
- ``saturated_hl`` (sigmoid, tanh): the fraction of (row, unit) entries of hidden layer l in a
  flat tail: sigmoid h < 0.01 or h > 0.99, tanh |h| > 0.99.
- ``dead_hl`` (relu): the fraction of layer l's units that are 0 on every row of the batch.
- ``update_ratio_Wl``: ||W_l after update t - W_l before|| / ||W_l before||, for hidden layer l.

This module imports only numpy and nn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from . import nn

Array = np.ndarray
SHARPNESS_TOL = 1e-4  # stop at |Hv - lam v|**2 <= tol * lam**2: rel. error <= tol * lam / gap
SHARPNESS_MAX_ITER = 100  # at most this many Hessian-vector products per measurement
SHARPNESS_SEED = 0  # the cold start's direction: RandomState(0), never the training's own
SIGMOID_TAIL = 0.01  # sigmoid h < 0.01 or h > 0.99 is saturated
TANH_TAIL = 0.99  # tanh |h| > 0.99 is saturated


def activation_columns(spec: nn.NetSpec) -> list[str]:
    """The per-layer columns for the hidden layers: saturated_hl (sigmoid, tanh) or dead_hl
    (relu), then update_ratio_Wl, for l = 1 .. L-1."""
    hidden = range(1, spec.n_layers)
    kind = "dead" if spec.activation == "relu" else "saturated"
    return [f"{kind}_h{layer}" for layer in hidden] + [f"update_ratio_W{layer}" for layer in hidden]


def columns(spec: nn.NetSpec, *, sharpness: bool, activations: bool) -> list[str]:
    """The telemetry columns of metrics.csv, in order (after the norms)."""
    cols = ["sharpness", "sharpness_iters"] if sharpness else []
    return cols + (activation_columns(spec) if activations else [])


def layer_health(hs: Sequence[Array], activation: str) -> list[float]:
    """saturated_hl or dead_hl of each hidden layer, from a forward pass's h_1 .. h_{L-1}
    (each ``(N, units)``): fractions, exact (a count over a count)."""
    out = []
    for h in hs:
        if activation == "relu":
            alive = np.logical_or.reduce(h > 0, axis=-2)  # (units,): on for some row
            out.append((alive.size - int(np.count_nonzero(alive))) / alive.size)
        elif activation == "sigmoid":
            flat = np.count_nonzero(h < SIGMOID_TAIL) + np.count_nonzero(h > 1.0 - SIGMOID_TAIL)
            out.append(int(flat) / h.size)
        else:
            out.append(int(np.count_nonzero(np.abs(h) > TANH_TAIL)) / h.size)
    return out


def layer_health_each(hs: Sequence[Array], activation: str) -> list[Array]:
    """``layer_health`` for each network of a stack: h_l ``(K, N, units)`` -> ``(K,)``, the same
    numbers (a count over a count) each network gets alone."""
    out = []
    for h in hs:
        if activation == "relu":
            alive = np.logical_or.reduce(h > 0, axis=-2)  # (K, units)
            units = alive.shape[-1]
            out.append((units - np.count_nonzero(alive, axis=-1)) / units)
        else:
            size = h.shape[-2] * h.shape[-1]
            if activation == "sigmoid":  # the two tails are disjoint: one mask counts both
                flat = h < SIGMOID_TAIL
                flat |= h > 1.0 - SIGMOID_TAIL
            else:
                flat = np.abs(h) > TANH_TAIL
            out.append(_count_each(flat) / size)
    return out


def _count_each(mask: Array) -> Array:
    """The True entries of each network's ``(N, units)`` slice of ``mask (K, N, units)``: the
    same integers as ``np.count_nonzero(mask, axis=(-2, -1))``, 12x faster (that casts every
    bool to intp through a buffered loop; here rows are summed as bytes first, then units)."""
    per_unit = np.add.reduce(mask.view(np.uint8), axis=-2, dtype=np.int64)  # (K, units)
    return np.add.reduce(per_unit, axis=-1)


def update_ratio(before: Array, after: Array, wsq_before: float) -> float:
    """||after - before|| / ||before||; ``wsq_before`` is ||before||**2 (the metrics row's
    weight_norm, squared, already computed). NaN for a zero or non-finite matrix."""
    d = (after - before).ravel()
    if not (wsq_before > 0 and math.isfinite(wsq_before)):
        return float("nan")
    return math.sqrt(float(d.dot(d))) / math.sqrt(wsq_before)


class Sharpness:
    """The sharpness of one network, measured now and then, each time warm-started from the
    last measurement's vector (the top eigenvector moves little between nearby steps)."""

    def __init__(self, tol: float = SHARPNESS_TOL, max_iter: int = SHARPNESS_MAX_ITER) -> None:
        self.tol, self.max_iter = tol, max_iter
        self.vector: dict[str, Array] | None = None

    def measure(
        self,
        params: Mapping[str, Array],
        cache: nn.Cache,
        Y: Array,
        spec: nn.NetSpec,
        n_penalty: int,
    ) -> tuple[float, int]:
        """(top eigenvalue, Hessian-vector products used) at ``params``; ``cache`` is the
        step's forward pass on its batch ``Y``. (NaN, 0) when the parameters are not finite."""
        if not all(np.isfinite(p).all() for p in params.values()):
            return float("nan"), 0
        v0 = self.vector
        if v0 is None:
            v0 = nn.random_direction(params, np.random.RandomState(SHARPNESS_SEED))

        def hv(v: dict[str, Array]) -> dict[str, Array]:
            return nn.hvp(params, cache, Y, spec, v, n_penalty)

        eig = nn.top_eigenvalue(hv, v0, self.tol, self.max_iter)
        if all(np.isfinite(x).all() for x in eig.vector.values()):
            self.vector = eig.vector
        return eig.value, eig.iters


def stability_limit(lr: float, kind: str, momentum: float) -> float:
    """The sharpness above which gradient descent is unstable along the top eigenvector:
    2/lr for sgd, (2 + 2*momentum)/lr for heavy-ball momentum; NaN for adam (its step is
    preconditioned, the limit is not a number of lr alone) or lr <= 0."""
    if kind == "adam" or not lr > 0:
        return float("nan")
    mu = momentum if kind == "momentum" else 0.0
    return (2.0 + 2.0 * mu) / lr
