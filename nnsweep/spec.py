"""The sweep file: TOML in, a validated, frozen Spec out, or every problem at once.

The format (DESIGN.md section 2)::

    name = "xor"                       # default: the file's stem; names results/<name>/
    description = "what this shows"
    dataset = "xor"                    # a built-in, or a [dataset] table (below)

    [params]                           # fixed for every trial; every key has a default
    epochs = 60000
    seed = 1

    [grid]                             # swept: the cartesian product of these axes
    alpha = [0.001, 0.01, 0.1, 1, 10, 100, 1000]
    hidden = [4, [3, 2]]               # one layer of 4, then two layers of 3 and 2

A key stands in [params] or in [grid] (or a zip group), never in two of them. In [grid] a
value is always the list of values to try, or a range:

- ``alpha = { log = [0.001, 1000], num = 7 }``: 7 values evenly spaced in log scale, both
  ends included (0.001, 0.01, ..., 1000);
- ``tolerance = { linear = [0.01, 0.05], num = 5 }``: evenly spaced, both ends included;
- ``seed = { range = [0, 10] }``: the integers 0 to 9, as Python's range (``step = 2`` optional).

Log and linear values are rounded to 12 significant digits, so the ends and round values come
out exact; for integer parameters (epochs, seed, hidden, ...) they must land on integers.

Zipped axes vary together instead of crossing; each group is one axis of the product::

    [[zip]]
    alpha = [0.5, 0.1, 0.01]
    epochs = [1000, 5000, 50000]

``[[include]]`` adds one trial each, [params] with the table's values on top (an include may
re-add a trial that an exclude removed, but not repeat one the grid already has);
``[[exclude]]`` drops every product trial that holds all of its values (it can only name
swept parameters, each with one value)::

    [[include]]
    hidden = [3, 2]
    alpha = 0.5

    [[exclude]]
    hidden = 256
    alpha = 1000

The dataset table is one of: a built-in (``name = "rectangles", rows = 1000, seed = 0``),
inline data (``x = [[0, 1], [1, 1]]``, ``y = [0, 1]``; y of plain numbers means one output),
or a CSV file (``csv = "data.csv"``, ``target = ["y"]``, the path relative to the sweep file).
Given weights: ``init = "given"`` and ``weights = [ [[0.5], [0.48], [-0.7]] ]`` in [params],
one (fan_in, fan_out) matrix per layer, checked against the layer sizes.

Execution choices stand under [run] (jobs, engine, backend, scheduler, address, save_weights)
and never change a trial's id; [report] picks the swept parameters that the heatmaps put on
x, y and facets.

Every problem becomes one line ``FILE: KEY = VALUE: expected ...`` (or ``FILE:LINE:COLUMN:
invalid TOML: ...``); nothing but SpecError and DataError ever leaves load_spec/parse_spec.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.datasets import (
    BUILTINS,
    Dataset,
    FileProblem,
    builtin,
    did_you_mean,
    finite_float,
    from_csv,
    from_inline,
    open_regular,
)
from nnsweep.errors import DataError, NnsweepWarning, SpecError
from nnsweep.grid import MAX_FILTERED, MAX_TRIALS, Axis, Grid
from nnsweep.network import weight_shapes
from nnsweep.params import (
    ACTIVATIONS,
    DEFAULTS,
    DESCENTS,
    INITS,
    METRICS,
    PARAM_NAMES,
    REDUCTIONS,
    TrialParams,
)

ENGINES: tuple[str, ...] = ("numpy", "numba", "auto")
BACKENDS: tuple[str, ...] = ("loky", "dask", "ray")
TOP_KEYS: tuple[str, ...] = ("name", "description", "dataset", "params", "grid", "zip",
                             "include", "exclude", "run", "report")
DATASET_KEYS: tuple[str, ...] = ("name", "rows", "seed", "x", "y", "csv", "target")
RUN_KEYS: tuple[str, ...] = ("jobs", "engine", "backend", "scheduler", "address", "save_weights")
REPORT_KEYS: tuple[str, ...] = ("x", "y", "facet")

MAX_AXIS = 1_000_000  # values one axis or range may hold
MAX_EPOCHS = 1_000_000_000
MAX_LAYER = 100_000
# Workers a sweep may ask for: a cluster's worth. On one machine the runner uses at most one
# per core (runner.workers_for); -1 means every core and -2 all but one, as in joblib.
MAX_WORKERS = 1024
# A sweep file is a page of TOML; inline data makes it longer, but beyond this it is no sweep
# file (a device such as /dev/zero would be read forever).
MAX_SPEC_BYTES = 64_000_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_INTEGER_PARAMS = ("hidden", "batch_size", "epochs", "seed", "record_every")


@dataclass(frozen=True)
class RunOptions:
    """[run]: execution choices, never part of a trial's id."""

    jobs: int | None = None  # None: all cores
    engine: str = "numpy"  # numpy | numba | auto
    backend: str = "loky"  # loky | dask | ray
    scheduler: str | None = None  # dask scheduler address
    address: str | None = None  # ray address
    save_weights: bool = False


@dataclass(frozen=True)
class ReportOptions:
    """[report]: which swept parameters the heatmaps put on x, y and facets."""

    x: str | None = None
    y: str | None = None
    facet: str | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    source: Path | None  # the sweep file
    dataset: Dataset
    fixed: Mapping[str, Any]  # [params] as resolved values (hidden as a tuple)
    axes: tuple[str, ...]  # names of the swept parameters (from [grid], zips, include)
    run: RunOptions
    report: ReportOptions
    text: str  # the resolved spec as TOML, written to results/<name>/spec.toml
    hash: str  # dataset + values not swept by [grid]/[[zip]] + axis names
    grid_axes: tuple[Axis, ...] = ()
    include: tuple[Mapping[str, Any], ...] = ()
    exclude: tuple[Mapping[str, Any], ...] = ()
    notes: tuple[str, ...] = ()  # valid, but likely not what was meant; one line each

    @cached_property
    def _grid(self) -> Grid:
        base = {**DEFAULTS, **self.fixed}
        return Grid(base, self.grid_axes, self.include, self.exclude, self.dataset.hash)

    def trials(self) -> Grid:
        return self._grid

    def size(self) -> int:
        """The trial count, from the axes' lengths: cheap for any grid, even 10^18 trials."""
        return self._grid.trial_count


def load_spec(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> Spec:
    """Read and validate a sweep file; raises SpecError (all problems) or DataError.

    `overrides` are [params] values given on the command line (--record-every); they are
    validated like the file's own and, like them, decide the trials' ids. The spec's notes
    (a minibatch as large as the data, ...) are issued as NnsweepWarning, one each.
    """
    source = Path(path)
    try:  # a BOM is not part of the TOML
        with open_regular(source, "a sweep file (.toml)", MAX_SPEC_BYTES,
                          encoding="utf-8-sig") as handle:
            text = handle.read()
    except FileProblem as exc:
        raise SpecError([f"{source}: {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"{source}: not UTF-8 text ({exc.reason})"]) from None
    except OSError as exc:
        raise SpecError([f"{source}: cannot be read ({exc.strerror or exc})"]) from None
    spec = parse_spec(text, source=source, overrides=overrides)
    for note in spec.notes:
        warnings.warn(note, NnsweepWarning, stacklevel=2)
    return spec


def parse_spec(
    text: str, *, source: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Spec:
    """Validate sweep-file text; a relative CSV path is taken from the source's folder."""
    return _Reader(text, source, dict(overrides or {})).spec()


# --- values -------------------------------------------------------------------------------

class _Invalid(Exception):
    """A value that breaks its rule; the argument completes "expected ..."."""


def _choice(names: Sequence[str]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in names:
            hint = did_you_mean(value, names) if isinstance(value, str) else ""
            raise _Invalid(f"one of {', '.join(_show(n) for n in names)}{hint}")
        return value
    return check


def _integer(low: int, high: int, what: str = "") -> Callable[[object], int]:
    expected = what or f"an integer from {low} to {high}"

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid(expected)
        return value
    return check


def _number(low: float, *, strict: bool) -> Callable[[object], float]:
    expected = f"a number {'>' if strict else '>='} {low:g}"

    def check(value: object) -> float:
        number = finite_float(value)
        if number is None or number < low or (strict and number == low):
            raise _Invalid(expected)
        return number
    return check


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("true or false")
    return value


def _hidden(value: object) -> tuple[int, ...]:
    expected = (f"a layer size from 1 to {MAX_LAYER:,}, or a list of them "
                "(4, [3, 2], [] for none)")
    sizes = value if isinstance(value, list) else [value]
    if len(sizes) > 100:
        raise _Invalid(expected)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_LAYER:
            raise _Invalid(expected)
    return tuple(sizes)


def _weights(value: object) -> tuple[tuple[tuple[float, ...], ...], ...]:
    expected = "a list of weight matrices, one per layer, each a list of rows of numbers"
    if not isinstance(value, list) or not value:
        raise _Invalid(expected)
    layers = []
    for matrix in value:
        if not isinstance(matrix, list) or not matrix:
            raise _Invalid(expected)
        rows = []
        for row in matrix:
            if not isinstance(row, list) or not row or len(row) != len(matrix[0]):
                raise _Invalid(expected + " of equal length")
            numbers = [finite_float(cell) for cell in row]
            if any(number is None for number in numbers):
                raise _Invalid(expected.replace("numbers", "finite numbers"))
            rows.append(tuple(float(n) for n in numbers if n is not None))
        layers.append(tuple(rows))
    return tuple(layers)


PARAM_RULES: dict[str, Callable[[object], Any]] = {
    "hidden": _hidden,
    "activation": _choice(ACTIVATIONS),
    "output": _choice(ACTIVATIONS),
    "alpha": _number(0, strict=True),
    "descent": _choice(DESCENTS),
    "batch_size": _integer(1, MAX_EPOCHS, "an integer >= 1"),
    "reduction": _choice(REDUCTIONS),
    "epochs": _integer(1, MAX_EPOCHS, f"an integer from 1 to {MAX_EPOCHS:,}"),
    "seed": _integer(0, 2**32 - 1),
    "init": _choice(INITS),
    "weights": _weights,
    "record_every": _integer(0, MAX_EPOCHS, "an integer >= 0 (0: epochs // 1000, at least 1)"),
    "metric": _choice(METRICS),
    "tolerance": _number(0, strict=False),
    "bias": _boolean,
    "shuffle": _boolean,
}
assert set(PARAM_RULES) == set(PARAM_NAMES)


def _show(value: object, depth: int = 0) -> str:
    """A value as the sweep file would spell it, cut short when long."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = _toml_string(value)
    elif isinstance(value, list | tuple):
        inner = "..." if depth >= 3 else ", ".join(_show(v, depth + 1) for v in value[:20])
        text = f"[{inner}{', ...' if len(value) > 20 else ''}]"
    elif isinstance(value, dict):
        inner = "..." if depth >= 3 else ", ".join(
            f"{_toml_key(str(k))} = {_show(v, depth + 1)}" for k, v in list(value.items())[:20])
        text = f"{{ {inner} }}"
    elif isinstance(value, int) and abs(value) > 10**30:
        text = "(a huge integer)"
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- reading ------------------------------------------------------------------------------

@dataclass
class _Value:
    """One parameter value as written, with its dotted key for messages."""

    key: str
    name: str
    value: Any


@dataclass
class _Reader:
    """One pass over the file, collecting every problem before anything is built."""

    text: str
    source: Path | None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    data_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seen: list[_Value] = field(default_factory=list)

    @property
    def where(self) -> str:
        return str(self.source) if self.source is not None else "<spec>"

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}: {key}: {message}")

    def invalid(self, key: str, value: object, expected: str) -> None:
        self.problems.append(f"{self.where}: {key} = {_show(value)}: expected {expected}")

    def spec(self) -> Spec:
        document = self.parse_toml()
        if self.overrides and isinstance(document.get("params", {}), dict):
            document["params"] = {**document.get("params", {}), **self.overrides}
        for key in document:
            if key not in TOP_KEYS:
                self.unknown(key, key, TOP_KEYS, hint_params=True)
        name = self.name(document)
        description = document.get("description", "")
        if not isinstance(description, str):
            self.invalid("description", description, "a string")
            description = ""
        dataset, dataset_text = self.dataset(document)
        params = self.params(self.table(document, "params"))
        fits = self.check_count(document)
        grid = self.grid(self.table(document, "grid")) if fits else {}
        zips = self.zips(self.tables(document, "zip")) if fits else []
        include = self.trials(self.tables(document, "include"), "include")
        exclude = self.trials(self.tables(document, "exclude"), "exclude")
        written = self.check_places(document)
        swept = {**grid, **{n: v for group in zips for n, v in group.items()}}
        if fits:
            self.check_exclude(exclude, grid, zips, written)
        axes = tuple(sorted({*swept, *(n for trial in include for n in trial)}))
        run = self.run_options(self.table(document, "run"))
        report = self.report_options(self.table(document, "report"),
                                     tuple(sorted({*axes, *written})))
        if dataset is not None:
            self.check_against_data(dataset, params, written)
        self.check_weights(params, include, dataset)
        self.raise_problems()
        if dataset is None or name is None:  # always reported above; this keeps types honest
            raise SpecError([f"{self.where}: dataset: unusable"])
        axis_list = [Axis((n,), tuple((v,) for v in values)) for n, values in grid.items()]
        axis_list += [Axis(tuple(sorted(group)), tuple(zip(*(group[n] for n in sorted(group)),
                                                           strict=True)))
                      for group in zips]
        base = {**DEFAULTS, **params}
        the_grid = Grid(base, axis_list, include, exclude, dataset.hash)
        self.check_grid(the_grid)
        self.raise_problems()
        # An include-only key keeps its [params] value in the hash: product trials still use it.
        non_swept = {n: v for n, v in base.items() if n not in swept}
        spec_hash = _digest({"data": dataset.hash, "fixed": non_swept, "axes": list(axes)}, 16)
        text = _spec_text(name, description, dataset_text, params, grid, zips, include,
                          exclude, run, report, base, swept)
        spec = Spec(name, description, self.source, dataset, params, axes, run, report, text,
                    spec_hash, tuple(axis_list), tuple(include), tuple(exclude),
                    tuple(self.notes))
        spec.__dict__["_grid"] = the_grid  # already built and checked
        return spec

    def raise_problems(self) -> None:
        if self.problems:
            raise SpecError(self.problems + self.data_problems)
        if self.data_problems:
            raise DataError("\n".join(self.data_problems))

    def parse_toml(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
            if at:
                message = message[:at.start()]
                raise SpecError([f"{self.where}:{at[1]}:{at[2]}: invalid TOML: {message}"]
                                ) from None
            message = re.sub(r"\s*\(at end of document\)$", " at the end of the file", message)
            raise SpecError([f"{self.where}: invalid TOML: {message}"]) from None
        except RecursionError:
            raise SpecError([f"{self.where}: invalid TOML: nested too deeply"]) from None

    def unknown(self, key: str, name: str, known: Sequence[str], hint_params: bool = False
                ) -> None:
        hint = did_you_mean(name, known)
        if not hint and hint_params and name in PARAM_NAMES:
            hint = " (parameters go under [params] or [grid])"
        elif not hint:
            hint = f" (expected one of {', '.join(known)})"
        self.problem(key, f"unknown key{hint}")

    def table(self, document: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = document.get(key, {})
        if not isinstance(value, dict):
            self.invalid(key, value, f"a table ([{key}])")
            return {}
        return value

    def tables(self, document: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        value = document.get(key, [])
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            self.invalid(key, value, f"an array of tables ([[{key}]])")
            return []
        return value

    def name(self, document: Mapping[str, Any]) -> str | None:
        if "name" not in document:
            stem = self.source.stem if self.source is not None else "sweep"
            if _NAME.fullmatch(stem):
                return stem
            self.problem("name", f"missing, and the file's stem {_show(stem)} is not a usable "
                         "folder name; expected name = \"...\"")
            return None
        name = document["name"]
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            self.invalid("name", name, "a folder name: letters, digits, '.', '_' and '-', "
                         "starting with a letter or digit")
            return None
        return name

    # --- the dataset ------------------------------------------------------------------

    def dataset(self, document: Mapping[str, Any]) -> tuple[Dataset | None, str]:
        """The data and how the resolved spec writes it; data problems are kept apart."""
        value = document.get("dataset")
        expected = (f"a built-in name ({', '.join(BUILTINS)}) or a [dataset] table with "
                    "name, x and y, or csv and target")
        if value is None:
            self.problem("dataset", f"missing; expected {expected}")
            return None, ""
        if isinstance(value, str):
            if value not in BUILTINS:
                self.invalid("dataset", value, f"one of {', '.join(BUILTINS)}"
                             f"{did_you_mean(value, BUILTINS)}")
                return None, ""
            return builtin(value), f"dataset = {_toml_string(value)}\n"
        if not isinstance(value, dict):
            self.invalid("dataset", value, expected)
            return None, ""
        for key in value:
            if key not in DATASET_KEYS:
                self.unknown(f"dataset.{key}", key, DATASET_KEYS)
        if "csv" in value:
            return self.csv_dataset(value)
        if "x" in value or "y" in value:
            return self.inline_dataset(value)
        if "name" in value:
            return self.builtin_dataset(value)
        self.problem("dataset", f"expected {expected}")
        return None, ""

    def builtin_dataset(self, table: Mapping[str, Any]) -> tuple[Dataset | None, str]:
        name = table["name"]
        if not isinstance(name, str) or name not in BUILTINS:
            hint = did_you_mean(name, BUILTINS) if isinstance(name, str) else ""
            self.invalid("dataset.name", name, f"one of {', '.join(BUILTINS)}{hint}")
            return None, ""
        for key in ("target",):
            if key in table:
                self.problem(f"dataset.{key}", "only used with csv = \"...\"")
        rows, seed = table.get("rows", 1000), table.get("seed", 0)
        if name != "rectangles":
            for key in ("rows", "seed"):
                if key in table:
                    self.problem(f"dataset.{key}", "only the \"rectangles\" dataset takes "
                                 f"{key}; {name} is fixed")
            return builtin(name), f"[dataset]\nname = {_toml_string(name)}\n"
        ok = True
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 10_000_000:
            self.invalid("dataset.rows", rows, "an integer from 1 to 10,000,000")
            ok = False
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            self.invalid("dataset.seed", seed, "an integer from 0 to 4294967295")
            ok = False
        if not ok:
            return None, ""
        text = f"[dataset]\nname = \"rectangles\"\nrows = {rows}\nseed = {seed}\n"
        return builtin("rectangles", rows=rows, seed=seed), text

    def inline_dataset(self, table: Mapping[str, Any]) -> tuple[Dataset | None, str]:
        for key in ("x", "y"):
            if key not in table:
                self.problem(f"dataset.{key}", "missing; inline data needs both x and y")
        for key in ("rows", "seed", "target"):
            if key in table:
                self.problem(f"dataset.{key}", "not used with inline x and y")
        name = table.get("name", "inline")
        if not isinstance(name, str) or not name:
            self.invalid("dataset.name", name, "a non-empty string")
            return None, ""
        if "x" not in table or "y" not in table:
            return None, ""
        try:
            data = from_inline(table["x"], table["y"], f"{self.where}: dataset", name=name)
        except DataError as exc:
            self.data_problems.append(str(exc))
            return None, ""
        text = (f"[dataset]\nname = {_toml_string(name)}\nx = {_toml_value(data.x.tolist())}\n"
                f"y = {_toml_value(data.y.tolist())}\n")
        return data, text

    def csv_dataset(self, table: Mapping[str, Any]) -> tuple[Dataset | None, str]:
        for key in ("x", "y", "rows", "seed", "name"):
            if key in table:
                self.problem(f"dataset.{key}", "not used with csv = \"...\"")
        path, target = table["csv"], table.get("target")
        ok = True
        if not isinstance(path, str) or not path:
            self.invalid("dataset.csv", path, "the CSV file's path, relative to the sweep file")
            ok = False
        if isinstance(target, str):
            target = [target]
        if target is None:
            target = []
            self.problem("dataset.target", "missing; expected the target columns, "
                         "e.g. target = [\"y\"]")
            ok = False
        elif (not isinstance(target, list) or not target
              or not all(isinstance(t, str) for t in target)):
            self.invalid("dataset.target", target, "a list of column names, e.g. [\"y\"]")
            ok = False
        if not ok or not isinstance(target, list):
            return None, ""
        csv_path = Path(path)
        if not csv_path.is_absolute() and self.source is not None:
            csv_path = self.source.parent / csv_path
        try:
            data = from_csv(csv_path, target)
        except DataError as exc:
            self.data_problems.append(str(exc))
            return None, ""
        text = (f"[dataset]\ncsv = {_toml_string(str(csv_path.resolve()))}\n"
                f"target = {_toml_value(target)}\n")
        return data, text

    # --- parameters -------------------------------------------------------------------

    def value(self, key: str, name: str, value: object) -> tuple[bool, Any]:
        try:
            resolved = PARAM_RULES[name](value)
        except _Invalid as exc:
            self.invalid(key, value, str(exc))
            return False, None
        self.seen.append(_Value(key, name, resolved))
        return True, resolved

    def params(self, table: Mapping[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for name, value in table.items():
            if name not in PARAM_RULES:
                self.unknown(f"params.{name}", name, PARAM_NAMES)
                continue
            ok, result = self.value(f"params.{name}", name, value)
            if ok:
                resolved[name] = result
        return resolved

    def grid(self, table: Mapping[str, Any]) -> dict[str, list[Any]]:
        axes: dict[str, list[Any]] = {}
        for name, value in table.items():
            if name not in PARAM_RULES:
                self.unknown(f"grid.{name}", name, PARAM_NAMES)
                continue
            values = self.axis(f"grid.{name}", name, value)
            if values is not None:
                axes[name] = values
        return axes

    def axis(self, key: str, name: str, value: object, *, distinct: bool = True
             ) -> list[Any] | None:
        """An axis's resolved values, from a list or a range table; None after a problem."""
        if name == "weights":
            self.problem(key, "given weights cannot be swept; set them in [params]")
            return None
        if isinstance(value, dict):
            raw = self.range_values(key, name, value)
            if raw is None:
                return None
        elif isinstance(value, list):
            raw = value
        else:
            self.invalid(key, value, "a list of values to try, or a range such as "
                         "{ log = [0.001, 1000], num = 7 } (one value goes in [params])")
            return None
        if not raw:
            self.problem(key, "empty axis; expected at least one value")
            return None
        if len(raw) > MAX_AXIS:
            self.problem(key, f"{len(raw):,} values; expected at most {MAX_AXIS:,}")
            return None
        resolved: list[Any] = []
        first: dict[Any, int] = {}
        ok = True
        for i, item in enumerate(raw):
            good, result = self.value(f"{key}[{i}]", name, item)
            if not good:
                ok = False
                continue
            if distinct and result in first:
                self.invalid(f"{key}[{i}]", item, f"a value not already at {key}"
                             f"[{first[result]}] (values of an axis are distinct)")
                ok = False
            first.setdefault(result, i)
            resolved.append(result)
        return resolved if ok else None

    def range_values(self, key: str, name: str, table: Mapping[str, Any]) -> list[Any] | None:
        kinds = [kind for kind in ("log", "linear", "range") if kind in table]
        extra = {"log": "num", "linear": "num", "range": "step"}
        if len(kinds) != 1:
            self.invalid(key, table, "one range: { log = [a, b], num = n }, "
                         "{ linear = [a, b], num = n } or { range = [start, stop] }")
            return None
        kind = kinds[0]
        ok = True
        for part in table:
            if part not in (kind, extra[kind]):
                self.unknown(f"{key}.{part}", part, (kind, extra[kind]))
                ok = False
        ends = table[kind]
        if kind == "range":
            step = table.get("step", 1)
            if (not isinstance(ends, list) or len(ends) != 2
                    or any(isinstance(e, bool) or not isinstance(e, int) for e in ends)):
                self.invalid(f"{key}.range", ends, "[start, stop], two integers")
                ok = False
            if isinstance(step, bool) or not isinstance(step, int) or step == 0:
                self.invalid(f"{key}.step", step, "a non-zero integer")
                ok = False
            if not ok:
                return None
            count = max(0, -(-(ends[1] - ends[0]) // step))
            if count > MAX_AXIS:
                self.problem(key, f"{count:,} values; expected at most {MAX_AXIS:,}")
                return None
            return list(range(ends[0], ends[1], step))
        num = table.get("num")
        numbers = [finite_float(e) for e in ends] if isinstance(ends, list) else []
        positive = kind != "log" or all(n is not None and n > 0 for n in numbers)
        if len(numbers) != 2 or any(n is None for n in numbers) or not positive:
            wanted = "two numbers > 0" if kind == "log" else "two numbers"
            self.invalid(f"{key}.{kind}", ends, f"[first, last], {wanted}")
            ok = False
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_AXIS:
            self.invalid(f"{key}.num", num, f"an integer from 1 to {MAX_AXIS:,} (how many "
                         "values)")
            ok = False
        if not ok or not isinstance(num, int):
            return None
        first, last = (float(n) for n in numbers if n is not None)
        with np.errstate(all="ignore"):
            spaced = (np.geomspace(first, last, num) if kind == "log"  # (num,)
                      else np.linspace(first, last, num))
        values: list[Any] = [float(f"{v:.12g}") for v in spaced.tolist()]
        if name in _INTEGER_PARAMS:
            values = [int(v) if math.isfinite(v) and v.is_integer() else v for v in values]
        return values

    def zips(self, groups: list[dict[str, Any]]) -> list[dict[str, list[Any]]]:
        resolved: list[dict[str, list[Any]]] = []
        for g, group in enumerate(groups):
            axes: dict[str, list[Any]] = {}
            ok = True
            if not group:
                self.problem(f"zip[{g}]", "empty; expected two or more parameters with lists "
                             "of equal length")
                continue
            for name, value in group.items():
                if name not in PARAM_RULES:
                    self.unknown(f"zip[{g}].{name}", name, PARAM_NAMES)
                    ok = False
                    continue
                values = self.axis(f"zip[{g}].{name}", name, value, distinct=False)
                if values is None:
                    ok = False
                    continue
                axes[name] = values
            lengths = {len(values) for values in axes.values()}
            if len(lengths) > 1:
                first = next(iter(axes))
                for name, values in axes.items():
                    if len(values) != len(axes[first]):
                        self.problem(f"zip[{g}].{name}", f"{len(values)} values, but "
                                     f"zip[{g}].{first} has {len(axes[first])}; expected "
                                     "lists of equal length")
                ok = False
            if ok:
                ok = self.distinct_rows(f"zip[{g}]", axes)
            if ok:
                resolved.append(axes)
        return resolved

    def distinct_rows(self, key: str, group: Mapping[str, list[Any]]) -> bool:
        names = sorted(group)
        first: dict[tuple[Any, ...], int] = {}
        for i, row in enumerate(zip(*(group[n] for n in names), strict=True)):
            if row in first:
                self.problem(key, f"position {i} repeats position {first[row]} "
                             f"({', '.join(names)}); expected distinct combinations")
                return False
            first[row] = i
        return True

    def trials(self, tables: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        resolved: list[dict[str, Any]] = []
        for t, table in enumerate(tables):
            if not table:
                self.problem(f"{kind}[{t}]", "empty; expected parameter values")
                continue
            trial: dict[str, Any] = {}
            ok = True
            for name, value in table.items():
                key = f"{kind}[{t}].{name}"
                if name not in PARAM_RULES:
                    self.unknown(key, name, PARAM_NAMES)
                    ok = False
                elif name == "weights":
                    self.problem(key, "given weights can only be set in [params]")
                    ok = False
                else:
                    good, result = self.value(key, name, value)
                    ok = ok and good
                    trial[name] = result
            if ok:
                resolved.append(trial)
        return resolved

    # --- checks across the file -------------------------------------------------------

    def check_count(self, document: Mapping[str, Any]) -> bool:
        """Whether the product, counted from the axes' lengths as written, is one a run can
        hold; its values are resolved only then (a grid of 10^18 is refused at once, without
        expanding its ranges of a million values each)."""
        grid, zips = document.get("grid"), document.get("zip")
        lengths = [_written_length(v) for v in grid.values()] if isinstance(grid, dict) else []
        if isinstance(zips, list):
            lengths += [max((_written_length(v) for v in group.values()), default=1)
                        for group in zips if isinstance(group, dict)]
        count = math.prod(lengths)
        if document.get("exclude"):  # a run holds what the rules leave; the mask, every trial
            if count <= MAX_FILTERED:
                return True
            self.problem("exclude", f"cannot filter {count:,} trials; exclude works on grids "
                         f"of at most {MAX_FILTERED:,}")
            return False
        if count <= MAX_TRIALS:
            return True
        self.problems.append(f"{self.where}: the grid has {count:,} trials, more than the limit "
                             f"of {MAX_TRIALS:,} (the most one run can plan); narrow the grid, "
                             "or split it into several sweep files")
        return False

    def check_places(self, document: Mapping[str, Any]) -> set[str]:
        """A parameter is fixed, or swept by one axis; read from the raw tables, so a key is
        placed even when its values have problems of their own. Returns the swept names."""
        params, grid = document.get("params"), document.get("grid")
        zips = document.get("zip")
        params = params if isinstance(params, dict) else {}
        grid = grid if isinstance(grid, dict) else {}
        zips = [z for z in zips if isinstance(z, dict)] if isinstance(zips, list) else []
        placed: dict[str, str] = {name: "params" for name in params if name in PARAM_RULES}
        for name in grid:
            if name not in PARAM_RULES:
                continue
            if name in placed:
                self.problem(f"grid.{name}", f"also in [{placed[name]}]; a parameter is "
                             "either fixed or swept, not both")
            placed[name] = "grid"
        for g, group in enumerate(zips):
            for name in group:
                if name not in PARAM_RULES:
                    continue
                if name in placed:
                    self.problem(f"zip[{g}].{name}", f"also in {_section(placed[name])}; a "
                                 "parameter stands in one place only")
                placed[name] = f"zip[{g}]"
        return {name for name, place in placed.items() if place != "params"}

    def check_exclude(self, exclude: list[dict[str, Any]], grid: Mapping[str, list[Any]],
                      zips: list[dict[str, list[Any]]], written: set[str]) -> None:
        """Each rule names swept parameters with values they take (an axis with problems of
        its own is not checked again)."""
        swept: dict[str, tuple[str, list[Any]]] = {n: (f"grid.{n}", v) for n, v in grid.items()}
        for g, group in enumerate(zips):
            swept.update({n: (f"zip[{g}].{n}", v) for n, v in group.items()})
        for e, rule in enumerate(exclude):
            for name, value in rule.items():
                key = f"exclude[{e}].{name}"
                if name in written and name not in swept:
                    continue
                if name not in swept:
                    names = ", ".join(sorted(swept)) or "none"
                    self.problem(key, f"not swept; an exclude names swept parameters only "
                                 f"(swept: {names})")
                elif value not in swept[name][1]:
                    self.problems.append(f"{self.where}: {key} = {_show(value)}: matches no "
                                         f"trial; {swept[name][0]} has no such value")

    def check_against_data(self, dataset: Dataset, params: Mapping[str, Any],
                           swept: set[str]) -> None:
        """A written batch larger than the data is an error. A minibatch as large as the data
        (the default 8 on XOR's 4 rows, say) is full descent under another name: a note."""
        for seen in self.seen:
            if seen.name == "batch_size" and seen.value > dataset.rows:
                self.invalid(seen.key, seen.value, f"at most {dataset.rows}, the rows in "
                             f"the data ({dataset.name})")
        minibatch = [seen.key for seen in self.seen
                     if seen.name == "descent" and seen.value == "minibatch"]
        if not minibatch or dataset.rows < 2:  # one row: every descent is the same
            return
        whole = [f"{seen.key} = {seen.value}" for seen in self.seen
                 if seen.name == "batch_size" and seen.value == dataset.rows]
        default = DEFAULTS["batch_size"]
        if "batch_size" not in params and "batch_size" not in swept and default >= dataset.rows:
            whole.insert(0, f"batch_size = {default} (the default)")
        for written in whole:
            self.notes.append(
                f"{self.where}: {minibatch[0]} = \"minibatch\" with {written}, not below "
                f"the {dataset.rows} rows of the data ({dataset.name}): every step takes all "
                "rows, as descent = \"full\" does; set batch_size below "
                f"{dataset.rows} for minibatch steps")

    def check_weights(self, params: Mapping[str, Any], include: list[dict[str, Any]],
                      dataset: Dataset | None) -> None:
        given_at = [seen.key for seen in self.seen if seen.name == "init" and seen.value ==
                    "given"]
        weights = params.get("weights")
        if weights is None:
            for key in given_at:
                self.problems.append(f"{self.where}: {key} = \"given\": needs weights = [...] "
                                     "in [params], one (fan_in, fan_out) matrix per layer")
            return
        if params.get("init") != "given":
            self.problem("params.weights", "only used with init = \"given\"; add it to "
                         "[params]")
            return
        if dataset is None:
            return
        hiddens = {seen.value for seen in self.seen if seen.name == "hidden"}
        hiddens.add(params.get("hidden", DEFAULTS["hidden"]))
        biases = {seen.value for seen in self.seen if seen.name == "bias"}
        biases.add(params.get("bias", DEFAULTS["bias"]))
        shapes = tuple((len(layer), len(layer[0])) for layer in weights)
        n_in, n_out = dataset.x.shape[1], dataset.y.shape[1]
        for hidden in sorted(hiddens):
            for bias in sorted(biases):
                needed = tuple(weight_shapes(TrialParams(hidden=hidden, bias=bias), n_in,
                                             n_out))
                if shapes != needed:
                    self.problem("params.weights", f"shapes {_shapes(shapes)} do not fit "
                                 f"hidden = {_show(list(hidden))}{', bias' if bias else ''}"
                                 f" with {_count(n_in, 'input')} and {_count(n_out, 'output')};"
                                 f" expected {_shapes(needed)}")

    def check_grid(self, grid: Grid) -> None:
        seen_include: dict[tuple[tuple[str, Any], ...], int] = {}
        for i, trial in enumerate(grid.include):
            params = {**grid.base, **trial}
            key = tuple(sorted(params.items()))
            if key in seen_include:
                self.problem(f"include[{i}]", f"the same trial as include[{seen_include[key]}]")
                continue
            seen_include[key] = i
            position = grid.product_position(params)
            if position is not None and not grid.is_excluded(position):
                self.problem(f"include[{i}]", "already in the grid; remove it or change a "
                             "value")
        if len(grid) == 0:
            self.problem("exclude", "removes every trial; expected at least one left")

    def run_options(self, table: Mapping[str, Any]) -> RunOptions:
        for key in table:
            if key not in RUN_KEYS:
                self.unknown(f"run.{key}", key, RUN_KEYS)
        options: dict[str, Any] = {}
        checks: dict[str, tuple[Callable[[object], Any], str]] = {
            "jobs": (_jobs, ""),
            "engine": (_choice(ENGINES), ""),
            "backend": (_choice(BACKENDS), ""),
            "scheduler": (_string, "a dask scheduler address, e.g. \"tcp://host:8786\""),
            "address": (_string, "a ray cluster address, e.g. \"ray://host:10001\""),
            "save_weights": (_boolean, ""),
        }
        for key, (check, expected) in checks.items():
            if key not in table:
                continue
            try:
                options[key] = check(table[key])
            except _Invalid as exc:
                self.invalid(f"run.{key}", table[key], expected or str(exc))
        backend = options.get("backend", "loky")
        if "scheduler" in options and backend != "dask":
            self.problem("run.scheduler", "only used with backend = \"dask\"")
        if "address" in options and backend != "ray":
            self.problem("run.address", "only used with backend = \"ray\"")
        return RunOptions(**options)

    def report_options(self, table: Mapping[str, Any], axes: tuple[str, ...]) -> ReportOptions:
        for key in table:
            if key not in REPORT_KEYS:
                self.unknown(f"report.{key}", key, REPORT_KEYS)
        chosen: dict[str, str] = {}
        for key in REPORT_KEYS:
            if key not in table:
                continue
            value = table[key]
            swept = ", ".join(axes) or "none"
            if not isinstance(value, str) or value not in PARAM_NAMES:
                hint = did_you_mean(value, PARAM_NAMES) if isinstance(value, str) else ""
                self.invalid(f"report.{key}", value, f"a parameter name{hint} (swept: {swept})")
            elif value not in axes:
                self.invalid(f"report.{key}", value, f"a swept parameter (swept: {swept})")
            elif value in chosen.values():
                self.invalid(f"report.{key}", value, "a parameter not already on x, y or facet")
            else:
                chosen[key] = value
        return ReportOptions(**chosen)


def _jobs(value: object) -> int:
    """Workers: 1 to MAX_WORKERS, or -1 for every core (-2 all but one ...), never 0."""
    if (isinstance(value, bool) or not isinstance(value, int) or value == 0
            or not -MAX_WORKERS <= value <= MAX_WORKERS):
        raise _Invalid(f"an integer from 1 to {MAX_WORKERS:,} (workers), or -1 for all cores "
                       "(-2 all but one)")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid("a non-empty string")
    return value


def _written_length(value: object) -> int:
    """How many values an axis as written holds (1 where that is for its own check to say)."""
    if isinstance(value, list):
        return len(value)
    if not isinstance(value, dict):
        return 1
    ends, step, num = value.get("range"), value.get("step", 1), value.get("num")
    if (isinstance(ends, list) and len(ends) == 2 and isinstance(step, int) and step
            and all(isinstance(end, int) for end in ends)):
        return max(1, -(-(int(ends[1]) - int(ends[0])) // step))
    return num if isinstance(num, int) and num > 0 else 1


def _section(place: str) -> str:
    return f"[{place}]" if place in ("params", "grid") else place


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _shapes(shapes: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"({a}, {b})" for a, b in shapes) or "none"


def _digest(payload: object, length: int) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# --- writing the resolved spec ------------------------------------------------------------

def _toml_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif not char.isprintable():  # controls, line separators: one line, visibly
            code = ord(char)
            escaped.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_trial(trial: Mapping[str, Any]) -> str:
    return "".join(f"{name} = {_toml_value(value)}\n" for name, value in trial.items())


def _spec_text(
    name: str, description: str, dataset_text: str, params: Mapping[str, Any],
    grid: Mapping[str, list[Any]], zips: list[dict[str, list[Any]]],
    include: list[dict[str, Any]], exclude: list[dict[str, Any]], run: RunOptions,
    report: ReportOptions, base: Mapping[str, Any], swept: Mapping[str, Any],
) -> str:
    """The spec with ranges expanded and defaults spelled out; it loads back to the same trials.

    Defaults stand as comments, so loading it back never checks a value the user did not write
    (the default batch_size, for one, exceeds a small dataset's rows).
    """
    parts = ["# Resolved by nnsweep: ranges expanded, defaults shown as comments.\n",
             f"name = {_toml_string(name)}\ndescription = {_toml_string(description)}\n"]
    parts.append(dataset_text if dataset_text.startswith("dataset") else "\n" + dataset_text)
    parts.append("\n[params]\n" + _toml_trial(params))
    for param in PARAM_NAMES:
        if param not in params and param not in swept and base[param] is not None:
            parts.append(f"# {param} = {_toml_value(base[param])}  (default)\n")
    if grid:
        parts.append("\n[grid]\n" + _toml_trial({n: grid[n] for n in sorted(grid)}))
    parts += ["\n[[zip]]\n" + _toml_trial(group) for group in zips]
    parts += ["\n[[include]]\n" + _toml_trial(trial) for trial in include]
    parts += ["\n[[exclude]]\n" + _toml_trial(rule) for rule in exclude]
    run_values = {k: v for k, v in vars(run).items() if v is not None}
    parts.append("\n[run]\n" + _toml_trial(run_values))
    report_values = {k: v for k, v in vars(report).items() if v is not None}
    if report_values:
        parts.append("\n[report]\n" + _toml_trial(report_values))
    return "".join(parts)
