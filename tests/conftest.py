"""Shared test fixtures: the textbooks' datasets and the exact comparison of two trial results.

The datasets are copied from the seeds (../shared/seeds/) rather than taken from
nnsweep.datasets, so the trainer's tests do not lean on the code that loads datasets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from nnsweep.result import TrialResult

Data = tuple[NDArray[np.float64], NDArray[np.float64]]


def _frozen(rows: list[list[float]]) -> NDArray[np.float64]:
    array = np.array(rows, dtype=np.float64)
    array.setflags(write=False)  # shared across tests: nobody may change it
    return array


@pytest.fixture(scope="session")
def xor() -> Data:
    """iamtrask's XOR (002): x rows 001, 011, 101, 111; y 0 1 1 0."""
    x = _frozen([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    return x, _frozen([[0], [1], [1], [0]])


@pytest.fixture(scope="session")
def streetlights() -> Data:
    """Grokking ch. 6 (001): four lights, walk 1 1 0 0."""
    x = _frozen([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1]])
    return x, _frozen([[1], [1], [0], [0]])


@pytest.fixture(scope="session")
def streetlights6() -> Data:
    """Grokking ch. 5 (001): six lights, walk 0 1 0 1 1 0."""
    x = _frozen([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1], [1, 0, 1]])
    return x, _frozen([[0], [1], [0], [1], [1], [0]])


def assert_same_result(actual: TrialResult, expected: TrialResult) -> None:
    """Every field equal bit for bit (nan equal to nan), not merely close."""
    assert np.array_equal(actual.epochs, expected.epochs)
    assert np.array_equal(actual.errors, expected.errors, equal_nan=True)
    assert np.array_equal(actual.final_error, expected.final_error, equal_nan=True)
    assert np.array_equal(actual.best_error, expected.best_error, equal_nan=True)
    assert actual.converged_epoch == expected.converged_epoch
    assert actual.diverged_epoch == expected.diverged_epoch
    assert len(actual.direction_changes) == len(expected.direction_changes)
    for got, want in zip(actual.direction_changes, expected.direction_changes, strict=True):
        assert np.array_equal(got, want)
    assert len(actual.weights) == len(expected.weights)
    for got, want in zip(actual.weights, expected.weights, strict=True):
        assert np.array_equal(got, want, equal_nan=True)


@pytest.fixture(scope="session")
def same_result() -> Callable[[TrialResult, TrialResult], None]:
    """`same_result(actual, expected)` asserts the two results equal in every field."""
    return assert_same_result
