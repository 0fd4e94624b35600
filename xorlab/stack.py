"""The stacked engine: K networks of one shape (one ``group_key``) trained as one computation,
in segments.

Weights ``(K, fan_in, fan_out)``, biases ``(K, 1, fan_out)``, batches ``(K, B, d)`` or one batch
shared by all; ``nn`` and ``optim`` are batch-agnostic, so one forward and one backward serve every
network. What may differ per network is a number: the seed (initialization and shuffles), learning
rate and schedule fields, penalty strength, momentum, Adam's betas and eps, the clip bound,
``diverge_above``. A number the group shares stays a Python float, which costs nothing.

Every network gets the same floating-point operations, in the same order, as when trained alone
(BLAS matmul is called once per network with the same shapes; squared norms use the same BLAS
dot; scalars are rounded to the model's dtype as numpy rounds a Python float), so its result
equals ``train(config)`` whatever its companions.

A ``Net`` is one network's whole training state between two segments (a search's rungs and
rounds): ``start(configs)`` makes them, ``stepping.advance(nets, stop)`` trains the running ones
to ``stop`` updates as one stack (re-formed from whoever is given: groups may change between
segments), ``results(nets)`` evaluates each and builds its RunResult. A network that diverges
leaves the stack: its parameters freeze before the update that step would have applied, its row
and status are recorded as ``train`` records them, and the others go on without it. Early
stopping leaves it the same way (status ``stopped_early``, its best row's parameters with
``restore_best``); early stopping and the plateau schedule keep one state machine per network,
fed that network's logged rows.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from . import nn, optim
from .config import Config
from .train import (
    Frame,
    Params,
    RunResult,
    best_of,
    build_data,
    finite_or_none,
    frame_steps,
    metrics_frame,
    net_spec,
    optim_spec,
    plateau_of,
    schedule,
    stopper_of,
)


def group_key(cfg: Config) -> tuple:
    """What configs must share to be trained as one stack: everything but per-network numbers."""
    m, o, tr = cfg.model, cfg.optim, cfg.train
    # a zero strength means no penalty at all (train skips it), not "lambda = 0 * sum(W**2)"
    penalty = cfg.regularization.kind if cfg.regularization.strength else "none"
    return (
        tuple(cfg.data.model_dump().items()),
        (tuple(m.hidden), m.activation, m.loss, m.bias, m.init, m.dtype),
        (o.kind, o.schedule.kind, o.clip.kind, penalty),
        (tr.steps, tr.batch_size, tr.shuffle, tr.log_every),
        (cfg.plots.enabled, cfg.plots.gif_frames),
        (cfg.telemetry.sharpness_every, cfg.telemetry.activations),
    )


def _per_net(values: list[Any]) -> Any:
    """One value for the group if all networks share it (a plain Python number), else (K,)."""
    return values[0] if all(v == values[0] for v in values) else np.array(values)


def _keep(x: Any, alive: np.ndarray) -> Any:
    """The surviving networks' part of a per-network value (arrays (K, ...); numbers stay)."""
    return x[alive] if isinstance(x, np.ndarray) else x


@dataclass
class _Stack:
    """The networks still training, row i of every array being network ``ids[i]``."""

    ids: np.ndarray  # (K,) indices into the configs
    params: Params  # W (K, fan_in, fan_out), b (K, 1, fan_out)
    state: dict[str, Params]  # optimizer state, shaped like params
    rss: list[Any]  # each network's RandomState, for its epoch shuffles (None without them)
    spec: nn.NetSpec  # strength: a number or (K,)
    sched: optim.Schedule  # lr, gamma, ...: numbers or (K,)
    ospec: optim.OptimSpec  # momentum, betas, eps: numbers or (K,)
    clip_max: Any  # float or (K,)
    diverge_above: Any  # float (inf: none) or (K,)

    def keep(self, alive: np.ndarray) -> None:
        """Drop the networks where ``alive`` is False."""
        self.ids = self.ids[alive]
        self.params = {k: v[alive] for k, v in self.params.items()}
        self.state = {s: {k: v[alive] for k, v in d.items()} for s, d in self.state.items()}
        self.rss = [rs for rs, a in zip(self.rss, alive.tolist()) if a]
        for name in ("spec", "sched", "ospec"):
            obj = getattr(self, name)
            kept = {f.name: _keep(getattr(obj, f.name), alive) for f in fields(obj)}
            setattr(self, name, replace(obj, **kept))
        self.clip_max = _keep(self.clip_max, alive)
        self.diverge_above = _keep(self.diverge_above, alive)

    def network(self, i: int, shapes: dict[str, tuple[int, ...]]) -> Params:
        """Row i as one network's parameters, shaped as train() has them (a copy)."""
        return {k: v[i].reshape(shapes[k]).copy() for k, v in self.params.items()}


def _numbers(configs: Sequence[Config]) -> dict[str, Any]:
    """The per-network numbers of a stack's configs (shared ones as plain Python floats)."""
    cfg0 = configs[0]

    def per_net(get: Callable[[Config], Any]) -> Any:
        return _per_net([get(c) for c in configs])

    return {
        "spec": replace(net_spec(cfg0), strength=per_net(lambda c: c.regularization.strength)),
        "sched": replace(
            schedule(cfg0),
            lr=per_net(lambda c: c.optim.lr),
            gamma=per_net(lambda c: c.optim.schedule.gamma),
            every=per_net(lambda c: c.optim.schedule.every),
            decay=per_net(lambda c: c.optim.schedule.decay),
            lr_min=per_net(lambda c: c.optim.schedule.lr_min),
            warmup=per_net(lambda c: c.optim.schedule.warmup),
        ),
        "ospec": replace(
            optim_spec(cfg0),
            momentum=per_net(lambda c: c.optim.momentum),
            beta1=per_net(lambda c: c.optim.beta1),
            beta2=per_net(lambda c: c.optim.beta2),
            eps=per_net(lambda c: c.optim.eps),
        ),
        "clip_max": per_net(lambda c: c.optim.clip.max),
        "diverge_above": per_net(
            lambda c: math.inf if c.train.diverge_above is None else c.train.diverge_above
        ),
    }


@dataclass
class Net:
    """One network's whole training state between two segments of training (a search's rungs
    and rounds): parameters and optimizer state as rows of a stack, its RandomState and this
    epoch's row order (the data-order state), early stopping's and the plateau schedule's state
    machines, and what its RunResult will need (logged rows, frames, status). ``copy_from``
    takes another network's training state (PBT's exploit); the rest stays its own."""

    config: Config
    init: Params  # train()'s shapes
    params: dict[str, np.ndarray]  # W (fan_in, fan_out), b (1, fan_out): rows of a stack
    state: dict[str, dict[str, np.ndarray]]  # optimizer state, shaped like params
    rs: np.random.RandomState | None  # after initialization: the epoch shuffles (None: none)
    order: np.ndarray | None  # this epoch's row order (shuffle), None before the first
    plateau: Any  # ReduceOnPlateau | None
    stopper: Any  # EarlyStopping | None
    t: int = 0  # updates applied
    status: str = "running"  # then completed | diverged | stopped_early | interrupted | pruned
    diverged_at: int | None = None
    final: Params | None = None  # the parameters it left with (train()'s shapes)
    best: Params | None = None  # restore_best: the parameters of its best row so far
    frames: list[Frame] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)  # its logged rows, segment by segment
    wall_s: float = 0.0  # its share of the segments' wall time (the executors measure it)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def clone(self) -> Net:
        """A copy whose training leaves this one as it is (the config is shared: configs are
        never changed in place; logged rows and frames are never changed once made)."""
        rs = None
        if self.rs is not None:
            rs = np.random.RandomState()
            rs.set_state(self.rs.get_state())
        return replace(
            self,
            params={k: v.copy() for k, v in self.params.items()},
            state={s: {k: v.copy() for k, v in d.items()} for s, d in self.state.items()},
            rs=rs,
            order=None if self.order is None else self.order.copy(),
            plateau=copy.copy(self.plateau),
            stopper=copy.copy(self.stopper),
            frames=list(self.frames),
            rows=list(self.rows),
        )

    def copy_from(self, donor: Net, config: Config) -> None:
        """Take ``donor``'s whole training state (parameters, optimizer state, data order, step,
        state machines) and train on as ``config`` (the donor's mutable keys, perturbed)."""
        self.config = config
        self.params = {k: v.copy() for k, v in donor.params.items()}
        self.state = {s: {k: v.copy() for k, v in d.items()} for s, d in donor.state.items()}
        self.rs = copy.deepcopy(donor.rs)
        self.order = None if donor.order is None else donor.order.copy()
        self.plateau, self.stopper = copy.deepcopy(donor.plateau), copy.deepcopy(donor.stopper)
        if self.plateau is not None and config.optim.lr != donor.config.optim.lr:
            self.plateau.lr *= config.optim.lr / donor.config.optim.lr  # the plateau's lr rules
        self.best = None if donor.best is None else {k: v.copy() for k, v in donor.best.items()}
        self.t, self.status, self.diverged_at, self.final = donor.t, "running", None, None


def start(configs: Sequence[Config]) -> list[Net]:
    """Fresh networks of configs that share a ``group_key``, initialized from their own seeds."""
    cfg0 = configs[0]
    spec = net_spec(cfg0)
    nets = []
    for c in configs:
        rs = np.random.RandomState(c.seed)  # init first, then the shuffles
        init = nn.init_params(spec, cfg0.model.init, rs, cfg0.model.dtype)
        row = {k: v[0] for k, v in nn.stack_params([init]).items()}
        zeros = optim.init_state(optim_spec(c), nn.stack_params([init]))
        state = {s: {k: v[0] for k, v in d.items()} for s, d in zeros.items()}
        rs_left = rs if c.train.shuffle else None  # used again only for shuffles
        nets.append(Net(c, init, row, state, rs_left, None, plateau_of(c), stopper_of(c)))
    return nets


def _stack(nets: Sequence[Net]) -> _Stack:
    """The running networks as one stack, row i being ``nets[i]``."""
    numbers = _numbers([n.config for n in nets])
    if nets[0].plateau is not None:  # its lr is the schedule's, lowered or not
        numbers["sched"] = replace(numbers["sched"], lr=_per_net([n.plateau.lr for n in nets]))
    params = {k: np.stack([n.params[k] for n in nets]) for k in nets[0].params}
    state = {s: {k: np.stack([n.state[s][k] for n in nets]) for k in d}
             for s, d in nets[0].state.items()}  # fmt: skip
    return _Stack(ids=np.arange(len(nets)), params=params, state=state,
                  rss=[n.rs for n in nets], **numbers)  # fmt: skip


def check_group(configs: Sequence[Config]) -> None:
    """Raise ValueError unless every config shares the first one's ``group_key``."""
    key = group_key(configs[0])
    for cfg in configs[1:]:
        if group_key(cfg) != key:
            raise ValueError(f"config {cfg.name!r} cannot share a stack with {configs[0].name!r}")
    if configs[0].telemetry.sharpness_every:
        if len(configs) > 1:
            raise ValueError("a config with telemetry.sharpness_every > 0 trains alone (train)")


def last_values(nets: Sequence[Net], metric: str) -> np.ndarray:
    """Each network's ``metric`` on its last logged row (NaN where it has none): what a search
    decision after its ``t`` updates reads. One group_key."""
    out = np.full(len(nets), np.nan)  # (K,)
    have = [i for i, n in enumerate(nets) if n.rows and len(n.rows[-1])]
    if have:
        cfg0 = nets[0].config
        rows = np.stack([nets[i].rows[-1][-1] for i in have])  # (k, columns)
        has_test = build_data(cfg0).n_test > 0
        frame = metrics_frame(rows, net_spec(cfg0), has_test,
                              activations=cfg0.telemetry.activations)  # fmt: skip
        out[have] = frame[metric].to_numpy(dtype=np.float64)
    return out


def results(nets: Sequence[Net]) -> list[RunResult]:
    """One RunResult per network, as train() builds it: networks still running end where they
    are (a search's ``pruned``: set ``status`` first), each evaluated on its last parameters."""
    K = len(nets)
    cfg0 = nets[0].config
    spec_all = _numbers([n.config for n in nets])["spec"]
    shapes = {k: v.shape for k, v in nets[0].init.items()}
    data = build_data(cfg0)
    X, Y = data.X_train, data.y_train
    y_idx = Y.argmax(axis=-1)
    has_test = data.n_test > 0
    n = data.n_train
    T = cfg0.train.steps
    snap_at = set(frame_steps(T, cfg0.plots.gif_frames)) if cfg0.plots.enabled else set()
    finals = []
    for net in nets:
        if net.final is None:
            net.final = {k: v.reshape(shapes[k]).copy() for k, v in net.params.items()}
        finals.append(net.final)
    with np.errstate(all="ignore"):
        # every network's last parameters, evaluated as one stack
        last = nn.stack_params(finals)
        out, cache = nn.forward(last, X, spec_all)
        final_loss = np.asarray(nn.data_loss(cache, Y, spec_all), dtype=np.float64)
        final_loss = final_loss + np.asarray(nn.penalty(last, spec_all, n), dtype=np.float64)
        final_acc = nn.accuracies(out, y_idx)
        final_test = np.full(K, np.nan)
        if has_test:
            out_test = nn.forward(last, data.X_test, spec_all)[0]
            final_test = nn.accuracies(out_test, data.y_test.argmax(axis=-1))
        finite_params = np.logical_and.reduce(
            [np.isfinite(v).reshape(K, -1).all(axis=1) for v in last.values()]
        )
    out_results = []
    for m, net in enumerate(nets):
        if net.status == "running":
            raise ValueError("a network still running has no result: set its status first")
        if net.status == "completed" and not (math.isfinite(final_loss[m]) and finite_params[m]):
            net.status, net.diverged_at = "diverged", T
        frames = net.frames
        if snap_at and net.status != "diverged" and (not frames or frames[-1].step != net.t):
            frames.append(Frame(net.t, {k: v.copy() for k, v in finals[m].items()}))
        width = max((r.shape[1] for r in net.rows), default=0)
        rows = np.concatenate(net.rows) if net.rows else np.zeros((0, width))
        metrics = metrics_frame(rows, spec_all, has_test, activations=cfg0.telemetry.activations)
        acc_m = float(final_acc[m])
        out_results.append(
            RunResult(
                config=net.config,
                status=net.status,
                steps_done=net.t,
                diverged_at=net.diverged_at,
                metrics=metrics,
                data=data,
                init_params=net.init,
                final_params=finals[m],
                final={
                    "loss": finite_or_none(float(final_loss[m])),
                    "train_acc": finite_or_none(acc_m),
                    "test_acc": finite_or_none(float(final_test[m])),
                },
                best=best_of(metrics, acc_m, net.t),
                frames=frames,
            )
        )
    return out_results
