"""The compiled engine: every trial of a batch trained by a Numba loop, trials across threads.

It computes what the NumPy trainer computes, step for step, with plain loops for small
matrix products and scipy's BLAS for large ones, and a vectorizable exp instead of libm's, so
its numbers equal the NumPy engine's to about 1e-12 on well-behaved trials but not bit for
bit: a different exp or summation order moves the last bits, and a chaotic trial (a huge
learning rate, a saddle) can amplify that. The NumPy engine stays the default and the
oracle; this one is for speed.

Compiling is what a first run waits for, so the loop is compiled only for the pair of
activations and the variant a batch uses (its optimizer, weight decay, loss, held-out rows,
dropout: each an inlined helper picked when the loop is built, a no-op where unused), on first
use, for one set of argument types, without Numba's parallel machinery (Python threads share
out the trials, the kernel releasing the GIL), into a cache in the user's cache folder that
later runs load instead. What every kernel shares (the layers' products, the views of the
flat arrays) is compiled functions the kernels call, compiled once and cached on their own,
so a second kernel compiles only its own code. The cache is keyed by this
file, network.py (the activations' scalar forms) and nnsweep's version, so a kernel of other
sources is never loaded; see `cache_folder`.

Layout: all trials' weights live in one flat array, trial after trial and layer after layer;
a batch may mix hidden widths (depth, activations and descent are shared).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import math
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numba
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba.core import types
from numba.extending import intrinsic
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from nnsweep import network
from nnsweep.network import TABLE, ScalarForm, initial_weights, shuffle_generator, weight_shapes
from nnsweep.packing import pack
from nnsweep.params import TrialParams
from nnsweep.result import EpochLog, TrialResult
from nnsweep.trainer import checked_batch

if sys.platform != "win32":
    import fcntl

F = TypeVar("F", bound=Callable[..., Any])
Kernel = Any  # a Numba dispatcher

# contract: LLVM may fuse a * b + c into one rounding (exp's polynomial); numpy's error model
# drops the check for a division by zero, which keeps a loop with a division from vectorizing.
_OPTIONS: dict[str, Any] = {"nogil": True, "fastmath": {"contract"}, "error_model": "numpy"}


def _jit(fn: F) -> F:
    """njit: compiled once for every kernel of a process (and cached with them, see
    _shared_helpers), then linked into the kernel that calls it, where LLVM inlines it and
    vectorizes its loops with the code around them."""
    return cast(F, numba.njit(**_OPTIONS)(fn))


def _inlined(fn: F) -> F:
    """njit, its body put in its caller's by Numba: a function that may raise (log1p's
    domain check) and is called, not inlined, refers to its environment by address, and a
    kernel that holds an address cannot be cached."""
    return cast(F, numba.njit(inline="always", **_OPTIONS)(fn))


# Layers at least this wide loop over their outputs innermost; narrower ones over inputs.
WIDE = 8
# Matrix products of at least BLAS_MIN multiply-adds, each sum at least BLAS_SUM long, call
# BLAS (scipy's, through Numba); below either the loops win, a call costing more than the
# arithmetic, and BLAS's blocking gaining nothing on a sum of a few terms (XOR's 3 inputs).
BLAS_MIN = 4096
BLAS_SUM = 8
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


@_jit
def _exp(x: float) -> float:
    """exp(x) to within 2 ulp, nan staying nan."""
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


@_jit
def _unchanged(delta: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    """A derivative of 1: nothing to multiply."""


@functools.cache
def _activation_loop(name: str) -> Kernel:
    """z <- f(z) in place for rows of `width` units: the table's scalar form, for LLVM to
    vectorize in the kernel, or softmax over each row."""
    if name == "softmax":
        return _softmax
    f = _inlined(TABLE[name].scalar)

    @_inlined
    def loop(z: NDArray[np.float64], width: int) -> None:
        for j in range(z.size):
            z[j] = f(z[j], _exp)

    return loop


@_inlined
def _softmax(z: NDArray[np.float64], width: int) -> None:
    """Each row's exponentials over their sum, shifted by the row's largest value first, as
    network.softmax computes them."""
    for start in range(0, z.size, width):
        top = z[start]
        for j in range(start + 1, start + width):
            top = z[j] if z[j] > top else top
        total = 0.0
        for j in range(start, start + width):
            z[j] = _exp(z[j] - top)
            total += z[j]
        for j in range(start, start + width):
            z[j] = z[j] / total


@_inlined
def _softmax_score(p: NDArray[np.float64], y: NDArray[np.float64], n: int, width: int
                   ) -> tuple[float, float]:
    """The right answers of n rows of softmax outputs p (flat, rows of `width`) against
    one-hot targets y (the largest probability's class is the target's, the first of equal
    ones as numpy's argmax), and their summed cross-entropy, network.right_answers's and
    network.cross_entropy's rules."""
    right = 0.0
    cross = 0.0
    for i in range(n):
        row = i * width
        answer = 0
        target = 0
        for j in range(1, width):
            answer = j if p[row + j] > p[row + answer] else answer
            target = j if y[i, j] > y[i, target] else target
        right += 1.0 if answer == target else 0.0
        for j in range(width):
            if y[i, j] != 0:  # a term whose target weight is 0 is 0, whatever its log
                cross += -(y[i, j] * math.log(p[row + j]))
    return right, cross


@_inlined
def _sigmoid_score(p: NDArray[np.float64], y: NDArray[np.float64], n: int, width: int
                   ) -> tuple[float, float]:
    """Right (row, output) pairs, p > 0.5 against y > 0.5, and the summed cross-entropy
    -[y log p + (1 - y) log(1 - p)] of each output."""
    right = 0.0
    cross = 0.0
    for i in range(n):
        for j in range(width):
            q, t = p[i * width + j], y[i, j]
            right += 1.0 if (q > 0.5) == (t > 0.5) else 0.0
            term = -(t * math.log(q)) if t != 0 else 0.0
            rest = 1 - t
            cross += term + (-(rest * math.log(1 - q)) if rest != 0 else 0.0)
    return right, cross


@functools.cache
def _derivative_loop(name: str) -> Kernel:
    """delta *= f'(out), f' taken from the layer's output; nothing where it is 1."""
    form: ScalarForm | None = TABLE[name].scalar_deriv
    if form is None:
        return _unchanged
    f = _inlined(form)

    @_inlined
    def loop(delta: NDArray[np.float64], out: NDArray[np.float64]) -> None:
        for j in range(delta.size):
            delta[j] *= f(out[j], _exp)

    return loop


# A trial's settings as the kernel reads them: one row of `settings`, in this order.
SETTINGS: tuple[str, ...] = ("alpha", "weight_decay", "momentum", "beta1", "beta2", "eps",
                             "dropout")
ALPHA, WEIGHT_DECAY, MOMENTUM, BETA1, BETA2, EPS, DROPOUT = range(len(SETTINGS))


# The optimizers move one weight at a time, inside the one loop that updates a layer: a loop
# per feature would carry every weight, gradient and moment through the cache several times.

@_inlined
def _decayed(g: float, w: float, decay: float) -> float:
    """g + weight_decay * w, before the optimizer sees g."""
    return g + decay * w


@_inlined
def _momentum(g: float, first: NDArray[np.float64], j: int, momentum: float) -> float:
    """v = momentum * v + g, and v moves the weight."""
    velocity: float = momentum * first[j] + g
    first[j] = velocity
    return velocity


@_inlined
def _adam(g: float, first: NDArray[np.float64], second: NDArray[np.float64], j: int,
          settings: NDArray[np.float64], corrections: tuple[float, float]) -> float:
    """Adam's bias-corrected ratio of moments moves the weight. The corrections are this
    step's 1 / (1 - beta ** t), multiplied where the loop divides by 1 - beta ** t: a
    division costs as much as the rest of the update, and moves the result by an ulp."""
    beta1, beta2, eps = settings[BETA1], settings[BETA2], settings[EPS]
    mean: float = beta1 * first[j] + (1 - beta1) * g
    square: float = beta2 * second[j] + (1 - beta2) * (g * g)
    first[j], second[j] = mean, square
    ratio: float = (mean * corrections[0]) / (math.sqrt(square * corrections[1]) + eps)
    return ratio


@_inlined
def _advance_powers(powers: NDArray[np.float64], settings: NDArray[np.float64]
                    ) -> tuple[float, float]:
    """t one more: beta1 ** t and beta2 ** t as running products, as the loop keeps them;
    the step's bias corrections, 1 / (1 - beta ** t), for _adam."""
    powers[0] *= settings[BETA1]
    powers[1] *= settings[BETA2]
    return 1 / (1 - powers[0]), 1 / (1 - powers[1])


# splitmix64, as network.dropout_scales draws dropout's masks: the same bits, so the same masks.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)


@_jit
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64's finalizer, network._mix one value at a time."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@_inlined
def _dropout(out: NDArray[np.float64], scales: NDArray[np.float64],
             dropped: NDArray[np.float64], seed: int, step: int, layer: int,
             rate: float) -> None:
    """Inverted dropout's factors for one step's hidden layer (flat, rows of units), each
    the hash of (seed, step, layer, its place) that network.dropout_scales computes, and the
    output times them, which the next layer takes in."""
    key = _mix(_mix(_mix(np.uint64(seed) + _GOLDEN) ^ np.uint64(step)) ^ np.uint64(layer))
    kept = 1.0 / (1 - rate)
    for j in range(out.size):
        bits = _mix(key + np.uint64(j + 1) * _GOLDEN)
        uniform = np.float64(bits >> _S11) * 2.0**-53  # [0, 1)
        scales[j] = kept if uniform >= rate else 0.0
        dropped[j] = out[j] * scales[j]


@_inlined
def _times_scales(back: NDArray[np.float64], scales: NDArray[np.float64]) -> None:
    """The error backpropagated through dropped units: times their factors, 0 or 1/(1-p)."""
    for j in range(back.size):
        back[j] *= scales[j]

@dataclass(frozen=True)
class Variant:
    """What a kernel is built to train besides its pair of activations, all fixed by a batch
    key: each feature is compiled in only where a batch uses it, so the plain loop compiles
    and runs as it did, and a sweep compiles only the variants it trains."""

    optimizer: str = "sgd"
    decay: bool = False  # weight_decay > 0
    classifier: bool = False  # loss = "cross_entropy": delta p - y, accuracy, cross-entropy
    validating: bool = False  # a forward pass on held-out rows at the recorded epochs
    dropout: bool = False  # dropout > 0 on hidden layers

    @classmethod
    def of(cls, trial: TrialParams, validating: bool = False) -> Variant:
        return cls(trial.optimizer, trial.weight_decay > 0, trial.classifier, validating,
                   trial.dropout > 0 and len(trial.hidden) > 0)

    @property
    def name(self) -> str:
        """The features in a kernel's name (and so its cache file): none for the plain loop."""
        parts = [] if self.optimizer == "sgd" else [self.optimizer]
        parts += ["decay"] if self.decay else []
        parts += ["xent"] if self.classifier else []
        parts += ["val"] if self.validating else []
        parts += ["dropout"] if self.dropout else []
        return "".join(f"_{part}" for part in parts)


PLAIN = Variant()


@_jit
def _by_blas(rows: int, summed: int, cols: int) -> bool:
    """Whether the product of a (rows, summed) and a (summed, cols) matrix calls BLAS."""
    return summed >= BLAS_SUM and rows * summed * cols >= BLAS_MIN


# Numba's own gateway to scipy's dgemm (what np.dot calls), called directly: np.dot compiles
# anew for each layout of its operands, 0.3 s or more of a kernel's compile for each of the
# three (a transpose is an F-ordered array to it); this is one function of C-ordered arrays.
_XXGEMM = cast(Callable[..., int], types.ExternalFunction("numba_xxgemm", types.intc(
    types.int8, types.int8, types.int8,  # kind, transpose a, transpose b
    types.intp, types.intp, types.intp,  # m, n, k
    types.uintp, types.uintp, types.intp, types.uintp, types.intp,  # &alpha, a, lda, b, ldb
    types.uintp, types.uintp, types.intp)))  # &beta, c, ldc
_DOUBLE, _AS_IS, _TRANSPOSED = np.int8(ord("d")), np.int8(ord("n")), np.int8(ord("t"))


@_jit
def _product(a: NDArray[np.float64], transpose_a: np.int8, b: NDArray[np.float64],
             transpose_b: np.int8, out: NDArray[np.float64], one_zero: NDArray[np.float64]
             ) -> None:
    """out = a @ b, each transposed where asked (_TRANSPOSED, else _AS_IS), by BLAS; every
    array C-ordered, none empty, one_zero holding 1.0 and 0.0. BLAS reads its arrays by
    columns: the product asked for is out.T = b.T @ a.T, which is what it sees in these rows.
    The flags are codes, not bools: a literal True or False is a type of its own to Numba,
    which would compile this once for each of the three ways it is called."""
    rows, cols = out.shape
    summed = a.shape[0] if transpose_a == _TRANSPOSED else a.shape[1]
    _XXGEMM(_DOUBLE, transpose_b, transpose_a, cols, rows, summed,
            one_zero.ctypes.data, b.ctypes.data, b.shape[1], a.ctypes.data, a.shape[1],
            one_zero.ctypes.data + 8, out.ctypes.data, cols)


@_jit
def _views(buffer: NDArray[np.float64], starts: NDArray[np.int64], rows: int,
           units: NDArray[np.int64]) -> list[NDArray[np.float64]]:
    """Each layer's part of a buffer of layer outputs, as (rows, units) views: compiled once
    and called, where a list built in the loop for each buffer costs a second of compiling."""
    return [buffer[starts[layer] : starts[layer] + rows * units[layer + 1]]
            .reshape((rows, units[layer + 1])) for layer in range(units.size - 1)]


@_jit
def _matrices(flat: NDArray[np.float64], offsets: NDArray[np.int64], units: NDArray[np.int64],
              extra: int) -> list[NDArray[np.float64]]:
    """Each layer's weights (or gradient) in a flat array, as (fan_in + bias, fan_out) views:
    compiled once and called, as _views is."""
    return [flat[offsets[layer] : offsets[layer + 1]].reshape((units[layer] + extra,
                                                                 units[layer + 1]))
            for layer in range(units.size - 1)]


# A layer's three products are functions the kernels call, not code in each kernel: Numba types
# and lowers them once for every kernel of a process (LLVM still inlines them into each).

@_jit
def _forward(source: NDArray[np.float64], w: NDArray[np.float64], out: NDArray[np.float64],
             bias: bool, one_zero: NDArray[np.float64]) -> None:
    """out = source @ w, w's last row added where bias: (n, fan_in) @ (fan_in, fan_out)."""
    n, fan_in = source.shape
    fan_out = out.shape[1]
    # The longer inner loop is the one that vectorizes.
    if _by_blas(n, fan_in, fan_out):
        _product(source, _AS_IS, w[:fan_in], _AS_IS, out, one_zero)
    elif fan_out >= WIDE:  # the first term assigned, the others added in order
        for i in range(n):
            a = source[i, 0]
            for j in range(fan_out):
                out[i, j] = a * w[0, j]
            for k in range(1, fan_in):
                a = source[i, k]
                for j in range(fan_out):
                    out[i, j] += a * w[k, j]
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
                out[i, j] = (s0 + s1) + (s2 + s3)
    if bias:
        for i in range(n):
            for j in range(fan_out):
                out[i, j] += w[fan_in, j]


@_jit
def _gradient(source: NDArray[np.float64], delta: NDArray[np.float64], g: NDArray[np.float64],
              flat_g: NDArray[np.float64], bias: bool, one_zero: NDArray[np.float64]) -> None:
    """g = source.T @ delta, summed over the rows in order, the bias row delta's sums; flat_g
    is g's memory as one row."""
    n, fan_in = source.shape
    fan_out = delta.shape[1]
    if fan_out == 1:  # the flat arrays are the column: contiguous loops
        d = delta[0, 0]
        for k in range(fan_in):
            flat_g[k] = source[0, k] * d
        if bias:
            flat_g[fan_in] = d
        for i in range(1, n):
            d = delta[i, 0]
            for k in range(fan_in):
                flat_g[k] += source[i, k] * d
            if bias:
                flat_g[fan_in] += d
        return
    if _by_blas(fan_in, n, fan_out):
        _product(source, _TRANSPOSED, delta, _AS_IS, g[:fan_in], one_zero)
        if bias:
            for j in range(fan_out):
                g[fan_in, j] = delta[0, j]
            for i in range(1, n):
                for j in range(fan_out):
                    g[fan_in, j] += delta[i, j]
        return
    for j in range(flat_g.size):
        flat_g[j] = 0.0
    for i in range(n):
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


@_jit
def _backward(delta: NDArray[np.float64], w: NDArray[np.float64], flat_w: NDArray[np.float64],
              back: NDArray[np.float64], back2: NDArray[np.float64],
              one_zero: NDArray[np.float64]) -> None:
    """The error of the layer below, back2 = delta @ w.T without the bias row (back: back2's
    memory as one row, flat_w: w's)."""
    n, fan_out = delta.shape
    fan_in = back2.shape[1]
    if fan_out == 1:  # one product per sum: written, as numpy multiplies
        for i in range(n):
            d = delta[i, 0]
            for k in range(fan_in):
                back2[i, k] = d * flat_w[k]
    elif _by_blas(n, fan_out, fan_in):
        _product(delta, _AS_IS, w[:fan_in], _TRANSPOSED, back2, one_zero)
    else:
        for k in range(back.size):
            back[k] = 0.0
        for i in range(n):
            for j in range(fan_out):
                d = delta[i, j]
                for k in range(fan_in):
                    back2[i, k] += d * w[k, j]


def _held_out_pass(hidden: str, output: str, classifier: bool) -> Kernel:
    """The pass over held-out rows at a recorded epoch: a forward pass with the weights as
    they are (no dropout), its sums of squared and absolute errors, right answers and
    cross-entropy into row e of `held` (4, as EpochLog.absorb_validation takes them)."""
    activate_hidden, activate_output = _activation_loop(hidden), _activation_loop(output)
    score = _softmax_score if output == "softmax" else _sigmoid_score

    @_inlined
    def held_out_pass(x: NDArray[np.float64], y: NDArray[np.float64],
                      weights: NDArray[np.float64], offsets: NDArray[np.int64],
                      units: NDArray[np.int64], bias: bool, buffer: NDArray[np.float64],
                      held: NDArray[np.float64], e: int) -> None:
        rows, n_outputs = y.shape
        depth = units.size - 1
        below = 0  # where the layer's input starts in `buffer` (from layer 1)
        start = 0
        for layer in range(depth):
            fan_in, fan_out = units[layer], units[layer + 1]
            w = weights[offsets[layer] : offsets[layer + 1]]  # (fan_in + bias, fan_out) flat
            for i in range(rows):
                for j in range(fan_out):
                    total = 0.0
                    for k in range(fan_in):
                        a = x[i, k] if layer == 0 else buffer[below + i * fan_in + k]
                        total += a * w[k * fan_out + j]
                    if bias:
                        total += w[fan_in * fan_out + j]
                    buffer[start + i * fan_out + j] = total
            out = buffer[start : start + rows * fan_out]  # (rows, fan_out) flat
            if layer == depth - 1:
                activate_output(out, fan_out)
            else:
                activate_hidden(out, fan_out)
            below = start
            start += rows * fan_out
        sse = 0.0
        abs_sum = 0.0
        for i in range(rows):
            for j in range(n_outputs):
                err = buffer[below + i * n_outputs + j] - y[i, j]
                sse += err * err
                abs_sum += abs(err)
        held[e, 0] = sse
        held[e, 1] = abs_sum
        if classifier:
            held[e, 2], held[e, 3] = score(buffer[below : below + rows * n_outputs], y, rows,
                                           n_outputs)

    return held_out_pass


# --- where compiled kernels are kept ------------------------------------------------------

# The one set of argument types a kernel is compiled for: C-ordered arrays, as train_batch
# passes them, the data read-only.
_F1, _F2 = types.float64[::1], types.float64[:, ::1]
_I1, _I2 = types.int64[::1], types.int64[:, ::1]
_DATA = types.Array(types.float64, 2, "C", readonly=True)
SIGNATURE = types.boolean(_DATA, _DATA, _I2, _F1, _I1, _I1, _F1, _F1, _F1, _I1, types.boolean,
                          types.boolean, types.int64, _F1, types.int64, _F1, _F1, _F2,
                          types.boolean[::1], _DATA, _DATA, _F2, types.int64)


@functools.cache
def source_stamp() -> str:
    """What a compiled kernel depends on besides Numba and the machine (which Numba's own key
    holds): nnsweep's version, this file and network.py, whose scalar forms it compiles."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    with contextlib.suppress(PackageNotFoundError):
        digest.update(version("nnsweep").encode())
    for path in (__file__, network.__file__):
        digest.update(b"\0" + Path(path).read_bytes())
    return digest.hexdigest()[:20]


def _cache_roots() -> list[Path]:
    """Candidate folders, best first: NUMBA_CACHE_DIR (Numba's own setting), the user's cache
    folder (XDG_CACHE_HOME or ~/.cache), a folder of this user's in the temporary folder."""
    roots = []
    if numba_dir := os.environ.get("NUMBA_CACHE_DIR"):
        roots.append(Path(numba_dir) / "nnsweep")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    home = os.path.expanduser("~")
    if os.path.isabs(xdg):
        roots.append(Path(xdg) / "nnsweep" / "numba")
    elif os.path.isabs(home):
        roots.append(Path(home) / ".cache" / "nnsweep" / "numba")
    user = f"-{os.getuid()}" if hasattr(os, "getuid") else ""  # Windows: a temp folder per user
    roots.append(Path(tempfile.gettempdir()) / f"nnsweep-numba{user}")
    return roots


def _private(folder: Path) -> bool:
    """Whether only this user can write the folder: a cached kernel is code that is run."""
    if not hasattr(os, "getuid"):
        return True
    info = folder.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


@functools.cache
def cache_folder() -> Path | None:
    """The folder compiled kernels are kept in: the first candidate root this user can create
    and write, one subfolder per source stamp (so that two installs never evict each other's
    kernels); None when there is none, and kernels compile in every process."""
    for root in _cache_roots():
        folder = root / source_stamp()
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
            if not (_private(root) and _private(folder)):
                continue
            tempfile.TemporaryFile(dir=folder).close()
        except OSError:
            continue
        return folder
    return None


@contextlib.contextmanager
def _compiling(folder: Path | None, name: str) -> Iterator[None]:
    """Hold the lock of kernel `name` in the cache folder: one process at a time compiles it,
    and the others then load what it wrote (kernels of other names compile meanwhile). Numba
    rewrites a kernel's whole index when it adds an entry, so two processes writing at once
    could lose one's entry or pair it with the other's code."""
    if folder is None or sys.platform == "win32":
        yield
        return
    try:
        handle = open(folder / f"{name}.lock", "a")  # noqa: SIM115 - held across the yield
    except OSError:
        yield
        return
    with handle:
        with contextlib.suppress(OSError):  # no locks on this file system: as if unlocked
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@functools.cache
def _cache_class() -> Any:
    """Numba's cache of compiled functions, placed in cache_folder() and stamped with
    source_stamp(); None for a Numba whose caching works otherwise (kernels then compile in
    every process rather than risk a stale one). Built on first use: Numba's internals."""
    try:
        from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator
    except ImportError:
        return None

    class Locator(_CacheLocator):
        def __init__(self, folder: Path, py_file: str) -> None:
            self._folder = folder
            self._py_file = py_file  # where Numba's warnings point

        def get_cache_path(self) -> str:
            return str(self._folder)

        def get_source_stamp(self) -> str:
            return source_stamp()

        def get_disambiguator(self) -> str:
            return "0"  # a kernel's name says which pair of activations it trains

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Locator | None:
            folder = cache_folder()
            return None if folder is None else cls(folder, py_file)

    class Impl(CompileResultCacheImpl):
        _locator_classes = [cast(Any, Locator)]  # noqa: RUF012 - as Numba declares it

    class KernelCache(FunctionCache):
        _impl_class = Impl
        locator_class = Locator

        def _index_key(self, sig: Any, codegen: Any) -> tuple[Any, ...]:
            """Numba's key, but naming the kernel where Numba pickles its closure: that holds
            dispatchers, which pickle differently in every process; the kernel's name and
            the source stamp say what they are."""
            code = hashlib.sha256(self._py_func.__code__.co_code).hexdigest()
            return (sig, codegen.magic_tuple(), (code, self._py_func.__qualname__))

    return KernelCache


def _cached(kernel: Kernel) -> Kernel:
    """The kernel with our cache, or as it is (compiled in every process) where our cache
    cannot be set up: no folder, or a Numba whose caching works otherwise."""
    cache_class = _cache_class()
    if cache_class is None or cache_folder() is None:
        return kernel
    try:
        cache = cache_class(kernel.py_func)
    except (RuntimeError, OSError):
        return kernel
    if not isinstance(cache._impl.locator, cache_class.locator_class):  # another was asked
        return kernel  # for (NUMBA_CACHE_LOCATOR_CLASSES), which knows nothing of network.py
    kernel._cache = cache
    return kernel


def kernel(hidden: str, output: str, variant: Variant = PLAIN) -> Kernel:
    """The training loop for one pair of activations and one variant, loaded from the cache
    or compiled (and cached) on first use in this process, for SIGNATURE only."""
    return _kernel(hidden, output, variant)


# The compiled helpers every kernel calls, each for the one set of argument types it is called
# with: compiled (or loaded) before any kernel, so that every kernel shares them.
_HELPERS: tuple[tuple[Kernel, tuple[Any, ...]], ...] = (
    (_exp, (types.float64,)),
    (_mix, (types.uint64,)),
    (_by_blas, (types.int64, types.int64, types.int64)),
    (_product, (_F2, types.int8, _F2, types.int8, _F2, _F1)),
    (_views, (_F1, _I1, types.int64, _I1)),
    (_matrices, (_F1, _I1, _I1, types.int64)),
    (_forward, (_F2, _F2, _F2, types.boolean, _F1)),
    (_gradient, (_F2, _F2, _F2, _F1, types.boolean, _F1)),
    (_backward, (_F2, _F2, _F1, _F1, _F2, _F1)),
)


@functools.cache
def _shared_helpers() -> None:
    """Compile the helpers into the cache folder, or load them from it, under their own lock:
    the second kernel a user compiles (another variant, another pair of activations) then
    compiles only its own code, a third less than the first."""
    with _compiling(cache_folder(), "helpers"):
        for helper, argument_types in _HELPERS:
            _cached(helper).compile(argument_types)


@functools.cache
def _kernel(hidden: str, output: str, variant: Variant) -> Kernel:
    """kernel's, once per process whichever way its arguments are spelled."""
    _shared_helpers()
    compiled = _cached(_training_loop(hidden, output, variant))
    with _compiling(cache_folder(), compiled.py_func.__qualname__):
        compiled.compile(SIGNATURE)
    compiled.disable_compile()  # other argument types are a bug here, not a second compile
    return compiled


def is_cached(hidden: str, output: str, variant: Variant = PLAIN) -> bool:
    """Whether the kernel would load from the cache, not compile (without loading it)."""
    loop = _cached(_training_loop(hidden, output, variant))
    cache = loop._cache
    if _cache_class() is None or not isinstance(cache, _cache_class()):
        return False
    key = cache._index_key(SIGNATURE, loop.targetctx.codegen())
    try:
        return key in cache._cache_file._load_index()
    except (OSError, EOFError, pickle.UnpicklingError):  # torn by hand: it compiles anew
        return False


def _training_loop(hidden: str, output: str, variant: Variant) -> Kernel:
    """The loop that trains one trial through a chunk of epochs, with the pair's activations
    and derivatives and the variant's features built in (not compiled yet): a loop for every
    pair and feature at once, chosen at run time, would compile for several times as long."""
    activate_hidden, activate_output = _activation_loop(hidden), _activation_loop(output)
    times_hidden_derivative = _derivative_loop(hidden)
    times_output_derivative = _unchanged if variant.classifier else _derivative_loop(output)
    score = _softmax_score if output == "softmax" else _sigmoid_score
    held_out_pass = _held_out_pass(hidden, output, variant.classifier)
    # Each feature's code sits under one of these flags, constants of the loop's closure:
    # Numba prunes the branches of a false one before typing, so it costs nothing to compile.
    decay, classifier, validating, dropout = (
        variant.decay, variant.classifier, variant.validating, variant.dropout)
    momentum, adam = variant.optimizer == "momentum", variant.optimizer == "adam"

    def train(
        x: NDArray[np.float64],  # (rows, inputs)
        y: NDArray[np.float64],  # (rows, outputs)
        orders: NDArray[np.int64],  # (epochs in chunk, rows) or (1, rows): each epoch's row order
        weights: NDArray[np.float64],  # this trial's weights, flat, layer after layer
        changes: NDArray[np.int64],  # (weights.size,)
        previous_up: NDArray[np.int64],  # (weights.size,) 1 where the last update went up
        first: NDArray[np.float64],  # (weights.size,) momentum's velocity, Adam's m; or (0,)
        second: NDArray[np.float64],  # (weights.size,) Adam's v; or (0,)
        powers: NDArray[np.float64],  # (2,) Adam's beta1 ** t, beta2 ** t
        units: NDArray[np.int64],  # (depth + 1,) units per layer, input first, no bias
        bias: bool,
        mean: bool,
        step_rows: int,
        settings: NDArray[np.float64],  # (len(SETTINGS),) alpha, weight_decay, ...
        first_epoch: int,
        sse_out: NDArray[np.float64],  # (epochs in chunk,) each epoch's sum of squared errors
        abs_out: NDArray[np.float64],  # (epochs in chunk,) and of absolute errors
        scores_out: NDArray[np.float64],  # (2, epochs in chunk) right answers, cross-entropy
        recorded: NDArray[np.bool_],  # (epochs in chunk,) the epochs measured on held-out rows
        x_held: NDArray[np.float64],  # (held-out rows, inputs), or none
        y_held: NDArray[np.float64],  # (held-out rows, outputs)
        held_out: NDArray[np.float64],  # (epochs in chunk, 4) their sse, abs, right, cross
        seed: int,  # the trial's, which dropout's masks hash
    ) -> bool:
        """Train one trial through a chunk of epochs; True once its errors stop being finite."""
        rows, n_outputs = y.shape
        depth = units.size - 1
        alpha = settings[ALPHA]
        weight_decay, momentum_rate = settings[WEIGHT_DECAY], settings[MOMENTUM]
        extra = 1 if bias else 0
        # np.empty and a first element, not np.zeros: one allocator less to compile
        offsets = np.empty(depth + 1, dtype=np.int64)  # weights of layer l: offsets[l]:offsets[l+1]
        act_offsets = np.empty(depth + 1, dtype=np.int64)  # outputs of layer l in `acts`
        offsets[0] = act_offsets[0] = 0
        for layer in range(depth):
            offsets[layer + 1] = offsets[layer] + (units[layer] + extra) * units[layer + 1]
            act_offsets[layer + 1] = act_offsets[layer] + step_rows * units[layer + 1]
        acts = np.empty(act_offsets[depth])  # every layer's output for the step's rows
        deltas = np.empty(act_offsets[depth])
        grad = np.empty(offsets[depth])
        inputs = np.empty((step_rows, units[0]))
        if validating:  # the held-out rows' outputs of every layer
            held_buffer = np.empty(x_held.shape[0] * (act_offsets[depth] // step_rows))
        targets = np.empty((step_rows, n_outputs))
        one_zero = np.empty(2)  # BLAS's alpha and beta, which it takes by address
        one_zero[0], one_zero[1] = 1.0, 0.0
        started = first_epoch > 0
        # 2-D views made once: a reshape inside the step loop costs more than a small layer
        last_rows = rows - (rows - 1) // step_rows * step_rows  # the last step's rows
        w2 = _matrices(weights, offsets, units, extra)
        g2 = _matrices(grad, offsets, units, extra)
        acts_full = _views(acts, act_offsets, step_rows, units)
        acts_last = _views(acts, act_offsets, last_rows, units)
        deltas_full = _views(deltas, act_offsets, step_rows, units)
        deltas_last = _views(deltas, act_offsets, last_rows, units)
        if dropout:  # what each layer passes on, its output dropped out, and the factors
            rate = settings[DROPOUT]
            steps = (rows + step_rows - 1) // step_rows  # update steps per epoch
            dropped = np.empty(act_offsets[depth])
            scales = np.empty(act_offsets[depth])
            ins_full = _views(dropped, act_offsets, step_rows, units)
            ins_last = _views(dropped, act_offsets, last_rows, units)

        for e in range(sse_out.size):
            order = orders[e if orders.shape[0] > 1 else 0]  # (rows,)
            sse = 0.0
            abs_sum = 0.0
            if classifier:
                right = 0.0
                cross = 0.0
            for start in range(0, rows, step_rows):
                n = min(step_rows, rows - start)
                for i in range(n):
                    row = order[start + i]
                    for c in range(units[0]):  # plain loops: slice assignment costs more here
                        inputs[i, c] = x[row, c]
                    for c in range(n_outputs):
                        targets[i, c] = y[row, c]

                act2 = acts_full if n == step_rows else acts_last
                if dropout:
                    in2 = ins_full if n == step_rows else ins_last
                    step = (first_epoch + e) * steps + start // step_rows  # from 0
                else:
                    in2 = act2
                delta2 = deltas_full if n == step_rows else deltas_last
                for layer in range(depth):  # forward: out = f(input @ w), rows of n
                    fan_out = units[layer + 1]
                    w = w2[layer]
                    out = acts[act_offsets[layer] : act_offsets[layer] + n * fan_out]
                    out2 = act2[layer]
                    source = inputs[:n] if layer == 0 else in2[layer - 1]
                    _forward(source, w, out2, bias, one_zero)
                    if layer == depth - 1:
                        activate_output(out, fan_out)
                    else:
                        activate_hidden(out, fan_out)
                        if dropout:
                            place = act_offsets[layer]
                            _dropout(out, scales[place : place + n * fan_out],
                                     dropped[place : place + n * fan_out], seed, step, layer,
                                     rate)

                last = act_offsets[depth - 1]
                for i in range(n):
                    for j in range(n_outputs):
                        err = acts[last + i * n_outputs + j] - targets[i, j]
                        sse += err * err
                        abs_sum += abs(err)
                        deltas[last + i * n_outputs + j] = err
                if classifier:
                    step_right, step_cross = score(acts[last : last + n * n_outputs], targets,
                                                   n, n_outputs)
                    right += step_right
                    cross += step_cross
                times_output_derivative(deltas[last : last + n * n_outputs],
                                        acts[last : last + n * n_outputs])

                if adam:
                    corrections = _advance_powers(powers, settings)
                for layer in range(depth - 1, -1, -1):  # backward, then this layer's update
                    fan_in, fan_out = units[layer], units[layer + 1]
                    delta = delta2[layer]
                    source = inputs[:n] if layer == 0 else in2[layer - 1]
                    flat_w = weights[offsets[layer] : offsets[layer + 1]]
                    flat_g = grad[offsets[layer] : offsets[layer + 1]]
                    _gradient(source, delta, g2[layer], flat_g, bias, one_zero)
                    if layer > 0:  # delta of the layer below: (delta @ w.T) * f'(out below)
                        below = act_offsets[layer - 1]
                        back = deltas[below : below + n * fan_in]
                        out_below = acts[below : below + n * fan_in]
                        _backward(delta, w2[layer], flat_w, back, delta2[layer - 1], one_zero)
                        if dropout:
                            _times_scales(back, scales[below : below + n * fan_in])
                        times_hidden_derivative(back, out_below)
                    count = changes[offsets[layer] : offsets[layer + 1]]
                    was_up = previous_up[offsets[layer] : offsets[layer + 1]]
                    moment1 = first[offsets[layer] : offsets[layer + 1]]  # empty for sgd
                    moment2 = second[offsets[layer] : offsets[layer + 1]]  # empty but Adam
                    counting = 1 if started else 0  # the first step has no step before it
                    # 1 / n, not a division per weight: exact where n is a power of two (as
                    # minibatches often are), an ulp at most from the loop's g / n elsewhere
                    scale = 1 / n if mean else 1.0
                    # 64-bit lanes throughout and no branches, so this loop vectorizes
                    for j in range(flat_w.size):
                        move = flat_g[j] * scale
                        if decay:
                            move = _decayed(move, flat_w[j], weight_decay)
                        if momentum:
                            move = _momentum(move, moment1, j, momentum_rate)
                        if adam:
                            move = _adam(move, moment1, moment2, j, settings, corrections)
                        up = 1 if move < 0 else 0  # the update goes up: -move > 0
                        count[j] += (up ^ was_up[j]) * counting
                        was_up[j] = up
                        flat_w[j] -= alpha * move
                started = True

            sse_out[e] = sse
            abs_out[e] = abs_sum
            if classifier:
                scores_out[0, e] = right
                scores_out[1, e] = cross
            if not math.isfinite(sse):
                return True
            if validating and recorded[e]:
                held_out_pass(x_held, y_held, weights, offsets, units, bias, held_buffer,
                              held_out, e)
        return False

    train.__qualname__ = f"train_{hidden}_{output}{variant.name}"  # the cache's file and key
    return numba.njit(**_OPTIONS)(train)


def _schedule(costs: Sequence[float], threads: int) -> list[list[int]]:
    """Trials dealt to threads by cost, so that uneven trials finish together."""
    bins, _ = pack(costs, min(threads, len(costs)))
    return [list(members) for members in bins if members]


@dataclass(frozen=True)
class _Batch:
    """A batch's arrays as the kernel takes them, every trial's flat and one after another
    (starts: where each trial's weights begin), and what is fixed for all of its trials."""

    x: NDArray[np.float64]  # (rows, inputs), read-only
    y: NDArray[np.float64]  # (rows, outputs), read-only
    weights: NDArray[np.float64]  # (N,)
    changes: NDArray[np.int64]  # (N,)
    previous_up: NDArray[np.int64]  # (N,)
    first: NDArray[np.float64]  # (N,) the optimizer's memory, or (0,) for sgd
    second: NDArray[np.float64]  # (N,) Adam's second moment, or (0,)
    powers: NDArray[np.float64]  # (B, 2)
    starts: NDArray[np.int64]  # (B + 1,)
    units: NDArray[np.int64]  # (B, depth + 1)
    settings: NDArray[np.float64]  # (B, len(SETTINGS))
    seeds: NDArray[np.int64]  # (B,)
    x_held: NDArray[np.float64]  # (held-out rows, inputs), read-only; (0, inputs) without
    y_held: NDArray[np.float64]  # (held-out rows, outputs)
    bias: bool
    mean: bool
    step_rows: int


@dataclass(frozen=True)
class _Chunk:
    """A chunk of epochs: the row orders it trains in and where its sums go."""

    first_epoch: int
    orders: NDArray[np.int64]  # (B, count, rows) shuffled, or (1, 1, rows)
    sse: NDArray[np.float64]  # (B, count) nan after a trial stops
    abs_sum: NDArray[np.float64]  # (B, count)
    scores: NDArray[np.float64]  # (B, 2, count) a classifier's right answers and cross-entropy
    recorded: NDArray[np.bool_]  # (count,) the epochs measured on held-out rows
    held_out: NDArray[np.float64]  # (B, count, 4) sse, abs, right, cross on held-out rows


def _train_share(train: Kernel, batch: _Batch, chunk: _Chunk, stopped: NDArray[np.bool_],
                 members: Sequence[int]) -> None:
    """One thread's trials through a chunk of epochs; a trial that diverged trains no more."""
    orders = chunk.orders
    for b in members:
        if stopped[b]:
            continue
        lo, hi = batch.starts[b], batch.starts[b + 1]
        stopped[b] = train(batch.x, batch.y, orders[b if orders.shape[0] > 1 else 0],
                           batch.weights[lo:hi], batch.changes[lo:hi], batch.previous_up[lo:hi],
                           batch.first[lo:hi], batch.second[lo:hi], batch.powers[b],
                           batch.units[b], batch.bias, batch.mean, batch.step_rows,
                           batch.settings[b], chunk.first_epoch, chunk.sse[b], chunk.abs_sum[b],
                           chunk.scores[b], chunk.recorded, batch.x_held, batch.y_held,
                           chunk.held_out[b], batch.seeds[b])


def _one_blas_thread() -> threadpool_limits:
    """BLAS on one thread while the kernels run: the trials already share the cores out, and
    OpenBLAS threading each of two concurrent products makes them wait on each other (a
    batch of width 256 took 30 times as long). The kernels' BLAS is scipy's, loaded here so
    that the limit reaches it (Numba loads it on a kernel's first product otherwise)."""
    importlib.import_module("scipy.linalg.cython_blas")
    return threadpool_limits(limits=1, user_api="blas")


def _read_only(data: ArrayLike) -> NDArray[np.float64]:
    """C-ordered float64 as SIGNATURE has the data, a read-only view whatever the caller's."""
    view = np.ascontiguousarray(data, dtype=np.float64).view()
    view.setflags(write=False)
    return view


def train_batch(
    x_data: ArrayLike, y_data: ArrayLike, trials: Sequence[TrialParams],
    validation: tuple[ArrayLike, ArrayLike] | None = None,
) -> list[TrialResult]:
    """Train every trial on the same data; one result per trial, in order. With `validation`
    (x, y), each trial's errors on those rows are kept at its recorded epochs.

    Trials must share a batch key (depth, activations, descent, optimizer, ...); widths,
    alpha and the optimizer's settings, seed, init and tolerance may vary.
    """
    if not trials:
        return []
    x, y = (_read_only(data) for data in checked_batch(x_data, y_data, trials))
    first = trials[0]
    variant = Variant.of(first, validation is not None)
    train = kernel(first.activation, first.output, variant)
    rows, n_inputs = x.shape
    n_outputs = y.shape[1]
    B = len(trials)

    starting = [initial_weights(t, n_inputs, n_outputs) for t in trials]
    sizes = [sum(w.size for w in ws) for ws in starting]
    weights = np.concatenate([w.ravel() for ws in starting for w in ws])  # (N,)
    batch = _Batch(
        x=x, y=y, weights=weights,
        changes=np.zeros(weights.size, dtype=np.int64),
        previous_up=np.zeros(weights.size, dtype=np.int64),
        first=np.zeros(0 if variant.optimizer == "sgd" else weights.size),
        second=np.zeros(weights.size if variant.optimizer == "adam" else 0),
        powers=np.ones((B, 2)),
        starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        units=np.array([[n_inputs, *t.hidden, n_outputs] for t in trials], dtype=np.int64),
        settings=np.array([[getattr(t, name) for name in SETTINGS] for t in trials]),
        seeds=np.array([t.seed for t in trials], dtype=np.int64),
        x_held=_read_only(validation[0] if validation is not None else np.empty((0, n_inputs))),
        y_held=_read_only(validation[1] if validation is not None
                          else np.empty((0, n_outputs))),
        bias=first.bias, mean=first.reduction == "mean", step_rows=first.rows_per_step(rows))
    schedule = _schedule([size * t.rows_per_step(rows) for size, t in zip(sizes, trials,
                                                                         strict=True)],
                         numba.get_num_threads())
    shuffled = first.shuffle and first.descent != "full"
    epochs = first.epochs
    per_epoch = B * (16 + (8 * rows if shuffled else 0))  # bytes of errors and orders
    chunk = max(1, min(epochs, CHUNK_BYTES // per_epoch))
    shufflers = [shuffle_generator(t.seed) for t in trials] if shuffled else []
    in_order = np.arange(rows, dtype=np.int64).reshape(1, 1, rows)  # (1, 1, rows)
    log = EpochLog(trials, rows * n_outputs, rows)
    if variant.validating:
        log.validating(batch.y_held.size, len(batch.y_held))
    stopped = np.zeros(B, dtype=np.bool_)
    with _one_blas_thread(), ThreadPoolExecutor(len(schedule)) as pool:
        for first_epoch in range(0, epochs, chunk):
            count = min(chunk, epochs - first_epoch)
            part = _Chunk(
                first_epoch=first_epoch,
                orders=in_order if not shuffled else np.array(
                    [[g.permutation(rows) for _ in range(count)] for g in shufflers],
                    dtype=np.int64),  # (B, count, rows)
                sse=np.full((B, count), np.nan), abs_sum=np.full((B, count), np.nan),
                scores=np.full((B, 2, count if variant.classifier else 0), np.nan),
                recorded=np.array([variant.validating and log.is_recorded(first_epoch + e)
                                   for e in range(count)], dtype=np.bool_),
                held_out=np.full((B, count if variant.validating else 0, 4), np.nan))
            share = functools.partial(_train_share, train, batch, part, stopped)
            list(pool.map(share, schedule))  # list: a thread's exception is raised here
            scored = part.scores.transpose(1, 2, 0) if variant.classifier else (None, None)
            log.absorb(part.sse.T, part.abs_sum.T, *scored)  # (count, B) each
            for e in np.flatnonzero(part.recorded):
                held = part.held_out[:, e]  # (B, 4)
                log.absorb_validation(first_epoch + int(e), held[:, 0], held[:, 1],
                                      *((held[:, 2], held[:, 3]) if variant.classifier
                                        else (None, None)))

    finals, counts = [], []
    for b, trial in enumerate(trials):
        shapes = weight_shapes(trial, n_inputs, n_outputs)
        bounds = np.cumsum([0, *(r * c for r, c in shapes)]) + batch.starts[b]
        cut = [(slice(int(lo), int(hi)), shape)
               for lo, hi, shape in zip(bounds[:-1], bounds[1:], shapes, strict=True)]
        finals.append([weights[s].reshape(shape) for s, shape in cut])
        counts.append([batch.changes[s].reshape(shape) for s, shape in cut])
    return log.results(finals, counts)


class NumbaEngine:
    """The compiled engine: the numba extra, for speed."""

    name = "numba"

    @staticmethod
    def train_batch(x: ArrayLike, y: ArrayLike, trials: Sequence[TrialParams], *,
                    validation: tuple[ArrayLike, ArrayLike] | None = None
                    ) -> list[TrialResult]:
        return train_batch(x, y, trials, validation)
