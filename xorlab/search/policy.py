"""The decisions: ranking the live members, the rung policy of halving and Hyperband, PBT's
exploit and explore, and what follows from decision rows (a replay on full curves, the steps each
member trains, a member's lineage). Each answers from a table of stored values alone."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .events import events_frame
from .plan import Plan, pbt_count
from .spec import _g

# --- ranking --------------------------------------------------------------------------------------


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


# --- the rung policy of halving and Hyperband ---------------------------------------------------


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
        kept = t["rank"].le(-(-n // plan.eta)) & ~t["out"]
        n_keep = int(kept.sum())
        cutoff = float(t["value"][kept].iloc[-1]) if n_keep else math.nan
        members, values = t["member"].tolist(), t["value"].tolist()
        ranks, outs, keep = t["rank"].tolist(), t["out"].tolist(), kept.tolist()
        for i in range(n):
            v, rank, out = float(values[i]), int(ranks[i]), bool(outs[i])
            action = "promoted" if keep[i] else "pruned"
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
                    "member": int(members[i]),
                    "action": action,
                    "value": v,
                    "rank": rank,
                    "cutoff": cutoff,
                    "reason": f"{action} at {where}: {why}, rank {rank}/{n}, keeping {n_keep}",
                }
            )
    return rows


# --- population-based training ------------------------------------------------------------------


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
    top = t.iloc[:q].to_dict("records")  # plain lists and dicts: no pandas per row
    members, values = t["member"].tolist(), t["value"].tolist()
    ranks, outs = t["rank"].tolist(), t["out"].tolist()
    cutoff = float(values[K - q - 1])
    better = "<" if plan.mode == "min" else ">"
    worse = ">" if plan.mode == "min" else "<"
    where = f"round {i_round} (step {step})"
    rows: list[dict[str, Any]] = []
    for i in range(K - q, K):
        m, v, rank = int(members[i]), float(values[i]), int(ranks[i])
        rng = np.random.default_rng([plan.seed, m, i_round])
        d = int(rng.integers(q))
        donor = top[d]
        dm = int(donor["member"])
        if outs[i]:
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


# --- what the decisions leave -------------------------------------------------------------------


def replay(
    plan: Plan,
    metrics: pd.DataFrame,
    *,
    diverged_at: dict[int, int] | None = None,
    stopped_at: dict[int, int] | None = None,
) -> pd.DataFrame:
    """Halving or Hyperband run offline on full curves (a long metrics table: member, step, the
    plan's metric), as the driver runs it between trainings; ``diverged_at`` maps a member to the
    step whose row showed its divergence, ``stopped_at`` one that early stopping ended to the row
    it stopped at: it is done, and no later rung ranks it. Every other member's curve must reach
    the last rung it can."""
    if plan.kind == "pbt":
        raise ValueError("pbt changes the curves it decides on: it cannot be replayed offline")
    live = {m for b in plan.brackets for m in b.members}
    frames = []
    for step in plan.decision_steps():
        live -= {m for m, s in (stopped_at or {}).items() if s < step}
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
