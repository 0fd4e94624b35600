"""Population training: K configs of one shape trained as one stacked computation.

``train_population(configs) -> list[RunResult]`` trains configs that share a ``group_key`` (the
same data, layer sizes, kinds and step plan) as a stack: weights ``(K, fan_in, fan_out)``,
biases ``(K, 1, fan_out)``, batches ``(K, B, d)`` or one batch shared by all; ``nn`` and ``optim``
are batch-agnostic, so one forward and one backward serve every network. What may differ per
network is a number: the seed (initialization and shuffles), learning rate and schedule fields,
penalty strength, momentum, Adam's betas and eps, the clip bound, ``diverge_above``. A number the
group shares stays a Python float, which costs nothing.

Each result equals ``train(config)`` (same metrics, parameters, frames, status): every network
gets the same floating-point operations, in the same order, as when trained alone (BLAS matmul
is called once per network with the same shapes; squared norms use the same BLAS dot; scalars
are rounded to the model's dtype as numpy rounds a Python float).

A network that diverges leaves the stack: its parameters freeze before the update that step
would have applied, its row and status are recorded as ``train`` records them, and the others
go on without it. A network that early stopping stops leaves it the same way (status
``stopped_early``, its best row's parameters with ``restore_best``). Early stopping and the plateau
schedule keep one state machine per network, fed that network's logged rows, so their settings
(and whether a network stops at all) may differ inside a stack; a plateau's lower lr makes the
group's lr one number per network.

``group_configs(configs, max_k)`` splits a list of configs into such groups, in order, chunked
so that a group's working set stays in cache.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from . import nn, optim, telemetry, wide
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
    train,
)

# A group's working set (activations, their gradients, temporaries: rows x widths x ~6 arrays)
# is kept under this many bytes. Measured (2-core Intel Xeon, 2 MiB L2/core), µs per
# network-step of 50 hidden units are flat from K = 4 to 8 (84-86) and worse at 2 (~100) and 12
# (~89); for 3 hidden they fall to ~15 by K = 60. 4 MiB gives K = 5 and 58 there, and the
# 120-member benchmark sweep ran in 4.42 s against 4.64 s with 8 MiB (K = 11): smaller groups
# also spread better over two workers.
CACHE_BYTES = 4 << 20
MAX_K = 256


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


def group_size(cfg: Config) -> int:
    """How many networks of this config to stack: as many as keep the working set under
    CACHE_BYTES (rows x layer widths x itemsize x ~6 arrays), at least 1, at most MAX_K."""
    rows = 4 if cfg.data.kind == "xor4" else cfg.data.n
    width = sum(cfg.model.hidden) + 2
    itemsize = 4 if cfg.model.dtype == "float32" else 8
    return max(1, min(MAX_K, CACHE_BYTES // (rows * width * itemsize * 6)))


def group_configs(configs: Sequence[Config], max_k: int | None = None) -> list[list[int]]:
    """Indices of ``configs`` in groups that ``train_population`` can train together.

    Groups follow the order in which their first member appears; members keep their order. A
    group larger than ``max_k`` (default: ``group_size``) is cut into near-equal chunks. The
    result depends only on the configs, in order.
    """
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        # the sharpness is one power iteration per network: such a config trains alone
        key = ("alone", i) if cfg.telemetry.sharpness_every else group_key(cfg)
        groups.setdefault(key, []).append(i)
    out: list[list[int]] = []
    for members in groups.values():
        k = max_k if max_k is not None else group_size(configs[members[0]])
        n_chunks = -(-len(members) // max(1, k))
        size, extra = divmod(len(members), n_chunks)  # the first `extra` chunks get one more
        start = 0
        for c in range(n_chunks):
            end = start + size + (c < extra)
            out.append(members[start:end])
            start = end
    return out


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


def _wide_mode(spec: nn.NetSpec, K: int, X: np.ndarray, dtype: str) -> bool | None:
    """``wide.matches_alone`` for K networks fed ``X``: None when X is one batch per network
    (K, B, d) or the wide step would not give each network its bits alone."""
    if X.ndim != 2:
        return None
    return wide.matches_alone(spec, K, X.shape[0], dtype)  # remembered: a dict look-up


def _outputs(params: Params, X: np.ndarray, spec: nn.NetSpec, dtype: str) -> np.ndarray:
    """The stack's outputs ``(K, N, C)`` on the shared rows X, wide where that is exact."""
    K = next(iter(params.values())).shape[0]
    if _wide_mode(spec, K, X, dtype) is not None:
        return wide.forward(params, X, spec)[0]
    return nn.forward(params, X, spec)[0]


def _fill_ratios(
    blocks: list[tuple[np.ndarray, np.ndarray]],
    ratio_block: tuple[int, np.ndarray, list[np.ndarray]],
    stack: _Stack,
    before: list[np.ndarray],
    hidden_w: list[tuple[str, int]],
    n_ratio: int,
) -> None:
    """Write update_ratio_Wl into the last columns of a logged step's rows, for the networks
    that took the update (a network that diverged at that step keeps NaN, as in train())."""
    b, ids_then, wsq = ratio_block
    ids, rows = blocks[b]
    # (K then,): still in the stack after the step (all of them, most steps: no search needed)
    same = len(ids_then) == len(stack.ids)
    alive: Any = slice(None) if same else np.isin(ids_then, stack.ids)
    for c, (k, i) in enumerate(hidden_w):
        diff = stack.params[k] - before[c][alive]  # (K, fan_in, fan_out)
        dsq = optim.sq_norm_each(diff)  # (K,)
        w = wsq[i][alive]
        with np.errstate(all="ignore"):
            ratio = np.where((w > 0) & np.isfinite(w), np.sqrt(dsq) / np.sqrt(w), np.nan)
        col = rows.shape[1] - n_ratio + c
        # rows are in stack order, ids ascending
        pos = slice(None) if len(ids) == len(stack.ids) else np.searchsorted(ids, stack.ids)
        rows[pos, col] = ratio


def _watch(
    stack: _Stack,
    t: int,
    bad: np.ndarray,
    seen: dict[str, np.ndarray],
    plateaus: list[Any],
    plateau_metric: Sequence[str],
    stoppers: list[Any],
    stop_metric: Sequence[str],
    restore_best: list[bool],
    best_params: list[Params | None],
    shapes: dict[str, tuple[int, ...]],
) -> np.ndarray:
    """Feed logged row t to each network's plateau schedule and early stopping, as train()
    does (a network that diverged at t is not fed: it leaves); returns the networks that stop
    (K,). restore_best keeps a copy of a network's parameters at each row that is its best."""
    stop = np.zeros(len(stack.ids), dtype=bool)
    for i, net in enumerate(stack.ids.tolist()):
        if bad[i]:
            continue
        plateau, stopper = plateaus[net], stoppers[net]
        if plateau is not None:
            plateau.update(float(seen[plateau_metric[net]][i]))
        if stopper is not None:
            decision = stopper.update(float(seen[stop_metric[net]][i]), t)
            if restore_best[net] and decision.best_row == t:
                best_params[net] = stack.network(i, shapes)
            stop[i] = decision.stop
    return stop


def train_population(
    configs: Sequence[Config], *, on_step: Callable[[int], None] | None = None
) -> list[RunResult]:
    """Train configs that share a ``group_key`` as one stack; results in the configs' order.

    Each result equals ``train(config)``. ``on_step(steps done)`` is called now and then for
    progress. Ctrl-C ends the networks still training with status ``interrupted``. A group of
    one is handed to ``train`` itself, which has less bookkeeping per step.
    """
    if not configs:
        return []
    check_group(configs)
    if len(configs) == 1:
        return [
            train(configs[0], on_step=None if on_step is None else lambda d, _l, _a: on_step(d))
        ]
    nets = start(configs)
    advance(nets, configs[0].train.steps, on_step=on_step)
    return results(nets)


def check_group(configs: Sequence[Config]) -> None:
    """Raise ValueError unless every config shares the first one's ``group_key``."""
    key = group_key(configs[0])
    for cfg in configs[1:]:
        if group_key(cfg) != key:
            raise ValueError(f"config {cfg.name!r} cannot share a stack with {configs[0].name!r}")
    if configs[0].telemetry.sharpness_every:
        if len(configs) > 1:
            raise ValueError("a config with telemetry.sharpness_every > 0 trains alone (train)")


def advance(
    nets: Sequence[Net], stop: int, *, on_step: Callable[[int], None] | None = None
) -> None:
    """Train the running networks (one ``group_key``, all at the same step) up to ``stop``
    updates, in place, as one stack; the others are left as they are. Training in segments gives
    every network the same bits as training it in one go, alone or in any stack."""
    live = [n for n in nets if n.running]
    if not live:
        return
    check_group([n.config for n in live])
    t0 = live[0].t
    if any(n.t != t0 for n in live):
        raise ValueError("the networks of a stack must be at the same step")
    cfg0 = live[0].config
    T = cfg0.train.steps
    stop = min(stop, T)
    stack = _stack(live)
    spec_all = stack.spec
    shapes = {k: v.shape for k, v in live[0].init.items()}
    data = build_data(cfg0)

    # the step plan: shared by every network
    log_every = cfg0.train.log_every
    clip_kind = cfg0.optim.clip.kind
    X, Y = data.X_train, data.y_train
    y_idx = Y.argmax(axis=-1)  # (n_train,)
    X_test, y_test_idx = data.X_test, data.y_test.argmax(axis=-1)
    has_test = data.n_test > 0
    n = data.n_train
    B = n if cfg0.train.batch_size is None else min(cfg0.train.batch_size, n)
    shuffle = cfg0.train.shuffle
    full_batch = B == n and not shuffle
    nb = -(-n // B)  # batches per epoch
    snap_at = set(frame_steps(T, cfg0.plots.gif_frames)) if cfg0.plots.enabled else set()
    progress_every = max(1, T // 200)
    dtype = cfg0.model.dtype
    ws: wide.Workspace = {}  # the wide step's arrays, reused from step to step
    health = cfg0.telemetry.activations  # saturated/dead and update ratios, as train() logs them
    hidden_w = [(k, list(live[0].init).index(k)) for k in spec_all.w_keys[:-1]]  # (W_l, wsq index)
    n_ratio = len(hidden_w) if health else 0
    before: list[np.ndarray] = []  # the hidden W_l before a logged step's update

    blocks: list[tuple[np.ndarray, np.ndarray]] = []  # (networks, their metrics rows) per step
    # early stopping and the plateau schedule: one state machine per network (train()'s)
    plateaus = [n_.plateau for n_ in live]  # all or none: the schedule kind is the group's
    stoppers = [n_.stopper for n_ in live]
    watch_plateau = cfg0.optim.schedule.metric if plateaus[0] is not None else ""
    plateau_metric = [n_.config.optim.schedule.metric for n_ in live]
    stopping = [n_.config.train.early_stopping for n_ in live]
    stop_metric = [e.metric if e else "" for e in stopping]
    restore_best = [bool(e and e.restore_best) for e in stopping]
    best_params: list[Params | None] = [n_.best for n_ in live]
    watching = bool(watch_plateau) or any(s is not None for s in stoppers)

    order = np.arange(n)
    orders: np.ndarray = np.broadcast_to(order, (len(live), n))
    if shuffle and t0 % nb:  # mid-epoch: each network's own order of this epoch
        orders = np.stack([n_.order for n_ in live])  # type: ignore[misc]
    Xb, Yb = X, Y
    t = t0
    with np.errstate(all="ignore"):
        try:
            for t in range(t0, stop):
                if t in snap_at:
                    for i, net in enumerate(stack.ids.tolist()):
                        live[net].frames.append(Frame(t, stack.network(i, shapes)))
                epoch, j = divmod(t, nb)
                if not full_batch:
                    if shuffle:
                        if j == 0:
                            orders = np.stack([rs.permutation(n) for rs in stack.rss])  # (K, n)
                        rows_b = orders[:, j * B : (j + 1) * B]  # (K, B)
                    else:
                        rows_b = order[j * B : (j + 1) * B]  # (B,): one batch for all
                    Xb, Yb = X[rows_b], Y[rows_b]  # (K, B, 2), (K, B, C) or (B, 2), (B, C)

                params, spec = stack.params, stack.spec
                wide_wt = _wide_mode(spec, len(stack.ids), Xb, dtype)
                if wide_wt is not None:  # one batch for all: the first layer as one product
                    out, cache = wide.forward(params, Xb, spec, ws)  # wide.step, keeping the cache
                    dl_, dz_out = wide.loss_and_delta(cache, Yb, spec, ws)
                    grads = wide.backward(params, cache, dz_out, spec, n, copy_wt=wide_wt, ws=ws)
                else:
                    out, cache = nn.forward(params, Xb, spec)  # (K, B, C)
                    dl_ = nn.data_loss(cache, Yb, spec)
                    grads = nn.backward(params, cache, Yb, spec, n)
                dl = np.asarray(dl_, dtype=np.float64)  # (K,)
                rl = np.asarray(nn.penalty(params, spec, n), dtype=np.float64)  # N: train rows
                loss = dl + rl
                gsq = [optim.sq_norm_each(g) for g in grads.values()]  # P x (K,)
                wsq = [optim.sq_norm_each(w) for w in params.values()]
                gnorm = np.sqrt(sum(gsq))  # summed in parameter order, as train() does
                bad = ~(
                    np.isfinite(loss)
                    & np.isfinite(gnorm)
                    & np.logical_and.reduce([np.isfinite(s) for s in wsq])
                    & ~(loss > stack.diverge_above)
                )  # (K,)
                clipped = optim.clip_each(grads, clip_kind, stack.clip_max, gnorm) & ~bad
                lr = optim.get_lr(stack.sched, t)
                logged = t % log_every == 0 or t == T - 1
                stop_now = None  # (K,): early stopping's decision at this logged row
                if logged or bad.any():
                    if full_batch:  # a finite data loss says the outputs are finite
                        acc = wide.accuracies(out, y_idx, np.isfinite(dl))
                    else:
                        acc = nn.accuracies(_outputs(params, X, spec, dtype), y_idx)
                    cols: list[Any] = [t, epoch, lr, loss, dl, rl, acc]
                    test_acc: Any = np.nan
                    if has_test:
                        out_test = _outputs(params, X_test, spec, dtype)
                        test_acc = nn.accuracies(out_test, y_test_idx)
                        cols.append(test_acc)
                    cols += [gnorm, clipped, *gsq, *wsq]  # squared norms: metrics_frame roots
                    if health:
                        cols += telemetry.layer_health_each(cache.hs[1:-1], spec.activation)
                        cols += [np.nan] * n_ratio  # update_ratio_Wl: after the update
                        before = [params[k].copy() for k, _ in hidden_w]
                    rows = np.empty((len(stack.ids), len(cols)))
                    for c, value in enumerate(cols):
                        rows[:, c] = value
                    who = slice(None) if logged else bad
                    blocks.append((stack.ids[who], rows[who]))
                    ratio_block = (
                        (len(blocks) - 1, stack.ids.copy(), wsq) if n_ratio and logged else None
                    )
                    if logged and watching:
                        seen = {"loss": loss, "data_loss": dl, "train_acc": acc}
                        seen["test_acc"] = np.broadcast_to(test_acc, loss.shape)
                        stop_now = _watch(stack, t, bad, seen, plateaus, plateau_metric,
                                          stoppers, stop_metric, restore_best, best_params,
                                          shapes)  # fmt: skip
                else:
                    ratio_block = None
                leave = bad if stop_now is None else bad | stop_now
                if leave.any():
                    for i in np.flatnonzero(bad).tolist():
                        net = live[int(stack.ids[i])]
                        net.status, net.diverged_at, net.t = "diverged", t, t
                        net.final = stack.network(i, shapes)  # frozen before update t
                    for i in np.flatnonzero(leave & ~bad).tolist():
                        k = int(stack.ids[i])  # update t is not applied
                        net = live[k]
                        net.status, net.t = "stopped_early", t
                        kept = best_params[k] if restore_best[k] else None
                        net.final = kept if kept is not None else stack.network(i, shapes)
                    alive = ~leave
                    stack.keep(alive)
                    orders, lr = orders[alive], _keep(lr, alive)
                    grads = {k: v[alive] for k, v in grads.items()}
                    if not len(stack.ids):
                        break
                if watch_plateau and logged:  # a lowered lr counts from update t + 1 on
                    lrs = [plateaus[k].lr for k in stack.ids.tolist()]  # type: ignore[union-attr]
                    stack.sched = replace(stack.sched, lr=_per_net(lrs))
                if on_step is not None and (t + 1) % progress_every == 0:
                    on_step(t + 1)  # before the update, as in train(): Ctrl-C here keeps row t
                optim.update(stack.ospec, stack.params, grads, stack.state, lr, t)
                if ratio_block is not None:  # ||W_l after - before|| / ||before||, per network
                    _fill_ratios(blocks, ratio_block, stack, before, hidden_w, n_ratio)
            else:
                t = stop
        except KeyboardInterrupt:
            for k in stack.ids.tolist():
                live[k].status, live[k].t = "interrupted", t
                live[k].final = None

    # hand the state back to each network
    for i, k in enumerate(stack.ids.tolist()):
        net = live[k]
        net.params = {key: v[i].copy() for key, v in stack.params.items()}
        net.state = {s: {key: v[i].copy() for key, v in d.items()} for s, d in stack.state.items()}
        net.order = orders[i].copy() if shuffle else None
        if net.running:
            net.t = stop
            if stop == T:
                net.status = "completed"
    for k, net in enumerate(live):
        net.best = best_params[k]
    if blocks:
        all_ids = np.concatenate([b[0] for b in blocks])
        all_rows = np.concatenate([b[1] for b in blocks])
        by_net = np.argsort(all_ids, kind="stable")
        starts = np.searchsorted(all_ids[by_net], np.arange(len(live) + 1))
        for k, net in enumerate(live):
            if starts[k + 1] > starts[k]:
                net.rows.append(all_rows[by_net[starts[k] : starts[k + 1]]])


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
