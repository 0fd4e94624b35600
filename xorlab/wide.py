"""Stacked math for K networks that share their input: the first layer as one wide product.

When every network of a stack sees the same batch ``X (N, d_in)`` (the full batch, or unshuffled
minibatches), the first layer of all K networks is one product ``X @ W1w``, ``W1w (d_in, K*H)``
holding each network's ``W1`` side by side, and its gradient is one product ``X.T @ dz1w``.
NumPy would otherwise call BLAS K times on ``(N, d_in) @ (d_in, H)`` for each: with H = 3 most of
each call is overhead. The first layer's activations live in that wide layout, ``(N, K, H)``
(network k's are the columns ``k*H .. k*H + H - 1``); later layers see them through a strided
``(K, N, H)`` view and stay in the usual ``(K, N, C)`` stack. Elementwise work (the sigmoid,
its derivative, the loss) does not care about the layout: it runs over contiguous arrays either
way.

Exactness. Each network must still get exactly the numbers ``train`` computes for it alone
(DESIGN.md section 3). Elementwise operations give the same bits in any layout; a BLAS product
gives the same bits when the library computes each output element in the same order whatever
the matrix's width and leading dimension, which OpenBLAS's kernels do but no standard promises.
So ``matches_alone`` tries the wide step once per shape on random numbers and compares it bit for
bit with ``nn.forward``/``nn.backward`` of each network alone; BLAS kernels do not branch on the
values, so a match on random inputs is a match on all. The population engine uses the wide step
only where that check passed and keeps its per-network layout elsewhere: either way every
network's results are bit-identical to training it alone.

This module imports only numpy and ``nn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from . import funcs, nn
from .nn import Array, Cache, NetSpec, Params

_sum = np.add.reduce
Workspace = dict[tuple, Array]  # reusable arrays by (name, shape, dtype)


def _buf(ws: Workspace | None, name: str, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    """An array to write into: the workspace's, made once per shape. Fresh arrays of a few
    hundred KB come from mmap and cost a page fault per 4 KB on every step; reused ones do not."""
    if ws is None:
        return np.empty(shape, dtype=dtype)
    key = (name, shape, dtype)
    a = ws.get(key)
    if a is None:
        a = ws[key] = np.empty(shape, dtype=dtype)
    return a


def _der(h: Array, activation: str, out: Array) -> Array:
    """``funcs.DERIVATIVES[activation](h)`` (the same operations), written into ``out``."""
    if activation == "sigmoid":  # h(1 - h)
        np.subtract(1.0, h, out=out)
        out *= h
        return out
    if activation == "tanh":  # 1 - h**2
        np.multiply(h, h, out=out)
        return np.subtract(1.0, out, out=out)
    return funcs.DERIVATIVES[activation](h)


def forward(
    params: Mapping[str, Array], X: Array, spec: NetSpec, ws: Workspace | None = None
) -> tuple[Array, Cache]:
    """``nn.forward`` for a stack ``(K, ...)`` of networks with at least one hidden layer, all fed
    the same ``X (N, d_in)``. The cache's ``hs[1]`` is a ``(K, N, H)`` view of the wide
    ``(N, K, H)`` array (``hs[1].transpose(1, 0, 2)`` is that array again). With a workspace
    ``ws`` the activations are its arrays, overwritten by the next call."""
    act = funcs.ACTIVATIONS[spec.activation]
    (wk, bk), last = spec.layer_keys[0], spec.layer_keys[-1][0]
    W = params[wk]  # (K, d_in, H)
    K, d_in, H = W.shape
    N = X.shape[0]
    Ww = W.transpose(1, 0, 2).reshape(d_in, K * H)  # (d_in, K*H): network k in columns k*H..
    dtype = np.result_type(X, W)
    z1 = _buf(ws, "z1", (N, K * H), dtype)
    if act is funcs.sigmoid:
        zn = np.matmul(X, np.negative(Ww), out=z1)  # (N, K*H): -z, as nn.forward computes it
        if bk is not None:
            zn -= params[bk].reshape(K * H)
        h = funcs.sigmoid_of_negated(zn, out=zn)
    else:
        z = np.matmul(X, Ww, out=z1)  # (N, K*H)
        if bk is not None:
            z += params[bk].reshape(K * H)
        h = act(z, out=z)
    h = h.reshape(N, K, H).transpose(1, 0, 2)  # (K, N, H), a view
    hs = [X, h]
    log_out = None
    for wk, bk in spec.layer_keys[1:]:  # the rest as nn.forward does them
        uses_sigmoid = act is funcs.sigmoid if wk != last else spec.loss == "mse"
        z_out = _buf(ws, wk, (K, N, params[wk].shape[-1]), dtype)
        if uses_sigmoid:
            zn = np.matmul(h, np.negative(params[wk]), out=z_out)  # (K, N, fan_out): -z
            if bk is not None:
                zn -= params[bk]
            h = funcs.sigmoid_of_negated(zn, out=zn)
        else:
            z = np.matmul(h, params[wk], out=z_out)  # (K, N, fan_out)
            if bk is not None:
                z += params[bk]
            if wk != last:
                h = act(z, out=z)
            else:
                h, log_out = funcs.softmax(z, out=z)
        hs.append(h)
    return h, Cache(hs, log_out)


def loss_and_delta(
    cache: Cache, Y: Array, spec: NetSpec, ws: Workspace | None = None
) -> tuple[Array, Array]:
    """``(nn.data_loss(cache, Y, spec), dz_L)``, the output delta ``nn.backward`` starts from,
    with the same bits. For mse one difference serves both: ``h - Y`` is exactly ``-(Y - h)``,
    so its square is ``(Y - h)**2``, and the delta is ``(h - Y) * h(1 - h) / N``."""
    h, n = cache.hs[-1], Y.shape[-2]
    if spec.loss != "mse":
        return nn.data_loss(cache, Y, spec), funcs.OUTPUT_DELTAS[spec.loss](h, Y)
    dz = np.subtract(h, Y, out=_buf(ws, "dz", h.shape, h.dtype))  # (K, N, C)
    sq = np.multiply(dz, dz, out=_buf(ws, "sq", h.shape, h.dtype))
    loss = _sum(sq, axis=(-2, -1)) / (2 * n)  # (K,)
    d = np.subtract(1.0, h, out=sq)  # sigmoid' = h(1 - h), as funcs.sigmoid_der
    d *= h
    dz *= d
    dz /= n
    return loss, dz


def backward(
    params: Mapping[str, Array],
    cache: Cache,
    dz: Array,
    spec: NetSpec,
    n_penalty: int,
    *,
    copy_wt: bool = True,
    ws: Workspace | None = None,
) -> Params:
    """``nn.backward`` from the output delta ``dz (K, N, C)``, for a cache from ``forward``.

    The first layer's delta is made in the wide layout (``dz2 @ W2^T`` written straight into it)
    so that its gradient is one product ``X.T @ dz1w``. ``copy_wt``: multiply by a contiguous
    copy of ``W^T`` (BLAS is much faster on it than on the transposed view)."""
    hs = cache.hs
    lam = spec.strength
    pen_der = funcs.PENALTIES[spec.penalty][1] if spec.has_penalty else None
    grads: Params = {}
    X = hs[0]
    N = X.shape[0]
    for i in range(len(hs) - 2, -1, -1):  # layer l = i + 1, from the output down
        wk, bk = spec.layer_keys[i]
        W = params[wk]
        if i == 0:
            K, d_in, H = W.shape
            dWw = X.T @ dz  # (d_in, K*H): every network's dW1 side by side
            dW = np.ascontiguousarray(dWw.reshape(d_in, K, H).transpose(1, 0, 2))  # (K, d_in, H)
            if bk is not None:
                grads[bk] = _sum(dz, axis=0).reshape(K, 1, H)
        else:
            dW = hs[i].swapaxes(-1, -2) @ dz  # (K, fan_in, fan_out)
            if bk is not None:
                grads[bk] = _sum(dz, axis=-2).reshape(params[bk].shape)
        if pen_der is not None:
            dW += pen_der(W, lam, n_penalty)
        grads[wk] = dW
        if i:
            Wt = W.swapaxes(-1, -2)  # (K, fan_out, fan_in)
            if copy_wt:
                Wt = np.ascontiguousarray(Wt)
            h_in = hs[i]  # (K, N, fan_in)
            if i == 1:
                K, _, H = h_in.shape
                dh = _buf(ws, "dh1", (N, K * H), dz.dtype)  # the wide layout
                np.matmul(dz, Wt, out=dh.reshape(N, K, H).transpose(1, 0, 2))
                h_w = h_in.transpose(1, 0, 2).reshape(N, K * H)  # a view of the wide h1
                dh *= _der(h_w, spec.activation, _buf(ws, "der1", h_w.shape, h_w.dtype))
            else:
                dh = np.matmul(dz, Wt, out=_buf(ws, f"dh{i + 1}", h_in.shape, dz.dtype))
                dh *= _der(h_in, spec.activation, _buf(ws, f"der{i + 1}", h_in.shape, h_in.dtype))
            dz = dh
    return {k: grads[k] for k in spec.keys}


def step(
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    spec: NetSpec,
    n_penalty: int,
    *,
    copy_wt: bool = True,
    ws: Workspace | None = None,
) -> tuple[Array, Array, Params]:
    """One step's math for the stack: ``(outputs (K, N, C), data loss (K,), gradients)``. The
    outputs are the workspace's (overwritten by the next step); the gradients are new arrays."""
    out, cache = forward(params, X, spec, ws)
    loss, dz = loss_and_delta(cache, Y, spec, ws)
    return out, loss, backward(params, cache, dz, spec, n_penalty, copy_wt=copy_wt, ws=ws)


def accuracies(out: Array, y_idx: Array, finite: Array) -> Array:
    """``nn.accuracies(out, y_idx)`` when ``finite`` (K,) says which networks' outputs are all
    finite (a finite data loss says so: any NaN output makes it NaN); the same numbers, without
    the passes that look for non-finite outputs."""
    if not finite.all() or out.shape[-1] != 2:
        return nn.accuracies(out, y_idx)
    hits = np.greater(out[..., 1], out[..., 0])  # (K, N): nn.classes' comparison
    hits ^= ~y_idx.astype(bool)  # classes 0/1: a hit where the class equals the target
    return np.count_nonzero(hits, axis=-1) / y_idx.shape[-1]


@lru_cache(maxsize=256)
def _matches_alone(
    sizes: tuple[int, ...],
    activation: str,
    loss: str,
    bias: bool,
    K: int,
    N: int,
    dtype: str,
    copy_wt: bool,
) -> bool:
    spec = NetSpec(sizes=sizes, activation=activation, loss=loss, bias=bias)
    rs = np.random.RandomState(12345)
    X = rs.randn(N, sizes[0]).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rs.randint(0, sizes[-1], N)]
    stack: Params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        stack[f"W{layer}"] = rs.randn(K, fan_in, fan_out).astype(dtype)
        if bias:
            stack[f"b{layer}"] = rs.randn(K, 1, fan_out).astype(dtype)
    with np.errstate(all="ignore"):
        out, loss_w, grads = step(stack, X, Y, spec, N, copy_wt=copy_wt)
        for k in range(K):
            alone = {
                key: v[k].reshape(v.shape[2:] if key[0] == "b" else v.shape[1:])
                for key, v in stack.items()
            }
            out_k, cache = nn.forward(alone, X, spec)
            if out_k.tobytes() != out[k].tobytes():
                return False
            if nn.data_loss(cache, Y, spec).tobytes() != loss_w[k].tobytes():
                return False
            g = nn.backward(alone, cache, Y, spec)
            for key, v in g.items():
                if v.tobytes() != grads[key][k].tobytes():
                    return False
    return True


def matches_alone(spec: NetSpec, K: int, N: int, dtype: str) -> bool | None:
    """How ``step`` may run for K networks of this shape on N shared rows so that each gets the
    bits ``nn.forward``/``nn.backward`` give it alone: True (with a contiguous ``W^T``), False
    (with the transposed view), None (not at all: use the per-network stack). Tried once per
    shape and remembered. Networks without a hidden layer always get None."""
    if len(spec.sizes) < 3 or K < 2:
        return None
    for copy_wt in (True, False):
        key = (spec.sizes, spec.activation, spec.loss, spec.bias, K, N, dtype, copy_wt)
        if _matches_alone(*key):
            return copy_wt
    return None
