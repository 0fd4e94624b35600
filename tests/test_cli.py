"""The command line, as a user meets it: exit codes, messages, files written or not."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from xorlab.cli import app

from .conftest import CONFIGS, TINY, write

runner = CliRunner()
SCRIPT = str(Path(sys.executable).parent / "xorlab")
RUN_FILES = {"config.yaml", "meta.json", "metrics.csv", "summary.json", "data.npz", "init.npz",
             "final.npz"}  # fmt: skip


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def only_run(runs_dir: Path) -> Path:
    folders = list(runs_dir.iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def test_train_writes_a_complete_run_folder(tiny_config, runs_dir):
    res = invoke("train", tiny_config, "--runs-dir", runs_dir)
    assert res.exit_code == 0, res.output
    run = only_run(runs_dir)
    assert run.name.startswith(time.strftime("%Y%m%d-")) and "-tiny-" in run.name
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    assert "completed" in res.output and str(run) in res.output.replace("\n", "")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps_done"] == 30
    assert summary["diverged_at"] is None and set(summary["final"]) == {
        "loss",
        "train_acc",
        "test_acc",
    }
    assert summary["best"]["train_acc"] is not None and summary["wall_s"] > 0
    meta = json.loads((run / "meta.json").read_text())
    assert {"xorlab", "python", "numpy", "platform", "command", "git_commit", "started_at",
            "finished_at"} <= set(meta)  # fmt: skip
    metrics = pd.read_csv(run / "metrics.csv")
    assert len(metrics) == 30 and metrics["step"].tolist() == list(range(30))
    with np.load(run / "final.npz") as z:
        assert sorted(z.files) == ["W1", "W2"] and z["W1"].shape == (2, 4)
    with np.load(run / "data.npz") as z:
        assert z["X_train"].shape == (40, 2) and z["y_test"].shape == (0, 2)


def test_rerun_from_written_config_is_byte_identical(tiny_config, runs_dir):
    assert invoke("train", tiny_config, "--runs-dir", runs_dir, "-q").exit_code == 0
    first = only_run(runs_dir)
    again_dir = runs_dir.parent / "again"
    res = invoke("train", first / "config.yaml", "--runs-dir", again_dir, "-q")
    assert res.exit_code == 0, res.output
    second = only_run(again_dir)
    for name in ("metrics.csv", "final.npz", "init.npz", "data.npz", "config.yaml"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_quiet_prints_only_the_folder(tiny_config, runs_dir):
    res = invoke("train", tiny_config, "--runs-dir", runs_dir, "--quiet")
    assert res.exit_code == 0
    assert res.output.strip() == str(only_run(runs_dir))


def test_set_and_name_flags(tiny_config, runs_dir):
    res = invoke("train", tiny_config, "--runs-dir", runs_dir, "-q", "--set", "model.hidden=[7]",
                 "--set", "train.steps=5", "--name", "other")  # fmt: skip
    assert res.exit_code == 0, res.output
    run = only_run(runs_dir)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["hidden"] == [7] and cfg["train"]["steps"] == 5 and cfg["name"] == "other"
    assert "-other-" in run.name


def test_plots_are_written_unless_no_plots(tmp_path, runs_dir):
    cfg = write(tmp_path, TINY.replace("plots: {enabled: false}", "plots: {gif_frames: 3}"))
    assert invoke("train", cfg, "--runs-dir", runs_dir, "-q").exit_code == 0
    plots = only_run(runs_dir) / "plots"
    assert {p.name for p in plots.iterdir()} == {"panel.png", "training.gif"}
    other = tmp_path / "other"
    assert invoke("train", cfg, "--runs-dir", other, "-q", "--no-plots").exit_code == 0
    assert not (only_run(other) / "plots").exists()


BAD_INPUTS = [
    ("optim: {lr: 0}", "optim.lr: input should be greater than 0"),
    ("model: {hiden: [3]}", "model.hiden: unknown key (did you mean 'hidden'?)"),
    ("train: {batch_size: true}", "train.batch_size: input should be a valid integer"),
    ("a: [1\nb: 2", "invalid YAML: line 2, column"),
    ("data: {n: 3}\ndata: {n: 4}", "duplicate key 'data'"),
    ("!!python/object/apply:os.system ['touch /tmp/xorlab-pwned']", "YAML tags are not allowed"),
    ("[1, 2]", "a config must be a mapping"),
    ("name: ../escape", "name: must be 1-80 letters"),
    ("optim: {lr: .nan}", "optim.lr: must be a finite number"),
    ("model: {hidden: [100000, 100000, 100000]}", "model.hidden: this run would need about"),
    ("optim: {schedule: {every: 0}}", "optim.schedule.every"),
    ("optim: {clip: {max: -1.0}}", "optim.clip.max"),
    ("data: {test_fraction: 1.5}", "data.test_fraction"),
]


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS)
def test_bad_config_exit_2_one_line_nothing_written(tmp_path, runs_dir, text, message):
    cfg = write(tmp_path, text)
    res = invoke("train", cfg, "--runs-dir", runs_dir)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"error: {cfg}: ") and message in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert not runs_dir.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "optim.lr"], "--set: expected KEY=VALUE"),
        (["--set", "optim.lrr=1"], "optim.lrr: unknown key (did you mean 'lr'?)"),
        (["--set", "optim.lr=-1"], "optim.lr: input should be greater than 0"),
        (["--set", "optim.lr=[1"], "invalid YAML"),
        (["--name", "../x"], "name: must be 1-80"),
    ],
)
def test_bad_flags_exit_2(tiny_config, runs_dir, args, message):
    res = invoke("train", tiny_config, "--runs-dir", runs_dir, *args)
    assert res.exit_code == 2 and message in res.output, res.output
    assert not runs_dir.exists()


def test_missing_config_file(tmp_path, runs_dir):
    res = invoke("train", tmp_path / "nope.yaml", "--runs-dir", runs_dir)
    assert res.exit_code == 2 and "nope.yaml: no such file" in res.output
    assert not runs_dir.exists()


def test_validate(tiny_config, tmp_path):
    res = invoke("validate", tiny_config)
    assert res.exit_code == 0 and "ok" in res.output and "tiny" in res.output
    res = invoke("validate", write(tmp_path, "optim: {lr: -1}", "bad.yaml"))
    assert res.exit_code == 2 and "optim.lr" in res.output


def test_repo_configs_validate():
    configs = sorted(CONFIGS.glob("*.yaml"))
    assert configs, "configs/ is empty"
    for path in configs:
        res = invoke("validate", path)
        assert res.exit_code == 0, res.output
        assert path.read_text().startswith("#"), f"{path.name} should open with a comment"


WORKED_W1 = [[-0.67746455, 0.37769425, -0.07365253], [-0.53663519, 0.60920496, 0.21149622]]
WORKED_W2 = [[-0.41491732, -0.30992816], [-0.31583913, -0.27706468], [-0.44701662, 0.15231059]]


def test_explain_reproduces_the_tutorials_worked_example(tmp_path):
    w = tmp_path / "w.npz"
    np.savez(w, W1=np.array(WORKED_W1), W2=np.array(WORKED_W2))
    res = invoke("explain", "--weights", w, "--x", "1.76405235,0.40015721", "--y", "1,0",
                 "--lr", "0.1", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    np.testing.assert_allclose(info["h"][0], [0.19626223, 0.71301043, 0.48867814], atol=1e-8)
    np.testing.assert_allclose(info["h"][1], [0.37166596, 0.45414264], atol=1e-8)
    assert len(info["z"]) == 2 and set(info["grads"]) == {"W1", "W2"}
    # one SGD step: W2 - 0.1 * dW2
    np.testing.assert_allclose(
        info["updated"]["W2"], np.array(WORKED_W2) - 0.1 * np.array(info["grads"]["W2"])
    )
    # dL/dW2[0,0] = h1[0] * (h2[0] - y[0]) * h2[0] * (1 - h2[0])
    expected = 0.19626223 * (0.37166596 - 1) * 0.37166596 * (1 - 0.37166596)
    assert info["grads"]["W2"][0][0] == pytest.approx(expected, rel=1e-6)
    assert info["loss"] == pytest.approx(0.30052460, abs=1e-8)


def test_explain_readable_layout_and_config_source(tiny_config):
    res = invoke("explain", tiny_config)
    assert res.exit_code == 0, res.output
    for word in ("forward", "backward", "dL_dh2", "dh2_dz2", "dL_dz1", "gradients", "SGD"):
        assert word in res.output, word


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a CONFIG"),
        (["--weights", "nope.npz"], "no such file"),
        (["--x", "1,2,3"], "--x: expected 2 finite"),
        (["--y", "a,b"], "--y: expected 2 comma-separated"),
        (["--lr", "-1"], "--lr: must be a finite number > 0"),
    ],
)
def test_explain_bad_input(tiny_config, args, message):
    extra = [] if not args or args[0] == "--weights" else [tiny_config]
    res = invoke("explain", *extra, *args)
    assert res.exit_code == 2 and message in res.output, res.output


def test_gradcheck_passes_and_reports(tiny_config):
    res = invoke("gradcheck", tiny_config, "--set", "model.bias=true")
    assert res.exit_code == 0, res.output
    assert "W1" in res.output and "b2" in res.output and "FAIL" not in res.output


def test_gradcheck_fails_above_tolerance(tiny_config):
    res = invoke("gradcheck", tiny_config, "--tol", "1e-30")
    assert res.exit_code == 1 and "FAIL" in res.output


@pytest.mark.parametrize(
    "command", ["train", "sweep", "report", "runs", "compare", "validate", "explain", "gradcheck"]
)
def test_help(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0 and "Usage" in res.output


def test_unknown_command_is_a_usage_error():
    assert invoke("bogus").exit_code == 2


def test_installed_script_runs_for_real(tiny_config, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"}
    proc = subprocess.run(
        [SCRIPT, "train", str(tiny_config), "--runs-dir", str(tmp_path / "r"), "--quiet"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip())
    assert (folder / "summary.json").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "xorlab", "train", str(write(tmp_path, "optim: {lr: 0}", "b.yaml"))],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "optim.lr" in bad.stderr
    assert not (tmp_path / "runs").exists()


def test_diverging_run_exits_0_with_status_diverged(tmp_path, runs_dir):
    cfg = write(tmp_path, "model: {hidden: [50], activation: relu, loss: cross_entropy, bias: true}"
                "\noptim: {lr: 1.0e+6}\ntrain: {steps: 100}\nplots: {gif_frames: 3}")  # fmt: skip
    res = invoke("train", cfg, "--runs-dir", runs_dir)
    assert res.exit_code == 0, res.output
    summary = json.loads((only_run(runs_dir) / "summary.json").read_text())
    assert summary["status"] == "diverged" and isinstance(summary["diverged_at"], int)
    assert "diverged" in res.output


def test_ctrl_c_leaves_an_interrupted_folder(tmp_path):
    cfg = write(tmp_path, TINY.replace("steps: 30", "steps: 5000000, log_every: 1000"))
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [SCRIPT, "train", str(cfg), "--runs-dir", str(runs), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline and not list(runs.glob("*/config.yaml")):
        time.sleep(0.05)
    time.sleep(1.0)  # let it train for a while
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    run = only_run(runs)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps_done"] < 5_000_000
    metrics = pd.read_csv(run / "metrics.csv")
    assert len(metrics) >= 1 and metrics["step"].iloc[-1] <= summary["steps_done"]
    assert (run / "final.npz").exists()


def test_runs_started_together_never_share_a_folder(tmp_path):
    code = (
        "import sys; from xorlab.rundir import new_folder; "
        "print(new_folder(sys.argv[1], 'same', stamp='20260101-000000'))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                         text=True)
        for _ in range(6)
    ]  # fmt: skip
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert len(set(outs)) == 6 and len(list(tmp_path.iterdir())) == 6


def test_runs_lists_and_json_round_trips(tiny_config, runs_dir, tmp_path):
    for lr in ("0.1", "0.2"):
        assert invoke("train", tiny_config, "--runs-dir", runs_dir, "-q", "--set",
                      f"optim.lr={lr}").exit_code == 0  # fmt: skip
    res = invoke("runs", runs_dir)
    assert res.exit_code == 0, res.output
    assert res.output.count("-tiny-") >= 2 or "tiny" in res.output
    res = invoke("runs", runs_dir, "--json")
    import io

    df = pd.read_json(io.StringIO(res.output))
    assert len(df) == 2 and set(df["status"]) == {"completed"}
    res = invoke("runs", runs_dir, "--status", "diverged", "--json")
    assert json.loads(res.output) == []
    assert invoke("runs", runs_dir, "--sort", "bogus").exit_code == 2
    assert invoke("runs", tmp_path / "nope").exit_code == 2


def test_compare_lists_exactly_the_differing_keys(tiny_config, runs_dir, tmp_path):
    assert invoke("train", tiny_config, "--runs-dir", runs_dir / "a", "-q").exit_code == 0
    assert invoke("train", tiny_config, "--runs-dir", runs_dir / "b", "-q", "--set",
                  "optim.lr=0.2", "--set", "model.hidden=[6]").exit_code == 0  # fmt: skip
    a, b = only_run(runs_dir / "a"), only_run(runs_dir / "b")
    res = invoke("compare", a, b, "--out", tmp_path / "cmp")
    assert res.exit_code == 0, res.output
    assert "optim.lr" in res.output and "model.hidden" in res.output
    assert "optim.kind" not in res.output and "data.n" not in res.output
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == ["compare.json", "compare.png"]
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert record["differing_keys"] == ["model.hidden", "optim.lr"]
    assert [r["path"] for r in record["runs"]] == [str(a), str(b)]
    assert [r["config"] for r in record["runs"]] == [
        {"model.hidden": [4], "optim.lr": 0.5},
        {"model.hidden": [6], "optim.lr": 0.2},
    ]
    assert invoke("compare", a).exit_code == 2
    assert invoke("compare", a, tmp_path).exit_code == 2


def test_report_command(tiny_config, runs_dir, tmp_path):
    assert invoke("train", tiny_config, "--runs-dir", runs_dir, "-q").exit_code == 0
    run = only_run(runs_dir)
    res = invoke("report", run, "--quiet")
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(run / "report" / "index.html")
    assert (run / "report" / "report.md").exists()
    res = invoke("report", run, "--out", tmp_path / "elsewhere")
    assert res.exit_code == 0 and (tmp_path / "elsewhere" / "index.html").exists()
    junk = tmp_path / "junk"
    junk.mkdir()
    res = invoke("report", junk)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert list(junk.iterdir()) == []


def test_compare_without_out_prints_and_writes_nothing(
    tiny_config, runs_dir, tmp_path, monkeypatch
):
    for lr in ("0.1", "0.2"):
        assert invoke("train", tiny_config, "--runs-dir", runs_dir, "-q", "--set",
                      f"optim.lr={lr}").exit_code == 0  # fmt: skip
    a, b = sorted(runs_dir.iterdir())
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    res = invoke("compare", a, b)
    assert res.exit_code == 0, res.output
    assert "optim.lr" in res.output and f"#1 {a}" in res.output and f"#2 {b}" in res.output
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    assert list(work.iterdir()) == []
    help_text = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "250"}).output
    assert "compare.json (the table)" in help_text and "Without --out nothing" in help_text


@pytest.mark.parametrize("under", ["", "sub"])
def test_compare_out_that_is_a_file_exit_2_before_anything(tiny_config, runs_dir, tmp_path, under):
    for lr in ("0.1", "0.2"):
        assert invoke("train", tiny_config, "--runs-dir", runs_dir, "-q", "--set",
                      f"optim.lr={lr}").exit_code == 0  # fmt: skip
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    target = afile / under if under else afile
    res = invoke("compare", *sorted(runs_dir.iterdir()), "--out", target)
    assert res.exit_code == 2, res.output
    what = "a file, not a folder" if not under else f"{afile} is a file, not a folder"
    assert res.output == f"error: {target}: --out: {what}\n"  # no table, no traceback
    assert afile.read_text() == "keep me"


@pytest.mark.parametrize("command", ["train", "sweep"])
@pytest.mark.parametrize("under", ["", "sub/deeper"])
def test_runs_dir_that_is_a_file_exit_2_nothing_written(tiny_config, tmp_path, command, under):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    target = afile / under if under else afile
    source = tiny_config
    if command == "sweep":
        source = write(tmp_path, "name: s\nbase: tiny.yaml\ngrid: {optim.lr: [0.1, 0.2]}\n",
                       "s.yaml")  # fmt: skip
    before = sorted(tmp_path.rglob("*"))
    res = invoke(command, source, "--runs-dir", target)
    assert res.exit_code == 2, res.output
    what = "a file, not a folder" if not under else f"{afile} is a file, not a folder"
    assert res.output == f"error: {target}: --runs-dir: {what}\n"
    assert sorted(tmp_path.rglob("*")) == before and afile.read_text() == "keep me"


def test_explain_shows_the_penalty_part_of_each_gradient(tmp_path):
    cfg = write(tmp_path, TINY + "regularization: {kind: l2, strength: 0.5}\n")
    res = invoke("explain", cfg, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    w1 = np.array(json.loads(invoke("explain", cfg, "--json", "--lr", "1").output)["updated"]["W1"])
    w1 = w1 + np.array(info["grads"]["W1"])  # W1 - 1 * dW1 + dW1: the initial weights
    # l2 on one sample: dL/dW1 = h0^T @ dL_dz1 + lam/N * W1 with lam = 0.5, N = 1
    np.testing.assert_allclose(info["penalty_grads"]["W1"], 0.5 * w1, rtol=1e-12)
    h0 = np.array(info["x"]).reshape(-1, 1)
    dz1 = np.array([step for step in info["chain"] if step["layer"] == 1][0]["dL_dz"])
    np.testing.assert_allclose(info["data_grads"]["W1"], h0 @ dz1.reshape(1, -1), rtol=1e-12)
    for k in ("W1", "W2"):
        total = np.array(info["data_grads"][k]) + np.array(info["penalty_grads"][k])
        assert (total == np.array(info["grads"][k])).all(), k
    text = invoke("explain", cfg).output
    assert "h^T @ dL_dz" not in text
    assert "data part of dL_dW1: h0^T @ dL_dz1" in text
    assert "penalty part of dL_dW1: λ/N * W1  (l2 penalty, λ = 0.5, N = 1)" in text
    assert "dL_dW2 = h1^T @ dL_dz2 + λ/N * W2" in text
    plain_cfg = write(tmp_path, TINY + "regularization: {kind: none}\n", "plain.yaml")
    plain = invoke("explain", plain_cfg).output
    assert "dL_dW1 = h0^T @ dL_dz1" in plain and "penalty part" not in plain


def test_explain_with_biases_renders_the_bias_vectors(tmp_path):
    # the README's example: configs/xor_h3.yaml has biases (a TypeError in _matrix_table before)
    res = invoke("explain", CONFIGS / "xor_h3.yaml")
    assert res.exit_code == 0, res.output
    info = json.loads(invoke("explain", CONFIGS / "xor_h3.yaml", "--json").output)
    db1 = info["grads"]["b1"]
    assert "dL_db1 = dL_dz1" in res.output and "b1 - 3 * dL_db1" in res.output
    shown = re.search(r"dL_db1 = dL_dz1 *│\n│ *([-\d. ]+)│", res.output)
    assert shown and shown.group(1).split() == [f"{v:.8f}" for v in db1], res.output
    w = tmp_path / "w.npz"
    np.savez(w, W1=np.ones((2, 3)), b1=np.zeros(3), W2=np.ones((3, 2)), b2=np.zeros(2))
    res = invoke("explain", "--weights", w)
    assert res.exit_code == 0, res.output
    assert "dL_db2 = dL_dz2" in res.output


def test_explain_weights_that_are_not_npz(tmp_path):
    notes = write(tmp_path, "some notes\n", "notes.txt")
    res = invoke("explain", "--weights", notes)
    assert res.exit_code == 2
    assert res.output == f"error: {notes}: not a .npz file (expected arrays W1, W2, ... saved by "\
        "numpy.savez)\n"  # fmt: skip
    objects = tmp_path / "objects.npz"
    np.savez(objects, W1=np.array([{"a": 1}], dtype=object))
    res = invoke("explain", "--weights", objects)
    assert res.exit_code == 2 and "holds Python objects" in res.output
    npy = tmp_path / "w.npy"
    np.save(npy, np.ones((2, 3)))
    cut = tmp_path / "cut.npz"
    np.savez(cut, W1=np.ones((2, 3)), W2=np.ones((3, 2)))
    cut.write_bytes(cut.read_bytes()[:60])
    for path in (notes, objects, npy, cut, tmp_path):
        res = invoke("explain", "--weights", path)
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert "pickle" not in res.output and "Traceback" not in res.output


ONE_HOT = [("0.3,0.3", False), ("1,1", False), ("0,0", False), ("2,-1", False), ("0,1", True),
           ("1.0,0.0", True)]  # fmt: skip


@pytest.mark.parametrize(("y", "ok"), ONE_HOT)
def test_explain_y_must_be_one_hot(tiny_config, y, ok):
    res = invoke("explain", tiny_config, "--y", y, "--json")
    if ok:
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["y"] == [float(v) for v in y.split(",")]
    else:
        assert res.exit_code == 2
        assert res.output == (f"error: --y: must be a one-hot target such as 1,0 (one 1, the rest "
                              f"0), got {y!r}\n")  # fmt: skip


@pytest.mark.parametrize("tol", ["-1", "nan", "inf", "0"])
def test_gradcheck_tolerance_must_be_positive(tiny_config, tol):
    res = invoke("gradcheck", tiny_config, "--tol", tol)
    assert res.exit_code == 2, res.output
    assert res.output == f"error: --tol: must be a finite number > 0, got {float(tol):g}\n"


def test_report_checks_every_path_before_writing_any(tiny_config, runs_dir, tmp_path):
    assert invoke("train", tiny_config, "--runs-dir", runs_dir, "-q").exit_code == 0
    run = only_run(runs_dir)
    junk = tmp_path / "junk"
    junk.mkdir()
    res = invoke("report", run, junk)
    assert res.exit_code == 2 and res.output.startswith(f"error: {junk}: not a run or sweep")
    res = invoke("report", run, run, "--metric", "final_train_acc")
    assert res.exit_code == 2 and "--metric apply to a sweep folder" in res.output
    afile = tmp_path / "afile"
    afile.write_text("")
    res = invoke("report", run, "--out", afile / "sub")
    assert res.exit_code == 2
    assert res.output == f"error: {afile / 'sub'}: cannot create the report folder: {afile} is "\
        "a file\n"  # fmt: skip
    res = invoke("report", run, run, "--out", tmp_path / "both")
    assert res.exit_code == 2 and "would write the same report folder" in res.output
    assert not (run / "report").exists() and not (tmp_path / "both").exists()


def test_train_summary_numbers_read_evenly():
    from rich.console import Console

    from xorlab.commands import summary_table
    from xorlab.config import validate

    cfg = validate({"name": "t", "train": {"steps": 5}})

    class Result:
        status, diverged_at, steps_done = "completed", None, 5
        final = {"loss": 0.1, "train_acc": 1.0, "test_acc": 0.0}
        best = {"train_acc": 1.0, "step": 5}

    console = Console(width=120, record=True, file=io.StringIO())
    console.print(summary_table(cfg, Result(), 0.5, Path("runs/x")))
    text = console.export_text()
    assert "│ final loss      │ 0.1000" in text
    assert "│ train accuracy  │ 1.000" in text and "│ test accuracy   │ 0.000" in text
    assert "│ best train acc. │ 1.000 (step 5)" in text


LONG = "a-run-name-long-enough-that-no-eighty-column-terminal-could-ever-show-it-whole"


def test_piped_output_never_wraps_folder_names(tmp_path, runs_dir):
    cfg = write(tmp_path, TINY.replace("name: tiny", f"name: {LONG}"))
    sweep = write(tmp_path, f"name: {LONG}\nbase: c.yaml\ngrid: {{optim.lr: [0.1, 0.2]}}\n",
                  "s.yaml")  # fmt: skip
    env = {"COLUMNS": "80"}
    res = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(runs_dir)], env=env)
    assert res.exit_code == 0, res.output
    run = only_run(runs_dir)
    assert any(str(run) in line for line in res.output.splitlines()), res.output
    res = runner.invoke(app, ["train", str(cfg), "--runs-dir", str(runs_dir), "-q"], env=env)
    second = Path(res.output.strip())
    res = runner.invoke(app, ["runs", str(runs_dir)], env=env)
    lines = res.output.splitlines()
    assert any(run.name in line for line in lines) and any(second.name in line for line in lines)
    res = runner.invoke(app, ["compare", str(run), str(second)], env=env)
    assert f"#1 {run}" in res.output.splitlines() and f"#2 {second}" in res.output.splitlines()
    assert any(run.name in line for line in res.output.splitlines())
    res = runner.invoke(app, ["validate", str(sweep)], env=env)
    assert res.exit_code == 0 and res.output.count("\n") == 1, res.output
    res = runner.invoke(app, ["sweep", str(sweep), "--dry-run"], env=env)
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"sweep {LONG}: 2 members"), res.output  # a title, unwrapped
    assert sum(f"lr={lr}" in line for line in res.output.splitlines() for lr in ("0.1", "0.2")) >= 2
    res = runner.invoke(app, ["explain", str(cfg)], env=env)
    assert max(len(line) for line in res.output.splitlines()) < 120  # panels fit their contents


USAGE = {
    "train": "xorlab train [OPTIONS] CONFIG",
    "sweep": "xorlab sweep [OPTIONS] [SWEEP]",
    "report": "xorlab report [OPTIONS] PATH...",
    "runs": "xorlab runs [OPTIONS] [DIR]",
    "compare": "xorlab compare [OPTIONS] RUN...",
    "validate": "xorlab validate [OPTIONS] FILE",
    "explain": "xorlab explain [OPTIONS] [CONFIG]",
    "gradcheck": "xorlab gradcheck [OPTIONS] CONFIG",
}


def all_commands() -> list[str]:
    import typer

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["", *all_commands()])
def test_help_uses_conventional_metavars(command):
    res = runner.invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    for bad in ("<bool>", "<list", "<str>", "<path>", "<float>", "<int", "{"):
        assert bad not in res.output, (bad, res.output)
    if command in USAGE:
        assert f"Usage: {USAGE[command]}" in res.output
    elif command:  # a command added later: its arguments in capitals, not typer's {name}
        usage = next(line for line in res.output.splitlines() if "Usage:" in line)
        assert not any(c.islower() for c in usage.split("[OPTIONS]")[1]), usage
    assert re.search(r"--help +Show this message", res.output), res.output  # no value shown
    if command in ("train", "sweep", "report"):
        assert re.search(r"-q, --quiet +Print only", res.output), res.output


README = CONFIGS.parent / "README.md"
# The one README command the suite cannot run: it needs a Dask cluster at the address it names.
README_NEEDS_CLUSTER = "--scheduler tcp://"
# Sweeps run as shown but quick: 5 steps, no plots (full sweeps and plots are tested elsewhere).
QUICK_SWEEP = ["--set", "train.steps=5", "--set", "plots.enabled=false"]
QUICK_SEARCH = ["--set", "train.steps=120", "--set", "plots.enabled=false"]


def readme_commands() -> list[tuple[str, int, list[str]]]:
    """Every `xorlab ...` command of README.md's bash and console code blocks, in order, comments
    dropped, with the exit code the README documents and the output it shows: a bash block's
    command exits 0; a console block's command whose output is `error:` lines exits 2."""
    commands: list[tuple[str, int, list[str]]] = []
    block = None
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            block = line[3:].strip() if block is None else None
        elif block == "bash" and line.startswith("xorlab "):
            commands.append((line.split("  #")[0].strip(), 0, []))
        elif block == "console" and line.startswith("$ xorlab "):
            commands.append((line[2:].split("  #")[0].strip(), 0, []))
        elif block == "console" and commands and line:
            command, _, shown = commands[-1]
            shown.append(line)
            commands[-1] = (command, 2 if shown[0].startswith("error:") else 0, shown)
    return commands


def test_readme_commands_run(tmp_path, monkeypatch):
    """The README's commands, in its order, on a fresh folder: each ends with the exit code the
    README documents, and a shown error is printed as shown. Placeholders such as runs/<run>
    become folders made first; `train` runs without plots, sweeps with 5 steps and no plots."""
    commands = readme_commands()
    assert any(c.startswith("xorlab explain configs/xor_h3.yaml") for c, _, _ in commands)
    assert [code for _, code, _ in commands].count(2) == 2  # the two errors the README shows
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(CONFIGS)
    quick = ["--no-plots", "-q", "--set", "train.steps=20"]
    run = Path(invoke("train", "configs/xor_h3.yaml", *quick).output.strip())
    other = Path(
        invoke("train", "configs/xor_h3.yaml", *quick, "--set", "optim.lr=1").output.strip()
    )
    made = invoke("sweep", "configs/sweeps/lr_vs_hidden.yaml", *QUICK_SWEEP, "-j", "1", "-q")
    sweep = Path(made.output.strip())  # varies optim.lr and model.hidden, as --x/--y need
    member = yaml.safe_load((sweep / "sweep.yaml").read_text())["members"][0]["folder"]
    write(tmp_path, "base: configs/xor_h3.yaml\ngrid: {optim.lr: [0.1, 1.0]}\n"
          "zip: {optim.lr: [0.5, 2.0], train.steps: [10, 20]}\n", "gz.yaml")  # fmt: skip
    places = {"<run or sweep folder>": run.name, "<run>": run.name, "<a>": run.name,
              "<b>": other.name, "<sweep folder>": sweep.name, "<sweep>": sweep.name,
              "<c>": member}  # fmt: skip
    ran = []
    for command, code, shown in commands:
        if README_NEEDS_CLUSTER in command:
            continue
        for place, name in places.items():
            command = command.replace(place, name)
        assert "<" not in command, command
        args = shlex.split(command)[1:]
        if args[0] == "train" and "--no-plots" not in args:
            args.append("--no-plots")
        if args[0] == "sweep" and "--resume" not in args and "--dry-run" not in args:
            # a search needs room for its first rung or round (halving 37 x 3, pbt 100)
            searches = ("halving.yaml", "pbt.yaml", "halving_auto.yaml")
            args += QUICK_SEARCH if any(s in command for s in searches) else QUICK_SWEEP
        res = invoke(*args)
        assert res.exit_code == code, (command, res.output)
        assert "Traceback" not in res.output, command
        if code == 2:
            assert res.stderr.splitlines() == shown, command
        ran.append(args[0])
    every = {"train", "validate", "report", "runs", "compare", "sweep", "explain", "gradcheck"}
    assert every <= set(ran), ran
    assert ran.count("explain") == 4 and ran.count("sweep") == 9, ran
    assert (tmp_path / "cmp" / "compare.json").exists()


def test_validate_starts_light_and_prints_one_plain_line(tmp_path):
    """`xorlab validate CONFIG` loads neither rich (its answer is one plain line), numpy, pandas,
    ctypes (malloc tuning is for commands that compute) nor the sweep and search modules."""
    cfg = write(tmp_path, "name: plain\ntrain: {steps: 7}", "c.yaml")
    heavy = ("rich", "numpy", "pandas", "ctypes", "xorlab.console", "xorlab.sweep", "xorlab.search")
    code = (
        "import atexit, sys\nfrom xorlab import cli\n"
        f"atexit.register(lambda: print([m for m in {heavy!r} if m in sys.modules],"
        " file=sys.stderr))\n"
        f"sys.argv = ['xorlab', 'validate', {str(cfg)!r}]\ncli.main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "[]\n")
    # the default net: 2 -> 3 -> 2 without biases, 2*3 + 3*2 = 12 weights
    assert proc.stdout == f"{cfg}: ok (config 'plain', 12 parameters, 7 steps)\n"


def test_validate_escapes_a_file_name_it_prints(tmp_path):
    cfg = tmp_path / "a\x1b[31mb.yaml"
    cfg.write_text("name: x\n")
    res = invoke("validate", str(cfg))
    assert res.exit_code == 0, res.output
    assert (
        res.output == f"{tmp_path}/a\\x1b[31mb.yaml: ok (config 'x', 12 parameters, 1000 steps)\n"
    )
