"""The compiled engine trains every rule the plain loop spells out: the optimizers and weight
decay, softmax and sigmoid outputs under cross-entropy with the classifiers' accuracy and
cross-entropy, the pass over held-out rows at the recorded epochs (and select = "validation"
on it), dropout with the loop's very masks, each to within 1e-9 of reference.py (the oracle,
computed here in the same process), alone and in any mix.

Each batch key compiles its own kernel with only the features it uses, so every case below
compiles one kernel (loaded from the user's cache on later runs).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given
from hypothesis import strategies as st

from nnsweep import engines
from nnsweep.datasets import Dataset, builtin
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.result import TrialResult

pytestmark = pytest.mark.skipif(engines.installed()[0] != "numba",
                                reason="the numba extra is not installed")

RECTANGLES = builtin("rectangles", rows=12, seed=3)  # 12 rows: batches of 5 leave 2
MODULAR = builtin("modular", modulus=4)  # 16 rows, 8 inputs, 4 one-hot classes
MOONS = builtin("moons", rows=12, noise=0.3)  # 12 rows, 2 inputs, class 0 or 1
RECTANGLES_HELD_OUT = builtin("rectangles", rows=16, seed=3).split(0.25)  # 12 and 4 rows
MODULAR_HELD_OUT = builtin("modular", modulus=4).split(0.25)


def compare(trials: list[TrialParams], data: Dataset = RECTANGLES) -> list[TrialResult]:
    """The compiled engine's results against the loop's, trial by trial (with the data's
    held-out rows, where it has them); the compiled engine's results."""
    held_out = data.validation
    results = engines.train("numba", data.x, data.y, trials, held_out)
    for params, result in zip(trials, results, strict=True):
        assert_close(result, train_one(data.x, data.y, params, held_out))
    return results


def widths(base: TrialParams) -> list[TrialParams]:
    """Three trials of `base`'s batch key: other widths, learning rates and seeds."""
    return [replace(base, hidden=(3,), alpha=0.05, seed=0),
            replace(base, hidden=(5,), alpha=0.01, seed=1),
            replace(base, hidden=(2,), alpha=0.1, seed=2)]


@pytest.mark.parametrize("settings", [
    {"optimizer": "momentum", "momentum": 0.5, "weight_decay": 0.01},
    {"optimizer": "adam", "beta1": 0.8, "beta2": 0.99, "eps": 1e-3},
    {"weight_decay": 0.1},
])
def test_the_compiled_engine_follows_each_optimizer_and_weight_decay(
        settings: dict[str, float | str]) -> None:
    base = TrialParams(activation="tanh", output="linear", descent="minibatch", batch_size=5,
                       epochs=40, record_every=3, **settings)  # type: ignore[arg-type]
    compare(widths(base))


def test_the_optimizers_settings_may_differ_within_a_batch() -> None:
    base = TrialParams(activation="tanh", output="linear", optimizer="adam", epochs=30)
    compare([replace(base, beta1=0.5, seed=0), replace(base, beta2=0.9, eps=0.1, seed=1),
             replace(base, alpha=0.3, seed=2)])


@pytest.mark.parametrize("base", [
    TrialParams(activation="tanh", output="linear", dropout=0.3, descent="minibatch",
                batch_size=5, epochs=40),
    TrialParams(activation="relu", output="sigmoid", dropout=0.5, hidden=(4, 3), bias=True,
                descent="stochastic", shuffle=True, epochs=20),
], ids=["one hidden layer", "two, bias, shuffled"])
def test_the_compiled_engine_drops_the_units_the_loop_drops(base: TrialParams) -> None:
    trials = widths(base) if len(base.hidden) == 1 else [
        replace(base, seed=seed, dropout=rate) for seed, rate in ((0, 0.5), (1, 0.2))]
    results = compare(trials)
    (undropped,) = engines.train("numba", RECTANGLES.x, RECTANGLES.y,
                                 [replace(trials[0], dropout=0.0)])
    assert not np.array_equal(undropped.weights[0], results[0].weights[0])


@pytest.mark.parametrize("base", [
    TrialParams(activation="relu", output="softmax", loss="cross_entropy", metric="accuracy",
                optimizer="adam", bias=True, hidden=(32, 32), epochs=30, tolerance=0.3),
    TrialParams(activation="tanh", output="sigmoid", optimizer="momentum", weight_decay=0.01,
                dropout=0.2, descent="minibatch", batch_size=8, hidden=(64, 48), epochs=20),
], ids=["adam, bias, full descent", "momentum, decay, dropout, minibatches"])
def test_layers_wide_enough_for_blas_train_as_the_loop_trains(base: TrialParams) -> None:
    """The 16 rows of 8 inputs through two wide hidden layers: every product but the output
    layer's is large enough to go to BLAS, which sums in its own order, within 1e-9."""
    compare([replace(base, alpha=0.01, seed=0), replace(base, alpha=0.003, seed=1)], MODULAR)


def test_blas_runs_on_one_thread_while_the_kernels_share_out_the_trials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads' products each threaded by OpenBLAS wait on each other: a batch of the
    digits' widest layers took 30 times as long."""
    from threadpoolctl import threadpool_info

    from nnsweep import engine_numba

    seen: list[list[int]] = []
    share = engine_numba._train_share

    def watched(*args: Any) -> None:
        seen.append([info["num_threads"] for info in threadpool_info()
                     if info["user_api"] == "blas"])
        share(*args)

    monkeypatch.setattr(engine_numba, "_train_share", watched)
    base = TrialParams(activation="tanh", output="linear", optimizer="adam", epochs=3)
    engines.train("numba", RECTANGLES.x, RECTANGLES.y, widths(base))
    assert seen and all(threads and set(threads) == {1} for threads in seen)


def test_a_kernel_is_named_after_its_activations_and_the_features_it_is_built_for() -> None:
    from nnsweep.engine_numba import Variant

    assert Variant.of(TrialParams()).name == ""  # the plain loop keeps its cached kernels
    assert Variant.of(TrialParams(optimizer="adam", weight_decay=0.1)).name == "_adam_decay"
    assert Variant.of(TrialParams(optimizer="momentum")).name == "_momentum"
    assert Variant.of(TrialParams(loss="cross_entropy", dropout=0.5), validating=True).name == (
        "_xent_val_dropout")
    assert Variant.of(TrialParams(dropout=0.5, hidden=())).name == ""  # nothing to drop


def test_a_kernel_is_built_once_per_process_however_its_variant_is_spelled() -> None:
    from nnsweep.engine_numba import Variant, kernel

    assert kernel("tanh", "linear", Variant(decay=True)) is kernel("tanh", "linear",
                                                                  Variant("sgd", True))


def test_every_kernel_shares_one_compile_of_each_helper() -> None:
    from nnsweep import engine_numba
    from nnsweep.engine_numba import Variant, kernel

    kernel("tanh", "linear", Variant(decay=True))
    kernel("tanh", "sigmoid", Variant("adam", classifier=True))
    helpers = [engine_numba._product, engine_numba._forward, engine_numba._gradient,
               engine_numba._backward, engine_numba._views, engine_numba._matrices]
    assert [len(helper.signatures) for helper in helpers] == [1] * len(helpers)


@st.composite
def configurations(draw: st.DrawFn) -> tuple[list[TrialParams], Dataset]:
    """A batch of well-behaved trials of one batch key, mixed widths and settings, with any
    optimizer, loss, dropout, descent, and held-out rows or none; and its data."""
    loss = draw(st.sampled_from(["squared", "cross_entropy"]))
    output = draw(st.sampled_from(["softmax", "sigmoid"])) if loss == "cross_entropy" else (
        draw(st.sampled_from(["linear", "sigmoid"])))
    data = MODULAR if output == "softmax" else MOONS if loss == "cross_entropy" else RECTANGLES
    if draw(st.booleans()):
        data = data.split(0.25, draw(st.integers(0, 3)))
    base = TrialParams(
        activation=draw(st.sampled_from(["tanh", "sigmoid"])), output=output, loss=loss,
        metric=draw(st.sampled_from(["mae", "accuracy", "cross_entropy"]
                                    if loss == "cross_entropy" else ["mae", "sse"])),
        select=draw(st.sampled_from(["train", "validation"])) if data.validation else "train",
        optimizer=draw(st.sampled_from(["sgd", "momentum", "adam"])),
        weight_decay=draw(st.sampled_from([0.0, 0.01])),
        descent=draw(st.sampled_from(["full", "minibatch", "stochastic"])),
        batch_size=draw(st.integers(1, 5)), shuffle=draw(st.booleans()),
        bias=draw(st.booleans()), epochs=draw(st.integers(1, 15)),
        record_every=draw(st.integers(1, 4)), tolerance=0.4,
    )  # type: ignore[arg-type]
    depth = draw(st.integers(1, 2))
    dropout = draw(st.booleans())
    return [replace(base, hidden=tuple(draw(st.integers(1, 5)) for _ in range(depth)),
                    alpha=draw(st.sampled_from([0.001, 0.01, 0.05])),
                    seed=draw(st.integers(0, 50)),
                    dropout=draw(st.sampled_from([0.2, 0.5])) if dropout else 0.0,
                    momentum=draw(st.sampled_from([0.5, 0.9])),
                    beta1=draw(st.sampled_from([0.8, 0.9])))
            for _ in range(draw(st.integers(1, 3)))], data


@pytest.mark.slow  # up to one kernel to compile per example, on the first run
@given(batch=configurations())
def test_the_compiled_engine_agrees_with_the_loop_on_random_configurations(
        batch: tuple[list[TrialParams], Dataset]) -> None:
    compare(*batch)


@pytest.mark.parametrize(("output", "data", "metric"), [
    ("softmax", MODULAR, "accuracy"), ("sigmoid", MOONS, "cross_entropy")])
def test_the_compiled_engine_trains_a_classifier_and_measures_it_as_the_loop_does(
        output: str, data: Dataset, metric: str) -> None:
    base = TrialParams(activation="relu", output=output, loss="cross_entropy", metric=metric,
                       tolerance=0.3, descent="minibatch", batch_size=5, epochs=60,
                       record_every=4)  # type: ignore[arg-type]
    results = compare(widths(base), data)
    assert all(result.errors.shape[1] == 5 for result in results)  # accuracy, cross-entropy


@pytest.mark.parametrize("base", [
    TrialParams(activation="tanh", output="linear", epochs=40, record_every=3),
    TrialParams(activation="relu", output="softmax", loss="cross_entropy", metric="accuracy",
                select="validation", tolerance=0.3, descent="stochastic", epochs=30,
                record_every=4),
], ids=["squared", "classifier selecting on validation"])
def test_the_compiled_engine_measures_the_held_out_rows_at_the_recorded_epochs(
        base: TrialParams) -> None:
    data = MODULAR_HELD_OUT if base.classifier else RECTANGLES_HELD_OUT
    results = compare(widths(base), data)
    assert all(result.validation is not None and len(result.validation) == len(result.epochs)
               for result in results)
