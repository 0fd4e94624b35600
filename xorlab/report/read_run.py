"""Reading one run folder (or a sweep member, through the store) for a report; every problem
becomes a note in the ``RunView``, never an exception (see ``read``'s docstring), with the run's
blow-ups and divergence cause, and its network for the figures that draw one."""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .. import yamlio
from ..config import Config, validate
from ..data import Dataset
from ..errors import XorlabError
from ..members import StoredMember, member_ref, open_sweep
from ..nn import NetSpec
from ..rundir import FINISHED, read_json
from ..show import flatten
from ..train import net_spec

SPIKE_RATIO = 10.0  # a loss above this multiple of its running minimum has blown up
IGNORED = ("name", "seed")  # config keys that never make two runs different settings
Params = dict[str, np.ndarray]


@dataclass
class RunView:
    path: Path
    label: str
    status: str  # completed | diverged | interrupted | failed | unfinished | pending | damaged
    config_raw: dict[str, Any] | None = None
    config: Config | None = None
    flat: dict[str, Any] = field(default_factory=dict)  # dotted config key -> value
    summary: dict[str, Any] | None = None
    metrics: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"step": []}))
    error: str | None = None  # the last line of error.txt
    problems: list[str] = field(default_factory=list)
    first_blowup: int | None = None  # step where the loss first blew up
    first_ratio: float | None = None  # loss / running minimum at that step
    max_ratio: float | None = None  # largest loss / running minimum before it
    max_step: int | None = None  # the step of that largest ratio
    diverge_cause: str | None = None  # diverged: "non-finite loss" (etc.) or "above"
    diverge_loss: float | None = None  # "above": the loss that crossed the threshold
    diverge_limit: float | None = None  # "above": train.diverge_above
    stored: StoredMember | None = None  # a sweep member: its weights and data are in the store
    # each curve's own blow-up: "loss" (the total), and "data_loss" where it differs from it
    blowups: dict[str, Blowup] = field(default_factory=dict)

    def final(self, key: str) -> float | None:
        block = (self.summary or {}).get("final")
        v = block.get(key) if isinstance(block, dict) else None
        return _float(v)

    @property
    def diverged_at(self) -> int | None:
        return _int((self.summary or {}).get("diverged_at"))

    @property
    def steps_done(self) -> int | None:
        done = _int((self.summary or {}).get("steps_done"))
        if done is None and self.status in ("unfinished", "interrupted") and len(self.metrics):
            return int(self.metrics["step"].max()) + 1
        return done

    @property
    def steps_total(self) -> int | None:
        return _int(self.flat.get("train.steps"))

    def column(self, col: str) -> np.ndarray:
        if col not in self.metrics or not len(self.metrics):
            return np.zeros(0)
        return pd.to_numeric(self.metrics[col], errors="coerce").to_numpy(dtype=float)


def _float(v: Any) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / f).exists() for f in ("config.yaml", "summary.json", "metrics.csv")
    )


def is_sweep_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "sweep.yaml").exists()
        or ((path / "summary.csv").exists() and (path / "members").is_dir())
    )


def _json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        obj = read_json(path)
    except json.JSONDecodeError as exc:
        problems.append(f"{path.name}: not valid JSON (line {exc.lineno})")
        return None
    except UnicodeDecodeError:
        problems.append(f"{path.name}: not UTF-8 text")
        return None
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: cannot read ({getattr(exc, 'strerror', None) or exc})")
        return None
    if not isinstance(obj, dict):
        problems.append(f"{path.name}: expected an object, got {type(obj).__name__}")
        return None
    return obj


def _metrics(path: Path, problems: list[str], *, required: bool) -> pd.DataFrame:
    empty = pd.DataFrame({"step": []})
    if not path.exists():
        if required:
            problems.append("metrics.csv is missing")
        return empty
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:  # pandas' ParserError and EmptyDataError too
        problems.append(f"metrics.csv cannot be read ({type(exc).__name__})")
        return empty
    if "step" not in df:
        problems.append("metrics.csv has no 'step' column")
        return empty
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    bad = int(df["step"].isna().sum())
    if bad:
        problems.append(f"metrics.csv: {bad} damaged row{'s' * (bad > 1)} left out")
    return df[df["step"].notna()].reset_index(drop=True)


def read_run(path: Path, label: str | None = None) -> RunView:
    """Everything a report shows about one run folder, whatever state it is in."""
    view = RunView(path=path, label=label or path.name, status="pending")
    if not path.is_dir():
        view.problems.append("not started (no folder)")
        return view
    problems = view.problems
    cfg_path = path / "config.yaml"
    if cfg_path.exists():
        try:
            raw = yamlio.load_file(cfg_path)
        except XorlabError as exc:
            raw = None
            problems.append(f"config.yaml cannot be read ({exc.message})")
        if isinstance(raw, dict):
            view.config_raw = raw
            view.flat = flatten(raw)
            try:
                view.config = validate(raw, file=str(cfg_path))
            except XorlabError:
                problems.append("config.yaml is not a valid config")
    else:
        problems.append("config.yaml is missing")
    view.summary = _json(path / "summary.json", problems)
    status = "unfinished" if view.summary is None else str(view.summary.get("status"))
    if view.summary is None and (path / "summary.json").exists():
        status = "damaged"  # there, but unreadable: not a run still going
    elif status not in (*FINISHED, "interrupted", "failed", "unfinished"):
        problems.append(f"summary.json: unknown status {status!r}")
        status = "damaged"
    view.status = status
    view.metrics = _metrics(path / "metrics.csv", problems, required=status in FINISHED)
    _finish(view)
    return view


def _finish(view: RunView) -> None:
    """The error line, blow-up and divergence cause, once status, summary and metrics are in."""
    status, path = view.status, view.path
    err = path / "error.txt"
    if err.exists():
        try:
            lines = err.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            lines = ["error.txt cannot be read"]
        view.error = lines[-1].strip() if lines else "(error.txt is empty)"
    elif status == "failed":
        msg = (view.summary or {}).get("error")
        view.error = str(msg) if msg else None
    steps, loss, data = view.column("step"), view.column("loss"), view.column("data_loss")
    b = blowup_either(steps, loss, data)
    view.first_blowup, view.first_ratio, view.max_ratio, view.max_step = b
    view.blowups = {"loss": blowup(steps, loss)}
    if data.size == loss.size and not np.array_equal(loss, data, equal_nan=True):
        view.blowups["data_loss"] = blowup(steps, data)
    if status == "diverged":
        view.diverge_cause, view.diverge_loss = divergence_cause(view)
        limit = view.flat.get("train.diverge_above")
        view.diverge_limit = _float(limit) if view.diverge_cause == "above" else None


def stored_run(member: StoredMember) -> RunView:
    """A sweep member, read through the store: the same view a run folder gives."""
    view = RunView(path=member.path, label=member.label, status=member.status, stored=member)
    raw = member.config.to_dict()
    view.config_raw, view.flat, view.config = raw, flatten(raw), member.config
    view.summary = member.summary
    if view.status == "pending":
        view.problems.append("not started")
    if view.status in FINISHED:
        try:
            view.metrics = member.metrics()
        except Exception as exc:  # noqa: BLE001 - a damaged part file, whatever pyarrow raises
            view.problems.append(f"metrics cannot be read ({type(exc).__name__})")
    _finish(view)
    return view


def read_member(path: Path) -> RunView | None:
    """``<sweep>/members/<label>``, read through the store (whether or not its folder exists);
    None when ``path`` is not a member's."""
    ref = member_ref(path)
    if ref is None:
        return None
    sweep_dir, label = ref
    members = open_sweep(sweep_dir)
    if label not in members.by_label:
        raise XorlabError(f"no member {label!r} in this sweep", file=str(sweep_dir))
    return stored_run(members.get(members.by_label[label]))


class Blowup(NamedTuple):
    first_step: int | None  # the first step whose loss is above SPIKE_RATIO x the lowest before
    first_ratio: float | None  # its ratio
    max_ratio: float | None  # the largest ratio (at least 1), blown up or not
    max_step: int | None  # where it came


def blowup(steps: np.ndarray, loss: np.ndarray) -> Blowup:
    """Where the loss first rose above SPIKE_RATIO x the lowest loss before it, and by how much;
    and the largest such ratio with its step. Non-finite losses are the trainer's divergence and
    are not counted here."""
    keep = np.isfinite(loss) & (loss > 0)
    steps, loss = steps[keep], loss[keep]
    if loss.size < 2:
        return Blowup(None, None, None, None)
    running_min = np.minimum.accumulate(loss)[:-1]  # (n-1,) lowest loss before each step
    ratio = loss[1:] / running_min  # (n-1,)
    hits = np.flatnonzero(ratio > SPIKE_RATIO)
    first, first_ratio = None, None
    if hits.size:
        first, first_ratio = int(steps[1:][hits[0]]), float(ratio[hits[0]])
    top = int(np.argmax(ratio))
    if ratio[top] <= 1.0:  # never rose: the ratio is 1, at no step in particular
        return Blowup(first, first_ratio, 1.0, None)
    return Blowup(first, first_ratio, float(ratio[top]), int(steps[1:][top]))


def blowup_either(steps: np.ndarray, loss: np.ndarray, data_loss: np.ndarray) -> Blowup:
    """``blowup`` of the total loss or of the data loss, whichever blew up first (a penalty's
    floor under the total loss cannot hide a spike of the data loss); the larger largest rise."""
    a = blowup(steps, loss)
    if data_loss.size != loss.size:  # no data_loss column
        return a
    b = blowup(steps, data_loss)
    first = (
        a
        if b.first_step is None or (a.first_step is not None and a.first_step <= b.first_step)
        else b
    )
    top = a if (b.max_ratio or 0.0) <= (a.max_ratio or 0.0) else b
    return Blowup(first.first_step, first.first_ratio, top.max_ratio, top.max_step)


DIVERGE_CAUSES = (
    "above",  # a finite loss above train.diverge_above
    "non-finite loss",
    "non-finite gradient",
    "non-finite weights",
    "non-finite after the last step",  # the trainer's check of the final loss and weights
    "unknown",  # no metrics row at diverged_at (metrics.csv missing or damaged)
)


def divergence_cause(view: RunView) -> tuple[str, float | None]:
    """Why a diverged run stopped (one of DIVERGE_CAUSES), from its metrics row at
    ``diverged_at``: ("above", the loss) when every value there is finite and the loss is above
    ``train.diverge_above``."""
    df, at = view.metrics, view.diverged_at
    row = df[df["step"] == at] if at is not None and "loss" in df else df.iloc[0:0]
    if not len(row):
        last = at is not None and at == view.steps_done == view.steps_total
        return ("non-finite after the last step" if last else "unknown"), None

    def finite(cols: list[str]) -> bool:
        vals = pd.to_numeric(row[cols].iloc[-1], errors="coerce").to_numpy(dtype=float)
        return bool(np.isfinite(vals).all())

    if not finite(["loss"]):
        return "non-finite loss", None
    grads = [c for c in df.columns if c == "grad_norm" or c.startswith("grad_norm_")]
    if grads and not finite(grads):
        return "non-finite gradient", None
    weights = [c for c in df.columns if c.startswith("weight_norm_")]
    if weights and not finite(weights):
        return "non-finite weights", None
    loss = float(pd.to_numeric(row["loss"].iloc[-1], errors="coerce"))
    limit = _float(view.flat.get("train.diverge_above"))
    if limit is not None and loss > limit:
        return "above", loss
    return "unknown", None


def load_network(view: RunView) -> tuple[Params, Dataset, NetSpec] | str:
    """The final parameters, the data and the net spec; or why they are not available."""
    if view.config is None:
        return "no valid config.yaml"
    if view.stored is not None:
        try:
            _, params = view.stored.params()
            return params, view.stored.data(), net_spec(view.config)
        except KeyError:
            return "no final weights"
        except Exception as exc:  # noqa: BLE001 - a damaged weights or data file
            return f"weights cannot be read ({type(exc).__name__})"
    arrays: list[dict[str, np.ndarray]] = []
    for name in ("final.npz", "data.npz"):
        p = view.path / name
        if not p.exists():
            return f"no {name}"
        try:
            with open(p, "rb") as f:  # closed on errors too (np.load alone may leak it)
                z = np.load(f, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile):
                    return f"{name} is not an .npz archive"
                arrays.append({k: z[k] for k in z.files})
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            return f"{name} cannot be read ({type(exc).__name__})"
    params, d = arrays
    spec = net_spec(view.config)
    missing = [
        k
        for k in (*spec.param_keys(), "X_train", "y_train", "X_test", "y_test")
        if k not in params and k not in d
    ]
    if missing:
        return "missing arrays: " + ", ".join(missing)
    for layer, (fan_in, fan_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:]), start=1):
        want = {f"W{layer}": (fan_in, fan_out), f"b{layer}": (fan_out,)}
        for k, shape in want.items():
            if k in params and params[k].shape != shape:
                return f"final.npz: {k} has shape {params[k].shape}, the config says {shape}"
    data = Dataset(d["X_train"], d["y_train"], d["X_test"], d["y_test"])
    if data.X_train.ndim != 2 or data.X_train.shape[1:] != (2,):
        return "data.npz: X_train is not a table of 2-D points"
    return params, data, spec
