"""Limits checked before any work, performed for real, and the small traps a new user hit.

Every limit is checked before anything is built, trained or written: workers are capped by the
machine, a grid is counted from its axes' lengths, a data file must be a regular file of
bounded size, and a count of zero or less is refused on the command line in one line (exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import joblib
import pandas as pd
import pytest
from helpers import run_cli, write_spec

import nnsweep
from nnsweep import figures, planner, store, tables
from nnsweep.__main__ import main
from nnsweep.errors import NnsweepError, NnsweepWarning
from nnsweep.params import hidden_order
from nnsweep.store import Results

TINY = 'dataset = "xor"\n[params]\nepochs = 5\n[grid]\nseed = [1, 2, 3]\n'

# Seven axes of 1,000 values (10^21 trials) and of ten values (10^7, as many as a run can plan).
HUGE = 'dataset = "rectangles"\n[grid]\n' + "".join(
    f"{name} = {{ range = [1, 1001] }}\n"
    for name in ("seed", "hidden", "epochs", "record_every", "batch_size")) + (
    "alpha = { log = [0.001, 1000], num = 1000 }\n"
    "tolerance = { linear = [0.001, 0.1], num = 1000 }\n")
TEN_MILLION = 'dataset = "rectangles"\n[grid]\n' + "".join(
    f"{name} = {{ range = [1, 11] }}\n"
    for name in ("seed", "hidden", "epochs", "record_every", "batch_size")) + (
    "alpha = { log = [1, 10], num = 10 }\ntolerance = { linear = [0.01, 0.1], num = 10 }\n")


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- workers ----------------------------------------------------------------------------------

def test_a_hundred_thousand_jobs_run_on_at_most_one_worker_per_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = write_spec(tmp_path, TINY), tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--jobs", "100000", "--no-report",
                 "--quiet"]) == 0
    used = json.loads((out / "manifest.json").read_text())["invocations"][-1]["jobs"]
    cores = joblib.cpu_count()
    assert 1 <= used <= cores
    assert lines(capsys.readouterr().err) == [
        f"nnsweep: warning: jobs = 100000: using {used} worker{'s' if used > 1 else ''}, "
        + (f"one per core of this machine ({cores})" if used == cores else
           "as many as its available memory holds, at 140 MiB each")]


def test_minus_one_is_every_core_and_minus_two_all_but_one_as_in_joblib() -> None:
    cores = joblib.cpu_count()
    assert planner.workers_for(None) == planner.workers_for(-1) == cores
    assert planner.workers_for(-2) == max(1, cores - 1)
    assert planner.workers_for(-cores - 5) == 1


def test_a_request_above_the_cores_is_capped_with_one_warning() -> None:
    cores = joblib.cpu_count()
    with pytest.warns(NnsweepWarning) as warned:
        assert planner.workers_for(cores + 1) == cores
    assert [str(w.message) for w in warned] == [
        f"jobs = {cores + 1}: using {cores} worker{'s' if cores > 1 else ''}, one per core of "
        f"this machine ({cores})"]


def test_workers_are_capped_by_the_memory_each_one_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "available_memory", lambda: planner.WORKER_MEMORY * 3 // 2)
    monkeypatch.setattr(joblib, "cpu_count", lambda: 8)
    with pytest.warns(NnsweepWarning, match=r"^jobs = 4: using 1 worker, as many as its "
                      r"available memory holds, at 140 MiB each$"):
        assert planner.workers_for(4) == 1
    assert planner.workers_for(None) == 1  # all cores, as far as memory goes: nothing to say


def test_a_cluster_is_not_bound_by_this_machines_cores_but_by_a_ceiling() -> None:
    assert planner.workers_for(64, "dask") == 64
    with pytest.warns(NnsweepWarning, match=r"^jobs = 5000: using 1024 workers, the most "
                      r"nnsweep starts on a ray cluster$"):
        assert planner.workers_for(5000, "ray") == 1024


def test_zero_workers_is_refused_by_the_library_too() -> None:
    with pytest.raises(NnsweepError, match=r"^jobs = 0: expected a number of workers >= 1, or "
                       r"-1 for all cores \(-2 all but one\)$"):
        planner.workers_for(0)


# --- counts on the command line ---------------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    (["run", "{spec}", "--max-trials", "0"], "nnsweep run: argument --max-trials: 0: expected "
     "an integer from 1 to 10,000,000 (the most trials one run can plan) (see --help)"),
    (["run", "{spec}", "--max-trials", "-1"], "nnsweep run: argument --max-trials: -1: "
     "expected an integer from 1 to 10,000,000 (the most trials one run can plan) (see --help)"),
    (["run", "{spec}", "--max-trials", "10000001"], "nnsweep run: argument --max-trials: "
     "10000001: expected an integer from 1 to 10,000,000 (the most trials one run can plan) "
     "(see --help)"),
    (["run", "{spec}", "--jobs", "0"], "nnsweep run: argument --jobs: 0: expected a number of "
     "workers >= 1, or -1 for all cores (-2 all but one) (see --help)"),
    (["validate", "{spec}", "--jobs", "0"], "nnsweep validate: argument --jobs: 0: expected a "
     "number of workers >= 1, or -1 for all cores (-2 all but one) (see --help)"),
    (["run", "{spec}", "--record-every", "0"], "nnsweep run: argument --record-every: 0: "
     "expected an integer >= 1 (see --help)"),
    (["show", "{out}", "--top", "-1"], "nnsweep show: argument --top: -1: expected an integer "
     ">= 1 (see --help)"),
    (["show", "{out}", "--top", "0"], "nnsweep show: argument --top: 0: expected an integer "
     ">= 1 (see --help)"),
])
def test_a_count_of_zero_or_less_is_refused_in_one_line_before_anything_is_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    spec, out = write_spec(tmp_path, TINY), tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        main([arg.format(spec=spec, out=out) for arg in args])
    assert exited.value.code == 2
    assert lines(capsys.readouterr().err) == [expected]
    assert sorted(tmp_path.iterdir()) == [spec]


# --- grids ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["run"], ["run", "--dry-run"], ["validate"]])
def test_a_grid_of_ten_to_the_twenty_one_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    spec = write_spec(tmp_path, HUGE, "huge.toml")
    started = time.monotonic()
    assert main([command[0], str(spec), *command[1:]]) == 2
    assert time.monotonic() - started < 5  # building its trials first would never end
    assert lines(capsys.readouterr().err) == [
        f"{spec}: the grid has 1,000,000,000,000,000,000,000 trials, more than the limit of "
        "10,000,000 (the most one run can plan); narrow the grid, or split it into several "
        "sweep files"]
    assert sorted(tmp_path.iterdir()) == [spec]


@pytest.mark.parametrize("command", [["run"], ["run", "--dry-run"], ["validate"]])
def test_a_grid_over_the_limit_is_refused_from_its_count_before_a_trial_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    spec = write_spec(tmp_path, TEN_MILLION, "big.toml")
    started = time.monotonic()
    assert main([command[0], str(spec), *command[1:], "--max-trials", "100000"]) == 2
    assert time.monotonic() - started < 5  # ten million trials take minutes to build
    assert lines(capsys.readouterr().err) == [
        f"nnsweep: {spec}: the grid has 10,000,000 trials, more than the limit of 100,000; "
        "narrow the grid, or raise the limit with --max-trials 10000000"]
    assert sorted(tmp_path.iterdir()) == [spec]


def test_a_grid_whose_planning_would_not_fit_in_memory_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "available_memory", lambda: 1_000_000_000)
    spec = write_spec(tmp_path, TEN_MILLION, "big.toml")
    started = time.monotonic()
    assert main(["run", str(spec), "--max-trials", "10000000", "--out",
                 str(tmp_path / "out")]) == 2
    assert time.monotonic() - started < 5
    assert lines(capsys.readouterr().err) == [
        f"nnsweep: {spec}: the grid has 10,000,000 trials; planning them needs about 5.0 GB of "
        "memory, more than the 1.0 GB available; narrow the grid"]
    assert sorted(tmp_path.iterdir()) == [spec]


# --- data files -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_csv_that_is_a_pipe_or_a_device_is_refused_in_one_line(tmp_path: Path, kind: str
                                                                 ) -> None:
    if kind == "fifo":
        data, what = tmp_path / "data.csv", "a named pipe (FIFO)"
        os.mkfifo(data)
    else:
        data, what = Path("/dev/zero"), "a character device"
    spec = write_spec(tmp_path, f'[dataset]\ncsv = "{data}"\ntarget = ["y"]\n')
    # in its own process, so a refusal that failed would time out, not hang the tests
    done = run_cli("run", spec, "--out", tmp_path / "out", timeout=120)
    assert done.returncode == 2
    assert lines(done.stderr) == [f"nnsweep: {data}: {what}, expected a CSV file (a regular "
                                  "file)"]
    assert not (tmp_path / "out").exists()


# --- a minibatch as large as the data -------------------------------------------------------

MINIBATCH = 'dataset = "xor"\n[params]\ndescent = "minibatch"\nepochs = 5\n'
NOTE = ('params.descent = "minibatch" with batch_size = 8 (the default), not below the 4 rows '
        'of the data (xor): every step takes all rows, as descent = "full" does; set batch_size '
        'below 4 for minibatch steps')


def test_validate_notes_a_minibatch_as_large_as_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, MINIBATCH)
    assert main(["validate", str(spec), "--jobs", "1"]) == 0
    printed = capsys.readouterr()
    assert lines(printed.out)[1:] == [f"note: {spec}: {NOTE}"]
    assert printed.err == ""


def test_run_warns_of_a_minibatch_as_large_as_the_data_and_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, MINIBATCH)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--jobs", "1", "--quiet",
                 "--no-report"]) == 0
    assert lines(capsys.readouterr().err) == [f"nnsweep: warning: {spec}: {NOTE}"]


# --- hidden order and reading the CSV tables --------------------------------------------------

@pytest.fixture(scope="module")
def hidden_sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    folder = tmp_path_factory.mktemp("hidden")
    spec = write_spec(folder, 'dataset = "xor"\n[params]\nepochs = 5\n[grid]\n'
                 'hidden = [[3, 2], 16, 4, []]\nseed = [1, 2]\n')
    yield nnsweep.run(nnsweep.load_spec(spec), out=folder / "out", jobs=1)
    shutil.rmtree(folder)


def test_hidden_reads_by_depth_then_layer_sizes_as_numbers() -> None:
    assert sorted(["3-2", "16", "4", ""], key=hidden_order) == ["", "4", "16", "3-2"]
    assert sorted(["8-8", "16-2", "3-2", "3-16"], key=hidden_order) == [
        "3-2", "3-16", "8-8", "16-2"]


def test_the_summary_and_the_figures_order_hidden_by_layer_sizes(hidden_sweep: Results) -> None:
    assert list(hidden_sweep.trials["hidden"].unique()) == ["3-2", "16", "4", ""]  # grid order
    assert list(hidden_sweep.summary["hidden"]) == ["", "4", "16", "3-2"]
    assert figures.ordered_values("hidden", hidden_sweep.trials["hidden"]) == ["", "4", "16", "3-2"]


@pytest.mark.parametrize("name", store.TABLES)  # a grid's tables (test_edge reads an edges one)
def test_a_csv_table_reads_back_without_naming_its_schema(hidden_sweep: Results, name: str
                                                          ) -> None:
    saved = pd.read_parquet(hidden_sweep.directory / f"{name}.parquet")
    pd.testing.assert_frame_equal(tables.read_csv(hidden_sweep.directory / f"{name}.csv"), saved)


def test_a_renamed_csv_table_is_told_by_its_columns(hidden_sweep: Results, tmp_path: Path
                                                    ) -> None:
    copy = tmp_path / "mine.csv"
    shutil.copy(hidden_sweep.directory / "summary.csv", copy)
    pd.testing.assert_frame_equal(tables.read_csv(copy), hidden_sweep.summary)


def test_a_csv_that_is_no_results_table_asks_for_the_schema(tmp_path: Path) -> None:
    other = write_spec(tmp_path, "a,b\n1,2\n", "other.csv")
    with pytest.raises(ValueError, match=r"not one of nnsweep's tables \(trials, history, "
                       r"directions, summary, edges\); pass the schema"):
        tables.read_csv(other)


@pytest.mark.parametrize("name", store.TABLES)
def test_plain_pandas_reads_the_same_frame_as_the_readme_shows(hidden_sweep: Results, name: str
                                                               ) -> None:
    path = hidden_sweep.directory / f"{name}.csv"
    schema = nnsweep.tables.SCHEMAS[name]
    read = pd.read_csv(path, dtype=schema).fillna(
        {c: "" for c in ("hidden", "error") if c in schema})
    pd.testing.assert_frame_equal(read, tables.read_csv(path))
