"""The history as the report reads it: what it draws and judges, in as few bytes as it can.

A history has a row per trial and recorded epoch (W4900 recorded every 10 epochs: 2.9 million
rows). Read whole, its text columns become a Python string per row and its five metrics five
float64 columns, about 280 bytes a row at the report's peak. The report needs each row's trial,
epoch and split, and the metrics the trials are judged and drawn by: so the trial and the split
are read as categories (an integer code per row, the text once per distinct value), and only
those metrics are kept. Reading goes BATCH_ROWS rows at a time into arrays allocated once, so
Arrow never holds the whole table. On W4900 recorded every 10 epochs the report's peak went
from 959 MB to about 410 MB (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from nnsweep import tables

DRAWN = "mae"  # every trial records it; the curves draw it when the trials differ in metric
BATCH_ROWS = 1 << 16  # rows decoded at a time


def metrics_of(trials: pd.DataFrame) -> list[str]:
    """The metric columns the report reads: each trial's own, and mae."""
    named = {str(m) for m in trials["metric"].dropna().unique()} if "metric" in trials else set()
    return [m for m in tables.HISTORY_SCHEMA if m in named | {DRAWN}]


def dtype(trial_ids: Iterable[str]) -> pd.CategoricalDtype:
    """The trial column's categories: the trials table's ids, in its order."""
    return pd.CategoricalDtype(pd.Index([str(t) for t in trial_ids], dtype=object))


SPLIT = pd.CategoricalDtype(list(tables.SPLITS))


def compact(history: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """A history frame (a rebuilt one, say) as read_lean would have read it."""
    categories = _with_unknown(dtype(trials["trial"]), history["trial"].dropna().unique())
    split = (history["split"] if "split" in history
             else pd.Series("train", index=history.index))
    columns = {
        "trial": pd.Categorical(history["trial"].astype(object), dtype=categories),
        "epoch": history["epoch"].to_numpy(dtype=np.int64),
        "split": pd.Categorical(split.astype(object).fillna("train"), dtype=SPLIT),
        **{m: history[m].to_numpy(dtype=float, na_value=np.nan) for m in metrics_of(trials)},
    }
    return pd.DataFrame(columns)


def read_lean(path: Path, trials: pd.DataFrame) -> pd.DataFrame:
    """history.parquet's rows with the columns compact keeps; raises OSError or an Arrow error
    when the file cannot be read, ValueError when it holds no trial or epoch column."""
    with system_pool():
        return _read_lean(path, trials)


@contextlib.contextmanager
def system_pool() -> Iterator[None]:
    """Arrow's buffers from the C allocator while reading: its default pool (mimalloc) keeps
    what a read frees, about 80 MB after W4900's history, where the C allocator gives it
    back."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def give_back_memory() -> None:
    """Hand the C allocator's free pages back to the system: glibc keeps the arrays numpy
    freed below its mmap threshold (which it raises to 32 MB after the first large free), so
    a report's peak would count each step's temporary arrays over again. A no-op without
    glibc."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _read_lean(path: Path, trials: pd.DataFrame) -> pd.DataFrame:
    source = pq.ParquetFile(path, read_dictionary=["trial", "split"], pre_buffer=False)
    present = set(source.schema_arrow.names)
    if not {"trial", "epoch"} <= present:
        raise ValueError(f"{path.name}: no trial or epoch column")
    metrics = [m for m in metrics_of(trials) if m in present]
    rows = source.metadata.num_rows
    categories = dtype(trials["trial"])
    trial = np.empty(rows, dtype=np.int32)  # (rows,) codes into categories
    epoch = np.empty(rows, dtype=np.int64)  # (rows,)
    split = np.zeros(rows, dtype=np.int8)  # (rows,) codes into SPLITS: train where absent
    values = {m: np.empty(rows) for m in metrics}  # (rows,) each
    wanted = ["trial", "epoch", *(["split"] if "split" in present else []), *metrics]
    at = 0
    for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=wanted, use_threads=False):
        end = at + batch.num_rows
        codes, categories = _codes(batch.column("trial"), categories)
        trial[at:end] = codes
        epoch[at:end] = batch.column("epoch").to_numpy(zero_copy_only=False)
        if "split" in present:
            split[at:end] = _split_codes(batch.column("split"))
        for m in metrics:
            values[m][at:end] = batch.column(m).to_numpy(zero_copy_only=False)
        at = end
    if at != rows:
        raise ValueError(f"{path.name}: {at} rows read of the {rows} its footer counts")
    return pd.DataFrame({
        "trial": pd.Categorical.from_codes(trial, dtype=categories),
        "epoch": epoch,
        "split": pd.Categorical.from_codes(split, dtype=SPLIT),
        **{m: values.get(m, np.full(rows, np.nan)) for m in metrics_of(trials)},
    }, copy=False)  # each column its own block: no 2-D copy of the metrics


def _codes(column: pa.Array, categories: pd.CategoricalDtype
           ) -> tuple[np.ndarray, pd.CategoricalDtype]:
    """A batch's trial ids as codes into `categories`, widened by any id it lacks (a history
    row of a trial the trials table does not hold)."""
    values, indices = _dictionary(column)
    ids = values.to_pandas().astype(object)
    categories = _with_unknown(categories, ids)
    lookup = np.append(categories.categories.get_indexer(ids), -1)  # (distinct + 1,) -1: none
    return lookup[indices], categories


def _split_codes(column: pa.Array) -> np.ndarray:
    """A batch's splits as codes into SPLITS; an empty split is a training row."""
    values, indices = _dictionary(column)
    names = [str(n) for n in values.to_pylist()]
    unknown = sorted(set(names) - set(tables.SPLITS))
    if unknown:
        raise ValueError(f"split {unknown[0]!r}: expected one of {', '.join(tables.SPLITS)}")
    lookup = np.array([tables.SPLITS.index(n) for n in names] + [0], dtype=np.int8)
    codes: np.ndarray = lookup[indices]
    return codes


def _dictionary(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A batch's column as its distinct values and each row's index into them (the number of
    values for an empty row), dictionary-encoded here if its writer did not."""
    if not isinstance(column, pa.DictionaryArray):
        column = column.dictionary_encode()
    values = column.dictionary
    indices = column.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)  # (batch,)
    return values, indices


def _with_unknown(categories: pd.CategoricalDtype, ids: Iterable[object]
                  ) -> pd.CategoricalDtype:
    """`categories` with the ids among `ids` it lacks appended, sorted."""
    given = pd.Index([str(i) for i in ids], dtype=object)
    more = given[~given.isin(categories.categories)].unique()
    if not len(more):
        return categories
    return pd.CategoricalDtype(categories.categories.append(pd.Index(sorted(more),
                                                                      dtype=object)))


# --- the history's rows, by trial -----------------------------------------------------------

def codes_of(column: pd.Series) -> tuple[NDArray[np.integer[Any]], pd.Index]:
    """Each row's value (a trial, a split) as an integer code into the values returned, -1
    for none: a lean history's own codes, without a copy; any other column's factorized."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), pd.Index(column.cat.categories)
    codes, ids = pd.factorize(column)
    return codes, pd.Index(ids)


def in_trial_order(codes: NDArray[np.integer[Any]], epoch: NDArray[Any]) -> bool:
    """Whether each trial's rows (codes, no -1) lie together, epochs rising: the order a
    table is written in."""
    if not len(codes):
        return True
    same = codes[1:] == codes[:-1]  # (rows - 1,)
    runs = len(codes) - int(same.sum())  # the number of blocks of one trial
    distinct = int(np.count_nonzero(np.bincount(codes)))
    return runs == distinct and bool(np.all((epoch[1:] > epoch[:-1]) | ~same))


def by_trial_and_epoch(codes: NDArray[np.integer[Any]], epoch: NDArray[Any]) -> NDArray[np.intp]:
    """Row positions with each trial's rows together, epochs rising: as they are when they
    already are, else sorted by trial code, then epoch."""
    if in_trial_order(codes, epoch):
        return np.arange(len(codes))
    order: NDArray[np.intp] = np.lexsort((epoch, codes))
    return order
