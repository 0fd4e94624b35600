"""Values as a report writes them: short names for config keys, settings and numbers."""

from __future__ import annotations

from typing import Any

from ..show import format_value

ABBREVIATIONS = {"regularization": "reg", "schedule": "sched"}
GENERIC_TAILS = ("kind", "max", "decay", "strength", "gamma", "every", "lr_min", "warmup", "seed")


def display_names(keys: list[str]) -> dict[str, str]:
    """Short names for a reader: optim.lr -> lr, optim.clip.max -> clip.max (a bare 'max' says
    too little), the full key when two would read alike."""
    keys = list(dict.fromkeys(keys))

    def short(k: str) -> str:
        parts = [ABBREVIATIONS.get(p, p) for p in k.split(".")]
        return ".".join(parts[-2:]) if parts[-1] in GENERIC_TAILS and len(parts) > 1 else parts[-1]

    shorts = [short(k) for k in keys]
    return {k: (s if shorts.count(s) == 1 else k) for k, s in zip(keys, shorts)}


def _sortable(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return isinstance(v, list) and all(_sortable(x) and not isinstance(x, list) for x in v)


def _sort_key(v: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in v) if isinstance(v, list) else (float(v),)


def show(v: Any) -> str:
    """A value as a reader wants it: 0.1, [50], true, kind=norm, max=0.02."""
    if isinstance(v, dict):
        return ", ".join(f"{k}={show(x)}" for k, x in v.items())
    if isinstance(v, float):
        return number(v, 4)
    return format_value(v)


SCI_FROM = 1e6  # numbers this large or larger are written in scientific notation


def number(x: float, digits: int) -> str:
    """A float to ``digits`` significant digits, in scientific notation only past SCI_FROM (or
    when tiny): 47.3, 1834, 123457, 1.2e-05, 4.7e+250; never a 250-digit integer."""
    text = f"{x:.{digits}g}"
    if "e+" in text and abs(x) < SCI_FROM:  # 1834.2 -> 1834, not 1.834e+03
        whole = f"{x:.0f}"
        return whole if abs(float(whole)) < SCI_FROM else text
    return text
