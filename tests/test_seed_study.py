"""The shipped sweeps: they expand as documented, and the seed study tells the tutorial's story."""

from __future__ import annotations

import pytest

from xorlab.store import SweepStore
from xorlab.sweep import load_sweep
from xorlab.sweeprun import load_for_resume, run_sweep

from .conftest import CONFIGS

VARIANTS = ["h3", "h50", "h50_explode", "h50_low_lr", "h50_lr_decay", "h50_l1", "h50_clip"]
REMEDIES = ["h50_low_lr", "h50_lr_decay", "h50_clip"]  # h50_l1 only hides the blow-ups


def test_shipped_sweeps_expand():
    assert len(load_sweep(CONFIGS / "sweeps" / "lr_vs_hidden.yaml").members) == 36
    assert len(load_sweep(CONFIGS / "sweeps" / "random_search.yaml").members) == 24
    s = load_sweep(CONFIGS / "sweeps" / "seed_study.yaml")
    assert [m.variant for m in s.members[::3]] == VARIANTS
    assert {m.seed for m in s.members} == {0, 1, 2}


def test_seed_study_variants_are_the_single_run_configs():
    from xorlab.config import load_config

    s = load_sweep(CONFIGS / "sweeps" / "seed_study.yaml")
    for m in s.members:
        single = load_config(CONFIGS / f"xor_{m.variant}.yaml", [f"seed={m.seed}"])
        assert m.config == single, m.label


@pytest.fixture(scope="module")
def seed_study(tmp_path_factory):
    runs = tmp_path_factory.mktemp("seed-study")
    sweep = load_sweep(CONFIGS / "sweeps" / "seed_study.yaml", ["plots.enabled=false"])
    out = run_sweep(sweep, runs, jobs=2)
    return out.folder, out.summary


def _story(folder, index):
    """The metrics, and whether the total loss or the data loss rose above 10x its running
    minimum (a penalty's floor under the total loss cannot hide a spike)."""
    m = SweepStore(folder).metrics(int(index))
    spiked = any(bool((m[c] > 10 * m[c].cummin().shift(1)).any()) for c in ("loss", "data_loss"))
    return m, spiked


def test_explode_blows_up_for_every_seed(seed_study):
    folder, summary = seed_study
    rows = summary[summary["variant"] == "h50_explode"]
    assert len(rows) == 3
    for _, r in rows.iterrows():
        _, spiked = _story(folder, r["index"])
        assert r["status"] == "diverged" or spiked, r["index"]


@pytest.mark.parametrize("variant", REMEDIES)
def test_every_remedy_ends_well_for_every_seed(seed_study, variant):
    folder, summary = seed_study
    rows = summary[summary["variant"] == variant]
    assert len(rows) == 3
    for _, r in rows.iterrows():
        m, spiked = _story(folder, r["index"])
        assert not spiked, r["index"]  # the explode run recovers too: no spike is the fix
        assert r["status"] == "completed", r["index"]
        assert r["final_train_acc"] >= 0.9, r["index"]
        assert r["final_loss"] <= 2 * m["loss"].min(), r["index"]


def test_l1_hides_its_blow_ups_for_every_seed(seed_study):
    folder, summary = seed_study
    rows = summary[summary["variant"] == "h50_l1"]
    assert len(rows) == 3
    for _, r in rows.iterrows():
        m, spiked = _story(folder, r["index"])
        total = bool((m["loss"] > 10 * m["loss"].cummin().shift(1)).any())
        assert spiked and not total, r["index"]  # the data loss spikes; the total does not


def test_fifty_beat_three_for_every_seed(seed_study):
    _, summary = seed_study
    h3 = summary[summary["variant"] == "h3"].set_index("seed")["final_loss"]
    h50 = summary[summary["variant"] == "h50"].set_index("seed")["final_loss"]
    assert (h50 < h3).all()


def test_resume_rebuilds_variant_bases_from_the_folder(seed_study):
    folder, _ = seed_study
    again = load_for_resume(folder)
    original = load_sweep(CONFIGS / "sweeps" / "seed_study.yaml", ["plots.enabled=false"])
    assert [m.config for m in again.members] == [m.config for m in original.members]
