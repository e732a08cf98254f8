"""The pieces every trainer shares: activations, derivatives from outputs, initial weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnsweep import network
from nnsweep.network import (
    ACTIVATION_FNS,
    DERIVATIVE_FNS,
    forward,
    initial_weights,
    predict,
    weight_shapes,
)
from nnsweep.params import ACTIVATIONS, TrialParams

# Points away from relu's and leaky relu's kink at 0, where a derivative is not defined.
POINTS = np.array([-6.0, -2.5, -1.0, -0.3, -0.01, 0.02, 0.4, 1.0, 2.2, 7.0])


def derivative_from_output(name: str, x: np.ndarray) -> np.ndarray:
    deriv = DERIVATIVE_FNS[name]
    out = ACTIVATION_FNS[name](x)
    return np.ones_like(x) if deriv is None else np.asarray(deriv(out), dtype=np.float64)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_each_derivative_taken_from_the_output_is_the_activations_slope(name: str) -> None:
    fn, h = ACTIVATION_FNS[name], 1e-6
    numeric = (fn(POINTS + h) - fn(POINTS - h)) / (2 * h)
    assert np.allclose(derivative_from_output(name, POINTS), numeric, rtol=1e-6, atol=1e-9)


def test_every_activation_has_a_derivative() -> None:
    assert set(ACTIVATION_FNS) == set(ACTIVATIONS) == set(DERIVATIVE_FNS)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_written_into_buffers_each_form_gives_the_same_floats(name: str) -> None:
    # the NumPy trainer activates in place and reuses buffers; the loop allocates
    entry = network.TABLE[name]
    z = POINTS.copy()
    entry.value(z, z, np.empty(z.shape, dtype=bool))
    assert np.array_equal(z, entry.value(POINTS))
    if entry.deriv is not None:
        into = entry.deriv(z, np.empty_like(z), np.empty(z.shape, dtype=bool))
        assert np.array_equal(into, entry.deriv(z))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_the_scalar_forms_the_compiled_engine_uses_agree_with_the_array_forms(name: str) -> None:
    entry = network.TABLE[name]
    out = entry.value(POINTS)
    scalar = [entry.scalar(float(x), math.exp) for x in POINTS]
    np.testing.assert_allclose(scalar, out, rtol=1e-15, atol=0)
    assert (entry.deriv is None) == (entry.scalar_deriv is None)
    if entry.deriv is not None and entry.scalar_deriv is not None:
        slopes = [entry.scalar_deriv(float(o), math.exp) for o in out]
        np.testing.assert_allclose(slopes, np.asarray(entry.deriv(out), dtype=float), rtol=1e-15,
                                   atol=1e-16)


def test_relu_keeps_positive_inputs_and_zeroes_the_rest() -> None:
    assert list(network.relu(np.array([-2.0, 0.0, 3.0]))) == [0.0, 0.0, 3.0]


def test_leaky_relu_scales_negative_inputs_by_its_slope() -> None:
    out = network.leaky_relu(np.array([-2.0, 3.0]))
    assert list(out) == [-2.0 * network.LEAKY_SLOPE, 3.0]


def test_softplus_stays_finite_and_silent_for_large_inputs() -> None:
    out = network.softplus(np.array([-1000.0, 0.0, 1000.0]))
    assert np.array_equal(out, [0.0, np.log(2.0), 1000.0])


def test_activations_work_elementwise_on_batched_arrays() -> None:
    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)  # (B, rows, units)
    for name, fn in ACTIVATION_FNS.items():
        assert np.array_equal(fn(x)[1], fn(x[1])), name


# --- initial weights ---------------------------------------------------------------------


def test_uniform_weights_are_the_textbooks_draw() -> None:
    # np.random.seed(1); 2*np.random.random((3, 3)) - 1; 2*np.random.random((3, 1)) - 1,
    # as printed in 001 ("One iteration of backprop").
    w01, w12 = initial_weights(TrialParams(hidden=(3,), seed=1), 3, 1)
    printed_0_1 = [[-0.16595599, 0.44064899, -0.99977125],
                   [-0.39533485, -0.70648822, -0.81532281],
                   [-0.62747958, -0.30887855, -0.20646505]]
    assert np.allclose(w01, printed_0_1, rtol=0, atol=5e-9)
    assert np.allclose(w12, [[0.07763347], [-0.16161097], [0.370439]], rtol=0, atol=5e-9)


def test_uniform_weights_equal_the_global_state_draw_bit_for_bit() -> None:
    rng = np.random.RandomState(7)  # the same stream np.random.seed(7) gives
    expected = [2 * rng.random_sample((3, 5)) - 1, 2 * rng.random_sample((5, 2)) - 1,
                2 * rng.random_sample((2, 1)) - 1]
    weights = initial_weights(TrialParams(hidden=(5, 2), seed=7), 3, 1)
    assert all(np.array_equal(w, e) for w, e in zip(weights, expected, strict=True))


def test_drawing_weights_leaves_numpys_global_random_state_alone() -> None:
    before = np.random.get_state()[1].copy()
    for init in ("uniform", "normal", "xavier", "he"):
        initial_weights(TrialParams(hidden=(4,), init=init, seed=3), 3, 1)
    assert np.array_equal(np.random.get_state()[1], before)


def test_the_same_seed_draws_the_same_weights_and_another_seed_others() -> None:
    a = initial_weights(TrialParams(seed=5), 3, 1)
    b = initial_weights(TrialParams(seed=5), 3, 1)
    c = initial_weights(TrialParams(seed=6), 3, 1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_normal_weights_have_standard_deviation_fan_in_to_the_minus_half() -> None:
    (w,) = initial_weights(TrialParams(hidden=(), init="normal", seed=0), 400, 300)
    assert abs(w.mean()) < 0.002
    assert w.std() == pytest.approx(400**-0.5, rel=0.02)


def test_xavier_weights_are_uniform_within_the_glorot_limit() -> None:
    (w,) = initial_weights(TrialParams(hidden=(), init="xavier", seed=0), 400, 200)
    limit = np.sqrt(6.0 / 600)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)


def test_he_weights_have_standard_deviation_root_two_over_fan_in() -> None:
    (w,) = initial_weights(TrialParams(hidden=(), init="he", seed=0), 400, 300)
    assert w.std() == pytest.approx(np.sqrt(2.0 / 400), rel=0.02)


def test_given_weights_are_used_as_written() -> None:
    given = (((0.5, -1.0), (2.0, 0.25)), ((1.5,), (-0.75,)))
    weights = initial_weights(TrialParams(hidden=(2,), init="given", weights=given), 2, 1)
    assert [w.tolist() for w in weights] == [[[0.5, -1.0], [2.0, 0.25]], [[1.5], [-0.75]]]


def test_given_init_without_weights_is_refused() -> None:
    with pytest.raises(ValueError, match="explicit weights"):
        initial_weights(TrialParams(init="given"), 3, 1)


def test_given_weights_with_a_layer_missing_are_refused() -> None:
    given = (((0.5,), (0.25,), (1.0,)),)
    with pytest.raises(ValueError):
        initial_weights(TrialParams(hidden=(2,), init="given", weights=given), 3, 1)


def test_a_bias_adds_one_input_row_to_every_weight_matrix() -> None:
    params = TrialParams(hidden=(4, 2))
    assert weight_shapes(params, 3, 1) == [(3, 4), (4, 2), (2, 1)]
    biased = TrialParams(hidden=(4, 2), bias=True)
    assert weight_shapes(biased, 3, 1) == [(4, 4), (5, 2), (3, 1)]
    assert [w.shape for w in initial_weights(biased, 3, 1)] == [(4, 4), (5, 2), (3, 1)]


def test_no_hidden_layer_means_one_weight_matrix() -> None:
    assert weight_shapes(TrialParams(hidden=()), 3, 2) == [(3, 2)]


# --- forward and predict -----------------------------------------------------------------


def test_forward_returns_the_input_and_every_layers_output() -> None:
    x = np.array([[1.0, -2.0, 0.5]])  # (1, 3)
    w0 = np.array([[1.0, -1.0], [0.5, 0.5], [2.0, 0.0]])  # (3, 2)
    w1 = np.array([[1.0], [-3.0]])  # (2, 1)
    outs = forward(x, [w0, w1], "relu", "linear", False)
    assert [o.tolist() for o in outs] == [[[1.0, -2.0, 0.5]], [[1.0, 0.0]], [[1.0]]]


def test_the_output_activation_applies_to_the_last_layer_only() -> None:
    x = np.array([[1.0]])
    w = [np.array([[2.0]]), np.array([[-1.0]])]
    outs = forward(x, w, "linear", "sigmoid", False)
    assert outs[1][0, 0] == 2.0
    assert outs[2][0, 0] == network.sigmoid(np.array(-2.0))


def test_a_bias_is_the_last_weight_row_times_a_constant_one() -> None:
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])  # (2, 2)
    w = np.array([[0.5], [-0.25], [3.0]])  # (3, 1): two inputs and the bias
    (out,) = forward(x, [w], "linear", "linear", True)[1:]
    assert np.array_equal(out, x @ w[:2] + w[2])


def test_predict_takes_a_single_row_and_stays_silent_on_overflow() -> None:
    w = [np.array([[1000.0], [0.0]])]
    out = predict([-1.0, 0.0], w, "sigmoid", "sigmoid", False)
    assert out.shape == (1, 1)
    assert out[0, 0] == 0.0
