"""fan_out on toy tasks: every task's value comes back once, whichever backend runs it."""

from __future__ import annotations

import operator
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import pytest
from helpers import alive, wait_until, write_spec
from joblib.externals.loky.process_executor import TerminatedWorkerError

from nnsweep.backends import BACKENDS, fan_out, stop_workers
from nnsweep.errors import MissingExtra, UnknownBackend

TASKS = [(a, b) for a in range(4) for b in range(3)]
EXPECTED = sorted(100 + a * b for a, b in TASKS)


def scaled_sum(offset: int, a: int, b: int) -> int:
    return offset + a * b


def die_on(fatal: int, index: int) -> int:
    """Kill the worker process running this task when it is the fatal one."""
    if index == fatal:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return index


def value_and_pid(seconds: float, index: int) -> tuple[int, int]:
    time.sleep(seconds)
    return index, os.getpid()


def lost(task: tuple[int, ...], reason: str) -> tuple[str, tuple[int, ...], str]:
    return ("lost", task, reason)


def test_backends_are_loky_dask_and_ray() -> None:
    assert BACKENDS == ("loky", "dask", "ray")


def test_loky_yields_every_task_value_with_the_shared_arguments_first() -> None:
    values = fan_out(scaled_sum, TASKS, backend="loky", workers=2, shared=(100,))
    assert sorted(values) == EXPECTED


def test_one_worker_gives_the_same_values_as_two() -> None:
    one = fan_out(scaled_sum, TASKS, backend="loky", workers=1, shared=(100,))
    two = fan_out(scaled_sum, TASKS, backend="loky", workers=2, shared=(100,))
    assert sorted(one) == sorted(two)


def test_no_tasks_yield_nothing() -> None:
    assert list(fan_out(scaled_sum, [], backend="loky", workers=2, shared=(100,))) == []


def test_an_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UnknownBackend) as caught:
        list(fan_out(scaled_sum, TASKS, backend="spark", workers=2))
    assert (caught.value.backend, caught.value.known) == ("spark", ("loky", "dask", "ray"))


def test_a_killed_loky_worker_loses_its_task_and_the_sweep_runs_on() -> None:
    tasks = [(3, index) for index in range(12)]
    values = list(fan_out(die_on, tasks, backend="loky", workers=2, on_lost=lost))
    lost_indices = [v[1][1] for v in values if isinstance(v, tuple)]
    finished = [v for v in values if not isinstance(v, tuple)]
    assert 3 in lost_indices
    assert sorted(finished + lost_indices) == list(range(12))  # each task comes back once
    # Only tasks started before the loss was seen are lost (loky stops every worker, and
    # drops results not yet delivered); the tasks queued behind them all run.
    assert set(range(8, 12)) <= set(finished)


def test_a_lost_task_reason_is_one_line_naming_the_lost_worker() -> None:
    values = fan_out(die_on, [(0, 0), (0, 1)], backend="loky", workers=2, on_lost=lost)
    [reason] = [v[2] for v in values if isinstance(v, tuple) and v[1] == (0, 0)]
    assert reason.startswith("worker lost: TerminatedWorkerError: ")
    assert "\n" not in reason


def test_without_on_lost_a_killed_worker_raises_the_backends_error() -> None:
    tasks = [(0, index) for index in range(4)]
    with pytest.raises(TerminatedWorkerError):
        list(fan_out(die_on, tasks, backend="loky", workers=2))


def test_tasks_after_a_lost_worker_run_on_fresh_workers() -> None:
    tasks = [(0, index) for index in range(8)]
    values = list(fan_out(die_on, tasks, backend="loky", workers=2, on_lost=lost))
    assert [v for v in values if not isinstance(v, tuple)]  # some ran after the loss
    assert len(values) == 8


def test_stop_workers_leaves_no_loky_worker_alive() -> None:
    pids = {pid for _, pid in fan_out(value_and_pid, [(0.0, i) for i in range(4)],
                                      backend="loky", workers=2)}
    stop_workers()
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, interval=0.1)
    assert not any(alive(pid) for pid in pids)


def test_stopping_early_drops_the_unfinished_tasks_without_a_warning() -> None:
    values = fan_out(value_and_pid, [(0.2, i) for i in range(8)], backend="loky", workers=2)
    next(values)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values.close()  # as the runner does on --fail-fast
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(("backend", "extra"), [("dask", "distributed"), ("ray", "ray")])
def test_a_backend_whose_extra_is_missing_says_which_extra_to_install(
    backend: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, extra, None)  # makes `import <extra>` fail
    with pytest.raises(MissingExtra) as caught:
        list(fan_out(scaled_sum, TASKS, backend=backend, workers=2, shared=(100,)))
    assert caught.value.backend == backend
    assert str(caught.value).endswith(f"needs the {backend} extra: pip install "
                                      f"'nnsweep[{backend}]'")


# --- Dask and Ray: real local clusters, so slow ----------------------------------------------

@pytest.mark.slow
def test_dask_local_cluster_yields_the_same_values_as_loky() -> None:
    pytest.importorskip("distributed")
    values = fan_out(scaled_sum, TASKS, backend="dask", workers=2, shared=(100,))
    assert sorted(values) == EXPECTED


@pytest.mark.slow
def test_a_dask_worker_killed_mid_sweep_loses_nothing() -> None:
    pytest.importorskip("distributed")
    tasks = [(0.3, index) for index in range(12)]
    values = fan_out(value_and_pid, tasks, backend="dask", workers=2, on_lost=lost)
    first_index, first_pid = next(values)
    os.kill(first_pid, signal.SIGKILL)  # its nanny starts a new worker; Dask reruns its tasks
    rest = list(values)
    assert sorted([first_index] + [index for index, _ in rest]) == list(range(12))


@pytest.mark.slow
def test_a_task_that_keeps_killing_dask_workers_comes_back_lost() -> None:
    pytest.importorskip("distributed")
    tasks = [(5, index) for index in range(8)]
    values = list(fan_out(die_on, tasks, backend="dask", workers=2, on_lost=lost))
    lost_values = [v for v in values if isinstance(v, tuple)]
    assert ("lost", (5, 5)) in [v[:2] for v in lost_values]
    assert all(v[2].startswith("worker lost: KilledWorker: ") for v in lost_values)
    finished = [v for v in values if not isinstance(v, tuple)]
    assert sorted(finished + [v[1][1] for v in lost_values]) == list(range(8))


@pytest.mark.slow
def test_stop_workers_shuts_down_the_local_dask_cluster_mid_sweep() -> None:
    pytest.importorskip("distributed")
    values = fan_out(value_and_pid, [(0.2, i) for i in range(8)], backend="dask", workers=2)
    _, pid = next(values)
    stop_workers()  # what the runner does on Ctrl-C
    values.close()
    wait_until(lambda: not alive(pid), 30, interval=0.1)
    assert not alive(pid)


@pytest.mark.slow
def test_ray_yields_the_same_values_as_loky() -> None:
    pytest.importorskip("ray", reason="ray is an optional extra: pip install 'nnsweep[ray]'")
    # Ray's workers do not see the tests folder: the function must come from an installed module.
    tasks = [(n,) for n in range(12)]
    ray_values = fan_out(operator.mul, tasks, backend="ray", workers=2, shared=(7,))
    loky_values = fan_out(operator.mul, tasks, backend="loky", workers=2, shared=(7,))
    assert sorted(ray_values) == sorted(loky_values)


@pytest.mark.slow
def test_a_ray_chunk_that_loses_a_worker_comes_back_lost_and_later_chunks_run() -> None:
    pytest.importorskip("ray", reason="ray is an optional extra: pip install 'nnsweep[ray]'")
    # operator.call(os._exit, 3) ends the worker process that runs it, like a kill.
    tasks = [(pow, 2, n) for n in range(3)] + [(os._exit, 3)] + [(pow, 2, n) for n in range(3, 8)]
    values = list(fan_out(operator.call, tasks, backend="ray", workers=2, on_lost=lost))
    lost_tasks = [v[1] for v in values if isinstance(v, tuple)]
    assert (os._exit, 3) in lost_tasks
    assert len(lost_tasks) <= 2  # the fatal task's chunk: one task per worker
    powers = sorted(v for v in values if not isinstance(v, tuple))
    assert powers == sorted(operator.call(*t) for t in tasks if t not in lost_tasks)
    assert 2**7 in powers  # the chunks after the loss ran


def test_a_run_on_a_backend_whose_extra_is_missing_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnsweep.__main__ import main

    monkeypatch.setitem(sys.modules, "ray", None)
    spec = write_spec(tmp_path, 'dataset = "xor"\n[params]\nepochs = 5\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--backend", "ray"]) == 2
    assert "pip install 'nnsweep[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
