"""Shared test fixtures: the textbooks' datasets and the exact comparison of two trial results.

The datasets are copied from the seeds (../shared/seeds/) rather than taken from
nnsweep.datasets, so the trainer's tests do not lean on the code that loads datasets.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
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
    same = np.testing.assert_array_equal  # nan equals nan; reports the largest difference
    same(actual.epochs, expected.epochs, err_msg="epochs", strict=True)
    same(actual.errors, expected.errors, err_msg="errors (mae, mse, sse)", strict=True)
    same(actual.final_error, expected.final_error, err_msg="final_error")
    same(actual.best_error, expected.best_error, err_msg="best_error")
    assert actual.converged_epoch == expected.converged_epoch, "converged_epoch"
    assert actual.diverged_epoch == expected.diverged_epoch, "diverged_epoch"
    assert len(actual.weights) == len(expected.weights), "number of layers"
    for layer, (got, want) in enumerate(
            zip(actual.direction_changes, expected.direction_changes, strict=True)):
        same(got, want, err_msg=f"direction_changes of layer {layer}", strict=True)
    for layer, (got, want) in enumerate(zip(actual.weights, expected.weights, strict=True)):
        same(got, want, err_msg=f"weights of layer {layer}", strict=True)


@pytest.fixture(scope="session")
def same_result() -> Callable[[TrialResult, TrialResult], None]:
    """`same_result(actual, expected)` asserts the two results equal in every field."""
    return assert_same_result


def wait_for_group_to_exit(group: int, timeout: float = 30) -> bool:
    """True once no process of the process group is left; the rest are killed after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    return False


@pytest.fixture(scope="session")
def group_exits() -> Callable[[int], bool]:
    """`group_exits(pgid)`: does a run's whole process group (workers too) end by itself?"""
    return wait_for_group_to_exit
