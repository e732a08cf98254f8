"""The sweep file: TOML in, a validated, frozen Spec out, or every problem at once.

The format is README.md's "The sweep file"; schema.py states each table's keys, types and
ranges. Each table is checked against its model and every error becomes one line, ``FILE: KEY =
VALUE: expected ...`` or ``FILE: KEY: ...`` (``FILE:LINE:COLUMN: invalid TOML: ...``); then come
the checks that span tables (checks.py) and the resolved spec (spectext.py). Only SpecError and
DataError ever leave.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from nnsweep import checks, datasets, schema, specdata
from nnsweep.edge import EdgeSearch
from nnsweep.errors import NnsweepWarning, SpecError
from nnsweep.grid import Axis, Grid
from nnsweep.halving import METHODS as HALVING_METHODS
from nnsweep.halving import Halving
from nnsweep.params import DEFAULTS, PARAM_NAMES
from nnsweep.search import Distribution, SearchOptions, draw, drop_repeats
from nnsweep.spectext import show, spec_text

ENGINES: tuple[str, ...] = get_args(schema.Engine)
BACKENDS: tuple[str, ...] = get_args(schema.Backend)
TOP_KEYS: tuple[str, ...] = tuple(schema.Document.model_fields)
DATASET_KEYS: tuple[str, ...] = tuple(schema.DatasetKeys.model_fields)
RUN_KEYS: tuple[str, ...] = tuple(schema.Run.model_fields)
REPORT_KEYS: tuple[str, ...] = tuple(schema.Report.model_fields)
MAX_WORKERS = schema.MAX_WORKERS
EDGE_KEYS: tuple[str, ...] = ("axis", "outcome", "precision")  # [search] with method = "edge"
HALVING_KEYS: tuple[str, ...] = ("eta", "min_epochs", "max_epochs")  # halving and hyperband
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
    search: SearchOptions = field(default_factory=SearchOptions)

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
    return _Reader(source, overrides=dict(overrides or {})).spec(text)


@dataclass
class _Reader(checks.Findings):
    """One pass over the file, collecting every problem before anything is built."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    drawn: dict[str, Distribution] = field(default_factory=dict)  # by parameter
    drawing: set[str] = field(default_factory=set)  # parameters given as distributions

    def parameters(self, model: type[BaseModel], table: Mapping[str, Any], where: str
                   ) -> dict[str, Any]:
        """[params] or an include's values that pass, kept in `seen` for the checks."""
        values = self.values(model, table, where)
        self.seen += [(f"{where}.{name}", name, value) for name, value in values.items()]
        return values

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
        dataset, dataset_table = specdata.read(self, document.get("dataset"))
        params = self.parameters(schema.Params, self.top(document, "params", {}), "params")
        search = self.search_options(self.top(document, "search", {}))
        fits = checks.trial_count(self, document, search)
        grid = self.axes(self.top(document, "grid", {}), "grid") if fits else {}
        search = checks.edge_bracket(self, search, grid, document) if fits else search
        search, params = checks.halving_epochs(
            self, search, params, document,
            held_out=dataset is not None and dataset.validation is not None)
        zips = self.zips(self.top(document, "zip", [])) if fits else []
        sampled = self.sample(search) if fits else {}
        include, exclude = (self.trials(self.top(document, kind, []), kind)
                            for kind in ("include", "exclude"))
        written = checks.places(self, document)
        swept = {**grid, **sampled, **{n: v for group in zips for n, v in group.items()}}
        if fits:
            checks.exclude_rules(self, exclude, {**grid, **sampled}, zips, written)
        axes = tuple(sorted({*swept, *(n for trial in include for n in trial)}))
        run = self.run_options(self.top(document, "run", {}))
        report = self.report_options(self.top(document, "report", {}), sorted({*axes, *written}))
        if dataset is not None:
            checks.against_data(self, dataset, params, written)
        checks.given_weights(self, params, dataset)
        checks.optimizer_settings(self, params)
        self.raise_problems()
        if dataset is None or name is None:  # always reported above; this keeps types honest
            raise SpecError([f"{self.where}: dataset: unusable"])
        axis_list = [Axis((n,), tuple((v,) for v in values)) for n, values in grid.items()]
        axis_list += [Axis(tuple(sorted(group)), tuple(zip(*(group[n] for n in sorted(group)),
                                                           strict=True)))
                      for group in [*zips, sampled] if group]
        base = {**DEFAULTS, **params}
        trials = Grid(base, axis_list, include, exclude, dataset.hash)
        checks.included_trials(self, trials)
        checks.losses(self, trials, params, dataset)
        checks.measures(self, trials, dataset)
        self.raise_problems()
        # An include-only key keeps its [params] value in the hash: product trials still use it.
        non_swept = {n: v for n, v in base.items() if n not in swept}
        spec_hash = _digest({"data": dataset.hash, "fixed": non_swept, "axes": list(axes)})
        text = spec_text(name, description, dataset_table, params, grid, zips, include, exclude,
                         vars(run), vars(report), base, swept, search, sampled)
        spec = Spec(name, description, self.source, dataset, params, axes, run, report, text,
                    spec_hash, tuple(axis_list), tuple(include), tuple(exclude),
                    tuple(self.notes), replace(search, drawn=tuple(sorted(sampled))))
        spec.__dict__["_grid"] = trials  # already built and checked
        return spec

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
        self.problem("name", f"missing, and the file's stem {show(stem)} is not a usable "
                     "folder name; expected name = \"...\"")
        return None

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
            if self.axis(f"{key}.choice", name, value["choice"], True) is not None:
                # as written: the drawn ones are resolved with the other draws (a resolved
                # hidden, a tuple, is no longer a value the file could write)
                self.drawn[name] = Distribution(key, drawn, list(value["choice"]))
        elif all([self.value(schema.Params, name, end, key=f"{key}.{kinds[0]}[{i}]") is not None
                  for i, end in enumerate(value[kinds[0]])]):  # the ends fit: so does all between
            self.drawn[name] = Distribution(key, drawn, [])

    def sample(self, search: SearchOptions) -> dict[str, list[Any]]:
        """The drawn axes' points, one list per parameter, zipped: `samples` of them, less any
        that repeat an earlier point (whole numbers and choices can)."""
        if not search.draws or not self.drawn:
            if search.draws and not self.drawing:  # else its axes' problems say it
                self.problem("search.method", f'"{search.method}" draws from distributions, but '
                             "[grid] has none; expected an axis such as alpha = { loguniform = "
                             "[0.001, 1] }")
            for axis in self.drawn.values():
                self.problem(axis.key, 'a distribution needs [search] method = "random" or "sobol"')
            return {}
        drawn = draw(self.drawn, search)
        resolved = {name: values for name, raw in drawn.items()
                    if (values := self.axis(self.drawn[name].key, name, raw, False)) is not None}
        if len(resolved) < len(drawn):  # a value with a problem, told
            return {}
        points, notes = drop_repeats(resolved, search)
        self.notes += [f"{self.where}: {note}" for note in notes]
        return points

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
            trial = self.parameters(schema.Trial, table, f"{kind}[{t}]")
            if not table:
                self.problem(f"{kind}[{t}]", "empty; expected parameter values")
            elif len(trial) == len(table):
                resolved.append(trial)
        return resolved

    def run_options(self, table: Mapping[str, Any]) -> RunOptions:
        order = sorted(table, key=lambda key: RUN_KEYS.index(key) if key in RUN_KEYS else -1)
        good = self.values(schema.Run, {key: table[key] for key in order}, "run")
        for key, wanted in (("scheduler", "dask"), ("address", "ray")):
            if key in good and good.get("backend", "loky") != wanted:
                self.problem(f"run.{key}", f"only used with backend = \"{wanted}\"")
        return RunOptions(**good)

    def search_options(self, table: Mapping[str, Any]) -> SearchOptions:
        good = self.values(schema.Search, table, "search")
        method = good.get("method", "grid")
        edge_keys = {k: good.pop(k) for k in EDGE_KEYS if k in good}
        halving_keys = {k: good.pop(k) for k in HALVING_KEYS if k in good}
        if good.pop("metric", None) is not None and method not in HALVING_METHODS:
            self.problem("search.metric", 'only used with method = "halving" or "hyperband"')
        if "samples" in good and method not in ("random", "sobol"):
            self.problem("search.samples", 'only used with method = "random" or "sobol"')
        if "seed" in good and method not in ("random", "sobol", "hyperband"):
            self.problem("search.seed",
                         'only used with method = "random", "sobol" or "hyperband"')
        for key in edge_keys if method != "edge" else ():
            self.problem(f"search.{key}", 'only used with method = "edge"')
        for key in halving_keys if method not in HALVING_METHODS else ():
            self.problem(f"search.{key}", 'only used with method = "halving" or "hyperband"')
        if method == "edge":
            good["edge"] = EdgeSearch(**edge_keys)
        if method in HALVING_METHODS:
            if "min_epochs" not in halving_keys:
                self.problem("search.min_epochs", "missing; expected the epochs of the first "
                             "rung, an integer >= 1")
            good["halving"] = Halving(method, **halving_keys, seed=good.get("seed", 0))
        return SearchOptions(**good)

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


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
