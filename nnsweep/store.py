"""The results folder: journal, lock, manifest and the tables, each written atomically.

A results folder is nnsweep's own: nnsweep writes only into an empty folder or one holding its
manifest or journal, deletes and overwrites only the names below, and never follows a
symbolic link inside it. The journal is the durable record; the tables are published as one
generation (each parquet file carries the generation that the manifest, written last, names),
so a reader never mixes tables of two runs: a torn generation is rebuilt from the journal.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import socket
import tempfile
import time
import uuid
import warnings
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nnsweep import journal, leanhistory, tables
from nnsweep.edge import PASSING, EdgeSearch
from nnsweep.errors import FolderBusy, NnsweepWarning, ResultsError
from nnsweep.halving import METHODS as HALVING_METHODS
from nnsweep.halving import Halving
from nnsweep.journal import BadRecord, Record
from nnsweep.network import Array, predict
from nnsweep.params import TrialParams
from nnsweep.result import TrainState

TABLES: tuple[str, ...] = ("trials", "history", "directions", "summary")
EDGES = "edges"  # an edge search's table, of the same generation as the others
JOURNAL = "journal.jsonl"
MANIFEST = "manifest.json"
SPEC = "spec.toml"
WEIGHTS = "weights.npz"
LOCK = ".lock"
PLOTS = "plots"
STATES = "states"  # a halving search's paused trials: states/<trial>.npz, where each stands
_STATE = re.compile(r"^(\.)?[0-9a-f]{12}\.npz(?(1)\.[A-Za-z0-9_]+\.tmp)$")  # and its temporary
REPORTS: tuple[str, ...] = ("report.html", "report.md")
PICTURES: tuple[str, ...] = (".png", ".svg")
# Every name nnsweep writes at the top of a results folder; nothing else is ever touched.
OWN_FILES: frozenset[str] = frozenset(
    {f"{name}.{ext}" for name in (*TABLES, EDGES) for ext in ("parquet", "csv")}
    | {JOURNAL, MANIFEST, SPEC, WEIGHTS, LOCK, *REPORTS})
# write_atomic's temporary files: ".<name>.<random>.tmp", left behind only by a kill.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]+\.tmp$")
GENERATION_KEY = b"nnsweep.generation"
LOCK_RETRY_SECONDS = 0.5  # a reader holds the lock for microseconds; a run for the whole run


class StoreWarning(NnsweepWarning):
    """Something in a results folder was damaged and has been worked around."""


# --- what belongs to nnsweep ----------------------------------------------------------------

def _is_temporary(name: str) -> bool:
    match = _TEMPORARY.match(name)
    return match is not None and (match["name"] in OWN_FILES or match["name"] == MANIFEST)


def _is_own(entry: Path) -> bool:
    return (entry.name in OWN_FILES or entry.name in (PLOTS, STATES)
            or _is_temporary(entry.name))


def _is_own_state(entry: Path) -> bool:
    return _STATE.match(entry.name) is not None and not entry.is_symlink() and entry.is_file()


def _is_own_picture(entry: Path) -> bool:
    return entry.suffix in PICTURES or _is_temporary(entry.name)


def _names(entries: Sequence[Path], directory: Path) -> str:
    shown = sorted(str(e.relative_to(directory)) for e in entries)
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return ", ".join(repr(name) for name in shown[:3]) + more


def check_links(directory: Path) -> None:
    """Refuse a results folder holding a symbolic link where nnsweep reads or writes."""
    if not directory.is_dir():
        return
    suspects = [directory / name for name in (*OWN_FILES, PLOTS)]
    plots = directory / PLOTS
    if plots.is_dir() and not plots.is_symlink():
        suspects += list(plots.iterdir())
    for path in suspects:
        if path.is_symlink():
            raise ResultsError(f"{path}: a symbolic link inside a results folder; nnsweep never "
                               "follows one: replace it by the file itself, or use another "
                               "folder")
    if plots.exists() and not plots.is_dir():
        raise ResultsError(f"{plots}: expected the folder of the report's pictures")
    states = directory / STATES
    if states.is_symlink() or (states.exists() and not states.is_dir()):
        raise ResultsError(f"{states}: expected the folder of a halving search's paused "
                           "trials, not a link or a file")
    for name in OWN_FILES:  # a pipe or a device would hang a reader or eat its memory
        path = directory / name
        if path.exists() and not path.is_file():
            raise ResultsError(f"{path}: expected a plain file, found "
                               f"{'a folder' if path.is_dir() else 'a pipe or a device'}")


def is_results_folder(directory: Path) -> bool:
    return (directory / MANIFEST).is_file() or (directory / JOURNAL).is_file()


def check_folder(directory: Path, *, fresh: bool = False) -> None:
    """Refuse, before anything is written, a folder that is not nnsweep's to write in.

    An empty (or missing) folder, or a results folder, is nnsweep's; starting over (fresh)
    also needs a results folder holding nothing that nnsweep did not write.
    """
    if not directory.exists() and not directory.is_symlink():
        return
    if not directory.is_dir():
        raise ResultsError(f"{directory}: not a folder; choose a folder for the results")
    check_links(directory)
    entries = list(directory.iterdir())
    if not is_results_folder(directory):
        # Before its manifest, a folder of nnsweep's holds at most a lock and temporary files;
        # a report.html or plots/ without a manifest may be anybody's.
        others = [e for e in entries if e.name != LOCK and not _is_temporary(e.name)]
        if others:
            raise ResultsError(
                f"{directory}: not empty and not a results folder (it holds "
                f"{_names(others, directory)}); nnsweep writes only into an empty folder or "
                "one of its own: choose another folder")
        return
    foreign = [e for e in entries if not _is_own(e)]
    plots = directory / PLOTS
    if plots.is_dir():
        foreign += [e for e in plots.iterdir() if not _is_own_picture(e) or e.is_dir()]
    states = directory / STATES
    if states.is_dir() and not states.is_symlink():
        foreign += [e for e in states.iterdir() if not _is_own_state(e)]
    if fresh and foreign:
        raise ResultsError(
            f"{directory}: cannot start over here: besides nnsweep's results the folder holds "
            f"{_names(foreign, directory)}, which nnsweep did not write; nothing was deleted: "
            "move them away, or choose another folder")


def check_name(directory: Path) -> None:
    """A folder name the file system cannot hold gets one line, not an error mid-run."""
    for part in directory.parts:
        if len(os.fsencode(part)) > 255:
            raise ResultsError(f"{str(directory)[:60]}...: a folder name of {len(part)} "
                               "characters; expected at most 255 bytes per name")


# --- atomic files -------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: all or nothing."""
    with atomic(path) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside `path` to write in; when the block ends it is fsynced and
    renamed over `path` (all or nothing), or removed when the block raises."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as an ordinary open() would, not mkstemp's 0600
        with os.fdopen(fd, "wb") as handle:
            yield handle
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


# Threads writing one table's files: Arrow's writers let go of the GIL, so the parquet file and
# slices of the CSV are encoded side by side; at most 4, as many CSV slices held at once.
WRITERS = max(2, min(4, os.cpu_count() or 1))
CSV_SLICE = 1 << 18  # rows one thread turns into CSV text at a time (about 20 MB of history)


def write_table(directory: Path, name: str, frame: pd.DataFrame, generation: str) -> None:
    """`name`.parquet (stamped with the generation) and `name`.csv, each replaced atomically,
    both written at once: the parquet file by one thread, the CSV's slices formatted by the
    others and written in order."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           GENERATION_KEY: generation.encode("ascii")})
    with ThreadPoolExecutor(WRITERS) as pool:
        parquet = pool.submit(_write_parquet_file, directory / f"{name}.parquet", table)
        with atomic(directory / f"{name}.csv") as handle:
            write_csv(table, handle, pool)
        parquet.result()


def _write_parquet_file(path: Path, table: pa.Table) -> None:
    with atomic(path) as handle:
        write_parquet(table, handle)


def write_parquet(table: pa.Table, handle: BinaryIO) -> None:
    """The table as parquet, zstd-compressed, its float columns byte-stream split (the like
    bytes of neighbouring values side by side): a third smaller than the defaults, and faster
    to write. Floats are never dictionary-encoded (their values seldom repeat, and a
    dictionary would stop the split); the other columns are."""
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    others = [f.name for f in table.schema if f.name not in floats]
    pq.write_table(table, handle, compression="zstd", use_dictionary=others or False,
                   use_byte_stream_split=floats or False)


def write_csv(table: pa.Table, handle: BinaryIO, pool: Executor | None = None) -> None:
    """The table as CSV, written by Arrow: ten times pandas' speed, and each float is written
    as the shortest text that reads back to the same float64 (so a CSV value equals its parquet
    twin bit for bit). A missing value is an empty cell. Text is quoted only in a table that
    holds a comma, a quote or a line break somewhere (Arrow then quotes every text cell).
    A `pool`'s threads format a few slices of rows at a time: the same text, sooner."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(table.column_names)
    head = buffer.getvalue().encode("utf-8")  # Arrow would quote every name
    for quoting in ("none", "needed"):
        handle.seek(0)
        handle.truncate()
        handle.write(head)
        options = pacsv.WriteOptions(include_header=False, quoting_style=quoting)
        try:
            for text in _csv_slices(table, options, pool):
                handle.write(text)
            return
        except pa.ArrowInvalid:  # a cell that needs quoting
            if quoting == "needed":
                raise


def _csv_slices(table: pa.Table, options: pacsv.WriteOptions, pool: Executor | None
                ) -> Iterator[bytes]:
    """The CSV text of each slice of CSV_SLICE rows, in order; with a pool, a few slices are
    formatted ahead of the one written, never the whole table at once."""
    slices = (table.slice(start, CSV_SLICE) for start in range(0, table.num_rows, CSV_SLICE))
    if pool is None:
        yield from (_csv_text(part, options) for part in slices)
        return
    ahead: deque[Future[bytes]] = deque()
    try:
        for part in slices:
            ahead.append(pool.submit(_csv_text, part, options))
            if len(ahead) > WRITERS:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
    finally:
        for late in ahead:  # a slice that needs quoting stops the others
            late.cancel()


def _csv_text(table: pa.Table, options: pacsv.WriteOptions) -> bytes:
    body = io.BytesIO()
    pacsv.write_csv(table, body, options)
    return body.getvalue()


def new_generation() -> str:
    return uuid.uuid4().hex[:16]


def read_table(directory: Path, name: str, generation: str | None = None, *,
               trial_categories: bool = False) -> pd.DataFrame:
    """A saved table in its schema; raises OSError or ValueError when the file is damaged or
    belongs to another generation than `generation`. `trial_categories`: the trial column as
    categories, the ids it holds (an integer code a row, where text is a Python string a
    row: W4900's directions, 1.4 million rows, took about 70 MB less)."""
    path = _table_path(directory, name)
    schema = tables.SCHEMAS[name]
    if trial_categories:
        with leanhistory.system_pool():
            frame = _read_frame(path, generation, ["trial"])
        schema = {**schema, "trial": "category"}
    else:
        frame = _read_frame(path, generation)
    if name == "history" and "split" not in frame:  # written before held-out rows existed
        frame.insert(2, "split", "train")
    if name in ("trials", "summary") and "select" not in frame:  # before params.select
        frame["select"] = "train"
    return tables.typed(frame, schema)


def _read_frame(path: Path, generation: str | None, dictionary: list[str] | None = None
                ) -> pd.DataFrame:
    table = pq.read_table(path, read_dictionary=dictionary)
    _check_generation(path, table.schema, generation)
    return table.to_pandas(self_destruct=True)


def read_lean_history(directory: Path, trials: pd.DataFrame, generation: str | None = None
                      ) -> pd.DataFrame:
    """The history as leanhistory reads it (the report's); raises as read_table does."""
    path = _table_path(directory, "history")
    _check_generation(path, pq.read_schema(path), generation)
    return leanhistory.read_lean(path, trials)


def _table_path(directory: Path, name: str) -> Path:
    path = directory / f"{name}.parquet"
    if path.is_symlink():
        raise ValueError(f"{path.name} is a symbolic link")
    return path


def _check_generation(path: Path, schema: pa.Schema, generation: str | None) -> None:
    found = (schema.metadata or {}).get(GENERATION_KEY, b"").decode("ascii", "replace")
    if generation is not None and found != generation:
        raise ValueError(f"{path.name} is of another run's generation")


def read_tables(directory: Path, generation: str, *, edges: bool = False
                ) -> dict[str, pd.DataFrame]:
    """All four tables of one generation (and an edge search's edges table)."""
    return {name: read_table(directory, name, generation) for name in _tables(edges)}


def write_tables(directory: Path, frames: Mapping[str, pd.DataFrame],
                 generation: str | None = None) -> None:
    """All four tables of one generation, and the edges table when `frames` holds one; the
    manifest naming it must be written after."""
    generation = generation or new_generation()
    for name in _tables(EDGES in frames):
        write_table(directory, name, frames[name], generation)


def _tables(edges: bool) -> tuple[str, ...]:
    return (*TABLES, EDGES) if edges else TABLES


def halving_search(manifest: Mapping[str, Any]) -> Halving | None:
    """The halving or hyperband search a manifest records (None for other sweeps, or a record
    unusable)."""
    search = manifest.get("search")
    if not isinstance(search, dict) or search.get("method") not in HALVING_METHODS:
        return None
    try:
        found = Halving(**search)
    except TypeError:
        return None
    numbers = (found.eta, found.min_epochs, found.max_epochs, found.seed)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers) or not (
            found.eta >= 2 and 1 <= found.min_epochs < found.max_epochs and found.seed >= 0):
        return None
    return found


def edge_search(manifest: Mapping[str, Any]) -> EdgeSearch | None:
    """The edge search a manifest records (None for other sweeps, or a record unusable)."""
    search = manifest.get("search")
    if not isinstance(search, dict) or search.get("method") != "edge":
        return None
    try:
        found = EdgeSearch(**{k: v for k, v in search.items() if k != "method"})
    except TypeError:
        return None
    return found if found.outcome in PASSING else None


# --- the lock -----------------------------------------------------------------------------

def _open_lock(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResultsError(f"{path}: a symbolic link inside a results folder; nnsweep "
                               "never follows one: remove it") from None
        raise


def _owner_of(fd: int) -> dict[str, Any]:
    """The pid and host a lock file names, or {} when it names none that makes sense."""
    with contextlib.suppress(OSError, ValueError, RecursionError):
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
        if (isinstance(data, dict) and isinstance(data.get("pid"), int)
                and not isinstance(data.get("pid"), bool) and isinstance(data.get("host"), str)):
            return {"pid": data["pid"], "host": data["host"]}
    return {}


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the folder for one run: exactly one holder, even among racing processes.

    The kernel's flock is the primitive: it is atomic, and it is released when its holder
    dies, so a lock file left by a killed run holds nothing and is simply taken over. After
    locking, the file must still be the one at the path (a holder that finishes unlinks it);
    otherwise the lock was taken on a file nobody else can see, and the taking starts again.
    """
    path = directory / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while True:
        fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner_of(fd)
            os.close(fd)
            if time.monotonic() < deadline:  # perhaps a reader looking, for a moment
                time.sleep(0.02)
                continue
            raise FolderBusy(directory, owner) from None
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        if current is None or not os.path.samestat(os.fstat(fd), current):
            os.close(fd)
            continue
        break
    try:
        previous = _owner_of(fd)
        if previous and previous != me:
            warnings.warn(f"{path}: taking over the lock of run {previous['pid']} on "
                          f"{previous['host']}, which is no longer running", StoreWarning,
                          stacklevel=3)
        elif os.fstat(fd).st_size and not previous:
            warnings.warn(f"{path}: taking over a lock left by a run that is no longer "
                          "running", StoreWarning, stacklevel=3)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still holding it, so no taker can lock a stale inode
        os.close(fd)


def live_owner(directory: Path) -> dict[str, Any] | None:
    """The run holding the folder now ({} when its lock names nobody), or None when none is."""
    path = directory / LOCK
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except (FileNotFoundError, ResultsError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _owner_of(fd)
        if owner == {"pid": os.getpid(), "host": socket.gethostname()}:
            return None  # this process holds it: a run building its own report
        return owner
    finally:
        os.close(fd)
    return None


# --- the manifest ---------------------------------------------------------------------------

# The manifest's fields that nnsweep reads back, with the type each must have.
_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str, "description": str, "spec_hash": str, "dataset": dict, "axes": list,
    "report": dict, "trials": list, "invocations": list, "status_counts": dict,
    "generation": str, "created": str,
}


def _manifest_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    for key, kind in _MANIFEST_FIELDS.items():
        if key in data and data[key] is not None and not isinstance(data[key], kind):
            return f"{key} is not a {getattr(kind, '__name__', kind)}"
    for key in ("trials", "axes"):
        if not all(isinstance(v, str) for v in data.get(key) or []):
            return f"{key} holds something other than text"
    if not all(isinstance(v, dict) for v in data.get("invocations") or []):
        return "invocations holds something other than objects"
    dataset = data.get("dataset") or {}
    if not isinstance(dataset.get("hash", ""), str):
        return "dataset.hash is not text"
    return None


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest, or {} when there is none or it is damaged (with a warning: the journal
    and spec.toml are what it is rebuilt from)."""
    path = directory / MANIFEST
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        if path.is_symlink():
            raise ValueError("a symbolic link")
        data = json.loads(path.read_text(encoding="utf-8"))
        problem = _manifest_problem(data)
    except (OSError, ValueError, RecursionError) as exc:
        problem = str(exc)
    if problem is not None:
        warnings.warn(f"{path}: unreadable ({problem}); it is rebuilt from {JOURNAL}",
                      StoreWarning, stacklevel=2)
        return {}
    return dict(data)


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
    write_atomic(directory / MANIFEST, text.encode("utf-8"))


# --- preparing a folder for a run -----------------------------------------------------------

def prepare(directory: Path, *, fresh: bool) -> None:
    """Make a locked folder ready for a run: checked, emptied of nnsweep's files when fresh,
    rid of temporary files a kill left behind, and its journal ending on a whole line."""
    check_folder(directory, fresh=fresh)
    for entry in directory.iterdir():
        if _is_temporary(entry.name) or (fresh and entry.name in OWN_FILES - {LOCK}):
            entry.unlink()
    plots = directory / PLOTS
    if plots.is_dir():
        for entry in plots.iterdir():
            if _is_temporary(entry.name) or fresh:
                entry.unlink()
        if fresh:
            plots.rmdir()
    if fresh:
        drop_states(directory, keep=())
    journal.drop_torn_tail(directory / JOURNAL)


def finished_records(directory: Path) -> dict[str, Record]:
    """Every trial's last valid journal record (unusable lines skipped with a warning)."""
    if (directory / JOURNAL).is_symlink():
        raise ResultsError(f"{directory / JOURNAL}: a symbolic link inside a results folder; "
                           "nnsweep never follows one: replace it by the file itself")
    return journal.latest(directory / JOURNAL)


def append(directory: Path, records: Sequence[Record], *, keep_weights: bool) -> None:
    journal.append(directory / JOURNAL, records, keep_weights=keep_weights)


def build_tables(records: Iterable[Record], edge: EdgeSearch | None = None,
                 halving: Halving | None = None, order: Sequence[str] = ()
                 ) -> dict[str, pd.DataFrame]:
    """All four tables from journal records, in the order given; and with `edge`, the edge
    search's table. A `halving` search deals its brackets over the trials in `order` (all the
    search's trials, as the manifest names them)."""
    records = list(records)
    done = [(r.trial, r.result) for r in records if r.result is not None]
    brackets = halving.deal(order) if halving is not None else {}

    def stop(record: Record) -> tuple[int, int, int] | None:
        if halving is None or record.result is None or record.trial not in brackets:
            return None
        epochs, bracket = record.stopped or record.params.epochs, brackets[record.trial]
        return epochs, halving.rung_of(bracket, epochs), bracket

    trials = tables.trials_frame(
        tables.trial_row(r.trial, r.params, r.result, r.seconds, r.status, r.error, r.engine,
                         stop(r))
        for r in records)
    return {
        "trials": trials,
        "history": tables.history_table(done),
        "directions": tables.directions_table(done),
        "summary": tables.summary_frame(trials),
        **({EDGES: tables.edges_frame(trials, edge)} if edge is not None else {}),
    }


def write_state(directory: Path, trial: str, state: TrainState) -> None:
    """states/<trial>.npz: where a paused trial stands, so a rerun goes on from there."""
    folder = directory / STATES
    folder.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **state.arrays())  # type: ignore[arg-type]
    write_atomic(folder / f"{trial}.npz", buffer.getvalue())


def read_state(directory: Path, trial: str, params: TrialParams) -> TrainState | None:
    """A paused trial's saved state, checked against its parameters; None when there is none
    or it is damaged (the trial then trains again from its start, with a warning)."""
    path = directory / STATES / f"{trial}.npz"
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return TrainState.from_arrays({name: saved[name] for name in saved.files}, params)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        warnings.warn(f"{path}: skipped a damaged state ({exc}); trial {trial} trains again "
                      "from its start", StoreWarning, stacklevel=2)
        return None


def drop_states(directory: Path, keep: Iterable[str]) -> None:
    """Delete the saved states of trials not in `keep` (out of the race, or finished), and the
    states folder once it is empty; nothing there but nnsweep's own state files is touched."""
    folder = directory / STATES
    if folder.is_symlink() or not folder.is_dir():
        return
    kept = {f"{trial}.npz" for trial in keep}
    for entry in folder.iterdir():
        if _is_own_state(entry) and entry.name not in kept:
            entry.unlink()
    with contextlib.suppress(OSError):  # not empty: a kept state, or a file not ours
        folder.rmdir()


def write_weights(directory: Path, records: Iterable[Record]) -> None:
    """weights.npz: one array per trial and layer, keyed "<trial>/<layer>"."""
    arrays = {f"{r.trial}/{layer}": w
              for r in records if r.result is not None
              for layer, w in enumerate(r.result.weights)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    write_atomic(directory / WEIGHTS, buffer.getvalue())


def intact_generation(directory: Path, manifest: Mapping[str, Any], *, edges: bool = False
                      ) -> str | None:
    """The manifest's table generation when every table on disk is of it (the edges table
    too, with `edges`), else None (read from the parquet footers alone: cheap whatever the
    tables' size)."""
    generation = manifest.get("generation")
    if not isinstance(generation, str):
        return None
    for name in _tables(edges):
        path = directory / f"{name}.parquet"
        try:
            if path.is_symlink() or not path.is_file():
                return None
            found = (pq.read_schema(path).metadata or {}).get(GENERATION_KEY, b"")
        except (OSError, ValueError, pa.ArrowException):
            return None
        if found != generation.encode("ascii", "replace"):
            return None
    return generation


def report_key(manifest: Mapping[str, Any], x: str | None = None, y: str | None = None,
               facet: str | None = None, trial: str | None = None) -> str:
    """What a report shows: the tables' generation, the sweep's [report] layout and the
    options it was asked for. A page whose key is current needs no rebuilding."""
    payload = [manifest.get("generation"), manifest.get("report"), [x, y, facet, trial]]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:16]


def report_meta(key: str) -> str:
    return f'<meta name="nnsweep-report" content="{key}">'


def report_is_current(directory: Path, manifest: Mapping[str, Any]) -> bool:
    """Whether report.html shows these tables in the sweep's own layout already."""
    page = directory / REPORTS[0]
    if page.is_symlink() or not page.is_file() or not (directory / PLOTS).is_dir():
        return False
    try:
        with open(page, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return manifest.get("generation") is not None and report_meta(report_key(manifest)) in head


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
    """A results folder's tables, as pandas frames, and its manifest.

    `expected` counts the trials of the sweep, so a folder whose run was interrupted (or is
    still running: `running` names that run) says it is partial.
    """

    directory: Path
    trials: pd.DataFrame
    history: pd.DataFrame
    directions: pd.DataFrame
    summary: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    expected: int | None = None
    running: dict[str, Any] | None = None
    edges: pd.DataFrame | None = None  # an edge search's table; None for other sweeps

    @property
    def partial(self) -> bool:
        return self.expected is not None and len(self.trials) < self.expected

    def network(self, trial: str) -> Network:
        """The trained network of one trial (a unique prefix of its id is enough)."""
        matches = [t for t in self.trials["trial"] if str(t).startswith(trial)]
        if len(matches) != 1:
            what = "no trial" if not matches else f"{len(matches)} trials"
            raise ResultsError(f"{self.directory}: {what} with id {trial!r}")
        trial_id = str(matches[0])
        record = finished_records(self.directory).get(trial_id)
        if record is None:
            raise ResultsError(f"{self.directory}: trial {trial_id} is not in the journal")
        weights = _saved_weights(self.directory / WEIGHTS, trial_id)
        try:
            journal.check_shapes(weights, record.params, "weights",  # inputs and outputs too
                                 like=record.result.direction_changes if record.result else ())
        except BadRecord as exc:
            raise ResultsError(f"{self.directory / WEIGHTS}: trial {trial_id}: {exc}") from None
        return Network(trial_id, record.params, weights)


def _saved_weights(path: Path, trial_id: str) -> tuple[Array, ...]:
    if path.is_symlink():
        raise ResultsError(f"{path}: a symbolic link inside a results folder; nnsweep never "
                           "follows one")
    if not path.exists():
        raise ResultsError(f"{path.parent}: no saved weights; set save_weights = true "
                           "under [run] in the sweep file and run it again")
    try:
        with open(path, "rb") as handle:  # np.load(path) leaves it open when it is damaged
            saved = np.load(handle, allow_pickle=False)
            if not isinstance(saved, np.lib.npyio.NpzFile):  # a lone .npy array
                raise ValueError("not an .npz archive")
            layers = sorted((k for k in saved.files if k.startswith(f"{trial_id}/")),
                            key=lambda k: int(k.rsplit("/", 1)[1]))
            weights = tuple(np.asarray(saved[k]) for k in layers)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ResultsError(f"{path}: damaged ({type(exc).__name__}); expected an .npz archive of "
                           "float64 arrays: run the sweep again in this folder to write it "
                           "anew from the journal") from None
    if not weights:
        raise ResultsError(f"{path.parent}: trial {trial_id} has no saved weights "
                           "(it failed, or it was trained before save_weights was set)")
    if any(w.dtype != np.float64 or w.ndim != 2 for w in weights):
        raise ResultsError(f"{path}: trial {trial_id}: expected 2-D float64 weights; run the "
                           "sweep again in this folder to write them anew from the journal")
    return weights


def check_results_folder(directory: Path) -> None:
    """Refuse, in one line, a folder that holds no results or that nnsweep may not read."""
    check_name(directory)
    if not is_results_folder(directory):
        raise ResultsError(f"{directory}: not a results folder (no {MANIFEST}); "
                           "run a sweep first: python -m nnsweep run SPEC")
    check_links(directory)


def load_results(directory: str | Path, *, lean_history: bool = False) -> Results:
    """Read a results folder without writing to it.

    The tables are read when they are one whole generation; a torn or damaged generation, or a
    folder a run is writing now, is rebuilt in memory from the journal (with a warning when
    something was damaged). `lean_history`: the history as the report reads it (see
    nnsweep.leanhistory), its trial and split as categories and only the metrics it draws,
    and the directions' trial as categories too.
    """
    directory = Path(directory)
    check_results_folder(directory)
    manifest = read_manifest(directory)
    running = live_owner(directory)
    generation = manifest.get("generation")
    edge = edge_search(manifest)
    frames: dict[str, pd.DataFrame] = {}
    damaged = []
    if running is None:
        for name in _tables(edge is not None):
            try:
                frames[name] = (read_lean_history(directory, frames["trials"], generation)
                                if lean_history and name == "history" and "trials" in frames
                                else read_table(directory, name, generation, trial_categories=(
                                    lean_history and name == "directions")))
            except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
                reason = str(exc) if "generation" in str(exc) else type(exc).__name__
                damaged.append(f"{name}.parquet ({reason})")
    order = manifest.get("trials")
    if damaged or running is not None:
        records = finished_records(directory)
        dataset = (manifest.get("dataset") or {}).get("hash")
        chosen = ([records[t] for t in order if t in records] if isinstance(order, list)
                  else [r for r in records.values() if dataset in (None, r.dataset)])
        frames = build_tables(chosen, edge, halving_search(manifest),
                              order if isinstance(order, list) else [])
        if damaged:
            warnings.warn(f"{directory}: rebuilt the tables from {JOURNAL} because "
                          f"{', '.join(damaged)} could not be read", StoreWarning,
                          stacklevel=2)
        if lean_history:
            frames["history"] = leanhistory.compact(frames["history"], frames["trials"])
            frames["directions"] = frames["directions"].astype({"trial": "category"})
    expected = len(order) if isinstance(order, list) else None
    return Results(directory=directory, manifest=manifest, expected=expected, running=running,
                   **frames)
