"""The tutorial's story, as told by the shipped configs in configs/ (seed 0 only; the multi-seed
check lives in the sweep tests).

- xor_h3 / xor_h50: 50 hidden neurons beat 3 on final training loss.
- xor_h50_explode: the loss really blows up (the run diverges, or the loss jumps above 10x the
  lowest loss seen before it), and late: the weights grow first, the first spike comes after
  step 50 (step 52 for seed 0), not in the first updates.
- xor_h50_low_lr, xor_h50_lr_decay, xor_h50_l1, xor_h50_clip: the explode config with one key
  changed; each stops the blow-up and ends well (completed, final train accuracy >= 0.9, final
  loss <= 2x the lowest loss). L1 instead of L2 (stronger) works because it caps the weights.
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
REMEDIES = {
    "xor_h50_low_lr": "optim.lr",
    "xor_h50_lr_decay": "optim.schedule",
    "xor_h50_l1": "regularization",
    "xor_h50_clip": "optim.clip",
}


def _load(stem: str, *overrides: str) -> Any:
    return load_config(CONFIGS / f"{stem}.yaml", ["seed=0", "plots.enabled=false", *overrides])


@cache
def _run(stem: str) -> RunResult:
    return train(_load(stem))


def _blows_up(r: RunResult) -> bool:
    loss = r.metrics["loss"]
    prev_min = loss.cummin().shift(1)
    return r.status == "diverged" or bool((loss > 10 * prev_min).any())


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


@pytest.mark.parametrize("stem", list(REMEDIES))
def test_remedy_differs_from_explode_in_one_key_only(stem: str) -> None:
    explode = _flat(_load("xor_h50_explode").to_dict())
    remedy = _flat(_load(stem).to_dict())
    changed = {k for k in explode if explode[k] != remedy[k] and k != "name"}
    part = REMEDIES[stem]
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


@pytest.mark.parametrize("stem", list(REMEDIES))
def test_remedy_stops_the_blow_up_and_ends_well(stem: str) -> None:
    r = _run(stem)
    assert not _blows_up(r)
    assert _ends_well(r), (r.status, r.final, float(r.metrics["loss"].min()))


def test_l1_caps_the_weight_growth() -> None:
    explode, l1 = _run("xor_h50_explode"), _run("xor_h50_l1")
    w_explode = float(explode.metrics["weight_norm_W1"].iloc[-1])
    w_l1 = float(l1.metrics["weight_norm_W1"].iloc[-1])
    assert w_l1 < 0.75 * w_explode, (w_l1, w_explode)
