"""Benchmark-suite options and the measurements shared by its tests.

Run explicitly (the default test run collects tests/ only):

    .venv/bin/pytest benchmarks/ --benchmark-json=benchmarks/latest.json

`--bench-scale 0.5` halves every workload's epochs for a quicker, noisier run.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import JOBS, Measurements, has


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any,
                                 output_json: dict[str, Any]) -> None:
    """Record the versions that decide the figures next to the machine pytest-benchmark saves."""
    import numpy

    versions = {"numpy": numpy.__version__}
    for name in ("numba", "jax"):
        if has(name):
            versions[name] = __import__(name).__version__
    output_json["versions"] = versions


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-scale", type=float, default=1.0,
                     help="fraction of the benchmark workloads' epochs (default 1.0)")


@pytest.fixture(scope="session")
def bench_scale(request: pytest.FixtureRequest) -> float:
    return float(request.config.getoption("--bench-scale"))


@pytest.fixture(scope="session")
def measured(bench_scale: float) -> Measurements:
    """The run's timings, (workload, engine) -> Timing: what test_speed timed, and whatever a
    figure needs that no test timed before it (a figure run alone measures its own loop)."""
    return Measurements(bench_scale, JOBS)
