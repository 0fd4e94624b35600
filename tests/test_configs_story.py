"""The tutorial's story, as told by the shipped configs in configs/ (seed 0 only; the multi-seed
check lives in the sweep tests).

- xor_h3 / xor_h50: 50 hidden neurons beat 3 on final training loss.
- xor_h50_explode: the loss really blows up (the run diverges, or the loss jumps above 10x the
  lowest loss seen before it), and late: the weights grow first, the first spike comes after
  step 50 (step 52 for seed 0), not in the first updates.
- xor_h50_low_lr, xor_h50_lr_decay, xor_h50_l1, xor_h50_clip: the explode config with one key
  changed. low_lr, lr_decay and clip stop the blow-up (of the total loss and of the data loss)
  and end well (completed, final train accuracy >= 0.9, final loss <= 2x the lowest loss).
- L1 instead of L2 (stronger) caps the weights but does not stop the blow-ups: the data loss
  still spikes above 10x, hidden in the total loss by the penalty's floor.
- explode and its remedies log the sharpness; each of explode's spikes comes after a stretch of
  sharpness above 2/lr.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from xorlab.config import load_config
from xorlab.train import RunResult, train

CONFIGS = Path(__file__).parent.parent / "configs"

STORY = [
    "xor_h3",
    "xor_h50",
    "xor_h50_explode",
    "xor_h50_low_lr",
    "xor_h50_lr_decay",
    "xor_h50_l1",
    "xor_h50_clip",
]

# remedy file -> the one part of the explode config it changes
ONE_KEY = {
    "xor_h50_low_lr": "optim.lr",
    "xor_h50_lr_decay": "optim.schedule",
    "xor_h50_l1": "regularization",
    "xor_h50_clip": "optim.clip",
}
REMEDIES = ["xor_h50_low_lr", "xor_h50_lr_decay", "xor_h50_clip"]  # the ones that cure it


def _load(stem: str, *overrides: str) -> Any:
    return load_config(CONFIGS / f"{stem}.yaml", ["seed=0", "plots.enabled=false", *overrides])


@cache
def _run(stem: str) -> RunResult:
    return train(_load(stem))


def _spiked(r: RunResult, col: str) -> bool:
    loss = r.metrics[col]
    return bool((loss > 10 * loss.cummin().shift(1)).any())


def _blows_up(r: RunResult) -> bool:
    """Diverged, or the total loss *or the data loss* above 10x its running minimum."""
    return r.status == "diverged" or _spiked(r, "loss") or _spiked(r, "data_loss")


def _first_spike(r: RunResult) -> int | None:
    loss = r.metrics["loss"]
    spikes = r.metrics["step"][loss > 10 * loss.cummin().shift(1)]
    if len(spikes):
        return int(spikes.iloc[0])
    return r.diverged_at if r.status == "diverged" else None


def _ends_well(r: RunResult) -> bool:
    return (
        r.status == "completed"
        and r.final["train_acc"] >= 0.9
        and r.final["loss"] <= 2 * float(r.metrics["loss"].min())
    )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


@pytest.mark.parametrize("stem", STORY)
def test_config_exists_validates_and_is_named_after_its_file(stem: str) -> None:
    cfg = _load(stem)
    assert cfg.name == stem.replace("_", "-")
    assert cfg.plots.gif_frames == 40
    assert cfg.model.bias is True  # the bias-free tutorial net cannot separate XOR


@pytest.mark.parametrize("stem", list(ONE_KEY))
def test_remedy_differs_from_explode_in_one_key_only(stem: str) -> None:
    explode = _flat(_load("xor_h50_explode").to_dict())
    remedy = _flat(_load(stem).to_dict())
    changed = {k for k in explode if explode[k] != remedy[k] and k != "name"}
    part = ONE_KEY[stem]
    assert changed, f"{stem} is identical to the explode config"
    assert all(k == part or k.startswith(part + ".") for k in changed), changed


def test_h50_beats_h3_on_final_training_loss() -> None:
    h3, h50 = _run("xor_h3"), _run("xor_h50")
    assert h3.status == h50.status == "completed"
    assert h50.final["loss"] < h3.final["loss"]


def test_explode_blows_up_late_after_the_weights_grew() -> None:
    r = _run("xor_h50_explode")
    assert _blows_up(r)
    first = _first_spike(r)
    assert first is not None and first > 50, first
    m = r.metrics.set_index("step")
    assert m.loc[first, "weight_norm_W1"] > 3 * m.loc[0, "weight_norm_W1"]


@pytest.mark.parametrize("stem", REMEDIES)
def test_remedy_stops_the_blow_up_and_ends_well(stem: str) -> None:
    r = _run(stem)
    assert not _blows_up(r)
    assert _ends_well(r), (r.status, r.final, float(r.metrics["loss"].min()))


def test_l1_caps_the_weight_growth() -> None:
    explode, l1 = _run("xor_h50_explode"), _run("xor_h50_l1")
    w_explode = float(explode.metrics["weight_norm_W1"].iloc[-1])
    w_l1 = float(l1.metrics["weight_norm_W1"].iloc[-1])
    assert w_l1 < 0.75 * w_explode, (w_l1, w_explode)


def test_l1_only_hides_the_blow_ups_behind_its_penalty() -> None:
    r = _run("xor_h50_l1")
    assert not _spiked(r, "loss")  # the total loss stays below 10x its running minimum...
    assert _spiked(r, "data_loss")  # ...because the penalty floors it; the data loss spikes
    assert _blows_up(r)


def test_explode_and_its_remedies_log_the_sharpness() -> None:
    from xorlab.diagnose import diagnose

    for stem in ["xor_h50_explode", *ONE_KEY]:
        assert _load(stem).telemetry.sharpness_every == 5, stem
    r = _run("xor_h50_explode")
    d = diagnose(r.metrics, r.config, {"status": r.status, "final": r.final})
    spikes = [e for e in d.events if e.kind == "blow_up"]
    assert [e.step for e in spikes] == [52, 121]
    assert all(e.cause == "edge_of_stability" for e in spikes)  # sharpness above 2/lr first
