"""The figure of each search: an edge search's edge against width, a halving search's
rungs, a sampled search's points over the space drawn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.ticker import NullFormatter, NullLocator
from numpy.typing import NDArray

from nnsweep import result
from nnsweep.edge import PASSING
from nnsweep.figures import (
    DIVERGED_COLOR,
    FAILED_COLOR,
    MARK,
    FloatArray,
    Picture,
    axis_title,
    figure_metric,
    grid_shape,
    log_norm,
    new_figure,
    ordered_values,
    plt_colour,
    save,
    selected_split,
    set_log_ticks,
    value_label,
    varying_parameters,
)

# --- an edge search -----------------------------------------------------------------------

def power_law(widths: FloatArray, edges: FloatArray) -> tuple[float, float]:
    """(exponent, factor) of edge = factor * width ** exponent, least squares in log-log."""
    exponent, intercept = np.polyfit(np.log(widths), np.log(edges), 1)
    return float(exponent), float(np.exp(intercept))


def edge_lines(edges: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The edges table as one line per combination of the parameters other than the width:
    (its label, its rows with an edge and one hidden layer, by width). A line needs two
    widths to be drawn."""
    one_layer = edges[edges["found"] & edges["hidden"].str.fullmatch(r"\d+")]
    if one_layer.empty:
        return []
    axis = str(one_layer["axis"].iloc[0])
    others = [c for c in varying_parameters(edges) if c not in ("hidden", axis)]
    groups = one_layer.groupby(others, sort=True, dropna=False) if others else [((), one_layer)]
    lines = []
    for key, rows in groups:
        values = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{c}={value_label(c, v)}" for c, v in zip(others, values,
                                                                      strict=True))
        rows = rows.assign(width=rows["hidden"].astype(int)).sort_values("width")
        if rows["width"].nunique() >= 2:
            lines.append((label, rows))
    return lines


def edge_figure(edges: pd.DataFrame, out: Path, *, vector: bool = True) -> list[Picture]:
    """An edge search's edge against the width on log-log axes, one line per combination of
    the other parameters, each with its fitted power law: a straight line there is one."""
    lines = edge_lines(edges)
    if not lines:
        return []
    axis, outcome = str(edges["axis"].iloc[0]), str(edges["outcome"].iloc[0])
    fig = new_figure((6.4, 4.4))
    ax = fig.subplots()
    fits = []
    for i, (label, rows) in enumerate(lines):
        colour = plt_colour(i / max(1, len(lines) - 1))
        widths = rows["width"].to_numpy(dtype=float)  # (n,)
        found = rows["edge"].to_numpy(dtype=float)  # (n,)
        exponent, factor = power_law(widths, found)
        fits.append(f"{label} {exponent:.2f}" if label else f"{exponent:.2f}")
        ax.errorbar(widths, found, yerr=[found - rows["below"].to_numpy(dtype=float),
                                         rows["above"].to_numpy(dtype=float) - found],
                    color=colour, marker="o", markersize=4, linestyle="none",
                    label=f"{label + ': ' if label else ''}edge ∝ width^{exponent:.2f}")
        span = np.geomspace(widths.min(), widths.max(), 50)  # (50,)
        ax.plot(span, factor * span ** exponent, color=colour, linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for along, values in ((ax.xaxis, pd.concat([r["width"] for _, r in lines])),
                          (ax.yaxis, pd.concat([r["edge"] for _, r in lines]))):
        set_log_ticks(along, float(values.min()), float(values.max()))
        along.set_minor_formatter(NullFormatter())
    ax.set_xlabel(axis_title("hidden") + " (log scale)")
    ax.set_ylabel(f"edge of {axis_title(axis)} (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"Stability edge of {axis} against width", fontsize=12)
    missing = int((~edges["found"]).sum())
    lacking = (f"; {missing} combination{'s' if missing > 1 else ''} with no edge in the "
               "bracket left out") if missing else ""
    verb = "converge" if outcome == "converged" else "do not diverge"
    below_passes = edges.loc[edges["found"], "below_status"].isin(PASSING[outcome])
    what = (f"The largest {axis} at which the trials still {verb}" if below_passes.all() else
            f"The smallest {axis} at which the trials {verb}" if not below_passes.any() else
            f"The {axis} at which whether the trials {verb} changes")
    return [save(fig, out, "edge", "The stability edge against width",
                  f"{what} (the geometric "
                  "mean of the last values probed either side, the bar spanning them) against "
                  f"the hidden layer's width, log-log; dashed: the power law fitted by least "
                  f"squares, {'its exponent' if len(fits) == 1 else 'the exponents:'} "
                  f"{'; '.join(fits)}{lacking}.", vector)]


# --- a halving search ---------------------------------------------------------------------

RUNGS_FIGURE = "rungs"  # its stable name under plots/
STOPPED_COLOUR = "#B0B0B0"


def rung_curves(trials: pd.DataFrame, history: pd.DataFrame, metric: str, split: str
                ) -> dict[str, FloatArray]:
    """Each trial's (epoch + 1, metric) points of the split, (n, 2), in its recorded epochs."""
    rows = history[history["split"] == split] if "split" in history else history
    rows = rows[rows["trial"].isin(trials["trial"])]
    points: dict[str, FloatArray] = {}
    for trial, group in rows.groupby("trial", sort=False):
        xy = np.column_stack([group["epoch"].to_numpy(dtype=float) + 1,
                              group[metric].to_numpy(dtype=float)])  # (n, 2)
        points[str(trial)] = xy[np.isfinite(xy[:, 1])]
    return points


def rungs_figure(trials: pd.DataFrame, history: pd.DataFrame, out: Path, *,
                 rungs: Sequence[Sequence[int]], method: str, eta: int, vector: bool = True
                 ) -> list[Picture]:
    """A halving search's trials against epochs, one panel per bracket: the trials its rungs
    stopped in grey, those that went the whole way in colour, a dotted line at each rung.
    `history`: the rows of the split that ranked (the held-out rows with select = validation).
    All of a panel's grey curves are one LineCollection, so the cost grows with the points,
    not with a draw call per trial."""
    if trials.empty or trials["bracket"].isna().all():
        return []
    metric = figure_metric(trials)
    held = bool(selected_split(trials)) and "validation" in set(history.get("split", ()))
    split = "validation" if held else "train"
    curves = rung_curves(trials, history, metric, split)
    brackets = sorted(int(b) for b in trials["bracket"].dropna().unique())
    rows, columns = grid_shape(len(brackets))
    fig = new_figure((4.2 * columns + 0.6, 3.2 * rows + 0.9))
    axes = np.atleast_1d(fig.subplots(rows, columns, sharey=True, squeeze=False)).ravel()
    maximum = max(epochs[-1] for epochs in rungs)
    for ax, bracket in zip(axes, brackets, strict=False):
        members = trials[trials["bracket"] == bracket]
        finished = members["stopped_epoch"] == maximum
        grey = [curves[t] for t in members.loc[~finished, "trial"] if t in curves and
                len(curves[t]) > 1]
        ax.add_collection(LineCollection(grey, colors=STOPPED_COLOUR, linewidths=0.6,
                                         alpha=0.6, zorder=1))
        for t in members.loc[~finished, "trial"]:  # one point: a dot where it stopped
            if t in curves and len(curves[t]) == 1:
                ax.plot(*curves[t].T, marker=".", color=STOPPED_COLOUR, linestyle="none")
        survivors = [t for t in members.loc[finished, "trial"] if t in curves]
        for i, t in enumerate(survivors):
            ax.plot(*curves[t].T, color=plt_colour(i / max(1, len(survivors) - 1)),
                    linewidth=1.3, zorder=3)
        for k, epochs in enumerate(rungs[bracket]):
            entered = int((members["rung"] >= k).sum())
            ax.axvline(epochs, color="black", linestyle=":", linewidth=0.8, zorder=2)
            ax.annotate(f"{entered}", (epochs, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -10), textcoords="offset points", fontsize=7)
        ax.set_xscale("log")
        ax.autoscale_view()
        set_log_ticks(ax.xaxis, 1.0, float(maximum))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"bracket {bracket}: {len(members)} trials from epoch {rungs[bracket][0]}"
                     if len(brackets) > 1 else f"{len(members)} trials", fontsize=9)
        ax.set_xlabel("epoch (log scale)")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[len(brackets):]:
        ax.set_visible(False)
    axes[0].set_ylabel(f"{split} {metric}")
    spent = int(trials["stopped_epoch"].fillna(0).sum())
    full = len(trials) * maximum
    name = "Hyperband" if method == "hyperband" else "Successive halving"
    fig.suptitle(f"{name}: {spent:,} trial-epochs of a grid's {full:,} "
                 f"({spent / full:.0%})", fontsize=12)
    return [save(fig, out, RUNGS_FIGURE, "The search's rungs",
                  f"Each trial's {split} {metric} against its epochs (log scale), one panel per "
                  "bracket; grey: the trials a rung stopped, in colour: those trained to the "
                  f"last epoch ({maximum}); dotted: the rungs, each with the trials that "
                  f"reached it. At each rung only the best 1/{eta} of those there went on, "
                  "from where they stood.",
                  vector)]


# --- a sampled search ---------------------------------------------------------------------

SEARCH_FIGURE = "search"  # its stable name under plots/
BEST_MARKED = 3  # the best points, ringed and numbered
BEST_COLOUR = "#D62728"
# A drawn axis of positive numbers spanning less than this factor is drawn in linear scale:
# over so short a span either scale shows the points alike.
MIN_LOG_SPAN = 4.0


def drawn_numbers(column: str, values: pd.Series) -> FloatArray | None:
    """A drawn axis's values as numbers (one hidden layer as its width); None where some are
    not (a choice of words, of flags or of several layers): a category axis."""
    if column == "hidden":
        text = values.astype(str)
        return text.astype(float).to_numpy() if text.str.fullmatch(r"\d+").all() else None
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    numbers = values.to_numpy(dtype=float, na_value=np.nan)  # (points,)
    return numbers if np.isfinite(numbers).all() else None


def drawn_scale(column: str, values: pd.Series) -> str:
    """How a drawn axis is shown: "category", "log" or "linear". The resolved spec records the
    points drawn, not their distributions, so the scale is inferred from the values: the one
    over which they spread the more evenly (loguniform and intloguniform draws do in log
    scale, uniform ones in linear scale), log only for positive numbers spanning at least a
    factor of MIN_LOG_SPAN."""
    numbers = drawn_numbers(column, values)
    if numbers is None:
        return "category"
    low, high = float(numbers.min()), float(numbers.max())
    if low <= 0 or high < low * MIN_LOG_SPAN:
        return "linear"
    return "log" if _unevenness(np.log(numbers)) < _unevenness(numbers) else "linear"


def _unevenness(values: FloatArray) -> float:
    """How far values stray from an even spread over their range: the largest gap between
    their sorted places in it and evenly spaced ones (a Kolmogorov-Smirnov distance)."""
    ordered = np.sort(values)  # (n,)
    span = float(ordered[-1] - ordered[0])
    if span <= 0:
        return 0.0
    even = np.linspace(0.0, 1.0, len(ordered))  # (n,)
    return float(np.max(np.abs((ordered - ordered[0]) / span - even)))


def _places(column: str, values: pd.Series, scale: str) -> tuple[FloatArray, list[Any]]:
    """Where each point sits along a drawn axis, and a category axis's values in reading order
    ([] for numbers): a number sits at itself; a category at its place, the points sharing it
    spread across a little so that none hides another."""
    numbers = drawn_numbers(column, values) if scale != "category" else None
    if numbers is not None:
        return numbers, []
    order = ordered_values(column, values)
    at = {value: i for i, value in enumerate(order)}
    index = np.array([at[v] for v in values.tolist()], dtype=float)  # (points,)
    rank = values.groupby(values, sort=False).cumcount().to_numpy(dtype=float)  # (points,)
    count = values.map(values.value_counts()).to_numpy(dtype=float)  # (points,)
    return index + 0.6 * ((rank + 0.5) / count - 0.5), order


def and_list(names: Sequence[str]) -> str:
    """Names as a phrase: "alpha", "alpha and hidden", "alpha, hidden and seed"."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _drawn_axis(ax: Axes, which: str, column: str, scale: str, places: FloatArray,
                order: list[Any]) -> str:
    """Set one axis of a panel for a drawn parameter; its title."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    if scale == "category":
        axis.set_ticks(np.arange(len(order)), [value_label(column, v) for v in order])
        (ax.set_xlim if which == "x" else ax.set_ylim)(-0.6, len(order) - 0.4)
        return axis_title(column)
    if scale == "log":
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        set_log_ticks(axis, float(places.min()), float(places.max()))
        return axis_title(column) + " (log scale)"
    return axis_title(column)


def _scatter(ax: Axes, xs: FloatArray, ys: FloatArray, errors: FloatArray, best: NDArray[Any],
             norm: Normalize, cmap: str, *, top: bool) -> None:
    """The points at (xs, ys) coloured by their error, the worst drawn first so that the best
    lie on top; a point with no finite error is a cross (diverged grey, failed dark), at the
    panel's top with `top` (where y is the error itself); the best ringed and numbered."""
    finite = np.flatnonzero(np.isfinite(errors))[::-1]  # (finite,) worst first
    ax.scatter(xs[finite], ys[finite], c=errors[finite], cmap=cmap, norm=norm, s=32,
               edgecolors="white", linewidths=0.4, zorder=2)
    for lost, colour in ((np.isinf(errors), DIVERGED_COLOR), (np.isnan(errors), FAILED_COLOR)):
        if lost.any():
            ax.scatter(xs[lost], np.full(int(lost.sum()), 0.96) if top else ys[lost],
                       marker="x", color=colour, s=30, zorder=2,
                       transform=ax.get_xaxis_transform() if top else ax.transData)
    ax.scatter(xs[best], ys[best], s=140, facecolors="none", edgecolors=BEST_COLOUR,
               linewidths=1.4, zorder=3)
    for rank, at in enumerate(best.tolist(), start=1):
        ax.annotate(str(rank), (float(xs[at]), float(ys[at])), xytext=(6, 4),
                    textcoords="offset points", fontsize=8, fontweight="bold",
                    color=BEST_COLOUR, zorder=4)


def search_figure(points: pd.DataFrame, axes: Sequence[str], out: Path, *, method: str,
                  seed: int, vector: bool = True) -> list[Picture]:
    """A sampled search's points over the space drawn from: with one axis drawn, the final
    error against it; with more, each pair of axes in a lower-triangle grid (a corner plot).
    Each point is coloured by its final error (the median over the trials that repeat it), the
    BEST_MARKED best ringed and numbered. `points` is report.search_points's frame, best
    first; drawing costs in proportion to the points, never to the recorded epochs."""
    if points.empty or not axes:
        return []
    metrics = ordered_values("metric", points["metric"])
    metric = "/".join(str(m) for m in metrics)
    higher = all(m in result.HIGHER_IS_BETTER for m in metrics)
    errors = points["final_error"].to_numpy(dtype=float)  # (points,) inf: diverged, NaN: failed
    finite = np.isfinite(errors)
    log_colours = not higher and bool(finite.any()) and bool((errors[finite] > 0).all())
    shown = errors[finite] if finite.any() else np.array([0.0, 1.0])  # (finite,)
    norm = log_norm([errors]) if log_colours else Normalize(
        float(shown.min()), float(shown.max()) if shown.max() > shown.min() else shown.min() + 1)
    cmap = "viridis" if higher else "viridis_r"  # the better, the brighter, whichever way
    best = np.flatnonzero(finite)[:BEST_MARKED]  # (marked,) the points come best first
    scales = {c: drawn_scale(c, points[c]) for c in axes}
    places = {c: _places(c, points[c], scales[c]) for c in axes}
    side = max(1, len(axes) - 1)
    fig = new_figure((max(5.6, 2.7 * side + 1.8), max(4.2, 2.5 * side + 1.0)))
    cells = fig.add_gridspec(side, side)
    drawn: list[Axes] = []
    for row in range(side):
        for col in range(row + 1):
            ax = fig.add_subplot(cells[row, col])
            drawn.append(ax)
            x = axes[col]
            x_title = _drawn_axis(ax, "x", x, scales[x], *places[x])
            if len(axes) == 1:  # the error itself goes up
                _scatter(ax, places[x][0], errors, errors, best, norm, cmap, top=True)
                if log_colours:
                    ax.set_yscale("log")
                    set_log_ticks(ax.yaxis, float(shown.min()), float(shown.max()))
                y_title = f"final {metric}" + (" (log scale)" if log_colours else "")
            else:
                y = axes[row + 1]
                y_title = _drawn_axis(ax, "y", y, scales[y], *places[y])
                _scatter(ax, places[x][0], places[y][0], errors, best, norm, cmap, top=False)
            ax.grid(True, which="major", alpha=0.3)
            ax.set_xlabel(x_title if row == side - 1 else "")
            ax.set_ylabel(y_title if col == 0 else "")
            ax.tick_params(labelbottom=row == side - 1, labelleft=col == 0)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=drawn,
                       label=f"final {metric}" + (" (log scale)" if log_colours else ""),
                       shrink=0.9 if side > 1 else 1.0)
    if isinstance(norm, LogNorm):
        set_log_ticks(bar.ax.yaxis, float(norm.vmin or 1.0), float(norm.vmax or 1.0))
        bar.ax.yaxis.set_minor_locator(NullLocator())
    fig.suptitle(f"The {method} search's {len(points)} points", fontsize=12)
    repeats = int(points["trials"].max())
    median = (f", the median over the trials that repeat it (up to {repeats}: the axes given "
              "as values, seeds among them)") if repeats > 1 else ""
    logs = [c for c in axes if scales[c] == "log"]
    lost = []
    if np.isinf(errors).any():
        lost.append(f"grey {MARK}: diverged")
    if np.isnan(errors).any():
        lost.append(f"dark {MARK}: every trial failed")
    where = ("against its final error" if len(axes) == 1 else
             "in every pair of the axes drawn")
    return [save(fig, out, SEARCH_FIGURE, "The points the search drew",
                  f"Each dot is one of the {len(points)} points the {method} search drew (seed "
                  f"{seed}), placed by its {and_list(axes)} {where}, and coloured by its "
                  f"final {metric}{median}: the brighter, the better. Ringed and numbered: the "
                  f"{len(best)} best."
                  + (f" On a log scale, as the points spread evenly there: {', '.join(logs)}."
                     if logs else "")
                  + (f" {'; '.join(lost).capitalize()}." if lost else ""), vector)]
