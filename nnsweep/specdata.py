"""A sweep file's dataset: a built-in's name, or a [dataset] table checked in its form (a
built-in with options, inline x and y, or a CSV file), read into data with the rows it holds
out, and the keys the resolved spec writes for it. A path is taken from the file's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nnsweep import datasets, schema
from nnsweep.checks import Findings
from nnsweep.errors import DataError


def read(found: Findings, value: object) -> tuple[datasets.Dataset | None, str | dict[str, Any]]:
    """The data and how the resolved spec writes it (a built-in's name, or the [dataset]
    table's keys); data problems are kept apart."""
    builtins = datasets.BUILTINS
    if value is None:
        found.problem("dataset", f"missing; expected {schema.DATASET}")
    elif isinstance(value, str) and value in builtins:
        return datasets.builtin(value), value
    elif isinstance(value, str):
        found.invalid("dataset", value, f"one of {', '.join(builtins)}"
                      f"{datasets.did_you_mean(value, builtins)}")
    elif isinstance(value, dict):
        found.check(schema.DatasetKeys, value, "dataset")
        table = {key: part for key, part in value.items() if key in schema.DatasetKeys.model_fields}
        form = schema.Csv if "csv" in table else schema.Inline if {"x", "y"} & set(
            table) else schema.Builtin if "name" in table else None
        if form is None:
            found.problem("dataset", f"expected {schema.DATASET}")
        elif (checked := found.check(form, table, "dataset", lenient=True)) is not None:
            try:
                return _data(found, form, checked)
            except DataError as exc:
                found.data_problems.append(str(exc))
    else:
        found.check(schema.Document, {"dataset": value})
    return None, ""


def _data(found: Findings, kind: type[BaseModel], form: Any
          ) -> tuple[datasets.Dataset, dict[str, Any]]:
    """A checked [dataset] table's data with its held-out rows, and its resolved keys."""
    data, table = _rows(found, kind, form)
    validation_csv = getattr(form, "validation_csv", None)
    if form.validation is not None and validation_csv is not None:
        raise DataError(f"{found.where}: dataset: validation and validation_csv both hold "
                        "rows out; expected one of them")
    if form.split_seed is not None and form.validation is None:
        raise DataError(f"{found.where}: dataset.split_seed: only used with validation = "
                        "a fraction of the rows")
    if form.validation is not None:
        seed = form.split_seed or 0
        try:
            held = data.split(form.validation, seed)
        except DataError as exc:
            raise DataError(f"{found.where}: dataset.{exc}") from None
        return held, {**table, "validation": form.validation, "split_seed": seed}
    if validation_csv is not None:
        path = _beside(found.source, validation_csv)
        return data.held_out(datasets.from_csv(path, form.target)), {
            **table, "validation_csv": str(path.resolve())}
    return data, table


def _rows(found: Findings, kind: type[BaseModel], form: Any
          ) -> tuple[datasets.Dataset, dict[str, Any]]:
    """A checked [dataset] table's rows, and its resolved keys."""
    if kind is schema.Builtin:
        options = {**datasets.OPTIONS.get(form.name, {}), **{
            key: value for key, value in dict(form).items()
            if key in schema.OPTION_NAMES and value is not None}}
        return datasets.builtin(form.name, **options), {"name": form.name, **options}
    if kind is schema.Inline:
        data = datasets.from_inline(form.x, form.y, f"{found.where}: dataset", name=form.name)
        return data, {"name": form.name, "x": data.x.tolist(), "y": data.y.tolist()}
    path = _beside(found.source, form.csv)
    data = datasets.from_csv(path, form.target)
    return data, {"csv": str(path.resolve()), "target": form.target}


def _beside(source: Path | None, name: str) -> Path:
    """A path as written in the sweep file: relative to the file's folder."""
    path = Path(name)
    return path if path.is_absolute() or source is None else source.parent / path
