"""Datasets: the textbooks' built-ins exactly, inline data, CSV files, and every bad input named."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nnsweep import datasets
from nnsweep.datasets import BUILTINS, Dataset, builtin, from_csv, from_inline
from nnsweep.errors import DataError

BAD_DATA = Path(__file__).parent / "bad_data"


def test_xor_is_iamtraks_four_rows() -> None:
    data = builtin("xor")
    assert data.x.tolist() == [[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]]
    assert data.y.tolist() == [[0], [1], [1], [0]]


def test_streetlights_is_grokking_chapter_six() -> None:
    data = builtin("streetlights")
    assert data.x.tolist() == [[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1]]
    assert data.y.ravel().tolist() == [1, 1, 0, 0]


def test_streetlights6_and_its_dimmer_variant_share_the_walk_stop_targets() -> None:
    lights, dimmer = builtin("streetlights6"), builtin("streetlights6-dimmer")
    assert lights.x.tolist() == [[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1],
                                 [1, 0, 1]]
    assert dimmer.x.tolist() == [[0.9, 0.0, 1], [0.2, 0.8, 1], [0.1, 0.0, 1], [0.8, 0.9, 1],
                                 [0.1, 0.7, 1], [0.9, 0.1, 0]]
    assert lights.y.ravel().tolist() == dimmer.y.ravel().tolist() == [0, 1, 0, 1, 1, 0]


def test_every_builtin_has_two_dimensional_targets() -> None:
    for name in BUILTINS:
        data = builtin(name, rows=7)
        assert data.y.ndim == 2 and data.y.shape == (data.x.shape[0], 1), name


def test_rectangles_are_tenths_with_their_mean_as_target() -> None:
    data = builtin("rectangles", rows=50, seed=3)
    assert data.x.shape == (50, 4)
    assert np.allclose(data.x * 10, np.round(data.x * 10))
    assert data.x.min() >= 0 and data.x.max() <= 1
    assert np.array_equal(data.y[:, 0], data.x.sum(axis=1) / 4)


def test_rectangles_depend_on_the_seed_only() -> None:
    assert builtin("rectangles", seed=5).hash == builtin("rectangles", seed=5).hash
    assert builtin("rectangles", seed=5).hash != builtin("rectangles", seed=6).hash


def test_rectangles_rows_must_be_positive() -> None:
    with pytest.raises(DataError, match=r"rows = 0: expected an integer from 1"):
        builtin("rectangles", rows=0)


def test_an_unknown_builtin_suggests_the_near_miss() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'xr' \(did you mean 'xor'\?\)"):
        builtin("xr")


def test_the_hash_follows_the_numbers_not_the_name() -> None:
    a = Dataset("a", np.array([[1.0, 2.0]]), np.array([[1.0]]))
    renamed = Dataset("b", np.array([[1.0, 2.0]]), np.array([[1.0]]), source="elsewhere")
    changed = Dataset("a", np.array([[1.0, 2.5]]), np.array([[1.0]]))
    reshaped = Dataset("a", np.array([[1.0], [2.0]]), np.array([[1.0], [1.0]]))
    assert a.hash == renamed.hash
    assert len({a.hash, changed.hash, reshaped.hash}) == 3
    assert len(a.hash) == 16


def test_a_datasets_arrays_are_read_only_so_its_hash_stays_true() -> None:
    data = builtin("xor")
    with pytest.raises(ValueError, match="read-only"):
        data.x[0, 0] = 5.0


def test_inline_y_of_plain_numbers_is_one_output_column() -> None:
    data = from_inline([[0, 1], [1, 1], [1, 0]], [1, 0, 1], "s.toml: dataset")
    assert data.x.shape == (3, 2) and data.y.shape == (3, 1)
    assert data.name == "inline"


def test_inline_y_rows_give_several_outputs() -> None:
    data = from_inline([[0], [1]], [[0, 1], [1, 0]], "s.toml: dataset")
    assert data.y.tolist() == [[0, 1], [1, 0]]


def test_inline_x_and_y_of_different_lengths_name_the_key_and_both_counts() -> None:
    with pytest.raises(DataError, match=r"^s\.toml: dataset\.y: 2 rows, but x has 3 rows"):
        from_inline([[0], [1], [2]], [1, 0], "s.toml: dataset")


def test_an_inline_cell_that_is_not_a_number_names_its_row_and_column() -> None:
    with pytest.raises(DataError, match=r"^s\.toml: dataset\.x\[1\]\[0\] = 'a': expected a "
                                        r"finite number$"):
        from_inline([[0, 1], ["a", 1]], [1, 0], "s.toml: dataset")


def test_inline_rows_of_different_lengths_are_refused() -> None:
    with pytest.raises(DataError, match=r"dataset\.x\[1\]: 1 values, but row 0 has 2"):
        from_inline([[0, 1], [1]], [1, 0], "s.toml: dataset")


def test_a_csv_file_splits_into_input_and_target_columns() -> None:
    data = from_csv(BAD_DATA / "good.csv", ["y"])
    assert data.x.tolist() == [[0, 1], [1, 0], [1, 1], [0, 0]]
    assert data.y.ravel().tolist() == [1, 1, 0, 0]
    assert data.name == "good.csv"


def test_csv_targets_keep_the_order_they_are_named_in() -> None:
    data = from_csv(BAD_DATA / "good.csv", ["y", "a"])
    assert data.x.ravel().tolist() == [1, 0, 1, 0]
    assert data.y.tolist() == [[1, 0], [1, 1], [0, 1], [0, 0]]


@pytest.mark.parametrize(
    ("name", "target", "expected"),
    [
        ("no_such.csv", ["y"], "{file}: no such file"),
        ("non_numeric.csv", ["y"], "{file}:3: column 'b' = 'oops': expected a number"),
        ("nan.csv", ["y"], "{file}:3: column 'b' = 'nan': expected a finite number"),
        ("empty_cell.csv", ["y"], "{file}:2: column 'b' is empty: expected a number"),
        ("ragged.csv", ["y"], "{file}:3: 2 cells, expected 3 (one per header column)"),
        ("good.csv", ["yy"], "{file}: target column 'yy' not found (did you mean 'y'?); "
                            "the columns are a, b, y"),
        ("good.csv", ["a", "b", "y"], "{file}: every column is a target; expected at least "
                                      "one input column"),
        ("header_only.csv", ["y"], "{file}: no data rows; expected at least one row below "
                                   "the header"),
        ("empty.csv", ["y"], "{file}: empty file; expected a header row of column names"),
        ("duplicate_column.csv", ["y"], "{file}:1: column 'a' appears twice in the header"),
    ],
)
def test_a_bad_csv_file_is_refused_naming_file_line_and_column(
    name: str, target: list[str], expected: str
) -> None:
    path = BAD_DATA / name
    with pytest.raises(DataError) as raised:
        from_csv(path, target)
    assert str(raised.value) == expected.format(file=path)


# --- what a data file must be ---------------------------------------------------------------

@pytest.mark.timeout(20)  # opening a FIFO for reading would wait for a writer forever
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError) as raised:
        from_csv(fifo, ["y"])
    assert str(raised.value) == f"{fifo}: a named pipe (FIFO), expected a CSV file (a regular file)"


@pytest.mark.timeout(20)  # reading /dev/zero would fill the memory
@pytest.mark.parametrize("link", [False, True])
def test_a_device_is_refused_even_behind_a_symbolic_link(tmp_path: Path, link: bool) -> None:
    path = Path("/dev/zero")
    if link:
        path = tmp_path / "data.csv"
        path.symlink_to("/dev/zero")
    with pytest.raises(DataError) as raised:
        from_csv(path, ["y"])
    assert str(raised.value) == f"{path}: a character device, expected a CSV file (a regular file)"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        from_csv(tmp_path, ["y"])
    assert str(raised.value) == f"{tmp_path}: a folder, expected a CSV file"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    path = BAD_DATA / "good.csv"
    monkeypatch.setattr(datasets, "MAX_CSV_BYTES", 10)
    with pytest.raises(DataError) as raised:
        from_csv(path, ["y"])
    assert str(raised.value) == f"{path}: 30 bytes, expected a CSV file of at most 10 bytes"


def test_the_size_limit_is_a_gigabyte() -> None:
    assert datasets.MAX_CSV_BYTES == 1_000_000_000
    assert datasets.size_text(datasets.MAX_CSV_BYTES + 200_000_000) == "1.2 GB"
