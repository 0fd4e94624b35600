"""One training step on one sample, every intermediate number shown, as the tutorial does.

``explain_step(params, x, y, spec, lr)`` returns plain data: the forward pass (z and h per layer),
the loss, the chain-rule factors layer by layer (dL_dh, dh_dz, dL_dz, dz_dW = h_{l-1}), the
gradients and the weights after one plain SGD step ``W - lr*dW``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import nn
from .errors import XorlabError

Params = dict[str, np.ndarray]


def explain_step(
    params: Params, x: np.ndarray, y: np.ndarray, spec: nn.NetSpec, lr: float
) -> dict[str, Any]:
    """Forward, loss, backward and update for one sample ``x`` (d_in,) with target ``y`` (C,)."""
    X = np.asarray(x, dtype=np.float64).reshape(1, -1)  # (1, d_in)
    Y = np.asarray(y, dtype=np.float64).reshape(1, -1)  # (1, C)
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    L = spec.n_layers
    with np.errstate(all="ignore"):
        out, cache = nn.forward(params, X, spec)
        zs = []
        for layer in range(1, L + 1):
            z = cache.hs[layer - 1] @ params[f"W{layer}"]  # (1, fan_out)
            if spec.bias:
                z = z + params[f"b{layer}"]
            zs.append(z)
        data_loss = float(nn.data_loss(cache, Y, spec))
        reg_loss = float(nn.penalty(params, spec, 1))
        grads = nn.backward(params, cache, Y, spec)

        # The chain rule, layer by layer, in the tutorial's spelling.
        chain = []
        h_out = cache.hs[L]
        if spec.loss == "mse":
            dL_dh = h_out - Y  # d/dh of sum((y - h)**2)/2, N = 1
            dh_dz = nn.sigmoid_der(h_out)
            dL_dz = dL_dh * dh_dz
        else:
            dL_dh = -Y / h_out  # d/dh of -sum(y*log h)
            dh_dz = None  # softmax's Jacobian is a matrix; dL/dz = h - y directly
            dL_dz = h_out - Y
        for layer in range(L, 0, -1):
            chain.append(
                {
                    "layer": layer,
                    "dL_dh": dL_dh,
                    "dh_dz": dh_dz,
                    "dL_dz": dL_dz,
                    "dz_dW": cache.hs[layer - 1],
                }
            )
            if layer > 1:
                dL_dh = dL_dz @ params[f"W{layer}"].T  # dz/dh_{l-1} = W_l
                dh_dz = nn.DERIVATIVES[spec.activation](cache.hs[layer - 1])
                dL_dz = dL_dh * dh_dz
        updated = {k: params[k] - lr * grads[k] for k in spec.param_keys()}

    def row(a: np.ndarray | None) -> list[float] | None:
        return None if a is None else [float(v) for v in np.ravel(a)]

    def mat(a: np.ndarray) -> list:
        return np.asarray(a, dtype=float).tolist()

    return {
        "x": row(X),
        "y": row(Y),
        "z": [row(z) for z in zs],
        "h": [row(h) for h in cache.hs[1:]],
        "loss": data_loss + reg_loss,
        "data_loss": data_loss,
        "reg_loss": reg_loss,
        "chain": [{k: (v if k == "layer" else row(v)) for k, v in step.items()} for step in chain],
        "grads": {k: mat(v) for k, v in grads.items()},
        "updated": {k: mat(v) for k, v in updated.items()},
        "lr": lr,
        "settings": {
            "activation": spec.activation,
            "loss": spec.loss,
            "bias": spec.bias,
            "penalty": spec.penalty,
            "strength": spec.strength,
        },
    }


def params_from_npz(arrays: dict[str, np.ndarray], file: str) -> tuple[Params, tuple[int, ...]]:
    """Check a weights file holds W1..WL (and optionally b1..bL) that chain; return sizes."""
    ws = sorted((k for k in arrays if k.startswith("W")), key=lambda k: int(k[1:] or 0))
    if not ws:
        raise XorlabError("no weight matrices W1, W2, ... in the file", file=file)
    expected = [f"W{i}" for i in range(1, len(ws) + 1)]
    if ws != expected:
        raise XorlabError(f"weights must be named {', '.join(expected)}; found {ws}", file=file)
    sizes = [arrays["W1"].shape[0]] if arrays["W1"].ndim == 2 else []
    for k in ws:
        W = arrays[k]
        if W.ndim != 2 or W.shape[0] != sizes[-1]:
            raise XorlabError(
                f"{k} has shape {W.shape}; expected ({sizes[-1] if sizes else '?'}, n)", file=file
            )
        sizes.append(W.shape[1])
    bs = [k for k in arrays if k.startswith("b")]
    if bs and sorted(bs) != sorted(f"b{i}" for i in range(1, len(ws) + 1)):
        raise XorlabError(f"biases must be b1..b{len(ws)} or none; found {sorted(bs)}", file=file)
    params = {k: np.asarray(arrays[k], dtype=np.float64) for k in (*ws, *bs)}
    for i in range(1, len(ws) + 1):
        b = params.get(f"b{i}")
        if b is not None and b.size != sizes[i]:
            raise XorlabError(f"b{i} has {b.size} values; expected {sizes[i]}", file=file)
        if b is not None:
            params[f"b{i}"] = b.reshape(sizes[i])
    for k, v in params.items():
        if not np.isfinite(v).all():
            raise XorlabError(f"{k} holds non-finite values", file=file)
    return params, tuple(sizes)


def parse_vector(text: str, option: str, length: int) -> np.ndarray:
    """'1.76,0.40' -> array([1.76, 0.40]); exactly ``length`` finite numbers."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise XorlabError(
            f"expected {length} comma-separated numbers such as 1.0,0.5, got {text!r}", key=option
        ) from None
    if len(values) != length or not all(np.isfinite(values)):
        raise XorlabError(
            f"expected {length} finite comma-separated numbers, got {text!r}", key=option
        )
    return np.array(values)
