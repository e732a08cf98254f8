"""Learning curves as small multiples: histories are thinned to a bounded number of
log-spaced epochs and seeds aggregated before drawing, and many lines go into one
collection per panel, so the cost grows with the cells, not the trials or epochs.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from numpy.typing import NDArray

from nnsweep.figures import (
    MARK,
    TITLE_CHARACTERS,
    Layout,
    Picture,
    axis_title,
    facet_keys,
    figure_metric,
    grid_shape,
    log_ticks,
    mixed_metrics,
    new_figure,
    ordered_values,
    plt_colour,
    save,
    set_log_ticks,
    split_handles,
    value_label,
)
from nnsweep.leanhistory import by_trial_and_epoch, codes_of, in_trial_order
from nnsweep.result import HIGHER_IS_BETTER

MAX_CURVE_POINTS = 200  # per trial: history is thinned to log-spaced epochs before drawing
# Epoch 0 has no place on a log axis: it is drawn apart, at the first recorded epoch after it
# divided by this, left of a dotted break; a factor of 2 keeps that stub to about a third of a
# decade, so a short run's first epochs keep most of the width.
EPOCH0_SHIFT = 2.0


def thin_history(history: pd.DataFrame, points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """At most about `points` log-spaced epochs per trial, always keeping the first and last."""
    codes, _ = codes_of(history["trial"])  # (rows,) integers: no text compared per row
    order = by_trial_and_epoch(codes, history["epoch"].to_numpy())  # (rows,)
    kept = order[log_spaced(codes[order], points)]  # (kept,)
    return history.iloc[kept]


def trial_rows(trials: pd.DataFrame, history: pd.DataFrame) -> NDArray[np.int32]:
    """Each history row's trial as its row in the trials table, -1 for a trial not there: the
    history's ids as codes (a lean history's own, else factorized), then looked up once per
    distinct trial rather than once per row."""
    codes, ids = codes_of(history["trial"])  # (rows,) -1 for a missing id
    found = pd.Index(trials["trial"]).get_indexer(ids)  # (distinct,)
    rows: NDArray[np.int32] = np.append(found, -1).astype(np.int32)[codes]
    return rows


def thinned_rows(trials: pd.DataFrame, history: pd.DataFrame, points: int
                 ) -> tuple[NDArray[np.intp], NDArray[np.int32]]:
    """The history rows a curve draws: each trial's (of `trials`) at about `points` log-spaced
    positions, its first and last kept, by trial, then epoch; and each one's row in `trials`.
    Rows already in that order (as a table is written) are thinned where they lie, with no
    copy of a column."""
    at = trial_rows(trials, history)  # (rows,) -1: unknown
    epoch = history["epoch"].to_numpy()  # (rows,)
    if bool((at >= 0).all()) and in_trial_order(at, epoch):
        rows = np.flatnonzero(log_spaced(at, points))  # (kept,)
    else:
        rows = np.flatnonzero(at >= 0)  # (known,)
        rows = rows[by_trial_and_epoch(at[rows], epoch[rows])]
        rows = rows[log_spaced(at[rows], points)]  # (kept,)
    return rows, at[rows]


def log_spaced(codes: NDArray[np.integer[Any]], points: int) -> NDArray[np.bool_]:
    """Which rows to keep of each run of equal codes (a trial's rows, epochs rising): about
    `points` log-spaced positions, always its first and last. Runs of one length keep the same
    positions, worked out once per length (most trials of a sweep record as many epochs)."""
    new = np.ones(len(codes), dtype=bool)  # (rows,) first row of its run
    new[1:] = codes[1:] != codes[:-1]
    starts = np.flatnonzero(new)  # (runs,)
    lengths = np.diff(np.append(starts, len(codes)))  # (runs,)
    keep = np.zeros(len(codes), dtype=bool)  # (rows,)
    for length in np.unique(lengths):
        position = np.arange(length)  # (length,)
        scale = points / np.log1p(max(length - 1, 1))
        bucket = np.floor(np.log1p(position) * scale)  # (length,)
        previous = np.floor(np.log1p(np.maximum(position - 1, 0)) * scale)  # (length,)
        pattern = (position == 0) | (position == length - 1) | (bucket != previous)
        runs = starts[lengths == length]  # (runs of this length,)
        keep[(runs[:, None] + np.flatnonzero(pattern)).ravel()] = True
    return keep


def curve_frame(trials: pd.DataFrame, history: pd.DataFrame, keys: Sequence[str],
                metric: str, points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """One row per curve (a combination of `keys`) and kept epoch: the median over its seeds
    and their least and largest value, computed before drawing.

    The median counts a seed that has stopped (diverged) as the worst, infinite, as the
    heatmaps do (a score, accuracy, as minus infinity): it is NaN (not drawn) once half the
    seeds are gone; the band spans the seeds still there. Each trial's history is thinned
    first (thinned_rows); the rest works on integer codes and sorted arrays, so the cost
    after one look-up of each row's trial is a sort of the kept rows.
    """
    keys = list(keys)
    rows, trial = thinned_rows(trials, history, points)  # (kept,) each
    present = np.zeros(len(trials), dtype=bool)  # (trials,) with a history
    present[trial] = True  # a trial's first row is always kept
    drawn = trials[present]
    curve = (drawn.groupby(keys, sort=False, dropna=False).ngroup() if keys
             else pd.Series(0, index=drawn.index))
    seeds = curve.value_counts()  # trials per curve
    curve_of = np.full(len(trials), -1, dtype=np.int64)  # (trials,)
    curve_of[present] = curve.to_numpy(dtype=np.int64)
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0  # a score sorts worst last negated
    value = sign * history[metric].to_numpy(dtype=float, na_value=np.nan)[rows]  # (kept,)
    value = np.where(np.isfinite(value), value, np.inf)
    line = curve_of[trial]  # (kept,)
    epoch = history["epoch"].to_numpy()[rows]  # (kept,)
    order = np.lexsort((value, epoch, line))  # by curve, epoch, then value
    line, epoch, value = line[order], epoch[order], value[order]
    new = np.ones(len(line), dtype=bool)  # (kept,) first row of its (curve, epoch)
    new[1:] = (line[1:] != line[:-1]) | (epoch[1:] != epoch[:-1])
    starts = np.flatnonzero(new)  # (points,)
    counts = np.diff(np.append(starts, len(line)))  # (points,) seeds recorded there
    total = seeds.reindex(line[starts]).to_numpy(dtype=np.int64)  # (points,) seeds of curve
    # The middle one or two of the n seeds' sorted values; a seed without a value there is
    # infinite, so a missing middle value makes the median infinite (not drawn).
    middle = [np.where(rank < counts, value[starts + np.minimum(rank, counts - 1)], np.inf)
              for rank in ((total - 1) // 2, total // 2)]  # (points,) each
    median = (middle[0] + middle[1]) / 2  # (points,)
    finite = np.isfinite(value)  # (kept,)
    low = np.minimum.reduceat(np.where(finite, sign * value, np.inf), starts) \
        if len(starts) else np.empty(0)  # (points,)
    high = np.maximum.reduceat(np.where(finite, sign * value, -np.inf), starts) \
        if len(starts) else np.empty(0)  # (points,)
    any_finite = np.add.reduceat(finite, starts) > 0 if len(starts) else np.empty(0, bool)
    stats = pd.DataFrame({
        "curve": line[starts], "epoch": epoch[starts],
        "median": np.where(np.isfinite(median), sign * median, np.nan),
        "min": np.where(any_finite, low, np.nan), "max": np.where(any_finite, high, np.nan)})
    first = drawn.assign(curve=curve).drop_duplicates("curve").set_index("curve")[keys]
    stats = stats.join(first, on="curve")
    stats["seeds"] = stats["curve"].map(seeds)
    return stats


def learning_curves(
    trials: pd.DataFrame, history: pd.DataFrame, layout: Layout, out: Path, *,
    vector: bool = True, validation: pd.DataFrame | None = None,
) -> list[Picture]:
    """Error against epoch: one curve per x value (the median seed, the seeds' range as a
    band), one panel per combination of y and the facets, in a compact grid. Seeds are never
    a panel or a line of their own, even when the layout puts them on an axis. `validation`,
    the history's held-out rows: each curve's median on them beside it, dashed."""
    if history.empty or not history["trial"].isin(trials["trial"]).any():
        return []
    metric = figure_metric(trials)
    log = metric not in HIGHER_IS_BETTER  # errors log-log; a score on a linear axis
    hue = layout.x if layout.x != "seed" else None
    panel_keys = [k for k in (*layout.facet, layout.y) if k is not None and k != "seed"]
    keys = [*panel_keys, *([hue] if hue else [])]
    stats = curve_frame(trials, history, keys, metric)
    held = _held_out_curves(trials, validation, keys, metric)
    seeds = int(stats["seeds"].max())
    hues = ordered_values(hue, trials[hue]) if hue else [None]
    colours = ([plt_colour(p) for p in np.linspace(0.0, 1.0, len(hues))] if len(hues) > 1
               else [plt_colour(0.35)])
    colour_of = {h: colours[n] for n, h in enumerate(hues)}
    panel_list = (_panel_keys(trials, panel_keys) if panel_keys else [()])

    # The shared axes' extent: positive epochs on a log axis, epoch 0 at a stub left of them.
    positive = stats.loc[stats["epoch"] > 0, "epoch"]
    first_epoch = float(positive.min()) if len(positive) else 1.0
    last_epoch = float(max(stats["epoch"].max(), first_epoch))
    stub = first_epoch / EPOCH0_SHIFT
    shown = np.concatenate([stats["median"].to_numpy(dtype=float),
                            stats["min"].to_numpy(dtype=float),
                            stats["max"].to_numpy(dtype=float),
                            *([] if held is None else [held["median"].to_numpy(dtype=float)])
                            ])  # (3 rows + held-out rows,)
    shown = shown[np.isfinite(shown)]
    if log:
        floor = float(shown[shown > 0].min()) if (shown > 0).any() else 1.0
        ceiling = float(shown.max()) if shown.size and shown.max() > floor else floor * 10
    else:
        floor = float(shown.min()) if shown.size else 0.0
        ceiling = float(shown.max()) if shown.size and shown.max() > floor else floor + 0.1
    zeros = bool((shown == 0).any()) and log

    rows, columns = grid_shape(len(panel_list))
    fig = new_figure((3.4 * columns + 2.2, 2.8 * rows + 1.1))
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    ends = _diverged_ends(trials, history, metric, keys)
    by_panel = _by_panel(stats, panel_keys)
    held_by_panel = _by_panel(held, panel_keys) if held is not None else {}
    for index, ax in enumerate(axes.flat):
        if index >= len(panel_list):
            ax.set_visible(False)
            continue
        key = panel_list[index]
        panel = by_panel.get(key, stats.iloc[:0])
        _draw_curves(ax, panel, hue, colour_of, stub, floor, seeds > 1, log=log)
        if key in held_by_panel:
            _draw_curves(ax, held_by_panel[key], hue, colour_of, stub, floor, False,
                         dashed=True, log=log)
        marks = _select(ends, dict(zip(panel_keys, key, strict=True)))
        ax.scatter(np.where(marks["epoch"] > 0, marks["epoch"], stub),
                   np.maximum(marks["value"], floor), marker="x", color="black", s=24,
                   linewidths=1.0, zorder=5)
        title = ", ".join(f"{c} = {value_label(c, v)}"
                          for c, v in zip(panel_keys, key, strict=True))
        ax.set_title(textwrap.fill(title, TITLE_CHARACTERS), fontsize=9)
        ax.axvline(math.sqrt(stub * first_epoch), color="0.55", linestyle=":", linewidth=0.9)
        ax.grid(True, which="major", alpha=0.3)
    first_ax = axes.flat[0]
    first_ax.set_xscale("log")
    first_ax.set_xlim(stub / 1.35, last_epoch * 1.25)
    decades = [t for t in log_ticks(first_epoch, last_epoch) if t >= first_epoch]
    first_ax.xaxis.set_major_locator(FixedLocator([stub, *decades]))
    first_ax.xaxis.set_major_formatter(FuncFormatter(
        lambda value, _: "0" if math.isclose(value, stub) else f"{value:g}"))
    first_ax.xaxis.set_minor_locator(NullLocator())  # minor ticks cost a Tick artist each
    if log:
        first_ax.set_yscale("log")
        first_ax.set_ylim(floor / 1.35, ceiling * 1.35)
        set_log_ticks(first_ax.yaxis, floor / 1.35, ceiling * 1.35)
        first_ax.yaxis.set_minor_locator(NullLocator())
    else:
        pad = 0.05 * (ceiling - floor)
        first_ax.set_ylim(floor - pad, ceiling + pad)
    for ax in axes[-1, :]:
        ax.set_xlabel("epoch (log scale)")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{metric} (log scale)" if log else f"{metric} (higher is better)")
    # A last panel whose column has no panel below: show its epoch ticks.
    for index in range(len(panel_list)):
        r, c = divmod(index, columns)
        if r + 1 < rows and (r + 1) * columns + c >= len(panel_list):
            axes[r, c].xaxis.set_tick_params(labelbottom=True)
            axes[r, c].set_xlabel("epoch (log scale)")

    handles: list[Artist] = [Line2D([], [], color=colour_of[h], linewidth=2,
                                    label=value_label(hue, h)) for h in hues] if hue else []
    if held is not None:
        handles += split_handles()
    if seeds > 1:
        handles.append(Patch(facecolor="0.5", alpha=0.25, label=f"min to max of {seeds} seeds"))
    handles.append(Line2D([], [], marker="o", markerfacecolor="white", color="0.3",
                          linestyle="", label="epoch 0 (left of the dots)"))
    if zeros:
        handles.append(Line2D([], [], marker="v", color="0.3", linestyle="",
                              label="exactly 0 (drawn at the floor)"))
    if len(ends):
        handles.append(Line2D([], [], marker="x", color="black", linestyle="",
                              label="a seed diverged here"))
    fig.legend(handles=handles, title=axis_title(hue) if hue else None,
               loc="outside right center", frameon=False, fontsize=8)
    fig.suptitle(f"Learning curves: {metric} against epoch"
                 + (", training and validation" if held is not None else ""), fontsize=12)
    lines = f"one curve per {hue}, coloured dark to light as it grows" if hue else "one curve"
    multiples = f"; one panel per {', '.join(panel_keys)}" if panel_keys else ""
    worst = "infinite" if log else "the worst"
    spread = (f"; line: the median of {seeds} seeds (a diverged seed counts as {worst}, so "
              f"the line stops once half have diverged), band: their min to max"
              if seeds > 1 else "")
    zero_text = ("; ▼ marks an error of exactly 0, drawn at the floor (the smallest "
                 "positive error shown)") if zeros else ""
    mixed = f" {mixed_metrics(trials)}" if mixed_metrics(trials) else ""
    if held is not None:
        return [save(fig, out, "learning_curves", "Learning curves",
                      _split_caption(metric, first_epoch, lines, multiples, spread, zero_text)
                      + mixed, vector)]
    scale = (f"error ({metric}, log scale; the axis starts at the smallest positive error "
             "shown, nothing is clipped)" if log else f"{metric} (linear scale, higher is better)")
    return [save(fig, out, "learning_curves", "Learning curves",
                  f"Training {scale} against epoch (log scale from "
                  f"epoch {first_epoch:g}; epoch 0 as open circles left of the dotted break), "
                  f"{lines}{multiples}{spread}{zero_text}; {MARK} marks where a trial "
                  f"diverged.{mixed}", vector)]


def _held_out_curves(trials: pd.DataFrame, validation: pd.DataFrame | None,
                     keys: list[str], metric: str) -> pd.DataFrame | None:
    """curve_frame of the held-out rows, with the training curves' keys; None without them."""
    if validation is None or not validation["trial"].isin(trials["trial"]).any():
        return None
    return curve_frame(trials, validation, keys, metric)


def _by_panel(stats: pd.DataFrame, panel_keys: list[str]) -> dict[tuple[Any, ...], pd.DataFrame]:
    if not panel_keys:
        return {(): stats}
    return {(k if isinstance(k, tuple) else (k,)): v
            for k, v in stats.groupby(panel_keys, sort=False, dropna=False)}


def _split_caption(metric: str, first_epoch: float, lines: str, multiples: str, spread: str,
                   zero_text: str) -> str:
    """The learning curves' caption when the data holds rows out for validation."""
    band = "; the band is the training rows' only" if spread else ""
    if metric in HIGHER_IS_BETTER:
        return (f"{metric.capitalize()} (linear scale, higher is better) against epoch (log "
                f"scale from epoch {first_epoch:g}; epoch 0 left of the dotted break): solid "
                "lines on the training rows, dashed lines of the same colour on the held-out "
                "validation rows, which the network never trains on (the training "
                f"{metric} is measured during each epoch, the validation {metric} after it); "
                "a dashed line below its solid one means the network does worse on new rows "
                "than on the rows it learned from, and a dashed line that turns down while "
                f"the solid one keeps rising is overfitting; {lines}{multiples}{spread}{band}"
                f"; {MARK} marks where a trial diverged.")
    return (f"Error ({metric}, log scale; the axis starts at the smallest positive error "
            f"shown, nothing is clipped) against epoch (log scale from epoch {first_epoch:g}; "
            "epoch 0 left of the dotted break): solid lines on the training rows, dashed "
            "lines of the same colour on the held-out validation rows, which the network "
            "never trains on (the training error is measured during each epoch, the "
            "validation error after it); a dashed line above its solid one means the network "
            "does worse on new rows than on the rows it learned from, and a dashed line that "
            f"turns up while the solid one keeps falling is overfitting; {lines}{multiples}"
            f"{spread}{band}{zero_text}; {MARK} marks where a trial diverged.")


def _panel_keys(trials: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    return facet_keys(trials, Layout(None, None, tuple(columns), 1))


def _draw_curves(ax: Axes, panel: pd.DataFrame, hue: str | None,
                 colour_of: dict[Any, tuple[float, float, float]], stub: float, floor: float,
                 band: bool, dashed: bool = False, log: bool = True) -> None:
    """One LineCollection of medians, one PolyCollection of bands and one marker set per
    panel: a handful of artists however many curves and epochs. `dashed`: the held-out
    rows' curves, dashed lines and open squares at epoch 0. `log`: values are drawn no lower
    than the floor, exact zeros marked there; on a linear axis (a score) as they are."""
    if not log:
        floor = -np.inf
    lines, line_colours, polygons, polygon_colours = [], [], [], []
    starts_x, starts_y, starts_c, zero_x, zero_y, zero_c = [], [], [], [], [], []
    for _, curve in panel.groupby("curve", sort=False):
        colour = colour_of[curve[hue].iloc[0]] if hue else colour_of[None]
        epoch = curve["epoch"].to_numpy(dtype=float)  # (points,)
        median = curve["median"].to_numpy(dtype=float)  # (points,)
        low = curve["min"].to_numpy(dtype=float)  # (points,)
        high = curve["max"].to_numpy(dtype=float)  # (points,)
        later = epoch > 0  # (points,)
        keep = later & np.isfinite(median)  # (points,)
        if keep.sum() >= 1:
            lines.append(np.column_stack([epoch[keep], np.maximum(median[keep], floor)]))
            line_colours.append(colour)
        zero = keep & (median == 0) & log  # (points,)
        zero_x.extend(epoch[zero])
        zero_y.extend([floor] * int(zero.sum()))
        zero_c.extend([colour] * int(zero.sum()))
        if band:
            spread = later & np.isfinite(low) & np.isfinite(high)  # (points,)
            if spread.sum() >= 2:
                x = epoch[spread]  # (k,)
                polygons.append(np.concatenate([
                    np.column_stack([x, np.maximum(high[spread], floor)]),
                    np.column_stack([x[::-1], np.maximum(low[spread], floor)[::-1]])]))
                polygon_colours.append(colour)
        at_zero = ~later & np.isfinite(median)  # (points,)
        if at_zero.any():
            starts_x.append(stub)
            starts_y.append(max(float(median[at_zero][0]), floor))
            starts_c.append(colour)
    if polygons:
        ax.add_collection(PolyCollection(polygons, facecolors=polygon_colours, alpha=0.2,
                                         linewidths=0))
    if lines:
        ax.add_collection(LineCollection(lines, colors=line_colours, linewidths=1.4,
                                         linestyles="--" if dashed else "solid"))
    if starts_x:
        ax.scatter(starts_x, starts_y, marker="s" if dashed else "o", facecolors="white",
                   edgecolors=starts_c, s=22, linewidths=1.2, zorder=4)
    if zero_x:
        ax.scatter(zero_x, zero_y, marker="v", c=zero_c, s=26, zorder=4, clip_on=False)


def _diverged_ends(trials: pd.DataFrame, history: pd.DataFrame, metric: str,
                   keys: list[str]) -> pd.DataFrame:
    """Each diverged trial's last finite recorded error, with its curve's keys."""
    diverged = trials[trials["status"] == "diverged"]
    if diverged.empty:
        return pd.DataFrame(columns=[*keys, "epoch", "value"])
    rows = history[history["trial"].isin(diverged["trial"])]
    rows = rows[np.isfinite(rows[metric].to_numpy(dtype=float))]
    rows = rows.sort_values(["trial", "epoch"]).drop_duplicates("trial", keep="last")
    ends = rows.merge(diverged[["trial", *keys]], on="trial")
    return ends.assign(value=ends[metric])[[*keys, "epoch", "value"]]


def _select(frame: pd.DataFrame, wanted: dict[str, Any]) -> pd.DataFrame:
    """The rows whose columns hold the wanted values."""
    for column, value in wanted.items():
        frame = frame[frame[column] == value]
    return frame
