"""Property: on any small configuration the batched trainer equals reference.py in every field.

Hypothesis draws what a batch shares (depth 0 to 3, every activation pair, every descent
mode and reduction, bias, shuffle, epochs, history stride, metric, a classifier's output and
loss, whose history holds its accuracy and cross-entropy too) and, per trial, what may
vary inside a batch (layer widths, alpha, seed, init, tolerance), on a small random dataset.
The alphas reach 100, so some trials saturate or diverge mid-batch while the others train on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from nnsweep.batching import batch_key
from nnsweep.params import (
    ACTIVATIONS,
    CLASS_METRICS,
    DESCENTS,
    METRICS,
    REDUCTIONS,
    TrialParams,
)
from nnsweep.reference import train_one
from nnsweep.result import TrialResult
from nnsweep.trainer import train_batch

Array = NDArray[np.float64]
Same = Callable[[TrialResult, TrialResult], None]

ALPHAS = (0.001, 0.01, 0.1, 0.5, 1.0, 3.0, 10.0, 100.0)
INITS = ("uniform", "normal", "xavier", "he")


@dataclass(frozen=True)
class Case:
    x: Array  # (rows, inputs)
    y: Array  # (rows, outputs)
    trials: list[TrialParams]


def cases(max_epochs: int) -> st.SearchStrategy[Case]:
    @st.composite
    def draw_case(draw: st.DrawFn) -> Case:
        rows = draw(st.integers(1, 7))
        inputs = draw(st.integers(1, 3))
        outputs = draw(st.integers(1, 2))
        data = np.random.RandomState(draw(st.integers(0, 2**16)))
        if draw(st.booleans()):  # the textbooks' 0/1 data
            x = data.randint(0, 2, (rows, inputs)).astype(np.float64)
            y = data.randint(0, 2, (rows, outputs)).astype(np.float64)
        else:
            x = data.uniform(-1.0, 1.0, (rows, inputs))
            y = data.uniform(0.0, 1.0, (rows, outputs))
        # A classifier: softmax over one-hot rows, or sigmoid outputs, with cross-entropy.
        output = draw(st.sampled_from((*ACTIVATIONS, "softmax", "softmax")))
        classifier = output == "softmax" or (output == "sigmoid" and draw(st.booleans()))
        if output == "softmax":
            outputs = max(2, outputs)
            y = np.eye(outputs)[data.randint(0, outputs, rows)]  # (rows, outputs) one-hot
        descent = draw(st.sampled_from(DESCENTS))
        depth = draw(st.integers(0, 3))
        shared = TrialParams(
            activation=draw(st.sampled_from(ACTIVATIONS)),
            output=output,
            loss="cross_entropy" if classifier else "squared",
            descent=descent,
            batch_size=draw(st.integers(1, 4)),
            reduction=draw(st.sampled_from(REDUCTIONS)),
            epochs=draw(st.integers(1, max_epochs)),
            record_every=draw(st.integers(0, 7)),
            metric=draw(st.sampled_from(METRICS if classifier else
                                        [m for m in METRICS if m not in CLASS_METRICS])),
            bias=draw(st.booleans()),
            # Full descent with a shuffle is left to test_trainer.py, which pins it down alone.
            shuffle=descent != "full" and draw(st.booleans()),
        )
        # Layer widths vary inside a batch of one depth, and repeat often enough to share
        # a width group.
        widths = st.lists(st.integers(1, 4), min_size=depth, max_size=depth).map(tuple)
        varying = st.tuples(widths, st.sampled_from(ALPHAS), st.integers(0, 50),
                            st.sampled_from(INITS), st.sampled_from((0.01, 0.1, 0.3)))
        trials = [replace(shared, hidden=hidden, alpha=alpha, seed=seed, init=init,
                          tolerance=tolerance)
                  for hidden, alpha, seed, init, tolerance in draw(st.lists(varying, min_size=1,
                                                                            max_size=5))]
        return Case(x, y, trials)

    return draw_case()


def assert_batch_equals_reference(case: Case, same_result: Same) -> None:
    assert len({batch_key(t) for t in case.trials}) == 1
    results = train_batch(case.x, case.y, case.trials)
    assert len(results) == len(case.trials)
    for params, result in zip(case.trials, results, strict=True):
        same_result(result, train_one(case.x, case.y, params))


# As many configurations as the Hypothesis profile asks for (conftest.py): a few dozen in
# every run, a thousand with NNSWEEP_HYPOTHESIS=long.
@given(case=cases(max_epochs=60))
def test_the_batched_trainer_equals_the_reference_on_random_configurations(
    case: Case, same_result: Same
) -> None:
    assert_batch_equals_reference(case, same_result)
