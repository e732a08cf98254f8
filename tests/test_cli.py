"""End to end through the command line, in a temporary folder, as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import (
    ROOT,
    alive,
    group_exits,
    journaled,
    run_cli,
    start_run,
    wait_for_lines,
    wait_until,
    write_spec,
)
from numpy.typing import NDArray
from textbook_loops import iamtrasks_loop

from nnsweep import store, tables
from nnsweep.__main__ import main

SMALL = """\
name = "small"
description = "a quick XOR sweep"
dataset = "xor"

[params]
epochs = {epochs}
record_every = 50

[grid]
alpha = [0.1, 1, 10, 1000]
hidden = [2, 4, 8]
seed = [1, 2]
"""


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """A table without its timings, in trial order: what must not depend on how it ran."""
    frame = frame.drop(columns=[c for c in ("seconds",) if c in frame.columns])
    keys = [c for c in ("trial", "epoch", "layer", "row", "col") if c in frame.columns]
    if not keys:
        keys = [c for c in tables.SUMMARY_KEYS if c in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_same_tables(a: Path, b: Path) -> None:
    for name in store.TABLES:
        pd.testing.assert_frame_equal(comparable(pd.read_parquet(a / f"{name}.parquet")),
                                      comparable(pd.read_parquet(b / f"{name}.parquet")))


def test_validate_counts_the_xor_sweep_without_training(tmp_path: Path) -> None:
    done = run_cli("validate", ROOT / "sweeps" / "xor.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "49 trials" in done.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_xor_sweep_reproduces_iamtraks_alpha_table_for_hidden_4(
    tmp_path: Path, xor: tuple[NDArray[np.float64], NDArray[np.float64]]
) -> None:
    spec = write_spec(tmp_path, """\
name = "xor"
dataset = "xor"
[params]
hidden = 4
epochs = 60000
record_every = 10000
seed = 1
[grid]
alpha = [0.001, 0.01, 0.1, 1, 10, 100, 1000]
""")
    done = run_cli("run", spec, "--out", tmp_path / "out", "--jobs", "2", "--no-report")
    assert done.returncode == 0, done.stderr
    trials = pd.read_parquet(tmp_path / "out" / "trials.parquet")
    history = pd.read_parquet(tmp_path / "out" / "history.parquet")
    for alpha in [0.001, 0.01, 0.1, 1, 10, 100, 1000]:
        # iamtrask's own loop, run here: his mae at iterations 0, 10000, ..., 50000, which the
        # sweep must reproduce bit for bit (the page's copy breaks off after alpha 1's second
        # row; test_textbooks.py checks the printed digits).
        his = iamtrasks_loop(*xor, alpha=alpha, hidden=4, iterations=50001).printed
        trial = trials.loc[trials["alpha"] == alpha, "trial"].item()
        rows = history[(history["trial"] == trial) & (history["epoch"] <= 50000)]
        assert rows["epoch"].tolist() == [0, 10000, 20000, 30000, 40000, 50000]
        assert rows["mae"].tolist() == his, alpha
    statuses = dict(zip(trials["alpha"], trials["status"], strict=True))
    assert statuses[1] == statuses[10] == "converged"
    assert statuses[0.001] == statuses[1000] == "not_converged"


def test_a_run_leaves_every_table_and_they_round_trip_through_csv(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=200))
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet",
                 "--no-report"]) == 0
    out = tmp_path / "out"
    for name in ("spec.toml", "manifest.json"):
        assert (out / name).is_file()
    for name in store.TABLES:
        parquet = pd.read_parquet(out / f"{name}.parquet")
        pd.testing.assert_frame_equal(parquet, tables.read_csv(out / f"{name}.csv",
                                                               tables.SCHEMAS[name]))
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 24 and trials["trial"].is_unique
    assert set(trials["hidden"]) == {"2", "4", "8"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status_counts"] == trials["status"].value_counts().to_dict()
    assert manifest["invocations"][-1]["trained"] == 24


def test_results_do_not_depend_on_the_number_of_jobs(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=300))
    for jobs in ("1", "2"):
        assert main(["run", str(spec), "--out", str(tmp_path / jobs), "--jobs", jobs,
                     "--quiet", "--no-report"]) == 0
    assert_same_tables(tmp_path / "1", tmp_path / "2")


def test_a_rerun_reuses_every_trial_and_adding_values_trains_only_new_ones(
    tmp_path: Path,
) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=100))
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["trained"] == 0
    assert manifest["invocations"][-1]["reused"] == 24
    write_spec(tmp_path, SMALL.format(epochs=100).replace("[0.1, 1, 10, 1000]",
                                                          "[0.1, 1, 10, 1000, 3]"))
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["trained"] == 6
    assert len(pd.read_parquet(out / "trials.parquet")) == 30


def test_a_changed_spec_is_refused_in_another_specs_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=100))
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    before = (out / "trials.parquet").read_bytes()
    write_spec(tmp_path, SMALL.format(epochs=120))
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 2
    message = capsys.readouterr().err.strip()
    assert "made by another spec" in message and "--fresh" in message
    assert len(message.splitlines()) == 1
    assert (out / "trials.parquet").read_bytes() == before
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report",
                 "--fresh"]) == 0


def test_dry_run_trains_and_writes_nothing(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=100))
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    assert "24 trials; 24 to train" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_tables_of_an_uninterrupted_one(tmp_path: Path) -> None:
    # One batch key per epochs value: 16 batches that finish one by one, not two at once.
    spec = write_spec(tmp_path, SMALL.format(epochs=4000).replace("epochs = 4000\n", "").replace(
        "hidden = [2, 4, 8]", "hidden = [2, 3]\nepochs = [4000, 4001, 4002, 4003]"))
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = start_run(spec, killed, "--jobs", "2", "--no-report")
    wait_for_lines(killed / store.JOURNAL, 8)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert group_exits(process.pid), "orphaned workers outlived the killed run"
    finished_before = len(journaled(killed))  # a record torn by the kill is dropped
    assert 0 < finished_before < 64

    done = run_cli("run", spec, "--out", killed, "--jobs", "2", "--no-report")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["invocations"][-1]["reused"] == finished_before
    assert manifest["invocations"][-1]["trained"] == 64 - finished_before
    assert run_cli("run", spec, "--out", whole, "--no-report").returncode == 0
    assert_same_tables(killed, whole)


# A worker process started by a main process that exits at once, and given its first task
# only later: as a loky worker that reads a batch from the pipe after the run was killed.
ORPHAN = """
import multiprocessing, os, sys, time
from pathlib import Path


def work(flag):
    from nnsweep import runner

    while not Path(flag).exists():
        time.sleep(0.02)
    runner._settle_in_worker()  # what every batch starts with in a worker
    time.sleep(120)


if __name__ == "__main__":
    worker = multiprocessing.get_context("spawn").Process(target=work, args=(sys.argv[1],))
    worker.start()
    Path(sys.argv[2]).write_text(str(worker.pid))
    os._exit(0)
"""


def test_a_worker_whose_first_batch_comes_after_the_run_was_killed_exits(tmp_path: Path) -> None:
    """It watches the process that started it, not the one that adopted it: else it would
    train on, and wait forever on a result queue a killed sibling left locked."""
    script = write_spec(tmp_path, ORPHAN, "spawner.py")
    flag, pid = tmp_path / "go", tmp_path / "pid"
    subprocess.run([sys.executable, str(script), str(flag), str(pid)], timeout=60, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = int(pid.read_text())
    try:
        flag.touch()
        assert wait_until(lambda: not alive(worker), 20), "the orphaned worker lingers"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


def test_show_prints_status_counts_and_the_best_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=300))
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet",
                 "--no-report"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "out")]) == 0
    shown = capsys.readouterr().out
    assert "status" in shown and "best" in shown and "final_error" in shown


def test_a_saved_network_predicts_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=3000) + "\n[run]\nsave_weights = true\n")
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    trials = pd.read_parquet(out / "trials.parquet")
    best = trials.sort_values("final_error").iloc[0]["trial"]
    capsys.readouterr()
    assert main(["predict", str(out), best[:8], "1", "1", "1"]) == 0
    assert float(capsys.readouterr().out) < 0.5  # XOR of 1, 1 is 0
    assert main(["predict", str(out), best[:8], "1", "0", "1"]) == 0
    assert float(capsys.readouterr().out) > 0.5


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--help"])
    assert stopped.value.code == 0
    assert "python -m nnsweep run sweeps/xor.toml" in capsys.readouterr().out


def test_bad_usage_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["run"])
    assert stopped.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_missing_spec_file_exits_2_naming_it(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_record_every_on_the_command_line_thins_the_history(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL.format(epochs=200))
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report",
                 "--record-every", "100"]) == 0
    history = pd.read_parquet(out / "history.parquet")
    assert sorted(set(history["epoch"])) == [0, 100, 199]


def test_every_problem_of_a_bad_file_gets_its_own_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, 'dataset = "xor"\n[params]\nalpah = 1\nepochs = 0\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"{spec}: params.alpah: unknown key (did you mean 'alpha'?)",
                     f"{spec}: params.epochs = 0: expected an integer from 1 to 1,000,000,000"]
    assert not (tmp_path / "out").exists()
