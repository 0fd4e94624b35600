"""One segment of stacked training: ``advance(nets, stop)`` trains the running networks (one
``group_key``, all at the same step) to ``stop`` updates as one stack, step by step as ``train``
does, and hands each network its state back (``stack.Net``). Per step: the batch, forward and
backward (the wide first layer where it gives every network its bits alone), the loss terms and
norms, divergence, clipping, the logged row, early stopping and the plateau schedule, the update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from . import nn, optim, telemetry, wide
from .stack import Net, _keep, _per_net, _Stack, _stack, check_group
from .train import Frame, Params, build_data, frame_steps


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
