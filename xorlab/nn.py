"""The multilayer perceptron: forward and backward passes written by hand in NumPy.

Notation (DESIGN.md section 1). A batch ``X`` is ``(N, d_in)``, targets ``Y`` are one-hot
``(N, C)``. Layer ``l = 1..L``: ``z_l = h_{l-1} @ W_l (+ b_l)``, ``h_0 = X``, ``h_l = act(z_l)``;
the output layer's activation is tied to the loss (sigmoid for mse, softmax for cross-entropy).

A ``d`` prefix means "the derivative of the loss with respect to": ``dW2`` is dL/dW2, ``dz1`` is
dL/dz1. Gradients come back in a dict with exactly the parameter keys (``W1``, ``b1``, ...).

Every function is written for any number of leading axes: a stack of K networks has parameters
``(K, fan_in, fan_out)`` and batches ``(K, N, d)``; ``@``, ``swapaxes(-1, -2)`` and reductions
over negative axes make the same code train one network or a population.

This module imports only numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Params = dict[str, np.ndarray]
Array = np.ndarray


# --- activations: each function beside its derivative, written from the output h ---------------


# |z| beyond which sigmoid is 0 or 1 to the dtype's precision; clipping there keeps exp finite.
_SIGMOID_CLIP = {np.dtype("float64"): 700.0, np.dtype("float32"): 80.0}


def sigmoid(z: Array) -> Array:
    """sigmoid(z) = 1 / (1 + exp(-z)), with z clipped so exp never overflows.

    (0.5 + 0.5*tanh(z/2) is as stable but np.tanh costs ~2.5x np.exp.)
    """
    lim = _SIGMOID_CLIP.get(z.dtype, 700.0)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -lim, lim)))


def sigmoid_der(h: Array) -> Array:
    """sigmoid'(z) = h * (1 - h)."""
    return h * (1.0 - h)


def tanh(z: Array) -> Array:
    """tanh(z) (the tutorial's code computes tanh(z/2); the gradient check catches that)."""
    return np.tanh(z)


def tanh_der(h: Array) -> Array:
    """tanh'(z) = 1 - h**2."""
    return 1.0 - h * h


def relu(z: Array) -> Array:
    """relu(z) = max(z, 0)."""
    return np.maximum(z, 0.0)


def relu_der(h: Array) -> Array:
    """relu'(z) = 1 where h > 0, else 0 (0 at z = 0)."""
    return (h > 0).astype(h.dtype)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
}
DERIVATIVES: dict[str, Callable[[Array], Array]] = {
    "sigmoid": sigmoid_der,
    "tanh": tanh_der,
    "relu": relu_der,
}


# --- output layers and losses -------------------------------------------------------------------


def softmax(z: Array) -> tuple[Array, Array]:
    """Row-wise softmax and its log, stable for any z: subtract the row max first.

    Returns ``(h, log_h)``, both shaped like ``z``.
    """
    shifted = z - z.max(axis=-1, keepdims=True)  # (..., N, C)
    e = np.exp(shifted)
    s = e.sum(axis=-1, keepdims=True)  # (..., N, 1)
    return e / s, shifted - np.log(s)


def mse_loss(h: Array, Y: Array) -> Array:
    """mse: sum((Y - h)**2) / (2N), N the rows of the batch. One value per leading index."""
    n = Y.shape[-2]
    diff = Y - h
    return (diff * diff).sum(axis=(-2, -1)) / (2 * n)


def mse_output_delta(h: Array, Y: Array) -> Array:
    """dz_L for sigmoid + mse: dh_L = (h - Y)/N, then times sigmoid' = h(1 - h)."""
    n = Y.shape[-2]
    return (h - Y) * (h * (1.0 - h)) / n  # (..., N, C)


def cross_entropy_loss(log_h: Array, Y: Array) -> Array:
    """cross_entropy: -sum(Y * log(h)) / N, from the log-softmax (no log(0))."""
    n = Y.shape[-2]
    return -(Y * log_h).sum(axis=(-2, -1)) / n


def cross_entropy_output_delta(h: Array, Y: Array) -> Array:
    """dz_L for softmax + cross-entropy: (h - Y) / N."""
    return (h - Y) / Y.shape[-2]  # (..., N, C)


OUTPUTS = {"mse": "sigmoid", "cross_entropy": "softmax"}


# --- penalties on weight matrices (never biases) --------------------------------------------------


def l2_penalty(W: Array, lam: float | Array, n: int) -> Array:
    """l2: lam/(2N) * sum(W**2)."""
    return lam * (W * W).sum(axis=(-2, -1)) / (2 * n)


def l2_penalty_der(W: Array, lam: float | Array, n: int) -> Array:
    """d/dW of l2: lam/N * W."""
    return (lam / n) * W


def l1_penalty(W: Array, lam: float | Array, n: int) -> Array:
    """l1: lam/N * sum(|W|)."""
    return lam * np.abs(W).sum(axis=(-2, -1)) / n


def l1_penalty_der(W: Array, lam: float | Array, n: int) -> Array:
    """Subgradient of l1: lam/N * sign(W), 0 at W = 0."""
    return (lam / n) * np.sign(W)


PENALTIES = {"l2": (l2_penalty, l2_penalty_der), "l1": (l1_penalty, l1_penalty_der)}


# --- the network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetSpec:
    """What the math needs to know about a network; built from the config's model section."""

    sizes: tuple[int, ...]  # (d_in, hidden..., C), e.g. (2, 50, 2)
    activation: str = "sigmoid"  # hidden layers: sigmoid | tanh | relu
    loss: str = "mse"  # mse (sigmoid output) | cross_entropy (softmax output)
    bias: bool = False
    penalty: str = "none"  # none | l1 | l2
    strength: float = 0.0  # lambda of the penalty

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def param_keys(self) -> list[str]:
        keys = []
        for layer in range(1, self.n_layers + 1):
            keys.append(f"W{layer}")
            if self.bias:
                keys.append(f"b{layer}")
        return keys


@dataclass
class Cache:
    """What backward needs from forward: the input and every layer's output."""

    hs: list[Array]  # h_0 = X, h_1, ..., h_L (h_L is the network's output)
    log_out: Array | None  # log(h_L) for softmax outputs, else None


def init_params(
    spec: NetSpec, kind: str, rs: np.random.RandomState, dtype: str = "float64"
) -> Params:
    """Initial weights, layer by layer in order, from the RandomState ``rs``; biases start at 0.

    uniform (the tutorial's): W = (2*rs.random_sample((fan_in, fan_out)) - 1) / sqrt(fan_in)
    xavier: W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    he:     W = rs.randn(fan_in, fan_out) * sqrt(2 / fan_in)
    """
    params: Params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:]), start=1):
        if kind == "uniform":
            W = (2 * rs.random_sample((fan_in, fan_out)) - 1) / np.sqrt(fan_in)
        elif kind == "xavier":
            a = np.sqrt(6.0 / (fan_in + fan_out))
            W = rs.uniform(-a, a, size=(fan_in, fan_out))
        elif kind == "he":
            W = rs.randn(fan_in, fan_out) * np.sqrt(2.0 / fan_in)
        else:
            raise ValueError(f"unknown init {kind!r}")
        params[f"W{layer}"] = W.astype(dtype)  # (fan_in, fan_out)
        if spec.bias:
            params[f"b{layer}"] = np.zeros(fan_out, dtype=dtype)  # (fan_out,)
    return params


def forward(params: Mapping[str, Array], X: Array, spec: NetSpec) -> tuple[Array, Cache]:
    """Forward pass. Returns ``(out, cache)``; ``out`` is h_L, shaped ``(..., N, C)``."""
    act = ACTIVATIONS[spec.activation]
    h = X  # (..., N, d_in)
    hs = [h]
    log_out = None
    L = spec.n_layers
    for layer in range(1, L + 1):
        z = h @ params[f"W{layer}"]  # (..., N, fan_out)
        if spec.bias:
            z = z + params[f"b{layer}"]
        if layer < L:
            h = act(z)
        elif spec.loss == "mse":
            h = sigmoid(z)
        else:
            h, log_out = softmax(z)
        hs.append(h)
    return h, Cache(hs=hs, log_out=log_out)


def data_loss(cache: Cache, Y: Array, spec: NetSpec) -> Array:
    """The loss without penalty, from a forward pass's cache."""
    if spec.loss == "mse":
        return mse_loss(cache.hs[-1], Y)
    assert cache.log_out is not None
    return cross_entropy_loss(cache.log_out, Y)


def penalty(params: Mapping[str, Array], spec: NetSpec, n: int) -> Array | float:
    """The regularization term over weight matrices W1..WL (never biases); n = batch rows."""
    if spec.penalty == "none" or not spec.strength:
        return 0.0
    pen, _ = PENALTIES[spec.penalty]
    return sum(pen(params[f"W{i}"], spec.strength, n) for i in range(1, spec.n_layers + 1))


def backward(params: Mapping[str, Array], cache: Cache, Y: Array, spec: NetSpec) -> Params:
    """Exact gradient of data loss + penalty; the same keys and shapes as ``params``.

    Chain rule, from the output down:
        dz_L = (h_L - Y)/N * h_L(1 - h_L)   (sigmoid + mse)  or  (h_L - Y)/N  (softmax + CE)
        dW_l = h_{l-1}^T @ dz_l,  db_l = sum over rows of dz_l
        dh_{l-1} = dz_l @ W_l^T,  dz_{l-1} = dh_{l-1} * act'(h_{l-1})
    """
    hs = cache.hs
    L = spec.n_layers
    n = Y.shape[-2]
    out_delta = mse_output_delta if spec.loss == "mse" else cross_entropy_output_delta
    der = DERIVATIVES[spec.activation]
    use_pen = spec.penalty != "none" and bool(spec.strength)
    pen_der = PENALTIES[spec.penalty][1] if use_pen else None
    grads: Params = {}
    dz = out_delta(hs[L], Y)  # (..., N, C)
    for layer in range(L, 0, -1):
        W = params[f"W{layer}"]
        dW = hs[layer - 1].swapaxes(-1, -2) @ dz  # (..., fan_in, fan_out)
        if pen_der is not None:
            dW = dW + pen_der(W, spec.strength, n)
        grads[f"W{layer}"] = dW
        if spec.bias:
            b = params[f"b{layer}"]
            grads[f"b{layer}"] = dz.sum(axis=-2).reshape(b.shape)  # (..., fan_out)
        if layer > 1:
            dh = dz @ W.swapaxes(-1, -2)  # (..., N, fan_in)
            dz = dh * der(hs[layer - 1])
    return {k: grads[k] for k in spec.param_keys()}


def predict(params: Mapping[str, Array], X: Array, spec: NetSpec) -> Array:
    """Class index per row: argmax of the network's output."""
    out, _ = forward(params, X, spec)
    return out.argmax(axis=-1)


def accuracy(out: Array, y_idx: Array) -> float:
    """Fraction of rows whose argmax output equals the target class."""
    if y_idx.shape[-1] == 0:
        return float("nan")
    return float((out.argmax(axis=-1) == y_idx).mean())
