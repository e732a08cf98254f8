"""Outcome classes on hand-made histories: each rule, its boundaries, and what it ignores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from nnsweep import outcomes, tables
from nnsweep.outcomes import MIN_PATH, STEADY_SHARE, STILL_FALLING, TOO_SLOW_LEFT
from nnsweep.params import TrialParams


def judge(*curves: Sequence[float] | np.ndarray, status: str = "not_converged", metric: str = "mae",
          epochs: Sequence[int] | None = None) -> list[str]:
    """The outcomes of trials whose metric takes these values at these epochs (0, 1, 2, ...);
    the other metrics stay flat, so only the trial's own metric can decide."""
    rows, history = [], []
    for n, curve in enumerate(curves):
        trial = f"t{n}"
        rows.append(tables.trial_row(trial, TrialParams(metric=metric), None, 0.0,
                                     status=status))
        at = list(epochs) if epochs is not None else list(range(len(curve)))
        flat = {name: [1.0] * len(curve) for name in ("mae", "mse", "sse")}
        history.append(pd.DataFrame({"trial": trial, "epoch": at,
                                     **{**flat, metric: list(curve)}}))
    frame = tables.concat(history, tables.HISTORY_SCHEMA)
    return [str(o) for o in outcomes.trial_outcomes(tables.trials_frame(rows), frame)]


def test_the_status_decides_converged_diverged_and_failed_whatever_the_history() -> None:
    flat = [0.5] * 5
    assert judge(flat, status="converged") == ["converged"]
    assert judge(flat, status="diverged") == ["diverged"]
    assert judge(flat, status="failed") == ["failed"]
    assert judge(flat, status="crashed") == ["failed"]


def test_still_falling_with_most_of_the_error_gone_is_learning() -> None:
    assert judge(np.geomspace(0.5, 0.02, 11)) == ["learning"]


def test_a_slow_steady_fall_that_left_most_of_the_error_is_too_slow() -> None:
    assert judge(np.linspace(0.5, 0.45, 11)) == ["too_slow"]
    assert judge(np.linspace(0.5, 0.499, 11)) == ["too_slow"]  # slower still: moves all along


def test_a_slow_crawl_that_turns_back_up_is_still_too_slow_not_stuck() -> None:
    # The XOR net with 64 units at alpha 0.001: down a little, then up a little, both slowly.
    assert judge([0.4988, 0.495, 0.4919, 0.493, 0.4947]) == ["too_slow"]


@pytest.mark.parametrize(("share", "expected"), [(1.05, "too_slow"), (0.95, "stuck")])
def test_too_slow_means_the_last_half_moved_STEADY_SHARE_of_the_path(share: float,
                                                                    expected: str) -> None:
    path = 0.004  # too little to be falling by STILL_FALLING: only the pace can decide
    late = STEADY_SHARE * share * path
    middle = 0.5 - (path - late)
    assert judge([0.5, (0.5 + middle) / 2, middle, middle - late / 2, middle - late]) == [
        expected]


def test_float_noise_on_a_flat_curve_is_no_crawl() -> None:
    tiny = 0.5 * MIN_PATH / 10
    assert judge([0.5, 0.5 - tiny, 0.5, 0.5 - tiny, 0.5 - 2 * tiny]) == ["stuck"]


def test_a_curve_that_stopped_falling_above_the_target_is_stuck() -> None:
    fell_then_flat = [0.5, 0.3, 0.26, 0.25, *[0.25] * 7]
    saturated_from_the_start = [0.5] * 11
    rising = [0.5, 0.2, 0.1, 0.1, 0.1, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2]
    assert judge(fell_then_flat, saturated_from_the_start, rising) == ["stuck"] * 3


@pytest.mark.parametrize(("share", "expected"), [(1.05, "learning"), (0.95, "stuck")])
def test_still_falling_means_the_last_half_lost_STILL_FALLING_of_its_level(
        share: float, expected: str) -> None:
    middle = 0.1  # epochs 0 to 5: the middle is epoch 3, the first at or past 2.5
    end = middle * (1 - share * STILL_FALLING)
    assert judge([0.5, 0.3, 0.2, middle, (middle + end) / 2, end]) == [expected]


@pytest.mark.parametrize(("left", "expected"), [(1.02, "too_slow"), (0.98, "learning")])
def test_too_slow_means_more_than_TOO_SLOW_LEFT_of_the_start_remains(left: float,
                                                                   expected: str) -> None:
    start = 0.5
    end = start * TOO_SLOW_LEFT * left
    assert judge(np.linspace(start, end, 11)) == [expected]


def test_the_middle_is_the_first_recorded_epoch_at_or_past_half_the_last() -> None:
    # Recorded at 0, 1, 2, 7, 8, 9: half of 9 is 4.5, so the middle is epoch 7, after the fall.
    assert judge([0.5, 0.2, 0.2, 0.05, 0.05, 0.05], epochs=[0, 1, 2, 7, 8, 9]) == ["stuck"]
    assert judge([0.5, 0.5, 0.5, 0.3, 0.1, 0.05], epochs=[0, 1, 2, 7, 8, 9]) == ["learning"]


def test_each_trial_is_judged_by_its_own_metric() -> None:
    falling = np.geomspace(5.0, 0.1, 11)
    assert judge(falling, metric="sse") == ["learning"]
    assert judge(falling, metric="mse") == ["learning"]


def test_a_trial_without_history_cannot_show_a_fall_and_reads_as_stuck() -> None:
    trials = tables.trials_frame([tables.trial_row("a", TrialParams(), None, 0.0,
                                                   status="not_converged")])
    assert outcomes.trial_outcomes(trials, tables.empty(tables.HISTORY_SCHEMA)).tolist() == [
        "stuck"]


def test_the_outcomes_keep_the_trials_index_and_order() -> None:
    trials = tables.trials_frame([
        tables.trial_row(t, TrialParams(), None, 0.0, status=s)
        for t, s in (("a", "converged"), ("b", "not_converged"), ("c", "failed"))])
    trials.index = pd.Index([7, 3, 5])
    history = pd.DataFrame({"trial": ["b"] * 3, "epoch": [0, 1, 2], "mae": [0.5, 0.5, 0.5],
                            "mse": [1.0] * 3, "sse": [1.0] * 3})
    result = outcomes.trial_outcomes(trials, history)
    assert result.index.tolist() == [7, 3, 5]
    assert result.tolist() == ["converged", "stuck", "failed"]


def test_every_class_has_a_definition_and_the_rules_are_ordered() -> None:
    assert set(outcomes.DEFINITIONS) == set(outcomes.OUTCOME_NAMES)
    assert 0 < MIN_PATH < STILL_FALLING < STEADY_SHARE < TOO_SLOW_LEFT < 1


def test_an_accuracy_is_judged_by_its_error_rate() -> None:
    rising = 1 - np.geomspace(0.5, 0.02, 11)  # the error rate falls as in the learning case
    assert judge(rising, metric="accuracy") == ["learning"]
    assert judge(np.linspace(0.5, 0.55, 11), metric="accuracy") == ["too_slow"]
    assert judge([0.5, 0.9, 0.9, 0.9, 0.9], metric="accuracy") == ["stuck"]


def test_a_trial_is_judged_on_the_split_it_selects() -> None:
    falling, flat = np.geomspace(0.5, 0.02, 11), [0.5] * 11
    rows, history = [], []
    for n, select in enumerate(("train", "validation")):
        trial = f"t{n}"
        rows.append(tables.trial_row(trial, TrialParams(select=select), None, 0.0,
                                     status="not_converged"))
        for split, curve in (("train", falling), ("validation", flat)):
            history.append(pd.DataFrame({"trial": trial, "epoch": range(11), "split": split,
                                         "mae": curve}))
    trials = tables.trials_frame(rows)
    frame = tables.concat(history, tables.HISTORY_SCHEMA)
    assert outcomes.trial_outcomes(trials, frame).tolist() == ["learning", "stuck"]
    # a history of training rows alone (as the figures draw) judges those
    assert outcomes.trial_outcomes(trials, tables.training(frame)).tolist() == [
        "learning", "learning"]
