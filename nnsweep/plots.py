"""Pictures of a sweep, drawn from its saved tables only.

Heatmaps of the outcome over two swept parameters (one panel per value of the others), learning
curves as small multiples, and direction-change maps. Each picture is written as PNG and SVG
under a stable name, so a rebuilt report replaces the same files. Figures are built on
matplotlib's `Figure` directly (Agg canvas, no pyplot), so nothing here opens a window or keeps
global figure state.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import (
    BoundaryNorm,
    Colormap,
    ListedColormap,
    LogNorm,
    Normalize,
    SymLogNorm,
)
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, NullFormatter
from numpy.typing import NDArray

from nnsweep.errors import NnsweepError, UnknownTrial
from nnsweep.params import hidden_order
from nnsweep.tables import PARAM_COLUMNS

FloatArray = NDArray[np.float64]

FINISHED = ("converged", "not_converged", "diverged")
MARK = "\u00d7"  # the multiplication sign that marks diverged cells and curve ends
DIVERGED_COLOR = "0.62"
FAILED_COLOR = "0.25"
FLAT = 0.98  # final / initial error at or above this: the trial did not move (too small an
# alpha) or stalled (too large: saturated units); the learning curves tell the two apart
MAX_CURVE_POINTS = 200  # per trial: history is thinned to log-spaced epochs before drawing
MAX_ANNOTATED_WEIGHTS = 160  # per layer: more cells than this are drawn without numbers

# Axis titles with units; parameters not listed use their own name.
AXIS_TITLES: dict[str, str] = {
    "alpha": "learning rate alpha",
    "hidden": "hidden layer sizes (units)",
    "epochs": "epochs (passes over the data)",
    "batch_size": "batch size (rows)",
    "record_every": "history stride (epochs)",
    "tolerance": "tolerance",
    "seed": "seed",
}

# Outcome of one trial, in the order the legend lists them, with colour and cell label.
OUTCOMES: tuple[tuple[str, str, str, str], ...] = (
    ("converged", "converged: error <= tolerance", "#1a9850", "conv"),
    ("learning", "learning: error more than halved", "#a6d96a", "learn"),
    ("slow", "slow: error fell by less than half", "#fee08b", "slow"),
    ("flat", "flat: error within 2% of epoch 0's, or higher", "#f46d43", "flat"),
    ("diverged", "diverged: a weight or error overflowed", DIVERGED_COLOR, "div"),
    ("failed", "failed: the trial raised", FAILED_COLOR, "fail"),
)


# Log-axis ticks as plain numbers (0.01, 1000) rather than powers of ten: easier to read next
# to the annotated cells, and no mathtext to typeset.
PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


@dataclass(frozen=True)
class Layout:
    """Which parameter goes where: heatmap columns (x), rows (y), one panel per facet value."""

    x: str | None
    y: str | None
    facet: tuple[str, ...]
    seeds: int  # the most seeds any cell aggregates (1: no aggregation)

    @property
    def keys(self) -> list[str]:
        return [c for c in (*self.facet, self.y, self.x) if c is not None]


@dataclass(frozen=True)
class Picture:
    """One written figure: its stable file stem under plots/, a title and a one-line caption."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path


# --- choosing the layout ------------------------------------------------------------------

def varying_parameters(trials: pd.DataFrame) -> list[str]:
    """Parameter columns that take more than one value, in the tables' column order."""
    return [c for c in PARAM_COLUMNS if c in trials and trials[c].nunique(dropna=False) > 1]


def choose_layout(
    trials: pd.DataFrame,
    x: str | None = None,
    y: str | None = None,
    facet: str | Sequence[str] | None = None,
) -> Layout:
    """The requested axes, else alpha across and hidden down, else the widest swept parameters.

    Varying parameters that no axis names become facets, so a cell never mixes two settings;
    only seeds are aggregated (median), and a parameter named as an axis is never aggregated.
    """
    wanted = [x, y, *_facet_list(facet)]
    for name in wanted:
        if name is not None and name not in PARAM_COLUMNS:
            raise NnsweepError(f"report axis {name!r}: not a parameter; expected one of "
                               f"{', '.join(PARAM_COLUMNS)}")
    chosen = [n for n in wanted if n is not None]
    if len(set(chosen)) != len(chosen):
        raise NnsweepError(f"report axes {', '.join(chosen)}: each parameter may fill one "
                           "place only (x, y or facet)")
    free = [c for c in varying_parameters(trials) if c != "seed" and c not in chosen]
    if x is None and free:
        x = _widest(trials, free, prefer="alpha")
        free.remove(x)
    if y is None and free:
        y = _widest(trials, free, prefer="hidden")
        free.remove(y)
    if x is None and y is not None:  # one axis asked for as y: draw it across instead
        x, y = y, None
    facets = (*_facet_list(facet), *free)
    keys = [c for c in (*facets, y, x) if c is not None]
    seeds = int(trials.groupby(keys, dropna=False).size().max()) if keys and len(trials) else 1
    if not keys:
        seeds = len(trials)
    return Layout(x=x, y=y, facet=tuple(facets), seeds=max(1, seeds))


def _facet_list(facet: str | Sequence[str] | None) -> list[str]:
    if facet is None:
        return []
    if isinstance(facet, str):
        return [part.strip() for part in facet.split(",") if part.strip()]
    return list(facet)


def _widest(trials: pd.DataFrame, names: list[str], prefer: str) -> str:
    if prefer in names:
        return prefer
    return max(names, key=lambda c: (trials[c].nunique(dropna=False), -names.index(c)))


# --- ordering and labels ------------------------------------------------------------------

def ordered_values(column: str, values: pd.Series) -> list[Any]:
    """Distinct values in reading order: numbers ascending, hidden by depth then widths."""
    distinct = list(pd.unique(values.dropna()))
    if column == "hidden":
        return sorted(distinct, key=hidden_order)
    return sorted(distinct)


def value_label(column: str, value: Any) -> str:
    if column == "hidden":
        return str(value) if value != "" else "none"
    if isinstance(value, float | np.floating):
        return f"{float(f'{value:.3g}'):g}"  # three digits, no exponent below 1e6: 1000, 0.00316
    return str(value)


def axis_title(column: str) -> str:
    return AXIS_TITLES.get(column, column)


def facet_label(layout: Layout, key: tuple[Any, ...]) -> str:
    return ", ".join(f"{c} = {value_label(c, v)}" for c, v in zip(layout.facet, key, strict=True))


def _compact(value: float) -> str:
    """A count in at most four characters: 812, 4.1k, 12k, 1.3M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


# --- one row per heatmap cell -------------------------------------------------------------

def trial_outcomes(trials: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """Each trial's outcome class (see OUTCOMES), judged by its metric at epoch 0 and at the end."""
    first = history.sort_values(["trial", "epoch"]).drop_duplicates("trial").set_index("trial")
    outcomes = []
    for row in trials.itertuples(index=False):
        status = str(row.status)
        if status in ("failed", "crashed"):
            outcomes.append("failed")
        elif status in ("diverged", "converged"):
            outcomes.append(status)
        else:
            start = float(first.at[row.trial, row.metric]) if row.trial in first.index else np.nan
            ratio = float(row.final_error) / start if start > 0 else np.nan
            outcomes.append("learning" if ratio <= 0.5 else "slow" if ratio < FLAT else "flat")
    return pd.Series(outcomes, index=trials.index, dtype="string")


def cell_frame(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """One row per cell of the layout, aggregated across seeds.

    error: median final error over finished seeds, a diverged seed counting as infinite (so a
    cell where most seeds diverge reads as diverged); NaN when no seed finished (all failed).
    outcome: the class of the seed at the median error, consistent with `error`.
    """
    frame = trials.assign(
        _outcome=trial_outcomes(trials, history),
        _error=np.where(trials["status"] == "diverged", np.inf,
                        trials["final_error"].to_numpy(dtype=float, na_value=np.nan)),
        _finished=trials["status"].isin(FINISHED),
    )
    keys = layout.keys or ["_all"]
    if not layout.keys:
        frame = frame.assign(_all="all")
    rows = []
    for key, cell in frame.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        finished = cell[cell["_finished"]].sort_values("_error", kind="stable")
        errors = finished["_error"].to_numpy(dtype=float)  # (finished seeds,)
        converged = cell["status"] == "converged"
        epochs = cell.loc[converged, "converged_epoch"].to_numpy(dtype=float, na_value=np.nan)
        changes = cell["direction_changes"].to_numpy(dtype=float, na_value=np.nan)
        rows.append({
            **dict(zip(keys, key, strict=True)),
            "seeds": len(cell),
            "diverged": int((cell["status"] == "diverged").sum()),
            "error": float(np.median(errors)) if len(errors) else np.nan,
            "converged_share": float(converged.mean()),
            "converged_epoch": float(np.median(epochs)) if len(epochs) else np.nan,
            "direction_changes": float(np.nanmedian(changes)) if np.isfinite(changes).any()
            else np.nan,
            "outcome": str(finished["_outcome"].iloc[len(finished) // 2]) if len(finished)
            else "failed",
        })
    return pd.DataFrame(rows)


def facet_keys(trials: pd.DataFrame, layout: Layout) -> list[tuple[Any, ...]]:
    """The facet combinations present in the trials, in reading order; [()] without facets."""
    if not layout.facet:
        return [()]
    present = trials[list(layout.facet)].drop_duplicates().itertuples(index=False, name=None)
    orders = {c: ordered_values(c, trials[c]) for c in layout.facet}
    return sorted(present, key=lambda k: tuple(
        orders[c].index(v) for c, v in zip(layout.facet, k, strict=True)))


# --- heatmaps -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Panel:
    title: str
    values: FloatArray  # (ny, nx) colour values, NaN where no colour
    text: NDArray[np.str_]  # (ny, nx) annotations
    grey: NDArray[np.bool_]  # (ny, nx) diverged: grey and marked
    dark: NDArray[np.bool_]  # (ny, nx) failed: dark and marked


class _Grid:
    """The shared rows, columns and panels of every heatmap of one layout."""

    def __init__(self, cells: pd.DataFrame, trials: pd.DataFrame, layout: Layout) -> None:
        assert layout.x is not None
        self.layout = layout
        self.x_values = ordered_values(layout.x, trials[layout.x])
        if layout.y is None:
            self.y_values: list[Any] = ["all"]
            cells = cells.assign(_y="all")
        else:
            self.y_values = ordered_values(layout.y, trials[layout.y])
            if layout.y == "hidden" or pd.api.types.is_numeric_dtype(trials[layout.y]):
                self.y_values.reverse()  # sizes and numbers grow upwards, as on a y axis
        self.y_column = layout.y or "_y"
        self.cells = cells
        self.facets = facet_keys(trials, layout)

    def panels(
        self, value: Callable[[pd.Series], float], text: Callable[[pd.Series], str]
    ) -> list[_Panel]:
        ny, nx = len(self.y_values), len(self.x_values)
        panels = []
        for key in self.facets:
            cells = self.cells
            for column, wanted in zip(self.layout.facet, key, strict=True):
                cells = cells[cells[column] == wanted]
            values = np.full((ny, nx), np.nan)  # (ny, nx)
            labels = np.full((ny, nx), "", dtype=object)  # (ny, nx)
            grey = np.zeros((ny, nx), dtype=bool)  # (ny, nx)
            dark = np.zeros((ny, nx), dtype=bool)  # (ny, nx)
            for _, cell in cells.iterrows():
                i = self.y_values.index(cell[self.y_column])
                j = self.x_values.index(cell[self.layout.x])
                if cell["outcome"] == "failed" and not np.isfinite(cell["error"]):
                    dark[i, j], labels[i, j] = True, "failed"
                elif cell["error"] == np.inf:
                    grey[i, j], labels[i, j] = True, "diverged"
                else:
                    values[i, j], labels[i, j] = value(cell), text(cell)
            title = facet_label(self.layout, key) if key else ""
            panels.append(_Panel(title, values, labels.astype(str), grey, dark))
        return panels

    def figure(self, panels: list[_Panel], *, title: str, norm: Normalize, cmap: Colormap | str,
               colorbar: str, legend: Sequence[Patch] = ()) -> Figure:
        layout = self.layout
        ny, nx = len(self.y_values), len(self.x_values)
        columns = min(len(panels), max(1, int(15 // (0.62 * nx + 1.6))))
        rows = -(-len(panels) // columns)
        width = columns * (0.62 * nx + 1.6) + 1.4
        height = rows * (0.42 * ny + 1.5) + 1.0 if rows > 1 else max(0.42 * ny + 2.5, 4.0)
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False)
        x_labels = [value_label(layout.x or "", v) for v in self.x_values]
        y_labels = [value_label(layout.y, v) if layout.y else "" for v in self.y_values]
        size = 9 if nx <= 8 else 7.5 if nx <= 14 else 6.5
        for index, ax in enumerate(axes.flat):
            if index >= len(panels):
                ax.set_visible(False)
                continue
            panel = panels[index]
            _heatmap(ax, panel, norm, cmap, size)
            ax.set_title(panel.title, fontsize=10)
            _ticks(ax, x_labels, y_labels)
            ax.set_xlabel(axis_title(layout.x or ""))
            ax.set_ylabel(axis_title(layout.y) if layout.y else "")
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=colorbar,
                           shrink=0.9 if rows > 1 else 1.0)
        if isinstance(norm, LogNorm | SymLogNorm):
            bar.ax.yaxis.set_major_formatter(PLAIN)
            bar.ax.yaxis.set_minor_formatter(NullFormatter())
        low, high = float(norm.vmin or 0.0), float(norm.vmax or 0.0)
        if isinstance(norm, LogNorm) and high < 20 * low:  # no power of ten to label
            ticks = [float(v) for v in np.geomspace(low, high, 4)]
            bar.set_ticks(ticks, labels=[f"{v:.3g}" for v in ticks])
        marks = [*legend]
        if any(p.grey.any() for p in panels):
            marks.append(Patch(facecolor=DIVERGED_COLOR, hatch="//", edgecolor="white",
                               label="diverged"))
        if any(p.dark.any() for p in panels):
            marks.append(Patch(facecolor=FAILED_COLOR, label="failed (no error)"))
        if len(marks) > 2:
            fig.legend(handles=marks, loc="outside right center", frameon=False, fontsize=9)
        elif marks:
            fig.legend(handles=marks, loc="outside lower center", ncols=len(marks),
                       frameon=False, fontsize=9)
        fig.suptitle(title, fontsize=12)
        return fig


def _heatmap(ax: Axes, panel: _Panel, norm: Normalize, cmap: Colormap | str,
             size: float) -> None:
    shown = np.isfinite(panel.values)  # (ny, nx)
    data = np.where(shown, panel.values, norm.vmin if norm.vmin is not None else 0.0)
    sns.heatmap(data, mask=~shown, annot=np.where(shown, panel.text, ""), fmt="", norm=norm,
                vmin=norm.vmin, vmax=norm.vmax, cmap=cmap, cbar=False, ax=ax,
                linewidths=0.6, linecolor="white", square=False,
                annot_kws={"fontsize": size})
    ny, nx = panel.values.shape
    for i in range(ny):
        for j in range(nx):
            if not (shown[i, j] or panel.grey[i, j] or panel.dark[i, j]) and panel.text[i, j]:
                ax.text(j + 0.5, i + 0.5, panel.text[i, j], ha="center", va="center",
                        fontsize=size, color="0.45")  # a cell with nothing to colour: "never"
            if panel.grey[i, j] or panel.dark[i, j]:
                color = DIVERGED_COLOR if panel.grey[i, j] else FAILED_COLOR
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=color, edgecolor="white",
                                       hatch="//" if panel.grey[i, j] else None, linewidth=0.6))
                ax.text(j + 0.5, i + 0.5, MARK, ha="center", va="center", fontsize=size + 3,
                        color="white" if panel.dark[i, j] else "black")
    ax.set_xlim(0, nx)
    ax.set_ylim(ny, 0)


def _ticks(ax: Axes, x_labels: list[str], y_labels: list[str]) -> None:
    """Every label where they fit; rotated past 6 columns, thinned past 24."""
    step = 1 if len(x_labels) <= 24 else -(-len(x_labels) // 24)
    positions = np.arange(len(x_labels))[::step] + 0.5
    rotate = len(x_labels) > 6 or max((len(s) for s in x_labels), default=0) > 5
    ax.set_xticks(positions, [x_labels[i] for i in range(0, len(x_labels), step)],
                  rotation=45 if rotate else 0, ha="right" if rotate else "center",
                  rotation_mode="anchor")
    ax.set_yticks(np.arange(len(y_labels)) + 0.5, y_labels, rotation=0)
    ax.tick_params(length=0)


def _log_norm(arrays: Sequence[FloatArray]) -> LogNorm:
    kept = [a[np.isfinite(a) & (a > 0)] for a in arrays]
    values = np.concatenate(kept) if kept else np.empty(0)  # (cells,)
    if values.size == 0:
        return LogNorm(1e-3, 1.0)
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low * 1.0001:
        low, high = low / 2, high * 2
    return LogNorm(low, high)


def _error_text(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.0e}"


def heatmaps(
    trials: pd.DataFrame, history: pd.DataFrame, layout: Layout, out: Path
) -> list[Picture]:
    """Outcome, final error and direction changes over (x, y); with seeds, also the share that
    converged and the median epoch of convergence."""
    if layout.x is None or trials.empty:
        return []
    cells = cell_frame(trials, history, layout)
    grid = _Grid(cells, trials, layout)
    metric = "/".join(ordered_values("metric", trials["metric"]))
    tolerance = "/".join(f"{t:g}" for t in ordered_values("tolerance", trials["tolerance"]))
    over = f"over {layout.x}" + (f" and {layout.y}" if layout.y else "")
    per = f", one panel per {', '.join(layout.facet)}" if layout.facet else ""
    median = f"median over {layout.seeds} seeds, " if layout.seeds > 1 else ""
    pictures = []

    names = [name for name, *_ in OUTCOMES]
    colours = ListedColormap([colour for _, _, colour, _ in OUTCOMES])
    short = {name: label for name, _, _, label in OUTCOMES}
    outcome_panels = grid.panels(lambda c: float(names.index(c["outcome"])),
                                 lambda c: short[str(c["outcome"])])
    present = {str(o) for o in cells["outcome"]}
    legend = [Patch(facecolor=colour, label=text) for name, text, colour, _ in OUTCOMES
              if name in present and name not in ("diverged", "failed")]
    fig = grid.figure(outcome_panels, title=f"Outcome {over}",
                      norm=BoundaryNorm(np.arange(len(OUTCOMES) + 1) - 0.5, len(OUTCOMES)),
                      cmap=colours, colorbar="outcome", legend=legend)
    fig.axes[-1].remove()  # the legend names the classes; a colour bar of categories would not
    which = "; with several seeds, the seed at the median error decides" if median else ""
    pictures.append(_save(fig, out, "outcome", "Outcome at a glance",
                          f"What each cell's training did {over}{per}: converged (final "
                          f"{metric} <= {tolerance}), learning (error more than halved), slow "
                          "(fell by less than half), flat (within 2% of its epoch-0 error), "
                          "diverged "
                          f"(grey, {MARK}) or failed{which}."))

    error_panels = grid.panels(lambda c: float(c["error"]), lambda c: _error_text(c["error"]))
    norm = _log_norm([p.values for p in error_panels])
    title = "Median final error" if layout.seeds > 1 else "Final error"
    fig = grid.figure(error_panels, title=f"{title} ({metric}) {over}", norm=norm,
                      cmap="viridis_r", colorbar=f"final {metric} (log scale)")
    pictures.append(_save(fig, out, "heatmap_final_error", f"{title} ({metric})",
                          f"{title} ({median}{metric} at the last epoch, log colour scale) "
                          f"{over}{per}; grey cells marked {MARK} diverged."))

    if layout.seeds > 1:
        share_panels = grid.panels(lambda c: float(c["converged_share"]),
                                   lambda c: f"{c['converged_share']:.0%}")
        fig = grid.figure(share_panels, title=f"Share of seeds that converged {over}",
                          norm=Normalize(0.0, 1.0), cmap="Greens",
                          colorbar=f"share of seeds with {metric} <= {tolerance}")
        pictures.append(_save(fig, out, "heatmap_converged_share", "Share of seeds converged",
                              f"Share of the {layout.seeds} seeds whose final {metric} reached "
                              f"the tolerance {tolerance}, {over}{per}."))
        epoch_panels = grid.panels(lambda c: float(c["converged_epoch"]),
                                   lambda c: _compact(c["converged_epoch"])
                                   if np.isfinite(c["converged_epoch"]) else "never")
        fig = grid.figure(epoch_panels, title=f"Median epoch of convergence {over}",
                          norm=_log_norm([p.values for p in epoch_panels]), cmap="magma_r",
                          colorbar="epoch of convergence (log scale)")
        pictures.append(_save(fig, out, "heatmap_converged_epoch", "Median epoch of convergence",
                              "Median epoch at which the converged seeds first reached the "
                              f"tolerance (log colour scale; 'never': no seed did), {over}{per}."))

    change_panels = grid.panels(lambda c: float(c["direction_changes"]),
                                lambda c: _compact(c["direction_changes"]))
    fig = grid.figure(change_panels, title=f"Weight-update direction changes {over}",
                      norm=_count_norm([p.values for p in change_panels]), cmap="rocket_r",
                      colorbar="direction changes, all weights (log scale)")
    pictures.append(_save(fig, out, "heatmap_direction_changes", "Direction changes",
                          f"Total weight-update direction changes ({median}summed over every "
                          f"weight of a trial; counted up to divergence) {over}{per}."))
    return pictures


def _count_norm(arrays: Sequence[FloatArray]) -> Normalize:
    """Log colours for counts; symmetric-log from 0 when some count is zero."""
    values = np.concatenate([a[np.isfinite(a)] for a in arrays])  # (cells,)
    if values.size and values.min() >= 1:
        return _log_norm(arrays)
    top = float(values.max()) if values.size else 1.0
    return SymLogNorm(linthresh=1.0, vmin=0.0, vmax=max(top, 10.0), base=10)


# --- learning curves ----------------------------------------------------------------------

def thin_history(history: pd.DataFrame, points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """At most about `points` log-spaced epochs per trial, always keeping the first and last."""
    frame = history.sort_values(["trial", "epoch"], kind="stable")
    position = frame.groupby("trial", sort=False).cumcount().to_numpy()  # (rows,)
    count = frame.groupby("trial", sort=False)["epoch"].transform("size").to_numpy()  # (rows,)
    scale = points / np.log1p(np.maximum(count - 1, 1))  # (rows,)
    bucket = np.floor(np.log1p(position) * scale)  # (rows,)
    previous = np.floor(np.log1p(np.maximum(position - 1, 0)) * scale)  # (rows,)
    keep = (position == 0) | (position == count - 1) | (bucket != previous)
    return frame[keep]


def learning_curves(
    trials: pd.DataFrame, history: pd.DataFrame, layout: Layout, out: Path
) -> list[Picture]:
    """Error against epoch, one line per x value, small multiples over y (rows: facets)."""
    if history.empty:
        return []
    metrics = ordered_values("metric", trials["metric"])
    metric = metrics[0] if len(metrics) == 1 else "mae"
    data = thin_history(history).merge(trials[["trial", *layout.keys, "status"]], on="trial")
    data = data.assign(_error=data[metric].clip(lower=1e-12))
    # One line per cell of the layout: the median over its seeds, with their range as a band.
    stats = data.groupby([*layout.keys, "epoch"], sort=True, dropna=False)["_error"].agg(
        ["median", "min", "max"]).reset_index()
    ends = data[data["status"] == "diverged"].drop_duplicates("trial", keep="last")
    hue = layout.x
    hues = ordered_values(hue, trials[hue]) if hue else [None]
    palette = _ordered_palette(len(hues)) if hue else [(0.1, 0.3, 0.6)]
    columns = ordered_values(layout.y, trials[layout.y]) if layout.y else [None]
    rows = facet_keys(trials, layout)
    n_cols = min(len(columns), 4) if len(rows) == 1 else len(columns)
    n_rows = len(rows) * -(-len(columns) // n_cols)
    fig = Figure(figsize=(3.3 * n_cols + 1.8, 2.7 * n_rows + 0.8), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    for r, key in enumerate(rows):
        for c, y_value in enumerate(columns):
            ax = axes.flat[r * len(columns) + c]
            wanted = dict(zip(layout.facet, key, strict=True))
            if layout.y is not None:
                wanted[layout.y] = y_value
            for h, colour in zip(hues, palette, strict=True):
                line = _select(stats, {**wanted, **({hue: h} if hue else {})})
                ax.plot(line["epoch"], line["median"], color=colour, linewidth=1.3)
                if layout.seeds > 1:
                    ax.fill_between(line["epoch"], line["min"], line["max"], color=colour,
                                    alpha=0.18, linewidth=0)
            marks = _select(ends, wanted)
            ax.scatter(marks["epoch"], marks["_error"], marker="x", color="black", s=28,
                       zorder=5)
            parts = [facet_label(layout, key)] if key else []
            if layout.y is not None:
                parts.append(f"{layout.y} = {value_label(layout.y, y_value)}")
            ax.set_title(", ".join(parts), fontsize=9)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(PLAIN)
            ax.yaxis.set_major_formatter(PLAIN)
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("epoch (log scale)")
            ax.set_ylabel(f"{metric} (log scale)")
            ax.grid(True, which="major", alpha=0.3)
    for ax in axes.flat[len(rows) * len(columns):]:
        ax.set_visible(False)
    handles: list[Artist] = [Line2D([], [], color=colour, linewidth=2,
                                    label=value_label(hue, h)) for h, colour in
                             zip(hues, palette, strict=True)] if hue else []
    if any(trials["status"] == "diverged"):
        handles.append(Line2D([], [], marker="x", color="black", linestyle="",
                              label="diverged here"))
    if handles:
        fig.legend(handles=handles, title=axis_title(hue) if hue else None,
                   loc="outside right center", frameon=False, fontsize=8)
    spread = f"; band: min to max over {layout.seeds} seeds, line: median" \
        if layout.seeds > 1 else ""
    fig.suptitle(f"Learning curves: {metric} against epoch", fontsize=12)
    lines = f"one line per {hue}" if hue else "one line"
    multiples = f", one panel per {layout.y}" if layout.y else ""
    return [_save(fig, out, "learning_curves", "Learning curves",
                  f"Training error ({metric}, log scale) against epoch (log scale), {lines}"
                  f"{multiples}{spread}; {MARK} marks where a trial diverged.")]


def _select(frame: pd.DataFrame, wanted: dict[str, Any]) -> pd.DataFrame:
    """The rows whose columns hold the wanted values."""
    for column, value in wanted.items():
        frame = frame[frame[column] == value]
    return frame


def _ordered_palette(n: int) -> list[tuple[float, float, float]]:
    """Colours for ordered values that stay apart on white: turbo without its pale ends."""
    return list(sns.color_palette("turbo", as_cmap=True)(np.linspace(0.08, 0.92, n))[:, :3])


# --- direction changes of one trial -------------------------------------------------------

def default_trial(trials: pd.DataFrame, directions: pd.DataFrame) -> str | None:
    """The trial with the lowest final error, else the first with direction counts."""
    drawn = trials[trials["trial"].isin(directions["trial"])]
    if drawn.empty:
        return None
    finite = drawn[drawn["final_error"].notna()]
    if not finite.empty:
        return str(finite.sort_values(["final_error", "trial"], kind="stable")["trial"].iloc[0])
    return str(drawn["trial"].iloc[0])


def resolve_trial(trials: pd.DataFrame, trial: str) -> str:
    matches = [str(t) for t in trials["trial"] if str(t).startswith(trial)]
    if len(matches) != 1:
        raise UnknownTrial(trial, len(matches))
    return matches[0]


def weight_directions(
    trials: pd.DataFrame, directions: pd.DataFrame, trial: str, out: Path
) -> list[Picture]:
    """Per-weight direction changes of one trial, one small heatmap per layer (iamtrask's
    printed matrices), stacked from the input side."""
    counts = directions[directions["trial"] == trial]
    if counts.empty:
        return []
    row = trials[trials["trial"] == trial].iloc[0]
    layers = sorted(int(layer) for layer in counts["layer"].unique())
    matrices = []
    for layer in layers:
        cells = counts[counts["layer"] == layer]
        matrix = cells.pivot(index="row", columns="col", values="changes").sort_index()
        matrices.append(matrix.sort_index(axis=1).to_numpy(dtype=float))  # (fan_in, fan_out)
    shown = [m.T if m.shape[0] > m.shape[1] and m.shape[0] > 12 else m for m in matrices]
    widest = max(m.shape[1] for m in shown)
    width = min(max(0.5 * widest + 2.5, 7.0), 16.0)
    heights = [min(max(0.42 * m.shape[0], 0.6), 6.0) + 0.9 for m in shown]
    fig = Figure(figsize=(width, sum(heights) + 1.0), layout="constrained")
    axes = fig.subplots(len(shown), 1, squeeze=False, height_ratios=heights)[:, 0]
    # From the fewest changes to the most, so that differences between weights show.
    low, high = min(float(m.min()) for m in matrices), max(float(m.max()) for m in matrices)
    norm = Normalize(low, high if high > low else low + 1.0)
    for layer, matrix, ax in zip(layers, shown, axes, strict=True):
        flipped = matrix is not matrices[layers.index(layer)]
        annotate = matrix.size <= MAX_ANNOTATED_WEIGHTS
        sns.heatmap(matrix, ax=ax, norm=norm, vmin=norm.vmin, vmax=norm.vmax, cmap="rocket_r",
                    annot=annotate, fmt=".0f", cbar=False, linewidths=0.4 if annotate else 0,
                    linecolor="white", annot_kws={"fontsize": 8},
                    xticklabels=matrix.shape[1] <= 40 or "auto",
                    yticklabels=matrix.shape[0] <= 20 or "auto")
        source = "input" if layer == 0 else f"hidden layer {layer}"
        target = "output" if layer == layers[-1] else f"hidden layer {layer + 1}"
        rows, cols = (target, source) if flipped else (source, target)
        ax.set_title(f"layer {layer}: {source} -> {target} "
                     f"({matrices[layers.index(layer)].shape[0]} x "
                     f"{matrices[layers.index(layer)].shape[1]} weights"
                     f"{', transposed' if flipped else ''})", fontsize=9)
        ax.set_ylabel(f"{rows} unit")
        ax.set_xlabel(f"{cols} unit")
        ax.tick_params(length=0, labelsize=7)
    fig.colorbar(ScalarMappable(norm=norm, cmap="rocket_r"), ax=list(axes),
                 label="direction changes per weight (count)")
    settings = ", ".join(f"{c} = {value_label(c, row[c])}"
                         for c in ("hidden", "activation", "alpha", "descent", "seed"))
    fig.suptitle(f"Direction changes per weight, trial {trial}\n"
                 + textwrap.fill(settings.replace(" = ", "\u00a0=\u00a0"),  # break at commas
                                 width=int(width * 9)), fontsize=11)
    return [_save(fig, out, "weight_directions", "Direction changes per weight",
                  f"How often each weight's update changed sign in trial {trial} ({settings}; "
                  f"status {row['status']}), one map per weight matrix from the input side.")]


# --- all of it ----------------------------------------------------------------------------

def draw_all(
    frames: dict[str, pd.DataFrame], layout: Layout, out: Path, trial: str | None = None
) -> list[Picture]:
    """Every figure of a results folder's tables, written under `out` (PNG and SVG)."""
    out.mkdir(parents=True, exist_ok=True)
    trials, history, directions = frames["trials"], frames["history"], frames["directions"]
    chosen = resolve_trial(trials, trial) if trial else default_trial(trials, directions)
    pictures = heatmaps(trials, history, layout, out)
    pictures += learning_curves(trials, history, layout, out)
    if chosen is not None:
        pictures += weight_directions(trials, directions, chosen, out)
    return pictures


def _save(fig: Figure, out: Path, name: str, title: str, caption: str) -> Picture:
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=110)
    fig.savefig(svg)
    return Picture(name=name, title=title, caption=caption, png=png, svg=svg)
