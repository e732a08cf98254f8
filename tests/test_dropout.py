"""Dropout: inverted, on every hidden layer while training, with masks drawn from a hash of
(the trial's seed, the step, the layer, the row's place, the unit), so a trial's numbers never
depend on the trials it trains beside. The recorded training errors are those of the epoch's
own (dropped-out) forward passes: what the update saw, at no extra cost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnsweep import engines
from nnsweep.datasets import builtin
from nnsweep.errors import SpecError
from nnsweep.grid import trial_id
from nnsweep.network import TABLE, dropout_scales, initial_weights
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.result import TrialResult
from nnsweep.spec import parse_spec
from nnsweep.trainer import train_batch

RECTANGLES = builtin("rectangles", rows=10, seed=2)
XOR = builtin("xor")


def same(a: TrialResult, b: TrialResult) -> bool:
    return all(np.array_equal(x, y, equal_nan=True) for x, y in (
        (a.errors, b.errors), *zip(a.weights, b.weights, strict=True),
        *zip(a.direction_changes, b.direction_changes, strict=True)))


@given(rates=st.lists(st.sampled_from([0.1, 0.5, 0.9]), min_size=1, max_size=2),
       hidden=st.sampled_from([(3,), (4, 2), (2, 3, 2)]), bias=st.booleans(),
       descent=st.sampled_from(["full", "minibatch", "stochastic"]),
       optimizer=st.sampled_from(["sgd", "momentum", "adam"]),
       activation=st.sampled_from(["sigmoid", "relu", "tanh"]))
def test_the_numpy_engine_is_the_loop_bit_for_bit_with_dropout(
        rates: list[float], hidden: tuple[int, ...], bias: bool, descent: str, optimizer: str,
        activation: str) -> None:
    trials = [TrialParams(hidden=width, dropout=rate, bias=bias, descent=descent, batch_size=3,
                          optimizer=optimizer, activation=activation, output="linear",
                          alpha=0.01, epochs=12, seed=seed)
              for rate in rates for seed in (0, 5)
              for width in (hidden, tuple(2 * h for h in hidden))]
    for trial, result in zip(trials, train_batch(RECTANGLES.x, RECTANGLES.y, trials),
                             strict=True):
        assert same(result, train_one(RECTANGLES.x, RECTANGLES.y, trial)), trial


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_a_unit_is_dropped_with_the_given_probability_and_kept_ones_are_scaled_up(
        rate: float) -> None:
    scales = dropout_scales(np.arange(4, dtype=np.uint64), 17, 1, 500, 100,
                            np.full(4, rate))  # (4, 500, 100)
    dropped = (scales == 0).mean()
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / scales.size)
    assert set(np.unique(scales)) == {0.0, 1 / (1 - rate)}
    assert abs(scales.mean() - 1) < 0.01  # the expected activation is kept


def test_masks_follow_seed_step_layer_row_and_unit_alone() -> None:
    seeds, rates = np.array([3, 8], dtype=np.uint64), np.array([0.5, 0.3])
    both = dropout_scales(seeds, 4, 0, 6, 5, rates)
    for b in range(2):  # a trial's masks are the same beside any other trial
        assert np.array_equal(both[b], dropout_scales(seeds[b : b + 1], 4, 0, 6, 5,
                                                      rates[b : b + 1])[0])
    other = [dropout_scales(seeds, 5, 0, 6, 5, rates), dropout_scales(seeds, 4, 1, 6, 5, rates)]
    assert all(not np.array_equal(both, o) for o in other)
    # a wider step or layer keeps the first rows' masks as they are: rows are counted in order
    assert np.array_equal(dropout_scales(seeds, 4, 0, 9, 5, rates)[:, :6], both)


def test_the_update_is_the_gradient_of_the_dropped_out_network() -> None:
    """One full-descent step against central differences of SSE/2 through the same masks."""
    params = TrialParams(hidden=(5,), activation="tanh", output="linear", dropout=0.4,
                         alpha=1e-3, epochs=1, seed=6)
    x, y = RECTANGLES.x, RECTANGLES.y
    w0, w1 = initial_weights(params, 4, 1)
    scale = dropout_scales(np.array([6], dtype=np.uint64), 0, 0, len(x), 5,
                           np.array([0.4]))[0]  # (rows, 5)

    def loss(a: np.ndarray, b: np.ndarray) -> float:
        out = (TABLE["tanh"].value(x @ a) * scale) @ b
        return float(((out - y) ** 2).sum() / 2)

    numeric = np.zeros_like(w0)
    for index in np.ndindex(w0.shape):
        step = np.zeros_like(w0)
        step[index] = 1e-6
        numeric[index] = (loss(w0 + step, w1) - loss(w0 - step, w1)) / 2e-6
    trained = train_one(x, y, params).weights[0]
    assert np.allclose((w0 - trained) / params.alpha, numeric, rtol=1e-6, atol=1e-9)


def test_no_dropout_and_dropout_without_hidden_layers_train_as_before() -> None:
    plain = TrialParams(hidden=(), output="linear", alpha=0.01, epochs=30)
    dropped = TrialParams(hidden=(), output="linear", alpha=0.01, epochs=30, dropout=0.5)
    assert same(train_one(RECTANGLES.x, RECTANGLES.y, plain),
                train_one(RECTANGLES.x, RECTANGLES.y, dropped))
    assert same(train_batch(RECTANGLES.x, RECTANGLES.y, [plain, dropped])[1],
                train_one(RECTANGLES.x, RECTANGLES.y, plain))
    assert trial_id(TrialParams(), XOR.hash) == trial_id(TrialParams(dropout=0.0), XOR.hash)


def test_dropout_is_swept_like_any_parameter_and_refused_at_one() -> None:
    spec = parse_spec('dataset = "xor"\n[grid]\ndropout = [0, 0.25, 0.5]\n')
    assert [t.params.dropout for t in spec.trials()] == [0.0, 0.25, 0.5]
    with pytest.raises(SpecError, match=r"dropout = 1: expected a number from 0 up to, not "
                                        r"including, 1"):
        parse_spec('dataset = "xor"\n[params]\ndropout = 1\n')


def test_every_engine_installed_trains_dropout() -> None:
    for engine in engines.installed():
        assert engines.lacks(engine, [TrialParams(dropout=0.5)]) is None
    assert engines.resolve("auto", [TrialParams(dropout=0.5)]) == engines.installed()[0]
