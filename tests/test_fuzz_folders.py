"""Property-based tests over damaged and extreme run and sweep folders: `report`, `diagnose`,
`runs`, `compare` and `sweep --resume` never print a traceback. Each does its job (exit 0) or
says, one line per problem starting `error:`, what is wrong with which path (exit 2).

The folders are real ones, made once per module with the CLI; each example copies them and
damages files found in the copy (whatever files the layout has): deletes, truncates, overwrites
with junk or with JSON of the wrong shape, turns a file into a folder, adds foreign files and
folders. The extreme-value tests write ±1e308, inf, NaN and empty values into the metrics and
summaries found there, mark every member diverged, or leave no steps at all."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xorlab.cli import app

from .conftest import TINY

runner = CliRunner()


def fuzz(examples: int) -> settings:
    """Few examples (a report draws figures: ~0.3-0.9 s each), the same ones on every run, so a
    red suite is reproducible; the whole module stays near 20 s."""
    scale = int(os.environ.get("XORLAB_FUZZ_SCALE", "1"))  # > 1: more, random examples
    return settings(
        max_examples=examples * scale,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=scale == 1,
    )


SWEEP = """\
name: s
base: tiny.yaml
set: {train.steps: 5}
grid: {optim.lr: [0.1, 0.3]}
"""
SOLO = """\
name: solo
base: tiny.yaml
set: {train.steps: 4}
seeds: [0]
"""


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def as_main():
    """As cli.main sets it: the trainer reports overflow as divergence, never as a warning."""
    with np.errstate(all="ignore"):
        yield


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """One runs folder: two runs and two sweeps (two members, one member), made by the CLI."""
    root = tmp_path_factory.mktemp("made")
    (root / "tiny.yaml").write_text(TINY)
    (root / "s.yaml").write_text(SWEEP)
    (root / "solo.yaml").write_text(SOLO)
    runs = root / "runs"
    found: dict[str, Path] = {}
    for key, args in {
        "a": ["train", root / "tiny.yaml"],
        "b": ["train", root / "tiny.yaml", "--set", "optim.lr=2", "--set", "train.steps=10"],
        "sweep": ["sweep", root / "s.yaml", "-j", "1"],
        "solo": ["sweep", root / "solo.yaml", "-j", "1"],
    }.items():
        res = invoke(*args, "-q", "--runs-dir", runs)
        assert res.exit_code == 0, res.output
        found[key] = Path(res.output.strip().splitlines()[-1])
    found["runs"] = runs
    return found


class Copy:
    """A fresh copy of the made runs folder; ``path(key)`` is that key's folder in it."""

    def __init__(self, made: dict[str, Path]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fuzz-"))
        self.runs = self.root / "runs"
        shutil.copytree(made["runs"], self.runs, symlinks=True)
        self.made = made

    def path(self, key: str) -> Path:
        return self.runs / self.made[key].name

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


NAMES = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)
WRONG_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=6,
)
SUMMARY_KEYS = ("status", "steps_done", "diverged_at", "final", "best", "wall_s", "steps_per_s")
SUMMARY_JSON = st.fixed_dictionaries(  # the keys a summary has, with values of any shape
    {}, optional=dict.fromkeys(SUMMARY_KEYS, WRONG_JSON)
)
ACTIONS = ("delete", "truncate", "junk", "json", "summary", "text", "file", "folder",
           "to_folder")  # fmt: skip


def damage(data: st.DataObject, top: Path, times: int = 3) -> list[str]:
    """Damage up to ``times`` things under ``top`` (or ``top`` itself); returns what was done."""
    done = []
    for _ in range(data.draw(st.integers(1, times), label="times")):
        paths = sorted(top.rglob("*")) + [top]
        target = data.draw(st.sampled_from(paths), label="target")
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        done.append(f"{action} {target.relative_to(top.parent)}")
        if not target.exists() and not target.is_symlink():
            continue  # gone with a folder deleted before
        folder = target if target.is_dir() else target.parent
        if action == "delete" and target != top:
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        elif action == "file":
            name = data.draw(NAMES, label="name")
            if not (folder / name).exists():
                (folder / name).write_bytes(data.draw(st.binary(max_size=40), label="bytes"))
        elif action == "folder":
            name = data.draw(NAMES, label="name")
            (folder / name).mkdir(exist_ok=True)
            if data.draw(st.booleans(), label="with summary"):
                summary = data.draw(SUMMARY_JSON, label="summary")
                (folder / name / "summary.json").write_text(json.dumps(summary))
        elif target.is_dir():
            continue
        elif action == "truncate":
            size = target.stat().st_size
            target.write_bytes(target.read_bytes()[: data.draw(st.integers(0, max(size - 1, 0)))])
        elif action == "junk":
            target.write_bytes(data.draw(st.binary(max_size=64), label="junk"))
        elif action == "json":
            target.write_text(json.dumps(data.draw(WRONG_JSON, label="json")))
        elif action == "summary":
            target.write_text(json.dumps(data.draw(SUMMARY_JSON, label="summary json")))
        elif action == "text":
            target.write_text(data.draw(st.text(max_size=60), label="text"), errors="replace")
        elif action == "to_folder":
            target.unlink()
            target.mkdir()
    return done


def check(res, copy: Copy, codes: tuple[int, ...] = (0, 2)) -> None:
    """No traceback, no internal error; exit 0, or 2 with every line `error: <path>...`."""
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    assert "\x1b" not in res.output, res.output  # names from the folder reach no terminal raw
    assert res.exit_code in codes, res.output
    event(f"exit {res.exit_code}")
    if res.exit_code == 2:
        lines = res.stderr.splitlines()
        assert lines and res.stdout == "", res.output
        for line in lines:
            assert line.startswith("error: ") and str(copy.root) in line, res.output


Damaged = Callable[[Copy], Path]
TARGETS: dict[str, Damaged] = {
    "run": lambda c: c.path("a"),
    "sweep": lambda c: c.path("sweep"),
    "solo sweep": lambda c: c.path("solo"),
}
EXAMPLES: dict[str, int] = {}  # test name -> examples tried, for the closing note


def counted(name: str) -> None:
    EXAMPLES[name] = EXAMPLES.get(name, 0) + 1


@pytest.mark.parametrize("what", TARGETS)
@fuzz(3)
@given(data=st.data())
def test_report_of_a_damaged_folder(made, what, data):
    counted(f"report {what}")
    copy = Copy(made)
    try:
        folder = TARGETS[what](copy)
        note = damage(data, folder)
        res = invoke("report", folder, "-q")
        check(res, copy)
        if res.exit_code == 0:
            assert (folder / "report" / "index.html").is_file(), note
        if what == "run":  # diagnose reads the same files (and may replay the run)
            check(invoke("diagnose", folder, "--json"), copy)
    finally:
        copy.close()


@fuzz(12)
@given(data=st.data())
def test_runs_of_a_damaged_runs_folder(made, data):
    counted("runs")
    copy = Copy(made)
    try:
        damage(data, copy.runs, times=5)
        for args in ([], ["--json"], ["--sort", "final_loss"], ["--status", "completed"]):
            res = invoke("runs", copy.runs, *args)
            check(res, copy)
            if res.exit_code == 0 and args == ["--json"]:
                json.loads(res.stdout)
    finally:
        copy.close()


@fuzz(8)
@given(data=st.data())
def test_compare_of_damaged_runs(made, data):
    counted("compare")
    copy = Copy(made)
    try:
        damage(data, copy.runs, times=4)
        label = yaml.safe_load((made["sweep"] / "sweep.yaml").read_text())["members"][0]["folder"]
        paths = [copy.path("a"), copy.path("b"), copy.path("sweep") / "members" / label]
        check(invoke("compare", *paths), copy)
        check(invoke("compare", *paths, "--out", copy.root / "cmp"), copy)
    finally:
        copy.close()


@fuzz(12)
@given(data=st.data())
def test_resume_of_a_damaged_sweep(made, data):
    counted("sweep --resume")
    copy = Copy(made)
    try:
        folder = copy.path("sweep")
        damage(data, folder)
        res = invoke("sweep", "--resume", folder, "-j", "1", "-q")
        check(res, copy)
        if res.exit_code == 0:  # resumed: every member now finished
            again = invoke("sweep", "--resume", folder, "-j", "1", "--dry-run")
            check(again, copy)
            if again.exit_code == 0:
                assert "0 of 2 members left" in again.stdout, again.stdout
    finally:
        copy.close()


def cut(path: Path, keep: str) -> bytes:
    """Truncate ``path`` to nothing, half its bytes or three; returns its bytes before."""
    before = path.read_bytes()
    path.write_bytes(before[: {"empty": 0, "half": len(before) // 2, "3 bytes": 3}[keep]])
    return before


@pytest.mark.parametrize("keep", ["empty", "half", "3 bytes"])
@pytest.mark.parametrize("also", ["nothing", "records gone"])
def test_resume_rewrites_a_damaged_data_file(made, keep, also):
    """Found by test_resume_of_a_damaged_sweep: a truncated data/*.npz (and a truncated weights
    file, below) made `sweep --resume` an internal error (EOFError, BadZipFile). A data set is a
    pure function of its config, so the resume writes it again, the same bytes; the damaged file
    goes to attempts/, as everything a resume replaces does."""
    copy = Copy(made)
    try:
        folder = copy.path("sweep")
        (data,) = (folder / "data").glob("*.npz")
        good = cut(data, keep)
        damaged = data.read_bytes()
        if also == "records gone":  # the members run again
            shutil.rmtree(folder / "records")
        res = invoke("sweep", "--resume", folder, "-j", "1", "-q")
        assert (res.exit_code, res.stdout) == (0, f"{folder}\n"), res.output
        assert data.read_bytes() == good
        assert (folder / "attempts" / "data" / data.name).read_bytes() == damaged
        again = invoke("sweep", "--resume", folder, "-j", "1", "--dry-run")
        assert "0 of 2 members left" in again.stdout, again.output
        res = invoke("export", folder, "1", "--to", copy.root / "one")
        assert res.exit_code == 0, res.output
    finally:
        copy.close()


@pytest.mark.parametrize("keep", ["empty", "half", "3 bytes"])
@pytest.mark.parametrize("part", ["weights", "metrics"])
def test_resume_runs_again_the_members_of_a_damaged_part(made, keep, part):
    """A part whose weights or metrics cannot be read holds no usable result: its members run
    again (training is deterministic: the same values), its record and files go to attempts/."""
    copy = Copy(made)
    try:
        folder = copy.path("sweep")
        (record,) = (folder / "records").glob("*.json")
        before = pd.read_parquet(folder / "metrics")
        (damaged,) = (folder / part).glob("*")
        cut(damaged, keep)
        res = invoke("sweep", "--resume", folder, "-j", "1", "-q")
        assert (res.exit_code, res.stdout) == (0, f"{folder}\n"), res.output
        assert not damaged.exists() and not record.exists()
        assert (folder / "attempts" / part / damaged.name).is_file()
        assert (folder / "attempts" / "records" / record.name).is_file()
        after = pd.read_parquet(folder / "metrics")
        pd.testing.assert_frame_equal(after, before)
        assert list(pd.read_csv(folder / "summary.csv")["status"]) == ["completed"] * 2
    finally:
        copy.close()


def test_a_folder_named_with_escape_sequences_is_shown_escaped(made):
    """Found by test_runs_of_a_damaged_runs_folder: `runs` printed a folder's name raw, so a
    name could recolour or retitle the terminal."""
    copy = Copy(made)
    try:
        evil = copy.runs / "evil\x1b[31mRED\x1b]0;title\x07"
        shutil.copytree(copy.path("a"), evil)
        for res in (invoke("runs", copy.runs), invoke("compare", evil, copy.path("b"))):
            assert res.exit_code == 0 and "\x1b" not in res.output, res.output
            assert "evil\\x1b[31mRED\\x1b]0;title" in res.output, res.output
    finally:
        copy.close()


def test_a_folder_where_a_file_is_written_is_one_error_line(made):
    """Found by test_resume_of_a_damaged_sweep: a folder named summary.csv made the resume's
    rename fail with IsADirectoryError (an internal error); now one line names the path."""
    copy = Copy(made)
    try:
        summary = copy.path("sweep") / "summary.csv"
        summary.unlink()
        summary.mkdir()
        res = invoke("sweep", "--resume", copy.path("sweep"), "-j", "1", "-q")
        assert (res.exit_code, res.stderr) == (2, f"error: {summary}: Is a directory\n")
    finally:
        copy.close()


# --- extreme values -------------------------------------------------------------------------

EXTREME = st.sampled_from([1e308, -1e308, math.inf, -math.inf, math.nan, None, 0.0, 1e-308])
LOSS_COLUMNS = ("loss", "data_loss", "reg_loss", "final_loss", "final_data_loss", "grad_norm")
STATUSES = st.sampled_from(["completed", "diverged", "interrupted", "failed", "bogus"])


def extreme_table(data: st.DataObject, df: pd.DataFrame, *, rows: bool = True) -> pd.DataFrame:
    """The table with its loss columns (and accuracies) set to drawn extreme values; with
    ``rows``, maybe cut to no rows or one."""
    if rows:
        keep = data.draw(st.sampled_from([None, 0, 1]), label="rows kept")
        if keep is not None:
            df = df.iloc[:keep]
    for col in df.columns:
        if col in LOSS_COLUMNS or col.endswith("_acc"):
            values = data.draw(st.lists(EXTREME, min_size=1, max_size=3), label=col)
            df[col] = [values[i % len(values)] for i in range(len(df))]
            df[col] = df[col].astype(float)
    return df


def make_extreme(data: st.DataObject, folder: Path, *, diverged: bool) -> None:
    """Extreme values in every metrics table and summary found under ``folder``."""
    for path in sorted(folder.rglob("*")):
        if path.name in ("metrics.csv", "summary.csv"):
            df = extreme_table(data, pd.read_csv(path), rows=path.name == "metrics.csv")
            if diverged and "status" in df.columns:
                df["status"] = "diverged"
            df.to_csv(path, index=False)
        elif path.suffix == ".parquet":
            extreme_table(data, pd.read_parquet(path), rows=False).to_parquet(path)
        elif path.name == "summary.json":
            summary = json.loads(path.read_text())
            if isinstance(summary.get("final"), dict):
                for k in summary["final"]:
                    summary["final"][k] = data.draw(EXTREME, label=f"final {k}")
            summary["steps_done"] = data.draw(st.sampled_from([0, 1, 30]), label="steps done")
            summary["status"] = "diverged" if diverged else data.draw(STATUSES, label="status")
            if summary["status"] == "diverged":
                summary["diverged_at"] = data.draw(st.integers(0, 30), label="diverged at")
            path.write_text(json.dumps(summary))  # inf and NaN as JSON's Infinity and NaN


@pytest.mark.parametrize("what", TARGETS)
@fuzz(2)
@given(data=st.data(), diverged=st.booleans())
def test_report_and_listing_of_extreme_values(made, what, data, diverged):
    counted(f"extreme values: report, runs, compare ({what})")
    copy = Copy(made)
    try:
        folder = TARGETS[what](copy)
        make_extreme(data, folder, diverged=diverged)
        res = invoke("report", folder, "-q")
        check(res, copy, codes=(0,))
        assert (folder / "report" / "index.html").is_file()
        check(invoke("runs", copy.runs, "--sort", "final_loss"), copy, codes=(0,))
        check(invoke("runs", copy.runs, "--json"), copy, codes=(0,))
        if what == "run":
            check(invoke("compare", folder, copy.path("b")), copy, codes=(0,))
    finally:
        copy.close()


def test_zz_examples_tried(capsys):
    """Print how many examples each fuzz test tried (for the closing note; run with -s)."""
    with capsys.disabled():
        for name, n in sorted(EXAMPLES.items()):
            print(f"\n  {name}: {n} examples", end="")
    assert all(n >= 1 for n in EXAMPLES.values())
