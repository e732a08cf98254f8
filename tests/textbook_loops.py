"""The textbooks' own training loops, written as the textbooks write them.

These are the oracles of the bit-for-bit checks: each test runs the textbook's loop in its own
process, on the same BLAS kernel as nnsweep, and asserts that nnsweep's trainer gives the very
same floats. Only two things differ from the printed code: the weights come from a private
`np.random.RandomState(1)` instead of `np.random.seed(1)` (same numbers, no global state), and
the matrix product is a parameter `dot` (np.dot, as printed, unless a test passes another
summation order to see how far the order moves the figures).

- iamtrask, "A Neural Network in 11 lines of Python (Part 2)": the XOR network of "Adding in
  Alpha Parameter" and "Parameterizing the size of the hidden layer", and the network without a
  hidden layer of "Layer Neural Networks".
- Trask, Grokking Deep Learning ch. 6, "Backpropagation in code" (also "One iteration of
  backprop": hidden 3, the first light, one iteration) and ch. 5, "Building a neural network"
  and "Learning the whole dataset" (one weight vector, no hidden layer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Dot = Callable[[Array, Array], Array]


def sigmoid(x: Array) -> Array:
    return 1 / (1 + np.exp(-x))


def sigmoid_output_to_derivative(output: Array) -> Array:
    return output * (1 - output)


def relu(x: Array) -> Array:
    return (x > 0) * x  # returns x if x > 0, 0 otherwise


def relu2deriv(output: Array) -> NDArray[np.bool_]:
    return output > 0  # 1 for input > 0, 0 otherwise


@dataclass(frozen=True)
class IamtraskRun:
    printed: list[float]  # np.mean(abs(layer_2_error)) at every iteration % 10000 == 0
    synapse_0: Array  # after the last update
    synapse_1: Array


def iamtrasks_loop(x: Array, y: Array, alpha: float, hidden: int, iterations: int,
                   dot: Dot = np.dot) -> IamtraskRun:
    """iamtrask's alpha / hidden-size loop: sigmoid layers, full batch, seed 1."""
    rng = np.random.RandomState(1)
    synapse_0 = 2 * rng.random_sample((3, hidden)) - 1
    synapse_1 = 2 * rng.random_sample((hidden, 1)) - 1
    printed = []
    with np.errstate(over="ignore"):  # his exp overflows at alpha 100 and 1000
        for iteration in range(iterations):
            layer_0 = x
            layer_1 = sigmoid(dot(layer_0, synapse_0))
            layer_2 = sigmoid(dot(layer_1, synapse_1))
            layer_2_error = layer_2 - y
            if iteration % 10000 == 0:
                printed.append(float(np.mean(abs(layer_2_error))))
            layer_2_delta = layer_2_error * sigmoid_output_to_derivative(layer_2)
            layer_1_error = dot(layer_2_delta, synapse_1.T)
            layer_1_delta = layer_1_error * sigmoid_output_to_derivative(layer_1)
            synapse_1 -= alpha * (dot(layer_1.T, layer_2_delta))
            synapse_0 -= alpha * (dot(layer_0.T, layer_1_delta))
    return IamtraskRun(printed, synapse_0, synapse_1)


def iamtrasks_layer_2(x: Array, run: IamtraskRun) -> Array:
    """The `layer_2` his next iteration computes: what `print(layer_2)` shows after the loop."""
    with np.errstate(over="ignore"):
        return sigmoid(np.dot(sigmoid(np.dot(x, run.synapse_0)), run.synapse_1))


def iamtrasks_one_layer_loop(x: Array, y: Array, iterations: int) -> Array:
    """iamtrask's network without a hidden layer (alpha 1, seed 1); its synapse_0 at the end."""
    rng = np.random.RandomState(1)
    synapse_0 = 2 * rng.random_sample((x.shape[1], 1)) - 1
    for _iteration in range(iterations):
        layer_0 = x
        layer_1 = sigmoid(np.dot(layer_0, synapse_0))
        layer_1_error = layer_1 - y
        layer_1_delta = layer_1_error * sigmoid_output_to_derivative(layer_1)
        synapse_0_derivative = np.dot(layer_0.T, layer_1_delta)
        synapse_0 -= synapse_0_derivative
    return synapse_0


@dataclass(frozen=True)
class TraskRun:
    errors: list[float]  # layer_2_error (the epoch's sse) of every iteration
    weights_0_1: Array  # after the last update
    weights_1_2: Array


def trasks_streetlights_loop(x: Array, y: Array, alpha: float, hidden: int, iterations: int,
                             dot: Dot = np.dot) -> TraskRun:
    """Trask's ch. 6 network: relu hidden layer, linear output, one light at a time, seed 1."""
    rng = np.random.RandomState(1)
    weights_0_1 = 2 * rng.random_sample((3, hidden)) - 1
    weights_1_2 = 2 * rng.random_sample((hidden, 1)) - 1
    errors = []
    for _iteration in range(iterations):
        layer_2_error = 0.0
        for i in range(len(x)):
            layer_0 = x[i:i + 1]
            layer_1 = relu(dot(layer_0, weights_0_1))
            layer_2 = dot(layer_1, weights_1_2)
            layer_2_error += np.sum((layer_2 - y[i:i + 1]) ** 2)
            layer_2_delta = layer_2 - y[i:i + 1]
            layer_1_delta = dot(layer_2_delta, weights_1_2.T) * relu2deriv(layer_1)
            weights_1_2 -= alpha * dot(layer_1.T, layer_2_delta)
            weights_0_1 -= alpha * dot(layer_0.T, layer_1_delta)
        errors.append(float(layer_2_error))
    return TraskRun(errors, weights_0_1, weights_1_2)


def trasks_weight_vector_loop(x: Array, y: Array, weights: Array, alpha: float,
                              iterations: int, dot: Dot = np.dot) -> tuple[list[float], Array]:
    """Trask's ch. 5 loop: one weight vector, one light at a time; (the "Error For All" of
    every iteration, the weights at the end). With one light its error is the "Error" line."""
    errors = []
    for _iteration in range(iterations):
        error_for_all_lights = 0.0
        for row_index in range(len(x)):
            my_input = x[row_index]
            goal_prediction = y[row_index, 0]
            prediction = dot(my_input, weights)
            error = (goal_prediction - prediction) ** 2
            error_for_all_lights += error
            delta = prediction - goal_prediction
            weights = weights - (alpha * (my_input * delta))
        errors.append(float(error_for_all_lights))
    return errors, weights


def iamtrasks_direction_counts(x: Array, y: Array, alpha: float, hidden: int,
                               iterations: int) -> tuple[Array, Array]:
    """iamtrask's direction-count loop ("Update Direction Changes"): his update is
    `+alpha * layer.T.dot(delta)` with `error = y - output`, applied from iteration 1 on, and
    each update's direction is compared with the previous one, zeros at first."""
    rng = np.random.RandomState(1)
    synapse_0 = 2 * rng.random_sample((3, hidden)) - 1
    synapse_1 = 2 * rng.random_sample((hidden, 1)) - 1
    prev_synapse_0_weight_update = np.zeros_like(synapse_0)
    prev_synapse_1_weight_update = np.zeros_like(synapse_1)
    synapse_0_direction_count = np.zeros_like(synapse_0)
    synapse_1_direction_count = np.zeros_like(synapse_1)
    for iteration in range(iterations):
        layer_0 = x
        layer_1 = sigmoid(np.dot(layer_0, synapse_0))
        layer_2 = sigmoid(np.dot(layer_1, synapse_1))
        layer_2_error = y - layer_2
        layer_2_delta = layer_2_error * sigmoid_output_to_derivative(layer_2)
        layer_1_error = layer_2_delta.dot(synapse_1.T)
        layer_1_delta = layer_1_error * sigmoid_output_to_derivative(layer_1)
        synapse_1_weight_update = layer_1.T.dot(layer_2_delta)
        synapse_0_weight_update = layer_0.T.dot(layer_1_delta)
        if iteration > 0:
            synapse_0_direction_count += abs(((synapse_0_weight_update > 0) + 0)
                                             - ((prev_synapse_0_weight_update > 0) + 0))
            synapse_1_direction_count += abs(((synapse_1_weight_update > 0) + 0)
                                             - ((prev_synapse_1_weight_update > 0) + 0))
            synapse_1 += alpha * synapse_1_weight_update
            synapse_0 += alpha * synapse_0_weight_update
            prev_synapse_0_weight_update = synapse_0_weight_update
            prev_synapse_1_weight_update = synapse_1_weight_update
    return synapse_0_direction_count, synapse_1_direction_count
