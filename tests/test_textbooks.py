"""The seeds' published figures, reproduced by the batched trainer to the digits printed there.

Every literal below is quoted from ../shared/seeds/ (001: Trask's streetlights loops, 002:
iamtrask's part 2, 003: the 4-3-2-1 notebook). iamtrask printed 12 significant digits, so
those figures are compared as `f"{value:.12g}"`; Trask printed repr, so his are compared
exactly; the notebook printed 8 decimals, so its figures are compared within 1e-8 or so.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from nnsweep.network import forward, initial_weights, predict
from nnsweep.params import GivenWeights, TrialParams
from nnsweep.result import TrialResult
from nnsweep.trainer import train_batch

Array = NDArray[np.float64]
Data = tuple[Array, Array]

ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)

# 002, "Adding in Alpha Parameter" and "Parameterizing the size of the hidden layer":
# mae ("Error after N Iterations") at epochs 0, 10000, ..., 50000, by (alpha, hidden size).
# The seed's copy of the page breaks off after alpha 1's second row and hidden size 16's fifth.
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

# 002: `print(layer_2)` after the 60000-iteration loop: the forward pass of iteration 59999.
IAMTRASK_LAST_OUTPUT: dict[tuple[float, int], tuple[float, ...]] = {
    (0.001, 4): (0.42358939, 0.50110355, 0.54487022, 0.55091533),
    (0.001, 8): (0.43098022, 0.50961693, 0.51959574, 0.54684834),
}


def twelve_digits(values: Array) -> tuple[str, ...]:
    """How iamtrask's `str(np.mean(...))` printed a float under the numpy of 2015."""
    return tuple(f"{value:.12g}" for value in values)


def iamtrask_xor(alpha: float, hidden: int, epochs: int) -> TrialParams:
    return TrialParams(hidden=(hidden,), activation="sigmoid", output="sigmoid", alpha=alpha,
                       descent="full", seed=1, epochs=epochs, record_every=10000)


def train(data: Data, trials: list[TrialParams]) -> list[TrialResult]:
    x, y = data
    return train_batch(x, y, trials)


# --- iamtrask, part 2 (002) ------------------------------------------------------------------


def test_every_alpha_starts_from_iamtrasks_first_printed_error(xor: Data) -> None:
    results = train(xor, [iamtrask_xor(alpha, 4, 1) for alpha in ALPHAS])
    for result in results:
        assert twelve_digits(result.errors[:1, 0]) == ("0.496410031903",)


def test_iamtrasks_errors_after_10000_iterations_are_reproduced(xor: Data) -> None:
    alphas = [alpha for alpha, hidden in IAMTRASK_MAE if hidden == 4]
    results = train(xor, [iamtrask_xor(alpha, 4, 10001) for alpha in alphas])
    for alpha, result in zip(alphas, results, strict=True):
        assert list(result.epochs[:2]) == [0, 10000]
        assert twelve_digits(result.errors[:2, 0]) == IAMTRASK_MAE[alpha, 4][:2], alpha


@pytest.fixture(scope="module")
def iamtrask_table(xor: Data) -> dict[tuple[float, int], TrialResult]:
    """iamtrask's 60000-iteration runs, trained in batches of equal hidden size."""
    table: dict[tuple[float, int], TrialResult] = {}
    # 59999 epochs: the last recorded forward pass is iteration 59999, the one he printed;
    # his hidden-16 run breaks off at iteration 40000.
    for hidden, epochs in ((4, 59999), (8, 59999), (16, 40001)):
        alphas = ALPHAS if hidden == 4 else (0.001,)
        results = train(xor, [iamtrask_xor(alpha, hidden, epochs) for alpha in alphas])
        table.update({(alpha, hidden): r for alpha, r in zip(alphas, results, strict=True)})
    return table


@pytest.mark.slow
@pytest.mark.parametrize("alpha_hidden", list(IAMTRASK_MAE), ids=str)
def test_iamtrasks_alpha_table_is_reproduced_to_the_printed_digits(
    iamtrask_table: dict[tuple[float, int], TrialResult], alpha_hidden: tuple[float, int]
) -> None:
    printed = IAMTRASK_MAE[alpha_hidden]
    result = iamtrask_table[alpha_hidden]
    assert list(result.epochs[: len(printed)]) == [0, 10000, 20000, 30000, 40000, 50000][
        : len(printed)]
    assert twelve_digits(result.errors[: len(printed), 0]) == printed


@pytest.mark.slow
@pytest.mark.parametrize("alpha_hidden", list(IAMTRASK_LAST_OUTPUT), ids=str)
def test_iamtrasks_printed_final_outputs_are_reproduced(
    xor: Data, iamtrask_table: dict[tuple[float, int], TrialResult],
    alpha_hidden: tuple[float, int]
) -> None:
    result = iamtrask_table[alpha_hidden]
    output = predict(xor[0], result.weights, "sigmoid", "sigmoid", False)  # (4, 1)
    assert np.allclose(output.ravel(), IAMTRASK_LAST_OUTPUT[alpha_hidden], rtol=0, atol=5e-9)


def iamtrasks_loop(x: Array, y: Array, alpha: float, iterations: int) -> list[float]:
    """002's alpha loop as printed there, with a private RandomState in place of np.random."""

    def sigmoid(v: Array) -> Array:
        return 1 / (1 + np.exp(-v))

    def sigmoid_output_to_derivative(output: Array) -> Array:
        return output * (1 - output)

    rng = np.random.RandomState(1)
    synapse_0 = 2 * rng.random_sample((3, 4)) - 1
    synapse_1 = 2 * rng.random_sample((4, 1)) - 1
    printed = []
    with np.errstate(over="ignore"):  # his exp overflows at alpha 100 and 1000
        for iteration in range(iterations):
            layer_0 = x
            layer_1 = sigmoid(np.dot(layer_0, synapse_0))
            layer_2 = sigmoid(np.dot(layer_1, synapse_1))
            layer_2_error = layer_2 - y
            if iteration % 10000 == 0:
                printed.append(float(np.mean(abs(layer_2_error))))
            layer_2_delta = layer_2_error * sigmoid_output_to_derivative(layer_2)
            layer_1_error = layer_2_delta.dot(synapse_1.T)
            layer_1_delta = layer_1_error * sigmoid_output_to_derivative(layer_1)
            synapse_1 -= alpha * (layer_1.T.dot(layer_2_delta))
            synapse_0 -= alpha * (layer_0.T.dot(layer_1_delta))
    return printed


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [10.0, 100.0, 1000.0])
def test_the_alphas_missing_from_the_seeds_copy_match_iamtrasks_own_loop(
    xor: Data, iamtrask_table: dict[tuple[float, int], TrialResult], alpha: float
) -> None:
    textbook = iamtrasks_loop(*xor, alpha=alpha, iterations=50001)
    result = iamtrask_table[alpha, 4]
    assert twelve_digits(result.errors[:6, 0]) == twelve_digits(np.array(textbook))


def test_alpha_1000_saturates_at_half_like_the_textbook_and_does_not_diverge(
    xor: Data,
) -> None:
    # pytest turns every warning into an error, so a RuntimeWarning from exp fails this test.
    (result,) = train(xor, [iamtrask_xor(1000.0, 4, 10001)])
    assert twelve_digits(result.errors[:, 0]) == ("0.496410031903", "0.5")
    assert result.diverged_epoch is None
    assert result.status(0.01) == "not_converged"
    assert all(np.isfinite(w).all() for w in result.weights)


def test_iamtrasks_one_layer_network_prints_the_same_outputs() -> None:
    # 002, "Layer Neural Networks": hidden = [], sigmoid output, alpha 1, seed 1; he printed
    # the forward pass of iteration 9999, which is the output after 9999 updates.
    x = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=np.float64)
    y = np.array([[0], [0], [1], [1]], dtype=np.float64)
    params = TrialParams(hidden=(), output="sigmoid", alpha=1.0, seed=1, epochs=9999)
    (result,) = train_batch(x, y, [params])
    output = predict(x, result.weights, "sigmoid", "sigmoid", False)  # (4, 1)
    printed = [0.00505119, 0.00505119, 0.99494905, 0.99494905]
    assert np.allclose(output.ravel(), printed, rtol=0, atol=5e-9)


# --- Trask, Grokking Deep Learning (001) ---------------------------------------------------


def test_trasks_streetlights_loop_is_reproduced_exactly(streetlights: Data) -> None:
    # "Backpropagation in code": Error printed at iteration % 10 == 9 (sse of that epoch).
    params = TrialParams(hidden=(4,), activation="relu", output="linear", descent="stochastic",
                         alpha=0.2, seed=1, epochs=60, record_every=1)
    (result,) = train(streetlights, [params])
    printed = [0.6342311598444467, 0.35838407676317513, 0.0830183113303298,
               0.006467054957103705, 0.0003292669000750734, 1.5055622665134859e-05]
    assert list(result.epochs[9::10]) == [9, 19, 29, 39, 49, 59]
    assert list(result.errors[9::10, 2]) == printed


def test_trasks_one_iteration_of_backprop_is_reproduced() -> None:
    # "One iteration of backprop": hidden 3, seed 1, alpha 0.2, the first light only.
    params = TrialParams(hidden=(3,), activation="relu", output="linear", descent="stochastic",
                         alpha=0.2, seed=1, epochs=1)
    x = np.array([[1, 0, 1]], dtype=np.float64)
    y = np.array([[1]], dtype=np.float64)
    (result,) = train_batch(x, y, [params])
    assert result.errors[0, 2] == 1.0430445982842722
    printed_0_1 = [[-0.16595599, 0.40763847, -0.99977125],
                   [-0.39533485, -0.70648822, -0.81532281],
                   [-0.62747958, -0.34188906, -0.20646505]]
    printed_1_2 = [[0.07763347], [-0.13469566], [0.370439]]
    assert np.allclose(result.weights[0], printed_0_1, rtol=0, atol=5e-9)
    assert np.allclose(result.weights[1], printed_1_2, rtol=0, atol=5e-9)


STREETLIGHTS6_WEIGHTS: GivenWeights = (((0.5,), (0.48,), (-0.7,)),)


def test_trasks_single_light_loop_is_reproduced_exactly() -> None:
    # "Building a neural network": hidden = [], weights [0.5, 0.48, -0.7], alpha 0.1, light 0.
    params = TrialParams(hidden=(), output="linear", alpha=0.1, epochs=20, init="given",
                         weights=STREETLIGHTS6_WEIGHTS, record_every=1)
    x = np.array([[1, 0, 1]], dtype=np.float64)
    y = np.array([[0]], dtype=np.float64)
    (result,) = train_batch(x, y, [params])
    assert result.errors[0, 2] == 0.03999999999999998
    assert result.errors[1, 2] == 0.025599999999999973
    assert result.errors[-1, 2] == 8.307674973656916e-06


def test_trasks_streetlights6_loop_is_reproduced_exactly(streetlights6: Data) -> None:
    # "Learning the whole dataset": stochastic, 40 epochs; "Error For All" is the epoch's sse.
    params = TrialParams(hidden=(), output="linear", descent="stochastic", alpha=0.1,
                         epochs=40, init="given", weights=STREETLIGHTS6_WEIGHTS, record_every=1)
    (result,) = train(streetlights6, [params])
    assert result.errors[0, 2] == 2.6561231104
    assert result.errors[1, 2] == 0.9628701776715985
    assert result.errors[38, 2] == 0.0006143435674831474
    assert result.errors[39, 2] == 0.00053373677328488


# --- the 4-3-2-1 notebook (003) -------------------------------------------------------------

NOTEBOOK_WEIGHTS: GivenWeights = (
    ((0.48933789, -0.72347172, 0.08183022), (-0.23113807, 0.23997173, -0.21066809),
     (0.29863268, -0.23236267, -0.41801194), (-0.20281991, -1.07067008, 0.10292864)),
    ((1.16625098, 0.5995312), (0.9691656, 0.49771763), (-0.48026261, -0.69073575)),
    ((-0.54822941,), (-0.82546952,)),
)
NOTEBOOK_X = np.array([[0.5, -0.2, 0.1, 0.3]])  # (1, 4)
NOTEBOOK_Y = np.array([[0.4]])  # (1, 1)


def notebook_params() -> TrialParams:
    return TrialParams(hidden=(3, 2), activation="sigmoid", output="linear", alpha=1.0,
                       descent="full", epochs=1, init="given", weights=NOTEBOOK_WEIGHTS)


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


def test_the_trainers_first_layer_update_is_the_chain_rule_one() -> None:
    w0, w1, w2 = initial_weights(notebook_params(), 4, 1)
    _, h1, h2, out = forward(NOTEBOOK_X, [w0, w1, w2], "sigmoid", "linear", False)
    delta_out = out - NOTEBOOK_Y  # (1, 1), linear output
    delta_h2 = (delta_out @ w2.T) * h2 * (1 - h2)  # (1, 2)
    delta_h1 = (delta_h2 @ w1.T) * h1 * (1 - h1)  # (1, 3)
    expected = w0 - NOTEBOOK_X.T @ delta_h1  # (4, 3)
    assert np.allclose(notebook_step().weights[0], expected, rtol=1e-14, atol=1e-15)
