"""Datasets: the textbooks' built-ins exactly, inline data, CSV files, and every bad input named."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from nnsweep import datasets
from nnsweep.datasets import BUILTINS, OPTIONS, Dataset, builtin, from_csv, from_inline
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


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_has_two_dimensional_targets(name: str) -> None:
    if name == "digits":
        pytest.importorskip("sklearn")
    data = builtin(name)
    assert data.y.ndim == 2 and data.y.shape[0] == data.x.shape[0] >= 1, name
    assert np.isfinite(data.x).all() and np.isfinite(data.y).all()


@pytest.mark.parametrize("name", [name for name in BUILTINS if name not in OPTIONS])
def test_a_fixed_builtin_takes_no_options(name: str) -> None:
    with pytest.raises(DataError, match=f"{name}: takes no rows$"):
        builtin(name, rows=7)


def test_a_generated_builtin_takes_only_its_own_options() -> None:
    with pytest.raises(DataError, match="parity: takes no noise; it takes bits"):
        builtin("parity", noise=0.1)
    with pytest.raises(DataError, match=r"moons: noise = 11: expected a number from 0 to 10"):
        builtin("moons", noise=11)
    with pytest.raises(DataError, match=r"modular: modulus = 1: expected an integer from 2"):
        builtin("modular", modulus=1)


@pytest.mark.parametrize(("name", "maker"), [("moons", "make_moons"),
                                             ("circles", "make_circles")])
@pytest.mark.parametrize(("rows", "noise", "seed"), [(200, 0.1, 0), (7, 0.0, 3), (1, 0.3, 9)])
def test_moons_and_circles_are_scikit_learns_bit_for_bit(name: str, maker: str, rows: int,
                                                         noise: float, seed: int) -> None:
    """The same draws from the same RandomState, so a reader can recreate them with sklearn."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    extra = {"factor": 0.5} if name == "circles" else {}
    x, y = getattr(sklearn_datasets, maker)(rows, shuffle=True, noise=noise,
                                            random_state=np.random.RandomState(seed), **extra)
    data = builtin(name, rows=rows, noise=noise, seed=seed)
    assert np.array_equal(data.x, x) and np.array_equal(data.y[:, 0], y)


@pytest.mark.parametrize("name", ["moons", "circles", "spirals"])
def test_two_class_sets_are_balanced_and_follow_their_seed(name: str) -> None:
    data = builtin(name, rows=101, seed=1)
    assert data.x.shape == (101, 2) and sorted(set(data.y[:, 0])) == [0.0, 1.0]
    assert abs(int(data.y.sum()) - 101 / 2) <= 0.5
    assert builtin(name, rows=101, seed=1).hash == data.hash
    assert builtin(name, rows=101, seed=2).hash != data.hash


def test_without_noise_circles_lie_on_two_radii_and_spirals_arms_are_half_a_turn_apart() -> None:
    circles = builtin("circles", rows=40, noise=0.0)
    radius = np.hypot(circles.x[:, 0], circles.x[:, 1])
    assert np.allclose(radius[circles.y[:, 0] == 0], 1.0)
    assert np.allclose(radius[circles.y[:, 0] == 1], 0.5)
    spirals = builtin("spirals", rows=40, noise=0.0)
    arms = [spirals.x[spirals.y[:, 0] == k] for k in (0, 1)]
    by_radius = [arm[np.argsort(np.hypot(arm[:, 0], arm[:, 1]))] for arm in arms]
    assert np.allclose(by_radius[0], -by_radius[1])  # the second arm: the first turned by pi


@pytest.mark.parametrize("bits", [1, 2, 5])
def test_parity_holds_every_bit_string_once_with_its_parity(bits: int) -> None:
    data = builtin("parity", bits=bits)
    assert data.x.shape == (2**bits, bits)
    assert {tuple(row) for row in data.x.astype(int)} == set(
        itertools.product((0, 1), repeat=bits))
    assert np.array_equal(data.y[:, 0], data.x.sum(axis=1) % 2)


def test_modular_holds_every_pair_with_its_sum_one_hot() -> None:
    p = 5
    data = builtin("modular", modulus=p)
    assert data.x.shape == (p * p, 2 * p) and data.y.shape == (p * p, p)
    a, b = data.x[:, :p].argmax(axis=1), data.x[:, p:].argmax(axis=1)
    pairs = sorted(zip(a.tolist(), b.tolist(), strict=True))
    assert pairs == [(i, j) for i in range(p) for j in range(p)]
    assert np.array_equal(data.y.argmax(axis=1), (a + b) % p)
    assert (data.x.sum(axis=1) == 2).all() and (data.y.sum(axis=1) == 1).all()


def test_digits_are_sklearns_scaled_to_unit_range_with_one_hot_targets() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    data = builtin("digits")
    bunch = sklearn_datasets.load_digits()
    assert data.x.shape == (1797, 64) and data.y.shape == (1797, 10)
    assert np.array_equal(data.x * 16, bunch.data)
    assert np.array_equal(data.y.argmax(axis=1), bunch.target)


def test_digits_without_scikit_learn_name_the_extra_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if absent
    with pytest.raises(DataError) as caught:
        builtin("digits")
    assert str(caught.value) == "digits: needs scikit-learn: pip install 'nnsweep[datasets]'"


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
