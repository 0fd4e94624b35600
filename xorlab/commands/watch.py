"""`xorlab watch SWEEP_DIR [--once]`: a live view of a running or finished sweep.

One renderable, rebuilt from a bounded summary every ``interval`` seconds and redrawn in place
(rich's Live): counts by status, elapsed time and ETA, network-steps done of planned, the
search's rung or round with its last decisions, and the best members with their hyperparameters
(and, for PBT, their parent). Never a row per member. It reads progress.json (see
``xorlab.progress``), else summary.csv (a finished sweep, or one from before progress.json), and
events.csv when a search wrote one; never the metrics. No numpy, no pandas: a 10,000-member
summary.csv is read with the csv module.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..errors import XorlabError

RUNG_ROWS = 8  # decision steps shown (the latest)
STALE_S = 60.0  # a progress.json not rewritten for this long: the driver is gone (a crash, kill)
UNDONE = ("pending", "running", "interrupted")  # a sweep with these has more to do (resume)
STAMP = re.compile(r"^\d{8}-\d{6}-(.+)-[0-9a-f]{6}$")


@dataclass
class Stage:
    """One decision step of events.csv, counted."""

    step: int
    round: int
    bracket: int | None
    actions: dict[str, int] = field(default_factory=dict)
    cutoff: float | None = None


@dataclass
class View:
    name: str
    source: str  # progress.json | summary.csv
    doc: dict[str, Any]  # progress.json's content (built from summary.csv when there is none)
    elapsed_s: float | None
    eta_s: float | None
    state: str  # running | finished | unfinished (summary.csv) | stopped (progress.json stale,
    # or the driver ended with members not finished: a Ctrl-C)
    quiet_s: float | None  # stopped and stale: seconds since progress.json's last update
    stages: list[Stage]  # from events.csv, oldest first (at most RUNG_ROWS)
    n_stages: int  # all decision steps in events.csv
    search: str | None  # halving | hyperband | pbt (from progress.json or events.csv)


# --- reading ------------------------------------------------------------------------------------


def _parse_time(text: Any) -> float | None:
    try:
        return _dt.datetime.fromisoformat(str(text)).timestamp()
    except (TypeError, ValueError):
        return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise XorlabError(f"cannot read it ({getattr(exc, 'strerror', None) or exc})",
                          file=str(path)) from None  # fmt: skip


def _planned_steps(folder: Path) -> dict[str, int] | int | None:
    """Each member's train.steps from sweep.yaml's head (its base and variant configs; the member
    list after them is not parsed): a number, or by variant name."""
    text = _read_text(folder / "sweep.yaml")
    if text is None:
        return None
    head = text.split("\nmembers:", 1)[0]
    from .. import yamlio

    try:
        doc = yamlio.loads(head, file=str(folder / "sweep.yaml"))
    except XorlabError:
        return None

    def steps(cfg: Any) -> int:
        train = cfg.get("train") if isinstance(cfg, dict) else None
        value = train.get("steps") if isinstance(train, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 1000

    if not isinstance(doc, dict):
        return None
    variants = doc.get("variant_configs") or {}
    if isinstance(variants, dict) and variants:
        by_name = {str(k): steps(v) for k, v in variants.items()}
        by_name[""] = steps(doc.get("base_config"))
        return by_name
    return steps(doc.get("base_config"))


def read_stages(folder: Path) -> tuple[list[Stage], int, str | None]:
    """events.csv counted per decision step (and bracket): the latest RUNG_ROWS, how many there
    are, and the search kind it shows (None without an events.csv)."""
    text = _read_text(folder / "events.csv")
    if text is None:
        return [], 0, None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None) or []
    need = ("step", "round", "bracket", "action", "cutoff")
    if any(c not in header for c in need):
        raise XorlabError("not an events.csv (no step, round, bracket, action, cutoff columns)",
                          file=str(folder / "events.csv"))  # fmt: skip
    pos = {c: header.index(c) for c in need}
    stages: dict[tuple[int, int], Stage] = {}
    kinds: set[str] = set()
    for cells in reader:
        if len(cells) != len(header):
            continue
        try:
            step, rnd = int(cells[pos["step"]]), int(cells[pos["round"]])
            bracket = int(cells[pos["bracket"]]) if cells[pos["bracket"]] else None
        except ValueError:
            continue
        action = cells[pos["action"]]
        s = stages.setdefault((step, -1 if bracket is None else bracket), Stage(step, rnd, bracket))
        s.actions[action] = s.actions.get(action, 0) + 1
        if cells[pos["cutoff"]]:
            try:
                s.cutoff = float(cells[pos["cutoff"]])
            except ValueError:
                pass
        kinds.add("pbt" if action in ("exploited", "perturbed") else
                  "hyperband" if bracket is not None else "halving")  # fmt: skip
    ordered = [stages[k] for k in sorted(stages)]
    kind = "pbt" if "pbt" in kinds else "hyperband" if "hyperband" in kinds else (
        "halving" if kinds else None)  # fmt: skip
    return ordered[-RUNG_ROWS:], len(ordered), kind


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).astimezone().isoformat("T", "seconds")


def load_view(folder: Path, now: float | None = None) -> View:
    """What one frame shows, from progress.json (else summary.csv) and events.csv."""
    from ..progress import FILE, progress_doc, summary_rows

    now = time.time() if now is None else now
    if not folder.is_dir():
        raise XorlabError("no such sweep folder", file=str(folder))
    m = STAMP.match(folder.name)
    name = m.group(1) if m else folder.name
    doc: dict[str, Any] | None = None
    text = _read_text(folder / FILE)
    if text is not None:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("counts"), dict):
            raise XorlabError("progress.json is damaged (not a progress document)",
                              file=str(folder / FILE))  # fmt: skip
    source = FILE
    if doc is None:
        source = "summary.csv"
        summary = _read_text(folder / "summary.csv")
        if summary is None:
            what = "no summary.csv yet" if (folder / "sweep.yaml").exists() else "no sweep.yaml"
            raise XorlabError(f"not a sweep folder, or one not started ({what}, no progress.json)",
                              file=str(folder))  # fmt: skip
        try:
            rows = summary_rows(summary, _planned_steps(folder))
        except (ValueError, KeyError) as exc:
            raise XorlabError(str(exc), file=str(folder / "summary.csv")) from None
        yaml_path = folder / "sweep.yaml"
        start = yaml_path.stat().st_mtime if yaml_path.exists() else None
        end = (folder / "summary.csv").stat().st_mtime
        unfinished = any(r["status"] in ("pending", "running") for r in rows)
        doc = progress_doc(rows, started_at=_iso(start or end), updated_at=_iso(end),
                           finished=not unfinished)  # fmt: skip
    stages, n_stages, kind = read_stages(folder)
    stage = doc.get("stage")
    search = stage.get("kind") if isinstance(stage, dict) and stage.get("kind") else kind
    started, updated = _parse_time(doc.get("started_at")), _parse_time(doc.get("updated_at"))
    finished = bool(doc.get("finished"))
    quiet = None if updated is None else now - updated
    counts = doc.get("counts")
    if finished and isinstance(counts, dict) and any(counts.get(s) for s in UNDONE):
        state, quiet = "stopped", None  # the driver ended before every member finished (Ctrl-C)
    elif finished:
        state = "finished"
    elif source != FILE:
        state = "unfinished"
    elif quiet is not None and quiet > STALE_S:
        state = "stopped"  # the driver writes at least once a second while it runs
    else:
        state = "running"
    end_t = now if state == "running" else updated
    elapsed = None if started is None or end_t is None else max(0.0, end_t - started)
    steps = doc.get("network_steps") or {}
    done, planned = steps.get("done") or 0, steps.get("planned") or 0
    at_start = steps.get("at_start") or 0  # done before this driver began: not its pace
    eta = None
    if state == "running" and elapsed is not None and at_start < done < planned:
        eta = elapsed * (planned - done) / (done - at_start)
    return View(name, source, doc, elapsed, eta, state, quiet, stages, n_stages, search)


# --- drawing ------------------------------------------------------------------------------------

STYLE = {"completed": "green", "running": "cyan", "pending": "dim", "diverged": "red",
         "stopped_early": "blue", "pruned": "magenta", "interrupted": "yellow",
         "failed": "bold red"}  # fmt: skip


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def render(view: View) -> RenderableType:
    """The frame: a few lines and two small tables, whatever the sweep's size."""
    from rich.progress_bar import ProgressBar

    doc = view.doc
    n = int(doc.get("members") or 0)
    head = Text()
    head.append(f"sweep {view.name}", style="bold")
    state_style = {"running": "cyan", "finished": "green"}.get(view.state, "yellow")
    head.append(f"  {view.state}", style=state_style)
    head.append(f"  elapsed {_duration(view.elapsed_s)}")
    if view.state == "running":
        head.append(f"  ETA {_duration(view.eta_s)}")
    if view.state == "stopped":
        why = "ended unfinished" if view.quiet_s is None else (
            f"no update for {_duration(view.quiet_s)}")  # fmt: skip
        head.append(f"  ({why})", style="yellow")
    if view.source != "progress.json":
        head.append(f"  (from {view.source})", style="dim")
    counts = Text(f"{n} member{'s' * (n != 1)}: ")
    for i, (status, c) in enumerate((doc.get("counts") or {}).items()):
        counts.append(", " if i else "")
        counts.append(f"{c} {status}", style=STYLE.get(str(status), ""))
    steps = doc.get("network_steps") or {}
    done, planned = int(steps.get("done") or 0), int(steps.get("planned") or 0)
    share = f" ({100 * done / planned:.1f}%)" if planned else ""
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=max(planned, 1), completed=min(done, max(planned, 1)), width=40),
                Text(f"{done:,} of {planned:,} network-steps{share}"))  # fmt: skip
    parts: list[RenderableType] = [head, counts, bar]
    stage_line = _stage_line(view)
    if stage_line is not None:
        parts.append(stage_line)
    if view.stages:
        parts.append(_stages_table(view))
    parts.append(_best_table(doc))
    return Group(*parts)


def _stage_line(view: View) -> Text | None:
    stage = view.doc.get("stage")
    if not isinstance(stage, dict):
        if not view.stages:
            return None
        last = view.stages[-1]
        stage = {"kind": view.search, "step": last.step, "round": last.round,
                 "bracket": last.bracket}  # fmt: skip
    from ..progress import stage_text

    return Text(stage_text({**stage, "kind": stage.get("kind") or view.search or "search"}))


def _stages_table(view: View) -> Table:
    pbt = view.search == "pbt"
    title = f"{'rounds' if pbt else 'rungs'} (events.csv"
    title += f", the last {len(view.stages)} of {view.n_stages})" if view.n_stages > len(
        view.stages) else ")"  # fmt: skip
    t = Table(title=title, title_justify="left")
    cols = ["step", "round"] + (["bracket"] if any(s.bracket is not None for s in view.stages)
                                else [])  # fmt: skip
    cols += ["exploited", "perturbed"] if pbt else ["promoted", "pruned", "cutoff"]
    for c in cols:
        t.add_column(c, justify="right")
    for s in view.stages:
        cells = [str(s.step), str(s.round)]
        if "bracket" in cols:
            cells.append("-" if s.bracket is None else str(s.bracket))
        if pbt:
            cells += [str(s.actions.get("exploited", 0)), str(s.actions.get("perturbed", 0))]
        else:
            cells += [str(s.actions.get("promoted", 0)), str(s.actions.get("pruned", 0)),
                      _num(s.cutoff)]  # fmt: skip
        t.add_row(*cells)
    return t


def _best_table(doc: dict[str, Any]) -> Table | Text:
    best = doc.get("best") or []
    if not best:
        return Text("no member finished yet", style="dim")
    ranked = list(doc.get("ranked_by") or [])
    names = {"final_test_acc": "test acc", "final_data_loss": "data loss", "final_loss": "loss"}
    t = Table(title=f"best {len(best)} by {', then '.join(names.get(k, k) for k in ranked)}",
              title_justify="left")  # fmt: skip
    with_label = any(b.get("label") for b in best)
    with_parent = any(b.get("parent") is not None for b in best)
    cols = ["#", "index"] + (["member"] if with_label else []) + ["status"]
    cols += [names.get(k, k) for k in ranked] + ["train acc", "steps", "hyperparameters"]
    cols += ["parent"] if with_parent else []
    for c in cols:
        t.add_column(c, justify="left" if c in ("member", "status", "hyperparameters") else "right",
                     overflow="fold")  # fmt: skip
    for i, b in enumerate(best, 1):
        cells = [str(i), str(b.get("index"))]
        if with_label:
            cells.append(str(b.get("label") or ""))
        cells.append(str(b.get("status")))
        cells += [_num(b.get(k)) for k in ranked]
        cells += [_num(b.get("final_train_acc")), _num(b.get("steps_done"))]
        params = b.get("params") or {}
        cells.append(", ".join(f"{k}={_param(v)}" for k, v in params.items()) or "-")
        if with_parent:
            cells.append(_num(b.get("parent")))
        t.add_row(*(Text(c) for c in cells))
    return t


# --- the command --------------------------------------------------------------------------------


def watch_command(sweep_dir: Path, once: bool, interval: float, console: Console) -> None:
    """Print one frame (``once``, or a sweep already finished), else redraw one in place every
    ``interval`` seconds until the sweep finishes or Ctrl-C."""
    view = load_view(sweep_dir)  # bad input fails here, before anything is drawn
    if once or view.state == "finished":
        console.print(render(view))
        return
    from rich.live import Live

    try:
        with Live(render(view), console=console, auto_refresh=False, transient=False) as live:
            while view.state in ("running", "unfinished"):
                time.sleep(interval)
                view = load_view(sweep_dir)
                live.update(render(view), refresh=True)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch ends: the last frame stays on screen
