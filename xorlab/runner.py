"""Run one config into one folder: create it, train, write the results, draw the plots.

The glue between the pure trainer and the disk; the CLI's ``train`` and the sweep driver use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import note_folder
from .rundir import RunFolder, now_iso
from .train import OnStep, RunResult, train


@dataclass
class RunOutcome:
    folder: Path
    result: RunResult
    wall_s: float


def run_into(
    folder: RunFolder,
    cfg: Config,
    *,
    on_step: OnStep | None = None,
    argv: list[str] | None = None,
) -> RunOutcome:
    """Train ``cfg`` and write everything into ``folder``; plots if the config enables them."""
    note_folder(folder.path)  # an internal error's traceback goes here
    started = now_iso()
    folder.write_start(cfg.to_yaml(), started, argv)
    t0 = time.perf_counter()
    result = train(cfg, on_step=on_step)
    wall = time.perf_counter() - t0
    folder.write_result(result, started_at=started, wall_s=wall, argv=argv)
    if cfg.plots.enabled:
        from .plots import render_run  # matplotlib only when plotting

        render_run(result, folder.plots_dir, gif=cfg.plots.gif_frames > 1)
    return RunOutcome(folder.path, result, wall)


def run_config(
    cfg: Config,
    runs_dir: str | Path,
    *,
    on_step: OnStep | None = None,
    argv: list[str] | None = None,
) -> RunOutcome:
    """A new timestamped folder under ``runs_dir`` holding one run of ``cfg``."""
    return run_into(RunFolder.create(runs_dir, cfg.name), cfg, on_step=on_step, argv=argv)
