"""The sweep file's schema: every table's keys, types, ranges and choices, stated once.

Models are strict ("1000" is no integer) and refuse unknown keys. A field's description completes
"KEY = VALUE: expected ..." (a required field's says what its absence means); a validator raises
`expected` when the wording depends on the value, `problem` for a key with no use where it is.
"""

from __future__ import annotations

import math
from types import GenericAlias
from typing import Annotated, Any, Literal, get_args

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from nnsweep.datasets import (
    BUILTINS,
    MAX_BITS,
    MAX_MODULUS,
    MAX_ROWS,
    OPTIONS,
    finite_float,
)
from nnsweep.edge import MAX_PRECISION, Outcome
from nnsweep.params import (
    PARAM_NAMES,
    Activation,
    Descent,
    GivenWeights,
    Init,
    Loss,
    Metric,
    Optimizer,
    Output,
    Reduction,
    Select,
)

MAX_AXIS = 1_000_000  # values one axis or range may hold
MAX_EPOCHS = 1_000_000_000
MAX_LAYER = 100_000
# Workers a sweep may ask for: a cluster's worth. On one machine the runner uses at most one
# per core (runner.workers_for); -1 means every core and -2 all but one, as in joblib.
MAX_WORKERS = 1024
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"  # a results folder's name
INTEGER_PARAMS = ("hidden", "batch_size", "epochs", "seed", "record_every")  # whole numbers
Engine = Literal["numpy", "numba", "auto"]
Backend = Literal["loky", "dask", "ray"]
STRICT = ConfigDict(extra="forbid", strict=True)


def expected(text: str) -> PydanticCustomError:
    return PydanticCustomError("expected", "{text}", {"text": text})


def problem(text: str) -> PydanticCustomError:
    return PydanticCustomError("problem", "{text}", {"text": text})


def refused(text: str) -> Any:
    """A key with no use where it stands: written at all, it is a problem."""
    def refuse(value: object) -> None:
        raise problem(text)
    return Annotated[object, pydantic.PlainValidator(refuse)]


def choice(names: Any, quoted: bool = True) -> Any:
    """One of a Literal's names (a near miss gets a "did you mean")."""
    shown = (f'"{name}"' if quoted else name for name in get_args(names))
    return Annotated[names, Field(description="one of " + ", ".join(shown))]


def text(description: str, empty: bool = False) -> Any:
    """A string, checked in Python: pydantic's own checks refuse a lone surrogate, which TOML
    allows and the file may hold."""
    def check(value: str) -> str:
        if not (value or empty):
            raise ValueError(description)
        return value
    return Annotated[str, pydantic.AfterValidator(check), Field(description=description)]


def integer(low: int, high: int, text: str = "") -> Any:
    return Annotated[int, Field(ge=low, le=high,
                                description=text or f"an integer from {low:,} to {high:,}")]


def nonzero(text: str, limit: int | None = None) -> Any:
    """Any integer but 0, at most `limit` either way: a count of workers or a range's step."""
    return Annotated[Annotated[int, Field(ge=1, le=limit)] | Annotated[int, Field(
        ge=limit and -limit, le=-1)], Field(description=text)]


def model(name: str, fields: dict[str, Any], base: type[BaseModel] | None = None
          ) -> type[BaseModel]:
    """A strict model; a field is a type (optional: only what is written is checked) or a
    (type, default) pair."""
    pairs: dict[str, Any] = {key: kind if isinstance(kind, tuple) else (kind, None)
                             for key, kind in fields.items()}
    if base is not None:
        return create_model(name, __base__=base, **pairs)
    return create_model(name, __config__=STRICT, **pairs)


def _weights(value: object) -> GivenWeights:
    """One matrix of rows per layer; the first flaw decides the wording."""
    text = "a list of weight matrices, one per layer, each a list of rows of numbers"
    if not isinstance(value, list) or not value:
        raise expected(text)
    layers = []
    for matrix in value:
        if not isinstance(matrix, list) or not matrix:
            raise expected(text)
        rows = []
        for row in matrix:
            if not isinstance(row, list) or not row or len(row) != len(matrix[0]):
                raise expected(text + " of equal length")
            numbers = [finite_float(cell) for cell in row]
            if any(number is None for number in numbers):
                raise expected(text.replace("numbers", "finite numbers"))
            rows.append(tuple(number for number in numbers if number is not None))
        layers.append(tuple(rows))
    return tuple(layers)


Layer = Annotated[int, Field(ge=1, le=MAX_LAYER)]
SEED = integer(0, 2**32 - 1, f"an integer from 0 to {2**32 - 1}")
FLAG = Annotated[bool, Field(description="true or false")]
FRACTION = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False,
                                  description="a number from 0 up to, not including, 1")]
PARAMS: dict[str, Any] = {  # TrialParams' fields, in their order
    "hidden": Annotated[Layer | Annotated[list[Layer], Field(max_length=100)],
                        pydantic.AfterValidator(lambda v: tuple(v if isinstance(v, list) else [v])),
                        Field(description=f"a layer size from 1 to {MAX_LAYER:,}, or a list of "
                                          "them (4, [3, 2], [] for none)")],
    "activation": choice(Activation),
    "output": choice(Output),
    "alpha": Annotated[float, Field(gt=0, allow_inf_nan=False, description="a number > 0")],
    "descent": choice(Descent),
    "batch_size": integer(1, MAX_EPOCHS, "an integer >= 1"),
    "reduction": choice(Reduction),
    "epochs": integer(1, MAX_EPOCHS),
    "seed": SEED,
    "init": choice(Init),
    "weights": Annotated[object, pydantic.PlainValidator(_weights)],
    "record_every": integer(0, MAX_EPOCHS, "an integer >= 0 (0: epochs // 1000, at least 1)"),
    "metric": choice(Metric),
    "tolerance": Annotated[float, Field(ge=0, allow_inf_nan=False, description="a number >= 0")],
    "bias": FLAG,
    "shuffle": FLAG,
    "optimizer": choice(Optimizer),
    "momentum": FRACTION,
    "beta1": FRACTION,
    "beta2": FRACTION,
    "eps": Annotated[float, Field(gt=0, allow_inf_nan=False, description="a number > 0")],
    "weight_decay": Annotated[float, Field(ge=0, allow_inf_nan=False,
                                           description="a number >= 0")],
    "dropout": FRACTION,
    "loss": choice(Loss),
    "select": choice(Select),
}
assert tuple(PARAMS) == PARAM_NAMES
Params = model("Params", PARAMS)  # [params]; one value of an axis
Axes = model("Axes", {name: GenericAlias(list, kind) for name, kind in PARAMS.items()})  # at once
Trial = model("Trial", {**PARAMS, "weights": refused("given weights can only be set in [params]")})
AXIS = ("a list of values to try, or a range such as { log = [0.001, 1000], num = 7 } (one value "
        "goes in [params])")
Grid = model("Grid", {  # [grid] and each [[zip]]: the axes as written
    **dict.fromkeys(PARAMS, Annotated[list[Any] | dict[str, Any], Field(description=AXIS)]),
    "weights": refused("given weights cannot be swept; set them in [params]")})
Run = model("Run", {
    "jobs": nonzero(f"an integer from 1 to {MAX_WORKERS:,} (workers), or -1 for all cores (-2 "
                    "all but one)", MAX_WORKERS),
    "engine": choice(Engine),
    "backend": choice(Backend),
    "scheduler": text('a dask scheduler address, e.g. "tcp://host:8786"'),
    "address": text('a ray cluster address, e.g. "ray://host:10001"'),
    "save_weights": FLAG,
})
Report = model("Report", dict.fromkeys(("x", "y", "facet"), object))  # names checked by spec.py
DATASET = (f"a built-in name ({', '.join(BUILTINS)}) or a [dataset] table with name, x and y, "
           "or csv and target")
Document = model("Document", {
    "name": Annotated[str, Field(pattern=f"^{NAME}$", description="a folder name: letters, "
                                 "digits, '.', '_' and '-', starting with a letter or digit")],
    "description": text("a string", empty=True),
    "dataset": Annotated[str | dict[str, Any], Field(description=DATASET)],
    **{key: Annotated[list[dict[str, Any]], Field(description=f"an array of tables ([[{key}]])")]
       if key in ("zip", "include", "exclude") else
       Annotated[dict[str, Any], Field(description=f"a table ([{key}])")]
       for key in ("params", "grid", "zip", "include", "exclude", "search", "run", "report")},
})


class Spread(BaseModel):
    """An axis's range: { range = [start, stop], step = s } as Python's range; { log = [first,
    last], num = n } and { linear = ... } evenly spaced (log: in log scale), both ends included,
    rounded to 12 significant digits so that the ends and round values come out exact."""

    model_config = STRICT

    def count(self) -> int:
        fields = dict(self)
        if "range" in fields:
            (start, stop), step = fields["range"], fields["step"]
            return max(0, -(-int(stop - start) // int(step)))
        return int(fields["num"])

    def values(self, integer: bool) -> list[Any]:
        """`integer`: for an integer parameter, whose values must land on integers."""
        fields = dict(self)
        if "range" in fields:
            (start, stop), step = fields["range"], fields["step"]
            return list(range(start, stop, step))
        space = np.geomspace if "log" in fields else np.linspace
        first, last = fields.get("log") or fields["linear"]
        with np.errstate(all="ignore"):  # huge ends: the values say inf, and are refused then
            spaced = space(first, last, self.count()).tolist()  # (num,)
        values: list[Any] = [float(f"{v:.12g}") for v in spaced]
        return [int(v) if integer and math.isfinite(v) and v.is_integer() else v for v in values]


def _ends(low: float | None, text: str) -> Any:
    return (Annotated[list[Annotated[float, Field(gt=low, allow_inf_nan=False)]],
                      Field(min_length=2, max_length=2, description=text)], ...)


_NUM = (int, Field(None, ge=1, le=MAX_AXIS, validate_default=True,
                   description=f"an integer from 1 to {MAX_AXIS:,} (how many values)"))
RANGES = {  # by the key that names the kind; the parts in the order their problems are told
    "log": model("Log", {"log": _ends(0, "[first, last], two numbers > 0"), "num": _NUM}, Spread),
    "linear": model("Linear", {"linear": _ends(None, "[first, last], two numbers"),
                               "num": _NUM}, Spread),
    "range": model("Range", {"range": (Annotated[list[int], Field(
        min_length=2, max_length=2, description="[start, stop], two integers")], ...),
                             "step": (nonzero("a non-zero integer"), 1)}, Spread),
}


class Drawn(BaseModel):
    """An axis that [search] random or sobol draws from, one value per sample: { loguniform =
    [low, high] } and { uniform = ... } continuous (log: uniform in log scale), { intloguniform
    = [low, high] } whole numbers in log scale, both ends possible, { choice = [...] } one of
    the values, equally likely (search.py maps a point of the unit interval to each)."""

    model_config = STRICT


def _ordered(pair: list[Any]) -> list[Any]:
    if pair[0] >= pair[1]:
        raise expected("[low, high] with low < high")
    return pair


def _pair(kind: type, low: float | None, text: str) -> Any:
    number: Any = (Annotated[kind, Field(gt=low, allow_inf_nan=False)] if kind is float else
                   Annotated[kind, Field(ge=1, le=MAX_EPOCHS)])
    return (Annotated[list[number], Field(min_length=2, max_length=2, description=text),
                      pydantic.AfterValidator(_ordered)], ...)


DRAWN = {  # by the key that names the kind
    "loguniform": model("LogUniform", {"loguniform": _pair(float, 0, "[low, high], two "
                                                           "numbers > 0")}, Drawn),
    "uniform": model("Uniform", {"uniform": _pair(float, None, "[low, high], two numbers")},
                     Drawn),
    "intloguniform": model("IntLogUniform", {"intloguniform": _pair(
        int, None, f"[low, high], two integers from 1 to {MAX_EPOCHS:,}")}, Drawn),
    "choice": model("Choice", {"choice": (Annotated[list[Any], Field(
        min_length=1, description="a non-empty list of values")], ...)}, Drawn),
}
METHODS = Literal["grid", "random", "sobol", "edge", "halving", "hyperband"]
Search = model("Search", {
    "method": choice(METHODS),
    "samples": integer(1, MAX_AXIS, f"an integer from 1 to {MAX_AXIS:,} (points to draw)"),
    "seed": SEED,
    # method = "edge": the axis bisected (spec.py checks it is swept), the outcome that must
    # hold below the edge, and how narrow (above / below - 1) the bracket ends
    "axis": text("a parameter name swept in [grid]"),
    "outcome": choice(Outcome),
    "precision": Annotated[float, Field(gt=0, le=MAX_PRECISION, allow_inf_nan=False, description=(
        f"a number > 0 and at most {MAX_PRECISION} (relative: above / below - 1)"))],
    # method = "halving" or "hyperband": the rungs, min_epochs x eta ** k up to max_epochs
    # (the trials' epochs when not given); spec.py checks min_epochs < max_epochs
    "eta": integer(2, 100, "an integer from 2 to 100 (1 / eta of a rung go on)"),
    "min_epochs": integer(1, MAX_EPOCHS),
    "max_epochs": integer(1, MAX_EPOCHS),
    "metric": choice(Metric),  # what ranks at each rung: the trials' metric, which it sets
})
OPTION_NAMES = ("rows", "seed", "noise", "bits", "modulus")  # a generated set's, datasets.OPTIONS
HOLD_OUT: dict[str, Any] = {  # any form of [dataset] may hold rows out for validation
    "validation": Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False, description=(
        "the fraction of the rows held out, a number above 0 and below 1"))],
    "split_seed": SEED,
}
DatasetKeys = model("DatasetKeys", dict.fromkeys(  # any [dataset] table; its form checks more
    ("name", *OPTION_NAMES, "x", "y", "csv", "target", *HOLD_OUT, "validation_csv"), object))


def _columns(value: object) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise expected('a list of column names, e.g. ["y"]')
    return names


Csv = model("Csv", {  # the keys in the order their problems are reported
    **dict.fromkeys(("x", "y", *OPTION_NAMES, "name"), refused('not used with csv = "..."')),
    "csv": text("the CSV file's path, relative to the sweep file"),
    "target": (Annotated[object, pydantic.PlainValidator(_columns), Field(
        description='missing; expected the target columns, e.g. target = ["y"]')], ...),
    **HOLD_OUT,
    "validation_csv": text("the validation CSV file's path, relative to the sweep file")})
_XY = (Annotated[object, Field(description="missing; inline data needs both x and y")], ...)
Inline = model("Inline", {
    "x": _XY, "y": _XY, **dict.fromkeys((*OPTION_NAMES, "target"),
                                        refused("not used with inline x and y")),
    "name": (text("a non-empty string"), "inline"), **HOLD_OUT,
    "validation_csv": refused('only used with csv = "..."')})


class _Builtin(BaseModel):
    """A built-in dataset: an unknown name's error says it all; each generated set takes its
    own options (datasets.OPTIONS) and no other."""

    model_config = STRICT

    @pydantic.field_validator(*OPTION_NAMES, mode="wrap", check_fields=False)
    @classmethod
    def _named_first(cls, value: object, check: pydantic.ValidatorFunctionWrapHandler,
                     info: pydantic.ValidationInfo) -> object:
        name, option = info.data.get("name"), str(info.field_name)
        takes = OPTIONS.get(name, {}) if isinstance(name, str) else {}
        if name is not None and option not in takes:
            takers = [f'"{n}"' for n in OPTIONS if option in OPTIONS[n]]
            who = (f"the {takers[0]} dataset takes" if len(takers) == 1 else
                   f"the {', '.join(takers[:-1])} and {takers[-1]} datasets take")
            raise problem(f"only {who} {option}; {name} "
                          + (f"takes {', '.join(takes)}" if takes else "is fixed"))
        return value if name is None else check(value)


Builtin = model("Builtin", {
    "name": (choice(Literal.__getitem__(BUILTINS), quoted=False), ...),  # Literal[*BUILTINS]
    "target": refused('only used with csv = "..."'), "rows": integer(1, MAX_ROWS),
    "seed": SEED, "noise": Annotated[float, Field(ge=0, le=10, allow_inf_nan=False,
                                                  description="a number from 0 to 10")],
    "bits": integer(1, MAX_BITS), "modulus": integer(2, MAX_MODULUS), **HOLD_OUT,
    "validation_csv": refused('only used with csv = "..."')}, _Builtin)
