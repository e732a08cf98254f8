"""The results folder: journal, lock, manifest and the tables, each written atomically.

Layout (DESIGN.md section 5): trials/history/directions/summary as parquet and CSV, spec.toml,
manifest.json, weights.npz (with save_weights), plots/ and report.html, plus journal.jsonl, the
durable record the tables are rebuilt from, and .lock while a run owns the folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnsweep import journal, tables
from nnsweep.errors import NnsweepWarning, ResultsError
from nnsweep.journal import Record
from nnsweep.network import Array, predict
from nnsweep.params import TrialParams

TABLES: tuple[str, ...] = ("trials", "history", "directions", "summary")
JOURNAL = "journal.jsonl"
MANIFEST = "manifest.json"
SPEC = "spec.toml"
WEIGHTS = "weights.npz"
LOCK = ".lock"


class StoreWarning(NnsweepWarning):
    """Something in a results folder was damaged and has been worked around."""


# --- atomic files -------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: all or nothing."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as an ordinary open() would, not mkstemp's 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(directory: Path, name: str, frame: pd.DataFrame) -> None:
    """`name`.parquet and `name`.csv, each replaced atomically."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_atomic(directory / f"{name}.parquet", buffer.getvalue())
    write_atomic(directory / f"{name}.csv", frame.to_csv(index=False).encode("utf-8"))


def read_table(directory: Path, name: str) -> pd.DataFrame:
    """A saved table in its schema; raises OSError or ValueError when the file is damaged."""
    frame = pd.read_parquet(directory / f"{name}.parquet")
    return tables.typed(frame, tables.SCHEMAS[name])


# --- the lock -----------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the folder for one run; a second run is refused, a dead run's lock is taken over."""
    path = directory / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                owner = {}
            pid, host = owner.get("pid"), owner.get("host")
            if isinstance(pid, int) and host == me["host"] and not _pid_alive(pid):
                warnings.warn(f"{path}: taking over the lock of run {pid} on {host}, which is "
                              "no longer running", StoreWarning, stacklevel=3)
                path.unlink(missing_ok=True)
                continue
            if not owner:
                raise ResultsError(f"{directory}: locked by another run (unreadable {path}); "
                                   f"remove {path} if no run is using this folder") from None
            raise ResultsError(f"{directory}: another run is using this folder (pid {pid} on "
                               f"{host}); wait for it to finish or choose another --out") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


# --- the folder ---------------------------------------------------------------------------

def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        warnings.warn(f"{path}: unreadable ({exc}); starting a new manifest", StoreWarning,
                      stacklevel=2)
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
    write_atomic(directory / MANIFEST, text.encode("utf-8"))


def prepare(directory: Path, spec_hash: str, *, fresh: bool) -> dict[str, Any]:
    """Make the folder ready for this spec and return its manifest so far.

    A folder made by another spec is refused rather than mixed; --fresh empties it first.
    Call with the folder locked.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if fresh:
        for entry in directory.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    manifest = read_manifest(directory)
    made_by = manifest.get("spec_hash")
    if made_by is not None and made_by != spec_hash:
        raise ResultsError(
            f"{directory}: made by another spec (hash {made_by}, this one is {spec_hash}); "
            "rerun with --fresh to start over there, or choose another folder with --out")
    if made_by is None and (directory / JOURNAL).exists():
        raise ResultsError(f"{directory}: holds a journal but no manifest; rerun with --fresh "
                           "to start over there, or choose another folder with --out")
    journal.drop_torn_tail(directory / JOURNAL)
    return manifest


def finished_records(directory: Path) -> dict[str, Record]:
    return journal.latest(directory / JOURNAL)


def append(directory: Path, records: Sequence[Record], *, keep_weights: bool) -> None:
    journal.append(directory / JOURNAL, records, keep_weights=keep_weights)


def build_tables(records: Iterable[Record]) -> dict[str, pd.DataFrame]:
    """All four tables from journal records, in the order given."""
    records = list(records)
    done = [(r.trial, r.result) for r in records if r.result is not None]
    trials = tables.trials_frame(
        tables.trial_row(r.trial, r.params, r.result, r.seconds, r.status, r.error)
        for r in records)
    return {
        "trials": trials,
        "history": tables.history_table(done),
        "directions": tables.directions_table(done),
        "summary": tables.summary_frame(trials),
    }


def write_tables(directory: Path, frames: Mapping[str, pd.DataFrame]) -> None:
    for name in TABLES:
        write_table(directory, name, frames[name])


def write_weights(directory: Path, records: Iterable[Record]) -> None:
    """weights.npz: one array per trial and layer, keyed "<trial>/<layer>"."""
    arrays = {f"{r.trial}/{layer}": w
              for r in records if r.result is not None
              for layer, w in enumerate(r.result.weights)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    write_atomic(directory / WEIGHTS, buffer.getvalue())


# --- reading results back -----------------------------------------------------------------

@dataclass(frozen=True)
class Network:
    """A trained network from a results folder, ready to predict."""

    trial: str
    params: TrialParams
    weights: tuple[Array, ...]

    def predict(self, x: Any) -> Array:
        """Outputs (rows, outputs) for inputs (rows, inputs) or one row."""
        p = self.params
        return predict(np.asarray(x, dtype=np.float64), self.weights, p.activation, p.output,
                       p.bias)


@dataclass(frozen=True)
class Results:
    """A results folder's tables, as pandas frames, and its manifest."""

    directory: Path
    trials: pd.DataFrame
    history: pd.DataFrame
    directions: pd.DataFrame
    summary: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

    def network(self, trial: str) -> Network:
        """The trained network of one trial (a unique prefix of its id is enough)."""
        matches = [t for t in self.trials["trial"] if str(t).startswith(trial)]
        if len(matches) != 1:
            what = "no trial" if not matches else f"{len(matches)} trials"
            raise ResultsError(f"{self.directory}: {what} with id {trial!r}")
        trial_id = str(matches[0])
        path = self.directory / WEIGHTS
        if not path.exists():
            raise ResultsError(f"{self.directory}: no saved weights; set save_weights = true "
                               "under [run] in the sweep file and run it again")
        with np.load(path) as saved:
            layers = sorted((k for k in saved.files if k.startswith(f"{trial_id}/")),
                            key=lambda k: int(k.rsplit("/", 1)[1]))
            weights = tuple(saved[k] for k in layers)
        if not weights:
            raise ResultsError(f"{self.directory}: trial {trial_id} has no saved weights "
                               "(it failed, or it was trained before save_weights was set)")
        record = finished_records(self.directory).get(trial_id)
        if record is None:
            raise ResultsError(f"{self.directory}: trial {trial_id} is not in the journal")
        return Network(trial_id, record.params, weights)


def load_results(directory: str | Path) -> Results:
    """Read a results folder; damaged tables are rebuilt from the journal with a warning."""
    directory = Path(directory)
    if not (directory / MANIFEST).exists() and not (directory / JOURNAL).exists():
        raise ResultsError(f"{directory}: not a results folder (no {MANIFEST}); "
                           "run a sweep first: python -m nnsweep run SPEC")
    frames: dict[str, pd.DataFrame] = {}
    damaged = []
    for name in TABLES:
        try:
            frames[name] = read_table(directory, name)
        except (OSError, ValueError, KeyError) as exc:
            damaged.append(f"{name}.parquet ({type(exc).__name__})")
    if damaged:
        manifest = read_manifest(directory)
        order = manifest.get("trials")
        records = finished_records(directory)
        if isinstance(order, list):
            chosen = [records[t] for t in order if t in records]
        else:
            chosen = list(records.values())
        frames = build_tables(chosen)
        warnings.warn(f"{directory}: rebuilt the tables from {JOURNAL} because "
                      f"{', '.join(damaged)} could not be read", StoreWarning, stacklevel=2)
        with contextlib.suppress(OSError):
            write_tables(directory, frames)
    return Results(directory=directory, manifest=read_manifest(directory), **frames)
