"""The multilayer perceptron: forward and backward passes written by hand in NumPy.

Notation (DESIGN.md section 1). A batch ``X`` is ``(N, d_in)``, targets ``Y`` are one-hot
``(N, C)``. Layer ``l = 1..L``: ``z_l = h_{l-1} @ W_l (+ b_l)``, ``h_0 = X``, ``h_l = act(z_l)``;
the output layer's activation is tied to the loss (sigmoid for mse, softmax for cross-entropy).

A ``d`` prefix means "the derivative of the loss with respect to": ``dW2`` is dL/dW2, ``dz1`` is
dL/dz1. Gradients come back in a dict with exactly the parameter keys (``W1``, ``b1``, ...).
``hvp`` (the Hessian-vector product, beside ``backward``) adds an ``r`` prefix: the change of a
quantity along a direction V in parameter space (Pearlmutter's R-operator).

Every function is written for any number of leading axes: a stack of K networks has parameters
``(K, fan_in, fan_out)`` and batches ``(K, N, d)``; ``@``, ``swapaxes(-1, -2)`` and reductions
over negative axes make the same code train one network or a population.

Per-network scalars follow the same rule: the penalty's ``strength`` may be one value per network
(an array ``(K,)``); it is reshaped to broadcast against ``(K, ...)`` and rounded to the
parameters' dtype exactly as numpy rounds a Python float (see ``funcs.scalar_for``).

Intermediate arrays are made once and then updated in place (``out=``): the same arithmetic, in
the same order, as the textbook expressions in the docstrings, without a temporary per operation.

The activations, losses and penalties, each beside its derivative, are in ``funcs``; this module
composes them. It imports only numpy and ``funcs``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from .funcs import (
    ACTIVATIONS,
    CURVATURES,
    DERIVATIVES,
    OUTPUT_DELTAS,
    PENALTIES,
    cross_entropy_loss,
    l2_penalty_der,
    mse_loss,
    sigmoid,
    sigmoid_curv,
    sigmoid_der,
    sigmoid_of_negated,
    softmax,
)

Params = dict[str, np.ndarray]
Array = np.ndarray
_sum = np.add.reduce  # what ndarray.sum calls, without its Python wrapper


# --- the network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetSpec:
    """What the math needs to know about a network; built from the config's model section."""

    sizes: tuple[int, ...]  # (d_in, hidden..., C), e.g. (2, 50, 2)
    activation: str = "sigmoid"  # hidden layers: sigmoid | tanh | relu
    loss: str = "mse"  # mse (sigmoid output) | cross_entropy (softmax output)
    bias: bool = False
    penalty: str = "none"  # none | l1 | l2
    strength: float | Array = 0.0  # lambda of the penalty; an array (K,): one per stacked network

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @cached_property
    def layer_keys(self) -> tuple[tuple[str, str | None], ...]:
        """``(("W1", "b1"), ("W2", "b2"), ...)``; the bias key is None without biases."""
        return tuple(
            (f"W{layer}", f"b{layer}" if self.bias else None)
            for layer in range(1, self.n_layers + 1)
        )

    @cached_property
    def w_keys(self) -> tuple[str, ...]:
        """The weight-matrix keys W1..WL (what the penalty covers)."""
        return tuple(wk for wk, _ in self.layer_keys)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """The parameter keys in order: W1, b1, W2, ... (b only with biases)."""
        return tuple(k for pair in self.layer_keys for k in pair if k is not None)

    @cached_property
    def has_penalty(self) -> bool:
        return self.penalty != "none" and bool(np.any(self.strength))

    def param_keys(self) -> list[str]:
        return list(self.keys)


class Cache(NamedTuple):
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


def stack_params(nets: Sequence[Mapping[str, Array]]) -> Params:
    """K networks' parameters as one stack: W (K, fan_in, fan_out), b (K, 1, fan_out), so that
    ``forward`` and ``backward`` serve all K at once."""
    K = len(nets)
    return {
        k: np.stack([net[k] for net in nets]).reshape(K, -1, nets[0][k].shape[-1]) for k in nets[0]
    }


def forward(params: Mapping[str, Array], X: Array, spec: NetSpec) -> tuple[Array, Cache]:
    """Forward pass. Returns ``(out, cache)``; ``out`` is h_L, shaped ``(..., N, C)``."""
    act = ACTIVATIONS[spec.activation]
    h = X  # (..., N, d_in)
    hs = [h]
    log_out = None
    last = spec.layer_keys[-1][0]
    for wk, bk in spec.layer_keys:
        uses_sigmoid = act is sigmoid if wk != last else spec.loss == "mse"
        if uses_sigmoid:
            zn = h @ np.negative(params[wk])  # (..., N, fan_out): -z
            if bk is not None:
                zn -= params[bk]
            h = sigmoid_of_negated(zn, out=zn)
        else:
            z = h @ params[wk]  # (..., N, fan_out)
            if bk is not None:
                z += params[bk]
            if wk != last:
                h = act(z, out=z)
            else:
                h, log_out = softmax(z, out=z)
        hs.append(h)
    return h, Cache(hs, log_out)


def data_loss(cache: Cache, Y: Array, spec: NetSpec) -> Array:
    """The loss without penalty, from a forward pass's cache."""
    if spec.loss == "mse":
        return mse_loss(cache.hs[-1], Y)
    assert cache.log_out is not None
    return cross_entropy_loss(cache.log_out, Y)


def penalty(params: Mapping[str, Array], spec: NetSpec, n: int) -> Array | float:
    """The regularization term over weight matrices W1..WL (never biases).

    ``n`` is the N of the penalty: the number of training rows at every batch size (DESIGN.md
    section 1), not the batch's rows, so that lambda means the same with minibatches."""
    if not spec.has_penalty:
        return 0.0
    pen, _ = PENALTIES[spec.penalty]
    lam = spec.strength
    total: Array | float = 0
    for wk in spec.w_keys:
        total = total + pen(params[wk], lam, n)
    return total


def backward(
    params: Mapping[str, Array],
    cache: Cache,
    Y: Array,
    spec: NetSpec,
    n_penalty: int | None = None,
) -> Params:
    """Exact gradient of the batch's data loss + the penalty; the same keys and shapes as
    ``params``. ``n_penalty`` is the penalty's N, the number of training rows (None: the batch's
    rows, for a batch that is the whole training set); the data loss's N is the batch's rows.

    Chain rule, from the output down:
        dz_L = (h_L - Y)/N * h_L(1 - h_L)   (sigmoid + mse)  or  (h_L - Y)/N  (softmax + CE)
        dW_l = h_{l-1}^T @ dz_l,  db_l = sum over rows of dz_l
        dh_{l-1} = dz_l @ W_l^T,  dz_{l-1} = dh_{l-1} * act'(h_{l-1})
    """
    hs = cache.hs
    n = Y.shape[-2] if n_penalty is None else n_penalty
    lam = spec.strength
    der = DERIVATIVES[spec.activation]
    pen_der = PENALTIES[spec.penalty][1] if spec.has_penalty else None
    grads: Params = {}
    dz = OUTPUT_DELTAS[spec.loss](hs[-1], Y)  # (..., N, C)
    for i in range(len(hs) - 2, -1, -1):  # layer l = i + 1, from the output down
        wk, bk = spec.layer_keys[i]
        W = params[wk]
        h_in = hs[i]  # h_{l-1}
        dW = h_in.swapaxes(-1, -2) @ dz  # (..., fan_in, fan_out)
        if pen_der is not None:
            dW += pen_der(W, lam, n)  # lam/N * W (l2) or lam/N * sign(W) (l1), N = n_penalty
        grads[wk] = dW
        if bk is not None:
            grads[bk] = _sum(dz, axis=-2).reshape(params[bk].shape)  # (..., fan_out)
        if i:
            dz = dz @ W.swapaxes(-1, -2)  # dh_{l-1}: (..., N, fan_in)
            dz *= der(h_in)
    return {k: grads[k] for k in spec.keys}


def hvp(
    params: Mapping[str, Array],
    cache: Cache,
    Y: Array,
    spec: NetSpec,
    V: Mapping[str, Array],
    n_penalty: int | None = None,
) -> Params:
    """Exact Hessian-vector product H @ V of the objective ``backward`` differentiates (the
    batch's data loss + the penalty, ``n_penalty`` as there), by Pearlmutter's R-operator:
    forward over reverse. ``V`` has the parameters' keys and shapes; so has the result. An ``r``
    prefix means R{.} = d/de (.)(params + e*V) at e = 0, the change along V; ``cache`` is the
    forward pass at ``params``.

    Forward (rh_0 = 0: the data do not move):
        rz_l = rh_{l-1} @ W_l + h_{l-1} @ V_Wl (+ V_bl)
        rh_l = act'(z_l) * rz_l;  output: h(1 - h) * rz_L (sigmoid), h * (rz_L - sum(h * rz_L))
        (softmax, row-wise)
    Backward, the R of each line of ``backward``:
        rdz_L = rh_L * (h(1 - h) + (h - Y)(1 - 2h)) / N  (sigmoid + mse),  rh_L / N  (softmax + CE)
        rdW_l = rh_{l-1}^T @ dz_l + h_{l-1}^T @ rdz_l  (+ lam/N * V_Wl for l2; l1's is 0)
        rdb_l = sum over rows of rdz_l
        rdh_{l-1} = rdz_l @ W_l^T + dz_l @ V_Wl^T
        rdz_{l-1} = rdh_{l-1} * act'(z) + dh_{l-1} * act''(z) * rz_{l-1}
                  = rdh_{l-1} * act'(z) + dh_{l-1} * (act''/act')(h) * rh_{l-1}
    ReLU's act'' and l1's second derivative are 0, at their kinks too: the result is the exact
    Hessian wherever the objective is twice differentiable. Costs about two backward passes.
    """
    hs = cache.hs
    L = spec.n_layers
    n = Y.shape[-2] if n_penalty is None else n_penalty
    der, curv = DERIVATIVES[spec.activation], CURVATURES[spec.activation]
    rhs: list[Array | None] = [None]  # rh_0 = 0
    for i, (wk, bk) in enumerate(spec.layer_keys):
        h = hs[i + 1]
        rz = hs[i] @ V[wk]  # (..., N, fan_out)
        if i:
            rz += rhs[i] @ params[wk]
        if bk is not None:
            rz += V[bk]
        if i < L - 1:
            rz *= der(h)  # rh_l
        elif spec.loss == "mse":
            rz *= sigmoid_der(h)
        else:
            rz -= _sum(h * rz, axis=-1, keepdims=True)
            rz *= h
        rhs.append(rz)

    h_out, rh_out = hs[-1], rhs[-1]
    assert rh_out is not None
    dz = OUTPUT_DELTAS[spec.loss](h_out, Y)  # (..., N, C)
    if spec.loss == "mse":
        rdz = (h_out - Y) * sigmoid_curv(h_out)  # (h - Y)(1 - 2h)
        rdz += sigmoid_der(h_out)  # + h(1 - h)
        rdz *= rh_out
        rdz /= Y.shape[-2]
    else:
        rdz = rh_out / Y.shape[-2]
    l2 = spec.has_penalty and spec.penalty == "l2"
    out: Params = {}
    for i in range(L - 1, -1, -1):  # layer l = i + 1, from the output down
        wk, bk = spec.layer_keys[i]
        W, VW, h_in, rh_in = params[wk], V[wk], hs[i], rhs[i]
        rdW = h_in.swapaxes(-1, -2) @ rdz  # (..., fan_in, fan_out)
        if rh_in is not None:
            rdW += rh_in.swapaxes(-1, -2) @ dz
        if l2:
            rdW += l2_penalty_der(VW, spec.strength, n)  # lam/N * V
        out[wk] = rdW
        if bk is not None:
            out[bk] = _sum(rdz, axis=-2).reshape(params[bk].shape)
        if i:
            assert rh_in is not None
            dh = dz @ W.swapaxes(-1, -2)  # (..., N, fan_in)
            rdh = rdz @ W.swapaxes(-1, -2)
            rdh += dz @ VW.swapaxes(-1, -2)
            act_der = der(h_in)
            rdz = rdh * act_der
            rdz += dh * curv(h_in) * rh_in
            dz = dh * act_der
    return {k: out[k] for k in spec.keys}


def vdot(a: Mapping[str, Array], b: Mapping[str, Array]) -> float:
    """The dot product of two parameter-shaped dicts, as flat vectors (one network)."""
    return float(sum(float(a[k].ravel() @ b[k].ravel()) for k in a))


def random_direction(params: Mapping[str, Array], rs: np.random.RandomState) -> Params:
    """A unit vector shaped like ``params``, normal entries from ``rs`` (a cold start)."""
    v = {k: rs.randn(*p.shape).astype(p.dtype) for k, p in params.items()}
    norm = np.sqrt(vdot(v, v))
    return {k: x / norm for k, x in v.items()}


class Eigen(NamedTuple):
    value: float  # the Rayleigh quotient v.Hv at the last iterate
    vector: Params  # the next iterate Hv/|Hv|: warm-start the next call from it
    iters: int  # Hessian-vector products used


def top_eigenvalue(
    hv: Callable[[Params], Params], v0: Mapping[str, Array], tol: float = 1e-3, max_iter: int = 100
) -> Eigen:
    """Power iteration for the eigenvalue of largest magnitude of a symmetric H (one network),
    given ``hv(v) = H @ v``, from the start vector ``v0`` (warm-start it with the last call's).

    Repeats w = H v, lam = v.w (the Rayleigh quotient), r = w - lam*v, until
    |r|**2 <= tol * lam**2 or ``max_iter`` products: lam is within |r|**2 / gap of an eigenvalue
    (gap: its distance to the rest of the spectrum), so when the top eigenvalue stands apart
    (a gap of the order of lam) ``tol`` bounds its relative error. Each iterate is v = w/|w|.
    """
    norm0 = np.sqrt(vdot(v0, v0))
    v = {k: x / norm0 for k, x in v0.items()}
    lam, it = float("nan"), 0
    while it < max_iter:
        w = hv(v)
        it += 1
        lam = vdot(v, w)
        ww = vdot(w, w)
        if not (np.isfinite(ww) and ww > 0):  # H v = 0 or not finite: no direction to follow
            return Eigen(lam if np.isfinite(ww) else float("nan"), v, it)
        res2 = ww - lam * lam  # |w - lam v|**2 for a unit v
        wn = np.sqrt(ww)
        v = {k: x / wn for k, x in w.items()}
        if res2 <= tol * lam * lam:
            break
    return Eigen(lam, v, it)


def classes(out: Array) -> Array:
    """Class index per row, ``out.argmax(axis=-1)``: the first largest output, NaN counting as
    the largest (numpy's rule). With two classes and no NaN one comparison gives the same
    (class 1 iff out_1 > out_0; a tie is class 0), as booleans, in a third of argmax's time.
    ``accuracy`` never counts such NaN classes: a non-finite output makes it NaN."""
    if out.shape[-1] == 2 and not np.isnan(np.maximum.reduce(out, axis=None)):  # NaN wins max
        return np.greater(out[..., 1], out[..., 0])  # (..., N)
    return out.argmax(axis=-1)


def predict(params: Mapping[str, Array], X: Array, spec: NetSpec) -> Array:
    """Class index per row: argmax of the network's output."""
    out, _ = forward(params, X, spec)
    return out.argmax(axis=-1)


def accuracy(out: Array, y_idx: Array) -> float:
    """Fraction of rows whose argmax output equals the target class.

    NaN (no accuracy) when there are no rows, or when any output is not finite: the classes of a
    diverged network are wherever NaN comparisons fall, not predictions (like its loss, which is
    then NaN too)."""
    n = y_idx.shape[-1]
    if n == 0 or not np.isfinite(out).all():
        return float("nan")
    return int(np.count_nonzero(classes(out) == y_idx)) / n  # = mean of matches, exactly


def accuracies(out: Array, y_idx: Array) -> Array:
    """``accuracy`` for each network of a stack: out (K, N, C) -> (K,), the same numbers (NaN
    for a network with a non-finite output)."""
    acc = np.count_nonzero(classes(out) == y_idx, axis=-1) / y_idx.shape[-1]
    acc[~np.isfinite(out).all(axis=(-2, -1))] = np.nan
    return acc
