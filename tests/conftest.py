"""Shared fixtures: a tiny config, a runs folder under tmp_path, a pinned terminal width; and
helpers that change a sweep's store the way a crash, a bug or a bad disk would."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pandas as pd

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
