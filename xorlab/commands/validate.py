"""`xorlab validate`: check a config or sweep file without running anything.

Functions return exit codes or data and print only through the Console they are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import load_config

SWEEP_KEYS = {"base", "config", "variants", "grid", "zip", "random", "seeds"}


def validate_command(file: Path) -> str:
    from .. import yamlio

    raw = yamlio.load_file(file)
    if isinstance(raw, dict) and (SWEEP_KEYS | {"sweep", "members"}) & set(raw):
        from ..sweep import load_sweep, reject_folder_record  # a config's check needs neither

        reject_folder_record(raw, file)
    if isinstance(raw, dict) and SWEEP_KEYS & set(raw):
        sweep = load_sweep(file)
        search = f"; {search_text(sweep)}" if sweep.search is not None else ""
        return f"{file}: ok (sweep '{sweep.name}', {members_text(sweep)}{search})"
    cfg = load_config(file)
    n_params = sum(
        (a + 1 if cfg.model.bias else a) * b
        for a, b in zip([2, *cfg.model.hidden], [*cfg.model.hidden, 2])
    )
    return f"{file}: ok (config '{cfg.name}', {n_params} parameters, {cfg.train.steps} steps)"


def _count(n: int, noun: str) -> str:
    """``1 member``, ``2 members``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def members_text(sweep: Any) -> str:
    """``24 members``, and how many of them are identical to an earlier one."""
    text = _count(len(sweep.members), "member")
    if sweep.n_identical:
        verb = "is" if sweep.n_identical == 1 else "are"
        text += (f"; {sweep.n_identical} of them {verb} identical to an earlier member "
                 "(the random draws repeat)")  # fmt: skip
    return text


def search_text(sweep: Any) -> str:
    """The sweep's adaptive search in one line: its rungs and budget, or its PBT rounds."""
    from ..search import describe, mutable_distributions

    s = sweep.search
    params = (sweep.spec.get("random") or {}).get("params") if s.kind == "pbt" else None
    n_keys = len(mutable_distributions(s, params)) if s.kind == "pbt" else 0
    return describe(s, len(sweep.members), sweep.members[0].config.train.steps, n_keys)
