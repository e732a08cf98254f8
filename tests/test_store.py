"""The results folder: atomic tables, one run at a time, one spec per folder, self-repair."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnsweep import store, tables
from nnsweep.errors import ResultsError
from nnsweep.journal import Record
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.store import StoreWarning

X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
Y = np.array([[0], [1], [1], [0]], dtype=float)


def records() -> list[Record]:
    out = []
    for i, alpha in enumerate((0.5, 5.0, 10.0)):
        params = TrialParams(alpha=alpha, hidden=(3,), epochs=40, record_every=10,
                             activation="linear" if alpha == 10.0 else "sigmoid",
                             output="linear" if alpha == 10.0 else "sigmoid")
        result = train_one(X, Y, params)
        out.append(Record(f"t{i}", params, result.status(params.tolerance), 0.1, result))
    out.append(Record("f", TrialParams(), "failed", 0.0, None, "ValueError: bad"))
    return out


def test_every_table_reads_back_the_same_from_parquet_and_csv(tmp_path: Path) -> None:
    frames = store.build_tables(records())
    store.write_tables(tmp_path, frames)
    for name in store.TABLES:
        parquet = pd.read_parquet(tmp_path / f"{name}.parquet")
        csv = tables.read_csv(tmp_path / f"{name}.csv", tables.SCHEMAS[name])
        pd.testing.assert_frame_equal(parquet, frames[name])
        pd.testing.assert_frame_equal(csv, frames[name])


def test_tables_hold_every_status_and_tidy_cells(tmp_path: Path) -> None:
    frames = store.build_tables(records())
    statuses = dict(zip(frames["trials"]["trial"], frames["trials"]["status"], strict=True))
    assert statuses["t2"] == "diverged" and statuses["f"] == "failed"
    assert frames["trials"].loc[frames["trials"]["trial"] == "f", "error"].item() == (
        "ValueError: bad")
    assert list(frames["directions"].columns) == ["trial", "layer", "row", "col", "changes"]
    for frame in frames.values():
        assert not frame.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any().any()


def test_a_second_run_in_the_same_folder_is_refused_naming_the_first(tmp_path: Path) -> None:
    with store.locked(tmp_path), pytest.raises(ResultsError) as caught, store.locked(tmp_path):
        pass
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message and socket.gethostname() in message


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / store.LOCK).write_text(json.dumps(
        {"pid": int(dead.stdout), "host": socket.gethostname()}))
    with pytest.warns(StoreWarning, match="taking over the lock"), store.locked(tmp_path):
        assert json.loads((tmp_path / store.LOCK).read_text())["pid"] == os.getpid()
    assert not (tmp_path / store.LOCK).exists()


def test_a_folder_made_by_another_spec_is_refused_with_a_hint(tmp_path: Path) -> None:
    store.write_manifest(tmp_path, {"spec_hash": "aaaa"})
    with pytest.raises(ResultsError, match=r"made by another spec.*--fresh.*--out"):
        store.prepare(tmp_path, "bbbb", fresh=False)


def test_fresh_empties_the_folder(tmp_path: Path) -> None:
    store.write_manifest(tmp_path, {"spec_hash": "aaaa"})
    (tmp_path / store.JOURNAL).write_text("")
    assert store.prepare(tmp_path, "bbbb", fresh=True) == {}
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_table_is_rebuilt_from_the_journal(tmp_path: Path) -> None:
    saved = records()
    store.append(tmp_path, saved, keep_weights=False)
    store.write_manifest(tmp_path, {"spec_hash": "x", "trials": [r.trial for r in saved]})
    frames = store.build_tables(saved)
    store.write_tables(tmp_path, frames)
    data = (tmp_path / "history.parquet").read_bytes()
    (tmp_path / "history.parquet").write_bytes(data[: len(data) // 2])
    with pytest.warns(StoreWarning, match=r"rebuilt the tables.*history.parquet"):
        results = store.load_results(tmp_path)
    pd.testing.assert_frame_equal(results.history, frames["history"])
    pd.testing.assert_frame_equal(store.load_results(tmp_path).history, frames["history"])


def test_a_folder_without_results_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"not a results folder.*nnsweep run"):
        store.load_results(tmp_path)


def test_a_saved_network_predicts_like_the_trained_one(tmp_path: Path) -> None:
    saved = records()
    store.append(tmp_path, saved, keep_weights=True)
    store.write_manifest(tmp_path, {"spec_hash": "x"})
    store.write_tables(tmp_path, store.build_tables(saved))
    store.write_weights(tmp_path, saved)
    network = store.load_results(tmp_path).network("t0")
    result = saved[0].result
    assert result is not None
    expected = train_one(X, Y, saved[0].params).weights
    assert all(np.array_equal(a, b) for a, b in zip(network.weights, expected, strict=True))
    assert network.predict([1, 1, 1]).shape == (1, 1)


def test_asking_for_weights_that_were_not_saved_says_how_to_save_them(tmp_path: Path) -> None:
    saved = records()
    store.append(tmp_path, saved, keep_weights=False)
    store.write_manifest(tmp_path, {"spec_hash": "x"})
    store.write_tables(tmp_path, store.build_tables(saved))
    with pytest.raises(ResultsError, match="save_weights = true"):
        store.load_results(tmp_path).network("t0")
