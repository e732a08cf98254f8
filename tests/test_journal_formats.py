"""Results folders written by an older journal format still load, resume and extend.

tests/format2/ was written by nnsweep when the journal was at format 2 (every number a JSON
number), tests/format3/ when it was at format 3 (arrays packed and deflated): in each,
`results/` is the folder a run of `sweep.toml` left (12 trials: converged, not converged and
diverged, with weights), and `records.jsonl` holds a trained trial journaled without weights, a
failed one and a crashed one. A folder's parquet tables were built by its run from the same
records, so they are the oracle for what its journal must read back as.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnsweep import journal, store
from nnsweep.__main__ import main
from nnsweep.result import TrialResult

OLD_FORMATS = (2, 3)


@pytest.fixture(params=OLD_FORMATS, ids=[f"format{v}" for v in OLD_FORMATS])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def fixture(version: int) -> Path:
    """tests/format<version>/: what nnsweep wrote when its journal was at that format."""
    return Path(__file__).parent / f"format{version}"


def old_folder(tmp_path: Path, fixture: Path) -> Path:
    folder = tmp_path / "results"
    shutil.copytree(fixture / "results", folder)
    return folder


def saved_tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in store.TABLES}


def assert_same_columns(frame: pd.DataFrame, saved: pd.DataFrame) -> None:
    """Every column the old run saved holds the same values (a table may have gained columns
    since, for parameters added later)."""
    pd.testing.assert_frame_equal(frame[list(saved.columns)], saved, check_exact=True)


def run(spec: Path, folder: Path) -> int:
    return main(["run", str(spec), "--out", str(folder), "--jobs", "1", "--quiet",
                 "--no-report"])


def last_invocation(folder: Path) -> dict[str, object]:
    manifest = json.loads((folder / store.MANIFEST).read_text(encoding="utf-8"))
    return dict(manifest["invocations"][-1])


def test_the_fixture_is_of_its_format(fixture: Path, version: int) -> None:
    assert version != journal.FORMAT
    for path in (fixture / "results" / store.JOURNAL, fixture / "records.jsonl"):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines and all(json.loads(line)["v"] == version for line in lines)


def test_an_old_format_journal_reads_back_as_the_tables_its_run_built(
        tmp_path: Path, fixture: Path) -> None:
    folder = old_folder(tmp_path, fixture)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = store.finished_records(folder)
    order = json.loads((folder / store.MANIFEST).read_text(encoding="utf-8"))["trials"]
    assert sorted(records) == sorted(order)
    rebuilt = store.build_tables(records[t] for t in order)
    for name, frame in saved_tables(folder).items():
        assert_same_columns(rebuilt[name], frame)


def test_an_old_format_results_folder_loads_without_a_warning(
        tmp_path: Path, fixture: Path) -> None:
    folder = old_folder(tmp_path, fixture)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = store.load_results(folder)
    assert not results.partial and len(results.trials) == 12
    assert_same_columns(results.history, saved_tables(folder)["history"])


def test_a_rerun_over_an_old_format_folder_trains_nothing_and_adds_no_line(
        tmp_path: Path, fixture: Path) -> None:
    folder = old_folder(tmp_path, fixture)
    before = (folder / store.JOURNAL).read_bytes()
    assert run(fixture / "sweep.toml", folder) == 0
    assert (folder / store.JOURNAL).read_bytes() == before
    assert last_invocation(folder)["trained"] == 0


def test_torn_tables_of_an_old_format_folder_are_rebuilt_from_its_journal_exactly(
        tmp_path: Path, fixture: Path) -> None:
    folder = old_folder(tmp_path, fixture)
    expected = saved_tables(folder)
    for name in store.TABLES:
        (folder / f"{name}.parquet").unlink()
    assert run(fixture / "sweep.toml", folder) == 0
    assert last_invocation(folder)["trained"] == 0
    for name, frame in saved_tables(folder).items():
        assert_same_columns(frame, expected[name])


def test_an_old_format_folder_extended_by_a_new_seed_reads_old_and_new_lines(
        tmp_path: Path, fixture: Path) -> None:
    folder = old_folder(tmp_path, fixture)
    text = (fixture / "sweep.toml").read_text(encoding="utf-8")
    assert "\nseed = 3\n" in text and "[grid]\n" in text
    spec = tmp_path / "more_seeds.toml"
    more = text.replace("\nseed = 3\n", "\n").replace("[grid]\n", "[grid]\nseed = [3, 4]\n")
    spec.write_text(more, encoding="utf-8")
    old = saved_tables(folder)["trials"]
    assert run(spec, folder) == 0
    assert last_invocation(folder)["trained"] == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = store.finished_records(folder)
    assert len(records) == 24
    trials = saved_tables(folder)["trials"].set_index("trial")
    kept = trials.loc[old["trial"], old.columns.drop("trial")].reset_index()
    pd.testing.assert_frame_equal(kept, old, check_exact=True)


def test_old_format_records_of_every_kind_read_back_and_journal_anew_the_same(
        tmp_path: Path, fixture: Path,
        same_result: Callable[[TrialResult, TrialResult], None]) -> None:
    old = list(journal.read(fixture / "records.jsonl"))
    assert [r.status for r in old] == ["not_converged", "failed", "crashed"]
    assert old[1].error == "ValueError: bad row" and not old[1].finished
    path = tmp_path / store.JOURNAL
    journal.append(path, old, keep_weights=True)
    again = list(journal.read(path))
    for before, after in zip(old, again, strict=True):
        assert (after.trial, after.params, after.status, after.seconds, after.error,
                after.engine, after.dataset) == (before.trial, before.params, before.status,
                                                 before.seconds, before.error, before.engine,
                                                 before.dataset)
        assert (after.result is None) == (before.result is None)
        if before.result is not None and after.result is not None:
            same_result(after.result, before.result)
    trained = old[0].result
    assert trained is not None and trained.weights == ()
    assert np.isfinite(trained.errors).all()


@pytest.mark.parametrize("keep_weights", [False, True])
def test_the_journal_written_today_reads_back_as_the_old_format_one(
        tmp_path: Path, fixture: Path, keep_weights: bool,
        same_result: Callable[[TrialResult, TrialResult], None]) -> None:
    old = store.finished_records(fixture / "results")
    path = tmp_path / store.JOURNAL
    journal.append(path, list(old.values()), keep_weights=keep_weights)
    for trial, record in journal.latest(path).items():
        before = old[trial].result
        assert before is not None and record.result is not None
        expected = before if keep_weights else TrialResult(**{**vars(before), "weights": ()})
        same_result(record.result, expected)
