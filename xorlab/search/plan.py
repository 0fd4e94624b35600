"""What a search will decide and when: the rungs of halving, the brackets of Hyperband, PBT's
rounds, the members calibrated first, the network-steps the plan spends, and the one line that
``xorlab validate`` and ``sweep --dry-run`` print about it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .spec import Distribution, SearchSpec

CALIBRATION_STREAM = 2**32 - 1  # default_rng([seed, this]): no member has this index


def halving_rungs(min_steps: int, eta: int, train_steps: int) -> list[int]:
    """``min_steps * eta**k`` for each k with ``min_steps * eta**(k+1) <= train_steps``: 37, 111,
    333 for 1000 steps and eta 3, Li et al.'s ladder (DESIGN.md's example; the survivors of the
    last rung train at least eta times its steps). No decision at ``train_steps``."""
    rungs = []
    r = min_steps
    while r * eta <= train_steps:
        rungs.append(r)
        r *= eta
    return rungs


def hyperband_weights(n_rungs: int, eta: int) -> list[int]:
    """Li et al.'s bracket sizes n_s = ceil((s_max+1)/(s+1) * eta**s), s = s_max..0 (most
    aggressive first), with s_max = the number of rungs of the full ladder; 81, 34, 15, 8, 5 for
    s_max = 4 and eta 3."""
    s_max = n_rungs
    return [-(-((s_max + 1) * eta**s) // (s + 1)) for s in range(s_max, -1, -1)]


def split_proportionally(n: int, weights: Sequence[int]) -> list[int]:
    """``n`` split in proportion to ``weights`` by largest remainders (ties: the earlier)."""
    total = sum(weights)
    sizes = [n * w // total for w in weights]
    rema = [n * w % total for w in weights]
    for i in sorted(range(len(weights)), key=lambda i: (-rema[i], i))[: n - sum(sizes)]:
        sizes[i] += 1
    return sizes


@dataclass(frozen=True)
class Bracket:
    index: int | None  # hyperband's bracket, 0 = the most aggressive; None for halving
    members: tuple[int, ...]  # sweep member indices, ascending (a contiguous range)
    rungs: tuple[int, ...]  # its decision steps, ascending


@dataclass(frozen=True)
class Plan:
    """What a search will decide and when: a pure function of the search spec, the member count
    and train.steps (and, for min_steps: auto, the calibrated first rung)."""

    kind: str
    train_steps: int
    metric: str
    mode: str
    n_members: int
    eta: int = 3
    brackets: tuple[Bracket, ...] = ()  # halving: one; hyperband: one per non-empty bracket
    calibration: tuple[int, ...] = ()  # trained in full first, never pruned
    rounds: tuple[int, ...] = ()  # pbt's decision steps
    interval: int = 0  # pbt: round i comes after (i + 1) * interval steps
    seed: int = 0
    quantile: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.2)
    resample_probability: float = 0.25
    distributions: dict[str, Distribution] = field(default_factory=dict)  # pbt's mutable keys

    def decision_steps(self) -> list[int]:
        if self.kind == "pbt":
            return list(self.rounds)
        return sorted({r for b in self.brackets for r in b.rungs})

    def bracket_of(self, member: int) -> Bracket | None:
        return next((b for b in self.brackets if member in b.members), None)

    def next_stop(self, member: int, step: int) -> int:
        """Where a live member trains to next from ``step``: its next decision, else the end."""
        stops = self.rounds if self.kind == "pbt" else getattr(self.bracket_of(member), "rungs", ())
        return next((r for r in stops if r > step), self.train_steps)


_UNSET: Any = object()


def make_plan(
    search: SearchSpec,
    n_members: int,
    train_steps: int,
    *,
    distributions: dict[str, Distribution] | None = None,
    min_steps: int | None = _UNSET,
) -> Plan:
    """The plan of a validated search. With ``min_steps: auto`` pass the calibrated first rung
    (``auto_min_steps``; None when no step reaches TRUST: no rungs, every member trains in full)."""
    common: dict[str, Any] = {
        "kind": search.kind,
        "train_steps": train_steps,
        "metric": search.metric,
        "mode": search.mode,
        "n_members": n_members,
        "seed": search.seed,
    }
    if search.kind == "pbt":
        rounds = tuple(range(search.interval, train_steps, search.interval))
        return Plan(
            **common,
            rounds=rounds,
            interval=search.interval,
            quantile=search.quantile,
            perturb=tuple(search.perturb),
            resample_probability=search.resample_probability,
            distributions=dict(distributions or {}),
        )
    first = search.min_steps
    if first == "auto":
        if min_steps is _UNSET:
            raise ValueError("min_steps: auto: pass the calibrated first rung (or None)")
        first = min_steps
    elif min_steps is not _UNSET:
        raise ValueError("min_steps is given in the search spec; pass it only for auto")
    calibration = calibration_members(n_members, search.calibrate, search.seed)
    rest = [i for i in range(n_members) if i not in set(calibration)]
    ladder = [] if first is None else halving_rungs(int(first), search.eta, train_steps)
    if search.kind == "halving":
        brackets: tuple[Bracket, ...] = (Bracket(None, tuple(rest), tuple(ladder)),)
    else:
        s_max = len(ladder)
        sizes = split_proportionally(len(rest), hyperband_weights(s_max, search.eta))
        out, start = [], 0
        for b, size in enumerate(sizes):  # bracket b has s = s_max - b rungs: the ladder's last
            if size:
                out.append(Bracket(b, tuple(rest[start : start + size]), tuple(ladder[b:])))
            start += size
        brackets = tuple(out)
    return Plan(**common, eta=search.eta, brackets=brackets, calibration=calibration)


def calibration_members(n_members: int, calibrate: int, seed: int) -> tuple[int, ...]:
    """The ``calibrate`` members trained in full first, drawn by the search seed, ascending."""
    if calibrate <= 0:
        return ()
    rng = np.random.default_rng([seed, CALIBRATION_STREAM])
    return tuple(sorted(int(i) for i in rng.choice(n_members, size=calibrate, replace=False)))


def pbt_count(K: int, quantile: float) -> int:
    """How many copy (and how many donate): ceil(K*quantile), at most K//2; the quantile is read
    as written (0.3 of 10 is 3, not the 4 that 10*0.30000000000000004 would round up to)."""
    return min(math.ceil(Fraction(repr(quantile)) * K), K // 2)


def planned_network_steps(plan: Plan) -> int:
    """Network-steps (one member, one update) the plan spends when nothing diverges."""
    if plan.kind == "pbt":
        return plan.n_members * plan.train_steps
    total = len(plan.calibration) * plan.train_steps
    for b in plan.brackets:
        n, at = len(b.members), 0
        for r in b.rungs:
            total += n * (r - at)
            n, at = -(-n // plan.eta), r
        total += n * (plan.train_steps - at)
    return total


# --- one line for validate and --dry-run --------------------------------------------------------


def describe(search: SearchSpec, n_members: int, train_steps: int, n_mutable: int = 0) -> str:
    """What the search will do, in one line (``xorlab validate``, ``sweep --dry-run``)."""
    if search.kind == "pbt":
        plan = make_plan(search, n_members, train_steps)
        q = pbt_count(n_members, search.quantile)
        return (
            f"pbt: {_plural(len(plan.rounds), 'round')} (every {search.interval} steps), "
            f"the bottom {q} copy the top {q} and perturb {_plural(n_mutable, 'key')}"
        )
    head = f"{search.kind} by {search.metric} ({search.mode}), eta {search.eta}"
    cal = f"; {search.calibrate} calibration members" if search.calibrate else ""
    if search.min_steps == "auto":
        return head + cal + "; the first rung where the calibration's rank correlation reaches 0.8"
    plan = make_plan(search, n_members, train_steps)
    full = n_members * train_steps
    spent = planned_network_steps(plan)
    rungs = ", ".join(map(str, halving_rungs(int(search.min_steps or 1), search.eta, train_steps)))
    if search.kind == "hyperband":
        sizes = ", ".join(str(len(b.members)) for b in plan.brackets)
        head += f"; brackets of {sizes} members"
    return (
        f"{head}; rungs at {rungs}{cal}; {100 * spent / full:.0f}% of the full sweep's "
        "network-steps if nothing diverges"
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
