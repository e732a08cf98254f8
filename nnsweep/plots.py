"""Pictures of a sweep, drawn from its saved tables only.

Heatmaps of the outcome over two swept parameters (one panel per value of the others), learning
curves as small multiples, a line of final error for a one-axis sweep, and direction-change
maps. Drawing costs in proportion to the grid's cells, not its trials or recorded epochs:
seeds are aggregated with pandas before anything is drawn, histories are thinned to a bounded
number of log-spaced epochs, and many lines go into one collection per panel. Each picture is
written as PNG (and SVG when asked) under a stable name, so a rebuilt report replaces the same
files. Figures are built on matplotlib's `Figure` directly (Agg canvas, no pyplot), so nothing
here opens a window or keeps global figure state.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import (
    BoundaryNorm,
    CenteredNorm,
    Colormap,
    LinearSegmentedColormap,
    ListedColormap,
    LogNorm,
    Normalize,
)
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator
from numpy.typing import NDArray

from nnsweep import outcomes, result
from nnsweep.edge import PASSING
from nnsweep.errors import NnsweepError, UnknownTrial
from nnsweep.params import hidden_order
from nnsweep.result import HIGHER_IS_BETTER
from nnsweep.tables import PARAM_COLUMNS, ranked

FloatArray = NDArray[np.float64]

FINISHED = ("converged", "not_converged", "diverged")
MARK = "\u00d7"  # the multiplication sign that marks diverged cells and curve ends
DIVERGED_COLOR = "0.62"
FAILED_COLOR = "0.25"
PNG_DPI = 110  # pixels per inch of the PNG figures
MAX_CURVE_POINTS = 200  # per trial: history is thinned to log-spaced epochs before drawing
MAX_ANNOTATED_WEIGHTS = 160  # per layer: more cells than this are drawn without numbers
MAX_PANEL_COLUMNS = 4  # learning-curve panels side by side at most
# Epoch 0 has no place on a log axis: it is drawn apart, at the first recorded epoch after it
# divided by this, left of a dotted break; a factor of 2 keeps that stub to about a third of a
# decade, so a short run's first epochs keep most of the width.
EPOCH0_SHIFT = 2.0
# The curves' palette: perceptually uniform, ordered, dark to light; its palest end is left out
# so the largest value stays visible on white.
CURVE_PALETTE = "viridis"
CURVE_PALETTE_END = 0.9
# seaborn's "rocket" (dark purple to pale peach), the direction changes' colours, as 33 evenly
# spaced stops of its table: interpolated, within 1/255 of it everywhere, without importing
# seaborn (and scipy with it) for one colour map.
ROCKET = (
    "#03051A", "#0D0A21", "#180F29", "#241432", "#30173A", "#3C1A42", "#481C48", "#541E4E",
    "#611F53", "#6E1F57", "#7B1F59", "#891E5B", "#971C5B", "#A4195B", "#B21758", "#BF1654",
    "#CB1B4F", "#D5224A", "#DE2E44", "#E63B40", "#EC4A3E", "#EF5A41", "#F26948", "#F37852",
    "#F4865E", "#F5946B", "#F6A178", "#F6AE87", "#F6BB97", "#F7C7A8", "#F8D3BA", "#F9DFCB",
    "#FAEBDD",
)
TITLE_CHARACTERS = 36  # a panel title wraps past this many characters
MAX_TICKS = 6  # labelled ticks on a log axis or colour bar at most
MAX_SWEPT_TICKS = 10  # a one-axis line labels up to this many swept values themselves

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

# One distinct colour per outcome (Okabe-Ito, distinguishable with colour-blindness), and the
# short label written in a heatmap cell.
OUTCOME_COLOURS: dict[str, str] = {
    "converged": "#009E73",  # bluish green
    "learning": "#56B4E9",  # sky blue
    "too_slow": "#F0E442",  # yellow
    "stuck": "#D55E00",  # vermilion
    "diverged": DIVERGED_COLOR,
    "failed": FAILED_COLOR,
}
OUTCOME_LABELS: dict[str, str] = {
    "converged": "conv", "learning": "learn", "too_slow": "slow", "stuck": "stuck",
    "diverged": "div", "failed": "fail",
}
# Outcome of one trial, in the order the legend lists them: name, legend text, colour, label.
OUTCOMES: tuple[tuple[str, str, str, str], ...] = tuple(
    (name, f"{name.replace('_', ' ')}: {outcomes.DEFINITIONS[name]}", OUTCOME_COLOURS[name],
     OUTCOME_LABELS[name]) for name in outcomes.OUTCOME_NAMES)


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
    """One written figure: its stable file stem under plots/, a title and a one-line caption.

    `svg` is where its vector copy goes; it exists only when the figures were drawn with
    `vector=True`."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path
    tick_points: float | None = None  # its smallest tick label's font size; None: no ticks


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


# --- what the metric means -----------------------------------------------------------------

def figure_metric(trials: pd.DataFrame) -> str:
    """The metric the curves draw: the sweep's own, or mae, which every trial records, when
    the trials differ in metric (mixed_metrics says so)."""
    metrics = ordered_values("metric", trials["metric"])
    return str(metrics[0]) if len(metrics) == 1 else "mae"


def mixed_metrics(trials: pd.DataFrame) -> str:
    """A sentence saying the trials differ in metric and what the figures then draw; "" when
    they share one."""
    metrics = [str(m) for m in ordered_values("metric", trials["metric"])]
    if len(metrics) <= 1:
        return ""
    return (f"The trials differ in metric ({', '.join(metrics)}): the learning curves and the "
            "explorer's curves draw every trial's mae, each heatmap cell its trials' own "
            "metric.")


def scored(trials: pd.DataFrame) -> bool:
    """Whether every trial's metric is a score, best when highest (accuracy): its figures use
    a linear scale, and the light colours stay the better ones."""
    metrics = {str(m) for m in trials["metric"].dropna()}
    return bool(metrics) and metrics <= HIGHER_IS_BETTER


def goal(trials: pd.DataFrame) -> str:
    """Where a trial converges, in the words of the page: "mae <= 0.01", "accuracy >= 0.99"."""
    parts = []
    for metric in ordered_values("metric", trials["metric"]):
        tolerances = ordered_values("tolerance",
                                    trials.loc[trials["metric"] == metric, "tolerance"])
        if metric in HIGHER_IS_BETTER:
            parts.append(f"{metric} >= {'/'.join(f'{1 - t:g}' for t in tolerances)}")
        else:
            parts.append(f"{metric} <= {'/'.join(f'{t:g}' for t in tolerances)}")
    return " or ".join(parts)


def selected_split(trials: pd.DataFrame) -> str:
    """Which rows decide the final error, as words for a caption: "" for the training rows
    (the default), else what `select` names."""
    chosen = {str(s) for s in trials["select"].fillna("train")} if "select" in trials \
        else {"train"}
    if chosen == {"train"}:
        return ""
    if chosen == {"validation"}:
        return "on the held-out validation rows, as select = validation asks"
    return "on the rows each trial selects, as its select asks"


def best_first(frame: pd.DataFrame, column: str) -> pd.Series:
    """A cell's value as a key that sorts the best first: an error as it is, a score (its
    cell's `higher`) negated; NaN and infinities (diverged) last."""
    values = frame[column].to_numpy(dtype=float, na_value=np.nan)  # (cells,)
    higher = frame["higher"].to_numpy(dtype=bool)  # (cells,)
    key = np.where(higher, -values, values)  # (cells,)
    return pd.Series(np.where(np.isfinite(values), key, np.inf), index=frame.index)


def _compact(value: float) -> str:
    """A count in at most four characters: 812, 4.1k, 12k, 1.3M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


# --- facet grids and ticks ----------------------------------------------------------------

def grid_shape(panels: int, max_columns: int = MAX_PANEL_COLUMNS) -> tuple[int, int]:
    """Rows and columns for `panels` facets: the squarest grid (a lone panel in its last row
    counting as one more row), then the fewest empty slots, then the wider: 4 panels make
    2 x 2, 3 make 1 x 3 and 7 make 4 + 3, never 3 + 1 or 3 + 3 + 1."""
    if panels <= 1:
        return 1, 1
    widest = max(2, min(max_columns, panels))

    def cost(columns: int) -> tuple[int, int, int]:
        rows = -(-panels // columns)
        lone = rows > 1 and panels - (rows - 1) * columns == 1
        return max(rows, columns) + lone, rows * columns - panels, -columns

    columns = min(range(2, widest + 1), key=cost) if max_columns > 1 else 1
    return -(-panels // columns), columns


def log_ticks(low: float, high: float, most: int = MAX_TICKS) -> list[float]:
    """At least two and at most `most` readable ticks between low and high (both > 0): powers
    of ten, thinned when too many; 1-2-5 steps under about a decade; else three rounded
    geometric steps, so that even a narrow log colour bar names two values."""
    decades = [10.0 ** k for k in range(math.floor(math.log10(low)),
                                        math.ceil(math.log10(high)) + 1)]
    ticks = [t for t in decades if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    if len(ticks) > most:
        step = -(-len(ticks) // most)
        ticks = ticks[::step]
    if len(ticks) >= 2:
        return ticks
    steps = [d * s for d in decades for s in (1.0, 2.0, 5.0)]
    ticks = [t for t in steps if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    if 2 <= len(ticks) <= most:
        return ticks
    if len(ticks) > most:
        return ticks[:: -(-len(ticks) // most)]
    for digits in range(2, 8):  # as few digits as keep three steps apart
        ticks = sorted({float(f"{v:.{digits}g}") for v in np.geomspace(low, high, 3)})
        if len(ticks) == 3:
            break
    return [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)] or [low, high]


def _set_log_ticks(axis: Any, low: float, high: float) -> None:
    axis.set_major_locator(FixedLocator(log_ticks(low, high)))
    axis.set_major_formatter(PLAIN)
    axis.set_minor_formatter(NullFormatter())


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
    the last weight matrix has one column per output. None when they cannot tell."""
    if history.empty or directions.empty:
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
    weights = trials["trial"].map(directions["trial"].value_counts()).to_numpy(
        dtype=float, na_value=np.nan)  # (trials,)
    changes = trials["direction_changes"].to_numpy(dtype=float, na_value=np.nan)  # (trials,)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = changes / (weights * update_steps(trials, rows))  # (trials,)
    return pd.Series(rate, index=trials.index, dtype="float64")


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
        self.facets = facet_keys(trials, layout)
        # Every cell's place: its panel, row and column, found once for all the heatmaps.
        panel_of = {key: n for n, key in enumerate(self.facets)}
        facet_values = (cells[list(layout.facet)].itertuples(index=False, name=None)
                        if layout.facet else [()] * len(cells))
        self.place = (np.array([panel_of[tuple(k)] for k in facet_values], dtype=int),
                      cells[self.y_column].map({v: i for i, v in enumerate(self.y_values)})
                      .to_numpy(dtype=int),
                      cells[layout.x].map({v: j for j, v in enumerate(self.x_values)})
                      .to_numpy(dtype=int))  # (cells,) each
        self.cells = cells

    def panels(
        self, value: Callable[[pd.Series], float], text: Callable[[pd.Series], str]
    ) -> list[_Panel]:
        ny, nx, count = len(self.y_values), len(self.x_values), len(self.facets)
        values = np.full((count, ny, nx), np.nan)  # (panels, ny, nx)
        labels = np.full((count, ny, nx), "", dtype=object)  # (panels, ny, nx)
        grey = np.zeros((count, ny, nx), dtype=bool)  # (panels, ny, nx)
        dark = np.zeros((count, ny, nx), dtype=bool)  # (panels, ny, nx)
        for (p, i, j), (_, cell) in zip(zip(*self.place, strict=True), self.cells.iterrows(),
                                        strict=True):
            if cell["outcome"] == "failed" and not np.isfinite(cell["error"]):
                dark[p, i, j], labels[p, i, j] = True, "failed"
            elif cell["error"] == np.inf:
                grey[p, i, j], labels[p, i, j] = True, "diverged"
            else:
                values[p, i, j], labels[p, i, j] = value(cell), text(cell)
        return [_Panel(facet_label(self.layout, key) if key else "", values[n],
                       labels[n].astype(str), grey[n], dark[n])
                for n, key in enumerate(self.facets)]

    def figure(self, panels: list[_Panel], *, title: str, norm: Normalize, cmap: Colormap | str,
               colorbar: str | None, legend: Sequence[Artist] = ()) -> Figure:
        layout = self.layout
        ny, nx = len(self.y_values), len(self.x_values)
        rows, columns = grid_shape(len(panels), max(1, int(15 // (0.62 * nx + 1.6))))
        width = columns * (0.62 * nx + 1.6) + (3.2 if legend else 1.4)
        height = rows * (0.42 * ny + 1.5) + 1.0 if rows > 1 else max(0.42 * ny + 2.5, 4.0)
        fig = _figure((width, height))
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
            ax.set_title(textwrap.fill(panel.title, TITLE_CHARACTERS + 10), fontsize=10)
            _ticks(ax, x_labels, y_labels)
            ax.set_xlabel(axis_title(layout.x or ""))
            ax.set_ylabel(axis_title(layout.y) if layout.y else "")
        if colorbar is not None:
            bar = fig.colorbar(ScalarMappable(norm=norm, cmap=colour_map(cmap)), ax=axes,
                               label=colorbar, shrink=0.9 if rows > 1 else 1.0)
            if isinstance(norm, LogNorm):
                _set_log_ticks(bar.ax.yaxis, float(norm.vmin or 1.0), float(norm.vmax or 1.0))
                bar.ax.yaxis.set_minor_locator(NullLocator())
        marks = [*legend]
        if any(p.grey.any() for p in panels):
            marks.append(Patch(facecolor=DIVERGED_COLOR, hatch="//", edgecolor="white",
                               label=f"diverged ({MARK})"))
        if any(p.dark.any() for p in panels):
            marks.append(Patch(facecolor=FAILED_COLOR, label=f"failed, no error ({MARK})"))
        if len(marks) > 2:
            fig.legend(handles=marks, loc="outside right center", frameon=False, fontsize=9)
        elif marks:
            fig.legend(handles=marks, loc="outside lower center", ncols=len(marks),
                       frameon=False, fontsize=9)
        fig.suptitle(textwrap.fill(title, int(width * 7.5)), fontsize=12)
        return fig


def _heatmap(ax: Axes, panel: _Panel, norm: Normalize, cmap: Colormap | str,
             size: float) -> None:
    shown = np.isfinite(panel.values)  # (ny, nx)
    _matrix(ax, panel.values, norm, cmap, np.where(shown, panel.text, ""), size)
    ny, nx = panel.values.shape
    for i in range(ny):
        for j in range(nx):
            if not (shown[i, j] or panel.grey[i, j] or panel.dark[i, j]) and panel.text[i, j]:
                ax.text(j + 0.5, i + 0.5, panel.text[i, j], ha="center", va="center",
                        fontsize=size, color="0.45",  # a cell with nothing to colour: "never"
                        in_layout=False)
            if panel.grey[i, j] or panel.dark[i, j]:
                color = DIVERGED_COLOR if panel.grey[i, j] else FAILED_COLOR
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=color, edgecolor="white",
                                       hatch="//" if panel.grey[i, j] else None, linewidth=0.6))
                ax.text(j + 0.5, i + 0.5, MARK, ha="center", va="center", fontsize=size + 3,
                        color="white" if panel.dark[i, j] else "black", in_layout=False)


def _matrix(ax: Axes, values: FloatArray, norm: Normalize, cmap: Colormap | str,
            text: NDArray[Any], size: float, lines: float = 0.6) -> None:
    """A heatmap as one mesh and its cell texts, dark on light cells and white on dark, rows
    from the top: what seaborn's heatmap draws, without its tick-overlap checks (a render of
    the figure each). The texts sit inside their cells, so the layout never measures them
    (in_layout False): measuring is most of what a text costs."""
    colormap = colour_map(cmap)
    ny, nx = values.shape
    ax.pcolormesh(np.arange(nx + 1), np.arange(ny + 1), np.ma.masked_invalid(values),
                  norm=norm, cmap=colormap, edgecolors="white", linewidth=lines)
    rgba = colormap(norm(np.where(np.isfinite(values), values, norm.vmin or 0.0)))  # (ny, nx, 4)
    luminance = rgba[..., :3] @ np.array([0.2126, 0.7152, 0.0722])  # (ny, nx)
    for i, j in zip(*np.nonzero(text != ""), strict=True):
        ax.text(j + 0.5, i + 0.5, str(text[i, j]), ha="center", va="center", fontsize=size,
                color="black" if luminance[i, j] > 0.4 else "white", in_layout=False)
    ax.set_xlim(0, nx)
    ax.set_ylim(ny, 0)
    for side in ax.spines.values():
        side.set_visible(False)


def colour_map(name: Colormap | str) -> Colormap:
    """A colour map by name: matplotlib's, or "rocket" / "rocket_r" from ROCKET."""
    if isinstance(name, Colormap):
        return name
    if name in ("rocket", "rocket_r"):
        stops = ROCKET if name == "rocket" else ROCKET[::-1]
        return LinearSegmentedColormap.from_list(name, stops, N=256)
    return colormaps[name]


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


def _score_norm(arrays: Sequence[FloatArray]) -> Normalize:
    """A linear scale over the scores shown, widened inside [0, 1] when they are all equal."""
    kept = [a[np.isfinite(a)] for a in arrays]
    values = np.concatenate(kept) if kept else np.empty(0)  # (cells,)
    if values.size == 0:
        return Normalize(0.0, 1.0)
    low, high = float(np.min(values)), float(np.max(values))
    if high - low < 1e-9:
        low, high = max(0.0, low - 0.05), min(1.0, high + 0.05)
    return Normalize(low, high if high > low else low + 1.0)


def value_scale(trials: pd.DataFrame, arrays: Sequence[FloatArray]
                ) -> tuple[Normalize, str, str]:
    """The colour scale of final errors: (norm, colour map, its words). An error's is
    logarithmic, light where low; a score's (accuracy) linear, light where high: light is
    better on both."""
    if scored(trials):
        return _score_norm(arrays), "viridis", "linear scale; light: higher, better"
    return _log_norm(arrays), "viridis_r", "log scale"


def _colour_words(scale: str) -> str:
    """value_scale's words as a caption says them: "log colour scale"."""
    kind, _, rest = scale.partition(" scale")
    return f"{kind} colour scale{rest}"


def _rate_norm(arrays: Sequence[FloatArray]) -> Normalize:
    """Log colours for positive rates; linear from 0 when some rate is zero."""
    values = np.concatenate([a[np.isfinite(a)] for a in arrays])  # (cells,)
    if values.size and values.min() > 0:
        return _log_norm(arrays)
    top = float(values.max()) if values.size else 1.0
    return Normalize(0.0, top if top > 0 else 1.0)


def _error_text(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.0e}"


def _value_text(trials: pd.DataFrame) -> Callable[[float], str]:
    """How a cell writes its final value: an error in two digits, a score in three (0.975,
    where two would round it up to a perfect-looking 1)."""
    return (lambda value: f"{value:.3g}") if scored(trials) else _error_text


def per_steps(high: float) -> int:
    """The power of ten of update steps that puts the largest rate between 1 and 10 when it is
    under 0.01, so that rates read as 7.3 per 10,000 steps rather than 0.00073 per step."""
    if not (np.isfinite(high) and 0 < high < 0.01):
        return 1
    return int(10 ** max(0, -math.floor(math.log10(high))))


def _steps_text(steps: int) -> str:
    return "update step" if steps == 1 else f"{steps:,} update steps"


def _rate_text(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-3 or value == 0 else f"{value:.0e}"


def _median_rule(seeds: int, what: str, diverged_infinite: bool = True) -> str:
    """How a cell aggregates its seeds, in words for a caption."""
    if seeds <= 1:
        return f"each cell: one trial's {what}"
    notes = [*(["a diverged seed counts as infinite"] if diverged_infinite else []),
             *(["with an even count, the mean of the middle two"] if seeds % 2 == 0 else [])]
    return f"each cell: the median of its {seeds} seeds' {what}" + (
        f" ({'; '.join(notes)})" if notes else "")


def heatmaps(
    trials: pd.DataFrame, history: pd.DataFrame, layout: Layout, out: Path, *,
    directions: pd.DataFrame | None = None, rows: int | None = None, vector: bool = True,
    validation: pd.DataFrame | None = None, judged: pd.Series | None = None,
) -> list[Picture]:
    """Outcome, final error and direction changes over (x, y); with seeds, also the share that
    converged and the median epoch of convergence. `validation`, the held-out rows, judges the
    outcome of the trials that select them; `judged`: the trials' outcomes, if known."""
    if layout.x is None or trials.empty:
        return []
    cells = cell_frame(trials, history, layout, directions, rows, validation=validation,
                       judged=judged)
    grid = _Grid(cells, trials, layout)
    metric = "/".join(ordered_values("metric", trials["metric"]))
    reached = goal(trials)
    split = selected_split(trials)
    mixed = f" {mixed_metrics(trials)}" if mixed_metrics(trials) else ""
    over = f"over {layout.x}" + (f" and {layout.y}" if layout.y else "")
    per = f", one panel per {', '.join(layout.facet)}" if layout.facet else ""
    median = f"median over {layout.seeds} seeds, " if layout.seeds > 1 else ""
    pictures = []

    names = [name for name, *_ in OUTCOMES]
    colours = ListedColormap([colour for _, _, colour, _ in OUTCOMES])
    outcome_panels = grid.panels(lambda c: float(names.index(c["outcome"])),
                                 lambda c: OUTCOME_LABELS[str(c["outcome"])])
    present = {str(o) for o in cells["outcome"]}
    legend = [Patch(facecolor=colour, label=textwrap.fill(text, 40))
              for name, text, colour, _ in OUTCOMES
              if name in present and name not in ("diverged", "failed")]
    fig = grid.figure(outcome_panels, title=f"Outcome {over}",
                      norm=BoundaryNorm(np.arange(len(OUTCOMES) + 1) - 0.5, len(OUTCOMES)),
                      cmap=colours, colorbar=None, legend=legend)
    decides = ("; the median seed decides a cell (by final error; with an even count, the "
               f"upper of the middle two), over {layout.seeds} seeds") if layout.seeds > 1 else ""
    pictures.append(_save(fig, out, "outcome", "Outcome at a glance",
                          f"What each cell's training did {over}{per}, one colour per outcome: "
                          f"converged (final {reached}"
                          f"{' ' + split if split else ''}); learning (still falling "
                          "at the end, at most half its starting error left); too slow (more than "
                          "half left and still moving at its early pace: alpha too small); "
                          "stuck (stopped "
                          f"falling above the tolerance); diverged (grey, {MARK}); failed "
                          f"(dark, {MARK}){decides}.", vector))

    text = _value_text(trials)
    error_panels = grid.panels(lambda c: float(c["error"]), lambda c: text(c["error"]))
    norm, cmap, scale = value_scale(trials, [p.values for p in error_panels])
    # an accuracy is no error: the title names the score itself
    title = ("Median final " if layout.seeds > 1 else "Final ") + (
        metric if scored(trials) else "error")
    named = title if scored(trials) else f"{title} ({metric})"
    fig = grid.figure(error_panels, title=f"{named} {over}", norm=norm,
                      cmap=cmap, colorbar=f"final {metric} ({scale})")
    pictures.append(_save(fig, out, "heatmap_final_error", named,
                          f"{title} ({median}{metric} at the last epoch"
                          f"{' ' + split if split else ''}, {_colour_words(scale)}) "
                          f"{over}{per}; "
                          f"{_median_rule(layout.seeds, f'final {metric}')}; "
                          f"grey cells marked {MARK} diverged.{mixed}", vector))

    if layout.seeds > 1:
        share_panels = grid.panels(lambda c: float(c["converged_share"]),
                                   lambda c: f"{c['converged_share']:.0%}")
        fig = grid.figure(share_panels, title=f"Share of seeds that converged {over}",
                          norm=Normalize(0.0, 1.0), cmap="Greens",
                          colorbar=f"share of seeds with {reached}")
        pictures.append(_save(fig, out, "heatmap_converged_share", "Share of seeds converged",
                              f"Share of the {layout.seeds} seeds whose final {metric} reached "
                              f"{reached}, {over}{per}.", vector))
        epoch_panels = grid.panels(lambda c: float(c["converged_epoch"]),
                                   lambda c: _compact(c["converged_epoch"])
                                   if np.isfinite(c["converged_epoch"]) else "never")
        fig = grid.figure(epoch_panels, title=f"Median epoch of convergence {over}",
                          norm=_log_norm([p.values for p in epoch_panels]), cmap="magma_r",
                          colorbar="epoch of convergence (log scale)")
        pictures.append(_save(fig, out, "heatmap_converged_epoch", "Median epoch of convergence",
                              "Median epoch at which the converged seeds first reached the "
                              f"tolerance (log colour scale; 'never': no seed did), {over}{per}.",
                              vector))

    per_weight = bool(cells["change_rate"].notna().any())
    column = "change_rate" if per_weight else "direction_changes"
    steps = per_steps(float(cells[column].max())) if per_weight else 1
    change_panels = grid.panels(lambda c: float(c[column]) * steps,
                                lambda c: _rate_text(c[column] * steps) if per_weight
                                else _compact(c[column]))
    change_norm = _rate_norm([p.values for p in change_panels])
    unit = f"per weight per {_steps_text(steps)}" if per_weight else "all weights"
    scale = " (log scale)" if isinstance(change_norm, LogNorm) else ""
    fig = grid.figure(change_panels, title=f"Weight-update direction changes {unit} {over}",
                      norm=change_norm, cmap="rocket_r",
                      colorbar=f"direction changes {unit}{scale}")
    rule = (_median_rule(layout.seeds, "direction changes divided by its weights and by its "
                         "update steps, epochs x steps per epoch", diverged_infinite=False)
            if per_weight else _median_rule(layout.seeds, "direction changes summed over "
                                            "every weight", diverged_infinite=False))
    pictures.append(_save(fig, out, "heatmap_direction_changes", "Direction changes",
                          f"How often a weight's update changed sign, {unit}, {over}{per}; "
                          f"{rule}; a diverged trial counts up to its divergence.", vector))
    return pictures


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


def gap_meaning(metric: str) -> str:
    """What the gap's sign says, in words for a learner."""
    if metric in HIGHER_IS_BETTER:
        return ("negative (red): the network scores lower on the rows it never saw than on "
                "the rows it trained on, the mark of overfitting when it widens; positive "
                "(blue): it scores higher on them")
    return ("positive (red): the network does worse on the rows it never saw than on the rows "
            "it trained on, the mark of overfitting when it widens; negative (blue): it does "
            "better on them (the training error is measured during each epoch, before the "
            "epoch's updates, so a network still learning can do this)")


def validation_heatmaps(trials: pd.DataFrame, layout: Layout, out: Path, *,
                        vector: bool = True, history: pd.DataFrame | None = None
                        ) -> list[Picture]:
    """With held-out rows: the final validation error over (x, y), and the generalization
    gap (validation minus training) on a diverging scale centred on 0, red where the held-out
    rows fare worse. Nothing without them. `history`, the training rows: the training metric of
    trials that select the held-out rows."""
    if layout.x is None or trials.empty or not has_validation(trials):
        return []
    cells = validation_cells(trials, layout, history)
    grid = _Grid(cells, trials, layout)
    metric = "/".join(ordered_values("metric", trials["metric"]))
    over = f"over {layout.x}" + (f" and {layout.y}" if layout.y else "")
    per = f", one panel per {', '.join(layout.facet)}" if layout.facet else ""
    title = "Median final validation error" if layout.seeds > 1 else "Final validation error"

    text = _value_text(trials)
    held_panels = grid.panels(lambda c: float(c["error"]), lambda c: text(c["error"]))
    norm, cmap, scale = value_scale(trials, [p.values for p in held_panels])
    fig = grid.figure(held_panels, title=f"{title} ({metric}) {over}", norm=norm, cmap=cmap,
                      colorbar=f"final validation {metric} ({scale})")
    pictures = [_save(fig, out, "heatmap_validation_error", f"{title} ({metric})",
                      f"{title}: the {metric} on the held-out validation rows, which the "
                      "network never trains on, at the last recorded epoch "
                      f"({_colour_words(scale)}) {over}{per}; "
                      f"{_median_rule(layout.seeds, f'final validation {metric}')}"
                      f"; grey cells marked {MARK} diverged. {_other_heatmap(trials)}",
                      vector)]

    gap_panels = grid.panels(lambda c: float(c["gap"]), lambda c: _gap_text(c["gap"]))
    gaps = np.concatenate([p.values[np.isfinite(p.values)] for p in gap_panels])  # (cells,)
    reach = float(np.max(np.abs(gaps))) if gaps.size else 0.0
    norm = CenteredNorm(0.0, reach if reach > 0 else 1.0)
    fig = grid.figure(gap_panels, title=f"Generalization gap: validation minus training "
                      f"{metric} {over}", norm=norm, cmap="RdBu" if scored(trials) else "RdBu_r",
                      colorbar=f"final {metric}: validation minus training")
    rule = _median_rule(layout.seeds, f"gaps (its final validation {metric} minus its final "
                        f"training {metric})", diverged_infinite=False)
    diverged = f"; grey cells marked {MARK} diverged" + (
        " (at least half of their seeds)" if layout.seeds > 1 else "")
    pictures.append(_save(fig, out, "heatmap_generalization_gap", "Generalization gap",
                          f"How the network does on the held-out rows against the rows it "
                          f"trained on: final validation {metric} minus final training "
                          f"{metric}, {over}{per}; {rule}, over the seeds that did not "
                          f"diverge. White: no gap; {gap_meaning(metric)}; the colour scale "
                          f"is linear and centred on 0{diverged}.", vector))
    return pictures


def _other_heatmap(trials: pd.DataFrame) -> str:
    """What the final error's heatmap shows beside the held-out one, in a caption."""
    if selected_split(trials):
        return ("The heatmap of the final error shows the metric that decides, the same "
                "numbers where the held-out rows decide (select = validation); the gap's "
                "heatmap compares them with the training rows.")
    return ("The heatmap of the final error shows the same cells on the training rows; each "
            "has its own colour scale, so compare the numbers.")


def _gap_text(value: float) -> str:
    return f"{value:+.2g}" if value == 0 or abs(value) >= 1e-4 else f"{value:+.0e}"


# --- final error along one axis -----------------------------------------------------------

def final_error_line(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout, out: Path,
                     *, vector: bool = True, validation: pd.DataFrame | None = None,
                     judged: pd.Series | None = None) -> list[Picture]:
    """A one-axis sweep: the median seed's final error against the axis, its seeds' range as a
    band; a heatmap of one row says less than a line. With held-out rows, the training rows'
    line is solid and the held-out rows' dashed, as on the learning curves; the band is the
    seeds' range of the metric that decides. Errors on a log axis, a score on a linear one."""
    if layout.x is None or layout.y is not None or layout.facet or trials.empty:
        return []
    cells = cell_frame(trials, history, layout, validation=validation, judged=judged)
    values = ordered_values(layout.x, trials[layout.x])
    cells = cells.set_index(layout.x).reindex(values)
    held = (validation_cells(trials, layout, history).set_index(layout.x).reindex(values)
            if has_validation(trials) else None)
    numeric = pd.api.types.is_numeric_dtype(trials[layout.x]) and layout.x != "hidden"
    positions = np.array(values if numeric else range(len(values)), dtype=float)  # (n,)
    logx = bool(numeric and positions.min() > 0 and positions.max() >= 8 * positions.min())
    log = not scored(trials)
    median = (cells["error"] if held is None else held["train_error"]).to_numpy(
        dtype=float)  # (n,) the training rows'
    held_median = held["error"].to_numpy(dtype=float) if held is not None \
        else np.full(len(values), np.nan)  # (n,) the held-out rows'
    low = cells["error_low"].to_numpy(dtype=float)  # (n,)
    high = cells["error_high"].to_numpy(dtype=float)  # (n,)
    metric = "/".join(ordered_values("metric", trials["metric"]))
    fig = _figure((6.4, 4.0))
    ax = fig.subplots()
    colour = plt_colour(0.35)
    lines = np.concatenate([median, held_median])  # (2n,)
    finite = np.isfinite(median) & (median > 0 if log else True)  # (n,)
    held_finite = np.isfinite(held_median) & (held_median > 0 if log else True)  # (n,)
    shown = np.concatenate([lines[np.isfinite(lines) & (lines > 0 if log else True)],
                            low[np.isfinite(low) & (low > 0 if log else True)]])  # (k,)
    floor = float(shown.min()) if shown.size else (1.0 if log else 0.0)
    top = float(np.concatenate([shown, high[np.isfinite(high)]]).max()) if shown.size \
        else 1.0
    if layout.seeds > 1:
        band = np.isfinite(low) & np.isfinite(high)  # (n,)
        ax.fill_between(positions[band], np.maximum(low[band], floor), high[band],
                        color=colour, alpha=0.22, linewidth=0)
    ax.plot(positions[finite], median[finite], color=colour, marker="o", markersize=4)
    if held is not None:
        ax.plot(positions[held_finite], held_median[held_finite], color=colour,
                linestyle="--", marker="s", markersize=4, markerfacecolor="white")
    zero = np.isfinite(median) & (median == 0) & log  # (n,)
    ax.scatter(positions[zero], np.full(zero.sum(), floor), marker="v", color=colour, zorder=5)
    diverged = cells["diverged"].to_numpy(dtype=float) > 0  # (n,)
    ax.scatter(positions[diverged], np.full(diverged.sum(), top), marker="x", color="black",
               zorder=5, clip_on=False)
    for x, n, seeds in zip(positions[diverged], cells["diverged"][diverged],
                           cells["seeds"][diverged], strict=True):
        ax.annotate(f"{int(n)}/{int(seeds)}", (x, top), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(floor / 1.3, top * 1.6)
        _set_log_ticks(ax.yaxis, floor / 1.3, top * 1.6)
    else:
        pad = max(0.05 * (top - floor), 0.01)
        ax.set_ylim(floor - pad, top + pad)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        if len(values) <= MAX_SWEPT_TICKS:  # the swept values themselves
            ax.set_xticks(positions, [value_label(layout.x, v) for v in values])
        else:
            _set_log_ticks(ax.xaxis, float(positions.min()), float(positions.max()))
    else:
        ax.set_xticks(positions, [value_label(layout.x, v) for v in values])
    ax.set_xlabel(axis_title(layout.x) + (" (log scale)" if logx else ""))
    ax.set_ylabel(f"final {metric} (log scale)" if log else f"final {metric} (higher is better)")
    ax.grid(True, which="major", alpha=0.3)
    if held is not None:
        ax.legend(handles=_split_handles(), fontsize=8, frameon=False)
    fig.suptitle(f"Final error ({metric}) against {layout.x}"
                 + (", training and validation" if held is not None else ""), fontsize=12)
    band_text = (f"; band: least to largest final error of the {layout.seeds} seeds that did "
                 "not diverge") if layout.seeds > 1 else ""
    if band_text and held is not None:
        band_text += f" ({selected_split(trials) or 'on the training rows'})"
    marks = (f"; {MARK} at the top: cells where seeds diverged (how many of how many)"
             if diverged.any() else "") + ("; ▼ at the floor: a median error of exactly 0"
                                            if zero.any() else "")
    scale = "log scale" if log else "linear scale; higher is better"
    lined = ("; solid: on the training rows; dashed, open squares: on the held-out "
             "validation rows, which the network never trains on" if held is not None else "")
    return [_save(fig, out, "final_error", "Final error along the sweep",
                  f"Final {metric} ({scale}) against {layout.x}: the line joins the cells' "
                  f"median final error; {_median_rule(layout.seeds, f'final {metric}')}"
                  f"{lined}{band_text}{marks}.", vector)]


def plt_colour(position: float) -> tuple[float, float, float]:
    """A colour from the curves' palette, `position` in [0, 1]."""
    rgba = colour_map(CURVE_PALETTE)(position * CURVE_PALETTE_END)
    return float(rgba[0]), float(rgba[1]), float(rgba[2])


# --- learning curves ----------------------------------------------------------------------

def thin_history(history: pd.DataFrame, points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """At most about `points` log-spaced epochs per trial, always keeping the first and last."""
    codes, _ = pd.factorize(history["trial"])  # (rows,) integers: no text compared per row
    order = _by_trial_and_epoch(codes, history["epoch"].to_numpy())  # (rows,)
    kept = order[log_spaced(codes[order], points)]  # (kept,)
    return history.iloc[kept]


def trial_rows(trials: pd.DataFrame, history: pd.DataFrame) -> NDArray[np.intp]:
    """Each history row's trial as its row in the trials table, -1 for a trial not there: the
    history's ids factorized (fast on Arrow text), then looked up once per distinct trial
    rather than once per row."""
    codes, ids = pd.factorize(history["trial"])  # (rows,) -1 for a missing id
    found = pd.Index(trials["trial"]).get_indexer(ids)  # (distinct,)
    rows: NDArray[np.intp] = np.append(found, -1)[codes]
    return rows


def _by_trial_and_epoch(codes: NDArray[np.intp], epoch: NDArray[Any]) -> NDArray[np.intp]:
    """Row positions with each trial's rows together, epochs rising: as they are (the order a
    table is written in) when they already are, else sorted by trial code, then epoch."""
    order: NDArray[np.intp] = np.arange(len(codes))  # (rows,)
    same = codes[1:] == codes[:-1]  # (rows - 1,)
    runs = len(codes) - int(same.sum())  # the number of blocks of one trial
    distinct = int(np.count_nonzero(np.bincount(codes))) if len(codes) else 0
    if runs == distinct and bool(np.all(epoch[1:][same] > epoch[:-1][same])):
        return order
    return np.lexsort((epoch, codes))


def log_spaced(codes: NDArray[np.intp], points: int) -> NDArray[np.bool_]:
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
    first (thin_history); the rest works on integer codes and sorted arrays, so the cost
    after one look-up of each row's trial is a sort of the kept rows.
    """
    keys = list(keys)
    at = trial_rows(trials, history)  # (rows,) -1: unknown
    present = np.zeros(len(trials), dtype=bool)  # (trials,) with a history
    present[at[at >= 0]] = True
    drawn = trials[present]
    curve = (drawn.groupby(keys, sort=False, dropna=False).ngroup() if keys
             else pd.Series(0, index=drawn.index))
    seeds = curve.value_counts()  # trials per curve
    curve_of = np.full(len(trials), -1, dtype=np.int64)  # (trials,)
    curve_of[present] = curve.to_numpy(dtype=np.int64)
    rows = np.flatnonzero(at >= 0)  # (rows,) of known trials
    trial = at[rows]
    rows = rows[_by_trial_and_epoch(trial, history["epoch"].to_numpy()[rows])]
    rows = rows[log_spaced(at[rows], points)]  # (kept,)
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0  # a score sorts worst last negated
    value = sign * history[metric].to_numpy(dtype=float, na_value=np.nan)[rows]  # (kept,)
    value = np.where(np.isfinite(value), value, np.inf)
    line = curve_of[at[rows]]  # (kept,)
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
    fig = _figure((3.4 * columns + 2.2, 2.8 * rows + 1.1))
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
        _set_log_ticks(first_ax.yaxis, floor / 1.35, ceiling * 1.35)
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
        handles += _split_handles()
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
        return [_save(fig, out, "learning_curves", "Learning curves",
                      _split_caption(metric, first_epoch, lines, multiples, spread, zero_text)
                      + mixed, vector)]
    scale = (f"error ({metric}, log scale; the axis starts at the smallest positive error "
             "shown, nothing is clipped)" if log else f"{metric} (linear scale, higher is better)")
    return [_save(fig, out, "learning_curves", "Learning curves",
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


def _split_handles() -> list[Artist]:
    """Legend entries telling the training curves from the held-out ones."""
    return [Line2D([], [], color="0.3", linewidth=1.4, marker="o", markerfacecolor="white",
                   label="training rows (solid)"),
            Line2D([], [], color="0.3", linewidth=1.4, linestyle="--", marker="s",
                   markerfacecolor="white", label="held-out validation rows\n(dashed)")]


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


# --- direction changes of one trial -------------------------------------------------------

def default_trial(trials: pd.DataFrame, directions: pd.DataFrame) -> str | None:
    """The best trial (tables.ranked: the lowest final error, the highest accuracy), else the
    first with direction counts."""
    drawn = trials[trials["trial"].isin(directions["trial"].unique())]
    if drawn.empty:
        return None
    finite = ranked(drawn)
    if not finite.empty:
        return str(finite["trial"].iloc[0])
    return str(drawn["trial"].iloc[0])


def resolve_trial(trials: pd.DataFrame, trial: str) -> str:
    matches = [str(t) for t in trials["trial"] if str(t).startswith(trial)]
    if len(matches) != 1:
        raise UnknownTrial(trial, len(matches))
    return matches[0]


def weight_directions(
    trials: pd.DataFrame, directions: pd.DataFrame, trial: str, out: Path, *,
    steps: float | None = None, vector: bool = True,
) -> list[Picture]:
    """Per-weight direction changes of one trial, per update step, one small heatmap per layer
    (iamtrask's printed matrices), stacked from the input side. Without `steps` (the trial's
    update steps) the raw counts are drawn."""
    counts = directions[directions["trial"] == trial]
    if counts.empty:
        return []
    row = trials[trials["trial"] == trial].iloc[0]
    per_step = steps is not None and np.isfinite(steps) and steps > 0
    divisor = float(steps) if per_step and steps is not None else 1.0
    layers = sorted(int(layer) for layer in counts["layer"].unique())
    matrices = []
    for layer in layers:
        cells = counts[counts["layer"] == layer]
        matrix = cells.pivot(index="row", columns="col", values="changes").sort_index()
        matrices.append(matrix.sort_index(axis=1).to_numpy(dtype=float) / divisor)  # (in, out)
    scale = per_steps(max(float(m.max()) for m in matrices)) if per_step else 1
    matrices = [m * scale for m in matrices]  # changes per `scale` update steps
    shown = [m.T if m.shape[0] > m.shape[1] and m.shape[0] > 12 else m for m in matrices]
    widest = max(m.shape[1] for m in shown)
    width = min(max(0.5 * widest + 2.5, 7.0), 16.0)
    heights = [min(max(0.42 * m.shape[0], 0.6), 6.0) + 0.9 for m in shown]
    fig = _figure((width, sum(heights) + 1.0))
    axes = fig.subplots(len(shown), 1, squeeze=False, height_ratios=heights)[:, 0]
    # From the fewest changes to the most, so that differences between weights show.
    low, high = min(float(m.min()) for m in matrices), max(float(m.max()) for m in matrices)
    norm = Normalize(low, high if high > low else low + (1e-3 if per_step else 1.0))
    fmt = ".2g" if per_step else ".0f"
    for layer, matrix, ax in zip(layers, shown, axes, strict=True):
        flipped = matrix is not matrices[layers.index(layer)]
        annotate = matrix.size <= MAX_ANNOTATED_WEIGHTS
        labels = np.vectorize(lambda v: format(v, fmt))(matrix) if annotate \
            else np.full(matrix.shape, "")  # (rows, cols)
        _matrix(ax, matrix, norm, "rocket_r", labels, 7 if per_step else 8,
                lines=0.4 if annotate else 0.0)
        _index_ticks(ax.xaxis, matrix.shape[1], 40)
        _index_ticks(ax.yaxis, matrix.shape[0], 20)
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
    unit = f"per {_steps_text(scale)}" if per_step else "(count)"
    fig.colorbar(ScalarMappable(norm=norm, cmap=colour_map("rocket_r")), ax=list(axes),
                 label=f"direction changes {unit}")
    settings = ", ".join(f"{c} = {value_label(c, row[c])}"
                         for c in ("hidden", "activation", "alpha", "descent", "seed"))
    fig.suptitle(f"Direction changes per weight, trial {trial}\n"
                 + textwrap.fill(settings.replace(" = ", "\u00a0=\u00a0"),  # break at commas
                                 width=int(width * 9)), fontsize=11)
    per_scale = f" (shown per {_steps_text(scale)})" if scale > 1 else ""
    over = f" divided by its {divisor:g} update steps{per_scale}" if per_step else ""
    return [_save(fig, out, "weight_directions", "Direction changes per weight",
                  f"How often each weight's update changed sign in trial {trial}{over} "
                  f"({settings}; status {row['status']}), one map per weight matrix from the "
                  "input side.", vector)]


# --- an edge search -------------------------------------------------------------------------

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
    fig = _figure((6.4, 4.4))
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
        _set_log_ticks(along, float(values.min()), float(values.max()))
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
    return [_save(fig, out, "edge", "The stability edge against width",
                  f"{what} (the geometric "
                  "mean of the last values probed either side, the bar spanning them) against "
                  f"the hidden layer's width, log-log; dashed: the power law fitted by least "
                  f"squares, {'its exponent' if len(fits) == 1 else 'the exponents:'} "
                  f"{'; '.join(fits)}{lacking}.", vector)]


# --- a halving search ----------------------------------------------------------------------

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
    fig = _figure((4.2 * columns + 0.6, 3.2 * rows + 0.9))
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
        _set_log_ticks(ax.xaxis, 1.0, float(maximum))
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
    return [_save(fig, out, RUNGS_FIGURE, "The search's rungs",
                  f"Each trial's {split} {metric} against its epochs (log scale), one panel per "
                  "bracket; grey: the trials a rung stopped, in colour: those trained to the "
                  f"last epoch ({maximum}); dotted: the rungs, each with the trials that "
                  f"reached it. At each rung only the best 1/{eta} of those there went on, "
                  "from where they stood.",
                  vector)]


# --- a sampled search ----------------------------------------------------------------------

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
        _set_log_ticks(axis, float(places.min()), float(places.max()))
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
    norm = _log_norm([errors]) if log_colours else Normalize(
        float(shown.min()), float(shown.max()) if shown.max() > shown.min() else shown.min() + 1)
    cmap = "viridis" if higher else "viridis_r"  # the better, the brighter, whichever way
    best = np.flatnonzero(finite)[:BEST_MARKED]  # (marked,) the points come best first
    scales = {c: drawn_scale(c, points[c]) for c in axes}
    places = {c: _places(c, points[c], scales[c]) for c in axes}
    side = max(1, len(axes) - 1)
    fig = _figure((max(5.6, 2.7 * side + 1.8), max(4.2, 2.5 * side + 1.0)))
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
                    _set_log_ticks(ax.yaxis, float(shown.min()), float(shown.max()))
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
        _set_log_ticks(bar.ax.yaxis, float(norm.vmin or 1.0), float(norm.vmax or 1.0))
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
    return [_save(fig, out, SEARCH_FIGURE, "The points the search drew",
                  f"Each dot is one of the {len(points)} points the {method} search drew (seed "
                  f"{seed}), placed by its {and_list(axes)} {where}, and coloured by its "
                  f"final {metric}{median}: the brighter, the better. Ringed and numbered: the "
                  f"{len(best)} best."
                  + (f" On a log scale, as the points spread evenly there: {', '.join(logs)}."
                     if logs else "")
                  + (f" {'; '.join(lost).capitalize()}." if lost else ""), vector)]


# --- all of it ----------------------------------------------------------------------------

def draw_all(
    frames: dict[str, pd.DataFrame], layout: Layout, out: Path, trial: str | None = None, *,
    vector: bool = True, rows: int | None = None, validation: pd.DataFrame | None = None,
    grid: bool = True, judged: pd.Series | None = None,
) -> list[Picture]:
    """Every figure of a results folder's tables, written under `out`: PNG, and SVG beside it
    with `vector`. `rows`, the dataset's rows, is told by the tables when not given.
    `frames["history"]` holds the training rows; `validation`, the held-out rows, if any.
    `grid` False: the trials are a sampled search's scattered points, which lay out no cells
    (search_figure draws them): no heatmaps and no line over one axis. `judged`: the trials'
    outcomes (trial_outcomes), when the caller has them."""
    out.mkdir(parents=True, exist_ok=True)
    trials, history, directions = frames["trials"], frames["history"], frames["directions"]
    chosen = resolve_trial(trials, trial) if trial else default_trial(trials, directions)
    rows = rows if rows is not None else dataset_rows(history, directions)
    pictures = []
    if grid:
        pictures = heatmaps(trials, history, layout, out, directions=directions, rows=rows,
                            vector=vector, validation=validation, judged=judged)
        pictures = _after(pictures, "heatmap_final_error",
                          validation_heatmaps(trials, layout, out, vector=vector,
                                              history=history))
        pictures += final_error_line(trials, history, layout, out, vector=vector,
                                     validation=validation, judged=judged)
    pictures += learning_curves(trials, history, layout, out, vector=vector,
                                validation=validation)
    if chosen is not None:
        pictures += weight_directions(trials, directions, chosen, out,
                                      steps=float(update_steps(
                                          trials[trials["trial"] == chosen], rows)[0]),
                                      vector=vector)
    return pictures


def _after(pictures: list[Picture], name: str, more: list[Picture]) -> list[Picture]:
    """`more` placed right after the picture called `name` (at the end without it)."""
    at = next((n + 1 for n, p in enumerate(pictures) if p.name == name), len(pictures))
    return [*pictures[:at], *more, *pictures[at:]]


def _index_ticks(axis: Any, count: int, most: int) -> None:
    """Unit numbers at cell centres: every one up to `most`, else every k-th."""
    step = 1 if count <= most else -(-count // most)
    positions = np.arange(0, count, step)  # (shown,)
    axis.set_ticks(positions + 0.5, [str(p) for p in positions])


def _figure(size: tuple[float, float]) -> Figure:
    """A figure with its own Agg canvas: text extents come from one cached renderer instead of
    a throwaway render per query; at the PNG's resolution, so that the text laid out for the
    layout is laid out once (matplotlib caches it per resolution) and drawn as measured."""
    fig = Figure(figsize=size, dpi=PNG_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: Path, name: str, title: str, caption: str,
          vector: bool = True) -> Picture:
    """Write the figure as PNG (and SVG with `vector`), laid out once for both."""
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine("none")  # the layout is done: a second file need not redo it
    fig.savefig(png, dpi=PNG_DPI, pil_kwargs={"compress_level": 1})
    if vector:
        with rc_context({"svg.fonttype": "none"}):  # text as text: no path per glyph
            fig.savefig(svg)
    sizes = [label.get_fontsize() for ax in fig.axes for minor in (False, True)
             for label in (*ax.get_xticklabels(minor=minor), *ax.get_yticklabels(minor=minor))
             if label.get_visible() and label.get_text()]
    return Picture(name=name, title=title, caption=caption, png=png, svg=svg,
                   tick_points=float(min(sizes)) if sizes else None)
