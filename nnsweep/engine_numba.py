"""The compiled engine: every trial of a batch trained by one Numba loop, trials across cores.

It computes what the NumPy trainer computes, step for step, with plain loops instead of BLAS
and a vectorizable exp instead of libm's, so its numbers equal the NumPy engine's to about
1e-12 on well-behaved trials but not bit for bit: a different exp or summation order moves
the last bits, and a chaotic trial (a huge learning rate, a saddle) can amplify that. The
NumPy engine stays the default and the oracle; this one is for speed.

Its activations are the table's scalar forms (network.py), compiled into one loop per entry;
its epochs' errors go to the EpochLog every engine shares. Layout: all trials' weights live in
one flat array, trial after trial and layer after layer; a batch may mix hidden widths (depth,
activations and descent are shared).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numba
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba.core import types
from numba.extending import intrinsic
from numpy.typing import ArrayLike, NDArray

from nnsweep import network
from nnsweep.network import (
    TABLE,
    ScalarForm,
    initial_weights,
    shuffle_generator,
    weight_shapes,
)
from nnsweep.packing import pack
from nnsweep.params import TrialParams
from nnsweep.result import EpochLog, TrialResult
from nnsweep.trainer import checked_batch

F = TypeVar("F", bound=Callable[..., Any])
Kernel = Any  # a Numba dispatcher

# contract: LLVM may fuse a * b + c into one rounding (exp's polynomial); numpy's error model
# drops the check for a division by zero, which keeps a loop with a division from vectorizing.
_OPTIONS: dict[str, Any] = {"nogil": True, "fastmath": {"contract"}, "error_model": "numpy"}


def _cached(parallel: bool = False) -> Callable[[F], F]:
    """njit, cached, and compiled again when network.py changes as well as when this file does.

    Numba checks a cached kernel against its own file only, and these kernels inline the
    activation table's scalar forms from network.py.
    """

    def compile(fn: F) -> F:
        kernel = numba.njit(cache=True, parallel=parallel, **_OPTIONS)(fn)
        table = os.stat(network.__file__)
        try:
            index = kernel._cache._cache_file
            index._source_stamp = (index._source_stamp, table.st_mtime, table.st_size)
        except AttributeError:  # another Numba's internals: no cache rather than a stale one
            kernel = numba.njit(parallel=parallel, **_OPTIONS)(fn)
        return cast(F, kernel)

    return compile


def _jit(inline: bool = False) -> Callable[[F], F]:
    """njit, not cached: these compile into the cached kernels that call them; `inline` puts
    a function's body in its caller's, where LLVM can vectorize it with the loop around it."""
    return cast(Callable[[F], F], numba.njit(inline="always" if inline else "never", **_OPTIONS))


# Layers at least this wide loop over their outputs innermost; narrower ones over inputs.
WIDE = 8
# Bytes of row orders and error sums held at a time: long runs train in chunks of epochs.
CHUNK_BYTES = 32_000_000

# exp(x) = 2**k * exp(r), k = round(x / ln 2), |r| <= ln(2) / 2; written as plain arithmetic
# so that LLVM vectorizes it (libm's exp is a call per element, four times slower here).
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in 32 bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer held in low bits
_ROUND_BITS = int(np.array(_ROUND).view(np.int64))
_EXP_MAX = 709.0  # exp overflows above about 709.78
_EXP_MIN = -708.0  # and leaves the normal range below about -708.4


def _power_of_two(typingctx: Any, rounded: Any) -> tuple[Any, Callable[..., Any]]:
    """2**k for rounded = k + _ROUND, built from the bits of k, in three integer instructions."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        k = builder.sub(builder.bitcast(args[0], i64), ir.Constant(i64, _ROUND_BITS - 1023))
        return builder.bitcast(builder.shl(k, ir.Constant(i64, 52)), ir.DoubleType())

    return types.float64(types.float64), codegen


_two_to_the = cast(Callable[[float], float], intrinsic(_power_of_two))


@_jit(inline=True)
def _exp(x: float) -> float:
    """exp(x) to within 2 ulp, nan staying nan; inlined into each loop that calls it."""
    x = _EXP_MAX if x > _EXP_MAX else x
    x = _EXP_MIN if x < _EXP_MIN else x
    rounded = x * _LOG2E + _ROUND
    k = rounded - _ROUND
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (
        1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (
            1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
                1 / 479001600 + r * (1 / 6227020800)))))))))))))
    return p * _two_to_the(rounded)


@_jit(inline=True)
def _unchanged(a: NDArray[np.float64], b: NDArray[np.float64]) -> None:
    """A derivative of 1: nothing to multiply."""


@_jit(inline=True)
def _past_the_table(which: int, a: NDArray[np.float64], b: NDArray[np.float64]) -> None:
    """Never reached: the codes are the table's."""


def _activation_loop(form: ScalarForm) -> Kernel:
    """z <- f(z) in place, the table's scalar form inlined so that the loop vectorizes."""
    f = _jit(inline=True)(form)

    @_jit(inline=True)
    def loop(z: NDArray[np.float64], unused: NDArray[np.float64]) -> None:
        for j in range(z.size):
            z[j] = f(z[j], _exp)

    return loop


def _derivative_loop(form: ScalarForm | None) -> Kernel:
    """delta *= f'(out), f' taken from the layer's output; nothing where it is 1."""
    if form is None:
        return _unchanged
    f = _jit(inline=True)(form)

    @_jit(inline=True)
    def loop(delta: NDArray[np.float64], out: NDArray[np.float64]) -> None:
        for j in range(delta.size):
            delta[j] *= f(out[j], _exp)

    return loop


def _by_code(loops: Sequence[Kernel], code: int = 0) -> Kernel:
    """One kernel (code, a, b) running loops[code](a, b): a branch per table entry, all inlined
    into the caller, since a call per layer and step costs more than a small layer's work."""
    if code == len(loops):
        return _past_the_table
    loop, rest = loops[code], _by_code(loops, code + 1)

    @_jit(inline=True)
    def dispatch(which: int, a: NDArray[np.float64], b: NDArray[np.float64]) -> None:
        if which == code:
            loop(a, b)
        else:
            rest(which, a, b)

    return dispatch


# By position in the table: _activate(code, z, z) and _times_derivative(code, delta, out).
_CODES = {name: code for code, name in enumerate(TABLE)}
_activate = _by_code([_activation_loop(a.scalar) for a in TABLE.values()])
_times_derivative = _by_code([_derivative_loop(a.scalar_deriv) for a in TABLE.values()])


@_cached()
def _train_trial(
    x: NDArray[np.float64],  # (rows, inputs)
    y: NDArray[np.float64],  # (rows, outputs)
    orders: NDArray[np.int64],  # (epochs in chunk, rows) or (1, rows): each epoch's row order
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
    sse_out: NDArray[np.float64],  # (epochs in chunk,) each epoch's sum of squared errors
    abs_out: NDArray[np.float64],  # (epochs in chunk,) and of absolute errors
) -> bool:
    """Train one trial through a chunk of epochs; True once its errors stop being finite."""
    rows, n_outputs = y.shape
    depth = units.size - 1
    extra = 1 if bias else 0
    offsets = np.zeros(depth + 1, dtype=np.int64)  # weights of layer l: offsets[l]:offsets[l+1]
    act_offsets = np.zeros(depth + 1, dtype=np.int64)  # outputs of layer l in `acts`
    for layer in range(depth):
        offsets[layer + 1] = offsets[layer] + (units[layer] + extra) * units[layer + 1]
        act_offsets[layer + 1] = act_offsets[layer] + step_rows * units[layer + 1]
    acts = np.empty(act_offsets[depth])  # every layer's output for the step's rows
    deltas = np.empty(act_offsets[depth])
    grad = np.empty(offsets[depth])
    inputs = np.empty((step_rows, units[0]))
    targets = np.empty((step_rows, n_outputs))
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

    for e in range(sse_out.size):
        order = orders[e if orders.shape[0] > 1 else 0]  # (rows,)
        sse = 0.0
        abs_sum = 0.0
        for start in range(0, rows, step_rows):
            n = min(step_rows, rows - start)
            for i in range(n):
                row = order[start + i]
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
                _activate(output_code if layer == depth - 1 else hidden_code, out, out)

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
                    if fan_out == 1:  # one product per sum: written, as numpy multiplies
                        for i in range(n):
                            d = delta[i, 0]
                            for k in range(fan_in):
                                back2[i, k] = d * flat_w[k]
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

        sse_out[e] = sse
        abs_out[e] = abs_sum
        if not math.isfinite(sse):
            return True
    return False


@_cached(parallel=True)
def _train_chunk(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    orders: NDArray[np.int64],  # (B or 1, epochs in chunk or 1, rows)
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
    sse: NDArray[np.float64],  # (B, epochs in chunk)
    abs_sum: NDArray[np.float64],  # (B, epochs in chunk)
    stopped: NDArray[np.bool_],  # (B,) diverged: trains no more
) -> None:
    for thread in numba.prange(schedule.shape[0]):
        for b in schedule[thread]:
            if b < 0 or stopped[b]:  # padding, or diverged in an earlier chunk
                continue
            lo, hi = starts[b], starts[b + 1]
            stopped[b] = _train_trial(
                x, y, orders[b if orders.shape[0] > 1 else 0], weights[lo:hi], changes[lo:hi],
                previous_up[lo:hi], units[b], hidden_code, output_code, bias, mean, step_rows,
                alpha[b], first_epoch, sse[b], abs_sum[b])


def _schedule(costs: Sequence[float], threads: int) -> NDArray[np.int64]:
    """Trials dealt to threads by cost: (threads, most), -1 pads.

    Numba cuts a prange into equal runs of iterations, so uneven trials are balanced here.
    """
    bins, _ = pack(costs, min(threads, len(costs)))
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
    if not trials:
        return []
    x, y = checked_batch(x_data, y_data, trials)
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
    schedule = _schedule([size * t.rows_per_step(rows) for size, t in zip(sizes, trials,
                                                                         strict=True)],
                         numba.get_num_threads())
    shuffled = first.shuffle and first.descent != "full"
    step_rows = first.rows_per_step(rows)
    epochs = first.epochs
    per_epoch = B * (16 + (8 * rows if shuffled else 0))  # bytes of errors and orders
    chunk = max(1, min(epochs, CHUNK_BYTES // per_epoch))
    shufflers = [shuffle_generator(t.seed) for t in trials] if shuffled else []
    in_order = np.arange(rows, dtype=np.int64).reshape(1, 1, rows)  # (1, 1, rows)
    alpha = np.array([t.alpha for t in trials])
    log = EpochLog(trials, rows * n_outputs)
    stopped = np.zeros(B, dtype=np.bool_)
    for first_epoch in range(0, epochs, chunk):
        count = min(chunk, epochs - first_epoch)
        orders = in_order if not shuffled else np.array(
            [[g.permutation(rows) for _ in range(count)] for g in shufflers],
            dtype=np.int64)  # (B, count, rows)
        sse = np.full((B, count), np.nan)  # (B, count) nan after a trial stops
        abs_sum = np.full((B, count), np.nan)
        _train_chunk(x, y, orders, weights, changes, previous_up, starts, units, schedule,
                     _CODES[first.activation], _CODES[first.output], first.bias,
                     first.reduction == "mean", step_rows, alpha, first_epoch, sse, abs_sum,
                     stopped)
        log.absorb(sse.T, abs_sum.T)

    finals, counts = [], []
    for b, trial in enumerate(trials):
        shapes = weight_shapes(trial, n_inputs, n_outputs)
        bounds = np.cumsum([0, *(r * c for r, c in shapes)]) + starts[b]
        cut = [(slice(int(lo), int(hi)), shape)
               for lo, hi, shape in zip(bounds[:-1], bounds[1:], shapes, strict=True)]
        finals.append([weights[s].reshape(shape) for s, shape in cut])
        counts.append([changes[s].reshape(shape) for s, shape in cut])
    return log.results(finals, counts)


class NumbaEngine:
    """The compiled engine: the numba extra, for speed."""

    name = "numba"
    train_batch = staticmethod(train_batch)
