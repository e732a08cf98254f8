"""The batched trainer: equal to the plain loop bit for bit; the numbers README's "The numbers"
states (one update step, the errors of an epoch, direction changes, divergence)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
from helpers import frozen
from numpy.typing import NDArray

from nnsweep.batching import batch_key
from nnsweep.network import forward, initial_weights
from nnsweep.params import ACTIVATIONS, TrialParams
from nnsweep.reference import train_one
from nnsweep.result import TrialResult
from nnsweep.trainer import train_batch

Array = NDArray[np.float64]
Data = tuple[Array, Array]
Same = Callable[[TrialResult, TrialResult], None]

RNG = np.random.RandomState(4)
X7 = frozen(RNG.uniform(-1.0, 1.0, (7, 3)))  # (rows, inputs): 7 rows, minibatches of 3 leave 1
Y7 = frozen(RNG.uniform(0.0, 1.0, (7, 2)))  # (rows, outputs)


def alone(x: Array, y: Array, params: TrialParams) -> TrialResult:
    (result,) = train_batch(x, y, [params])
    return result


def one_weight(w: float, **changes: object) -> TrialParams:
    """A network of a single linear weight: small enough to follow by hand."""
    params = TrialParams(hidden=(), output="linear", init="given", weights=(((w,),),),
                         record_every=1)
    return replace(params, **changes)


# --- equal to the reference loop, whatever the batch ---------------------------------------


def test_a_batch_of_mixed_alphas_seeds_and_inits_equals_the_reference(same_result: Same) -> None:
    base = TrialParams(hidden=(5, 3), activation="tanh", output="sigmoid", epochs=40,
                       record_every=7)
    trials = [replace(base, alpha=alpha, seed=seed, init=init)
              for alpha, seed, init in [(0.5, 0, "uniform"), (2.0, 1, "uniform"),
                                        (0.05, 2, "normal"), (1.0, 3, "xavier"),
                                        (0.3, 4, "he"), (0.5, 0, "uniform")]]
    for params, result in zip(trials, train_batch(X7, Y7, trials), strict=True):
        same_result(result, train_one(X7, Y7, params))


@pytest.mark.parametrize("descent", ["full", "minibatch", "stochastic"])
def test_every_descent_mode_equals_the_reference(descent: str, same_result: Same) -> None:
    trials = [TrialParams(hidden=(4,), activation="relu", output="linear", descent=descent,
                          batch_size=3, alpha=alpha, seed=seed, epochs=30, record_every=1)
              for alpha, seed in [(0.01, 0), (0.1, 1), (0.2, 2)]]
    for params, result in zip(trials, train_batch(X7, Y7, trials), strict=True):
        same_result(result, train_one(X7, Y7, params))


def test_a_trials_numbers_do_not_depend_on_its_batch(same_result: Same) -> None:
    base = TrialParams(hidden=(6,), activation="sigmoid", output="sigmoid", epochs=50,
                       descent="minibatch", batch_size=2, record_every=5)
    trials = [replace(base, alpha=a, seed=s) for a, s in [(0.1, 0), (3.0, 1), (1.0, 2), (0.5, 3)]]
    together = train_batch(X7, Y7, trials)
    reversed_ = train_batch(X7, Y7, trials[::-1])[::-1]
    for params, first, second in zip(trials, together, reversed_, strict=True):
        same_result(first, alone(X7, Y7, params))
        same_result(second, first)


def test_results_come_back_in_the_order_of_the_trials() -> None:
    trials = [TrialParams(alpha=a, seed=1, epochs=5) for a in (0.0, 1.0, 0.0)]
    results = train_batch(X7, Y7, trials)
    assert np.array_equal(results[0].weights[0], results[2].weights[0])
    assert not np.array_equal(results[0].weights[0], results[1].weights[0])


def test_an_empty_batch_trains_nothing() -> None:
    assert train_batch(X7, Y7, []) == []


def test_trials_of_different_depths_are_refused_in_one_batch() -> None:
    with pytest.raises(ValueError, match="batch key"):
        train_batch(X7, Y7, [TrialParams(hidden=(4,)), TrialParams(hidden=(4, 4))])


def test_widths_alpha_seed_init_and_tolerance_do_not_split_a_batch() -> None:
    a = TrialParams(hidden=(4, 2), alpha=0.1, seed=0, init="uniform", tolerance=0.01)
    b = TrialParams(hidden=(8, 1), alpha=9.0, seed=7, init="he", tolerance=0.2)
    assert batch_key(a) == batch_key(b)


def test_networks_of_different_widths_train_together_as_they_train_alone(
    same_result: Same,
) -> None:
    base = TrialParams(activation="relu", output="sigmoid", epochs=30, descent="minibatch",
                       batch_size=3, record_every=4)
    trials = [replace(base, hidden=hidden, alpha=alpha, seed=seed)
              for hidden, alpha, seed in [((4, 2), 0.5, 0), ((1, 5), 1.0, 1), ((4, 2), 0.1, 2),
                                          ((3, 3), 2.0, 3), ((16, 8), 0.5, 4)]]
    for params, result in zip(trials, train_batch(X7, Y7, trials), strict=True):
        same_result(result, train_one(X7, Y7, params))


def test_batch_size_and_shuffle_split_a_batch_only_where_they_matter() -> None:
    assert batch_key(TrialParams(batch_size=2)) == batch_key(TrialParams(batch_size=3))
    assert batch_key(TrialParams(shuffle=True)) == batch_key(TrialParams())
    minibatch = TrialParams(descent="minibatch", batch_size=2)
    assert batch_key(minibatch) != batch_key(replace(minibatch, batch_size=3))
    assert batch_key(minibatch) != batch_key(replace(minibatch, shuffle=True))


@pytest.mark.parametrize("engine", [alone, train_one], ids=["trainer", "reference"])
def test_a_network_with_bias_trains_the_same_in_both_engines(
    engine: Callable[[Array, Array, TrialParams], TrialResult], same_result: Same
) -> None:
    params = TrialParams(hidden=(3, 3), activation="leaky_relu", output="softplus", bias=True,
                         alpha=0.05, seed=5, epochs=25, descent="stochastic")
    same_result(engine(X7, Y7, params), train_one(X7, Y7, params))


# --- history, errors, convergence ----------------------------------------------------------


def test_a_linear_hidden_layer_with_bias_equals_the_reference(same_result: Same) -> None:
    # Found by the property tests: with a bias and no hidden derivative to multiply by, the
    # reference's layer-0 delta is the strided view back[:, :-1], and np.dot on it sums in
    # another order than the trainer's contiguous matmul; the 17th step's bias weight differs.
    data = np.random.RandomState(0)
    x, y = data.uniform(-1.0, 1.0, (6, 1)), data.uniform(0.0, 1.0, (6, 1))
    params = TrialParams(hidden=(1,), activation="linear", output="sigmoid", alpha=0.01,
                         seed=1, epochs=17, bias=True)
    same_result(alone(x, y, params), train_one(x, y, params))


def test_history_keeps_epochs_0_r_2r_and_the_last() -> None:
    result = alone(X7, Y7, TrialParams(epochs=25, record_every=10))
    assert list(result.epochs) == [0, 10, 20, 24]
    assert result.errors.shape == (4, 3)


def test_history_stride_defaults_to_a_thousandth_of_the_epochs() -> None:
    result = alone(X7[:2], Y7[:2], TrialParams(hidden=(2,), epochs=2500))
    assert list(result.epochs[:3]) == [0, 2, 4]
    assert result.epochs[-1] == 2499


def test_the_first_recorded_errors_are_mae_mse_and_sse_of_the_initial_forward_pass() -> None:
    params = TrialParams(hidden=(4,), activation="tanh", output="linear", seed=3, epochs=1)
    weights = initial_weights(params, 3, 2)
    err = forward(X7, weights, "tanh", "linear", False)[-1] - Y7  # (7, 2)
    mae, mse, sse = alone(X7, Y7, params).errors[0]
    assert sse == pytest.approx((err**2).sum(), rel=1e-15)
    assert mse == pytest.approx((err**2).sum() / 14, rel=1e-15)
    assert mae == pytest.approx(np.abs(err).sum() / 14, rel=1e-15)


def test_an_epochs_error_is_measured_before_that_epochs_update() -> None:
    # One weight w, x = 1, y = 0: the error of epoch e is w_e, and w_{e+1} = (1 - alpha) w_e.
    x, y = np.array([[1.0]]), np.array([[0.0]])
    result = alone(x, y, one_weight(1.0, alpha=0.5, epochs=3))
    assert result.errors[:, 0].tolist() == [1.0, 0.5, 0.25]
    assert result.weights[0][0, 0] == 0.125


@pytest.mark.parametrize(("metric", "column"), [("mae", 0), ("mse", 1), ("sse", 2)])
def test_final_and_best_error_follow_the_chosen_metric(metric: str, column: int) -> None:
    params = TrialParams(hidden=(3,), alpha=2.0, seed=1, epochs=60, record_every=1,
                         metric=metric)
    result = alone(X7, Y7, params)
    assert result.final_error == result.errors[-1, column]
    assert result.best_error == result.errors[:, column].min()


def test_converged_epoch_is_the_first_epoch_within_tolerance() -> None:
    params = TrialParams(hidden=(4,), activation="tanh", output="linear", alpha=0.05, seed=2,
                         epochs=200, record_every=1, tolerance=0.3)
    result = alone(X7, Y7, params)
    within = np.flatnonzero(result.errors[:, 0] <= 0.3)
    assert 0 < within[0] < 199
    assert result.converged_epoch == within[0]
    assert result.status(0.3) == "converged"


def test_a_trial_that_never_reaches_tolerance_has_no_converged_epoch() -> None:
    result = alone(X7, Y7, TrialParams(hidden=(2,), alpha=0.001, epochs=20, tolerance=1e-9))
    assert result.converged_epoch is None
    assert result.status(1e-9) == "not_converged"


def test_tolerance_varies_within_a_batch() -> None:
    trials = [replace(one_weight(1.0, alpha=0.5, epochs=6), tolerance=t) for t in (0.3, 0.1)]
    first, second = train_batch(np.array([[1.0]]), np.array([[0.0]]), trials)
    assert (first.converged_epoch, second.converged_epoch) == (2, 4)  # errors 1, .5, .25, ...


def test_zero_alpha_keeps_the_given_weights() -> None:
    params = TrialParams(hidden=(), output="linear", init="given", alpha=0.0, epochs=4,
                         weights=(((0.7,), (-0.2,), (0.1,)),), record_every=1)
    result = alone(X7, Y7[:, :1], params)
    assert result.weights[0].ravel().tolist() == [0.7, -0.2, 0.1]
    assert len(set(result.errors[:, 2].tolist())) == 1


# --- descent modes and reduction -------------------------------------------------------------


def test_a_minibatch_as_large_as_the_data_is_full_descent(same_result: Same) -> None:
    full = TrialParams(hidden=(3,), alpha=0.5, seed=1, epochs=20, record_every=1)
    same_result(alone(X7, Y7, replace(full, descent="minibatch", batch_size=7)),
                alone(X7, Y7, full))
    same_result(alone(X7, Y7, replace(full, descent="minibatch", batch_size=50)),
                alone(X7, Y7, full))


def test_a_minibatch_of_one_row_is_stochastic_descent(same_result: Same) -> None:
    stochastic = TrialParams(hidden=(3,), alpha=0.5, seed=1, epochs=20, descent="stochastic")
    same_result(alone(X7, Y7, replace(stochastic, descent="minibatch", batch_size=1)),
                alone(X7, Y7, stochastic))


def test_minibatches_are_consecutive_slices_in_data_order() -> None:
    # w' = w - alpha * sum(x^2) * w per step; rows [1, 2] then [3]: w * (1 - .5) * (1 - .9).
    x, y = np.array([[1.0], [2.0], [3.0]]), np.zeros((3, 1))
    result = alone(x, y, one_weight(1.0, alpha=0.1, epochs=1, descent="minibatch",
                                    batch_size=2))
    assert result.weights[0][0, 0] == pytest.approx(0.5 * 0.1, rel=1e-12)


def test_mean_reduction_divides_the_gradient_by_the_steps_rows(same_result: Same) -> None:
    # 4 rows: dividing by 4 is exact, so mean at alpha equals sum at alpha / 4 bit for bit.
    x, y = X7[:4], Y7[:4]
    mean = TrialParams(hidden=(3,), alpha=2.0, seed=1, epochs=30, reduction="mean")
    same_result(alone(x, y, mean), alone(x, y, replace(mean, alpha=0.5, reduction="sum")))


def test_mean_and_sum_agree_in_stochastic_descent(same_result: Same) -> None:
    summed = TrialParams(hidden=(3,), alpha=0.3, seed=1, epochs=15, descent="stochastic")
    same_result(alone(X7, Y7, replace(summed, reduction="mean")), alone(X7, Y7, summed))


def test_a_shuffled_minibatch_run_is_reproducible_and_depends_on_its_seed() -> None:
    params = TrialParams(hidden=(3,), alpha=0.5, seed=1, epochs=10, descent="minibatch",
                         batch_size=3, shuffle=True)
    first, again = alone(X7, Y7, params), alone(X7, Y7, params)
    unshuffled = alone(X7, Y7, replace(params, shuffle=False))
    assert np.array_equal(first.weights[0], again.weights[0])
    assert not np.array_equal(first.weights[0], unshuffled.weights[0])


def test_the_shuffle_has_its_own_stream_apart_from_the_weights(same_result: Same) -> None:
    # Same seed in a batch and alone: the shuffle of one trial never draws from another's.
    params = TrialParams(hidden=(3,), seed=4, epochs=10, descent="stochastic", shuffle=True)
    pair = train_batch(X7, Y7, [params, replace(params, seed=5)])
    same_result(pair[0], alone(X7, Y7, params))
    same_result(pair[0], train_one(X7, Y7, params))


@pytest.mark.parametrize("engine", [alone, train_one], ids=["trainer", "reference"])
def test_shuffle_changes_nothing_in_full_descent(
    engine: Callable[[Array, Array, TrialParams], TrialResult], same_result: Same
) -> None:
    # A full-descent step sees every row, so a shuffle could only reorder its sums; batch_key
    # ignores shuffle there, so both engines must ignore it too or they drift apart.
    params = TrialParams(hidden=(5,), alpha=0.5, seed=2, epochs=30, record_every=1)
    same_result(engine(X7, Y7, replace(params, shuffle=True)), engine(X7, Y7, params))


def test_on_epoch_is_called_once_per_epoch_in_order() -> None:
    seen: list[int] = []
    train_batch(X7, Y7, [TrialParams(epochs=6), TrialParams(epochs=6, alpha=1.0)], seen.append)
    assert seen == [0, 1, 2, 3, 4, 5]


# --- direction changes -----------------------------------------------------------------------


def test_an_oscillating_weight_changes_direction_at_every_step() -> None:
    # alpha 1.5: w goes 1, -0.5, 0.25, -0.125, 0.0625: down, up, down, up = 3 changes.
    result = alone(np.array([[1.0]]), np.array([[0.0]]), one_weight(1.0, alpha=1.5, epochs=4))
    assert result.direction_changes[0].tolist() == [[3]]
    assert result.total_direction_changes == 3


def test_a_weight_that_keeps_its_direction_counts_no_change() -> None:
    result = alone(np.array([[1.0]]), np.array([[0.0]]), one_weight(1.0, alpha=0.5, epochs=4))
    assert result.direction_changes[0].tolist() == [[0]]


def test_direction_changes_count_every_step_across_epoch_boundaries() -> None:
    # Stochastic, rows (x=1, y=1) and (x=1, y=-1) from w = 0, alpha 0.1: the gradients are
    # -1, 1.1, -1.01, 0.99: up, down, up, down = 3 changes over 2 epochs of 2 steps.
    x, y = np.array([[1.0], [1.0]]), np.array([[1.0], [-1.0]])
    result = alone(x, y, one_weight(0.0, alpha=0.1, epochs=2, descent="stochastic"))
    assert result.direction_changes[0].tolist() == [[3]]


def test_direction_changes_are_counted_per_weight_and_layer() -> None:
    params = TrialParams(hidden=(4, 3), alpha=3.0, seed=1, epochs=40)
    result = alone(X7, Y7, params)
    assert [c.shape for c in result.direction_changes] == [(3, 4), (4, 3), (3, 2)]
    assert result.total_direction_changes == sum(int(c.sum()) for c in result.direction_changes)
    assert all((c >= 0).all() and (c <= 39).all() for c in result.direction_changes)


# --- divergence --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exploding_batch(streetlights: Data) -> tuple[list[TrialParams], list[TrialResult]]:
    """A linear network at alpha 1 and 1000 overflows; the small alphas train normally."""
    trials = [TrialParams(hidden=(4,), activation="linear", output="linear", alpha=alpha,
                          seed=1, epochs=300, record_every=10)
              for alpha in (0.01, 1.0, 0.1, 1e3)]
    return trials, train_batch(*streetlights, trials)


def test_a_diverging_trial_stops_with_status_diverged(
    exploding_batch: tuple[list[TrialParams], list[TrialResult]],
) -> None:
    _, results = exploding_batch
    for result in (results[1], results[3]):
        assert result.diverged_epoch is not None
        assert result.status(0.01) == "diverged"
        assert np.isnan(result.final_error)
        assert (result.epochs < result.diverged_epoch).all()
        assert np.isfinite(result.errors).all()


def test_a_diverged_trial_equals_the_reference(
    streetlights: Data, exploding_batch: tuple[list[TrialParams], list[TrialResult]],
    same_result: Same,
) -> None:
    trials, results = exploding_batch
    for index in (1, 3):
        same_result(results[index], train_one(*streetlights, trials[index]))


def test_the_rest_of_the_batch_trains_on_after_a_divergence(
    streetlights: Data, exploding_batch: tuple[list[TrialParams], list[TrialResult]],
    same_result: Same,
) -> None:
    trials, results = exploding_batch
    for index in (0, 2):
        assert results[index].diverged_epoch is None
        assert results[index].epochs[-1] == 299
        same_result(results[index], alone(*streetlights, trials[index]))


@pytest.mark.parametrize(("inputs", "epochs"), [((0, 1, 1, 0), 7), ((1, 1, 0, 0), 6)],
                         ids=["counts-and-weights", "last-epoch"])
def test_a_trial_diverging_mid_epoch_equals_the_reference(
    inputs: tuple[int, ...], epochs: int, same_result: Same
) -> None:
    # Found by the property tests: once a weight is infinite, an input of 0 gives 0 * inf,
    # which np.dot (the reference, BLAS) returns as 0 and np.matmul (the trainer) as nan. The
    # rest of the diverging epoch then differs: other direction counts and final weights
    # (7 epochs), or a last epoch whose error is finite in the reference, which flags the
    # divergence by the weights at the end and keeps that epoch, and nan in the trainer,
    # which drops it (6 epochs).
    x, y = np.array(inputs, dtype=np.float64).reshape(4, 1), np.ones((4, 1))
    params = TrialParams(hidden=(2, 1), activation="linear", output="linear", alpha=3.0,
                         descent="stochastic", seed=0, epochs=epochs)
    same_result(alone(x, y, params), train_one(x, y, params))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_no_warning_escapes_even_when_every_network_overflows(activation: str) -> None:
    trials = [TrialParams(hidden=(3, 3), activation=activation, output=output, alpha=alpha,
                          seed=seed, epochs=10, descent="stochastic")
              for output in ("sigmoid", "linear") for alpha, seed in [(1e3, 0), (1e9, 1)]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for output in ("sigmoid", "linear"):
            batch = [t for t in trials if t.output == output]
            train_batch(X7 * 100, Y7, batch)
            train_one(X7 * 100, Y7, batch[0])
    assert [str(w.message) for w in caught] == []


def test_diverged_is_the_first_epoch_with_a_non_finite_error(streetlights: Data) -> None:
    params = TrialParams(hidden=(4,), activation="linear", output="linear", alpha=1.0,
                         seed=1, epochs=300, record_every=1)
    result = alone(*streetlights, params)
    assert result.diverged_epoch is not None
    assert list(result.epochs) == list(range(result.diverged_epoch))
    assert np.isfinite(result.errors).all()
