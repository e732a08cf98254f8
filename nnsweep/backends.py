"""Where batches run: joblib over this machine's cores (loky), or a Dask or Ray cluster.

The runner hands over plain tasks and gets each task's return value back as soon as it
finishes; which engine executes them, and what happens when a worker process dies under a
task, is decided here and nowhere else. Every backend runs the same function on the same
arguments, so results never depend on the backend or on how many workers there are.

Lost workers. A worker process may die under a task (killed, out of memory). Each task first
leaves a small "started" mark naming where it runs (a file in a temporary folder for loky, an
event sent to the scheduler for Dask). When the backend reports a lost worker, the tasks it took
along are lost: for loky every task started and not yet returned (loky stops all its workers
when one dies, and drops results not yet delivered); for Dask, which reruns a dead worker's
tasks itself and only gives up on a task that has killed several workers in turn, the tasks
last started on a worker that is gone. Each lost task is handed to `on_lost`, whose return
value is yielded in place of the task's result (the runner turns it into "crashed" records that
a rerun with retry_failed trains again); the other unfinished tasks run on, on fresh workers.
Ray cannot stream results, so its tasks run in chunks of one task per worker, and a chunk that
loses a worker is lost whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import socket
import tempfile
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import joblib
from joblib.externals.loky.process_executor import TerminatedWorkerError

from nnsweep.errors import MissingExtra, UnknownBackend, Unreachable

BACKENDS: tuple[str, ...] = ("loky", "dask", "ray")
EXTRA_MODULES: dict[str, str] = {"dask": "distributed", "ray": "ray"}

# Closers of the clusters and clients that fan_out started and has not shut down yet.
_OPEN: list[Callable[[], None]] = []


class Marker(Protocol):
    """Records, from inside a worker, that a task has started."""

    def __call__(self, index: int) -> None: ...


def _run_marked(mark: Marker, index: int, function: Callable[..., Any], *arguments: Any
                ) -> tuple[int, Any]:
    """What a worker runs: leave the started mark, then the task itself."""
    mark(index)
    return index, function(*arguments)


@dataclass(frozen=True)
class _FileMarker:
    """Started marks as empty files named by task index (loky: the workers share our disk)."""

    directory: str

    def __call__(self, index: int) -> None:
        (Path(self.directory) / str(index)).touch()

    def started(self) -> set[int]:
        return {int(path.name) for path in Path(self.directory).iterdir()}


@dataclass(frozen=True)
class _DaskMarker:
    """Started marks as events sent to the scheduler (Dask workers may be other machines).

    Each mark names the worker, and is sent and acknowledged before the task runs.
    """

    topic: str

    def __call__(self, index: int) -> None:
        from distributed import get_client, get_worker

        get_client().log_event(self.topic, [index, get_worker().address])


@dataclass(frozen=True)
class _NoMarker:
    """Ray's chunks are all in flight at once: a lost chunk is lost whole, no marks needed."""

    def __call__(self, index: int) -> None:
        return None


@dataclass
class _Engine:
    """One backend, ready to run: how to run a round of tasks, and what a lost worker raises."""

    run_round: Callable[[Callable[..., Any], tuple[Any, ...], dict[int, tuple[Any, ...]]],
                        Iterator[tuple[int, Any]]]
    lost_tasks: Callable[[], set[int]]  # indices of the tasks that a lost worker took along
    lost_errors: tuple[type[BaseException], ...]


def fan_out(
    function: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    backend: str,
    workers: int,
    shared: tuple[Any, ...] = (),
    scheduler: str | None = None,
    address: str | None = None,
    on_lost: Callable[[tuple[Any, ...], str], Any] | None = None,
) -> Iterator[Any]:
    """Yield function(*shared, *task) for every task, in the order they finish.

    `shared` holds the arguments every task needs (the dataset); Dask scatters them to the
    workers once, not once per task. A task whose worker process was lost yields
    `on_lost(task, reason)` instead, `reason` being one line such as "worker lost: ...";
    without `on_lost` the backend's own error is raised. `scheduler` is a Dask scheduler's
    address and `address` a Ray cluster's; without them a local cluster is started for the
    sweep and shut down at its end.
    """
    if backend not in BACKENDS:
        raise UnknownBackend(backend, BACKENDS)
    if not tasks:
        return
    with _engine(backend, workers, min(workers, len(tasks)), scheduler, address) as engine:
        remaining = dict(enumerate(tasks))
        while remaining:
            before = len(remaining)
            try:
                for index, value in engine.run_round(function, shared, remaining):
                    del remaining[index]
                    yield value
            except engine.lost_errors as error:
                lost = sorted(engine.lost_tasks() & remaining.keys())
                if on_lost is None or (not lost and len(remaining) == before):
                    raise
                reason = "worker lost: " + _one_line(error)
                for index in lost:
                    yield on_lost(remaining.pop(index), reason)


def check(backend: str, *, scheduler: str | None = None) -> None:
    """Fail before anything is written: an unknown backend, a missing extra, a scheduler
    that nothing answers at. (Ray's address is checked when Ray connects.)"""
    if backend not in BACKENDS:
        raise UnknownBackend(backend, BACKENDS)
    if backend != "loky" and importlib.util.find_spec(EXTRA_MODULES[backend]) is None:
        raise MissingExtra(backend)
    if backend == "dask" and scheduler is not None:
        host, _, port = scheduler.rpartition("://")[2].rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port or 8786)), timeout=5).close()
        except (OSError, ValueError) as error:
            raise Unreachable("scheduler", scheduler, "Dask scheduler",
                              _one_line(error)) from None


def stop_workers() -> None:
    """Leave no worker process behind after an interrupt or a fail-fast stop."""
    while _OPEN:
        close = _OPEN[-1]  # each closer takes itself off the list
        with contextlib.suppress(Exception):
            close()
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True, kill_workers=True)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _delayed(
    mark: Marker, function: Callable[..., Any], shared: tuple[Any, ...],
    tasks: Iterable[tuple[int, tuple[Any, ...]]],
) -> Iterator[Any]:
    for index, task in tasks:
        yield joblib.delayed(_run_marked)(mark, index, function, *shared, *task)


@contextlib.contextmanager
def _engine(backend: str, workers: int, n_jobs: int, scheduler: str | None,
            address: str | None) -> Iterator[_Engine]:
    if backend == "dask":
        with _dask_engine(workers, scheduler) as engine:
            yield engine
    elif backend == "ray":
        with _ray_engine(workers, address) as engine:
            yield engine
    else:
        with _loky_engine(n_jobs) as engine:
            yield engine


@contextlib.contextmanager
def _loky_engine(n_jobs: int) -> Iterator[_Engine]:
    with tempfile.TemporaryDirectory(prefix="nnsweep-started-") as directory:
        mark = _FileMarker(directory)

        def run_round(function: Callable[..., Any], shared: tuple[Any, ...],
                      remaining: dict[int, tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
            parallel = joblib.Parallel(n_jobs=n_jobs, batch_size=1,
                                       return_as="generator_unordered")
            yield from _closing_quietly(
                parallel(_delayed(mark, function, shared, list(remaining.items()))))

        yield _Engine(run_round, mark.started, (TerminatedWorkerError,))


@contextlib.contextmanager
def _dask_engine(workers: int, scheduler: str | None) -> Iterator[_Engine]:
    try:  # imported as Any: the extra may be missing where mypy runs
        distributed: Any = importlib.import_module("distributed")
        killed_worker: type[BaseException] = importlib.import_module(
            "distributed.scheduler").KilledWorker
    except ImportError:
        raise MissingExtra("dask") from None
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None)
            stack.callback(_closing(cluster.close))
            client = distributed.Client(cluster, set_as_default=False)
        else:
            try:
                client = distributed.Client(scheduler, timeout=10, set_as_default=False)
            except (OSError, TimeoutError) as error:
                raise Unreachable("scheduler", scheduler, "Dask scheduler",
                                  _one_line(error)) from None
        stack.callback(_closing(client.close))
        mark = _DaskMarker(f"nnsweep-started-{id(stack):x}")

        def run_round(function: Callable[..., Any], shared: tuple[Any, ...],
                      remaining: dict[int, tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
            backend = _dask_backend_class()(client=client, scatter=list(shared))
            with joblib.parallel_config(backend=backend):
                parallel = joblib.Parallel(n_jobs=-1, batch_size=1,
                                           return_as="generator_unordered")
                yield from _closing_quietly(
                    parallel(_delayed(mark, function, shared, list(remaining.items()))))

        def lost_tasks() -> set[int]:
            """Tasks last started on a worker that has since died."""
            last_worker = {index: worker for _, (index, worker) in client.get_events(mark.topic)}
            alive = set(client.scheduler_info()["workers"])
            return {index for index, worker in last_worker.items() if worker not in alive}

        yield _Engine(run_round, lost_tasks, (killed_worker,))


def _dask_backend_class() -> type[Any]:
    """joblib's Dask backend, with two fixes for a cluster that loses workers.

    joblib's own backend hands a task Dask gives up on (KilledWorker: the task's worker died
    under it once too often) to the task's future but not to Parallel's completion callback,
    and a streaming Parallel then waits forever; here the callback gets the error too. And
    while a cluster has a single core (one worker, or all but one restarting) Parallel would
    run the tasks in this process; here it always sends them to the cluster.
    """
    from joblib._dask import DaskDistributedBackend

    class ClusterDaskBackend(DaskDistributedBackend):  # type: ignore[misc]
        def effective_n_jobs(self, n_jobs: int) -> int:
            return max(2, int(super().effective_n_jobs(n_jobs)))

        async def _collect(self) -> None:
            while self._continue:
                async for future, result in self.waiting_futures:
                    cf_future = self._results.pop(future)
                    callback = self._callbacks.pop(future)
                    if future.status == "error":
                        _, error, _ = result
                        cf_future.set_exception(error)
                        callback(error)  # the one line joblib's backend lacks
                    else:
                        cf_future.set_result(result)
                        callback(result)
                await asyncio.sleep(0.01)

    return ClusterDaskBackend


@contextlib.contextmanager
def _ray_engine(workers: int, address: str | None) -> Iterator[_Engine]:
    try:  # imported as Any: the extra may be missing where mypy runs
        ray: Any = importlib.import_module("ray")
        importlib.import_module("ray.exceptions")
        importlib.import_module("ray.util.joblib").register_ray()
    except ImportError:
        raise MissingExtra("ray") from None
    with contextlib.ExitStack() as stack:
        if not ray.is_initialized():
            if address is None:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            else:
                try:
                    ray.init(address=address, log_to_driver=False)
                except (ConnectionError, RuntimeError, ValueError) as error:
                    raise Unreachable("address", address, "Ray cluster",
                                      _one_line(error)) from None
            stack.callback(_closing(ray.shutdown))
        n_jobs = max(1, int(ray.cluster_resources().get("CPU", workers)))
        chunk: list[int] = []

        def run_round(function: Callable[..., Any], shared: tuple[Any, ...],
                      remaining: dict[int, tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
            """One list-returning call per chunk: Ray's joblib backend cannot stream."""
            items = list(remaining.items())
            for start in range(0, len(items), n_jobs):
                chunk[:] = [index for index, _ in items[start:start + n_jobs]]
                with joblib.parallel_config(backend="ray"):
                    parallel = joblib.Parallel(n_jobs=n_jobs, batch_size=1)
                    yield from parallel(
                        _delayed(_NoMarker(), function, shared, items[start:start + n_jobs]))

        lost_errors = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                       ray.exceptions.OutOfMemoryError, ray.exceptions.NodeDiedError)
        yield _Engine(run_round, lambda: set(chunk), lost_errors)


def _closing_quietly(outputs: Generator[Any, None, None]) -> Iterator[Any]:
    """Yield from a joblib generator; when the caller stops early, drop the rest silently.

    joblib warns that finished tasks went unused when its generator is closed early; here that
    is the point (Ctrl-C, fail_fast), and a cluster already shut down is no error either.
    """
    try:
        for output in outputs:  # noqa: UP028 (`yield from` would close outputs before finally)
            yield output
    finally:
        with warnings.catch_warnings(), contextlib.suppress(Exception):
            warnings.filterwarnings("ignore", message=r".*adjusting the input task iterator",
                                    category=UserWarning)
            outputs.close()


def _closing(close: Callable[[], Any]) -> Callable[[], None]:
    """Register a closer with stop_workers, and return one that runs it at most once."""

    def once() -> None:
        if once in _OPEN:
            _OPEN.remove(once)
            close()

    _OPEN.append(once)
    return once
