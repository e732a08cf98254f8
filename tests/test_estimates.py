"""Time estimates: the probe's fit, the calibration, the plan's parts and the progress eta,
each from timings injected here, so every figure is exact and none depends on this machine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import reduced_xor

import nnsweep
from nnsweep import planner
from nnsweep.batching import Speed, batch_key, epoch_terms, estimate_seconds
from nnsweep.datasets import Dataset
from nnsweep.grid import Trial
from nnsweep.params import TrialParams
from nnsweep.planner import Calibration, ProbeRun
from nnsweep.progress import ProgressReporter, clock_text, eta_seconds
from nnsweep.result import TrialResult

MACHINE = Speed(per_call=6e-6, per_value=3e-9)  # a made-up machine, 4x and 1.5x the reference


class FakeClock:
    """A clock that moves only when the fake trainer says its work took time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def modelled(trials: Sequence[TrialParams], rows: int, speed: Speed) -> float:
    calls, values = epoch_terms(trials, rows)
    return trials[0].epochs * (calls * speed.per_call + values * speed.per_value)


def fake_trainer(clock: FakeClock, speeds: dict[str, Speed], trained: list[str],
                 adam: float = 1.0) -> Callable[[str], planner.Train]:
    """Trains at `speeds[engine]`, an adam batch `adam` times slower than the model says."""
    def trainer(engine: str) -> planner.Train:
        def train(x: np.ndarray, y: np.ndarray, trials: Sequence[TrialParams],
                  validation: object = None) -> list[TrialResult]:
            slower = adam if trials[0].optimizer == "adam" else 1.0
            clock.now += slower * modelled(trials, len(y), speeds[engine])
            trained.append(engine)
            return []

        return train

    return trainer


def test_the_fit_recovers_the_coefficients_the_runs_were_timed_at() -> None:
    runs = [ProbeRun(planner.probe_trials(hidden, epochs), 4,
                     modelled(planner.probe_trials(hidden, epochs), 4, MACHINE))
            for hidden, epochs in [(4, 3000), (128, 500)]]
    fitted = planner.fit_speed(runs)
    assert fitted.per_call == pytest.approx(MACHINE.per_call, rel=1e-9)
    assert fitted.per_value == pytest.approx(MACHINE.per_value, rel=1e-9)


def test_a_fit_never_makes_a_coefficient_negative() -> None:
    """Runs that one term explains alone (here, arithmetic only) fit that term alone."""
    arithmetic = Speed(per_call=0.0, per_value=5e-9)
    runs = [ProbeRun(planner.probe_trials(h, 1000), 4,
                     modelled(planner.probe_trials(h, 1000), 4, arithmetic) * (0.9 if h == 4
                                                                               else 1.0))
            for h in (4, 128)]
    fitted = planner.fit_speed(runs)
    assert fitted.per_call == 0.0 and fitted.per_value > 0


def test_the_probe_grows_each_run_until_it_takes_about_its_budget() -> None:
    clock = FakeClock()
    train = fake_trainer(clock, {"numpy": MACHINE}, [])("numpy")
    runs = planner.probe(train, clock=clock, budget=0.2)
    assert [run.trials[0].hidden for run in runs] == [(4,), (128,)]
    assert all(run.seconds >= 0.1 for run in runs)
    assert planner.fit_speed(runs).per_call == pytest.approx(MACHINE.per_call, rel=1e-9)


def test_calibration_measures_the_engine_that_will_run_and_numpy_for_the_fixed_costs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(planner, "uncompiled_kernels", lambda kernels: 0)
    clock, trained = FakeClock(), []
    compiled = Speed(per_call=1e-7, per_value=1e-9)
    trainer = fake_trainer(clock, {"numpy": MACHINE, "numba": compiled}, trained)
    calibration = planner.calibrate("numba", clock=clock, trainer=trainer, load=lambda: 3.0)
    assert set(trained) == {"numpy", "numba"}
    assert calibration.speed.per_call == pytest.approx(compiled.per_call, rel=1e-9)
    assert calibration.speed.per_value == pytest.approx(compiled.per_value, rel=1e-9)
    slow = planner.slowdown(planner.probe(trainer("numpy"), clock=clock))
    assert calibration.slowdown == pytest.approx(slow, rel=1e-9)
    assert 1.5 < calibration.slowdown < 4  # between MACHINE's two ratios to the reference
    assert calibration.load == 3.0 and calibration.uncompiled == 0


def test_a_cold_numba_cache_is_not_compiled_by_the_estimate_but_counted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(planner, "uncompiled_kernels", lambda kernels: len(set(kernels)))
    clock, trained = FakeClock(), []
    trainer = fake_trainer(clock, {"numpy": MACHINE}, trained)
    trials = [TrialParams(activation=a, output="sigmoid") for a in ("relu", "tanh", "relu")]
    calibration = planner.calibrate("numba", trials, clock=clock, trainer=trainer,
                                    load=lambda: 0.0)
    assert set(trained) == {"numpy"} and calibration.uncompiled == 2
    assert calibration.speed.per_value == pytest.approx(
        planner.NUMBA_SPEED.per_value * calibration.slowdown)


@pytest.fixture(scope="module")
def xor_plan(tmp_path_factory: pytest.TempPathFactory) -> planner.Plan:
    spec = nnsweep.load_spec(reduced_xor(tmp_path_factory.mktemp("xor"), 6000))
    return planner.outline(spec, jobs=2)


def calibration(**changes: object) -> Calibration:
    base = Calibration("numpy", MACHINE, 2.0, load=0.0, cores=2)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_an_estimate_is_its_parts_and_each_part_scales_with_the_machine(
        xor_plan: planner.Plan) -> None:
    part = xor_plan.estimate(4, calibration())
    assert part.total == pytest.approx(part.start + part.workers + part.training + part.tables
                                       + part.report)
    assert part.until_trained == pytest.approx(part.workers + part.training)
    assert min(part.start, part.workers, part.training, part.tables, part.report) > 0
    slower = xor_plan.estimate(4, calibration(slowdown=4.0))
    assert slower.start == pytest.approx(2 * part.start)
    assert slower.workers == pytest.approx(2 * part.workers)
    assert slower.report == pytest.approx(2 * part.report)
    assert slower.training == part.training  # the engine's own coefficients time training
    doubled = Speed(2 * MACHINE.per_call, 2 * MACHINE.per_value)
    assert xor_plan.estimate(4, calibration(speed=doubled)).training == pytest.approx(
        2 * part.training)


def test_no_report_leaves_out_the_report_and_nothing_to_train_costs_only_the_start(
        xor_plan: planner.Plan) -> None:
    assert xor_plan.estimate(4, calibration(), report=False).report == 0
    done = replace(xor_plan, pending=[], batches=[])
    rerun = done.estimate(4, calibration())
    assert rerun.workers == rerun.training == rerun.tables == rerun.report == 0
    assert rerun.total == pytest.approx(calibration().slowdown * planner.START_SECONDS)


def test_compiling_and_a_busy_machine_are_counted(xor_plan: planner.Plan) -> None:
    part = xor_plan.estimate(4, calibration(engine="numba"))
    cold = xor_plan.estimate(4, calibration(engine="numba", uncompiled=2))
    assert cold.workers - part.workers == pytest.approx(2 * 2.0 * planner.COMPILE_SECONDS)
    busy = xor_plan.estimate(4, calibration(load=2.0))  # two busy processes on two cores
    assert busy.training == pytest.approx(2 * part.training)
    assert busy.report == pytest.approx(1.5 * part.report)  # one more process on two cores


def test_the_eta_starts_from_the_estimate_and_moves_to_the_pace_of_the_trials_done() -> None:
    assert eta_seconds(None, 5.0, 0.0) is None
    assert eta_seconds(100.0, 30.0, 0.0) == 70.0
    assert eta_seconds(100.0, 130.0, 0.0) == 0.0
    # half done in 100 s, against an estimate of 100 s for all: halfway to the pace's 100 s
    assert eta_seconds(100.0, 100.0, 0.5) == pytest.approx(50.0)
    assert eta_seconds(None, 100.0, 0.5) == pytest.approx(100.0)
    assert eta_seconds(100.0, 100.0, 1.0) == 0.0


def test_the_bar_shows_the_estimate_before_any_batch_returns() -> None:
    clock = FakeClock()
    progress = ProgressReporter(49, estimate=125.0, clock=clock)
    clock.now = 5.0
    assert progress.seconds_left() == 120.0
    assert clock_text(progress.seconds_left()) == "0:02:00"
    progress.advance(["converged"] * 49)
    assert progress.seconds_left() == 0.0
    assert clock_text(None) == "-:--:--"


def test_reused_trials_are_not_pace() -> None:
    clock = FakeClock()
    progress = ProgressReporter(10, reused=8, estimate=None, clock=clock)
    clock.now = 10.0
    progress.advance(["converged"])  # one of the two to train, in 10 s
    assert progress.seconds_left() == pytest.approx(10.0)


def test_an_engine_that_cannot_run_here_is_estimated_as_numpy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner.engines, "installed", lambda: ["numpy"])
    clock = FakeClock()
    trainer = fake_trainer(clock, {"numpy": MACHINE}, [])
    calibration = planner.calibrate("numba", clock=clock, trainer=trainer, load=lambda: 0.0)
    assert calibration.engine == "numpy"


@pytest.mark.parametrize(("validating", "uncompiled"), [(False, 1), (True, 2)])
def test_each_kernel_a_sweep_compiles_counts_its_features(
        monkeypatch: pytest.MonkeyPatch, validating: bool, uncompiled: int) -> None:
    """The plain loop's kernel cached, an adam sweep still compiles adam's; with held-out rows,
    both kernels measure them, and neither is cached."""
    engine_numba = pytest.importorskip("nnsweep.engine_numba")
    monkeypatch.setattr(engine_numba, "is_cached",
                        lambda hidden, output, variant: variant == engine_numba.PLAIN)
    clock = FakeClock()
    trainer = fake_trainer(clock, {"numpy": MACHINE, "numba": MACHINE}, [])
    trials = [TrialParams(), TrialParams(optimizer="adam"), TrialParams(optimizer="adam", seed=1)]
    calibration = planner.calibrate("numba", trials, clock=clock, trainer=trainer,
                                    load=lambda: 0.0, dataset=xor_data(held_out=validating))
    assert calibration.uncompiled == uncompiled
    # only a cached kernel is probed on the data: the plain loop's, without held-out rows
    assert len(calibration.keyed) == (0 if validating else 1)


def xor_data(*, held_out: bool = False) -> Dataset:
    x = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return Dataset("xor", x, y, x_val=x if held_out else None, y_val=y if held_out else None)


def test_each_batch_key_is_timed_on_the_sweeps_data_and_estimated_at_its_own_speed() -> None:
    """The XOR probe cannot tell what an optimizer, a loss or the data's shape cost: a key
    three times slower than the model says is probed on the data and estimated so."""
    clock, trained = FakeClock(), []
    trainer = fake_trainer(clock, {"numpy": MACHINE}, trained, adam=3.0)
    trials = [TrialParams(hidden=(h,), epochs=2000, optimizer=o, seed=s)
              for h in (4, 64) for o in ("sgd", "adam") for s in (1, 2)]
    calibration = planner.calibrate("numpy", trials, clock=clock, trainer=trainer,
                                    load=lambda: 0.0, dataset=xor_data())
    sgd, adam = batch_key(trials[0]), batch_key(trials[2])
    assert set(calibration.keyed) == {sgd, adam}
    assert calibration.keyed[sgd].per_call == pytest.approx(MACHINE.per_call, rel=1e-9)
    assert calibration.keyed[adam].per_call == pytest.approx(3 * MACHINE.per_call, rel=1e-9)
    assert calibration.keyed[adam].per_value == pytest.approx(3 * MACHINE.per_value, rel=1e-9)
    plan = [[Trial(str(n), t) for n, t in enumerate(trials) if t.optimizer == o]
            for o in ("sgd", "adam")]
    one_worker = estimate_seconds(plan, 1, 4, calibration.speed, calibration.keyed)
    assert one_worker == pytest.approx(modelled(trials[:2] + trials[4:6], 4, MACHINE)
                                       + 3 * modelled(trials[2:4] + trials[6:], 4, MACHINE))


def test_a_probed_key_trains_its_narrowest_trial_alone_and_its_widest_together() -> None:
    clock, seen = FakeClock(), []

    def train(x: np.ndarray, y: np.ndarray, trials: Sequence[TrialParams],
              validation: object = None) -> list[TrialResult]:
        seen.append(([t.hidden for t in trials], [t.alpha for t in trials], validation))
        clock.now += modelled(trials, len(y), MACHINE)
        return []

    members = [TrialParams(hidden=(h,), alpha=a, epochs=500)
               for h in (8, 2, 32) for a in (1.0, 0.5, 0.1, 3.0, 0.3)]
    data = xor_data(held_out=True)
    runs = planner.probe_key(train, members, data, clock=clock, budget=0.05)
    assert [run.trials[0].hidden for run in runs] == [(2,), (32,)]
    assert [len(run.trials) for run in runs] == [1, 4]
    assert [t.alpha for t in runs[1].trials] == [0.1, 0.3, 0.5, 1.0]  # the gentlest rates
    assert all(run.trials[0].epochs <= 500 for run in runs)
    # the held-out rows measured too, as a run measures them
    assert all(v is not None and v[0] is data.x_val for _, _, v in seen)


def test_the_datas_loading_and_held_out_figures_are_counted(xor_plan: planner.Plan) -> None:
    part = xor_plan.estimate(4, calibration())
    loaded = xor_plan.estimate(4, calibration(), loading=1.5)
    assert loaded.start == pytest.approx(part.start + 1.5)  # measured here: not scaled
    held = xor_plan.estimate(4, calibration(), held_out=True)
    assert held.report == pytest.approx(part.report + 2.0 * planner.REPORT_HELD_OUT_SECONDS)


def test_the_load_counted_is_what_runs_now_not_the_minute_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that just ended still weighs on the load average for a minute; the runnable count
    does not. It counts the other processes, not this one."""
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.90 2.10 1.20 3/412 4242\n", encoding="ascii")
    assert planner.busy_processes(samples=2, interval=0.0, source=loadavg) == 2.0
    monkeypatch.setattr(planner.os, "getloadavg", lambda: (1.25, 1.0, 1.0))
    assert planner.busy_processes(source=tmp_path / "no-proc") == 1.25
