"""The plain one-network loop, written as the textbooks write it.

It is the oracle the batched trainer is tested against and the baseline the benchmarks
measure speed-ups from, so it stays deliberately simple: 2-D arrays, one step at a time.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from nnsweep.network import (
    DERIVATIVE_FNS,
    Array,
    forward,
    initial_weights,
    with_bias_column,
)
from nnsweep.params import TrialParams
from nnsweep.result import TrialResult


def shuffle_generator(seed: int) -> np.random.Generator:
    """The minibatch shuffle's own stream, apart from the weights' RandomState."""
    return np.random.default_rng([seed, 1])


def train_one(x_data: ArrayLike, y_data: ArrayLike, params: TrialParams) -> TrialResult:
    x = np.asarray(x_data, dtype=np.float64)  # (rows, inputs)
    y = np.asarray(y_data, dtype=np.float64)  # (rows, outputs)
    rows, n_outputs = y.shape
    weights = initial_weights(params, x.shape[1], n_outputs)
    output_deriv = DERIVATIVE_FNS[params.output]
    hidden_deriv = DERIVATIVE_FNS[params.activation]
    step_rows = params.rows_per_step(rows)
    shuffler = (shuffle_generator(params.seed)
                if params.shuffle and params.descent != "full" else None)
    steps = _slices(x, y, np.arange(rows), step_rows)
    n_values = rows * n_outputs

    changes = [np.zeros(w.shape, dtype=np.int64) for w in weights]
    previous_up: list[np.ndarray] | None = None
    recorded = set(params.recorded_epochs())
    history: list[tuple[int, float, float, float]] = []
    best = math.inf
    metric = math.nan
    converged: int | None = None
    diverged: int | None = None

    with np.errstate(all="ignore"):
        for epoch in range(params.epochs):
            if shuffler is not None:
                steps = _slices(x, y, shuffler.permutation(rows), step_rows)
            sse = 0.0
            abs_sum = 0.0
            for x_step, y_step in steps:
                outs = forward(x_step, weights, params.activation, params.output, params.bias)
                err = outs[-1] - y_step  # (n, outputs)
                sse += (err * err).sum()
                abs_sum += np.abs(err).sum()

                delta = err * output_deriv(outs[-1]) if output_deriv else err
                grads: list[Array] = [np.empty(0)] * len(weights)
                for layer in reversed(range(len(weights))):
                    inputs = with_bias_column(outs[layer]) if params.bias else outs[layer]
                    grads[layer] = np.matmul(inputs.T, delta)  # (fan_in, fan_out)
                    if layer > 0:
                        back = np.matmul(delta, weights[layer].T)  # (n, fan_in)
                        if params.bias:
                            back = np.ascontiguousarray(back[:, :-1])
                        delta = back * hidden_deriv(outs[layer]) if hidden_deriv else back
                if params.reduction == "mean":
                    grads = [g / len(x_step) for g in grads]

                up = [g < 0 for g in grads]  # the direction of the update, -grad > 0
                if previous_up is not None:
                    for count, now, before in zip(changes, up, previous_up, strict=True):
                        count += now != before
                previous_up = up
                for w, g in zip(weights, grads, strict=True):
                    w -= params.alpha * g

            if not math.isfinite(sse):
                diverged = epoch
                break
            mae, mse = abs_sum / n_values, sse / n_values
            metric = {"mae": mae, "mse": mse, "sse": sse}[params.metric]
            if epoch in recorded:
                history.append((epoch, mae, mse, sse))
            best = min(best, metric)
            if converged is None and metric <= params.tolerance:
                converged = epoch

    if diverged is None and not all(np.isfinite(w).all() for w in weights):
        diverged = params.epochs - 1
    return TrialResult(
        epochs=np.array([row[0] for row in history], dtype=np.int64),
        errors=np.array([row[1:] for row in history], dtype=np.float64).reshape(-1, 3),
        final_error=math.nan if diverged is not None else metric,
        best_error=best,
        converged_epoch=converged,
        diverged_epoch=diverged,
        direction_changes=tuple(changes),
        weights=tuple(weights),
    )


def _slices(x: Array, y: Array, order: np.ndarray, step_rows: int) -> list[tuple[Array, Array]]:
    """The (x, y) rows of each update step of one epoch, in the order given."""
    return [(x[order[start : start + step_rows]], y[order[start : start + step_rows]])
            for start in range(0, len(order), step_rows)]
