"""What the test files share: sweep files on disk, the command line in its own process, waiting
for a run's journal, stopping a run's process group, reading a results folder's tables, and
the small sweeps and datasets several files train on.

pytest puts tests/ on sys.path (the folder has no __init__.py), so a test file imports this
module as `helpers`, as it imports textbook_loops; conftest.py has pytest rewrite its asserts.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from nnsweep import store, tables
from nnsweep.batching import batch_key
from nnsweep.datasets import builtin
from nnsweep.grid import trial_id
from nnsweep.journal import JournalWarning, Record
from nnsweep.params import GivenWeights, TrialParams
from nnsweep.reference import train_one
from nnsweep.result import TrialResult
from nnsweep.trainer import train_batch

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "sweeps"
TABLES = ("trials", "history", "directions", "summary")


def frozen(rows: ArrayLike) -> NDArray[np.float64]:
    """A float array no test can change: datasets are shared by many tests."""
    array = np.array(rows, dtype=np.float64)
    array.setflags(write=False)
    return array


# iamtrask's XOR: x rows 001, 011, 101, 111; y 0 1 1 0.
XOR_X = frozen([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
XOR_Y = frozen([[0], [1], [1], [0]])
DATA_HASH = "0123456789abcdef"  # a dataset's hash, as the runner stamps it on each record

# How close the compiled engine's numbers are to the loop's (relative and absolute).
CLOSE = 1e-9


def assert_close(actual: TrialResult, expected: TrialResult) -> None:
    """Same epochs, convergence, divergence and direction counts; numbers (the held-out rows'
    too) within CLOSE.

    A diverged network's weights are infinities and nans whose mix depends on the order of
    operations, so only its history (which stops before the divergence) is compared.
    """
    assert np.array_equal(actual.epochs, expected.epochs)
    assert actual.diverged_epoch == expected.diverged_epoch
    assert actual.converged_epoch == expected.converged_epoch
    np.testing.assert_allclose(actual.errors, expected.errors, rtol=CLOSE, atol=CLOSE)
    np.testing.assert_allclose(actual.final_error, expected.final_error, rtol=CLOSE,
                               atol=CLOSE)
    np.testing.assert_allclose(actual.best_error, expected.best_error, rtol=CLOSE, atol=CLOSE)
    assert (actual.validation is None) == (expected.validation is None)
    if actual.validation is not None and expected.validation is not None:
        np.testing.assert_allclose(actual.validation, expected.validation, rtol=CLOSE,
                                   atol=CLOSE)
    if expected.diverged_epoch is not None:
        return
    for got, want in zip(actual.weights, expected.weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=CLOSE, atol=CLOSE)
    for got_counts, want_counts in zip(actual.direction_changes, expected.direction_changes,
                                       strict=True):
        assert np.array_equal(got_counts, want_counts)


# The 4-3-2-1 regression notebook's network: one input row, its target, the printed weights.
NOTEBOOK_WEIGHTS: GivenWeights = (
    ((0.48933789, -0.72347172, 0.08183022), (-0.23113807, 0.23997173, -0.21066809),
     (0.29863268, -0.23236267, -0.41801194), (-0.20281991, -1.07067008, 0.10292864)),
    ((1.16625098, 0.5995312), (0.9691656, 0.49771763), (-0.48026261, -0.69073575)),
    ((-0.54822941,), (-0.82546952,)),
)
NOTEBOOK_X = frozen([[0.5, -0.2, 0.1, 0.3]])  # (1, 4)
NOTEBOOK_Y = frozen([[0.4]])  # (1, 1)


def notebook_params() -> TrialParams:
    """The notebook's network and step: sigmoid hidden layers, linear output, alpha 1."""
    return TrialParams(hidden=(3, 2), activation="sigmoid", output="linear", alpha=1.0,
                       descent="full", epochs=1, init="given", weights=NOTEBOOK_WEIGHTS)


# 64 trials of 20000 epochs, eight batch keys (one per epochs value), so many small batches
# finish one by one: a run long enough to be killed, interrupted or read while it trains.
LONG = """\
name = "long"
dataset = "xor"
[params]
record_every = 100
[grid]
alpha = [0.1, 0.5, 1, 2, 5, 10, 20, 50]
epochs = [20000, 20001, 20002, 20003, 20004, 20005, 20006, 20007]
"""


# --- sweep files and the command line --------------------------------------------------------

def write_spec(folder: Path, text: str, name: str = "sweep.toml") -> Path:
    """`text` written to `folder/name`; returns the path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def reduced_xor(directory: Path, epochs: int) -> Path:
    """sweeps/xor.toml with fewer epochs: the same 49 trials, a fraction of the work."""
    text = (SWEEPS / "xor.toml").read_text(encoding="utf-8")
    assert "\nepochs = 60000\n" in text
    return write_spec(directory, text.replace("\nepochs = 60000\n", f"\nepochs = {epochs}\n"),
                      "xor.toml")


def cli(*args: str | Path) -> list[str]:
    """The command line `python -m nnsweep ARGS` as this interpreter runs it."""
    return [sys.executable, "-m", "nnsweep", *map(str, args)]


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 600
            ) -> subprocess.CompletedProcess[str]:
    """The command line run to its end in its own process, its output captured as text; a
    command that hangs fails the test after `timeout` seconds instead of hanging the suite."""
    return subprocess.run(cli(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start_run(spec: Path, out: Path, *options: str, stderr: Path | None = None
              ) -> subprocess.Popen[bytes]:
    """`nnsweep run SPEC --out OUT OPTIONS` started in its own process group, as a shell
    starts a command; its stderr goes to the file `stderr` (or nowhere), stdout nowhere."""
    with open(stderr or os.devnull, "wb") as err:
        return subprocess.Popen(cli("run", spec, "--out", out, *options),
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


# --- waiting and stopping ---------------------------------------------------------------------

def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def line_count(path: Path) -> int:
    """The complete lines of a file another process is appending to; 0 before it exists."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().count(b"\n")
    return 0


def wait_for_lines(path: Path, at_least: int, timeout: float = 120) -> None:
    """Wait for a file (a run's journal) to hold `at_least` complete lines."""
    if not wait_until(lambda: line_count(path) >= at_least, timeout):
        raise AssertionError(f"no {at_least} lines in {path} after {timeout} s")


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a run started by `start_run` and every process of its group (its workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def group_members(group: int) -> list[int] | None:
    """The live processes of a process group, zombies (dead, waiting to be reaped by whoever
    inherited them) left out; None where /proc cannot tell."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)"
            if int(fields[2]) == group and fields[0] not in ("Z", "X"):
                members.append(int(stat.parent.name))
    return members


def group_exits(group: int, timeout: float = 30) -> bool:
    """True once no process of the process group is left alive; the rest are killed after
    timeout."""
    def gone() -> bool:
        members = group_members(group)
        if members is not None:
            return not members
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        return False

    if wait_until(gone, timeout, interval=0.1):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    return False


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie only awaits its reaper)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[-1][0] != "Z"


def dead_pid() -> int:
    """The id of a process that has ended (a killed run's pid, as its lock file names it)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


# --- journal records and results folders ----------------------------------------------------

def trained_record(params: TrialParams, seconds: float) -> Record:
    """The journal record of a trial trained on XOR by the plain loop, with its real id."""
    result = train_one(XOR_X, XOR_Y, params)
    return Record(trial_id(params, DATA_HASH), params, result.status(params.tolerance), seconds,
                  result, engine="numpy", dataset=DATA_HASH)


def failed_record(params: TrialParams, error: str) -> Record:
    """The journal record of a trial that raised `error` ("Type: message")."""
    return Record(trial_id(params, DATA_HASH), params, "failed", 0.0, None, error, "numpy",
                  DATA_HASH)


def journaled(out: Path) -> dict[str, Record]:
    """The records a run has journaled so far, by trial; a record torn by a kill, expected
    here, is dropped without its warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JournalWarning)
        return store.finished_records(out)


def table_texts(results: Path) -> dict[str, str]:
    """Every table's CSV text, with the wall-time column left out."""
    texts = {}
    for name in TABLES:
        rows = list(csv.reader(io.StringIO((results / f"{name}.csv").read_text("utf-8"))))
        keep = [i for i, column in enumerate(rows[0]) if column != "seconds"]
        texts[name] = "\n".join(",".join(row[i] for i in keep) for row in rows)
    return texts


# --- results folders written without a run ----------------------------------------------------

# Four alphas x two widths x two seeds: alpha 1 converges (tolerance 0.1), 0.01 barely moves,
# 10 stalls at 0.5 and 1000 diverges (linear output); 300 epochs train in well under a second.
SMALL_GRID: dict[str, list[Any]] = {
    "alpha": [0.01, 1.0, 10.0, 1000.0], "hidden": [(2,), (4,)], "seed": [1, 2],
}
SMALL_FIXED: dict[str, Any] = {"epochs": 300, "output": "linear", "tolerance": 0.1}


def sweep_frames(
    grid: Mapping[str, Sequence[Any]],
    fixed: Mapping[str, Any],
    *,
    x: Any = XOR_X,
    y: Any = XOR_Y,
    failed: Sequence[TrialParams] = (),
    validation: tuple[Any, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """The four tables of a real sweep over `grid`; `failed` trials are recorded as raising;
    with `validation` (x, y), each trial is measured on those held-out rows too."""
    keys = sorted(grid)
    trials = [TrialParams(**{**fixed, **dict(zip(keys, values, strict=True))})
              for values in itertools.product(*(grid[k] for k in keys))]
    groups: dict[tuple[object, ...], list[TrialParams]] = {}
    for params in trials:
        groups.setdefault(batch_key(params), []).append(params)
    rows, done = [], []
    for batch in groups.values():
        for params, result in zip(batch, train_batch(x, y, batch, validation=validation),
                                  strict=True):
            trial = _trial_id(params)
            rows.append(tables.trial_row(trial, params, result, 0.01))
            done.append((trial, result))
    for params in failed:
        rows.append(tables.trial_row(_trial_id(params), params, None, 0.0,
                                     error="ValueError: weights of the wrong shape"))
    frame = tables.trials_frame(rows)
    return {"trials": frame, "history": tables.history_table(done),
            "directions": tables.directions_table(done), "summary": tables.summary_frame(frame)}


HELD_OUT_ROWS = 40  # the moons a results folder with held-out rows is trained on
# The same shape on them: 40 rows take smaller steps than XOR's 4, and alpha 1 diverges.
HELD_OUT_GRID: dict[str, list[Any]] = {
    "alpha": [0.003, 0.01, 0.1, 1.0], "hidden": [(2,), (4,)], "seed": [1, 2],
}


# A classifier on those moons, its held-out accuracy deciding (select = "validation"): most
# cells score 11 of the 12 held-out rows, alpha 0.1 with 8 units all 12, alpha 1 bounces.
CLASSIFIER_GRID: dict[str, list[Any]] = {
    "alpha": [0.001, 0.01, 0.1, 1.0], "hidden": [(2,), (8,)], "seed": [1, 2],
}
CLASSIFIER_FIXED: dict[str, Any] = {
    "epochs": 400, "record_every": 10, "activation": "tanh", "output": "sigmoid",
    "loss": "cross_entropy", "metric": "accuracy", "select": "validation", "tolerance": 0.05,
}
CLASSIFIER_HELD_OUT = 0.3  # the share of the moons held out


def write_results(
    directory: Path,
    grid: Mapping[str, Sequence[Any]] = SMALL_GRID,
    fixed: Mapping[str, Any] = SMALL_FIXED,
    *,
    name: str = "small",
    description: str = "four alphas by two widths on XOR",
    report: Mapping[str, str] | None = None,
    failed: Sequence[TrialParams] = (),
    held_out: float | None = None,
) -> Path:
    """A results folder as a run leaves it: tables (parquet), spec.toml and manifest.json.
    XOR's four rows; with `held_out`, HELD_OUT_ROWS moons instead, that share of them held out
    for validation as a sweep file's `validation = held_out` holds them out."""
    directory.mkdir(parents=True, exist_ok=True)
    dataset: dict[str, Any] = {"name": "xor", "rows": 4}
    lines = ['dataset = "xor"']
    if held_out:
        data = builtin("moons", rows=HELD_OUT_ROWS).split(held_out)
        frames = sweep_frames(grid, fixed, x=data.x, y=data.y, failed=failed,
                              validation=data.validation)
        assert data.x_val is not None
        dataset = {"name": "moons", "rows": data.rows, "held_out": len(data.x_val)}
        lines = ["[dataset]", 'name = "moons"', f"rows = {HELD_OUT_ROWS}",
                 f"validation = {held_out}", "split_seed = 0"]
    else:
        frames = sweep_frames(grid, fixed, failed=failed)
    for table, frame in frames.items():
        frame.to_parquet(directory / f"{table}.parquet", index=False)
    spec = "\n".join([f'name = "{name}"', *lines, "[params]",
                      *(f"{k} = {json.dumps(v)}" for k, v in fixed.items()), "[grid]",
                      *(f"{k} = {json.dumps(list(v))}" for k, v in grid.items())]) + "\n"
    (directory / "spec.toml").write_text(spec, encoding="utf-8")
    manifest: dict[str, Any] = {
        "name": name, "description": description,
        "spec_hash": hashlib.sha256(spec.encode()).hexdigest()[:16],
        "dataset": dataset,
        "versions": {"nnsweep": "0.1.0", "numpy": np.__version__, "pandas": pd.__version__},
        "started": "2026-11-23T14:00:00+00:00", "finished": "2026-11-23T14:00:05+00:00",
        "status_counts": dict(Counter(frames["trials"]["status"].tolist())),
    }
    if report is not None:
        manifest["report"] = dict(report)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def _trial_id(params: TrialParams) -> str:
    return hashlib.sha256(repr(params).encode()).hexdigest()[:12]


# --- figures ----------------------------------------------------------------------------------

_SVG = "{http://www.w3.org/2000/svg}"


def svg_tick_points(svg: str) -> float | None:
    """The smallest tick label's font size, in points, of a matplotlib SVG, read apart from
    nnsweep's own bookkeeping: within each tick group, text as text carries a font size,
    text as paths a glyph scale of size / 100. None without labelled ticks."""
    sizes = []
    for group in ElementTree.fromstring(svg).iter(f"{_SVG}g"):
        if not re.fullmatch(r"[xy]tick_\d+", group.get("id", "")):
            continue
        for element in group.iter():
            font = re.search(r"font(?:-size)?:\s*(?:[a-z]+ )*([0-9.]+)px",
                             element.get("style", ""))
            scale = re.search(r"scale\(([0-9.e+-]+) -", element.get("transform", ""))
            sizes += [float(font[1])] if font else []
            sizes += [float(scale[1]) * 100] if scale else []
    return min(sizes) if sizes else None
