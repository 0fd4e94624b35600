"""The Python API, for notebooks and scripts: the same library the command line calls.

    import xorlab
    cfg = xorlab.load_config("configs/xor_h3.yaml", optim__lr=0.3, model__hidden=[50])
    result = xorlab.train(cfg)                 # pure: nothing written
    result.metrics.plot(x="step", y="loss")    # one row per logged step, a pandas DataFrame
    folder = xorlab.train(cfg, runs_dir="runs").folder   # or a run folder, as `xorlab train`
    table = xorlab.sweep("configs/sweeps/seed_study.yaml", jobs=2)   # summary.csv's rows
    xorlab.runs("runs")                        # every run and sweep member, one row each

Keyword overrides name a dotted key with ``__`` for each dot (Python names cannot hold dots)
and take Python values; ``overrides=["optim.lr=0.3"]`` takes the command line's ``--set`` form.
Bad input raises ``xorlab.XorlabError`` (``ConfigError`` for a config), whose ``lines()`` are the
messages the command line prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .config import Config
    from .train import RunResult


def load_config(
    path: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    name: str | None = None,
    **keys: Any,
) -> Config:
    """A validated config: the file's (None: every default), then ``overrides`` (``K=YAML``
    strings, as ``--set``), then ``keys`` (``optim__lr=0.3`` sets ``optim.lr``)."""
    from . import config as cfgmod

    raw: dict[str, Any] = {} if path is None else cfgmod.load_raw(path)
    file = None if path is None else str(path)
    if path is not None and "name" not in raw:
        raw = {"name": cfgmod.name_from_path(path), **raw}
    raw = cfgmod.apply_overrides(raw, list(overrides))
    for key, value in keys.items():
        cfgmod.set_dotted(raw, key.replace("__", "."), value, source="keyword argument")
    if name is not None:
        raw["name"] = name
    return cfgmod.validate(raw, file=file)


@dataclass
class TrainedRun:
    """``xorlab.train(..., runs_dir=...)``: the result and the folder it was written to."""

    result: RunResult
    folder: Path

    @property
    def metrics(self) -> pd.DataFrame:
        return self.result.metrics


def train(
    config: Config | str | Path, *, runs_dir: str | Path | None = None, plots: bool | None = None
) -> Any:
    """Train one network. Without ``runs_dir``, a pure call returning the ``RunResult``
    (``.status``, ``.metrics`` as a DataFrame, ``.final``, ``.final_params``, ...); with it, the
    run folder is written as ``xorlab train`` writes it and a ``TrainedRun`` comes back.
    ``config`` may be a path. ``plots`` overrides ``plots.enabled`` (folders only)."""
    cfg = config if not isinstance(config, (str, Path)) else load_config(config)
    if plots is not None:
        cfg = cfg.model_copy(update={"plots": cfg.plots.model_copy(update={"enabled": plots})})
    if runs_dir is None:
        from .train import train as _train

        return _train(cfg)
    from .runner import run_config

    outcome = run_config(cfg, runs_dir)
    return TrainedRun(outcome.result, outcome.folder)


def sweep(
    path: str | Path,
    *,
    runs_dir: str | Path = "runs",
    jobs: int | None = None,
    overrides: Sequence[str] = (),
    executor: str = "local",
) -> pd.DataFrame:
    """Run a sweep file into a new sweep folder, as ``xorlab sweep``; returns summary.csv's table
    (``.attrs["folder"]`` is the sweep folder)."""
    import os

    from .searchrun import run
    from .sweep import load_sweep

    s = load_sweep(path, list(overrides))
    outcome = run(s, runs_dir, jobs=jobs or os.cpu_count() or 1, executor=executor)
    table = outcome.summary.copy()
    table.attrs["folder"] = outcome.folder
    return table


RUN_COLUMNS = ["path", "kind", "name", "sweep", "status", "steps_done", "final_loss",
               "final_train_acc", "final_test_acc", "diverged_at", "started"]  # fmt: skip


def runs(folder: str | Path = "runs") -> pd.DataFrame:
    """One row per run and per sweep member under ``folder`` (its direct children), newest first,
    as MLflow's ``search_runs``: ``path``, ``kind`` (run | member), ``name``, ``sweep``, status,
    final metrics, ``started``, then ``params.<dotted key>`` (a run's config; a member's varied
    keys). A folder that cannot be read still gets a row, with its status (``damaged``, ...)."""
    import pandas as pd

    from .listing import scan
    from .show import flatten
    from .yamlio import load_file

    rows: list[dict[str, Any]] = []
    for info in scan(folder):
        if info.kind == "run":
            row = {k: getattr(info, k, None) for k in RUN_COLUMNS if k not in ("path", "kind")}
            row.update(path=info.path, kind="run", sweep=None)
            try:
                cfg = load_file(Path(info.path) / "config.yaml")
                row.update({f"params.{k}": v for k, v in flatten(cfg).items()})
            except Exception:  # noqa: BLE001 - a damaged run keeps its row, without params
                pass
            rows.append(row)
            continue
        rows.extend(_member_rows(Path(info.path), info.name, info.started))
    table = pd.DataFrame(rows)
    for col in RUN_COLUMNS:
        if col not in table:
            table[col] = None
    return table[RUN_COLUMNS + [c for c in table.columns if c not in RUN_COLUMNS]]


def _member_rows(sweep_dir: Path, name: str | None, started: str | None) -> list[dict[str, Any]]:
    import pandas as pd

    try:
        summary = pd.read_csv(sweep_dir / "summary.csv")
    except Exception:  # noqa: BLE001 - no readable summary: the sweep's members are unknown
        return []
    fixed = {"index", "run_dir", "status", "final_loss", "final_data_loss", "final_train_acc",
             "final_test_acc", "diverged_at", "wall_s", "steps_done"}  # fmt: skip
    rows = []
    for rec in summary.to_dict("records"):
        run_dir = rec.get("run_dir")
        where = sweep_dir / run_dir if isinstance(run_dir, str) else sweep_dir
        row = {
            "path": str(where),
            "kind": "member",
            "name": name,
            "sweep": sweep_dir.name,
            "member": rec.get("index"),
            "started": started,
            **{k: rec.get(k) for k in fixed if k not in ("index", "run_dir")},
        }
        row.update({f"params.{k}": v for k, v in rec.items() if k not in fixed})
        rows.append(row)
    return rows
