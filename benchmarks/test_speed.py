"""The engines against the plain loop: every figure of benchmarks/README.md, with its goal.

`test_speed` times each engine on each workload as a pytest-benchmark group, the loop and
every engine side by side, and records the figures the table shows. The tests after it assert
each figure against its goal. Every figure is a ratio of one run: the timings come from the
session's `measured`, which measures on first request what no test timed before, so a figure
run alone (with -k) measures its own loop, and a whole run measures each timing once.

Ratios compare seconds per trial-epoch: the loop trains a sample of each workload (the same
mix of shapes) for fewer epochs than the engines, so the suite stays a few minutes long.
Speed goals hold for workloads of the suite's size: below --bench-scale 0.5 the engines'
fixed costs (starting a batch on a worker, a compiled call) outweigh the training and the
speed figures are not asserted; agreement and memory are asserted at every scale.
"""

from __future__ import annotations

import math
import os
from typing import Any

import harness
import pytest
from harness import Measurements

CASES = [
    (workload, engine)
    for workload, engines in {
        "W49": ["reference", "numpy", "numba", "plain-numba", "jax"],
        "W490": ["reference", "numpy", "numba", "plain-numba", "jax"],
        "W4900": ["reference", "numpy", "numba"],
        "streetlights": ["reference", "numpy", "numba"],
        "rectangles-minibatch": ["reference", "numpy", "numba"],
        "rectangles-stochastic": ["reference", "numpy", "numba"],
        "width": ["reference", "numpy", "numba"],
        "depth": ["reference", "numpy", "numba"],
        "digits": ["reference", "numpy", "numba", "jax"],
    }.items()
    for engine in engines
]
WORKLOADS = list(dict.fromkeys(workload for workload, _ in CASES))
ROW_BY_ROW_AND_IN_BATCHES = ["streetlights", "rectangles-minibatch", "rectangles-stochastic"]
SPEED_GOALS_FROM_SCALE = 0.5
GIB = 2**30


def needs(*engines: str, workload: str | None = None) -> None:
    """Skip, saying why, where an engine's optional package is not installed, or where the
    workload's data or rules are beyond what this install has."""
    for engine in engines:
        if (why := harness.missing(engine, workload)) is not None:
            pytest.skip(f"{engine}: {why}")


@pytest.fixture
def speed(measured: Measurements) -> Measurements:
    """The run's timings, for a speed goal: skipped where the workloads are too short to time."""
    if measured.scale < SPEED_GOALS_FROM_SCALE:
        pytest.skip(f"--bench-scale {measured.scale:g}: runs this short time the engines' "
                    f"fixed costs, not their speed; the speed goals are asserted from "
                    f"--bench-scale {SPEED_GOALS_FROM_SCALE:g} up")
    return measured


@pytest.mark.parametrize(("workload", "engine"), CASES, ids=[f"{w}-{e}" for w, e in CASES])
def test_speed(benchmark: Any, measured: Measurements, workload: str, engine: str) -> None:
    needs(engine, workload=workload)
    benchmark.group = workload
    timing = benchmark.pedantic(harness.measure, args=(measured.workloads[workload], engine,
                                                       measured.jobs), rounds=1, iterations=1)
    measured.record(workload, engine, timing)
    info = benchmark.extra_info
    info["trial_epochs"] = timing.trial_epochs
    info["us_per_trial_epoch"] = timing.per_trial_epoch * 1e6
    info["peak_mib"] = timing.peak_bytes / 2**20
    info["load_average"] = os.getloadavg()[0]  # the machine may be shared
    if engine != "reference":
        info["x_loop"] = measured.ratio(workload, engine)
    if engine == "numba":
        off = [gap for _, gap in measured.differing(workload)]
        info["trials_differing_from_numpy"] = len(off)
        info["largest_difference"] = max(off, default=0.0)


# --- 1. the NumPy engine -------------------------------------------------------------------

@pytest.mark.parametrize("workload", ["W49", "W490", "W4900"])
def test_numpy_engine_with_two_jobs_is_8x_the_loop(speed: Measurements, workload: str) -> None:
    assert speed.ratio(workload, "numpy") >= 8


@pytest.mark.parametrize("workload", ROW_BY_ROW_AND_IN_BATCHES)
def test_numpy_engine_is_5x_the_loop_row_by_row_and_in_batches(
    speed: Measurements, workload: str
) -> None:
    assert speed.ratio(workload, "numpy") >= 5


# --- 2. the Numba engine -------------------------------------------------------------------

@pytest.mark.parametrize("workload", ["W49", "W490", "W4900"])
def test_numba_engine_is_25x_the_loop(speed: Measurements, workload: str) -> None:
    needs("numba")
    assert speed.ratio(workload, "numba") >= 25


@pytest.mark.parametrize("workload", ["W49", "W490"])
@pytest.mark.parametrize("baseline", ["plain-numba", "jax"])
def test_numba_engine_is_ahead_of_the_baselines(
    speed: Measurements, workload: str, baseline: str
) -> None:
    needs("numba", baseline)
    assert speed.ratio(workload, "numba") > speed.ratio(workload, baseline)


@pytest.mark.parametrize("workload", ROW_BY_ROW_AND_IN_BATCHES)
def test_numba_engine_is_10x_the_loop_row_by_row_and_in_batches(
    speed: Measurements, workload: str
) -> None:
    needs("numba")
    assert speed.ratio(workload, "numba") >= 10


@pytest.mark.parametrize("workload", WORKLOADS)
def test_numba_engine_agrees_with_numpy_but_on_chaotic_trials(
    measured: Measurements, workload: str
) -> None:
    """Within DRIFT (1e-9) on every trial but the chaotic ones (harness.chaotic), which may
    differ in value but keep their recorded epochs and the epoch they diverge at."""
    needs("numba", workload=workload)
    differing = measured.differing(workload)
    tame = [(trial, gap) for trial, gap in differing if not harness.chaotic(trial)]
    astray = [(trial, gap) for trial, gap in differing if not math.isfinite(gap)]
    assert tame == [], f"{len(tame)} trials that are not chaotic differ by > {harness.DRIFT:g}"
    assert astray == [], f"{len(astray)} trials differ in epochs, convergence or divergence"


# --- 3. scaling and memory -----------------------------------------------------------------

@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_cost_per_trial_epoch_is_flat_from_w490_to_w4900(speed: Measurements, engine: str
                                                         ) -> None:
    needs(engine)
    small = speed.get("W490", engine).per_trial_epoch
    large = speed.get("W4900", engine).per_trial_epoch
    assert large <= 1.2 * small


@pytest.mark.parametrize(("engine", "jobs"), [("numpy", harness.JOBS), ("numba", 1)])
def test_w4900_peak_memory_is_under_1_gib(engine: str, jobs: int) -> None:
    needs(engine)
    # a history of 600 rows per trial, as 60000 epochs recorded every 100
    assert harness.peak_memory("W4900-memory", 1.0, engine, jobs) < GIB


@pytest.mark.parametrize(("workload", "engine"), CASES, ids=[f"{w}-{e}" for w, e in CASES])
def test_no_workload_takes_1_gib(measured: Measurements, workload: str, engine: str) -> None:
    """The peak the table notes: the largest resident set of any process that trained."""
    needs(engine, workload=workload)
    assert measured.get(workload, engine).peak_bytes < GIB


# --- 4. every other workload ------------------------------------------------------------------

@pytest.mark.parametrize("workload", ["width", "depth"])
@pytest.mark.parametrize(("engine", "goal"), [("numpy", 2), ("numba", 5)])
def test_both_engines_gain_on_the_loop_at_every_width_and_depth(
    speed: Measurements, workload: str, engine: str, goal: float
) -> None:
    needs(engine)
    assert speed.ratio(workload, engine) >= goal


# --- 5. a classifier as people train one ------------------------------------------------------

def test_numba_engine_is_ahead_of_jax_on_the_digits(speed: Measurements) -> None:
    """Softmax, cross-entropy, adam in minibatches of 32: the compiled engine against the same
    training written in JAX (jax.grad, vmap over each width's trials, lax.scan over steps)."""
    needs("numba", "jax", workload="digits")
    assert speed.ratio("digits", "numba") > speed.ratio("digits", "jax")


def test_numpy_engine_keeps_up_with_the_loop_on_the_digits(speed: Measurements) -> None:
    """Six trials of a width share each step's arrays: minibatch steps of 32 rows leave the
    NumPy engine little to batch, so the goal is to lose nothing against the loop."""
    needs("numpy", workload="digits")
    assert speed.ratio("digits", "numpy") >= 1
