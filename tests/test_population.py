"""Population training: K stacked networks give exactly what train() gives each one alone."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from xorlab import funcs, nn, optim
from xorlab.config import validate
from xorlab.population import group_configs, group_key, group_size, train_population
from xorlab.train import RunResult, train

BASE = {
    "data": {"n": 60},
    "model": {"hidden": [5]},
    "optim": {"lr": 0.5},
    "train": {"steps": 30},
    "plots": {"enabled": False},
}


def config(**sections):
    raw = {k: dict(v) for k, v in BASE.items()}
    for section, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return validate(raw)


def variants(cfg, changes):
    """Copies of cfg with dotted keys changed: [{"seed": 1, "optim.lr": 0.3}, ...]."""
    out = []
    for change in changes:
        raw = cfg.to_dict()
        for dotted, value in change.items():
            *path, last = dotted.split(".")
            node = raw
            for part in path:
                node = node[part]
            node[last] = value
        out.append(validate(raw))
    return out


def assert_same_run(alone: RunResult, batched: RunResult) -> None:
    """Byte for byte: metrics.csv, parameters, frames, status and summaries."""
    assert batched.metrics.to_csv() == alone.metrics.to_csv()
    assert (batched.status, batched.steps_done, batched.diverged_at) == (
        alone.status,
        alone.steps_done,
        alone.diverged_at,
    )
    assert batched.final == alone.final and batched.best == alone.best
    for which in ("init_params", "final_params"):
        a, b = getattr(alone, which), getattr(batched, which)
        assert list(a) == list(b)
        for k in a:
            assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, (which, k)
            assert a[k].tobytes() == b[k].tobytes(), (which, k)
    assert [f.step for f in batched.frames] == [f.step for f in alone.frames]
    for fa, fb in zip(alone.frames, batched.frames):
        assert all(fa.params[k].tobytes() == fb.params[k].tobytes() for k in fa.params)


def assert_batched_equals_alone(configs) -> list[RunResult]:
    batched = train_population(configs)
    assert len(batched) == len(configs)
    for cfg, result in zip(configs, batched):
        assert result.config is cfg
        assert_same_run(train(cfg), result)
    return batched


# per network: seed, learning rate and a few more numbers; the kinds are the group's
SPREAD = [
    {"seed": 0},
    {"seed": 1, "optim.lr": 0.3},
    {"seed": 2, "optim.lr": 0.8},
]

KINDS = {
    "sigmoid-mse-l2": {"regularization": {"kind": "l2", "strength": 0.01}},
    "relu-ce-bias": {
        "model": {"hidden": [8], "activation": "relu", "loss": "cross_entropy", "bias": True}
    },
    "tanh-two-layers": {"model": {"hidden": [6, 4], "activation": "tanh", "bias": True}},
    "adam": {"optim": {"kind": "adam", "lr": 0.05}},
    "momentum": {"optim": {"kind": "momentum", "lr": 0.2}},
    "clip-norm": {"optim": {"clip": {"kind": "norm", "max": 0.02}}},
    "clip-value": {"optim": {"clip": {"kind": "value", "max": 0.004}}},
    "l1": {"regularization": {"kind": "l1", "strength": 0.05}},
    "minibatch-shuffle": {"train": {"batch_size": 16, "shuffle": True}},
    "minibatch-in-order": {"train": {"batch_size": 25}},
    "minibatch-l2-short-last-batch": {
        "regularization": {"kind": "l2", "strength": 0.5},
        "train": {"batch_size": 7},
    },
    "minibatch-l1-shuffle": {
        "regularization": {"kind": "l1", "strength": 0.2},
        "train": {"batch_size": 16, "shuffle": True},
    },
    "float32": {"model": {"dtype": "float32", "bias": True}, "optim": {"kind": "adam"}},
    "test-set-log-every": {"data": {"test_fraction": 0.25}, "train": {"log_every": 7}},
    "gif-frames": {"plots": {"enabled": True, "gif_frames": 6}, "train": {"batch_size": 20}},
    "cosine-warmup": {"optim": {"schedule": {"kind": "cosine", "warmup": 5, "lr_min": 0.01}}},
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_batched_equals_alone(kind):
    assert_batched_equals_alone(variants(config(**KINDS[kind]), SPREAD))


def test_every_per_network_number_may_differ():
    """Schedules, penalty, Adam, clipping and divergence settings all vary inside one stack."""
    base = config(
        model={"dtype": "float32", "bias": True},
        optim={"kind": "adam", "clip": {"kind": "norm"}, "schedule": {"kind": "step", "every": 7}},
        regularization={"kind": "l2", "strength": 0.01},
        train={"batch_size": 16, "shuffle": True},
    )
    spread = [
        {"seed": 3, "optim.beta1": 0.8, "optim.clip.max": 0.01, "optim.schedule.gamma": 0.9},
        {"seed": 4, "optim.beta2": 0.99, "optim.eps": 1e-5, "regularization.strength": 0.3},
        {"seed": 5, "optim.schedule.every": 4, "optim.schedule.warmup": 6, "optim.lr": 0.02},
        {"seed": 6, "train.diverge_above": 10.0, "optim.clip.max": 100.0},
    ]
    assert_batched_equals_alone(variants(base, spread))


@pytest.mark.parametrize("kind", ["exponential", "inverse_time"])
def test_schedule_fields_per_network(kind):
    base = config(optim={"schedule": {"kind": kind}})
    spread = [
        {"optim.schedule.gamma": 0.9, "optim.schedule.decay": 0.5},
        {"seed": 1, "optim.schedule.gamma": 0.97, "optim.schedule.decay": 0.01},
    ]
    assert_batched_equals_alone(variants(base, spread))


def test_a_diverging_network_leaves_the_others_alone():
    base = config(
        model={"hidden": [20], "activation": "relu", "loss": "cross_entropy", "bias": True},
        train={"steps": 60, "log_every": 4},
    )
    spread = [{"optim.lr": 0.5}, {"seed": 1, "optim.lr": 1e6}, {"seed": 2, "optim.lr": 0.1}]
    results = assert_batched_equals_alone(variants(base, spread))  # warnings are errors here
    assert [r.status for r in results] == ["completed", "diverged", "completed"]
    diverged = results[1]
    assert diverged.diverged_at is not None and diverged.steps_done == diverged.diverged_at < 60
    assert diverged.metrics["step"].iloc[-1] == diverged.diverged_at
    assert len(results[0].metrics) == len(results[2].metrics) == 16  # 0, 4, ..., 56 and 59


def test_divergence_settings_per_network():
    """diverge_above per network, a diverging float32 minibatch run, and one at the last step."""
    above = config(optim={"lr": 50.0}, train={"steps": 40, "log_every": 5})
    spread = [
        {"train.diverge_above": 0.3},  # the loss climbs to 0.37 at step 5
        {"train.diverge_above": None},
        {"seed": 2, "train.diverge_above": 0.01},  # above it from the start
    ]
    results = assert_batched_equals_alone(variants(above, spread))
    assert [r.status for r in results] == ["diverged", "completed", "diverged"]

    f32 = config(
        model={"hidden": [20], "activation": "relu", "loss": "cross_entropy", "dtype": "float32"},
        optim={"kind": "momentum"},
        train={"batch_size": 16, "shuffle": True, "steps": 40},
    )
    spread = [{"optim.lr": 1e4}, {"seed": 1, "optim.lr": 0.05}, {"seed": 2, "optim.lr": 3e3}]
    results = assert_batched_equals_alone(variants(f32, spread))
    assert [r.status for r in results] == ["diverged", "completed", "diverged"]


def test_minibatch_penalty_uses_the_training_rows_in_the_stack():
    """Batches of 7 of 60 rows, lambda per network: reg_loss = lam/(2*60) * sum W**2 for each
    network (not lam/(2*7), nor lam/(2*4) at the short last batch), as train() has it."""
    base = config(regularization={"kind": "l2", "strength": 0.5}, train={"batch_size": 7})
    spread = [{"regularization.strength": 0.5}, {"seed": 1, "regularization.strength": 2.0}]
    results = assert_batched_equals_alone(variants(base, spread))
    for lam, r in zip((0.5, 2.0), results):
        m = r.metrics
        w2 = m["weight_norm_W1"] ** 2 + m["weight_norm_W2"] ** 2
        np.testing.assert_allclose(m["reg_loss"], lam / (2 * 60) * w2, rtol=1e-12)


def test_non_finite_outputs_have_no_accuracy_alone_or_stacked():
    """A network whose outputs turn NaN: its accuracy is NaN in its rows and None in its summary,
    the same bytes stacked as alone; its neighbours keep their accuracies."""
    base = config(
        data={"test_fraction": 0.25},
        model={"hidden": [5], "activation": "relu", "loss": "cross_entropy", "bias": True},
        train={"steps": 60, "log_every": 4},
    )
    spread = [{"optim.lr": 0.5}, {"seed": 1, "optim.lr": 1e8}, {"seed": 2, "optim.lr": 0.1}]
    results = assert_batched_equals_alone(variants(base, spread))
    assert [r.status for r in results] == ["completed", "diverged", "completed"]
    nan_run = results[1]
    assert nan_run.final == {"loss": None, "train_acc": None, "test_acc": None}
    last = nan_run.metrics.iloc[-1]
    assert np.isnan(last["train_acc"]) and np.isnan(last["test_acc"])
    for r in (results[0], results[2]):
        assert np.isfinite(r.metrics["train_acc"]).all() and r.final["train_acc"] is not None


def test_all_networks_diverging_ends_the_run():
    base = config(model={"hidden": [20]}, optim={"lr": 1e8}, train={"steps": 200})
    results = assert_batched_equals_alone(variants(base, [{"seed": 0}, {"seed": 1}]))
    assert all(r.status == "diverged" for r in results)


def test_a_group_of_one_is_train():
    cfg = config()
    (result,) = train_population([cfg])
    assert_same_run(train(cfg), result)
    assert train_population([]) == []


def test_configs_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="cannot share a stack"):
        train_population([config(), config(model={"hidden": [6]})])


def test_interrupt_keeps_what_was_done():
    def on_step(done):
        if done >= 10:
            raise KeyboardInterrupt

    results = train_population(variants(config(), SPREAD), on_step=on_step)
    assert [r.status for r in results] == ["interrupted"] * 3
    assert all(r.steps_done == 9 and len(r.metrics) == 10 for r in results)  # as train() does


# --- grouping ---------------------------------------------------------------------------------


def test_group_key_holds_shapes_and_kinds_not_numbers():
    cfg = config()
    for same in (
        {"seed": 7},
        {"name": "other"},
        {"optim.lr": 3.0},
        {"optim.momentum": 0.5},
        {"optim.clip.max": 9.0},
        {"regularization.strength": 0.5},
        {"train.diverge_above": 2.0},
        {"optim.schedule.gamma": 0.1},
    ):
        assert group_key(variants(cfg, [same])[0]) == group_key(cfg), same
    for different in (
        {"model.hidden": [6]},
        {"model.activation": "tanh"},
        {"model.dtype": "float32"},
        {"data.seed": 1},
        {"data.n": 61},
        {"optim.kind": "adam"},
        {"optim.clip.kind": "norm"},
        {"optim.schedule.kind": "cosine"},
        {"regularization.kind": "l1"},
        {"regularization.strength": 0.0},  # no penalty at all is another computation
        {"train.steps": 31},
        {"train.batch_size": 10},
        {"train.log_every": 2},
        {"plots.gif_frames": 3},
    ):
        assert group_key(variants(cfg, [different])[0]) != group_key(cfg), different
    no_penalty = variants(cfg, [{"regularization.kind": "none"}, {"regularization.strength": 0.0}])
    assert group_key(no_penalty[0]) == group_key(no_penalty[1])


def test_grouping_is_deterministic_and_depends_only_on_the_configs():
    h3, h6 = config(), config(model={"hidden": [6]})
    configs = variants(h3, [{"seed": s} for s in range(5)])
    configs.insert(2, h6)
    configs.append(variants(h6, [{"seed": 9}])[0])
    groups = group_configs(configs, max_k=2)
    assert groups == [[0, 1], [3, 4], [5], [2, 6]]
    again = [validate(c.to_dict()) for c in configs]  # equal configs, new objects
    assert group_configs(again, max_k=2) == groups
    assert group_configs(configs) == [[0, 1, 3, 4, 5], [2, 6]]  # default: cache-sized chunks
    assert sorted(i for g in groups for i in g) == list(range(len(configs)))


def test_chunks_are_near_equal_and_bounded():
    configs = variants(config(), [{"seed": s} for s in range(10)])
    assert [len(g) for g in group_configs(configs, max_k=4)] == [4, 3, 3]
    assert [len(g) for g in group_configs(configs, max_k=1)] == [1] * 10
    assert group_size(config(model={"hidden": [3]}, data={"n": 300})) > group_size(
        config(model={"hidden": [50]}, data={"n": 300})
    )
    assert group_size(config(model={"hidden": [1000]}, data={"n": 10_000})) == 1


# --- the batch-agnostic pieces population training relies on ------------------------------------


def test_scalars_per_network_round_like_python_floats():
    W = np.random.RandomState(0).randn(3, 4, 5).astype(np.float32)
    lam = np.array([0.1, 0.3, 1e-4])
    stacked = funcs.l2_penalty_der(W, lam, 7)
    for k in range(3):
        alone = funcs.l2_penalty_der(W[k], float(lam[k]), 7)  # numpy rounds lam/7 to float32
        assert stacked[k].dtype == np.float32 and stacked[k].tobytes() == alone.tobytes()
    assert funcs.scalar_for(0.5, W) == 0.5
    assert funcs.scalar_for(lam, W).shape == (3, 1, 1)


def test_sq_norm_each_is_the_same_blas_dot():
    rs = np.random.RandomState(1)
    for shape in ((4, 2, 3), (4, 1, 50), (4, 50, 2), (4, 300, 7)):
        for dtype in (np.float64, np.float32):
            a = (rs.randn(*shape) * 10).astype(dtype)
            each = optim.sq_norm_each(a)
            assert [float(v) for v in each] == [optim.sq_norm(a[k]) for k in range(shape[0])]


@pytest.mark.parametrize("kind", ["value", "norm"])
def test_clip_each_is_clip_per_network(kind):
    rs = np.random.RandomState(2)
    grads = {"W1": rs.randn(3, 2, 4), "b1": rs.randn(3, 1, 4)}
    bound = np.array([0.5, 1e9, 1.0])
    norms = np.sqrt(sum(optim.sq_norm_each(g) for g in grads.values()))
    singles = [{k: g[i].copy() for k, g in grads.items()} for i in range(3)]
    changed = optim.clip_each(grads, kind, bound, norms)
    for i, single in enumerate(singles):
        assert changed[i] == optim.clip(single, kind, float(bound[i]), float(norms[i]))
        for k in single:
            assert grads[k][i].tobytes() == single[k].tobytes()


@pytest.mark.parametrize("kind", ["constant", "step", "exponential", "inverse_time", "cosine"])
def test_get_lr_per_network_is_get_lr(kind):
    fields = {
        "lr": [0.1, 0.7, 3.0],
        "gamma": [0.5, 0.9, 0.99],
        "every": [3, 10, 10],
        "decay": [0.01, 0.5, 0.1],
        "lr_min": [0.0, 0.05, 0.5],
        "warmup": [0, 4, 12],
    }
    stacked = optim.Schedule(kind, steps=40, **{k: np.array(v) for k, v in fields.items()})
    for t in range(41):
        lrs = optim.get_lr(stacked, t)
        for i in range(3):
            alone = optim.Schedule(kind, steps=40, **{k: v[i] for k, v in fields.items()})
            assert lrs[i] == optim.get_lr(alone, t) and not math.isnan(lrs[i])


# --- the wide layout: networks fed the same rows, first layer as one product -----------------

WIDE_SHAPES = [
    ((2, 3, 2), "sigmoid", "mse", False),
    ((2, 5, 2), "relu", "cross_entropy", True),
    ((2, 6, 4, 2), "tanh", "mse", True),
]


@pytest.mark.parametrize("sizes,activation,loss,bias", WIDE_SHAPES)
def test_wide_step_is_each_network_alone(sizes, activation, loss, bias):
    """wide.step on K networks sharing X gives each the bytes nn.forward/nn.backward give it
    alone, wherever matches_alone vouches for the layout (it says how, or None)."""
    from xorlab import wide

    K, N = 7, 40
    spec = nn.NetSpec(
        sizes=sizes,
        activation=activation,
        loss=loss,
        bias=bias,
        penalty="l2",
        strength=np.linspace(0.01, 0.5, K),
    )
    rs = np.random.RandomState(3)
    X, Y = rs.randn(N, 2), np.eye(2)[rs.randint(0, 2, N)]
    nets = [nn.init_params(spec, "uniform", rs) for _ in range(K)]
    mode = wide.matches_alone(spec, K, N, "float64")
    assert mode is not None  # on this machine's BLAS; a None here falls back, still exact
    out, dl, grads = wide.step(nn.stack_params(nets), X, Y, spec, N, copy_wt=mode, ws={})
    for k, net in enumerate(nets):
        alone = replace(spec, strength=float(spec.strength[k]))
        out_k, cache = nn.forward(net, X, alone)
        assert out[k].tobytes() == out_k.tobytes()
        assert dl[k].tobytes() == np.float64(nn.data_loss(cache, Y, alone)).tobytes()
        g = nn.backward(net, cache, Y, alone, N)
        for key in net:
            assert grads[key][k].reshape(g[key].shape).tobytes() == g[key].tobytes(), key


def test_a_workspace_is_reused_and_gives_the_same_numbers():
    from xorlab import wide

    spec = nn.NetSpec(sizes=(2, 3, 2))
    rs = np.random.RandomState(0)
    X, Y = rs.randn(30, 2), np.eye(2)[rs.randint(0, 2, 30)]
    params = nn.stack_params([nn.init_params(spec, "uniform", rs) for _ in range(4)])
    ws: dict = {}
    first = wide.step(params, X, Y, spec, 30, ws=ws)
    kept = {k: v.copy() for k, v in first[2].items()}
    out1 = first[0].copy()
    n_arrays = len(ws)
    second = wide.step(params, X, Y, spec, 30, ws=ws)
    assert len(ws) == n_arrays and second[0] is first[0]  # the same arrays, overwritten
    assert second[0].tobytes() == out1.tobytes()
    assert all(second[2][k].tobytes() == kept[k].tobytes() for k in kept)


def test_a_layout_that_does_not_match_is_not_used(monkeypatch):
    """If the wide product ever gave other bits than per-network BLAS calls (another BLAS),
    matches_alone says None and the engine keeps the per-network stack: still exact."""
    from xorlab import wide

    monkeypatch.setattr(wide, "_matches_alone", lambda *key: False)
    assert wide.matches_alone(nn.NetSpec(sizes=(2, 3, 2)), 5, 60, "float64") is None
    used = []
    real_step = wide.step
    monkeypatch.setattr(wide, "step", lambda *a, **k: used.append(1) or real_step(*a, **k))
    assert_batched_equals_alone(variants(config(**KINDS["sigmoid-mse-l2"]), SPREAD))
    assert used == []


def test_the_full_batch_runs_the_wide_step(monkeypatch):
    from xorlab import wide

    calls = []
    real_backward = wide.backward  # the population runs wide.step's parts, keeping the cache
    monkeypatch.setattr(
        wide, "backward", lambda *a, **k: calls.append(a[0]["W1"].shape) or real_backward(*a, **k)
    )
    assert_batched_equals_alone(variants(config(), SPREAD))
    assert calls and set(calls) == {(3, 2, 5)}


def test_networks_without_a_hidden_layer_or_alone_keep_the_stack():
    from xorlab import wide

    assert wide.matches_alone(nn.NetSpec(sizes=(2, 2)), 5, 60, "float64") is None
    assert wide.matches_alone(nn.NetSpec(sizes=(2, 3, 2)), 1, 60, "float64") is None
    assert_batched_equals_alone(variants(config(model={"hidden": []}), SPREAD))


@pytest.mark.parametrize("poison", [None, 1])
def test_wide_accuracies_are_nn_accuracies(poison):
    from xorlab import wide

    rs = np.random.RandomState(1)
    out = rs.rand(4, 50, 2)
    out[2, :, :] = out[2, :, ::-1]
    out[3, 7, 1] = out[3, 7, 0]  # a tie: class 0
    y = rs.randint(0, 2, 50)
    if poison is not None:
        out[poison, 3, 0] = np.nan
    finite = np.isfinite(out).all(axis=(1, 2))
    got, want = wide.accuracies(out, y, finite), nn.accuracies(out, y)
    assert got.tobytes() == want.tobytes()
