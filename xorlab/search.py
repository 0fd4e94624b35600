"""Adaptive search as pure policies (DESIGN.md section 2): successive halving, Hyperband and
population-based training (PBT), the calibration that says whether early ranks can be trusted,
and the ``events.csv`` record of every decision (section 3).

A policy is a function from the live members' metric values at a decision step to decision rows
(``events.csv``'s columns). It knows nothing of how members train: the executors carry the rows
out (a ``pruned`` member leaves the stack, an ``exploited`` one copies its parent's whole state, a
``perturbed`` one changes a key). Nothing here prints, writes files or reads the clock; every
random draw comes from ``numpy.random.default_rng([seed, member, round])``.

Steps and rows: metrics row t describes the parameters before update t, so after r steps a member
has logged the rows with step < r, and a decision after r steps reads each member's last logged
row with step < r (``values_at``).

The driver's loop, with training between the decisions::

    plan = make_plan(search, n_members, train_steps, distributions=..., min_steps=...)
    for step in plan.decision_steps():
        # train every live member (and, for pbt, every member) up to `step`
        rows = decide(plan, step, table)    # table: member, value[, diverged][, mutable keys]
        # carry rows out; write events_text(all rows so far) to events.csv
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from .config import SEED_MAX
from .errors import ConfigError, XorlabError

LOSSES = ("data_loss", "loss", "reg_loss")  # ranked with mode: min
ACCURACIES = ("train_acc", "test_acc")  # ranked with mode: max
METRICS = (*LOSSES, *ACCURACIES, "grad_norm")  # metrics.csv columns a search may rank by
TRUST = 0.8  # a rung whose rank correlation with the final ranks is below this is not trusted
CALIBRATION_STREAM = 2**32 - 1  # default_rng([seed, this]): no member has this index
NOT_RUN_YET = (
    "adaptive search is validated but not run yet; remove `search:` to run every member to "
    "train.steps"
)


# --- the sweep file's search: block -------------------------------------------------------------


Factor = Annotated[float, Field(gt=0.0)]
_ENUM: dict[str, Any] = {"enum": list(METRICS)}


def _factors() -> list[float]:
    return [0.8, 1.2]


class SearchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    kind: Literal["halving", "hyperband", "pbt"]  # halving | hyperband | pbt
    metric: str = Field("data_loss", json_schema_extra=_ENUM)  # metrics.csv column ranked
    mode: Literal["min", "max"] = "min"  # min for losses, max for accuracies
    eta: int = Field(3, ge=2)  # halving/hyperband: keep the best ceil(n/eta) at each rung; 3
    min_steps: int | Literal["auto"] | None = None  # first rung (37 of 1000 steps) or auto
    calibrate: int = Field(0, ge=0)  # halving/hyperband: members trained in full first; 0 = none
    interval: int = Field(100, ge=1)  # pbt: a round at every multiple of interval < train.steps
    quantile: float = Field(0.25, gt=0.0, le=0.5)  # pbt: bottom ceil(K*quantile) copy the top
    perturb: list[Factor] = Field(default_factory=_factors, min_length=1)  # pbt: multipliers
    resample_probability: float = Field(0.25, ge=0.0, le=1.0)  # pbt: else redraw the key
    mutate: list[str] | None = None  # pbt: null = the uniform/loguniform keys of random.params
    seed: int = Field(0, ge=0, le=SEED_MAX)  # every draw: default_rng([seed, member, round])

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in METRICS:
            raise PydanticCustomError(
                "metric", "must be one of " + ", ".join(METRICS) + ", got {got}", {"got": repr(v)}
            )
        return v

    @field_validator("min_steps", mode="before")
    @classmethod
    def _int_or_auto(cls, v: Any) -> Any:
        ok = v is None or v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
        if not ok:
            raise PydanticCustomError(
                "min_steps", "must be a whole number >= 1 or auto, got {got}", {"got": repr(v)}
            )
        return v


ONLY_FOR = {  # keys that do something for some kinds only: giving one to another kind is an error
    "eta": ("halving", "hyperband"),
    "min_steps": ("halving", "hyperband"),
    "calibrate": ("halving", "hyperband"),
    "interval": ("pbt",),
    "quantile": ("pbt",),
    "perturb": ("pbt",),
    "resample_probability": ("pbt",),
    "mutate": ("pbt",),
}
# what a PBT copy moves between members must fit and mean the same in both
SHAPE_KEYS = (
    "model.hidden",
    "model.activation",
    "model.loss",
    "model.bias",
    "model.dtype",
    "optim.kind",
    "data",
    "train.batch_size",
    "train.shuffle",
)


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj.model_dump() if isinstance(obj, BaseModel) else obj


def check_search(
    search: SearchSpec,
    configs: Sequence[Any],
    random_params: dict[str, dict[str, Any]] | None,
    *,
    file: str,
) -> None:
    """The load-time rules of DESIGN.md section 2, over the members' resolved configs (Config
    objects or their dicts); the first broken one is a ConfigError naming ``search.<key>``."""

    def fail(key: str | None, msg: str) -> None:
        raise ConfigError([(f"search.{key}" if key else "search", msg)], file=file)

    kind = search.kind
    for key, kinds in ONLY_FOR.items():
        if key in search.model_fields_set and kind not in kinds:
            fail(key, f"is for {' and '.join(kinds)} only; this search is {kind}")
    if search.metric in ACCURACIES and search.mode == "min":
        fail("mode", f"min would keep the members with the lowest {search.metric}; give mode: max")
    if search.metric in LOSSES and search.mode == "max":
        fail("mode", f"max would keep the members with the highest {search.metric}; give mode: min")
    steps = [int(_get(c, "train.steps")) for c in configs]
    if len(set(steps)) > 1:
        j = next(i for i, s in enumerate(steps) if s != steps[0])
        fail(
            None,
            f"needs one train.steps for every member; members 0 and {j} have "
            f"{steps[0]} and {steps[j]}",
        )
    T, n = steps[0], len(configs)
    if search.metric == "test_acc":
        for i, c in enumerate(configs):
            if not _get(c, "data.test_fraction"):
                fail("metric", f"test_acc needs a test set; member {i} has data.test_fraction 0")
    if kind == "pbt":
        if n < 2:
            fail("kind", "pbt needs at least 2 members (the bottom copy the top)")
        if search.interval >= T:
            fail(
                "interval",
                f"{search.interval} leaves no round: rounds come at multiples of "
                f"interval below train.steps ({T})",
            )
        for key in SHAPE_KEYS:
            first = _get(configs[0], key)
            for i, c in enumerate(configs[1:], start=1):
                other = _get(c, key)
                if other != first:
                    fail(
                        None,
                        f"pbt copies whole training states, so every member needs the "
                        f"same {key}; members 0 and {i} differ ({first!r} and {other!r})",
                    )
        mutable_distributions(search, random_params, file=file)
        return
    if search.min_steps is None:
        fail(
            "min_steps",
            f"{kind} needs the step of its first rung (37 for 1000 steps and eta 3), "
            "or auto with calibrate",
        )
    if search.min_steps == "auto" and search.calibrate == 0:
        fail(
            "min_steps",
            "auto needs calibrate: n, the members trained in full whose curves "
            "place the first rung",
        )
    if isinstance(search.min_steps, int) and search.min_steps * search.eta > T:
        fail(
            "min_steps",
            f"{search.min_steps} leaves no rung: a rung at r needs r*eta <= train.steps ({T})",
        )
    if search.calibrate:
        if search.calibrate < 3:
            fail("calibrate", "needs at least 3 members for a rank correlation (or 0: none)")
        if search.calibrate >= n:
            fail("calibrate", f"{search.calibrate} of {n} members leaves none to search")


@dataclass(frozen=True)
class Distribution:
    """A mutable key's distribution in ``random.params``; a PBT resample draws from it."""

    kind: Literal["uniform", "loguniform"]
    lo: float
    hi: float

    def draw(self, u: float) -> float:
        """The value at quantile ``u`` in [0, 1)."""
        if self.kind == "uniform":
            return self.lo + (self.hi - self.lo) * u
        return math.exp(math.log(self.lo) + (math.log(self.hi) - math.log(self.lo)) * u)

    def clip(self, x: float) -> float:
        return min(max(x, self.lo), self.hi)

    def __str__(self) -> str:
        return f"{self.kind} [{_g(self.lo)}, {_g(self.hi)}]"


def mutable_distributions(
    search: SearchSpec, random_params: dict[str, dict[str, Any]] | None, *, file: str = "sweep"
) -> dict[str, Distribution]:
    """Key -> distribution for every key PBT may mutate, in ``mutate``'s order (by default the
    uniform and loguniform keys of ``random.params``); anything else may not mutate (exit 2)."""
    params = random_params or {}
    ranged = [k for k, d in params.items() if next(iter(d)) in ("uniform", "loguniform")]
    keys = ranged if search.mutate is None else search.mutate
    where = "search.mutate"
    if not keys:
        msg = (
            "no key to mutate: pbt mutates the uniform or loguniform keys of random.params, "
            "and " + ("this sweep has no `random:`" if not params else "it has none")
        )
        raise ConfigError([(where, msg)], file=file)
    out: dict[str, Distribution] = {}
    for key in keys:
        if key in out:
            raise ConfigError([(where, f"{key} is given twice")], file=file)
        if key not in params:
            raise ConfigError(
                [
                    (
                        where,
                        f"{key} is not drawn by random.params; pbt mutates uniform or "
                        "loguniform keys there",
                    )
                ],
                file=file,
            )
        dist_kind, arg = next(iter(params[key].items()))
        if dist_kind not in ("uniform", "loguniform"):
            raise ConfigError(
                [
                    (
                        where,
                        f"{key} is drawn from {dist_kind}; only uniform and loguniform keys "
                        "may mutate",
                    )
                ],
                file=file,
            )
        out[key] = Distribution(dist_kind, float(arg[0]), float(arg[1]))  # type: ignore[arg-type]
    return out


def refuse_to_run(search: SearchSpec | None, *, file: str) -> None:
    """Until the executors carry decisions out, a sweep with ``search:`` is not run at all:
    running every member to train.steps would silently ignore the search."""
    if search is not None:
        raise XorlabError(NOT_RUN_YET, file=file, key="search")


# --- plans: rungs, brackets, rounds -------------------------------------------------------------


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


# --- ranking and the rung policy ----------------------------------------------------------------

EVENT_COLUMNS = (
    "step",
    "round",
    "bracket",
    "member",
    "action",
    "parent",
    "key",
    "old",
    "new",
    "value",
    "rank",
    "cutoff",
    "reason",
)
ACTIONS = ("promoted", "pruned", "exploited", "perturbed")  # events.csv's order within a step
_INTS, _NULLABLE_INTS = ("step", "round", "member"), ("bracket", "parent", "rank")
_FLOATS = ("old", "new", "value", "cutoff")
_APPLIES = {  # the columns each action fills; the others are empty in events.csv
    "promoted": {"value", "rank", "cutoff"},
    "pruned": {"value", "rank", "cutoff"},
    "exploited": {"parent", "value", "rank", "cutoff"},
    "perturbed": {"key", "old", "new"},
}


def badness(values: Iterable[float], mode: str) -> np.ndarray:
    """Sort key, smaller is better: the value (min) or its negative (max); NaN and +-inf last."""
    v = np.asarray(list(values), dtype=np.float64)  # (n,)
    with np.errstate(invalid="ignore"):
        key = v if mode == "min" else -v
    return np.where(np.isfinite(v), key, np.inf)


def ranked(table: pd.DataFrame, mode: str) -> pd.DataFrame:
    """``table`` (member, value[, diverged]) best first, with ``rank`` 1..n: by value, NaN, inf
    and diverged members last, ties by member index."""
    t = table.reset_index(drop=True)
    if t["member"].duplicated().any():
        raise ValueError("a member appears twice in the table")
    key = badness(t["value"], mode)
    out = np.isinf(key)
    if "diverged" in t:
        out |= t["diverged"].to_numpy(dtype=bool)
    key = np.where(out, np.inf, key)
    order = np.lexsort((t["member"].to_numpy(), key))
    t = t.iloc[order].reset_index(drop=True)
    t["out"] = out[order]
    t["rank"] = np.arange(1, len(t) + 1)
    return t


def values_at(metrics: pd.DataFrame, step: int, metric: str) -> pd.DataFrame:
    """member, value: each member's ``metric`` on its last logged row with step < ``step`` (what
    it has logged after ``step`` updates), from a long table (member, step, metric, ...)."""
    before = metrics[metrics["step"] < step].sort_values(["member", "step"], kind="stable")
    last = before.groupby("member", sort=True).tail(1)
    return pd.DataFrame(
        {
            "member": last["member"].to_numpy(dtype=np.int64),
            "value": last[metric].to_numpy(dtype=np.float64),
        }
    )


def _g(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}g}"


def _pair(v: float, c: float) -> tuple[str, str]:
    """``v`` and ``c`` with 4 significant digits, or as many more as it takes to tell them apart."""
    for d in range(4, 18):
        a, b = _g(v, d), _g(c, d)
        if a != b or v == c:
            return a, b
    return repr(v), repr(c)


def rung_events(plan: Plan, step: int, table: pd.DataFrame) -> list[dict[str, Any]]:
    """A promoted or pruned row for every live member of each bracket with a rung at ``step``.

    ``table`` holds the live members (member, value[, diverged]); members of brackets without a
    rung at ``step`` are ignored. The best ceil(n/eta) of the n live members are promoted; a
    diverged member (or one whose value is NaN or inf) is pruned wherever it ranks."""
    rows: list[dict[str, Any]] = []
    better, worse = ("<", ">") if plan.mode == "min" else (">", "<")
    for b in plan.brackets:
        if step not in b.rungs:
            continue
        k = b.rungs.index(step)
        where = ("" if b.index is None else f"bracket {b.index}, ") + f"rung {k} (step {step})"
        t = ranked(table[table["member"].isin(b.members)], plan.mode)
        n = len(t)
        keep = t["rank"].le(-(-n // plan.eta)) & ~t["out"]
        n_keep = int(keep.sum())
        cutoff = float(t["value"][keep].iloc[-1]) if n_keep else math.nan
        for i in range(n):
            v, rank, out = float(t["value"].iloc[i]), int(t["rank"].iloc[i]), bool(t["out"].iloc[i])
            action = "promoted" if keep.iloc[i] else "pruned"
            if out:
                why = f"diverged ({plan.metric} {_g(v)})"
            elif v == cutoff:
                why = f"{plan.metric} {_g(v)} = cutoff" + (
                    "" if action == "promoted" else ", a tie kept by the lower member index"
                )
            else:
                vs, cs = _pair(v, cutoff)
                why = f"{plan.metric} {vs} {better if action == 'promoted' else worse} cutoff {cs}"
            rows.append(
                {
                    "step": step,
                    "round": k,
                    "bracket": b.index,
                    "member": int(t["member"].iloc[i]),
                    "action": action,
                    "value": v,
                    "rank": rank,
                    "cutoff": cutoff,
                    "reason": f"{action} at {where}: {why}, rank {rank}/{n}, keeping {n_keep}",
                }
            )
    return rows


# --- population-based training ------------------------------------------------------------------


def pbt_count(K: int, quantile: float) -> int:
    """How many copy (and how many donate): ceil(K*quantile), at most K//2; the quantile is read
    as written (0.3 of 10 is 3, not the 4 that 10*0.30000000000000004 would round up to)."""
    return min(math.ceil(Fraction(repr(quantile)) * K), K // 2)


def pbt_events(plan: Plan, step: int, table: pd.DataFrame) -> list[dict[str, Any]]:
    """A PBT round after ``step`` steps: ``table`` has every member (member, value[, diverged])
    and a column per mutable key with its current value.

    The bottom q = ceil(K*quantile) members (at most K//2; NaN, inf and diverged rank last) each
    copy a donor drawn uniformly from the top q, then each mutable key is multiplied by one of
    ``perturb`` or, with ``resample_probability``, redrawn from its distribution; either is
    clipped to the distribution's bounds. A copier's draws come from default_rng([seed, member,
    round]), four per key whatever the branch (donor; then per key: u, factor, redraw), so one
    setting never shifts another's draws."""
    i_round = step // plan.interval - 1
    t = ranked(table, plan.mode)
    K = len(t)
    q = pbt_count(K, plan.quantile)
    if q == 0:
        return []
    top = t.iloc[:q]
    cutoff = float(t["value"].iloc[K - q - 1])
    better = "<" if plan.mode == "min" else ">"
    worse = ">" if plan.mode == "min" else "<"
    where = f"round {i_round} (step {step})"
    rows: list[dict[str, Any]] = []
    for i in range(K - q, K):
        m, v, rank = int(t["member"].iloc[i]), float(t["value"].iloc[i]), int(t["rank"].iloc[i])
        rng = np.random.default_rng([plan.seed, m, i_round])
        d = int(rng.integers(q))
        donor = top.iloc[d]
        dm = int(donor["member"])
        if t["out"].iloc[i]:
            why = f"{plan.metric} {_g(v)} ranks last"
        elif v == cutoff:
            why = f"{plan.metric} {_g(v)} = cutoff {_g(cutoff)}, a tie that goes to the lower index"
        else:
            vs, cs = _pair(v, cutoff)
            why = f"{plan.metric} {vs} {worse} cutoff {cs}"
        rows.append(
            {
                "step": step,
                "round": i_round,
                "member": m,
                "action": "exploited",
                "parent": dm,
                "value": v,
                "rank": rank,
                "cutoff": cutoff,
                "reason": f"exploited at {where}: {why}, rank {rank}/{K} (the bottom {q} "
                f"copy the top {q}); copies member {dm} (rank {int(donor['rank'])}"
                f", {plan.metric} {_g(float(donor['value']))} {better} "
                "cutoff)",
            }
        )
        for key, dist in plan.distributions.items():
            u, j, w = float(rng.random()), int(rng.integers(len(plan.perturb))), float(rng.random())
            old = float(donor[key])
            if u < plan.resample_probability:
                new = dist.clip(dist.draw(w))
                how = (
                    f"{key} resampled from {dist} (probability {_g(plan.resample_probability)})"
                    f": {_g(new)}, was {_g(old)} from member {dm}"
                )
            else:
                f = plan.perturb[j]
                raw = old * f
                new = dist.clip(raw)
                how = f"{key} {_g(old)} from member {dm} x {_g(f)} = {_g(raw)}"
                if new != raw:
                    how += f", clipped to {_g(new)} ({dist} bounds)"
            rows.append(
                {
                    "step": step,
                    "round": i_round,
                    "member": m,
                    "action": "perturbed",
                    "key": key,
                    "old": old,
                    "new": new,
                    "reason": f"perturbed at {where}: {how}",
                }
            )
    return rows


def decide(plan: Plan, step: int, table: pd.DataFrame) -> pd.DataFrame:
    """The decisions after ``step`` steps, as events rows in events.csv's order."""
    if step not in plan.decision_steps():
        raise ValueError(f"no decision at step {step}; the plan decides at {plan.decision_steps()}")
    rows = pbt_events(plan, step, table) if plan.kind == "pbt" else rung_events(plan, step, table)
    return events_frame(rows)


def replay(
    plan: Plan,
    metrics: pd.DataFrame,
    *,
    diverged_at: dict[int, int] | None = None,
) -> pd.DataFrame:
    """Halving or Hyperband run offline on full curves (a long metrics table: member, step, the
    plan's metric), as the driver runs it between trainings; ``diverged_at`` maps a member to the
    step whose row showed its divergence. Every member's curve must reach the last rung it can."""
    if plan.kind == "pbt":
        raise ValueError("pbt changes the curves it decides on: it cannot be replayed offline")
    live = {m for b in plan.brackets for m in b.members}
    frames = []
    for step in plan.decision_steps():
        now = metrics[metrics["member"].isin(live)]
        table = values_at(now, step, plan.metric)
        table["diverged"] = [(diverged_at or {}).get(m, step) < step for m in table["member"]]
        ev = decide(plan, step, table)
        live -= set(ev.loc[ev["action"] == "pruned", "member"].tolist())
        frames.append(ev)
    return events_frame(pd.concat(frames).to_dict("records") if frames else [])


def steps_done(plan: Plan, events: pd.DataFrame) -> dict[int, int]:
    """Member -> the steps the plan gives it after these decisions (a pruned member stops at its
    rung, everyone else at train.steps); a member that diverged stopped earlier still."""
    done = dict.fromkeys(range(plan.n_members), plan.train_steps)
    pruned = events[events["action"] == "pruned"]
    done.update(zip(pruned["member"].astype(int), pruned["step"].astype(int)))
    return done


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


def lineage(events: pd.DataFrame, member: int) -> pd.DataFrame:
    """The exploited and perturbed rows that made ``member``'s final state, its donors' included,
    by step: replaying them from the first row's parent (or the member itself when there are
    none) gives the member. ``xorlab export`` writes this as lineage.csv."""
    parts, until = [], math.inf
    pbt = events[events["action"].isin(("exploited", "perturbed"))]
    while True:
        mine = pbt[(pbt["member"] == member) & (pbt["step"] < until)]
        copies = mine[mine["action"] == "exploited"]
        if copies.empty:
            break
        at = int(copies["step"].max())
        parts.append(mine[mine["step"] == at])
        member, until = int(copies.loc[copies["step"] == at, "parent"].iloc[0]), at
    return events_frame(pd.concat(parts[::-1]).to_dict("records") if parts else [])


# --- calibration --------------------------------------------------------------------------------


def calibration_members(n_members: int, calibrate: int, seed: int) -> tuple[int, ...]:
    """The ``calibrate`` members trained in full first, drawn by the search seed, ascending."""
    if calibrate <= 0:
        return ()
    rng = np.random.default_rng([seed, CALIBRATION_STREAM])
    return tuple(sorted(int(i) for i in rng.choice(n_members, size=calibrate, replace=False)))


def spearman(a: Iterable[float], b: Iterable[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks, ties given their average
    rank; NaN when either side has a single rank (no order to compare)."""
    ra = pd.Series(list(a), dtype=np.float64).rank(method="average").to_numpy()  # (n,)
    rb = pd.Series(list(b), dtype=np.float64).rank(method="average").to_numpy()  # (n,)
    da, db = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float(da @ da) * float(db @ db))
    return float(da @ db) / den if den > 0 else math.nan


def calibration_table(
    curves: pd.DataFrame, *, mode: str, final: pd.Series | None = None
) -> pd.DataFrame:
    """calibration.csv (step, spearman): at each logged step, the rank correlation between the
    calibration members' metric and their final metric. ``curves`` is step (index) x member
    (columns); a step a member did not log reads its last logged row (as a rung would), and NaN,
    inf rank last. ``final`` (member -> value) defaults to each curve's last row."""
    c = curves.sort_index().ffill()
    last = c.iloc[-1] if final is None else final.reindex(c.columns)
    fin = badness(last, mode)
    rho = [spearman(badness(row, mode), fin) for row in c.to_numpy()]
    return pd.DataFrame({"step": c.index.to_numpy(dtype=np.int64), "spearman": rho})


def curves_from_metrics(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The long metrics table (member, step, ...) as step x member of one metric."""
    return metrics.pivot(index="step", columns="member", values=metric)


def rung_correlation(calibration: pd.DataFrame, rung: int) -> float:
    """The correlation of the row a rung after ``rung`` steps reads (the last step < rung)."""
    before = calibration[calibration["step"] < rung]
    return float(before["spearman"].iloc[-1]) if len(before) else math.nan


def auto_min_steps(
    calibration: pd.DataFrame, eta: int, train_steps: int, threshold: float = TRUST
) -> int | None:
    """min_steps: auto: the first rung reads the earliest logged step s whose correlation reaches
    ``threshold``, so it comes after s + 1 steps; None when no such step leaves a rung
    ((s + 1) * eta <= train_steps)."""
    ok = calibration[calibration["spearman"] >= threshold]
    if ok.empty:
        return None
    first = int(ok["step"].iloc[0]) + 1
    return first if first * eta <= train_steps else None


# --- events.csv ---------------------------------------------------------------------------------


def events_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Decision rows as a table with events.csv's columns and types, in its order: step,
    bracket, action (promoted, pruned, exploited, perturbed), member, key."""
    df = pd.DataFrame(list(rows), columns=list(EVENT_COLUMNS))
    for c in _INTS:
        df[c] = df[c].astype(np.int64)
    for c in _NULLABLE_INTS:
        df[c] = pd.array([None if pd.isna(x) else int(x) for x in df[c]], dtype="Int64")
    for c in _FLOATS:
        df[c] = df[c].astype(np.float64)
    for c in ("action", "key", "reason"):
        text = [None if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
                for x in df[c]]  # fmt: skip
        df[c] = pd.Series(text, index=df.index, dtype=object)
    if not df["action"].isin(ACTIONS).all():
        raise ValueError(f"actions must be among {ACTIONS}")
    sort = pd.DataFrame(
        {
            "step": df["step"],
            "bracket": df["bracket"].fillna(-1).astype(np.int64),
            "action": df["action"].map(ACTIONS.index),
            "member": df["member"],
            "key": df["key"].fillna(""),
        }
    )
    order = sort.sort_values(list(sort.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


def events_text(events: pd.DataFrame) -> str:
    """events.csv's text: numbers as Python's repr (so they read back exactly), a column an
    action does not fill left empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(EVENT_COLUMNS)
    for rec in events_frame(events.to_dict("records")).to_dict("records"):
        fills = _APPLIES[rec["action"]]
        cells = []
        for c in EVENT_COLUMNS:
            v = rec[c]
            if c in _INTS or c == "bracket":
                cells.append("" if pd.isna(v) else repr(int(v)))
            elif c in _NULLABLE_INTS:
                cells.append(repr(int(v)) if c in fills and not pd.isna(v) else "")
            elif c in _FLOATS:
                cells.append(repr(float(v)) if c in fills else "")
            elif c == "key":
                cells.append(v if c in fills and v is not None else "")
            else:
                cells.append("" if v is None else str(v))
        w.writerow(cells)
    return buf.getvalue()


def read_events(text: str) -> pd.DataFrame:
    """events.csv's text back as the table ``events_text`` wrote."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != EVENT_COLUMNS:
        raise ValueError(f"not an events.csv: its header is not {','.join(EVENT_COLUMNS)}")
    rows = []
    for cells in reader:
        rec: dict[str, Any] = {}
        for c, s in zip(EVENT_COLUMNS, cells):
            if c in _INTS or c in _NULLABLE_INTS:
                rec[c] = int(s) if s else None
            elif c in _FLOATS:
                rec[c] = float(s) if s else math.nan
            else:
                rec[c] = s if s else None
        rows.append(rec)
    return events_frame(rows)


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
