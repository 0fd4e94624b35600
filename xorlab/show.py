"""What command output and report pages share in how they show runs: a config as dotted keys,
a config value as YAML writes it, and one colour per run.

``xorlab compare`` (a command) and ``xorlab.report`` (pages) both import from here, so pages do
not depend on a command module."""

from __future__ import annotations

from typing import Any

import numpy as np

RUN_COLORS = (  # colour-blind-safe, distinct on white (Okabe-Ito, then Tableau)
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#8C564B",
    "#7F7F7F",
    "#BCBD22",
)


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1, "clip": {"kind": "none"}}}`` -> ``{"optim.lr": 0.1,
    "optim.clip.kind": "none"}``. Lists are values, not sections."""
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def format_value(v: Any) -> str:
    """A config value as YAML would show it: 0.1, [50], true, null."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


def run_colors(n: int) -> list[str]:
    """``n`` distinct colours: RUN_COLORS, then evenly spaced hues of a cyclic colormap."""
    if n <= len(RUN_COLORS):
        return list(RUN_COLORS[:n])
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps["turbo"]
    return [to_hex(cmap(x)) for x in np.linspace(0.05, 0.95, n)]
