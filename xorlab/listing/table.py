"""``xorlab runs``'s output: the rich table of rows (status, steps, final metrics, settings in
one line) and the rows as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text

from ..rundir import FINISHED
from ..show import format_value
from .info import SETTINGS, STAMP_RE, RunInfo, _parse_time

# --- output -------------------------------------------------------------------------------------


STATUS_STYLE = {
    "completed": "green",
    "diverged": "red",
    "stopped_early": "cyan",
    "pruned": "blue",
    "interrupted": "yellow",
    "failed": "bold red",
    "unfinished": "yellow",
    "damaged": "magenta",
    "partial": "yellow",
}


def runs_table(infos: Iterable[RunInfo], *, title: str | None = None) -> Table:
    """One row per run or sweep: folder, status (and what is damaged), steps, final metrics,
    settings. A 'started' column only when some folder name does not start with its time
    (sweep members)."""
    infos = list(infos)
    t = Table(title=title, title_justify="left")
    with_started = any(not STAMP_RE.match(i.folder) for i in infos)
    with_test = any(i.final_test_acc is not None for i in infos)
    if with_started:
        t.add_column("started", no_wrap=True)
    t.add_column("folder", overflow="fold")
    t.add_column("status")
    t.add_column("steps", justify="right", no_wrap=True)
    t.add_column("loss", justify="right", no_wrap=True)
    t.add_column("train", justify="right", no_wrap=True)
    if with_test:
        t.add_column("test", justify="right", no_wrap=True)
    t.add_column("settings")
    for i in infos:
        cells: list[Any] = [_short_time(i.started)] if with_started else []
        cells += [
            Text(i.folder) + (Text("\nsweep", style="dim") if i.kind == "sweep" else Text()),
            _status_cell(i),
            _steps_cell(i),
            _num(i.final_loss, 4),
            _acc(i.final_train_acc),
        ]
        if with_test:
            cells.append(_acc(i.final_test_acc))
        cells.append(settings_text(i))
        t.add_row(*cells)
    if any(i.kind == "sweep" and i.best_member for i in infos):
        t.caption = "a sweep's loss and accuracy are its best member's (lowest final loss)"
        t.caption_justify = "left"
    return t


MAX_LISTED = 6  # a varied numeric setting with more values shows its range and count


def settings_text(info: RunInfo) -> str:
    """``[3] sigmoid · mse · sgd lr 0.5 · l2 0.0001 · clip norm 1``; a varied setting shows its
    values in braces: ``lr {0.1, 1}``."""
    varied = info.varied or {}

    def val(attr: str) -> str:
        key = SETTINGS[attr]
        if key in varied:
            values = varied[key]
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(values) > MAX_LISTED and len(numbers) == len(values):  # a random draw
                return f"{_fmt(min(numbers))}–{_fmt(max(numbers))} ({len(values)} values)"
            return "{" + ", ".join(_fmt(v) for v in values) + "}"
        return _fmt(getattr(info, attr))

    if all(getattr(info, a) is None and SETTINGS[a] not in varied for a in SETTINGS):
        return "-"
    parts = [
        f"{val('hidden')} {val('activation')}",
        val("loss"),
        f"{val('optimizer')} lr {val('lr')}",
    ]
    if info.regularization == "none" and "regularization.kind" not in varied:
        parts.append("no penalty")
    else:
        parts.append(f"{val('regularization')} {val('reg_strength')}")
    if info.clip not in ("none", None) or "optim.clip.kind" in varied:
        parts.append(f"clip {val('clip')} {val('clip_max')}")
    return " · ".join(parts)


def to_json(infos: Iterable[RunInfo]) -> str:
    """A JSON list, one object per row (``RunInfo.to_dict``)."""
    return json.dumps([i.to_dict() for i in infos], indent=2) + "\n"


def _status_cell(i: RunInfo) -> Text:
    text = Text(i.status, style=STATUS_STYLE.get(i.status, ""))
    if i.kind == "run" and i.diverged_at is not None:
        text.append(f" at {i.diverged_at}")
    if i.kind == "sweep":
        done = sum(n for s, n in (i.counts or {}).items() if s in FINISHED)
        text.append(f" {done}/{i.n_members or 0}")
        rest = [f"{n} {s}" for s, n in (i.counts or {}).items()]
        if rest:
            text.append("\n" + ", ".join(rest), style="dim")
    if i.note:
        text.append("\n" + i.note, style="dim")
    for problem in i.problems:
        text.append("\n" + problem, style=STATUS_STYLE["damaged"])
    return text


def _steps_cell(i: RunInfo) -> str:
    if i.steps_done is None and i.steps_total is None:
        return "-"
    done = "?" if i.steps_done is None else str(i.steps_done)
    total = "?" if i.steps_total is None else str(i.steps_total)
    return total if i.kind == "sweep" else f"{done}/{total}"


def _short_time(iso: str | None) -> str:
    t = _parse_time(iso)
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M")


def _num(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _acc(v: float | None) -> str:
    """An accuracy with three decimals, always (1.000 beside 0.997, never 1)."""
    return "-" if v is None or v != v else f"{v:.3f}"


def _fmt(v: Any) -> str:
    """A setting's value as a config shows it (``show.format_value``); ``?`` when unknown."""
    return "?" if v is None else format_value(v)
