"""The command line: parse argv, call the library, map its errors to exit statuses.

0 done; 1 some trials failed; 2 bad usage or bad input (one line per problem, no traceback,
nothing written); 130 interrupted (finished trials kept).
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

EXAMPLE = """\
examples:
  python -m nnsweep run sweeps/xor.toml            # train, save tables, plots and report
  python -m nnsweep run sweeps/xor.toml --jobs 2   # rerun: only missing trials are trained
  python -m nnsweep validate sweeps/xor.toml       # check the file, count trials, no training
  python -m nnsweep show results/xor               # status counts and the best trials
  python -m nnsweep report results/xor             # rebuild plots and report.html from tables
  python -m nnsweep predict results/xor 3f2a 1 1 1 # a saved network's output for one input row

a sweep file (TOML):
  name = "xor"
  dataset = "xor"
  [params]
  epochs = 60000
  seed = 1
  [grid]
  alpha = [0.001, 0.01, 0.1, 1, 10, 100, 1000]
  hidden = [4, 8, 16, 32, 64, 128, 256]
"""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that says what was expected on one line and exits 2, as every bad input does."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnsweep", description="Hyperparameter sweeps for small neural "
                     "networks trained from scratch.", epilog=EXAMPLE,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="train a sweep (resumes where it stopped)",
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("spec", type=Path, help="the sweep file (.toml)")
    run.add_argument("--out", type=Path, help="results folder (default: results/<name>)")
    run.add_argument("--jobs", type=_jobs, help="worker processes (default: all cores; -1 all, "
                     "-2 all but one; with loky, at most one per core)")
    run.add_argument("--engine", choices=("numpy", "numba", "auto"),
                     help="training engine (default: numpy, bit for bit the textbook loop)")
    run.add_argument("--backend", choices=("loky", "dask", "ray"),
                     help="joblib backend (default: loky, this machine's cores)")
    run.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://host:8786")
    run.add_argument("--address", help="ray cluster address")
    run.add_argument("--fresh", action="store_true", help="discard earlier results in the folder")
    run.add_argument("--dry-run", action="store_true", help="show what would be trained; train "
                     "nothing, write nothing")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no final line")
    run.add_argument("--retry-failed", action="store_true", help="train failed and crashed "
                     "trials again")
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failed trial")
    run.add_argument("--max-trials", type=_max_trials, metavar="N", help="refuse grids larger "
                     "than this (default: 100000)")
    run.add_argument("--record-every", type=_at_least_one, metavar="N", help="keep every N-th "
                     "epoch in the history (sets record_every in [params]; changes the trials' "
                     "ids)")
    run.add_argument("--no-report", action="store_true", help="skip plots and report.html")
    run.add_argument("--svg", action="store_true",
                     help="write each figure of the report as SVG too, beside its PNG")

    validate = commands.add_parser("validate", help="check a sweep file and count its trials")
    validate.add_argument("spec", type=Path)
    validate.add_argument("--jobs", type=_jobs, help="workers assumed for the time estimate")
    validate.add_argument("--max-trials", type=_max_trials, metavar="N", help="refuse grids "
                          "larger than this, as run does (default: 100000)")

    show = commands.add_parser("show", help="status counts and the best trials of a results "
                               "folder")
    show.add_argument("dir", type=Path)
    show.add_argument("--top", type=_at_least_one, default=10, metavar="N",
                      help="how many of the best trials")

    report = commands.add_parser("report", help="rebuild plots and report.html from the tables")
    report.add_argument("dir", type=Path)
    report.add_argument("--trial", help="trial whose per-weight direction changes to draw")
    report.add_argument("--x", help="parameter across the heatmaps")
    report.add_argument("--y", help="parameter down the heatmaps")
    report.add_argument("--facet", help="parameters with one panel per value, comma-separated")
    report.add_argument("--svg", action="store_true",
                        help="write each figure as SVG too, beside its PNG")

    predict = commands.add_parser("predict", help="a saved network's output for an input row")
    predict.add_argument("dir", type=Path)
    predict.add_argument("trial", help="trial id (a unique prefix is enough)")
    predict.add_argument("inputs", nargs="+", type=float, help="one input row")

    commands.add_parser("bench", help="trainer speed against the plain loop, as a table "
                        "(--end-to-end: whole commands, start to exit)",
                        add_help=False)
    return parser


def _integer(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None


def _at_least_one(text: str) -> int:
    """A count or a stride: 0 and negatives mean nothing, so they are refused, not clamped."""
    value = _integer(text, "an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected an integer >= 1")
    return value


def _jobs(text: str) -> int:
    """Workers as joblib counts them: -1 all cores, -2 all but one; 0 would run nothing."""
    expected = "a number of workers >= 1, or -1 for all cores (-2 all but one)"
    value = _integer(text, expected)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text}: expected {expected}")
    return value


def _max_trials(text: str) -> int:
    """Up to the ceiling of what one run can plan in memory (grid.MAX_TRIALS)."""
    from nnsweep.grid import MAX_TRIALS

    expected = f"an integer from 1 to {MAX_TRIALS:,} (the most trials one run can plan)"
    value = _integer(text, expected)
    if not 1 <= value <= MAX_TRIALS:
        raise argparse.ArgumentTypeError(f"{text}: expected {expected}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = build_parser().parse_args(argv)
    from nnsweep.errors import Interrupted, NnsweepError, NnsweepWarning, SpecError
    from nnsweep.text import terminal_safe

    previous = signal.signal(signal.SIGTERM, _terminate)
    with warnings.catch_warnings():
        warnings.simplefilter("always", NnsweepWarning)  # the user must see every repair
        warnings.showwarning = _one_line_warning
        try:
            return _COMMANDS[args.command](args)
        except SpecError as exc:  # each problem's line starts with the file's name
            print("\n".join(terminal_safe(p) for p in exc.problems), file=sys.stderr)
            return EXIT_USAGE
        except NnsweepError as exc:  # one line per problem (DataError joins several)
            lines = (terminal_safe(line) for line in _with_flags(exc).split("\n"))
            print("nnsweep: " + "\n".join(lines), file=sys.stderr)
            return EXIT_USAGE
        except Interrupted as exc:
            how = (f" (the report was not built; python -m nnsweep report {exc.directory} "
                   "builds it now)")
            print(f"nnsweep: {terminal_safe(str(exc) + how)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            print("nnsweep: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)


def _with_flags(exc: Exception) -> str:
    """The library's sentence with the command line's way out, which names the flags: the
    library words what went wrong, and only the command line knows its flags."""
    from nnsweep import errors

    text = str(exc)
    narrower = ("record fewer epochs (raise record_every in [params], or --record-every N) or "
                "narrow the grid (--max-trials limits its size)")
    match exc:
        case errors.OptionError():  # the message starts with the option's name
            return f"--{text}"
        case errors.FolderBusy():
            return f"{text}; wait for it to finish or choose another --out"
        case errors.OtherSpec():
            return (f"{text}; rerun with --fresh to start over there, or choose another folder "
                    "with --out")
        case errors.EngineMismatch(engine=engine):
            return (f"{text}: resume with --engine {engine}, start over with --fresh, or choose "
                    "another folder with --out")
        case errors.EngineLacks():
            return f"{text}: run with --engine numpy"
        case errors.CannotWrite():
            return f"{text}: free some space or choose another --out, then run again to resume"
        case errors.GridTooLarge(size=size, most=most) if size <= most:
            return f"{text} with --max-trials {size}"
        case errors.NoRoom(what="disk"):
            return f"{text}; {narrower}, or choose another --out"
        case errors.NoRoom():
            return f"{text}; {narrower}"
    return text


def _terminate(signum: int, frame: object) -> None:
    """A polite kill (SIGTERM) stops like Ctrl-C: finished trials are saved first."""
    raise KeyboardInterrupt


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """Warnings quote paths and journal lines: escaped, each stays one harmless line."""
    from nnsweep.text import terminal_safe

    print(f"nnsweep: warning: {terminal_safe(str(message))}", file=file or sys.stderr)


def _run(args: argparse.Namespace) -> int:
    import shlex

    import nnsweep
    from nnsweep import planner, runner

    overrides = {"record_every": args.record_every} if args.record_every is not None else None
    started = time.perf_counter()
    spec = nnsweep.load_spec(args.spec, overrides=overrides)
    loading = time.perf_counter() - started
    options: dict[str, Any] = dict(out=args.out, jobs=args.jobs, engine=args.engine,
                                   backend=args.backend, max_trials=args.max_trials,
                                   fresh=args.fresh)
    if args.scheduler or args.address:
        spec = _with_cluster(spec, args.scheduler, args.address)
        if args.backend is None:  # an address says which cluster engine it belongs to
            options["backend"] = "dask" if args.scheduler else "ray"
    if args.dry_run:
        setup = planner.preflight(spec, **options)
        plan = planner.make_plan(spec, setup, retry_failed=args.retry_failed, fresh=args.fresh)
        print(_plan_text(spec, plan, loading))
        return EXIT_OK
    command = shlex.join(["python", "-m", "nnsweep", *sys.argv[1:]]) if sys.argv[1:] else None
    endings = {"fail_fast": f"{runner.ENDINGS['fail_fast']} (--fail-fast)"}
    results = nnsweep.run(spec, quiet=args.quiet, retry_failed=args.retry_failed,
                          fail_fast=args.fail_fast, command=command, endings=endings,
                          then=None if args.no_report
                          else functools.partial(_report_after_run, svg=args.svg),
                          warm=True, **options)
    bad = int(results.trials["status"].isin(["failed", "crashed"]).sum())
    if not args.quiet:
        if (results.directory / "report.html").exists():
            print(f"report: {results.directory / 'report.html'}", file=sys.stderr)
        if bad:
            print(f"nnsweep: {bad} trials failed; see the error column of "
                  f"{results.directory / 'trials.csv'}; rerun with --retry-failed",
                  file=sys.stderr)
    return EXIT_FAILED if bad else EXIT_OK


def _with_cluster(spec: Any, scheduler: str | None, address: str | None) -> Any:
    from dataclasses import replace

    run_options = replace(spec.run, scheduler=scheduler or spec.run.scheduler,
                          address=address or spec.run.address)
    return replace(spec, run=run_options)


def _report_after_run(results: Any, *, svg: bool = False) -> None:
    """A finished run's report, written while the run still holds its folder (a failed write
    is told as any failed write of the run is); a page already current is kept."""
    from nnsweep import pages

    if len(results.trials) and not pages.is_current(results.directory, results.manifest,
                                                    svg=svg):
        from nnsweep.report import build_report

        build_report(results.directory, svg=svg)


def _plan_text(spec: Any, plan: Any, loading: float) -> str:
    seconds = plan.estimate_seconds(spec.dataset, loading=loading)
    where = spec.source or spec.name
    return (f"{where}: {len(plan.trials)} trials; {len(plan.pending)} to train in "
            f"{len(plan.batches)} batches, {len(plan.reused)} already in {plan.directory}; "
            f"about {_duration(seconds)} on {plan.workers} workers with the {plan.engine} "
            "engine (dry run: nothing trained, nothing written)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _validate(args: argparse.Namespace) -> int:
    """The file checked, the grid held to run's limits by its count, then planned as run would
    (a grid too large for run is too large to validate); notes follow the verdict."""
    import nnsweep
    from nnsweep import planner
    from nnsweep.errors import NnsweepWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NnsweepWarning)  # printed below, as notes
        started = time.perf_counter()
        spec = nnsweep.load_spec(args.spec)
        loading = time.perf_counter() - started  # a run reads the data again
    plan = planner.outline(spec, jobs=args.jobs, max_trials=args.max_trials)
    seconds = plan.estimate_seconds(spec.dataset, loading=loading)
    axes = ", ".join(spec.axes) or "none"
    print(f"{args.spec}: valid; {len(plan.trials)} trials in {len(plan.batches)} batches "
          f"(axes: {axes}); about {_duration(seconds)} on {plan.workers} workers")
    if spec.search.edge is not None:
        print(f"note: {_edge_rounds_text(spec.search.edge, len(plan.trials) // 2)}")
    if spec.search.halving is not None:
        print(f"note: {_rungs_text(spec.search.halving, len(plan.trials))}")
    for note in spec.notes:
        print(f"note: {note}")
    return EXIT_OK


def _edge_rounds_text(edge: Any, combinations: int) -> str:
    """What an edge search will cost, beyond the first round validate planned."""
    from nnsweep.edge import rounds_needed

    rounds = rounds_needed(edge)
    return (f"an edge search: those are its first round, {combinations} combinations at the "
            f"bracket's two ends; up to {rounds - 1} more rounds of one probe each follow, at "
            f"most {combinations * (rounds + 1)} trials in all")


def _rungs_text(halving: Any, trials: int) -> str:
    """What a halving search will train, which the estimate counts."""
    full = trials * halving.max_epochs
    spent = halving.budget(trials)
    brackets = (f" in {halving.brackets} brackets" if halving.brackets > 1 else "")
    return (f"a {halving.method} search: {trials} trials{brackets}, rungs at "
            f"{', '.join(map(str, halving.rungs()))} epochs, the best 1/{halving.eta} going on "
            f"at each; about {spent:,} trial-epochs of a grid's {full:,} "
            f"({spent / full:.0%}), as the estimate counts")


def _bench(argv: list[str]) -> int:
    """The benchmark harness is the source checkout's benchmarks/harness.py, beside the
    package: benchmarks are no part of an installed nnsweep."""
    import importlib

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    if not (folder / "harness.py").is_file():
        print("nnsweep bench: the benchmarks come with nnsweep's source checkout "
              "(benchmarks/harness.py beside the nnsweep package): run it from a checkout "
              "installed with pip install -e .", file=sys.stderr)
        return EXIT_USAGE
    sys.path.insert(0, str(folder))  # as pytest imports it, and so the workers find it too
    return int(importlib.import_module("harness").main(argv))


def _show(args: argparse.Namespace) -> int:
    import nnsweep
    from nnsweep.show import render

    print(render(nnsweep.load_results(args.dir), top=args.top), end="")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from nnsweep import store
    from nnsweep.report import build_report

    store.check_results_folder(args.dir)  # before the lock: no .lock left in a stranger's folder
    with store.locked(args.dir):  # no run may start writing while the report is written
        page = build_report(args.dir, x=args.x, y=args.y, facet=args.facet, trial=args.trial,
                            svg=args.svg)
    print(page)
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    import nnsweep

    network = nnsweep.load_results(args.dir).network(args.trial)
    expected = network.weights[0].shape[0] - (1 if network.params.bias else 0)
    if len(args.inputs) != expected:
        from nnsweep.errors import NnsweepError

        raise NnsweepError(f"predict: trial {network.trial} takes {expected} inputs, "
                           f"got {len(args.inputs)}")
    output = network.predict([args.inputs])[0]
    print(" ".join(f"{value:.10g}" for value in output))
    return EXIT_OK


_COMMANDS = {"run": _run, "validate": _validate, "show": _show, "report": _report,
             "predict": _predict}


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
