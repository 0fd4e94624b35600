"""The Python API: load_config, train, sweep and runs, and the README's example run as written."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest

import xorlab
from xorlab.errors import ConfigError

from .conftest import CONFIGS

README = CONFIGS.parent / "README.md"


def test_import_xorlab_is_light():
    import subprocess
    import sys

    heavy = "('numpy', 'pandas', 'pydantic')"
    code = f"import sys, xorlab; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_load_config_takes_a_file_set_strings_and_keywords():
    cfg = xorlab.load_config(CONFIGS / "xor_h3.yaml", overrides=["optim.lr=0.5"], train__steps=7)
    assert (cfg.name, cfg.optim.lr, cfg.train.steps, cfg.model.hidden) == ("xor-h3", 0.5, 7, [3])
    assert xorlab.load_config(model__hidden=[50]).model.hidden == [50]
    with pytest.raises(ConfigError) as exc:
        xorlab.load_config(optim__lrr=0.1)
    assert exc.value.lines()[0].startswith("optim.lrr: unknown key")


def test_train_is_pure_or_writes_a_folder(tmp_path):
    cfg = xorlab.load_config(data__n=20, train__steps=5, plots__enabled=False)
    result = xorlab.train(cfg)
    assert result.status == "completed" and list(result.metrics["step"]) == [0, 1, 2, 3, 4]
    assert not any(tmp_path.iterdir())
    run = xorlab.train(cfg, runs_dir=tmp_path / "runs")
    assert run.folder.parent == tmp_path / "runs" and (run.folder / "summary.json").is_file()
    pd.testing.assert_frame_equal(run.metrics, result.metrics)  # the same run, byte for byte
    assert xorlab.train is xorlab.api.train  # the submodule xorlab.train does not shadow it


def test_runs_lists_runs_and_sweep_members(tmp_path):
    cfg = xorlab.load_config(data__n=20, train__steps=5, plots__enabled=False)
    xorlab.train(cfg, runs_dir=tmp_path)
    sweep = tmp_path / "s.yaml"
    sweep.write_text("config: {data: {n: 20}, train: {steps: 5}, plots: {enabled: false}}\n"
                     "grid: {optim.lr: [0.1, 0.2]}\n")  # fmt: skip
    table = xorlab.sweep(sweep, runs_dir=tmp_path, jobs=1)
    assert list(table["optim.lr"]) == [0.1, 0.2] and table.attrs["folder"].parent == tmp_path
    df = xorlab.runs(tmp_path)
    assert sorted(df["kind"]) == ["member", "member", "run"]
    assert set(df["status"]) == {"completed"}
    assert sorted(df.loc[df["kind"] == "member", "params.optim.lr"]) == [0.1, 0.2]
    assert df.loc[df["kind"] == "run", "params.train.steps"].item() == 5


def test_the_readme_python_example_runs(tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README shows the Python API"
    (tmp_path / "configs").symlink_to(CONFIGS)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for code in blocks:
            exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "completed" in out and "final_train_acc" in out
    assert len(list((tmp_path / "runs").iterdir())) == 2  # the run and the sweep
