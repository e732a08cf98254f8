"""Stopping and going on: `train_batch(..., until=e)` trains the first e epochs and gives each
result its `state`; `train_batch(..., starts=states)` goes on from there. However a trial's
epochs are cut into calls, and whatever trials share those calls (a subset of the first call's,
in another order, beside trials stopped by other calls), its numbers are those of one run
straight through, bit for bit: this is what successive halving trains by.

A result stopped early is the result of the epochs trained: its history the straight run's up
to the stop, and its best, converged and diverged epochs, weights and direction changes those
of the same trial trained for exactly that many epochs (the oracle these tests compute).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest
from helpers import XOR_X, XOR_Y, frozen
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from nnsweep.network import predict
from nnsweep.params import (
    ACTIVATIONS,
    CLASS_METRICS,
    DESCENTS,
    METRICS,
    OPTIMIZERS,
    REDUCTIONS,
    TrialParams,
)
from nnsweep.result import TrainState, TrialResult
from nnsweep.trainer import EPOCH_CHUNK, train_batch

Array = NDArray[np.float64]
Same = Callable[[TrialResult, TrialResult], None]
Held = tuple[Array, Array] | None

ALPHAS = (0.001, 0.01, 0.1, 0.5, 1.0, 3.0, 10.0, 100.0)
INITS = ("uniform", "normal", "xavier", "he")

RNG = np.random.RandomState(11)
X7 = frozen(RNG.uniform(-1.0, 1.0, (7, 3)))  # (rows, inputs)
Y7 = frozen(RNG.uniform(0.0, 1.0, (7, 2)))  # (rows, outputs)
X_HELD = frozen(RNG.uniform(-1.0, 1.0, (3, 3)))  # (held-out rows, inputs)
Y_HELD = frozen(RNG.uniform(0.0, 1.0, (3, 2)))  # (held-out rows, outputs)


def assert_same(actual: TrialResult, expected: TrialResult, same_result: Same) -> None:
    """Every field equal bit for bit, the held-out rows too."""
    same_result(actual, expected)
    assert actual.metric == expected.metric
    assert (actual.validation is None) == (expected.validation is None)
    if actual.validation is not None:
        np.testing.assert_array_equal(actual.validation, expected.validation, strict=True)


def assert_stopped(stopped: TrialResult, straight: TrialResult, exactly: TrialResult,
                   params: TrialParams, until: int, same_result: Same) -> None:
    """A result stopped at `until`: the straight run's history up to the stop; best,
    converged, diverged, weights and changes of `exactly` (the trial trained `until` epochs);
    its state at `until`, its score the selected metric there."""
    state = stopped.state
    assert state is not None and state.epoch == until
    rows = straight.epochs < until  # a straight run's history stops before a divergence too
    np.testing.assert_array_equal(stopped.epochs, straight.epochs[rows], strict=True)
    np.testing.assert_array_equal(stopped.errors, straight.errors[rows], strict=True)
    if straight.validation is not None:
        assert stopped.validation is not None
        np.testing.assert_array_equal(stopped.validation, straight.validation[rows],
                                      strict=True)
    assert stopped.diverged_epoch == exactly.diverged_epoch
    for got, want in zip(stopped.weights, exactly.weights, strict=True):
        np.testing.assert_array_equal(got, want, strict=True)
    for got_counts, want_counts in zip(stopped.direction_changes, exactly.direction_changes,
                                       strict=True):
        np.testing.assert_array_equal(got_counts, want_counts, strict=True)
    if params.select == "train":  # every epoch trained counts
        same_result(replace(stopped, epochs=exactly.epochs, errors=exactly.errors), exactly)
        np.testing.assert_array_equal(state.score, exactly.final_error)
    else:  # the last row of `exactly` is the forward pass at the stop
        np.testing.assert_array_equal(state.score, exactly.final_validation_error)
        assert stopped.validation is not None
        kept = stopped.diverged_epoch is None and len(stopped.validation)
        np.testing.assert_array_equal(
            stopped.final_error, stopped.validation[-1, stopped.metric] if kept else np.nan)


def carried(state: TrainState | None, params: TrialParams, how: str) -> TrainState | None:
    """A state as another process or run gets it: as is, pickled, or as named arrays (in
    memory, or through an .npz file read without pickle)."""
    if state is None or how == "as is":
        return state
    if how == "pickle":
        again: TrainState = pickle.loads(pickle.dumps(state))
        return again
    arrays = state.arrays()
    if how == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    return TrainState.from_arrays(arrays, params)


# --- the property -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    x: Array  # (rows, inputs)
    y: Array  # (rows, outputs)
    held: Held  # held-out (x, y), or none
    trials: list[TrialParams]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A small batch of one batch key with every rule a state carries drawn: optimizer (adamw's
    decay reads the weights it stopped with), weight decay, dropout, descent and shuffle, a
    classifier's output and loss, held-out rows and the split that decides; alphas up to 100, so
    some trials diverge on the way."""
    rows = draw(st.integers(1, 7))
    inputs = draw(st.integers(1, 3))
    outputs = draw(st.integers(1, 2))
    data = np.random.RandomState(draw(st.integers(0, 2**16)))
    output = draw(st.sampled_from((*ACTIVATIONS, "softmax", "softmax")))
    classifier = output == "softmax" or (output == "sigmoid" and draw(st.booleans()))
    outputs = max(2, outputs) if output == "softmax" else outputs
    held_rows = draw(st.integers(0, 3))

    def targets(n: int) -> Array:
        if output == "softmax":
            return np.eye(outputs)[data.randint(0, outputs, n)]  # (n, outputs) one-hot
        return data.randint(0, 2, (n, outputs)).astype(np.float64)

    x = data.uniform(-1.0, 1.0, (rows, inputs))
    y = targets(rows)
    held = (data.uniform(-1.0, 1.0, (held_rows, inputs)), targets(held_rows)) if held_rows else None
    descent = draw(st.sampled_from(DESCENTS))
    depth = draw(st.integers(0, 2))
    dropout = draw(st.sampled_from((0.0, 0.0, 0.2, 0.5)))
    shared = TrialParams(
        activation=draw(st.sampled_from(ACTIVATIONS)),
        output=output,
        loss="cross_entropy" if classifier else "squared",
        descent=descent,
        batch_size=draw(st.integers(1, 4)),
        reduction=draw(st.sampled_from(REDUCTIONS)),
        epochs=draw(st.integers(2, 40)),
        record_every=draw(st.integers(0, 7)),
        metric=draw(st.sampled_from(METRICS if classifier else
                                    [m for m in METRICS if m not in CLASS_METRICS])),
        bias=draw(st.booleans()),
        shuffle=descent != "full" and draw(st.booleans()),
        optimizer=draw(st.sampled_from(OPTIMIZERS)),
        weight_decay=draw(st.sampled_from((0.0, 0.0, 0.01))),
        select="validation" if held is not None and draw(st.booleans()) else "train",
    )
    widths = st.lists(st.integers(1, 4), min_size=depth, max_size=depth).map(tuple)
    varying = st.tuples(widths, st.sampled_from(ALPHAS), st.integers(0, 50),
                        st.sampled_from(INITS), st.sampled_from((0.01, 0.1, 0.3)),
                        st.sampled_from((0.1, 0.3)))
    trials = [replace(shared, hidden=hidden, alpha=alpha, seed=seed, init=init,
                      tolerance=tolerance, dropout=dropout and rate)
              for hidden, alpha, seed, init, tolerance, rate in draw(
                  st.lists(varying, min_size=1, max_size=5))]
    return Case(x, y, held, trials)


TRANSPORTS = ("as is", "pickle", "arrays", "npz")


@given(case=cases(), data=st.data())
def test_a_run_cut_into_calls_with_trials_leaving_equals_one_run_straight_through(
        case: Case, data: st.DataObject, same_result: Same) -> None:
    x, y, held, trials = case.x, case.y, case.held, case.trials
    epochs = trials[0].epochs
    straight = train_batch(x, y, trials, validation=held)
    stops = data.draw(st.lists(st.integers(1, epochs - 1), min_size=1, max_size=3, unique=True)
                      .map(sorted), label="stops")

    def exactly(indices: Sequence[int], until: int) -> list[TrialResult]:
        return train_batch(x, y, [replace(trials[i], epochs=until) for i in indices],
                           validation=held)

    # The first stop is reached by one call or by two calls over parts of the batch.
    order = data.draw(st.permutations(range(len(trials))), label="first calls' order")
    cut = data.draw(st.integers(1, len(trials)), label="first call's size")
    states: dict[int, TrainState | None] = {}
    for part in (order[:cut], order[cut:]):
        if not part:
            continue
        results = train_batch(x, y, [trials[i] for i in part], validation=held, until=stops[0])
        for i, stopped, oracle in zip(part, results, exactly(part, stops[0]), strict=True):
            assert_stopped(stopped, straight[i], oracle, trials[i], stops[0], same_result)
            states[i] = stopped.state

    # Then at each stop some trials leave (the losers); the rest go on, repacked in any order.
    for until in [*stops[1:], epochs]:
        survivors = data.draw(st.permutations(sorted(states)), label="order")
        survivors = survivors[:data.draw(st.integers(1, len(survivors)), label="survivors")]
        how = data.draw(st.sampled_from(TRANSPORTS), label="carried")
        starts = [carried(states[i], trials[i], how) for i in survivors]
        results = train_batch(x, y, [trials[i] for i in survivors], validation=held,
                              starts=starts, until=until)
        if until == epochs:
            for i, result in zip(survivors, results, strict=True):
                assert result.state is None
                assert_same(result, straight[i], same_result)
            return
        states = {}
        for i, stopped, oracle in zip(survivors, results, exactly(survivors, until),
                                      strict=True):
            assert_stopped(stopped, straight[i], oracle, trials[i], until, same_result)
            states[i] = stopped.state


# --- named examples ---------------------------------------------------------------------------


def test_a_result_trained_to_the_end_has_no_state_and_a_stopped_one_has() -> None:
    params = TrialParams(epochs=10)
    (whole,) = train_batch(XOR_X, XOR_Y, [params])
    (stopped,) = train_batch(XOR_X, XOR_Y, [params], until=4)
    (ended,) = train_batch(XOR_X, XOR_Y, [params], until=10)
    assert whole.state is None and ended.state is None
    assert stopped.state is not None and stopped.state.epoch == 4


def test_a_diverged_trial_stays_frozen_across_a_stop_beside_a_healthy_one(
        same_result: Same) -> None:
    base = TrialParams(hidden=(4,), output="linear", epochs=120, record_every=5,
                       optimizer="momentum")
    trials = [replace(base, alpha=1000.0), replace(base, alpha=0.5)]
    straight = train_batch(XOR_X, XOR_Y, trials)
    diverged = straight[0].diverged_epoch
    assert diverged is not None and diverged < 50 and straight[1].diverged_epoch is None
    first = train_batch(XOR_X, XOR_Y, trials, until=50)
    state = first[0].state
    assert state is not None and state.diverged == diverged and np.isnan(state.score)
    assert first[0].diverged_epoch == diverged
    rest = train_batch(XOR_X, XOR_Y, trials, starts=[r.state for r in first])
    for result, expected in zip(rest, straight, strict=True):
        assert_same(result, expected, same_result)
    (alone,) = train_batch(XOR_X, XOR_Y, trials[:1], starts=[state])
    assert_same(alone, straight[0], same_result)


def test_a_network_that_overflows_in_the_last_update_before_a_stop_diverged_there(
        same_result: Same) -> None:
    # One linear weight of 1e150 learning y = 0 from x = 1: the first epoch's error squares
    # to a finite 1e300, but its update (alpha 1e200 times 1e150) overflows.
    params = TrialParams(hidden=(), output="linear", init="given", weights=(((1e150,),),),
                         alpha=1e200, epochs=4, record_every=1)
    x, y = np.ones((1, 1)), np.zeros((1, 1))
    (straight,) = train_batch(x, y, [params])
    (stopped,) = train_batch(x, y, [params], until=1)
    assert straight.diverged_epoch == 1 and stopped.diverged_epoch == 0
    assert stopped.state is not None and np.isnan(stopped.state.score)
    (going_on,) = train_batch(x, y, [params], starts=[stopped.state])
    assert_same(going_on, straight, same_result)


def test_the_held_out_pass_of_the_score_warns_of_nothing_where_a_unit_saturates() -> None:
    # A sigmoid unit 1000 times its input: exp(1000) overflows to inf, and 1 / inf is 0.
    params = TrialParams(hidden=(1,), init="given", weights=(((-1000.0,),), ((1.0,),)),
                         alpha=0.0, epochs=4, select="validation")
    x, y = frozen([[1.0]]), frozen([[1.0]])
    (stopped,) = train_batch(x, y, [params], validation=(x, y), until=2)
    assert stopped.state is not None and stopped.state.score == 0.5  # |0.5 - 1|


def test_stops_on_either_side_of_an_epoch_chunk_boundary_lose_nothing(
        same_result: Same) -> None:
    trials = [TrialParams(hidden=(3,), alpha=alpha, epochs=2 * EPOCH_CHUNK + 37,
                          descent="minibatch", batch_size=3, shuffle=True, optimizer="adam",
                          record_every=100, select="validation", metric="mse")
              for alpha in (0.01, 0.1)]
    straight = train_batch(X7, Y7, trials, validation=(X_HELD, Y_HELD))
    results: list[TrialResult] = []
    for until in (EPOCH_CHUNK - 3, EPOCH_CHUNK + 250, 2 * EPOCH_CHUNK + 37):
        results = train_batch(X7, Y7, trials, validation=(X_HELD, Y_HELD), until=until,
                              starts=[r.state for r in results] or None)
    for result, expected in zip(results, straight, strict=True):
        assert_same(result, expected, same_result)


def test_the_score_on_held_out_rows_is_one_forward_pass_with_the_weights_at_the_stop() -> None:
    params = TrialParams(hidden=(4,), alpha=0.5, epochs=40, record_every=7, dropout=0.3,
                         select="validation", metric="mse")
    (stopped,) = train_batch(X7, Y7, [params], validation=(X_HELD, Y_HELD), until=19)
    assert stopped.state is not None and 18 not in stopped.epochs  # not a recorded epoch
    err = predict(X_HELD, stopped.weights, params.activation, params.output, params.bias) - Y_HELD
    assert stopped.state.score == (err * err).sum() / err.size


def test_the_score_on_training_rows_is_the_metric_of_the_last_epoch_trained() -> None:
    params = TrialParams(hidden=(4,), alpha=0.5, epochs=40, record_every=7, metric="sse")
    (stopped,) = train_batch(X7, Y7, [params], until=19)
    (last,) = train_batch(X7, Y7, [replace(params, epochs=19)])
    assert stopped.state is not None and stopped.state.score == last.errors[-1, 2]
    assert stopped.final_error == stopped.state.score


def test_on_epoch_hears_the_absolute_epochs_of_a_call_that_goes_on() -> None:
    params = TrialParams(epochs=12)
    (stopped,) = train_batch(XOR_X, XOR_Y, [params], until=5)
    heard: list[int] = []
    train_batch(XOR_X, XOR_Y, [params], heard.append, starts=[stopped.state], until=9)
    assert heard == [5, 6, 7, 8]


def state_at(params: TrialParams, until: int, held: Held = None) -> TrainState:
    (stopped,) = train_batch(X7, Y7, [params], validation=held, until=until)
    assert stopped.state is not None
    return stopped.state


ADAM = TrialParams(hidden=(4, 2), epochs=30, optimizer="adam", descent="minibatch",
                   batch_size=3, shuffle=True)


@pytest.mark.parametrize("params", [ADAM, replace(ADAM, optimizer="adamw", weight_decay=0.1)],
                         ids=["adam", "adamw"])
def test_a_state_survives_npz_without_pickle_and_goes_on_as_before(
        params: TrialParams, same_result: Same) -> None:
    state = state_at(params, 11, (X_HELD, Y_HELD))
    buffer = io.BytesIO()
    np.savez(buffer, **state.arrays())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        again = TrainState.from_arrays(stored, params)
    for name, array in state.arrays().items():
        np.testing.assert_array_equal(again.arrays()[name], array, strict=True)
    (going_on,) = train_batch(X7, Y7, [params], validation=(X_HELD, Y_HELD), starts=[again])
    (straight,) = train_batch(X7, Y7, [params], validation=(X_HELD, Y_HELD))
    assert_same(going_on, straight, same_result)


def test_a_states_arrays_are_named_per_layer_and_the_held_out_rows_only_when_kept() -> None:
    names = set(state_at(replace(ADAM, optimizer="momentum"), 5).arrays())
    per_layer = {f"{name}_{layer}" for name in ("weights", "changes", "up", "first")
                 for layer in range(3)}
    assert names == per_layer | {"epoch", "score", "steps", "seen", "beta1_t", "beta2_t",
                                 "shuffle", "history", "best", "converged", "diverged"}
    assert "validation" in state_at(ADAM, 5, (X_HELD, Y_HELD)).arrays()
    assert "second_2" in state_at(ADAM, 5).arrays()


def spoiled(name: str, change: Callable[[np.ndarray], np.ndarray | None]
            ) -> dict[str, np.ndarray]:
    arrays = state_at(ADAM, 11).arrays()
    value = change(arrays.pop(name))
    if value is not None:
        arrays[name] = value
    return arrays


@pytest.mark.parametrize(("arrays", "message"), [
    (spoiled("weights_1", lambda a: a[:, :1]),
     r"^weights_1: expected shape \(4, 2\), got \(4, 1\)$"),
    (spoiled("history", lambda a: None), r"^history: missing from the training state$"),
    (spoiled("changes_0", lambda a: a.astype(np.float64)),
     r"^changes_0: expected dtype int64, got float64$"),
    (spoiled("up_2", lambda a: a.astype(np.int8)), r"^up_2: expected dtype bool, got int8$"),
    (spoiled("shuffle", lambda a: a[:5]), r"^shuffle: expected shape \(6,\), got \(5,\)$"),
    (spoiled("history", lambda a: a[:-1]), r"^history: expected shape \(11, 3\), got \(10, 3\)$"),
    (spoiled("epoch", lambda a: np.array(30)),
     r"^epoch: expected 1 to 29 \(the epochs\), got 30$"),
    (spoiled("score", lambda a: a.reshape(1)), r"^score: expected shape \(\), got \(1,\)$"),
    ({**state_at(ADAM, 11).arrays(), "weights_9": np.zeros(1)},
     r"^'weights_9': not a field of a training state$"),
], ids=["shape", "missing", "dtype", "bool", "shuffle", "rows", "epoch", "scalar", "unknown"])
def test_from_arrays_names_the_field_that_is_wrong(arrays: dict[str, np.ndarray],
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainState.from_arrays(arrays, ADAM)


def test_a_state_for_other_data_is_refused_by_the_layer_it_does_not_fit() -> None:
    state = state_at(ADAM, 11)
    with pytest.raises(ValueError, match=r"^weights_0: expected shape \(2, 4\) for this "):
        train_batch(X7[:, :2], Y7, [ADAM], starts=[state])


def test_trials_starting_at_different_epochs_are_refused_in_one_call() -> None:
    trials = [replace(ADAM, seed=1), replace(ADAM, seed=2)]
    with pytest.raises(ValueError, match="must start at the same epoch, got epochs 5, 7"):
        train_batch(X7, Y7, trials, starts=[state_at(trials[0], 5), state_at(trials[1], 7)])
    with pytest.raises(ValueError, match="must start at the same epoch, got epochs 0, 5"):
        train_batch(X7, Y7, trials, starts=[None, state_at(trials[1], 5)])
    with pytest.raises(ValueError, match=r"^1 starts for 2 trials$"):
        train_batch(X7, Y7, trials, starts=[state_at(trials[0], 5)])
    behind = replace(state_at(trials[1], 5), steps=14)
    with pytest.raises(ValueError, match="states at epoch 5 disagree on the update steps"):
        train_batch(X7, Y7, trials, starts=[state_at(trials[0], 5), behind])


@pytest.mark.parametrize(("until", "start"), [(5, 5), (3, 5), (31, 5), (0, None)])
def test_until_must_lie_after_the_start_and_within_the_epochs(until: int,
                                                              start: int | None) -> None:
    starts = None if start is None else [state_at(ADAM, start)]
    with pytest.raises(ValueError, match=f"until = {until}: expected an epoch after the start"):
        train_batch(X7, Y7, [ADAM], starts=starts, until=until)


def test_a_state_kept_without_held_out_rows_cannot_go_on_with_them() -> None:
    with pytest.raises(ValueError, match="held-out rows must be the call's"):
        train_batch(X7, Y7, [ADAM], validation=(X_HELD, Y_HELD), starts=[state_at(ADAM, 4)])
