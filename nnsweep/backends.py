"""Where batches run: joblib over this machine's cores (loky), or a Dask or Ray cluster.

The runner hands over plain tasks and gets each task's return value back as soon as it
finishes; which engine executes them is decided here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import joblib

from nnsweep.errors import NnsweepError

BACKENDS: tuple[str, ...] = ("loky", "dask", "ray")


def fan_out(
    function: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    backend: str,
    workers: int,
    shared: tuple[Any, ...] = (),
    scheduler: str | None = None,
    address: str | None = None,
) -> Iterator[Any]:
    """Yield function(*shared, *task) for every task, in the order they finish.

    `shared` holds the arguments every task needs (the dataset); a cluster backend ships
    them to the workers once, not once per task.
    """
    if not tasks:
        return
    if backend != "loky":
        raise NnsweepError(f"--backend {backend}: not available in this version of nnsweep")
    n_jobs = min(workers, len(tasks))
    parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from parallel(joblib.delayed(function)(*shared, *task) for task in tasks)


def stop_workers() -> None:
    """Leave no worker process behind after an interrupt or a fail-fast stop."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True, kill_workers=True)
