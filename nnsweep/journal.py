"""The append-only trial journal: the durable record every table is rebuilt from.

Each finished trial is one JSON line, written and fsynced as soon as its batch returns, so a
kill or a crash loses at most the batch in flight. The journal is checked, not trusted: every
line is validated against the record's schema and its trial id is recomputed from the
parameters and the dataset's hash it names. A line cut short by a kill, garbled on disk or
edited by hand is skipped with a warning naming the file and line; its trial trains again.
JSON keeps floats exactly (repr round-trips), and nan/inf as NaN/Infinity.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.errors import NnsweepWarning
from nnsweep.grid import trial_id
from nnsweep.params import PARAM_NAMES, TrialParams
from nnsweep.result import STATUSES, TrialResult

FORMAT = 2
MAX_INT = 2**63 - 1


class JournalWarning(NnsweepWarning):
    """A journal line that could not be used; the trial it held is trained again."""


class BadRecord(ValueError):
    """A journal line that does not hold a valid record; the message says which field."""


@dataclass(frozen=True)
class Record:
    """One trial's outcome as journaled: a result, or the failure that replaced it."""

    trial: str
    params: TrialParams
    status: str
    seconds: float
    result: TrialResult | None  # None for failed or crashed trials
    error: str = ""  # "Type: message" of a failed or crashed trial
    engine: str = "numpy"  # the engine that trained it: part of what its numbers mean
    dataset: str = ""  # the dataset's hash: with the parameters, it makes the trial's id

    @property
    def finished(self) -> bool:
        """Finished trials are never trained again; failed and crashed ones may be retried."""
        return self.result is not None


def encode(record: Record, *, keep_weights: bool) -> str:
    """One journal line (with its newline) for a record."""
    body: dict[str, Any] = {
        "v": FORMAT,
        "trial": record.trial,
        "data": record.dataset,
        "engine": record.engine,
        "params": record.params.to_dict(),
        "status": record.status,
        "seconds": record.seconds,
        "error": record.error,
    }
    result = record.result
    if result is not None:
        body["result"] = {
            "epochs": result.epochs.tolist(),
            "errors": result.errors.tolist(),
            "final_error": result.final_error,
            "best_error": result.best_error,
            "converged_epoch": result.converged_epoch,
            "diverged_epoch": result.diverged_epoch,
            "direction_changes": [c.tolist() for c in result.direction_changes],
            "weights": [w.tolist() for w in result.weights] if keep_weights else None,
        }
    return json.dumps(body, separators=(",", ":")) + "\n"


# --- checking a line ------------------------------------------------------------------------

def _integer(value: Any, where: str, low: int = 0, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRecord(f"{where}: expected an integer from {low} to {high}")
    return value


def _number(value: Any, where: str, *, finite: bool = False, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(f"{where}: expected a number")
    try:
        number = float(value)
    except OverflowError:
        raise BadRecord(f"{where}: expected a number of float range") from None
    if (finite or positive) and not math.isfinite(number):
        raise BadRecord(f"{where}: expected a finite number")
    if positive and number <= 0:
        raise BadRecord(f"{where}: expected a positive number")
    return number


def _choice(choices: Sequence[str]) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        if value not in choices:
            raise BadRecord(f"{where}: expected one of {', '.join(choices)}")
        return str(value)
    return check


def _array(value: Any, where: str, kinds: str, ndim: int) -> np.ndarray:
    """A rectangular numeric array of `ndim` dimensions whose dtype kind is one of `kinds`.

    numpy does the checking in C: a ragged list, a string, a bool or an integer beyond 64 bits
    gives another dtype (or raises), so a line of millions of cells is checked quickly.
    """
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = np.array(None)
    if array.ndim != ndim or array.dtype.kind not in kinds or array.size == 0:
        what = "integers" if kinds == "iu" else "numbers"
        raise BadRecord(f"{where}: expected a {ndim}-D array of {what}")
    return array.astype(np.int64 if kinds == "iu" else np.float64)


def _matrices(value: Any, where: str, kinds: str) -> tuple[np.ndarray, ...]:
    """A list of rectangular 2-D numeric matrices (no ragged rows, no strings)."""
    if not isinstance(value, list) or len(value) > 101:
        raise BadRecord(f"{where}: expected a list of matrices")
    return tuple(_array(layer, f"{where}[{number}]", kinds, 2)
                 for number, layer in enumerate(value))


def _params(value: Any) -> TrialParams:
    """A trial's parameters, checked by the sweep file's own schema (one statement of them).

    Imported here, not at the top: workers import this module for Record alone.
    """
    import pydantic

    from nnsweep import schema

    if not isinstance(value, dict) or set(value) != set(PARAM_NAMES):
        raise BadRecord("params: expected every parameter, and nothing else")
    written = {k: v for k, v in value.items() if not (k == "weights" and v is None)}
    try:
        checked = schema.Params.model_validate(written)
    except pydantic.ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        field = schema.Params.model_fields.get(name)
        wanted = field.description if field is not None and field.description else "valid"
        raise BadRecord(f"params.{name}: expected {wanted}") from None
    return TrialParams(**{name: getattr(checked, name) for name in PARAM_NAMES})


def _result(value: Any, params: TrialParams) -> TrialResult:
    if not isinstance(value, dict):
        raise BadRecord("result: expected an object")
    epochs = value.get("epochs")
    if not isinstance(epochs, list) or not epochs:
        raise BadRecord("result.epochs: expected a list of epochs")
    recorded = _array(epochs, "result.epochs", "iu", 1)
    if recorded[0] < 0 or recorded[-1] >= params.epochs or (np.diff(recorded) <= 0).any():
        raise BadRecord(f"result.epochs: expected increasing epochs below {params.epochs}")
    table = _array(value.get("errors"), "result.errors", "iuf", 2)
    if table.shape != (len(recorded), 3):
        raise BadRecord("result.errors: expected mae, mse and sse for every recorded epoch")
    events = {}
    for key in ("converged_epoch", "diverged_epoch"):
        event = value.get(key)
        events[key] = None if event is None else _integer(event, f"result.{key}", 0,
                                                          params.epochs)
    changes = _matrices(value.get("direction_changes"), "result.direction_changes", "iu")
    check_shapes(changes, params, "result.direction_changes")
    if any((c < 0).any() for c in changes):
        raise BadRecord("result.direction_changes: expected counts of at least 0")
    weights = value.get("weights")
    saved = () if weights in (None, []) else _matrices(weights, "result.weights", "iuf")
    if saved:
        check_shapes(saved, params, "result.weights", like=changes)
    return TrialResult(
        epochs=recorded,
        errors=table,
        final_error=_number(value.get("final_error"), "result.final_error"),
        best_error=_number(value.get("best_error"), "result.best_error"),
        converged_epoch=events["converged_epoch"],
        diverged_epoch=events["diverged_epoch"],
        direction_changes=changes,
        weights=saved,
    )


def check_shapes(layers: Sequence[np.ndarray], params: TrialParams, where: str,
                  like: Sequence[np.ndarray] = ()) -> None:
    """One (fan_in, fan_out) matrix per layer, chained through the hidden sizes."""
    if len(layers) != len(params.hidden) + 1:
        raise BadRecord(f"{where}: expected {len(params.hidden) + 1} layers")
    for number, layer in enumerate(layers):
        if number < len(params.hidden) and layer.shape[1] != params.hidden[number]:
            raise BadRecord(f"{where}[{number}]: expected {params.hidden[number]} columns")
        if number > 0 and layer.shape[0] != params.hidden[number - 1] + params.bias:
            raise BadRecord(f"{where}[{number}]: expected "
                            f"{params.hidden[number - 1] + params.bias} rows")
        if like and layer.shape != like[number].shape:
            raise BadRecord(f"{where}[{number}]: expected the shape {like[number].shape}")


def decode(line: str) -> Record:
    """The record one line holds; raises BadRecord naming the first field that is wrong."""
    try:
        body = json.loads(line)
    except RecursionError:
        raise BadRecord("nested too deeply") from None
    except ValueError as exc:
        raise BadRecord(f"not JSON ({exc})") from None
    if not isinstance(body, dict) or "v" not in body:
        raise BadRecord("not a journal record")
    if body["v"] != FORMAT:
        raise BadRecord(f"a record of journal format {body['v']!r}, expected {FORMAT}")
    trial = body.get("trial")
    if not isinstance(trial, str) or len(trial) != 12:
        raise BadRecord("trial: expected a 12-character id")
    params = _params(body.get("params"))
    status = _choice(STATUSES)(body.get("status"), "status")
    seconds = _number(body.get("seconds"), "seconds", finite=True)
    error = body.get("error", "")
    if not isinstance(error, str):
        raise BadRecord("error: expected text")
    dataset, engine = body.get("data"), body.get("engine")
    if not isinstance(dataset, str) or not dataset:
        raise BadRecord("data: expected the dataset's hash")
    if not isinstance(engine, str) or not engine:
        raise BadRecord("engine: expected the name of the engine that trained the trial")
    failed = status in ("failed", "crashed")
    if failed != (body.get("result") is None):
        raise BadRecord("result: expected a result exactly when the trial did not fail")
    result = None if failed else _result(body["result"], params)
    if trial_id(params, dataset) != trial:
        raise BadRecord(f"trial {trial}: its id does not match its parameters")
    return Record(trial=trial, params=params, status=status, seconds=seconds, result=result,
                  error=error, engine=engine, dataset=dataset)


# --- the file -------------------------------------------------------------------------------

def _open_flags(mode: int) -> int:
    return mode | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def append(path: Path, records: Sequence[Record], *, keep_weights: bool) -> None:
    """Append records durably: written, flushed and fsynced before returning."""
    if not records:
        return
    text = "".join(encode(r, keep_weights=keep_weights) for r in records).encode("utf-8")
    fd = os.open(path, _open_flags(os.O_WRONLY | os.O_APPEND | os.O_CREAT), 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read(path: Path) -> Iterator[Record]:
    """Every valid record in file order; others are skipped with a warning naming the line."""
    if not path.exists():
        return
    fd = os.open(path, _open_flags(os.O_RDONLY))
    with os.fdopen(fd, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            complete = raw.endswith(b"\n")
            try:
                record = decode(raw.decode("utf-8"))
            except (BadRecord, UnicodeDecodeError) as exc:
                what = "a torn last record (cut short by a kill)" if not complete else "garbage"
                warnings.warn(
                    f"{path}: line {number}: skipped {what}: {exc}; "
                    "that trial will be trained again", JournalWarning, stacklevel=2)
                continue
            yield record


def latest(path: Path) -> dict[str, Record]:
    """The last record of each trial: a retry that succeeded replaces the failure before it."""
    return {record.trial: record for record in read(path)}


def drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left unfinished, so the next append starts on a clean line."""
    if not path.exists():
        return
    fd = os.open(path, _open_flags(os.O_RDWR))
    with os.fdopen(fd, "rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        warnings.warn(
            f"{path}: dropped a torn last record ({len(data) - keep} bytes cut short by a kill); "
            "that trial will be trained again", JournalWarning, stacklevel=2)
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
