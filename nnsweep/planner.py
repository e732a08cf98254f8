"""What a run will do, decided before anything is written: the limits it is held to, its
workers, the folder's records it may reuse, the batches it trains and whether the results fit.

Planning reads the results folder and never writes it, so a dry run and `validate` show exactly
what a run would do, and a run refuses before its first write what it could not finish.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np

from nnsweep import backends, engines, store
from nnsweep.batching import (
    REFERENCE,
    BatchKey,
    Speed,
    batch_key,
    batches,
    epoch_seconds,
    epoch_terms,
    estimate_seconds,
)
from nnsweep.datasets import Dataset
from nnsweep.errors import EngineMismatch, NnsweepError, NnsweepWarning, NoRoom, OtherSpec
from nnsweep.grid import Trial, check_size
from nnsweep.journal import Record
from nnsweep.params import TrialParams
from nnsweep.result import TrialResult
from nnsweep.spec import MAX_WORKERS, Spec

if TYPE_CHECKING:  # the compiled engine imports Numba: only a numba run pays for it
    from nnsweep.engine_numba import Variant

DEFAULT_MAX_TRIALS = 100_000

# Bytes per history row and per weight, measured on saved sweeps: disk counts the journal,
# parquet and CSV together; memory counts the frames built at the end of a run.
HISTORY_ROW_DISK = 160
HISTORY_ROW_MEMORY = 120
WEIGHT_DISK = 45
WEIGHT_MEMORY = 80

# Resident memory of one loky worker (VmRSS read inside it): 121 MiB once it has imported the
# trainer and trained a first batch, 137 MiB after batches of engines.MAX_BATCH XOR trials,
# measured with joblib.Parallel(n_jobs=2) on this project's machine (Python 3.11). Bigger data
# and networks take more; this floor keeps a run from starting more workers than memory holds.
WORKER_MEMORY = 140 * 2**20


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
    # The share of its trials' epochs the plan trains: a halving search's rungs stop most
    # trials early (halving.Halving.budget), a grid's trials train them all.
    share: float = 1.0

    def estimate_seconds(self, dataset: Dataset, *, report: bool = True,
                         loading: float = 0.0) -> float:
        """About how long the run takes from start to exit on this machine, report included
        unless `report` is False: the cost model calibrated by short probes of the engine,
        on XOR and on the sweep's own data; `loading`, the seconds reading the sweep file and
        its data took (a run reads them again)."""
        calibration = (calibrate(self.engine, [t.params for t in self.pending],
                                 dataset=dataset) if self.pending else None)
        return self.estimate(dataset.rows, calibration, report=report,
                             held_out=dataset.validation is not None, loading=loading).total

    def estimate(self, rows: int, calibration: Calibration | None, *, report: bool = True,
                 held_out: bool = False, loading: float = 0.0) -> Estimate:
        """The run's time, part by part, at `calibration` (None: the reference machine)."""
        return estimate(self, rows, calibration or Calibration(self.engine, REFERENCE, 1.0),
                        report=report, held_out=held_out, loading=loading)


# --- room -----------------------------------------------------------------------------------

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
    if disk > free_disk:
        raise NoRoom(directory, "disk", disk, free_disk)
    free_memory = available_memory()
    if memory > free_memory:
        raise NoRoom(directory, "memory", memory, free_memory)


def available_memory() -> int:
    """Memory the system can give without swapping (MemAvailable), in bytes."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


# --- workers and limits -----------------------------------------------------------------------

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


def check_grid(spec: Spec, max_trials: int | None = None) -> None:
    """Hold the grid to the limit (DEFAULT_MAX_TRIALS unless given) by its count alone."""
    limit = DEFAULT_MAX_TRIALS if max_trials is None else max_trials
    check_size(spec.size(), limit, str(spec.source or spec.name), available_memory())


def default_directory(spec: Spec) -> Path:
    return Path("results") / spec.name


# --- plans ----------------------------------------------------------------------------------

def preflight(spec: Spec, *, out: str | Path | None = None, jobs: int | None = None,
              engine: str | None = None, backend: str | None = None,
              max_trials: int | None = None, fresh: bool = False) -> Setup:
    """Every check that needs no journal: limits, engine, backend, the folder, the room."""
    check_grid(spec, max_trials)
    directory = Path(out) if out is not None else default_directory(spec)
    trials = list(spec.trials())
    chosen_engine = engines.resolve(engine or spec.run.engine, (t.params for t in trials),
                                    spec.dataset.validation is not None,
                                    stopping=spec.search.halving is not None)
    chosen_backend = backend or spec.run.backend
    backends.check(chosen_backend, scheduler=spec.run.scheduler)
    store.check_name(directory)
    store.check_folder(directory, fresh=fresh)
    check_room(directory, trials, spec.dataset.x.shape[1], spec.dataset.y.shape[1],
               keep_weights=spec.run.save_weights)
    workers = workers_for(jobs if jobs is not None else spec.run.jobs, chosen_backend)
    return Setup(directory, trials, workers, chosen_engine, chosen_backend)


def make_plan(spec: Spec, setup: Setup, *, retry_failed: bool = False,
              fresh: bool = False) -> Plan:
    """The plan for a checked setup, from what its folder's journal already holds."""
    manifest = {} if fresh else store.read_manifest(setup.directory)
    records = {} if fresh else usable_records(spec, setup, manifest)
    reused = {t.id: records[t.id] for t in setup.trials
              if t.id in records and (records[t.id].finished or not retry_failed)}
    return _batched(spec, setup, reused, manifest)


def outline(spec: Spec, *, jobs: int | None = None, max_trials: int | None = None) -> Plan:
    """What a run would train into a new folder, from the spec alone: the grid held to run's
    limits and batched as run batches it. No folder is read, and the engine and backend are
    the spec's, unchecked."""
    check_grid(spec, max_trials)
    workers = workers_for(jobs if jobs is not None else spec.run.jobs, spec.run.backend)
    setup = Setup(default_directory(spec), list(spec.trials()), workers, spec.run.engine,
                  spec.run.backend)
    return _batched(spec, setup, {}, {})


def _batched(spec: Spec, setup: Setup, reused: dict[str, Record],
             manifest: dict[str, Any]) -> Plan:
    pending = [t for t in setup.trials if t.id not in reused]
    planned = batches(pending, setup.workers, rows=spec.dataset.x.shape[0])
    halving = spec.search.halving
    share = (halving.budget(len(pending)) / (len(pending) * halving.max_epochs)
             if halving is not None and pending else 1.0)
    return Plan(setup.directory, setup.trials, reused, pending, planned, setup.workers,
                setup.engine, setup.backend, manifest, share)


def usable_records(spec: Spec, setup: Setup, manifest: Mapping[str, Any]) -> dict[str, Record]:
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
        raise OtherSpec(directory, made_by, spec.hash)
    others = Counter(r.engine for t, r in records.items()
                     if t in ids and r.finished and r.engine != setup.engine)
    if others:
        engine, count = others.most_common(1)[0]
        raise EngineMismatch(directory, engine, count, setup.engine)
    return records


def _saved_spec_text(directory: Path) -> str | None:
    path = directory / store.SPEC
    if path.is_symlink() or not path.is_file():
        return None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text(encoding="utf-8")
    return None


# --- how long a run takes ---------------------------------------------------------------------

# The fixed costs of a run in the cost model's units: seconds of the machine its constants were
# measured on (batching.SECONDS_PER_CALL), fitted to profiles of the example sweeps and W49
# (benchmarks/profile_run.py) and to validate against run (benchmarks/test_estimates.py),
# each divided by the slowdown and the contention its machine's probe and load measured.
# An estimate scales them by Calibration.slowdown and the share of the cores the run gets.
# Start: the interpreter, imports, reading the spec, planning.
START_SECONDS = 0.8
# Starting the workers and loading the engine in each (numba: its cached kernels).
WORKER_SECONDS = {"numpy": 0.6, "numba": 0.6}
# The Numba engine compiling a kernel into an empty cache (one worker compiles, the others
# wait for it and load it).
COMPILE_SECONDS = 2.5
# The journal and the tables: once, per trial (its record, its direction counts) and per
# history row; fitted to W4900 (4900 trials) at 7 and at 601 history rows a trial.
TABLE_SECONDS = 0.06
TABLE_SECONDS_PER_TRIAL = 1.3e-4
TABLE_SECONDS_PER_ROW = 3.3e-7
# The report: imports and the page, each trial (heatmap cells, a line each), each history row
# (read lean, nnsweep.leanhistory: W4900's report took 1 s more with 4.9 million history rows
# than with 34000, about as long as 4851 more trials added).
REPORT_SECONDS = 1.1
REPORT_SECONDS_PER_TRIAL = 1e-4
REPORT_SECONDS_PER_ROW = 1e-7
# The report's held-out figures (validation heatmaps, the gap, a second curve per trial).
REPORT_HELD_OUT_SECONDS = 0.6
# The Numba engine's coefficients on the reference machine, for a cache too cold to probe.
NUMBA_SPEED = Speed(per_call=6e-8, per_value=2e-10)
# The probe's networks: XOR-shaped, sigmoid, full descent (their width and rate vary).
PROBE = TrialParams(activation="sigmoid", output="sigmoid", descent="full", record_every=100)
# Each of the probe's runs trains for about this long, and is timed this many times more.
PROBE_SECONDS = 0.05
PROBE_REPEATS = 2
# The sweep's batch keys probed on its own data and settings, the costliest first: each such
# key's speed is the XOR probe's scaled to what its trials measured; the others keep it.
PROBED_KEYS = 4


@dataclass(frozen=True)
class Calibration:
    """How fast this machine runs a sweep with one engine: the engine's cost-model coefficients
    and how much slower than the reference machine it runs plain NumPy (for the fixed costs),
    both in CPU seconds; `load`, what else keeps the cores busy (the load average), for the
    share of them the run will get; `uncompiled`, the kernels the run will first compile."""

    engine: str
    speed: Speed
    slowdown: float
    uncompiled: int = 0
    load: float = 0.0
    cores: int = 1
    keyed: Mapping[BatchKey, Speed] = field(default_factory=dict)

    def contention(self, processes: int) -> float:
        """How much longer `processes` busy processes take than on idle cores."""
        return max(1.0, (self.load + processes) / max(1, self.cores))


@dataclass(frozen=True)
class Estimate:
    """A run's time, part by part, in seconds."""

    start: float  # interpreter, imports, planning
    workers: float  # starting them, loading (or compiling) the engine in them
    training: float
    tables: float
    report: float

    @property
    def total(self) -> float:
        return self.start + self.workers + self.training + self.tables + self.report

    @property
    def until_trained(self) -> float:
        """What the progress bar's eta starts from: the workers and their training."""
        return self.workers + self.training


def estimate(plan: Plan, rows: int, calibration: Calibration, *, report: bool = True,
             held_out: bool = False, loading: float = 0.0) -> Estimate:
    """How long `plan` takes at `calibration`; a plan with nothing to train starts no worker
    and, its tables and report current, rewrites neither. `held_out`: the data holds rows
    out, which the report draws too; `loading`: the seconds the sweep's data took to read."""
    alone = calibration.contention(1)
    slow = calibration.slowdown * alone
    engine = calibration.engine
    start, workers = slow * START_SECONDS + loading, 0.0
    if plan.pending:
        shared = calibration.slowdown * calibration.contention(plan.workers)
        workers = shared * WORKER_SECONDS.get(engine, WORKER_SECONDS["numpy"])
        workers += shared * COMPILE_SECONDS * calibration.uncompiled
    training = (calibration.contention(min(plan.workers, len(plan.batches))) * plan.share
                * estimate_seconds(plan.batches, plan.workers, rows, calibration.speed,
                                   calibration.keyed))
    history_rows = plan.share * sum(len(range(0, t.params.epochs, t.params.record_step)) + 1
                                    for t in plan.trials)
    changed = bool(plan.pending)
    tables = slow * (TABLE_SECONDS + TABLE_SECONDS_PER_TRIAL * len(plan.trials)
                     + TABLE_SECONDS_PER_ROW * history_rows) if changed else 0.0
    drawn = slow * (REPORT_SECONDS + REPORT_SECONDS_PER_TRIAL * len(plan.trials)
                    + REPORT_SECONDS_PER_ROW * history_rows
                    + (REPORT_HELD_OUT_SECONDS if held_out else 0.0))
    return Estimate(start, workers, training, tables, drawn if report and changed else 0.0)


@dataclass(frozen=True)
class ProbeRun:
    """One timed batch of the probe: what it trained and how long it took."""

    trials: tuple[TrialParams, ...]
    rows: int
    seconds: float


Validation = tuple[np.ndarray, np.ndarray]  # held-out (x, y)
Train = Callable[..., list[TrialResult]]  # (x, y, trials[, validation]) -> a result per trial
Clock = Callable[[], float]


def probe_trials(hidden: int, epochs: int) -> tuple[TrialParams, ...]:
    """The probe's batch: XOR-shaped networks of one width, rates that neither stall nor blow."""
    return tuple(replace(PROBE, alpha=alpha, hidden=(hidden,), epochs=epochs)
                 for alpha in (0.1, 0.3, 1.0, 3.0))


def probe(train: Train, *, clock: Clock = time.perf_counter, budget: float = PROBE_SECONDS,
          repeats: int = PROBE_REPEATS) -> list[ProbeRun]:
    """Time `train` on a narrow batch (dispatch-bound) and a wide one (arithmetic-bound), each
    grown from a few epochs until it takes about `budget` seconds, then timed `repeats` times
    more: the quickest is the machine's speed, the others were interrupted."""
    x = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    train(x, y, probe_trials(4, 2))  # load (or compile) outside the timing
    runs = []
    for hidden in (4, 128):
        def train_at(epochs: int, hidden: int = hidden) -> object:
            return train(x, y, probe_trials(hidden, epochs))

        epochs, seconds = _grown(train_at, 16, 2**20, clock=clock, budget=budget,
                                 repeats=repeats)
        runs.append(ProbeRun(probe_trials(hidden, epochs), len(y), seconds))
    return runs


def fit_speed(runs: Sequence[ProbeRun]) -> Speed:
    """The coefficients that best explain the probe's runs (least squares, none negative)."""
    terms = [epoch_terms(run.trials, run.rows) for run in runs]
    a = np.array([[run.trials[0].epochs * c, run.trials[0].epochs * v]
                  for run, (c, v) in zip(runs, terms, strict=True)])  # (runs, 2)
    b = np.array([run.seconds for run in runs])  # (runs,)
    (per_call, per_value), *_ = np.linalg.lstsq(a, b, rcond=None)
    if per_call < 0 or per_value < 0:  # one term explains it all: fit that one alone
        column = 1 if per_call < 0 else 0
        alone = max(0.0, float(a[:, column] @ b / (a[:, column] @ a[:, column])))
        per_call, per_value = (0.0, alone) if column == 1 else (alone, 0.0)
    return Speed(per_call=float(per_call), per_value=float(per_value))


def slowdown(runs: Sequence[ProbeRun]) -> float:
    """How much slower than the reference machine the NumPy engine ran the probe."""
    model = sum(run.trials[0].epochs * (c * REFERENCE.per_call + v * REFERENCE.per_value)
                for run in runs for c, v in [epoch_terms(run.trials, run.rows)])
    return sum(run.seconds for run in runs) / model


def calibrate(engine: str, trials: Sequence[TrialParams] = (), *,
              clock: Clock = time.process_time, budget: float = PROBE_SECONDS,
              trainer: Callable[[str], Train] | None = None,
              load: Callable[[], float] | None = None,
              dataset: Dataset | None = None) -> Calibration:
    """Probe this machine with the NumPy engine (for the fixed costs) and with `engine` as a
    worker runs it: one thread, timed in CPU seconds so that other work on the machine counts
    once, as `load` (busy_processes() unless given), not in every figure. With the
    sweep's `dataset`, the costliest batch keys of `trials` are probed on it too, as the XOR
    probe cannot tell how a key's data, loss and optimizer weigh. A Numba kernel the cache
    does not hold is not compiled here: the run's compiling is counted, and without the
    probe's own kernel the reference's coefficients are scaled. An engine that cannot train
    `trials` here (not installed, or lacking a setting) is estimated as the NumPy engine:
    validate checks no engine, and run refuses it before training."""
    validating = dataset is not None and dataset.validation is not None
    try:
        concrete = engines.resolve(engine, trials, validating)
    except NnsweepError:
        concrete = "numpy"
    trainer = trainer or _trainer
    busy = load() if load is not None else busy_processes()
    cores = max(1, int(joblib.cpu_count()))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        numpy_runs = probe(trainer("numpy"), clock=clock, budget=budget)
        slow = slowdown(numpy_runs)
        if concrete == "numpy":
            speed = fit_speed(numpy_runs)
            keyed = _keyed(trainer("numpy"), speed, trials, dataset, clock=clock, budget=budget)
            return Calibration(concrete, speed, slow, load=busy, cores=cores, keyed=keyed)
    from nnsweep.engine_numba import Variant

    by_kernel: dict[tuple[str, str, Variant], list[TrialParams]] = {}
    for params in trials:
        kernel = (params.activation, params.output, Variant.of(params, validating))
        by_kernel.setdefault(kernel, []).append(params)
    cold = {kernel for kernel in by_kernel if uncompiled_kernels({kernel})}
    missing = len(cold)
    if uncompiled_kernels({(PROBE.activation, PROBE.output, Variant.of(PROBE))}):
        scaled = Speed(NUMBA_SPEED.per_call * slow, NUMBA_SPEED.per_value * slow)
        return Calibration(concrete, scaled, slow, uncompiled=missing, load=busy, cores=cores)
    with _one_numba_thread():
        speed = fit_speed(probe(trainer(concrete), clock=clock, budget=budget))
        cached = [params for kernel, members in by_kernel.items() if kernel not in cold
                  for params in members]  # a kernel is not compiled to be probed
        keyed = _keyed(trainer(concrete), speed, cached, dataset, clock=clock, budget=budget)
    return Calibration(concrete, speed, slow, uncompiled=missing, load=busy, cores=cores,
                       keyed=keyed)


def busy_processes(samples: int = 5, interval: float = 0.02,
                   source: Path = Path("/proc/loadavg")) -> float:
    """How many other processes want the cores now: the runnable count Linux keeps in
    /proc/loadavg, less this process, averaged over a few samples. The load average trails by
    a minute, so a run that just ended would count as still running; where /proc is not, it is
    all there is."""
    counts = []
    for sample in range(samples):
        if sample:
            time.sleep(interval)
        try:
            running = source.read_text(encoding="ascii").split()[3].split("/")[0]
            counts.append(max(0, int(running) - 1))
        except (OSError, IndexError, ValueError):
            return os.getloadavg()[0]
    return sum(counts) / len(counts)


def _keyed(train: Train, speed: Speed, trials: Sequence[TrialParams], dataset: Dataset | None,
           *, clock: Clock, budget: float) -> dict[BatchKey, Speed]:
    """`speed` scaled, for each of the costliest keys of `trials`, to what the key's own
    trials took on `dataset` against what `speed` says they would."""
    if dataset is None or not trials:
        return {}
    groups: dict[BatchKey, list[TrialParams]] = {}
    for params in trials:
        groups.setdefault(batch_key(params), []).append(params)

    def cost(members: list[TrialParams]) -> float:
        return members[0].epochs * epoch_seconds(members, dataset.rows)

    costliest = sorted(groups, key=lambda key: cost(groups[key]), reverse=True)[:PROBED_KEYS]
    keyed = {}
    for key in costliest:
        runs = probe_key(train, groups[key], dataset, clock=clock, budget=budget)
        modelled = sum(run.trials[0].epochs * epoch_seconds(run.trials, run.rows, speed)
                       for run in runs)
        if modelled > 0 and (measured := sum(run.seconds for run in runs)) > 0:
            factor = measured / modelled
            keyed[key] = Speed(speed.per_call * factor, speed.per_value * factor)
    return keyed


def probe_key(train: Train, members: Sequence[TrialParams], dataset: Dataset, *,
              clock: Clock = time.process_time, budget: float = PROBE_SECONDS
              ) -> list[ProbeRun]:
    """Time one batch key on the sweep's data: its narrowest trial alone (dispatch-bound) and
    up to four of its widest (arithmetic-bound), the smallest rates first (the likeliest to
    train through), each grown from one epoch until it takes about `budget` seconds, then
    timed once more: the quicker of the two is kept."""
    ordered = sorted(members, key=lambda t: (sum(t.hidden), t.alpha))
    widest = tuple(t for t in ordered if t.hidden == ordered[-1].hidden)[:4]
    runs = []
    for batch in ((ordered[0],), widest):
        def at(epochs: int, batch: tuple[TrialParams, ...] = batch) -> tuple[TrialParams, ...]:
            return tuple(replace(t, epochs=epochs) for t in batch)

        epochs, seconds = _grown(
            lambda e: train(dataset.x, dataset.y, at(e), dataset.validation), 1,
            batch[0].epochs, clock=clock, budget=budget, repeats=1)
        runs.append(ProbeRun(at(epochs), dataset.rows, seconds))
    return runs


def _grown(train_at: Callable[[int], object], epochs: int, most: int, *, clock: Clock,
           budget: float, repeats: int) -> tuple[int, float]:
    """Time `train_at(epochs)`, the epochs grown until a run takes about `budget` seconds (or
    reach `most`), then `repeats` times more: the epochs and the quickest time (the others
    were interrupted)."""
    while True:
        started = clock()
        train_at(epochs)
        seconds = clock() - started
        if seconds >= budget / 2 or epochs >= most:
            break
        epochs = min(most, epochs * (2 if seconds <= 0
                                     else max(2, min(64, round(budget / seconds)))))
    for _ in range(repeats):
        started = clock()
        train_at(epochs)
        seconds = min(seconds, clock() - started)
    return epochs, seconds


def _trainer(engine: str) -> Train:
    def train(x: np.ndarray, y: np.ndarray, trials: Sequence[TrialParams],
              validation: Validation | None = None) -> list[TrialResult]:
        return engines.train(engine, x, y, trials, validation)

    return train


@contextlib.contextmanager
def _one_numba_thread() -> Iterator[None]:
    """Numba's threads held to one, as each worker's share of the cores."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def uncompiled_kernels(kernels: Iterable[tuple[str, str, Variant]]) -> int:
    """How many of these kernels (hidden and output activations, and the features a batch key
    fixes) the Numba engine's cache does not hold: a run compiles each first."""
    from nnsweep import engine_numba

    return sum(not engine_numba.is_cached(hidden, output, variant)
               for hidden, output, variant in set(kernels))
