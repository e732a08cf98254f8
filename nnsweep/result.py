"""What training one trial yields, and the one place each epoch's errors turn into it.

Every engine, the plain loop included, hands its epochs' error sums to an EpochLog and its
final networks to `EpochLog.results`: what the history keeps, which metric decides, when a
trial converged or diverged, are decided here alone, so the engines' results compare directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nnsweep.params import TrialParams

Array = NDArray[np.float64]

# How a trial ended: TrialResult.status's three, and the two of a trial that raised or whose
# worker was lost.
STATUSES: tuple[str, ...] = ("converged", "not_converged", "diverged", "failed", "crashed")

# Column order of TrialResult.errors.
ERROR_NAMES: tuple[str, ...] = ("mae", "mse", "sse")


@dataclass(frozen=True)
class TrialResult:
    """One trained network's outcome; history rows stop before a divergence."""

    epochs: NDArray[np.int64]  # (R,) recorded epochs
    errors: Array  # (R, 3) mae, mse, sse at those epochs
    final_error: float  # metric of the last epoch; nan when diverged
    best_error: float  # lowest finite metric of any epoch
    converged_epoch: int | None  # first epoch with metric <= tolerance
    diverged_epoch: int | None  # first epoch with a non-finite error or weight
    direction_changes: tuple[NDArray[np.int64], ...]  # per layer (fan_in, fan_out)
    weights: tuple[Array, ...]  # per layer (fan_in, fan_out), final
    # On the held-out rows, when the data has them: (R, 3) mae, mse, sse at the recorded
    # epochs, from one forward pass (no dropout) with the weights at the end of that epoch.
    validation: Array | None = None
    metric: int = 0  # the column of `errors` and `validation` that decides

    @property
    def final_validation_error(self) -> float:
        """The metric on the held-out rows at the last recorded epoch; nan without them."""
        if self.validation is None or not len(self.validation) or (
                self.diverged_epoch is not None):
            return math.nan
        return float(self.validation[-1, self.metric])

    @property
    def best_validation(self) -> tuple[float, int | None]:
        """The lowest finite metric on the held-out rows and the epoch it was recorded at."""
        if self.validation is None:
            return math.nan, None
        values = self.validation[:, self.metric]  # (R,)
        finite = np.flatnonzero(np.isfinite(values))
        if not len(finite):
            return math.nan, None
        best = finite[np.argmin(values[finite])]
        return float(values[best]), int(self.epochs[best])

    @property
    def total_direction_changes(self) -> int:
        return int(sum(int(c.sum()) for c in self.direction_changes))

    def status(self, tolerance: float) -> str:
        if self.diverged_epoch is not None:
            return "diverged"
        if self.final_error <= tolerance:
            return "converged"
        return "not_converged"


class EpochLog:
    """History, best error, convergence and divergence of B trials of one batch key.

    Engines absorb runs of epochs at once, so the bookkeeping costs a few array operations per
    run, not per epoch and trial.
    """

    def __init__(self, trials: Sequence[TrialParams], n_values: int) -> None:
        first = trials[0]
        self.epochs = first.epochs
        self.recorded = np.array(first.recorded_epochs(), dtype=np.int64)  # (R,)
        self.metric = ERROR_NAMES.index(first.metric)
        self.n_values = n_values  # rows x outputs, what mae and mse divide by
        self.tolerance = np.array([t.tolerance for t in trials])  # (B,)
        size = len(trials)
        self.history = np.full((len(self.recorded), size, 3), np.nan)  # (R, B, mae|mse|sse)
        self.best = np.full(size, np.inf)  # (B,)
        self.converged = np.full(size, -1)  # (B,) -1: not yet
        self.diverged = np.full(size, -1)  # (B,) -1: not yet
        self.last = np.full(size, np.nan)  # (B,) the metric of the latest epoch
        self.done = 0  # epochs absorbed so far
        self._recorded_set = frozenset(self.recorded.tolist())
        self.validation: Array | None = None  # (R, B, mae|mse|sse) on the held-out rows
        self.validation_values = 0  # held-out rows x outputs

    def validating(self, n_values: int) -> None:
        """Keep errors on held-out rows too, `n_values` of them (rows x outputs)."""
        self.validation = np.full(self.history.shape, np.nan)  # (R, B, 3)
        self.validation_values = n_values

    def is_recorded(self, epoch: int) -> bool:
        return epoch in self._recorded_set

    def absorb_validation(self, epoch: int, sse: Array, abs_sum: Array) -> None:
        """Errors on the held-out rows at a recorded epoch, (B,) each."""
        if self.validation is None:
            raise ValueError("absorb_validation before validating()")
        row = int(np.searchsorted(self.recorded, epoch))
        n = self.validation_values
        self.validation[row] = np.stack([abs_sum / n, sse / n, sse], axis=-1)  # (B, 3)

    def absorb(self, sse: Array, abs_sum: Array) -> None:
        """Take the next epochs' sums of squared and of absolute errors, (E, B) each.

        A trial diverged at its first epoch whose sse is not finite; from there on its rows
        count for nothing, whatever an engine put in them.
        """
        start, count = self.done, len(sse)
        bad = ~np.isfinite(sse)  # (E, B)
        newly = (self.diverged < 0) & bad.any(axis=0)
        self.diverged[newly] = start + bad.argmax(axis=0)[newly]
        valid = (start + np.arange(count))[:, None] < self._valid_until()  # (E, B)
        errors = np.stack([abs_sum / self.n_values, sse / self.n_values, sse], axis=-1)
        metric = errors[..., self.metric]  # (E, B)
        rows = np.flatnonzero((self.recorded >= start) & (self.recorded < start + count))
        self.history[rows] = errors[self.recorded[rows] - start]  # (r, B, 3)
        self.best = np.fmin(self.best, np.where(valid, metric, np.inf).min(axis=0))
        hit = valid & (metric <= self.tolerance)  # (E, B)
        newly = (self.converged < 0) & hit.any(axis=0)
        self.converged[newly] = start + hit.argmax(axis=0)[newly]
        self.last = metric[-1].copy()
        self.done += count

    def _valid_until(self) -> NDArray[np.int64]:
        return np.where(self.diverged >= 0, self.diverged, self.epochs)  # (B,)

    def results(
        self, weights: Sequence[Sequence[Array]], changes: Sequence[Sequence[NDArray[np.int64]]]
    ) -> list[TrialResult]:
        """One result per trial from its final weights and direction counts (copied here).

        Weights that are not finite mean the trial diverged at the last epoch, even where no
        error showed it: the last update can overflow after the last forward pass.
        """
        keep = self.recorded[:, None] < self._valid_until()  # (R, B)
        results = []
        for b, (final, counts) in enumerate(zip(weights, changes, strict=True)):
            diverged = int(self.diverged[b])
            if diverged < 0 and not all(np.isfinite(w).all() for w in final):
                diverged = self.epochs - 1
            results.append(TrialResult(
                epochs=self.recorded[keep[:, b]],
                errors=self.history[keep[:, b], b],  # (R', 3), a copy
                final_error=math.nan if diverged >= 0 else float(self.last[b]),
                best_error=float(self.best[b]),
                converged_epoch=int(self.converged[b]) if self.converged[b] >= 0 else None,
                diverged_epoch=diverged if diverged >= 0 else None,
                direction_changes=tuple(np.array(c) for c in counts),
                weights=tuple(np.array(w) for w in final),
                validation=(None if self.validation is None
                            else self.validation[keep[:, b], b]),  # (R', 3), a copy
                metric=self.metric,
            ))
        return results
