"""How much faster the engines train than the plain loop: workloads, timings, a table.

Every figure is a ratio against nnsweep.reference measured in the same run, as seconds per
trial-epoch: the loop trains a sample of each workload's trials (the same mix of widths) for
fewer epochs, the engines train every trial. The NumPy engine runs the way the runner runs it:
batches (from `batching.batch_indices`), joblib's loky workers, BLAS capped to one thread each.
The Numba engine runs in this process on all cores (its own threads). test_speed.py times the
same functions under pytest-benchmark and asserts the figures; `python -m nnsweep bench`
prints them in about a minute. The harness is part of the source checkout, not of the package:
it imports as `harness` with this folder on the path (pytest puts it there).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from nnsweep import engines, warmup
from nnsweep.batching import batch_indices
from nnsweep.datasets import builtin
from nnsweep.network import initial_weights
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.result import TrialResult

Array = NDArray[np.float64]

FULL_EPOCHS = 60_000  # the textbooks' runs; benchmarks cut epochs and report per epoch
ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
WIDTHS = (4, 8, 16, 32, 64, 128, 256)
DRIFT = 1e-9  # engines "agree" when every recorded error and weight is this close
JOBS = 2  # the NumPy engine's workers, as `--jobs 2`
# The digits workload: a classifier as people train one, 5 widths x 3 alphas x 2 seeds.
DIGITS_WIDTHS = (16, 32, 64, 128, 256)
DIGITS_ALPHAS = (0.001, 0.003, 0.01)
DIGITS_BATCH = 32
DIGITS_PARAMS: dict[str, Any] = dict(
    activation="relu", init="he", output="softmax", loss="cross_entropy", descent="minibatch",
    batch_size=DIGITS_BATCH, reduction="mean", optimizer="adam", record_every=1)


@dataclass(frozen=True)
class Workload:
    """A sweep to time: its trials at the benchmark's epochs and the loop's sample of them."""

    name: str
    description: str
    dataset: str
    trials: tuple[TrialParams, ...]
    reference: tuple[TrialParams, ...]  # same mix of shapes, fewer epochs or trials
    baselines: bool = False  # one hidden sigmoid layer, full descent: plain Numba and JAX fit
    jax: bool = False  # a JAX program of its own (the digits' softmax, adam and minibatches)

    def data(self) -> tuple[Array, Array]:
        dataset = builtin(self.dataset)
        return dataset.x, dataset.y

    @staticmethod
    def trial_epochs(trials: Sequence[TrialParams]) -> int:
        return sum(t.epochs for t in trials)


def _sweep(alphas: Sequence[float], widths: Sequence[tuple[int, ...]], seeds: Sequence[int],
           epochs: int, **fixed: Any) -> tuple[TrialParams, ...]:
    return tuple(TrialParams(alpha=a, hidden=h, seed=s, epochs=epochs, **fixed)
                 for s in seeds for a in alphas for h in widths)


def _with_epochs(trials: Sequence[TrialParams], epochs: int) -> tuple[TrialParams, ...]:
    return tuple(replace(t, epochs=epochs) for t in trials)


def workloads(scale: float = 1.0) -> dict[str, Workload]:
    """The benchmark workloads with epochs cut by `scale` (1.0: the benchmark suite's cut)."""

    def cut(epochs: int) -> int:
        return max(2, round(epochs * scale))

    widths = [(h,) for h in WIDTHS]
    w49 = _sweep(ALPHAS, widths, [1], cut(2000), record_every=100)
    w490 = _sweep(ALPHAS, widths, range(1, 11), cut(1000), record_every=100)
    w4900 = _sweep(ALPHAS, widths, range(1, 101), cut(1000), record_every=100)
    # for memory: as many history rows per trial as 60000 epochs recorded every 100
    w4900_memory = _sweep(ALPHAS, widths, range(1, 101), 600, record_every=1)
    street = _sweep((0.05, 0.1, 0.2, 0.4), [(4,)], range(1, 11), cut(1000), activation="relu",
                    output="linear", descent="stochastic", record_every=10)
    rect = dict(activation="sigmoid", output="linear", init="normal", record_every=1)
    rect_mini = _sweep((0.001, 0.01), [(3, 2)], range(1, 6), cut(30), descent="minibatch",
                       batch_size=8, **rect)
    rect_sgd = _sweep((0.001, 0.01), [(3, 2)], range(1, 6), cut(10), descent="stochastic",
                      **rect)
    wide = _sweep((0.1,), [(4 ** k,) for k in range(1, 6)], range(1, 5), cut(300),
                  record_every=10)
    deep = _sweep((0.1, 1.0), [(16,) * d for d in range(1, 5)], range(1, 5), cut(1000),
                  record_every=10)
    digits = _sweep(DIGITS_ALPHAS, [(h,) for h in DIGITS_WIDTHS], range(1, 3), cut(10),
                    **DIGITS_PARAMS)

    def sample(trials: tuple[TrialParams, ...], every: int, epochs: int) -> tuple[
            TrialParams, ...]:
        return _with_epochs(trials[::every], max(2, epochs))

    return {
        "W49": Workload("W49", "XOR, 7 alphas x 7 widths, full descent", "xor", w49,
                        sample(w49, 1, cut(200)), baselines=True),
        "W490": Workload("W490", "W49 x 10 seeds", "xor", w490,
                         _with_epochs(w490[:49], cut(200)), baselines=True),
        "W4900": Workload("W4900", "W49 x 100 seeds", "xor", w4900,
                          _with_epochs(w4900[:49], cut(200))),
        "W4900-memory": Workload("W4900-memory", "W4900 with 600 history rows per trial",
                                 "xor", w4900_memory, ()),
        "streetlights": Workload("streetlights", "relu 3-4-1, stochastic, 4 alphas x 10 seeds",
                                 "streetlights", street, sample(street, 4, cut(200))),
        "rectangles-minibatch": Workload(
            "rectangles-minibatch", "4-3-2-1 on 1000 rows, batches of 8", "rectangles",
            rect_mini, sample(rect_mini, 5, cut(6))),
        "rectangles-stochastic": Workload(
            "rectangles-stochastic", "4-3-2-1 on 1000 rows, row by row", "rectangles",
            rect_sgd, sample(rect_sgd, 5, cut(2))),
        "width": Workload("width", "XOR, hidden 4 ... 1024, 4 seeds", "xor", wide,
                          sample(wide, 4, cut(60))),
        "depth": Workload("depth", "XOR, 1 to 4 hidden layers of 16", "xor", deep,
                          sample(deep, 4, cut(200))),
        "digits": Workload("digits", "64-H-10 on the 1797 digits, H 16 to 256, softmax, adam, "
                           "minibatches of 32", "digits", digits, sample(digits, 6, cut(2)),
                           jax=True),
    }


# --- timing ---------------------------------------------------------------------------------

@dataclass
class Timing:
    """One engine on one workload."""

    seconds: float
    trial_epochs: int
    results: list[TrialResult]
    peak_bytes: int = 0  # the largest resident set of any process that trained

    @property
    def per_trial_epoch(self) -> float:
        return self.seconds / self.trial_epochs


def peak_rss() -> int:
    """This process's peak resident bytes since it started its program.

    Linux's VmHWM, because getrusage's maxrss survives exec: a child spawned by a big
    process would start out as big as its parent was.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _train_task(x: Array, y: Array, trials: list[TrialParams], engine: str
                ) -> tuple[list[TrialResult], int]:
    """What a runner worker does with a batch, minus the journal."""
    with threadpool_limits(limits=1):
        return engines.train(engine, x, y, trials), peak_rss()


def time_reference(workload: Workload) -> Timing:
    x, y = workload.data()
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        results = [train_one(x, y, t) for t in workload.reference]
        seconds = time.perf_counter() - started
    return Timing(seconds, Workload.trial_epochs(workload.reference), results, peak_rss())


def time_engine(workload: Workload, engine: str, jobs: int = JOBS) -> Timing:
    """Train every trial; jobs > 1 fans the runner's batches out to loky workers."""
    from nnsweep.grid import Trial

    x, y = workload.data()
    trials = list(workload.trials)
    if jobs <= 1:
        engines.train(engine, x, y, [replace(trials[0], epochs=2)])  # compile or load
        started = time.perf_counter()
        results, peak = _train_task(x, y, trials, engine) if engine == "numpy" else (
            engines.train(engine, x, y, trials), peak_rss())
        return Timing(time.perf_counter() - started, Workload.trial_epochs(trials), results,
                      peak)
    planned = [[Trial(str(i), trials[i]) for i in batch]
               for batch in batch_indices(trials, jobs, len(y))]
    parallel = joblib.Parallel(n_jobs=jobs)
    warm_up(engine, jobs)
    started = time.perf_counter()
    returned = parallel(joblib.delayed(_train_task)(x, y, [t.params for t in batch], engine)
                        for batch in planned)
    seconds = time.perf_counter() - started
    by_trial: dict[str, TrialResult] = {}
    for batch, (results, _) in zip(planned, returned, strict=True):
        by_trial.update((t.id, r) for t, r in zip(batch, results, strict=True))
    peak = max(peak for _, peak in returned)
    return Timing(seconds, Workload.trial_epochs(trials),
                  [by_trial[str(i)] for i in range(len(trials))], peak)


def peak_memory(workload_name: str, scale: float, engine: str, jobs: int) -> int:
    """Peak resident bytes of a fresh process training the workload as the runner does,
    batches streamed through as they finish, plus every worker at its own peak at once."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import harness; "
            f"print(harness._memory_child({workload_name!r}, {scale!r}, {engine!r}, {jobs!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.split()[-1])


def _memory_child(workload_name: str, scale: float, engine: str, jobs: int) -> int:
    workload = workloads(scale)[workload_name]
    x, y = workload.data()
    trials = list(workload.trials)
    planned = batch_indices(trials, jobs, len(y))
    tasks = (joblib.delayed(_train_task)(x, y, [trials[i] for i in batch], engine)
             for batch in planned)
    if jobs <= 1:
        for task, args, _ in tasks:
            task(*args)
        return peak_rss()
    worker_peak = 0
    for _, peak in joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
        worker_peak = max(worker_peak, peak)  # the runner journals a batch and lets it go
    return peak_rss() + jobs * worker_peak


def warm_up(engine: str, jobs: int) -> None:
    """Start the workers and load the engine in each, outside the timed region."""
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.array([[1.0], [0.0]])
    tiny = [TrialParams(epochs=2)]
    joblib.Parallel(n_jobs=jobs)(joblib.delayed(_train_task)(x, y, tiny, engine)
                                 for _ in range(jobs))


def chaotic(trial: TrialParams) -> bool:
    """Whether the engines' last-bit differences may grow in this trial until they show.

    The Numba engine's exp and order of summation differ from BLAS's in the last bits; in a
    trial with a large learning rate over many hidden units a one-ulp difference grows to
    1e-2 within a few hundred epochs (the NumPy engine does the same from a one-ulp change of
    one starting weight). Measured on every workload: only trials with alpha >= 0.1 and
    alpha x hidden units >= 20 ever differ by more than DRIFT.
    """
    return trial.alpha >= 0.1 and trial.alpha * sum(trial.hidden) >= 20


def drift(actual: Sequence[TrialResult], expected: Sequence[TrialResult]) -> list[float]:
    """Per trial: the largest difference of any recorded error or final weight, relative to
    max(1, |value|); inf where the recorded epochs, convergence or divergence differ."""
    out = []
    for a, b in zip(actual, expected, strict=True):
        if (not np.array_equal(a.epochs, b.epochs) or a.diverged_epoch != b.diverged_epoch):
            out.append(math.inf)
            continue
        worst = 0.0
        pairs = [(a.errors, b.errors), *zip(a.weights, b.weights, strict=True)]
        for got, want in pairs:
            with np.errstate(all="ignore"):
                gap = np.abs(got - want) / np.maximum(1.0, np.abs(want))
            same_nan = np.isnan(got) & np.isnan(want)
            gap = np.where(same_nan, 0.0, gap)
            worst = max(worst, float(np.max(gap, initial=0.0)))
        out.append(worst if math.isfinite(worst) else math.inf)
    return out


# --- baselines: the textbook loop in plain Numba and in JAX ---------------------------------

def _one_layer_weights(workload: Workload) -> tuple[list[Array], list[Array], Array]:
    x, y = workload.data()
    starts = [initial_weights(t, x.shape[1], y.shape[1]) for t in workload.trials]
    return ([w[0] for w in starts], [w[1] for w in starts],
            np.array([t.alpha for t in workload.trials]))


_plain_numba_kernel: Callable[..., Any] | None = None


def _plain_numba() -> Callable[..., Any]:
    """iamtrask's loop, one trial per prange iteration, compiled once per process."""
    global _plain_numba_kernel
    if _plain_numba_kernel is None:
        import numba

        @numba.njit(parallel=True, cache=True)
        def kernel(x: Array, y: Array, w0s: Array, w1s: Array, widths: NDArray[np.int64],
                   alphas: Array, epochs: int) -> None:
            x_t = np.ascontiguousarray(x.T)
            inputs = x.shape[1]
            for b in numba.prange(alphas.shape[0]):
                start, hidden = np.sum(widths[:b]), widths[b]
                w0 = w0s[start * inputs : (start + hidden) * inputs].reshape((inputs, hidden))
                w1 = w1s[start : start + hidden].reshape((hidden, 1))
                alpha = alphas[b]
                for _ in range(epochs):
                    l1 = 1 / (1 + np.exp(-(x @ w0)))
                    l2 = 1 / (1 + np.exp(-(l1 @ w1)))
                    d2 = (l2 - y) * (l2 * (1 - l2))
                    d1 = (d2 @ np.ascontiguousarray(w1.T)) * (l1 * (1 - l1))
                    w1 -= alpha * (np.ascontiguousarray(l1.T) @ d2)
                    w0 -= alpha * (x_t @ d1)

        _plain_numba_kernel = kernel
    return _plain_numba_kernel


def time_plain_numba(workload: Workload) -> Timing:
    x, y = workload.data()
    w0s, w1s, alphas = _one_layer_weights(workload)
    widths = np.array([w.shape[1] for w in w0s], dtype=np.int64)
    flat0 = np.concatenate([w.ravel() for w in w0s])  # trial after trial, (inputs, hidden) each
    flat1 = np.concatenate([w.ravel() for w in w1s])
    kernel = _plain_numba()
    kernel(x, y, flat0.copy(), flat1.copy(), widths, alphas, 1)  # compile outside the timing
    started = time.perf_counter()
    kernel(x, y, flat0, flat1, widths, alphas, workload.trials[0].epochs)
    return Timing(time.perf_counter() - started, Workload.trial_epochs(workload.trials), [])


def time_jax(workload: Workload) -> Timing:
    """vmap over a jit-compiled lax.scan, one call per width; compile time not counted."""
    # imported as Any: jax is an optional extra (bench), absent where mypy may run
    jax: Any = importlib.import_module("jax")
    jnp: Any = importlib.import_module("jax.numpy")

    jax.config.update("jax_enable_x64", True)
    x, y = (jnp.asarray(a) for a in workload.data())
    w0s, w1s, alphas = _one_layer_weights(workload)
    epochs = workload.trials[0].epochs

    def train(w0: Any, w1: Any, alpha: Any) -> Any:
        def step(carry: Any, _: Any) -> Any:
            w0, w1 = carry
            l1 = jax.nn.sigmoid(x @ w0)
            l2 = jax.nn.sigmoid(l1 @ w1)
            err = l2 - y
            d2 = err * l2 * (1 - l2)
            d1 = (d2 @ w1.T) * l1 * (1 - l1)
            return (w0 - alpha * (x.T @ d1), w1 - alpha * (l1.T @ d2)), jnp.abs(err).mean()

        (w0, w1), maes = jax.lax.scan(step, (w0, w1), None, length=epochs)
        return w0, w1, maes

    return _timed_by_width(jax, jax.jit(jax.vmap(train)), w0s, w1s, alphas, workload)


def _timed_by_width(jax: Any, compiled: Callable[..., Any], w0s: list[Array], w1s: list[Array],
                    alphas: Array, workload: Workload) -> Timing:
    """A jit-compiled vmap called once per width on that width's stacked trials: compiled
    first, then timed."""
    jnp: Any = jax.numpy
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(w0s):
        groups.setdefault(w.shape[1], []).append(i)
    stacks = [(jnp.asarray(np.stack([w0s[i] for i in members])),
               jnp.asarray(np.stack([w1s[i] for i in members])),
               jnp.asarray(alphas[members])) for members in groups.values()]
    for args in stacks:
        jax.block_until_ready(compiled(*args))
    started = time.perf_counter()
    for args in stacks:
        jax.block_until_ready(compiled(*args))
    return Timing(time.perf_counter() - started, Workload.trial_epochs(workload.trials), [])


def time_jax_digits(workload: Workload) -> Timing:
    """The digits workload as one would write it in JAX: the loss's gradient by jax.grad, adam
    by hand (as torch and nnsweep spell it), the epoch's minibatches in order (the last one
    short) under lax.scan, vmap over each width's trials, jit; compile time not counted."""
    jax: Any = importlib.import_module("jax")
    jnp: Any = importlib.import_module("jax.numpy")

    jax.config.update("jax_enable_x64", True)
    x_np, y_np = workload.data()
    first = workload.trials[0]
    beta1, beta2, eps = first.beta1, first.beta2, first.eps
    full = len(x_np) // DIGITS_BATCH * DIGITS_BATCH
    x_batches = jnp.asarray(x_np[:full].reshape(-1, DIGITS_BATCH, x_np.shape[1]))
    y_batches = jnp.asarray(y_np[:full].reshape(-1, DIGITS_BATCH, y_np.shape[1]))
    x_rest, y_rest = jnp.asarray(x_np[full:]), jnp.asarray(y_np[full:])

    def loss(weights: Any, x: Any, y: Any) -> Any:
        logits = jax.nn.relu(x @ weights[0]) @ weights[1]
        return -(y * jax.nn.log_softmax(logits)).sum() / len(x)

    gradient = jax.grad(loss)

    def adam(state: Any, x: Any, y: Any, alpha: Any) -> Any:
        weights, m, v, t = state
        g = gradient(weights, x, y)
        t = t + 1
        m = [beta1 * a + (1 - beta1) * b for a, b in zip(m, g, strict=True)]
        v = [beta2 * a + (1 - beta2) * b * b for a, b in zip(v, g, strict=True)]
        weights = [w - alpha * (a / (1 - beta1 ** t)) / (jnp.sqrt(b / (1 - beta2 ** t)) + eps)
                   for w, a, b in zip(weights, m, v, strict=True)]
        return weights, m, v, t

    def train(w0: Any, w1: Any, alpha: Any) -> Any:
        def epoch(state: Any, _: Any) -> Any:
            state, _ = jax.lax.scan(lambda s, xy: (adam(s, xy[0], xy[1], alpha), None), state,
                                    (x_batches, y_batches))
            return adam(state, x_rest, y_rest, alpha), None

        zeros = [jnp.zeros_like(w0), jnp.zeros_like(w1)]
        state, _ = jax.lax.scan(epoch, ([w0, w1], zeros, zeros, 0), None, length=first.epochs)
        return state[0]

    w0s, w1s, alphas = _one_layer_weights(workload)
    return _timed_by_width(jax, jax.jit(jax.vmap(train)), w0s, w1s, alphas, workload)


def has(module: str) -> bool:
    """Whether `module` imports here: found is not enough (a scipy built for another NumPy is
    found, then fails to import, and Numba's BLAS with it)."""
    try:
        importlib.import_module(module)
    except (ImportError, ValueError):
        return False
    return True


# --- every engine by name -------------------------------------------------------------------

ENGINES = ("reference", "numpy", "numba", "plain-numba", "jax")


def missing(engine: str, workload: str | None = None) -> str | None:
    """Why this machine cannot time `engine` (on `workload`, if named): an optional package is
    not installed, or the engine cannot train the workload's rules yet; None when it can."""
    if workload is not None and workloads(0.01)[workload].dataset == "digits" and not has(
            "sklearn"):
        return "the digits need scikit-learn (pip install 'nnsweep[datasets]')"
    if workload is not None and engine == "numba" and (why := engines.lacks(
            "numba", workloads(0.01)[workload].trials)) is not None:
        return f"the compiled engine cannot train {why} yet"
    if engine in ("numba", "plain-numba") and not has("numba"):
        return "numba is not installed (pip install 'nnsweep[numba]')"
    if engine == "plain-numba" and not has("scipy.linalg.cython_blas"):
        return ("scipy does not import here, and plain Numba compiles the loop's matrix "
                "products with scipy's BLAS (pip install 'nnsweep[bench]')")
    if engine == "numba" and (why := engines.broken("numba")) is not None:
        return f"the compiled engine cannot run here: {why}"
    if engine == "jax" and not has("jax"):
        return "jax is not installed (pip install 'nnsweep[bench]')"
    return None


def measure(workload: Workload, engine: str, jobs: int = JOBS) -> Timing:
    """One engine on one workload: the loop on its sample, the NumPy engine on `jobs` loky
    workers, the Numba engine in this process on all cores, the baselines on all trials."""
    if engine == "reference":
        return time_reference(workload)
    if engine == "numpy":
        return time_engine(workload, "numpy", jobs)
    if engine == "numba":
        return time_engine(workload, "numba", 1)
    if engine == "plain-numba":
        return time_plain_numba(workload)
    if engine == "jax":
        return time_jax_digits(workload) if workload.jax else time_jax(workload)
    raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


class Measurements:
    """One run's timings, (workload, engine) -> Timing: each measured once, when first asked
    for unless it was recorded before, so that every figure is a ratio of the same run."""

    def __init__(self, scale: float = 1.0, jobs: int = JOBS) -> None:
        self.scale, self.jobs = scale, jobs
        self.workloads = workloads(scale)
        self._timings: dict[tuple[str, str], Timing] = {}

    def record(self, workload: str, engine: str, timing: Timing) -> None:
        self._timings[workload, engine] = timing

    def get(self, workload: str, engine: str) -> Timing:
        if (workload, engine) not in self._timings:
            self.record(workload, engine,
                        measure(self.workloads[workload], engine, self.jobs))
        return self._timings[workload, engine]

    def ratio(self, workload: str, engine: str) -> float:
        """How many times the loop's speed the engine trains at, per trial-epoch."""
        loop = self.get(workload, "reference").per_trial_epoch
        return loop / self.get(workload, engine).per_trial_epoch

    def differing(self, workload: str) -> list[tuple[TrialParams, float]]:
        """The trials whose Numba result is more than DRIFT from the NumPy engine's, with
        their drift."""
        gaps = drift(self.get(workload, "numba").results, self.get(workload, "numpy").results)
        return [(trial, gap) for trial, gap in zip(self.workloads[workload].trials, gaps,
                                                   strict=True) if gap > DRIFT]


# --- the table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    workload: str
    engine: str
    seconds: float
    per_trial_epoch: float
    ratio: float  # the loop's seconds per trial-epoch / this one's
    note: str = ""


def compare(workload: Workload, engine_names: Sequence[str], jobs: int = JOBS) -> list[Row]:
    """The loop and each engine on one workload, as rows of the table."""
    reference = time_reference(workload)
    base = reference.per_trial_epoch
    rows = [Row(workload.name, "reference (loop)", reference.seconds, base, 1.0,
                f"{len(workload.reference)} x {workload.reference[0].epochs} epochs")]
    notes = {"numpy": f"--jobs {jobs}", "numba": "threads", "plain-numba": "textbook loop",
             "jax": "vmap(scan)"}
    numpy_timing: Timing | None = None
    for name in engine_names:
        timing, note = measure(workload, name, jobs), notes.get(name, "")
        if name == "numpy":
            numpy_timing = timing
        elif name == "numba" and numpy_timing is not None:
            gaps = drift(timing.results, numpy_timing.results)
            off = [g for g in gaps if g > DRIFT]
            note += (f"; {len(off)}/{len(gaps)} differ > {DRIFT:g}"
                     + (f" (max {max(off):.0e})" if off else ""))
        rows.append(Row(workload.name, name, timing.seconds, timing.per_trial_epoch,
                        base / timing.per_trial_epoch, note))
    return rows


def engines_for(workload: Workload) -> list[str]:
    """The engines this machine can time on the workload (the baselines fit some only)."""
    names = ["numpy", "numba", *(["plain-numba", "jax"] if workload.baselines else []),
             *(["jax"] if workload.jax else [])]
    return [name for name in names if missing(name, workload.name) is None]


def versions() -> str:
    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("numba", "jax"):
        if has(name):
            module = __import__(name)
            parts.append(f"{name} {module.__version__}")
    return ", ".join(parts)


def machine() -> str:
    return f"{platform.machine()}, {joblib.cpu_count()} cores, {platform.system()}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the engines against the loop as a table, in about a minute."""
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="nnsweep bench", description=main.__doc__)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the benchmark suite's epochs (default 1.0)")
    parser.add_argument("--jobs", type=int, default=JOBS, help="workers for the NumPy engine")
    parser.add_argument("--workloads", nargs="*", default=["W49", "W490", "streetlights",
                                                           "rectangles-minibatch"],
                        help="which workloads (default: W49 W490 streetlights "
                             "rectangles-minibatch)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="W49 as the user runs it instead: each figure a process timed "
                             "from start to exit, against iamtrask's loop (minutes at --scale 1)")
    args = parser.parse_args(argv)
    if args.end_to_end:
        return print_end_to_end(args.scale)
    known = {name: w for name, w in workloads(args.scale).items() if w.reference}
    unknown = [name for name in args.workloads if name not in known]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}; expected one of {', '.join(known)}")
    console = Console()
    table = Table(title="nnsweep engines against the loop", caption=f"{machine()}; {versions()}")
    for column in ("workload", "engine", "seconds", "us/trial-epoch", "x loop", "note"):
        table.add_column(column, justify="right" if column[0] in "sux" else "left")
    told = set()
    for name in args.workloads:
        workload = known[name]
        for engine in ("plain-numba", "jax") if workload.baselines else ():
            if (why := missing(engine)) is not None and engine not in told:
                console.print(f"{engine} skipped: {why}")
                told.add(engine)
        with console.status(f"timing {name} ..."):
            rows = compare(workload, engines_for(workload), args.jobs)
        for row in rows:
            table.add_row(row.workload, row.engine, f"{row.seconds:.2f}",
                          f"{row.per_trial_epoch * 1e6:.2f}", f"{row.ratio:.1f}", row.note)
    console.print(table)
    return 0


# --- end to end: what the user waits for, process start to exit -----------------------------

ROOT = Path(__file__).resolve().parent.parent
W49_SWEEP = ROOT / "sweeps" / "xor.toml"
FIGURES = ("loop", "numpy", "numpy-no-report", "numba-first", "numba-second",
           "numba-no-report", "numba-after-numpy", "report", "rerun", "jax")
FIGURE_NOTES = {
    "loop": "iamtrask's loop, 49 networks in turn (benchmarks/loop_w49.py)",
    "numpy": "nnsweep run (numpy engine), report included",
    "numpy-no-report": "nnsweep run --no-report",
    "numba-first": "nnsweep run --engine numba, empty compile cache",
    "numba-second": "the same, compiled kernels cached",
    "numba-no-report": "--engine numba --no-report, kernels cached",
    "numba-after-numpy": "--engine numba after the README's numpy run and its warm-up, caches "
                         "empty before",
    "report": "nnsweep report of the numpy run's folder",
    "rerun": "nnsweep run again over the finished numpy folder: nothing to train",
    "jax": "jit(vmap(lax.scan)), float64, compile included (benchmarks/jax_w49.py)",
}


def sweep_epochs(scale: float) -> int:
    """W49's epochs at `scale` (sweeps/xor.toml's 60000 at 1.0)."""
    return max(2, round(FULL_EPOCHS * scale))


def write_sweep(folder: Path, scale: float) -> Path:
    """sweeps/xor.toml with its epochs cut by `scale`, written into `folder`."""
    text = W49_SWEEP.read_text(encoding="utf-8")
    cut, count = re.subn(r"(?m)^epochs = \d+", f"epochs = {sweep_epochs(scale)}", text)
    if count != 1:
        raise ValueError(f"{W49_SWEEP}: expected one 'epochs = N' line to scale, found {count}")
    path = folder / "xor.toml"
    path.write_text(cut, encoding="utf-8")
    return path


def cache_env(folder: Path) -> dict[str, str]:
    """An environment whose compile caches start empty in `folder`: Numba's own variable and
    the user cache folder (XDG), which nnsweep's caches live under; matplotlib keeps its font
    cache where it is, so a first run measures compiling, not fonts."""
    env = dict(os.environ)
    home = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env.setdefault("MPLCONFIGDIR", str(home / "matplotlib"))
    env["NUMBA_CACHE_DIR"] = str(folder / "numba")
    env["XDG_CACHE_HOME"] = str(folder)
    return env


def time_process(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Seconds from starting `argv` (python and its arguments) to its exit, as a shell's
    `time` reports it; a failed command raises with its output."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def wait_for_warm_up(timeout: float = 600.0) -> None:
    """Until no process compiles kernels ahead (nnsweep.warmup, started by a numpy run)."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["pgrep", "-f", "nnsweep[.]warmup"], capture_output=True,
                         check=False).returncode == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up process has not ended")
        time.sleep(0.2)


class EndToEnd:
    """W49 end to end, each figure a process timed from start to exit, measured once, when
    first asked for, in `folder`; figures that need another's folder or cache measure it
    first, so any figure can be asked for alone and every ratio is of the same run."""

    def __init__(self, folder: Path, scale: float = 1.0) -> None:
        self.folder, self.scale = folder, scale
        self.sweep = write_sweep(folder, scale)
        self.numba_env = cache_env(folder / "numba-cache")
        self._seconds: dict[str, float] = {}

    def _nnsweep(self, *args: str, env: dict[str, str] | None = None) -> float:
        return time_process(["-m", "nnsweep", *args], env)

    def _run(self, out: str, *flags: str, env: dict[str, str] | None = None) -> float:
        return self._nnsweep("run", str(self.sweep), "--out", str(self.folder / out), *flags,
                             env=env)

    def _measure(self, figure: str) -> float:
        epochs = str(sweep_epochs(self.scale))
        if figure == "loop":
            return time_process([str(ROOT / "benchmarks" / "loop_w49.py"), epochs])
        if figure == "jax":
            return time_process([str(ROOT / "benchmarks" / "jax_w49.py"), epochs])
        if figure == "numpy":
            return self._run("numpy")
        if figure == "numpy-no-report":
            return self._run("numpy-no-report", "--no-report")
        if figure == "numba-first":
            return self._run("numba-first", "--engine", "numba", env=self.numba_env)
        if figure == "numba-second":
            self.get("numba-first")
            return self._run("numba-second", "--engine", "numba", env=self.numba_env)
        if figure == "numba-no-report":
            self.get("numba-first")
            return self._run("numba-no-report", "--engine", "numba", "--no-report",
                             env=self.numba_env)
        if figure == "numba-after-numpy":
            env = {**cache_env(self.folder / "readme-cache"), warmup.ENV: "1"}
            self._run("readme-numpy", env=env)  # the README's first run, on a fresh install
            wait_for_warm_up()  # as a user reads the report
            return self._run("numba-after-numpy", "--engine", "numba", env=env)
        if figure == "report":
            self.get("numpy")
            return self._nnsweep("report", str(self.folder / "numpy"))
        if figure == "rerun":
            self.get("numpy")
            return self._run("numpy")
        raise ValueError(f"unknown figure {figure!r}; expected one of {', '.join(FIGURES)}")

    def record(self, figure: str, seconds: float) -> None:
        self._seconds[figure] = seconds

    def get(self, figure: str) -> float:
        if figure not in self._seconds:
            self.record(figure, self._measure(figure))
        return self._seconds[figure]

    def ratio(self, figure: str) -> float:
        """How many times faster than the loop, process start to exit."""
        return self.get("loop") / self.get(figure)


def end_to_end_missing(figure: str) -> str | None:
    """Why this machine cannot time `figure` (an optional package is missing); None if it can."""
    if figure.startswith("numba"):
        return missing("numba")
    if figure == "jax":
        return missing("jax")
    return None


def end_to_end_rows(e2e: EndToEnd) -> list[Row]:
    """Every figure this machine can time, as rows of the table (per trial-epoch: 49 trials)."""
    trial_epochs = len(ALPHAS) * len(WIDTHS) * sweep_epochs(e2e.scale)
    rows = []
    for figure in FIGURES:
        if (why := end_to_end_missing(figure)) is not None:
            rows.append(Row("W49 end to end", figure, math.nan, math.nan, math.nan, why))
            continue
        seconds = e2e.get(figure)
        rows.append(Row("W49 end to end", figure, seconds, seconds / trial_epochs,
                        e2e.ratio(figure), FIGURE_NOTES[figure]))
    return rows


def print_end_to_end(scale: float) -> int:
    """The end-to-end table of benchmarks/test_end_to_end.py, measured in a temporary folder."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"W49 end to end, {sweep_epochs(scale)} epochs, against the loop",
                  caption=f"{machine()}; {versions()}; load {os.getloadavg()[0]:.1f} at the start")
    for column in ("figure", "seconds", "x loop", "note"):
        table.add_column(column, justify="right" if column[0] in "sx" else "left")
    with tempfile.TemporaryDirectory(prefix="nnsweep-e2e-") as folder:
        e2e = EndToEnd(Path(folder), scale)
        for figure in FIGURES:
            if end_to_end_missing(figure) is None:
                with console.status(f"timing {figure} ..."):
                    e2e.get(figure)
        rows = end_to_end_rows(e2e)
    for row in rows:
        table.add_row(row.engine, f"{row.seconds:.2f}", f"{row.ratio:.1f}", row.note)
    console.print(table)
    return 0
