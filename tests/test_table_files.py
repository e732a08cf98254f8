"""What the results folder's files hold: a CSV value equals its parquet twin bit for bit, and
the journal stays near the parquet tables' size for the same values."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from helpers import DATA_HASH, XOR_X, XOR_Y

from nnsweep import journal, store, tables
from nnsweep.batching import batch_key
from nnsweep.grid import trial_id
from nnsweep.journal import Record
from nnsweep.params import TrialParams
from nnsweep.trainer import train_batch

# Floats that text loses first: the shortest subnormal, the largest finite, the smallest
# normal, -0.0, sums that are not what they print as, integers beyond 2**53, the infinities.
AWKWARD = [5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, -0.0, 0.0, 0.1 + 0.2,
           1 / 3, 1e-05, 1e16, 123456789012345678.0, 2.0**53 + 2, -1.5e-300, np.inf, -np.inf]


def awkward_floats(count: int) -> np.ndarray:
    """The awkward floats, then random bit patterns (every exponent, nan payloads included)."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64, count - len(AWKWARD), dtype=np.uint64, endpoint=False)
    return np.concatenate([AWKWARD, bits.view(np.float64)])  # (count,)


def assert_same_bits(read: pd.DataFrame, saved: pd.DataFrame) -> None:
    """Equal frames, and every float equal bit for bit (-0.0 is not 0.0; nan is any nan)."""
    pd.testing.assert_frame_equal(read, saved, check_exact=True)
    for column in saved.columns[saved.dtypes == "float64"]:
        got, want = read[column].to_numpy(), saved[column].to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(want)), column
        finite = ~np.isnan(want)
        assert np.array_equal(got[finite].view(np.int64), want[finite].view(np.int64)), column


def test_every_csv_value_reads_back_as_its_parquet_twin_bit_for_bit(tmp_path: Path) -> None:
    values = awkward_floats(5000).reshape(1000, 5)
    history = tables.typed(pd.DataFrame({
        "trial": [f"{i // 10:012x}" for i in range(1000)], "epoch": np.arange(1000) % 10,
        "split": ["train", "validation"] * 500,
        "mae": values[:, 0], "mse": values[:, 1], "sse": values[:, 2],
        "accuracy": values[:, 3], "cross_entropy": values[:, 4]}), tables.HISTORY_SCHEMA)
    rows = [tables.trial_row(f"{i:012x}", TrialParams(hidden=(), alpha=float(alpha)), None,
                             float(seconds), error=error)
            for i, (alpha, seconds, error) in enumerate(zip(
                np.abs(values[:100, 0]) + 1e-300, values[:100, 1],
                ["", "ValueError: a, \"b\"\nand c", "E: \u00e9\r"] * 33 + [""], strict=True))]
    frames = {"trials": tables.trials_frame(rows), "history": history,
              "directions": tables.empty(tables.DIRECTIONS_SCHEMA),
              "summary": tables.empty(tables.SUMMARY_SCHEMA)}
    store.write_tables(tmp_path, frames)
    for name in ("trials", "history"):
        parquet = store.read_table(tmp_path, name)
        assert_same_bits(parquet, frames[name])
        assert_same_bits(tables.read_csv(tmp_path / f"{name}.csv"), parquet)


def test_tables_written_before_classifier_metrics_and_select_read_back(tmp_path: Path) -> None:
    records = [Record(trial_id(p, DATA_HASH), p, "not_converged", 0.1, r, dataset=DATA_HASH)
               for p in [TrialParams(epochs=20)] for r in train_batch(XOR_X, XOR_Y, [p])]
    frames = store.build_tables(records)
    old = {"trials": frames["trials"].drop(columns=["select"]),
           "history": frames["history"].drop(columns=["split", "accuracy", "cross_entropy"]),
           "directions": frames["directions"],
           "summary": frames["summary"].drop(columns=["select"])}
    store.write_tables(tmp_path, old)
    for name in ("trials", "history", "summary"):
        pd.testing.assert_frame_equal(store.read_table(tmp_path, name), frames[name])
    assert frames["history"]["accuracy"].isna().all()  # a squared-loss trial has none


def test_text_is_quoted_only_where_a_table_needs_it(tmp_path: Path) -> None:
    plain = [tables.trial_row(f"{i:012x}", TrialParams(seed=i), None, 0.0, error="E: x")
             for i in range(3)]
    awkward = [*plain, tables.trial_row("0" * 12, TrialParams(), None, 0.0, error="E: a, b")]
    for folder, rows in (("plain", plain), ("awkward", awkward)):
        (tmp_path / folder).mkdir()
        frame = tables.trials_frame(rows)
        store.write_table(tmp_path / folder, "trials", frame, "g")
        assert_same_bits(tables.read_csv(tmp_path / folder / "trials.csv"), frame)
    plain_text = (tmp_path / "plain" / "trials.csv").read_text(encoding="utf-8")
    assert '"' not in plain_text and plain_text.startswith("trial,hidden,")
    assert '"E: a, b"' in (tmp_path / "awkward" / "trials.csv").read_text(encoding="utf-8")


# --- sizes ------------------------------------------------------------------------------------

def trained(alphas: list[float], hidden: list[int], seeds: range) -> list[Record]:
    """The records of a sweep on XOR, trained as a run trains them (one batch per shape)."""
    trials = [TrialParams(alpha=a, hidden=(h,), seed=s, epochs=600, record_every=10)
              for a, h, s in itertools.product(alphas, hidden, seeds)]
    groups: dict[object, list[TrialParams]] = {}
    for params in trials:
        groups.setdefault(batch_key(params), []).append(params)
    return [Record(trial_id(p, DATA_HASH), p, r.status(p.tolerance), 0.01, r, dataset=DATA_HASH)
            for batch in groups.values()
            for p, r in zip(batch, train_batch(XOR_X, XOR_Y, batch), strict=True)]


def folder_bytes(directory: Path, records: list[Record]) -> tuple[int, int, int]:
    """(values, journal bytes, parquet bytes) of a folder holding these records: the values
    are every history cell and direction count; the parquet tables the ones holding them."""
    directory.mkdir()
    store.append(directory, records, keep_weights=False)
    store.write_tables(directory, store.build_tables(records))
    values = sum(r.result.errors.size + sum(c.size for c in r.result.direction_changes)
                 for r in records if r.result is not None)
    parquet = sum((directory / f"{name}.parquet").stat().st_size
                  for name in ("trials", "history", "directions"))
    return values, (directory / store.JOURNAL).stat().st_size, parquet


def test_the_journal_takes_at_most_twice_parquets_bytes_per_recorded_value(
        tmp_path: Path) -> None:
    """Measured on the second half of a sweep (the first half's folder subtracted), so the
    files' fixed costs (parquet's footers and schemas) do not flatter either side."""
    records = trained([0.01, 1.0, 100.0], [4, 16, 64], range(1, 9))
    half = folder_bytes(tmp_path / "half", records[::2])
    whole = folder_bytes(tmp_path / "whole", records)
    values, journal_bytes, parquet_bytes = (b - a for a, b in zip(half, whole, strict=True))
    assert values > 10_000
    assert journal_bytes / values <= 2 * parquet_bytes / values, (
        f"journal {journal_bytes / values:.2f} bytes per value, "
        f"parquet {parquet_bytes / values:.2f}")


@pytest.mark.parametrize("keep_weights", [False, True])
def test_a_journal_line_holds_its_arrays_in_fewer_bytes_than_json_lists(
        keep_weights: bool) -> None:
    (record,) = trained([1.0], [16], range(1, 2))
    assert record.result is not None
    line = journal.encode(record, keep_weights=keep_weights)
    arrays = [record.result.errors, record.result.epochs, *record.result.direction_changes,
              *(record.result.weights if keep_weights else ())]
    as_json = sum(len(str(a.tolist()).replace(" ", "")) for a in arrays)
    assert len(line) < as_json / 2


@pytest.mark.parametrize("error", ["E: x", "E: a, b"])
def test_a_csv_formatted_in_slices_by_threads_is_the_text_of_one_writer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: str) -> None:
    """Slices of 7 rows over 4 threads; with a comma in the last row only, every slice is
    written again quoted, as one writer quotes the whole table."""
    rows = [tables.trial_row(f"{i:012x}", TrialParams(seed=i), None, i / 3, error="E: x")
            for i in range(50)]
    rows[-1]["error"] = error
    frame = tables.trials_frame(rows)
    monkeypatch.setattr(store, "CSV_SLICE", 7)
    monkeypatch.setattr(store, "WRITERS", 4)
    store.write_table(tmp_path, "trials", frame, "g")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    whole = io.BytesIO()
    pacsv.write_csv(table, whole, pacsv.WriteOptions(
        include_header=False, quoting_style="needed" if "," in error else "none"))
    expected = (",".join(frame.columns) + "\n").encode() + whole.getvalue()
    assert (tmp_path / "trials.csv").read_bytes() == expected
    assert ('"E: x"' in expected.decode()) == ("," in error)
    assert_same_bits(tables.read_csv(tmp_path / "trials.csv"), frame)
