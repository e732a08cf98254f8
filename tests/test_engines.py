"""Engines: which one runs, how batches are planned, and that the compiled engine agrees with
the NumPy engine (itself bit for bit the plain loop) on the textbooks' figures and at random."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
from harness import chaotic
from helpers import CLOSE, assert_close, frozen
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from nnsweep import engines
from nnsweep.batching import batch_indices, batch_key, epoch_seconds, split
from nnsweep.errors import EngineLacks, NnsweepError
from nnsweep.params import ACTIVATIONS, TrialParams
from nnsweep.reference import train_one
from nnsweep.result import TrialResult
from nnsweep.trainer import train_batch

Array = NDArray[np.float64]
Data = tuple[Array, Array]
Same = Callable[[TrialResult, TrialResult], None]

RNG = np.random.RandomState(11)
X9 = frozen(RNG.uniform(-1.0, 1.0, (9, 3)))  # (rows, inputs): 9 rows, so batches of 4 leave 1
Y9 = frozen(RNG.uniform(0.0, 1.0, (9, 2)))  # (rows, outputs)
needs_numba = pytest.mark.skipif(engines.installed()[0] != "numba",
                                 reason="the numba extra is not installed")


def numba_train(x: Array, y: Array, trials: list[TrialParams]) -> list[TrialResult]:
    return engines.train("numba", x, y, trials)


# --- choosing an engine -------------------------------------------------------------------


def test_auto_resolves_to_the_fastest_installed_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "installed", lambda: ["numba", "numpy"])
    assert engines.resolve("auto") == "numba"
    monkeypatch.setattr(engines, "installed", lambda: ["numpy"])
    assert engines.resolve("auto") == "numpy"


def test_a_named_engine_resolves_to_itself() -> None:
    assert engines.resolve("numpy") == "numpy"


def test_an_engine_whose_extra_is_missing_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engines, "installed", lambda: ["numpy"])
    with pytest.raises(NnsweepError) as error:
        engines.resolve("numba")
    assert str(error.value) == ("engine 'numba' needs the numba extra: "
                                "pip install 'nnsweep[numba]'")


def test_an_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(NnsweepError, match="expected one of numpy, numba, auto"):
        engines.resolve("torch")


def test_an_engine_lacking_a_setting_is_refused_by_name_and_auto_passes_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engines, "installed", lambda: ["numba", "numpy"])
    monkeypatch.setattr(engines, "lacks", lambda engine, trials, validating=False, stopping=False: (
        "dropout > 0" if engine == "numba" else None))
    with pytest.raises(EngineLacks, match="numba engine does not train dropout > 0"):
        engines.resolve("numba", [TrialParams(dropout=0.5)])
    assert engines.resolve("auto", [TrialParams(dropout=0.5)]) == "numpy"


def test_train_returns_one_result_per_trial_in_order_across_batch_keys(same_result: Same) -> None:
    trials = [TrialParams(hidden=(3,), alpha=0.5, epochs=15),
              TrialParams(hidden=(2, 2), alpha=0.1, epochs=15),
              TrialParams(hidden=(5,), alpha=0.2, seed=3, epochs=15),
              TrialParams(hidden=(3,), descent="stochastic", epochs=15)]
    assert len({batch_key(t) for t in trials}) == 3
    for params, result in zip(trials, engines.train("numpy", X9, Y9, trials), strict=True):
        same_result(result, train_one(X9, Y9, params))


# --- planning batches ---------------------------------------------------------------------


def w49(epochs: int = 10) -> list[TrialParams]:
    return [TrialParams(hidden=(h,), alpha=a, seed=1, epochs=epochs)
            for a in (0.001, 0.01, 0.1, 1, 10, 100, 1000) for h in (4, 8, 16, 32, 64, 128, 256)]


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_a_plan_holds_every_trial_once_and_one_batch_key_per_batch(workers: int) -> None:
    trials = [*w49(), *[replace(t, hidden=(4, 4)) for t in w49()[:5]]]
    planned = batch_indices(trials, workers)
    assert sorted(i for batch in planned for i in batch) == list(range(len(trials)))
    assert all(len({batch_key(trials[i]) for i in batch}) == 1 for batch in planned)
    assert len(planned) <= 2 * workers


def test_a_plan_deals_out_whole_width_groups_when_they_fit_a_workers_share() -> None:
    trials = w49()
    planned = batch_indices(trials, 2)
    assert len(planned) == 2
    homes = {h: {b for b, batch in enumerate(planned) for i in batch
                 if trials[i].hidden == (h,)} for h in (4, 8, 16, 32, 64, 128, 256)}
    assert all(len(batches) == 1 for batches in homes.values())


def test_no_batch_exceeds_the_size_limit() -> None:
    planned = batch_indices(w49(), 1, max_batch=7)
    assert max(len(batch) for batch in planned) <= 7


def test_no_batch_holds_much_more_than_the_time_limit() -> None:
    trials = w49(epochs=1_000_000)
    limit = 60.0
    planned = batch_indices(trials, 1, max_seconds=limit)
    costs = [trials[0].epochs * epoch_seconds([trials[i] for i in batch]) for batch in planned]
    assert len(planned) > 1 and max(costs) < 2 * limit


def test_a_width_group_costlier_than_a_share_is_cut_into_equal_parts() -> None:
    trials = [TrialParams(hidden=(256,), alpha=a / 10, epochs=10) for a in range(1, 9)]
    parts = split([*trials, TrialParams(hidden=(4,), epochs=10)], 4)
    assert sorted(len(part) for part in parts) == [2, 2, 2, 3]


# --- the compiled engine agrees with the NumPy engine ---------------------------------------

IAMTRASK_MAE = {  # iamtrask's alpha table: mae at epochs 0, 10000, ... for hidden 4, seed 1
    0.001: (0.496410031903, 0.495164025493, 0.493596043188, 0.491606358559, 0.489100166544,
            0.485977857846),
    0.01: (0.496410031903, 0.457431074442, 0.359097202563, 0.239358137159, 0.143070659013,
           0.0985964298089),
    0.1: (0.496410031903, 0.0428880170001, 0.0240989942285, 0.0181106521468, 0.0149876162722,
          0.0130144905381),
}


@needs_numba
def test_the_compiled_engine_reproduces_iamtrasks_alpha_table(xor: Data) -> None:
    trials = [TrialParams(hidden=(4,), alpha=alpha, seed=1, epochs=50001, record_every=10000)
              for alpha in IAMTRASK_MAE]
    for alpha, result in zip(IAMTRASK_MAE, numba_train(*xor, trials), strict=True):
        assert list(result.epochs) == [0, 10000, 20000, 30000, 40000, 50000]
        # printed to 12 significant digits, so within 5e-13 of the true values
        np.testing.assert_allclose(result.errors[:, 0], IAMTRASK_MAE[alpha], rtol=0,
                                   atol=1e-12)


@needs_numba
def test_the_compiled_engine_reproduces_trasks_streetlights_errors(streetlights: Data) -> None:
    params = TrialParams(hidden=(4,), activation="relu", output="linear", descent="stochastic",
                         alpha=0.2, seed=1, epochs=60, record_every=1)
    (result,) = numba_train(*streetlights, [params])
    printed = [0.6342311598444467, 0.35838407676317513, 0.0830183113303298,
               0.006467054957103705, 0.0003292669000750734, 1.5055622665134859e-05]
    np.testing.assert_allclose(result.errors[9::10, 2], printed, rtol=CLOSE)


@needs_numba
def test_the_compiled_engine_agrees_with_numpy_on_the_w49_shapes(xor: Data) -> None:
    # in a chaotic trial (alpha 0.1 at width 256, alpha 1 at 32 and more, ...) one ulp grows
    trials = [t for t in w49(epochs=300) if not chaotic(t)]
    for actual, expected in zip(numba_train(*xor, trials), train_batch(*xor, trials),
                                strict=True):
        assert_close(actual, expected)


@needs_numba
def test_a_trial_trains_the_same_alone_as_in_a_batch_of_other_widths(xor: Data) -> None:
    trials = [TrialParams(hidden=(h,), alpha=1.0, seed=h, epochs=200) for h in (3, 17, 40)]
    together = numba_train(*xor, trials)
    for params, result in zip(trials, together, strict=True):
        (alone,) = numba_train(*xor, [params])
        assert np.array_equal(alone.errors, result.errors)
        assert all(np.array_equal(a, b) for a, b in zip(alone.weights, result.weights,
                                                        strict=True))


@needs_numba
def test_the_compiled_engine_stops_a_diverging_trial_where_numpy_does() -> None:
    trials = [TrialParams(hidden=(3,), activation="relu", output="linear", alpha=alpha,
                          epochs=400, record_every=1) for alpha in (50.0, 0.01)]
    compiled, numpy = numba_train(X9, Y9, trials), train_batch(X9, Y9, trials)
    assert numpy[0].diverged_epoch is not None and numpy[1].diverged_epoch is None
    for actual, expected in zip(compiled, numpy, strict=True):
        assert actual.diverged_epoch == expected.diverged_epoch
        assert np.array_equal(actual.epochs, expected.epochs)
        assert np.isnan(actual.final_error) == np.isnan(expected.final_error)


@st.composite
def configurations(draw: st.DrawFn) -> list[TrialParams]:
    """A batch of well-behaved trials of one batch key and mixed widths."""
    depth = draw(st.integers(0, 3))
    base = TrialParams(
        activation=draw(st.sampled_from(ACTIVATIONS)),
        output=draw(st.sampled_from(["sigmoid", "linear", "tanh"])),
        descent=draw(st.sampled_from(["full", "minibatch", "stochastic"])),
        batch_size=draw(st.integers(1, 5)),
        reduction=draw(st.sampled_from(["sum", "mean"])),
        bias=draw(st.booleans()),
        shuffle=draw(st.booleans()),
        epochs=draw(st.integers(1, 25)),
        record_every=draw(st.integers(1, 6)),
        metric=draw(st.sampled_from(["mae", "mse", "sse"])),
        tolerance=0.5,
    )
    count = draw(st.integers(1, 4))
    return [replace(base, hidden=tuple(draw(st.integers(1, 6)) for _ in range(depth)),
                    alpha=draw(st.sampled_from([0.001, 0.01, 0.05])),
                    seed=draw(st.integers(0, 50)),
                    init=draw(st.sampled_from(["uniform", "normal", "xavier"])))
            for _ in range(count)]


@needs_numba
@given(trials=configurations())
def test_the_compiled_engine_agrees_with_numpy_on_random_configurations(
    trials: list[TrialParams],
) -> None:
    for actual, expected in zip(numba_train(X9, Y9, trials), train_batch(X9, Y9, trials),
                                strict=True):
        assert_close(actual, expected)


# --- the NumPy engine's bookkeeping across its chunks ----------------------------------------


def test_runs_longer_than_the_trainers_chunks_equal_the_reference(
    xor: Data, same_result: Same
) -> None:
    # 1100 epochs cross the trainer's 512-epoch chunks of errors twice, and its buffers of
    # update directions many times; the linear models diverge inside the second chunk.
    sigmoid = [TrialParams(hidden=(3,), alpha=0.5, seed=2, epochs=1100, record_every=7),
               TrialParams(hidden=(6,), alpha=2.0, seed=3, epochs=1100, record_every=7)]
    linear = [TrialParams(hidden=(), output="linear", alpha=alpha, epochs=1100, record_every=7)
              for alpha in (0.35, 0.4, 0.45)]
    for trials in (sigmoid, linear):
        for params, result in zip(trials, train_batch(*xor, trials), strict=True):
            same_result(result, train_one(*xor, params))
    diverged = [r.diverged_epoch for r in train_batch(*xor, linear)]
    assert diverged[0] is None and 512 <= diverged[1] < 1024 and 512 <= diverged[2] < 1024


def test_drift_is_zero_between_equal_results_and_infinite_when_epochs_differ(xor: Data) -> None:
    from harness import drift

    trials = [TrialParams(hidden=(4,), alpha=0.5, epochs=30, record_every=3)]
    (result,) = train_batch(*xor, trials)
    (shorter,) = train_batch(*xor, [replace(trials[0], epochs=20)])
    assert drift([result], [result]) == [0.0]
    assert drift([shorter], [result]) == [float("inf")]


def test_the_compiled_engine_needs_scipys_blas_and_auto_passes_it_over_without(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert engines.broken("numba") is None and engines.broken("numpy") is None  # here it runs
    monkeypatch.setattr(engines, "installed", lambda: ["numba", "numpy"])
    monkeypatch.setattr(engines, "broken", lambda engine: (
        "scipy's BLAS, which its matrix products call, does not import here (gone)"
        if engine == "numba" else None))
    with pytest.raises(NnsweepError, match="engine 'numba' cannot run here: scipy's BLAS"):
        engines.resolve("numba")
    assert engines.resolve("auto") == "numpy"
