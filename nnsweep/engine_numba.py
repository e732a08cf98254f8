"""The compiled engine: every trial of a batch trained by one Numba loop, trials across cores.

It computes what the NumPy trainer computes, step for step, with plain loops instead of BLAS
and a vectorizable exp instead of libm's, so its numbers equal the NumPy engine's to about
1e-12 on well-behaved trials but not bit for bit: a different exp or summation order moves
the last bits, and a chaotic trial (a huge learning rate, a saddle) can amplify that. The
NumPy engine stays the default and the oracle; this one is for speed.

Layout: all trials' weights live in one flat array, trial after trial and layer after layer;
a batch may mix hidden widths (depth, activations and descent are shared).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from nnsweep.network import initial_weights, weight_shapes
from nnsweep.params import ACTIVATIONS, METRICS, TrialParams
from nnsweep.reference import shuffle_generator
from nnsweep.result import TrialResult

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(parallel: bool = False, contract: bool = False) -> Callable[[F], F]:
    """njit, cached; `contract` lets LLVM fuse a * b + c into one rounding (exp's polynomial)."""
    fastmath = {"contract"} if contract else False
    return cast(Callable[[F], F], numba.njit(cache=True, parallel=parallel, nogil=True,
                                             fastmath=fastmath))


# Layers at least this wide loop over their outputs innermost; narrower ones over inputs.
WIDE = 8
# Bytes of shuffled row orders prepared at a time (shuffled descent trains in epoch chunks).
ORDER_BYTES = 32_000_000

# exp(x) = 2**k * exp(r), k = round(x / ln 2), |r| <= ln(2) / 2; written as plain arithmetic
# so that LLVM vectorizes it (libm's exp is a call per element, four times slower here).
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in 32 bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer held in low bits
_ROUND_BITS = int(np.array(_ROUND).view(np.int64))
_EXP_MAX = 709.0  # exp overflows above about 709.78
_EXP_MIN = -708.0  # and leaves the normal range below about -708.4


@_compiled(contract=True)
def _exp_in_place(
    z: NDArray[np.float64], sign: float, scale: NDArray[np.float64], sigmoid: bool
) -> None:
    """z <- exp(sign * z) to within 2 ulp, or 1 / (1 + that) when `sigmoid`; nan stays nan.

    Three passes a vectorizer can handle: k = round(x / ln 2) by the rounding trick, 2**k
    from k's bits, then the polynomial for exp(r), r = x - k ln 2.
    """
    bits = scale.view(np.int64)
    n = z.size
    for j in range(n):
        x = sign * z[j]
        x = _EXP_MAX if x > _EXP_MAX else x
        x = _EXP_MIN if x < _EXP_MIN else x
        scale[j] = x * _LOG2E + _ROUND
    for j in range(n):
        bits[j] = (bits[j] - _ROUND_BITS + 1023) << 52
    for j in range(n):
        x = sign * z[j]
        x = _EXP_MAX if x > _EXP_MAX else x
        x = _EXP_MIN if x < _EXP_MIN else x
        k = (x * _LOG2E + _ROUND) - _ROUND
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (
            1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (
                1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
                    1 / 479001600 + r * (1 / 6227020800)))))))))))))
        z[j] = p * scale[j]
    if sigmoid:
        for j in range(n):
            z[j] = 1.0 / (1.0 + z[j])


@_compiled(contract=True)
def _activate(code: int, z: NDArray[np.float64], scratch: NDArray[np.float64]) -> None:
    """Activation in place; codes follow params.ACTIVATIONS."""
    n = z.size
    if code == 0:  # sigmoid: 1 / (1 + exp(-z))
        _exp_in_place(z, -1.0, scratch, True)
    elif code == 1:  # relu
        for j in range(n):
            z[j] = z[j] if z[j] > 0 else 0.0 * z[j]
    elif code == 2:
        for j in range(n):
            z[j] = math.tanh(z[j])
    elif code == 4:  # leaky relu
        for j in range(n):
            z[j] = z[j] if z[j] > 0 else 0.01 * z[j]
    elif code == 5:  # softplus: log(1 + exp(z)), as numpy's logaddexp(0, z)
        for j in range(n):
            v = z[j]
            z[j] = v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


@_compiled(contract=True)
def _times_derivative(code: int, delta: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    """delta *= f'(out), the derivative taken from the layer's output."""
    n = delta.size
    if code == 0:
        for j in range(n):
            delta[j] *= out[j] * (1.0 - out[j])
    elif code == 1:
        for j in range(n):
            delta[j] *= 1.0 if out[j] > 0 else 0.0
    elif code == 2:
        for j in range(n):
            delta[j] *= 1.0 - out[j] * out[j]
    elif code == 4:
        for j in range(n):
            delta[j] *= 1.0 if out[j] > 0 else 0.01
    elif code == 5:
        for j in range(n):
            delta[j] *= 1.0 - math.exp(-out[j])


@_compiled(contract=True)
def _train_trial(
    x: NDArray[np.float64],  # (rows, inputs)
    y: NDArray[np.float64],  # (rows, outputs)
    orders: NDArray[np.int64],  # (epochs in chunk, rows) row order of each epoch
    weights: NDArray[np.float64],  # this trial's weights, flat, layer after layer
    changes: NDArray[np.int64],  # (weights.size,)
    previous_up: NDArray[np.int64],  # (weights.size,) 1 where the last update went up
    units: NDArray[np.int64],  # (depth + 1,) units per layer, input first, no bias
    hidden_code: int,
    output_code: int,
    bias: bool,
    mean: bool,
    step_rows: int,
    alpha: float,
    first_epoch: int,
    record_step: int,
    epochs: int,
    metric_code: int,
    tolerance: float,
    history: NDArray[np.float64],  # (R, 3) this trial's history rows
    state: NDArray[np.float64],  # (4,) best, converged, diverged, last metric (-1: none)
) -> None:
    """Train one trial through a chunk of epochs, picking up the state where it was left."""
    rows, n_outputs = y.shape
    depth = units.size - 1
    extra = 1 if bias else 0
    offsets = np.zeros(depth + 1, dtype=np.int64)  # weights of layer l: offsets[l]:offsets[l+1]
    act_offsets = np.zeros(depth + 1, dtype=np.int64)  # outputs of layer l in `acts`
    widest = 0
    for layer in range(depth):
        offsets[layer + 1] = offsets[layer] + (units[layer] + extra) * units[layer + 1]
        act_offsets[layer + 1] = act_offsets[layer] + step_rows * units[layer + 1]
        widest = max(widest, units[layer] + extra)
    acts = np.empty(act_offsets[depth])  # every layer's output for the step's rows
    deltas = np.empty(act_offsets[depth])
    grad = np.empty(offsets[depth])
    scratch = np.empty(act_offsets[depth])
    inputs = np.empty((step_rows, units[0]))
    targets = np.empty((step_rows, n_outputs))
    n_values = rows * n_outputs
    started = first_epoch > 0
    # 2-D views made once: a reshape inside the step loop costs more than a small layer
    last_rows = rows - (rows - 1) // step_rows * step_rows  # the last step's rows
    w2 = [weights[offsets[layer] : offsets[layer + 1]].reshape((units[layer] + extra,
                                                                 units[layer + 1]))
          for layer in range(depth)]
    g2 = [grad[offsets[layer] : offsets[layer + 1]].reshape((units[layer] + extra,
                                                              units[layer + 1]))
          for layer in range(depth)]
    acts_full = [acts[act_offsets[layer] : act_offsets[layer] + step_rows * units[layer + 1]]
                 .reshape((step_rows, units[layer + 1])) for layer in range(depth)]
    acts_last = [acts[act_offsets[layer] : act_offsets[layer] + last_rows * units[layer + 1]]
                 .reshape((last_rows, units[layer + 1])) for layer in range(depth)]
    deltas_full = [deltas[act_offsets[layer] : act_offsets[layer]
                          + step_rows * units[layer + 1]].reshape((step_rows, units[layer + 1]))
                   for layer in range(depth)]
    deltas_last = [deltas[act_offsets[layer] : act_offsets[layer]
                          + last_rows * units[layer + 1]].reshape((last_rows, units[layer + 1]))
                   for layer in range(depth)]

    for e in range(orders.shape[0]):
        epoch = first_epoch + e
        sse = 0.0
        abs_sum = 0.0
        for start in range(0, rows, step_rows):
            n = min(step_rows, rows - start)
            for i in range(n):
                row = orders[e, start + i]
                for c in range(units[0]):  # plain loops: slice assignment costs more here
                    inputs[i, c] = x[row, c]
                for c in range(n_outputs):
                    targets[i, c] = y[row, c]

            act2 = acts_full if n == step_rows else acts_last
            delta2 = deltas_full if n == step_rows else deltas_last
            for layer in range(depth):  # forward: out = f(input @ w), rows of n
                fan_in, fan_out = units[layer], units[layer + 1]
                w = w2[layer]
                out = acts[act_offsets[layer] : act_offsets[layer] + n * fan_out]
                out2 = act2[layer]
                source = inputs[:n] if layer == 0 else act2[layer - 1]
                # The longer inner loop is the one that vectorizes.
                if fan_out >= WIDE:  # the first term assigned, the others added in order
                    for i in range(n):
                        a = source[i, 0]
                        for j in range(fan_out):
                            out2[i, j] = a * w[0, j]
                        for k in range(1, fan_in):
                            a = source[i, k]
                            for j in range(fan_out):
                                out2[i, j] += a * w[k, j]
                else:  # four running sums break the chain of dependent additions
                    for i in range(n):
                        for j in range(fan_out):
                            s0 = s1 = s2 = s3 = 0.0
                            k = 0
                            while k + 4 <= fan_in:
                                s0 += source[i, k] * w[k, j]
                                s1 += source[i, k + 1] * w[k + 1, j]
                                s2 += source[i, k + 2] * w[k + 2, j]
                                s3 += source[i, k + 3] * w[k + 3, j]
                                k += 4
                            while k < fan_in:
                                s0 += source[i, k] * w[k, j]
                                k += 1
                            out2[i, j] = (s0 + s1) + (s2 + s3)
                if bias:
                    for i in range(n):
                        for j in range(fan_out):
                            out2[i, j] += w[fan_in, j]
                _activate(output_code if layer == depth - 1 else hidden_code, out,
                          scratch[: n * fan_out])

            last = act_offsets[depth - 1]
            for i in range(n):
                for j in range(n_outputs):
                    err = acts[last + i * n_outputs + j] - targets[i, j]
                    sse += err * err
                    abs_sum += abs(err)
                    deltas[last + i * n_outputs + j] = err
            _times_derivative(output_code, deltas[last : last + n * n_outputs],
                              acts[last : last + n * n_outputs])

            for layer in range(depth - 1, -1, -1):  # backward, then this layer's update
                fan_in, fan_out = units[layer], units[layer + 1]
                w = w2[layer]
                g = g2[layer]
                delta = delta2[layer]
                source = inputs[:n] if layer == 0 else act2[layer - 1]
                flat_w = weights[offsets[layer] : offsets[layer + 1]]
                flat_g = grad[offsets[layer] : offsets[layer + 1]]
                if fan_out == 1:  # the flat arrays are the column: contiguous loops
                    d = delta[0, 0]
                    for k in range(fan_in):
                        flat_g[k] = source[0, k] * d
                    if bias:
                        flat_g[fan_in] = d
                    for i in range(1, n):  # g = source.T @ delta, summed over rows in order
                        d = delta[i, 0]
                        for k in range(fan_in):
                            flat_g[k] += source[i, k] * d
                        if bias:
                            flat_g[fan_in] += d
                else:
                    for j in range(flat_g.size):
                        flat_g[j] = 0.0
                for i in range(n if fan_out > 1 else 0):
                    if fan_out >= WIDE:
                        for k in range(fan_in):
                            a = source[i, k]
                            for j in range(fan_out):
                                g[k, j] += a * delta[i, j]
                    else:
                        for j in range(fan_out):
                            d = delta[i, j]
                            for k in range(fan_in):
                                g[k, j] += source[i, k] * d
                    if bias:
                        for j in range(fan_out):
                            g[fan_in, j] += delta[i, j]
                if layer > 0:  # delta of the layer below: (delta @ w.T) * f'(out below)
                    below = act_offsets[layer - 1]
                    back = deltas[below : below + n * fan_in]
                    back2 = delta2[layer - 1]
                    out_below = acts[below : below + n * fan_in]
                    if fan_out == 1 and hidden_code == 0:  # one pass: d * w * o (1 - o)
                        for i in range(n):
                            d = delta[i, 0]
                            for k in range(fan_in):
                                o = out_below[i * fan_in + k]
                                back2[i, k] = d * flat_w[k] * (o * (1.0 - o))
                    else:
                        for k in range(back.size):
                            back[k] = 0.0
                        for i in range(n):
                            for j in range(fan_out):
                                d = delta[i, j]
                                for k in range(fan_in):
                                    back2[i, k] += d * w[k, j]
                        _times_derivative(hidden_code, back, out_below)
                count = changes[offsets[layer] : offsets[layer + 1]]
                was_up = previous_up[offsets[layer] : offsets[layer + 1]]
                if mean:
                    for j in range(flat_g.size):
                        flat_g[j] /= n
                # 64-bit lanes throughout and no branches, so these loops vectorize
                if started:
                    for j in range(flat_w.size):
                        up = 1 if flat_g[j] < 0 else 0  # the update goes up: -grad > 0
                        count[j] += up ^ was_up[j]
                        was_up[j] = up
                        flat_w[j] -= alpha * flat_g[j]
                else:
                    for j in range(flat_w.size):
                        was_up[j] = 1 if flat_g[j] < 0 else 0
                        flat_w[j] -= alpha * flat_g[j]
            started = True

        if not math.isfinite(sse):
            state[2] = epoch
            return
        mae = abs_sum / n_values
        mse = sse / n_values
        metric = mae if metric_code == 0 else (mse if metric_code == 1 else sse)
        if epoch % record_step == 0 or epoch == epochs - 1:
            row = history.shape[0] - 1 if epoch == epochs - 1 else epoch // record_step
            history[row, 0] = mae
            history[row, 1] = mse
            history[row, 2] = sse
        state[0] = min(state[0], metric)
        if state[1] < 0 and metric <= tolerance:
            state[1] = epoch
        state[3] = metric


@_compiled(parallel=True, contract=True)
def _train_chunk(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    orders: NDArray[np.int64],  # (B or 1, epochs in chunk, rows)
    weights: NDArray[np.float64],  # all trials' weights, flat
    changes: NDArray[np.int64],
    previous_up: NDArray[np.int64],
    starts: NDArray[np.int64],  # (B + 1,) trial b's weights: starts[b]:starts[b + 1]
    units: NDArray[np.int64],  # (B, depth + 1)
    schedule: NDArray[np.int64],  # (threads, most) each thread's trials; -1 pads
    hidden_code: int,
    output_code: int,
    bias: bool,
    mean: bool,
    step_rows: int,
    alpha: NDArray[np.float64],
    first_epoch: int,
    record_step: int,
    epochs: int,
    metric_code: int,
    tolerance: NDArray[np.float64],
    history: NDArray[np.float64],  # (B, R, 3)
    state: NDArray[np.float64],  # (B, 4)
) -> None:
    for thread in numba.prange(schedule.shape[0]):
        for b in schedule[thread]:
            if b < 0 or state[b, 2] >= 0:  # padding, or diverged in an earlier chunk
                continue
            lo, hi = starts[b], starts[b + 1]
            _train_trial(x, y, orders[b if orders.shape[0] > 1 else 0], weights[lo:hi],
                         changes[lo:hi], previous_up[lo:hi], units[b], hidden_code, output_code,
                         bias, mean, step_rows, alpha[b], first_epoch, record_step, epochs,
                         metric_code, tolerance[b], history[b], state[b])


def _schedule(costs: NDArray[np.int64], threads: int) -> NDArray[np.int64]:
    """Trials dealt to threads, costliest first to the least loaded: (threads, most), -1 pads.

    Numba cuts a prange into equal runs of iterations, so uneven trials are balanced here.
    """
    bins: list[list[int]] = [[] for _ in range(max(1, min(threads, costs.size)))]
    loads = [0] * len(bins)
    for b in np.argsort(-costs, kind="stable"):
        least = loads.index(min(loads))
        bins[least].append(int(b))
        loads[least] += int(costs[b])
    table = np.full((len(bins), max(map(len, bins))), -1, dtype=np.int64)
    for row, members in enumerate(bins):
        table[row, : len(members)] = members
    return table


def train_batch(
    x_data: ArrayLike, y_data: ArrayLike, trials: Sequence[TrialParams]
) -> list[TrialResult]:
    """Train every trial on the same data; one result per trial, in order.

    Trials must share depth, activations, descent, epochs and record step (the NumPy
    trainer's batch key); widths, alpha, seed, init and tolerance may vary.
    """
    from nnsweep.trainer import batch_key

    if not trials:
        return []
    if len({batch_key(t) for t in trials}) != 1:
        raise ValueError("trials of one batch must share a batch key")
    x = np.ascontiguousarray(x_data, dtype=np.float64)  # (rows, inputs)
    y = np.ascontiguousarray(y_data, dtype=np.float64)  # (rows, outputs)
    first = trials[0]
    rows, n_inputs = x.shape
    n_outputs = y.shape[1]
    B = len(trials)

    starting = [initial_weights(t, n_inputs, n_outputs) for t in trials]
    sizes = [sum(w.size for w in ws) for ws in starting]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # (B + 1,)
    weights = np.concatenate([w.ravel() for ws in starting for w in ws])  # (N,)
    changes = np.zeros(weights.size, dtype=np.int64)
    previous_up = np.zeros(weights.size, dtype=np.int64)
    units = np.array([[n_inputs, *t.hidden, n_outputs] for t in trials], dtype=np.int64)
    schedule = _schedule(np.array(sizes) * np.array([t.rows_per_step(rows) for t in trials]),
                         numba.get_num_threads())
    recorded = first.recorded_epochs()
    history = np.full((B, len(recorded), 3), np.nan)
    state = np.empty((B, 4))
    state[:] = (np.inf, -1.0, -1.0, np.nan)
    shuffled = first.shuffle and first.descent != "full"

    common = (first.activation, first.output)
    codes = tuple(ACTIVATIONS.index(name) for name in common)
    step_rows = first.rows_per_step(rows)
    epochs = first.epochs
    chunk = max(1, min(epochs, ORDER_BYTES // (8 * rows * B))) if shuffled else epochs
    shufflers = [shuffle_generator(t.seed) for t in trials] if shuffled else []
    alpha = np.array([t.alpha for t in trials])
    tolerance = np.array([t.tolerance for t in trials])
    for first_epoch in range(0, epochs, chunk):
        count = min(chunk, epochs - first_epoch)
        if shuffled:
            orders = np.array([[g.permutation(rows) for _ in range(count)]
                               for g in shufflers], dtype=np.int64)  # (B, count, rows)
        else:
            orders = np.broadcast_to(np.arange(rows, dtype=np.int64), (1, count, rows))
            orders = np.ascontiguousarray(orders)
        _train_chunk(x, y, orders, weights, changes, previous_up, starts, units, schedule,
                     codes[0], codes[1], first.bias, first.reduction == "mean", step_rows,
                     alpha, first_epoch, first.record_step, epochs,
                     METRICS.index(first.metric), tolerance, history, state)

    results = []
    for b, trial in enumerate(trials):
        shapes = weight_shapes(trial, n_inputs, n_outputs)
        bounds = np.cumsum([0, *(r * c for r, c in shapes)]) + starts[b]
        cut = [(slice(int(lo), int(hi)), shape)
               for lo, hi, shape in zip(bounds[:-1], bounds[1:], shapes, strict=True)]
        final = [weights[s].reshape(shape).copy() for s, shape in cut]
        counts = [changes[s].reshape(shape).copy() for s, shape in cut]
        best, converged, diverged, metric = state[b]
        epochs_kept = np.array(recorded, dtype=np.int64)
        keep = epochs_kept < (diverged if diverged >= 0 else epochs)
        if diverged < 0 and not all(np.isfinite(w).all() for w in final):
            diverged = epochs - 1
        results.append(TrialResult(
            epochs=epochs_kept[keep],
            errors=history[b][keep].copy(),
            final_error=math.nan if diverged >= 0 else float(metric),
            best_error=float(best),
            converged_epoch=int(converged) if converged >= 0 else None,
            diverged_epoch=int(diverged) if diverged >= 0 else None,
            direction_changes=tuple(counts),
            weights=tuple(final),
        ))
    return results
