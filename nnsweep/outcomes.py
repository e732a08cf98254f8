"""What each trial's training did, in one word: the outcome classes of the figures and the page.

A pure function of the trials table and the history table. The status decides converged,
diverged and failed; a trial that finished without reaching its tolerance is judged by its own
recorded metric at three epochs: the first, the middle of the run, and the last. The metric is
read on the split the trial selects (its training rows when the history holds no other), and
an accuracy as its error rate, 1 - accuracy, so that for every metric lower is better.

- too_slow: more than half of its starting error is left, and it still moves at its early pace
  (the last half of the run moved it at least a quarter of its whole way): the steps are too
  small (alpha too small) to get there in the epochs given;
- learning: otherwise, if it is still falling at the end;
- stuck: stopped falling above the tolerance (flat, barely creeping, or rising over the last
  half of the run): saturated sigmoids, dead relu units, an alpha so large that updates bounce.

A plateau and a slow start both leave the error near where it began; what tells them apart is
whether the error is still moving as it did early on: a slow learner moves by about as much in
each half of its run, a stuck one has spent its movement early.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnsweep.leanhistory import codes_of, in_trial_order
from nnsweep.result import HIGHER_IS_BETTER, STATUSES

# The classes in the order legends and tables list them.
OUTCOME_NAMES: tuple[str, ...] = (
    "converged", "learning", "too_slow", "stuck", "diverged", "failed",
)

# One line per class, for captions, legends and the README.
DEFINITIONS: dict[str, str] = {
    "converged": "the metric reached the tolerance",
    "learning": "not converged, still falling at the end, at most half the starting error left",
    "too_slow": "more than half the starting error left and still moving at its early pace "
                "(alpha too small for the epochs given)",
    "stuck": "stopped falling above the tolerance (saturated or dead units, or bouncing)",
    "diverged": "an error or a weight overflowed",
    "failed": "the trial raised (or its worker crashed): no error to judge",
}

# Still falling: over the last half of the run (from the first recorded epoch at or past half
# the last one) the metric fell by at least this share of its mid-run level. A trial that is
# learning loses tens of percent there (the XOR nets lose about a third at any alpha that
# converges); a saturated or dead network loses well under a percent, or nothing.
STILL_FALLING = 0.01
# Too slow: more than this share of the starting error is left (a learner has taken most of
# it; too small an alpha has barely dented it) ...
TOO_SLOW_LEFT = 0.5
# ... and the last half of the run moved the metric by at least this share of its whole path
# (|middle - first| + |last - middle|): about half for a steady crawl (the XOR nets at alpha
# 0.001 move 0.5 to 0.66 of theirs there), next to nothing for a plateau (saturated nets: 1e-5
# and less; dead relu units: a few percent).
STEADY_SHARE = 0.25
# ... and that path is at least this share of the starting error, so float noise on a flat
# curve is no crawl.
MIN_PATH = 1e-4

_FAILED = ("failed", "crashed")
assert set(_FAILED) <= set(STATUSES)


def trial_outcomes(trials: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """Each trial's outcome (one of OUTCOME_NAMES), on the trials table's index.

    A not-converged trial with no recorded history cannot show a fall, so it reads as stuck.
    """
    start, middle, end = _three_points(trials, history)  # (trials,) each, NaN where unrecorded
    with np.errstate(invalid="ignore"):
        falling = (middle - end) >= STILL_FALLING * middle  # (trials,)
        early, late = np.abs(middle - start), np.abs(end - middle)  # (trials,) each
        steady = (late >= STEADY_SHARE * (early + late)) & (early + late >= MIN_PATH * start)
        slow = (end > TOO_SLOW_LEFT * start) & steady  # (trials,)
    judged = np.where(slow, "too_slow", np.where(falling, "learning", "stuck"))
    status = trials["status"].astype(str).to_numpy()  # (trials,)
    result = np.where(np.isin(status, _FAILED), "failed",
                      np.where(np.isin(status, ("converged", "diverged")), status, judged))
    return pd.Series(result, index=trials.index, dtype="string")


def _selected_rows(history: pd.DataFrame, trials: pd.DataFrame, codes: np.ndarray,
                   seen: pd.Index) -> np.ndarray:
    """Which history rows hold the split their trial selects, or its training rows where the
    history holds none of that split (a figure's history may be the training rows alone):
    compared as integer codes, never row by row as text. `codes` (rows,) index `seen`, -1
    for a row of no trial (never kept)."""
    select = (trials["select"].astype("string").fillna("train") if "select" in trials
              else pd.Series("train", index=trials.index, dtype="string"))
    wanted = np.append(seen.map(select).astype(str).to_numpy(), "")  # (seen + 1,) [-1]: none
    split_codes, splits = codes_of(history["split"])  # (rows,) -1: none
    names = np.asarray(splits, dtype=object).astype(str)
    chosen = np.zeros(len(history), dtype=bool)  # (rows,)
    train = np.zeros(len(history), dtype=bool)  # (rows,)
    for code, name in [*enumerate(names), (-1, "train")]:  # a row of no split: a training row
        here = split_codes == code  # (rows,)
        chosen |= here & (wanted == name)[codes]
        train |= here if name == "train" else False
    has_chosen = np.zeros(len(seen) + 1, dtype=bool)  # (seen + 1,)
    has_chosen[codes[chosen]] = True
    keep: np.ndarray = (chosen | (~has_chosen[codes] & train)) & (codes >= 0)  # (rows,)
    return keep


def _three_points(
    trials: pd.DataFrame, history: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each trial's metric at its first recorded epoch, the first at or past half its last
    recorded epoch, and its last (each the nearest recorded value that is not NaN): vectorised
    over the whole history with integer trial codes (no loop per trial, no text per row), and
    without a copy of a column where every row counts and the rows are in trial order."""
    nan = np.full(len(trials), np.nan)  # (trials,)
    if history.empty or trials.empty:
        return nan, nan.copy(), nan.copy()
    by_trial = trials.set_index("trial")
    metric = by_trial["metric"].astype(str)
    codes, seen = codes_of(history["trial"])  # (rows,) into seen, -1: no trial
    known = np.append(seen.isin(metric.index), False)  # (seen + 1,) [-1]: no trial
    keep = known[codes]  # (rows,)
    if "split" in history:
        keep &= _selected_rows(history, by_trial, codes, seen)
    epoch = history["epoch"].to_numpy(dtype=np.int64)  # (rows,)
    rows: slice | np.ndarray = slice(None) if keep.all() else np.flatnonzero(keep)  # (kept,)
    codes, epoch = codes[rows], epoch[rows]  # (kept,) each: views when every row is kept
    if not len(codes):
        return nan, nan.copy(), nan.copy()
    if not in_trial_order(codes, epoch):
        order = np.lexsort((epoch, codes))  # (kept,) by trial, then epoch, stable
        rows = np.arange(len(history))[rows][order]
        codes, epoch = codes[order], epoch[order]
    values = _metric_values(history, seen.map(metric).astype(str).to_numpy(), known, codes,
                            rows)  # (kept,)
    last_epoch = np.zeros(len(seen), dtype=np.int64)  # (seen,) over every row, NaN or not
    np.maximum.at(last_epoch, codes, epoch)
    valid = ~np.isnan(values)  # (kept,) first() and last() skip NaN, as pandas' groupby does
    if not valid.all():
        codes, epoch, values = codes[valid], epoch[valid], values[valid]
    first, middle, last = (np.full(len(seen), np.nan) for _ in range(3))  # (seen,) each
    new = np.ones(len(codes), dtype=bool)  # (kept,) the first row of its trial
    new[1:] = codes[1:] != codes[:-1]
    starts = np.flatnonzero(new)  # (groups,)
    ends = np.append(starts[1:], len(codes))[:len(starts)]  # (groups,)
    first[codes[starts]] = values[starts]
    last[codes[starts]] = values[ends - 1]
    past = np.flatnonzero(epoch * 2 >= last_epoch[codes])  # (past,) rows past half the run
    if past.size:
        at = np.ones(past.size, dtype=bool)  # (past,) the first such row of its trial
        at[1:] = codes[past[1:]] != codes[past[:-1]]
        middle[codes[past[at]]] = values[past[at]]
    return _on_trials(trials, seen, first), _on_trials(trials, seen, middle), \
        _on_trials(trials, seen, last)


def _metric_values(history: pd.DataFrame, metric_of: np.ndarray, known: np.ndarray,
                   codes: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    """Each kept row's value of its trial's metric (`metric_of`, (seen,)), a score (accuracy)
    turned into an error (1 - score): the column itself, not a copy, where every trial
    shares one error metric and every row counts."""
    names = np.unique(metric_of[known[:-1]])
    if len(names) == 1 and names[0] not in HIGHER_IS_BETTER:
        values: np.ndarray = history[str(names[0])].to_numpy(dtype=float, na_value=np.nan)[rows]
        return values
    values = np.full(len(codes), np.nan)  # (kept,)
    for name in names:
        wanted = (metric_of == name)[codes]  # (kept,)
        column = history[str(name)].to_numpy(dtype=float, na_value=np.nan)[rows][wanted]
        values[wanted] = 1 - column if name in HIGHER_IS_BETTER else column
    return values


def _on_trials(trials: pd.DataFrame, seen: pd.Index, points: np.ndarray) -> np.ndarray:
    """Values of the trials `seen` in the history, (seen,), on the trials table's rows."""
    at = seen.get_indexer(trials["trial"])  # (trials,) -1 where the history has none
    found: np.ndarray = np.where(at >= 0, points[at], np.nan)
    return found
