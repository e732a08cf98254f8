"""Execute a plan: fan its batches out with joblib, journal what returns, publish the tables.

The runner knows nothing of backprop (that is the engines' job) and the engines know nothing of
processes or files; what to train was decided by the planner. Workers get whole batches of
same-shaped networks and plain module-level functions with explicit data, so results never
depend on the number of workers or the backend.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nnsweep import backends, engines, planner, store
from nnsweep.datasets import Dataset
from nnsweep.edge import EdgeSearch
from nnsweep.edge import probes as edge_probes
from nnsweep.errors import CannotWrite, Interrupted
from nnsweep.grid import Trial
from nnsweep.journal import Record
from nnsweep.manifest import finish_manifest, new_manifest, search_record
from nnsweep.params import TrialParams
from nnsweep.planner import Plan
from nnsweep.progress import ProgressReporter, counts_text
from nnsweep.spec import Spec
from nnsweep.store import Results
from nnsweep.text import terminal_safe

# The final line's first words, by how training ended; a caller may word them its own way.
ENDINGS: dict[str, str] = {
    "done": "done",
    "interrupted": "interrupted",
    "fail_fast": "stopped at the first failed trial",
    "cannot_write": "stopped: cannot write results",
}


class FailFast(Exception):
    """fail_fast is set and a batch returned a failed trial."""


# --- work done in the workers -------------------------------------------------------------

def train_task(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
    batch: Sequence[tuple[str, TrialParams]], engine: str
) -> list[Record]:
    """Train one batch in a worker; a batch that raises is retried trial by trial.

    A trial that raises on its own becomes a failed record carrying the exception's type and
    message, so one bad trial never takes its batch or the sweep down with it. Held-out rows
    (x_val, y_val) are validated on; none are zero rows.
    """
    validation = (x_val, y_val) if len(x_val) else None
    _settle_in_worker()
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        try:
            results = engines.train(engine, x, y, [params for _, params in batch], validation)
        except Exception as exc:
            if len(batch) > 1:
                return [record for item in batch
                        for record in train_task(x, y, x_val, y_val, [item], engine)]
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
    command: str | None = None,
    endings: Mapping[str, str] | None = None,
    then: Callable[[Results], None] | None = None,
) -> Results:
    """Train every trial of the spec not already in the results folder; return all tables.

    Finished trials are journaled as their batch returns. On Ctrl-C the tables are written for
    what is done and `Interrupted` is raised; a rerun resumes where this one stopped. The
    report is not built here (nnsweep.report.build_report builds it from the tables).
    `command` is recorded in the manifest (default: this process's command line); `endings`
    words the final progress line's head, over ENDINGS. `then` runs on the results of a run
    that was not stopped, while the folder is still this run's (the command line builds the
    report there, so no other run can start writing in between).
    """
    setup = planner.preflight(spec, out=out, jobs=jobs, engine=engine, backend=backend,
                              max_trials=max_trials, fresh=fresh)
    directory = setup.directory
    command = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with store.locked(directory):
            store.prepare(directory, fresh=fresh)
            store.write_atomic(directory / store.SPEC, spec.text.encode("utf-8"))
            edge = spec.search.edge
            known = _journaled(spec, setup, fresh=fresh, retry_failed=retry_failed)
            manifest: dict[str, Any] = {}
            earlier = 0  # trained by this invocation's earlier rounds
            probes = _edge_probes(spec, known)[0] if edge is not None else setup.trials
            for number in itertools.count(1):  # one round; an edge search's, until none is wanted
                setup = replace(setup, trials=probes)
                plan = planner.make_plan(spec, setup, retry_failed=retry_failed,
                                         fresh=fresh and number == 1)
                manifest = _round_manifest(spec, plan, manifest, command, number)
                store.write_manifest(directory, manifest)
                records, stop = _train(spec, plan, fail_fast=fail_fast, quiet=quiet,
                                       endings={**ENDINGS, **(endings or {})},
                                       label="training" if edge is None else
                                       f"edge round {number}")
                known.update(records)
                if stop is not None or edge is None:
                    break
                probes, wanted = _edge_probes(spec, known)
                if not wanted:
                    break
                earlier += len(records) - len(plan.reused)
            # the tables once, at the end: the journal holds every round's probes till then
            interrupted = isinstance(stop, KeyboardInterrupt)
            results = _publish(spec, plan, records, manifest, interrupted=interrupted,
                               earlier=earlier)
            if edge is not None and stop is None and not quiet:
                print(terminal_safe(_edges_line(results, edge)), file=sys.stderr, flush=True)
            if isinstance(stop, OSError):
                raise stop
            if then is not None and stop is None:
                then(results)
    except OSError as exc:
        raise CannotWrite(directory, exc.strerror or str(exc), store.JOURNAL) from exc
    if isinstance(stop, KeyboardInterrupt):
        done = sum(t.id in records for t in plan.trials)
        raise Interrupted(done, len(plan.trials), str(directory), command)
    return results


def _train(
    spec: Spec, plan: Plan, *, fail_fast: bool, quiet: bool, endings: Mapping[str, str],
    label: str = "training",
) -> tuple[dict[str, Record], BaseException | None]:
    """Journal each batch as it returns; say why training stopped early, if it did. `label`
    heads the bar, and the final line unless it is plain training."""
    directory = plan.directory
    records: dict[str, Record] = dict(plan.reused)
    progress = ProgressReporter(len(plan.trials), reused=len(plan.reused), quiet=quiet,
                                estimate=_eta_start(spec, plan, quiet), label=label)
    progress.add_reused([r.status for r in plan.reused.values()])
    stop: BaseException | None = None
    try:
        with warnings.catch_warnings():
            # joblib says so when a stop cancels the tasks in flight; the final line says more
            warnings.filterwarnings("ignore", message=".*still being processed by the workers")
            for batch_records in _fan_out(spec, plan):
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
    done = sum(t.id in records for t in plan.trials)
    ending = ("interrupted" if isinstance(stop, KeyboardInterrupt) else
              "fail_fast" if isinstance(stop, FailFast) else
              "cannot_write" if isinstance(stop, OSError) else "done")
    head = endings[ending] if label == "training" else f"{label} {endings[ending]}"
    progress.close(f"{head}: {done}/{len(plan.trials)} trials in {directory} "
                   f"({counts_text(Counter(r.status for r in records.values()))})")
    return records, stop


def _eta_start(spec: Spec, plan: Plan, quiet: bool) -> float | None:
    """The plan's seconds until trained, which the bar's eta starts from; probed only for a
    bar that shows (the probe costs a fraction of a second), so a pipe or quiet pays nothing."""
    if quiet or not sys.stderr.isatty() or not plan.pending:
        return None
    calibration = planner.calibrate(plan.engine, [t.params for t in plan.pending],
                                    validating=spec.dataset.validation is not None)
    return plan.estimate(spec.dataset.rows, calibration).until_trained


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


def _fan_out(spec: Spec, plan: Plan) -> Iterator[list[Record]]:
    """Batches' records as each batch finishes, in whatever order they finish."""
    tasks = [([(t.id, t.params) for t in batch], plan.engine) for batch in plan.batches]
    return backends.fan_out(
        train_task, tasks, backend=plan.backend, workers=plan.workers,
        shared=_shared_data(spec.dataset),
        scheduler=spec.run.scheduler, address=spec.run.address, on_lost=crashed_records)


def _shared_data(dataset: Dataset) -> tuple[np.ndarray, ...]:
    """What every task takes first: x and y, and the held-out x and y (zero rows if none)."""
    held = dataset.validation
    if held is None:
        held = (np.empty((0, dataset.x.shape[1])), np.empty((0, dataset.y.shape[1])))
    return (dataset.x, dataset.y, *held)


# --- the edge search's rounds ---------------------------------------------------------------

def _journaled(spec: Spec, setup: planner.Setup, *, fresh: bool, retry_failed: bool
               ) -> dict[str, Record]:
    """An edge search's known outcomes: the folder's usable records (none for a grid, which
    its plan alone reads), less the failed ones a retry trains again."""
    if spec.search.edge is None or fresh:
        return {}
    records = planner.usable_records(spec, setup, store.read_manifest(setup.directory))
    return {t: r for t, r in records.items() if r.finished or not retry_failed}


def _edge_probes(spec: Spec, known: Mapping[str, Record]) -> tuple[list[Trial], int]:
    """The edge search's probes so far and how many of them are wanted (edge.probes), the
    journal's records answering what they can."""
    assert spec.search.edge is not None
    return edge_probes(spec.search.edge, (t.params for t in spec.trials()), spec.dataset.hash,
                       {trial: record.status for trial, record in known.items()})


def _round_manifest(spec: Spec, plan: Plan, manifest: dict[str, Any], command: str,
                    number: int) -> dict[str, Any]:
    """The first round's manifest starts this invocation; a later round's names its trials
    and adds to what the invocation trains."""
    if number == 1:
        return new_manifest(spec, plan.manifest, [t.id for t in plan.trials], command=command,
                            workers=plan.workers, engine=plan.engine, backend=plan.backend,
                            to_train=len(plan.pending))
    manifest["trials"] = [t.id for t in plan.trials]
    invocation = manifest["invocations"][-1]
    invocation.update(to_train=invocation["to_train"] + len(plan.pending), rounds=number)
    return manifest


def _edges_line(results: Results, edge: EdgeSearch) -> str:
    """The search's outcome in one line."""
    edges = results.edges
    found, total = (0, 0) if edges is None else (int(edges["found"].sum()), len(edges))
    return (f"edges: {found} of {total} combinations have an edge of {edge.axis} between "
            f"{edge.low:g} and {edge.high:g} ({edge.outcome.replace('_', ' ')} on one side, "
            "not on the other); "
            f"{len(results.trials)} trials in all; the edges table: "
            f"{results.directory / 'edges.csv'}")


def crashed_records(task: tuple[Any, ...], reason: str) -> list[Record]:
    """A batch whose worker process was lost: crashed, so retry_failed trains it again."""
    batch, engine = task
    return [Record(trial, params, "crashed", 0.0, None, reason, engine)
            for trial, params in batch]


def _unchanged_generation(spec: Spec, plan: Plan, ordered: list[Record]) -> str | None:
    """The folder's table generation, when this run changed nothing it holds (an edge
    search's table also depends on the search: its outcome, its precision)."""
    if len(ordered) != len(plan.reused) or plan.manifest.get("trials") != [
            t.id for t in plan.trials] or plan.manifest.get("search") != search_record(spec):
        return None
    return store.intact_generation(plan.directory, plan.manifest,
                                   edges=spec.search.edge is not None)


def _publish(
    spec: Spec,
    plan: Plan,
    records: dict[str, Record],
    manifest: dict[str, Any],
    *,
    interrupted: bool,
    earlier: int = 0,
) -> Results:
    """Write the tables of everything finished so far, then the manifest that names them.

    A run that trained nothing, over a folder whose tables already hold exactly these trials
    in one whole generation, keeps them: a rerun of a finished sweep costs next to nothing.
    `earlier`: trials this invocation trained in an edge search's earlier rounds, which this
    round's plan counts as reused.
    """
    directory = plan.directory
    ordered = [records[t.id] for t in plan.trials if t.id in records]
    generation = _unchanged_generation(spec, plan, ordered)
    edge = spec.search.edge
    if generation is not None:
        frames = store.read_tables(directory, generation, edges=edge is not None)
    else:
        frames = store.build_tables(ordered, edge)
        generation = store.new_generation()
        store.write_tables(directory, frames, generation)
    if spec.run.save_weights:  # always anew: a damaged archive is mended by any rerun
        store.write_weights(directory, ordered)
    reused = len(plan.reused) - earlier
    finish_manifest(manifest, generation=generation, statuses=[r.status for r in ordered],
                    trained=len(ordered) - reused, reused=reused, interrupted=interrupted)
    store.write_manifest(directory, manifest)
    return Results(directory=directory, manifest=manifest, expected=len(plan.trials),
                   **frames)
