"""A sweep's axes (DESIGN.md section 2): each axis a list of override sets, one a position
(variants, grid, zip, random draws, seeds), checked so that no member runs twice; the keys that
vary across the members, and the labels that name them. Pure functions; ``sweep`` multiplies the
axes into members.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from . import config as cfgmod
from .errors import ConfigError

if TYPE_CHECKING:
    from .sweep import RandomSpec, SweepSpec

LABEL_MAX = 80


def _canonical(value: Any) -> str:
    """One text per value as a config sees it: 1 and 1.0 alike, mapping keys in any order."""

    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int):
            return float(v)
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        return v

    return json.dumps(norm(value), sort_keys=True, default=str)


def _axis_keys(spec: SweepSpec) -> list[tuple[str, str]]:
    """(axis, dotted key) for every key an axis sets, in the file's order."""
    keys: list[tuple[str, str]] = []
    for v in spec.variants:
        keys += [("variants", k) for k in v.set if ("variants", k) not in keys]
    keys += [("grid", k) for k in spec.grid]
    keys += [("zip", k) for k in spec.zip]
    if spec.random is not None:
        keys += [("random", k) for k in spec.random.params]
    if spec.seeds is not None:
        keys.append(("seeds", "seed"))
    return keys


def _check_one_axis_per_key(spec: SweepSpec, file: str) -> None:
    """A key set by two axes would silently keep one axis's value: exit 2 instead."""
    keys = _axis_keys(spec)
    for i, (axis_a, a) in enumerate(keys):
        for axis_b, b in keys[i + 1 :]:
            if a == b:
                where = f"{axis_a} and {axis_b}"
            elif b.startswith(a + "."):
                where = f"{axis_a} (as part of {a}) and {axis_b}"
            elif a.startswith(b + "."):
                where = f"{axis_a} and {axis_b} (as part of {b})"
            else:
                continue
            key = a if len(a) >= len(b) else b
            raise ConfigError(
                [(key, f"set by two axes, {where}; vary a key in one axis only "
                       "(put a fixed value in `set:`)")],
                file=file,
            )  # fmt: skip


def _check_no_repeats(where: str, values: list[Any], what: str, file: str) -> None:
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        first = seen.setdefault(_canonical(v), i)
        if first != i:
            raise ConfigError(
                [(where, f"{what} {v!r} is given twice (positions {first + 1} and {i + 1}); "
                         "each would run the same members")],
                file=file,
            )  # fmt: skip


def _axes(spec: SweepSpec, file: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each axis of the product: a list of override dicts (one per position on the axis)."""
    _check_one_axis_per_key(spec, file)
    axes: list[tuple[str, list[dict[str, Any]]]] = []
    if spec.variants:
        names = [v.name for v in spec.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError([("variants", f"duplicate variant names: {dupes}")], file=file)
        axes.append(("variants", [{"__variant__": v.name, **v.set} for v in spec.variants]))
    for key, values in spec.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                [(f"grid.{key}", f"must be a non-empty list of values, got {values!r}")], file=file
            )
        _check_no_repeats(f"grid.{key}", values, "value", file)
        axes.append((f"grid.{key}", [{key: v} for v in values]))
    if spec.zip:
        lengths = {}
        for key, values in spec.zip.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(
                    [(f"zip.{key}", f"must be a non-empty list of values, got {values!r}")],
                    file=file,
                )
            lengths[key] = len(values)
        if len(set(lengths.values())) > 1:
            raise ConfigError(
                [("zip", f"all lists must have one length; got {lengths}")], file=file
            )
        n = next(iter(lengths.values()))
        tuples = [{k: spec.zip[k][i] for k in spec.zip} for i in range(n)]
        _check_no_repeats("zip", [tuple(t.values()) for t in tuples], "tuple", file)
        axes.append(("zip", tuples))
    if spec.random is not None:
        axes.append(("random", draw_random(spec.random, file)))
    if spec.seeds is not None:
        seeds = list(range(spec.seeds)) if isinstance(spec.seeds, int) else spec.seeds
        if not seeds:
            raise ConfigError([("seeds", "must give at least one seed")], file=file)
        _check_no_repeats("seeds", seeds, "seed", file)
        axes.append(("seeds", [{"seed": s} for s in seeds]))
    return axes


DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int")


def draw_random(spec: RandomSpec, file: str) -> list[dict[str, Any]]:
    """``spec.n`` draws, each a dict of dotted key -> value, from one seeded RandomState.

    Keys are drawn in the order given, draw by draw, so the same file gives the same values.
    """
    import numpy as np  # only a sweep with random draws needs it

    rs = np.random.RandomState(spec.seed)
    for key, dist in spec.params.items():
        where = f"random.params.{key}"
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise ConfigError(
                [(where, f"must be one of {{choice: [...]}}, {{uniform: [lo, hi]}}, "
                         f"{{loguniform: [lo, hi]}}, {{int: [lo, hi]}}; got {dist!r}")],
                file=file,
            )  # fmt: skip
        kind, arg = next(iter(dist.items()))
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                raise ConfigError([(where, "choice needs a non-empty list")], file=file)
            continue
        ok = (
            isinstance(arg, list)
            and len(arg) == 2
            and all(cfgmod.is_finite_number(a) for a in arg)
            and arg[0] <= arg[1]
        )
        if ok and kind == "loguniform":
            ok = arg[0] > 0
        if ok and kind == "int":
            ok = all(isinstance(a, int) for a in arg)
        if not ok:
            need = "two integers lo <= hi" if kind == "int" else "two numbers lo <= hi"
            need += " (lo > 0)" if kind == "loguniform" else ""
            raise ConfigError([(where, f"{kind} needs {need}, got {arg!r}")], file=file)
    draws = []
    for _ in range(spec.n):
        d: dict[str, Any] = {}
        for key, dist in spec.params.items():
            kind, arg = next(iter(dist.items()))
            if kind == "choice":
                d[key] = arg[int(rs.randint(len(arg)))]
            elif kind == "uniform":
                d[key] = float(rs.uniform(arg[0], arg[1]))
            elif kind == "loguniform":
                d[key] = float(math.exp(rs.uniform(math.log(arg[0]), math.log(arg[1]))))
            else:
                d[key] = int(rs.randint(arg[0], arg[1] + 1))
        draws.append(d)
    return draws


def _varied_keys(combos: list[tuple[dict[str, Any], ...]]) -> list[str]:
    """Keys whose value differs between members, in first-seen order (variant first)."""
    seen: dict[str, list[Any]] = {}
    for combo in combos:
        for part in combo:
            for k, v in part.items():
                seen.setdefault(k, []).append(v)
    varied = []
    for k, values in seen.items():
        reprs = {repr(v) for v in values}
        if len(reprs) > 1 or k == "__variant__":
            varied.append(k)
    # a key set in some members but not others also varies
    for combo in combos:
        keys = set().union(*(p.keys() for p in combo)) if combo else set()
        for k in seen:
            if k not in keys and k not in varied:
                varied.append(k)
    return varied


def _fmt_value(v: Any) -> str:
    if isinstance(v, list):
        return "x".join(_fmt_value(x) for x in v) if v else "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "-".join(f"{k}{_fmt_value(x)}" for k, x in v.items())
    return str(v)


def short_names(keys: list[str]) -> dict[str, str]:
    """'optim.lr' -> 'lr', unless two varied keys end alike (then the full dotted key)."""
    tails = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (t if tails.count(t) == 1 else k) for k, t in zip(keys, tails)}


def member_label(index: int, width: int, variant: str | None, varied: dict[str, Any]) -> str:
    """``007-h50,lr=0.3,seed=1``: the index, the variant, then each varied key=value."""
    names = short_names(list(varied))
    parts = [variant] if variant else []
    parts += [f"{names[k]}={_fmt_value(v)}" for k, v in varied.items()]
    text = ",".join(parts) or "run"
    text = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text)
    prefix = f"{index:0{width}d}-"
    if len(prefix) + len(text) > LABEL_MAX:
        text = text[: LABEL_MAX - len(prefix) - 1] + "~"
    return prefix + text
