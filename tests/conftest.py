"""Shared fixtures: the textbooks' datasets, the exact comparison of two trial results, and the
Hypothesis profiles.

The datasets are written out here as the textbooks print them rather than taken from
nnsweep.datasets, so the trainer's tests do not lean on the code that loads datasets. The
helpers the test files share (sweep files, the command line in a process, waiting for a run)
are in helpers.py.

Hypothesis runs the "quick" profile unless told otherwise: a few dozen examples of each
property, in every run (a developer's and CI's). The "long" profile tries many more of the
same properties: NNSWEEP_HYPOTHESIS=long, or pytest's --hypothesis-profile long.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import settings
from numpy.typing import NDArray

from nnsweep.result import TrialResult

# The suite's command-line runs start no background compiles of the compiled engine's kernels
# (nnsweep.warmup): hundreds of runs would keep the cores busy. test_warmup.py checks them.
os.environ.setdefault("NNSWEEP_WARM", "0")

pytest.register_assert_rewrite("helpers")  # before the import below and every test file's
from helpers import XOR_X, XOR_Y, frozen  # noqa: E402

settings.register_profile("quick", max_examples=60, deadline=None)
settings.register_profile("long", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("NNSWEEP_HYPOTHESIS", "quick"))

Data = tuple[NDArray[np.float64], NDArray[np.float64]]


@pytest.fixture(scope="session")
def xor() -> Data:
    """iamtrask's XOR: x rows 001, 011, 101, 111; y 0 1 1 0."""
    return XOR_X, XOR_Y


@pytest.fixture(scope="session")
def streetlights() -> Data:
    """Grokking Deep Learning, chapter 6: four lights, walk 1 1 0 0."""
    x = frozen([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1]])
    return x, frozen([[1], [1], [0], [0]])


@pytest.fixture(scope="session")
def streetlights6() -> Data:
    """Grokking Deep Learning, chapter 5: six lights, walk 0 1 0 1 1 0."""
    x = frozen([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1], [1, 0, 1]])
    return x, frozen([[0], [1], [0], [1], [1], [0]])


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
