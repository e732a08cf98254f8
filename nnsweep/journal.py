"""The append-only trial journal: the durable record every table is rebuilt from.

Each finished trial is one JSON line, written and fsynced as soon as its batch returns, so a
kill or a crash loses at most the batch in flight. A line cut short by a kill (the last one) or
garbled on disk is skipped with a warning naming the file and line; its trial is trained again.
JSON keeps floats exactly (repr round-trips), and nan/inf as NaN/Infinity.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.errors import NnsweepWarning
from nnsweep.params import TrialParams
from nnsweep.result import TrialResult

FORMAT = 1


class JournalWarning(NnsweepWarning):
    """A journal line that could not be read; the trial it held is trained again."""


@dataclass(frozen=True)
class Record:
    """One trial's outcome as journaled: a result, or the failure that replaced it."""

    trial: str
    params: TrialParams
    status: str
    seconds: float
    result: TrialResult | None  # None for failed or crashed trials
    error: str = ""  # "Type: message" of a failed or crashed trial

    @property
    def finished(self) -> bool:
        """Finished trials are never trained again; failed and crashed ones may be retried."""
        return self.result is not None


def _params_dict(params: TrialParams) -> dict[str, Any]:
    return params.to_dict()


def _params_from(data: dict[str, Any]) -> TrialParams:
    data = dict(data)
    data["hidden"] = tuple(data["hidden"])
    if data.get("weights") is not None:
        data["weights"] = tuple(tuple(tuple(row) for row in layer) for layer in data["weights"])
    return TrialParams(**data)


def encode(record: Record, *, keep_weights: bool) -> str:
    """One journal line (with its newline) for a record."""
    body: dict[str, Any] = {
        "v": FORMAT,
        "trial": record.trial,
        "params": _params_dict(record.params),
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


def decode(line: str) -> Record:
    body = json.loads(line)
    if not isinstance(body, dict) or body.get("v") != FORMAT:
        raise ValueError("not a journal record")
    data = body.get("result")
    result = None
    if data is not None:
        weights = data.get("weights") or []
        result = TrialResult(
            epochs=np.array(data["epochs"], dtype=np.int64),
            errors=np.array(data["errors"], dtype=np.float64).reshape(-1, 3),
            final_error=float(data["final_error"]),
            best_error=float(data["best_error"]),
            converged_epoch=data["converged_epoch"],
            diverged_epoch=data["diverged_epoch"],
            direction_changes=tuple(np.array(c, dtype=np.int64) for c in data["direction_changes"]),
            weights=tuple(np.array(w, dtype=np.float64) for w in weights),
        )
    return Record(
        trial=str(body["trial"]),
        params=_params_from(body["params"]),
        status=str(body["status"]),
        seconds=float(body["seconds"]),
        result=result,
        error=str(body.get("error", "")),
    )


def append(path: Path, records: Sequence[Record], *, keep_weights: bool) -> None:
    """Append records durably: written, flushed and fsynced before returning."""
    if not records:
        return
    text = "".join(encode(r, keep_weights=keep_weights) for r in records)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read(path: Path) -> Iterator[Record]:
    """Every readable record in file order; unreadable lines are skipped with a warning."""
    if not path.exists():
        return
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            complete = raw.endswith(b"\n")
            try:
                record = decode(raw.decode("utf-8"))
            except (ValueError, KeyError, TypeError) as exc:
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
    with open(path, "rb+") as handle:
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
