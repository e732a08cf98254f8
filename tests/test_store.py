"""The results folder: atomic tables, one run at a time, one spec per folder, self-repair."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import XOR_X, XOR_Y, dead_pid, failed_record, trained_record

from nnsweep import store, tables
from nnsweep.errors import ResultsError
from nnsweep.journal import Record
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.store import StoreWarning


def records() -> list[Record]:
    """Three trained trials (the third diverges) and a failed one, with their real ids."""
    out = []
    for alpha in (0.5, 5.0, 10.0):
        params = TrialParams(alpha=alpha, hidden=(3,), epochs=40, record_every=10,
                             activation="linear" if alpha == 10.0 else "sigmoid",
                             output="linear" if alpha == 10.0 else "sigmoid")
        out.append(trained_record(params, 0.1))
    out.append(failed_record(TrialParams(), "ValueError: bad"))
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
    third, failed = (r.trial for r in records()[2:])
    assert statuses[third] == "diverged" and statuses[failed] == "failed"
    assert frames["trials"].loc[frames["trials"]["trial"] == failed, "error"].item() == (
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
    (tmp_path / store.LOCK).write_text(json.dumps(
        {"pid": dead_pid(), "host": socket.gethostname()}))
    with pytest.warns(StoreWarning, match="taking over the lock"), store.locked(tmp_path):
        assert json.loads((tmp_path / store.LOCK).read_text())["pid"] == os.getpid()
    assert not (tmp_path / store.LOCK).exists()


def test_fresh_deletes_only_what_nnsweep_wrote(tmp_path: Path) -> None:
    store.write_manifest(tmp_path, {"spec_hash": "aaaa"})
    (tmp_path / store.JOURNAL).write_text("")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "heatmap.png").write_bytes(b"png")
    (tmp_path / ".trials.csv.k3j4h5.tmp").write_bytes(b"left by a kill")
    store.prepare(tmp_path, fresh=True)
    assert list(tmp_path.iterdir()) == []


def test_fresh_refuses_a_results_folder_holding_anything_else_and_deletes_nothing(
        tmp_path: Path) -> None:
    store.write_manifest(tmp_path, {"spec_hash": "aaaa"})
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "data").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ResultsError, match=r"cannot start over here.*'data', 'notes.txt'.*"
                                           r"nothing was deleted"):
        store.prepare(tmp_path, fresh=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_folder_that_is_neither_empty_nor_a_results_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sweep.toml").write_text("name = 'x'")
    for fresh in (False, True):
        with pytest.raises(ResultsError, match=r"not empty and not a results folder.*"
                                               r"'sweep.toml'"):
            store.check_folder(tmp_path, fresh=fresh)
    assert (tmp_path / "sweep.toml").read_text() == "name = 'x'"


def test_a_results_folder_may_hold_other_files_that_nnsweep_leaves_alone(tmp_path: Path) -> None:
    store.write_manifest(tmp_path, {"spec_hash": "aaaa"})
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / ".report.html.x1y2.tmp").write_bytes(b"left by a kill")
    store.prepare(tmp_path, fresh=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "notes.txt"]


@pytest.mark.parametrize("name", ["plots", "journal.jsonl", "trials.parquet", "report.html"])
def test_a_symbolic_link_inside_a_results_folder_is_refused_never_followed(
        tmp_path: Path, name: str) -> None:
    folder, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (elsewhere / "precious.png").write_bytes(b"keep")
    store.write_manifest(folder, {"spec_hash": "aaaa"})
    target = elsewhere if name == "plots" else elsewhere / "precious.png"
    (folder / name).symlink_to(target)
    with pytest.raises(ResultsError, match=rf"{name}: a symbolic link inside a results folder"):
        store.prepare(folder, fresh=True)
    with pytest.raises(ResultsError, match="symbolic link"):
        store.load_results(folder)
    assert (elsewhere / "precious.png").read_bytes() == b"keep"


def test_a_picture_linked_from_plots_is_refused(tmp_path: Path) -> None:
    store.write_manifest(tmp_path, {"spec_hash": "aaaa"})
    (tmp_path / "plots").mkdir()
    (tmp_path / "outside.png").write_bytes(b"keep")
    (tmp_path / "plots" / "heatmap.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(ResultsError, match=r"heatmap.png: a symbolic link"):
        store.check_links(tmp_path)


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
    assert len((tmp_path / "history.parquet").read_bytes()) == len(data) // 2  # readers read


def test_tables_of_two_generations_are_never_read_together(tmp_path: Path) -> None:
    saved = records()
    store.append(tmp_path, saved, keep_weights=False)
    store.write_tables(tmp_path, store.build_tables(saved[:1]), "old")
    store.write_table(tmp_path, "trials", store.build_tables(saved)["trials"], "new")
    store.write_manifest(tmp_path, {"spec_hash": "x", "generation": "new",
                                    "trials": [r.trial for r in saved]})
    with pytest.warns(StoreWarning, match=r"history.parquet \(.*another run's generation"):
        results = store.load_results(tmp_path)
    assert len(results.trials) == 4 and results.history["trial"].nunique() == 3


def test_a_folder_without_results_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"not a results folder.*nnsweep run"):
        store.load_results(tmp_path)


def test_a_saved_network_predicts_like_the_trained_one(tmp_path: Path) -> None:
    saved = records()
    store.append(tmp_path, saved, keep_weights=True)
    store.write_manifest(tmp_path, {"spec_hash": "x"})
    store.write_tables(tmp_path, store.build_tables(saved))
    store.write_weights(tmp_path, saved)
    network = store.load_results(tmp_path).network(saved[0].trial[:4])
    result = saved[0].result
    assert result is not None
    expected = train_one(XOR_X, XOR_Y, saved[0].params).weights
    assert all(np.array_equal(a, b) for a, b in zip(network.weights, expected, strict=True))
    assert network.predict([1, 1, 1]).shape == (1, 1)


def test_asking_for_weights_that_were_not_saved_says_how_to_save_them(tmp_path: Path) -> None:
    saved = records()
    store.append(tmp_path, saved, keep_weights=False)
    store.write_manifest(tmp_path, {"spec_hash": "x"})
    store.write_tables(tmp_path, store.build_tables(saved))
    with pytest.raises(ResultsError, match="save_weights = true"):
        store.load_results(tmp_path).network(saved[0].trial[:4])


def _take(folder: str, ready: Any, tried: Any, owners: Any) -> None:
    """One racer: wait for the others, try to take the folder, hold it until all have tried."""
    ready.wait()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StoreWarning)
            with store.locked(Path(folder)):
                owners.put(os.getpid())
                tried.wait()
                return
    except ResultsError:
        pass
    tried.wait()


@pytest.mark.slow
def test_racing_takers_of_a_stale_lock_find_exactly_one_owner_every_round(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "LOCK_RETRY_SECONDS", 0.01)  # losers give up at once
    context = multiprocessing.get_context("fork")
    stale = json.dumps({"pid": dead_pid(), "host": socket.gethostname()})
    for _ in range(100):
        (tmp_path / store.LOCK).write_text(stale)  # left by a killed run
        ready, tried, owners = context.Barrier(3), context.Barrier(3), context.SimpleQueue()
        racers = [context.Process(target=_take, args=(str(tmp_path), ready, tried, owners))
                  for _ in range(3)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(30)
        holders = []
        while not owners.empty():
            holders.append(owners.get())
        assert len(holders) == 1
        assert not (tmp_path / store.LOCK).exists()


def test_a_lock_file_holding_nonsense_is_taken_over_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / store.LOCK).write_text("[1]")
    with pytest.warns(StoreWarning, match="taking over a lock"), store.locked(tmp_path):
        assert store.live_owner(tmp_path) is None  # its own holder is no other run
