"""The append-only trial journal: the durable record every table is rebuilt from.

Each finished trial is one JSON line, written and fsynced as soon as its batch returns, so a
kill or a crash loses at most the batch in flight. The journal is checked, not trusted: every
line is validated against the record's schema and its trial id is recomputed from the
parameters and the dataset's hash it names. A line cut short by a kill, garbled on disk or
edited by hand is skipped with a warning naming the file and line; its trial trains again.

Format 4 keeps a result's arrays (history, direction counts, weights) as packed bytes: their
little-endian int64 or float64 values (a curve's as its changes from one row to the next),
grouped by byte significance (the like bytes of neighbouring values side by side, as parquet's
byte-stream split does), compressed by zstd and written as base64 text. That is exact, and a
fraction of the size and decoding time of JSON number lists (a history is mostly repeated
exponents and saturated values). Scalars stay JSON numbers, which keep floats exactly (repr
round-trips), and nan/inf as NaN/Infinity. Older lines are still read, so older results
folders load and resume: format 3, the same bytes deflated (zstd packs them five times as
fast, a little smaller), and format 2, the same arrays as JSON lists.

A classifier's line (loss = "cross_entropy") says "classes": true and packs its accuracy and
cross-entropy beside mae, mse and sse; a line without the flag (every other trial's, and any
written before these were measured) holds the three errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.errors import NnsweepWarning
from nnsweep.grid import trial_id
from nnsweep.params import DEFAULTS, LATER_PARAMS, PARAM_NAMES, TrialParams
from nnsweep.result import ERROR_NAMES, ERRORS, STATUSES, TrialResult

FORMAT = 4  # what append writes
READ_FORMATS: tuple[int, ...] = (2, 3, 4)  # what read accepts
DEFLATED = 3  # the format whose packed values are deflated rather than zstd-compressed
MAX_INT = 2**63 - 1
# The parameters every line of formats 2 and 3 names; a parameter added to TrialParams since,
# missing from a line, takes its default (which is what nnsweep did before it existed).
BASE_PARAMS: frozenset[str] = frozenset({
    "hidden", "activation", "output", "alpha", "descent", "batch_size", "reduction", "epochs",
    "seed", "init", "weights", "record_every", "metric", "tolerance", "bias", "shuffle"})
LEVEL = 1  # zstd's: its fastest, within a few per cent of its smallest on histories


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
    # A halving search's: the epochs trained when it stopped the trial (or paused it, between
    # rungs) before its epochs, and its score at each rung it reached (halving.Reached).
    stopped: int | None = None
    scores: tuple[tuple[int, float], ...] = ()  # (epochs trained, score), by epochs

    @property
    def finished(self) -> bool:
        """Finished trials are never trained again; failed and crashed ones may be retried."""
        return self.result is not None


def written_params(params: TrialParams) -> dict[str, Any]:
    """Every parameter, but those added since format 2 where they are at their defaults
    (which a missing one reads as): the same trial's line, a few bytes shorter."""
    return {name: value for name, value in params.to_dict().items()
            if name not in LATER_PARAMS or value != DEFAULTS[name]}


def encode(record: Record, *, keep_weights: bool) -> str:
    """One journal line (with its newline) for a record."""
    body: dict[str, Any] = {
        "v": FORMAT,
        "trial": record.trial,
        "data": record.dataset,
        "engine": record.engine,
        "params": written_params(record.params),
        "status": record.status,
        "seconds": record.seconds,
        "error": record.error,
    }
    if record.stopped is not None:
        body["stopped"] = record.stopped
    if record.scores:
        body["scores"] = [list(pair) for pair in record.scores]
    result = record.result
    if result is not None:
        weights = result.weights if keep_weights else ()
        body["result"] = {
            "rows": len(result.epochs),
            "layers": [list(c.shape) for c in result.direction_changes],
            "weights": bool(weights),
            "validation": result.validation is not None,
            "values": pack(values(result, weights)),
            "final_error": result.final_error,
            "best_error": result.best_error,
            "converged_epoch": result.converged_epoch,
            "diverged_epoch": result.diverged_epoch,
        }
        if result.errors.shape[1] > ERRORS:  # a classifier's accuracy and cross-entropy too
            body["result"]["classes"] = True
    return json.dumps(body, separators=(",", ":")) + "\n"


# --- packed values --------------------------------------------------------------------------

# A format 3 or 4 result's values, 8 bytes each, one after the other: the recorded epochs (rows) as
# steps (the first epoch, then each one's distance from the one before); the errors column by
# column (mae of every row, then mse, then sse, and with "classes" accuracy and cross-entropy),
# each value's bits XOR the bits of the one before it in its column (a smooth or saturated
# curve leaves mostly zero bytes); the direction counts layer by layer; the weights layer by
# layer when "weights" is true; the held-out rows' errors, as the errors, when "validation" is.
def values(result: TrialResult, weights: Sequence[np.ndarray]) -> np.ndarray:
    """A result's values as formats 3 and 4 lay them out: (n,) uint64, each a value's bits."""
    steps = np.array(result.epochs, dtype="<i8")  # (R,)
    steps[1:] -= result.epochs[:-1]
    layers = [np.ravel(np.asarray(c, dtype="<i8")).view("<u8") for c in result.direction_changes]
    layers += [np.ravel(np.asarray(w, dtype="<f8")).view("<u8") for w in weights]
    held = [] if result.validation is None else [_deltas(result.validation)]
    return np.concatenate([steps.view("<u8"), _deltas(result.errors), *layers, *held])


def _deltas(errors: np.ndarray) -> np.ndarray:
    """(R, k) errors column by column, each value's bits XOR the one before it: (k * R,)."""
    columns = np.ascontiguousarray(errors.T, dtype="<f8").view("<u8")  # (k, R)
    changes = columns.copy()
    changes[:, 1:] ^= columns[:, :-1]
    return changes.ravel()


def _undeltas(words: np.ndarray, rows: int) -> np.ndarray:
    """_deltas undone: (R, k) float64."""
    columns = np.bitwise_xor.accumulate(words.reshape(-1, rows), axis=1).view("<f8")  # (k, R)
    return columns.T.astype(np.float64, order="C")


def pack(words: np.ndarray) -> str:
    """uint64 words as base64 text of their zstd-compressed little-endian bytes, grouped by
    significance: every word's first byte, then every word's second, ...

    zstd is Arrow's (imported here: workers import this module for Record alone)."""
    import pyarrow as pa

    planes = np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(-1, 8).T  # (8, n)
    packed = pa.Codec("zstd", compression_level=LEVEL).compress(planes.tobytes(), asbytes=True)
    return base64.b64encode(packed).decode("ascii")


def unpack(text: Any, where: str, count: int, version: int = FORMAT) -> np.ndarray:
    """The `count` words `pack` wrote (deflated, for a format 3 line), as (count,) uint64;
    raises BadRecord for anything else. No more is ever decompressed than `count` words need,
    so a crafted line cannot balloon in memory."""
    if not isinstance(text, str):
        raise BadRecord(f"{where}: expected packed values (base64 text)")
    size = 8 * count
    try:
        data = _decompressed(base64.b64decode(text, validate=True), size, version)
    except (binascii.Error, ValueError, OSError, zlib.error) as exc:
        raise BadRecord(f"{where}: expected packed values ({exc})") from None
    if data is None or len(data) != size:
        raise BadRecord(f"{where}: expected the {count} packed values its rows and layers make")
    planes = np.frombuffer(data, dtype=np.uint8).reshape(8, count)  # (8, n)
    return np.ascontiguousarray(planes.T).view("<u8").reshape(count)  # (n,)


def _decompressed(packed: bytes, size: int, version: int) -> bytes | None:
    """`size` bytes decompressed, or None when the data holds another amount; Arrow's zstd
    refuses a frame of another size than the one asked for."""
    if version != DEFLATED:
        import pyarrow as pa

        return bytes(pa.decompress(packed, decompressed_size=size, codec="zstd"))
    inflater = zlib.decompressobj()
    data = inflater.decompress(packed, size)
    whole = inflater.eof and not inflater.unconsumed_tail and not inflater.unused_data
    return data if whole else None


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

    if not isinstance(value, dict) or not BASE_PARAMS <= set(value) <= set(PARAM_NAMES):
        raise BadRecord("params: expected every parameter, and nothing else")
    written = {k: v for k, v in {**DEFAULTS, **value}.items()
               if not (k == "weights" and v is None)}
    try:
        checked = schema.Params.model_validate(written)
    except pydantic.ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        field = schema.Params.model_fields.get(name)
        wanted = field.description if field is not None and field.description else "valid"
        raise BadRecord(f"params.{name}: expected {wanted}") from None
    return TrialParams(**{name: getattr(checked, name) for name in PARAM_NAMES})


def _result_v2(value: Any, params: TrialParams) -> TrialResult:
    """A format 2 result: every array a JSON list (of lists) of numbers."""
    if not isinstance(value, dict):
        raise BadRecord("result: expected an object")
    epochs = value.get("epochs")
    if not isinstance(epochs, list) or not epochs:
        raise BadRecord("result.epochs: expected a list of epochs")
    recorded = _epochs(_array(epochs, "result.epochs", "iu", 1), params)
    table = _array(value.get("errors"), "result.errors", "iuf", 2)
    if table.shape != (len(recorded), 3):
        raise BadRecord("result.errors: expected mae, mse and sse for every recorded epoch")
    _measured(params, classes=False)
    changes = _counts(_matrices(value.get("direction_changes"), "result.direction_changes",
                                "iu"), params)
    weights = value.get("weights")
    saved = () if weights in (None, []) else _matrices(weights, "result.weights", "iuf")
    if saved:
        check_shapes(saved, params, "result.weights", like=changes)
    return _finished(value, params, recorded, table, changes, saved)


def _result_packed(value: Any, params: TrialParams, version: int) -> TrialResult:
    """A format 3 or 4 result: its row count and layer shapes, then its arrays packed
    together."""
    if not isinstance(value, dict):
        raise BadRecord("result: expected an object")
    rows = _integer(value.get("rows"), "result.rows", 1, params.epochs)
    shapes = _layer_shapes(value.get("layers"), params)
    kept, held, classes = (_flag(value, name, default) for name, default in (
        ("weights", None), ("validation", False), ("classes", False)))
    if classes and not params.classifier:
        raise BadRecord('result.classes: expected only for loss = "cross_entropy"')
    _measured(params, classes)
    cells = sum(r * c for r, c in shapes)
    errors = (len(ERROR_NAMES) if classes else ERRORS) * rows  # words of the errors
    words = unpack(value.get("values"), "result.values",
                   rows + errors + cells * (1 + kept) + errors * held, version)
    recorded = _epochs(np.cumsum(words[:rows].view("<i8"), dtype=np.int64), params)
    start = rows + errors  # the direction counts'
    counts = words[start:start + cells].view("<i8").astype(np.int64)
    if (counts < 0).any():
        raise BadRecord("result.direction_changes: expected counts of at least 0")
    end = start + cells * (1 + kept)
    weights = words[start + cells:end].view("<f8").astype(np.float64)
    result = _finished(value, params, recorded, _undeltas(words[rows:start], rows),
                       _split(counts, shapes), _split(weights, shapes) if kept else ())
    return replace(result, validation=_undeltas(words[end:], rows)) if held else result


def _flag(value: dict[str, Any], name: str, default: bool | None) -> bool:
    flag = value.get(name, default)
    if not isinstance(flag, bool):
        raise BadRecord(f"result.{name}: expected true or false")
    return flag


def _measured(params: TrialParams, classes: bool) -> None:
    """A line whose metric is a classifier's holds that metric."""
    if ERROR_NAMES.index(params.metric) >= (len(ERROR_NAMES) if classes else ERRORS):
        raise BadRecord(f"result: expected the {params.metric} its metric names")


def _layer_shapes(value: Any, params: TrialParams) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every layer, chained through the hidden sizes."""
    if not isinstance(value, list) or not all(
            isinstance(shape, list) and len(shape) == 2 for shape in value):
        raise BadRecord("result.layers: expected a [rows, columns] pair per layer")
    shapes = [(_integer(r, f"result.layers[{n}]", 1, 2**31),
               _integer(c, f"result.layers[{n}]", 1, 2**31)) for n, (r, c) in enumerate(value)]
    check_layer_shapes(shapes, params, "result.layers")
    return shapes


def _split(values: np.ndarray, shapes: Sequence[tuple[int, int]]) -> tuple[np.ndarray, ...]:
    """Layers packed one after the other, cut back into their matrices."""
    layers, start = [], 0
    for rows, cols in shapes:
        layers.append(values[start:start + rows * cols].reshape(rows, cols))
        start += rows * cols
    return tuple(layers)


def _epochs(recorded: np.ndarray, params: TrialParams) -> np.ndarray:
    if recorded[0] < 0 or recorded[-1] >= params.epochs or (recorded[1:] <= recorded[:-1]).any():
        raise BadRecord(f"result.epochs: expected increasing epochs below {params.epochs}")
    return recorded


def _counts(changes: tuple[np.ndarray, ...], params: TrialParams) -> tuple[np.ndarray, ...]:
    check_shapes(changes, params, "result.direction_changes")
    if any((c < 0).any() for c in changes):
        raise BadRecord("result.direction_changes: expected counts of at least 0")
    return changes


def _finished(value: dict[str, Any], params: TrialParams, recorded: np.ndarray,
              table: np.ndarray, changes: tuple[np.ndarray, ...],
              saved: tuple[np.ndarray, ...]) -> TrialResult:
    """The result from its checked arrays and the scalars both formats write alike."""
    events = {}
    for key in ("converged_epoch", "diverged_epoch"):
        event = value.get(key)
        events[key] = None if event is None else _integer(event, f"result.{key}", 0,
                                                          params.epochs)
    return TrialResult(
        epochs=recorded,
        errors=table,
        final_error=_number(value.get("final_error"), "result.final_error"),
        best_error=_number(value.get("best_error"), "result.best_error"),
        converged_epoch=events["converged_epoch"],
        diverged_epoch=events["diverged_epoch"],
        direction_changes=changes,
        weights=saved,
        metric=ERROR_NAMES.index(params.metric),
    )


def check_shapes(layers: Sequence[np.ndarray], params: TrialParams, where: str,
                  like: Sequence[np.ndarray] = ()) -> None:
    """One (fan_in, fan_out) matrix per layer, chained through the hidden sizes."""
    check_layer_shapes([layer.shape for layer in layers], params, where)
    for number, layer in enumerate(layers):
        if like and layer.shape != like[number].shape:
            raise BadRecord(f"{where}[{number}]: expected the shape {like[number].shape}")


def check_layer_shapes(shapes: Sequence[tuple[int, ...]], params: TrialParams,
                       where: str) -> None:
    """The shapes of one (fan_in, fan_out) matrix per layer, chained through the hidden
    sizes (the inputs and outputs are the dataset's, which a record does not name)."""
    if len(shapes) != len(params.hidden) + 1:
        raise BadRecord(f"{where}: expected {len(params.hidden) + 1} layers")
    for number, shape in enumerate(shapes):
        if number < len(params.hidden) and shape[1] != params.hidden[number]:
            raise BadRecord(f"{where}[{number}]: expected {params.hidden[number]} columns")
        if number > 0 and shape[0] != params.hidden[number - 1] + params.bias:
            raise BadRecord(f"{where}[{number}]: expected "
                            f"{params.hidden[number - 1] + params.bias} rows")


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
    version = body["v"]
    if isinstance(version, bool) or version not in READ_FORMATS:
        raise BadRecord(f"a record of journal format {version!r}, expected "
                        f"{' or '.join(map(str, READ_FORMATS))}")
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
    result = (None if failed else _result_v2(body["result"], params) if version == 2
              else _result_packed(body["result"], params, version))
    if trial_id(params, dataset) != trial:
        raise BadRecord(f"trial {trial}: its id does not match its parameters")
    stopped, scores = _stop(body, params, result)
    return Record(trial=trial, params=params, status=status, seconds=seconds, result=result,
                  error=error, engine=engine, dataset=dataset, stopped=stopped, scores=scores)


def _stop(body: dict[str, Any], params: TrialParams, result: TrialResult | None
          ) -> tuple[int | None, tuple[tuple[int, float], ...]]:
    """A halving search's stop and rung scores, checked against the epochs recorded."""
    stopped = body.get("stopped")
    if stopped is not None:
        stopped = _integer(stopped, "stopped", 1, params.epochs - 1)
        if result is not None and len(result.epochs) and result.epochs[-1] >= stopped:
            raise BadRecord(f"stopped: expected more epochs than the last recorded, "
                            f"{result.epochs[-1]}")
    scores = body.get("scores", [])
    if not isinstance(scores, list) or len(scores) > 64 or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in scores):
        raise BadRecord("scores: expected a list of [epochs, score] pairs, one per rung")
    pairs = tuple((_integer(e, f"scores[{n}]", 1, params.epochs), _number(s, f"scores[{n}]"))
                  for n, (e, s) in enumerate(scores))
    if [e for e, _ in pairs] != sorted({e for e, _ in pairs}):
        raise BadRecord("scores: expected increasing epochs")
    return stopped, pairs


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
    """Cut a last line that a kill left unfinished, so the next append starts on a clean line.
    Only the file's end is read: a run over a big journal does not read it twice."""
    if not path.exists():
        return
    fd = os.open(path, _open_flags(os.O_RDWR))
    with os.fdopen(fd, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        keep, end = 0, size
        while end > 0:  # back, a block at a time, to the last newline
            start = max(0, end - 65536)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        warnings.warn(
            f"{path}: dropped a torn last record ({size - keep} bytes cut short by a kill); "
            "that trial will be trained again", JournalWarning, stacklevel=2)
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
