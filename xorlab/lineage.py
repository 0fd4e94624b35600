"""What a search left a member with, as a run of its own (DESIGN.md section 3, export):

- a member pruned by a search is its config with ``train.steps`` = its ``steps_done``;
- a PBT member is its lineage replayed (``replay``): the member at the root of its copies trained
  from scratch, each copy's keys set where the copy happened (the network is the donor's state,
  which the chain follows), on to ``train.steps``. The result's metrics are that network's
  history (its donors' rows before each copy), and its final weights are the sweep's, bit for bit.

``search_events(sweep_dir)`` reads events.csv (None when the sweep had no search).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .config import Config

if TYPE_CHECKING:
    from .train import RunResult

COPIES = ("exploited", "perturbed")


def search_events(sweep_dir: Path) -> pd.DataFrame | None:
    """The sweep's events.csv as a table, or None when it has none (no search)."""
    from .search import read_events

    path = Path(sweep_dir) / "events.csv"
    if not path.is_file():
        return None
    return read_events(path.read_text(encoding="utf-8"))


def is_pbt(events: pd.DataFrame | None) -> bool:
    return events is not None and bool(events["action"].isin(COPIES).any())


def with_keys(cfg: Config, values: dict[str, Any]) -> Config:
    """``cfg`` with dotted keys set to values of the kind they hold (a PBT key's new value, a
    pruned member's steps): copied section by section, not validated again."""
    for dotted, value in values.items():
        cfg = _set(cfg, dotted.split("."), value)
    return cfg


def _set(model: Any, path: list[str], value: Any) -> Any:
    head, *rest = path
    new = _set(getattr(model, head), rest, value) if rest else value
    return model.model_copy(update={head: new})


def final_config(cfg: Config, events: pd.DataFrame, member: int) -> Config:
    """A PBT member's config with its mutable keys' final values (its last perturbation's)."""
    moves = events[(events["member"] == member) & (events["action"] == "perturbed")]
    last = moves.groupby("key", sort=False)["new"].last()
    return with_keys(cfg, {str(k): float(v) for k, v in last.items()}) if len(last) else cfg


def pruned_config(cfg: Config, steps_done: int) -> Config:
    """A member a search stopped at ``steps_done``: the run that trains exactly that far."""
    return with_keys(cfg, {"train.steps": int(steps_done)})


def replay(
    config_of: Callable[[int], Config], events: pd.DataFrame, member: int
) -> tuple[RunResult, pd.DataFrame]:
    """The PBT member's final network trained again from its lineage (``search.lineage``):
    (its RunResult, the lineage rows). ``config_of(i)``: member i's config as the sweep gave it."""
    from .search import lineage
    from .stack import results, start
    from .stepping import advance

    rows = lineage(events, member)
    copies = rows[rows["action"] == "exploited"]
    root = int(copies["parent"].iloc[0]) if len(copies) else member
    net = start([config_of(root)])[0]
    for r in copies.itertuples():
        advance([net], int(r.step))
        moves = rows[(rows["step"] == r.step) & (rows["member"] == r.member)
                     & (rows["action"] == "perturbed")]  # fmt: skip
        new = {str(k): float(v) for k, v in zip(moves["key"], moves["new"])}
        cfg = with_keys(config_of(int(r.member)), new)
        net.copy_from(copy.deepcopy(net), cfg)  # as the sweep's copy: the donor's state, new keys
    advance([net], net.config.train.steps)
    return results([net])[0], rows
