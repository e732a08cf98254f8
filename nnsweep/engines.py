"""Which code trains a batch: the NumPy trainer (the default, bit for bit the textbook loop)
or the compiled Numba engine (an optional extra, equal to the NumPy engine to about 1e-9).

The runner calls `train` in its workers with whole batches; the engines know nothing of
processes or files, and this module knows of them only the Engine protocol.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from typing import Protocol

from numpy.typing import ArrayLike

from nnsweep.errors import NnsweepError
from nnsweep.params import TrialParams
from nnsweep.result import TrialResult

ENGINES: tuple[str, ...] = ("numpy", "numba", "auto")


class Engine(Protocol):
    """What the runner needs of an engine: its name, kept beside every result it trains (a
    folder never mixes engines), and the training of one batch of a single batch key."""

    @property
    def name(self) -> str: ...

    def train_batch(
        self, x: ArrayLike, y: ArrayLike, trials: Sequence[TrialParams]
    ) -> list[TrialResult]: ...


# Fastest first: "auto" takes the first one installed.
_BY_SPEED: tuple[str, ...] = ("numba", "numpy")


def installed() -> list[str]:
    """The concrete engines this Python can run, fastest first."""
    return [name for name in _BY_SPEED
            if name == "numpy" or importlib.util.find_spec(name) is not None]


def resolve(engine: str) -> str:
    """Map a requested engine to a concrete, installed one ("auto": the fastest)."""
    if engine not in ENGINES:
        raise NnsweepError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "auto":
        return installed()[0]
    if engine not in installed():
        raise NnsweepError(
            f"engine {engine!r} needs the {engine} extra: pip install 'nnsweep[{engine}]'")
    return engine


# Trials per batch at most, so that a worker's memory stays bounded (about 100 MiB here).
MAX_BATCH = 512
# About how long one batch may train before its results are journaled.
MAX_SECONDS = 120.0


def plan(
    trials: Sequence[TrialParams],
    workers: int,
    rows: int = 4,
    max_batch: int = MAX_BATCH,
    max_seconds: float = MAX_SECONDS,
) -> list[list[int]]:
    """Indices of `trials` in batches for `workers` processes: one batch key per batch.

    Each key's trials are split into `workers` batches of about equal cost (trainer.split),
    or more where that would put more than `max_batch` trials in one, or give one batch more
    than about `max_seconds` of work: a finished batch is journaled, so long sweeps are saved
    as they go.
    """
    from nnsweep.trainer import batch_key, epoch_seconds, split

    groups: dict[object, list[int]] = {}
    for index, params in enumerate(trials):
        groups.setdefault(batch_key(params), []).append(index)
    planned = []
    for indices in groups.values():
        members = [trials[i] for i in indices]
        seconds = members[0].epochs * epoch_seconds(members, rows)
        pieces = max(workers, -(-len(indices) // max_batch), math.ceil(seconds / max_seconds))
        for part in split(members, min(pieces, len(indices)), rows):
            for start in range(0, len(part), max_batch):  # cost-balanced parts, size-capped
                planned.append([indices[i] for i in part[start : start + max_batch]])
    return planned


def load(engine: str) -> Engine:
    """The engine a request names ("auto" too), imported on first use: numba is an extra."""
    if resolve(engine) == "numba":
        from nnsweep.engine_numba import NumbaEngine

        return NumbaEngine()
    from nnsweep.trainer import NumpyEngine

    return NumpyEngine()


def train(
    engine: str, x: ArrayLike, y: ArrayLike, trials: Sequence[TrialParams]
) -> list[TrialResult]:
    """One result per trial, in order; trials of several batch keys are trained key by key."""
    from nnsweep.trainer import batch_key

    chosen = load(engine)
    groups: dict[object, list[int]] = {}
    for index, params in enumerate(trials):
        groups.setdefault(batch_key(params), []).append(index)
    results: list[TrialResult | None] = [None] * len(trials)
    for indices in groups.values():
        trained = chosen.train_batch(x, y, [trials[i] for i in indices])
        for index, result in zip(indices, trained, strict=True):
            results[index] = result
    return [result for result in results if result is not None]
