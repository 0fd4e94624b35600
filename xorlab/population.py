"""Population training: configs of one shape trained as one stack (``stack``), in groups.

``train_population(configs) -> list[RunResult]`` trains configs that share a ``group_key`` (the
same data, layer sizes, kinds and step plan) as one stack from start to end; each result equals
``train(config)``. ``group_configs(configs, max_k)`` splits a list of configs into such groups, in
order, chunked so that a group's working set stays in cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .config import Config
from .stack import check_group, group_key, results, start
from .stepping import advance
from .train import RunResult, train

# A group's working set (activations, their gradients, temporaries: rows x widths x ~6 arrays)
# is kept under this many bytes. Measured (2-core Intel Xeon, 2 MiB L2/core), µs per
# network-step of 50 hidden units are flat from K = 4 to 8 (84-86) and worse at 2 (~100) and 12
# (~89); for 3 hidden they fall to ~15 by K = 60. 4 MiB gives K = 5 and 58 there, and the
# 120-member benchmark sweep ran in 4.42 s against 4.64 s with 8 MiB (K = 11): smaller groups
# also spread better over two workers.
CACHE_BYTES = 4 << 20
MAX_K = 256


def group_size(cfg: Config) -> int:
    """How many networks of this config to stack: as many as keep the working set under
    CACHE_BYTES (rows x layer widths x itemsize x ~6 arrays), at least 1, at most MAX_K."""
    rows = 4 if cfg.data.kind == "xor4" else cfg.data.n
    width = sum(cfg.model.hidden) + 2
    itemsize = 4 if cfg.model.dtype == "float32" else 8
    return max(1, min(MAX_K, CACHE_BYTES // (rows * width * itemsize * 6)))


def group_configs(configs: Sequence[Config], max_k: int | None = None) -> list[list[int]]:
    """Indices of ``configs`` in groups that ``train_population`` can train together.

    Groups follow the order in which their first member appears; members keep their order. A
    group larger than ``max_k`` (default: ``group_size``) is cut into near-equal chunks. The
    result depends only on the configs, in order.
    """
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        # the sharpness is one power iteration per network: such a config trains alone
        key = ("alone", i) if cfg.telemetry.sharpness_every else group_key(cfg)
        groups.setdefault(key, []).append(i)
    out: list[list[int]] = []
    for members in groups.values():
        k = max_k if max_k is not None else group_size(configs[members[0]])
        n_chunks = -(-len(members) // max(1, k))
        size, extra = divmod(len(members), n_chunks)  # the first `extra` chunks get one more
        start = 0
        for c in range(n_chunks):
            end = start + size + (c < extra)
            out.append(members[start:end])
            start = end
    return out


def train_population(
    configs: Sequence[Config], *, on_step: Callable[[int], None] | None = None
) -> list[RunResult]:
    """Train configs that share a ``group_key`` as one stack; results in the configs' order.

    Each result equals ``train(config)``. ``on_step(steps done)`` is called now and then for
    progress. Ctrl-C ends the networks still training with status ``interrupted``. A group of
    one is handed to ``train`` itself, which has less bookkeeping per step.
    """
    if not configs:
        return []
    check_group(configs)
    if len(configs) == 1:
        return [
            train(configs[0], on_step=None if on_step is None else lambda d, _l, _a: on_step(d))
        ]
    nets = start(configs)
    advance(nets, configs[0].train.steps, on_step=on_step)
    return results(nets)
