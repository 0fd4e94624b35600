"""`xorlab schema`: JSON Schemas from the pydantic models, shipped beside the configs for editors,
checked by a real JSON Schema validator against every shipped file."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from xorlab import yamlio
from xorlab.cli import app
from xorlab.config import validate

from .conftest import CONFIGS

runner = CliRunner()
SCHEMAS = CONFIGS / "schema"
REFRESH = "out of date: run `make schema` (xorlab schema KIND > configs/schema/KIND.schema.json)"


def _schema(kind: str) -> dict:
    res = runner.invoke(app, ["schema", kind])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("kind", ["config", "sweep"])
def test_the_shipped_schema_is_what_xorlab_schema_prints(kind):
    shipped = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    assert shipped == _schema(kind), REFRESH
    jsonschema.Draft202012Validator.check_schema(shipped)


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


@pytest.mark.parametrize("path", _files(CONFIGS), ids=lambda p: p.name)
def test_every_shipped_config_passes_the_schema_and_names_it(path):
    jsonschema.validate(yamlio.load_file(path), _schema("config"))
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=schema/config.schema.json"
    assert (path.parent / "schema/config.schema.json").is_file()


@pytest.mark.parametrize("path", _files(CONFIGS / "sweeps"), ids=lambda p: p.name)
def test_every_shipped_sweep_passes_the_schema_and_names_it(path):
    jsonschema.validate(yamlio.load_file(path), _schema("sweep"))
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/sweep.schema.json"
    assert (path.parent / "../schema/sweep.schema.json").resolve().is_file()


@pytest.mark.parametrize(
    "doc",
    [
        {"optim": {"lrr": 0.1}},  # unknown key
        {"model": {"activation": "swish"}},  # not a choice
        {"optim": {"lr": -1.0}},  # out of range
        {"train": {"batch_size": True}},  # wrong type
        {"plots": {"gif_frames": 1000}},
    ],
)
def test_the_schema_rejects_what_the_validator_rejects(doc):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema("config"))
    with pytest.raises(Exception):  # noqa: B017 - pydantic agrees (ConfigError)
        validate(doc)


def test_a_sweep_files_inline_config_is_checked_as_a_config():
    schema = _schema("sweep")
    good = yaml.safe_load("config: {optim: {lr: 0.5}}\ngrid: {optim.lr: [0.1, 1.0]}\nseeds: 3\n")
    jsonschema.validate(good, schema)
    for bad in ("config: {optim: {lrr: 0.5}}", "grid: {optim.lr: 0.1}", "grid: {'a b': [1]}",
                "seeds: [-1]", "variants: [{set: {}}]"):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(yaml.safe_load(bad), schema)


def test_each_knob_carries_its_comment_as_description_and_default():
    props = _schema("config")["$defs"]["OptimConfig"]["properties"]
    assert props["lr"]["description"].startswith("base learning rate")
    assert props["lr"]["default"] == 0.003
    assert props["kind"]["enum"] == ["sgd", "momentum", "adam"]
    assert _schema("sweep")["properties"]["grid"]["description"].startswith("dotted key")


def test_an_unknown_schema_kind_is_exit_2():
    res = runner.invoke(app, ["schema", "run"])
    assert res.exit_code == 2
    assert res.output.strip() == "error: schema: must be config or sweep, got 'run'"
