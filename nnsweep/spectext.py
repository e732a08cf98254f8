"""Values as a sweep file spells them, and the resolved spec written as TOML.

The resolved spec has ranges expanded, drawn points written out and defaults spelled out as
comments; it loads back to the same trials (results/<name>/spec.toml holds it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nnsweep.params import PARAM_NAMES
from nnsweep.search import SearchOptions


def show(value: Any, depth: int = 0) -> str:
    """A value as the sweep file would spell it, cut short when long."""
    if isinstance(value, list | tuple):
        inner = "..." if depth >= 3 else ", ".join(show(v, depth + 1) for v in value[:20])
        text = f"[{inner}{', ...' if len(value) > 20 else ''}]"
    elif isinstance(value, dict):
        inner = "..." if depth >= 3 else ", ".join(
            f"{_toml_key(str(k))} = {show(v, depth + 1)}" for k, v in list(value.items())[:20])
        text = f"{{ {inner} }}"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        text = "(a huge integer)"
    else:
        text = toml(value) if isinstance(value, bool | str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return repr(value)


def toml_string(text: str) -> str:
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
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def _toml_table(header: str, table: Mapping[str, Any]) -> str:
    return f"\n{header}\n" + "".join(f"{name} = {toml(value)}\n" for name, value in table.items())


def spec_text(
    name: str, description: str, dataset: str | Mapping[str, Any], params: Mapping[str, Any],
    grid: Mapping[str, list[Any]], zips: list[dict[str, list[Any]]],
    include: list[dict[str, Any]], exclude: list[dict[str, Any]], run: Mapping[str, Any],
    report: Mapping[str, Any], base: Mapping[str, Any], swept: Mapping[str, Any],
    search: SearchOptions, sampled: Mapping[str, list[Any]],
) -> str:
    """The spec with ranges expanded and defaults spelled out. `dataset` is a built-in's name
    or the [dataset] table's keys; `run` and `report` hold their options, None where unset.

    Defaults stand as comments, so loading it back never checks a value the user did not write
    (the default batch_size, for one, exceeds a small dataset's rows).
    """
    parts = ["# Resolved by nnsweep: ranges expanded, defaults shown as comments.\n",
             f"name = {toml_string(name)}\ndescription = {toml_string(description)}\n",
             f"dataset = {toml_string(dataset)}\n" if isinstance(dataset, str) else
             _toml_table("[dataset]", dataset), _toml_table("[params]", params)]
    parts += [f"# {param} = {toml(base[param])}  (default)\n" for param in PARAM_NAMES
              if param not in params and param not in swept and base[param] is not None]
    if grid:
        parts.append(_toml_table("[grid]", {n: grid[n] for n in sorted(grid)}))
    if search.edge is not None:
        edge = search.edge
        parts.append(f"\n# [search] method = \"edge\": the edge of {edge.axis} between "
                     f"{edge.low:g} and {edge.high:g} (the bracket in [grid]) for each "
                     "combination of the other axes")
        parts.append(_toml_table("[search]", {"method": "edge", "axis": edge.axis,
                                              "outcome": edge.outcome,
                                              "precision": edge.precision}))
    if search.halving is not None:
        halving = search.halving
        table = {"method": halving.method, "eta": halving.eta,
                 "min_epochs": halving.min_epochs, "max_epochs": halving.max_epochs}
        parts.append(_toml_table("[search]", {**table, "seed": halving.seed}
                                 if halving.method == "hyperband" else table))
    if sampled:
        parts.append(f"\n# [search] method = {toml_string(search.method)}, samples = "
                     f"{search.samples}, seed = {search.seed} drew these points:")
        parts.append(_toml_table("[[zip]]", {n: sampled[n] for n in sorted(sampled)}))
    parts += [_toml_table(f"[[{kind}]]", table) for kind, tables in
              (("zip", zips), ("include", include), ("exclude", exclude)) for table in tables]
    parts.append(_toml_table("[run]", {k: v for k, v in run.items() if v is not None}))
    if any(v is not None for v in report.values()):
        parts.append(_toml_table("[report]", {k: v for k, v in report.items() if v is not None}))
    return "".join(parts)
