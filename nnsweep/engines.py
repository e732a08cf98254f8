"""Which code trains a batch: the NumPy trainer (the default, bit for bit the textbook loop)
or the compiled Numba engine (an optional extra, equal to the NumPy engine to about 1e-9).

The runner calls `train` in its workers with whole batches; the engines know nothing of
processes or files, and this module knows of them only the Engine protocol.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Iterable, Sequence
from typing import Protocol

from numpy.typing import ArrayLike

from nnsweep.batching import batch_key
from nnsweep.errors import EngineLacks, NnsweepError
from nnsweep.params import TrialParams
from nnsweep.result import TrainState, TrialResult
from nnsweep.trainer import train_batch

ENGINES: tuple[str, ...] = ("numpy", "numba", "auto")


Validation = tuple[ArrayLike, ArrayLike]  # held-out (x, y)


class Engine(Protocol):
    """What the runner needs of an engine: its name, kept beside every result it trains (a
    folder never mixes engines), and the training of one batch of a single batch key."""

    @property
    def name(self) -> str: ...

    def train_batch(
        self, x: ArrayLike, y: ArrayLike, trials: Sequence[TrialParams], *,
        validation: Validation | None = None,
    ) -> list[TrialResult]: ...


# Fastest first: "auto" takes the first one installed.
_BY_SPEED: tuple[str, ...] = ("numba", "numpy")


def installed() -> list[str]:
    """The concrete engines this Python can run, fastest first."""
    return [name for name in _BY_SPEED
            if name == "numpy" or importlib.util.find_spec(name) is not None]


@functools.cache
def broken(engine: str) -> str | None:
    """Why an installed engine cannot run here, or None: the compiled engine's wide matrix
    products call scipy's BLAS (scipy is a dependency, but an install can be broken, or scipy
    built for another NumPy), so it runs only where that imports."""
    if engine != "numba":
        return None
    try:
        importlib.import_module("scipy.linalg.cython_blas")
    except (ImportError, ValueError) as exc:
        return f"scipy's BLAS, which its matrix products call, does not import here ({exc})"
    return None


# Engines that can stop a batch at an epoch and go on from there later (a halving search's).
STOPPING: frozenset[str] = frozenset({"numpy"})


def lacks(engine: str, trials: Iterable[TrialParams], validating: bool = False,
          stopping: bool = False) -> str | None:
    """The first setting of `trials` (or of the search, `stopping`: it pauses trials at its
    rungs) that the concrete `engine` cannot train, as written in a sweep file, or None; an
    engine that does not yet train a new setting names it here, and "auto" passes it over."""
    if stopping and engine not in STOPPING:
        return 'method = "halving" or "hyperband" (it pauses trials at each rung)'
    if engine == "numba" and any(trial.optimizer == "adamw" for trial in trials):
        return 'optimizer = "adamw"'
    return None


def resolve(engine: str, trials: Iterable[TrialParams] = (), validating: bool = False,
            stopping: bool = False) -> str:
    """Map a requested engine to a concrete, installed one ("auto": the fastest that trains
    every one of `trials`, with held-out rows when `validating`, paused at rungs when
    `stopping`)."""
    if engine not in ENGINES:
        raise NnsweepError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "auto":
        trials = list(trials)
        return next(name for name in installed()
                    if lacks(name, trials, validating, stopping) is None and not broken(name))
    if (setting := lacks(engine, trials, validating, stopping)) is not None:
        raise EngineLacks(engine, setting)
    if engine not in installed():
        raise NnsweepError(
            f"engine {engine!r} needs the {engine} extra: pip install 'nnsweep[{engine}]'")
    if (why := broken(engine)) is not None:
        raise NnsweepError(f"engine {engine!r} cannot run here: {why}")
    return engine


def load(engine: str) -> Engine:
    """The engine a request names ("auto" too), imported on first use: numba is an extra."""
    if resolve(engine) == "numba":
        from nnsweep.engine_numba import NumbaEngine

        return NumbaEngine()
    from nnsweep.trainer import NumpyEngine

    return NumpyEngine()


def train(
    engine: str, x: ArrayLike, y: ArrayLike, trials: Sequence[TrialParams],
    validation: Validation | None = None, *, starts: Sequence[TrainState | None] | None = None,
    until: int | None = None,
) -> list[TrialResult]:
    """One result per trial, in order; trials of several batch keys are trained key by key;
    with `validation`, each result holds its errors on those rows too. With `until`, training
    stops after that many epochs (each result then holds its state), and `starts` says where
    each trial goes on from (None: anew); only a STOPPING engine takes them."""
    stopping = until is not None or starts is not None
    chosen = load(resolve(engine, trials, validation is not None, stopping))
    groups: dict[object, list[int]] = {}
    for index, params in enumerate(trials):
        groups.setdefault(batch_key(params), []).append(index)
    results: list[TrialResult | None] = [None] * len(trials)
    for indices in groups.values():
        batch = [trials[i] for i in indices]
        if stopping:  # the NumPy engine, STOPPING's one
            trained = train_batch(x, y, batch, validation=validation, until=until,
                                  starts=None if starts is None else [starts[i] for i in indices])
        else:
            trained = chosen.train_batch(x, y, batch, validation=validation)
        for index, result in zip(indices, trained, strict=True):
            results[index] = result
    return [result for result in results if result is not None]
