"""Sweep files and their expansion into members: pure functions, no files written.

A sweep file (DESIGN.md section 2)::

    name: lr-vs-hidden                 # optional; default: the file's stem
    base: xor_h3.yaml                  # relative to the sweep file; or an inline `config:`
    set: {plots.gif_frames: 0}         # overrides for every member; the axes override these
    variants:                          # named override sets, each optionally on its own base
      - {name: h3, set: {model.hidden: [3]}}
      - {name: clip, base: xor_h50_clip.yaml}
    grid: {optim.lr: [0.1, 1.0], model.activation: [sigmoid, tanh]}   # Cartesian product
    zip: {regularization.strength: [0.0, 0.001], train.steps: [2000, 500]}   # varied together
    random:                            # n seeded draws
      n: 8
      seed: 0
      params:
        optim.momentum: {uniform: [0.5, 0.99]}
        data.noise: {loguniform: [0.001, 0.1]}
        train.batch_size: {choice: [null, 50]}
        train.log_every: {int: [1, 10]}          # inclusive
    seeds: [0, 1, 2]                   # replicates (sets `seed`); or a count: 3 -> 0, 1, 2

Members = variants x grid x zip x random x seeds, in that nesting order (seeds vary fastest), so
one sweep file always gives the same members in the same order. A key (or a key and one of its
sub-keys) may be set by one axis only, and no axis may list the same value, name or tuple twice:
either would run some members twice and others never.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import config as cfgmod
from . import yamlio
from .config import Config
from .errors import ConfigError, XorlabError
from .search import SearchSpec, check_search

MAX_RUNS = 10_000
LABEL_MAX = 80


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Variant(_Strict):
    name: str = Field(pattern=cfgmod.NAME_RE)  # e.g. h50_explode
    base: str | None = None  # this variant's own base config, relative to the sweep file
    config: dict[str, Any] | None = None  # or inline
    set: dict[str, Any] = Field(default_factory=dict)  # dotted key -> value


class RandomSpec(_Strict):
    n: int = Field(ge=1)  # draws
    seed: int = Field(0, ge=0, le=cfgmod.SEED_MAX)
    params: dict[str, dict[str, Any]]  # dotted key -> {choice|uniform|loguniform|int: ...}


class SweepSpec(_Strict):
    name: str | None = Field(None, pattern=cfgmod.NAME_RE)  # in the folder name; default: file's
    base: str | None = None  # path of the base config, relative to the sweep file
    config: dict[str, Any] | None = None  # or the base config inline
    set: dict[str, Any] = Field(default_factory=dict)  # dotted key -> value, for every member
    variants: list[Variant] = Field(default_factory=list)  # named override sets
    grid: dict[str, Any] = Field(default_factory=dict)  # dotted key -> values; Cartesian product
    zip: dict[str, Any] = Field(default_factory=dict)  # dotted key -> values, varied together
    random: RandomSpec | None = None  # n seeded draws of choice/uniform/loguniform/int
    seeds: list[Annotated[int, Field(ge=0, le=cfgmod.SEED_MAX)]] | int | None = None  # or a count
    search: SearchSpec | None = None  # halving, hyperband or pbt; null: all train in full


@dataclass
class Member:
    index: int
    label: str  # folder name under members/: 007-hidden=50,lr=0.3,seed=1
    variant: str | None
    seed: int
    overrides: dict[str, Any]  # dotted key -> value, everything this member sets
    varied: dict[str, Any]  # only the keys that vary across the sweep
    config: Config = field(repr=False)


@dataclass
class Sweep:
    name: str
    source: str  # the sweep file, for messages
    spec: dict[str, Any]  # the sweep as given
    base_raw: dict[str, Any]  # the base config, before member overrides
    variant_bases: dict[str, dict[str, Any]]  # variants with a base of their own
    members: list[Member]
    varied_keys: list[str]  # the columns of summary.csv that vary
    n_identical: int = 0  # members identical to an earlier one (random draws can repeat)
    search: SearchSpec | None = None  # the adaptive search (xorlab.search), checked at load


# --- loading ------------------------------------------------------------------------------------


def _spec_error(exc: ValidationError, file: str) -> ConfigError:
    problems = []
    for e in exc.errors():
        key = ".".join(str(p) for p in e["loc"]) or None
        msg = e["msg"][0].lower() + e["msg"][1:]
        if e["type"] == "extra_forbidden":
            inner = len(e["loc"]) == 2 and e["loc"][0] == "search"
            allowed = ", ".join((SearchSpec if inner else SweepSpec).model_fields)
            msg = f"unknown {'search' if inner else 'sweep'} key; allowed: {allowed}"
        problems.append((key, msg))
    return ConfigError(problems, file=file)


def load_sweep(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    max_runs: int = MAX_RUNS,
) -> Sweep:
    """Read, expand and validate a sweep file; raise ConfigError naming member and key."""
    path = Path(path)
    raw = yamlio.load_file(path)
    file = str(path)
    reject_folder_record(raw, path)
    if not isinstance(raw, dict):
        raise ConfigError([(None, "a sweep file must be a mapping of keys")], file=file)
    return build_sweep(raw, file=file, base_dir=path.parent, default_name=path.stem,
                       overrides=overrides, max_runs=max_runs)  # fmt: skip


RECORD_KEYS = ("sweep", "base_config", "members")  # what sweeprun writes into <sweep>/sweep.yaml


def reject_folder_record(raw: Any, path: Path) -> None:
    """The sweep.yaml inside a sweep folder records a sweep that ran; it is not a sweep file."""
    if isinstance(raw, dict) and all(k in raw for k in RECORD_KEYS):
        raise XorlabError(
            "this is a sweep folder's own record, not a sweep file; to continue that sweep, run "
            f"`xorlab sweep --resume {path.parent}`",
            file=str(path),
        )


def build_sweep(
    raw: dict[str, Any],
    *,
    file: str,
    base_dir: Path,
    default_name: str = "sweep",
    overrides: list[str] | tuple[str, ...] = (),
    max_runs: int = MAX_RUNS,
) -> Sweep:
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise _spec_error(exc, file) from None
    own = [v for v in spec.variants if v.base is not None or v.config is not None]
    everyone_has_a_base = bool(spec.variants) and len(own) == len(spec.variants)
    if spec.base is not None and spec.config is not None:
        raise ConfigError(
            [("base", "give one of `base:` (a file) or `config:`, not both")], file=file
        )
    if spec.base is None and spec.config is None and not everyone_has_a_base:
        raise ConfigError(
            [("base", "give `base:` (a config file) or an inline `config:`")], file=file
        )
    for v in own:
        if v.base is not None and v.config is not None:
            raise ConfigError(
                [(f"variants.{v.name}", "give one of `base:` or `config:`, not both")], file=file
            )

    def resolve(base: str | None, inline: dict[str, Any] | None, where: str) -> dict[str, Any]:
        if base is not None:
            base_path = base_dir / base
            try:
                raw_base = cfgmod.load_raw(base_path)
            except XorlabError as exc:
                raise XorlabError(f"{where}: {exc}", file=file) from None
            raw_base.setdefault("name", cfgmod.name_from_path(base_path))
        else:
            raw_base = copy.deepcopy(inline or {})
            raw_base.setdefault("name", default_name)
        for key, value in spec.set.items():
            cfgmod.set_dotted(raw_base, key, value, source=f"{file}: set")
        return cfgmod.apply_overrides(raw_base, list(overrides))

    base_raw = (
        resolve(spec.base, spec.config, "base")
        if spec.base is not None or spec.config is not None
        else {}
    )
    variant_bases = {v.name: resolve(v.base, v.config, f"variants.{v.name}.base") for v in own}

    axes = _axes(spec, file)
    n_members = math.prod(len(a) for _, a in axes) if axes else 1
    if n_members > max_runs:
        raise ConfigError(
            [(None, f"the sweep has {n_members} members, more than --max-runs {max_runs}")],
            file=file,
        )
    combos: list[tuple[dict[str, Any], ...]] = list(itertools.product(*(a for _, a in axes)))
    varied = [k for k in _varied_keys(combos) if k != "__variant__"]
    axis_keys = {k for name, a in axes if name != "variants" for part in a for k in part}
    label_keys = [k for k in varied if k in axis_keys]  # variant names stand for their own sets
    members: list[Member] = []
    distinct: set[bytes] = set()
    width = max(3, len(str(len(combos) - 1)))
    for index, combo in enumerate(combos):
        sets: dict[str, Any] = {}
        variant = None
        for part in combo:
            if "__variant__" in part:
                variant = part["__variant__"]
            sets.update({k: v for k, v in part.items() if k != "__variant__"})
        member_raw = copy.deepcopy(variant_bases.get(variant or "", base_raw))
        for key, value in sets.items():
            cfgmod.set_dotted(member_raw, key, value, source=f"{file}: member {index}")
        label = member_label(index, width, variant, {k: sets.get(k) for k in label_keys})
        config = cfgmod.validate(member_raw, file=f"{file}: member {index} ({label})")
        if members:
            _share_sections(config, members[-1].config)
        resolved = config.to_dict()
        # a digest, not the text: 100,000 members' canonical configs would hold 100 MB at once
        distinct.add(hashlib.sha256(_canonical([variant, resolved]).encode()).digest())
        varied_here = {k: get_dotted(resolved, k) for k in varied}
        members.append(
            Member(
                index=index,
                label=label,
                variant=variant,
                seed=config.seed,
                overrides=sets,
                varied=varied_here,
                config=config,
            )
        )
    if spec.search is not None:
        params = spec.random.params if spec.random is not None else None
        check_search(spec.search, [m.config for m in members], params, file=file)
    name = spec.name or default_name
    return Sweep(
        name=name,
        source=file,
        spec=raw,
        base_raw=base_raw,
        variant_bases=variant_bases,
        members=members,
        varied_keys=varied,
        n_identical=len(members) - len(distinct),
        search=spec.search,
    )


def _share_sections(config: BaseModel, previous: BaseModel) -> None:
    """Make each section of ``config`` equal to the previous member's that very object (configs
    are never changed after validation): a random search's members differ in a key or two, and
    100,000 of them then hold one copy of their shared sections, not 100,000."""
    for name, value in config.__dict__.items():
        if not isinstance(value, BaseModel):
            continue
        before = previous.__dict__.get(name)
        if before is value:
            continue
        if value == before:
            config.__dict__[name] = before
        elif isinstance(before, BaseModel):
            _share_sections(value, before)


def get_dotted(mapping: dict[str, Any], key: str) -> Any:
    node: Any = mapping
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


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


def expanded_listing(sweep: Sweep) -> list[dict[str, Any]]:
    """The member list as written into sweep.yaml."""
    return [
        {
            "index": m.index,
            "folder": m.label,
            **({"variant": m.variant} if m.variant else {}),
            "seed": m.seed,
            "set": m.overrides,
        }
        for m in sweep.members
    ]
