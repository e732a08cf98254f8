"""Benchmark-suite options and the measurements shared by its tests.

Run explicitly (the default test run collects tests/ only):

    .venv/bin/pytest benchmarks/ --benchmark-json=benchmarks/latest.json

`--bench-scale 0.5` halves every workload's epochs for a quicker, noisier run.
"""

from __future__ import annotations

import pytest

from nnsweep.bench import Timing


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-scale", type=float, default=1.0,
                     help="fraction of the benchmark workloads' epochs (default 1.0)")


@pytest.fixture(scope="session")
def bench_scale(request: pytest.FixtureRequest) -> float:
    return float(request.config.getoption("--bench-scale"))


@pytest.fixture(scope="session")
def measured() -> dict[tuple[str, str], Timing]:
    """(workload, engine) -> its timing, for the figures asserted at the end of the run."""
    return {}
