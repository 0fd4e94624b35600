"""The network's functions, each beside its derivative: the hidden activations (with their
second derivatives, for ``nn.hvp``), the output layers and losses, and the penalties on weight
matrices. Registries map the config's literal names to them (``ACTIVATIONS``, ``DERIVATIVES``,
``CURVATURES``, ``OUTPUT_DELTAS``, ``PENALTIES``); ``nn`` composes them into the network.

Every function is written for any number of leading axes, as ``nn``'s are (a stack of K networks
is ``(K, ...)``). Per-network scalars follow the same rule: the penalty's ``strength`` may be one
value per network (an array ``(K,)``); it is reshaped to broadcast against ``(K, ...)`` and
rounded to the parameters' dtype exactly as numpy rounds a Python float (see ``scalar_for``).

Intermediate arrays are made once and then updated in place (``out=``): the same arithmetic, in
the same order, as the textbook expressions in the docstrings, without a temporary per operation.

This module imports only numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray
_sum = np.add.reduce  # what ndarray.sum calls, without its Python wrapper


def scalar_for(x: float | Array, like: Array) -> float | Array:
    """A scalar coefficient ready to combine with ``like``.

    A Python number passes unchanged (numpy rounds it to ``like``'s dtype). A per-network array
    ``(K,)`` is rounded to ``like``'s dtype the same way and reshaped to ``(K, 1, ...)`` so it
    broadcasts over ``like``'s trailing axes: K networks then get exactly the numbers each would
    get alone.
    """
    if not isinstance(x, np.ndarray):
        return x
    return x.astype(like.dtype, copy=False).reshape(x.shape + (1,) * (like.ndim - x.ndim))


# --- activations: each function beside its derivative, written from the output h ---------------


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """sigmoid(z) = 1 / (1 + exp(-z)). ``out`` may be ``z`` itself.

    Where exp(-z) overflows (z below about -709 in float64), 1 / (1 + inf) gives 0.0, the
    correctly rounded value: the overflow is expected and not reported. (0.5 + 0.5*tanh(z/2) is
    as stable but np.tanh costs ~2x np.exp.)
    """
    e = np.negative(z, out=out)
    return sigmoid_of_negated(e, out=e)


def sigmoid_of_negated(zn: Array, out: Array | None = None) -> Array:
    """sigmoid(z) from zn = -z: 1 / (1 + exp(zn)). ``forward`` gets zn for free as h @ (-W) - b
    (exactly -z, bit for bit: rounding is symmetric in sign), which saves a pass over z."""
    with np.errstate(over="ignore"):
        e = np.exp(zn, out=out)
    e += 1.0
    return np.divide(1.0, e, out=e)


def sigmoid_der(h: Array) -> Array:
    """sigmoid'(z) = h * (1 - h)."""
    d = np.subtract(1.0, h)
    d *= h
    return d


def tanh(z: Array, out: Array | None = None) -> Array:
    """tanh(z) (the tutorial's code computes tanh(z/2); the gradient check catches that)."""
    return np.tanh(z, out=out)


def tanh_der(h: Array) -> Array:
    """tanh'(z) = 1 - h**2."""
    d = h * h
    return np.subtract(1.0, d, out=d)


def relu(z: Array, out: Array | None = None) -> Array:
    """relu(z) = max(z, 0)."""
    return np.maximum(z, 0.0, out=out)


def relu_der(h: Array) -> Array:
    """relu'(z) = 1 where h > 0, else 0 (0 at z = 0)."""
    return (h > 0).astype(h.dtype)


ACTIVATIONS: dict[str, Callable[..., Array]] = {  # f(z, out=None)
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
}
DERIVATIVES: dict[str, Callable[[Array], Array]] = {
    "sigmoid": sigmoid_der,
    "tanh": tanh_der,
    "relu": relu_der,
}


# Second derivatives, for the Hessian-vector product. Each is written as act''(z) / act'(z), a
# function of the output h, because the R-operator needs act''(z) * R{z} = that * R{h}:
#   sigmoid'' = h(1 - h)(1 - 2h) = sigmoid' * (1 - 2h)
#   tanh''    = -2h(1 - h**2)    = tanh' * (-2h)
#   relu''    = 0 (taken as 0 at the kink z = 0 too)


def sigmoid_curv(h: Array) -> Array:
    """sigmoid''/sigmoid' = 1 - 2h."""
    return np.subtract(1.0, 2.0 * h)


def tanh_curv(h: Array) -> Array:
    """tanh''/tanh' = -2h."""
    return -2.0 * h


def relu_curv(h: Array) -> Array:
    """relu'' = 0 everywhere (at the kink too)."""
    return np.zeros_like(h)


CURVATURES: dict[str, Callable[[Array], Array]] = {
    "sigmoid": sigmoid_curv,
    "tanh": tanh_curv,
    "relu": relu_curv,
}


# --- output layers and losses -------------------------------------------------------------------


def softmax(z: Array, out: Array | None = None) -> tuple[Array, Array]:
    """Row-wise softmax and its log, stable for any z: subtract the row max first.

    h = exp(z - max) / s,  log_h = (z - max) - log(s),  s = sum(exp(z - max)) over the row.
    Returns ``(h, log_h)``, both shaped like ``z``; ``out`` (may be ``z``) receives log_h.
    """
    shifted = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)  # (..., N, C)
    e = np.exp(shifted)
    s = _sum(e, axis=-1, keepdims=True)  # (..., N, 1)
    e /= s
    shifted -= np.log(s)
    return e, shifted


def mse_loss(h: Array, Y: Array) -> Array:
    """mse: sum((Y - h)**2) / (2N), N the rows of the batch. One value per leading index."""
    n = Y.shape[-2]
    diff = Y - h
    diff *= diff
    return _sum(diff, axis=(-2, -1)) / (2 * n)


def mse_output_delta(h: Array, Y: Array) -> Array:
    """dz_L for sigmoid + mse: dh_L = (h - Y)/N, then times sigmoid' = h(1 - h)."""
    n = Y.shape[-2]
    dz = h - Y  # (..., N, C)
    dz *= sigmoid_der(h)
    dz /= n
    return dz


def cross_entropy_loss(log_h: Array, Y: Array) -> Array:
    """cross_entropy: -sum(Y * log(h)) / N, from the log-softmax (no log(0))."""
    n = Y.shape[-2]
    return -_sum(Y * log_h, axis=(-2, -1)) / n


def cross_entropy_output_delta(h: Array, Y: Array) -> Array:
    """dz_L for softmax + cross-entropy: (h - Y) / N."""
    dz = h - Y  # (..., N, C)
    dz /= Y.shape[-2]
    return dz


OUTPUTS = {"mse": "sigmoid", "cross_entropy": "softmax"}
OUTPUT_DELTAS = {"mse": mse_output_delta, "cross_entropy": cross_entropy_output_delta}


# --- penalties on weight matrices (never biases) --------------------------------------------------


def l2_penalty(W: Array, lam: float | Array, n: int) -> Array:
    """l2: lam/(2N) * sum(W**2). One value per leading index; lam a number or one per network."""
    s = _sum(W * W, axis=(-2, -1))
    return scalar_for(lam, s) * s / (2 * n)


def l2_penalty_der(W: Array, lam: float | Array, n: int) -> Array:
    """d/dW of l2: lam/N * W."""
    return scalar_for(lam / n, W) * W


def l1_penalty(W: Array, lam: float | Array, n: int) -> Array:
    """l1: lam/N * sum(|W|)."""
    s = _sum(np.abs(W), axis=(-2, -1))
    return scalar_for(lam, s) * s / n


def l1_penalty_der(W: Array, lam: float | Array, n: int) -> Array:
    """Subgradient of l1: lam/N * sign(W), 0 at W = 0."""
    d = np.sign(W)
    d *= scalar_for(lam / n, W)
    return d


PENALTIES = {"l2": (l2_penalty, l2_penalty_der), "l1": (l1_penalty, l1_penalty_der)}
