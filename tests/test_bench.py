"""The benchmark suite runs (in its tiny mode) so it cannot rot; no timing is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_benchmark_suite_runs_in_tiny_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("bench", None)
    import bench

    assert bench.main(["--tiny", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "bench-tiny.json").read_text())
    workloads = [r["workload"] for r in doc["rows"]]
    assert len(workloads) == 16 and any("120-member sweep" in w for w in workloads)
    assert any("network-step inside a stack" in w for w in workloads)
    # telemetry's cost per step, each against train() with telemetry off in the same run
    tele = [r for r in doc["rows"] if r["workload"].startswith("telemetry: ")]
    assert [r["workload"].split(",")[0] for r in tele] == [
        "telemetry: off",
        "telemetry: activations (the default)",
        "telemetry: sharpness every step + activations",
        "telemetry: sharpness every 10th step + activations",
    ]
    assert all(r["reference"] == "train() with telemetry off" and r["ratio"] > 0 for r in tele)
    assert all(r["ours"]["wall_s"] > 0 and r["ours"]["machine_cpu_s"] >= 0 for r in doc["rows"])
    assert [r["target"] for r in doc["rows"]] == [None, 1.25] + [None] * 5 + [1.0, 0.1, None] + [
        None, 0.4, None, 1.3, 1.5, 2.5]  # fmt: skip
    # the scale rows, tiny: 100, 200 and 400 members against the reference, then Dask
    scale = doc["rows"][10:13]
    assert [r["members"] for r in scale] == [100, 200, 400]
    assert all("reference.py" in r["reference"] and r["ref"]["wall_s"] > 0 for r in scale)
    assert all(0 < r["files"] < 40 and r["bytes"] > 0 and r["driver_cpu_s"] > 0 for r in scale)
    assert "Dask" in workloads[13] and doc["rows"][13]["reference"] == "the local pool, --jobs 2"
    # the start-up rows close the table, in ms, each against `python -c "import typer"`
    assert [(r["workload"], r["unit"]) for r in doc["rows"][14:]] == [
        ("start-up: xorlab --help", "ms"),
        ("start-up: xorlab validate configs/xor_h3.yaml", "ms"),
    ]
    assert doc["environment"]["numpy"] and "blas" in doc["environment"]
    assert isinstance(doc["peers"], list)  # empty unless PyTorch or JAX is installed
    assert "ratio" in capsys.readouterr().out


def test_startup_rows_time_whole_processes_against_import_typer(monkeypatch):
    """--help and validate, each a whole process, against a bare `import typer` alternated with
    them: wall and the child's CPU (getrusage), the ratio and the target."""
    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("bench", None)
    import bench

    rows = []

    def add(workload, reference, ours, ref, unit, n, *, target=None, min_cpu=0.05):
        rows.append((workload, reference, ours, ref, unit, n, target, min_cpu))

    bench.startup_rows(add, repeats=1)
    assert [(r[0], r[1], r[4], r[5], r[6], r[7]) for r in rows] == [
        ("start-up: xorlab --help", 'python -c "import typer" (the same venv\'s python)', "ms",
         1e-3, 1.5, 0.0),
        ("start-up: xorlab validate configs/xor_h3.yaml",
         'python -c "import typer" (the same venv\'s python)', "ms", 1e-3, 2.5, 0.0),
    ]  # fmt: skip
    assert rows[0][3] == rows[1][3]  # one reference, measured once a round, for both rows
    for _, _, ours, ref, *_ in rows:
        assert (
            set(ours) == set(ref) == {"wall_s", "cpu_s", "sys_s", "machine_cpu_s", "machine_sys_s"}
        )
        assert ours["wall_s"] > 0 and ref["wall_s"] > 0
        assert 0 < ours["cpu_s"] < 5 * ours["wall_s"] + 0.1 and ref["cpu_s"] > 0


def test_the_search_benchmark_scores_a_pick_against_the_full_sweep(monkeypatch):
    import pandas as pd

    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("search_bench", None)
    import search_bench

    full = pd.DataFrame({"final_data_loss": [0.5, 0.1, 0.3, float("nan"), 0.2] * 4})
    full["index"] = range(20)
    searched = full.assign(status="pruned", steps_done=10)
    searched.loc[[2, 4], ["status", "steps_done"]] = ["completed", 100]  # it picks 4 (0.2)
    q = search_bench.quality(full, searched, steps=100, seed=0)
    assert q["rank"] == 5  # the four members at 0.1 are better
    assert not q["top5"]  # the top 5% of 20 is 1 member
    assert q["spent"] == (18 * 10 + 2 * 100) / (20 * 100)
    assert q["k_random"] == 3  # 19% of 20 members' full budgets
    # 0.2 beats a random 3 only if none of them is at 0.1 or 0.2 (a tie does not beat):
    # C(12, 3) / C(20, 3) = 220 / 1140 = 0.193, sampled 1000 times
    assert abs(q["p_beats_random"] - 220 / 1140) < 0.04


def test_the_search_benchmark_runs_in_tiny_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("search_bench", None)
    import search_bench

    assert search_bench.main(["--tiny", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "search-tiny.json").read_text())
    assert set(doc["quality"]) == {"halving", "hyperband"}
    assert set(doc["misleading"]) == {"halving, min_steps 37", "halving, min_steps auto"}
    for v in (*doc["quality"].values(), *doc["misleading"].values()):
        assert v["summary"]["seeds"] == 1 and 0 < v["summary"]["spent_median"] < 1
    assert len(doc["pbt"]["seeds"]) == 1
    assert {"halving_ratio", "pbt_ratio", "watch_s"} <= set(doc["overhead"])
    assert "PBT, 32 members" in capsys.readouterr().out
