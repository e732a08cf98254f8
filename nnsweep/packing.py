"""Greedy cost-balanced packing: how work is dealt out to batches, threads or workers.

Costliest first, each to the least loaded bin so far: within 4/3 of the best packing, and
what a pool of workers taking the next task when free ends up doing anyway.
"""

from __future__ import annotations

from collections.abc import Sequence


def pack(costs: Sequence[float], bins: int) -> tuple[list[list[int]], list[float]]:
    """Indices of `costs` in `bins` bins (at least one), and each bin's total cost.

    Equal costs keep their order and ties go to the first bin, so a packing never depends on
    anything but the costs.
    """
    members: list[list[int]] = [[] for _ in range(max(1, bins))]
    loads = [0.0] * len(members)
    for index in sorted(range(len(costs)), key=lambda i: -costs[i]):
        least = loads.index(min(loads))
        members[least].append(index)
        loads[least] += costs[index]
    return members, loads
