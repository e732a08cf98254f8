"""Classification: softmax over the outputs, cross-entropy loss (with softmax, or per output
with a sigmoid), whose output delta is p - y. The loop spells it out, the NumPy engine equals
it bit for bit, and the update is the gradient of the loss (central differences). A classifier's
history holds its accuracy and mean cross-entropy too, and either may be its metric."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnsweep
from nnsweep import engines
from nnsweep.datasets import builtin
from nnsweep.errors import SpecError
from nnsweep.network import TABLE, cross_entropy, forward, initial_weights, softmax
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.result import ERROR_NAMES, TrialResult
from nnsweep.spec import parse_spec
from nnsweep.trainer import train_batch

MODULAR = builtin("modular", modulus=4)  # 16 rows, 8 inputs, 4 one-hot outputs
MOONS = builtin("moons", rows=24, noise=0.2, seed=1)  # 2 inputs, one 0/1 output


def same(a: TrialResult, b: TrialResult) -> bool:
    return all(np.array_equal(x, y, equal_nan=True) for x, y in (
        (a.errors, b.errors), *zip(a.weights, b.weights, strict=True),
        *zip(a.direction_changes, b.direction_changes, strict=True)))


@given(output=st.sampled_from(["softmax", "sigmoid"]),
       descent=st.sampled_from(["full", "minibatch", "stochastic"]),
       reduction=st.sampled_from(["sum", "mean"]),
       optimizer=st.sampled_from(["sgd", "adam"]),
       dropout=st.sampled_from([0.0, 0.3]), bias=st.booleans(),
       hidden=st.sampled_from([(), (5,), (3, 4)]))
def test_the_numpy_engine_is_the_loop_bit_for_bit_for_cross_entropy(
        output: str, descent: str, reduction: str, optimizer: str, dropout: float, bias: bool,
        hidden: tuple[int, ...]) -> None:
    data = MODULAR if output == "softmax" else MOONS
    trials = [TrialParams(hidden=hidden, output=output, loss="cross_entropy", descent=descent,
                          batch_size=5, reduction=reduction, optimizer=optimizer,
                          dropout=dropout, bias=bias, activation="relu", alpha=alpha,
                          epochs=10, seed=seed)
              for alpha in (0.05, 3.0) for seed in (0, 1)]
    for trial, result in zip(trials, train_batch(data.x, data.y, trials), strict=True):
        assert same(result, train_one(data.x, data.y, trial)), trial


def _central_differences(loss: object, w: np.ndarray, h: float = 1e-6) -> np.ndarray:
    numeric = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = h
        numeric[index] = (loss(w + step) - loss(w - step)) / (2 * h)  # type: ignore[operator]
    return numeric


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_the_update_is_the_gradient_of_the_cross_entropy(output: str) -> None:
    data = MODULAR if output == "softmax" else MOONS
    x, y = data.x, data.y
    params = TrialParams(hidden=(6,), activation="tanh", output=output, loss="cross_entropy",
                         alpha=1e-3, epochs=1, seed=3)
    w0, w1 = initial_weights(params, x.shape[1], y.shape[1])

    def cross_entropy(first: np.ndarray, second: np.ndarray) -> float:
        z = TABLE["tanh"].value(x @ first) @ second
        if output == "softmax":
            return float(-(y * np.log(softmax(z))).sum())
        p = TABLE["sigmoid"].value(z)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum())

    trained = train_one(x, y, params).weights
    for layer, numeric in enumerate([
            _central_differences(lambda w: cross_entropy(w, w1), w0),
            _central_differences(lambda w: cross_entropy(w0, w), w1)]):
        start = (w0, w1)[layer]
        assert np.allclose((start - trained[layer]) / params.alpha, numeric, rtol=1e-6,
                           atol=1e-8), layer


def test_softmax_rows_are_probabilities_whatever_their_scale() -> None:
    z = np.array([[1.0, 2.0, 3.0], [1e300, -1e300, 0.0], [-750.0, -750.0, -750.0]])
    p = softmax(z)
    assert np.allclose(p.sum(axis=1), 1) and np.isfinite(p).all()
    assert np.array_equal(softmax(z[:1] + 100.0), softmax(z[:1]))  # shifted by the row's max
    assert np.allclose(p[2], 1 / 3)


def test_a_softmax_network_learns_modular_addition_with_adam() -> None:
    data = builtin("modular", modulus=5)
    params = TrialParams(hidden=(32,), activation="relu", output="softmax",
                         loss="cross_entropy", optimizer="adam", alpha=0.01, epochs=400,
                         init="he", seed=0, metric="mse", tolerance=1e-3)
    result = train_one(data.x, data.y, params)
    probabilities = nnsweep.network.predict(data.x, result.weights, "relu", "softmax", False)
    assert (probabilities.argmax(axis=1) == data.y.argmax(axis=1)).all()
    assert result.converged_epoch is not None


@pytest.mark.parametrize(("text", "line"), [
    ('dataset = "modular"\n[params]\noutput = "softmax"\n',
     '<spec>: output = "softmax" needs loss = "cross_entropy" (a trial has loss = "squared")'),
    ('dataset = "xor"\n[params]\noutput = "softmax"\nloss = "cross_entropy"\n',
     '<spec>: output = "softmax" needs two or more outputs; xor has one (softmax over one '
     "output is always 1)"),
    ('dataset = "xor"\n[params]\nloss = "cross_entropy"\n[grid]\noutput = ["sigmoid", '
     '"linear"]\n', '<spec>: loss = "cross_entropy" needs output = "softmax" or "sigmoid" (a '
     'trial has output = "linear")'),
    ('dataset = "xor"\n[params]\nactivation = "softmax"\n',
     '<spec>: params.activation = "softmax": expected one of "sigmoid", "relu", "tanh", '
     '"linear", "leaky_relu", "softplus"'),
    ('dataset = "xor"\n[params]\nloss = "hinge"\n',
     '<spec>: params.loss = "hinge": expected one of "squared", "cross_entropy"'),
])
def test_a_loss_that_does_not_fit_its_output_is_told(text: str, line: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec(text)
    assert raised.value.problems == [line]


def test_a_zip_may_pair_each_output_with_its_own_loss() -> None:
    spec = parse_spec('dataset = "modular"\n[[zip]]\noutput = ["sigmoid", "softmax"]\n'
                      'loss = ["squared", "cross_entropy"]\n')
    assert [(t.params.output, t.params.loss) for t in spec.trials()] == [
        ("sigmoid", "squared"), ("softmax", "cross_entropy")]


def test_every_engine_installed_trains_a_classifier() -> None:
    trials = [TrialParams(output="softmax", loss="cross_entropy")]
    for engine in engines.installed():
        assert engines.lacks(engine, trials) is None
    assert engines.resolve("auto", trials) == engines.installed()[0]


def test_a_classification_sweep_runs_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "moons.toml"
    path.write_text('[dataset]\nname = "moons"\nrows = 40\n[params]\nloss = "cross_entropy"\n'
                    'activation = "tanh"\nhidden = 8\nepochs = 200\nreduction = "mean"\n'
                    "[grid]\nalpha = [0.1, 1]\n", encoding="utf-8")
    results = nnsweep.run(nnsweep.load_spec(path), out=tmp_path / "out", jobs=1)
    assert list(results.trials["loss"]) == ["cross_entropy"] * 2
    assert results.trials["final_error"].notna().all()


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_accuracy_and_cross_entropy_of_epoch_0_are_the_initial_networks_by_the_textbook(
        output: str) -> None:
    data = MODULAR if output == "softmax" else MOONS
    x, y = data.x, data.y
    params = TrialParams(hidden=(6,), activation="tanh", output=output, loss="cross_entropy",
                         epochs=2, seed=5)
    p = forward(x, initial_weights(params, x.shape[1], y.shape[1]), "tanh", output, False)[-1]
    if output == "softmax":  # one answer per row: the most probable class
        accuracy = np.mean(p.argmax(axis=1) == y.argmax(axis=1))
        loss = np.mean([-sum(t * math.log(q) for t, q in zip(row_y, row_p, strict=True)
                             if t) for row_y, row_p in zip(y, p, strict=True)])
    else:  # each output answers p > 0.5
        accuracy = np.mean((p > 0.5) == (y > 0.5))
        loss = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=1))
    first = train_one(x, y, params).errors[0]
    assert first.shape == (len(ERROR_NAMES),)
    assert first[ERROR_NAMES.index("accuracy")] == accuracy
    assert first[ERROR_NAMES.index("cross_entropy")] == pytest.approx(loss, rel=1e-12)


def test_a_saturated_output_costs_nothing_when_right_and_everything_when_wrong() -> None:
    y = np.array([[1.0, 0.0]])
    for output in ("softmax", "sigmoid"):
        assert cross_entropy(np.array([[1.0, 0.0]]), y, output).sum() == 0.0
        assert cross_entropy(np.array([[0.0, 1.0]]), y, output).sum() == math.inf


def test_squared_loss_trials_have_no_accuracy_or_cross_entropy() -> None:
    params = TrialParams(hidden=(4,), epochs=5, record_every=1)
    result = train_one(MOONS.x, MOONS.y, params)
    assert result.errors.shape == (5, 3)  # mae, mse, sse: no work spent on the others
    assert np.array_equal(result.errors, train_batch(MOONS.x, MOONS.y, [params])[0].errors)


def test_accuracy_as_the_metric_is_best_when_highest_and_converges_at_1_minus_tolerance(
        ) -> None:
    data = builtin("modular", modulus=5)
    params = TrialParams(hidden=(32,), activation="relu", output="softmax",
                         loss="cross_entropy", optimizer="adam", alpha=0.01, epochs=150,
                         init="he", seed=0, metric="accuracy", tolerance=0.2, record_every=1)
    result = train_one(data.x, data.y, params)
    accuracy = result.errors[:, ERROR_NAMES.index("accuracy")]  # every epoch recorded
    assert result.best_error == accuracy.max() > accuracy.min()
    assert result.final_error == accuracy[-1]
    assert result.converged_epoch == int(np.argmax(accuracy >= 0.8))
    assert result.status(0.2) == "converged" and result.status(0.0) == ("converged" if
                                                                        accuracy[-1] == 1
                                                                        else "not_converged")
    assert same(train_batch(data.x, data.y, [params])[0], result)


def test_cross_entropy_as_the_metric_is_best_when_lowest() -> None:
    params = TrialParams(hidden=(6,), activation="tanh", loss="cross_entropy", alpha=0.5,
                         epochs=40, record_every=1, metric="cross_entropy", tolerance=0.3)
    result = train_one(MOONS.x, MOONS.y, params)
    loss = result.errors[:, ERROR_NAMES.index("cross_entropy")]
    assert result.best_error == loss.min() and result.final_error == loss[-1]
    hit = np.flatnonzero(loss <= 0.3)
    assert result.converged_epoch == (int(hit[0]) if len(hit) else None)


def test_a_classifiers_metric_goes_with_cross_entropy_and_nothing_else() -> None:
    assert parse_spec('dataset = "modular"\n[params]\noutput = "softmax"\n'
                      'loss = "cross_entropy"\nmetric = "accuracy"\n').size() == 1
    zipped = parse_spec('dataset = "xor"\n[[zip]]\nmetric = ["mae", "cross_entropy"]\n'
                        'loss = ["squared", "cross_entropy"]\n')
    assert [t.params.metric for t in zipped.trials()] == ["mae", "cross_entropy"]
    with pytest.raises(SpecError) as raised:
        parse_spec('dataset = "xor"\n[params]\nmetric = "cross_entropy"\n[grid]\n'
                   'loss = ["cross_entropy", "squared"]\n')
    assert raised.value.problems == [
        '<spec>: params.metric = "cross_entropy": expected loss = "cross_entropy" with it '
        '(cross_entropy is measured on classifiers; a trial has loss = "squared")']
