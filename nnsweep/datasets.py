"""The data a sweep trains on: the textbooks' built-in sets, inline tables and CSV files.

Built-ins:

- ``xor``: iamtrask's x rows 001, 011, 101, 111 and y 0 1 1 0.
- ``streetlights``: Grokking ch. 6, x rows 101, 011, 001, 111 and y 1 1 0 0.
- ``streetlights6``: Grokking ch. 5, six rows 101, 011, 001, 111, 011, 101 and y 0 1 0 1 1 0.
- ``streetlights6-dimmer``: the same six patterns with dimmer lights, same y.
- ``rectangles``: ``rows`` random 4-value rows rounded to 0.1, target their mean, drawn from
  ``numpy.random.RandomState(seed)`` (the 4-3-2-1 notebook's data, reproducibly).
- ``moons``, ``circles``: two classes of ``rows`` points in the plane, as scikit-learn's
  ``make_moons`` and ``make_circles`` (inner circle at half the radius) draw them from
  ``RandomState(seed)``, shuffled, with Gaussian ``noise``; y is the class, 0 or 1.
- ``spirals``: two interleaved spiral arms (one and a half turns each), drawn the same way.
- ``parity``: every string of ``bits`` bits, y 1 where it holds an odd number of ones (XOR is
  the two-bit case without the constant column).
- ``modular``: every pair a, b below ``modulus``, one-hot a beside one-hot b, y one-hot
  (a + b) mod modulus: the task networks grok.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 rows), pixels scaled to
  [0, 1], y one-hot over the 10 classes; needs the ``datasets`` extra.

Each generated set takes only its own options (``OPTIONS``), with the defaults given there.

``y`` is always 2-D, (rows, outputs). A CSV file has a header row of column names; the ``target``
columns become y and the other columns, in file order, become x. Every problem with user data
raises DataError naming the file (or the sweep-file key), the line and the column.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray

from nnsweep.errors import DataError

BUILTINS: tuple[str, ...] = (
    "xor",
    "streetlights",
    "streetlights6",
    "streetlights6-dimmer",
    "rectangles",
    "moons",
    "circles",
    "spirals",
    "parity",
    "modular",
    "digits",
)

# The options each generated set takes, with their defaults; a set not named takes none.
OPTIONS: dict[str, dict[str, int | float]] = {
    "rectangles": {"rows": 1000, "seed": 0},
    "moons": {"rows": 200, "noise": 0.1, "seed": 0},
    "circles": {"rows": 200, "noise": 0.05, "seed": 0},
    "spirals": {"rows": 200, "noise": 0.05, "seed": 0},
    "parity": {"bits": 4},
    "modular": {"modulus": 7},
}
MAX_BITS = 20  # parity: 2**20 rows
MAX_MODULUS = 1000  # modular: a million rows of 2000 inputs
EXTRA = "pip install 'nnsweep[datasets]'"  # what the digits need

_FIXED: dict[str, tuple[list[list[float]], list[float]]] = {
    "xor": ([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], [0, 1, 1, 0]),
    "streetlights": ([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1]], [1, 1, 0, 0]),
    "streetlights6": (
        [[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1], [1, 0, 1]],
        [0, 1, 0, 1, 1, 0],
    ),
    "streetlights6-dimmer": (
        [[0.9, 0.0, 1], [0.2, 0.8, 1], [0.1, 0.0, 1], [0.8, 0.9, 1], [0.1, 0.7, 1], [0.9, 0.1, 0]],
        [0, 1, 0, 1, 1, 0],
    ),
}

MAX_ROWS = 10_000_000
# A CSV file is read whole into memory (a few times its size while parsed); beyond this it is
# no training set for small networks.
MAX_CSV_BYTES = 1_000_000_000

_NOT_REGULAR: dict[int, str] = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and targets, read-only, with a content hash that goes into every trial id; the
    rows held out for validation, if any, apart from the rows trained on."""

    name: str
    x: NDArray[np.float64]  # (rows, inputs) trained on
    y: NDArray[np.float64]  # (rows, outputs)
    source: str = ""
    x_val: NDArray[np.float64] | None = None  # (validation rows, inputs), never trained on
    y_val: NDArray[np.float64] | None = None  # (validation rows, outputs)

    def __post_init__(self) -> None:
        for x_name, y_name in (("x", "y"), ("x_val", "y_val")):
            given_x, given_y = getattr(self, x_name), getattr(self, y_name)
            if given_x is None and given_y is None and x_name == "x_val":
                continue
            x = np.array(given_x, dtype=np.float64, order="C")  # (rows, inputs), our own copy
            y = np.array(given_y, dtype=np.float64, order="C")  # (rows, outputs)
            if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
                raise ValueError(f"dataset {self.name!r}: {x_name} {x.shape} and {y_name} "
                                 f"{y.shape} must be 2-D with the same number of rows")
            x.flags.writeable = False
            y.flags.writeable = False
            object.__setattr__(self, x_name, x)
            object.__setattr__(self, y_name, y)
        held = self.validation
        if held is not None and (held[0].shape[1], held[1].shape[1]) != (self.x.shape[1],
                                                                         self.y.shape[1]):
            raise ValueError(f"dataset {self.name!r}: validation rows of another width")

    @cached_property
    def hash(self) -> str:
        """Identity of the numbers, not of the name: renaming a file keeps its trials' ids.
        The validation rows count too (a data set without them hashes as it always has)."""
        digest = hashlib.sha256()
        digest.update(f"x{self.x.shape}y{self.y.shape}".encode())
        digest.update(self.x.tobytes())
        digest.update(self.y.tobytes())
        if self.x_val is not None and self.y_val is not None:
            digest.update(f"validation x{self.x_val.shape}y{self.y_val.shape}".encode())
            digest.update(self.x_val.tobytes())
            digest.update(self.y_val.tobytes())
        return digest.hexdigest()[:16]

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def validation(self) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """The held-out rows (x, y), or None."""
        if self.x_val is None or self.y_val is None:
            return None
        return self.x_val, self.y_val

    def split(self, fraction: float, seed: int = 0) -> Dataset:
        """Hold out round(fraction * rows) rows: the first of RandomState(seed)'s permutation
        of the rows; both parts keep the rows' original relative order."""
        rows = self.rows
        held = round(fraction * rows)
        if not 1 <= held < rows:
            raise DataError(f"validation = {fraction} holds out {held} of the {rows} rows of "
                            f"{self.name}; expected at least one row on each side")
        order = np.random.RandomState(seed).permutation(rows)  # (rows,)
        out = np.zeros(rows, dtype=bool)
        out[order[:held]] = True
        return Dataset(self.name, self.x[~out], self.y[~out],
                       f"{self.source}, {held} of its {rows} rows held out (split_seed {seed})",
                       self.x[out], self.y[out])

    def held_out(self, other: Dataset) -> Dataset:
        """These rows to train on, `other`'s to validate on."""
        if other.x.shape[1:] != self.x.shape[1:] or other.y.shape[1:] != self.y.shape[1:]:
            raise DataError(f"{other.source or other.name}: {other.x.shape[1]} inputs and "
                            f"{other.y.shape[1]} outputs; the training data ({self.name}) has "
                            f"{self.x.shape[1]} and {self.y.shape[1]}")
        return Dataset(self.name, self.x, self.y,
                       f"{self.source}, validated on {other.source or other.name}",
                       other.x, other.y)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """' (did you mean 'alpha'?)' for a near miss, '' otherwise."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def builtin(name: str, **options: int | float) -> Dataset:
    """A built-in dataset; `options` (rows, seed, noise, bits, modulus) shape the generated
    ones, each taking only its own (OPTIONS) and the defaults for the rest."""
    if name not in BUILTINS:
        raise DataError(f"unknown dataset {name!r}{did_you_mean(name, BUILTINS)}; expected "
                        f"one of {', '.join(BUILTINS)}, a [dataset] table with x and y, "
                        "or csv = \"file.csv\"")
    allowed = OPTIONS.get(name, {})
    if unknown := sorted(set(options) - set(allowed)):
        raise DataError(f"{name}: takes no {unknown[0]}" + (
            f"; it takes {', '.join(allowed)}" if allowed else ""))
    chosen = {**allowed, **options}
    for key, value in chosen.items():
        low, high = _RANGES[key]
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not (whole or (key == "noise" and isinstance(value, float))) or not (
                low <= value <= high):
            raise DataError(f"{name}: {key} = {value}: expected "
                            + ("a number from 0 to 10" if key == "noise" else
                               f"an integer from {low:,} to {high:,}"))
    if name in _FIXED:
        x_rows, targets = _FIXED[name]
        x = np.array(x_rows, dtype=np.float64)  # (rows, 3)
        y = np.array(targets, dtype=np.float64).reshape(-1, 1)  # (rows, 1)
        return Dataset(name, x, y, f"built-in {name}")
    x, y = _GENERATORS[name](**chosen)
    shown = ", ".join(f"{key}={value}" for key, value in chosen.items())
    return Dataset(name, x, y, f"built-in {name}" + (f" ({shown})" if shown else ""))


_RANGES: dict[str, tuple[float, float]] = {
    "rows": (1, MAX_ROWS), "seed": (0, 2**32 - 1), "noise": (0.0, 10.0),
    "bits": (1, MAX_BITS), "modulus": (2, MAX_MODULUS),
}
Pair = tuple[NDArray[np.float64], NDArray[np.float64]]


def _rectangles(rows: int, seed: int) -> Pair:
    rng = np.random.RandomState(seed)
    x = np.round(rng.random_sample((rows, 4)), 1)  # (rows, 4), drawn row by row
    return x, (x.sum(axis=1) / 4).reshape(rows, 1)  # (rows, 1)


def _two_classes(first: NDArray[np.float64], second: NDArray[np.float64], noise: float,
                 rng: np.random.RandomState) -> Pair:
    """scikit-learn's order of draws: shuffle the rows, then add the noise."""
    x = np.concatenate([first, second])  # (rows, 2)
    y = np.concatenate([np.zeros(len(first)), np.ones(len(second))])  # (rows,)
    order = rng.permutation(len(x))  # (rows,)
    x, y = x[order], y[order]
    x = x + rng.normal(scale=noise, size=x.shape)  # (rows, 2)
    return x, y.reshape(-1, 1)  # (rows, 1)


def _moons(rows: int, noise: float, seed: int) -> Pair:
    outer = np.linspace(0, np.pi, rows // 2)  # (rows // 2,) angles
    inner = np.linspace(0, np.pi, rows - rows // 2)  # (rows - rows // 2,)
    return _two_classes(np.column_stack([np.cos(outer), np.sin(outer)]),
                        np.column_stack([1 - np.cos(inner), 1 - np.sin(inner) - 0.5]),
                        noise, np.random.RandomState(seed))


def _circles(rows: int, noise: float, seed: int) -> Pair:
    outer = np.linspace(0, 2 * np.pi, rows // 2, endpoint=False)  # (rows // 2,)
    inner = np.linspace(0, 2 * np.pi, rows - rows // 2, endpoint=False)
    return _two_classes(np.column_stack([np.cos(outer), np.sin(outer)]),
                        np.column_stack([np.cos(inner) * 0.5, np.sin(inner) * 0.5]),
                        noise, np.random.RandomState(seed))


def _spirals(rows: int, noise: float, seed: int) -> Pair:
    def arm(count: int, turn: float) -> NDArray[np.float64]:
        t = np.linspace(0.05, 1, count)  # (count,) radius, from near the centre out
        angle = 3 * np.pi * t + turn  # one and a half turns
        return np.column_stack([t * np.cos(angle), t * np.sin(angle)])  # (count, 2)
    return _two_classes(arm(rows // 2, 0.0), arm(rows - rows // 2, np.pi), noise,
                        np.random.RandomState(seed))


def _parity(bits: int) -> Pair:
    numbers = np.arange(2**bits)  # (2**bits,)
    x = (numbers[:, None] >> np.arange(bits - 1, -1, -1)) & 1  # (2**bits, bits), big-endian
    return x.astype(np.float64), (x.sum(axis=1) % 2).astype(np.float64).reshape(-1, 1)


def _modular(modulus: int) -> Pair:
    a, b = np.divmod(np.arange(modulus**2), modulus)  # (p*p,) each: every pair, a major
    eye = np.eye(modulus)  # (p, p)
    return np.hstack([eye[a], eye[b]]), eye[(a + b) % modulus]  # (p*p, 2p), (p*p, p)


def _digits() -> Pair:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(f"digits: needs scikit-learn: {EXTRA}") from None
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0  # (1797, 64) in [0, 1]
    return x, np.eye(10)[np.asarray(bunch.target)]  # (1797, 10) one-hot


_GENERATORS: dict[str, Callable[..., Pair]] = {
    "rectangles": _rectangles, "moons": _moons, "circles": _circles, "spirals": _spirals,
    "parity": _parity, "modular": _modular, "digits": _digits,
}


def from_inline(x: object, y: object, where: str, *, name: str = "inline") -> Dataset:
    """Data written in the sweep file; `where` (e.g. "sweeps/a.toml: dataset") prefixes messages.

    x is a list of rows (a list of plain numbers means one input per row); y is a list of
    numbers (one output) or a list of rows.
    """
    x_array = _inline_matrix(x, f"{where}.x")  # (rows, inputs)
    y_array = _inline_matrix(y, f"{where}.y")  # (rows, outputs)
    if x_array.shape[0] != y_array.shape[0]:
        raise DataError(f"{where}.y: {y_array.shape[0]} rows, but x has {x_array.shape[0]} "
                        "rows; expected one target row per input row")
    return Dataset(name, x_array, y_array, f"inline in {where}")


def _inline_matrix(value: object, where: str) -> NDArray[np.float64]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a non-empty list of rows")
    if not any(isinstance(cell, list) for cell in value):
        value = [[cell] for cell in value]
    width: int | None = None
    rows: list[list[float]] = []
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise DataError(f"{where}[{r}]: expected a non-empty list of numbers (a row)")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise DataError(f"{where}[{r}]: {len(row)} values, but row 0 has {width}; "
                            "expected rows of equal length")
        for c, cell in enumerate(row):
            if finite_float(cell) is None:
                raise DataError(f"{where}[{r}][{c}] = {cell!r}: expected a finite number")
        rows.append([float(cell) for cell in row])
    return np.array(rows, dtype=np.float64)  # (rows, width)


def finite_float(value: object) -> float | None:
    """The value as a float when it is a finite number (not a bool, not too big), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def file_problem(path: Path, kind: str, limit: int, info: os.stat_result | None = None
                 ) -> str | None:
    """What makes `path` unfit to read as `kind` ("a CSV file"), or None when it is fit.

    Only a regular file of at most `limit` bytes is read: a named pipe would hang the run, a
    device such as /dev/zero fill the memory. Checked with stat before opening (and with
    `info`, the open file's fstat, after: the name may have changed hands in between).
    """
    try:
        info = info or os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "no such file"
    except UnicodeEncodeError:
        return "not a usable file name"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        return f"a folder, expected {kind}"
    if not stat.S_ISREG(info.st_mode):
        what = _NOT_REGULAR.get(stat.S_IFMT(info.st_mode), "not a regular file")
        return f"{what}, expected {kind} (a regular file)"
    if info.st_size > limit:
        return f"{size_text(info.st_size)}, expected {kind} of at most {size_text(limit)}"
    return None


@contextlib.contextmanager
def open_regular(path: Path, kind: str, limit: int, *, encoding: str,
                 newline: str | None = None) -> Iterator[IO[str]]:
    """`path` opened as text once file_problem finds it fit; raises FileProblem otherwise.

    Opened without blocking (a FIFO put in its place meanwhile cannot hang the open) and
    checked again through the open file.
    """
    problem = file_problem(path, kind, limit)
    if problem is not None:
        raise FileProblem(problem)
    with open(path, encoding=encoding, newline=newline, opener=_nonblocking) as handle:
        problem = file_problem(path, kind, limit, os.fstat(handle.fileno()))
        if problem is not None:
            raise FileProblem(problem)
        yield handle


class FileProblem(Exception):
    """A file that is not fit to read; the message completes "FILE: ..."."""


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def size_text(count: int) -> str:
    """A size in bytes for a message: 1.2 GB, 64 MB, 812 bytes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def from_csv(path: Path, target: Sequence[str]) -> Dataset:
    """A CSV file with a header row; `target` names the y columns, the rest are x."""
    shown = str(path).encode("utf-8", "backslashreplace").decode("utf-8")  # printable
    try:
        with open_regular(path, "a CSV file", MAX_CSV_BYTES, newline="",
                          encoding="utf-8-sig") as handle:
            header, rows, lines = _read_csv(handle, shown)
    except FileProblem as exc:
        raise DataError(f"{shown}: {exc}") from None
    except UnicodeEncodeError:
        raise DataError(f"{shown}: not a usable file name") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    except csv.Error as exc:
        raise DataError(f"{shown}: not a readable CSV file ({exc})") from None

    if not target:
        raise DataError(f"{shown}: no target column given; expected target = [\"column\", ...]")
    for column in target:
        if column not in header:
            raise DataError(f"{shown}: target column {column!r} not found"
                            f"{did_you_mean(column, header)}; the columns are "
                            f"{', '.join(header)}")
    if len(set(target)) != len(target):
        raise DataError(f"{shown}: a target column is named twice in {list(target)}")
    inputs = [i for i, column in enumerate(header) if column not in target]
    if not inputs:
        raise DataError(f"{shown}: every column is a target; expected at least one input column")
    if not rows:
        raise DataError(f"{shown}: no data rows; expected at least one row below the header")
    values = np.empty((len(rows), len(header)), dtype=np.float64)  # (rows, columns)
    for r, (row, line) in enumerate(zip(rows, lines, strict=True)):
        for c, cell in enumerate(row):
            values[r, c] = _csv_number(cell, f"{shown}:{line}: column {header[c]!r}")
    outputs = [header.index(column) for column in target]
    return Dataset(path.name, values[:, inputs], values[:, outputs], shown)


def _read_csv(
    handle: Iterable[str], shown: str
) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and each row's line number in the file (1-based); blank lines skipped."""
    reader = csv.reader(handle)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if not row or all(not cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            _check_header(header, shown, reader.line_num)
            continue
        if len(row) != len(header):
            raise DataError(f"{shown}:{reader.line_num}: {len(row)} cells, expected "
                            f"{len(header)} (one per header column)")
        rows.append(row)
        lines.append(reader.line_num)
        if len(rows) > MAX_ROWS:
            raise DataError(f"{shown}: more than {MAX_ROWS:,} rows")
    if header is None:
        raise DataError(f"{shown}: empty file; expected a header row of column names")
    return header, rows, lines


def _check_header(header: list[str], shown: str, line: int) -> None:
    for c, column in enumerate(header):
        if not column:
            raise DataError(f"{shown}:{line}: column {c + 1} has no name; expected a header "
                            "row of column names")
        if header.index(column) != c:
            raise DataError(f"{shown}:{line}: column {column!r} appears twice in the header")


def _csv_number(cell: str, where: str) -> float:
    text = cell.strip()
    if not text:
        raise DataError(f"{where} is empty: expected a number")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where} = {cell!r}: expected a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where} = {cell!r}: expected a finite number")
    return value
