"""What every picture of a sweep shares: the layout, labels in reading order, what the
metric means, grids and ticks, colours, and writing a figure.

Figures are built on matplotlib's `Figure` directly (Agg canvas, no pyplot), so nothing
here opens a window or keeps global figure state. Each picture is written as PNG (and
SVG when asked) under a stable name, so a rebuilt report replaces the same files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, LinearSegmentedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
from numpy.typing import NDArray

from nnsweep import outcomes
from nnsweep.errors import NnsweepError
from nnsweep.params import hidden_order
from nnsweep.result import HIGHER_IS_BETTER
from nnsweep.tables import PARAM_COLUMNS

FloatArray = NDArray[np.float64]

MARK = "\u00d7"  # the multiplication sign that marks diverged cells and curve ends
DIVERGED_COLOR = "0.62"
FAILED_COLOR = "0.25"
PNG_DPI = 110  # pixels per inch of the PNG figures
MAX_PANEL_COLUMNS = 4  # panels side by side at most: heatmaps, learning curves, rungs
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


def facet_keys(trials: pd.DataFrame, layout: Layout) -> list[tuple[Any, ...]]:
    """The facet combinations present in the trials, in reading order; [()] without facets."""
    if not layout.facet:
        return [()]
    present = trials[list(layout.facet)].drop_duplicates().itertuples(index=False, name=None)
    orders = {c: ordered_values(c, trials[c]) for c in layout.facet}
    return sorted(present, key=lambda k: tuple(
        orders[c].index(v) for c, v in zip(layout.facet, k, strict=True)))


# --- what the metric means ----------------------------------------------------------------

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


def set_log_ticks(axis: Any, low: float, high: float) -> None:
    axis.set_major_locator(FixedLocator(log_ticks(low, high)))
    axis.set_major_formatter(PLAIN)
    axis.set_minor_formatter(NullFormatter())


# --- colours ------------------------------------------------------------------------------

def colour_map(name: Colormap | str) -> Colormap:
    """A colour map by name: matplotlib's, or "rocket" / "rocket_r" from ROCKET."""
    if isinstance(name, Colormap):
        return name
    if name in ("rocket", "rocket_r"):
        stops = ROCKET if name == "rocket" else ROCKET[::-1]
        return LinearSegmentedColormap.from_list(name, stops, N=256)
    return colormaps[name]


def plt_colour(position: float) -> tuple[float, float, float]:
    """A colour from the curves' palette, `position` in [0, 1]."""
    rgba = colour_map(CURVE_PALETTE)(position * CURVE_PALETTE_END)
    return float(rgba[0]), float(rgba[1]), float(rgba[2])


def log_norm(arrays: Sequence[FloatArray]) -> LogNorm:
    kept = [a[np.isfinite(a) & (a > 0)] for a in arrays]
    values = np.concatenate(kept) if kept else np.empty(0)  # (cells,)
    if values.size == 0:
        return LogNorm(1e-3, 1.0)
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low * 1.0001:
        low, high = low / 2, high * 2
    return LogNorm(low, high)


# --- drawing and writing a figure ---------------------------------------------------------

def draw_matrix(ax: Axes, values: FloatArray, norm: Normalize, cmap: Colormap | str,
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


def split_handles() -> list[Artist]:
    """Legend entries telling the training curves from the held-out ones."""
    return [Line2D([], [], color="0.3", linewidth=1.4, marker="o", markerfacecolor="white",
                   label="training rows (solid)"),
            Line2D([], [], color="0.3", linewidth=1.4, linestyle="--", marker="s",
                   markerfacecolor="white", label="held-out validation rows\n(dashed)")]


def new_figure(size: tuple[float, float]) -> Figure:
    """A figure with its own Agg canvas: text extents come from one cached renderer instead of
    a throwaway render per query; at the PNG's resolution, so that the text laid out for the
    layout is laid out once (matplotlib caches it per resolution) and drawn as measured."""
    fig = Figure(figsize=size, dpi=PNG_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out: Path, name: str, title: str, caption: str,
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
