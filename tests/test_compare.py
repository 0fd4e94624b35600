"""xorlab.compare: runs from anywhere loaded, exactly the differing keys, table and overlay."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from xorlab.compare import (
    compare_record,
    compare_table,
    differing_keys,
    flatten,
    legend_labels,
    load_run,
    path_lines,
)
from xorlab.config import validate
from xorlab.errors import XorlabError
from xorlab.overlay import overlay_figure, overlay_figure_png
from xorlab.runner import run_config
from xorlab.sweep import build_sweep
from xorlab.sweeprun import run_sweep

from .conftest import tiny


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    runs = tmp_path_factory.mktemp("made") / "runs"
    out = {"runs": runs}
    out["a"] = run_config(validate(tiny(name="a", optim={"lr": 0.1})), runs).folder
    out["b"] = run_config(
        validate(tiny(name="b", optim={"lr": 1.0}, model={"hidden": [50]})), runs
    ).folder
    out["a2"] = run_config(validate(tiny(name="a-again", optim={"lr": 0.1})), runs).folder
    boom = tiny(name="boom", optim={"lr": 1e4}, train={"steps": 20, "diverge_above": 10.0},
                model={"hidden": [20], "activation": "relu", "loss": "cross_entropy"})  # fmt: skip
    out["div"] = run_config(validate(boom), runs).folder
    for name, grid in (("s1", {"optim.lr": [0.1, 1.0]}), ("s2", {"seed": [0, 1]})):
        spec = {"name": name, "config": tiny(), "grid": grid}
        out[name] = run_sweep(build_sweep(spec, file=f"{name}.yaml", base_dir=runs), runs).folder
    return out


def render(table) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_load_run_reads_config_summary_and_metrics(made):
    r = load_run(made["a"])
    assert r.status == "completed" and r.problems == []
    assert r.config["optim.lr"] == 0.1 and r.config["model.hidden"] == [3]
    assert r.config["optim.clip.kind"] == "none"  # nested sections flattened
    assert r.steps_done == 20 and r.final("loss") is not None
    assert {"step", "loss", "train_acc"} <= set(r.metrics.columns) and len(r.metrics) >= 20
    assert r.label == made["a"].name


def test_differing_keys_are_exactly_the_keys_that_differ(made):
    runs = [load_run(made["a"]), load_run(made["b"])]  # names differ too, but name is ignored
    assert differing_keys(runs) == {"model.hidden": [[3], [50]], "optim.lr": [0.1, 1.0]}
    assert legend_labels(runs) == ["hidden=[3], lr=0.1", "hidden=[50], lr=1"]


def test_identical_configs_differ_in_nothing(made):
    runs = [load_run(made["a"]), load_run(made["a2"])]
    assert differing_keys(runs) == {}
    assert legend_labels(runs) == [made["a"].name, made["a2"].name]
    assert "same" in render(compare_table(runs))


def test_members_of_different_sweeps(made):
    m1 = load_run(made["s1"] / "members" / "001-lr=1")
    m2 = load_run(made["s2"] / "members" / "001-seed=1")
    assert m1.label == f"{made['s1'].name}/001-lr=1"
    assert differing_keys([m1, m2]) == {"seed": [0, 1], "optim.lr": [1.0, 0.003]}
    text = render(compare_table([m1, m2]))
    assert "001-lr=1" in text and "001-seed=1" in text
    assert path_lines([m1, m2]) == [f"#1 {m1.path}", f"#2 {m2.path}"]
    assert str(made["s2"]) in path_lines([m1, m2])[1]


def test_compare_record_is_the_table_as_json(made):
    a, b, div = load_run(made["a"]), load_run(made["b"]), load_run(made["div"])
    rec = compare_record([a, b, div])
    assert rec["differing_keys"][:2] == ["model.hidden", "model.activation"]
    first = rec["runs"][0]
    assert first["path"] == str(made["a"]) and first["label"] == made["a"].name
    assert first["config"]["model.hidden"] == [3] and first["config"]["optim.lr"] == 0.1
    assert first["status"] == "completed" and first["problems"] == [] and first["steps_done"] == 20
    assert first["final_loss"] == a.final("loss") and first["final_test_acc"] is None
    assert rec["runs"][2]["status"] == "diverged"
    assert div.diverged_at is not None and rec["runs"][2]["diverged_at"] == div.diverged_at
    json.dumps(rec, allow_nan=False)  # strict JSON: no NaN or inf anywhere


def test_flatten_keeps_lists_as_values():
    assert flatten({"a": {"b": [1, 2], "c": {"d": None}}, "e": {}}) == {
        "a.b": [1, 2],
        "a.c.d": None,
        "e": {},
    }


def test_bools_and_numbers_are_not_the_same_value(made, tmp_path):
    a, b = load_run(made["a"]), load_run(made["a2"])
    b.config["model.bias"] = 0  # as if hand-edited: 0 is not false
    b.config["optim.lr"] = 1e-1  # but 0.1 written differently is still 0.1
    assert differing_keys([a, b]) == {"model.bias": [False, 0]}


@pytest.mark.parametrize("what", ["missing", "file", "sweep", "runs dir", "members", "no config"])
def test_a_path_that_is_not_a_run_folder_is_an_error(made, tmp_path, what):
    path = {
        "missing": tmp_path / "nope",
        "file": made["a"] / "summary.json",
        "sweep": made["s1"],
        "runs dir": made["runs"],
        "members": made["s1"] / "members",
    }.get(what)
    if what == "no config":
        path = tmp_path / "run"
        shutil.copytree(made["a"], path)
        (path / "config.yaml").unlink()
    with pytest.raises(XorlabError) as exc:
        load_run(path)
    assert exc.value.file == str(path)


def test_a_config_yaml_that_is_not_yaml_is_an_error(made, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(made["a"], path)
    (path / "config.yaml").write_text("model: {hidden: [3\n")
    with pytest.raises(XorlabError, match="invalid YAML"):
        load_run(path)


def test_unfinished_and_damaged_runs_still_compare(made, tmp_path):
    unfinished, damaged = tmp_path / "u", tmp_path / "d"
    shutil.copytree(made["a"], unfinished)
    shutil.copytree(made["b"], damaged)
    for name in ("summary.json", "metrics.csv"):
        (unfinished / name).unlink()  # both are written when training ends
    (damaged / "metrics.csv").write_bytes(b"\xff\xfe\x00")
    u, d = load_run(unfinished), load_run(damaged)
    assert (u.status, u.problems, len(u.metrics)) == ("unfinished", [], 0)
    assert (d.status, d.problems, len(d.metrics)) == (
        "damaged",
        ["metrics.csv: not a readable table"],
        0,
    )
    assert "metrics.csv: not a readable table" in render(compare_table([u, d]))
    png = overlay_figure_png([u, d, load_run(made["a"])])
    assert Image.open(io.BytesIO(png)).format == "PNG"


def test_overlay_png_decodes(made):
    runs = [load_run(made[k]) for k in ("a", "b")]
    png = overlay_figure_png(runs)
    img = Image.open(io.BytesIO(png))
    img.load()
    assert img.format == "PNG" and img.size[0] >= 1000 and img.size[1] >= 500


def test_overlay_with_a_diverged_run_uses_a_log_loss_axis(made):
    runs = [load_run(made["a"]), load_run(made["div"])]
    assert runs[1].status == "diverged"
    fig = overlay_figure(runs)
    ax_loss, ax_acc = fig.axes[:2]
    assert ax_loss.get_yscale() == "log" and ax_acc.get_yscale() == "linear"
    assert ax_loss.get_xlabel().startswith("training step") and ax_acc.get_ylabel() == "accuracy"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("diverged at step" in s for s in labels)
    assert fig.get_suptitle().startswith("2 runs: ")
    Image.open(io.BytesIO(overlay_figure_png(runs))).load()


def test_overlay_of_nothing_is_an_error():
    with pytest.raises(XorlabError):
        overlay_figure([])
