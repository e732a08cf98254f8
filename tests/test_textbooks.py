"""The textbooks' printed figures, reproduced by nnsweep's batched trainer.

Every figure is checked twice:

1. Bit for bit against the textbook's own loop (textbook_loops.py), run in this process on the
   BLAS kernel that nnsweep uses here: the trainer's floats equal the loop's (==).
2. Against the figure as the textbook printed it, at the precision printed there. A dot
   product's last bit depends on the order the BLAS kernel sums it in, and OpenBLAS picks the
   kernel by CPU (generic SSE2, AVX2, AVX-512), so where the printed digits reach those bits
   the figure is compared within KERNEL_RTOL, and the test says so; every other figure is
   compared exactly at its printed precision.
   test_the_summation_order_moves_exactly_the_figures_compared_within_kernel_rtol checks which.

The textbooks: iamtrask's "A Neural Network in 11 lines of Python (Part 2)" (which printed 12
significant digits), Trask's Grokking Deep Learning ch. 5 and 6 (which printed repr, all 17)
and the 4-3-2-1 notebook (8 decimals).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
from helpers import NOTEBOOK_X, NOTEBOOK_Y, notebook_params
from numpy.typing import NDArray
from textbook_loops import (
    Dot,
    IamtraskRun,
    iamtrasks_direction_counts,
    iamtrasks_layer_2,
    iamtrasks_loop,
    iamtrasks_one_layer_loop,
    sigmoid,
    trasks_streetlights_loop,
    trasks_weight_vector_loop,
)

from nnsweep.network import forward, initial_weights, predict
from nnsweep.params import GivenWeights, TrialParams
from nnsweep.result import TrialResult
from nnsweep.trainer import train_batch

Array = NDArray[np.float64]
Data = tuple[Array, Array]

# How far a figure printed with all its digits may move when the kernel sums in another order.
# The orders of SUMMATION_ORDERS, like every permutation of the terms with or without fused
# multiply-adds, move Trask's printed figures by at most 1.2e-14 of themselves: OpenBLAS's
# generic kernel prints 0.0006143435674831401 for his ch. 5 epoch-38 0.0006143435674831474,
# its AVX-512 kernel 0.3583840767631751 for his ch. 6 epoch-19 0.35838407676317513.
# 1e-13 leaves a factor 8 and still checks 13 of the printed digits.
KERNEL_RTOL = 1e-13


def same(actual: Array, expected: Array | list[float]) -> None:
    """Equal bit for bit, shape included."""
    np.testing.assert_array_equal(actual, np.asarray(expected), strict=True)


def train(data: Data, trials: list[TrialParams]) -> list[TrialResult]:
    x, y = data
    return train_batch(x, y, trials)


# --- iamtrask, "A Neural Network in 11 lines of Python (Part 2)" -----------------------------

ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)

# "Adding in Alpha Parameter" and "Parameterizing the size of the hidden layer": mae ("Error
# after N Iterations") at iterations 0, 10000, ..., 50000, by (alpha, hidden size). The copy of
# the page breaks off after alpha 1's second row and hidden size 16's fifth, so alphas 10, 100
# and 1000 are checked against his loop only. Printed to 12 digits, these do not depend on the
# kernel: each lies at least 7e-14 of itself from where its 12th digit would round the other
# way, and the summation order moves it by about 1e-15. So they are compared exactly.
IAMTRASK_MAE: dict[tuple[float, int], tuple[str, ...]] = {
    (0.001, 4): ("0.496410031903", "0.495164025493", "0.493596043188", "0.491606358559",
                 "0.489100166544", "0.485977857846"),
    (0.01, 4): ("0.496410031903", "0.457431074442", "0.359097202563", "0.239358137159",
                "0.143070659013", "0.0985964298089"),
    (0.1, 4): ("0.496410031903", "0.0428880170001", "0.0240989942285", "0.0181106521468",
               "0.0149876162722", "0.0130144905381"),
    (1.0, 4): ("0.496410031903", "0.00858452565325"),
    (0.001, 8): ("0.498858912827", "0.497610011723", "0.496033982942", "0.494296904767",
                 "0.492306090243", "0.489961701295"),
    (0.001, 16): ("0.496819794037", "0.494485357113", "0.491570163837", "0.487989082662",
                  "0.483551192005"),
}

# `print(layer_2)` after the 60000-iteration loop (the forward pass of iteration 59999), to 8
# decimals: within 5e-9.
IAMTRASK_LAST_OUTPUT: dict[tuple[float, int], tuple[float, ...]] = {
    (0.001, 4): (0.42358939, 0.50110355, 0.54487022, 0.55091533),
    (0.001, 8): (0.43098022, 0.50961693, 0.51959574, 0.54684834),
}

# Every 60000-iteration run of the page: hidden 4 at each alpha, hidden 8 and 16 at 0.001.
IAMTRASK_RUNS = [*((alpha, 4) for alpha in ALPHAS), (0.001, 8), (0.001, 16)]


def twelve_digits(values: Array | list[float]) -> tuple[str, ...]:
    """How iamtrask's `str(np.mean(...))` printed a float under the numpy of 2015."""
    return tuple(f"{value:.12g}" for value in values)


def iamtrask_xor(alpha: float, hidden: int, epochs: int) -> TrialParams:
    return TrialParams(hidden=(hidden,), activation="sigmoid", output="sigmoid", alpha=alpha,
                       descent="full", seed=1, epochs=epochs, record_every=10000)


def assert_same_as_his_loop(result: TrialResult, run: IamtraskRun) -> None:
    """Errors at the iterations he printed, and the weights after the last update, bit for bit."""
    assert list(result.epochs[: len(run.printed)]) == list(range(0, 10000 * len(run.printed),
                                                                 10000))
    same(result.errors[: len(run.printed), 0], run.printed)
    same(result.weights[0], run.synapse_0)
    same(result.weights[1], run.synapse_1)


@pytest.fixture(scope="module")
def iamtrask_10000(xor: Data) -> dict[float, tuple[TrialResult, IamtraskRun]]:
    """Hidden 4 at every alpha, 10001 iterations, by nnsweep and by his loop."""
    results = train(xor, [iamtrask_xor(alpha, 4, 10001) for alpha in ALPHAS])
    return {alpha: (result, iamtrasks_loop(*xor, alpha=alpha, hidden=4, iterations=10001))
            for alpha, result in zip(ALPHAS, results, strict=True)}


def test_every_alpha_starts_from_iamtrasks_first_printed_error(xor: Data) -> None:
    results = train(xor, [iamtrask_xor(alpha, 4, 1) for alpha in ALPHAS])
    his = iamtrasks_loop(*xor, alpha=1.0, hidden=4, iterations=1).printed  # before any update
    for result in results:
        same(result.errors[:, 0], his)
        assert twelve_digits(result.errors[:, 0]) == ("0.496410031903",)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_iamtrasks_first_10000_iterations_are_his_loop_bit_for_bit(
    iamtrask_10000: dict[float, tuple[TrialResult, IamtraskRun]], alpha: float
) -> None:
    # Alphas 10, 100 and 1000 too: alpha 100 is chaotic, its 12th digit at iteration 10000
    # already depends on the kernel, so only the loop run here can tell what it must be.
    result, his = iamtrask_10000[alpha]
    assert_same_as_his_loop(result, his)


def test_iamtrasks_errors_after_10000_iterations_are_his_printed_digits(
    iamtrask_10000: dict[float, tuple[TrialResult, IamtraskRun]]
) -> None:
    for (alpha, hidden), printed in IAMTRASK_MAE.items():
        if hidden == 4:
            result, _ = iamtrask_10000[alpha]
            assert twelve_digits(result.errors[:2, 0]) == printed[:2], alpha


@pytest.fixture(scope="module")
def iamtrask_table(xor: Data) -> dict[tuple[float, int], tuple[TrialResult, IamtraskRun]]:
    """His 60000-iteration runs, by nnsweep (in batches of equal hidden size) and by his loop.

    59999 updates: the next forward pass is iteration 59999's, the `layer_2` he printed after
    the loop; his hidden-16 run breaks off at iteration 40000.
    """
    iterations = {4: 59999, 8: 59999, 16: 40001}
    table: dict[tuple[float, int], tuple[TrialResult, IamtraskRun]] = {}
    for hidden, epochs in iterations.items():
        alphas = [alpha for alpha, size in IAMTRASK_RUNS if size == hidden]
        results = train(xor, [iamtrask_xor(alpha, hidden, epochs) for alpha in alphas])
        for alpha, result in zip(alphas, results, strict=True):
            his = iamtrasks_loop(*xor, alpha=alpha, hidden=hidden, iterations=epochs)
            table[alpha, hidden] = result, his
    return table


@pytest.mark.slow
@pytest.mark.parametrize("alpha_hidden", IAMTRASK_RUNS, ids=str)
def test_iamtrasks_60000_iteration_runs_are_his_loop_bit_for_bit(
    xor: Data, iamtrask_table: dict[tuple[float, int], tuple[TrialResult, IamtraskRun]],
    alpha_hidden: tuple[float, int]
) -> None:
    result, his = iamtrask_table[alpha_hidden]
    assert_same_as_his_loop(result, his)
    output = predict(xor[0], result.weights, "sigmoid", "sigmoid", False)  # (4, 1)
    same(output, iamtrasks_layer_2(xor[0], his))


@pytest.mark.slow
@pytest.mark.parametrize("alpha_hidden", list(IAMTRASK_MAE), ids=str)
def test_iamtrasks_alpha_table_is_reproduced_to_the_printed_digits(
    iamtrask_table: dict[tuple[float, int], tuple[TrialResult, IamtraskRun]],
    alpha_hidden: tuple[float, int],
) -> None:
    printed = IAMTRASK_MAE[alpha_hidden]
    result, _ = iamtrask_table[alpha_hidden]
    assert list(result.epochs[: len(printed)]) == [0, 10000, 20000, 30000, 40000, 50000][
        : len(printed)]
    assert twelve_digits(result.errors[: len(printed), 0]) == printed


@pytest.mark.slow
@pytest.mark.parametrize("alpha_hidden", list(IAMTRASK_LAST_OUTPUT), ids=str)
def test_iamtrasks_printed_final_outputs_are_reproduced(
    xor: Data, iamtrask_table: dict[tuple[float, int], tuple[TrialResult, IamtraskRun]],
    alpha_hidden: tuple[float, int]
) -> None:
    result, _ = iamtrask_table[alpha_hidden]
    output = predict(xor[0], result.weights, "sigmoid", "sigmoid", False)  # (4, 1)
    assert np.allclose(output.ravel(), IAMTRASK_LAST_OUTPUT[alpha_hidden], rtol=0, atol=5e-9)


def test_alpha_1000_saturates_at_half_like_the_textbook_and_does_not_diverge(
    iamtrask_10000: dict[float, tuple[TrialResult, IamtraskRun]]
) -> None:
    # pytest turns every warning into an error, so a RuntimeWarning from exp fails this test.
    # Saturated: every output is pinned near 0, half of XOR's targets are missed, mae 1/2.
    result, his = iamtrask_10000[1000.0]
    assert math.isclose(his.printed[1], 0.5, rel_tol=0, abs_tol=1e-12)
    same(result.errors[:, 0], his.printed)
    assert result.diverged_epoch is None
    assert result.status(0.01) == "not_converged"
    assert all(np.isfinite(w).all() for w in result.weights)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_iamtrasks_direction_counts_are_ours_one_epoch_shorter_plus_his_first_comparison(
    xor: Data, alpha: float
) -> None:
    # His loop computes iteration 0's update but skips it, so his iterations 1..N-1 apply our
    # steps 0..N-2; and he compares his first update with zeros, so every weight whose first
    # update is positive gets one count more than the clean count of nnsweep's N - 1 epochs.
    iterations = 3000
    his = iamtrasks_direction_counts(*xor, alpha=alpha, hidden=4, iterations=iterations)
    (result,) = train(xor, [iamtrask_xor(alpha, 4, iterations - 1)])
    first = [np.asarray(g) > 0 for g in first_updates(xor)]
    for layer in (0, 1):
        expected = result.direction_changes[layer] + first[layer]
        np.testing.assert_array_equal(his[layer], expected, err_msg=f"layer {layer}")


def first_updates(data: Data) -> tuple[Array, Array]:
    """iamtrask's first update of each layer, `layer.T.dot(delta)` with `error = y - output`."""
    x, y = data
    rng = np.random.RandomState(1)
    synapse_0 = 2 * rng.random_sample((3, 4)) - 1
    synapse_1 = 2 * rng.random_sample((4, 1)) - 1
    layer_1 = 1 / (1 + np.exp(-(x @ synapse_0)))  # (4, 4)
    layer_2 = 1 / (1 + np.exp(-(layer_1 @ synapse_1)))  # (4, 1)
    delta_2 = (y - layer_2) * layer_2 * (1 - layer_2)  # (4, 1)
    delta_1 = (delta_2 @ synapse_1.T) * layer_1 * (1 - layer_1)  # (4, 4)
    return x.T @ delta_1, layer_1.T @ delta_2


def test_iamtrasks_network_without_a_hidden_layer_prints_the_same_outputs() -> None:
    # "Layer Neural Networks": hidden = [], sigmoid output, alpha 1, seed 1; he printed the
    # forward pass of iteration 9999, which is the output after 9999 updates.
    x = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=np.float64)
    y = np.array([[0], [0], [1], [1]], dtype=np.float64)
    params = TrialParams(hidden=(), output="sigmoid", alpha=1.0, seed=1, epochs=9999)
    (result,) = train_batch(x, y, [params])
    synapse_0 = iamtrasks_one_layer_loop(x, y, iterations=9999)
    same(result.weights[0], synapse_0)
    output = predict(x, result.weights, "sigmoid", "sigmoid", False)  # (4, 1)
    same(output, sigmoid(np.dot(x, synapse_0)))
    printed = [0.00505119, 0.00505119, 0.99494905, 0.99494905]
    assert np.allclose(output.ravel(), printed, rtol=0, atol=5e-9)


# --- Trask, Grokking Deep Learning, ch. 6 -----------------------------------------------------

# "Backpropagation in code": `print("Error:" + str(layer_2_error))` at iteration % 10 == 9, the
# sse of that epoch. Printed to all 17 digits, every one depends on the kernel.
TRASK_STREETLIGHTS_SSE = {9: 0.6342311598444467, 19: 0.35838407676317513,
                          29: 0.0830183113303298, 39: 0.006467054957103705,
                          49: 0.0003292669000750734, 59: 1.5055622665134859e-05}
# "One iteration of backprop": the first light's error. Its prediction adds one nonzero
# product, so no summation order can change it: compared exactly.
TRASK_ONE_ITERATION_ERROR = 1.0430445982842722


def trasks_streetlights(epochs: int, hidden: int = 4) -> TrialParams:
    return TrialParams(hidden=(hidden,), activation="relu", output="linear",
                       descent="stochastic", alpha=0.2, seed=1, epochs=epochs, record_every=1)


def test_trasks_streetlights_network_is_his_loop_bit_for_bit(streetlights: Data) -> None:
    (result,) = train(streetlights, [trasks_streetlights(60)])
    his = trasks_streetlights_loop(*streetlights, alpha=0.2, hidden=4, iterations=60)
    assert list(result.epochs) == list(range(60))
    same(result.errors[:, 2], his.errors)
    same(result.weights[0], his.weights_0_1)
    same(result.weights[1], his.weights_1_2)


def test_trasks_printed_streetlights_errors_are_reproduced_within_kernel_rtol(
    streetlights: Data,
) -> None:
    (result,) = train(streetlights, [trasks_streetlights(60)])
    epochs = list(TRASK_STREETLIGHTS_SSE)
    np.testing.assert_allclose(result.errors[epochs, 2], list(TRASK_STREETLIGHTS_SSE.values()),
                               rtol=KERNEL_RTOL, atol=0)


def test_trasks_one_iteration_of_backprop_is_reproduced(streetlights: Data) -> None:
    # hidden 3, seed 1, alpha 0.2, the first light only, one iteration.
    first = (streetlights[0][:1], streetlights[1][:1])
    (result,) = train(first, [trasks_streetlights(1, hidden=3)])
    his = trasks_streetlights_loop(*first, alpha=0.2, hidden=3, iterations=1)
    same(result.errors[:, 2], his.errors)
    same(result.weights[0], his.weights_0_1)
    same(result.weights[1], his.weights_1_2)
    assert result.errors[0, 2] == TRASK_ONE_ITERATION_ERROR
    printed_0_1 = [[-0.16595599, 0.40763847, -0.99977125],
                   [-0.39533485, -0.70648822, -0.81532281],
                   [-0.62747958, -0.34188906, -0.20646505]]
    printed_1_2 = [[0.07763347], [-0.13469566], [0.370439]]
    assert np.allclose(result.weights[0], printed_0_1, rtol=0, atol=5e-9)
    assert np.allclose(result.weights[1], printed_1_2, rtol=0, atol=5e-9)


# --- Trask, Grokking Deep Learning, ch. 5 -----------------------------------------------------

TRASK_WEIGHTS = (0.5, 0.48, -0.7)  # his `weights = np.array([0.5, 0.48, -0.7])`
STREETLIGHTS6_WEIGHTS: GivenWeights = (tuple((w,) for w in TRASK_WEIGHTS),)

# "Building a neural network": light 0's "Error" at iterations 0, 1 and 19. Its prediction
# adds two weights, which no summation order can change: compared exactly.
TRASK_SINGLE_LIGHT_ERROR = {0: 0.03999999999999998, 1: 0.025599999999999973,
                            19: 8.307674973656916e-06}
# "Learning the whole dataset": "Error For All" at iterations 0, 1, 38 and 39. By iteration 38
# the order in which the lights [1, 1, 1] add three weights has reached the 14th digit: 38 and
# 39 are compared within KERNEL_RTOL, 0 and 1 exactly.
TRASK_STREETLIGHTS6_SSE = {0: 2.6561231104, 1: 0.9628701776715985, 38: 0.0006143435674831474,
                           39: 0.00053373677328488}
TRASK_KERNEL_DEPENDENT = {("streetlights6", 38), ("streetlights6", 39),
                          *(("streetlights", epoch) for epoch in TRASK_STREETLIGHTS_SSE)}

# His ch. 5 squares a NumPy scalar, `(goal_prediction - prediction) ** 2`, and NumPy hands a
# scalar's ** to the C library's pow(), which glibc does not round correctly: it squares
# 0.1726282203489633 one ulp below the true square. nnsweep squares by multiplication (as NumPy
# squares his ch. 6 arrays), so each square may be an ulp off his, and a sum of six of them
# is within 8 units of 2**-52 of itself (an ulp per square, half an ulp per addition).
POW_RTOL = 8 * 2.0**-52


def trasks_weight_vector(epochs: int) -> TrialParams:
    return TrialParams(hidden=(), output="linear", descent="stochastic", alpha=0.1,
                       epochs=epochs, init="given", weights=STREETLIGHTS6_WEIGHTS,
                       record_every=1)


def assert_his_ch5_loop(result: TrialResult, data: Data, epochs: int) -> None:
    errors, weights = trasks_weight_vector_loop(*data, weights=np.array(TRASK_WEIGHTS),
                                                alpha=0.1, iterations=epochs)
    same(result.weights[0], weights[:, None])  # the training itself, bit for bit
    np.testing.assert_allclose(result.errors[:, 2], errors, rtol=POW_RTOL, atol=0)


def test_trasks_single_light_network_is_his_loop(streetlights6: Data) -> None:
    first = (streetlights6[0][:1], streetlights6[1][:1])  # [1, 0, 1], stop
    (result,) = train(first, [trasks_weight_vector(20)])
    assert_his_ch5_loop(result, first, 20)
    for epoch, printed in TRASK_SINGLE_LIGHT_ERROR.items():
        assert result.errors[epoch, 2] == printed, epoch


def test_trasks_streetlights6_network_is_his_loop(streetlights6: Data) -> None:
    (result,) = train(streetlights6, [trasks_weight_vector(40)])
    assert_his_ch5_loop(result, streetlights6, 40)


def test_trasks_printed_streetlights6_errors_are_reproduced(streetlights6: Data) -> None:
    (result,) = train(streetlights6, [trasks_weight_vector(40)])
    for epoch, printed in TRASK_STREETLIGHTS6_SSE.items():
        if ("streetlights6", epoch) in TRASK_KERNEL_DEPENDENT:
            assert math.isclose(result.errors[epoch, 2], printed, rel_tol=KERNEL_RTOL), epoch
        else:
            assert result.errors[epoch, 2] == printed, epoch


# --- which figures depend on the kernel ------------------------------------------------------


def fused(products: list[tuple[float, float]]) -> float:
    """Fused multiply-adds: the running sum rounds once per term, the products never."""
    total = 0.0
    for a, b in products:
        total = float(Fraction(total) + Fraction(a) * Fraction(b))
    return total


def rounded(products: list[tuple[float, float]]) -> float:
    """Every product and every partial sum rounded, left to right."""
    total = 0.0
    for a, b in products:
        total = total + a * b
    return total


# Orders in which a BLAS kernel may sum a dot product's terms: scalar loops, the two
# accumulators of SSE2 kernels, the fused multiply-adds of AVX2 and AVX-512 kernels, and the
# correctly rounded sum as the extreme.
SUMMATION_ORDERS: dict[str, Callable[[list[tuple[float, float]]], float]] = {
    "left to right": rounded,
    "right to left": lambda terms: rounded(terms[::-1]),
    "evens, then odds": lambda terms: rounded(terms[::2]) + rounded(terms[1::2]),
    "fused, left to right": fused,
    "fused, right to left": lambda terms: fused(terms[::-1]),
    "correctly rounded": lambda terms: float(sum(Fraction(a) * Fraction(b) for a, b in terms)),
}


def summing(order: Callable[[list[tuple[float, float]]], float]) -> Dot:
    """np.dot for the textbook loops (vector . vector, matrix . matrix), summed in `order`."""

    def dot(a: Array, b: Array) -> Array:
        rows, columns = np.atleast_2d(a), b.reshape(len(b), -1)
        out = np.array([[order([(float(p), float(q)) for p, q in zip(row, column, strict=True)])
                         for column in columns.T] for row in rows])
        result: Array = out.reshape(a.shape[:-1] + b.shape[1:])[()]  # a scalar for two vectors
        return result

    return dot


Figures = dict[tuple[str, int], tuple[float, float]]  # (loop, epoch) -> (value, printed)


def trasks_figures(dot: Dot, streetlights: Data, streetlights6: Data) -> Figures:
    """His printed figures as his loops compute them with `dot`, each with the printed value."""
    sse = trasks_streetlights_loop(*streetlights, alpha=0.2, hidden=4, iterations=60, dot=dot)
    first = (streetlights[0][:1], streetlights[1][:1])
    one = trasks_streetlights_loop(*first, alpha=0.2, hidden=3, iterations=1, dot=dot)
    light = (streetlights6[0][:1], streetlights6[1][:1])
    single, _ = trasks_weight_vector_loop(*light, weights=np.array(TRASK_WEIGHTS), alpha=0.1,
                                          iterations=20, dot=dot)
    sse6, _ = trasks_weight_vector_loop(*streetlights6, weights=np.array(TRASK_WEIGHTS),
                                        alpha=0.1, iterations=40, dot=dot)
    return {
        **{("streetlights", e): (sse.errors[e], v) for e, v in TRASK_STREETLIGHTS_SSE.items()},
        ("one iteration", 0): (one.errors[0], TRASK_ONE_ITERATION_ERROR),
        **{("single light", e): (single[e], v) for e, v in TRASK_SINGLE_LIGHT_ERROR.items()},
        **{("streetlights6", e): (sse6[e], v) for e, v in TRASK_STREETLIGHTS6_SSE.items()},
    }


def test_the_summation_order_moves_exactly_the_figures_compared_within_kernel_rtol(
    streetlights: Data, streetlights6: Data
) -> None:
    # His loops with every summation order a kernel may use: a figure compared exactly above
    # must come out the same under every order; one compared within KERNEL_RTOL must stay
    # within it, and some order must move it (else it should be compared exactly).
    moved = set()
    for name, order in SUMMATION_ORDERS.items():
        for figure, (value, printed) in trasks_figures(summing(order), streetlights,
                                                       streetlights6).items():
            if figure in TRASK_KERNEL_DEPENDENT:
                assert math.isclose(value, printed, rel_tol=KERNEL_RTOL), (name, figure)
                if value != printed:
                    moved.add(figure)
            else:
                assert value == printed, (name, figure)
    assert moved == TRASK_KERNEL_DEPENDENT


# --- the 4-3-2-1 notebook ---------------------------------------------------------------------

def notebook_step() -> TrialResult:
    (result,) = train_batch(NOTEBOOK_X, NOTEBOOK_Y, [notebook_params()])
    return result


def test_the_notebooks_forward_pass_is_reproduced() -> None:
    weights = initial_weights(notebook_params(), 4, 1)
    outs = forward(NOTEBOOK_X, weights, "sigmoid", "linear", False)
    assert np.allclose(outs[1], [[0.56461512, 0.3199139, 0.51802372]], rtol=0, atol=1e-8)
    assert np.allclose(outs[2], [[0.67255087, 0.53492147]], rtol=0, atol=1e-8)
    assert abs(outs[3][0, 0] - -0.81027353) < 1e-8


def test_the_first_recorded_error_is_the_notebooks_output_error() -> None:
    # The notebook's error_output = y - output = 1.21027353; our mae is its absolute value.
    assert abs(notebook_step().errors[0, 0] - 1.21027353) < 1e-8


def test_the_notebooks_last_two_updates_are_reproduced() -> None:
    # Its updates of the two upper layers are right (the notebook adds del = -grad).
    weights = notebook_step().weights
    assert np.allclose(weights[1], [[1.08374844, 0.45920027], [0.92241922, 0.41820538],
                                    [-0.55595714, -0.81948673]], rtol=0, atol=2e-8)
    assert np.allclose(weights[2], [[0.26574111], [-0.17806822]], rtol=0, atol=2e-8)


def test_the_correct_step_predicts_0_08458829_not_the_notebooks_0_08288627() -> None:
    # The notebook backpropagates hidden layer 2's error without the sigmoid derivative, so
    # its first-layer update and its new prediction 0.08288627 are off; the true gradient
    # step (checked against finite differences in test_gradients.py) predicts 0.08458829.
    new = predict(NOTEBOOK_X, notebook_step().weights, "sigmoid", "linear", False)  # (1, 1)
    assert abs(new[0, 0] - 0.08458829) < 1e-8
    assert abs(new[0, 0] - 0.08288627) > 1e-3


def test_the_notebooks_0_08288627_comes_from_dropping_layer_2s_derivative() -> None:
    w0, w1, w2 = initial_weights(notebook_params(), 4, 1)
    _, h1, h2, out = forward(NOTEBOOK_X, [w0, w1, w2], "sigmoid", "linear", False)
    error_output = NOTEBOOK_Y - out  # (1, 1)
    error_h2 = error_output @ w2.T  # (1, 2)
    et_h2 = error_h2 * h2 * (1 - h2)
    error_h1 = error_h2 @ w1.T  # (1, 3): the slip; the chain rule needs et_h2 @ w1.T
    et_h1 = error_h1 * h1 * (1 - h1)
    slipped = [w0 + NOTEBOOK_X.T @ et_h1, w1 + h1.T @ et_h2, w2 + h2.T @ error_output]
    new = predict(NOTEBOOK_X, slipped, "sigmoid", "linear", False)  # (1, 1)
    assert abs(new[0, 0] - 0.08288627) < 1e-8


def test_the_trainers_step_is_the_notebooks_step_with_the_chain_rule_bit_for_bit() -> None:
    # The notebook's step, written plainly with np.dot, its slip mended.
    w0, w1, w2 = initial_weights(notebook_params(), 4, 1)
    h1 = sigmoid(np.dot(NOTEBOOK_X, w0))  # (1, 3)
    h2 = sigmoid(np.dot(h1, w1))  # (1, 2)
    out = np.dot(h2, w2)  # (1, 1), linear output
    delta_out = out - NOTEBOOK_Y
    delta_h2 = np.dot(delta_out, w2.T) * (h2 * (1 - h2))
    delta_h1 = np.dot(delta_h2, w1.T) * (h1 * (1 - h1))
    weights = notebook_step().weights
    same(weights[0], w0 - np.dot(NOTEBOOK_X.T, delta_h1))
    same(weights[1], w1 - np.dot(h1.T, delta_h2))
    same(weights[2], w2 - np.dot(h2.T, delta_out))
