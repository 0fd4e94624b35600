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
from xorlab.report.read import blowup
from xorlab.report.sweep import SECTIONS
from xorlab.report.sweep_figs import median_band
from xorlab.runner import run_config
from xorlab.sweep import build_sweep
from xorlab.sweeprun import run_sweep

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
    members = sorted((folder / "members").iterdir())
    failed, interrupted, unfinished, damaged = members[1], members[2], members[7], members[8]
    s = json.loads((failed / "summary.json").read_text())
    s.update(status="failed", steps_done=0, final={"loss": None, "train_acc": None})
    (failed / "summary.json").write_text(json.dumps(s))
    (failed / "error.txt").write_text("Traceback ...\nRuntimeError: boom in member 1\n")
    (failed / "final.npz").unlink()
    s = json.loads((interrupted / "summary.json").read_text())
    s.update(status="interrupted", steps_done=10)
    (interrupted / "summary.json").write_text(json.dumps(s))
    lines = (interrupted / "metrics.csv").read_text().splitlines()[:11]
    (interrupted / "metrics.csv").write_text("\n".join(lines) + "\n")
    (unfinished / "summary.json").unlink()
    (damaged / "metrics.csv").write_bytes(b'step,loss\n1,2,3,4\n"open\n\x00\xff')
    return folder


def test_sweep_report_renders_every_section(sweep_folder: Path) -> None:
    out = build_report(sweep_folder)
    page = check_report(out)
    for heading in (*SECTIONS, "Variants"):
        assert heading in page.h2, (heading, page.h2)
    text = " ".join(page.text)
    assert "RuntimeError: boom in member 1" in text
    assert "metrics.csv cannot be read" in text
    for status in ("failed", "interrupted", "unfinished", "diverged", "completed"):
        assert status in text
    assert "explode" in text and "diverged in" in text
    assert "Changing one setting" in text  # explode -> clipped is a single changed setting
    assert {"loss_curves.png", "heatmap.png", "boundaries.png", "divergence.png"} <= {
        p.name for p in out.iterdir()
    }


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
    assert blowup(steps, loss) == (4, pytest.approx(15.0))
    assert blowup(steps, np.array([1.0, 0.9, np.nan, 0.8, np.inf, 0.7])) == (None, 1.0)
    assert blowup(steps[:1], loss[:1]) == (None, None)


def test_median_band_breaks_where_no_curve_has_a_value() -> None:
    a = (np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, np.inf, 5.0]))
    b = (np.array([0.0, 1.0]), np.array([3.0, 4.0]))
    xs, med, lo, hi = median_band([a, b], log=False)
    assert xs.tolist() == [0.0, 1.0, 2.0, 3.0]
    # step 2: no finite value, NaN (the line breaks); step 3: only a has one
    np.testing.assert_array_equal(med, [2.0, 3.0, np.nan, 5.0])
    np.testing.assert_array_equal(lo, [1.0, 2.0, np.nan, 5.0])
    np.testing.assert_array_equal(hi, [3.0, 4.0, np.nan, 5.0])
