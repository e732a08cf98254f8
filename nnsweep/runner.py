"""Schedule a spec's trials: plan batches, fan them out with joblib, journal what returns.

The runner knows nothing of backprop (that is the engines' job) and the engines know nothing of
processes or files. Workers get whole batches of same-shaped networks and plain module-level
functions with explicit data, so results never depend on --jobs or the backend.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import multiprocessing
import os
import platform
import shlex
import shutil
import signal
import socket
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from nnsweep import __version__, backends, engines, store
from nnsweep.errors import Interrupted, NnsweepError, NnsweepWarning, ResultsError
from nnsweep.grid import Trial, batches, check_size
from nnsweep.journal import Record
from nnsweep.params import TrialParams
from nnsweep.progress import ProgressReporter, counts_text
from nnsweep.spec import MAX_WORKERS, Spec
from nnsweep.store import Results
from nnsweep.trainer import epoch_seconds

DEFAULT_MAX_TRIALS = 100_000

# Bytes per history row and per weight, measured on saved sweeps: disk counts the journal,
# parquet and CSV together; memory counts the frames built at the end of a run.
HISTORY_ROW_DISK = 160
HISTORY_ROW_MEMORY = 120
WEIGHT_DISK = 45
WEIGHT_MEMORY = 80


class FailFast(Exception):
    """--fail-fast saw a failed trial."""


# --- work done in the workers -------------------------------------------------------------

def train_task(
    x: np.ndarray, y: np.ndarray, batch: Sequence[tuple[str, TrialParams]], engine: str
) -> list[Record]:
    """Train one batch in a worker; a batch that raises is retried trial by trial.

    A trial that raises on its own becomes a failed record carrying the exception's type and
    message, so one bad trial never takes its batch or the sweep down with it.
    """
    _settle_in_worker()
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        try:
            results = engines.train(engine, x, y, [params for _, params in batch])
        except Exception as exc:
            if len(batch) > 1:
                return [record for item in batch for record in train_task(x, y, [item], engine)]
            trial, params = batch[0]
            return [Record(trial, params, "failed", time.perf_counter() - started, None,
                           f"{type(exc).__name__}: {exc}", engine)]
        seconds = (time.perf_counter() - started) / len(batch)
    return [Record(trial, params, result.status(params.tolerance), seconds, result, "", engine)
            for (trial, params), result in zip(batch, results, strict=True)]


def _settle_in_worker() -> None:
    """In a worker process: leave Ctrl-C to the main process, and die with it.

    Ctrl-C reaches every process of the terminal's group; a worker that raised on it would
    print a traceback beside nnsweep's own one-line message. A main process killed outright
    (SIGKILL) cannot stop its workers, so each worker watches its parent and exits when it is
    gone, instead of idling on as an orphan.
    """
    global _WATCHING
    if multiprocessing.parent_process() is None or _WATCHING:
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="nnsweep-parent-watch", daemon=True).start()
    _WATCHING = True


_WATCHING = False


# --- planning -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    """What a run is checked against before the results folder is touched."""

    directory: Path
    trials: list[Trial]
    workers: int
    engine: str
    backend: str


@dataclass(frozen=True)
class Plan:
    """What a run would do: which trials are new, how they are batched, roughly how long."""

    directory: Path
    trials: list[Trial]
    reused: dict[str, Record]
    pending: list[Trial]
    batches: list[list[Trial]]
    workers: int
    engine: str
    backend: str
    manifest: dict[str, Any]  # the folder's manifest so far ({} for a new folder)

    def estimate_seconds(self, rows: int) -> float:
        return estimate_seconds(self.batches, self.workers, rows)


def estimate_seconds(planned: Sequence[Sequence[Trial]], workers: int, rows: int) -> float:
    """About how long the batches take on `workers` processes (the trainer's cost model)."""
    loads = [0.0] * max(1, min(workers, len(planned)))
    costs = [batch[0].params.epochs * epoch_seconds([t.params for t in batch], rows)
             for batch in planned]
    for cost in sorted(costs, reverse=True):  # as the workers take them: the freest next
        loads[loads.index(min(loads))] += cost
    return max(loads)


def result_size(
    trials: Sequence[Trial], n_inputs: int, n_outputs: int, *, keep_weights: bool
) -> tuple[int, int]:
    """About how many bytes the results take on disk and in memory while the tables are built.

    Per history row: the journal's JSON, parquet and CSV on disk, one pandas row in memory;
    likewise per weight for the direction counts (and the weights, when kept).
    """
    history_rows = weights = 0
    for trial in trials:
        params = trial.params
        history_rows += len(range(0, params.epochs, params.record_step)) + 1
        sizes = [n_inputs + params.bias, *params.hidden, n_outputs]
        weights += sum(a * b for a, b in itertools.pairwise(sizes))
    disk = history_rows * HISTORY_ROW_DISK + weights * (WEIGHT_DISK + keep_weights * 40)
    memory = history_rows * HISTORY_ROW_MEMORY + weights * WEIGHT_MEMORY
    return disk, memory


def check_room(
    directory: Path, trials: Sequence[Trial], n_inputs: int, n_outputs: int, *,
    keep_weights: bool
) -> None:
    """Refuse, before any training, results that cannot fit on the disk or in memory."""
    disk, memory = result_size(trials, n_inputs, n_outputs, keep_weights=keep_weights)
    existing = directory
    while not existing.exists():
        existing = existing.parent
    free_disk = shutil.disk_usage(existing).free
    way_out = ("record fewer epochs (raise record_every in [params], or --record-every N) "
               "or narrow the grid (--max-trials limits its size)")
    if disk > free_disk:
        raise NnsweepError(f"{directory}: the results would take about {_bytes(disk)} on disk, "
                           f"more than the {_bytes(free_disk)} free there; {way_out}, or "
                           "choose another --out")
    free_memory = available_memory()
    if memory > free_memory:
        raise NnsweepError(f"{directory}: building the tables would need about "
                           f"{_bytes(memory)} of memory, more than the {_bytes(free_memory)} "
                           f"available; {way_out}")


def available_memory() -> int:
    """Memory the system can give without swapping (MemAvailable), in bytes."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}"
        count /= 1000
    return f"{count:.0f} TB"


def default_directory(spec: Spec) -> Path:
    return Path("results") / spec.name


# Resident memory of one loky worker (VmRSS read inside it): 121 MiB once it has imported the
# trainer and trained a first batch, 137 MiB after batches of engines.MAX_BATCH XOR trials,
# measured with joblib.Parallel(n_jobs=2) on this project's machine (Python 3.11). Bigger data
# and networks take more; this floor keeps --jobs from starting more workers than memory holds.
WORKER_MEMORY = 140 * 2**20


def workers_for(jobs: int | None, backend: str = "loky") -> int:
    """The workers to start for `jobs`: None means every core; -1 every core, -2 all but one
    (as in joblib); 0 is refused.

    Loky starts one process per worker on this machine, so never more than its cores, nor
    more than its available memory holds at WORKER_MEMORY each: a larger request is capped,
    with a warning. Dask and Ray workers may be other machines': only MAX_WORKERS bounds them.
    """
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0):
        raise NnsweepError(f"jobs = {jobs!r}: expected a number of workers >= 1, or -1 for all "
                           "cores (-2 all but one)")
    cores = max(1, int(joblib.cpu_count()))
    wanted = cores if jobs is None else jobs if jobs > 0 else max(1, cores + 1 + jobs)
    if backend == "loky":
        room = max(1, available_memory() // WORKER_MEMORY)
        workers = min(wanted, cores, room)
        reason = (f"one per core of this machine ({cores})" if workers == cores else
                  f"as many as its available memory holds, at {WORKER_MEMORY // 2**20} MiB each")
    else:
        workers = min(wanted, MAX_WORKERS)
        reason = f"the most nnsweep starts on a {backend} cluster"
    if jobs is not None and workers < wanted:
        warnings.warn(f"jobs = {jobs}: using {workers} worker{'s' if workers > 1 else ''}, "
                      f"{reason}", NnsweepWarning, stacklevel=2)
    return workers


def preflight(
    spec: Spec,
    *,
    out: str | Path | None = None,
    jobs: int | None = None,
    engine: str | None = None,
    backend: str | None = None,
    max_trials: int | None = None,
    fresh: bool = False,
) -> Setup:
    """Every check that needs no journal: limits, engine, backend, the folder, the room."""
    limit = DEFAULT_MAX_TRIALS if max_trials is None else max_trials
    check_size(spec.size(), limit, str(spec.source or spec.name), available_memory())
    directory = Path(out) if out is not None else default_directory(spec)
    chosen_engine = engines.resolve(engine or spec.run.engine)
    chosen_backend = backend or spec.run.backend
    backends.check(chosen_backend, scheduler=spec.run.scheduler)
    store.check_name(directory)
    store.check_folder(directory, fresh=fresh)
    trials = list(spec.trials())
    check_room(directory, trials, spec.dataset.x.shape[1], spec.dataset.y.shape[1],
               keep_weights=spec.run.save_weights)
    workers = workers_for(jobs if jobs is not None else spec.run.jobs, chosen_backend)
    return Setup(directory, trials, workers, chosen_engine, chosen_backend)


def plan(
    spec: Spec,
    *,
    out: str | Path | None = None,
    jobs: int | None = None,
    engine: str | None = None,
    backend: str | None = None,
    retry_failed: bool = False,
    max_trials: int | None = None,
    fresh: bool = False,
) -> Plan:
    """Decide what a run would train, reading (never writing) the results folder."""
    setup = preflight(spec, out=out, jobs=jobs, engine=engine, backend=backend,
                      max_trials=max_trials, fresh=fresh)
    return plan_in(spec, setup, retry_failed=retry_failed, fresh=fresh)


def plan_in(spec: Spec, setup: Setup, *, retry_failed: bool, fresh: bool) -> Plan:
    """The plan for a checked setup, from what its folder's journal already holds."""
    manifest = {} if fresh else store.read_manifest(setup.directory)
    records = {} if fresh else usable_records(spec, setup, manifest)
    trials = setup.trials
    reused = {t.id: records[t.id] for t in trials
              if t.id in records and (records[t.id].finished or not retry_failed)}
    pending = [t for t in trials if t.id not in reused]
    planned = batches(pending, setup.workers, rows=spec.dataset.x.shape[0])
    return Plan(setup.directory, trials, reused, pending, planned, setup.workers, setup.engine,
                setup.backend, manifest)


def usable_records(spec: Spec, setup: Setup, manifest: dict[str, Any]) -> dict[str, Record]:
    """The folder's journal records, once the folder is known to hold this sweep's trials.

    A folder belongs to this sweep when its manifest names this spec, or when every trial it
    holds is one of this spec's (the spec extends the sweep: a new axis through the old fixed
    value, more values on an axis). Its finished trials must come from the engine this run
    uses: an engine is part of what a number means, so one folder never mixes two.
    """
    directory = setup.directory
    if not store.is_results_folder(directory):
        return {}
    records = store.finished_records(directory)
    ids = {t.id for t in setup.trials}
    old = manifest.get("trials")
    held = set(old) if isinstance(old, list) else set(records)
    made_by = manifest.get("spec_hash")
    same = made_by == spec.hash if made_by else _saved_spec_text(directory) == spec.text
    if not same and not held <= ids:
        which = f"hash {made_by}" if made_by else "a spec.toml that differs"
        raise ResultsError(
            f"{directory}: made by another spec ({which}, this one is {spec.hash}); "
            "rerun with --fresh to start over there, or choose another folder with --out")
    others = Counter(r.engine for t, r in records.items()
                     if t in ids and r.finished and r.engine != setup.engine)
    if others:
        engine, count = others.most_common(1)[0]
        raise ResultsError(
            f"{directory}: {count} trials here were trained by the {engine} engine and this "
            f"run uses {setup.engine}; one folder never mixes engines: resume with --engine "
            f"{engine}, start over with --fresh, or choose another folder with --out")
    return records


def _saved_spec_text(directory: Path) -> str | None:
    path = directory / store.SPEC
    if path.is_symlink() or not path.is_file():
        return None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text(encoding="utf-8")
    return None


# --- running ------------------------------------------------------------------------------

def run(
    spec: Spec,
    *,
    out: str | Path | None = None,
    jobs: int | None = None,
    engine: str | None = None,
    backend: str | None = None,
    fresh: bool = False,
    quiet: bool = True,
    retry_failed: bool = False,
    fail_fast: bool = False,
    max_trials: int | None = None,
    report: bool = True,
    command: str | None = None,
) -> Results:
    """Train every trial of the spec not already in the results folder; return all tables.

    Finished trials are journaled as their batch returns. On Ctrl-C the tables are written for
    what is done and `Interrupted` is raised; a rerun resumes where this one stopped.
    """
    setup = preflight(spec, out=out, jobs=jobs, engine=engine, backend=backend,
                      max_trials=max_trials, fresh=fresh)
    directory = setup.directory
    command = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with store.locked(directory):
            store.prepare(directory, fresh=fresh)
            the_plan = plan_in(spec, setup, retry_failed=retry_failed, fresh=fresh)
            started = _now()
            store.write_atomic(directory / store.SPEC, spec.text.encode("utf-8"))
            manifest = _manifest(spec, the_plan, the_plan.manifest, started, command)
            store.write_manifest(directory, manifest)
            records, stop = _train(spec, the_plan, fail_fast=fail_fast, quiet=quiet)
            interrupted = isinstance(stop, KeyboardInterrupt)
            results = _finish(spec, the_plan, records, manifest, interrupted=interrupted)
            if isinstance(stop, OSError):
                raise stop
            if report and len(results.trials) and not interrupted:
                from nnsweep.report import build_report

                build_report(directory)
    except OSError as exc:
        raise ResultsError(
            f"{directory}: cannot write results ({exc.strerror or exc}); every trial finished "
            f"so far is kept in {store.JOURNAL}: free some space or choose another --out, "
            "then run again to resume") from exc
    if isinstance(stop, KeyboardInterrupt):
        done = sum(t.id in records for t in the_plan.trials)
        raise Interrupted(done, len(the_plan.trials), str(directory), command)
    return results


def _train(
    spec: Spec, the_plan: Plan, *, fail_fast: bool, quiet: bool
) -> tuple[dict[str, Record], BaseException | None]:
    """Journal each batch as it returns; say why training stopped early, if it did."""
    directory = the_plan.directory
    records: dict[str, Record] = dict(the_plan.reused)
    progress = ProgressReporter(len(the_plan.trials), reused=len(the_plan.reused), quiet=quiet)
    progress.add_reused([r.status for r in the_plan.reused.values()])
    stop: BaseException | None = None
    try:
        with warnings.catch_warnings():
            # joblib says so when a stop cancels the tasks in flight; the final line says more
            warnings.filterwarnings("ignore", message=".*still being processed by the workers")
            for batch_records in _fan_out(spec, the_plan):
                returned = [replace(r, dataset=spec.dataset.hash) for r in batch_records]
                with _interrupts_deferred():  # journal and memory agree, whenever Ctrl-C comes
                    store.append(directory, returned, keep_weights=spec.run.save_weights)
                    records.update((r.trial, r) for r in returned)
                progress.advance([r.status for r in returned])
                if fail_fast and any(r.result is None for r in returned):
                    raise FailFast
    except (KeyboardInterrupt, FailFast, OSError) as exc:
        backends.stop_workers()
        stop = exc
    done = sum(t.id in records for t in the_plan.trials)
    if isinstance(stop, KeyboardInterrupt):
        head = "interrupted"
    elif isinstance(stop, FailFast):
        head = "stopped at the first failed trial (--fail-fast)"
    elif isinstance(stop, OSError):
        head = "stopped: cannot write results"
    else:
        head = "done"
    progress.close(f"{head}: {done}/{len(the_plan.trials)} trials in {directory} "
                   f"({counts_text(Counter(r.status for r in records.values()))})")
    return records, stop


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block is done, then stop as they asked."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: held.append(signum))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if held:
        raise KeyboardInterrupt


def _fan_out(spec: Spec, the_plan: Plan) -> Iterator[list[Record]]:
    """Batches' records as each batch finishes, in whatever order they finish."""
    tasks = [([(t.id, t.params) for t in batch], the_plan.engine) for batch in the_plan.batches]
    return backends.fan_out(
        train_task, tasks, backend=the_plan.backend, workers=the_plan.workers,
        shared=(spec.dataset.x, spec.dataset.y),
        scheduler=spec.run.scheduler, address=spec.run.address, on_lost=crashed_records)


def crashed_records(task: tuple[Any, ...], reason: str) -> list[Record]:
    """A batch whose worker process was lost: crashed, so --retry-failed trains it again."""
    batch, engine = task
    return [Record(trial, params, "crashed", 0.0, None, reason, engine)
            for trial, params in batch]


def _finish(
    spec: Spec,
    the_plan: Plan,
    records: dict[str, Record],
    manifest: dict[str, Any],
    *,
    interrupted: bool,
) -> Results:
    """Write the tables and the manifest for everything finished so far."""
    directory = the_plan.directory
    ordered = [records[t.id] for t in the_plan.trials if t.id in records]
    frames = store.build_tables(ordered)
    generation = store.new_generation()
    store.write_tables(directory, frames, generation)
    if spec.run.save_weights:
        store.write_weights(directory, ordered)
    manifest["generation"] = generation
    counts = Counter(r.status for r in ordered)
    manifest["finished"] = _now()
    manifest["status_counts"] = dict(sorted(counts.items()))
    manifest["trials"] = [t.id for t in the_plan.trials]
    manifest["invocations"][-1].update(
        finished=manifest["finished"],
        trained=len(ordered) - len(the_plan.reused),
        reused=len(the_plan.reused),
        interrupted=interrupted,
    )
    store.write_manifest(directory, manifest)
    return Results(directory=directory, manifest=manifest, expected=len(the_plan.trials),
                   **frames)


def _manifest(
    spec: Spec, the_plan: Plan, old: dict[str, Any], started: str, command: str
) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "spec_hash": spec.hash,
        "spec_file": str(spec.source) if spec.source else None,
        "dataset": {"name": spec.dataset.name, "hash": spec.dataset.hash,
                    "rows": int(spec.dataset.x.shape[0])},
        "axes": list(spec.axes),
        "report": {"x": spec.report.x, "y": spec.report.y, "facet": spec.report.facet},
        "versions": {
            "nnsweep": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__, "joblib": joblib.__version__,
        },
        "host": socket.gethostname(),
        "created": old.get("created", started),
        "started": started,
        "finished": None,
        "status_counts": old.get("status_counts", {}),
        "generation": old.get("generation"),  # the tables now on disk, until new ones are
        "trials": [t.id for t in the_plan.trials],
        "invocations": [*old.get("invocations", []), {
            "started": started, "command": command, "pid": os.getpid(),
            "jobs": the_plan.workers, "engine": the_plan.engine, "backend": the_plan.backend,
            "to_train": len(the_plan.pending),
        }],
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
