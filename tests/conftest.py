"""Shared fixtures: a tiny config, a runs folder under tmp_path, a pinned terminal width."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["COLUMNS"] = "120"  # rich and typer render the same on every terminal
os.environ.setdefault("NO_COLOR", "1")

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

TINY = """\
name: tiny
seed: 0
data: {kind: xor, n: 40}
model: {hidden: [4], activation: sigmoid, loss: mse}
optim: {lr: 0.5}
train: {steps: 30}
plots: {enabled: false}
"""


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p
