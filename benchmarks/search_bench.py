"""Adaptive search against the ground truth (issue "search that learns"; `make bench` runs it).

Every row trains the same members twice, once without the search (the ground truth: every
member's full-budget result) and once with it, in this process's sweep driver with --jobs 2:

- quality: halving (eta 3, rungs 37, 111, 333) and Hyperband over the census workload (the
  tutorial's 3-sigmoid-unit net, 1000 full-batch steps, lr log-uniform 0.01-10, L2 log-uniform
  1e-6-0.1, 243 members) for 20 random.seed values: is the search's pick (the best member it
  trained in full) in the top 5% of the full sweep, does it beat random search given the same
  network-steps (the best of a random subset of the full sweep of that cost; one subset drawn per
  seed, and the mean over 1000 subsets), and what share of the full sweep's network-steps it spent;
- the same on a workload where early ranks mislead (a 16-tanh-unit spiral net), with min_steps 37
  and with min_steps: auto (27 calibration members);
- PBT over 32 members of configs/sweeps/pbt.yaml's workload against the best fixed member of the
  same 32 starts, for 10 seeds;
- overhead: a halving sweep of 10,000 census members against (its network-steps / the full
  sweep's) x the full sweep's wall time; PBT's rounds on a 1,000-member census population against
  the same members without the search;
- `xorlab watch --once` on the 10,000-member sweep, as a whole process.

Usage: python benchmarks/search_bench.py [--tiny] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
CENSUS = """\
name: census
model: {hidden: [3], activation: sigmoid, loss: mse, bias: true, init: uniform}
data: {kind: xor, n: 300}
optim: {kind: sgd, lr: 3.0}
regularization: {kind: l2, strength: 0.0001}
train: {steps: STEPS}
plots: {enabled: false}
"""
SPIRAL = """\
name: spiral
data: {kind: spiral, n: 200, noise: 0.05}
model: {hidden: [16], activation: tanh, loss: cross_entropy, bias: true, init: xavier}
optim: {kind: sgd, lr: 0.3}
regularization: {kind: l2, strength: 0.0001}
train: {steps: STEPS}
plots: {enabled: false}
"""
CENSUS_DRAWS = """\
    optim.lr: {loguniform: [0.01, 10.0]}
    regularization.strength: {loguniform: [1.0e-6, 0.1]}
"""
SPIRAL_DRAWS = """\
    optim.lr: {loguniform: [0.003, 30.0]}
    regularization.strength: {loguniform: [1.0e-6, 0.01]}
"""


def sweep_text(base: str, steps: int, n: int, seed: int, draws: str, search: str | None) -> str:
    config = "\n".join("  " + line for line in base.replace("STEPS", str(steps)).splitlines())
    text = f"name: bench\nconfig:\n{config}\nrandom:\n  n: {n}\n  seed: {seed}\n  params:\n{draws}"
    return text + (f"search: {search}\n" if search else "")


def run_sweep_text(work: Path, text: str, jobs: int = 2) -> tuple[pd.DataFrame, Path, float]:
    from xorlab.searchrun import run
    from xorlab.sweep import load_sweep

    path = work / f"s{time.monotonic_ns()}.yaml"
    path.write_text(text)
    sweep = load_sweep(path, max_runs=200_000)
    t0 = time.perf_counter()
    out = run(sweep, work / "runs", jobs=jobs)
    return out.summary, out.folder, time.perf_counter() - t0


def badness(values: pd.Series) -> np.ndarray:
    v = values.to_numpy(dtype=np.float64)
    return np.where(np.isfinite(v), v, np.inf)


def quality(full: pd.DataFrame, searched: pd.DataFrame, steps: int, seed: int) -> dict[str, Any]:
    """The search's pick against the full sweep and random search at equal network-steps."""
    truth = badness(full["final_data_loss"])  # (n,) the full-budget value of every member
    n = len(truth)
    done = searched["status"] == "completed"
    pick = int(searched.loc[done].sort_values("final_data_loss", kind="stable")["index"].iloc[0])
    rank = int((truth < truth[pick]).sum()) + 1
    spent = float(searched["steps_done"].sum()) / (n * steps)
    k = max(1, int(spent * n))  # members random search trains in full for the same steps
    rng = np.random.default_rng([seed, 7])
    subsets = [rng.choice(n, size=k, replace=False) for _ in range(1000)]
    beats = [truth[pick] < truth[s].min() for s in subsets]
    return {"rank": rank, "top5": rank <= math.ceil(0.05 * n), "beats_random": bool(beats[0]),
            "p_beats_random": float(np.mean(beats)), "spent": spent, "k_random": k}  # fmt: skip


def quality_rows(work: Path, seeds: list[int], *, base: str, draws: str, steps: int, n: int,
                 searches: dict[str, str]) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in searches}
    for seed in seeds:
        full, _, _ = run_sweep_text(work, sweep_text(base, steps, n, seed, draws, None))
        for name, search in searches.items():
            searched, _, _ = run_sweep_text(work, sweep_text(base, steps, n, seed, draws, search))
            out[name].append({"seed": seed, **quality(full, searched, steps, seed)})
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seeds": len(rows),
        "top5_share": float(np.mean([r["top5"] for r in rows])),
        "beats_random_share": float(np.mean([r["beats_random"] for r in rows])),
        "mean_p_beats_random": float(np.mean([r["p_beats_random"] for r in rows])),
        "spent_median": float(statistics.median(r["spent"] for r in rows)),
    }


def pbt_rows(work: Path, seeds: list[int], steps: int) -> list[dict[str, Any]]:
    search = "{kind: pbt, interval: 100, quantile: 0.25, seed: 0}"
    rows = []
    for seed in seeds:
        full, _, _ = run_sweep_text(work, sweep_text(SPIRAL, steps, 32, seed, SPIRAL_DRAWS, None))
        pbt, _, _ = run_sweep_text(work, sweep_text(SPIRAL, steps, 32, seed, SPIRAL_DRAWS, search))
        best_fixed = float(np.min(badness(full["final_data_loss"])))
        best_pbt = float(np.min(badness(pbt["final_data_loss"])))
        rows.append({"seed": seed, "best_fixed": best_fixed, "best_pbt": best_pbt,
                     "pbt_wins": best_pbt < best_fixed})  # fmt: skip
    return rows


def overhead_rows(work: Path, n: int, n_pbt: int, steps: int) -> dict[str, Any]:
    halving = "{kind: halving, eta: 3, min_steps: 37}" if steps >= 1000 else (
        "{kind: halving, eta: 3, min_steps: 2}")  # fmt: skip
    full, _, t_full = run_sweep_text(work, sweep_text(CENSUS, steps, n, 0, CENSUS_DRAWS, None))
    hv, folder, t_hv = run_sweep_text(work, sweep_text(CENSUS, steps, n, 0, CENSUS_DRAWS, halving))
    share = float(hv["steps_done"].sum()) / (n * steps)
    interval = max(1, steps // 10)
    pbt = f"{{kind: pbt, interval: {interval}, seed: 0}}"
    _, _, t_fixed = run_sweep_text(work, sweep_text(CENSUS, steps, n_pbt, 0, CENSUS_DRAWS, None))
    _, _, t_pbt = run_sweep_text(work, sweep_text(CENSUS, steps, n_pbt, 0, CENSUS_DRAWS, pbt))
    watch = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "xorlab"), "watch", str(folder),
                        "--once"], check=True, capture_output=True)  # fmt: skip
        watch.append(time.perf_counter() - t0)
    return {
        "members": n,
        "full_s": t_full,
        "halving_s": t_hv,
        "network_steps_share": share,
        "halving_ratio": t_hv / (share * t_full),
        "pbt_members": n_pbt,
        "fixed_s": t_fixed,
        "pbt_s": t_pbt,
        "pbt_ratio": t_pbt / t_fixed,
        "watch_s": statistics.median(watch),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tiny", action="store_true", help="a few members and steps: does it run")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    tiny = args.tiny
    census = {"halving": "{kind: halving, eta: 3, min_steps: 37}",
              "hyperband": "{kind: hyperband, eta: 3, min_steps: 37}"}  # fmt: skip
    spiral = {"halving, min_steps 37": "{kind: halving, eta: 3, min_steps: 37}",
              "halving, min_steps auto": "{kind: halving, eta: 3, min_steps: auto, "
                                         "calibrate: 27}"}  # fmt: skip
    doc: dict[str, Any] = {"tiny": tiny}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        if tiny:
            census = {k: v.replace("37", "4") for k, v in census.items()}
            spiral = {k: v.replace("37", "4").replace("27", "6") for k, v in spiral.items()}
            q = quality_rows(work, [0], base=CENSUS, draws=CENSUS_DRAWS, steps=120, n=27,
                             searches=census)  # fmt: skip
            q2 = quality_rows(work, [0], base=SPIRAL, draws=SPIRAL_DRAWS, steps=120, n=27,
                              searches=spiral)  # fmt: skip
            p = pbt_rows(work, [0], steps=300)
            o = overhead_rows(work, 60, 30, 60)
        else:
            q = quality_rows(work, list(range(20)), base=CENSUS, draws=CENSUS_DRAWS, steps=1000,
                             n=243, searches=census)  # fmt: skip
            q2 = quality_rows(work, list(range(5)), base=SPIRAL, draws=SPIRAL_DRAWS, steps=2000,
                              n=243, searches=spiral)  # fmt: skip
            p = pbt_rows(work, list(range(10)), steps=2000)
            o = overhead_rows(work, 10_000, 1000, 1000)
        doc["wall_s"] = time.perf_counter() - t0
    doc["quality"] = {k: {"summary": summarize(v), "seeds": v} for k, v in q.items()}
    doc["misleading"] = {k: {"summary": summarize(v), "seeds": v} for k, v in q2.items()}
    doc["pbt"] = {"wins": sum(r["pbt_wins"] for r in p), "seeds": p}
    doc["overhead"] = o

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"adaptive search ({'tiny' if tiny else 'full'})")
    for col in ("workload", "measured", "target", ""):
        t.add_column(col)

    def row(name: str, value: str, target: str, met: bool | None) -> None:
        mark = "" if met is None else ("[green]met[/]" if met else "[red]missed[/]")
        t.add_row(name, value, target, mark)

    for name, v in doc["quality"].items():
        s = v["summary"]
        row(f"census, {name}: pick in the top 5%", f"{s['top5_share']:.0%} of {s['seeds']} seeds",
            ">= 90%" if name == "halving" else "-",
            s["top5_share"] >= 0.9 if name == "halving" else None)  # fmt: skip
        row(f"census, {name}: beats random search, equal network-steps",
            f"{s['beats_random_share']:.0%} (mean over subsets {s['mean_p_beats_random']:.0%})",
            ">= 80%" if name == "halving" else "-",
            s["beats_random_share"] >= 0.8 if name == "halving" else None)  # fmt: skip
        row(f"census, {name}: network-steps spent", f"{s['spent_median']:.1%} of the full sweep",
            "<= 20%" if name == "halving" else "-",
            s["spent_median"] <= 0.2 if name == "halving" else None)  # fmt: skip
    for name, v in doc["misleading"].items():
        s = v["summary"]
        row(f"spiral (early ranks mislead), {name}",
            f"top 5% {s['top5_share']:.0%}, beats random {s['beats_random_share']:.0%} "
            f"(mean {s['mean_p_beats_random']:.0%}), spent {s['spent_median']:.1%}, "
            f"{s['seeds']} seeds", "-", None)  # fmt: skip
    n_p = len(doc["pbt"]["seeds"])
    row("PBT, 32 members: beats the best fixed member", f"{doc['pbt']['wins']} of {n_p} seeds",
        ">= 8 of 10", doc["pbt"]["wins"] >= 0.8 * n_p)  # fmt: skip
    o = doc["overhead"]
    row(f"halving, {o['members']:,} members: wall / (share x full wall)",
        f"{o['halving_ratio']:.2f}x ({o['halving_s']:.1f} s; share {o['network_steps_share']:.1%}"
        f" of {o['full_s']:.1f} s)", "<= 1.15x", o["halving_ratio"] <= 1.15)  # fmt: skip
    row(f"PBT rounds, {o['pbt_members']:,} members: wall / the same without search",
        f"{o['pbt_ratio']:.2f}x ({o['pbt_s']:.1f} s vs {o['fixed_s']:.1f} s)", "<= 1.05x",
        o["pbt_ratio"] <= 1.05)  # fmt: skip
    row(f"xorlab watch --once, {o['members']:,} members", f"{o['watch_s']:.2f} s (median of 5)",
        "<= 1 s", o["watch_s"] <= 1.0)  # fmt: skip
    Console(width=140).print(t)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("search-tiny.json" if tiny else "search.json")
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print(f"wrote {path} ({doc['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
