"""The sweep report's sections on an adaptive search (DESIGN.md sections 2 and 3): what the
search decided and what it cost, whether its early ranks could be trusted, and for PBT how the
winner's hyperparameters came about. A sweep without a search gets none of them.

What is read, and nothing else:
- ``events.csv`` (``xorlab.search.read_events``): the rung table from its promoted and pruned
  rows (step, round, bracket, member, action, cutoff), PBT's lineage and per-round values from
  its exploited (member, parent, step) and perturbed (member, key, new, reason) rows;
- ``calibration.csv`` (step, spearman): the calibration panel;
- ``summary.csv``: status (``pruned``), ``steps_done``, ``bracket``, ``calibration``,
  ``parent``, and the final metric that names PBT's winner;
- sweep.yaml's ``search:`` block (kind, metric, mode, eta, interval) and ``random.params`` (which
  keys are loguniform), and the members' configs there (PBT's initial values);
- metrics/: one column (the search's metric) for the curves, each cut at its member's steps_done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..search import TRUST, auto_min_steps, read_events, rung_correlation
from .doc import Doc, Table
from .figs import fmt
from .read import SweepView, display_names

if TYPE_CHECKING:
    from .large import LargeSweepView

SECTIONS = ("Search", "Search: loss curves", "Search: calibration", "Population-based training")
KIND_NAMES = {"halving": "Successive halving", "hyperband": "Hyperband",
              "pbt": "Population-based training"}  # fmt: skip
FINAL_COLUMNS = {"data_loss": "final_data_loss", "loss": "final_loss",
                 "train_acc": "final_train_acc", "test_acc": "final_test_acc"}  # fmt: skip
CURVE_POINTS = 200  # step positions kept per member in the curves figure


@dataclass
class SearchView:
    path: Path
    kind: str  # halving | hyperband | pbt
    metric: str  # the metrics.csv column ranked
    mode: str  # min | max
    eta: int
    interval: int  # pbt's rounds (0 when unknown: the steps of its events)
    train_steps: int
    events: pd.DataFrame  # events.csv
    summary: pd.DataFrame  # summary.csv
    calibration: pd.DataFrame | None  # calibration.csv
    log_keys: set[str]  # keys drawn loguniform (drawn on a log axis)
    configs: list[Any]  # each member's config as sweep.yaml gives it (PBT: initial values)
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> dict[str, str]:
        return display_names(self.mutable)

    @property
    def mutable(self) -> list[str]:
        """PBT's mutated keys, in the order events.csv first names them."""
        keys = self.events.loc[self.events["action"] == "perturbed", "key"]
        return list(dict.fromkeys(str(k) for k in keys))

    def column(self, name: str) -> pd.Series:
        """A summary.csv column by member index (NaN where absent)."""
        s = self.summary
        if name not in s:
            return pd.Series(np.nan, index=s["index"].to_numpy())
        return pd.Series(s[name].to_numpy(), index=s["index"].to_numpy())

    @property
    def steps_done(self) -> pd.Series:
        return pd.to_numeric(self.column("steps_done"), errors="coerce")

    @property
    def pruned(self) -> pd.Series:
        return self.column("status").astype(str) == "pruned"

    @property
    def calibrated(self) -> pd.Series:
        return self.column("calibration").astype(str).str.lower().isin(("true", "1", "1.0"))


# --- reading ------------------------------------------------------------------------------------


def read_search(view: SweepView | LargeSweepView) -> SearchView | None:
    """The search of a sweep's report view, or None when the sweep has none (no ``search:`` in
    sweep.yaml, no events.csv, no calibration.csv)."""
    if isinstance(view, SweepView):
        path, spec = view.path, view.spec
        configs = [m.run.config for m in sorted(view.members, key=lambda m: m.index)]
    else:
        path, spec = view.path, view.members.sweep.spec
        configs = [m.config for m in view.members.sweep.members]
    block: dict[str, Any] = spec["search"] if isinstance(spec.get("search"), dict) else {}
    has_events = (path / "events.csv").is_file()
    has_cal = (path / "calibration.csv").is_file()
    if not (block or has_events or has_cal):
        return None
    problems: list[str] = []
    from ..search import events_frame

    events = events_frame([])
    if has_events:
        try:
            events = read_events((path / "events.csv").read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"events.csv cannot be read ({exc})")
    else:
        problems.append("no events.csv: the search has made no decision yet")
    calibration = None
    if has_cal:
        try:
            calibration = pd.read_csv(path / "calibration.csv")
            calibration = calibration[["step", "spearman"]].astype({"step": np.int64})
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"calibration.csv cannot be read ({exc})")
            calibration = None
    try:
        summary = pd.read_csv(path / "summary.csv")
    except (OSError, ValueError) as exc:
        problems.append(f"summary.csv cannot be read ({exc})")
        summary = pd.DataFrame({"index": range(len(configs)), "status": "pending"})
    if "steps_done" not in summary:
        problems.append("summary.csv has no steps_done column: network-steps are not counted")
    kind = str(block.get("kind") or _kind_of(events))
    metric = str(block.get("metric", "data_loss"))
    mode = str(block.get("mode", "max" if metric.endswith("acc") else "min"))
    params = (spec.get("random") or {}).get("params") or {}
    log_keys = {k for k, d in params.items() if isinstance(d, dict) and "loguniform" in d}
    steps = [c.train.steps for c in configs if c is not None]
    return SearchView(path, kind, metric, mode, int(block.get("eta", 3)),
                      int(block.get("interval", 0)), int(max(steps, default=0)), events,
                      summary, calibration, log_keys, configs, problems)  # fmt: skip


def _kind_of(events: pd.DataFrame) -> str:
    if events["action"].isin(("exploited", "perturbed")).any():
        return "pbt"
    return "hyperband" if events["bracket"].notna().any() else "halving"


# --- tables -------------------------------------------------------------------------------------

RUNG_COLUMNS = ["bracket", "rung", "step", "alive", "promoted", "pruned", "cutoff"]


def rung_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (bracket, rung) from events.csv's promoted and pruned rows: its step, the
    members alive at it, how many were promoted and pruned, and the cutoff (the value of the last
    member kept; NaN when none was). ``bracket`` is -1 for halving."""
    ev = events[events["action"].isin(("promoted", "pruned"))]
    if ev.empty:
        return pd.DataFrame({c: pd.Series([], dtype=np.int64) for c in RUNG_COLUMNS})
    t = pd.DataFrame({
        "bracket": ev["bracket"].fillna(-1).astype(np.int64).to_numpy(),
        "rung": ev["round"].to_numpy(np.int64),
        "step": ev["step"].to_numpy(np.int64),
        "promoted": (ev["action"] == "promoted").to_numpy(np.int64),
        "pruned": (ev["action"] == "pruned").to_numpy(np.int64),
        "cutoff": ev["cutoff"].to_numpy(np.float64),
    })  # fmt: skip
    out = t.groupby(["bracket", "rung", "step"], sort=True).agg(
        alive=("promoted", "size"),
        promoted=("promoted", "sum"),
        pruned=("pruned", "sum"),
        cutoff=("cutoff", "first"),
    )
    return out.reset_index()[RUNG_COLUMNS]


def network_steps(sv: SearchView) -> tuple[int, int]:
    """(spent, full): the sum of summary.csv's steps_done (a member without one counts 0), and
    members x train.steps, what the sweep costs without the search."""
    done = sv.steps_done.fillna(0)
    return int(done.sum()), len(sv.summary) * sv.train_steps


def round_steps(sv: SearchView) -> list[int]:
    """PBT's decision steps: every multiple of interval below train.steps."""
    if sv.interval and sv.train_steps:
        return list(range(sv.interval, sv.train_steps, sv.interval))
    return sorted(set(sv.events["step"].tolist()))


def rung_steps(sv: SearchView, bracket: int | None = None) -> list[int]:
    rt = rung_table(sv.events)
    if bracket is not None:
        rt = rt[rt["bracket"] == bracket]
    return sorted(set(rt["step"].tolist()))


# --- text ---------------------------------------------------------------------------------------


def _pct(r: float) -> str:
    return f"{r:.1%}" if 0 < r < 0.01 else f"{r:.0%}"


def _steps(steps: list[int]) -> str:
    words = [str(s) for s in steps]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def overview(sv: SearchView) -> list[str]:
    """The search in words: what it ranked, its rungs or rounds, what it spent."""
    better = "lower" if sv.mode == "min" else "higher"
    head = f"**{KIND_NAMES.get(sv.kind, sv.kind)}** ranked the members by `{sv.metric}` ({better} "
    head += "is better)"
    n = len(sv.summary)
    if sv.kind == "pbt":
        rounds = round_steps(sv)
        copies = int((sv.events["action"] == "exploited").sum())
        head += (f": {copies} copies in {len(rounds)} rounds"
                 + (f" (at steps {_steps(rounds)})" if rounds else "") + ".")  # fmt: skip
    else:
        steps = rung_steps(sv)
        pruned = int(sv.pruned.sum())
        head += f", keeping the best 1/{sv.eta} at each rung"
        head += f" (steps {_steps(steps)})" if steps else ""
        head += f": **{pruned} of {n}** members were pruned"
        n_cal = int(sv.calibrated.sum())
        if n_cal:
            head += f"; {n_cal} calibration members trained in full and were never pruned"
        head += "."
    spent, full = network_steps(sv)
    if full:
        cost = (f"**Network-steps: {spent:,} of the full sweep's {full:,} ({_pct(spent / full)})**"
                f" ({n:,} members × {sv.train_steps:,} steps; one network-step is one member's "
                "update).")  # fmt: skip
        return [head, cost]
    return [head]


def rung_doc_table(sv: SearchView) -> Table | None:
    rt = rung_table(sv.events)
    if rt.empty:
        return None
    hyper = bool((rt["bracket"] >= 0).any())
    cols = (["bracket"] if hyper else []) + ["rung", "step", "alive", "promoted", "pruned",
                                             "cutoff"]  # fmt: skip
    rows = []
    for r in rt.itertuples():
        row = [str(r.bracket)] if hyper else []
        row += [str(r.rung), str(r.step), str(r.alive), str(r.promoted), str(r.pruned),
                fmt(float(r.cutoff), 4)]  # fmt: skip
        rows.append(row)
    caption = (f"One row per rung{' of each bracket' if hyper else ''}: after `step` steps the "
               f"members alive are ranked by their last logged `{sv.metric}` before it; the best "
               f"ceil(alive/{sv.eta}) are promoted (a diverged member never is). Cutoff: the "
               "value of the last member kept. Calibration members are not in it.")  # fmt: skip
    return Table(cols, rows, caption, numeric=set(range(len(cols))))


def calibration_text(sv: SearchView) -> str:
    """What calibration.csv says about the first rung: can its early ranks be trusted?"""
    cal = sv.calibration
    if cal is None or cal.empty:
        return ""
    n = int(sv.calibrated.sum())
    who = f"the {n} calibration members" if n else "the calibration members"
    steps = rung_steps(sv)
    ok = cal[cal["spearman"] >= TRUST]
    if len(ok):
        reach = f"The correlation first reaches {TRUST:g} at step {int(ok['step'].iloc[0])}"
    else:
        reach = f"It never reaches {TRUST:g} within the {sv.train_steps} steps"
    if not steps:
        return f"Spearman correlation between each step's and the final ranks of {who}. {reach}."
    first = steps[0]
    rho = rung_correlation(cal, first)
    at = (f"At the first rung (after {first} steps) the ranks of {who} by `{sv.metric}` "
          f"correlate ρ = {fmt(rho, 3)} with their final ranks")  # fmt: skip
    if math.isfinite(rho) and rho >= TRUST:
        text = (
            f"{at}, at least {TRUST:g}: **the early ranks can be trusted** as a whole: the "
            "members pruned there mostly ended badly too. It says less about the top: which of "
            "the good members ends best can still change after a rung (on the spiral net of "
            "configs/sweeps/halving_auto.yaml ρ passes 0.8 within 6 steps, yet halving's pick "
            "is rarely the best)."
        )
    else:
        text = (
            f"{at}, below {TRUST:g}: **the early ranks cannot be trusted** here; members "
            "pruned at the first rung may have finished among the best."
        )
        auto = auto_min_steps(cal, sv.eta, sv.train_steps) if sv.train_steps else None
        if auto is not None:
            return text + f" {reach}; `min_steps: auto` would put the first rung at {auto}."
        return text + f" {reach}; a later first rung, or another metric, may rank better."
    later = [f"step {s}: {fmt(rung_correlation(cal, s), 3)}" for s in steps[1:]]
    return text + (" Later rungs: " + ", ".join(later) + "." if later else "")


# --- the sections -------------------------------------------------------------------------------


def search_sections(doc: Doc, view: SweepView | LargeSweepView) -> None:
    """Add the search's sections to a sweep's report (nothing for a sweep without a search)."""
    sv = read_search(view)
    if sv is None:
        return
    from ..plots import figure_png as png
    from .search_figs import calibration_figure, curves_figure, pbt_figure
    from .search_pbt import lineage_table, lineage_text, winner

    sec = doc.section(SECTIONS[0])
    for text in overview(sv):
        sec.para(text)
    table = rung_doc_table(sv)
    if table is not None:
        sec.table(table)
    if sv.kind != "pbt":
        fig = curves_figure(sv)
        if fig is not None:
            doc.section(SECTIONS[1]).image("search_curves.png", png(fig), (
                f"`{sv.metric}` per step. Pruned members in thin grey, each cut where it stopped "
                "(its steps_done); the members that trained in full in colour; dashed lines at "
                "the rungs."))  # fmt: skip
    if sv.calibration is not None and not sv.calibration.empty:
        s = doc.section(SECTIONS[2])
        s.para(calibration_text(sv))
        s.image("calibration.png", png(calibration_figure(sv)), (
            "Spearman rank correlation between each step's ranks and the final ranks of the "
            f"members trained in full (1: the same order; 0: unrelated). Above {TRUST:g} "
            "(dotted) a rung's ranking as a whole can be trusted; dashed lines at the "
            "rungs."))  # fmt: skip
    if sv.kind == "pbt":
        s = doc.section(SECTIONS[3])
        w = winner(sv)
        if w is None:
            s.note("No finished member has a final value to name a winner.")
        elif sv.mutable:
            s.para(lineage_text(sv, w))
            t = lineage_table(sv, w)
            if t is not None:
                s.table(t)
            s.image("pbt_schedule.png", png(pbt_figure(sv, w)), (
                f"Each mutable key over the steps: the population's spread per round (median, "
                f"middle 50 % and 80 % of the members) and the winner's schedule (member {w}, "
                "its donors' values before each copy) in colour, its copies marked."))  # fmt: skip
    for text in sv.problems:
        sec.note(text)
