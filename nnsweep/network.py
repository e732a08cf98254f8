"""The pieces every trainer shares: activations, their derivatives, initial weights, prediction.

Both the plain loop (reference.py) and the batched trainer call these same functions, so the
two cannot drift apart in the arithmetic that decides a trial's numbers. Every function works
on 2-D (rows, units) and batched 3-D (B, rows, units) arrays alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nnsweep.params import TrialParams

Array = NDArray[np.float64]

LEAKY_SLOPE = 0.01


def sigmoid(x: Array) -> Array:
    return 1 / (1 + np.exp(-x))


def relu(x: Array) -> Array:
    return (x > 0) * x


def leaky_relu(x: Array) -> Array:
    return np.where(x > 0, x, LEAKY_SLOPE * x)


def softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


def identity(x: Array) -> Array:
    return x


# Derivatives are taken from a layer's *output*, as the textbooks do (sigmoid: o(1-o)).
# None means the derivative is 1 and the multiplication is skipped.
def sigmoid_deriv(out: Array) -> Array:
    return out * (1 - out)


def relu_deriv(out: Array) -> NDArray[np.bool_]:
    return out > 0


def tanh_deriv(out: Array) -> Array:
    return 1 - out**2


def leaky_relu_deriv(out: Array) -> Array:
    return np.where(out > 0, 1.0, LEAKY_SLOPE)


def softplus_deriv(out: Array) -> Array:
    # softplus'(x) = sigmoid(x) = 1 - exp(-softplus(x))
    return 1 - np.exp(-out)


ActivationFn = Callable[[Array], Array]
DerivFn = Callable[[Array], Any]

ACTIVATION_FNS: dict[str, ActivationFn] = {
    "sigmoid": sigmoid,
    "relu": relu,
    "tanh": np.tanh,
    "linear": identity,
    "leaky_relu": leaky_relu,
    "softplus": softplus,
}

DERIVATIVE_FNS: dict[str, DerivFn | None] = {
    "sigmoid": sigmoid_deriv,
    "relu": relu_deriv,
    "tanh": tanh_deriv,
    "linear": None,
    "leaky_relu": leaky_relu_deriv,
    "softplus": softplus_deriv,
}


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
    """Every layer's output for rows x (rows, inputs), the input itself first."""
    outs = [x]
    hidden_fn = ACTIVATION_FNS[activation]
    for index, w in enumerate(weights):
        inputs = with_bias_column(outs[-1]) if bias else outs[-1]
        fn = ACTIVATION_FNS[output] if index == len(weights) - 1 else hidden_fn
        outs.append(fn(np.matmul(inputs, w)))  # (rows, fan_out)
    return outs


def predict(
    x: Array, weights: Sequence[Array], activation: str, output: str, bias: bool
) -> Array:
    """The network's output for rows x (rows, inputs)."""
    with np.errstate(all="ignore"):
        return forward(np.atleast_2d(np.asarray(x, dtype=np.float64)), weights,
                       activation, output, bias)[-1]
