"""What a network is: its activations, weight shapes, starting weights, row order, forward pass.

Every engine draws from here and has no arithmetic of its own for these: the plain loop
(reference.py) and the NumPy trainer call the activation table's array forms, the Numba engine
compiles its scalar forms, so the engines cannot drift apart in what decides a trial's numbers.
The array forms work on 2-D (rows, units) and batched 3-D (B, rows, units) arrays alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from nnsweep.params import TrialParams

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]
# The exp a scalar form calls: math.exp in plain Python, a vectorizable one in the Numba engine.
Exp = Callable[[float], float]
ScalarForm = Callable[[float, Exp], float]

LEAKY_SLOPE = 0.01


class ArrayForm(Protocol):
    """f elementwise; the NumPy trainer passes `out` (may be x) and `mask` to allocate nothing."""

    def __call__(self, x: Array, /, out: Array | None = None, mask: Mask | None = None
                 ) -> NDArray[Any]: ...


def _target(x: Array, out: Array | None) -> Array:
    return np.empty_like(x, dtype=np.float64) if out is None else out


def _into(out: Array | None, values: Array) -> Array:
    if out is None:
        return values
    out[...] = values
    return out


# Array forms: one ufunc at a time, each the operation the textbooks' expression performs, so
# writing into buffers gives the very floats the expression gives.
def sigmoid(x: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    z = np.negative(x, out=_target(x, out))
    np.exp(z, out=z)
    np.add(1, z, out=z)
    return np.divide(1, z, out=z)


def relu(x: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    """The textbooks' relu, -inf and nan giving nan, where np.maximum would give 0."""
    return np.multiply(np.greater(x, 0, out=mask), x, out=out)


def tanh(x: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    return np.tanh(x, out=out)


def identity(x: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    return x if out is None or out is x else _into(out, x)


def leaky_relu(x: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    return _into(out, np.where(np.greater(x, 0, out=mask), x, LEAKY_SLOPE * x))


def softplus(x: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    """logaddexp: no overflow for large x."""
    return np.logaddexp(0.0, x, out=out)


# Derivatives are taken from a layer's *output* o, as the textbooks do (sigmoid: o(1-o)).
def sigmoid_deriv(o: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    s = np.subtract(1, o, out=_target(o, out))
    return np.multiply(o, s, out=s)


def relu_deriv(o: Array, out: Array | None = None, mask: Mask | None = None) -> Mask:
    return np.greater(o, 0, out=mask)


def tanh_deriv(o: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    """np.square is what numpy runs for o ** 2."""
    s = np.square(o, out=_target(o, out))
    return np.subtract(1, s, out=s)


def leaky_relu_deriv(o: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    return _into(out, np.where(np.greater(o, 0, out=mask), 1.0, LEAKY_SLOPE))


def softplus_deriv(o: Array, out: Array | None = None, mask: Mask | None = None) -> Array:
    """softplus' is the sigmoid, written in terms of softplus's output."""
    s = np.negative(o, out=_target(o, out))
    np.exp(s, out=s)
    return np.subtract(1, s, out=s)


# Scalar forms, one value at a time, for the Numba engine to compile (plain Python runs them too).
def _sigmoid_1(x: float, exp: Exp) -> float:
    return 1.0 / (1.0 + exp(-x))


def _sigmoid_deriv_1(o: float, exp: Exp) -> float:
    return o * (1.0 - o)


def _relu_1(x: float, exp: Exp) -> float:
    return x if x > 0 else 0.0 * x


def _step_1(o: float, exp: Exp) -> float:
    return 1.0 if o > 0 else 0.0


def _tanh_1(x: float, exp: Exp) -> float:
    return math.tanh(x)


def _tanh_deriv_1(o: float, exp: Exp) -> float:
    return 1.0 - o * o


def _identity_1(x: float, exp: Exp) -> float:
    return x


def _leaky_relu_1(x: float, exp: Exp) -> float:
    return x if x > 0 else LEAKY_SLOPE * x


def _leaky_relu_deriv_1(o: float, exp: Exp) -> float:
    return 1.0 if o > 0 else LEAKY_SLOPE


def _softplus_1(x: float, exp: Exp) -> float:
    return x + math.log1p(exp(-x)) if x > 0 else math.log1p(exp(x))


def _softplus_deriv_1(o: float, exp: Exp) -> float:
    return 1.0 - exp(-o)


@dataclass(frozen=True)
class Activation:
    """One activation in every form an engine uses; None for a derivative means 1."""

    name: str
    value: ArrayForm
    deriv: ArrayForm | None  # from the output; None: the multiplication is skipped
    scalar: ScalarForm
    scalar_deriv: ScalarForm | None


# The Numba engine numbers them by their position here.
TABLE: dict[str, Activation] = {a.name: a for a in (
    Activation("sigmoid", sigmoid, sigmoid_deriv, _sigmoid_1, _sigmoid_deriv_1),
    Activation("relu", relu, relu_deriv, _relu_1, _step_1),
    Activation("tanh", tanh, tanh_deriv, _tanh_1, _tanh_deriv_1),
    Activation("linear", identity, None, _identity_1, None),
    Activation("leaky_relu", leaky_relu, leaky_relu_deriv, _leaky_relu_1, _leaky_relu_deriv_1),
    Activation("softplus", softplus, softplus_deriv, _softplus_1, _softplus_deriv_1),
)}

ActivationFn = Callable[[Array], NDArray[Any]]
ACTIVATION_FNS: dict[str, ActivationFn] = {name: a.value for name, a in TABLE.items()}
DERIVATIVE_FNS: dict[str, ActivationFn | None] = {name: a.deriv for name, a in TABLE.items()}


def softmax(x: Array, out: Array | None = None) -> Array:
    """Each row's exponentials over their sum (the last axis: one row's outputs), shifted by
    the row's largest value first so that no exponential overflows."""
    target = _target(x, out)
    np.subtract(x, x.max(axis=-1, keepdims=True), out=target)
    np.exp(target, out=target)
    np.divide(target, target.sum(axis=-1, keepdims=True), out=target)
    return target


def activate(name: str, x: Array) -> Array:
    """A layer's output: an activation of the table, or softmax over the outputs."""
    return softmax(x) if name == "softmax" else TABLE[name].value(x)


def output_delta_factor(output: str, loss: str) -> ArrayForm | None:
    """What the output's error is multiplied by to give its delta: the output activation's
    derivative under squared loss; nothing under cross-entropy, whose delta is p - y."""
    return None if loss == "cross_entropy" else TABLE[output].deriv


def cross_entropy(p: Array, y: Array, output: str) -> Array:
    """Each output's cross-entropy against its target (natural log), elementwise: -y log p
    under softmax (summed over a row's outputs, the row's -sum_k y_k log p_k), and
    -[y log p + (1 - y) log(1 - p)] for each sigmoid output. A term whose target weight is 0
    is 0, as in the limit, where its log may be -inf (a saturated output)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y != 0, -(y * np.log(p)), 0.0)
        if output == "softmax":
            return terms
        rest = 1 - y
        return terms + np.where(rest != 0, -(rest * np.log(1 - p)), 0.0)


def right_answers(p: Array, y: Array, output: str) -> NDArray[np.bool_]:
    """Which answers are right: a softmax row's (the largest probability's class is the
    one-hot target's; (..., rows)), or each sigmoid output's (p > 0.5 against y > 0.5)."""
    right: NDArray[np.bool_] = (np.equal(p.argmax(axis=-1), y.argmax(axis=-1))
                                if output == "softmax" else np.equal(p > 0.5, y > 0.5))
    return right


def shuffle_generator(seed: int) -> np.random.Generator:
    """The minibatch shuffle's own stream, apart from the weights' RandomState."""
    return np.random.default_rng([seed, 1])


_WORD = (1 << 64) - 1


def shuffle_state(generator: np.random.Generator) -> NDArray[np.uint64]:
    """Where a shuffle generator stands, as six unsigned words (its PCG64 state and increment,
    128 bits each, high word first, and the half-used 32-bit draw), so it can go on later."""
    state = generator.bit_generator.state
    words = [state["state"]["state"] >> 64, state["state"]["state"] & _WORD,
             state["state"]["inc"] >> 64, state["state"]["inc"] & _WORD,
             state["has_uint32"], state["uinteger"]]
    return np.array(words, dtype=np.uint64)


def resumed_shuffle(words: NDArray[np.uint64]) -> np.random.Generator:
    """The shuffle generator that `shuffle_state` gave `words` for, going on from there."""
    high, low, inc_high, inc_low, has_uint32, uinteger = (int(w) for w in words)
    generator = np.random.Generator(np.random.PCG64())
    generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": high << 64 | low, "inc": inc_high << 64 | inc_low},
        "has_uint32": has_uint32, "uinteger": uinteger}
    return generator


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finalizer: every bit of z moves every bit of the result."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_scales(seeds: NDArray[np.uint64], step: int, layer: int, rows: int, units: int,
                   rate: NDArray[np.float64]) -> Array:
    """Inverted dropout's factors for one update step's hidden layer: 0 for a dropped unit,
    1 / (1 - rate) for a kept one, (B, rows, units) for B trials.

    Each factor is a hash of (the trial's seed, the step counted from 0, the layer, the row's
    place in the step, the unit): counter-based, so a trial's masks never depend on the
    trials beside it, and every engine draws them alike in one vectorized pass.
    """
    with np.errstate(over="ignore"):
        key = _mix(_mix(_mix(seeds + _GOLDEN) ^ np.uint64(step)) ^ np.uint64(layer))  # (B,)
        counter = np.arange(1, rows * units + 1, dtype=np.uint64).reshape(rows, units)
        bits = _mix(key[:, None, None] + counter * _GOLDEN)  # (B, rows, units)
    uniform = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1)
    keep = (uniform >= rate[:, None, None]).astype(np.float64)  # (B, rows, units)
    return keep / (1 - rate[:, None, None])


def layer_sizes(params: TrialParams, n_inputs: int, n_outputs: int) -> list[int]:
    """Units per layer from the input to the output, e.g. [3, 4, 1]."""
    return [n_inputs, *params.hidden, n_outputs]


def weight_shapes(params: TrialParams, n_inputs: int, n_outputs: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) per weight matrix; a bias adds one input row that always sees 1."""
    sizes = layer_sizes(params, n_inputs, n_outputs)
    extra = 1 if params.bias else 0
    return [(fan_in + extra, fan_out) for fan_in, fan_out in itertools.pairwise(sizes)]


def initial_weights(params: TrialParams, n_inputs: int, n_outputs: int) -> list[Array]:
    """The weights a trial starts from, drawn layer by layer from the input side.

    `uniform` reproduces `np.random.seed(s); 2 * np.random.random((3, H)) - 1` bit for bit,
    but from a private RandomState, never the global one.
    """
    shapes = weight_shapes(params, n_inputs, n_outputs)
    if params.init == "given":
        if params.weights is None:
            raise ValueError("init 'given' needs explicit weights")
        given = [np.array(layer, dtype=np.float64).reshape(shape)
                 for layer, shape in zip(params.weights, shapes, strict=True)]
        return given
    rng = np.random.RandomState(params.seed)
    weights: list[Array] = []
    for fan_in, fan_out in shapes:
        if params.init == "uniform":
            w = 2 * rng.random_sample((fan_in, fan_out)) - 1
        elif params.init == "normal":
            w = rng.normal(0.0, fan_in**-0.5, (fan_in, fan_out))
        elif params.init == "xavier":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, (fan_in, fan_out))
        elif params.init == "he":
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out))
        else:
            raise ValueError(f"unknown init {params.init!r}")
        weights.append(w.astype(np.float64))
    return weights


def with_bias_column(a: Array) -> Array:
    """Append the constant input that a bias weight row multiplies."""
    ones = np.ones((*a.shape[:-1], 1))
    return np.concatenate([a, ones], axis=-1)


def forward(
    x: Array, weights: Sequence[Array], activation: str, output: str, bias: bool
) -> list[Array]:
    """Every layer's output for rows x (rows, inputs), the input itself first; a stack of
    networks too, x (B, rows, inputs) with weights (B, fan_in, fan_out): the same products."""
    outs = [x]
    for index, w in enumerate(weights):
        inputs = with_bias_column(outs[-1]) if bias else outs[-1]
        name = output if index == len(weights) - 1 else activation
        outs.append(activate(name, np.matmul(inputs, w)))  # (rows, fan_out)
    return outs


def predict(
    x: Array, weights: Sequence[Array], activation: str, output: str, bias: bool
) -> Array:
    """The network's output for rows x (rows, inputs)."""
    with np.errstate(all="ignore"):
        return forward(np.atleast_2d(np.asarray(x, dtype=np.float64)), weights,
                       activation, output, bias)[-1]
