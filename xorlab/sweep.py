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
either would run some members twice and others never. The axes, their checks and the members'
labels are in ``axes``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import config as cfgmod
from . import yamlio
from .axes import _axes, _canonical, _varied_keys, member_label
from .config import Config
from .errors import ConfigError, XorlabError
from .search import SearchSpec, check_search

MAX_RUNS = 10_000


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
