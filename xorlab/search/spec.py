"""The sweep file's ``search:`` block: its model, the load-time rules over the members' configs,
the distributions PBT may mutate, and the refusal to run a search that is not carried out yet."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from ..config import SEED_MAX
from ..errors import ConfigError

LOSSES = ("data_loss", "loss", "reg_loss")  # ranked with mode: min
ACCURACIES = ("train_acc", "test_acc")  # ranked with mode: max
METRICS = (*LOSSES, *ACCURACIES, "grad_norm")  # metrics.csv columns a search may rank by


Factor = Annotated[float, Field(gt=0.0)]
_ENUM: dict[str, Any] = {"enum": list(METRICS)}


def _factors() -> list[float]:
    return [0.8, 1.2]


class SearchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    kind: Literal["halving", "hyperband", "pbt"]  # halving | hyperband | pbt
    metric: str = Field("data_loss", json_schema_extra=_ENUM)  # metrics.csv column ranked
    mode: Literal["min", "max"] = "min"  # min for losses, max for accuracies
    eta: int = Field(3, ge=2)  # halving/hyperband: keep the best ceil(n/eta) at each rung; 3
    min_steps: int | Literal["auto"] | None = None  # first rung (37 of 1000 steps) or auto
    calibrate: int = Field(0, ge=0)  # halving/hyperband: members trained in full first; 0 = none
    interval: int = Field(100, ge=1)  # pbt: a round at every multiple of interval < train.steps
    quantile: float = Field(0.25, gt=0.0, le=0.5)  # pbt: bottom ceil(K*quantile) copy the top
    perturb: list[Factor] = Field(default_factory=_factors, min_length=1)  # pbt: multipliers
    resample_probability: float = Field(0.25, ge=0.0, le=1.0)  # pbt: else redraw the key
    mutate: list[str] | None = None  # pbt: null = the uniform/loguniform keys of random.params
    seed: int = Field(0, ge=0, le=SEED_MAX)  # every draw: default_rng([seed, member, round])

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in METRICS:
            raise PydanticCustomError(
                "metric", "must be one of " + ", ".join(METRICS) + ", got {got}", {"got": repr(v)}
            )
        return v

    @field_validator("min_steps", mode="before")
    @classmethod
    def _int_or_auto(cls, v: Any) -> Any:
        ok = v is None or v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
        if not ok:
            raise PydanticCustomError(
                "min_steps", "must be a whole number >= 1 or auto, got {got}", {"got": repr(v)}
            )
        return v


ONLY_FOR = {  # keys that do something for some kinds only: giving one to another kind is an error
    "eta": ("halving", "hyperband"),
    "min_steps": ("halving", "hyperband"),
    "calibrate": ("halving", "hyperband"),
    "interval": ("pbt",),
    "quantile": ("pbt",),
    "perturb": ("pbt",),
    "resample_probability": ("pbt",),
    "mutate": ("pbt",),
}
# what a PBT copy moves between members must fit and mean the same in both
SHAPE_KEYS = (
    "model.hidden",
    "model.activation",
    "model.loss",
    "model.bias",
    "model.dtype",
    "optim.kind",
    "data",
    "train.batch_size",
    "train.shuffle",
)


def config_value(obj: Any, dotted: str) -> Any:
    """A dotted key's value in a config (a model or a mapping); a section comes back as a dict."""
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj.model_dump() if isinstance(obj, BaseModel) else obj


def check_search(
    search: SearchSpec,
    configs: Sequence[Any],
    random_params: dict[str, dict[str, Any]] | None,
    *,
    file: str,
) -> None:
    """The load-time rules of DESIGN.md section 2, over the members' resolved configs (Config
    objects or their dicts); the first broken one is a ConfigError naming ``search.<key>``."""

    def fail(key: str | None, msg: str) -> None:
        raise ConfigError([(f"search.{key}" if key else "search", msg)], file=file)

    kind = search.kind
    for key, kinds in ONLY_FOR.items():
        if key in search.model_fields_set and kind not in kinds:
            fail(key, f"is for {' and '.join(kinds)} only; this search is {kind}")
    if search.metric in ACCURACIES and search.mode == "min":
        fail("mode", f"min would keep the members with the lowest {search.metric}; give mode: max")
    if search.metric in LOSSES and search.mode == "max":
        fail("mode", f"max would keep the members with the highest {search.metric}; give mode: min")
    steps = [int(config_value(c, "train.steps")) for c in configs]
    if len(set(steps)) > 1:
        j = next(i for i, s in enumerate(steps) if s != steps[0])
        fail(
            None,
            f"needs one train.steps for every member; members 0 and {j} have "
            f"{steps[0]} and {steps[j]}",
        )
    T, n = steps[0], len(configs)
    if search.metric == "test_acc":
        for i, c in enumerate(configs):
            if not config_value(c, "data.test_fraction"):
                fail("metric", f"test_acc needs a test set; member {i} has data.test_fraction 0")
    if kind == "pbt":
        if n < 2:
            fail("kind", "pbt needs at least 2 members (the bottom copy the top)")
        if search.interval >= T:
            fail(
                "interval",
                f"{search.interval} leaves no round: rounds come at multiples of "
                f"interval below train.steps ({T})",
            )
        for key in SHAPE_KEYS:
            first = config_value(configs[0], key)
            for i, c in enumerate(configs[1:], start=1):
                other = config_value(c, key)
                if other != first:
                    fail(
                        None,
                        f"pbt copies whole training states, so every member needs the "
                        f"same {key}; members 0 and {i} differ ({first!r} and {other!r})",
                    )
        mutable_distributions(search, random_params, file=file)
        return
    if search.min_steps is None:
        fail(
            "min_steps",
            f"{kind} needs the step of its first rung (37 for 1000 steps and eta 3), "
            "or auto with calibrate",
        )
    if search.min_steps == "auto" and search.calibrate == 0:
        fail(
            "min_steps",
            "auto needs calibrate: n, the members trained in full whose curves "
            "place the first rung",
        )
    if isinstance(search.min_steps, int) and search.min_steps * search.eta > T:
        fail(
            "min_steps",
            f"{search.min_steps} leaves no rung: a rung at r needs r*eta <= train.steps ({T})",
        )
    if search.calibrate:
        if search.calibrate < 3:
            fail("calibrate", "needs at least 3 members for a rank correlation (or 0: none)")
        if search.calibrate >= n:
            fail("calibrate", f"{search.calibrate} of {n} members leaves none to search")


@dataclass(frozen=True)
class Distribution:
    """A mutable key's distribution in ``random.params``; a PBT resample draws from it."""

    kind: Literal["uniform", "loguniform"]
    lo: float
    hi: float

    def draw(self, u: float) -> float:
        """The value at quantile ``u`` in [0, 1)."""
        if self.kind == "uniform":
            return self.lo + (self.hi - self.lo) * u
        return math.exp(math.log(self.lo) + (math.log(self.hi) - math.log(self.lo)) * u)

    def clip(self, x: float) -> float:
        return min(max(x, self.lo), self.hi)

    def __str__(self) -> str:
        return f"{self.kind} [{_g(self.lo)}, {_g(self.hi)}]"


def mutable_distributions(
    search: SearchSpec, random_params: dict[str, dict[str, Any]] | None, *, file: str = "sweep"
) -> dict[str, Distribution]:
    """Key -> distribution for every key PBT may mutate, in ``mutate``'s order (by default the
    uniform and loguniform keys of ``random.params``); anything else may not mutate (exit 2)."""
    params = random_params or {}
    ranged = [k for k, d in params.items() if next(iter(d)) in ("uniform", "loguniform")]
    keys = ranged if search.mutate is None else search.mutate
    where = "search.mutate"
    if not keys:
        msg = (
            "no key to mutate: pbt mutates the uniform or loguniform keys of random.params, "
            "and " + ("this sweep has no `random:`" if not params else "it has none")
        )
        raise ConfigError([(where, msg)], file=file)
    out: dict[str, Distribution] = {}
    for key in keys:
        if key in out:
            raise ConfigError([(where, f"{key} is given twice")], file=file)
        if key not in params:
            raise ConfigError(
                [
                    (
                        where,
                        f"{key} is not drawn by random.params; pbt mutates uniform or "
                        "loguniform keys there",
                    )
                ],
                file=file,
            )
        dist_kind, arg = next(iter(params[key].items()))
        if dist_kind not in ("uniform", "loguniform"):
            raise ConfigError(
                [
                    (
                        where,
                        f"{key} is drawn from {dist_kind}; only uniform and loguniform keys "
                        "may mutate",
                    )
                ],
                file=file,
            )
        out[key] = Distribution(dist_kind, float(arg[0]), float(arg[1]))  # type: ignore[arg-type]
    return out


def _g(v: float, digits: int = 4) -> str:
    """``v`` with ``digits`` significant digits, as reasons and descriptions write numbers."""
    return f"{v:.{digits}g}"
