"""Sweeps: expansion, validation first, parallel = serial, faults isolated, resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from typer.testing import CliRunner

from xorlab import executors
from xorlab.cli import app
from xorlab.errors import ConfigError
from xorlab.members import read_metrics
from xorlab.rundir import csv_text
from xorlab.store import SweepStore
from xorlab.sweep import load_sweep

from .conftest import CONFIGS, write

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
            "zip: {train.steps: [5, 6]}\n"
            "random: {n: 2, params: {regularization.strength: {uniform: [0.0, 0.1]}}}\n"
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


GZ = """\
name: gz
config: {model: {bias: true}, train: {steps: 30}, plots: {enabled: false}}
grid: {optim.lr: [0.1, 1.0]}
zip: {optim.lr: [0.5, 2.0], train.steps: [40, 50]}
"""
TWO_AXES = "vary a key in one axis only (put a fixed value in `set:`)"


def test_a_key_set_by_two_axes_is_exit_2_naming_the_key_and_both_axes(tmp_path):
    # issue 16 item 1: this expanded to 4 members, 2 distinct ones twice; 0.1 and 1.0 never ran
    p = write(tmp_path, GZ, "gz.yaml")
    want = f"error: {p}: optim.lr: set by two axes, grid and zip; {TWO_AXES}\n"
    for args in (("sweep", p, "--dry-run"), ("sweep", p), ("validate", p)):
        res = (
            invoke(*args, "--runs-dir", tmp_path / "runs") if args[0] == "sweep" else invoke(*args)
        )
        assert res.exit_code == 2, res.output
        assert res.output == want
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            "grid: {seed: [0, 1]}\nseeds: [0, 1]",
            f"seed: set by two axes, grid and seeds; {TWO_AXES}",
        ),
        (
            "variants: [{name: a, set: {optim.lr: 0.1}}, {name: b}]\ngrid: {optim.lr: [0.2, 0.3]}",
            f"optim.lr: set by two axes, variants and grid; {TWO_AXES}",
        ),
        (
            "grid: {optim: [{lr: 0.1}, {lr: 0.2}]}\nzip: {optim.lr: [0.3, 0.4]}",
            f"optim.lr: set by two axes, grid (as part of optim) and zip; {TWO_AXES}",
        ),
        (
            "zip: {train.steps: [5, 6]}\nrandom: {n: 2, params: {train: {choice: [{steps: 3}]}}}",
            f"train.steps: set by two axes, zip and random (as part of train); {TWO_AXES}",
        ),
        (
            "random: {n: 2, params: {seed: {int: [0, 9]}}}\nseeds: 2",
            f"seed: set by two axes, random and seeds; {TWO_AXES}",
        ),
        (
            "grid: {optim.lr: [0.1, 0.2, 0.1]}",
            "grid.optim.lr: value 0.1 is given twice (positions 1 and 3); "
            "each would run the same members",
        ),
        (
            "grid: {optim.lr: [1, 1.0]}",  # the same number to a config
            "grid.optim.lr: value 1.0 is given twice (positions 1 and 2); "
            "each would run the same members",
        ),
        (
            "seeds: [3, 4, 3]",
            "seeds: seed 3 is given twice (positions 1 and 3); each would run the same members",
        ),
        (
            "zip: {optim.lr: [0.1, 0.2, 0.1], train.steps: [5, 6, 5]}",
            "zip: tuple (0.1, 5) is given twice (positions 1 and 3); "
            "each would run the same members",
        ),
        ("variants: [{name: a}, {name: b}, {name: a}]", "variants: duplicate variant names: ['a']"),
    ],
)
def test_axes_that_would_run_members_twice_are_exit_2(tmp_path, body, line):
    p = sweep_file(tmp_path, body)
    for args in (("sweep", p, "--dry-run"), ("validate", p)):
        res = invoke(*args)
        assert res.exit_code == 2, res.output
        assert res.output == f"error: {p}: {line}\n"


def test_grid_x_zip_x_seeds_expands_to_exactly_these_members(tmp_path):
    write(tmp_path, BASE, "base.yaml")
    body = ("base: base.yaml\nset: {optim.lr: 0.3, train.steps: 9}\n"
            "grid: {optim.lr: [0.1, 1.0], model.hidden: [[3], [5]]}\n"
            "zip: {regularization.strength: [0.0, 0.01], train.batch_size: [null, 10]}\n"
            "seeds: [7, 8]\n")  # fmt: skip
    s = load_sweep(write(tmp_path, body, "s.yaml"), ["train.steps=11", "optim.lr=9.0"])
    want = [
        {"optim.lr": lr, "model.hidden": h, "regularization.strength": lam,
         "train.batch_size": bs, "seed": seed}
        for lr in (0.1, 1.0) for h in ([3], [5]) for lam, bs in ((0.0, None), (0.01, 10))
        for seed in (7, 8)
    ]  # fmt: skip
    assert [m.overrides for m in s.members] == want
    assert [m.index for m in s.members] == list(range(16))
    # the axes override the sweep's `set:` and `--set`; what no axis sets comes from those
    got = [(m.config.optim.lr, m.config.model.hidden, m.config.regularization.strength,
            m.config.train.batch_size, m.seed) for m in s.members]  # fmt: skip
    assert got == [tuple(w.values()) for w in want]
    assert {m.config.train.steps for m in s.members} == {11}
    assert s.members[5].label == "005-lr=0.1,hidden=5,strength=0,batch_size=None,seed=8"
    assert s.n_identical == 0


def test_repeated_random_draws_are_counted(tmp_path):
    # 5 draws from 2 widths x 2 seeds: 4 distinct members, so 6 of the 10 repeat an earlier one
    p = sweep_file(tmp_path, "random: {n: 5, seed: 0, params: {model.hidden: {choice: [[3], [8]]}}}"
                             "\nseeds: 2\n")  # fmt: skip
    s = load_sweep(p)
    assert [(m.config.model.hidden, m.seed) for m in s.members][::2] == [
        ([3], 0), ([8], 0), ([8], 0), ([3], 0), ([8], 0)
    ]  # fmt: skip
    assert s.n_identical == 6
    note = "10 members; 6 of them are identical to an earlier member (the random draws repeat)"
    res = invoke("validate", p)
    assert res.exit_code == 0 and res.output == f"{p}: ok (sweep 's', {note})\n", res.output
    res = invoke("sweep", p, "--dry-run", "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 0 and res.output.endswith(f"\n{note}\n"), res.output


def test_one_member_is_one_member(tmp_path):
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1]}\n")
    res = invoke("validate", p)
    assert res.output == f"{p}: ok (sweep 's', 1 member)\n"
    res = invoke("sweep", p, "--dry-run", "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("sweep s: 1 member ") and res.output.endswith("\n1 member\n")
    assert "members" not in res.output


def _docstring_example() -> str:
    import importlib

    doc = importlib.import_module("xorlab.sweep").__doc__ or ""  # xorlab.sweep: the API's function
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return "\n".join(line[4:] for line in block.splitlines())


def _readme_yaml_blocks() -> list[str]:
    text = (CONFIGS.parent / "README.md").read_text()
    return [b.split("\n```", 1)[0] for b in text.split("```yaml\n")[1:]]


def test_the_docstring_example_is_a_sweep_that_validates(tmp_path):
    for name in ("xor_h3.yaml", "xor_h50_clip.yaml"):
        (tmp_path / name).write_bytes((CONFIGS / name).read_bytes())
    p = write(tmp_path, _docstring_example(), "example.yaml")
    s = load_sweep(p)
    assert len(s.members) == 2 * 2 * 2 * 2 * 8 * 3 and s.n_identical == 0
    assert s.members[0].overrides.keys() == {
        "model.hidden", "optim.lr", "model.activation", "regularization.strength", "train.steps",
        "optim.momentum", "data.noise", "train.batch_size", "train.log_every", "seed"
    }  # fmt: skip


def test_every_yaml_example_in_the_readme_validates(tmp_path):
    blocks = _readme_yaml_blocks()
    sweeps = [b for b in blocks if "\ngrid:" in b]
    assert len(sweeps) == 1 and len(blocks) >= 2
    (tmp_path / "xor_h3.yaml").write_bytes((CONFIGS / "xor_h3.yaml").read_bytes())
    (tmp_path / "sweeps").mkdir()
    for i, block in enumerate(blocks):
        p = write(tmp_path / "sweeps", block, f"example{i}.yaml")
        res = invoke("validate", p)
        assert res.exit_code == 0, res.output
    s = load_sweep(tmp_path / "sweeps" / f"example{blocks.index(sweeps[0])}.yaml")
    assert len(s.members) == 32 and s.n_identical == 0


def test_the_readme_shows_the_two_axes_error_as_printed(tmp_path):
    p = write(tmp_path, GZ, "gz.yaml")
    line = invoke("validate", p).output.strip().replace(str(p), "gz.yaml")
    assert "\n" + line + "\n" in (CONFIGS.parent / "README.md").read_text()


@pytest.mark.parametrize("name", ["lr_vs_hidden.yaml", "random_search.yaml", "seed_study.yaml"])
def test_the_shipped_sweeps_validate(name):
    p = CONFIGS / "sweeps" / name
    res = invoke("validate", p)
    assert res.exit_code == 0, res.output
    assert "identical" not in res.output and res.output.startswith(f"{p}: ok (sweep ")


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
                                "status", "final_loss", "final_data_loss", "final_train_acc",
                                "final_test_acc", "diverged_at", "wall_s"]  # fmt: skip
    assert df["status"].tolist() == ["completed", "diverged"]
    # diverged_at is a step: an integer, empty where the member did not diverge (never "5.0")
    text = pd.read_csv(folder / "summary.csv", dtype=str, keep_default_na=False)
    store = SweepStore(folder)
    diverged_at = store.entry(1)["diverged_at"]
    assert text["diverged_at"].tolist() == ["", str(diverged_at)] and isinstance(diverged_at, int)
    assert text["run_dir"].tolist() == ["", ""]  # no member has a folder of its own (no plots)
    assert not (folder / "members").exists()
    assert sorted(set(read_metrics(folder)["member"])) == [0, 1]


def test_jobs_2_equals_jobs_1_byte_for_byte(tmp_path):
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 2.0]}\nseeds: [0, 1]\n")
    for jobs in ("1", "2"):
        assert invoke("sweep", p, "-j", jobs, "-q", "--runs-dir", tmp_path / jobs).exit_code == 0
    a, b = only(tmp_path / "1"), only(tmp_path / "2")
    _same_members(a, b, range(4))
    cols = ["index", "run_dir", "status", "final_loss"]
    pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv")[cols],
                                  pd.read_csv(b / "summary.csv")[cols])  # fmt: skip


def _metas(folder: Path) -> dict[int, dict]:
    """Each member's record entry (group_size, blas_threads, ...), by index."""
    return dict(sorted(SweepStore(folder).entries().items()))


def _same_members(a: Path, b: Path, indices) -> None:
    """Two sweeps' members have the same metrics.csv bytes and the same weights."""
    sa, sb = SweepStore(a), SweepStore(b)
    for i in indices:
        assert csv_text(sa.metrics(i)).encode() == csv_text(sb.metrics(i)).encode()
        for pa_, pb_ in zip(sa.params(i), sb.params(i)):
            assert pa_.keys() == pb_.keys()
            for k in pa_:
                assert pa_[k].tobytes() == pb_[k].tobytes() and pa_[k].dtype == pb_[k].dtype


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
    for j in ("2", "3"):
        _same_members(only(tmp_path / "1"), only(tmp_path / j), range(8))


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
    _same_members(a, b, range(2))
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
    assert df["run_dir"].isna().tolist() == [True, False, True]  # only the failed one's folder
    error = (folder / df["run_dir"][1] / "error.txt").read_text()
    assert "ValueError: boom in member" in error and "Traceback" in error
    store = SweepStore(folder)
    assert store.entry(0)["group_size"] == 1  # trained alone, after the group failed
    assert store.entry(1)["note"] == "ValueError: boom in member"
    assert sorted(set(read_metrics(folder)["member"])) == [0, 2]  # a failed member has no rows


def _wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _finished(runs: Path) -> int:
    """How many members the sweep under ``runs`` has recorded finished so far."""
    return sum(
        e["status"] in ("completed", "diverged")
        for p in runs.glob("*/records/*.json")
        for e in json.loads(p.read_text())["members"].values()
    )


def _busy_workers(proc) -> list:
    """The sweep's worker processes (the fork server's children) that have trained a while."""
    kids = psutil.Process(proc.pid).children(recursive=True)
    workers = [k for k in kids if k.parent() is not None and k.parent().pid != proc.pid]
    return [k for k in workers if k.cpu_times().user > 0.3]


# each member its own training group (hidden sizes differ), so members finish one by one
SLOW = "grid: {model.hidden: [[3], [4], [5], [6], [7], [8]]}\n"


def test_ctrl_c_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    p = sweep_file(tmp_path, SLOW)
    runs = tmp_path / "runs"
    steps = ["--set", "train.steps=6000"]
    proc = subprocess.Popen([SCRIPT, "sweep", str(p), *steps, "-j", "2", "-q", "--runs-dir",
                             str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert _wait_for(lambda: _finished(runs) >= 2)
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
    table = read_metrics(folder)
    assert table.groupby("member")["step"].apply(list).tolist() == [list(range(6000))] * 6
    pd.testing.assert_frame_equal(table, read_metrics(only(straight)))  # every row, exactly
    assert (folder / "attempts" / "records").is_dir()  # the interrupted ones' records, set aside


def test_a_killed_worker_fails_only_its_member(tmp_path):
    p = sweep_file(tmp_path, SLOW.replace(", [8]", ""))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([SCRIPT, "sweep", str(p), "--set", "train.steps=20000", "-j", "2",
                             "-q", "--runs-dir", str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip

    assert _wait_for(lambda: len(_busy_workers(proc)) >= 2)
    _busy_workers(proc)[0].kill()
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
    assert _wait_for(lambda: len(_busy_workers(proc)) >= 1)  # the group is training
    for k in psutil.Process(proc.pid).children(recursive=True):
        if k.parent() is not None and k.parent().pid != proc.pid:  # the forkserver's children
            k.kill()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    folder = only(runs)
    df = pd.read_csv(folder / "summary.csv")
    assert df["status"].tolist() == ["completed"] * 5
    assert invoke("sweep", p, *steps, "-j", "1", "-q", "--runs-dir", tmp_path / "s").exit_code == 0
    straight = only(tmp_path / "s")
    assert [e["group_size"] for e in _metas(folder).values()] == [1] * 5
    assert [e["group_size"] for e in _metas(straight).values()] == [5] * 5
    _same_members(folder, straight, range(5))


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
    before = {f: f.stat().st_mtime_ns for f in folder.rglob("*")}
    res = invoke("sweep", "--resume", folder, "-q")
    assert res.exit_code == 0, res.output
    assert before == {f: f.stat().st_mtime_ns for f in folder.rglob("*")}


def _mtimes(folder: Path) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in folder.rglob("*")}


def test_resume_of_a_finished_sweep_says_nothing_is_left_and_writes_nothing(tmp_path):
    p = sweep_file(tmp_path, "grid: {optim.lr: [0.1, 0.2]}\n")
    runs = tmp_path / "runs"
    assert invoke("sweep", p, "-q", "-j", "1", "--runs-dir", runs).exit_code == 0
    folder = only(runs)
    before = _mtimes(folder)
    done = "0 of 2 members left: the sweep is finished, nothing to run\n"
    res = invoke("sweep", "--resume", folder, "--dry-run")
    assert res.exit_code == 0 and res.output == done, res.output
    res = invoke("sweep", "--resume", folder, "-j", "1")
    assert res.exit_code == 0 and res.output.startswith(done), res.output
    assert _mtimes(folder) == before  # summary.csv included: it already said all of this
    # one member left: the dry run lists only it
    (record,) = (folder / "records").glob("*.json")  # both members trained as one group
    doc = json.loads(record.read_text())
    doc["members"]["1"]["status"] = "interrupted"
    record.write_text(json.dumps(doc))
    res = invoke("sweep", "--resume", folder, "--dry-run")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("sweep s: 1 member left of 2 ")
    assert "001-lr=0.2" in res.output and "000-lr=0.1" not in res.output
    assert res.output.endswith("\n1 of 2 members left to run\n")


def test_the_folders_sweep_yaml_is_a_record_not_a_sweep_file(tmp_path):
    sched = "{optim.schedule: {kind: step, gamma: 0.5, every: 5}}"
    p = sweep_file(
        tmp_path, f"grid: {{model.hidden: [[3], [5]]}}\nvariants: [{{name: a, set: {sched}}}]\n"
    )
    runs = tmp_path / "runs"
    assert invoke("sweep", p, "-q", "-j", "1", "--runs-dir", runs).exit_code == 0
    folder = only(runs)
    record = folder / "sweep.yaml"
    text = record.read_text()
    assert "&" not in text and "*" not in text  # no YAML anchors or aliases: people read it
    want = (f"error: {record}: this is a sweep folder's own record, not a sweep file; to continue "
            f"that sweep, run `xorlab sweep --resume {folder}`\n")  # fmt: skip
    for args in (("validate", record), ("sweep", record, "--dry-run"), ("sweep", record)):
        before = _mtimes(runs)
        res = invoke(*args)
        assert res.exit_code == 2, res.output
        assert res.output == want
        assert _mtimes(runs) == before
    assert invoke("sweep", "--resume", folder, "--dry-run").exit_code == 0  # it still resumes


def _summary(rows: list[tuple]) -> pd.DataFrame:
    cols = ["index", "run_dir", "status", "final_loss", "final_data_loss", "final_train_acc",
            "final_test_acc"]  # fmt: skip
    return pd.DataFrame([(i, f"members/{i:03d}-m", *r) for i, r in enumerate(rows)], columns=cols)


def _table_text(table) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


def test_best_table_ranks_by_data_loss_never_by_the_penalty():
    from xorlab.commands import best_table

    # member 0 has the lowest total loss only because its penalty is weaker
    df = _summary(
        [
            ("completed", 0.10, 0.09, 0.9, None),
            ("completed", 0.30, 0.05, 0.95, None),
            ("diverged", None, None, None, None),
            ("completed", 0.2, 0.07, 0.9, None),
        ]
    )
    text = _table_text(best_table(df, n=3))
    assert text.splitlines()[0].strip() == "best 3 of 4 by data loss"
    order = [line.split()[1] for line in text.splitlines() if line.startswith("│")]
    assert order == ["1", "3", "0"]
    assert "test acc" not in text and "0.05000" in text
    assert " 0.950 │" in text and " 0.900 │" in text  # accuracies always with three decimals


def test_best_table_ranks_by_test_accuracy_when_there_is_a_test_set():
    from xorlab.commands import best_table

    df = _summary(
        [
            ("completed", 0.1, 0.09, 0.9, 0.8),
            ("completed", 0.3, 0.05, 0.95, 0.9),
            ("completed", 0.2, 0.07, 0.9, 0.9),
            ("diverged", None, None, None, None),
        ]
    )
    text = _table_text(best_table(df))
    lines = text.splitlines()
    assert lines[0].strip() == "best 4 of 4 by test accuracy"
    assert "test acc" in lines[2] and "data loss" in lines[2]
    rows = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    # ties in test accuracy go by data loss; a member without one comes last
    assert [[c.strip() for c in r] for r in rows] == [
        ["1", "001-m", "completed", "0.05000", "0.950", "0.900"],
        ["2", "002-m", "completed", "0.07000", "0.900", "0.900"],
        ["0", "000-m", "completed", "0.09000", "0.900", "0.800"],
        ["3", "003-m", "diverged", "-", "-", "-"],
    ]


def test_summary_final_data_loss_is_the_final_loss_without_the_penalty(tmp_path):
    body = ("config: {data: {n: 40, test_fraction: 0.25}, model: {hidden: [3]}, train: {steps: 20},"
            " plots: {enabled: false}, optim: {lr: 0.5}}\n"
            "grid: {regularization.strength: [0.0, 0.5]}\n")  # fmt: skip
    runs = tmp_path / "runs"
    res = invoke("sweep", write(tmp_path, body, "s.yaml"), "-j", "1", "--runs-dir", runs)
    assert res.exit_code == 0, res.output
    assert "by test accuracy" in res.output and "test acc" in res.output
    folder = only(runs)
    df = pd.read_csv(folder / "summary.csv")
    store = SweepStore(folder)
    for _, row in df.iterrows():
        _, final = store.params(int(row["index"]))
        data = store.data(store.entry(int(row["index"]))["data"])
        X, Y = data.X_train, data.y_train  # (30, 2), (30, 2)
        h1 = 1 / (1 + np.exp(-(X @ final["W1"])))  # (30, 3), sigmoid, no biases
        h2 = 1 / (1 + np.exp(-(h1 @ final["W2"])))  # (30, 2)
        mse = float(((Y - h2) ** 2).sum() / (2 * len(X)))
        assert row["final_data_loss"] == pytest.approx(mse, rel=1e-12)
        w2 = sum(float((w**2).sum()) for w in final.values())
        lam = row["regularization.strength"]
        assert row["final_loss"] == pytest.approx(mse + lam / (2 * len(X)) * w2, rel=1e-12)
    assert df["final_data_loss"][0] == df["final_loss"][0]
    assert df["final_data_loss"][1] < df["final_loss"][1]


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
    names = ["panel.png", "training.gif"]
    for member in (only(runs) / "members").iterdir():
        assert sorted(f.name for f in (member / "plots").iterdir()) == names
        assert sorted(f.name for f in member.iterdir()) == ["config.yaml", "plots", "summary.json"]
    assert [e["group_size"] for e in _metas(only(runs)).values()] == [2, 2]


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
