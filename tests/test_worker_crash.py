"""A worker process killed mid-sweep, for real, with SIGKILL, on the local backend and on Dask.

The sweep runs as `python -m nnsweep run` in its own process; once its journal holds a
finished batch, one of its worker processes is killed. Whatever finished before the kill is
kept and never trained again; the trials the dead worker held come back "crashed" (exit 1)
and a rerun with --retry-failed trains them; in the end the tables equal a clean run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import psutil
import pytest
from helpers import cli, reduced_xor, table_texts, wait_until

pytestmark = pytest.mark.slow

FINISHED = {"converged", "not_converged", "diverged"}
# Long enough that the kill lands while batches are still in flight, on two busy cores.
EPOCHS = 4000


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The XOR sweep cut short, with one batch key per epochs value: many batches, so when
    the first is journaled every worker still holds one."""
    path = reduced_xor(tmp_path_factory.mktemp("spec"), epochs=EPOCHS)
    text = path.read_text(encoding="utf-8").replace(f"\nepochs = {EPOCHS}\n", "\n")
    epochs = ", ".join(str(EPOCHS + i) for i in range(4))
    path.write_text(text.replace("[grid]\n", f"[grid]\nepochs = [{epochs}]\n"),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clean_tables(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("clean") / "out"
    assert run_to_end(sweep, out) == 0
    return table_texts(out)


def command(sweep: Path, out: Path, *options: str) -> list[str]:
    return cli("run", sweep, "--out", out, "--quiet", "--no-report", "--jobs", "2", *options)


def run_to_end(sweep: Path, out: Path, *options: str) -> int:
    return subprocess.run(command(sweep, out, *options), timeout=300).returncode


def journal_lines(out: Path) -> list[dict[str, object]]:
    path = out / "journal.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def kill_a_worker_mid_sweep(sweep: Path, out: Path, worker: str, *options: str
                            ) -> tuple[int, set[str]]:
    """Start the sweep, SIGKILL one worker process once a batch is journaled.

    `worker` is a piece of the worker processes' command line. Returns the sweep's exit
    status and the trials journaled before the kill.
    """
    process = subprocess.Popen(command(sweep, out, *options))
    try:
        assert wait_until(lambda: journal_lines(out) or process.poll() is not None, 120,
                          interval=0.05), "no batch finished in two minutes"
        assert journal_lines(out), "the sweep ended before any worker could be killed"
        workers = [child for child in psutil.Process(process.pid).children(recursive=True)
                   if worker in " ".join(child.cmdline())]
        assert workers, f"no worker process matching {worker!r}"
        before = {str(record["trial"]) for record in journal_lines(out)}
        os.kill(workers[0].pid, signal.SIGKILL)
        assert process.poll() is None, "the sweep ended before the kill"
        return process.wait(timeout=300), before
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def assert_kept_and_not_retrained(out: Path, before: set[str]) -> None:
    counts = Counter(str(record["trial"]) for record in journal_lines(out))
    assert before and all(counts[trial] == 1 for trial in before)
    status = trial_status(out)
    assert all(status[trial] in FINISHED for trial in before)


def trial_status(out: Path) -> dict[str, str]:
    lines = (out / "trials.csv").read_text(encoding="utf-8").splitlines()
    columns = lines[0].split(",")
    trial, status = columns.index("trial"), columns.index("status")
    return {row.split(",")[trial]: row.split(",")[status] for row in lines[1:]}


def test_a_killed_loky_worker_marks_its_trials_crashed_and_a_retry_completes_them(
    sweep: Path, clean_tables: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    status, before = kill_a_worker_mid_sweep(sweep, out, "popen_loky")
    assert status == 1
    statuses = trial_status(out)
    crashed = {trial for trial, s in statuses.items() if s == "crashed"}
    assert crashed
    assert set(statuses) - crashed == {t for t, s in statuses.items() if s in FINISHED}
    errors = {str(r["error"]) for r in journal_lines(out) if r["status"] == "crashed"}
    assert all(e.startswith("worker lost: TerminatedWorkerError: ") for e in errors)
    assert_kept_and_not_retrained(out, before)

    assert run_to_end(sweep, out, "--retry-failed") == 0
    assert set(trial_status(out).values()) <= FINISHED
    assert_kept_and_not_retrained(out, before)
    assert table_texts(out) == clean_tables


def test_a_killed_dask_worker_loses_nothing_finished_and_the_sweep_completes(
    sweep: Path, clean_tables: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    status, before = kill_a_worker_mid_sweep(sweep, out, "spawn_main", "--backend", "dask")
    # Dask reruns a dead worker's tasks elsewhere: the sweep normally completes; should it
    # give up on a batch, that batch comes back crashed and a retry completes it.
    assert status in (0, 1)
    if status == 1:
        assert run_to_end(sweep, out, "--backend", "dask", "--retry-failed") == 0
    assert set(trial_status(out).values()) <= FINISHED
    assert_kept_and_not_retrained(out, before)
    assert table_texts(out) == clean_tables
