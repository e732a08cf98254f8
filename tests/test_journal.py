"""The journal keeps every finished trial exactly, and survives kills and garbage."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA_HASH, failed_record, trained_record

from nnsweep import journal
from nnsweep.datasets import builtin
from nnsweep.grid import trial_id
from nnsweep.journal import JournalWarning, Record
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.result import TrialResult


def params_named(name: str, **changes: object) -> TrialParams:
    """Parameters whose seed spells the name, so each named trial has its own id."""
    return TrialParams(epochs=50, record_every=10, seed=sum(map(ord, name)),
                       **changes)  # type: ignore[arg-type]


def record(name: str, **changes: object) -> Record:
    return trained_record(params_named(name, **changes), 0.25)


def failed(name: str, error: str) -> Record:
    return failed_record(params_named(name), error)


def names(records: object) -> list[str]:
    """The names of journaled records, in order (names up to four letters are enough here)."""
    by_id = {trial_id(params_named(n), DATA_HASH): n for n in ("a", "b", "c", "d", "f")}
    return [by_id[r.trial] for r in records]  # type: ignore[attr-defined]


def test_a_record_reads_back_exactly_with_its_weights(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    original = record("a", alpha=3.0, hidden=(3, 2))
    journal.append(path, [original], keep_weights=True)
    (back,) = journal.read(path)
    assert back.params == original.params
    assert back.result is not None and original.result is not None
    assert np.array_equal(back.result.errors, original.result.errors)
    assert back.result.final_error == original.result.final_error
    for a, b in zip(back.result.direction_changes, original.result.direction_changes, strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(back.result.weights, original.result.weights, strict=True):
        assert np.array_equal(a, b)


def test_weights_are_left_out_unless_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append(path, [record("a")], keep_weights=False)
    (back,) = journal.read(path)
    assert back.result is not None and back.result.weights == ()


def test_a_diverged_trial_keeps_nan_final_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    diverged = record("d", alpha=10.0, activation="linear", output="linear", hidden=(8,))
    assert diverged.status == "diverged"
    journal.append(path, [diverged], keep_weights=False)
    (back,) = journal.read(path)
    assert back.result is not None and math.isnan(back.result.final_error)


def test_a_failed_trial_keeps_its_error_and_is_not_finished(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append(path, [failed("f", "ValueError: bad row")], keep_weights=False)
    (back,) = journal.read(path)
    assert back.error == "ValueError: bad row" and not back.finished


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append(path, [record("a"), record("b")], keep_weights=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # a kill in the middle of the second line
    with pytest.warns(JournalWarning, match="torn last record"):
        journal.drop_torn_tail(path)
    assert names(journal.read(path)) == ["a"]
    journal.append(path, [record("c")], keep_weights=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert names(journal.read(path)) == ["a", "c"]


def test_garbage_lines_are_skipped_with_a_warning_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append(path, [record("a")], keep_weights=False)
    with open(path, "a") as handle:
        handle.write("\x00\x01 not json at all\n")
    journal.append(path, [record("b")], keep_weights=False)
    with pytest.warns(JournalWarning, match=r"journal.jsonl: line 2: skipped garbage"):
        assert names(journal.read(path)) == ["a", "b"]


def test_the_latest_record_of_a_trial_wins(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append(path, [failed("a", "E: x")], keep_weights=False)
    journal.append(path, [record("a")], keep_weights=False)
    assert journal.latest(path)[record("a").trial].finished


def awkward_result(params: TrialParams) -> TrialResult:
    """A result holding every kind of float64 (nan, infinities, -0.0, the smallest subnormal,
    the largest finite) and counts near int64's limit, in params' shapes on XOR."""
    specials = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]
    epochs = np.array(params.recorded_epochs(), dtype=np.int64)  # (R,)
    errors = np.resize(np.array(specials), (len(epochs), 3))  # (R, 3)
    sizes = [(3, params.hidden[0]), (params.hidden[0], 1)]
    counts = tuple(np.arange(r * c, dtype=np.int64).reshape(r, c) * (2**62 // (r * c))
                   for r, c in sizes)
    weights = tuple(np.resize(np.array(specials[::-1]), (r, c)) for r, c in sizes)
    return TrialResult(epochs, errors, math.nan, -0.0, None, 3, counts, weights)


def test_every_float_and_count_reads_back_bit_for_bit(tmp_path: Path) -> None:
    params = params_named("a", hidden=(5,))
    original = replace(record("a", hidden=(5,)), result=awkward_result(params))
    path = tmp_path / "journal.jsonl"
    journal.append(path, [original], keep_weights=True)
    (back,) = journal.read(path)
    assert back.result is not None and original.result is not None
    for got, want in [(back.result.errors, original.result.errors),
                      (back.result.epochs, original.result.epochs),
                      *zip(back.result.direction_changes, original.result.direction_changes,
                           strict=True),
                      *zip(back.result.weights, original.result.weights, strict=True)]:
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
    assert math.isnan(back.result.final_error)
    assert math.copysign(1, back.result.best_error) == -1 and back.result.diverged_epoch == 3


def test_a_line_cut_anywhere_is_refused_never_read_as_another_record() -> None:
    line = journal.encode(record("a", hidden=(3,)), keep_weights=True)
    for end in range(len(line) - 1):
        with pytest.raises(journal.BadRecord):
            journal.decode(line[:end])


def test_arrays_are_journaled_packed_not_as_lists_of_numbers() -> None:
    written = json.loads(journal.encode(record("a", hidden=(3,)), keep_weights=True))
    assert written["v"] == journal.FORMAT == 4
    result = written["result"]
    assert isinstance(result["values"], str) and result["weights"] is True
    assert result["layers"] == [[3, 3], [3, 1]]
    assert not any(isinstance(v, list) for k, v in result.items() if k != "layers")


@pytest.mark.parametrize("torn", [1, 40, 70_000])
def test_a_torn_line_of_any_length_is_cut_back_to_the_last_whole_line(
        tmp_path: Path, torn: int) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append(path, [record("a"), record("b")], keep_weights=False)
    whole = path.read_bytes()
    path.write_bytes(whole + b"x" * torn)  # a line longer than a block of the search, too
    with pytest.warns(JournalWarning, match=rf"torn last record \({torn} bytes"):
        journal.drop_torn_tail(path)
    assert path.read_bytes() == whole


def test_a_journal_that_is_one_torn_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"v":3,"trial":')
    with pytest.warns(JournalWarning, match="torn last record"):
        journal.drop_torn_tail(path)
    assert path.read_bytes() == b""


def test_a_classifiers_accuracy_and_cross_entropy_read_back_exactly_held_out_ones_too(
        ) -> None:
    data = builtin("moons", rows=24, noise=0.2, seed=1).split(0.25)
    params = TrialParams(hidden=(3,), loss="cross_entropy", metric="accuracy", epochs=30,
                         record_every=7, select="validation", tolerance=0.3)
    result = train_one(data.x, data.y, params, data.validation)
    original = Record(trial_id(params, DATA_HASH), params, result.status(params.tolerance), 0.5,
                      result, engine="numpy", dataset=DATA_HASH)
    written = json.loads(journal.encode(original, keep_weights=False))
    assert written["result"]["classes"] is True
    back = journal.decode(json.dumps(written)).result
    assert back is not None and result.validation is not None and back.validation is not None
    assert back.errors.shape == result.errors.shape == (6, 5)
    assert back.errors.tobytes() == result.errors.tobytes()
    assert back.validation.tobytes() == result.validation.tobytes()
    assert (back.final_error, back.best_error, back.converged_epoch) == (
        result.final_error, result.best_error, result.converged_epoch)


def test_only_a_classifiers_line_says_classes_and_its_metric_needs_them() -> None:
    plain = json.loads(journal.encode(record("a"), keep_weights=False))
    assert "classes" not in plain["result"]  # and mae, mse, sse alone are packed
    assert "select" not in plain["params"]  # parameters added since format 2 at their default
    plain["result"]["classes"] = True
    with pytest.raises(journal.BadRecord, match=r'result.classes: expected only for loss = '
                                                r'"cross_entropy"'):
        journal.decode(json.dumps(plain))
    params = params_named("a", loss="cross_entropy", metric="cross_entropy")
    line = json.loads(journal.encode(trained_record(params, 0.1), keep_weights=False))
    del line["result"]["classes"]
    with pytest.raises(journal.BadRecord, match="expected the cross_entropy its metric names"):
        journal.decode(json.dumps(line))
