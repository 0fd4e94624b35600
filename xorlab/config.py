"""The run config: pydantic models, one per YAML section, every key defaulted (DESIGN.md section 2).

Loading goes: YAML file -> raw mapping -> ``--set`` overrides applied to the raw mapping ->
one validation pass -> ``Config``. Every problem becomes a ``ConfigError`` naming the file, the
dotted key and what is allowed; nothing here prints or exits.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from . import yamlio
from .errors import ConfigError, XorlabError
from .stopping import EarlyStoppingConfig, Metric

NAME_RE = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$"
MAX_BYTES = 8 * 2**30  # refuse a network whose arrays would need more memory than this
SEED_MAX = 2**32 - 1  # numpy.random.RandomState accepts 0..2**32-1

PosInt = Annotated[int, Field(ge=1)]


class _Section(BaseModel):
    # strict: `batch_size: true` is an error, not 1; `lr: "0.1"` is an error, not 0.1.
    # defer_build: validators are built on first use, not at import (a few ms of every start-up)
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, defer_build=True)


class DataConfig(_Section):
    kind: Literal["xor", "xor4", "circles", "moons", "spiral"] = "xor"  # xor: the tutorial's
    n: int = Field(300, ge=1, le=1_000_000)  # rows generated (xor4 always has 4)
    noise: float = Field(0.0, ge=0.0)  # std of Gaussian jitter added to X; 0.0-0.3 typical
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # rows held out for test accuracy
    seed: int = Field(0, ge=0, le=SEED_MAX)  # data seed, separate from the init seed


class ModelConfig(_Section):
    hidden: list[PosInt] = Field(default_factory=lambda: [3])  # hidden sizes; [3] or [50]
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid"  # hidden layers
    loss: Literal["mse", "cross_entropy"] = "mse"  # mse: sigmoid output; CE: softmax output
    bias: bool = False  # the tutorial's network has none
    init: Literal["uniform", "xavier", "he"] = "uniform"  # uniform: the tutorial's
    dtype: Literal["float64", "float32"] = "float64"


class ScheduleConfig(_Section):
    kind: Literal[
        "constant", "step", "exponential", "inverse_time", "cosine", "reduce_on_plateau"
    ] = "constant"
    gamma: float = Field(0.5, gt=0.0)  # step/exponential factor; 0.5 (step), 0.999 (exp.)
    every: int = Field(100, ge=1)  # step: steps between decays
    decay: float = Field(0.01, ge=0.0)  # inverse_time: lr / (1 + decay*t)
    lr_min: float = Field(0.0, ge=0.0)  # cosine, reduce_on_plateau: floor of the learning rate
    warmup: int = Field(0, ge=0)  # linear warm-up steps; 0 = none
    # reduce_on_plateau: PyTorch's ReduceLROnPlateau (threshold_mode rel) on the logged rows
    factor: float = Field(0.5, gt=0.0, lt=1.0)  # reduce_on_plateau: lr times this on a plateau
    patience: int = Field(50, ge=0)  # reduce_on_plateau: bad rows tolerated; one more reduces lr
    cooldown: int = Field(0, ge=0)  # reduce_on_plateau: rows after a reduction counting no bad
    metric: Metric = "loss"  # reduce_on_plateau: a metrics.csv column; test_acc needs a test set
    mode: Literal["min", "max"] = "min"  # reduce_on_plateau: min for losses, max for accuracies
    threshold: float = Field(1.0e-4, ge=0.0)  # reduce_on_plateau: better = beyond best*(1 -+ this)


class ClipConfig(_Section):
    kind: Literal["none", "value", "norm"] = "none"
    max: float = Field(1.0, gt=0.0)  # value: bound per element; norm: bound on the global norm


class OptimConfig(_Section):
    kind: Literal["sgd", "momentum", "adam"] = "sgd"
    lr: float = Field(0.003, gt=0.0)  # base learning rate; 0.003 (tutorial) to 5 (explodes)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # momentum only
    beta1: float = Field(0.9, ge=0.0, lt=1.0)  # adam
    beta2: float = Field(0.999, ge=0.0, lt=1.0)  # adam
    eps: float = Field(1e-8, gt=0.0)  # adam
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    clip: ClipConfig = Field(default_factory=ClipConfig)


class RegularizationConfig(_Section):
    kind: Literal["none", "l1", "l2"] = "l2"  # on weight matrices only, never biases
    strength: float = Field(0.0001, ge=0.0)  # lambda; l2: lam/(2N)*sum(W**2), l1: lam/N*sum|W|


class TrainConfig(_Section):
    steps: int = Field(1000, ge=1, le=10_000_000)  # parameter updates
    batch_size: int | None = Field(None, ge=1)  # null: the full training set
    shuffle: bool = False  # reshuffle rows every epoch (seeded by `seed`)
    log_every: int = Field(1, ge=1)  # a metrics row every this many steps (and the last)
    diverge_above: float | None = Field(None, gt=0.0)  # stop as diverged above this loss
    early_stopping: EarlyStoppingConfig | None = None  # null: off; Keras's, on the logged rows


class PlotsConfig(_Section):
    enabled: bool = True  # write plots/ (the CLI's --no-plots turns it off)
    gif_frames: int = Field(40, ge=0, le=500)  # frames of training.gif; 0 = no GIF
    single: bool = False  # also loss.png, accuracy.png, boundary.png: panel.png's cells alone

    @field_validator("gif_frames")
    @classmethod
    def _gif_needs_two_frames(cls, v: int) -> int:
        if v == 1:  # one frame is no animation, and would silently write no training.gif
            raise PydanticCustomError("gif_frames", "must be 0 (no GIF) or at least 2")
        return v


class TelemetryConfig(_Section):
    # sharpness_every 1 costs about 2-3x a plain step (a warm-started power iteration of ~2
    # Hessian-vector products); 10 a tenth of that
    sharpness_every: int = Field(0, ge=0)  # top Hessian eigenvalue on every k-th row; 0 = off
    activations: bool = True  # saturated_hl / dead_hl and update_ratio_Wl per hidden layer


class Config(_Section):
    name: str = Field("run", pattern=NAME_RE)  # letters, digits, '-', '_', '.'; in folder names
    seed: int = Field(0, ge=0, le=SEED_MAX)  # init and shuffling
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    plots: PlotsConfig = Field(default_factory=PlotsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def to_yaml(self) -> str:
        return yamlio.dumps(self.to_dict())


# --- errors -----------------------------------------------------------------------------------


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the key at ``loc`` (for 'did you mean')."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(err: dict[str, Any]) -> tuple[str, str]:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc)
        msg = "unknown key"
        if model is not None:
            valid = list(model.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            msg += f" (did you mean '{close[0]}'?)" if close else ""
            msg += f"; allowed: {', '.join(valid)}"
        return key, msg
    if kind == "string_pattern_mismatch" and loc == ("name",):
        return key, (
            "must be 1-80 letters, digits, '-', '_' or '.', not starting with '.' "
            f"(it names a folder), got {_short(err['input'])}"
        )
    if kind == "finite_number":
        return key, f"must be a finite number, got {_short(err['input'])}"
    msg = err["msg"]
    msg = msg[0].lower() + msg[1:] if msg else msg
    if kind == "missing":
        return key, msg
    return key, f"{msg}, got {_short(err['input'])}"


def validate(raw: Any, *, file: str | None = None) -> Config:
    """Validate a raw mapping into a Config, or raise ConfigError listing every problem."""
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        raise ConfigError([(None, f"a config must be a mapping of keys, got {kind}")], file=file)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]  # type: ignore[arg-type]
        raise ConfigError(problems, file=file) from None
    check_size(cfg, file=file)
    check_test_metric(cfg, file=file)
    return cfg


def held_out_rows(cfg: Config) -> int:
    """The rows data.make_data holds out for the test set."""
    rows = 4 if cfg.data.kind == "xor4" else cfg.data.n
    return int(math.floor(rows * cfg.data.test_fraction))


def check_test_metric(cfg: Config, *, file: str | None = None) -> None:
    """Early stopping or a plateau schedule on test_acc needs a test set to read it from."""
    watched = []
    if cfg.train.early_stopping is not None:
        watched.append(("train.early_stopping.metric", cfg.train.early_stopping.metric))
    if cfg.optim.schedule.kind == "reduce_on_plateau":
        watched.append(("optim.schedule.metric", cfg.optim.schedule.metric))
    for key, metric in watched:
        if metric == "test_acc" and held_out_rows(cfg) == 0:
            msg = "test_acc needs a test set (a data.test_fraction that holds out a row)"
            raise ConfigError([(key, msg)], file=file)


def estimate_bytes(cfg: Config) -> int:
    """Memory the run's arrays need, roughly: parameters and their copies, activations, metrics."""
    itemsize = 4 if cfg.model.dtype == "float32" else 8
    sizes = [2, *cfg.model.hidden, 2]
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    rows = 4 if cfg.data.kind == "xor4" else cfg.data.n
    width = sum(sizes)
    # params, grads, 2 optimizer moments, init, final, GIF snapshots; forward + backward arrays
    param_copies = 6 + (cfg.plots.gif_frames if cfg.plots.enabled else 0)
    arrays = itemsize * (n_params * param_copies + rows * width * 4)
    n_rows = cfg.train.steps // cfg.train.log_every + 1
    metrics = 8 * n_rows * (10 + 2 * len(sizes))
    return int(arrays + metrics)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"


def check_size(cfg: Config, *, file: str | None = None) -> None:
    need = estimate_bytes(cfg)
    if need > MAX_BYTES:
        raise ConfigError(
            [
                (
                    "model.hidden",
                    f"this run would need about {_human(need)} of memory, more than the "
                    f"{_human(MAX_BYTES)} allowed; use fewer or smaller layers, rows or steps",
                )
            ],
            file=file,
        )


# --- overrides --------------------------------------------------------------------------------

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_override(text: str) -> tuple[str, Any]:
    """``'optim.lr=0.3'`` -> ``('optim.lr', 0.3)``; the value is read as YAML."""
    if "=" not in text:
        raise XorlabError(f"expected KEY=VALUE, got {text!r}", file="--set")
    key, _, value = text.partition("=")
    key = key.strip()
    if not _KEY_RE.match(key):
        raise XorlabError(f"bad key {key!r}: expected dotted names such as optim.lr", file="--set")
    parsed = yamlio.loads(value, file=f"--set {key}")
    return key, parsed


def set_dotted(raw: dict[str, Any], key: str, value: Any, *, source: str = "--set") -> None:
    """Set ``raw['a']['b'] = value`` for key 'a.b', creating mappings on the way."""
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise XorlabError(f"{where} is not a section, so {key} cannot be set", file=source)
        node = child
    node[parts[-1]] = value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A deep copy of ``raw`` with each ``KEY=VALUE`` override applied in order."""
    out = copy.deepcopy(raw)
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(out, key, value)
    return out


def name_from_path(path: str | Path) -> str:
    """A default run name from a file name: 'configs/xor_h3.yaml' -> 'xor_h3'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).lstrip(".") or "run"
    return stem[:80]


def load_raw(path: str | Path) -> dict[str, Any]:
    raw = yamlio.load_file(path)
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        raise ConfigError(
            [(None, f"a config must be a mapping of keys, got {kind}")], file=str(path)
        )
    return raw


def load_config(
    path: str | Path | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    name: str | None = None,
) -> Config:
    """Load, override and validate a config file (None: all defaults)."""
    raw: dict[str, Any] = {} if path is None else load_raw(path)
    file = str(path) if path is not None else None
    if path is not None and "name" not in raw:
        raw = {"name": name_from_path(path), **raw}
    raw = apply_overrides(raw, list(overrides))
    if name is not None:
        raw["name"] = name
    return validate(raw, file=file)


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
