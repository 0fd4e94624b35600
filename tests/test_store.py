"""The sweep store: the Parquet table is the members' metrics.csv, export is solo training byte
for byte, resume equals a sweep never stopped, and a large sweep writes few files."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from xorlab.cli import app
from xorlab.members import open_sweep, read_metrics
from xorlab.rundir import csv_text
from xorlab.store import SweepStore
from xorlab.sweep import build_sweep
from xorlab.sweeprun import run_sweep

from .conftest import drop_entry, edit_entry

runner = CliRunner()
train_module = importlib.import_module("xorlab.train")  # the package's `train` is the API's
BASE = {"data": {"n": 24}, "model": {"hidden": [3]}, "train": {"steps": 12},
        "plots": {"enabled": False}}  # fmt: skip
SPEC = {
    "name": "st",
    "config": BASE,
    "variants": [
        {"name": "plain", "set": {}},  # no test set, no biases
        {
            "name": "held",
            "set": {
                "data.test_fraction": 0.25,
                "model.hidden": [4],
                "model.bias": True,
                "model.activation": "relu",
                "telemetry.sharpness_every": 5,
            },
        },  # fmt: skip
    ],
    "grid": {"optim.lr": [0.3, 1.0e6]},  # 1e6 diverges
    "set": {"train.diverge_above": 100.0},
    "seeds": [0, 1],
}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sweep_folder(root: Path, spec: dict = SPEC, name: str = "runs", jobs: int = 1) -> Path:
    return run_sweep(build_sweep(spec, file="s.yaml", base_dir=root), root / name, jobs=jobs).folder


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return sweep_folder(tmp_path_factory.mktemp("store"))


def test_the_table_equals_the_metrics_csv_each_member_would_have_had(made):
    members = open_sweep(made)
    table = pd.read_parquet(made / "metrics")  # pandas reads the folder as one table
    assert table.columns[0] == "member" and "test_acc" in table and "grad_norm_b1" in table
    assert {"sharpness", "sharpness_iters", "dead_h1", "saturated_h1"} <= set(table.columns)
    assert set(table["member"]) == set(range(8))
    statuses = []
    for m in members.all():
        solo = train_module.train(m.config)
        statuses.append(solo.status)
        mine = m.metrics()
        pd.testing.assert_frame_equal(mine, solo.metrics, check_exact=True)
        assert csv_text(mine) == csv_text(solo.metrics)
        rows = table[table["member"] == m.index][list(solo.metrics.columns)]
        rows = rows.astype(solo.metrics.dtypes.to_dict())  # pandas reads an int with nulls as float
        pd.testing.assert_frame_equal(rows.reset_index(drop=True), solo.metrics, check_exact=True)
        init, final = m.params()
        for mine_p, solo_p in ((init, solo.init_params), (final, solo.final_params)):
            assert mine_p.keys() == solo_p.keys()
            for k in mine_p:
                assert mine_p[k].tobytes() == solo_p[k].tobytes()
        data = m.data()
        assert data.X_train.tobytes() == solo.data.X_train.tobytes()
        assert data.y_test.shape == solo.data.y_test.shape
        assert m.summary["final"] == pytest.approx(solo.final) and m.status == solo.status
        if "test_acc" not in solo.metrics:  # the union's column is null (NaN) for this member
            assert table.loc[table["member"] == m.index, "test_acc"].isna().all()
    assert statuses.count("diverged") == 4
    whole = read_metrics(made)
    sorted_table = table.sort_values(["member", "step"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, sorted_table, check_exact=True)


def test_every_part_carries_the_same_columns_so_any_reader_sees_one_table(made):
    schemas = [pq.read_schema(p) for p in sorted((made / "metrics").glob("*.parquet"))]
    assert len(schemas) >= 2  # a part per training group (two shapes at least)
    assert all(s == schemas[0] for s in schemas)
    assert [f.name for f in schemas[0]][:3] == ["member", "step", "epoch"]
    assert str(schemas[0].field("step").type) == "int64"
    assert str(schemas[0].field("loss").type) == "double"
    with np.load(next((made / "weights").glob("*.npz"))) as z:
        k = len(z["members"])
        assert z["init/W1"].shape[0] == k == z["final/W2"].shape[0]
    assert len(list((made / "data").iterdir())) == 2  # one per distinct data config


def test_a_300_member_sweep_without_plots_writes_few_files(tmp_path):
    spec = {"name": "many", "config": {**BASE, "train": {"steps": 3}},
            "grid": {"optim.lr": [0.1 * (i + 1) for i in range(100)]}, "seeds": 3}  # fmt: skip
    folder = sweep_folder(tmp_path, spec)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) < 50, len(files)
    assert len(pd.read_csv(folder / "summary.csv")) == 300
    assert pd.read_parquet(folder / "metrics")["member"].nunique() == 300


def test_resume_after_a_crash_equals_a_sweep_never_stopped(made, tmp_path):
    folder = tmp_path / "crashed"
    shutil.copytree(made, folder)
    records = sorted((folder / "records").glob("*.json"))
    held_by = {p: sorted(int(i) for i in json.loads(p.read_text())["members"]) for p in records}
    group, solo = sorted(records, key=lambda p: -len(held_by[p]))[:2]  # 4 members, and 1
    solo.unlink()  # killed after writing a part, before its record: not finished
    held = held_by[group]
    edit_entry(folder, held[0], status="interrupted")  # one of the other part's members too
    drop_entry(folder, held[1])
    assert invoke("sweep", "--resume", folder, "-q").exit_code == 0
    pd.testing.assert_frame_equal(read_metrics(folder), read_metrics(made), check_exact=True)
    cols = ["index", "seed", "status", "final_loss", "final_data_loss", "final_train_acc",
            "final_test_acc", "diverged_at"]  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_csv(folder / "summary.csv")[cols],
                                  pd.read_csv(made / "summary.csv")[cols])  # fmt: skip
    assert (folder / "attempts" / "metrics").is_dir()  # the unrecorded part, set aside
    assert len(list((folder / "attempts" / "records").iterdir())) == 1  # the edited record
    entries = SweepStore(folder).entries()
    assert sorted(entries) == list(range(8)) and all(
        e["status"] in ("completed", "diverged") for e in entries.values()
    )


# --- export -------------------------------------------------------------------------------------


def test_export_equals_xorlab_train_of_its_config(made, tmp_path):
    for member in ("7", str(made / "members" / open_sweep(made).get(7).label)):
        out = tmp_path / f"export-{len(member)}"
        res = invoke("export", made, member, "--to", out)
        assert res.exit_code == 0, res.output
        assert res.output.startswith("member 7 (007-")
    out = tmp_path / "export-1"
    runs = tmp_path / "trained"
    res = invoke("train", out / "config.yaml", "--runs-dir", runs, "-q")
    assert res.exit_code == 0, res.output
    (solo,) = runs.iterdir()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in solo.iterdir())
    for name in ("config.yaml", "metrics.csv"):
        assert (out / name).read_bytes() == (solo / name).read_bytes(), name
    for name in ("data.npz", "init.npz", "final.npz"):
        with np.load(out / name) as a, np.load(solo / name) as b:
            assert a.files == b.files
            for k in a.files:
                assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes()
    a, b = (json.loads((d / "summary.json").read_text()) for d in (out, solo))
    for timing in ("wall_s", "steps_per_s"):
        a.pop(timing), b.pop(timing)
    assert a == b and a["status"] == "diverged"  # member 7: held-out data, biases, lr 1e6


def test_export_draws_the_plots_its_config_enables(tmp_path):
    spec = {"name": "p", "config": {**BASE, "plots": {"enabled": True, "gif_frames": 0}},
            "grid": {"optim.lr": [0.1, 0.2]}}  # fmt: skip
    folder = sweep_folder(tmp_path, spec)
    shutil.rmtree(folder / "members")  # drawn again from the store and a retraining
    assert invoke("export", folder, "1", "--to", tmp_path / "e").exit_code == 0
    assert (tmp_path / "e" / "plots" / "panel.png").stat().st_size > 1000


def test_export_bad_input_is_one_line_exit_2_and_writes_nothing(made, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    cases = [
        ((tmp_path, "0", tmp_path / "o"), "not a sweep folder (no sweep.yaml)"),
        ((made, "8", tmp_path / "o"), "no member 8: the sweep has 8 (0 to 7)"),
        ((made, "members/999-x", tmp_path / "o"), "no member 'members/999-x'"),
        ((made, "0", tmp_path / "full"), "the folder is not empty"),
        ((made, "0", tmp_path / "file"), "a file, not a folder"),
    ]
    for (sweep, member, to), message in cases:
        before = sorted(tmp_path.rglob("*"))
        res = invoke("export", sweep, member, "--to", to)
        assert res.exit_code == 2, res.output
        assert res.output.count("\n") == 1 and message in res.output, res.output
        assert sorted(tmp_path.rglob("*")) == before


def test_a_member_path_names_a_member_in_every_command(made, tmp_path):
    members = open_sweep(made)
    a, b = (made / "members" / members.get(i).label for i in (0, 2))
    assert not a.exists()  # no plots: no folder of its own
    res = invoke("compare", a, b)
    assert res.exit_code == 0, res.output
    res = invoke("runs", a, "--json")
    assert res.exit_code == 0 and json.loads(res.output)[0]["folder"] == a.name
    res = invoke("runs", made / "members", "--json")
    assert res.exit_code == 0 and len(json.loads(res.output)) == 8
    res = invoke("report", a, "--out", tmp_path / "rep", "-q")
    assert res.exit_code == 0, res.output
    assert "Run report: " + a.name in (tmp_path / "rep" / "report.md").read_text()
