"""Property-based tests of the config and sweep loaders over arbitrary YAML documents: odd keys,
tags, anchors and aliases, merge keys, multi-document streams, huge numbers, deep nesting, binary
junk and non-UTF-8 bytes. `validate`, `train` and `sweep --dry-run` each end with exit 0 or 2;
on 2 every line printed starts with `error:`, no traceback, and nothing is written."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xorlab.cli import app

from .conftest import TINY

runner = CliRunner()


def fuzz(examples: int) -> settings:
    """The same examples on every run (a red suite is reproducible); XORLAB_FUZZ_SCALE=N tries
    N times as many, drawn at random."""
    scale = int(os.environ.get("XORLAB_FUZZ_SCALE", "1"))
    return settings(
        max_examples=examples * scale,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        derandomize=scale == 1,
    )


@pytest.fixture(autouse=True)
def as_main():
    """As cli.main sets it: overflow is reported as divergence, never as a warning."""
    with np.errstate(all="ignore"):
        yield


CONFIG_KEYS = ["name", "seed", "data", "model", "optim", "regularization", "train", "plots",
               "kind", "n", "noise", "test_fraction", "hidden", "activation", "loss", "bias",
               "init", "dtype", "lr", "momentum", "schedule", "clip", "max", "strength",
               "steps", "batch_size", "log_every", "diverge_above", "enabled",
               "gif_frames"]  # fmt: skip
SWEEP_KEYS = ["base", "config", "set", "variants", "grid", "zip", "random", "seeds", "params",
              "uniform", "loguniform", "int", "choice", "optim.lr", "model.hidden",
              "train.steps", "members", "sweep"]  # fmt: skip
ODD_KEYS = st.one_of(
    st.text(max_size=12),  # control characters, newlines, escapes, RTL marks...
    st.integers(-(10**30), 10**30),
    st.floats(),
    st.booleans(),
    st.none(),
    st.just("<<"),
    st.just("\x1b[31mred\x1b]0;title\x07"),
)
KEYS = st.one_of(st.sampled_from(CONFIG_KEYS + SWEEP_KEYS), ODD_KEYS)
SCALARS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # huge numbers
    st.floats(),  # inf, nan, 1e308, -0.0
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.sampled_from(
        [
            "sigmoid",
            "relu",
            "mse",
            "cross_entropy",
            "xor",
            "adam",
            "l1",
            "1e400",
            ".inf",
            "-.nan",
            "0x1F",
            "0o17",
            "1_000",
            "12:30:00",
            "2024-01-01",
            "~",
            "yes",
            "no",
            "on",
            "off",
            "tiny.yaml",
            "../tiny.yaml",
            "/",
        ]
    ),  # fmt: skip
)
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(KEYS, kids, max_size=5),
    max_leaves=20,
)
TAGS = ["!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system",
        "!custom", "!!binary", "!!set", "!!omap", "!!timestamp", "!!float", "!!int", "!!str",
        "!<tag:example.com,2000:x>", "!!merge", "!!null"]  # fmt: skip


DOTTED = st.one_of(
    st.sampled_from(["optim.lr", "train.steps", "seed", "model.hidden", "data.noise",
                     "optim.kind", "regularization.strength", "name", "optim", "optim.lr.x"]),
    ODD_KEYS,
)  # fmt: skip
SMALL = st.one_of(SCALARS, st.floats(0.01, 2.0), st.integers(1, 5), st.lists(st.integers(1, 4)))
SWEEPS = st.fixed_dictionaries(  # sweep files that are nearly right, so expansion is reached
    {"base": st.sampled_from(["tiny.yaml", "./tiny.yaml", "missing.yaml", "f.yaml", 3])},
    optional={
        "name": st.sampled_from(["s", "bad name", ""]),
        "set": st.dictionaries(DOTTED, SMALL, max_size=2),
        "grid": st.dictionaries(DOTTED, st.lists(SMALL, max_size=3) | SMALL, max_size=2),
        "zip": st.dictionaries(DOTTED, st.lists(SMALL, max_size=3), max_size=2),
        "seeds": st.lists(SMALL, max_size=3) | SMALL,
        "variants": st.lists(
            st.fixed_dictionaries({"name": SCALARS, "set": st.dictionaries(DOTTED, SMALL)}),
            max_size=3,
        ),
        "random": st.fixed_dictionaries(
            {"n": st.integers(-1, 60) | SCALARS},
            optional={
                "seed": SCALARS,
                "params": st.dictionaries(
                    DOTTED,
                    st.dictionaries(
                        st.sampled_from(["uniform", "loguniform", "int", "choice", "x"]),
                        st.lists(SMALL, max_size=3) | SMALL,
                        max_size=2,
                    ),
                    max_size=2,
                ),
            },
        ),
    },
)


def dump(obj: object) -> str:
    try:
        return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False, width=80)
    except (yaml.YAMLError, ValueError, OverflowError):
        return repr(obj)  # some odd value: the repr is junk YAML of its own


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """The bytes of a YAML file: a document with a twist."""
    base = draw(st.sampled_from([TINY, "", "{}\n", "base: tiny.yaml\nseeds: [0]\n", None]))
    obj = draw(VALUES)
    if draw(st.integers(0, 3)) == 0:
        base, obj = None, draw(SWEEPS)
    if base is None:
        text = dump(obj)
    elif base and isinstance(obj, dict):  # a real file with a key changed
        doc = yaml.safe_load(base)
        doc.update(obj)
        text = dump(doc)
    else:
        text = base + (dump({draw(KEYS): obj}) if draw(st.booleans()) else "")
    twist = draw(st.sampled_from(["none", "tag", "anchor", "merge", "multi", "deep", "deep_map",
                                  "bomb", "junk", "latin1", "utf16", "bom", "nul", "dup", "tab",
                                  "cut"]))  # fmt: skip
    event(twist)
    if twist == "tag":
        tag = draw(st.sampled_from(TAGS))
        where = draw(st.sampled_from(["top", "value"]))
        text = f"{tag} " + text if where == "top" else text + f"extra: {tag} [ls]\n"
    elif twist == "anchor":
        text = "common: &c {lr: 0.5, kind: sgd}\n" + text + "optim: *c\n"
    elif twist == "merge":
        text = "x: &m {steps: 3}\ntrain:\n  <<: *m\n  log_every: 1\n" + text
    elif twist == "multi":
        text = text + "---\n" + dump(draw(VALUES)) + draw(st.sampled_from(["", "...\n"]))
    elif twist == "deep":
        depth = draw(st.integers(10, 3000))
        text = "[" * depth + "]" * depth + "\n"
    elif twist == "deep_map":
        depth = draw(st.integers(10, 300))
        text = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "1\n"
    elif twist == "bomb":
        text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
            for i in range(8)
        )
    elif twist == "junk":
        return draw(st.binary(max_size=200))
    elif twist == "latin1":
        return (text + "name: caf\xe9\n").encode("latin-1", errors="replace")
    elif twist == "utf16":
        return text.encode("utf-16")
    elif twist == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    elif twist == "nul":
        text = text + "\x00\n"
    elif twist == "dup":
        text = text + text.split("\n", 1)[0] + "\n"
    elif twist == "tab":
        text = "\t" + text
    elif twist == "cut" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    return text.encode("utf-8", errors="surrogateescape")


class Place:
    """A fresh folder holding tiny.yaml (a base for sweeps) and the drawn file."""

    def __init__(self, content: bytes) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fuzz-yaml-"))
        (self.root / "tiny.yaml").write_text(TINY)
        self.file = self.root / "f.yaml"
        self.file.write_bytes(content)
        self.runs = self.root / "runs"

    def files(self) -> set[Path]:
        return set(self.root.rglob("*"))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def check(res, codes: tuple[int, ...] = (0, 2)) -> int:
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    assert res.exit_code in codes, res.output
    if res.exit_code == 2:
        assert res.stdout == "" and res.stderr, res.output
        for line in res.stderr.splitlines():
            assert line.startswith("error: "), res.output
            assert line.isprintable(), line  # escaped: no terminal control reaches the screen
    event(f"exit {res.exit_code}")
    return res.exit_code


@fuzz(50)
@given(content=documents())
def test_validate(content):
    place = Place(content)
    try:
        before = place.files()
        check(invoke("validate", place.file))
        assert place.files() == before  # validate never writes
    finally:
        place.close()


@fuzz(25)
@given(content=documents())
def test_train(content):
    place = Place(content)
    try:
        before = place.files()
        valid = check(invoke("validate", place.file)) == 0
        quick = ["--set", "train.steps=2", "--set", "data.n=8"] if valid else []
        res = invoke("train", place.file, *quick, "--no-plots", "-q", "--runs-dir", place.runs)
        code = check(res)
        if code == 2:
            assert place.files() == before  # nothing written
        else:
            assert [p.parent for p in place.runs.glob("*/summary.json")] == [
                Path(res.stdout.strip())
            ]
    finally:
        place.close()


@fuzz(40)
@given(content=documents())
def test_sweep_dry_run(content):
    place = Place(content)
    try:
        before = place.files()
        res = invoke("sweep", place.file, "--dry-run", "--max-runs", "50", "--runs-dir", place.runs)
        check(res)
        assert place.files() == before  # a dry run never writes
    finally:
        place.close()


@pytest.mark.parametrize(
    "text",
    ["!!timestamp name: tiny\n", "seed: !!int x\n", "a: !!timestamp 2024-13-45\n", "a: !!int\n"],
)
def test_a_value_that_does_not_fit_its_tag_is_bad_input(tmp_path, text):
    """Found by test_validate: PyYAML's constructors raise AttributeError or ValueError here
    (an internal error before)."""
    (tmp_path / "f.yaml").write_text(text)
    for args in (["validate"], ["train"], ["sweep", "--dry-run"]):
        res = invoke(*args, tmp_path / "f.yaml")
        assert (res.exit_code, res.stderr) == (
            2,
            f"error: {tmp_path / 'f.yaml'}: invalid YAML: a value does not fit its tag "
            "(!!int, !!timestamp...)\n",
        ), args
