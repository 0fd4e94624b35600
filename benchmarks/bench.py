"""xorlab benchmarks: ratios against references measured in the same run.

    python benchmarks/bench.py            # full run, prints a table, writes benchmarks/results/
    python benchmarks/bench.py --tiny     # a few steps of everything (CI runs this so it can't rot)

Each figure is the median of several repeats, ours and the reference's alternating so that a change
in the machine's load falls on both; wall and process CPU (user + system) time are both recorded,
since these machines are shared and noisy. The reference for train() is a plain
tutorial-style NumPy loop (same math, same data, full batch, loss + accuracy every step).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
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


def plain_loop(hidden: int, steps: int, lr: float = 0.5, lam: float = 1e-4, seed: int = 0) -> float:
    """The tutorial's loop, written directly: sigmoid/MSE, no biases, L2, loss + accuracy."""
    rs = np.random.RandomState(seed)
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


def stack_configs(k: int, steps: int) -> list[Any]:
    """The tutorial's net (3 sigmoid hidden, MSE, no biases, 300 rows, full batch), k seeds with
    drawn optim.lr (loguniform 0.01-10) and regularization.strength (loguniform 1e-6-0.1)."""
    rng = np.random.default_rng(0)
    lrs = np.exp(rng.uniform(np.log(0.01), np.log(10.0), k))
    lams = np.exp(rng.uniform(np.log(1e-6), np.log(0.1), k))
    return [
        validate(
            {
                "name": f"m{i}",
                "seed": i,
                "optim": {"lr": float(lrs[i])},
                "regularization": {"strength": float(lams[i])},
                "train": {"steps": steps},
                "plots": {"enabled": False},
            }
        )
        for i in range(k)
    ]


def xorlab_stack(configs: list[Any]) -> float:
    from xorlab.population import train_population

    return float(sum(r.final["loss"] or 0.0 for r in train_population(configs)))


def plain_stacked_loop(configs: list[Any]) -> float:
    """The same K networks as one hand-written stacked NumPy loop: weights (K, fan_in, fan_out),
    the same 13 metrics every step (loss, data and penalty loss, accuracy, gradient norm, clip
    flag, per-parameter gradient and weight norms) kept in float64, one table per group."""
    K, steps = len(configs), configs[0].train.steps
    X = np.random.RandomState(0).randn(300, 2)
    cls = np.logical_xor(X[:, 0] > 0, X[:, 1] > 0)
    Y = np.eye(2)[cls.astype(int)]
    n = X.shape[0]
    init = [np.random.RandomState(c.seed) for c in configs]
    W1 = np.stack([(2 * rs.random_sample((2, 3)) - 1) / np.sqrt(2) for rs in init])
    W2 = np.stack([(2 * rs.random_sample((3, 2)) - 1) / np.sqrt(3) for rs in init])
    lr = np.array([c.optim.lr for c in configs])[:, None, None]
    lam = np.array([c.regularization.strength for c in configs])
    table = np.empty((steps, K, 13))
    for t in range(steps):
        h1 = 1 / (1 + np.exp(-(X @ W1)))  # (K, N, 3)
        h2 = 1 / (1 + np.exp(-(h1 @ W2)))  # (K, N, 2)
        dl = ((Y - h2) ** 2).sum(axis=(1, 2)) / (2 * n)
        s1, s2 = (W1**2).sum(axis=(1, 2)), (W2**2).sum(axis=(1, 2))
        rl = lam / (2 * n) * (s1 + s2)
        acc = ((h2[..., 1] > h2[..., 0]) == cls).mean(axis=1)
        dz2 = (h2 - Y) / n * h2 * (1 - h2)
        dW2 = h1.swapaxes(1, 2) @ dz2 + (lam / n)[:, None, None] * W2
        dz1 = (dz2 @ W2.swapaxes(1, 2)) * h1 * (1 - h1)
        dW1 = X.T @ dz1 + (lam / n)[:, None, None] * W1
        g1, g2 = (dW1**2).sum(axis=(1, 2)), (dW2**2).sum(axis=(1, 2))
        row = table[t]
        row[:, 0], row[:, 1], row[:, 2] = t, 0, lr[:, 0, 0]
        row[:, 3], row[:, 4], row[:, 5], row[:, 6] = dl + rl, dl, rl, acc
        row[:, 7], row[:, 8] = np.sqrt(g1 + g2), 0
        row[:, 9], row[:, 10], row[:, 11], row[:, 12] = (
            np.sqrt(g1),
            np.sqrt(g2),
            np.sqrt(s1),
            np.sqrt(s2),
        )
        W1 -= lr * dW1
        W2 -= lr * dW2
    return float(table[-1, :, 3].sum())


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


TELEMETRY = (  # (row label, telemetry section): the cost of each against training alone
    ("off", {"sharpness_every": 0, "activations": False}),
    ("activations (the default)", {"sharpness_every": 0, "activations": True}),
    ("sharpness every step + activations", {"sharpness_every": 1, "activations": True}),
    ("sharpness every 10th step + activations", {"sharpness_every": 10, "activations": True}),
)


def explode_config(steps: int, telemetry: dict[str, Any]) -> Any:
    """configs/xor_h50_explode.yaml (50 ReLU, cross-entropy, lr 2.5: the edge-of-stability run)
    with this telemetry, ``steps`` steps, no plots."""
    from xorlab import yamlio

    raw = yamlio.load_file(Path(__file__).resolve().parent.parent / "configs/xor_h50_explode.yaml")
    raw.update(train={"steps": steps}, plots={"enabled": False}, telemetry=telemetry)
    return validate(raw)


def xorlab_train_config(cfg: Any) -> float:
    return float(train(cfg).final["loss"] or 0.0)


def _pool_task(args: tuple[int, float, float, int, int]) -> float:
    hidden, lr, lam, seed, steps = args
    return plain_loop(hidden, steps, lr, lam, seed)


def hand_written_pool(steps: int) -> float:
    """The 120-member sweep as a plain 2-process pool over the plain loop: no files written."""
    import multiprocessing as mp

    tasks = [
        (h, lr, lam, seed, steps)
        for h in (3, 50)
        for lr in (0.1, 0.3, 1.0, 3.0)
        for lam in (0.0, 1e-4, 1e-2)
        for seed in range(5)
    ]
    with mp.get_context("forkserver").Pool(2) as pool:
        return float(sum(pool.map(_pool_task, tasks)))


def xorlab_sweep(steps: int, workdir: Path) -> float:
    """`xorlab sweep benchmarks/sweep120.yaml --jobs 2` as a user runs it (a new process)."""
    import subprocess

    cmd = [
        str(Path(sys.executable).parent / "xorlab"),
        "sweep",
        str(Path(__file__).parent / "sweep120.yaml"),
        "--jobs",
        "2",
        "--quiet",
        "--runs-dir",
        str(workdir),
        "--set",
        f"train.steps={steps}",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return 0.0


def naive_artifacts(result: Any) -> int:
    """What a plot-per-frame script does: a new pyplot figure per PNG and per GIF frame, a
    200x200 contourf boundary, savefig, then Pillow for the GIF."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from xorlab import nn
    from xorlab.train import net_spec

    spec = net_spec(result.config)
    X = result.data.X_train
    m = result.metrics
    xs = np.linspace(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 200)
    ys = np.linspace(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5, 200)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.c_[xx.ravel(), yy.ravel()]

    def panel(params: Any, upto: int, dpi: int) -> bytes:
        fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
        mm = m[m["step"] <= upto]
        axes[0].plot(mm["step"], mm["train_acc"])
        axes[0].set_xlabel("training step")
        with np.errstate(all="ignore"):
            out, _ = nn.forward(params, grid, spec)
        axes[1].contourf(xx, yy, out[:, 1].reshape(xx.shape), 20, cmap="RdBu")
        axes[1].scatter(X[:, 0], X[:, 1], c=result.data.y_train[:, 1], cmap="RdBu", s=12)
        axes[2].plot(mm["step"], mm["loss"])
        axes[2].set_yscale("log")
        fig.suptitle(result.config.name)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        return buf.getvalue()

    size = len(panel(result.final_params, 10**9, 100))  # panel.png
    frames = [
        Image.open(io.BytesIO(panel(f.params, f.step, 80))).convert("P") for f in result.frames
    ]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=150)
    return size + len(buf.getvalue())


def xorlab_artifacts(result: Any) -> int:
    from xorlab.plots import render_run_bytes

    return sum(len(b) for b in render_run_bytes(result, gif=True).values())


def _machine_cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of the whole machine so far: sweeps run in other processes."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with dask[distributed]
        return math.nan, math.nan
    t = psutil.cpu_times()
    return t.user + getattr(t, "nice", 0.0), t.system


def measure_pair(ours: Any, ref: Any, *, repeats: int) -> tuple[dict, dict]:
    """``measure`` of two zero-argument callables, alternated (ref, ours, ref, ours, ...), so a
    change in the machine's load falls on both alike; returns (ours, ref)."""
    a: list[dict[str, float]] = []
    b: list[dict[str, float]] = []
    for _ in range(repeats):
        b.append(measure(ref, repeats=1))
        a.append(measure(ours, repeats=1))

    def median(samples: list[dict[str, float]]) -> dict[str, float]:
        return {k: statistics.median(s[k] for s in samples) for k in samples[0]}

    return median(a), median(b)


def measure(fn: Any, *args: Any, repeats: int) -> dict[str, float]:
    """Medians over ``repeats``: wall, this process's CPU (user + system) and system time, and
    the whole machine's CPU and system time (which counts worker processes, and other load)."""
    keys = ("wall_s", "cpu_s", "sys_s", "machine_cpu_s", "machine_sys_s")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(repeats):
        p0, (mu0, ms0), t0 = os.times(), _machine_cpu(), time.perf_counter()
        fn(*args)
        wall = time.perf_counter() - t0
        p1, (mu1, ms1) = os.times(), _machine_cpu()
        samples["wall_s"].append(wall)
        samples["cpu_s"].append(p1.user + p1.system - p0.user - p0.system)
        samples["sys_s"].append(p1.system - p0.system)
        samples["machine_cpu_s"].append(mu1 + ms1 - mu0 - ms0)
        samples["machine_sys_s"].append(ms1 - ms0)
    # differences of clock readings in 10 ms ticks: round off float noise such as -1.8e-15
    return {k: max(0.0, round(statistics.median(v), 9)) for k, v in samples.items()}


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "xorlab": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
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


def seed_study_end_to_end(workdir: Path, tiny: bool) -> float:
    """`xorlab sweep configs/sweeps/seed_study.yaml --jobs 2`, then `xorlab report` on it."""
    import subprocess

    exe = str(Path(sys.executable).parent / "xorlab")
    repo = Path(__file__).resolve().parent.parent
    extra = ["--set", "train.steps=20", "--set", "plots.enabled=false"] if tiny else []
    out = subprocess.run(
        [
            exe,
            "sweep",
            str(repo / "configs/sweeps/seed_study.yaml"),
            "--jobs",
            "2",
            "--quiet",
            "--runs-dir",
            str(workdir),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    folder = out.stdout.strip().splitlines()[-1]
    subprocess.run([exe, "report", folder, "--quiet"], check=False, capture_output=True)
    return 0.0


SCALE_SWEEP = Path(__file__).with_name("sweep_scale.yaml")


def scale_sweep(workdir: Path, n: int, steps: int, executor: str = "local") -> dict[str, float]:
    """`xorlab sweep benchmarks/sweep_scale.yaml --jobs 2` with n members of ``steps`` steps, as a
    user runs it (a new process), from start to summary.csv and metrics/ written. Returns the
    driver's CPU seconds (the sweep process itself; its workers are the fork server's children,
    which it never waits for), and the folder's file count and bytes."""
    import resource
    import shutil
    import subprocess

    text = SCALE_SWEEP.read_text().replace("  n: 10000\n", f"  n: {n}\n")
    spec = workdir / f"scale-{n}.yaml"
    spec.write_text(text)
    cmd = [str(Path(sys.executable).parent / "xorlab"), "sweep", str(spec), "--jobs", "2",
           "--quiet", "--runs-dir", str(workdir / "runs"), "--max-runs", str(max(n, 10_000)),
           "--set", f"train.steps={steps}", "--executor", executor]  # fmt: skip
    import psutil

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = 0
    with contextlib.suppress(psutil.Error):
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:  # the driver's resident memory, sampled 5 times a second
            rss = max(rss, watched.memory_info().rss)
            time.sleep(0.2)
    stdout, stderr = proc.communicate()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{stderr}")
    folder = Path(stdout.strip().splitlines()[-1])
    files = [p for p in folder.rglob("*") if p.is_file()]
    info = {
        "driver_cpu_s": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
        "driver_maxrss_mb": rss / 2**20,
        "files": float(len(files)),
        "bytes": float(sum(p.stat().st_size for p in files)),
    }
    shutil.rmtree(folder)
    return info


def reference_sweep(workdir: Path, n: int, steps: int) -> None:
    """benchmarks/reference.py: the same networks as a hand-written stacked loop, 2 processes."""
    import shutil

    from reference import run

    out = workdir / "reference"
    run(n, steps, out)
    shutil.rmtree(out)


def scale_rows(add: Any, tiny: bool) -> None:
    """The scale rows: 1,000, 10,000 and 100,000 members against the reference, and Dask's
    LocalCluster against the local pool on the 10,000-member sweep (a few members of a few
    steps each with --tiny)."""
    import tempfile

    points = [(1000, 1000, 3), (10_000, 1000, 3), (100_000, 50, 1)]
    dask_n, dask_steps = 10_000, 1000
    if tiny:
        points = [(100, 5, 1), (200, 5, 1), (400, 2, 1)]
        dask_n, dask_steps = 100, 5
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for k, (n, steps, repeats) in enumerate(points):
            infos: list[dict[str, float]] = []
            ours, ref = measure_pair(
                lambda n=n, steps=steps, infos=infos: infos.append(scale_sweep(work, n, steps)),
                lambda n=n, steps=steps: reference_sweep(work, n, steps),
                repeats=repeats,
            )
            extra = {k: statistics.median(i[k] for i in infos) for k in infos[0]}
            add(
                f"random search, {n:,} members x {steps} steps, --jobs 2, end to end",
                "hand-written stacked NumPy loop, 2 processes (benchmarks/reference.py)",
                ours,
                ref,
                "s",
                1.0,
                target=0.4 if k == 1 else None,  # the 10,000-member point
                cpu="machine_cpu_s",
                extra={
                    **extra,
                    "members": n,
                    "steps": steps,
                    "driver_cpu_us_per_member": extra["driver_cpu_s"] / n * 1e6,
                },  # fmt: skip
            )
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            return
        ours, ref = measure_pair(
            lambda: scale_sweep(work, dask_n, dask_steps, "dask"),
            lambda: scale_sweep(work, dask_n, dask_steps, "local"),
            repeats=1,
        )
        add(
            f"random search, {dask_n:,} members x {dask_steps} steps on Dask (LocalCluster, 2)",
            "the local pool, --jobs 2",
            ours,
            ref,
            "s",
            1.0,
            target=1.3,
            cpu="machine_cpu_s",
        )


STARTUP = (  # (row label, the command after the venv's bin/, target: ratio to `import typer`)
    ("start-up: xorlab --help", ["xorlab", "--help"], 1.5),
    ("start-up: xorlab validate configs/xor_h3.yaml", ["xorlab", "validate", "configs/xor_h3.yaml"],
     2.5),
)  # fmt: skip
STARTUP_REF = 'python -c "import typer" (the same venv\'s python)'


def whole_process(cmd: list[str]) -> dict[str, float]:
    """One run of ``cmd`` from the repository's folder: wall, and the child's CPU (user + system)
    and system time from getrusage(RUSAGE_CHILDREN) before and after (microseconds, not ticks)."""
    import resource
    import subprocess

    r0, (mu0, ms0) = resource.getrusage(resource.RUSAGE_CHILDREN), _machine_cpu()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=Path(__file__).resolve().parent.parent)
    wall = time.perf_counter() - t0
    r1, (mu1, ms1) = resource.getrusage(resource.RUSAGE_CHILDREN), _machine_cpu()
    return {
        "wall_s": wall,
        "cpu_s": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
        "sys_s": r1.ru_stime - r0.ru_stime,
        "machine_cpu_s": max(0.0, mu1 + ms1 - mu0 - ms0),
        "machine_sys_s": max(0.0, ms1 - ms0),
    }


def startup_rows(add: Any, repeats: int) -> None:
    """The command line's start-up as whole processes: ``xorlab --help`` and ``xorlab validate``
    against a bare ``python -c "import typer"``, the three alternated ``repeats`` times in this
    run (so a change in the machine's load falls on all), medians of each."""
    exe = Path(sys.executable)
    commands = [[sys.executable, "-c", "import typer"]]
    commands += [[str(exe.parent / cmd[0]), *cmd[1:]] for _, cmd, _ in STARTUP]
    samples: list[list[dict[str, float]]] = [[] for _ in commands]
    for _ in range(repeats):
        for cmd, sample in zip(commands, samples):
            sample.append(whole_process(cmd))
    ref, *ours = [{k: statistics.median(x[k] for x in s) for k in s[0]} for s in samples]
    for (label, _, target), row in zip(STARTUP, ours):
        add(label, STARTUP_REF, row, ref, "ms", 1e-3, target=target, min_cpu=0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tiny", action="store_true", help="a few steps, to check the suite runs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--scale", action="store_true",
                    help="also the scale rows: 1,000-100,000 members, Dask (~20 min)")  # fmt: skip
    args = ap.parse_args(argv)
    steps, repeats = (20, 1) if args.tiny else (2000, 5)
    sweep_steps, sweep_repeats = (5, 1) if args.tiny else (1000, 5)

    import tempfile

    rows = []

    def add(
        workload: str,
        reference: str,
        ours: dict,
        ref: dict | None,
        unit: str,
        n: float,
        *,
        target: float | None = None,
        cpu: str = "cpu_s",
        extra: dict[str, Any] | None = None,
        min_cpu: float = 0.05,
    ) -> None:
        """One table row; ``cpu`` picks the CPU figure that covers the work ("machine_cpu_s"
        when it runs in other processes); no CPU ratio below ``min_cpu`` seconds of the
        reference's (os.times counts 10 ms ticks; getrusage counts microseconds)."""
        row = {
            "workload": workload,
            "reference": reference,
            "unit": unit,
            "ours": ours,
            "ref": ref,
            "ours_per_unit": ours["wall_s"] / n,
            "ref_per_unit": ref["wall_s"] / n if ref else None,
            "ratio": ours["wall_s"] / ref["wall_s"] if ref else None,
            "cpu_ratio": ours[cpu] / ref[cpu] if ref and ref[cpu] > min_cpu else None,
            "cpu_measure": cpu,
            "target": target,
            **(extra or {}),
        }
        rows.append(row)

    from peers import measure_peers  # optional PyTorch / JAX, when installed

    peer_rows = []
    for hidden in (3, 50):
        ours, ref = measure_pair(
            lambda h=hidden: xorlab_train(h, steps),
            lambda h=hidden: plain_loop(h, steps),
            repeats=repeats,
        )
        for peer in measure_peers(hidden, steps, repeats):
            peer_rows.append({**peer, "plain_us_per_step": ref["wall_s"] / steps * 1e6})
        add(
            f"train() step, {hidden} hidden, full batch 300, metrics every step",
            "plain NumPy loop",
            ours,
            ref,
            "µs/step",
            steps / 1e6,
            target=1.25 if hidden == 50 else None,
        )

    # telemetry's cost per step: train() with each setting against train() with it off, the
    # two alternated in the same run (on the explode config, where the sharpness tells a story)
    alone = explode_config(steps, TELEMETRY[0][1])
    for label, telemetry in TELEMETRY:
        cfg = explode_config(steps, telemetry)
        ours, ref = measure_pair(
            lambda c=cfg: xorlab_train_config(c),
            lambda: xorlab_train_config(alone),
            repeats=repeats,
        )
        add(
            f"telemetry: {label}, train() step, explode config (50 ReLU)",
            "train() with telemetry off",
            ours,
            ref,
            "µs/step",
            steps / 1e6,
        )

    from xorlab.population import group_size

    stack = stack_configs(group_size(stack_configs(1, 1)[0]), 20 if args.tiny else 1000)
    ours, ref = measure_pair(
        lambda: xorlab_stack(stack),
        lambda: plain_stacked_loop(stack),
        repeats=repeats,
    )
    add(
        f"3-hidden network-step inside a stack of {len(stack)}, all metrics every step",
        "hand-written stacked NumPy loop",
        ours,
        ref,
        "µs/step",
        len(stack) * stack[0].train.steps / 1e6,
        target=None,
    )

    with tempfile.TemporaryDirectory() as tmp:
        ours, ref = measure_pair(
            lambda: xorlab_sweep(sweep_steps, Path(tmp)),
            lambda: hand_written_pool(sweep_steps),
            repeats=sweep_repeats,
        )
        add(
            f"120-member sweep, {sweep_steps} steps each, --jobs 2",
            "hand-written 2-process pool",
            ours,
            ref,
            "s",
            1.0,
            target=1.0,
            cpu="machine_cpu_s",
        )

    frames = 3 if args.tiny else 40
    cfg = validate(
        {
            "model": {"hidden": [50], "bias": True},
            "optim": {"lr": 3.0},
            "train": {"steps": 100 if args.tiny else 1000},
            "plots": {"gif_frames": frames},
        }
    )
    result = train(cfg)
    ours, ref = measure_pair(
        lambda: xorlab_artifacts(result),
        lambda: naive_artifacts(result),
        repeats=1 if args.tiny else 3,
    )
    add(
        f"one run's plots: panel.png + {frames}-frame GIF",
        "naive pyplot re-render per frame",
        ours,
        ref,
        "s",
        1.0,
        target=0.1,
    )

    with tempfile.TemporaryDirectory() as tmp:
        ours = measure(seed_study_end_to_end, Path(tmp), args.tiny, repeats=1)
        add(
            "seed study end to end: sweep --jobs 2 + report",
            "-",
            ours,
            None,
            "s",
            1.0,
            cpu="machine_cpu_s",
        )

    if args.scale or args.tiny:
        scale_rows(add, args.tiny)

    startup_rows(add, 1 if args.tiny else 7)

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"xorlab benchmarks ({'tiny' if args.tiny else 'full'}; medians)")
    for col in ("workload", "ours", "reference", "ratio", "target", "cpu ratio", "sys s"):
        t.add_column(col, justify="left" if col == "workload" else "right")
    for r in rows:
        fmt = {"µs/step": "{:.1f} µs/step", "ms": "{:.0f} ms"}.get(r["unit"], "{:.2f} s")
        sys_key = "machine_sys_s" if r["cpu_measure"] == "machine_cpu_s" else "sys_s"
        sys_s = f"{r['ours'][sys_key]:.2f}"
        if r["ref"]:
            sys_s += f" / {r['ref'][sys_key]:.2f}"
        target = "-"
        if r["target"] is not None and r["ratio"] is not None:
            met = r["ratio"] <= r["target"]
            target = f"≤ {r['target']:g}x " + ("[green]met[/]" if met else "[red]missed[/]")
        t.add_row(
            f"{r['workload']}\n[dim]vs {r['reference']}[/]",
            fmt.format(r["ours_per_unit"]),
            "-" if r["ref_per_unit"] is None else fmt.format(r["ref_per_unit"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
            target,
            "-" if r["cpu_ratio"] is None else f"{r['cpu_ratio']:.2f}",
            sys_s,
        )
    t.caption = (
        "cpu ratio: user + system time, ours / reference (the whole machine's for the sweeps, "
        "which run in other processes); sys s: system time, ours / reference"
    )
    Console(width=140).print(t)
    scale = [r for r in rows if "members" in r]
    if scale:
        st = Table(title="scale: the sweep folder and the driver")
        for col in ("members x steps", "wall s", "files", "MB on disk", "driver CPU s",
                    "driver µs/member", "driver max RSS MB"):  # fmt: skip
            st.add_column(col, justify="right")
        for r in scale:
            st.add_row(
                f"{r['members']:,} x {r['steps']}",
                f"{r['ours']['wall_s']:.1f}",
                f"{r['files']:.0f}",
                f"{r['bytes'] / 1e6:.0f}",
                f"{r['driver_cpu_s']:.2f}",
                f"{r['driver_cpu_us_per_member']:.0f}",
                f"{r['driver_maxrss_mb']:.0f}",
            )
        Console(width=140).print(st)
    if peer_rows:
        pt = Table(title="optional peers, the same workload as the plain loop")
        for col in ("peer", "hidden", "µs/step", "plain loop µs/step", "ratio", "compile"):
            pt.add_column(col, justify="left" if col == "peer" else "right")
        for r in peer_rows:
            pt.add_row(
                f"{r['peer']} {r['version']}",
                str(r["hidden"]),
                f"{r['us_per_step']:.1f}",
                f"{r['plain_us_per_step']:.1f}",
                f"{r['us_per_step'] / r['plain_us_per_step']:.2f}x",
                "-" if r["compile_s"] is None else f"{r['compile_s']:.2f} s",
            )
        Console(width=140).print(pt)
    args.out.mkdir(parents=True, exist_ok=True)
    result_doc = {
        "environment": environment(),
        "tiny": args.tiny,
        "rows": rows,
        "peers": peer_rows,
    }
    path = args.out / ("bench-tiny.json" if args.tiny else "bench.json")
    path.write_text(json.dumps(result_doc, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
