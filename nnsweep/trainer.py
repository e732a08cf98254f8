"""The batched NumPy trainer: many same-shaped networks trained as one array program.

Trials that share a batch key (depth, activations, descent, epochs, ...) stack along a
leading axis B: weights are (B, fan_in, fan_out), alpha is (B, 1, 1). Each operation is
the one the plain loop (reference.py) performs, applied to a stack of equal-shaped matrices,
so the results are equal bit for bit, not merely close, and a trial's numbers never depend
on the batch it trained in. (Zero-padding narrower networks to the widest is not exact:
BLAS picks other kernels for other matrix widths, and the last bits move.)

The trainer knows nothing about files, processes or progress bars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nnsweep.network import (
    ACTIVATION_FNS,
    DERIVATIVE_FNS,
    Array,
    initial_weights,
        with_bias_column,
)
from nnsweep.params import TrialParams
from nnsweep.reference import shuffle_generator
from nnsweep.result import TrialResult

BatchKey = tuple[object, ...]


def batch_key(params: TrialParams) -> BatchKey:
    """Trials with equal keys can train together; alpha, seed, init and tolerance vary."""
    return (
        params.hidden,
        params.activation,
        params.output,
        params.descent,
        params.batch_size if params.descent == "minibatch" else 0,
        params.reduction,
        params.epochs,
        params.record_step,
        params.metric,
        params.bias,
        params.shuffle and params.descent != "full",
    )


def train_batch(
    x_data: ArrayLike,
    y_data: ArrayLike,
    trials: Sequence[TrialParams],
    on_epoch: Callable[[int], None] | None = None,
) -> list[TrialResult]:
    """Train every trial on the same data; return one result per trial, in order.

    `on_epoch(epoch)` is called after each epoch, for callers that want a heartbeat.
    """
    if not trials:
        return []
    keys = {batch_key(t) for t in trials}
    if len(keys) != 1:
        raise ValueError(f"trials of one batch must share a batch key, got {len(keys)} keys")
    x = np.asarray(x_data, dtype=np.float64)  # (rows, inputs)
    y = np.asarray(y_data, dtype=np.float64)  # (rows, outputs)
    return _BatchTrainer(x, y, list(trials)).run(on_epoch)


class _BatchTrainer:
    """State of one batch in training; split out so each phase reads on its own."""

    def __init__(self, x: Array, y: Array, trials: list[TrialParams]) -> None:
        first = trials[0]
        self.x, self.y, self.trials, self.first = x, y, trials, first
        self.B = len(trials)
        self.rows, self.n_outputs = y.shape
        self.bias = first.bias
        self.hidden_fn = ACTIVATION_FNS[first.activation]
        self.output_fn = ACTIVATION_FNS[first.output]
        self.hidden_deriv = DERIVATIVE_FNS[first.activation]
        self.output_deriv = DERIVATIVE_FNS[first.output]
        self.step_rows = first.rows_per_step(self.rows)

        n_inputs = x.shape[1]
        starts = [initial_weights(t, n_inputs, self.n_outputs) for t in trials]
        self.weights = [np.stack(layer) for layer in zip(*starts, strict=True)]  # (B, in, out)
        self.alpha = np.array([t.alpha for t in trials]).reshape(self.B, 1, 1)
        self.tolerance = np.array([t.tolerance for t in trials])  # (B,)

    def _steps(self, order: NDArray[np.intp]) -> list[tuple[Array, Array]]:
        """Each update step's inputs (B, n, fan_in) and targets, for row order (B, rows)."""
        x = with_bias_column(self.x) if self.bias else self.x
        xs, ys = x[order], self.y[order]  # (B, rows, fan_in), (B, rows, outputs)
        return [(np.ascontiguousarray(xs[:, s : s + self.step_rows]),
                 np.ascontiguousarray(ys[:, s : s + self.step_rows]))
                for s in range(0, self.rows, self.step_rows)]

    def run(self, on_epoch: Callable[[int], None] | None) -> list[TrialResult]:
        first, B = self.first, self.B
        epochs = first.epochs
        in_order = np.broadcast_to(np.arange(self.rows), (B, self.rows))
        shufflers = ([shuffle_generator(t.seed) for t in self.trials]
                     if batch_key(first)[-1] else None)
        steps = self._steps(in_order)
        n_values = self.rows * self.n_outputs

        recorded = first.recorded_epochs()
        history = np.full((len(recorded), B, 3), np.nan)  # (R, B, mae|mse|sse)
        next_record = 0
        changes = [np.zeros(w.shape, dtype=np.int64) for w in self.weights]
        previous_up: list[NDArray[np.bool_]] | None = None

        active = np.ones(B, dtype=bool)
        valid_until = np.full(B, epochs)  # history rows at epochs >= this are dropped
        diverged = np.full(B, -1)
        converged = np.full(B, -1)
        best = np.full(B, np.inf)
        metric = np.full(B, np.nan)
        frozen: dict[int, tuple[list[Array], list[NDArray[np.int64]]]] = {}

        with np.errstate(all="ignore"):
            for epoch in range(epochs):
                if shufflers is not None:
                    steps = self._steps(np.stack([g.permutation(self.rows) for g in shufflers]))
                sse = np.zeros(B)
                abs_sum = np.zeros(B)
                for x_step, y_step in steps:
                    up = self._step(x_step, y_step, sse, abs_sum)
                    if previous_up is not None:
                        for count, now, before in zip(changes, up, previous_up, strict=True):
                            count += now != before
                    previous_up = up

                bad = active & ~np.isfinite(sse)
                if bad.any():
                    for b in np.flatnonzero(bad):
                        frozen[int(b)] = ([w[b].copy() for w in self.weights],
                                          [c[b].copy() for c in changes])
                        for w in self.weights:
                            w[b] = 0.0  # a frozen trial computes harmless finite values
                        self.alpha[b] = 0.0
                    diverged[bad] = epoch
                    valid_until[bad] = epoch
                    active &= ~bad

                errors = {"mae": abs_sum / n_values, "mse": sse / n_values, "sse": sse}
                metric = errors[first.metric]
                if next_record < len(recorded) and recorded[next_record] == epoch:
                    history[next_record] = np.stack(
                        [errors["mae"], errors["mse"], errors["sse"]], axis=1)
                    next_record += 1
                best = np.where(active, np.fmin(best, metric), best)
                newly = active & (converged < 0) & (metric <= self.tolerance)
                converged[newly] = epoch
                if on_epoch is not None:
                    on_epoch(epoch)

        for b in np.flatnonzero(active):
            if not all(np.isfinite(w[b]).all() for w in self.weights):
                diverged[b] = epochs - 1
                active[b] = False
        return [self._result(b, recorded, history, valid_until, changes, frozen,
                             metric, best, converged, diverged) for b in range(B)]

    def _step(
        self, x_step: Array, y_step: Array, sse: Array, abs_sum: Array
    ) -> list[NDArray[np.bool_]]:
        """One update of every network: forward, errors, backward, weights; returns -grad > 0."""
        weights, B = self.weights, self.B
        last = len(weights) - 1
        inputs = [x_step]  # each layer's input, (B, n, fan_in)
        outs = []
        for layer, w in enumerate(weights):
            fn = self.output_fn if layer == last else self.hidden_fn
            out = fn(np.matmul(inputs[-1], w))  # (B, n, fan_out)
            outs.append(out)
            if layer < last:
                inputs.append(with_bias_column(out) if self.bias else out)

        err = outs[-1] - y_step  # (B, n, outputs)
        sse += (err * err).reshape(B, -1).sum(axis=1)
        abs_sum += np.abs(err).reshape(B, -1).sum(axis=1)

        delta = err * self.output_deriv(outs[-1]) if self.output_deriv else err
        grads: list[Array] = [np.empty(0)] * len(weights)
        for layer in reversed(range(len(weights))):
            grads[layer] = np.matmul(inputs[layer].transpose(0, 2, 1), delta)  # (B, in, out)
            if layer > 0:
                back = np.matmul(delta, weights[layer].transpose(0, 2, 1))  # (B, n, fan_in)
                if self.bias:
                    back = back[:, :, :-1]
                deriv = self.hidden_deriv
                delta = back * deriv(outs[layer - 1]) if deriv else back
        if self.first.reduction == "mean":
            grads = [g / len(x_step[0]) for g in grads]

        up = [g < 0 for g in grads]
        for w, g in zip(weights, grads, strict=True):
            w -= self.alpha * g
        return up

    def _result(
        self,
        b: int,
        recorded: list[int],
        history: Array,
        valid_until: NDArray[np.int64],
        changes: list[NDArray[np.int64]],
        frozen: dict[int, tuple[list[Array], list[NDArray[np.int64]]]],
        metric: Array,
        best: Array,
        converged: NDArray[np.int64],
        diverged: NDArray[np.int64],
    ) -> TrialResult:
        """Cut trial b's own networks out of the padded stacks."""
        weights, counts = frozen.get(b, ([w[b] for w in self.weights], [c[b] for c in changes]))
        epochs = np.array(recorded, dtype=np.int64)
        keep = epochs < valid_until[b]
        is_diverged = bool(diverged[b] >= 0)
        return TrialResult(
            epochs=epochs[keep],
            errors=history[keep, b].copy(),
            final_error=math.nan if is_diverged else float(metric[b]),
            best_error=float(best[b]),
            converged_epoch=int(converged[b]) if converged[b] >= 0 else None,
            diverged_epoch=int(diverged[b]) if is_diverged else None,
            direction_changes=tuple(c.copy() for c in counts),
            weights=tuple(w.copy() for w in weights),
        )
