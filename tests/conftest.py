"""Shared fixtures: a tiny config, a runs folder under tmp_path, a pinned terminal width;
helpers that change a sweep's store the way a crash, a bug or a bad disk would; and search sweep
folders for the report's tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from xorlab import search as S
from xorlab import yamlio
from xorlab.members import read_metrics
from xorlab.sweep import build_sweep
from xorlab.sweeprun import run_sweep

os.environ["COLUMNS"] = "120"  # rich and typer render the same on every terminal
os.environ.setdefault("NO_COLOR", "1")

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

TINY = """\
name: tiny
seed: 0
data: {kind: xor, n: 40}
model: {hidden: [4], activation: sigmoid, loss: mse}
optim: {lr: 0.5}
train: {steps: 30}
plots: {enabled: false}
"""

TINY_RAW = {"data": {"n": 40}, "model": {"hidden": [3]}, "train": {"steps": 20},
            "plots": {"enabled": False}}  # fmt: skip


def tiny(**sections: Any) -> dict[str, Any]:
    """A small config as a mapping (40 points, 3 hidden, 20 steps, no plots); each keyword
    updates a section (a mapping) or sets a top-level key."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY_RAW.items()}
    for k, v in sections.items():
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) else v
    return raw


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --- a sweep's store, damaged on purpose ----------------------------------------------------------


def _record_of(folder: Path, index: int) -> tuple[Path, dict[str, Any]]:
    for p in sorted((folder / "records").glob("*.json")):
        doc = json.loads(p.read_text())
        if str(index) in doc["members"]:
            return p, doc
    raise KeyError(index)


def edit_entry(folder: Path, index: int, **changes: Any) -> None:
    """Change fields of a member's record entry."""
    path, doc = _record_of(folder, index)
    doc["members"][str(index)].update(changes)
    path.write_text(json.dumps(doc))


def drop_entry(folder: Path, index: int) -> None:
    """As if the member never ran: no record entry (its rows stay, as after a crash)."""
    path, doc = _record_of(folder, index)
    del doc["members"][str(index)]
    path.write_text(json.dumps(doc))


def set_metrics(folder: Path, index: int, metrics: pd.DataFrame) -> None:
    """Replace a member's rows in its part with ``metrics`` (a run's columns)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, doc = _record_of(folder, index)
    path = folder / "metrics" / f"{doc['part']}.parquet"
    df = pq.read_table(path).to_pandas()
    new = metrics.assign(member=index)[["member", *metrics.columns]]
    df = pd.concat([df[df["member"] != index], new], ignore_index=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def damage_metrics(folder: Path, index: int) -> None:
    """Move the member to a part of its own whose Parquet file is garbage."""
    path, doc = _record_of(folder, index)
    entry = doc["members"].pop(str(index))
    path.write_text(json.dumps(doc))
    own = {**doc, "part": "damaged", "members": {str(index): entry}}
    (folder / "records" / "damaged.json").write_text(json.dumps(own))
    (folder / "metrics" / "damaged.parquet").write_bytes(b'step,loss\n1,2,3,4\n"open\n\x00\xff')


# --- search sweep folders for the report's tests ------------------------------------------------
# Made without the search executor: a plain sweep is trained in full, then the pure policies of
# xorlab.search decide on its stored metrics and their decisions are written as the executor
# writes them (events.csv, calibration.csv, summary.csv's steps_done / bracket / calibration /
# parent, status `pruned` in summary.csv and the records, the `search:` block in sweep.yaml).
# The metrics of a pruned member stay full-length here; the report cuts them at its rung.

SEARCH_BASE = {"data": {"kind": "xor", "n": 40}, "model": {"hidden": [3]},
        "train": {"steps": 60}, "plots": {"enabled": False}}  # fmt: skip


def search_sweep_run(root: Path, spec: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return run_sweep(build_sweep(spec, file="s.yaml", base_dir=root), root / "runs").folder


def _add_search(folder: Path, search: dict[str, Any]) -> None:
    """sweep.yaml's ``sweep:`` mapping gains the search block, as a sweep file with one has."""
    path = folder / "sweep.yaml"
    text = path.read_text()
    block = "".join(f"    {line}\n" for line in yamlio.dumps(search).splitlines())
    path.write_text(text.replace("\nsweep:\n", "\nsweep:\n  search:\n" + block, 1))


def _rewrite(folder: Path, columns: dict[str, dict[int, Any]], status: dict[int, str]) -> None:
    """summary.csv's new columns (steps_done after status, the others last) and statuses, and
    the records' entries to match."""
    path = folder / "summary.csv"
    df = pd.read_csv(path)
    for i, s in status.items():
        df.loc[df["index"] == i, "status"] = s
    at = list(df.columns).index("status") + 1
    for name, values in columns.items():
        col = df["index"].map(values)
        if name == "steps_done":
            df.insert(at, name, col.astype("Int64"))
        else:
            df[name] = col.astype("Int64") if name in ("bracket", "parent") else col
    df.to_csv(path, index=False)
    done = columns["steps_done"]
    for p in sorted((folder / "records").glob("*.json")):
        doc = json.loads(p.read_text())
        for key, e in doc["members"].items():
            e["steps_done"] = int(done[int(key)])
            e["status"] = status.get(int(key), e["status"])
        p.write_text(json.dumps(doc))


def rung_fixture(
    root: Path,
    *,
    kind: str = "halving",
    n: int = 27,
    steps: int = 60,
    min_steps: int = 6,
    calibrate: int = 0,
    eta: int = 3,
    config: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> Path:
    """A halving or hyperband sweep of ``n`` random draws (of lr, unless ``params``), decided by
    replay."""
    params = params or {"optim.lr": {"loguniform": [0.05, 20.0]}}
    spec = {"name": kind, "config": {**SEARCH_BASE, **(config or {}), "train": {"steps": steps}},
            "random": {"n": n, "seed": 0, "params": params}}  # fmt: skip
    folder = search_sweep_run(root, spec)
    search = {"kind": kind, "min_steps": min_steps, "eta": eta, "calibrate": calibrate}
    plan = S.make_plan(S.SearchSpec.model_validate(search), n, steps)
    metrics = read_metrics(folder, columns=["step", plan.metric])
    summary = pd.read_csv(folder / "summary.csv")
    diverged = {int(i): int(s) for i, s in zip(summary["index"], summary["diverged_at"])
                if pd.notna(s)}  # fmt: skip
    events = S.replay(plan, metrics, diverged_at=diverged)
    (folder / "events.csv").write_text(S.events_text(events))
    if plan.calibration:
        curves = S.curves_from_metrics(metrics[metrics["member"].isin(plan.calibration)],
                                       plan.metric)  # fmt: skip
        S.calibration_table(curves, mode=plan.mode).to_csv(folder / "calibration.csv", index=False)
    done = S.steps_done(plan, events)
    done.update({i: min(done[i], s + 1) for i, s in diverged.items()})
    pruned = events.loc[events["action"] == "pruned", "member"].astype(int).tolist()
    columns: dict[str, dict[int, Any]] = {"steps_done": done}
    if kind == "hyperband":
        columns["bracket"] = {m: b.index for b in plan.brackets for m in b.members}
    if calibrate:
        columns["calibration"] = {i: i in plan.calibration for i in range(n)}
    _rewrite(folder, columns, dict.fromkeys(pruned, "pruned"))
    _add_search(folder, search)
    return folder


def pbt_fixture(
    root: Path,
    *,
    n: int = 8,
    steps: int = 40,
    interval: int = 10,
    config: dict[str, Any] | None = None,
) -> Path:
    """A PBT sweep of ``n`` members over lr and L2 strength: each round's decisions by
    pbt_events on the stored metrics and the values the earlier rounds left."""
    params = {"optim.lr": {"loguniform": [0.05, 20.0]},
              "regularization.strength": {"uniform": [0.0, 0.01]}}  # fmt: skip
    spec = {"name": "pbt", "config": {**SEARCH_BASE, **(config or {}), "train": {"steps": steps},
                                      "regularization": {"kind": "l2"}},
            "random": {"n": n, "seed": 0, "params": params}}  # fmt: skip
    folder = search_sweep_run(root, spec)
    search = {"kind": "pbt", "interval": interval, "seed": 3}
    spec_s = S.SearchSpec.model_validate(search)
    dists = S.mutable_distributions(spec_s, params)
    plan = S.make_plan(spec_s, n, steps, distributions=dists)
    metrics = read_metrics(folder, columns=["step", plan.metric])
    summary = pd.read_csv(folder / "summary.csv")
    values = {k: dict(zip(summary["index"].astype(int), summary[k].astype(float))) for k in dists}
    parent: dict[int, Any] = {}
    frames = []
    for r in plan.rounds:
        table = S.values_at(metrics, r, plan.metric)
        for k in dists:
            table[k] = table["member"].map(values[k])
        ev = S.decide(plan, r, table)
        for row in ev.itertuples():
            if row.action == "exploited":
                parent[int(row.member)] = int(row.parent)
            else:
                values[str(row.key)][int(row.member)] = float(row.new)
        frames.append(ev)
    events = S.events_frame(pd.concat(frames).to_dict("records"))
    (folder / "events.csv").write_text(S.events_text(events))
    df = pd.read_csv(folder / "summary.csv")
    for k in dists:  # a PBT member's mutable keys show their final values
        df[k] = df["index"].map(values[k])
    # the curves here do not follow the copies; let the member with the longest lineage win, as
    # a copy of the top so often does
    longest = max(range(n), key=lambda m: (len(S.lineage(events, m)), -m))
    best = df["final_data_loss"].min()
    df.loc[df["index"] == longest, ["final_loss", "final_data_loss"]] = best * 0.9
    df.to_csv(folder / "summary.csv", index=False)
    _rewrite(folder, {"steps_done": dict.fromkeys(range(n), steps), "parent": parent}, {})
    _add_search(folder, search)
    return folder
