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

from nnsweep import backends, engines, planner, store, tables, warmup
from nnsweep.batching import batches as batches_of
from nnsweep.datasets import Dataset
from nnsweep.edge import EdgeSearch
from nnsweep.edge import probes as edge_probes
from nnsweep.errors import CannotWrite, Interrupted
from nnsweep.grid import Trial
from nnsweep.halving import Halving, Reached, next_round
from nnsweep.journal import Record
from nnsweep.manifest import finish_manifest, new_manifest, search_record
from nnsweep.params import TrialParams
from nnsweep.planner import Plan
from nnsweep.progress import ProgressReporter, counts_text
from nnsweep.result import TrainState
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

Task = tuple[str, TrialParams, TrainState | None]  # a trial, and where it starts (None: anew)


def train_task(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
    batch: Sequence[Task], engine: str, until: int | None = None,
) -> list[Record]:
    """Train one batch in a worker (up to `until` epochs, when a search stops it there); a
    batch that raises is retried trial by trial.

    A trial that raises on its own becomes a failed record carrying the exception's type and
    message, so one bad trial never takes its batch or the sweep down with it. Held-out rows
    (x_val, y_val) are validated on; none are zero rows.
    """
    validation = (x_val, y_val) if len(x_val) else None
    _settle_in_worker()
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        try:
            starts = [start for _, _, start in batch]
            results = engines.train(engine, x, y, [params for _, params, _ in batch], validation,
                                    starts=starts if any(starts) else None, until=until)
        except Exception as exc:
            if len(batch) > 1:
                return [record for item in batch
                        for record in train_task(x, y, x_val, y_val, [item], engine, until)]
            trial, params, _ = batch[0]
            return [Record(trial, params, "failed", time.perf_counter() - started, None,
                           f"{type(exc).__name__}: {exc}", engine)]
        seconds = (time.perf_counter() - started) / len(batch)
    return [Record(trial, params, result.status(params.tolerance), seconds, result, "", engine,
                   stopped=None if result.state is None else result.state.epoch)
            for (trial, params, _), result in zip(batch, results, strict=True)]


def _settle_in_worker() -> None:
    """In a worker process: leave Ctrl-C to the main process, and die with it.

    Ctrl-C reaches every process of the terminal's group; a worker that raised on it would
    print a traceback beside nnsweep's own one-line message. A main process killed outright
    (SIGKILL) cannot stop its workers, so each worker watches its parent and exits when it is
    gone, instead of idling on as an orphan.
    """
    global _WATCHING
    spawner = multiprocessing.parent_process()
    if spawner is None or _WATCHING:
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent the worker was started by, not the one it has now: a worker may take its
    # first task from the pipe after the main process was killed, already an orphan.
    parent = spawner.pid if spawner.pid is not None else os.getppid()

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
    warm: bool = False,
) -> Results:
    """Train every trial of the spec not already in the results folder; return all tables.

    Finished trials are journaled as their batch returns. On Ctrl-C the tables are written for
    what is done and `Interrupted` is raised; a rerun resumes where this one stopped. The
    report is not built here (nnsweep.report.build_report builds it from the tables).
    `command` is recorded in the manifest (default: this process's command line); `endings`
    words the final progress line's head, over ENDINGS. `then` runs on the results of a run
    that was not stopped, while the folder is still this run's (the command line builds the
    report there, so no other run can start writing in between). `warm`: with the NumPy
    engine, compile the compiled engine's kernels for these trials in the background
    (nnsweep.warmup), as the command line asks.
    """
    setup = planner.preflight(spec, out=out, jobs=jobs, engine=engine, backend=backend,
                              max_trials=max_trials, fresh=fresh)
    if warm and setup.engine == "numpy":
        warmup.start([t.params for t in setup.trials],
                     validating=spec.dataset.validation is not None,
                     stopping=spec.search.halving is not None)
    directory = setup.directory
    command = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with store.locked(directory):
            store.prepare(directory, fresh=fresh)
            store.write_atomic(directory / store.SPEC, spec.text.encode("utf-8"))
            edge, halving = spec.search.edge, spec.search.halving
            known = _journaled(spec, setup, fresh=fresh, retry_failed=retry_failed)
            worded = {**ENDINGS, **(endings or {})}
            if halving is not None:
                plan, records, manifest, stop = _halving_rounds(
                    spec, setup, halving, known, fresh=fresh, fail_fast=fail_fast, quiet=quiet,
                    command=command, endings=worded)
                earlier = 0
            else:
                plan, records, manifest, stop, earlier = _rounds(
                    spec, setup, known, retry_failed=retry_failed, fresh=fresh,
                    fail_fast=fail_fast, quiet=quiet, command=command, endings=worded)
            # the tables once, at the end: the journal holds every round's probes till then
            interrupted = isinstance(stop, KeyboardInterrupt)
            results = _publish(spec, plan, records, manifest, interrupted=interrupted,
                               earlier=earlier)
            if halving is not None and stop is None and not quiet:
                print(terminal_safe(_budget_line(results, halving)), file=sys.stderr, flush=True)
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


def _rounds(
    spec: Spec, setup: planner.Setup, known: dict[str, Record], *, retry_failed: bool,
    fresh: bool, fail_fast: bool, quiet: bool, command: str, endings: Mapping[str, str],
) -> tuple[Plan, dict[str, Record], dict[str, Any], BaseException | None, int]:
    """Train a grid or a sampled search in one round, an edge search round by round until no
    probe is wanted; returns the last round's plan and records, the manifest, why training
    stopped early (if it did) and how many trials the earlier rounds trained."""
    edge = spec.search.edge
    manifest: dict[str, Any] = {}
    earlier = 0  # trained by this invocation's earlier rounds
    probes = _edge_probes(spec, known)[0] if edge is not None else setup.trials
    for number in itertools.count(1):  # one round; an edge search's, until none is wanted
        setup = replace(setup, trials=probes)
        plan = planner.make_plan(spec, setup, retry_failed=retry_failed,
                                 fresh=fresh and number == 1)
        manifest = _round_manifest(spec, plan, manifest, command, number)
        store.write_manifest(setup.directory, manifest)
        records, stop = _train(spec, plan, fail_fast=fail_fast, quiet=quiet, endings=endings,
                               label="training" if edge is None else f"edge round {number}")
        known.update(records)
        if stop is not None or edge is None:
            break
        probes, wanted = _edge_probes(spec, known)
        if not wanted:
            break
        earlier += len(records) - len(plan.reused)
    return plan, records, manifest, stop, earlier


def _train(
    spec: Spec, plan: Plan, *, fail_fast: bool, quiet: bool, endings: Mapping[str, str],
    label: str = "training", steps: Mapping[str, tuple[TrainState | None, int]] | None = None,
    keep: Callable[[list[Record]], list[Record]] | None = None,
) -> tuple[dict[str, Record], BaseException | None]:
    """Journal each batch as it returns; say why training stopped early, if it did. `label`
    heads the bar, and the final line unless it is plain training. A halving search's round
    passes its `steps` and `keep`, which saves the states of trials paused at a rung before
    their records are journaled and returns the records to journal."""
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
            for batch_records in _fan_out(spec, plan, steps or {}):
                returned = [replace(r, dataset=spec.dataset.hash) for r in batch_records]
                with _interrupts_deferred():  # journal and memory agree, whenever Ctrl-C comes
                    returned = keep(returned) if keep is not None else returned
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
                                    dataset=spec.dataset)
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


def _fan_out(spec: Spec, plan: Plan, steps: Mapping[str, tuple[TrainState | None, int]]
             ) -> Iterator[list[Record]]:
    """Batches' records as each batch finishes, in whatever order they finish; `steps`: a
    halving search's trials, where each starts and the epochs it trains to (a batch's trials
    share both)."""
    tasks = [([(t.id, t.params, steps[t.id][0] if steps else None) for t in batch], plan.engine,
              steps[batch[0].id][1] if steps else None) for batch in plan.batches]
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


# --- a halving search's rounds ---------------------------------------------------------------

def _halving_rounds(
    spec: Spec, setup: planner.Setup, halving: Halving, known: dict[str, Record], *,
    fresh: bool, fail_fast: bool, quiet: bool, command: str, endings: Mapping[str, str],
) -> tuple[Plan, dict[str, Record], dict[str, Any], BaseException | None]:
    """Train rung by rung: each round, every trial behind its bracket's next rung trains to
    it, from the state it paused in; returns the plan of all trials to publish, their latest
    records, the manifest and why training stopped early, if it did.

    A paused trial's state is saved in the folder before its record is journaled, so a rerun
    goes on from the last rung each trial reached; the states of trials out of the race are
    dropped as the search decides."""
    directory = setup.directory
    everyone = setup.trials
    ids = [t.id for t in everyone]
    by_id = {t.id: t for t in everyone}
    # the folder's records are `known` already: no second read of the journal
    base = Plan(directory, everyone, {}, [], [], setup.workers, setup.engine, setup.backend,
                {} if fresh else store.read_manifest(directory))
    manifest = new_manifest(spec, base.manifest, ids, command=command, workers=base.workers,
                            engine=base.engine, backend=base.backend, to_train=0)
    store.write_manifest(directory, manifest)
    records = dict(known)
    trained: set[str] = set()
    states: dict[str, TrainState] = {}
    stop: BaseException | None = None
    for number in itertools.count(1):
        decided = next_round(halving, ids, {t: _reached(r) for t, r in records.items()},
                             everyone[0].params.metric)
        store.drop_states(directory, keep=decided.alive)
        if not decided.wanted or stop is not None:
            break
        steps = {t: (_start(directory, by_id[t], records.get(t), states, until), until)
                 for t, until in decided.wanted.items()}
        pending = [by_id[t] for t in ids if t in steps]
        groups: dict[tuple[int, int], list[Trial]] = {}
        for trial in pending:
            start, until = steps[trial.id]
            groups.setdefault((0 if start is None else start.epoch, until), []).append(trial)
        batches = [batch for group in groups.values()
                   for batch in batches_of(group, base.workers, rows=len(spec.dataset.x))]
        epochs = sum(until - (0 if start is None else start.epoch)
                     for start, until in steps.values())
        plan = replace(base, trials=pending, reused={}, pending=pending, batches=batches,
                       share=epochs / (len(pending) * halving.max_epochs))
        manifest["invocations"][-1].update(
            to_train=manifest["invocations"][-1]["to_train"] + len(pending), rounds=number)
        store.write_manifest(directory, manifest)

        def keep(returned: list[Record]) -> list[Record]:
            kept = []
            for record in returned:
                record = _scored(record, records.get(record.trial))
                if record.result is not None and record.result.state is not None:
                    store.write_state(directory, record.trial, record.result.state)
                    states[record.trial] = record.result.state
                kept.append(record)
            return kept

        rungs = sorted({until for _, until in steps.values()})
        done, stop = _train(spec, plan, fail_fast=fail_fast, quiet=quiet, endings=endings,
                            label=f"round {number}: to {'/'.join(map(str, rungs))} epochs",
                            steps=steps, keep=keep)
        records.update(done)
        trained.update(done)
    final = replace(base, trials=everyone, pending=[], share=1.0,
                    reused={t: r for t, r in records.items() if t not in trained})
    return final, records, manifest, stop


def _reached(record: Record) -> Reached:
    """What the journal says a trial reached, as halving.next_round reads it."""
    if record.result is None:
        return Reached(0, dict(record.scores), failed=True)
    return Reached(record.stopped or record.params.epochs, dict(record.scores))


def _start(directory: Path, trial: Trial, record: Record | None,
           states: dict[str, TrainState], until: int) -> TrainState | None:
    """Where a trial goes on from to `until` epochs: its state at the epochs its record reached
    (in memory, or saved in the folder by an earlier run); anew when there is none, or when
    it stands past `until` (a search with other rungs over the same folder)."""
    if record is None or record.stopped is None or record.result is None:
        return None
    if record.stopped >= until:
        return None
    state = states.get(trial.id) or store.read_state(directory, trial.id, trial.params)
    return state if state is not None and state.epoch == record.stopped else None


def _scored(record: Record, before: Record | None) -> Record:
    """The record with its score at the epochs it reached added to those it had before."""
    result = record.result
    if result is None:
        return record
    epochs = record.stopped or record.params.epochs
    score = result.state.score if result.state is not None else result.final_error
    scores = {**dict(before.scores if before is not None else ()), epochs: score}
    return replace(record, scores=tuple(sorted(scores.items())))


def _budget_line(results: Results, halving: Halving) -> str:
    """What the search spent, in one line."""
    return f"{halving.method}: {tables.halving_spent(results.trials, halving)}"


# --- the edge search's rounds ---------------------------------------------------------------

def _journaled(spec: Spec, setup: planner.Setup, *, fresh: bool, retry_failed: bool
               ) -> dict[str, Record]:
    """An edge search's known outcomes: the folder's usable records (none for a grid, which
    its plan alone reads), less the failed ones a retry trains again."""
    if (spec.search.edge is None and spec.search.halving is None) or fresh:
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
    batch, engine, _ = task
    return [Record(trial, params, "crashed", 0.0, None, reason, engine)
            for trial, params, _ in batch]


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
        frames = store.build_tables(ordered, edge, spec.search.halving,
                                    [t.id for t in plan.trials])
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
