"""Config loading: YAML that means what users think, one clear line per problem."""

from __future__ import annotations

import time

import pytest

from xorlab import yamlio
from xorlab.config import Config, apply_overrides, load_config, validate
from xorlab.errors import ConfigError, XorlabError

from .conftest import write


def test_every_key_has_a_default():
    cfg = validate({})
    assert cfg.model.hidden == [3] and cfg.optim.lr == 0.003 and cfg.train.batch_size is None
    assert cfg.regularization.kind == "l2" and cfg.regularization.strength == 0.0001


def test_exponent_floats_are_floats():
    assert yamlio.loads("a: 1e-3")["a"] == 0.001
    assert yamlio.loads("a: 2.5E3")["a"] == 2500.0
    assert yamlio.loads("a: 12")["a"] == 12 and isinstance(yamlio.loads("a: 12")["a"], int)
    assert validate(yamlio.loads("optim: {lr: 1e-3}")).optim.lr == 0.001


def test_resolved_config_round_trips():
    cfg = validate(
        {"optim": {"lr": 1e-5, "schedule": {"kind": "cosine"}}, "model": {"hidden": [5, 4]}}
    )
    again = validate(yamlio.loads(cfg.to_yaml()))
    assert again == cfg
    assert "hidden: [5, 4]" in cfg.to_yaml()


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("train: {batch_size: true}", "train.batch_size", "valid integer"),
        ("train: {batch_size: 0}", "train.batch_size", "greater than or equal to 1"),
        ("optim: {lr: 0}", "optim.lr", "greater than 0"),
        ("optim: {lr: -1e-3}", "optim.lr", "greater than 0"),
        ("optim: {lr: '0.1'}", "optim.lr", "valid number"),
        ("optim: {lr: .nan}", "optim.lr", "finite number"),
        ("optim: {lr: .inf}", "optim.lr", "finite number"),
        ("optim: {lr: 1e999}", "optim.lr", "finite number"),
        ("model: {hidden: [0]}", "model.hidden.0", "greater than or equal to 1"),
        ("model: {hidden: 3}", "model.hidden", "valid list"),
        ("model: {activation: softplus}", "model.activation", "'sigmoid', 'tanh' or 'relu'"),
        ("data: {test_fraction: 1.0}", "data.test_fraction", "less than 1"),
        ("data: {test_fraction: -0.1}", "data.test_fraction", "greater than or equal to 0"),
        ("optim: {clip: {kind: norm, max: -1}}", "optim.clip.max", "greater than 0"),
        ("optim: {schedule: {kind: step, every: 0}}", "optim.schedule.every", ">= 1"),
        ("model: {hiden: [3]}", "model.hiden", "did you mean 'hidden'"),
        ("optimizer: {lr: 1}", "optimizer", "did you mean 'optim'"),
        ("name: ../../etc", "name", "letters, digits"),
        ("name: .hidden", "name", "letters, digits"),
        ("seed: -1", "seed", "greater than or equal to 0"),
        ("plots: {gif_frames: 1}", "plots.gif_frames", "must be 0 (no GIF) or at least 2, got 1"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, key, fragment):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    line = info.value.lines()[0]
    assert line.startswith(f"{p}: {key}: "), line
    assert fragment.replace(">= 1", "greater than or equal to 1") in line, line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [1\nb: 2", "line 2, column"),
        ("data: {n: 3}\ndata: {n: 4}", "duplicate key 'data'"),
        ("!!python/object/apply:os.system ['echo hi']", "YAML tags are not allowed"),
        ("- 1\n- 2", "must be a mapping"),
        ("", "must be a mapping"),
        ("just text", "must be a mapping"),
    ],
)
def test_bad_documents(tmp_path, text, fragment):
    with pytest.raises(XorlabError) as info:
        load_config(write(tmp_path, text))
    assert fragment in str(info.value)


def test_alias_bomb_fails_fast(tmp_path):
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    t0 = time.perf_counter()
    with pytest.raises(XorlabError, match="alias bomb"):
        load_config(write(tmp_path, "\n".join(lines)))
    assert time.perf_counter() - t0 < 5  # a hang, not a speed check: 10**10 values otherwise


def test_network_too_large_is_refused_with_its_size(tmp_path):
    with pytest.raises(ConfigError, match=r"model.hidden: this run would need about [\d.]+ TiB"):
        load_config(write(tmp_path, "model: {hidden: [200000, 200000, 200000]}"))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(XorlabError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(XorlabError, match="is a folder"):
        load_config(tmp_path)


def test_overrides_are_yaml_typed_and_repeatable(tmp_path):
    p = write(tmp_path, "model: {hidden: [3]}\noptim: {lr: 0.1}")
    cfg = load_config(
        p, ["model.hidden=[50, 2]", "optim.lr=1e-2", "optim.lr=0.3", "train.shuffle=true"]
    )
    assert cfg.model.hidden == [50, 2] and cfg.optim.lr == 0.3 and cfg.train.shuffle is True
    assert cfg.name == "c"  # from the file name when the config has none


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("optim.lr", "expected KEY=VALUE"),
        ("=3", "bad key"),
        ("optim..lr=3", "bad key"),
        ("optim.lrr=3", "did you mean 'lr'"),
        ("name.x=3", "name is not a section"),
        ("optim.lr=[1", "invalid YAML"),
        ("optim.lr=abc", "valid number"),
    ],
)
def test_bad_overrides(tmp_path, override, fragment):
    with pytest.raises(XorlabError) as info:
        load_config(write(tmp_path, "name: x"), [override])
    assert fragment in str(info.value)


def test_apply_overrides_leaves_the_original_alone():
    raw = {"optim": {"lr": 0.1}}
    out = apply_overrides(raw, ["optim.lr=0.2"])
    assert raw == {"optim": {"lr": 0.1}} and out == {"optim": {"lr": 0.2}}


def test_several_problems_each_on_its_own_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "optim: {lr: 0}\ntrain: {steps: 0}"))
    lines = info.value.lines()
    assert len(lines) == 2 and "optim.lr" in lines[0] and "train.steps" in lines[1]


def test_config_model_forbids_unknown_keys_in_python_too():
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError
        Config.model_validate({"bogus": 1})


def test_gif_frames_zero_and_two_are_accepted():
    assert validate({"plots": {"gif_frames": 0}}).plots.gif_frames == 0
    assert validate({"plots": {"gif_frames": 2}}).plots.gif_frames == 2


def test_gif_frames_one_is_exit_2_with_one_line(tmp_path, runs_dir):
    from typer.testing import CliRunner

    from xorlab.cli import app

    cfg = write(tmp_path, "train: {steps: 3}\nplots: {gif_frames: 1}")
    res = CliRunner().invoke(app, ["train", str(cfg), "--runs-dir", str(runs_dir)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"error: {cfg}: plots.gif_frames: must be 0 (no GIF) or at least 2, got 1"
    ]
    assert not runs_dir.exists()
