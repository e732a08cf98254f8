"""Where one `nnsweep run` spends its time: start-up, planning, training, journal, tables,
plots, report, each stage timed in the process the command line runs in.

    python benchmarks/profile_run.py sweeps/xor.toml --out /tmp/xor [run's other flags]

Stages are the library's own functions, timed by wrapping them (nothing of nnsweep changes);
training is the wait on the workers, less the journal's writes. `--probe` also prints the
machine's calibration (planner.calibrate) and the plan's estimate beside what was measured.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

STARTED = time.perf_counter()


def _timed(totals: Counter[str], stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[stage] += time.perf_counter() - began
            totals[f"{stage} cpu"] += time.process_time() - cpu

    return wrapper


def profile(argv: Sequence[str], *, probe: bool = False) -> dict[str, float]:
    """Run `nnsweep run ARGV` here; seconds by stage, 'total' from this process's start."""
    totals: Counter[str] = Counter()
    began = time.perf_counter()
    import nnsweep
    from nnsweep import __main__ as cli
    from nnsweep import planner, report, runner, store

    report_module = report
    plots = report_module.plots
    totals["imports"] = time.perf_counter() - began + (began - STARTED)
    totals["imports cpu"] = time.process_time()
    nnsweep.load_spec = _timed(totals, "spec", nnsweep.load_spec)
    planner.preflight = _timed(totals, "planning", planner.preflight)
    planner.make_plan = _timed(totals, "planning", planner.make_plan)
    runner._train = _timed(totals, "training", runner._train)
    store.append = _timed(totals, "journal", store.append)
    runner._publish = _timed(totals, "tables", runner._publish)
    plots.draw_all = _timed(totals, "plots", plots.draw_all)
    report_module.build_report = _timed(totals, "report", report_module.build_report)
    status = cli.main(["run", *argv])
    totals["total"] = time.perf_counter() - STARTED
    totals["training"] -= totals["journal"]
    totals["report"] -= totals["plots"]
    totals["training cpu"] -= totals["journal cpu"]
    totals["report cpu"] -= totals["plots cpu"]
    if status != 0:
        raise SystemExit(status)
    if probe:
        _estimate(argv, totals)
    return dict(totals)


def _estimate(argv: Sequence[str], totals: dict[str, float]) -> None:
    import nnsweep
    from nnsweep import planner

    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--engine")
    parser.add_argument("--no-report", action="store_true")
    known, _ = parser.parse_known_args(argv)
    spec = nnsweep.load_spec(known.spec)
    plan = planner.outline(spec)
    calibration = planner.calibrate(known.engine or spec.run.engine,
                                    [t.params for t in plan.pending], dataset=spec.dataset)
    part = plan.estimate(spec.dataset.rows, calibration, report=not known.no_report,
                         held_out=spec.dataset.validation is not None,
                         loading=totals.get("spec", 0.0))
    totals["slowdown"] = calibration.slowdown
    totals["load"] = calibration.load
    totals["estimate"] = part.total
    totals["estimated_training"] = part.training
    totals["history_rows"] = sum(len(range(0, t.params.epochs, t.params.record_step)) + 1
                                 for t in plan.trials)
    totals["trials"] = len(plan.trials)
    print(f"calibration: {calibration}")
    totals["estimated_start"] = part.start
    totals["estimated_tables"] = part.tables
    totals["estimated_report"] = part.report
    print(f"estimate: {part} total {part.total:.2f} s; measured {totals['total']:.2f} s")


def main() -> None:
    argv = sys.argv[1:]
    probe = "--probe" in argv
    totals = profile([a for a in argv if a not in ("--probe", "--json")], probe=probe)
    stages = ("imports", "spec", "planning", "training", "journal", "tables", "plots",
              "report")
    other = totals["total"] - sum(totals.get(s, 0.0) for s in stages)
    if "--json" in sys.argv:
        import json

        print(json.dumps(totals))
    for stage in (*stages, "other"):
        seconds = other if stage == "other" else totals.get(stage, 0.0)
        print(f"{stage:>9} {seconds:8.2f} s {100 * seconds / totals['total']:5.1f} %")
    print(f"{'total':>9} {totals['total']:8.2f} s")


if __name__ == "__main__":
    main()
