"""Backprop gradients against central finite differences.

For each parameter entry, the fourth-order central difference
    numeric = (-L(+2e) + 8 L(+e) - 8 L(-e) + L(-2e)) / (12 e)
with L the batch's data loss plus the penalty, whose N is the number of training rows
(``n_penalty``; by default the batch's rows, for a batch that is the whole training set): its
truncation error is O(e**4), so e can be large enough (1e-4) that rounding stays ~1e-12 and a
1e-6 relative tolerance is meaningful.
Relative error = |analytic - numeric| / max(|analytic| + |numeric|, floor); the floor keeps
entries whose gradient is ~0 from dividing noise by noise.
All in float64, whatever the config's dtype.

Finite differences are meaningless across a kink: an entry whose perturbation flips a ReLU unit
on or off somewhere in the batch, or moves an L1-penalized weight across 0, is skipped and
counted, not compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import nn

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class ParamCheck:
    key: str
    shape: tuple[int, ...]
    checked: int  # entries compared
    skipped: int  # entries whose finite difference would cross a kink
    max_abs_grad: float
    max_rel_error: float


def loss_fn(
    params: Params, X: np.ndarray, Y: np.ndarray, spec: nn.NetSpec, n_penalty: int | None = None
) -> float:
    """The batch's data loss + the penalty with N = ``n_penalty`` (default: the batch's rows)."""
    return _loss_and_pattern(params, X, Y, spec, n_penalty)[0]


def _loss_and_pattern(
    params: Params, X: np.ndarray, Y: np.ndarray, spec: nn.NetSpec, n_penalty: int | None = None
) -> tuple[float, bytes]:
    """The loss, and which ReLU units are on (empty for smooth activations)."""
    _, cache = nn.forward(params, X, spec)
    n = X.shape[0] if n_penalty is None else n_penalty
    loss = float(nn.data_loss(cache, Y, spec)) + float(nn.penalty(params, spec, n))
    pattern = b""
    if spec.activation == "relu":
        pattern = b"".join(np.packbits(h > 0).tobytes() for h in cache.hs[1:-1])
    return loss, pattern


def check_gradients(
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    spec: nn.NetSpec,
    *,
    eps: float = 1e-4,
    floor: float = 1e-6,
    max_entries: int = 400,
    seed: int = 0,
    n_penalty: int | None = None,
) -> list[ParamCheck]:
    """Compare ``nn.backward`` with central differences; at most ``max_entries`` per parameter
    (a seeded random subset when there are more). ``n_penalty``: the penalty's N, the number of
    training rows when ``X`` is a minibatch (default: ``X``'s rows)."""
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    rs = np.random.RandomState(seed)
    results = []
    with np.errstate(all="ignore"):
        _, cache = nn.forward(params, X, spec)
        grads = nn.backward(params, cache, Y, spec, n_penalty)
        base_pattern = _loss_and_pattern(params, X, Y, spec, n_penalty)[1]
        l1 = spec.penalty == "l1" and bool(spec.strength)
        for key in spec.param_keys():
            p = params[key]
            flat = p.reshape(-1)  # a view: editing it edits params[key]
            idx = np.arange(flat.size)
            if flat.size > max_entries:
                idx = np.sort(rs.choice(flat.size, max_entries, replace=False))
            g = grads[key].reshape(-1)
            worst, skipped = 0.0, 0
            for i in idx:
                old = flat[i]
                f = {}
                kink = l1 and key.startswith("W") and abs(old) <= 2 * eps
                for m in (-2, -1, 1, 2):
                    flat[i] = old + m * eps
                    f[m], pattern = _loss_and_pattern(params, X, Y, spec, n_penalty)
                    kink = kink or pattern != base_pattern
                flat[i] = old
                if kink:
                    skipped += 1
                    continue
                num = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * eps)
                err = abs(g[i] - num) / max(abs(g[i]) + abs(num), floor)
                worst = max(worst, float(err))
            results.append(
                ParamCheck(
                    key=key,
                    shape=tuple(p.shape),
                    checked=int(idx.size) - skipped,
                    skipped=skipped,
                    max_abs_grad=float(np.abs(g).max(initial=0.0)),
                    max_rel_error=worst,
                )
            )
    return results
