"""`nnsweep bench` as a user of the README's install runs it: at a tiny scale, in its own
process, it exits 0 with its table, with scipy or without it (the compiled engine's and plain
Numba's matrix products need scipy's BLAS: without it their rows are skipped, saying why, and
the others are timed).
The results folder's benchmark runs at a tiny scale too, its goals skipped, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import ROOT, cli

from nnsweep.params import TrialParams
from nnsweep.result import ERRORS

pytestmark = pytest.mark.slow

TITLE = "nnsweep engines against the loop"
TINY = ("bench", "--scale", "0.01", "--jobs", "1", "--workloads", "W49")


def bench(path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`nnsweep bench` at a tiny scale; `path`, a folder put first on the module path."""
    env = dict(os.environ, COLUMNS="200", PYTHONIOENCODING="utf-8")  # a row per line
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    return subprocess.run(cli(*TINY), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


def engines_timed(out: str) -> list[str]:
    """The engine column of the table's W49 rows."""
    return [line.split("│")[2].strip() for line in out.splitlines()
            if line.count("│") > 3 and line.split("│")[1].strip() == "W49"]


def without_scipy(folder: Path) -> Path:
    """A folder that, first on the path, makes this Python one where scipy is not installed:
    importing it fails and importlib finds no such module."""
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['scipy'] = None\n")
    return folder


def with_a_broken_scipy(folder: Path) -> Path:
    """A folder that, first on the path, holds a scipy that is found but fails to import (as
    one built for another NumPy does)."""
    (folder / "scipy.py").write_text("raise ImportError('this scipy does not import')\n")
    return folder


def test_bench_prints_every_engine_against_the_loop() -> None:
    done = bench()
    assert done.returncode == 0, done.stderr
    assert TITLE in done.stdout
    assert {"reference (loop)", "numpy", "numba", "plain-numba"} <= set(engines_timed(done.stdout))


@pytest.mark.parametrize("python", [without_scipy, with_a_broken_scipy])
def test_without_a_working_scipy_bench_times_the_rest_and_says_why_numba_is_not(
        tmp_path: Path, python: Callable[[Path], Path]) -> None:
    """Both compiled rows call scipy's BLAS: each is skipped, saying so, and the rest timed."""
    done = bench(python(tmp_path))
    assert done.returncode == 0, done.stderr
    assert TITLE in done.stdout
    timed = engines_timed(done.stdout)
    assert {"reference (loop)", "numpy"} <= set(timed)
    assert "plain-numba" not in timed and "numba" not in timed
    said = (done.stdout + done.stderr).splitlines()
    assert len([line for line in said if "plain-numba" in line and "scipy" in line]) == 1
    assert any("numba" in line and "scipy's BLAS" in line for line in said)


def test_the_results_size_benchmark_measures_w4900_at_a_tiny_scale(tmp_path: Path) -> None:
    """60 epochs recorded every 6: the run, its report and their figures, and the three
    goals skipped."""
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         "benchmarks/test_results_size.py", "--bench-scale", "0.01",
         f"--benchmark-json={figures}"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed, 3 skipped" in done.stdout
    assert done.stdout.count("the goals are asserted from --bench-scale 0.5 up") == 3
    measured = {m["name"]: m for m in json.loads(figures.read_text(encoding="utf-8"))[
        "benchmarks"]}
    rows = len(TrialParams(epochs=60, record_every=6).recorded_epochs())
    report = measured["test_report_of_w4900"]["extra_info"]
    assert report["history_rows"] == 4900 * rows
    assert report["report_seconds"] > 0 and 0 < report["report_peak_mb"] < 512
    info = measured["test_results_size"]["extra_info"]
    assert info["history_values"] == 4900 * rows * ERRORS
    assert info["journal_seconds"] > 0
    assert 0 < info["tables_seconds"] < info["total_seconds"]
    assert info["journal.jsonl_bytes_per_value"] > info["history.parquet_bytes_per_value"] > 0
