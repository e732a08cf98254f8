"""The numbers a heatmap's cells show, one row per cell, aggregated across seeds with
pandas before anything is drawn: so drawing costs in proportion to the grid's cells, not
its trials, and the page states the very numbers the figures draw.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nnsweep import outcomes
from nnsweep.figures import FloatArray, Layout
from nnsweep.result import HIGHER_IS_BETTER

FINISHED = ("converged", "not_converged", "diverged")


# --- one row per heatmap cell -------------------------------------------------------------

def trial_outcomes(trials: pd.DataFrame, history: pd.DataFrame,
                   validation: pd.DataFrame | None = None) -> pd.Series:
    """Each trial's outcome class (see nnsweep.outcomes and OUTCOMES): `history` holds the
    training rows; `validation`, the held-out rows, judges the trials that select them."""
    if validation is not None and len(validation):
        history = pd.concat([history, validation], ignore_index=True)
    return outcomes.trial_outcomes(trials, history)


def dataset_rows(history: pd.DataFrame, directions: pd.DataFrame) -> int | None:
    """The dataset's rows, told by the tables themselves: mse is sse / (rows x outputs), and
    the last weight matrix has one column per output. None when they cannot tell (a lean
    history, nnsweep.leanhistory, holds neither)."""
    if history.empty or directions.empty or not {"sse", "mse"} <= set(history.columns):
        return None
    sse, mse = history["sse"].to_numpy(dtype=float), history["mse"].to_numpy(dtype=float)
    usable = np.isfinite(sse) & np.isfinite(mse) & (mse > 0)  # (rows,)
    if not usable.any():
        return None
    values = np.rint(sse[usable] / mse[usable])  # (usable,) rows x outputs
    product = float(pd.Series(values).mode().iloc[0])
    last = directions[directions["layer"] == directions.groupby("trial")["layer"].transform("max")]
    outputs = int(last["col"].max()) + 1
    rows = product / outputs
    return int(rows) if rows >= 1 and rows == int(rows) else None


def update_steps(trials: pd.DataFrame, rows: int | None) -> FloatArray:
    """Each trial's update steps: epochs trained (up to divergence) x steps per epoch, which is
    1 for full descent, ceil(rows / batch size) for minibatches and rows for stochastic; NaN
    where that needs the dataset's rows and they are unknown."""
    descent = trials["descent"].astype(str).to_numpy()  # (trials,)
    data_rows = float(rows) if rows else np.nan
    step_rows = np.where(descent == "stochastic", 1.0,
                         np.minimum(trials["batch_size"].to_numpy(dtype=float),
                                    data_rows))  # (trials,) rows per minibatch step
    per_epoch = np.where(descent == "full", 1.0, np.ceil(data_rows / step_rows))  # (trials,)
    diverged = trials["diverged_epoch"].to_numpy(dtype=float, na_value=np.nan)  # (trials,)
    epochs = np.where(np.isfinite(diverged), np.maximum(diverged, 1.0),
                      trials["epochs"].to_numpy(dtype=float))  # (trials,)
    steps: FloatArray = epochs * per_epoch  # (trials,)
    return steps


def change_rates(trials: pd.DataFrame, directions: pd.DataFrame,
                 rows: int | None) -> pd.Series:
    """Each trial's direction changes per weight and per update step, so widths, descents and
    epochs compare: its total over (weights x update_steps). NaN where the weights (rows of
    the directions table) or the steps are unknown."""
    counts = directions["trial"].value_counts()  # categories count their unseen ids: 0
    weights = trials["trial"].map(counts[counts > 0]).to_numpy(
        dtype=float, na_value=np.nan)  # (trials,)
    changes = trials["direction_changes"].to_numpy(dtype=float, na_value=np.nan)  # (trials,)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = changes / (weights * update_steps(trials, rows))  # (trials,)
    return pd.Series(rate, index=trials.index, dtype="float64")


def per_steps(high: float) -> int:
    """The power of ten of update steps that puts the largest rate between 1 and 10 when it is
    under 0.01, so that rates read as 7.3 per 10,000 steps rather than 0.00073 per step."""
    if not (np.isfinite(high) and 0 < high < 0.01):
        return 1
    return int(10 ** max(0, -math.floor(math.log10(high))))


def steps_text(steps: int) -> str:
    return "update step" if steps == 1 else f"{steps:,} update steps"


CELL_COLUMNS = ("seeds", "diverged", "error", "error_low", "error_high", "converged_share",
                "converged_epoch", "direction_changes", "change_rate", "outcome", "higher")


def _higher(trials: pd.DataFrame) -> NDArray[np.bool_]:
    """Each trial's metric is a score, best when highest (accuracy)."""
    higher: NDArray[np.bool_] = trials["metric"].astype(str).isin(
        sorted(HIGHER_IS_BETTER)).to_numpy(dtype=bool)  # (trials,)
    return higher


def _worst_first_key(trials: pd.DataFrame, values: FloatArray) -> FloatArray:
    """Final values as keys that grow as the trial does worse (a score negated), a diverged
    trial's infinite: their median, turned back by _from_key, is a cell's median value."""
    higher = _higher(trials)  # (trials,)
    key: FloatArray = np.where(trials["status"] == "diverged", np.inf,
                               np.where(higher, -values, values))  # (trials,)
    return key


def _from_key(median: pd.Series, higher: pd.Series) -> pd.Series:
    """A cell's median key as its value: a score negated back; infinite (diverged) stays."""
    values = median.to_numpy(dtype=float)  # (cells,)
    flip = higher.reindex(median.index).to_numpy(dtype=bool) & np.isfinite(values)  # (cells,)
    return pd.Series(np.where(flip, -values, values), index=median.index)


def cell_frame(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout,
               directions: pd.DataFrame | None = None, rows: int | None = None, *,
               validation: pd.DataFrame | None = None,
               judged: pd.Series | None = None) -> pd.DataFrame:
    """One row per cell of the layout, aggregated across seeds with groupby (no loop per cell).

    error: median final error over finished seeds, a diverged seed counting as the worst,
    infinite (so a cell where most seeds diverge reads as diverged, error inf, whatever the
    metric; with an even count, the mean of the middle two); NaN when no seed finished (all
    failed). error_low/error_high: the least and largest finite final error of its seeds.
    outcome: the class of the median seed (the worse of the middle two), consistent with
    `error`, judged on the rows the trial selects (`validation`: the held-out rows).
    change_rate: the median seed's direction changes per weight per update step (NaN without
    the directions table). higher: the cell's metric is a score, best when highest.
    `judged`: trial_outcomes' answer, when the caller has it (the one pass over the history).
    """
    final = trials["final_error"].to_numpy(dtype=float, na_value=np.nan)  # (trials,)
    frame = trials.assign(
        _outcome=judged if judged is not None else trial_outcomes(trials, history, validation),
        _error=np.where(trials["status"] == "diverged", np.inf, final),
        _key=_worst_first_key(trials, final),
        _higher=_higher(trials),
        _finished=trials["status"].isin(FINISHED),
        _converged=(trials["status"] == "converged").astype(float),
        _diverged=(trials["status"] == "diverged").astype(int),
        _changes=trials["direction_changes"].to_numpy(dtype=float, na_value=np.nan),
        _rate=(change_rates(trials, directions, rows if rows is not None
                            else dataset_rows(history, directions))
               if directions is not None else np.nan),
    )
    frame["_epoch"] = np.where(frame["_converged"] > 0,
                               trials["converged_epoch"].to_numpy(dtype=float, na_value=np.nan),
                               np.nan)
    keys = layout.keys or ["_all"]
    if not layout.keys:
        frame = frame.assign(_all="all")
    groups = frame.groupby(keys, sort=False, dropna=False)
    cells = groups.agg(seeds=("_outcome", "size"), diverged=("_diverged", "sum"),
                       converged_share=("_converged", "mean"),
                       converged_epoch=("_epoch", "median"),
                       direction_changes=("_changes", "median"),
                       change_rate=("_rate", "median"),
                       higher=("_higher", "first"))
    finished = frame[frame["_finished"]].sort_values([*keys, "_key"], kind="stable")
    finite = finished[np.isfinite(finished["_error"])]
    by_cell = finished.groupby(keys, sort=False, dropna=False)
    middle = finished[by_cell.cumcount().to_numpy()
                      == by_cell["_key"].transform("size").to_numpy() // 2]
    cells["error"] = _from_key(by_cell["_key"].median(), cells["higher"])
    cells["outcome"] = middle.set_index(keys)["_outcome"] if len(keys) > 1 else \
        middle.set_index(keys[0])["_outcome"]
    finite_cells = finite.groupby(keys, sort=False, dropna=False)["_error"]
    cells["error_low"] = finite_cells.min()
    cells["error_high"] = finite_cells.max()
    cells["outcome"] = cells["outcome"].fillna("failed").astype(str)
    cells = cells.reset_index()
    cells = cells.drop(columns=["_all"]) if "_all" in cells else cells
    return cells[[*layout.keys, *CELL_COLUMNS]]


# --- held-out rows ------------------------------------------------------------------------

VALIDATION_CELL_COLUMNS = ("seeds", "error", "train_error", "gap", "outcome", "higher")


def has_validation(trials: pd.DataFrame) -> bool:
    """Whether any trial was measured on held-out rows."""
    return ("final_validation_error" in trials
            and bool(trials["final_validation_error"].notna().any()))


def training_finals(trials: pd.DataFrame, history: pd.DataFrame | None) -> FloatArray:
    """Each trial's final metric on its training rows: its final error where it selects them,
    else (select = validation, whose final error is the held-out rows') its last training
    row's metric in `history`; NaN where that is not at hand."""
    final: FloatArray = trials["final_error"].to_numpy(dtype=float, na_value=np.nan)
    if "select" not in trials:
        return final
    held = (trials["select"].astype("string").fillna("train") == "validation").to_numpy()
    if not held.any():
        return final
    if history is None:
        return np.where(held, np.nan, final)
    rows = history[history["trial"].isin(trials.loc[held, "trial"])]
    if "split" in rows:
        rows = rows[rows["split"].astype("string").fillna("train") == "train"]
    last = rows.sort_values(["trial", "epoch"], kind="stable").drop_duplicates(
        "trial", keep="last")
    wanted = last["trial"].map(trials.set_index("trial")["metric"].astype(str)).to_numpy()
    value = np.full(len(last), np.nan)  # (trained trials,)
    for name in np.unique(wanted.astype(str)):
        chosen = wanted == name
        value[chosen] = last[str(name)].to_numpy(dtype=float)[chosen]
    by_trial = pd.Series(value, index=last["trial"].to_numpy())
    kept: FloatArray = np.where(held, trials["trial"].map(by_trial).to_numpy(
        dtype=float, na_value=np.nan), final)  # (trials,)
    return kept


def validation_cells(trials: pd.DataFrame, layout: Layout,
                     history: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell of the layout from the trials table (a groupby; the training history
    only for trials that select the held-out rows, whose final error is theirs): error, the
    median final metric on the held-out rows (a diverged seed counting as the worst, as in
    cell_frame); train_error, the same on the training rows; gap, the median over the seeds
    that did not diverge of each seed's final validation metric minus its final training
    metric; outcome "failed" where no seed finished, so that the heatmap grid marks those
    cells as it does elsewhere; higher: the metric is a score, best when highest."""
    diverged = (trials["status"] == "diverged").to_numpy()  # (trials,)
    train = training_finals(trials, history)  # (trials,)
    held = trials["final_validation_error"].to_numpy(dtype=float, na_value=np.nan)  # (trials,)
    frame = trials.assign(_held=_worst_first_key(trials, held),
                          _train=_worst_first_key(trials, train),
                          _gap=np.where(diverged, np.nan, held - train),
                          _higher=_higher(trials),
                          _all="all")
    keys = layout.keys or ["_all"]
    finished = frame[frame["status"].isin(FINISHED)].groupby(keys, sort=False, dropna=False)
    every = frame.groupby(keys, sort=False, dropna=False)
    cells = every.size().rename("seeds").to_frame()
    cells["higher"] = every["_higher"].first()
    cells["error"] = _from_key(finished["_held"].median(), cells["higher"])
    cells["train_error"] = _from_key(finished["_train"].median(), cells["higher"])
    cells["gap"] = finished["_gap"].median()
    cells["outcome"] = np.where(cells["error"].notna(), "finished", "failed")
    cells = cells.reset_index()
    return cells[[*layout.keys, *VALIDATION_CELL_COLUMNS]]
