"""The sweep file: TOML in, a validated, frozen Spec out, or every problem at once.

The format is README.md's "The sweep file"; schema.py states each table's keys, types and
ranges. Each table is checked against its model and every error becomes one line, ``FILE: KEY =
VALUE: expected ...`` or ``FILE: KEY: ...`` (``FILE:LINE:COLUMN: invalid TOML: ...``); then come
the checks that span tables and the resolved spec. Only SpecError and DataError ever leave.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import tomllib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError

from nnsweep import datasets, schema
from nnsweep.edge import EdgeSearch
from nnsweep.errors import DataError, NnsweepWarning, SpecError
from nnsweep.grid import MAX_FILTERED, MAX_TRIALS, Axis, Grid
from nnsweep.network import weight_shapes
from nnsweep.params import DEFAULTS, OPTIMIZER_OF, PARAM_NAMES, TrialParams

ENGINES: tuple[str, ...] = get_args(schema.Engine)
BACKENDS: tuple[str, ...] = get_args(schema.Backend)
TOP_KEYS: tuple[str, ...] = tuple(schema.Document.model_fields)
DATASET_KEYS: tuple[str, ...] = tuple(schema.DatasetKeys.model_fields)
RUN_KEYS: tuple[str, ...] = tuple(schema.Run.model_fields)
REPORT_KEYS: tuple[str, ...] = tuple(schema.Report.model_fields)
EDGE_KEYS: tuple[str, ...] = ("axis", "outcome", "precision")  # [search] with method = "edge"
MAX_WORKERS = schema.MAX_WORKERS
# A sweep file is a page of TOML; inline data makes it longer, but beyond this it is no sweep
# file (a device such as /dev/zero would be read forever).
MAX_SPEC_BYTES = 64_000_000


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
class SearchOptions:
    """[search]: how the trials are chosen; random and sobol draw `samples` points from the
    [grid] axes given as distributions, and cross them with the axes given as values; edge
    bisects one [grid] axis for every combination of the others (the run does, round by round:
    the spec's trials are the first round, each combination at the bracket's two ends)."""

    method: str = "grid"  # grid | random | sobol | edge
    samples: int = 32
    seed: int = 0
    edge: EdgeSearch | None = None  # method = "edge", its bracket resolved from [grid]

    @property
    def draws(self) -> bool:
        return self.method in ("random", "sobol")


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
    dataset: datasets.Dataset
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
    search: SearchOptions = SearchOptions()

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
        with datasets.open_regular(source, "a sweep file (.toml)", MAX_SPEC_BYTES,
                                   encoding="utf-8-sig") as handle:
            text = handle.read()
    except datasets.FileProblem as exc:
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
    return _Reader(source, dict(overrides or {})).spec(text)


@dataclass
class _Reader:
    """One pass over the file, collecting every problem before anything is built."""

    source: Path | None
    overrides: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)
    data_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seen: list[tuple[str, str, Any]] = field(default_factory=list)  # key, parameter, value
    drawn: dict[str, tuple[str, Any, list[Any]]] = field(default_factory=dict)  # name: key,
    # its distribution, a choice's resolved values
    drawing: set[str] = field(default_factory=set)  # parameters given as distributions

    @property
    def where(self) -> str:
        return str(self.source) if self.source is not None else "<spec>"

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}: {key}: {message}")

    def invalid(self, key: str, value: object, expected: str) -> None:
        self.problems.append(f"{self.where}: {key} = {_show(value)}: expected {expected}")

    def check(self, model: type[BaseModel], data: Mapping[str, Any], where: str = "",
              key: str = "", lenient: bool = False) -> Any:
        """`data` checked by `model`, else None once every key that fails has its line, unknown
        keys first (`lenient`: a key with no use is told, the rest still passes). A key's place
        is where.name, or `key` for a lone value (an axis's item)."""
        try:
            return model.model_validate(data)
        except ValidationError:  # again without unknown keys, told first and as written (not
            pass                 # all are text pydantic can read: TOML allows lone surrogates)
        known = {name: value for name, value in data.items() if name in model.model_fields}
        errors: list[Mapping[str, Any]] = [{"type": "extra_forbidden", "loc": (name,)}
                                           for name in data if name not in known]
        try:
            model.model_validate(known)
        except ValidationError as exc:
            errors += exc.errors()
        told: set[str] = set()
        for error in errors:
            name = str(error["loc"][0])
            if name not in told:  # one line a key: not a union's other branches, nor its parts
                told.add(name)
                self.tell(error, model, key or (f"{where}.{name}" if where else name),
                          name, data.get(name))
        if lenient and all(error["type"] == "problem" for error in errors):
            return model.model_validate({k: v for k, v in data.items() if k not in told})
        return None

    def tell(self, error: Mapping[str, Any], model: type[BaseModel], at: str, name: str,
             value: object) -> None:
        """One of pydantic's errors in today's words: the field's description completes
        "expected", a custom error brings its own text, an unknown key a "did you mean"."""
        kind, text, info = error["type"], error.get("ctx", {}).get("text"), model.model_fields
        if kind == "extra_forbidden":
            hint = datasets.did_you_mean(name, tuple(info)) or (
                " (parameters go under [params] or [grid])" if model is schema.Document
                and name in PARAM_NAMES else f" (expected one of {', '.join(info)})")
            self.problem(at, f"unknown key{hint}")
        elif kind in ("problem", "missing"):  # a key with no use here, or one that must be
            self.problem(at, text or str(info[name].description))
        else:
            kinds = info[name].annotation
            choices = get_args(kinds) if get_origin(kinds) is Literal else ()
            hint = datasets.did_you_mean(value, choices) if isinstance(value, str) else ""
            self.invalid(at, value, text or f"{info[name].description}{hint}")

    def value(self, model: type[BaseModel], name: str, value: object, where: str = "",
              key: str = "") -> Any:
        """One parameter's resolved value, or None after its problems."""
        checked = self.check(model, {name: value}, where, key)
        return None if checked is None else getattr(checked, name)

    def values(self, model: type[BaseModel], table: Mapping[str, Any], where: str
               ) -> dict[str, Any]:
        """The parameters of `table` that pass, resolved and kept in `seen` for the checks
        against the data."""
        resolved = {}
        for name, value in table.items():
            if (result := self.value(model, name, value, where)) is not None:
                resolved[name] = result
                self.seen.append((f"{where}.{name}", name, result))
        return resolved

    def top(self, document: Mapping[str, Any], key: str, default: Any) -> Any:
        """A top-level value of the right kind, else the default (after saying so)."""
        value = document.get(key, default)
        return value if self.check(schema.Document, {key: value}) is not None else default

    def spec(self, text: str) -> Spec:
        document = self.parse_toml(text)
        if self.overrides and isinstance(document.get("params", {}), dict):
            document["params"] = {**document.get("params", {}), **self.overrides}
        for key, value in document.items():
            if key not in TOP_KEYS:
                self.check(schema.Document, {key: value})
        name = self.name(document)
        description = self.top(document, "description", "")
        dataset, dataset_text = self.dataset(document.get("dataset"))
        params = self.values(schema.Params, self.top(document, "params", {}), "params")
        search = self.search_options(self.top(document, "search", {}))
        fits = self.check_count(document, search)
        grid = self.axes(self.top(document, "grid", {}), "grid") if fits else {}
        search = self.edge_bracket(search, grid, document) if fits else search
        zips = self.zips(self.top(document, "zip", [])) if fits else []
        sampled = self.sample(search) if fits else {}
        include, exclude = (self.trials(self.top(document, kind, []), kind)
                            for kind in ("include", "exclude"))
        written = self.check_places(document)
        swept = {**grid, **sampled, **{n: v for group in zips for n, v in group.items()}}
        if fits:
            self.check_exclude(exclude, {**grid, **sampled}, zips, written)
        axes = tuple(sorted({*swept, *(n for trial in include for n in trial)}))
        run = self.run_options(self.top(document, "run", {}))
        report = self.report_options(self.top(document, "report", {}), sorted({*axes, *written}))
        if dataset is not None:
            self.check_against_data(dataset, params, written)
        self.check_weights(params, dataset)
        self.check_optimizer_settings(params)
        self.raise_problems()
        if dataset is None or name is None:  # always reported above; this keeps types honest
            raise SpecError([f"{self.where}: dataset: unusable"])
        axis_list = [Axis((n,), tuple((v,) for v in values)) for n, values in grid.items()]
        axis_list += [Axis(tuple(sorted(group)), tuple(zip(*(group[n] for n in sorted(group)),
                                                           strict=True)))
                      for group in [*zips, sampled] if group]
        base = {**DEFAULTS, **params}
        trials = Grid(base, axis_list, include, exclude, dataset.hash)
        self.check_grid(trials)
        self.check_losses(trials, params, dataset)
        self.raise_problems()
        # An include-only key keeps its [params] value in the hash: product trials still use it.
        non_swept = {n: v for n, v in base.items() if n not in swept}
        spec_hash = _digest({"data": dataset.hash, "fixed": non_swept, "axes": list(axes)})
        text = "".join(_spec_text(name, description, dataset_text, params, grid, zips, include,
                                  exclude, run, report, base, swept, search, sampled))
        spec = Spec(name, description, self.source, dataset, params, axes, run, report, text,
                    spec_hash, tuple(axis_list), tuple(include), tuple(exclude),
                    tuple(self.notes), search)
        spec.__dict__["_grid"] = trials  # already built and checked
        return spec

    def raise_problems(self) -> None:
        if self.problems:
            raise SpecError(self.problems + self.data_problems)
        if self.data_problems:
            raise DataError("\n".join(self.data_problems))

    def parse_toml(self, text: str) -> dict[str, Any]:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
            if at:
                raise SpecError([f"{self.where}:{at[1]}:{at[2]}: invalid TOML: "
                                 f"{message[:at.start()]}"]) from None
            message = re.sub(r"\s*\(at end of document\)$", " at the end of the file", message)
            raise SpecError([f"{self.where}: invalid TOML: {message}"]) from None
        except RecursionError:
            raise SpecError([f"{self.where}: invalid TOML: nested too deeply"]) from None

    def name(self, document: Mapping[str, Any]) -> str | None:
        if "name" in document:
            name: str | None = self.top(document, "name", None)
            return name
        stem = self.source.stem if self.source is not None else "sweep"
        if re.fullmatch(schema.NAME, stem):
            return stem
        self.problem("name", f"missing, and the file's stem {_show(stem)} is not a usable "
                     "folder name; expected name = \"...\"")
        return None

    def dataset(self, value: object) -> tuple[datasets.Dataset | None, str]:
        """The data and how the resolved spec writes it; data problems are kept apart."""
        builtins = datasets.BUILTINS
        if value is None:
            self.problem("dataset", f"missing; expected {schema.DATASET}")
        elif isinstance(value, str) and value in builtins:
            return datasets.builtin(value), f"dataset = {_toml_string(value)}\n"
        elif isinstance(value, str):
            self.invalid("dataset", value, f"one of {', '.join(builtins)}"
                         f"{datasets.did_you_mean(value, builtins)}")
        elif isinstance(value, dict):
            self.check(schema.DatasetKeys, value, "dataset")
            table = {key: part for key, part in value.items() if key in DATASET_KEYS}
            form = schema.Csv if "csv" in table else schema.Inline if {"x", "y"} & set(
                table) else schema.Builtin if "name" in table else None
            if form is None:
                self.problem("dataset", f"expected {schema.DATASET}")
            elif (checked := self.check(form, table, "dataset", lenient=True)) is not None:
                try:
                    return self.data(form, checked)
                except DataError as exc:
                    self.data_problems.append(str(exc))
        else:
            self.check(schema.Document, {"dataset": value})
        return None, ""

    def data(self, kind: type[BaseModel], form: Any) -> tuple[datasets.Dataset, str]:
        """A checked [dataset] table's data with its held-out rows, and how the resolved spec
        writes it."""
        data, text = self.rows_of(kind, form)
        validation_csv = getattr(form, "validation_csv", None)
        if form.validation is not None and validation_csv is not None:
            raise DataError(f"{self.where}: dataset: validation and validation_csv both hold "
                            "rows out; expected one of them")
        if form.split_seed is not None and form.validation is None:
            raise DataError(f"{self.where}: dataset.split_seed: only used with validation = "
                            "a fraction of the rows")
        if form.validation is not None:
            seed = form.split_seed or 0
            try:
                held = data.split(form.validation, seed)
            except DataError as exc:
                raise DataError(f"{self.where}: dataset.{exc}") from None
            return held, (text + f"validation = {_toml(form.validation)}\n"
                                 f"split_seed = {seed}\n")
        if validation_csv is not None:
            path = self.beside(validation_csv)
            return data.held_out(datasets.from_csv(path, form.target)), (
                text + f"validation_csv = {_toml_string(str(path.resolve()))}\n")
        return data, text

    def beside(self, name: str) -> Path:
        """A path as written in the sweep file: relative to the file's folder."""
        path = Path(name)
        return path if path.is_absolute() or self.source is None else self.source.parent / path

    def rows_of(self, kind: type[BaseModel], form: Any) -> tuple[datasets.Dataset, str]:
        """A checked [dataset] table's rows, and how the resolved spec writes them."""
        if kind is schema.Builtin:
            options = {**datasets.OPTIONS.get(form.name, {}), **{
                key: value for key, value in dict(form).items()
                if key in schema.OPTION_NAMES and value is not None}}
            return datasets.builtin(form.name, **options), (
                f"[dataset]\nname = {_toml_string(form.name)}\n"
                + "".join(f"{key} = {_toml(value)}\n" for key, value in options.items()))
        if kind is schema.Inline:
            data = datasets.from_inline(form.x, form.y, f"{self.where}: dataset", name=form.name)
            return data, (f"[dataset]\nname = {_toml_string(form.name)}\nx = "
                          f"{_toml(data.x.tolist())}\ny = {_toml(data.y.tolist())}\n")
        path = self.beside(form.csv)
        data = datasets.from_csv(path, form.target)
        return data, (f"[dataset]\ncsv = {_toml_string(str(path.resolve()))}\n"
                      f"target = {_toml(form.target)}\n")

    def axes(self, table: Mapping[str, Any], where: str, distinct: bool = True
             ) -> dict[str, list[Any]]:
        """The axes of [grid] or a [[zip]] that pass, as resolved values."""
        axes = {}
        for name, value in table.items():
            if self.check(schema.Grid, {name: value}, where) is None:
                continue
            if isinstance(value, dict) and set(value) & set(schema.DRAWN):
                self.distribution(f"{where}.{name}", name, value, where)
            elif (values := self.axis(f"{where}.{name}", name, value, distinct)) is not None:
                axes[name] = values
        return axes

    def distribution(self, key: str, name: str, value: dict[str, Any], where: str) -> None:
        """An axis to draw from, kept for `sample`; a choice's values are resolved here."""
        kinds = [kind for kind in schema.DRAWN if kind in value]
        self.drawing.add(name)
        if where != "grid":
            self.problem(key, "a distribution is drawn from in [grid] only")
        elif len(kinds) != 1 or (drawn := self.check(schema.DRAWN[kinds[0]], value, key)) is None:
            if len(kinds) != 1:
                self.invalid(key, value, "one distribution: { loguniform = [a, b] }, { uniform "
                             "= [a, b] }, { intloguniform = [a, b] } or { choice = [...] }")
        elif name in schema.INTEGER_PARAMS and kinds[0] in ("loguniform", "uniform"):
            self.invalid(key, value, f"whole numbers for {name}: {{ intloguniform = [a, b] }} "
                         "or { choice = [...] }")
        elif kinds[0] == "choice":
            if (resolved := self.axis(f"{key}.choice", name, value["choice"], True)) is not None:
                self.drawn[name] = (key, drawn, resolved)
        elif all([self.value(schema.Params, name, end, key=f"{key}.{kinds[0]}[{i}]") is not None
                  for i, end in enumerate(value[kinds[0]])]):  # the ends fit: so does all between
            self.drawn[name] = (key, drawn, [])

    def sample(self, search: SearchOptions) -> dict[str, list[Any]]:
        """The drawn axes' points, one list per parameter, zipped: `samples` of them, less any
        that repeat an earlier point (whole numbers and choices can)."""
        if not search.draws or not self.drawn:
            if search.draws and not self.drawing:  # else its axes' problems say it
                self.problem("search.method", f'"{search.method}" draws from distributions, but '
                             "[grid] has none; expected an axis such as alpha = { loguniform = "
                             "[0.001, 1] }")
            for key, _, _ in self.drawn.values():
                self.problem(key, 'a distribution needs [search] method = "random" or "sobol"')
            return {}
        names = sorted(self.drawn)
        units = _unit_points(search, len(names))  # (samples, axes) in [0, 1)
        raw = {name: [self.drawn[name][1].value(float(u), self.drawn[name][2])
                      for u in units[:, i]] for i, name in enumerate(names)}
        resolved = {name: self.axis(self.drawn[name][0], name, raw[name], False)
                    for name in names}
        if any(values is None for values in resolved.values()):
            return {}
        points = list(dict.fromkeys(zip(*(resolved[n] for n in names), strict=True)))
        if len(points) < search.samples:
            self.notes.append(f"{self.where}: search: {search.samples - len(points)} of the "
                              f"{search.samples} samples repeat an earlier point; "
                              f"{len(points)} distinct points kept")
        return {name: [point[i] for point in points] for i, name in enumerate(names)}

    def axis(self, key: str, name: str, value: Any, distinct: bool) -> list[Any] | None:
        """An axis's resolved values, from a list or a range table; None after a problem."""
        spread = None
        if isinstance(value, dict):
            kinds = [kind for kind in schema.RANGES if kind in value]
            if len(kinds) != 1:
                self.invalid(key, value, "one range: { log = [a, b], num = n }, "
                             "{ linear = [a, b], num = n } or { range = [start, stop] }")
                return None
            if (spread := self.check(schema.RANGES[kinds[0]], value, key)) is None:
                return None
        count = spread.count() if spread else len(value)
        if not count or count > schema.MAX_AXIS:
            self.problem(key, f"{count:,} values; expected at most {schema.MAX_AXIS:,}"
                         if count else "empty axis; expected at least one value")
            return None
        raw = spread.values(name in schema.INTEGER_PARAMS) if spread else value
        try:  # at once; a list with a bad value is checked value by value, for its places
            results = iter(getattr(schema.Axes.model_validate({name: raw}), name))
        except ValidationError:
            results = (self.value(schema.Params, name, item, key=f"{key}[{i}]")
                       for i, item in enumerate(raw))
        resolved: list[Any] = []
        first: dict[Any, int] = {}
        for i, (item, result) in enumerate(zip(raw, results, strict=True)):
            if result is None:
                continue
            self.seen.append((f"{key}[{i}]", name, result))
            if distinct and result in first:
                self.invalid(f"{key}[{i}]", item, f"a value not already at {key}"
                             f"[{first[result]}] (values of an axis are distinct)")
            else:
                first[result] = i
                resolved.append(result)
        return resolved if len(resolved) == len(raw) else None

    def zips(self, groups: list[dict[str, Any]]) -> list[dict[str, list[Any]]]:
        resolved = []
        for g, group in enumerate(groups):
            if not group:
                self.problem(f"zip[{g}]", "empty; expected two or more parameters with lists "
                             "of equal length")
                continue
            axes = self.axes(group, f"zip[{g}]", distinct=False)
            length, first = next(((len(v), n) for n, v in axes.items()), (0, ""))
            for name, values in axes.items():
                if len(values) != length:
                    self.problem(f"zip[{g}].{name}", f"{len(values)} values, but zip[{g}]."
                                 f"{first} has {length}; expected lists of equal length")
            if len(axes) == len(group) and {len(v) for v in axes.values()} == {length}:
                first_at: dict[tuple[Any, ...], int] = {}
                for i, row in enumerate(zip(*(axes[n] for n in sorted(axes)), strict=True)):
                    if first_at.setdefault(row, i) != i:
                        self.problem(f"zip[{g}]", f"position {i} repeats position "
                                     f"{first_at[row]} ({', '.join(sorted(axes))}); expected "
                                     "distinct combinations")
                        break
                else:
                    resolved.append(axes)
        return resolved

    def trials(self, tables: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        resolved = []
        for t, table in enumerate(tables):
            trial = self.values(schema.Trial, table, f"{kind}[{t}]")
            if not table:
                self.problem(f"{kind}[{t}]", "empty; expected parameter values")
            elif len(trial) == len(table):
                resolved.append(trial)
        return resolved

    def run_options(self, table: Mapping[str, Any]) -> RunOptions:
        order = sorted(table, key=lambda key: RUN_KEYS.index(key) if key in RUN_KEYS else -1)
        good = {k: table[k] for k in order
                if self.check(schema.Run, {k: table[k]}, "run") is not None}
        for key, wanted in (("scheduler", "dask"), ("address", "ray")):
            if key in good and good.get("backend", "loky") != wanted:
                self.problem(f"run.{key}", f"only used with backend = \"{wanted}\"")
        return RunOptions(**good)

    def search_options(self, table: Mapping[str, Any]) -> SearchOptions:
        good = {k: v for k, v in table.items()
                if self.check(schema.Search, {k: v}, "search") is not None}
        method = good.get("method", "grid")
        edge_keys = {k: good.pop(k) for k in EDGE_KEYS if k in good}
        for key in ("samples", "seed") if method in ("grid", "edge") else ():
            if key in good:
                self.problem(f"search.{key}", 'only used with method = "random" or "sobol"')
        for key in edge_keys if method != "edge" else ():
            self.problem(f"search.{key}", 'only used with method = "edge"')
        if method == "edge":
            good["edge"] = EdgeSearch(**edge_keys)
        return SearchOptions(**good)

    def edge_bracket(self, search: SearchOptions, grid: dict[str, list[Any]],
                     document: Mapping[str, Any]) -> SearchOptions:
        """The edge search's bracket, the smallest and largest value of its [grid] axis, which
        then holds those two ends alone (the first round's probes). The axis must be swept there
        with numbers > 0, at least two distinct ones: a bisection runs in log scale between
        them."""
        edge = search.edge
        if edge is None:
            return search
        name, key = edge.axis, f"search.axis = {_show(edge.axis)}"
        table, params, zips = (document.get(place) for place in ("grid", "params", "zip"))
        written = {n: v for n, v in (table or {}).items() if n in PARAM_NAMES}
        zips = zips if isinstance(zips, list) else []
        values = grid.get(name, [])
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if name not in written:
            where = ("[params]" if name in (params or {}) else "a [[zip]]"
                     if any(isinstance(g, dict) and name in g for g in zips) else "")
            hint = datasets.did_you_mean(name, PARAM_NAMES) if name not in PARAM_NAMES else ""
            self.problems.append(
                f"{self.where}: {key}: expected a parameter swept in [grid], its smallest and "
                f"largest values the bracket (swept there: {', '.join(sorted(written)) or 'none'})"
                + (f"; {name} is in {where}" if where else hint))
        elif name not in grid:  # its own problems are told already
            return search
        elif len(numbers) != len(values) or any(v <= 0 for v in numbers):
            self.problems.append(f"{self.where}: {key}: expected an axis of numbers > 0 (the "
                                 f"bisection runs in log scale); grid.{name} = "
                                 f"{_show(written[name])}")
        elif len(values) < 2:
            self.problems.append(f"{self.where}: {key}: expected grid.{name} to hold the "
                                 "bracket, two or more distinct values; it has "
                                 f"{_show(written[name])}")
        else:
            low, high = min(numbers), max(numbers)
            grid[name] = [low, high]
            return replace(search, edge=replace(edge, low=low, high=high,
                                                integer=name in schema.INTEGER_PARAMS))
        return search

    def report_options(self, table: Mapping[str, Any], axes: list[str]) -> ReportOptions:
        self.check(schema.Report, table, "report")
        chosen: dict[str, str] = {}
        swept = ", ".join(axes) or "none"
        for key in (key for key in REPORT_KEYS if key in table):
            value, at = table[key], f"report.{key}"
            if not isinstance(value, str) or value not in PARAM_NAMES:
                hint = datasets.did_you_mean(value, PARAM_NAMES) if isinstance(value, str) else ""
                self.invalid(at, value, f"a parameter name{hint} (swept: {swept})")
            elif value not in axes:
                self.invalid(at, value, f"a swept parameter (swept: {swept})")
            elif value in chosen.values():
                self.invalid(at, value, "a parameter not already on x, y or facet")
            else:
                chosen[key] = value
        return ReportOptions(**chosen)

    # --- checks across the file -------------------------------------------------------

    def check_count(self, document: Mapping[str, Any], search: SearchOptions) -> bool:
        """Whether the product, counted from the axes' lengths as written, is one a run can
        hold; its values are resolved only then (a grid of 10^18 is refused at once, without
        expanding its ranges of a million values each)."""
        grid, zips = document.get("grid"), document.get("zip")
        lengths = [_written_length(v) for v in grid.values()] if isinstance(grid, dict) else []
        if isinstance(zips, list):
            lengths += [max((_written_length(v) for v in group.values()), default=1)
                        for group in zips if isinstance(group, dict)]
        count = math.prod(lengths) * (search.samples if search.draws else 1)
        if document.get("exclude"):  # a run holds what the rules leave; the mask, every trial
            if count > MAX_FILTERED:
                self.problem("exclude", f"cannot filter {count:,} trials; exclude works on "
                             f"grids of at most {MAX_FILTERED:,}")
            return count <= MAX_FILTERED
        if count > MAX_TRIALS:
            self.problems.append(f"{self.where}: the grid has {count:,} trials, more than the "
                                 f"limit of {MAX_TRIALS:,} (the most one run can plan); narrow "
                                 "the grid, or split it into several sweep files")
        return count <= MAX_TRIALS

    def check_places(self, document: Mapping[str, Any]) -> set[str]:
        """A parameter is fixed, or swept by one axis; read from the raw tables, so a key is
        placed even when its values have problems of their own. Returns the swept names."""
        written = document.get("zip")
        zips = [g for g in written if isinstance(g, dict)] if isinstance(written, list) else []
        placed: dict[str, str] = {}
        for place, table in [("params", document.get("params")), ("grid", document.get("grid")),
                             *((f"zip[{g}]", group) for g, group in enumerate(zips))]:
            for name in table if isinstance(table, dict) else ():
                if name in PARAM_NAMES and name in placed:
                    self.problem(f"{place}.{name}", f"also in [{placed[name]}]; a parameter is "
                                 "either fixed or swept, not both" if place == "grid" else
                                 f"also in {_section(placed[name])}; a parameter stands in one "
                                 "place only")
                placed[name] = place
        return {name for name, place in placed.items() if place != "params"
                and name in PARAM_NAMES}

    def check_exclude(self, exclude: list[dict[str, Any]], grid: Mapping[str, list[Any]],
                      zips: list[dict[str, list[Any]]], written: set[str]) -> None:
        """Each rule names swept parameters with values they take (an axis with problems of
        its own is not checked again)."""
        swept = {n: (f"grid.{n}", v) for n, v in grid.items()}
        swept.update({n: (f"zip[{g}].{n}", v) for g, group in enumerate(zips)
                      for n, v in group.items()})
        for e, rule in enumerate(exclude):
            for name, value in rule.items():
                key = f"exclude[{e}].{name}"
                if name not in swept and name not in written:
                    self.problem(key, "not swept; an exclude names swept parameters only "
                                 f"(swept: {', '.join(sorted(swept)) or 'none'})")
                elif name in swept and value not in swept[name][1]:
                    self.problems.append(f"{self.where}: {key} = {_show(value)}: matches no "
                                         f"trial; {swept[name][0]} has no such value")

    def check_against_data(self, dataset: datasets.Dataset, params: Mapping[str, Any],
                           swept: set[str]) -> None:
        """A written batch larger than the data is an error. A minibatch as large as the data
        (the default 8 on XOR's 4 rows, say) is full descent under another name: a note."""
        rows, batch = dataset.rows, DEFAULTS["batch_size"]
        for key, name, value in self.seen:
            if name == "batch_size" and value > rows:
                self.invalid(key, value, f"at most {rows}, the rows in the data ({dataset.name})")
        minibatch = [key for key, name, value in self.seen if (name, value) == ("descent",
                                                                              "minibatch")]
        if not minibatch or rows < 2:  # one row: every descent is the same
            return
        whole = [f"{key} = {value}" for key, name, value in self.seen
                 if name == "batch_size" and value == rows]
        if "batch_size" not in params and "batch_size" not in swept and batch >= rows:
            whole.insert(0, f"batch_size = {batch} (the default)")
        self.notes += [f"{self.where}: {minibatch[0]} = \"minibatch\" with {written}, not below "
                       f"the {rows} rows of the data ({dataset.name}): every step takes all "
                       f"rows, as descent = \"full\" does; set batch_size below {rows} for "
                       "minibatch steps" for written in whole]

    def check_weights(self, params: Mapping[str, Any], dataset: datasets.Dataset | None
                      ) -> None:
        weights, seen = params.get("weights"), [(n, v) for _, n, v in self.seen]
        if weights is None:
            self.problems += [f"{self.where}: {key} = \"given\": needs weights = [...] in "
                              "[params], one (fan_in, fan_out) matrix per layer"
                              for key, name, value in self.seen if (name, value) == ("init",
                                                                                    "given")]
        elif params.get("init") != "given":
            self.problem("params.weights", "only used with init = \"given\"; add it to [params]")
        elif dataset is not None:
            shapes = tuple((len(layer), len(layer[0])) for layer in weights)
            n_in, n_out = dataset.x.shape[1], dataset.y.shape[1]
            hiddens, biases = ({v for n, v in seen if n == name} | {params.get(name,
                               DEFAULTS[name])} for name in ("hidden", "bias"))
            for hidden, bias in itertools.product(sorted(hiddens), sorted(biases)):
                needed = tuple(weight_shapes(TrialParams(hidden=hidden, bias=bias), n_in, n_out))
                if shapes != needed:
                    self.problem("params.weights", f"shapes {_shapes(shapes)} do not fit "
                                 f"hidden = {_show(list(hidden))}{', bias' if bias else ''} "
                                 f"with {_count(n_in, 'input')} and {_count(n_out, 'output')}; "
                                 f"expected {_shapes(needed)}")

    def check_optimizer_settings(self, params: Mapping[str, Any]) -> None:
        """A setting of an optimizer no trial uses (momentum with sgd alone) changes ids, not
        numbers: it is a mistake."""
        used = {params.get("optimizer", DEFAULTS["optimizer"])} | {
            value for _, name, value in self.seen if name == "optimizer"}
        unused = {key.split("[")[0]: name for key, name, _ in self.seen  # an axis: once
                  if name in OPTIMIZER_OF and OPTIMIZER_OF[name] not in used}
        for key, name in unused.items():
            self.problem(key, f'only used with optimizer = "{OPTIMIZER_OF[name]}"')

    def check_losses(self, grid: Grid, params: Mapping[str, Any],
                     dataset: datasets.Dataset) -> None:
        """Softmax takes cross-entropy (its squared loss is not elementwise) over two or more
        outputs; cross-entropy takes probabilities: softmax's or a sigmoid's. Trials are
        looked at only when the file names values that could clash."""
        written = {name: {params.get(name, DEFAULTS[name])} | {
            v for _, n, v in self.seen if n == name} for name in ("output", "loss")}
        if "softmax" not in written["output"] and "cross_entropy" not in written["loss"]:
            return
        pairs = {(t.params.output, t.params.loss) for t in grid}
        for output, loss in sorted(pairs):
            if output == "softmax" and loss != "cross_entropy":
                self.problems.append(f'{self.where}: output = "softmax" needs loss = '
                                     f'"cross_entropy" (a trial has loss = "{loss}")')
            elif loss == "cross_entropy" and output not in ("softmax", "sigmoid"):
                self.problems.append(f'{self.where}: loss = "cross_entropy" needs output = '
                                     f'"softmax" or "sigmoid" (a trial has output = "{output}")')
        if "softmax" in {output for output, _ in pairs} and dataset.y.shape[1] < 2:
            self.problems.append(f'{self.where}: output = "softmax" needs two or more outputs; '
                                 f"{dataset.name} has one (softmax over one output is always 1)")

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
                self.problem(f"include[{i}]", "already in the grid; remove it or change a value")
        if len(grid) == 0:
            self.problem("exclude", "removes every trial; expected at least one left")


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


def _unit_points(search: SearchOptions, dimensions: int) -> NDArray[np.float64]:
    """`samples` points of the unit cube, (samples, dimensions): scrambled Sobol' points (the
    first of the next power of two, whose prefix keeps a low discrepancy) or uniform random
    ones, both from the search's seed."""
    if search.method == "random":
        return np.random.default_rng(search.seed).random((search.samples, dimensions))
    from scipy.stats import qmc  # imported here: only sobol sweeps pay for it

    sobol = qmc.Sobol(dimensions, scramble=True, seed=search.seed)
    points = sobol.random_base2(max(0, math.ceil(math.log2(search.samples))))
    return np.asarray(points[: search.samples], dtype=np.float64)


def _section(place: str) -> str:
    return f"[{place}]" if place in ("params", "grid") else place


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _shapes(shapes: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"({a}, {b})" for a, b in shapes) or "none"


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- values as TOML -----------------------------------------------------------------------

def _show(value: Any, depth: int = 0) -> str:
    """A value as the sweep file would spell it, cut short when long."""
    if isinstance(value, list | tuple):
        inner = "..." if depth >= 3 else ", ".join(_show(v, depth + 1) for v in value[:20])
        text = f"[{inner}{', ...' if len(value) > 20 else ''}]"
    elif isinstance(value, dict):
        inner = "..." if depth >= 3 else ", ".join(
            f"{_toml_key(str(k))} = {_show(v, depth + 1)}" for k, v in list(value.items())[:20])
        text = f"{{ {inner} }}"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        text = "(a huge integer)"
    else:
        text = _toml(value) if isinstance(value, bool | str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


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


def _toml_table(header: str, table: Mapping[str, Any]) -> str:
    return f"\n{header}\n" + "".join(f"{name} = {_toml(value)}\n" for name, value in table.items())


def _spec_text(
    name: str, description: str, dataset_text: str, params: Mapping[str, Any],
    grid: Mapping[str, list[Any]], zips: list[dict[str, list[Any]]],
    include: list[dict[str, Any]], exclude: list[dict[str, Any]], run: RunOptions,
    report: ReportOptions, base: Mapping[str, Any], swept: Mapping[str, Any],
    search: SearchOptions, sampled: Mapping[str, list[Any]],
) -> Iterator[str]:
    """The spec with ranges expanded and defaults spelled out; it loads back to the same trials.

    Defaults stand as comments, so loading it back never checks a value the user did not write
    (the default batch_size, for one, exceeds a small dataset's rows).
    """
    yield "# Resolved by nnsweep: ranges expanded, defaults shown as comments.\n"
    yield f"name = {_toml_string(name)}\ndescription = {_toml_string(description)}\n"
    yield dataset_text if dataset_text.startswith("dataset") else "\n" + dataset_text
    yield _toml_table("[params]", params)
    for param in PARAM_NAMES:
        if param not in params and param not in swept and base[param] is not None:
            yield f"# {param} = {_toml(base[param])}  (default)\n"
    if grid:
        yield _toml_table("[grid]", {n: grid[n] for n in sorted(grid)})
    if search.edge is not None:
        edge = search.edge
        yield (f"\n# [search] method = \"edge\": the edge of {edge.axis} between {edge.low:g} and "
               f"{edge.high:g} (the bracket in [grid]) for each combination of the other axes")
        yield _toml_table("[search]", {"method": "edge", "axis": edge.axis,
                                       "outcome": edge.outcome, "precision": edge.precision})
    if sampled:
        yield (f"\n# [search] method = {_toml_string(search.method)}, samples = "
               f"{search.samples}, seed = {search.seed} drew these points:")
        yield _toml_table("[[zip]]", {n: sampled[n] for n in sorted(sampled)})
    yield from (_toml_table(f"[[{kind}]]", table) for kind, tables in
                (("zip", zips), ("include", include), ("exclude", exclude)) for table in tables)
    yield _toml_table("[run]", {k: v for k, v in vars(run).items() if v is not None})
    if any(v is not None for v in vars(report).values()):
        yield _toml_table("[report]", {k: v for k, v in vars(report).items() if v is not None})
