"""A sweep on a Dask or Ray cluster gives the local backend's tables, byte for byte.

Each test runs sweeps/xor.toml (49 trials, epochs cut to 200) through the command line and
compares every table's CSV with the loky run's; only the `seconds` column (wall time) may
differ. Clusters are real: a LocalCluster of two worker processes, a scheduler and a worker
started here as separate processes on 127.0.0.1, and a local Ray instance.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import reduced_xor, table_texts, wait_until

from nnsweep.__main__ import main

pytestmark = pytest.mark.slow


def run_sweep(spec: Path, out: Path, *options: str) -> dict[str, str]:
    argv = ["run", str(spec), "--out", str(out), "--quiet", "--no-report", *options]
    assert main(argv) == 0
    return table_texts(out)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reduced_xor(tmp_path_factory.mktemp("spec"), epochs=200)


@pytest.fixture(scope="module")
def local_tables(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return run_sweep(sweep, tmp_path_factory.mktemp("loky") / "out", "--jobs", "2")


@pytest.fixture
def dask_scheduler(tmp_path: Path) -> Iterator[str]:
    """A `dask scheduler` and one `dask worker`, each its own process, on loopback."""
    distributed = pytest.importorskip("distributed")
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    processes = []
    try:
        processes.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--scheduler-file", str(scheduler_file), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(scheduler_file.exists, 60, interval=0.2)
        processes.append(subprocess.Popen(
            [dask, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
             "--nworkers", "1", "--nthreads", "1", *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            address = client.scheduler.address
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_local_dask_cluster_gives_the_local_backends_tables(
    sweep: Path, local_tables: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    tables = run_sweep(sweep, tmp_path / "out", "--backend", "dask", "--jobs", "2")
    assert tables == local_tables


def test_a_separate_dask_scheduler_and_worker_give_the_local_backends_tables(
    sweep: Path, local_tables: dict[str, str], dask_scheduler: str, tmp_path: Path
) -> None:
    assert dask_scheduler.startswith("tcp://127.0.0.1:")
    tables = run_sweep(sweep, tmp_path / "out", "--backend", "dask", "--jobs", "2",
                       "--scheduler", dask_scheduler)
    assert tables == local_tables


def test_ray_gives_the_local_backends_tables(
    sweep: Path, local_tables: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="ray is an optional extra (pip install 'nnsweep[ray]'); "
                        "CI leaves it out to keep the suite short")
    tables = run_sweep(sweep, tmp_path / "out", "--backend", "ray", "--jobs", "2")
    assert tables == local_tables


def test_one_worker_gives_the_same_tables_as_two(
    sweep: Path, local_tables: dict[str, str], tmp_path: Path
) -> None:
    assert run_sweep(sweep, tmp_path / "out", "--jobs", "1") == local_tables


def test_an_unreachable_scheduler_exits_2_naming_it(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    argv = ["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet", "--backend", "dask",
            "--scheduler", "tcp://127.0.0.1:9"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(
        "nnsweep: --scheduler tcp://127.0.0.1:9: cannot connect to a Dask scheduler there")
    assert not (tmp_path / "out").exists()  # refused before anything was written

