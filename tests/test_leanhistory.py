"""The history as the report reads it: the same rows and values as the saved history, with the
trial and the split as categories and only the metrics the report judges and draws by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import CLASSIFIER_FIXED, CLASSIFIER_GRID, CLASSIFIER_HELD_OUT, write_results

from nnsweep import leanhistory, outcomes, store


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier's folder (metric accuracy) with held-out rows: both splits, two metrics."""
    return write_results(tmp_path_factory.mktemp("lean") / "results", CLASSIFIER_GRID,
                         CLASSIFIER_FIXED, held_out=CLASSIFIER_HELD_OUT, name="moons")


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"trial": object, "split": object})


def test_the_lean_history_keeps_every_row_and_the_metrics_the_trials_use(
        classifier: Path) -> None:
    full = store.load_results(classifier)
    lean = store.load_results(classifier, lean_history=True).history
    assert set(full.trials["metric"]) == {"accuracy"}
    assert list(lean.columns) == ["trial", "epoch", "split", "mae", "accuracy"]
    assert set(lean["split"]) == {"train", "validation"}
    pd.testing.assert_frame_equal(_as_text(lean), _as_text(full.history[list(lean.columns)]))


def test_a_rebuilt_history_is_made_lean_the_same_way(classifier: Path, tmp_path: Path) -> None:
    full = store.load_results(classifier)
    read = store.load_results(classifier, lean_history=True).history
    made = leanhistory.compact(full.history, full.trials)
    pd.testing.assert_frame_equal(made, read)


def test_a_history_written_by_another_writer_is_read_alike(tmp_path: Path) -> None:
    """Plain text columns (no dictionary), an empty split, a trial the trials table lacks."""
    trials = pd.DataFrame({"trial": ["b", "a"], "metric": ["mse", "mse"]})
    table = pa.table({
        "trial": ["a", "a", "zz", "b"], "epoch": [0, 5, 0, 0],
        "split": ["train", None, "validation", "train"],
        "mae": [0.5, 0.25, 1.0, 2.0], "mse": [0.3, 0.1, 1.0, 4.0]})
    path = tmp_path / "history.parquet"
    pq.write_table(table, path, use_dictionary=False, row_group_size=2)
    lean = leanhistory.read_lean(path, trials)
    assert list(lean["trial"].cat.categories) == ["b", "a", "zz"]
    assert lean["trial"].tolist() == ["a", "a", "zz", "b"]
    assert lean["split"].tolist() == ["train", "train", "validation", "train"]
    assert lean["mse"].tolist() == [0.3, 0.1, 1.0, 4.0]
    assert list(lean.columns) == ["trial", "epoch", "split", "mae", "mse"]


def test_a_split_it_does_not_know_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.parquet"
    pq.write_table(pa.table({"trial": ["a"], "epoch": [0], "split": ["test"], "mae": [0.1]}),
                   path)
    with pytest.raises(ValueError, match="split 'test': expected one of train, validation"):
        leanhistory.read_lean(path, pd.DataFrame({"trial": ["a"], "metric": ["mae"]}))


def test_reading_leaves_arrows_own_memory_pool_in_place(classifier: Path) -> None:
    before = pa.default_memory_pool().backend_name
    store.load_results(classifier, lean_history=True)
    assert pa.default_memory_pool().backend_name == before


def test_outcomes_read_the_same_from_a_lean_history_in_any_order(classifier: Path) -> None:
    full = store.load_results(classifier)
    lean = store.load_results(classifier, lean_history=True).history
    shuffled = lean.sample(frac=1.0, random_state=3).reset_index(drop=True)
    expected = outcomes.trial_outcomes(full.trials, full.history)
    for history in (lean, shuffled):
        pd.testing.assert_series_equal(outcomes.trial_outcomes(full.trials, history), expected)


def test_rows_in_trial_order_are_told_without_a_sort() -> None:
    codes, epoch = np.array([1, 1, 0, 0, 2]), np.array([0, 5, 0, 5, 0])
    assert leanhistory.in_trial_order(codes, epoch)
    assert list(leanhistory.by_trial_and_epoch(codes, epoch)) == [0, 1, 2, 3, 4]
    assert not leanhistory.in_trial_order(codes[::-1], epoch[::-1])
    assert list(leanhistory.by_trial_and_epoch(np.array([1, 0, 1]), np.array([5, 0, 0]))) \
        == [1, 2, 0]
