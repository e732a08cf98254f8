"""W49 as the user sees it: every figure a process timed from its start to its exit.

iamtrask's loop over the 49 networks (a script), `nnsweep run` with each engine, with and
without the report, the Numba engine with an empty compile cache and then a warm one, the
report alone, a rerun with nothing to train, and the same networks in JAX (compilation
included). Start-up, planning, journal, tables, plots and report all count, as they do for
whoever runs the command. Every ratio is of one run (`e2e`, measured once per figure).

`--bench-scale` cuts the sweep's 60000 epochs (a copy of sweeps/xor.toml is run); below
SPEED_GOALS_FROM_SCALE the fixed costs (start-up, compiling, the report) outweigh training,
so the speed goals are skipped, saying so; the rerun's goal is asserted at every scale (a
smaller sweep only makes it easier).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import harness
import pytest
from harness import FIGURES, EndToEnd

SPEED_GOALS_FROM_SCALE = 0.5
RERUN_SECONDS = 2.0
COMPILE_SECONDS = 3.0


@pytest.fixture(scope="session")
def e2e(bench_scale: float, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndToEnd]:
    yield EndToEnd(tmp_path_factory.mktemp("end-to-end"), bench_scale)


def needs(*figures: str) -> None:
    for figure in figures:
        if (why := harness.end_to_end_missing(figure)) is not None:
            pytest.skip(f"{figure}: {why}")


@pytest.fixture
def speed(e2e: EndToEnd) -> EndToEnd:
    """The run's figures, for a speed goal: skipped where the sweep is too short to time."""
    if e2e.scale < SPEED_GOALS_FROM_SCALE:
        pytest.skip(f"--bench-scale {e2e.scale:g}: {harness.sweep_epochs(e2e.scale)} epochs "
                    f"time nnsweep's fixed costs (start-up, compiling, the report), not its "
                    f"speed; the speed goals are asserted from --bench-scale "
                    f"{SPEED_GOALS_FROM_SCALE:g} up")
    return e2e


@pytest.mark.parametrize("figure", FIGURES)
def test_end_to_end(benchmark: Any, e2e: EndToEnd, figure: str) -> None:
    needs(figure)
    benchmark.group = "W49 end to end"
    seconds = benchmark.pedantic(e2e.get, args=(figure,), rounds=1, iterations=1)
    info = benchmark.extra_info
    info["seconds"] = seconds
    info["epochs"] = harness.sweep_epochs(e2e.scale)
    info["load_average"] = os.getloadavg()[0]  # the machine may be shared
    info["x_loop"] = e2e.ratio(figure)


def test_numpy_run_with_its_report_is_10x_the_loop(speed: EndToEnd) -> None:
    assert speed.ratio("numpy") >= 10


def test_first_numba_run_compiling_included_is_25x_the_loop(speed: EndToEnd) -> None:
    needs("numba-first")
    assert speed.ratio("numba-first") >= 25


def test_first_numba_run_is_ahead_of_jax(speed: EndToEnd) -> None:
    needs("numba-first", "jax")
    assert speed.get("numba-first") < speed.get("jax")


def test_report_takes_under_a_tenth_of_numba_training(speed: EndToEnd) -> None:
    needs("numba-no-report")
    assert speed.get("report") < 0.1 * speed.get("numba-no-report")


def test_a_compiled_run_after_the_readmes_first_run_compiles_for_at_most_3_s(
        e2e: EndToEnd) -> None:
    """The README's first command runs the NumPy engine, which compiles the compiled engine's
    kernels for the sweep in the background (nnsweep.warmup): the first `--engine numba` run
    after it takes at most COMPILE_SECONDS more than one whose kernels were cached already.
    Asserted at every scale: compiling does not scale with the epochs."""
    needs("numba-after-numpy", "numba-second")
    assert e2e.get("numba-after-numpy") - e2e.get("numba-second") <= COMPILE_SECONDS


def test_rerun_with_nothing_to_train_takes_under_2_s(e2e: EndToEnd) -> None:
    assert e2e.get("rerun") < RERUN_SECONDS


def test_rerun_trains_nothing(e2e: EndToEnd) -> None:
    """The rerun's figure is of a rerun: its invocation trained nothing and reused all 49."""
    e2e.get("rerun")
    manifest = json.loads((e2e.folder / "numpy" / "manifest.json").read_text("utf-8"))
    assert [(i["trained"], i["reused"]) for i in manifest["invocations"]] == [(49, 0), (0, 49)]
