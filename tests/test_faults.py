"""Nothing lost, nothing crashes: each fault of README's "When things go wrong" is performed for
real.

Kills are real signals to real processes, corrupt files are real files cut or garbled on disk,
a full disk is a real tiny tmpfs. Cases whose machinery the test cannot get (mounting a tmpfs)
are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from helpers import (
    LONG,
    ROOT,
    group_exits,
    journaled,
    kill_group,
    run_cli,
    start_run,
    wait_for_lines,
    write_spec,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnsweep
from nnsweep import engines, store
from nnsweep.__main__ import main


def start(spec: Path, out: Path, *options: str) -> subprocess.Popen[bytes]:
    """`nnsweep run --no-report` in its own process group; its stderr in stderr.txt beside
    the sweep file."""
    return start_run(spec, out, "--no-report", *options, stderr=spec.parent / "stderr.txt")


def finished(out: Path) -> int:
    return sum(record.finished for record in journaled(out).values())


# --- 1. SIGKILL of the main process -------------------------------------------------------

@pytest.mark.slow
def test_repeated_kills_at_random_moments_only_ever_add_progress(tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, LONG), tmp_path / "out"
    rng = random.Random(7)
    progress = [0]
    for _ in range(3):
        process = start(spec, out, "--jobs", "2")
        wait_for_lines(out / store.JOURNAL, progress[-1] + 1)
        time.sleep(rng.uniform(0.0, 1.0))
        os.kill(process.pid, signal.SIGKILL)  # the main process only, mid-sweep
        process.wait()
        kill_group(process)  # then its orphaned workers, so the next run has both cores
        progress.append(finished(out))
        assert progress[-1] >= progress[-2]
    assert 0 < progress[-1] < 64
    done = run_cli("run", spec, "--out", out, "--no-report")
    assert done.returncode == 0, done.stderr
    assert "taking over the lock" in done.stderr  # the killed run never released it
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["reused"] == progress[-1]
    assert len(pd.read_parquet(out / "trials.parquet")) == 64


# --- 2. Ctrl-C ----------------------------------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_says_how_to_resume_and_leaves_no_worker(
    tmp_path: Path,
) -> None:
    spec, out = write_spec(tmp_path, LONG), tmp_path / "out"
    process = start(spec, out, "--jobs", "2")
    wait_for_lines(out / store.JOURNAL, 4)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    process.wait(timeout=120)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert process.returncode == 130, stderr
    line = [x for x in stderr.splitlines() if x.startswith("nnsweep: interrupted")]
    assert len(line) == 1 and "trials done and saved" in line[0]
    assert "run the same command again to resume" in line[0]
    assert "Traceback" not in stderr
    assert group_exits(process.pid), "a worker process was left behind"
    trials = pd.read_parquet(out / "trials.parquet")
    assert 0 < len(trials) < 64
    assert f"{len(trials)} of 64 trials done" in line[0]


# --- 4. An exception inside a trial -------------------------------------------------------

_real_train = engines.train


def _failing_train(engine, x, y, trials, validation=None, **stops):  # type: ignore[no-untyped-def]
    """The engine with a bug that strikes every trial of alpha 5."""
    if any(t.alpha == 5 for t in trials):
        raise FloatingPointError("a bug in the trainer")
    return _real_train(engine, x, y, trials, validation, **stops)


FAILING = """\
name = "failing"
dataset = "xor"
[params]
epochs = 50
[grid]
alpha = [1, 5, 10]
hidden = [2, 3]
"""


def test_an_exception_fails_its_trial_only_and_records_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nnsweep.runner.engines.train", _failing_train)
    spec = nnsweep.load_spec(write_spec(tmp_path, FAILING))
    results = nnsweep.run(spec, out=tmp_path / "out", jobs=1)
    trials = results.trials.set_index("alpha")
    assert (trials.loc[5, "status"] == "failed").all()
    assert (trials.loc[5, "error"] == "FloatingPointError: a bug in the trainer").all()
    assert set(trials.drop(index=5)["status"]) <= {"converged", "not_converged"}
    assert len(results.history["trial"].unique()) == 4


def test_the_command_line_exits_1_when_a_trial_failed_and_retry_trains_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("nnsweep.runner.engines.train", _failing_train)
    spec, out = write_spec(tmp_path, FAILING), tmp_path / "out"
    args = ["run", str(spec), "--out", str(out), "--jobs", "1", "--no-report"]
    assert main(args) == 1
    assert "2 trials failed" in capsys.readouterr().err
    monkeypatch.undo()
    assert main([*args, "--retry-failed"]) == 0
    trials = pd.read_parquet(out / "trials.parquet")
    assert "failed" not in set(trials["status"]) and len(trials) == 6


def test_fail_fast_stops_at_the_first_failed_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nnsweep.runner.engines.train", _failing_train)
    text = FAILING.replace("alpha = [1, 5, 10]", "alpha = [5, 1]\nepochs = [50, 51, 52, 53]")
    text = text.replace("[params]\nepochs = 50\n", "")  # one batch per epochs value
    spec = write_spec(tmp_path, text)
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--jobs", "1", "--no-report",
                 "--fail-fast", "--quiet"]) == 1
    trials = pd.read_parquet(out / "trials.parquet")
    assert "failed" in set(trials["status"]) and len(trials) == 4  # the first batch only


# --- 5. Numerical trouble across a whole sweep ---------------------------------------------

def test_overflowing_networks_diverge_quietly_across_a_sweep(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """\
name = "trouble"
dataset = "xor"
[params]
epochs = 400
output = "linear"
[grid]
alpha = [1, 1000, 1e6]
activation = ["relu", "tanh", "linear", "sigmoid"]
""")
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "nnsweep", "run", str(spec), "--out",
         str(tmp_path / "out"), "--no-report"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr
    trials = pd.read_parquet(tmp_path / "out" / "trials.parquet")
    diverged = trials[trials["status"] == "diverged"]
    assert len(diverged) >= 3
    assert diverged["diverged_epoch"].notna().all() and diverged["final_error"].isna().all()
    assert "failed" not in set(trials["status"])


# --- 6. Corrupt or truncated results files -------------------------------------------------

SMALL = """\
name = "small"
dataset = "xor"
[params]
epochs = 100
[grid]
alpha = [0.5, 5]
hidden = [2, 3]
"""


@pytest.fixture
def finished_run(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    spec, out = write_spec(tmp_path, SMALL), tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    yield spec, out


def test_a_parquet_cut_in_half_is_read_from_the_journal_and_rewritten_by_the_next_run(
    finished_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = finished_run
    before = pd.read_parquet(out / "trials.parquet")
    data = (out / "trials.parquet").read_bytes()
    (out / "trials.parquet").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "trials.parquet" in err and "Traceback" not in err
    assert len((out / "trials.parquet").read_bytes()) == len(data) // 2  # show only reads
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    after = pd.read_parquet(out / "trials.parquet")
    pd.testing.assert_frame_equal(after.drop(columns="seconds"), before.drop(columns="seconds"))


def test_garbage_in_the_journal_is_skipped_and_its_trial_trained_again(
    finished_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = finished_run
    journal = out / store.JOURNAL
    lines = journal.read_text().splitlines(keepends=True)
    lines[1] = "{\"v\": 2, garbage\n"
    journal.write_text("".join(lines))
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "journal.jsonl: line 2: skipped garbage" in err and "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["trained"] == 1


# --- 7. Two runs into the same folder at once ---------------------------------------------

@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_is_refused_naming_the_first(tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, LONG), tmp_path / "out"
    first = start(spec, out, "--jobs", "1")
    try:
        wait_for_lines(out / store.JOURNAL, 1)
        second = run_cli("run", spec, "--out", out, timeout=120)
        assert second.returncode == 2
        assert f"another run is using this folder (pid {first.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        kill_group(first)


# --- 8. Bad spec files: a fuzzer through the command line ---------------------------------

KEYS = ["name", "description", "dataset", "params", "grid", "run", "report", "include",
        "exclude", "alpha", "hidden", "epochs", "seed", "activation", "descent", "batch_size",
        "x", "y", "csv", "target", "log", "num", "zip", "weights", "init", "jobs", "ålpha", ""]
scalars = (st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True)
           | st.booleans() | st.text(max_size=8) | st.sampled_from(["xor", "relu", "full"]))
documents = st.recursive(
    scalars | st.lists(scalars, max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                max_size=4),
    max_leaves=12)
toml_texts = st.dictionaries(st.sampled_from(KEYS), documents, max_size=6).map(
    lambda d: tomli_w.dumps(d))
VALID = (ROOT / "sweeps" / "xor.toml").read_text()
mutated = st.tuples(st.integers(0, len(VALID)), st.integers(0, 40), st.text(max_size=6)).map(
    lambda m: VALID[: m[0]] + m[2] + VALID[m[0] + m[1]:])


# As many examples as the Hypothesis profile asks for (conftest.py): a few dozen in every run,
# thousands with NNSWEEP_HYPOTHESIS=long. Each example gets a folder of its own.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=toml_texts | mutated)
def test_random_and_mutated_spec_files_end_in_0_or_2_never_a_traceback(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as where:
        folder = Path(where)
        spec = write_spec(folder, text, "fuzz.toml")
        for args in (["validate", str(spec)],
                     ["run", str(spec), "--dry-run", "--out", str(folder / "out")]):
            status = main(args)
            err = capsys.readouterr().err
            assert status in (0, 2), (text, err)
            assert "Traceback" not in err
            if status == 2:
                assert err.strip(), text
                assert all(line.startswith((str(spec), "nnsweep:"))
                           for line in err.splitlines())
        assert not (folder / "out").exists()


# --- 9. Bad data ----------------------------------------------------------------------------

@pytest.mark.parametrize(("csv", "expected"), [
    ("non_numeric.csv", "non_numeric.csv:3: column 'b' = 'oops': expected a number"),
    ("ragged.csv", "ragged.csv:3: 2 cells, expected 3"),
    ("missing.csv", "missing.csv"),
])
def test_bad_data_exits_2_naming_file_row_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], csv: str, expected: str
) -> None:
    data = ROOT / "tests" / "bad_data" / csv
    spec = write_spec(tmp_path,
                      f'[dataset]\ncsv = "{data}"\ntarget = ["y"]\n[params]\nepochs = 5\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# --- 10. Out-of-reach sweeps, a full disk, a read-only folder ------------------------------

def test_a_grid_of_millions_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, """\
dataset = "xor"
[grid]
alpha = { log = [0.001, 1000], num = 200 }
hidden = { range = [1, 201] }
seed = { range = [0, 100] }
""")
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "4,000,000 trials" in err and "--max-trials" in err
    assert not (tmp_path / "out").exists()


@contextlib.contextmanager
def mounted_tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A real tmpfs at `where` (skips the test where mounting is not allowed)."""
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 600 KB filesystem, so writes really fail with 'No space left on device'."""
    with mounted_tmpfs(tmp_path / "disk", "size=600k") as mount:
        yield mount


def test_results_too_big_for_the_disk_are_refused_before_training(
    tmp_path: Path, tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, LONG.replace("record_every = 100", "record_every = 1"))
    assert main(["run", str(spec), "--out", str(tiny_disk / "out")]) == 2
    err = capsys.readouterr().err
    assert "on disk, more than the" in err and "record_every" in err
    assert list(tiny_disk.iterdir()) == []


def test_a_disk_that_fills_up_mid_run_keeps_what_was_written(
    tmp_path: Path, tiny_disk: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("nnsweep.planner.check_room", lambda *a, **k: None)  # estimate fooled
    spec = write_spec(tmp_path, LONG.replace("epochs = [20000, ", "epochs = [2000, ").replace(
        "record_every = 100", "record_every = 10"))
    out = tiny_disk / "out"
    assert main(["run", str(spec), "--out", str(out), "--jobs", "1", "--quiet",
                 "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "cannot write results (No space left on device)" in err
    assert "kept in journal.jsonl" in err and "Traceback" not in err
    assert len(journaled(out)) > 0


def test_a_read_only_folder_gives_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mounted_tmpfs(tmp_path / "ro", "ro,size=10m") as mount:
        spec = write_spec(tmp_path, SMALL)
        assert main(["run", str(spec), "--out", str(mount / "out")]) == 2
        err = capsys.readouterr().err
        assert "cannot write results (Read-only file system)" in err
        assert len(err.strip().splitlines()) == 1
