"""`xorlab diagnose` and `xorlab explain RUN --step T` (DESIGN.md section 4): the story configs'
events and remedies, the JSON shape, the remedy sweep, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from xorlab import nn
from xorlab.cli import app
from xorlab.config import load_config
from xorlab.diagnose import diagnose, spikes, stretch_before
from xorlab.train import net_spec, train

from .conftest import CONFIGS

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders of the story configs (no plots, no telemetry logged: diagnose replays)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for stem in ("xor_h50_explode", "xor_h50_low_lr", "xor_h3"):
        res = invoke("train", CONFIGS / f"{stem}.yaml", "--runs-dir", root / stem, "--no-plots",
                     "--quiet", "--set", "telemetry.sharpness_every=0")  # fmt: skip
        assert res.exit_code == 0, res.output
        out[stem] = next((root / stem).iterdir())
    return out


def _json(*args) -> dict:
    res = invoke("diagnose", *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_explode_names_each_blow_up_its_step_and_the_sharpness_stretch_before_it(runs):
    info = _json(runs["xor_h50_explode"])
    assert info["sharpness"]["source"] == "replayed"  # the run logged none: measured by replay
    blow = [e for e in info["events"] if e["kind"] == "blow_up"]
    # seed 0: spikes above 10x the running minimum begin at steps 52 and 121, each at the end
    # of a stretch with sharpness above 2/lr = 0.8 (35-52 and 117-121)
    assert [e["step"] for e in blow] == [52, 121]
    assert [e["cause"] for e in blow] == ["edge_of_stability"] * 2
    assert [e["evidence"]["above_from"] for e in blow] == [35, 117]
    assert [e["evidence"]["above_to"] for e in blow] == [52, 121]
    assert all(e["evidence"]["limit"] == 0.8 for e in blow)
    assert all(e["evidence"]["max_sharpness"] > 0.8 for e in blow)
    assert blow[0]["evidence"]["curve"] == "both" and blow[0]["evidence"]["ratio"] > 10
    # remedies: lr below 2 / max sharpness first, each one config change with its reason
    first = info["remedies"][0]
    assert list(first["set"]) == ["optim.lr"]
    assert first["set"]["optim.lr"] <= 2 / info["sharpness"]["max"]
    assert "2/max sharpness" in first["why"]
    assert all(len(r["set"]) == 1 and r["why"] for r in info["remedies"])


def test_json_shape(runs):
    info = _json(runs["xor_h50_explode"])
    assert {"events", "remedies"} <= set(info)
    kinds = {"blow_up", "diverged", "plateau", "underfit", "saturation", "dead_units",
             "vanishing_gradient", "oscillation", "overfit"}  # fmt: skip
    for e in info["events"]:
        assert {"kind", "step", "cause", "evidence"} <= set(e)
        assert e["kind"] in kinds and isinstance(e["evidence"], dict)
    for r in info["remedies"]:
        assert {"set", "why"} <= set(r) and isinstance(r["set"], dict)


def test_lower_lr_remedy_has_no_blow_up(runs):
    info = _json(runs["xor_h50_low_lr"])
    assert not [e for e in info["events"] if e["kind"] in ("blow_up", "diverged")]
    assert info["sharpness"]["stretches_above"] == 0  # sharpness x lr stays below 2 all run


def test_h3_names_the_capacity_limit(runs):
    info = _json(runs["xor_h3"])
    under = [e for e in info["events"] if e["kind"] == "underfit"]
    assert len(under) == 1 and under[0]["cause"] == "capacity_limit"
    assert under[0]["evidence"]["hidden"] == [3]
    assert 0.7 < under[0]["evidence"]["train_acc"] < 0.9
    assert info["remedies"][0]["set"] == {"model.hidden": [12]}
    steps = [r for r in info["remedies"] if r["set"] == {"train.steps": 4000}]
    assert steps[0]["why"] == (  # a capacity limit: the loss barely falls, more steps tests it
        "the loss fell only 0.4% over the last quarter; 4x the steps (4000) tells a slow descent "
        "from a limit"
    )
    res = invoke("diagnose", runs["xor_h3"])
    assert res.exit_code == 0, res.output
    assert "capacity limit" in res.output and "model.hidden=[12]" in res.output


def test_write_sweep_is_a_valid_sweep_and_run_says_which_remedies_fixed_it(runs, tmp_path):
    sweep_file = tmp_path / "remedies.yaml"
    res = invoke("diagnose", runs["xor_h50_explode"], "--write-sweep", sweep_file, "--run",
                 "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    val = invoke("validate", sweep_file)
    assert val.exit_code == 0 and "4 members" in val.output, val.output
    results = {r["variant"]: r for r in info["results"]}
    assert list(results) == ["as_run"] + [r["name"] for r in info["remedies"]]
    assert results["as_run"]["fixed"] is None and "blow_up" in results["as_run"]["problems"]
    lr = next(r for r in info["remedies"] if "optim.lr" in r["set"])
    assert results[lr["name"]]["fixed"] is True  # lr <= 2/max sharpness: no blow-up left
    assert Path(info["sweep"]).parent == runs["xor_h50_explode"].parent


def test_l1_data_loss_blow_ups_are_not_hidden_by_the_penalty():
    """L1 (strength 2) keeps the *total* loss below 10x its running minimum, but its data loss
    spikes above 10x again and again: diagnose counts those."""
    cfg = load_config(CONFIGS / "xor_h50_l1.yaml", ["plots.enabled=false"])
    r = train(cfg)
    d = diagnose(r.metrics, cfg, {"status": r.status, "final": r.final})
    blow = [e for e in d.events if e.kind == "blow_up"]
    assert len(blow) >= 10
    assert all(e.evidence["curve"] == "data_loss" for e in blow)
    assert all(e.evidence["loss_ratio"] < 10 < e.evidence["data_loss_ratio"] for e in blow)


def test_spikes_and_stretches_by_hand():
    # running minimum before each row: inf, 1, 1, 0.5, 0.5, 0.5; ratios 12/1 and 6/0.5 above 10
    s, ratio = spikes(np.array([1.0, 12.0, 0.5, 6.0, 7.0, 0.4]))
    assert [(x.onset, x.end, x.peak) for x in s] == [(1, 1, 1), (3, 4, 4)]
    assert ratio[1] == 12.0 and ratio[4] == 14.0
    steps = np.arange(8)
    sharp = np.array([0.5, 0.9, np.nan, 0.9, 0.95, 0.7, 0.6, 0.6])  # step 2 not measured
    limit = np.full(8, 0.8)
    assert stretch_before(steps, sharp, limit, 5) == (1, 4)  # measured rows 1, 3, 4 above
    assert stretch_before(steps, sharp, limit, 4) == (1, 4)
    assert stretch_before(steps, np.full(8, 0.5), limit, 6) is None


def test_divergence_is_an_event():
    m = pd.DataFrame({"step": [0, 1, 2], "lr": [1.0] * 3, "loss": [1.0, 2.0, np.nan]})
    cfg = load_config(None)
    d = diagnose(m, cfg, {"status": "diverged", "diverged_at": 2})
    assert [(e.kind, e.step, e.cause) for e in d.events] == [("diverged", 2, "non-finite loss")]
    assert d.remedies and "optim.lr" in d.remedies[0].set


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nope", "no such run folder"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a run folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no config.yaml"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(tmp_path, make, message):
    path = make(tmp_path)
    out = tmp_path / "s.yaml"
    res = invoke("diagnose", path, "--write-sweep", out)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output
    assert not out.exists()


def test_damaged_metrics_is_exit_2(runs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["xor_h3"], run)
    (run / "metrics.csv").write_text("a,b\n1,2\n")
    res = invoke("diagnose", run)
    assert res.exit_code == 2 and res.output.startswith("error: ") and "'step'" in res.output


def test_explain_run_step_replays_to_that_step(runs):
    run = runs["xor_h50_explode"]
    res = invoke("explain", run, "--step", 52, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    cfg = load_config(run / "config.yaml")
    before = train(cfg, stop_at=52)  # config.yaml has plots off (--no-plots)
    x = before.data.X_train[:1]
    _, fwd = nn.forward(before.final_params, x, net_spec(cfg))
    np.testing.assert_allclose(info["h"][0], fwd.hs[1][0], rtol=1e-12)
    assert info["step"] == 52 and info["lr"] == 2.5
    text = invoke("explain", run, "--step", 52)
    assert text.exit_code == 0 and "backward (chain rule)" in text.output
    for args, msg in [(("--step", 1000), "0 to 999"), ((), "needs --step")]:
        bad = invoke("explain", run, *args)
        assert bad.exit_code == 2 and bad.output.startswith("error: ") and msg in bad.output


def test_run_report_opens_with_the_diagnosis_and_shows_the_dynamics(runs, tmp_path):
    out = tmp_path / "rep"
    res = invoke("report", runs["xor_h50_explode"], "--out", out)
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert md.index("**Diagnosis**") < md.index("**Completed**")
    assert "step 52: the loss blew up" in md and "First thing to try" in md
    for name in ("dynamics.png", "hidden_units.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Dynamics" in md and "## Hidden units" in md


def test_diagnose_package_modules_import_alone_without_cycles():
    """Each room of xorlab.diagnose imports on its own in a fresh interpreter (no import cycle),
    and the names importers use stay reachable from the package."""
    import subprocess
    import sys

    from xorlab import diagnose as pkg

    for name in ("findings", "stability", "fit", "remedies"):
        code = f"import xorlab.diagnose.{name}"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    for name in ("diagnose", "spikes", "stretch_before", "fixed", "Diagnosis", "SPIKE_RATIO"):
        assert hasattr(pkg, name)


def test_blow_up_text_names_the_curve_and_the_clipping():
    """A data-loss-only spike names the data loss (the penalty clause last, after the sharpness
    stretch); a one-step stretch reads 'at step'; with norm clipping the text gives the clipped
    share since the stretch began and the factor at the onset."""
    from xorlab.config import validate

    cfg = validate({"optim": {"lr": 2.0, "clip": {"kind": "norm", "max": 1.0}}})
    data = np.array([1.0, 0.1, 0.1, 0.1, 1.5, 0.1])  # 15x at step 4
    m = pd.DataFrame({
        "step": np.arange(6), "lr": 2.0, "data_loss": data, "reg_loss": 0.4, "loss": data + 0.4,
        "sharpness": [0.5, 0.5, 0.5, 1.5, 0.5, 0.5],  # above 2/lr = 1 at step 3 only
        "grad_norm": [0.5, 0.5, 2.0, 2.0, 4.0, 0.5], "clipped": [0, 0, 1, 1, 1, 0],
    })  # fmt: skip
    (e,) = [e for e in diagnose(m, cfg, None).events if e.kind == "blow_up"]
    assert e.text == (
        "step 4: the data loss blew up to 15x its running minimum (peak at step 4), after "
        "sharpness stood above 2/lr = 1 at step 3 (max 1.5); 100% of the steps from step 3 on "
        "were clipped (by a factor 0.25 at the onset); the total loss rose only 3.8x: the "
        "penalty (0.4) is a floor that hides the spike"
    )
    assert e.evidence["curve"] == "data_loss" and e.evidence["clip_factor"] == 0.25
