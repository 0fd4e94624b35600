"""Shell completion: config files, run and sweep folders, --set keys and their allowed values,
through the protocol a shell uses (the installed script, environment variables)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xorlab.completion import run_folders, set_keys, yaml_files

SCRIPT = str(Path(sys.executable).parent / "xorlab")


def bash(words: str, cwd: Path) -> list[str]:
    parts = words.split(" ")
    env = {**os.environ, "_XORLAB_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(parts) - 1)}  # fmt: skip
    res = subprocess.run([SCRIPT], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_commands_and_config_files_complete_in_bash(tmp_path):
    (tmp_path / "configs").mkdir()
    for name in ("a.yaml", "b.yml", "notes.txt"):
        (tmp_path / "configs" / name).write_text("{}")
    (tmp_path / "configs" / "sweeps").mkdir()
    assert bash("xorlab sw", tmp_path) == ["sweep"]
    assert bash("xorlab train configs/", tmp_path) == [
        "configs/a.yaml", "configs/b.yml", "configs/sweeps/"
    ]  # fmt: skip
    assert bash("xorlab train c.yaml --set optim.l", tmp_path) == ["optim.lr="]


def test_yaml_files_and_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_text("{}")
    (tmp_path / ".hidden.yaml").write_text("{}")
    (tmp_path / "sub").mkdir()
    assert yaml_files("") == ["sub/", "x.yaml"]
    assert yaml_files("s") == ["sub/"]
    assert yaml_files("nowhere/x") == []


def test_run_and_sweep_folders_end_without_a_slash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    (runs / "20260101-000000-a-1").mkdir(parents=True)
    (runs / "20260101-000000-a-1" / "summary.json").write_text("{}")
    (runs / "20260102-000000-s-2").mkdir()
    (runs / "20260102-000000-s-2" / "sweep.yaml").write_text("{}")
    (runs / "other").mkdir()
    assert run_folders("") == [
        "runs/20260101-000000-a-1",
        "runs/20260102-000000-s-2",
        "runs/other/",
    ]
    assert run_folders("runs/2026010") == ["runs/20260101-000000-a-1", "runs/20260102-000000-s-2"]


def test_set_keys_complete_with_their_meaning_and_values():
    keys = dict(set_keys("optim.sch"))
    assert "optim.schedule.kind=" in keys and "optim.schedule.warmup=" in keys
    assert keys["optim.schedule.warmup="].startswith("linear warm-up steps")
    assert [k for k, _ in set_keys("model.activation=")] == [
        "model.activation=sigmoid", "model.activation=tanh", "model.activation=relu"
    ]  # fmt: skip
    assert [k for k, _ in set_keys("model.bias=t")] == ["model.bias=true"]
    assert [k for k, _ in set_keys("train.batch_size=")] == ["train.batch_size=null"]
    assert set_keys("no.such=1") == []
