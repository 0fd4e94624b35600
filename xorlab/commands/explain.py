"""`xorlab explain`: one training step on one sample, rendered factor by factor.

Functions return exit codes or data and print only through the Console they are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .. import nn
from ..config import load_config, validate
from ..errors import XorlabError

TUTORIAL: dict[str, dict[str, Any]] = {
    "model": {"activation": "sigmoid", "loss": "mse", "bias": False},
    "regularization": {"kind": "none"},
}


def explain_command(
    config: Path | None,
    weights: Path | None,
    x: str | None,
    y: str | None,
    lr: float | None,
    sets: list[str],
) -> dict[str, Any]:
    from ..explain import explain_step, load_npz, params_from_npz, parse_one_hot, parse_vector
    from ..train import build_data, net_spec

    if config is None and weights is None:
        raise XorlabError("give a CONFIG, --weights FILE.npz, or both", key="explain")
    params = None
    if weights is not None:
        params, sizes = params_from_npz(load_npz(weights), str(weights))
    if config is not None:
        cfg = load_config(config, sets)
    else:
        assert params is not None
        raw: dict[str, Any] = {k: dict(v) for k, v in TUTORIAL.items()}
        raw["model"]["hidden"] = list(sizes[1:-1])
        raw["model"]["bias"] = any(k.startswith("b") for k in params)
        cfg = validate(raw)
        from ..config import apply_overrides

        cfg = validate(apply_overrides(cfg.to_dict(), sets))
    spec = net_spec(cfg)
    if params is None:
        params = nn.init_params(spec, cfg.model.init, np.random.RandomState(cfg.seed))
    else:
        want = tuple(sorted(spec.param_keys()))
        if tuple(spec.sizes) != sizes or tuple(sorted(params)) != want:
            raise XorlabError(
                f"weights have layer sizes {list(sizes)} and keys {sorted(params)}; the config "
                f"needs sizes {list(spec.sizes)} and keys {list(want)}",
                file=str(weights),
            )
    d_in, n_out = spec.sizes[0], spec.sizes[-1]
    if x is not None:
        xv = parse_vector(x, "--x", d_in)
    if y is not None:
        yv = parse_one_hot(y, "--y", n_out)
    if x is None or y is None:
        data = build_data(cfg)
        if x is None:
            xv = data.X_train[0].astype(np.float64)
        if y is None:
            yv = data.y_train[0].astype(np.float64)
    step_lr = cfg.optim.lr if lr is None else lr
    if not np.isfinite(step_lr) or step_lr <= 0:
        raise XorlabError(f"must be a finite number > 0, got {step_lr}", key="--lr")
    return explain_step(params, xv, yv, spec, step_lr)


def _vec(v: list[float] | None) -> str:
    if v is None:
        return "-"
    return "[" + ", ".join(f"{a: .8f}" for a in v) + "]"


def _matrix_table(name: str, m: list[list[float]] | list[float]) -> Group:
    """A title line, then a weight matrix (rows of numbers) or a bias vector (one row)."""
    rows = np.atleast_2d(np.asarray(m, dtype=float))  # (fan_in, fan_out), or (1, fan_out)
    t = Table(show_header=False, box=None, padding=(0, 1))
    for _ in range(rows.shape[1]):
        t.add_column(justify="right")
    for row in rows:
        t.add_row(*(f"{v: .8f}" for v in row))
    return Group(Text(name, style="italic"), t)


def _gradient_tables(info: dict[str, Any]) -> list[Group]:
    """Each gradient as its formula; with a penalty, a W's data part and penalty part first, so
    that dL_dW = data part + penalty part can be checked entry by entry."""
    s = info["settings"]
    pen = info.get("penalty_grads") or {}
    lam, n = s["strength"], s.get("penalty_n", 1)
    tables = []
    for k, m in info["grads"].items():
        layer = int(k[1:])
        data = f"h{layer - 1}^T @ dL_dz{layer}" if k.startswith("W") else f"dL_dz{layer}"
        if k not in pen:
            tables.append(_matrix_table(f"dL_d{k} = {data}", m))
            continue
        der = f"λ/N * {k}" if s["penalty"] == "l2" else f"λ/N * sign({k})"
        what = f"{s['penalty']} penalty, λ = {lam:g}, N = {n}"
        tables.append(_matrix_table(f"data part of dL_d{k}: {data}", info["data_grads"][k]))
        tables.append(_matrix_table(f"penalty part of dL_d{k}: {der}  ({what})", pen[k]))
        tables.append(_matrix_table(f"dL_d{k} = {data} + {der}", m))
    return tables


def render_explain(info: dict[str, Any], console: Console) -> None:
    s = info["settings"]
    n_layers = len(info["z"])
    fwd = Table(show_header=True, box=None, padding=(0, 2))
    fwd.add_column("quantity", style="bold")
    fwd.add_column("value")
    fwd.add_column("how")
    fwd.add_row("x = h0", _vec(info["x"]), "input sample")
    for i in range(n_layers):
        layer = i + 1
        last = layer == n_layers
        act = ("sigmoid" if s["loss"] == "mse" else "softmax") if last else s["activation"]
        bias = f" + b{layer}" if s["bias"] else ""
        fwd.add_row(f"z{layer}", _vec(info["z"][i]), f"h{layer - 1} @ W{layer}{bias}")
        fwd.add_row(f"h{layer}", _vec(info["h"][i]), f"{act}(z{layer})")
    fwd.add_row("y", _vec(info["y"]), "target")
    loss_txt = "sum((y - h)**2) / 2" if s["loss"] == "mse" else "-sum(y * log(h))"
    fwd.add_row("loss", f"{info['loss']:.8f}", f"{loss_txt} + penalty {info['reg_loss']:.3g}")

    back = Table(show_header=True, box=None, padding=(0, 2))
    back.add_column("chain-rule factor", style="bold")
    back.add_column("value")
    back.add_column("formula")
    for step in info["chain"]:
        layer = step["layer"]
        last = layer == n_layers
        back.add_row(
            f"dL_dh{layer}",
            _vec(step["dL_dh"]),
            ("h - y" if s["loss"] == "mse" else "-y / h")
            if last
            else f"dL_dz{layer + 1} @ W{layer + 1}^T",
        )
        if step["dh_dz"] is not None:
            der = (
                "h(1 - h)"
                if (last or s["activation"] == "sigmoid")
                else ("1 - h**2" if s["activation"] == "tanh" else "1 if h > 0 else 0")
            )
            back.add_row(f"dh{layer}_dz{layer}", _vec(step["dh_dz"]), der)
        back.add_row(
            f"dL_dz{layer}",
            _vec(step["dL_dz"]),
            "h - y (softmax + cross-entropy)"
            if step["dh_dz"] is None
            else f"dL_dh{layer} * dh{layer}_dz{layer}",
        )
        back.add_row(f"dz{layer}_dW{layer}", _vec(step["dz_dW"]), f"h{layer - 1}")

    grads = _gradient_tables(info)
    upd = [_matrix_table(f"{k} - {info['lr']:g} * dL_d{k}", m) for k, m in info["updated"].items()]
    wide = console.is_terminal  # piped: panels as wide as their contents, not PIPE_WIDTH
    console.print(Panel(fwd, title="1. forward", title_align="left", expand=wide))
    console.print(Panel(back, title="2. backward (chain rule)", title_align="left", expand=wide))
    console.print(Panel(Group(*grads), title="3. gradients", title_align="left", expand=wide))
    step_title = f"4. one SGD step, lr = {info['lr']:g}"
    console.print(Panel(Group(*upd), title=step_title, title_align="left", expand=wide))
