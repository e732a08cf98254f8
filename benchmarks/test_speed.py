"""Issue 3's figures: each workload is a pytest-benchmark group with the plain loop and every
engine side by side; the last tests assert the ratios measured in this same run.

Ratios compare seconds per trial-epoch: the loop trains a sample of each workload (the same
mix of shapes) for fewer epochs than the engines, so the suite stays a few minutes long.
"""

from __future__ import annotations

import os
from typing import Any

import harness
import pytest
from harness import Timing, Workload

Measured = dict[tuple[str, str], Timing]

JOBS = 2  # the NumPy engine's workers, as `--jobs 2`
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
    }.items()
    for engine in engines
]


def _measure(workload: Workload, engine: str) -> Timing:
    if engine == "reference":
        return harness.time_reference(workload)
    if engine == "numpy":
        return harness.time_engine(workload, "numpy", JOBS)
    if engine == "numba":
        return harness.time_engine(workload, "numba", 1)
    if engine == "plain-numba":
        return harness.time_plain_numba(workload)
    return harness.time_jax(workload)


@pytest.mark.parametrize(("workload_name", "engine"), CASES,
                         ids=[f"{w}-{e}" for w, e in CASES])
def test_speed(
    benchmark: Any, bench_scale: float, measured: Measured, workload_name: str, engine: str
) -> None:
    needs = {"numba": "numba", "plain-numba": "numba", "jax": "jax"}.get(engine)
    if needs and not harness.has(needs):
        pytest.skip(f"{needs} is not installed")
    workload = harness.workloads(bench_scale)[workload_name]
    benchmark.group = workload_name
    timing = benchmark.pedantic(_measure, args=(workload, engine), rounds=1, iterations=1)
    measured[workload_name, engine] = timing
    benchmark.extra_info["trial_epochs"] = timing.trial_epochs
    benchmark.extra_info["us_per_trial_epoch"] = timing.per_trial_epoch * 1e6
    benchmark.extra_info["peak_mib"] = timing.peak_bytes / 2**20
    benchmark.extra_info["load_average"] = os.getloadavg()[0]  # the machine may be shared
    reference = measured.get((workload_name, "reference"))
    if reference is not None:
        benchmark.extra_info["x_loop"] = reference.per_trial_epoch / timing.per_trial_epoch
    numpy_timing = measured.get((workload_name, "numpy"))
    if engine == "numba" and numpy_timing is not None:
        gaps = harness.drift(timing.results, numpy_timing.results)
        off = [gap for gap in gaps if gap > harness.DRIFT]
        benchmark.extra_info["trials_differing_from_numpy"] = len(off)
        benchmark.extra_info["largest_difference"] = max(off, default=0.0)


def _ratio(measured: Measured, workload: str, engine: str) -> float:
    if (workload, engine) not in measured or (workload, "reference") not in measured:
        pytest.skip(f"{workload}: {engine} or the loop was not measured in this run")
    base = measured[workload, "reference"].per_trial_epoch
    return base / measured[workload, engine].per_trial_epoch


@pytest.mark.parametrize("workload", ["W49", "W490"])
def test_numpy_engine_with_two_jobs_is_8x_the_loop(measured: Measured, workload: str) -> None:
    assert _ratio(measured, workload, "numpy") >= 8


@pytest.mark.parametrize("workload", ["W49", "W490"])
def test_numba_engine_is_25x_the_loop(measured: Measured, workload: str) -> None:
    assert _ratio(measured, workload, "numba") >= 25


@pytest.mark.parametrize("workload", ["W49", "W490"])
@pytest.mark.parametrize("baseline", ["plain-numba", "jax"])
def test_numba_engine_is_ahead_of_the_baselines(
    measured: Measured, workload: str, baseline: str
) -> None:
    assert _ratio(measured, workload, "numba") > _ratio(measured, workload, baseline)


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_cost_per_trial_epoch_is_flat_from_w490_to_w4900(measured: Measured, engine: str) -> None:
    if ("W490", engine) not in measured or ("W4900", engine) not in measured:
        pytest.skip("W490 or W4900 was not measured in this run")
    small = measured["W490", engine].per_trial_epoch
    large = measured["W4900", engine].per_trial_epoch
    assert large <= 1.2 * small


@pytest.mark.parametrize(("engine", "jobs"), [("numpy", JOBS), ("numba", 1)])
def test_w4900_peak_memory_is_under_1_gib(engine: str, jobs: int) -> None:
    if engine == "numba" and not harness.has("numba"):
        pytest.skip("numba is not installed")
    # a history of 600 rows per trial, as 60000 epochs recorded every 100
    assert harness.peak_memory("W4900-memory", 1.0, engine, jobs) < 2**30


@pytest.mark.parametrize("workload", ["streetlights", "rectangles-minibatch",
                                      "rectangles-stochastic"])
def test_numba_engine_is_10x_the_loop_row_by_row_and_in_batches(
    measured: Measured, workload: str
) -> None:
    assert _ratio(measured, workload, "numba") >= 10
