"""What training one trial yields, and the one place each epoch's errors turn into it.

Every engine, the plain loop included, hands its epochs' error sums to an EpochLog and its
final networks to `EpochLog.results`: what the history keeps, which metric decides, when a
trial converged or diverged, are decided here alone, so the engines' results compare directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nnsweep.params import MEMORIES, TrialParams

Array = NDArray[np.float64]

# How a trial ended: TrialResult.status's three, and the two of a trial that raised or whose
# worker was lost.
STATUSES: tuple[str, ...] = ("converged", "not_converged", "diverged", "failed", "crashed")

# Column order of TrialResult.errors: the errors of every trial, then what a classifier (loss =
# "cross_entropy") is also measured by; other trials' results hold the first three alone.
ERROR_NAMES: tuple[str, ...] = ("mae", "mse", "sse", "accuracy", "cross_entropy")
ERRORS = 3  # the columns every result has
# Metrics whose best is the highest; a trial has converged once one is at least 1 - tolerance
# (the tolerance is the share of wrong answers allowed).
HIGHER_IS_BETTER: frozenset[str] = frozenset({"accuracy"})


def reached(metric: str, value: Any, tolerance: Any) -> Any:
    """Whether a metric's value (a float or an array) is within its tolerance."""
    if metric in HIGHER_IS_BETTER:
        return value >= 1 - tolerance
    return value <= tolerance


def lower_is_better(metric: str, value: Any) -> Any:
    """The value turned into a key that sorts best first (a higher accuracy is better)."""
    return -value if metric in HIGHER_IS_BETTER else value


@dataclass(frozen=True)
class TrainState:
    """Where one trial stands after some epochs: everything its next epoch needs, so training
    can stop and go on later (another batch, another process, another run) with the numbers of
    a run straight through."""

    epoch: int  # epochs trained so far (the next epoch's index)
    score: float  # the selected metric at the stop, what halving ranks by; nan if diverged
    # The network and what its updates remember; a diverged trial's are those it froze with.
    steps: int  # update steps so far: dropout's masks are drawn per step
    weights: tuple[Array, ...]  # per layer (fan_in, fan_out)
    changes: tuple[NDArray[np.int64], ...]  # per layer: direction changes so far
    up: tuple[NDArray[np.bool_], ...]  # per layer: the last step's update went up (-grad > 0)
    seen: bool  # a step was taken: the next one's direction has one to differ from
    first: tuple[Array, ...]  # per layer: momentum's velocity or Adam's first moment; () for sgd
    second: tuple[Array, ...]  # per layer: Adam's (and AdamW's) second moment; () otherwise
    beta1_t: float  # Adam's beta1 ** steps and beta2 ** steps, kept as running products
    beta2_t: float
    shuffle: NDArray[np.uint64]  # (6,) the shuffle generator's state; (0,) with no shuffle
    # What EpochLog keeps of it (EpochLog.resume reads them back).
    history: Array  # (r, 3 or 5) at the recorded epochs before `epoch`
    validation: Array | None  # (r, 3 or 5) on the held-out rows; None without them
    best: float  # the best sign * metric of the training epochs; inf before any
    converged: int  # the first epoch within tolerance (training metric); -1: none yet
    diverged: int  # the first epoch with a non-finite error; -1: none

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as a named numpy array (per layer: weights_0, weights_1, ...), so
        np.savez writes a state and np.load(..., allow_pickle=False) reads it back."""
        arrays: dict[str, np.ndarray] = {}
        for name, kind in _STATE_FIELDS.items():
            value = getattr(self, name)
            if kind == "layers":
                arrays.update({f"{name}_{layer}": np.array(a) for layer, a in enumerate(value)})
            elif value is not None:
                arrays[name] = np.array(value, dtype=kind)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], params: TrialParams) -> TrainState:
        """The state `arrays` holds, checked against the trial's parameters: every name, dtype
        and shape (a results folder is data; anything wrong raises ValueError naming the
        field). The first layer's inputs and the last's outputs are the data's, checked when
        training goes on."""
        depth = len(params.hidden) + 1
        layers = {"weights": depth, "changes": depth, "up": depth,
                  "first": depth if MEMORIES[params.optimizer] > 0 else 0,
                  "second": depth if MEMORIES[params.optimizer] > 1 else 0}
        expected = {name for name, kind in _STATE_FIELDS.items()
                    if kind != "layers" and name != "validation"}
        expected |= {f"{name}_{layer}" for name, count in layers.items()
                     for layer in range(count)}
        unknown = sorted(map(repr, set(arrays) - expected - {"validation"}))
        if unknown:
            raise ValueError(f"{unknown[0]}: not a field of a training state")
        missing = sorted(expected - set(arrays))
        if missing:
            raise ValueError(f"{missing[0]}: missing from the training state")

        def take(name: str, dtype: str, shape: tuple[int | None, ...]) -> np.ndarray:
            array = np.asarray(arrays[name])
            if array.dtype != np.dtype(dtype):
                raise ValueError(f"{name}: expected dtype {dtype}, got {array.dtype}")
            if len(array.shape) != len(shape) or any(
                    want is not None and got != want
                    for got, want in zip(array.shape, shape, strict=True)):
                wanted = "(" + ", ".join("n" if n is None else str(n) for n in shape) + (
                    ",)" if len(shape) == 1 else ")")
                raise ValueError(f"{name}: expected shape {wanted}, got {array.shape}")
            return array.copy()

        epoch = int(take("epoch", "int64", ()))
        if not 0 < epoch < params.epochs:
            raise ValueError(f"epoch: expected 1 to {params.epochs - 1} (the epochs), "
                             f"got {epoch}")
        extra = 1 if params.bias else 0
        shapes = [(None if layer == 0 else params.hidden[layer - 1] + extra,
                   params.hidden[layer] if layer < depth - 1 else None)
                  for layer in range(depth)]
        weights = tuple(take(f"weights_{layer}", "float64", shapes[layer])
                        for layer in range(depth))
        per_layer: dict[str, tuple[np.ndarray, ...]] = {"weights": weights}
        for name, dtype in (("changes", "int64"), ("up", "bool"), ("first", "float64"),
                            ("second", "float64")):
            per_layer[name] = tuple(take(f"{name}_{layer}", dtype, weights[layer].shape)
                                    for layer in range(layers[name]))
        shuffling = params.shuffle and params.descent != "full"
        width = len(ERROR_NAMES) if params.classifier else ERRORS
        rows = sum(1 for e in params.recorded_epochs() if e < epoch)
        return cls(
            epoch=epoch, score=float(take("score", "float64", ())),
            steps=int(take("steps", "int64", ())),
            weights=weights, changes=per_layer["changes"], up=per_layer["up"],
            seen=bool(take("seen", "bool", ())), first=per_layer["first"],
            second=per_layer["second"], beta1_t=float(take("beta1_t", "float64", ())),
            beta2_t=float(take("beta2_t", "float64", ())),
            shuffle=take("shuffle", "uint64", (SHUFFLE_STATE if shuffling else 0,)),
            history=take("history", "float64", (rows, width)),
            validation=(take("validation", "float64", (rows, width))
                        if "validation" in arrays else None),
            best=float(take("best", "float64", ())),
            converged=int(take("converged", "int64", ())),
            diverged=int(take("diverged", "int64", ())),
        )


# How each field of TrainState is stored: a scalar's dtype, an array's, or "layers" (one array
# per layer, named field_layer).
_STATE_FIELDS: dict[str, str] = {
    "epoch": "int64", "score": "float64", "steps": "int64", "weights": "layers",
    "changes": "layers", "up": "layers", "seen": "bool", "first": "layers",
    "second": "layers", "beta1_t": "float64", "beta2_t": "float64", "shuffle": "uint64",
    "history": "float64", "validation": "float64", "best": "float64", "converged": "int64",
    "diverged": "int64",
}
SHUFFLE_STATE = 6  # words of a shuffle generator's state (network.shuffle_state)


@dataclass(frozen=True)
class TrialResult:
    """One trained network's outcome; history rows stop before a divergence."""

    epochs: NDArray[np.int64]  # (R,) recorded epochs
    errors: Array  # (R, 3) mae, mse, sse at those epochs; a classifier's (R, 5) ERROR_NAMES
    # The metric of the selected split (params.select): training, every epoch; validation, the
    # recorded epochs. final: its last; best: its best finite value (the highest accuracy);
    # converged: the first epoch within tolerance.
    final_error: float  # nan when diverged
    best_error: float
    converged_epoch: int | None
    diverged_epoch: int | None  # first epoch with a non-finite error or weight
    direction_changes: tuple[NDArray[np.int64], ...]  # per layer (fan_in, fan_out)
    weights: tuple[Array, ...]  # per layer (fan_in, fan_out), final
    # On the held-out rows, when the data has them: (R, 3) or (R, 5) as errors, at the recorded
    # epochs, from one forward pass (no dropout) with the weights at the end of that epoch.
    validation: Array | None = None
    metric: int = 0  # the column of `errors` and `validation` that decides
    # Where training stopped, when it stopped before params.epochs; then the fields above
    # cover the epochs trained, and train_batch(..., starts=[state]) goes on from here.
    state: TrainState | None = None

    @property
    def metric_name(self) -> str:
        return ERROR_NAMES[self.metric]

    @property
    def final_validation_error(self) -> float:
        """The metric on the held-out rows at the last recorded epoch; nan without them."""
        if self.validation is None or not len(self.validation) or (
                self.diverged_epoch is not None):
            return math.nan
        return float(self.validation[-1, self.metric])

    @property
    def best_validation(self) -> tuple[float, int | None]:
        """The best finite metric on the held-out rows (the lowest error, the highest
        accuracy) and the epoch it was recorded at."""
        if self.validation is None:
            return math.nan, None
        values = self.validation[:, self.metric]  # (R,)
        finite = np.flatnonzero(np.isfinite(values))
        if not len(finite):
            return math.nan, None
        best = finite[np.argmin(lower_is_better(self.metric_name, values[finite]))]
        return float(values[best]), int(self.epochs[best])

    @property
    def total_direction_changes(self) -> int:
        return int(sum(int(c.sum()) for c in self.direction_changes))

    def status(self, tolerance: float) -> str:
        if self.diverged_epoch is not None:
            return "diverged"
        if reached(self.metric_name, self.final_error, tolerance):
            return "converged"
        return "not_converged"


class EpochLog:
    """History, best error, convergence and divergence of B trials of one batch key.

    Engines absorb runs of epochs at once, so the bookkeeping costs a few array operations per
    run, not per epoch and trial. Classifiers' engines also hand in each epoch's count of right
    answers and sum of cross-entropy; other trials' engines do no such work.
    """

    def __init__(self, trials: Sequence[TrialParams], n_values: int, rows: int = 0) -> None:
        first = trials[0]
        self.epochs = first.epochs
        self.recorded = np.array(first.recorded_epochs(), dtype=np.int64)  # (R,)
        self.metric = ERROR_NAMES.index(first.metric)
        self.name = first.metric
        self.sign = -1.0 if first.metric in HIGHER_IS_BETTER else 1.0  # best is the lowest sign * m
        self.select = first.select
        self.n_values = n_values  # rows x outputs, what mae and mse divide by
        # A classifier's accuracy counts rows (softmax: one answer per row) or (row, output)
        # pairs (sigmoid: each output answers); its cross-entropy is a mean over rows.
        self.classes = first.classifier
        self.per_row = first.output == "softmax"
        self.rows = rows
        if self.classes and rows <= 0:
            raise ValueError("a classifier's EpochLog needs the data's rows")
        if self.metric >= ERRORS and not self.classes:
            raise ValueError(f'metric = "{first.metric}" needs loss = "cross_entropy"')
        self.tolerance = np.array([t.tolerance for t in trials])  # (B,)
        size = len(trials)
        width = len(ERROR_NAMES) if self.classes else ERRORS
        self.history = np.full((len(self.recorded), size, width), np.nan)  # (R, B, 3 or 5)
        self.best = np.full(size, np.inf)  # (B,) the lowest sign * metric
        self.converged = np.full(size, -1)  # (B,) -1: not yet
        self.diverged = np.full(size, -1)  # (B,) -1: not yet
        self.last = np.full(size, np.nan)  # (B,) the metric of the latest epoch
        self.done = 0  # epochs absorbed so far
        self._recorded_set = frozenset(self.recorded.tolist())
        self.validation: Array | None = None  # (R, B, 3 or 5) on the held-out rows
        self.validation_values = 0  # held-out rows x outputs
        self.validation_rows = 0

    def validating(self, n_values: int, rows: int = 0) -> None:
        """Keep errors on held-out rows too, `n_values` of them (rows x outputs) in `rows`."""
        if self.classes and rows <= 0:
            raise ValueError("a classifier's held-out errors need the held-out rows")
        self.validation = np.full(self.history.shape, np.nan)  # (R, B, 3 or 5)
        self.validation_values = n_values
        self.validation_rows = rows

    def is_recorded(self, epoch: int) -> bool:
        return epoch in self._recorded_set

    def _errors(self, sse: Array, abs_sum: Array, n_values: int, rows: int,
                correct: Array | None, cross_entropy: Array | None) -> Array:
        """mae, mse and sse from the sums, (..., 3); a classifier's accuracy and cross-entropy
        beside them, (..., 5), from the counts of right answers and the sums its engine hands
        in."""
        if not self.classes:
            return np.stack([abs_sum / n_values, sse / n_values, sse], axis=-1)
        if correct is None or cross_entropy is None:
            raise ValueError("a classifier's epochs need its right answers and cross-entropy")
        answers = rows if self.per_row else n_values
        return np.stack([abs_sum / n_values, sse / n_values, sse, correct / answers,
                         cross_entropy / rows], axis=-1)

    def absorb_validation(self, epoch: int, sse: Array, abs_sum: Array,
                          correct: Array | None = None,
                          cross_entropy: Array | None = None) -> None:
        """Errors on the held-out rows at a recorded epoch, (B,) each."""
        if self.validation is None:
            raise ValueError("absorb_validation before validating()")
        row = int(np.searchsorted(self.recorded, epoch))
        self.validation[row] = self._errors(sse, abs_sum, self.validation_values,
                                            self.validation_rows, correct,
                                            cross_entropy)  # (B, 3 or 5)

    def reached(self, metric: Array) -> NDArray[np.bool_]:
        """Within each trial's tolerance, (..., B)."""
        return np.asarray(reached(self.name, metric, self.tolerance), dtype=bool)

    def absorb(self, sse: Array, abs_sum: Array, correct: Array | None = None,
               cross_entropy: Array | None = None) -> None:
        """Take the next epochs' sums of squared and of absolute errors, (E, B) each (and a
        classifier's counts of right answers and sums of cross-entropy).

        A trial diverged at its first epoch whose sse is not finite; from there on its rows
        count for nothing, whatever an engine put in them.
        """
        start, count = self.done, len(sse)
        bad = ~np.isfinite(sse)  # (E, B)
        newly = (self.diverged < 0) & bad.any(axis=0)
        self.diverged[newly] = start + bad.argmax(axis=0)[newly]
        valid = (start + np.arange(count))[:, None] < self._valid_until()  # (E, B)
        errors = self._errors(sse, abs_sum, self.n_values, self.rows, correct,
                              cross_entropy)  # (E, B, 3 or 5)
        metric = errors[..., self.metric]  # (E, B)
        rows = np.flatnonzero((self.recorded >= start) & (self.recorded < start + count))
        self.history[rows] = errors[self.recorded[rows] - start]  # (r, B, 3 or 5)
        score = lower_is_better(self.name, metric)  # (E, B)
        self.best = np.fmin(self.best, np.where(valid, score, np.inf).min(axis=0))
        hit = valid & self.reached(metric)  # (E, B)
        newly = (self.converged < 0) & hit.any(axis=0)
        self.converged[newly] = start + hit.argmax(axis=0)[newly]
        self.last = metric[-1].copy()
        self.done += count

    def resume(self, states: Sequence[TrainState]) -> None:
        """Go on from where every trial stopped, all at one epoch: its history and held-out
        rows so far, best, converged and diverged, in the order of `trials`. (The latest
        metric needs no keeping: going on trains an epoch at least, which sets it anew.)"""
        done = {state.epoch for state in states}
        if len(done) != 1 or len(states) != len(self.best):
            raise ValueError("an EpochLog resumes all its trials from one epoch")
        self.done = done.pop()
        rows = self.rows_done()
        for b, state in enumerate(states):
            if (state.validation is None) != (self.validation is None):
                raise ValueError("a training state's held-out rows must be the call's: "
                                 f"{'none' if state.validation is None else 'some'} kept, "
                                 f"{'none' if self.validation is None else 'some'} given")
            if state.history.shape != self.history[:rows, b].shape:
                raise ValueError(f"history: expected shape {self.history[:rows, b].shape}, "
                                 f"got {state.history.shape}")
            self.history[:rows, b] = state.history
            if self.validation is not None and state.validation is not None:
                self.validation[:rows, b] = state.validation
            self.best[b] = state.best
            self.converged[b], self.diverged[b] = state.converged, state.diverged

    def kept(self, b: int) -> dict[str, Any]:
        """What the log keeps of trial b so far, as TrainState's fields (resume's inverse)."""
        rows = self.rows_done()
        return {"history": self.history[:rows, b].copy(),
                "validation": (None if self.validation is None
                               else self.validation[:rows, b].copy()),
                "best": float(self.best[b]), "converged": int(self.converged[b]),
                "diverged": int(self.diverged[b])}

    def rows_done(self) -> int:
        """History rows of the epochs absorbed so far: the recorded epochs before `done`."""
        return int(np.searchsorted(self.recorded, self.done))

    def held_out_metric(self, sse: Array, abs_sum: Array, correct: Array | None = None,
                        cross_entropy: Array | None = None) -> Array:
        """The metric of held-out sums (B,) each, as absorb_validation would record it."""
        return self._errors(sse, abs_sum, self.validation_values, self.validation_rows,
                            correct, cross_entropy)[..., self.metric]

    def _valid_until(self) -> NDArray[np.int64]:
        return np.where(self.diverged >= 0, self.diverged, self.epochs)  # (B,)

    def _selected(self, keep: NDArray[np.bool_]) -> tuple[Array, Array, NDArray[np.int64]]:
        """Last, best (as sign * metric) and converged epoch of every trial, (B,) each: from
        the training epochs, or from the held-out rows at the recorded epochs (rows `keep`)."""
        if self.select != "validation":
            return self.last, self.best, self.converged
        if self.validation is None:
            raise ValueError('select = "validation" needs held-out rows')
        metric = self.validation[..., self.metric]  # (R, B)
        score = np.where(keep, lower_is_better(self.name, metric), np.inf)  # (R, B)
        best = np.fmin.reduce(score, axis=0)  # (B,)
        hit = keep & self.reached(metric)  # (R, B)
        converged = np.where(hit.any(axis=0), self.recorded[hit.argmax(axis=0)], -1)  # (B,)
        last_row = keep.sum(axis=0) - 1  # (B,) recorded epochs kept are a prefix
        last = np.where(last_row >= 0, metric[np.maximum(last_row, 0), np.arange(len(best))],
                        np.nan)  # (B,)
        return last, best, converged

    def results(
        self, weights: Sequence[Sequence[Array]], changes: Sequence[Sequence[NDArray[np.int64]]]
    ) -> list[TrialResult]:
        """One result per trial from its final weights and direction counts (copied here), of
        the epochs absorbed: all of them, or those before a stop.

        Weights that are not finite mean the trial diverged at the last epoch, even where no
        error showed it: the last update can overflow after the last forward pass.
        """
        keep = self.recorded[:, None] < np.minimum(self._valid_until(), self.done)  # (R, B)
        last, best, converged = self._selected(keep)
        results = []
        for b, (final, counts) in enumerate(zip(weights, changes, strict=True)):
            diverged = int(self.diverged[b])
            if diverged < 0 and not all(np.isfinite(w).all() for w in final):
                diverged = self.done - 1
            lowest = float(self.sign * best[b])
            results.append(TrialResult(
                epochs=self.recorded[keep[:, b]],
                errors=self.history[keep[:, b], b],  # (R', 3 or 5), a copy
                final_error=math.nan if diverged >= 0 else float(last[b]),
                # no epoch to judge: inf for an error, but no accuracy
                best_error=math.nan if self.sign < 0 and math.isinf(lowest) else lowest,
                converged_epoch=int(converged[b]) if converged[b] >= 0 else None,
                diverged_epoch=diverged if diverged >= 0 else None,
                direction_changes=tuple(np.array(c) for c in counts),
                weights=tuple(np.array(w) for w in final),
                validation=(None if self.validation is None
                            else self.validation[keep[:, b], b]),  # (R', 3 or 5), a copy
                metric=self.metric,
            ))
        return results
