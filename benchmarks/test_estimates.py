"""Estimates that hold: `nnsweep validate` says how long a sweep will take, `nnsweep run` then
takes it, each a process timed from start to exit, report included; the two agree within
AGREEMENT either way on W49, W490, W4900 and every example sweep of sweeps/, and on
W4900-history: W4900 recorded every 10 epochs, whose 2.9 million history rows weigh on the
tables and the report as much as its training does.

`--bench-scale` cuts W49's and W490's 60000 epochs and W4900's 6000 (the examples run as they
are; W4900-history records every epoch below a tenth, so that its trials keep up to 601 rows):
the estimate models the fixed costs as well as the training, so it is asserted at every
scale. validate prints whole seconds below 90 s and whole minutes below 90 minutes, which the
comparison allows for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import harness
import pytest

AGREEMENT = 1.5
ROOT = harness.ROOT
EXAMPLES = sorted(p.name for p in (ROOT / "sweeps").glob("*.toml") if p.name != "xor.toml")
WORKLOADS = ["W49", "W49-numba", "W490", "W4900", "W4900-history", *EXAMPLES]
ABOUT = re.compile(r"about (\d+(?:\.\d+)?) (s|min|h) on")
UNIT = {"s": 1.0, "min": 60.0, "h": 3600.0}


def sweep_file(folder: Path, workload: str, scale: float) -> Path:
    """The workload's sweep file: W49 as sweeps/xor.toml (W49-numba with [run] engine =
    "numba"), W490 and W4900 with 10 and 100 seeds on a grid axis, epochs cut by `scale`; an
    example as it is."""
    if workload in EXAMPLES:
        return ROOT / "sweeps" / workload
    seeds, epochs = {"W49": (1, 60_000), "W49-numba": (1, 60_000), "W490": (10, 60_000),
                     "W4900": (100, 6_000), "W4900-history": (100, 6_000)}[workload]
    text = harness.W49_SWEEP.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^epochs = \d+", f"epochs = {max(2, round(epochs * scale))}", text)
    if workload == "W4900-history":
        every = max(1, round(10 * scale))
        text = re.sub(r"(?m)^record_every = \d+", f"record_every = {every}", text)
    if seeds > 1:
        text = re.sub(r"(?m)^seed = 1\n", "", text)
        text = text.replace("[grid]\n", f"[grid]\nseed = {{ range = [1, {seeds + 1}] }}\n")
    if workload.endswith("-numba"):  # its compile cache as the user's: warm or cold, counted
        text += '\n[run]\nengine = "numba"\n'
    path = folder / f"{workload}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def estimate(spec: Path) -> tuple[float, float]:
    """validate's estimate in seconds, and how far its rounding may be from what it meant."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "nnsweep", "validate", str(spec)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    found = ABOUT.search(done.stdout)
    assert found, f"validate printed no estimate: {done.stdout!r}"
    unit = UNIT[found.group(2)]
    return float(found.group(1)) * unit, unit / 2


@pytest.mark.parametrize("workload", WORKLOADS)
def test_validate_estimates_the_run_within_1_5x(benchmark: Any, bench_scale: float,
                                                 tmp_path: Path, workload: str) -> None:
    if workload.endswith("-numba") and (why := harness.missing("numba")) is not None:
        pytest.skip(f"numba: {why}")
    spec = sweep_file(tmp_path, workload, bench_scale)
    estimated, rounding = estimate(spec)
    benchmark.group = "estimates"
    measured = benchmark.pedantic(harness.time_process,
                                  args=(["-m", "nnsweep", "run", str(spec), "--out",
                                         str(tmp_path / "out")],),
                                  rounds=1, iterations=1)
    info = benchmark.extra_info
    info.update(estimated=estimated, measured=measured, ratio=estimated / measured,
                load_average=os.getloadavg()[0])
    low, high = max(0.0, estimated - rounding), estimated + rounding
    assert high >= measured / AGREEMENT and low <= measured * AGREEMENT, (
        f"validate said about {estimated:.0f} s, the run took {measured:.1f} s")
