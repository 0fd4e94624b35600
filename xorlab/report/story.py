"""The words of a sweep report: its opening paragraphs, written from the data.

For a sweep of up to a dozen variants, variant by variant: each unstable one (most seeds blew
up or diverged), what changing a single setting of it did, how variants that differ in one
setting compare. For grids and random searches, the metric and the failures per value of each
axis. Then the best and the worst point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .figs import cause_text, fmt, fmt_acc
from .points import FINISHED, Plan, Point, is_bad, metric_value
from .read import SPIKE_RATIO, Member, SweepView, show

SECTION_KNOBS = ("optim.schedule", "optim.clip", "regularization")  # changed as one setting
IGNORED_PREFIXES = ("plots.", "name")
INACTIVE = ("none", "constant")  # a section kind whose other keys have no effect
STATUS_WORDS = {"pending": "not started", "unfinished": "unfinished (no summary.json)",
                "stopped_early": "stopped early"}  # fmt: skip
MAX_STORY_POINTS = 12  # variants told one by one; more are summarised per axis


# --- words --------------------------------------------------------------------------------------


def span(vals: np.ndarray, acc: bool = False) -> str:
    f = fmt_acc if acc else (lambda v: fmt(v, 3))
    if not vals.size:
        return "–"
    lo, hi = float(vals.min()), float(vals.max())
    return f(lo) if f(lo) == f(hi) else f"{f(lo)}–{f(hi)}"


def _steps(steps: list[int]) -> str:
    if not steps:
        return ""
    if len(steps) == 1:
        return f"step {steps[0]}"
    lo, hi, med = min(steps), max(steps), float(np.median(steps))
    if lo == hi:
        return f"step {lo}"
    return f"steps {lo}–{hi}, median {med:g}"


def outcome(p: Point) -> str:
    """'blew up in 3/3 seeds (first at steps 2–3, median 2); final train accuracy 0.56–0.72'."""
    n = len(p.finished)
    if not n:
        statuses = sorted({m.run.status for m in p.members})
        return "no finished member (" + ", ".join(statuses) + ")"
    parts = []
    div = [m.run.diverged_at for m in p.diverged if m.run.diverged_at is not None]
    blew = [
        m.run.first_blowup
        for m in p.finished
        if m.run.first_blowup is not None and m.run.status != "diverged"
    ]
    unit = "seeds" if n > 1 else "run"
    if div:
        parts.append(f"diverged in {len(p.diverged)}/{n} {unit} (at {_steps(div)})")
    if blew:
        how = "blew up without diverging" if div else "blew up"
        parts.append(f"{how} in {len(blew)}/{n} {unit} (first at {_steps(blew)})")
    if not div and not blew:
        parts.append(f"0/{n} blew up or diverged")
    acc = p.metric("final_train_acc")
    loss = p.metric("final_loss")
    tail = f"final train accuracy {span(acc, acc=True)}"
    if loss.size:
        tail += f", loss {span(loss)}"
    return "; ".join(parts) + "; " + tail


def divergence_causes(members: list[Member]) -> str:
    """Why members diverged, counted: 'all 5: the loss rose above `train.diverge_above` = 100',
    or '2: a non-finite loss; 3: the loss rose above `train.diverge_above` = 100'."""
    counts: dict[str, int] = {}
    limits = {m.run.diverge_limit for m in members if m.run.diverge_cause == "above"}
    limit = next(iter(limits)) if len(limits) == 1 else None
    for m in members:
        cause = cause_text(m.run.diverge_cause, limit)
        counts[cause] = counts.get(cause, 0) + 1
    if len(counts) == 1:
        ((cause, n),) = counts.items()
        return f"all {n}: {cause}" if n > 1 else cause
    return "; ".join(f"{n}: {cause}" for cause, n in counts.items())


def knob(key: str) -> str:
    for k in SECTION_KNOBS:
        if key.startswith(k + "."):
            return k
    return key


def settings(m: Member) -> dict[str, Any]:
    return {
        k: v
        for k, v in m.run.flat.items()
        if k not in ("seed", "name") and not k.startswith(IGNORED_PREFIXES)
    }


def knob_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Settings that differ, grouped into knobs: knob -> (a's text, b's text)."""
    keys = [k for k in dict.fromkeys([*a, *b]) if show(a.get(k)) != show(b.get(k))]
    out: dict[str, list[str]] = {}
    for k in keys:
        out.setdefault(knob(k), []).append(k)
    res = {}
    for kn, ks in out.items():
        if len(ks) == 1 and ks[0] == kn:
            res[kn] = (show(a.get(kn)), show(b.get(kn)))
        else:
            sub = [k for k in ks if not k.endswith(".kind")]
            kinds = [k for k in ks if k.endswith(".kind")] or [f"{kn}.kind"]

            def text(d: dict[str, Any], kinds: list[str] = kinds, sub: list[str] = sub) -> str:
                head = " ".join(show(d.get(k)) for k in kinds if d.get(k) is not None)
                if head in INACTIVE:  # its other keys do nothing: clip none (max 1)
                    return head
                rest = ", ".join(f"{k.rsplit('.', 1)[-1]} {show(d.get(k))}" for k in sub)
                return (head + (f" ({rest})" if rest else "")).strip()

            res[kn] = (text(a), text(b))
    return res


Story = list[str | list[str]]  # paragraphs; a list is a bulleted list


def story(pl: Plan) -> Story:
    """The opening paragraphs, written from the data."""
    view, points = pl.view, pl.points
    out: Story = [setup_sentence(view, points)]
    n_done = sum(len(p.finished) for p in points)
    n_bad = sum(len(p.bad) for p in points)
    if n_bad:
        diverged = [m for p in points for m in p.diverged]
        how = f" ({divergence_causes(diverged)})" if diverged else ""
        out.append(
            f"**{n_bad} of {n_done}** finished members blew up (the loss rose above "
            f"{SPIKE_RATIO:g}× the lowest value it had reached) or diverged{how}."
        )
    elif n_done:
        who = "The finished member" if n_done == 1 else f"None of the {n_done} finished members"
        out.append(
            f"{who} {'neither blew up nor diverged' if n_done == 1 else 'blew up or diverged'}."
        )
    if view.has_variants and len(points) <= MAX_STORY_POINTS:
        out += per_point_story(pl)
    else:
        out += per_axis_story(pl)
    out.append(best_sentence(pl))
    return [s for s in out if s]


def setup_sentence(view: SweepView, points: list[Point]) -> str:
    n = len(view.members)
    names = view.names()
    seeds = view.values("seed")
    rnd = view.part("random")
    params = rnd.get("params")
    drawn = [a for a in view.axes if isinstance(params, dict) and a in params]
    zipped = [a for a in view.axes if a in view.part("zip")]
    dims = []
    for a in view.axes:
        if a in drawn[1:] or a in zipped[1:]:
            continue
        n_a = len(view.values(a))
        if a == "variant":
            dims.append(f"{n_a} variants")
        elif a in drawn:
            dims.append(f"{rnd.get('n', n_a)} random draws of " + _and([names[k] for k in drawn]))
        elif a in zipped:
            dims.append(f"{n_a} values of " + _and([names[k] for k in zipped]) + " together")
        else:
            dims.append(f"{n_a} values of `{names.get(a, a)}`")
    if len(seeds) > 1:
        dims.append(f"{len(seeds)} seeds")
    steps = sorted({m.run.steps_total for m in view.members if m.run.steps_total is not None})
    trained = sum(m.run.status in FINISHED for m in view.members)
    nets = f"network{'s' * (n != 1)}"
    if trained == n:
        text = f"This sweep trained **{n}** {nets}"
    else:  # stopped early, or members failed: say what was actually trained
        text = f"This sweep has **{n}** {nets}"
    if dims:
        text += ": " + " × ".join(dims)
    if len(steps) == 1:
        text += f", {steps[0]} step{'s' * (steps[0] != 1)} each"
    if trained != n:
        text += f"; **{trained}** of them trained to the end (completed or diverged)"
    order = ("completed", "diverged", "stopped_early", "pruned", "failed", "interrupted",
             "unfinished", "pending", "damaged")  # fmt: skip
    counts = {s: sum(m.run.status == s for m in view.members) for s in order}
    text += ". Status: " + ", ".join(
        f"{c} {STATUS_WORDS.get(s, s)}" for s, c in counts.items() if c
    )
    return text + "."


def _and(words: list[str]) -> str:
    words = [f"`{w}`" for w in words]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def per_point_story(pl: Plan) -> Story:
    points = pl.points
    out: Story = []
    first = {id(p): p.first() for p in points}
    cfg = {id(p): settings(first[id(p)]) for p in points}
    bad_points = [p for p in points if p.unstable]
    described: set[int] = set()
    for u in bad_points:
        if id(u) in described:  # already told as a one-setting change of an earlier point
            continue
        text = f"**{u.label}** {outcome(u)}."
        fixes = []
        for q in points:
            if q is u or not cfg[id(q)] or not cfg[id(u)]:
                continue
            diff = knob_diff(cfg[id(u)], cfg[id(q)])
            if len(diff) == 1:
                ((kn, (a, b)),) = diff.items()
                verdict = "still unstable" if q.unstable else "fixed"
                fixes.append(f"`{kn}` {a} → {b} (**{q.label}**, {verdict}): {outcome(q)}")
                described.add(id(q))
        if fixes:
            text += " Changing one setting:"
        out.append(text)
        if fixes:
            out.append([f + "." for f in fixes])
        described.add(id(u))
    pairs = []
    stable = [p for p in points if not p.unstable and id(p) not in described and p.finished]
    for i, p in enumerate(stable):
        for q in stable[i + 1 :]:
            if cfg[id(p)] and cfg[id(q)]:
                diff = knob_diff(cfg[id(p)], cfg[id(q)])
                if len(diff) == 1:
                    ((kn, (vp, vq)),) = diff.items()
                    pairs.append(
                        f"**{p.label}** → **{q.label}** (`{kn}` {vp} → {vq}): median final loss "
                        f"{fmt(p.median('final_loss'), 3)} → {fmt(q.median('final_loss'), 3)}, "
                        f"train accuracy {fmt_acc(p.median('final_train_acc'))} → "
                        f"{fmt_acc(q.median('final_train_acc'))}"
                    )
                    described.update((id(p), id(q)))
    if len(pairs) == 1:
        out.append(pairs[0] + ".")
    elif pairs:
        out += ["Between points that differ in one setting:", [t + "." for t in pairs]]
    rest = [p for p in points if id(p) not in described]
    if rest and len(rest) <= 8:
        out.append([f"**{p.label}**: {outcome(p)}." for p in rest])
    return out


def per_axis_story(pl: Plan) -> list[str]:
    """For big sweeps: per axis, how the metric and the failures change with its value."""
    view, metric = pl.view, pl.metric
    names = view.names()
    out = []
    for a in view.axes:
        vals = view.values(a)
        if len(vals) > 8:
            continue
        parts = []
        for v in vals:
            ms = [m for m in view.members if show(view.value(m, a)) == show(v)]
            done = [m for m in ms if m.run.status in FINISHED]
            got = [x for m in done if (x := metric_value(m, metric.name)) is not None]
            bad = sum(is_bad(m) for m in done)
            text = f"{show(v)}: {fmt(float(np.median(got)), 3) if got else '–'}"
            if bad:
                text += f" ({bad}/{len(done)} blew up or diverged)"
            parts.append(text)
        out.append(f"Median {metric.label} by `{names.get(a, a)}`: " + "; ".join(parts) + ".")
    return out


def best_sentence(pl: Plan) -> str:
    metric = pl.metric
    scored = [(v, p) for p in pl.points if (v := p.median(metric.name)) is not None]
    if len(scored) < 2:
        return ""
    sign = 1 if metric.lower_is_better else -1
    scored.sort(key=lambda t: sign * t[0])
    (bv, best), (wv, worst) = scored[0], scored[-1]
    return (
        f"Best by median {metric.label}: **{best.label}** ({fmt(bv, 3)}); "
        f"worst: **{worst.label}** ({fmt(wv, 3)})."
    )
