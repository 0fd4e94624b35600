"""xorlab.listing: runs and sweeps found, damaged folders listed with their state, JSON out."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from xorlab.config import validate
from xorlab.errors import XorlabError
from xorlab.listing import RunInfo, filter_status, runs_table, scan, sort_by, to_json
from xorlab.runner import run_config
from xorlab.sweep import build_sweep
from xorlab.sweeprun import run_sweep

from .conftest import drop_entry, tiny


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """A runs folder with two runs, a diverged run and a two-member sweep (made once)."""
    runs = tmp_path_factory.mktemp("made") / "runs"
    a = run_config(validate(tiny(name="a", optim={"lr": 0.1})), runs).folder
    b = run_config(validate(tiny(name="b", optim={"lr": 1.0}, model={"hidden": [5]})), runs).folder
    boom = tiny(name="boom", optim={"lr": 1e4}, train={"steps": 20, "diverge_above": 10.0},
                model={"hidden": [20], "activation": "relu", "loss": "cross_entropy"})  # fmt: skip
    div = run_config(validate(boom), runs).folder
    spec = {"name": "sw", "config": tiny(), "grid": {"optim.lr": [0.1, 1.0]}}
    sweep = build_sweep(spec, file="sw.yaml", base_dir=runs.parent)
    sw = run_sweep(sweep, runs, jobs=1).folder
    return {"runs": runs, "a": a, "b": b, "div": div, "sw": sw}


@pytest.fixture
def copy(made, tmp_path) -> dict[str, Path]:
    """A private copy of ``made`` that a test may damage."""
    runs = tmp_path / "runs"
    shutil.copytree(made["runs"], runs)
    return {k: runs / v.name if k != "runs" else runs for k, v in made.items()}


def by_folder(infos: list[RunInfo]) -> dict[str, RunInfo]:
    return {i.folder: i for i in infos}


def render(table) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


# --- healthy folders ----------------------------------------------------------------------------


def test_scan_finds_runs_and_sweeps(made):
    infos = by_folder(scan(made["runs"]))
    assert set(infos) == {made[k].name for k in ("a", "b", "div", "sw")}
    a = infos[made["a"].name]
    assert (a.kind, a.name, a.status) == ("run", "a", "completed")
    assert (a.steps_done, a.steps_total) == (20, 20)
    assert a.final_loss is not None and 0 <= a.final_train_acc <= 1
    assert a.started and a.started.startswith(made["a"].name[:4])  # the year
    assert (a.hidden, a.activation, a.loss, a.optimizer, a.lr) == (
        [3],
        "sigmoid",
        "mse",
        "sgd",
        0.1,
    )
    assert (a.regularization, a.reg_strength, a.clip, a.clip_max) == ("l2", 0.0001, "none", None)
    assert infos[made["b"].name].hidden == [5]


def test_a_diverged_run(made):
    d = by_folder(scan(made["runs"]))[made["div"].name]
    assert d.status == "diverged"
    assert d.diverged_at is not None and d.steps_done == d.diverged_at


def test_a_sweep_row_counts_its_members(made):
    s = by_folder(scan(made["runs"]))[made["sw"].name]
    assert (s.kind, s.name, s.status, s.n_members) == ("sweep", "sw", "completed", 2)
    assert s.counts == {"completed": 2}
    assert s.lr is None and s.varied == {"optim.lr": [0.1, 1.0]}  # varied: shown as values
    assert s.hidden == [3] and s.steps_total == 20
    assert s.best_member in ("000-lr=0.1", "001-lr=1") and s.final_loss is not None


def test_a_sweep_whose_variants_have_their_own_bases(tmp_path):
    variants = [
        {"name": "h3", "config": tiny(name="h3")},
        {"name": "h5", "config": tiny(name="h5", model={"hidden": [5]}, optim={"lr": 0.5})},
    ]
    spec = {"name": "vs", "variants": variants, "set": {"train.steps": 10}}
    run_sweep(build_sweep(spec, file="vs.yaml", base_dir=tmp_path), tmp_path / "runs")
    [s] = scan(tmp_path / "runs")
    assert (s.status, s.n_members, s.steps_total) == ("completed", 2, 10)
    assert s.varied == {"model.hidden": [[3], [5]], "optim.lr": [0.003, 0.5]}
    assert (s.hidden, s.lr, s.activation) == (None, None, "sigmoid")


def test_root_may_be_a_run_a_sweep_or_members(made):
    [run] = scan(made["a"])
    assert run.folder == made["a"].name
    [sweep] = scan(made["sw"])
    assert sweep.kind == "sweep"
    members = scan(made["sw"] / "members")
    assert sorted(m.folder for m in members) == ["000-lr=0.1", "001-lr=1"]
    assert {(m.kind, m.status, m.sweep) for m in members} == {("run", "completed", made["sw"].name)}
    assert sorted(m.lr for m in members) == [0.1, 1.0]


def test_a_missing_root_or_a_file_is_an_error(tmp_path):
    with pytest.raises(XorlabError, match="no such folder"):
        scan(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(XorlabError, match="not a folder"):
        scan(tmp_path / "f.txt")
    assert scan(tmp_path) == []


def test_to_json_round_trips_through_pandas(made):
    infos = scan(made["runs"])
    text = to_json(infos)
    assert [d["folder"] for d in json.loads(text)] == [i.folder for i in infos]
    df = pd.read_json(io.StringIO(text))
    assert len(df) == len(infos) == 4
    assert list(df["folder"]) == [i.folder for i in infos]
    assert set(df["status"]) == {"completed", "diverged"}
    assert set(df["kind"]) == {"run", "sweep"}


def test_runs_table_renders(made):
    text = render(runs_table(scan(made["runs"])))
    for key in ("a", "b", "sw"):
        assert made[key].name in text
    assert "completed 2/2" in text and "lr {0.1, 1}" in text


# --- damaged and unfinished folders -------------------------------------------------------------


def test_damaged_runs_are_listed_with_their_state(copy):
    (copy["a"] / "summary.json").unlink()  # killed mid-run
    (copy["b"] / "summary.json").write_text('{"status": "compl')
    (copy["div"] / "config.yaml").unlink()
    (copy["runs"] / "junk").mkdir()
    (copy["runs"] / "junk" / "notes.txt").write_text("not a run")
    (copy["runs"] / "stray.txt").write_text("a file")
    (copy["runs"] / "20240101-120000-fresh-abc123").mkdir()  # just created, nothing written yet
    infos = by_folder(scan(copy["runs"]))
    assert "junk" not in infos and "stray.txt" not in infos
    assert infos[copy["a"].name].status == "unfinished"
    assert infos[copy["a"].name].steps_total == 20 and infos[copy["a"].name].steps_done is None
    b = infos[copy["b"].name]
    assert b.status == "damaged" and "summary.json: not valid JSON" in b.problems[0]
    d = infos[copy["div"].name]
    assert d.status == "damaged" and d.problems == ["config.yaml missing"]
    assert d.name == "boom"  # from the folder name when config.yaml is gone
    assert infos["20240101-120000-fresh-abc123"].status == "unfinished"

    df = pd.read_json(io.StringIO(to_json(list(infos.values()))))
    assert len(df) == len(infos) == 5
    text = render(runs_table(list(infos.values())))
    assert "config.yaml missing" in text and "unfinished" in text


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (b"\x00\xff\xfe binary", "metrics.csv: not UTF-8 text"),
        (b"a,b\n1,2\n", "metrics.csv: no 'step' column"),
        (None, "metrics.csv missing"),
    ],
)
def test_a_finished_run_with_bad_metrics_is_damaged(copy, damage, problem):
    path = copy["a"] / "metrics.csv"
    path.unlink() if damage is None else path.write_bytes(damage)
    [info] = scan(copy["a"])
    assert (info.status, info.problems) == ("damaged", [problem])
    assert info.final_loss is not None  # what summary.json says is still shown


def test_a_failed_run_shows_why(copy):
    from xorlab.rundir import RunFolder

    RunFolder(copy["a"]).write_failure("Traceback ...\nMemoryError: out of memory\n")
    [info] = scan(copy["a"])
    assert (info.status, info.note, info.problems) == ("failed", "MemoryError: out of memory", [])
    assert "MemoryError: out of memory" in render(runs_table([info]))


def test_yaml_1_2_floats_in_a_hand_edited_config(copy):
    text = (copy["a"] / "config.yaml").read_text().replace("lr: 0.1", "lr: 1e-3")
    (copy["a"] / "config.yaml").write_text(text)
    assert scan(copy["a"])[0].lr == 0.001


def test_bad_yaml_and_non_objects(copy):
    (copy["a"] / "config.yaml").write_text("model: {hidden: [3\n")
    (copy["b"] / "meta.json").write_text("[1, 2]")
    infos = by_folder(scan(copy["runs"]))
    a, b = infos[copy["a"].name], infos[copy["b"].name]
    assert a.status == "damaged" and a.problems[0].startswith("config.yaml: invalid YAML")
    assert b.status == "damaged" and b.problems == ["meta.json: expected an object, got list"]
    assert b.started is not None  # from the folder name instead


def test_a_sweep_with_an_unfinished_member_and_a_bad_summary_csv(copy):
    sw = copy["sw"]
    drop_entry(sw, 1)
    (sw / "summary.csv").write_text('index,run_dir\n0,"unterminated\n')
    info = by_folder(scan(copy["runs"]))[sw.name]
    assert (info.status, info.n_members) == ("partial", 2)
    assert info.counts == {"completed": 1, "pending": 1}
    assert info.problems == ["summary.csv: not a readable table"]
    assert info.best_member == "000-lr=0.1"
    assert "partial 1/2" in render(runs_table([info]))


def test_a_stale_summary_csv_is_checked_against_the_members(copy):
    sw = copy["sw"]
    df = pd.read_csv(sw / "summary.csv")
    df["status"] = ["completed", "pending"]  # written before member 1 finished
    df.to_csv(sw / "summary.csv", index=False)
    info = scan(sw)[0]
    assert info.counts == {"completed": 2} and info.status == "completed"


def test_a_sweep_without_a_readable_sweep_yaml_is_damaged(copy):
    sw = copy["sw"]
    (sw / "sweep.yaml").write_text(": : :\n")
    shutil.rmtree(sw / "records")  # and the records are lost too
    info = by_folder(scan(copy["runs"]))[sw.name]
    assert info.status == "damaged"
    assert info.problems[0].startswith("sweep.yaml: invalid YAML")
    assert info.n_members == 2  # the member list then comes from summary.csv
    assert info.counts == {"completed": 2}  # summary.csv says both finished


def test_a_sweep_with_nothing_readable(tmp_path):
    sw = tmp_path / "20240101-000000-s-abcdef"
    (sw / "members").mkdir(parents=True)
    (sw / "summary.csv").write_bytes(b"\xff\xfe")
    [info] = scan(tmp_path)
    assert info.kind == "sweep" and info.status == "damaged" and info.n_members == 0
    assert info.problems == ["sweep.yaml missing", "summary.csv: not a readable table"]
    assert len(pd.read_json(io.StringIO(to_json([info])))) == 1


# --- filtering and sorting ----------------------------------------------------------------------


def info(folder: str, **kw) -> RunInfo:
    base = {"path": folder, "folder": folder, "kind": "run", "name": folder, "started": None,
            "status": "completed"}  # fmt: skip
    return RunInfo(**{**base, **kw})


def test_filter_status(made):
    infos = scan(made["runs"])
    assert {i.folder for i in filter_status(infos, "diverged")} == {made["div"].name}
    assert len(filter_status(infos, "completed, diverged")) == 4
    assert len(filter_status(infos, ["completed"])) == 3
    with pytest.raises(XorlabError, match="unknown status 'done'; allowed: completed"):
        filter_status(infos, "done")


def test_sort_by_puts_none_last_in_either_order():
    rows = [
        info("x", final_loss=None, started="2025-01-02T00:00:00+00:00", final_train_acc=0.5),
        info("y", final_loss=0.3, started="2025-01-03T00:00:00+00:00", final_train_acc=None),
        info("z", final_loss=0.1, started=None, final_train_acc=0.9, steps_done=7),
    ]

    def folders(rs: list[RunInfo]) -> list[str]:
        return [r.folder for r in rs]

    assert folders(sort_by(rows, "final_loss")) == ["z", "y", "x"]
    assert folders(sort_by(rows, "final_loss", reverse=True)) == ["y", "z", "x"]
    assert folders(sort_by(rows, "started")) == ["y", "x", "z"]  # newest first
    assert folders(sort_by(rows, "final_train_acc")) == ["z", "x", "y"]  # best first
    assert folders(sort_by(rows, "steps")) == ["z", "x", "y"]
    assert folders(sort_by(rows, "name", reverse=True)) == ["z", "y", "x"]
    with pytest.raises(XorlabError, match="unknown sort key 'loss'"):
        sort_by(rows, "loss")


def test_scan_is_newest_first(tmp_path):
    for stamp in ("20240101-000000", "20250101-000000", "20230101-000000"):
        (tmp_path / f"{stamp}-r-abcdef").mkdir()
    assert [i.folder[:4] for i in scan(tmp_path)] == ["2025", "2024", "2023"]


def test_a_random_sweeps_many_values_show_as_a_range_and_accuracies_have_three_decimals():
    from xorlab.listing import RunInfo, runs_table, settings_text

    lrs = [0.5, 0.00444, 2.588, 0.1, 0.2, 0.3, 0.4]  # 7 values: more than are listed
    info = RunInfo(path="p", folder="f", kind="sweep", name="s", started=None, status="completed",
                   hidden=[3], activation="relu", loss="mse", optimizer="sgd",
                   regularization="l2", reg_strength=0.0001, clip="none",
                   varied={"optim.lr": lrs, "model.hidden": [[3], [50]]},
                   final_train_acc=1.0, final_test_acc=0.9966)  # fmt: skip
    assert (
        settings_text(info)
        == "{[3], [50]} relu · mse · sgd lr 0.00444–2.588 (7 values) · l2 0.0001"
    )
    info.varied = {"optim.lr": [0.1, 1.0]}  # few values: listed
    assert "lr {0.1, 1}" in settings_text(info)
    from rich.console import Console

    console = Console(width=300, record=True, file=io.StringIO())
    console.print(runs_table([info]))
    row = next(line for line in console.export_text().splitlines() if "│ f " in line)
    assert "│ 1.000 │ 0.997 │" in row, row
