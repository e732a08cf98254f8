"""What is wrong with a sweep file, each problem one line naming file, key and value.

A table is checked against its schema model as spec.py reads it, pydantic's errors told in the
file's words; the checks below look at what was read together: where each parameter stands,
the trial count, an edge search's bracket, exclude and include rules against the axes, and the
values against the data, the given weights, the optimizers, the losses and the measures.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from nnsweep import datasets, schema
from nnsweep.errors import DataError, SpecError
from nnsweep.grid import MAX_FILTERED, MAX_TRIALS, Grid
from nnsweep.network import weight_shapes
from nnsweep.params import (
    CLASS_METRICS,
    DEFAULTS,
    METRICS,
    OPTIMIZER_OF,
    PARAM_NAMES,
    TrialParams,
)
from nnsweep.search import SearchOptions
from nnsweep.spectext import show


@dataclass
class Findings:
    """A sweep file's problems, one line each (a table's are pydantic's errors against its
    model, told in the file's words), its notes (valid, but likely not what was meant), and
    every parameter value read with its key, for the checks against each other."""

    source: Path | None
    problems: list[str] = field(default_factory=list)
    data_problems: list[str] = field(default_factory=list)  # the data's own, kept apart
    notes: list[str] = field(default_factory=list)
    seen: list[tuple[str, str, Any]] = field(default_factory=list)  # key, parameter, value

    @property
    def where(self) -> str:
        return str(self.source) if self.source is not None else "<spec>"

    def raise_problems(self) -> None:
        """SpecError with every problem; DataError when only the data has them."""
        if self.problems:
            raise SpecError(self.problems + self.data_problems)
        if self.data_problems:
            raise DataError("\n".join(self.data_problems))

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}: {key}: {message}")

    def invalid(self, key: str, value: object, expected: str) -> None:
        self.problems.append(f"{self.where}: {key} = {show(value)}: expected {expected}")

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
        """One key's resolved value, or None after its problems."""
        checked = self.check(model, {name: value}, where, key)
        return None if checked is None else getattr(checked, name)

    def values(self, model: type[BaseModel], table: Mapping[str, Any], where: str
               ) -> dict[str, Any]:
        """The keys of `table` that pass, resolved; each is told on its own, in table order."""
        return {name: result for name, value in table.items()
                if (result := self.value(model, name, value, where)) is not None}


def trial_count(found: Findings, document: Mapping[str, Any], search: SearchOptions) -> bool:
    """Whether the product, counted from the axes' lengths as written, is one a run can hold;
    its values are resolved only then (a grid of 10^18 is refused at once, without expanding
    its ranges of a million values each)."""
    grid, zips = document.get("grid"), document.get("zip")
    lengths = [_written_length(v) for v in grid.values()] if isinstance(grid, dict) else []
    if isinstance(zips, list):
        lengths += [max((_written_length(v) for v in group.values()), default=1)
                    for group in zips if isinstance(group, dict)]
    count = math.prod(lengths) * (search.samples if search.draws else 1)
    if document.get("exclude"):  # a run holds what the rules leave; the mask, every trial
        if count > MAX_FILTERED:
            found.problem("exclude", f"cannot filter {count:,} trials; exclude works on grids "
                          f"of at most {MAX_FILTERED:,}")
        return count <= MAX_FILTERED
    if count > MAX_TRIALS:
        found.problems.append(f"{found.where}: the grid has {count:,} trials, more than the "
                              f"limit of {MAX_TRIALS:,} (the most one run can plan); narrow "
                              "the grid, or split it into several sweep files")
    return count <= MAX_TRIALS


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


def edge_bracket(found: Findings, search: SearchOptions, grid: dict[str, list[Any]],
                 document: Mapping[str, Any]) -> SearchOptions:
    """The edge search's bracket, the smallest and largest value of its [grid] axis, which
    then holds those two ends alone (the first round's probes). The axis must be swept there
    with numbers > 0, at least two distinct ones: a bisection runs in log scale between
    them."""
    edge = search.edge
    if edge is None:
        return search
    name, key = edge.axis, f"search.axis = {show(edge.axis)}"
    table, params, zips = (document.get(place) for place in ("grid", "params", "zip"))
    written = {n: v for n, v in (table or {}).items() if n in PARAM_NAMES}
    zips = zips if isinstance(zips, list) else []
    values = grid.get(name, [])
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if name not in written:
        where = ("[params]" if name in (params or {}) else "a [[zip]]"
                 if any(isinstance(g, dict) and name in g for g in zips) else "")
        hint = datasets.did_you_mean(name, PARAM_NAMES) if name not in PARAM_NAMES else ""
        found.problems.append(
            f"{found.where}: {key}: expected a parameter swept in [grid], its smallest and "
            f"largest values the bracket (swept there: {', '.join(sorted(written)) or 'none'})"
            + (f"; {name} is in {where}" if where else hint))
    elif name not in grid:  # its own problems are told already
        return search
    elif len(numbers) != len(values) or any(v <= 0 for v in numbers):
        found.problems.append(f"{found.where}: {key}: expected an axis of numbers > 0 (the "
                              f"bisection runs in log scale); grid.{name} = "
                              f"{show(written[name])}")
    elif len(values) < 2:
        found.problems.append(f"{found.where}: {key}: expected grid.{name} to hold the "
                              "bracket, two or more distinct values; it has "
                              f"{show(written[name])}")
    else:
        low, high = min(numbers), max(numbers)
        grid[name] = [low, high]
        return replace(search, edge=replace(edge, low=low, high=high,
                                            integer=name in schema.INTEGER_PARAMS))
    return search


def halving_epochs(found: Findings, search: SearchOptions, params: dict[str, Any],
                   document: Mapping[str, Any], held_out: bool = False
                   ) -> tuple[SearchOptions, dict[str, Any]]:
    """A halving or hyperband search's epochs: every trial trains to max_epochs at most (the
    trials' epochs: [params] epochs, or max_epochs, which then sets them), its rungs from
    min_epochs up. The epochs and the metric that ranks are the search's: no axis sweeps
    them. Data with `held_out` rows ranks on them unless [params] select says otherwise:
    a search is after the settings that generalize."""
    halving = search.halving
    if halving is None:
        return search, params
    for place in ("grid", "zip", "include"):
        for name in ("epochs", "metric", "select"):
            if _names(document.get(place), name):
                found.problems.append(
                    f"{found.where}: {place}: {name} is the search's (method = "
                    f"{show(halving.method)} trains every trial to search.max_epochs at most, "
                    "ranking all by one metric); expected it in [params], not swept")
    given = document["search"].get("max_epochs")  # a table, or the search would be a grid
    if given is not None and params.get("epochs", given) != given:
        found.problems.append(f"{found.where}: search.max_epochs = {show(given)}: expected "
                              f"params.epochs ({show(params['epochs'])}) or neither")
    maximum = halving.max_epochs if given is not None else params.get(
        "epochs", DEFAULTS["epochs"])
    if halving.min_epochs >= maximum:
        found.problems.append(f"{found.where}: search.min_epochs = {show(halving.min_epochs)}: "
                              f"expected fewer than the trials' {show(maximum)} epochs "
                              "(search.max_epochs, or params.epochs)")
    if given is not None:
        params = {**params, "epochs": maximum}
    ranking = document["search"].get("metric")
    if ranking in METRICS:  # [search] metric names the trials' metric, as [params] may
        if params.get("metric", ranking) != ranking:
            found.problems.append(f"{found.where}: search.metric = {show(ranking)}: expected "
                                  f"params.metric ({show(params['metric'])}) or neither")
        params = {**params, "metric": ranking}
    if held_out and "select" not in params:
        params = {**params, "select": "validation"}
    return replace(search, halving=replace(halving, max_epochs=maximum)), params


def _names(table: object, name: str) -> bool:
    tables = table if isinstance(table, list) else [table]
    return any(isinstance(t, dict) and name in t for t in tables)


def places(found: Findings, document: Mapping[str, Any]) -> set[str]:
    """A parameter is fixed, or swept by one axis; read from the raw tables, so a key is
    placed even when its values have problems of their own. Returns the swept names."""
    written = document.get("zip")
    zips = [g for g in written if isinstance(g, dict)] if isinstance(written, list) else []
    placed: dict[str, str] = {}
    for place, table in [("params", document.get("params")), ("grid", document.get("grid")),
                         *((f"zip[{g}]", group) for g, group in enumerate(zips))]:
        for name in table if isinstance(table, dict) else ():
            if name in PARAM_NAMES and name in placed:
                found.problem(f"{place}.{name}", f"also in [{placed[name]}]; a parameter is "
                              "either fixed or swept, not both" if place == "grid" else
                              f"also in {_section(placed[name])}; a parameter stands in one "
                              "place only")
            placed[name] = place
    return {name for name, place in placed.items() if place != "params" and name in PARAM_NAMES}


def exclude_rules(found: Findings, exclude: list[dict[str, Any]],
                  grid: Mapping[str, list[Any]], zips: list[dict[str, list[Any]]],
                  written: set[str]) -> None:
    """Each rule names swept parameters with values they take (an axis with problems of its
    own is not checked again)."""
    swept = {n: (f"grid.{n}", v) for n, v in grid.items()}
    swept.update({n: (f"zip[{g}].{n}", v) for g, group in enumerate(zips)
                  for n, v in group.items()})
    for e, rule in enumerate(exclude):
        for name, value in rule.items():
            key = f"exclude[{e}].{name}"
            if name not in swept and name not in written:
                found.problem(key, "not swept; an exclude names swept parameters only "
                              f"(swept: {', '.join(sorted(swept)) or 'none'})")
            elif name in swept and value not in swept[name][1]:
                found.problems.append(f"{found.where}: {key} = {show(value)}: matches no "
                                      f"trial; {swept[name][0]} has no such value")


def against_data(found: Findings, dataset: datasets.Dataset, params: Mapping[str, Any],
                 swept: set[str]) -> None:
    """A written batch larger than the data is an error. A minibatch as large as the data (the
    default 8 on XOR's 4 rows, say) is full descent under another name: a note."""
    rows, batch = dataset.rows, DEFAULTS["batch_size"]
    for key, name, value in found.seen:
        if name == "batch_size" and value > rows:
            found.invalid(key, value, f"at most {rows}, the rows in the data ({dataset.name})")
    minibatch = [key for key, name, value in found.seen
                 if (name, value) == ("descent", "minibatch")]
    if not minibatch or rows < 2:  # one row: every descent is the same
        return
    whole = [f"{key} = {value}" for key, name, value in found.seen
             if name == "batch_size" and value == rows]
    if "batch_size" not in params and "batch_size" not in swept and batch >= rows:
        whole.insert(0, f"batch_size = {batch} (the default)")
    found.notes += [f"{found.where}: {minibatch[0]} = \"minibatch\" with {written}, not below "
                    f"the {rows} rows of the data ({dataset.name}): every step takes all rows, "
                    f"as descent = \"full\" does; set batch_size below {rows} for minibatch "
                    "steps" for written in whole]


def given_weights(found: Findings, params: Mapping[str, Any],
                  dataset: datasets.Dataset | None) -> None:
    weights, seen = params.get("weights"), [(n, v) for _, n, v in found.seen]
    if weights is None:
        found.problems += [f"{found.where}: {key} = \"given\": needs weights = [...] in "
                           "[params], one (fan_in, fan_out) matrix per layer"
                           for key, name, value in found.seen if (name, value) == ("init",
                                                                                  "given")]
    elif params.get("init") != "given":
        found.problem("params.weights", "only used with init = \"given\"; add it to [params]")
    elif dataset is not None:
        shapes = tuple((len(layer), len(layer[0])) for layer in weights)
        n_in, n_out = dataset.x.shape[1], dataset.y.shape[1]
        hiddens, biases = ({v for n, v in seen if n == name} | {params.get(name,
                           DEFAULTS[name])} for name in ("hidden", "bias"))
        for hidden, bias in itertools.product(sorted(hiddens), sorted(biases)):
            needed = tuple(weight_shapes(TrialParams(hidden=hidden, bias=bias), n_in, n_out))
            if shapes != needed:
                found.problem("params.weights", f"shapes {_shapes(shapes)} do not fit "
                              f"hidden = {show(list(hidden))}{', bias' if bias else ''} "
                              f"with {_count(n_in, 'input')} and {_count(n_out, 'output')}; "
                              f"expected {_shapes(needed)}")


def optimizer_settings(found: Findings, params: Mapping[str, Any]) -> None:
    """A setting of an optimizer no trial uses (momentum with sgd alone) changes ids, not
    numbers: it is a mistake."""
    used = {params.get("optimizer", DEFAULTS["optimizer"])} | {
        value for _, name, value in found.seen if name == "optimizer"}
    unused = {key.split("[")[0]: name for key, name, _ in found.seen  # an axis: once
              if name in OPTIMIZER_OF and not used & set(OPTIMIZER_OF[name])}
    for key, name in unused.items():
        found.problem(key, "only used with optimizer = "
                      + " or ".join(f'"{optimizer}"' for optimizer in OPTIMIZER_OF[name]))


def losses(found: Findings, grid: Grid, params: Mapping[str, Any],
           dataset: datasets.Dataset) -> None:
    """Softmax takes cross-entropy (its squared loss is not elementwise) over two or more
    outputs; cross-entropy takes probabilities: softmax's or a sigmoid's. Trials are looked at
    only when the file names values that could clash."""
    written = {name: {params.get(name, DEFAULTS[name])} | {
        v for _, n, v in found.seen if n == name} for name in ("output", "loss")}
    if "softmax" not in written["output"] and "cross_entropy" not in written["loss"]:
        return
    pairs = {(t.params.output, t.params.loss) for t in grid}
    for output, loss in sorted(pairs):
        if output == "softmax" and loss != "cross_entropy":
            found.problems.append(f'{found.where}: output = "softmax" needs loss = '
                                  f'"cross_entropy" (a trial has loss = "{loss}")')
        elif loss == "cross_entropy" and output not in ("softmax", "sigmoid"):
            found.problems.append(f'{found.where}: loss = "cross_entropy" needs output = '
                                  f'"softmax" or "sigmoid" (a trial has output = "{output}")')
    if "softmax" in {output for output, _ in pairs} and dataset.y.shape[1] < 2:
        found.problems.append(f'{found.where}: output = "softmax" needs two or more outputs; '
                              f"{dataset.name} has one (softmax over one output is always 1)")


def measures(found: Findings, grid: Grid, dataset: datasets.Dataset) -> None:
    """Accuracy and cross-entropy are measured on classifiers alone; the held-out rows decide
    only where there are some."""
    for key, name, value in found.seen:
        if name == "metric" and value in CLASS_METRICS:
            losses = sorted({t.params.loss for t in grid
                             if t.params.metric == value and not t.params.classifier})
            if losses:
                found.invalid(key, value, f'loss = "cross_entropy" with it ({value} is '
                              f'measured on classifiers; a trial has loss = "{losses[0]}")')
        if (name, value) == ("select", "validation") and dataset.validation is None:
            found.invalid(key, value, f"held-out rows, which {dataset.name} has none of: "
                          "add validation = 0.25 (the share held out) to a [dataset] table")


def included_trials(found: Findings, grid: Grid) -> None:
    """Each include adds a trial the grid lacks; the exclude rules leave at least one."""
    seen_include: dict[tuple[tuple[str, Any], ...], int] = {}
    for i, trial in enumerate(grid.include):
        params = {**grid.base, **trial}
        key = tuple(sorted(params.items()))
        if key in seen_include:
            found.problem(f"include[{i}]", f"the same trial as include[{seen_include[key]}]")
            continue
        seen_include[key] = i
        position = grid.product_position(params)
        if position is not None and not grid.is_excluded(position):
            found.problem(f"include[{i}]", "already in the grid; remove it or change a value")
    if len(grid) == 0:
        found.problem("exclude", "removes every trial; expected at least one left")


def _section(place: str) -> str:
    return f"[{place}]" if place in ("params", "grid") else place


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _shapes(shapes: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"({a}, {b})" for a, b in shapes) or "none"
