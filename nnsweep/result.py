"""What training one trial yields: one record for every engine, so engines compare directly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

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

    @property
    def total_direction_changes(self) -> int:
        return int(sum(int(c.sum()) for c in self.direction_changes))

    def status(self, tolerance: float) -> str:
        if self.diverged_epoch is not None:
            return "diverged"
        if self.final_error <= tolerance:
            return "converged"
        return "not_converged"
