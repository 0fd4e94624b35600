"""Plots: files written and decodable, edge cases render, the boundary grid's numbers."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xorlab import gif, plots
from xorlab.config import validate
from xorlab.nn import forward
from xorlab.train import RunResult, net_spec, train

PNGS = ["loss.png", "accuracy.png", "boundary.png", "panel.png"]


def _run(cfg: dict) -> RunResult:
    return train(validate(cfg))


@pytest.fixture(scope="module")
def short_run() -> RunResult:
    return _run(
        {
            "name": "short",
            "model": {"hidden": [8], "activation": "tanh", "bias": True},
            "optim": {"lr": 0.5},
            "train": {"steps": 30},
            "plots": {"gif_frames": 5, "single": True},
        }
    )


def _open(path):
    im = Image.open(io.BytesIO(path.read_bytes()))
    im.load()
    return im


@pytest.fixture(scope="module")
def rendered(short_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("plots")
    return out, plots.render_run(short_run, out)


def test_render_run_writes_decodable_pngs_and_gif(short_run, rendered):
    out, written = rendered
    assert [p.name for p in written] == [*PNGS, "training.gif"]
    assert all(p.parent == out for p in written)
    for name in PNGS:
        im = _open(out / name)
        assert im.format == "PNG"
        assert im.width >= 600 and im.height >= 400, (name, im.size)
    panel = _open(out / "panel.png")
    assert panel.width > 2.5 * panel.height  # three plots side by side
    gif = _open(out / "training.gif")
    assert gif.format == "GIF"
    assert gif.n_frames == len(short_run.frames) == 5
    assert 800 <= gif.width <= 2000 and 250 <= gif.height <= 800
    assert (out / "training.gif").stat().st_size < 2_000_000
    assert not list(out.glob(".*.tmp"))  # atomic writes left no temp files


def test_by_default_only_the_panel_and_the_gif(short_run, monkeypatch):
    # the single plots repeat the panel's cells: drawn only with plots.single
    monkeypatch.setattr(plots, "figure_png", lambda fig: b"png")  # only the logic
    monkeypatch.setattr(gif, "training_gif", lambda *a, **k: b"gif")
    plain = dataclasses.replace(short_run, config=short_run.config.model_copy(
        update={"plots": short_run.config.plots.model_copy(update={"single": False})}))  # fmt: skip
    assert list(plots.render_run_bytes(plain)) == ["panel.png", "training.gif"]
    assert list(plots.render_run_bytes(short_run)) == [*PNGS, "training.gif"]


def test_gif_frames_differ_and_keep_white(rendered):
    gif = Image.open(rendered[0] / "training.gif")
    frames = []
    for k in (0, gif.n_frames - 1):
        gif.seek(k)
        frames.append(np.asarray(gif.convert("RGB")))
    assert not np.array_equal(frames[0], frames[1])  # curves grow, cursor and counter move
    assert (frames[0][2, 2] == 255).all()  # the white background survives the palette


def test_gif_false_writes_no_gif(short_run, tmp_path, monkeypatch):
    def no_gif(*args, **kwargs):
        raise AssertionError("training_gif called with gif=False")

    monkeypatch.setattr(gif, "training_gif", no_gif)
    monkeypatch.setattr(plots, "figure_png", lambda fig: b"png")  # skip drawing: only the logic
    written = plots.render_run(short_run, tmp_path, gif=False)
    assert [p.name for p in written] == PNGS
    assert not (tmp_path / "training.gif").exists()
    one_frame = dataclasses.replace(short_run, frames=short_run.frames[:1])
    assert [p.name for p in plots.render_run(one_frame, tmp_path)] == PNGS  # < 2 frames: no GIF
    # the in-memory form a sweep worker sends back
    assert list(plots.render_run_bytes(short_run, gif=False)) == PNGS


def test_diverged_run_renders(tmp_path):
    r = _run(
        {
            "name": "boom",
            "model": {"hidden": [50], "activation": "relu", "loss": "cross_entropy", "bias": True},
            "optim": {"lr": 1e6},
            "train": {"steps": 50},
            "plots": {"gif_frames": 3, "single": True},
        }
    )
    assert r.status == "diverged"
    written = plots.render_run(r, tmp_path, gif=False)  # the GIF's frames are all before it
    assert [p.name for p in written] == PNGS
    for p in written:
        _open(p)


def test_nonfinite_weights_render(short_run):
    bad = {k: np.full_like(v, np.nan) for k, v in short_run.final_params.items()}
    r = dataclasses.replace(short_run, final_params=bad, status="diverged", diverged_at=30)
    spec = net_spec(r.config)
    X = plots._all_points(r.data)
    grid, title = plots._boundary_source(r, spec, X)  # falls back to the last finite snapshot
    assert np.isfinite(grid[2]).all()
    assert f"at step {r.frames[-1].step}" in title and "not finite" in title
    # nothing finite at all: a grey boundary with a note (drawn here through the GIF's panel)
    assert np.isnan(plots.boundary_grid(bad, spec, X, 20)[2]).all()
    frames = [dataclasses.replace(f, params=bad) for f in r.frames[:2]]
    assert Image.open(io.BytesIO(gif.training_gif(frames, r.metrics, r.data, spec))).n_frames == 2


@pytest.mark.parametrize(
    "cfg",
    [
        {"train": {"steps": 1}},  # one logged row, 2 frames
        {
            "model": {"hidden": []},  # no hidden layer, with a test set and a penalty
            "data": {"test_fraction": 0.3},
            "regularization": {"kind": "l1", "strength": 0.1},
            "train": {"steps": 20},
        },
    ],
    ids=["one-row", "no-hidden-with-test"],
)
def test_edge_cases_render(cfg, tmp_path):
    r = _run({**cfg, "plots": {"gif_frames": 2}})
    spec = net_spec(r.config)
    grid = plots.boundary_grid(r.final_params, spec, plots._all_points(r.data), 50)
    panel = plots.panel_figure(r.metrics, grid, r.data, title=plots.run_title(r.config))
    Image.open(io.BytesIO(plots.figure_png(panel.fig))).load()  # all three plots drawn
    if len(r.metrics) == 1:
        out = gif.training_gif(r.frames, r.metrics, r.data, spec)
        assert Image.open(io.BytesIO(out)).n_frames == 2


def test_boundary_grid_shape_and_range(short_run):
    spec = net_spec(short_run.config)
    X = short_run.data.X_train
    xx, yy, p = plots.boundary_grid(short_run.final_params, spec, X, 25)
    assert xx.shape == yy.shape == p.shape == (25, 25)
    assert np.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0
    # the grid covers the data with a margin; rows run along y, columns along x
    assert xx.min() < X[:, 0].min() and xx.max() > X[:, 0].max()
    assert yy.min() < X[:, 1].min() and yy.max() > X[:, 1].max()
    assert (np.diff(xx[0]) > 0).all() and (np.diff(yy[:, 0]) > 0).all()


def test_boundary_grids_of_a_stack_are_each_networks_grid(short_run):
    spec = net_spec(short_run.config)
    X = short_run.data.X_train
    params = [f.params for f in short_run.frames]
    bad = {k: np.full_like(v, np.nan) for k, v in params[0].items()}
    stack = [*params, bad]
    grids = plots.boundary_grids(stack, spec, X, 17, chunk=2)  # chunks of 2, the last of 1
    assert len(grids) == len(stack)
    for p, (xx, yy, prob) in zip(stack, grids):
        want = plots.boundary_grid(p, spec, X, 17)
        np.testing.assert_array_equal(xx, want[0])
        np.testing.assert_array_equal(yy, want[1])
        np.testing.assert_allclose(prob, want[2], rtol=1e-12, atol=1e-15)  # NaN where NaN
    assert np.isnan(grids[-1][2]).all()


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_boundary_half_is_the_argmax_boundary(loss):
    r = _run({"model": {"hidden": [5], "loss": loss}, "optim": {"lr": 0.5}, "train": {"steps": 5}})
    spec = net_spec(r.config)
    xx, yy, p = plots.boundary_grid(r.final_params, spec, r.data.X_train, 30)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    out, _ = forward(r.final_params, pts, spec)
    clear = np.abs(p.ravel() - 0.5) > 1e-9
    np.testing.assert_array_equal((p.ravel() > 0.5)[clear], (out.argmax(axis=1) == 1)[clear])


def test_boundary_grid_nonfinite_weights_give_nan_without_warnings(short_run):
    spec = net_spec(short_run.config)
    params = {k: v.copy() for k, v in short_run.final_params.items()}
    params["W1"][0, 0], params["b1"][0] = np.inf, -np.inf  # z = x0*inf - inf: nan where x0 >= 0
    _, _, p = plots.boundary_grid(params, spec, short_run.data.X_train, 20)
    assert np.isnan(p).any()
    finite = p[np.isfinite(p)]
    assert ((finite >= 0) & (finite <= 1)).all()


def _metrics(loss, reg=None, test=False) -> pd.DataFrame:
    n = len(loss)
    reg = np.zeros(n) if reg is None else np.asarray(reg, float)
    df = pd.DataFrame(
        {
            "step": np.arange(n),
            "loss": loss,
            "data_loss": np.asarray(loss, float) - reg,
            "reg_loss": reg,
            "train_acc": np.linspace(0.5, 1.0, n),
        }
    )
    if test:
        df["test_acc"] = np.linspace(0.4, 0.9, n)
    return df


def _ax():
    return plots.new_figure(6, 4).add_subplot()


def test_loss_axis_is_log_only_for_a_wide_positive_span():
    ax = _ax()
    plots.draw_loss(ax, _metrics(np.geomspace(10.0, 0.01, 50)))
    assert ax.get_yscale() == "log"
    ax = _ax()
    plots.draw_loss(ax, _metrics(np.linspace(0.3, 0.2, 50)))
    assert ax.get_yscale() == "linear"


def test_loss_with_nonfinite_and_huge_values():
    loss = np.array([0.7, 0.5, 1e10, 1e200, 1e300, np.inf, np.nan])
    ax = _ax()
    lines = plots.draw_loss(ax, _metrics(loss), diverged_at=6)
    assert ax.get_yscale() == "log"
    x, y = lines["loss"].get_data()
    assert list(x) == [0, 1, 2, 3]  # 1e300 is past PLOT_MAX, inf and nan are dropped
    assert "3 loss values" in ax.get_xlabel()
    ax.get_figure().canvas.draw()  # no overflow while drawing
    ax = _ax()
    assert plots.draw_loss(ax, _metrics(np.full(3, np.nan))) == {}
    ax.get_figure().canvas.draw()


def test_penalty_shown_on_its_own_axis_when_nonzero():
    m = _metrics(np.linspace(0.7, 0.2, 40), reg=np.linspace(1e-6, 2e-6, 40), test=True)
    ax = _ax()
    lines = plots.draw_loss(ax, m)
    assert set(lines) == {"loss", "data_loss", "reg_loss"}
    assert lines["reg_loss"].axes is not ax
    ax = _ax()
    assert set(plots.draw_accuracy(ax, m)) == {"train_acc", "test_acc"}
    assert ax.get_ylim()[0] < 0 and ax.get_ylim()[1] > 1


def test_run_title_names_the_key_facts():
    cfg = validate(
        {
            "name": "t1",
            "model": {"hidden": [50, 20], "activation": "relu", "loss": "cross_entropy"},
            "optim": {"lr": 0.3, "clip": {"kind": "norm", "max": 2.0}},
            "regularization": {"kind": "l1", "strength": 0.01},
        }
    )
    title = plots.run_title(cfg, status="diverged", diverged_at=17)
    for part in ("t1", "[50, 20] relu", "cross_entropy", "lr 0.3", "l1 λ=0.01", "clip norm 2"):
        assert part in title
    assert "DIVERGED at step 17" in title
    assert "schedule" not in title
    plain = plots.run_title(validate({"optim": {"schedule": {"kind": "cosine"}}}))
    assert "cosine schedule" in plain and "clip" not in plain and "DIVERGED" not in plain
    for line in plots.wrap_title(title, 40).splitlines():
        assert len(line) <= 40


def test_the_runs_gif_animates_its_png_panel_with_the_same_look(short_run, rendered):
    """render_run's GIF reuses the panel its PNGs were drawn from (resized for the single plots,
    then restored): it looks as a GIF built from scratch does, frame for frame."""
    out, _ = rendered
    r = short_run
    title = plots.run_title(r.config, status=r.status, diverged_at=r.diverged_at)
    fresh = gif.training_gif(r.frames, r.metrics, r.data, net_spec(r.config), title=title)
    reused, alone = Image.open(out / "training.gif"), Image.open(io.BytesIO(fresh))
    assert reused.size == alone.size and reused.n_frames == alone.n_frames == len(r.frames)
    for k in range(alone.n_frames):
        reused.seek(k)
        alone.seek(k)
        a, b = (_blocks(np.asarray(im.convert("L"), dtype=float)) for im in (reused, alone))
        # the layouts were measured at 100 and at 80 dpi: edges may sit a pixel apart, which
        # 8 x 8 blocks average away; a plot missing or out of place would not be
        assert np.abs(a - b).mean() < 2.0 and np.abs(a - b).max() < 40, k


def _blocks(img: np.ndarray, n: int = 8) -> np.ndarray:
    h, w = (img.shape[0] // n) * n, (img.shape[1] // n) * n
    return img[:h, :w].reshape(h // n, n, w // n, n).mean(axis=(1, 3))


def test_a_one_step_runs_loss_axis_is_plain_with_whole_steps():
    # one logged step; total and data loss differ by the penalty, 1.3e-7
    m = _metrics(np.array([0.2538597627]), reg=np.array([1.343e-7]))
    fig = plots.new_figure(6, 4)
    ax = fig.add_subplot()
    lines = plots.draw_loss(ax, m)
    plots.draw_accuracy(acc := fig.add_subplot(2, 1, 2), m)
    fig.canvas.draw()
    assert ax.yaxis.get_offset_text().get_text() == ""  # was '1e-7+2.53859e-1'
    lo, hi = ax.get_ylim()
    assert hi - lo >= 0.02 * 0.2538  # the two losses drawn together, not at opposite ends
    right = lines["reg_loss"].axes
    assert "+" not in right.yaxis.get_offset_text().get_text()  # a ×1e-7 factor, no offset
    for a in (ax, acc):
        ticks = [t for t in a.get_xticks() if a.get_xlim()[0] <= t <= a.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_fit_title_breaks_at_the_parenthesis_and_never_runs_wider_than_the_figure():
    t = (
        "Decision boundaries after training "
        "(the lowest seed of each point; red: class 0, blue: class 1)"
    )
    assert plots.fit_title(t, 12.5, 12) == t
    assert plots.fit_title(t, 7.7, 12) == (
        "Decision boundaries after training\n"
        "(the lowest seed of each point; red: class 0, blue: class 1)"
    )
    assert plots.fit_title(t, 5.4, 12).splitlines() == [
        "Decision boundaries after training",
        "(the lowest seed of each point;",
        "red: class 0, blue: class 1)",
    ]
