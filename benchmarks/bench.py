"""xorlab benchmarks: ratios against references measured in the same run.

    python benchmarks/bench.py            # full run, prints a table, writes benchmarks/results/
    python benchmarks/bench.py --tiny     # a few steps of everything (CI runs this so it can't rot)

Each figure is the median of several repeats; wall and process CPU (user + system) time are both
recorded, since these machines are shared and noisy. The reference for train() is a plain
tutorial-style NumPy loop (same math, same data, full batch, loss + accuracy every step).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from xorlab import __version__
from xorlab.config import validate
from xorlab.train import train


def plain_loop(hidden: int, steps: int, lr: float = 0.5, lam: float = 1e-4) -> float:
    """The tutorial's loop, written directly: sigmoid/MSE, no biases, L2, loss + accuracy."""
    rs = np.random.RandomState(0)
    X = np.random.RandomState(0).randn(300, 2)
    cls = np.logical_xor(X[:, 0] > 0, X[:, 1] > 0).astype(int)
    Y = np.eye(2)[cls]
    n = X.shape[0]
    W1 = (2 * rs.random_sample((2, hidden)) - 1) / np.sqrt(2)
    W2 = (2 * rs.random_sample((hidden, 2)) - 1) / np.sqrt(hidden)
    loss = acc = 0.0
    for _ in range(steps):
        h1 = 1 / (1 + np.exp(-(X @ W1)))
        h2 = 1 / (1 + np.exp(-(h1 @ W2)))
        loss = ((Y - h2) ** 2).sum() / (2 * n) + lam / (2 * n) * ((W1**2).sum() + (W2**2).sum())
        acc = (h2.argmax(1) == cls).mean()
        dz2 = (h2 - Y) / n * h2 * (1 - h2)
        dW2 = h1.T @ dz2 + lam / n * W2
        dz1 = (dz2 @ W2.T) * h1 * (1 - h1)
        dW1 = X.T @ dz1 + lam / n * W1
        W1 -= lr * dW1
        W2 -= lr * dW2
    return float(loss + acc)


def xorlab_train(hidden: int, steps: int) -> float:
    cfg = validate(
        {
            "model": {"hidden": [hidden]},
            "optim": {"lr": 0.5},
            "train": {"steps": steps},
            "plots": {"enabled": False},
        }
    )
    return float(train(cfg).final["loss"] or 0.0)


def measure(fn: Any, *args: Any, repeats: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn(*args)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "xorlab": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for p in threadpool_info()
        ]
    except ImportError:
        info["blas"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tiny", action="store_true", help="a few steps, to check the suite runs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    steps, repeats = (20, 1) if args.tiny else (2000, 5)

    rows = []
    for hidden in (3, 50):
        ref = measure(plain_loop, hidden, steps, repeats=repeats)
        ours = measure(xorlab_train, hidden, steps, repeats=repeats)
        rows.append(
            {
                "workload": f"train step, {hidden} hidden, full batch 300, metrics every step",
                "reference": "plain NumPy loop",
                "ours_us_per_step": 1e6 * ours["wall_s"] / steps,
                "ref_us_per_step": 1e6 * ref["wall_s"] / steps,
                "ratio": ours["wall_s"] / ref["wall_s"],
                "ours_cpu_ratio": ours["cpu_s"] / max(ref["cpu_s"], 1e-9),
                "steps_per_s": steps / ours["wall_s"],
            }
        )

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"xorlab benchmarks ({'tiny' if args.tiny else 'full'}; medians of {repeats})")
    for col in ("workload", "ours µs/step", "reference µs/step", "ratio", "steps/s"):
        t.add_column(col, justify="left" if col == "workload" else "right")
    for r in rows:
        t.add_row(
            r["workload"],
            f"{r['ours_us_per_step']:.1f}",
            f"{r['ref_us_per_step']:.1f}",
            f"{r['ratio']:.2f}x",
            f"{r['steps_per_s']:,.0f}",
        )
    Console().print(t)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"environment": environment(), "tiny": args.tiny, "steps": steps, "rows": rows}
    path = args.out / ("bench-tiny.json" if args.tiny else "bench.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
