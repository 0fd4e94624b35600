"""Reading run and sweep folders for a report; every problem becomes a note, never an exception.

Only a path that is not a run or sweep folder at all, or a sweep with no members, raises
XorlabError. Inside, a run may be completed or diverged, failed (error.txt), interrupted, still
running (no summary.json), never started (no folder), or have files that cannot be read; each
``RunView`` says which in ``status`` and lists what is wrong in ``problems``.

A *blow-up* is the tutorial's exploding loss without a non-finite number: the loss (the total or
the data loss alone, so that a penalty cannot hide it) rising above ``SPIKE_RATIO`` times the
lowest value it had reached before. ``status == "diverged"`` is the
trainer's own verdict (a non-finite value, or ``train.diverge_above``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import yamlio
from ..errors import XorlabError
from ..members import open_sweep
from .read_run import (
    IGNORED,
    SPIKE_RATIO,
    Blowup,
    Params,
    RunView,
    _int,
    blowup,
    blowup_either,
    divergence_cause,
    is_run_dir,
    is_sweep_dir,
    load_network,
    read_member,
    read_run,
    stored_run,
)
from .values import SCI_FROM, _sort_key, _sortable, display_names, number, show

__all__ = [  # the report's readers: one run (read_run), values (values) and sweeps (here)
    "IGNORED",
    "SCI_FROM",
    "SPIKE_RATIO",
    "Blowup",
    "Member",
    "Params",
    "RunView",
    "SweepView",
    "axis_keys",
    "blowup",
    "blowup_either",
    "display_names",
    "divergence_cause",
    "is_run_dir",
    "is_sweep_dir",
    "load_network",
    "number",
    "read_member",
    "read_run",
    "read_sweep",
    "show",
    "stored_run",
    "varied_keys",
]


# --- sweeps -------------------------------------------------------------------------------------


@dataclass
class Member:
    index: int
    label: str  # the folder under members/
    variant: str | None
    seed: int | None
    sets: dict[str, Any]  # the overrides sweep.yaml lists for it
    run: RunView


@dataclass
class SweepView:
    path: Path
    name: str
    spec: dict[str, Any]  # the sweep file as given
    members: list[Member]
    varied: list[str]  # dotted config keys whose values differ between members (not seed)
    axes: list[str]  # the independent settings: "variant", grid, zip and random keys
    problems: list[str] = field(default_factory=list)

    @property
    def has_variants(self) -> bool:
        return "variant" in self.axes

    def part(self, name: str) -> dict[str, Any]:
        """A mapping of the sweep file (grid, zip, random, ...); {} when absent or not one."""
        value = self.spec.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def independent(self) -> list[str]:
        """The axes, less the zip keys after the first (they move together with it)."""
        tied = [a for a in self.axes if a in self.part("zip")][1:]
        return [a for a in self.axes if a not in tied]

    @property
    def dependent(self) -> list[str]:
        """Varied keys that follow from another axis (the settings of each variant)."""
        return [
            k for k in self.varied if not any(k == a or k.startswith(a + ".") for a in self.axes)
        ]

    def value(self, m: Member, key: str) -> Any:
        """A member's value of an axis key; a whole section as a dict (``optim.clip``)."""
        if key == "variant":
            return m.variant
        if key == "seed":
            return m.seed if m.seed is not None else m.run.flat.get("seed")
        if key in m.run.flat:
            return m.run.flat[key]
        sub = {k[len(key) + 1 :]: v for k, v in m.run.flat.items() if k.startswith(key + ".")}
        return sub or m.sets.get(key)

    def values(self, key: str) -> list[Any]:
        """The distinct values of ``key`` in display order: numbers ascending, else as first
        seen (variants in the sweep file's order)."""
        seen: dict[str, Any] = {}
        for m in self.members:
            v = self.value(m, key)
            if v is not None:
                seen.setdefault(show(v), v)
        vals = list(seen.values())
        if all(_sortable(v) for v in vals):
            vals.sort(key=_sort_key)
        return vals

    def names(self) -> dict[str, str]:
        """Short names for axis and varied keys: optim.lr -> lr."""
        return {"variant": "variant", "seed": "seed", **display_names(self.axes + self.varied)}


def read_sweep(path: Path) -> SweepView:
    """A sweep folder: its definition from sweep.yaml and each member from the store (or, if
    sweep.yaml is unreadable, the folders under members/)."""
    problems: list[str] = []
    try:
        stored = open_sweep(path)
    except XorlabError:
        stored = None
    if stored is not None:
        sweep = stored.sweep
        read = [
            Member(
                m.index,
                m.label,
                m.variant,
                m.seed,
                dict(m.overrides),
                stored_run(stored.get(m.index)),
            )  # fmt: skip
            for m in sweep.members
        ]
        view = SweepView(path, sweep.name, dict(sweep.spec), read, [], [], problems)
        view.varied = varied_keys(read)
        view.axes = axis_keys(view)
        return view
    doc: Any = None
    if (path / "sweep.yaml").exists():
        try:
            doc = yamlio.load_file(path / "sweep.yaml")
        except XorlabError as exc:
            problems.append(f"sweep.yaml cannot be read ({exc.message})")
    else:
        problems.append("sweep.yaml is missing")
    listed = doc.get("members") if isinstance(doc, dict) else None
    spec = doc.get("sweep") if isinstance(doc, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    members: list[Member] = []
    if isinstance(listed, list) and all(isinstance(m, dict) and "folder" in m for m in listed):
        for i, m in enumerate(listed):
            label = str(m["folder"])
            index = _int(m.get("index"))
            members.append(
                Member(
                    index=i if index is None else index,
                    label=label,
                    variant=str(m["variant"]) if m.get("variant") is not None else None,
                    seed=_int(m.get("seed")),
                    sets=m.get("set") if isinstance(m.get("set"), dict) else {},
                    run=read_run(path / "members" / label, label),
                )
            )
    else:
        if doc is not None:
            problems.append("sweep.yaml has no member list; members read from members/")
        folders = sorted(p for p in (path / "members").glob("*") if p.is_dir())
        for i, p in enumerate(folders):
            run = read_run(p, p.name)
            members.append(Member(i, p.name, None, _int(run.flat.get("seed")), {}, run))
    if not members:
        raise XorlabError("empty sweep: no members listed or found", file=str(path))
    name = doc.get("name") if isinstance(doc, dict) else None
    view = SweepView(path, str(name or path.name), spec, members, [], [], problems)
    view.varied = varied_keys(members)
    view.axes = axis_keys(view)
    return view


def varied_keys(members: list[Member]) -> list[str]:
    """Config keys (dotted) whose values are not the same in every member that has a config."""
    flats = [m.run.flat for m in members if m.run.flat]
    keys: dict[str, None] = {}
    for f in flats:
        keys.update(dict.fromkeys(f))
    out = []
    for k in keys:
        if k in IGNORED:
            continue
        if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats}) > 1:
            out.append(k)
    return out


def axis_keys(view: SweepView) -> list[str]:
    """The sweep's independent settings, from its definition: the variant, grid, zip and random
    keys that take more than one value. Without a readable definition: every varied key."""
    spec = view.spec
    candidates: list[str] = []
    if spec.get("variants") or any(m.variant for m in view.members):
        candidates.append("variant")
    for part in ("grid", "zip"):
        if isinstance(spec.get(part), dict):
            candidates += [str(k) for k in spec[part]]
    rnd = spec.get("random")
    if isinstance(rnd, dict) and isinstance(rnd.get("params"), dict):
        candidates += [str(k) for k in rnd["params"]]
    if not spec:
        candidates += view.varied
    axes = []
    for k in dict.fromkeys(candidates):
        if k not in ("seed", "name") and len(view.values(k)) > 1:
            axes.append(k)
    if "variant" not in axes:  # without variants, nothing else can explain a varied key
        covered = {v for v in view.varied for a in axes if v == a or v.startswith(a + ".")}
        axes += [v for v in view.varied if v not in covered]
    return axes
