"""Reports: the HTML is whole and self-contained, images decode, Markdown links resolve, damaged
sweeps still render every section, bad paths are XorlabErrors."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xorlab.config import validate
from xorlab.errors import XorlabError
from xorlab.report import build_report
from xorlab.report.figs import fmt
from xorlab.report.read import blowup
from xorlab.report.sweep import SECTIONS
from xorlab.report.sweep_figs import median_band
from xorlab.runner import run_config
from xorlab.store import SweepStore
from xorlab.sweep import build_sweep
from xorlab.sweeprun import load_for_resume, run_sweep

from .conftest import damage_metrics, drop_entry, edit_entry, set_metrics

TINY = {
    "data": {"kind": "xor", "n": 40},
    "model": {"hidden": [4], "activation": "relu", "loss": "cross_entropy", "bias": True},
    "optim": {"lr": 0.5},
    "train": {"steps": 30, "diverge_above": 100.0},
}


class Page(HTMLParser):
    """Collects what the tests look at and checks that block tags are balanced."""

    BLOCKS = ("html", "head", "body", "main", "div", "figure", "table", "ul", "nav")

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.h2: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        if tag in ("a", "link", "script"):
            self.links.append(f"{tag} {a.get('href') or a.get('src') or ''}")
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")
        if tag in self.BLOCKS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False
        if tag in self.BLOCKS:
            assert self.stack and self.stack[-1] == tag, (tag, self.stack)
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h2:
            self.h2[-1] += data


def check_report(folder: Path) -> Page:
    """index.html parses, is self-contained, its images decode; report.md's links resolve."""
    html = (folder / "index.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    page.close()
    assert page.stack == [], page.stack
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert not any(link.startswith("script") for link in page.links)
    assert page.imgs
    for src in page.imgs:
        m = re.fullmatch(r"data:image/(png|gif);base64,([A-Za-z0-9+/=]+)", src)
        assert m, src[:60]
        data = base64.b64decode(m.group(2), validate=True)
        im = Image.open(io.BytesIO(data))
        im.load()
        assert im.format == m.group(1).upper()
    md = (folder / "report.md").read_text(encoding="utf-8")
    targets = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(targets) == len(page.imgs)
    for t in targets:
        assert (folder / t).is_file(), t
        Image.open(folder / t).verify()
    return page


# --- a run --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    raw = {**TINY, "name": "tiny", "optim": {"lr": 0.5, "clip": {"kind": "norm", "max": 0.5}}}
    raw["plots"] = {"enabled": True, "gif_frames": 3}
    return run_config(validate(raw), runs).folder


def test_run_report(run_folder: Path) -> None:
    out = build_report(run_folder)
    assert out == run_folder / "report"
    page = check_report(out)
    for heading in (
        "The tutorial's panel",
        "Loss and accuracy",
        "Optimizer",
        "Decision boundary",
        "Training animation",
        "Config and summary",
    ):
        assert heading in page.h2
    assert any(src.startswith("data:image/gif") for src in page.imgs)
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "report.md", "panel.png", "optimizer.png", "training.gif"} <= names
    assert "Completed" in "".join(page.text)


def test_run_report_without_weights_or_metrics(run_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.yaml", "summary.json"):
        (broken / name).write_bytes((run_folder / name).read_bytes())
    (broken / "metrics.csv").write_text('step,loss\n1,2,3\n"\x00')
    out = build_report(broken, out=tmp_path / "rep")
    text = (out / "report.md").read_text()
    assert "metrics.csv cannot be read" in text
    assert "No decision boundary: no final.npz" in text


# --- a sweep with every kind of trouble ----------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    spec = {
        "name": "trouble",
        "config": {**TINY, "name": "trouble", "plots": {"enabled": False}},
        "variants": [
            {"name": "ok", "set": {}},
            {"name": "explode", "set": {"optim.lr": 50.0}},
            {"name": "clipped", "set": {"optim.lr": 50.0, "optim.clip": {"kind": "norm"}}},
        ],
        "seeds": [0, 1, 2],
    }
    sweep = build_sweep(spec, file="s.yaml", base_dir=root)
    folder = run_sweep(sweep, root / "runs", jobs=1).folder
    # member 1 failed, 2 was interrupted, 7 never ran, 8's metrics part is damaged
    edit_entry(folder, 1, status="failed", steps_done=0, final={"loss": None, "train_acc": None},
               note="RuntimeError: boom in member 1")  # fmt: skip
    failed = folder / "members" / sweep.members[1].label
    failed.mkdir(parents=True)
    (failed / "error.txt").write_text("Traceback ...\nRuntimeError: boom in member 1\n")
    edit_entry(folder, 2, status="interrupted", steps_done=10)
    drop_entry(folder, 7)
    damage_metrics(folder, 8)
    return folder


def test_sweep_report_renders_every_section(sweep_folder: Path) -> None:
    out = build_report(sweep_folder)
    page = check_report(out)
    for heading in (*SECTIONS, "Variants"):
        assert heading in page.h2, (heading, page.h2)
    text = " ".join(page.text)
    assert "RuntimeError: boom in member 1" in text
    assert "metrics cannot be read" in text
    for status in ("failed", "interrupted", "pending", "diverged", "completed"):
        assert status in text
    assert "explode" in text and "diverged in" in text
    assert "Changing one setting" in text  # explode -> clipped is a single changed setting
    assert {"loss_curves.png", "heatmap.png", "boundaries.png", "divergence.png"} <= {
        p.name for p in out.iterdir()
    }
    assert "Sharpness × lr" not in page.h2  # no member logged sharpness (a damaged part too)


def test_sweep_report_options(sweep_folder: Path, tmp_path: Path) -> None:
    out = build_report(
        sweep_folder, out=tmp_path / "r", x="variant", y="seed", metric="final_train_acc"
    )
    assert out == tmp_path / "r"
    md = (out / "report.md").read_text()
    assert "final train accuracy by variant and seed" in md
    assert not (sweep_folder / "report" / "nothing").exists()


def test_big_sweep_caps_the_boundary_grid(tmp_path: Path) -> None:
    spec = {
        "config": {
            **TINY,
            "name": "big",
            "train": {"steps": 5},
            "plots": {"enabled": False},
            "data": {"kind": "xor", "n": 12},
        },
        "grid": {"optim.lr": [0.1 * (i + 1) for i in range(20)], "model.hidden": [[2], [3]]},
    }
    folder = run_sweep(build_sweep(spec, file="s.yaml", base_dir=tmp_path), tmp_path).folder
    out = build_report(folder)
    md = (out / "report.md").read_text()
    assert "36 of 40 points drawn, evenly spaced through the sweep's order; 4 left out." in md
    page = check_report(out)
    assert "Members" in page.h2


# --- bad input ----------------------------------------------------------------------------------


def test_bad_paths_raise_xorlab_error(tmp_path: Path, sweep_folder: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    file = tmp_path / "f.txt"
    file.write_text("x")
    for path in (empty, tmp_path / "missing", file):
        with pytest.raises(XorlabError) as err:
            build_report(path)
        assert err.value.file == str(path)
    assert not (empty / "report").exists()
    hollow = tmp_path / "hollow"
    hollow.mkdir()
    (hollow / "sweep.yaml").write_text("name: hollow\nmembers: []\n")
    with pytest.raises(XorlabError, match="empty sweep"):
        build_report(hollow)
    with pytest.raises(XorlabError, match="unknown metric"):
        build_report(sweep_folder, out=tmp_path / "x", metric="accuracy")
    with pytest.raises(XorlabError, match="not a key this sweep varies"):
        build_report(sweep_folder, out=tmp_path / "x", x="optim.momentum")
    assert not (tmp_path / "x").exists()


# --- pieces -------------------------------------------------------------------------------------


def test_blowup_counts_rises_above_ten_times_the_running_minimum() -> None:
    steps = np.arange(6.0)
    # running minimum before each step: 1.0, 0.5, 0.5, 0.2, 0.2 -> ratios 0.5, 1.8, 0.4, 15, 1.5
    loss = np.array([1.0, 0.5, 0.9, 0.2, 3.0, 0.3])
    assert blowup(steps, loss) == (4, pytest.approx(15.0), pytest.approx(15.0), 4)
    assert blowup(steps, np.array([1.0, 0.9, np.nan, 0.8, np.inf, 0.7])) == (None, None, 1.0, None)
    assert blowup(steps[:1], loss[:1]) == (None, None, None, None)


def test_blowup_keeps_the_first_and_the_largest_apart() -> None:
    # ratios to the lowest loss before: 12 at step 10 (the first blow-up), 1, 47 at step 30
    steps = np.array([0.0, 10.0, 20.0, 30.0])
    loss = np.array([0.1, 1.2, 0.1, 4.7])
    b = blowup(steps, loss)
    assert (b.first_step, b.max_step) == (10, 30)
    assert b.first_ratio == pytest.approx(12.0) and b.max_ratio == pytest.approx(47.0)


def test_median_band_breaks_where_no_curve_has_a_value() -> None:
    a = (np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, np.inf, 5.0]))
    b = (np.array([0.0, 1.0]), np.array([3.0, 4.0]))
    xs, med, lo, hi = median_band([a, b], log=False)
    assert xs.tolist() == [0.0, 1.0, 2.0, 3.0]
    # step 2: no finite value, NaN (the line breaks); step 3: only a has one
    np.testing.assert_array_equal(med, [2.0, 3.0, np.nan, 5.0])
    np.testing.assert_array_equal(lo, [1.0, 2.0, np.nan, 5.0])
    np.testing.assert_array_equal(hi, [3.0, 4.0, np.nan, 5.0])


# --- what the words say ---------------------------------------------------------------------------


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _with_losses(run: Path, losses: list[float]) -> None:
    """Rewrite metrics.csv with these losses at steps 0, 1, 2, ... (other columns dropped)."""
    rows = "".join(f"{i},{v!r}\n" for i, v in enumerate(losses))
    (run / "metrics.csv").write_text("step,loss\n" + rows)


def test_run_report_gives_the_first_blowup_and_the_largest_each_with_its_step(
    run_folder: Path, tmp_path: Path
) -> None:
    from xorlab.report.read import read_run
    from xorlab.report.run import status_sentence

    run = _copy_run(run_folder, tmp_path / "run")
    # lowest loss before each step: 1, 1, 0.5, 0.5 -> ratios 12 (step 1), 0.5, 47 (step 3), 0.8
    _with_losses(run, [1.0, 12.0, 0.5, 23.5, 0.4])
    text = status_sentence(read_run(run))
    assert text.endswith(
        "The loss **blew up** at step 1: it rose to 12× the lowest value reached before (more "
        "than 10× counts as a blow-up). The largest rise came at step 3: 47× the lowest value "
        "before it."
    ), text
    _with_losses(run, [1.0, 12.0, 0.5, 0.4])  # the first blow-up is also the largest
    assert status_sentence(read_run(run)).endswith(
        "The loss **blew up** at step 1: it rose to 12× the lowest value reached before (more "
        "than 10× counts as a blow-up)."
    )


def test_run_report_says_which_curve_blew_up_total_data_or_both(
    run_folder: Path, tmp_path: Path
) -> None:
    """With a penalty the total and the data loss differ: the sentence names the curve that
    spiked, each with its own numbers (a penalty's floor can hide a data-loss spike)."""
    from xorlab.report.read import read_run
    from xorlab.report.run import status_sentence

    run = _copy_run(run_folder, tmp_path / "run")

    def write(total: list[float], data: list[float]) -> str:
        rows = "".join(f"{i},{t!r},{d!r}\n" for i, (t, d) in enumerate(zip(total, data)))
        (run / "metrics.csv").write_text("step,loss,data_loss\n" + rows)
        return status_sentence(read_run(run))

    # data loss: 1, 0.1, 1.5 (15x at step 2), 0.1, 2.0 (20x at step 4); total = data + 0.4
    data = [1.0, 0.1, 1.5, 0.1, 2.0]
    text = write([d + 0.4 for d in data], data)
    assert text.endswith(
        "The data loss **blew up** at step 2: it rose to 15× the lowest value reached before "
        "(more than 10× counts as a blow-up); the total loss did not (at most 4.8× at step 4): "
        "the penalty is a floor under the total loss that hides the spike. The data loss's "
        "largest rise came at step 4: 20× the lowest value before it."
    ), text
    # both spike at step 1 (total 12x, data 24x), and rise most at step 3
    text = write([1.0, 12.0, 0.5, 25.0], [0.5, 12.0, 0.1, 24.0])
    assert text.endswith(
        "The total and the data loss both **blew up** at step 1: they rose to 12× and 24× the "
        "lowest values reached before (more than 10× counts as a blow-up). The largest rise of "
        "both came at step 3: 50× (total) and 240× (data loss)."
    ), text
    # neither: both numbers given
    text = write([1.0, 0.5, 1.0], [0.9, 0.4, 0.8])
    assert text.endswith(
        "No blow-up: neither the total loss (at most 2× at step 2) nor the data loss (at most "
        "2× at step 2) rose above 10× its running minimum."
    ), text
    # no penalty (data loss == total loss): one curve, "the loss", as before
    text = write([1.0, 12.0, 0.5], [1.0, 12.0, 0.5])
    assert text.endswith(
        "The loss **blew up** at step 1: it rose to 12× the lowest value reached before (more "
        "than 10× counts as a blow-up)."
    ), text


def test_huge_ratios_are_written_in_scientific_notation(run_folder: Path, tmp_path: Path) -> None:
    run = _copy_run(run_folder, tmp_path / "run")
    _with_losses(run, [1e-200, 1e50, 1e-200])
    out = build_report(run, out=tmp_path / "rep")
    md = (out / "report.md").read_text()
    assert "it rose to 1e+250× the lowest value" in md
    assert not re.search(r"\d{8}", md.split("## ")[0])  # no 250-digit integer in the opening


def test_fmt_is_plain_below_a_million_and_scientific_past_it() -> None:
    from xorlab.report.figs import fmt, fmt_ratio

    assert [fmt(v, 3) for v in (0.0163, 12, 47.27, 1834.2, 123456.7, 4.7e250, 1.2e-5)] == [
        "0.0163",
        "12",
        "47.3",
        "1834",
        "123457",
        "4.7e+250",
        "1.2e-05",
    ]
    assert fmt(10**250) == "1e+250" and fmt(999_999) == "999999" and fmt(None) == "–"
    assert fmt_ratio(11.75) == "11.8×" and fmt_ratio(float("inf")) == "–"
    from xorlab.report.read import show

    assert [show(v) for v in (0.003, 12345.6, 1e6, 2.5e-7)] == [
        "0.003",
        "12346",
        "1e+06",
        "2.5e-07",
    ]


def test_a_loss_above_diverge_above_is_not_called_non_finite(tmp_path: Path) -> None:
    from xorlab.report.read import read_run
    from xorlab.report.run import status_sentence

    raw = {**TINY, "name": "above", "optim": {"lr": 50.0}, "plots": {"enabled": False}}
    folder = run_config(validate(raw), tmp_path).folder
    view = read_run(folder)
    assert view.status == "diverged" and view.diverge_cause == "above"
    assert view.diverge_loss is not None and view.diverge_loss > 100.0
    text = status_sentence(view)
    assert text.startswith(
        f"**Diverged** at step {view.diverged_at} (a loss of {fmt(view.diverge_loss)}, above "
        "`train.diverge_above` = 100); training stopped after"
    ), text
    assert "non-finite" not in text


def test_sweep_says_why_its_members_diverged(sweep_folder: Path, tmp_path: Path) -> None:
    md = (build_report(sweep_folder, out=tmp_path / "r") / "report.md").read_text()
    # 4 members crossed diverge_above; member 8's metrics.csv is damaged, so its row is unknown
    assert (
        "or diverged (4: the loss rose above `train.diverge_above` = 100; 1: metrics.csv does "
        "not show why)."
    ) in md
    assert "non-finite" not in md.split("## ")[0]


def test_a_corrupt_summary_is_damaged_and_named(run_folder: Path, tmp_path: Path) -> None:
    run = _copy_run(run_folder, tmp_path / "run")
    (run / "summary.json").write_text('{"status": "compl')
    md = (build_report(run, out=tmp_path / "rep") / "report.md").read_text()
    assert "**Damaged**: summary.json: not valid JSON (line 1)." in md
    assert "no summary.json yet" not in md and "still running" not in md


# --- sweeps cut short, and sweeps with extreme values -------------------------------------------


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six members, one per learning rate, all completed: 5 steps on 12 rows."""
    root = tmp_path_factory.mktemp("lr")
    spec = {
        "name": "lrs",
        "config": {
            **TINY,
            "name": "lrs",
            "data": {"kind": "xor", "n": 12},
            "train": {"steps": 5},
            "plots": {"enabled": False},
        },
        "grid": {"optim.lr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
    }
    return run_sweep(build_sweep(spec, file="s.yaml", base_dir=root), root / "runs").folder


def _copy_sweep(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report"))
    return dst


def test_a_sweep_cut_short_counts_only_what_was_trained(lr_sweep: Path, tmp_path: Path) -> None:

    sweep = _copy_sweep(lr_sweep, tmp_path / "cut")
    for i in range(3, 6):  # never started: no record
        drop_entry(sweep, i)
    edit_entry(sweep, 2, status="interrupted", steps_done=2)
    md = (build_report(sweep) / "report.md").read_text()
    assert (
        "This sweep has **6** networks: 6 values of `lr`, 5 steps each; **2** of them trained to "
        "the end (completed or diverged). Status: 2 completed, 1 interrupted, 3 not started."
    ) in md
    assert "trained **6**" not in md


def test_a_finished_sweep_says_it_trained_them_all(lr_sweep: Path, tmp_path: Path) -> None:
    md = (build_report(lr_sweep, out=tmp_path / "r") / "report.md").read_text()
    assert (
        "This sweep trained **6** networks: 6 values of `lr`, 5 steps each. Status: 6 completed."
        in md
    )


@pytest.mark.parametrize(
    "losses",
    [
        (1e290, 1e296),  # issue 11: the heatmap's log colour scale overflowed
        (1e308, 1e-300),
        (1e200, 0.5),
        (float("inf"), float("nan")),
    ],
)
def test_reports_draw_huge_finite_losses(lr_sweep: Path, tmp_path: Path, losses) -> None:
    sweep = _copy_sweep(lr_sweep, tmp_path / "huge")
    store = SweepStore(sweep)
    labels = [m.label for m in load_for_resume(sweep).members]
    for i, loss in zip((4, 5), losses):
        finite = bool(np.isfinite(loss))
        final = {"loss": loss if finite else None, "train_acc": None, "test_acc": None}
        metrics = store.metrics(i)
        metrics.loc[metrics.index[-1], "loss"] = loss
        metrics.loc[metrics.index[-1], "train_acc"] = np.nan  # item 9: no accuracy if diverged
        edit_entry(sweep, i, status="diverged", diverged_at=4, steps_done=4, final=final)
        set_metrics(sweep, i, metrics)
    for metric in ("final_loss", "max_spike", "final_train_acc"):
        out = build_report(sweep, out=tmp_path / metric, metric=metric)
        check_report(out)
        assert (out / "heatmap.png").is_file()
    md = (tmp_path / "final_loss" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith(f"| 5 | {labels[-1]}"))
    assert "| diverged |" in row and "| – |" in row  # no accuracy shown as a dash
    build_report(sweep / "members" / labels[-1], out=tmp_path / "run")  # the member's own report


# --- figures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_key_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """variants x lr x (reg.strength, hidden) zipped: points that differ in a third key."""
    root = tmp_path_factory.mktemp("three")
    spec = {
        "name": "three",
        "config": {
            **TINY,
            "name": "three",
            "data": {"kind": "xor", "n": 12},
            "train": {"steps": 4},
            "plots": {"enabled": False},
        },
        "variants": [
            {"name": "sgd", "set": {"optim.kind": "sgd"}},
            {"name": "momentum", "set": {"optim.kind": "momentum"}},
        ],
        "grid": {"optim.lr": [0.3, 3.0]},
        "zip": {"regularization.strength": [0, 0.05], "model.hidden": [[3], [8]]},
    }
    return run_sweep(build_sweep(spec, file="s.yaml", base_dir=root), root / "runs").folder


def test_loss_curves_of_one_colour_in_a_panel_differ_in_line_style(three_key_sweep: Path) -> None:
    from xorlab.report.points import plan
    from xorlab.report.read import read_sweep
    from xorlab.report.sweep_figs import loss_figure

    pl = plan(read_sweep(three_key_sweep), x=None, y=None, metric="final_loss")
    assert (pl.color.key if pl.color else None, pl.facet) == ("variant", "optim.lr")
    fig = loss_figure(pl)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(panels) == 2
    for ax in panels:
        curves = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None"]
        assert len(curves) == 4  # 2 variants x 2 (reg.strength, hidden)
        looks = {(ln.get_color(), ln.get_linestyle()) for ln in curves}
        assert len(looks) == 4, looks
    legends = [lg for lg in fig.legends if lg.get_title().get_text() == "reg.strength, hidden"]
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == [
        "reg.strength=0, hidden=[3]",
        "reg.strength=0.05, hidden=[8]",
    ]
    assert "line style by reg.strength and hidden" in fig.get_suptitle()


def test_too_many_combinations_for_line_styles_are_said_to_be_drawn_alike() -> None:
    from xorlab.report.figs import ValueColors
    from xorlab.report.points import METRICS, Plan, Point
    from xorlab.report.read import SweepView
    from xorlab.report.sweep_figs import LINE_STYLES, line_styles

    n = len(LINE_STYLES) + 1
    view = SweepView(Path("s"), "s", {}, [], [], ["variant", "optim.lr", "model.hidden"])
    points = [
        Point({"variant": v, "optim.lr": lr, "model.hidden": [h]}, f"{v} {lr} {h}")
        for v in ("a", "b")
        for lr in (0.1, 1.0)
        for h in range(1, n + 1)
    ]
    color = ValueColors("variant", "variant", ["a", "b"])
    pl = Plan(view, points, METRICS["final_loss"], "variant", "optim.lr", color, "optim.lr")
    panels = [(str(lr), [p for p in points if p.values["optim.lr"] == lr]) for lr in (0.1, 1.0)]
    styles = line_styles(pl, panels)
    assert styles.keys == ["model.hidden"] and styles.styles == {} and styles.merged == n
    few = [(t, [p for p in g if p.values["model.hidden"][0] <= 2]) for t, g in panels]
    styles = line_styles(pl, few)
    assert styles.styles == {"hidden=[1]": "-", "hidden=[2]": "--"}


def _suptitle_inside(fig) -> bool:
    fig.canvas.draw()
    box = fig.get_suptitle() and fig._suptitle.get_window_extent()  # noqa: SLF001
    width = fig.get_figwidth() * fig.dpi
    return box is not None and box.x0 >= 0 and box.x1 <= width


def test_boundary_grid_title_fits_a_three_column_grid(tmp_path: Path) -> None:
    from xorlab.report.outcomes import boundaries_figure
    from xorlab.report.points import plan
    from xorlab.report.read import read_sweep

    spec = {
        "config": {**TINY, "name": "b3", "train": {"steps": 3}, "plots": {"enabled": False}},
        "grid": {"optim.lr": [0.1, 0.2, 0.3], "model.hidden": [[2], [3]]},
        "seeds": [0, 1],
    }
    folder = run_sweep(build_sweep(spec, file="s.yaml", base_dir=tmp_path), tmp_path).folder
    pl = plan(read_sweep(folder), x=None, y=None, metric="final_loss")
    fig, _, _ = boundaries_figure(pl)
    assert fig is not None and _suptitle_inside(fig)


def test_divergence_row_labels_are_dark_enough_to_read_on_white(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgb

    from xorlab.report.figs import _luminance
    from xorlab.report.outcomes import divergence_figure
    from xorlab.report.points import plan
    from xorlab.report.read import read_sweep

    lrs = [0.1 * 2**i for i in range(12)]  # 12 values: a colormap reaching yellow-green
    spec = {
        "config": {**TINY, "name": "d", "train": {"steps": 3}, "plots": {"enabled": False}},
        "grid": {"optim.lr": lrs},
    }
    spec["config"]["data"] = {"kind": "xor", "n": 12}
    folder = run_sweep(build_sweep(spec, file="s.yaml", base_dir=tmp_path), tmp_path).folder
    edit_entry(folder, 11, status="diverged", diverged_at=2)  # something to show
    pl = plan(read_sweep(folder), x=None, y=None, metric="final_loss")
    assert pl.color is not None and pl.color.continuous
    fig, _ = divergence_figure(pl)
    assert fig is not None
    labels = fig.axes[0].get_yticklabels()
    assert len(labels) == 12
    for lab in labels:
        contrast = 1.05 / (_luminance(to_rgb(lab.get_color())) + 0.05)
        assert contrast >= 4.5, (lab.get_text(), lab.get_color(), contrast)


def test_a_one_step_runs_report_figures_have_whole_step_ticks(tmp_path: Path) -> None:
    from xorlab.report.read import read_run
    from xorlab.report.run_figs import curves_figure, optimizer_figure

    raw = {**TINY, "name": "one", "train": {"steps": 1}, "plots": {"enabled": False}}
    view = read_run(run_config(validate(raw), tmp_path).folder)
    for fig in (optimizer_figure(view), curves_figure(view)):
        fig.canvas.draw()
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert all(float(t).is_integer() for t in ticks), ticks
            assert "+" not in ax.yaxis.get_offset_text().get_text()  # no '1e-7+2.5e-1' offset


def test_a_fast_runs_time_has_significant_digits_not_zero(tmp_path):
    from xorlab.report.read import read_run
    from xorlab.report.run import status_sentence

    cfg = validate({"name": "fast", "data": {"n": 20}, "train": {"steps": 2},
                    "plots": {"enabled": False}})  # fmt: skip
    run = run_config(cfg, tmp_path / "runs").folder
    summary = json.loads((run / "summary.json").read_text())
    summary["wall_s"] = 0.0012
    (run / "summary.json").write_text(json.dumps(summary))
    assert "2 of 2 steps in 0.0012 s." in status_sentence(read_run(run))
