"""Training: a pure function of a config (no printing, no files, no clock).

``train(config, on_step=None) -> RunResult``. Metrics row t describes the parameters *before*
update t (DESIGN.md section 1): loss terms and gradient norms on step t's batch, accuracy on the
full train and test sets. A non-finite loss, gradient or parameter, or a loss above
``train.diverge_above``, ends the run with status ``diverged``; Ctrl-C ends it with status
``interrupted``. Neither raises.

Early stopping (``train.early_stopping``) and ``optim.schedule.kind: reduce_on_plateau`` read
each logged row's metric (``stopping``): a stop at row t skips update t (status
``stopped_early``, steps_done t, the metrics end at row t; ``restore_best`` ends with the best
row's parameters); a plateau lowers lr from update t + 1 on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import nn, optim, telemetry
from .config import Config
from .data import Dataset, make_data
from .stopping import EarlyStopping, ReduceOnPlateau

Params = dict[str, np.ndarray]
OnStep = Callable[[int, float, float], None]  # (steps done, latest loss, latest train accuracy)


@dataclass
class Frame:
    """A snapshot for the training GIF: the parameters before update ``step``."""

    step: int
    params: Params


@dataclass
class RunResult:
    config: Config
    status: str  # completed | diverged | stopped_early | interrupted
    steps_done: int  # updates applied
    diverged_at: int | None  # the step whose row first showed the divergence
    metrics: pd.DataFrame  # one row per logged step, columns as in metric_columns()
    data: Dataset
    init_params: Params
    final_params: Params
    final: dict[str, float | None]  # loss, train_acc, test_acc after the last update
    best: dict[str, float | int | None]  # best train_acc and its step
    frames: list[Frame] = field(default_factory=list)


def net_spec(cfg: Config) -> nn.NetSpec:
    return nn.NetSpec(
        sizes=(2, *cfg.model.hidden, 2),
        activation=cfg.model.activation,
        loss=cfg.model.loss,
        bias=cfg.model.bias,
        penalty=cfg.regularization.kind,
        strength=cfg.regularization.strength,
    )


def schedule(cfg: Config) -> optim.Schedule:
    s = cfg.optim.schedule
    return optim.Schedule(
        kind=s.kind,
        lr=cfg.optim.lr,
        steps=cfg.train.steps,
        gamma=s.gamma,
        every=s.every,
        decay=s.decay,
        lr_min=s.lr_min,
        warmup=s.warmup,
    )


def plateau_of(cfg: Config) -> ReduceOnPlateau | None:
    """The plateau schedule's state machine, starting at ``optim.lr`` (None: another kind)."""
    s = cfg.optim.schedule
    if s.kind != "reduce_on_plateau":
        return None
    return ReduceOnPlateau(lr=cfg.optim.lr, factor=s.factor, patience=s.patience,
                           cooldown=s.cooldown, lr_min=s.lr_min, mode=s.mode,
                           threshold=s.threshold)  # fmt: skip


def stopper_of(cfg: Config) -> EarlyStopping | None:
    """Early stopping's state machine (None: off)."""
    es = cfg.train.early_stopping
    return None if es is None else EarlyStopping.from_config(es)


def optim_spec(cfg: Config) -> optim.OptimSpec:
    o = cfg.optim
    return optim.OptimSpec(
        kind=o.kind, momentum=o.momentum, beta1=o.beta1, beta2=o.beta2, eps=o.eps
    )


def build_data(cfg: Config) -> Dataset:
    d = cfg.data
    return make_data(
        d.kind,
        d.n,
        noise=d.noise,
        test_fraction=d.test_fraction,
        seed=d.seed,
        dtype=cfg.model.dtype,
    )


def metric_columns(
    spec: nn.NetSpec, has_test: bool, *, sharpness: bool = False, activations: bool = False
) -> list[str]:
    """metrics.csv's columns; the telemetry ones (telemetry.columns) last, when switched on."""
    cols = ["step", "epoch", "lr", "loss", "data_loss", "reg_loss", "train_acc"]
    if has_test:
        cols.append("test_acc")
    cols += ["grad_norm", "clipped"]
    cols += [f"grad_norm_{k}" for k in spec.param_keys()]
    cols += [f"weight_norm_{k}" for k in spec.param_keys()]
    return cols + telemetry.columns(spec, sharpness=sharpness, activations=activations)


def metrics_frame(
    rows: list[tuple] | np.ndarray,
    spec: nn.NetSpec,
    has_test: bool,
    *,
    sharpness: bool = False,
    activations: bool = False,
) -> pd.DataFrame:
    """The metrics table, from one row per logged step (tuples or a float array) whose
    per-parameter norms are still squared (the square roots are taken here, all at once).
    ``sharpness_iters`` is an integer column that is empty (NA) on rows without a measurement."""
    cols = metric_columns(spec, has_test, sharpness=sharpness, activations=activations)
    if not len(rows):
        return pd.DataFrame([], columns=cols)
    table = np.asarray(rows, dtype=np.float64)  # (rows, columns)
    data: dict[str, np.ndarray] = {}
    for i, col in enumerate(cols):
        if col in ("step", "epoch", "clipped"):
            data[col] = table[:, i].astype(np.int64)
        elif col == "sharpness_iters":
            missing = np.isnan(table[:, i])
            ints = np.where(missing, 0, table[:, i]).astype(np.int64)
            data[col] = pd.arrays.IntegerArray(ints, missing)  # type: ignore[assignment]
        elif col.startswith(("grad_norm_", "weight_norm_")):
            data[col] = np.sqrt(table[:, i])
        else:
            data[col] = table[:, i]
    return pd.DataFrame(data)


def frame_steps(steps: int, n_frames: int) -> list[int]:
    """Evenly spaced moments 0..steps for the GIF (``steps`` = after the last update)."""
    if n_frames <= 0:
        return []
    if n_frames == 1:
        return [steps]
    return sorted({round(i * steps / (n_frames - 1)) for i in range(n_frames)})


def evaluate(params: Params, X: np.ndarray, Y: np.ndarray, spec: nn.NetSpec) -> tuple[float, float]:
    """(loss with penalty, accuracy) of ``params`` on a whole data set; nan for no rows."""
    if X.shape[0] == 0:
        return float("nan"), float("nan")
    out, cache = nn.forward(params, X, spec)
    loss = float(nn.data_loss(cache, Y, spec)) + float(nn.penalty(params, spec, X.shape[0]))
    return loss, nn.accuracy(out, Y.argmax(axis=-1))


def accuracy_on(params: Params, X: np.ndarray, y_idx: np.ndarray, spec: nn.NetSpec) -> float:
    """Accuracy of ``params`` on a whole data set (class indices ``y_idx``); nan for no rows."""
    if X.shape[0] == 0:
        return float("nan")
    return nn.accuracy(nn.forward(params, X, spec)[0], y_idx)


def best_of(
    metrics: pd.DataFrame, final_acc: float, steps_done: int
) -> dict[str, float | int | None]:
    """The best train accuracy over the logged rows and the final parameters, and its step."""
    best: dict[str, float | int | None] = {"train_acc": None, "step": None}
    accs = metrics["train_acc"].to_numpy(dtype=float)
    if len(accs) and np.isfinite(accs).any():
        i = int(np.nanargmax(accs))
        best = {"train_acc": float(accs[i]), "step": int(metrics["step"].iloc[i])}
    if math.isfinite(final_acc) and (best["train_acc"] is None or final_acc > best["train_acc"]):
        best = {"train_acc": final_acc, "step": steps_done}
    return best


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def train(cfg: Config, *, on_step: OnStep | None = None, stop_at: int | None = None) -> RunResult:
    """Train the config's network from its seeds; deterministic for a given config.
    ``stop_at``: stop before update ``stop_at`` (a replay up to that step: its final parameters
    are the ones before that update; the schedule still counts ``train.steps``).

    Per step: forward on the batch, loss, backward, squared norms (for the metrics and the
    divergence check), clip, update. Accuracy and the metrics row only on logged steps; with
    the full batch the row's accuracy comes from the step's own forward pass.
    """
    spec = net_spec(cfg)
    data = build_data(cfg)
    rs = np.random.RandomState(cfg.seed)  # init first, then the epoch shuffles
    params = nn.init_params(spec, cfg.model.init, rs, cfg.model.dtype)
    init_params = {k: v.copy() for k, v in params.items()}
    ospec = optim_spec(cfg)
    state = optim.init_state(ospec, params)
    T = cfg.train.steps
    sched = schedule(cfg)
    fixed_lr = sched.lr if sched.kind == "constant" and not sched.warmup else None
    clip_kind, clip_max = cfg.optim.clip.kind, cfg.optim.clip.max
    clip_on = clip_kind != "none"
    diverge_above = math.inf if cfg.train.diverge_above is None else cfg.train.diverge_above
    log_every = cfg.train.log_every
    plateau, stopper = plateau_of(cfg), stopper_of(cfg)
    watch_plateau = cfg.optim.schedule.metric if plateau is not None else ""
    watch_stop = cfg.train.early_stopping.metric if cfg.train.early_stopping else ""
    restore_best = bool(cfg.train.early_stopping and cfg.train.early_stopping.restore_best)
    best_params: Params | None = None  # restore_best: the parameters of the best row so far

    X, Y = data.X_train, data.y_train
    y_idx = Y.argmax(axis=-1)  # (n_train,)
    X_test, y_test_idx = data.X_test, data.y_test.argmax(axis=-1)
    has_test = data.n_test > 0
    n = data.n_train
    B = n if cfg.train.batch_size is None else min(cfg.train.batch_size, n)
    full_batch = B == n and not cfg.train.shuffle
    nb = -(-n // B)  # batches per epoch
    flat_weights = [p.ravel() for p in params.values()]  # views: updated with params, in place
    tele = cfg.telemetry
    sharp_every = tele.sharpness_every
    sharpness = telemetry.Sharpness() if sharp_every else None
    health = tele.activations
    hidden_w = [(k, list(params).index(k)) for k in spec.w_keys[:-1]]  # (W_l, its wsq index)
    n_ratio = len(hidden_w) if health else 0
    before: list[np.ndarray] = []  # the hidden W_l before a logged step's update

    snap_at = set(frame_steps(T, cfg.plots.gif_frames)) if cfg.plots.enabled else set()
    frames: list[Frame] = []
    rows: list[tuple] = []
    progress_every = max(1, T // 200)

    status, diverged_at, t = "completed", None, 0
    order = np.arange(n)
    Xb, Yb = X, Y
    last_acc = float("nan")
    isfinite, sqrt = math.isfinite, math.sqrt
    with np.errstate(all="ignore"):
        try:
            for t in range(T):
                if t == stop_at:
                    break
                if t in snap_at:
                    frames.append(Frame(t, {k: v.copy() for k, v in params.items()}))
                epoch, j = divmod(t, nb)
                if not full_batch:
                    if j == 0 and cfg.train.shuffle:
                        order = rs.permutation(n)
                    rows_b = order[j * B : (j + 1) * B]
                    Xb, Yb = X[rows_b], Y[rows_b]  # (B, 2), (B, C)

                out, cache = nn.forward(params, Xb, spec)  # (B, C)
                dl = float(nn.data_loss(cache, Yb, spec))
                rl = float(nn.penalty(params, spec, n))  # N = training rows, any batch size
                loss = dl + rl
                grads = nn.backward(params, cache, Yb, spec, n)
                # squared norms by BLAS dot (optim.sq_norm), in parameter order
                gsq = [float(g.ravel().dot(g.ravel())) for g in grads.values()]
                wsq = [float(w.dot(w)) for w in flat_weights]
                gnorm = sqrt(sum(gsq))
                bad = not (
                    isfinite(loss)
                    and isfinite(gnorm)
                    and all(map(isfinite, wsq))
                    and not loss > diverge_above
                )
                clipped = clip_on and not bad and optim.clip(grads, clip_kind, clip_max, gnorm)
                lr = optim.get_lr(sched, t) if fixed_lr is None else fixed_lr
                logged = bad or t % log_every == 0 or t == T - 1
                if logged:
                    if full_batch:
                        acc = nn.accuracy(out, y_idx)
                    else:
                        acc = accuracy_on(params, X, y_idx, spec)
                    last_acc = acc
                    test_acc = math.nan
                    if has_test:
                        test_acc = accuracy_on(params, X_test, y_test_idx, spec)
                        head: tuple = (t, epoch, lr, loss, dl, rl, acc, test_acc, gnorm)
                    else:
                        head = (t, epoch, lr, loss, dl, rl, acc, gnorm)
                    row: tuple = (*head, int(clipped), *gsq, *wsq)  # squared norms: sqrt below
                    if sharpness is not None:
                        s_val, s_it = math.nan, math.nan
                        if t % sharp_every == 0 and not bad:
                            s_val, s_it = sharpness.measure(params, cache, Yb, spec, n)
                        row += (s_val, s_it)
                    if health:
                        row += (*telemetry.layer_health(cache.hs[1:-1], spec.activation),)
                        row += (math.nan,) * n_ratio  # update_ratio_Wl: after the update
                        before = [params[k].copy() for k, _ in hidden_w]
                    rows.append(row)
                    if on_step is not None:
                        on_step(t + 1, loss, acc)
                elif on_step is not None and (t + 1) % progress_every == 0:
                    on_step(t + 1, loss, last_acc)
                if bad:
                    status, diverged_at = "diverged", t
                    break
                if logged and (watch_plateau or watch_stop):
                    seen = {"loss": loss, "data_loss": dl, "train_acc": acc, "test_acc": test_acc}
                    if plateau is not None and plateau.update(seen[watch_plateau]).reduced:
                        sched = replace(sched, lr=plateau.lr)  # from update t + 1 on
                    if stopper is not None:
                        decision = stopper.update(seen[watch_stop], t)
                        if restore_best and decision.best_row == t:
                            best_params = {k: v.copy() for k, v in params.items()}
                        if decision.stop:  # update t is not applied
                            status = "stopped_early"
                            if restore_best and best_params is not None:
                                for k, v in best_params.items():
                                    params[k][...] = v
                            break
                optim.update(ospec, params, grads, state, lr, t)
                if n_ratio and rows and rows[-1][0] == t:
                    ratios = [
                        telemetry.update_ratio(b, params[k], wsq[i])
                        for b, (k, i) in zip(before, hidden_w)
                    ]
                    rows[-1] = (*rows[-1][:-n_ratio], *ratios)
            else:
                t = T
        except KeyboardInterrupt:
            status = "interrupted"

        steps_done = t
        final_loss, final_acc = evaluate(params, X, Y, spec)
        _, final_test = evaluate(params, X_test, data.y_test, spec)
        if status == "completed" and not (
            math.isfinite(final_loss) and all(np.isfinite(p).all() for p in params.values())
        ):
            status, diverged_at = "diverged", T
    if snap_at and status != "diverged" and (not frames or frames[-1].step != steps_done):
        frames.append(Frame(steps_done, {k: v.copy() for k, v in params.items()}))

    metrics = metrics_frame(
        rows, spec, has_test, sharpness=sharpness is not None, activations=health
    )
    return RunResult(
        config=cfg,
        status=status,
        steps_done=steps_done,
        diverged_at=diverged_at,
        metrics=metrics,
        data=data,
        init_params=init_params,
        final_params=params,
        final={
            "loss": finite_or_none(final_loss),
            "train_acc": finite_or_none(final_acc),
            "test_acc": finite_or_none(final_test),
        },
        best=best_of(metrics, final_acc, steps_done),
        frames=frames,
    )
