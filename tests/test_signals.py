"""SIGTERM (schedulers, containers, systemd) is handled as Ctrl-C is: what finished is kept, what
ran is `interrupted`, exit 143, and a resume ends as a sweep never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from xorlab.members import read_metrics
from xorlab.store import SweepStore

from .conftest import TINY, write

SCRIPT = str(Path(sys.executable).parent / "xorlab")
BASE = "name: base\ndata: {n: 40}\nmodel: {hidden: [3]}\noptim: {lr: 0.5}\ntrain: {steps: 20}\n"
SLOW = "grid: {model.hidden: [[3], [4], [5], [6], [7], [8]]}\n"  # one group per member
COLS = ["index", "run_dir", "seed", "status", "final_loss", "final_train_acc", "diverged_at"]


def _finished(runs: Path) -> int:
    return sum(
        e["status"] in ("completed", "diverged")
        for p in runs.glob("*/records/*.json")
        for e in json.loads(p.read_text())["members"].values()
    )


def _wait_for(cond, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_on_train_leaves_an_interrupted_run_and_exits_143(tmp_path):
    cfg = write(tmp_path, TINY.replace("steps: 30", "steps: 5000000, log_every: 1000"))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([SCRIPT, "train", str(cfg), "--runs-dir", str(runs), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert _wait_for(lambda: list(runs.glob("*/config.yaml")))
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    (run,) = runs.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps_done"] < 5_000_000
    assert (run / "final.npz").exists() and (run / "metrics.csv").exists()


def test_sigterm_to_a_sweeps_process_group_then_resume_equals_a_sweep_never_stopped(tmp_path):
    write(tmp_path, BASE, "base.yaml")
    p = write(tmp_path, "base: base.yaml\nset: {plots.enabled: false}\n" + SLOW, "s.yaml")
    runs = tmp_path / "runs"
    steps = ["--set", "train.steps=6000"]
    # its own session: SIGTERM to the whole group reaches the workers too, as systemd's would
    proc = subprocess.Popen([SCRIPT, "sweep", str(p), *steps, "-j", "2", "-q", "--runs-dir",
                             str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    assert _wait_for(lambda: _finished(runs) >= 2)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    (folder,) = runs.iterdir()
    first = pd.read_csv(folder / "summary.csv")
    assert (first["status"] == "completed").sum() >= 2
    assert set(first["status"]) <= {"completed", "interrupted", "pending"}, first["status"]
    assert "failed" not in set(first["status"])  # no worker death counted against a member
    store = SweepStore(folder)
    for index in first.loc[first["status"] == "interrupted", "index"]:
        assert store.entry(int(index))["note"] == "stopped by SIGTERM"

    res = subprocess.run([SCRIPT, "sweep", "--resume", str(folder), "-q"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    straight = tmp_path / "straight"
    res = subprocess.run([SCRIPT, "sweep", str(p), *steps, "-j", "2", "-q", "--runs-dir",
                          str(straight)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (other,) = straight.iterdir()
    resumed = pd.read_csv(folder / "summary.csv")
    pd.testing.assert_frame_equal(resumed[COLS], pd.read_csv(other / "summary.csv")[COLS])
    pd.testing.assert_frame_equal(read_metrics(folder), read_metrics(other))
