"""An internal error in any command: one line on screen saying what happened and what to report,
exit 1, the traceback in a file (the run folder, else a temporary file); --debug shows it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import xorlab.commands
import xorlab.runner
from xorlab.cli import app
from xorlab.errors import XorlabError

runner = CliRunner()
LINE = re.compile(
    r"error: internal error \((?P<what>.*)\); the traceback is in (?P<file>\S+) — please report it"
)


def boom(*args, **kwargs):
    raise ValueError("boom\n\x1b[31mred")


def crash_line(output: str) -> re.Match[str]:
    lines = output.splitlines()
    assert len(lines) == 1, output
    m = LINE.fullmatch(lines[0])
    assert m, output
    return m


def test_a_crash_is_one_line_exit_1_and_a_traceback_file(tmp_path, monkeypatch):
    monkeypatch.setattr(xorlab.commands, "runs_command", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    res = runner.invoke(app, ["runs", str(tmp_path)])
    assert res.exit_code == 1 and res.exception.__class__ is SystemExit
    m = crash_line(res.output)
    assert m["what"] == "ValueError: boom\\n\\x1b[31mred"  # escaped: one line, no colours
    crash = Path(m["file"])
    assert crash.parent == tmp_path and crash.name.startswith("xorlab-crash-")
    text = crash.read_text()
    assert "Traceback (most recent call last)" in text and 'raise ValueError("boom' in text
    assert "Traceback" not in res.output


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(xorlab.commands, "runs_command", boom)
    res = runner.invoke(app, ["--debug", "runs", str(tmp_path)])
    assert isinstance(res.exception, ValueError) and "internal error" not in res.output


def test_a_crash_while_training_leaves_its_traceback_in_the_run_folder(
    tiny_config, runs_dir, monkeypatch
):
    monkeypatch.setattr(xorlab.runner, "train", boom)
    res = runner.invoke(app, ["train", str(tiny_config), "--runs-dir", str(runs_dir)])
    assert res.exit_code == 1
    crash = Path(crash_line(res.output)["file"])
    (run,) = runs_dir.iterdir()
    assert crash == run / "crash.txt" and "ValueError: boom" in crash.read_text()
    assert "run_into" in crash.read_text()


def test_ctrl_c_and_bad_input_where_no_command_handles_them(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    def bad(*args, **kwargs):
        raise XorlabError("no such thing", file="f.yaml", key="k")

    monkeypatch.setattr(xorlab.commands, "runs_command", interrupt)
    res = runner.invoke(app, ["runs", str(tmp_path)])
    assert (res.exit_code, res.output) == (130, "interrupted\n")
    monkeypatch.setattr(xorlab.commands, "validate_command", bad)
    res = runner.invoke(app, ["validate", "f.yaml"])
    assert (res.exit_code, res.output) == (2, "error: f.yaml: k: no such thing\n")


CRASHING = """\
import sys
import xorlab.commands
from xorlab.cli import main

def boom(*args, **kwargs):
    raise ZeroDivisionError("division by zero")

xorlab.commands.report_command = boom
sys.argv = ["xorlab", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_in_a_real_process(tmp_path, debug):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    args = [sys.executable, "-c", CRASHING, *(["--debug"] if debug else []), "report", "x"]
    res = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert res.returncode == 1 and res.stdout == ""
    files = sorted(tmp_path.glob("xorlab-crash-*.txt"))
    if debug:
        assert "Traceback (most recent call last)" in res.stderr and not files
        assert res.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    else:
        m = crash_line(res.stderr)
        assert m["what"] == "ZeroDivisionError: division by zero"
        assert [Path(m["file"])] == files and "ZeroDivisionError" in files[0].read_text()
        assert "command: xorlab report x" in files[0].read_text()
