"""Sweeps: expansion, validation first, parallel = serial, faults isolated, resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml
from typer.testing import CliRunner

from xorlab import executors
from xorlab.cli import app
from xorlab.errors import ConfigError
from xorlab.sweep import load_sweep

from .conftest import write

runner = CliRunner()
SCRIPT = str(Path(sys.executable).parent / "xorlab")
BASE = "name: base\ndata: {n: 40}\nmodel: {hidden: [3]}\noptim: {lr: 0.5}\ntrain: {steps: 20}\n"
RESULT_COLS = ["index", "run_dir", "seed", "status", "final_loss", "final_train_acc",
               "diverged_at"]  # fmt: skip


def sweep_file(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    write(tmp_path, BASE, "base.yaml")
    return write(tmp_path, "base: base.yaml\nset: {plots.enabled: false}\n" + body, name)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def only(folder: Path) -> Path:
    items = list(folder.iterdir())
    assert len(items) == 1, items
    return items[0]


# --- expansion ----------------------------------------------------------------------------------


def test_grid_is_a_cartesian_product_in_order(tmp_path):
    s = load_sweep(sweep_file(tmp_path, "grid: {optim.lr: [0.1, 1.0], model.hidden: [[3], [50]]}"))
    assert [(m.config.optim.lr, m.config.model.hidden) for m in s.members] == [
        (0.1, [3]), (0.1, [50]), (1.0, [3]), (1.0, [50])
    ]  # fmt: skip
    assert [m.label for m in s.members] == [
        "000-lr=0.1,hidden=3", "001-lr=0.1,hidden=50", "002-lr=1,hidden=3", "003-lr=1,hidden=50"
    ]  # fmt: skip
    assert s.varied_keys == ["optim.lr", "model.hidden"]


def test_variants_times_seeds(tmp_path):
    body = (
        "variants:\n  - {name: h3, set: {model.hidden: [3]}}\n"
        "  - {name: h50, set: {model.hidden: [50], optim.lr: 0.1}}\nseeds: [0, 1, 2]\n"
    )
    s = load_sweep(sweep_file(tmp_path, body))
    assert len(s.members) == 6
    assert [(m.variant, m.seed) for m in s.members] == [
        ("h3", 0), ("h3", 1), ("h3", 2), ("h50", 0), ("h50", 1), ("h50", 2)
    ]  # fmt: skip
    assert s.members[4].label == "004-h50,seed=1"
    assert s.members[4].config.optim.lr == 0.1 and s.members[0].config.optim.lr == 0.5


def test_zip_varies_together_and_seeds_as_count(tmp_path):
    s = load_sweep(sweep_file(tmp_path, "zip: {optim.lr: [0.1, 0.2], train.steps: [5, 7]}\n"
                                        "seeds: 2\n"))  # fmt: skip
    assert [(m.config.optim.lr, m.config.train.steps, m.seed) for m in s.members] == [
        (0.1, 5, 0), (0.1, 5, 1), (0.2, 7, 0), (0.2, 7, 1)
    ]  # fmt: skip


def test_random_draws_are_seeded_and_stable(tmp_path):
    body = ("random:\n  n: 5\n  seed: 3\n  params:\n    optim.lr: {loguniform: [0.001, 1.0]}\n"
            "    model.hidden: {choice: [[3], [8]]}\n    train.steps: {int: [5, 9]}\n"
            "    regularization.strength: {uniform: [0.0, 0.1]}\n")  # fmt: skip
    a = load_sweep(sweep_file(tmp_path, body))
    b = load_sweep(sweep_file(tmp_path, body, "again.yaml"))
    assert len(a.members) == 5
    assert [m.overrides for m in a.members] == [m.overrides for m in b.members]
    for m in a.members:
        assert 0.001 <= m.config.optim.lr <= 1.0 and 5 <= m.config.train.steps <= 9
        assert m.config.model.hidden in ([3], [8])
    assert len({m.config.optim.lr for m in a.members}) == 5


def test_all_kinds_multiply(tmp_path):
    body = ("variants: [{name: a}, {name: b}]\ngrid: {optim.lr: [0.1, 0.2, 0.3]}\n"
            "zip: {train.steps: [5, 6]}\nrandom: {n: 2, params: {seed: {int: [0, 9]}}}\n"
            "seeds: [4, 5]\n")  # fmt: skip
    assert len(load_sweep(sweep_file(tmp_path, body)).members) == 2 * 3 * 2 * 2 * 2


def test_inline_config_and_set(tmp_path):
    p = write(tmp_path, "config: {model: {hidden: [2]}, train: {steps: 3}}\n"
                        "grid: {optim.lr: [0.1, 0.2]}\n")  # fmt: skip
    s = load_sweep(p, ["train.steps=4"])
    assert all(m.config.train.steps == 4 and m.config.model.hidden == [2] for m in s.members)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("grid: {optim.lr: [0.1, -1.0]}", "member 1 (001-lr=-1): optim.lr: input should be"),
        ("grid: {optim.lrr: [0.1]}", "optim.lrr: unknown key (did you mean 'lr'?)"),
        ("grid: {optim.lr: 0.1}", "grid.optim.lr: must be a non-empty list"),
        ("zip: {optim.lr: [0.1, 0.2], train.steps: [5]}", "zip: all lists must have one length"),
        ("random: {n: 2, params: {optim.lr: {normal: [0, 1]}}}", "random.params.optim.lr"),
        ("grids: {optim.lr: [0.1]}", "grids: unknown sweep key"),
        ("variants: [{name: a}, {name: a}]", "duplicate variant names"),
    ],
)
def test_invalid_sweeps_exit_2_and_write_nothing(tmp_path, body, fragment):
    runs = tmp_path / "runs"
    res = invoke("sweep", sweep_file(tmp_path, body), "--runs-dir", runs)
    assert res.exit_code == 2, res.output
    assert fragment in res.output and "Traceback" not in res.output
    assert not runs.exists()


def test_max_runs(tmp_path):
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 0.2, 0.3]}\nseeds: 4\n")
    with pytest.raises(ConfigError, match="12 members, more than --max-runs 10"):
        load_sweep(p, max_runs=10)
    res = invoke("sweep", p, "--max-runs", "10", "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2 and not (tmp_path / "runs").exists()


def test_dry_run_lists_members_and_writes_nothing(tmp_path):
    res = invoke("sweep", sweep_file(tmp_path, "grid: {optim.lr: [0.1, 0.2]}\nseeds: 2\n"),
                 "--dry-run", "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "001-lr=0.1,seed=1" in res.output and "4 members" in res.output
    assert not (tmp_path / "runs").exists()


# --- running ------------------------------------------------------------------------------------


def test_sweep_folder_and_summary(tmp_path):
    body = "variants: [{name: a}, {name: big, set: {optim.lr: 1.0e+6, model.hidden: [20]}}]\n"
    body += "set: {plots.enabled: false, train.diverge_above: 100.0}\n"
    p = write(tmp_path, BASE, "base.yaml")
    p = write(tmp_path, "base: base.yaml\n" + body)
    runs = tmp_path / "runs"
    res = invoke("sweep", p, "--jobs", "1", "--runs-dir", runs)
    assert res.exit_code == 0, res.output
    folder = only(runs)
    assert "-c-" in folder.name  # named after the sweep file
    doc = yaml.safe_load((folder / "sweep.yaml").read_text())
    assert doc["sweep"]["base"] == "base.yaml" and len(doc["members"]) == 2
    df = pd.read_csv(folder / "summary.csv")
    assert list(df.columns) == ["index", "run_dir", "variant", "seed", "optim.lr", "model.hidden",
                                "status", "final_loss", "final_train_acc", "final_test_acc",
                                "diverged_at", "wall_s"]  # fmt: skip
    assert df["status"].tolist() == ["completed", "diverged"]
    for run_dir in df["run_dir"]:
        assert (folder / run_dir / "metrics.csv").exists()
        assert (folder / run_dir / "summary.json").exists()


def test_jobs_2_equals_jobs_1_byte_for_byte(tmp_path):
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 2.0]}\nseeds: [0, 1]\n")
    for jobs in ("1", "2"):
        assert invoke("sweep", p, "-j", jobs, "-q", "--runs-dir", tmp_path / jobs).exit_code == 0
    a, b = only(tmp_path / "1"), only(tmp_path / "2")
    for member in sorted((a / "members").iterdir()):
        for name in ("metrics.csv", "final.npz", "config.yaml"):
            assert (member / name).read_bytes() == (b / "members" / member.name / name).read_bytes()
    cols = ["index", "run_dir", "status", "final_loss"]
    pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv")[cols],
                                  pd.read_csv(b / "summary.csv")[cols])  # fmt: skip


def _metas(folder: Path) -> dict[str, dict]:
    return {m.name: json.loads((m / "meta.json").read_text())
            for m in sorted((folder / "members").iterdir())}  # fmt: skip


def test_grouping_depends_on_the_sweep_file_only(tmp_path):
    # two shapes x (2 lr x 2 seeds): two groups of 4, whatever --jobs says
    p = sweep_file(tmp_path, "grid: {model.hidden: [[3], [5]], optim.lr: [0.1, 2.0]}\n"
                             "seeds: [0, 1]\n")  # fmt: skip
    for jobs in ("1", "2", "3"):
        assert invoke("sweep", p, "-j", jobs, "-q", "--runs-dir", tmp_path / jobs).exit_code == 0
    metas = [_metas(only(tmp_path / j)) for j in ("1", "2", "3")]
    assert [m["group_size"] for m in metas[0].values()] == [4] * 8
    assert metas[0].keys() == metas[1].keys() == metas[2].keys()
    for name in metas[0]:
        assert metas[0][name]["group_size"] == metas[1][name]["group_size"]
        assert metas[0][name]["group_size"] == metas[2][name]["group_size"]
        sizes = [(only(tmp_path / j) / "members" / name / "final.npz").read_bytes()
                 for j in ("1", "2", "3")]  # fmt: skip
        assert sizes[0] == sizes[1] == sizes[2]


def test_workers_pin_blas_to_one_thread(tmp_path):
    p = sweep_file(tmp_path, "grid: {model.hidden: [[3], [4]]}\n")
    assert invoke("sweep", p, "-j", "2", "-q", "--runs-dir", tmp_path / "runs").exit_code == 0
    threads = [m["blas_threads"] for m in _metas(only(tmp_path / "runs")).values()]
    assert threads == [1, 1]


def test_dask_local_cluster_equals_local(tmp_path):
    pytest.importorskip("dask.distributed")
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 2.0]}\n")
    assert invoke("sweep", p, "-j", "1", "-q", "--runs-dir", tmp_path / "local").exit_code == 0
    res = invoke("sweep", p, "-j", "2", "--executor", "dask", "-q", "--runs-dir", tmp_path / "d")
    assert res.exit_code == 0, res.output
    a, b = only(tmp_path / "local"), only(tmp_path / "d")
    for member in sorted((a / "members").iterdir()):
        other = b / "members" / member.name
        assert (member / "metrics.csv").read_bytes() == (other / "metrics.csv").read_bytes()
    group_sizes = [[m["group_size"] for m in _metas(f).values()] for f in (a, b)]
    assert group_sizes == [[2, 2], [2, 2]]  # Dask trains the same groups
    assert {m["blas_threads"] for m in _metas(b).values()} == {1}


def test_a_member_that_raises_is_failed_and_the_rest_go_on(tmp_path, monkeypatch):
    # the three members train as one group; the group raises, so each is trained alone
    real_train = executors.train
    groups = []

    def flaky_population(cfgs, **kw):
        groups.append(len(cfgs))
        raise ValueError("boom in group")

    def flaky(cfg, **kw):
        if cfg.optim.lr == 0.2:
            raise ValueError("boom in member")
        return real_train(cfg, **kw)

    monkeypatch.setattr(executors, "train_population", flaky_population)
    monkeypatch.setattr(executors, "train", flaky)
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 0.2, 0.3]}\n")
    res = invoke("sweep", p, "-j", "1", "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 1, res.output
    assert groups == [3]
    folder = only(tmp_path / "runs")
    df = pd.read_csv(folder / "summary.csv")
    assert df["status"].tolist() == ["completed", "failed", "completed"]
    error = (folder / df["run_dir"][1] / "error.txt").read_text()
    assert "ValueError: boom in member" in error and "Traceback" in error
    meta = json.loads((folder / df["run_dir"][0] / "meta.json").read_text())
    assert meta["group_size"] == 1  # trained alone, after the group failed


def _wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# each member its own training group (hidden sizes differ), so members finish one by one
SLOW = "grid: {model.hidden: [[3], [4], [5], [6], [7], [8]]}\n"


def test_ctrl_c_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    p = sweep_file(tmp_path, SLOW)
    runs = tmp_path / "runs"
    steps = ["--set", "train.steps=6000"]
    proc = subprocess.Popen([SCRIPT, "sweep", str(p), *steps, "-j", "2", "-q", "--runs-dir",
                             str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert _wait_for(lambda: len(list(runs.glob("*/members/*/summary.json"))) >= 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    folder = only(runs)
    first = pd.read_csv(folder / "summary.csv")
    assert (first["status"] == "completed").sum() >= 2
    assert set(first["status"]) <= {"completed", "interrupted", "pending"}
    assert (first["status"] != "completed").any()

    res = subprocess.run([SCRIPT, "sweep", "--resume", str(folder), "-q"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    resumed = pd.read_csv(folder / "summary.csv")
    assert list(only(runs).iterdir())  # same folder, no new sweep folder
    assert len(list(runs.iterdir())) == 1

    straight = tmp_path / "straight"
    assert invoke("sweep", p, *steps, "-j", "2", "-q", "--runs-dir", straight).exit_code == 0
    expected = pd.read_csv(only(straight) / "summary.csv")
    pd.testing.assert_frame_equal(resumed[RESULT_COLS], expected[RESULT_COLS])
    assert resumed["index"].tolist() == list(range(6))
    for run_dir in resumed["run_dir"]:
        metrics = pd.read_csv(folder / run_dir / "metrics.csv")
        assert metrics["step"].tolist() == list(range(6000))  # each member ran exactly once


def test_a_killed_worker_fails_only_its_member(tmp_path):
    p = sweep_file(tmp_path, SLOW.replace(", [8]", ""))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([SCRIPT, "sweep", str(p), "--set", "train.steps=20000", "-j", "2",
                             "-q", "--runs-dir", str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip

    def workers():
        kids = psutil.Process(proc.pid).children(recursive=True)
        return [k for k in kids if k.parent() is not None and k.parent().pid != proc.pid]

    assert _wait_for(lambda: len(list(runs.glob("*/members/*/config.yaml"))) >= 2)
    assert _wait_for(lambda: len(workers()) >= 2)
    workers()[0].kill()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    df = pd.read_csv(only(runs) / "summary.csv")
    assert sorted(df["status"]) == ["completed"] * 4 + ["failed"]
    failed = df[df["status"] == "failed"]["run_dir"].iloc[0]
    assert "killed by signal 9" in (only(runs) / failed / "error.txt").read_text()


def test_a_killed_worker_costs_a_group_nothing(tmp_path):
    # five members of one shape train as one group in one worker; killing every worker while
    # the group trains puts each member back alone, and all five complete as if nothing happened
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 0.2, 0.3, 0.4, 0.5]}\n")
    runs = tmp_path / "runs"
    steps = ["--set", "train.steps=20000"]
    proc = subprocess.Popen([SCRIPT, "sweep", str(p), *steps, "-j", "2", "-q", "--runs-dir",
                             str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert _wait_for(lambda: len(list(runs.glob("*/members/*/config.yaml"))) == 5)
    kids = psutil.Process(proc.pid).children(recursive=True)
    assert _wait_for(lambda: any(k.cpu_times().user > 0.5 for k in kids))  # it is training
    for k in kids:
        if k.parent() is not None and k.parent().pid != proc.pid:  # the forkserver's children
            k.kill()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    folder = only(runs)
    df = pd.read_csv(folder / "summary.csv")
    assert df["status"].tolist() == ["completed"] * 5
    assert invoke("sweep", p, *steps, "-j", "1", "-q", "--runs-dir", tmp_path / "s").exit_code == 0
    straight = only(tmp_path / "s")
    for run_dir in df["run_dir"]:
        assert json.loads((folder / run_dir / "meta.json").read_text())["group_size"] == 1
        assert json.loads((straight / run_dir / "meta.json").read_text())["group_size"] == 5
        a, b = folder / run_dir / "final.npz", straight / run_dir / "final.npz"
        assert a.read_bytes() == b.read_bytes()


def test_two_sweeps_at_once_get_two_folders(tmp_path):
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1]}\n")
    runs = tmp_path / "runs"
    procs = [subprocess.Popen([SCRIPT, "sweep", str(p), "-j", "1", "-q", "--runs-dir", str(runs)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outs = [pr.communicate(timeout=120)[0].strip() for pr in procs]
    assert all(pr.returncode == 0 for pr in procs)
    assert len(set(outs)) == 2 and len(list(runs.iterdir())) == 2


def test_resume_of_a_finished_sweep_runs_nothing(tmp_path):
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 0.2]}\n")
    runs = tmp_path / "runs"
    assert invoke("sweep", p, "-q", "-j", "1", "--runs-dir", runs).exit_code == 0
    folder = only(runs)
    before = {f: f.stat().st_mtime_ns for f in folder.rglob("metrics.csv")}
    res = invoke("sweep", "--resume", folder, "-q")
    assert res.exit_code == 0, res.output
    assert before == {f: f.stat().st_mtime_ns for f in folder.rglob("metrics.csv")}


def test_resume_bad_input(tmp_path):
    res = invoke("sweep", "--resume", tmp_path)
    assert res.exit_code == 2 and "not a sweep folder" in res.output
    res = invoke("sweep")
    assert res.exit_code == 2 and "give a SWEEP file" in res.output


def test_keep_freed_memory_works_on_glibc():
    import platform

    from xorlab.proc import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


def test_the_fork_server_starts_early_only_for_local_parallel_sweeps(monkeypatch):
    from xorlab.cli import _may_use_local_workers

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert _may_use_local_workers(["sweep", "s.yaml"])
    assert _may_use_local_workers(["sweep", "s.yaml", "--jobs", "2", "--set", "seed=1"])
    for args in (
        [],
        ["train", "c.yaml"],
        ["sweep", "s.yaml", "--dry-run"],
        ["sweep", "s.yaml", "--jobs", "1"],
        ["sweep", "s.yaml", "-j1"],
        ["sweep", "s.yaml", "--executor", "dask"],
        ["sweep", "--help"],
    ):
        assert not _may_use_local_workers(args), args
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert not _may_use_local_workers(["sweep", "s.yaml"])


def test_start_forkserver_runs_one_server():
    import multiprocessing as mp
    from multiprocessing import forkserver

    from xorlab.proc import start_forkserver

    if "forkserver" not in mp.get_all_start_methods():
        assert start_forkserver() is False
        return
    assert start_forkserver() is True
    pid = forkserver._forkserver._forkserver_pid
    assert pid is not None and start_forkserver() and forkserver._forkserver._forkserver_pid == pid


def test_members_plots_are_drawn_in_the_workers(tmp_path):
    # two members in one training group; each one's plots are a render task of its own
    write(tmp_path, BASE, "base.yaml")
    body = "base: base.yaml\nset: {plots.gif_frames: 3}\ngrid: {optim.lr: [0.1, 0.2]}\n"
    p = write(tmp_path, body)
    runs = tmp_path / "runs"
    assert invoke("sweep", p, "-j", "2", "-q", "--runs-dir", runs).exit_code == 0
    names = ["accuracy.png", "boundary.png", "loss.png", "panel.png", "training.gif"]
    for member in (only(runs) / "members").iterdir():
        assert sorted(f.name for f in (member / "plots").iterdir()) == names
        assert json.loads((member / "meta.json").read_text())["group_size"] == 2


def test_one_blas_thread_is_scoped():
    from threadpoolctl import threadpool_info, threadpool_limits

    from xorlab.proc import blas_threads, one_blas_thread

    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        with one_blas_thread():
            assert blas_threads() == 1
        assert (
            blas_threads()
            == before
            == max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        )
