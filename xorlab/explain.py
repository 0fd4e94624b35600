"""One training step on one sample, every intermediate number shown, as the tutorial does.

``explain_step(params, x, y, spec, lr)`` returns plain data: the forward pass (z and h per layer),
the loss, the chain-rule factors layer by layer (dL_dh, dh_dz, dL_dz, dz_dW = h_{l-1}), the
gradients and the weights after one plain SGD step ``W - lr*dW``.

Each gradient is also given in its two parts, so that every number can be checked by hand:
``data_grads`` (``h_{l-1}^T @ dL_dz_l`` for W_l, ``dL_dz_l`` for b_l) and ``penalty_grads`` (the
penalty's derivative, for W keys only: ``lam/N * W`` for l2, ``lam/N * sign(W)`` for l1).
``grads`` = data + penalty.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import funcs, nn
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
        n_penalty = 1  # the penalty's N in this one-sample step
        reg_loss = float(nn.penalty(params, spec, n_penalty))
        grads = nn.backward(params, cache, Y, spec, n_penalty)
        data_grads = nn.backward(params, cache, Y, replace(spec, penalty="none", strength=0.0))
        penalty_grads = {}
        if spec.has_penalty:
            pen_der = funcs.PENALTIES[spec.penalty][1]
            penalty_grads = {k: pen_der(params[k], spec.strength, n_penalty) for k in spec.w_keys}

        # The chain rule, layer by layer, in the tutorial's spelling.
        chain = []
        h_out = cache.hs[L]
        if spec.loss == "mse":
            dL_dh = h_out - Y  # d/dh of sum((y - h)**2)/2, N = 1
            dh_dz = funcs.sigmoid_der(h_out)
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
                dh_dz = funcs.DERIVATIVES[spec.activation](cache.hs[layer - 1])
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
        "data_grads": {k: mat(v) for k, v in data_grads.items()},
        "penalty_grads": {k: mat(v) for k, v in penalty_grads.items()},
        "updated": {k: mat(v) for k, v in updated.items()},
        "lr": lr,
        "settings": {
            "activation": spec.activation,
            "loss": spec.loss,
            "bias": spec.bias,
            "penalty": spec.penalty,
            "strength": spec.strength,
            "penalty_n": n_penalty,
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


def parse_one_hot(text: str, option: str, length: int) -> np.ndarray:
    """'1,0' -> array([1., 0.]); ``length`` values, one of them 1 and the rest 0."""
    values = parse_vector(text, option, length)
    if not (np.isin(values, (0.0, 1.0)).all() and values.sum() == 1):
        raise XorlabError(
            f"must be a one-hot target such as {','.join(['1'] + ['0'] * (length - 1))} "
            f"(one 1, the rest 0), got {text!r}",
            key=option,
        )
    return values


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npz file, never unpickling anything; XorlabError naming the file when it
    is missing, a folder, not a .npz file, or holds objects rather than plain arrays."""
    if not path.exists():
        raise XorlabError("no such file", file=str(path))
    if path.is_dir():
        raise XorlabError("a folder, not a .npz file", file=str(path))
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise XorlabError(f"cannot read it ({exc.strerror})", file=str(path)) from None
    if head[:2] != b"PK":  # a .npz file is a zip archive of .npy files
        raise XorlabError(
            "not a .npz file (expected arrays W1, W2, ... saved by numpy.savez)", file=str(path)
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise XorlabError(
                "not a .npz file of plain arrays: it holds Python objects, which are never loaded",
                file=str(path),
            ) from None
        raise XorlabError("not a readable .npz file", file=str(path)) from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile):
        raise XorlabError(
            "not a readable .npz file (damaged or cut short)", file=str(path)
        ) from None
