"""Search methods: which points a sampled search takes from the [grid] axes given as
distributions.

random and sobol draw `samples` points of the unit cube from the search's seed, and each axis's
distribution maps its coordinate to a value, so the sampler alone decides how the space is
covered. The points are drawn once, when the file is read, and written into the resolved spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nnsweep import schema
from nnsweep.edge import EdgeSearch
from nnsweep.halving import Halving


@dataclass(frozen=True)
class SearchOptions:
    """[search]: how the trials are chosen; random and sobol draw `samples` points from the
    [grid] axes given as distributions, and cross them with the axes given as values; edge
    bisects one [grid] axis for every combination of the others (the run does, round by round:
    the spec's trials are the first round, each combination at the bracket's two ends); halving
    and hyperband train the [grid]'s trials rung by rung, the best 1/eta going on."""

    method: str = "grid"  # grid | random | sobol | edge | halving | hyperband
    samples: int = 32
    seed: int = 0
    edge: EdgeSearch | None = None  # method = "edge", its bracket resolved from [grid]
    halving: Halving | None = None  # method = "halving" or "hyperband", its epochs resolved
    drawn: tuple[str, ...] = ()  # the parameters random or sobol drew, once they are drawn

    @property
    def draws(self) -> bool:
        return self.method in ("random", "sobol")


@dataclass(frozen=True)
class Distribution:
    """A [grid] axis to draw from, as checked."""

    key: str  # where the file gives it: grid.alpha
    drawn: schema.Drawn  # { loguniform = [low, high] }, ...
    choices: list[Any]  # a choice's values, resolved; [] for the others


def draw(axes: Mapping[str, Distribution], search: SearchOptions) -> dict[str, list[Any]]:
    """`samples` values of each axis, by name; the axes' i-th values make the i-th point."""
    names = sorted(axes)
    units = _unit_points(search, len(names))  # (samples, axes) in [0, 1)
    return {name: [_value(axes[name], float(u)) for u in units[:, i]]
            for i, name in enumerate(names)}


def drop_repeats(points: Mapping[str, list[Any]], search: SearchOptions
                 ) -> tuple[dict[str, list[Any]], list[str]]:
    """The points less any that repeat an earlier one (whole numbers and choices can), and a
    note when some did."""
    names = sorted(points)
    kept = list(dict.fromkeys(zip(*(points[n] for n in names), strict=True)))
    repeated = search.samples - len(kept)
    notes = [f"search: {repeated} of the {search.samples} samples repeat an earlier point; "
             f"{len(kept)} distinct points kept"] if repeated else []
    return {name: [point[i] for point in kept] for i, name in enumerate(names)}, notes


def _value(axis: Distribution, u: float) -> Any:
    """The axis's value at u in [0, 1) (schema.Drawn says what each kind means)."""
    kind, ends = next(iter(dict(axis.drawn).items()))
    if kind == "choice":
        return axis.choices[min(int(u * len(axis.choices)), len(axis.choices) - 1)]
    low, high = ends
    if kind == "uniform":
        return float(f"{low + u * (high - low):.12g}")
    if kind == "loguniform":
        return float(f"{math.exp(math.log(low) + u * math.log(high / low)):.12g}")
    drawn = math.exp(math.log(low) + u * math.log((high + 1) / low))  # [low, high + 1)
    return min(int(drawn), high)


def _unit_points(search: SearchOptions, dimensions: int) -> NDArray[np.float64]:
    """`samples` points of the unit cube, (samples, dimensions): scrambled Sobol' points (the
    first of the next power of two, whose prefix keeps a low discrepancy) or uniform random
    ones, both from the search's seed."""
    if search.method == "random":
        return np.random.default_rng(search.seed).random((search.samples, dimensions))
    from scipy.stats import qmc  # imported here: only sobol sweeps pay for it

    sobol = qmc.Sobol(dimensions, scramble=True, seed=search.seed)
    points = sobol.random_base2(max(0, math.ceil(math.log2(search.samples))))
    return np.asarray(points[: search.samples], dtype=np.float64)
