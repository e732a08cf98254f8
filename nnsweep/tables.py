"""The one place that builds each results table, with its columns and types spelled out.

Tables are tidy (one value per cell, no lists), so parquet and CSV hold the same frame.
Everything downstream (summary, plots, report, `show`) reads these tables, never the trainer.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from nnsweep.edge import EdgeSearch, edge_row
from nnsweep.halving import Halving
from nnsweep.params import PARAM_NAMES, TrialParams, hidden_order, hidden_text
from nnsweep.result import ERROR_NAMES, HIGHER_IS_BETTER, TrialResult

# Parameter columns of the trials table: every parameter but the given weights (a list of
# matrices is not a cell; the resolved spec.toml keeps them).
PARAM_COLUMNS: dict[str, str] = {
    "hidden": "string",  # layer sizes joined by "-": "4", "3-2", "" for none
    "activation": "string",
    "output": "string",
    "alpha": "float64",
    "descent": "string",
    "batch_size": "int64",
    "reduction": "string",
    "epochs": "int64",
    "seed": "int64",
    "init": "string",
    "record_every": "int64",
    "metric": "string",
    "tolerance": "float64",
    "bias": "bool",
    "shuffle": "bool",
    "optimizer": "string",
    "momentum": "float64",
    "beta1": "float64",
    "beta2": "float64",
    "eps": "float64",
    "weight_decay": "float64",
    "dropout": "float64",
    "loss": "string",
    "select": "string",
}
assert set(PARAM_COLUMNS) == set(PARAM_NAMES) - {"weights"}

OUTCOME_COLUMNS: dict[str, str] = {
    "status": "string",
    "final_error": "float64",
    "best_error": "float64",
    "converged_epoch": "Int64",  # nullable: empty when never converged
    "diverged_epoch": "Int64",
    "direction_changes": "Int64",  # empty for a failed trial
    "seconds": "float64",  # its batch's wall time / the batch's trials: a share, not its own
    "error": "string",  # "Type: message" of a failed trial, else empty
    "engine": "string",  # the engine that trained the trial: part of what its numbers mean
    # on the held-out rows, when the data has them: the metric at the last recorded epoch, its
    # lowest, and the epoch of the lowest (empty without held-out rows)
    "final_validation_error": "float64",
    "best_validation_error": "float64",
    "best_validation_epoch": "Int64",
    # a halving or hyperband search's (empty in other sweeps): the epochs the trial trained
    # before the search stopped it (its epochs when it went the whole way), the last rung it
    # reached (0: its bracket's first) and its bracket (Hyperband's; halving has one, 0)
    "stopped_epoch": "Int64",
    "rung": "Int64",
    "bracket": "Int64",
}

TRIALS_SCHEMA: dict[str, str] = {"trial": "string", **PARAM_COLUMNS, **OUTCOME_COLUMNS}
HISTORY_SCHEMA: dict[str, str] = {
    "trial": "string", "epoch": "int64", "split": "string",  # train | validation
    "mae": "float64", "mse": "float64", "sse": "float64",
    # a classifier's (loss = "cross_entropy"): share of right answers, mean cross-entropy per row
    "accuracy": "float64", "cross_entropy": "float64",
}
SPLITS: tuple[str, ...] = ("train", "validation")
DIRECTIONS_SCHEMA: dict[str, str] = {
    "trial": "string", "layer": "int64", "row": "int64", "col": "int64", "changes": "int64",
}
SUMMARY_STATS: dict[str, str] = {
    "seeds": "int64",
    "final_error_mean": "float64",
    "final_error_std": "float64",
    "final_error_min": "float64",
    "final_error_max": "float64",
    "converged_share": "float64",
    "converged_epoch_median": "float64",
}
SUMMARY_KEYS: tuple[str, ...] = tuple(c for c in PARAM_COLUMNS if c != "seed")
SUMMARY_SCHEMA: dict[str, str] = {
    **{c: PARAM_COLUMNS[c] for c in SUMMARY_KEYS}, **SUMMARY_STATS,
}
# An edge search's table: one row per combination of the other axes. Its parameters are
# nullable, the searched one empty; below and above are the last values probed on the bracket
# low end's side and on its high end's side, their statuses the outcomes met there.
NULLABLE = {"int64": "Int64", "bool": "boolean"}
EDGES_SCHEMA: dict[str, str] = {
    "axis": "string",  # the parameter searched
    "outcome": "string",  # converged | not_diverged: what holds on the low end's side
    **{c: NULLABLE.get(kind, kind) for c, kind in PARAM_COLUMNS.items()},
    "below": "float64",
    "above": "float64",
    "edge": "float64",  # the geometric mean of below and above; empty where found is false
    "below_status": "string",
    "above_status": "string",
    "trials": "int64",  # the probes spent on this combination
    "found": "bool",  # the bracket's ends differ in outcome: an edge lies between them
    "done": "bool",  # the bracket is as narrow as the precision asks (or cannot be split)
}
SCHEMAS: dict[str, dict[str, str]] = {
    "trials": TRIALS_SCHEMA,
    "history": HISTORY_SCHEMA,
    "directions": DIRECTIONS_SCHEMA,
    "summary": SUMMARY_SCHEMA,
    "edges": EDGES_SCHEMA,
}


def typed(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """The frame with exactly the schema's columns, in order, with the schema's types (only
    the columns of another type are cast: a table read back from parquet has them all)."""
    frame = frame.reindex(columns=list(schema))
    wrong = {c: kind for c, kind in schema.items() if frame[c].dtype != _dtype(kind)
             and not (kind == "category" and isinstance(frame[c].dtype, pd.CategoricalDtype))}
    return frame.astype(wrong) if wrong else frame


@functools.cache
def _dtype(kind: str) -> Any:
    return pd.api.types.pandas_dtype(kind)


def empty(schema: dict[str, str]) -> pd.DataFrame:
    return typed(pd.DataFrame(columns=list(schema)), schema)


def param_row(params: TrialParams) -> dict[str, Any]:
    row = {name: getattr(params, name) for name in PARAM_COLUMNS}
    row["hidden"] = hidden_text(params.hidden)
    row["record_every"] = params.record_step
    return row


def trial_row(
    trial: str,
    params: TrialParams,
    result: TrialResult | None,
    seconds: float,
    status: str | None = None,
    error: str = "",
    engine: str = "numpy",
    stop: tuple[int, int, int] | None = None,
) -> dict[str, Any]:
    """One trials-table row; `result` is None for a trial that failed or crashed. `stop`: a
    halving search's (stopped_epoch, rung, bracket) for the trial."""
    row: dict[str, Any] = {"trial": trial, **param_row(params), "seconds": seconds,
                           "error": error, "engine": engine}
    if stop is not None:
        row.update(zip(("stopped_epoch", "rung", "bracket"), stop, strict=True))
    row.update(final_validation_error=np.nan, best_validation_error=np.nan,
               best_validation_epoch=pd.NA)
    if result is None:
        row.update(status=status or "failed", final_error=np.nan, best_error=np.nan,
                   converged_epoch=pd.NA, diverged_epoch=pd.NA, direction_changes=pd.NA)
        return row
    if result.validation is not None:
        best, epoch = result.best_validation
        row.update(final_validation_error=result.final_validation_error,
                   best_validation_error=best,
                   best_validation_epoch=pd.NA if epoch is None else epoch)
    row.update(
        status=status or result.status(params.tolerance),
        final_error=result.final_error,
        best_error=result.best_error,
        converged_epoch=pd.NA if result.converged_epoch is None else result.converged_epoch,
        diverged_epoch=pd.NA if result.diverged_epoch is None else result.diverged_epoch,
        direction_changes=result.total_direction_changes,
    )
    return row


def history_frame(trial: str, result: TrialResult) -> pd.DataFrame:
    return history_table([(trial, result)])


def directions_frame(trial: str, result: TrialResult) -> pd.DataFrame:
    return directions_table([(trial, result)])


def history_table(items: Iterable[tuple[str, TrialResult]]) -> pd.DataFrame:
    """One row per trial, recorded epoch and split, built in one go for many trials: every
    trial's training rows, then the held-out rows of the trials that have them. Each error
    column is one array filled trial by trial (NaN accuracy and cross-entropy but for a
    classifier): no table per trial, no copy of the whole."""
    items = list(items)
    if not items:
        return empty(HISTORY_SCHEMA)
    held = [(trial, result) for trial, result in items if result.validation is not None]
    both = [*items, *held]
    blocks = [result.errors for _, result in items] + [
        result.validation for _, result in held if result.validation is not None]
    lengths = [len(result.epochs) for _, result in both]
    values = np.full((len(ERROR_NAMES), sum(lengths)), np.nan)  # (5, rows)
    start = 0
    for block in blocks:  # (R, 3) or (R, 5)
        values[:block.shape[1], start:start + len(block)] = block.T
        start += len(block)
    frame = pd.DataFrame({
        "trial": repeated([trial for trial, _ in both], lengths),
        "epoch": np.concatenate([result.epochs for _, result in both]),
        "split": repeated(["train"] * len(items) + ["validation"] * len(held), lengths),
        **{name: values[i] for i, name in enumerate(ERROR_NAMES)}})
    return typed(frame, HISTORY_SCHEMA)


def halving_spent(trials: pd.DataFrame, halving: Halving) -> str:
    """What a halving search spent (Halving.spent), told by its trials' stopped_epoch."""
    return halving.spent(trials["stopped_epoch"].dropna().astype(int).tolist())


def training(history: pd.DataFrame) -> pd.DataFrame:
    """The history's training rows: what the figures of training draw."""
    return history[history["split"] == "train"].reset_index(drop=True)


def directions_table(items: Iterable[tuple[str, TrialResult]]) -> pd.DataFrame:
    """One row per trial and weight: layer counts matrices from the input side, from 0.

    Trials of one network shape share their (layer, row, col) columns, built once per shape.
    """
    items = list(items)
    if not items:
        return empty(DIRECTIONS_SCHEMA)
    places: dict[tuple[tuple[int, ...], ...], tuple[np.ndarray, ...]] = {}
    layers, rows, cols, sizes = [], [], [], []
    for _, result in items:
        shapes = tuple(counts.shape for counts in result.direction_changes)
        if shapes not in places:
            places[shapes] = _places(shapes)
        layer, row, col = places[shapes]
        layers.append(layer)
        rows.append(row)
        cols.append(col)
        sizes.append(len(layer))
    frame = pd.DataFrame({
        "trial": repeated([trial for trial, _ in items], sizes),
        "layer": np.concatenate(layers),
        "row": np.concatenate(rows),
        "col": np.concatenate(cols),
        "changes": np.concatenate([np.ravel(counts) for _, result in items
                                   for counts in result.direction_changes]),
    })
    return typed(frame, DIRECTIONS_SCHEMA)


def _places(shapes: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, ...]:
    """(layer, row, col) of every weight of a network whose layers have these shapes, in the
    order its counts ravel."""
    parts = [(np.full(int(np.prod(shape)), layer, dtype=np.int64), *np.indices(shape))
             for layer, shape in enumerate(shapes)]  # (fan_in * fan_out,) each
    return tuple(np.concatenate([np.ravel(part[k]) for part in parts]).astype(np.int64)
                 for k in range(3))


def repeated(texts: Sequence[str], counts: Sequence[int]) -> pd.api.extensions.ExtensionArray:
    """A string column holding each text `count` times: taken in Arrow from the distinct
    texts, never as a million Python strings."""
    index = np.repeat(np.arange(len(texts)), counts)  # (rows,)
    return pd.array(pa.array(texts, type=pa.large_string()).take(pa.array(index)),
                    dtype="string")


def trials_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return empty(TRIALS_SCHEMA)
    return typed(frame, TRIALS_SCHEMA)


def concat(frames: Sequence[pd.DataFrame], schema: dict[str, str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty(schema)
    return typed(pd.concat(frames, ignore_index=True), schema)


def summary_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per parameter set, aggregated across seeds; failed trials count as seeds run."""
    if trials.empty:
        return empty(SUMMARY_SCHEMA)
    grouped = trials.groupby(list(SUMMARY_KEYS), sort=True, dropna=False)
    stats = grouped.agg(
        seeds=("seed", "size"),
        final_error_mean=("final_error", "mean"),
        final_error_std=("final_error", "std"),
        final_error_min=("final_error", "min"),
        final_error_max=("final_error", "max"),
        converged_share=("status", lambda s: float((s == "converged").mean())),
        converged_epoch_median=("converged_epoch", lambda s: float(s.astype("float64").median())),
    ).reset_index()
    return typed(by_hidden(stats), SUMMARY_SCHEMA)


def ranked(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials with a final error, best first (the lowest error, the highest accuracy),
    ties in trial order: diverged and failed ones never rank."""
    finished = trials[trials["final_error"].notna()]
    final = finished["final_error"].astype("float64")
    higher = finished["metric"].astype(str).isin(sorted(HIGHER_IS_BETTER))
    key = final.where(~higher, -final)  # best first
    order = finished.assign(_key=key).sort_values(["_key", "trial"], kind="stable").index
    return finished.loc[order]


def edges_frame(trials: pd.DataFrame, search: EdgeSearch) -> pd.DataFrame:
    """One row per combination of the other parameters, from its probes in the trials table:
    the bisection replayed over their statuses (edge.edge_row)."""
    if trials.empty:
        return empty(EDGES_SCHEMA)
    keys = [c for c in PARAM_COLUMNS if c != search.axis]
    rows = []
    for combination, probes in trials.groupby(keys, sort=False, dropna=False):
        statuses = dict(zip(probes[search.axis].tolist(), probes["status"].tolist(),
                            strict=True))
        rows.append({**dict(zip(keys, combination, strict=True)), **edge_row(search, statuses)})
    frame = pd.DataFrame(rows)
    frame[search.axis] = pd.Series(None, index=frame.index, dtype=EDGES_SCHEMA[search.axis])
    return typed(by_hidden(frame), EDGES_SCHEMA)


def by_hidden(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows stably reordered so hidden reads by depth, then layer sizes as numbers
    (params.hidden_order: "", "4", "16", "3-2"), not as text."""
    ranks = {text: rank for rank, text in enumerate(sorted(set(frame["hidden"]),
                                                           key=hidden_order))}
    order = np.argsort(frame["hidden"].map(ranks).to_numpy(dtype=np.int64), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def read_csv(path: Any, schema: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a results table's CSV (or one written by `DataFrame.to_csv(index=False)`) back into
    its schema, every float equal to the parquet table's bit for bit.

    Text cells keep "" as the empty string; in number columns an empty cell is missing.
    Without a schema, `path` must name a file: the table is told by its header (or, failing
    that, by the file's name: trials.csv, history.csv, ...).
    """
    if schema is None:
        schema = SCHEMAS[table_of(path)]
    text = [c for c, kind in schema.items() if kind == "string"]
    numbers = {c: [""] for c, kind in schema.items() if kind != "string"}
    frame = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False,
                        na_values=numbers)
    for column in text:
        frame[column] = frame[column].fillna("")
    return typed(frame, schema)


def table_of(path: str | os.PathLike[str]) -> str:
    """Which results table a CSV file holds: the schema whose columns its header matches
    best, or the one its file name says when the header matches none."""
    with open(path, newline="", encoding="utf-8") as handle:
        header = set(next(csv.reader(handle), []))
    overlap = {name: len(header & set(schema)) for name, schema in SCHEMAS.items()}
    best = max(overlap, key=lambda name: overlap[name] / len(SCHEMAS[name]))
    if overlap[best] > len(SCHEMAS[best]) // 2:
        return best
    stem = Path(path).stem
    if stem in SCHEMAS:
        return stem
    raise ValueError(f"{path}: not one of nnsweep's tables ({', '.join(SCHEMAS)}); pass the "
                     "schema, e.g. read_csv(path, tables.SCHEMAS[\"trials\"])")
