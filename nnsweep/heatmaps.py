"""Heatmaps of the outcome over two swept parameters, one panel per value of the others,
their held-out counterparts, and a line of final error for a one-axis sweep.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import (
    BoundaryNorm,
    CenteredNorm,
    Colormap,
    ListedColormap,
    LogNorm,
    Normalize,
)
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullLocator
from numpy.typing import NDArray

from nnsweep.cellstats import cell_frame, has_validation, per_steps, steps_text, validation_cells
from nnsweep.figures import (
    DIVERGED_COLOR,
    FAILED_COLOR,
    MARK,
    OUTCOME_LABELS,
    OUTCOMES,
    TITLE_CHARACTERS,
    FloatArray,
    Layout,
    Picture,
    axis_title,
    colour_map,
    draw_matrix,
    facet_keys,
    facet_label,
    goal,
    grid_shape,
    log_norm,
    mixed_metrics,
    new_figure,
    ordered_values,
    plt_colour,
    save,
    scored,
    selected_split,
    set_log_ticks,
    split_handles,
    value_label,
)
from nnsweep.result import HIGHER_IS_BETTER

MAX_SWEPT_TICKS = 10  # a one-axis line labels up to this many swept values themselves


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
        fig = new_figure((width, height))
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
                set_log_ticks(bar.ax.yaxis, float(norm.vmin or 1.0), float(norm.vmax or 1.0))
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
    draw_matrix(ax, panel.values, norm, cmap, np.where(shown, panel.text, ""), size)
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
    return log_norm(arrays), "viridis_r", "log scale"


def _colour_words(scale: str) -> str:
    """value_scale's words as a caption says them: "log colour scale"."""
    kind, _, rest = scale.partition(" scale")
    return f"{kind} colour scale{rest}"


def _rate_norm(arrays: Sequence[FloatArray]) -> Normalize:
    """Log colours for positive rates; linear from 0 when some rate is zero."""
    values = np.concatenate([a[np.isfinite(a)] for a in arrays])  # (cells,)
    if values.size and values.min() > 0:
        return log_norm(arrays)
    top = float(values.max()) if values.size else 1.0
    return Normalize(0.0, top if top > 0 else 1.0)


def _error_text(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.0e}"


def _value_text(trials: pd.DataFrame) -> Callable[[float], str]:
    """How a cell writes its final value: an error in two digits, a score in three (0.975,
    where two would round it up to a perfect-looking 1)."""
    return (lambda value: f"{value:.3g}") if scored(trials) else _error_text


def _rate_text(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-3 or value == 0 else f"{value:.0e}"


def _compact(value: float) -> str:
    """A count in at most four characters: 812, 4.1k, 12k, 1.3M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


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
    pictures.append(save(fig, out, "outcome", "Outcome at a glance",
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
    pictures.append(save(fig, out, "heatmap_final_error", named,
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
        pictures.append(save(fig, out, "heatmap_converged_share", "Share of seeds converged",
                              f"Share of the {layout.seeds} seeds whose final {metric} reached "
                              f"{reached}, {over}{per}.", vector))
        epoch_panels = grid.panels(lambda c: float(c["converged_epoch"]),
                                   lambda c: _compact(c["converged_epoch"])
                                   if np.isfinite(c["converged_epoch"]) else "never")
        fig = grid.figure(epoch_panels, title=f"Median epoch of convergence {over}",
                          norm=log_norm([p.values for p in epoch_panels]), cmap="magma_r",
                          colorbar="epoch of convergence (log scale)")
        pictures.append(save(fig, out, "heatmap_converged_epoch", "Median epoch of convergence",
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
    unit = f"per weight per {steps_text(steps)}" if per_weight else "all weights"
    scale = " (log scale)" if isinstance(change_norm, LogNorm) else ""
    fig = grid.figure(change_panels, title=f"Weight-update direction changes {unit} {over}",
                      norm=change_norm, cmap="rocket_r",
                      colorbar=f"direction changes {unit}{scale}")
    rule = (_median_rule(layout.seeds, "direction changes divided by its weights and by its "
                         "update steps, epochs x steps per epoch", diverged_infinite=False)
            if per_weight else _median_rule(layout.seeds, "direction changes summed over "
                                            "every weight", diverged_infinite=False))
    pictures.append(save(fig, out, "heatmap_direction_changes", "Direction changes",
                          f"How often a weight's update changed sign, {unit}, {over}{per}; "
                          f"{rule}; a diverged trial counts up to its divergence.", vector))
    return pictures


# --- held-out rows ------------------------------------------------------------------------

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
    pictures = [save(fig, out, "heatmap_validation_error", f"{title} ({metric})",
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
    pictures.append(save(fig, out, "heatmap_generalization_gap", "Generalization gap",
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
    fig = new_figure((6.4, 4.0))
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
        set_log_ticks(ax.yaxis, floor / 1.3, top * 1.6)
    else:
        pad = max(0.05 * (top - floor), 0.01)
        ax.set_ylim(floor - pad, top + pad)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        if len(values) <= MAX_SWEPT_TICKS:  # the swept values themselves
            ax.set_xticks(positions, [value_label(layout.x, v) for v in values])
        else:
            set_log_ticks(ax.xaxis, float(positions.min()), float(positions.max()))
    else:
        ax.set_xticks(positions, [value_label(layout.x, v) for v in values])
    ax.set_xlabel(axis_title(layout.x) + (" (log scale)" if logx else ""))
    ax.set_ylabel(f"final {metric} (log scale)" if log else f"final {metric} (higher is better)")
    ax.grid(True, which="major", alpha=0.3)
    if held is not None:
        ax.legend(handles=split_handles(), fontsize=8, frameon=False)
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
    return [save(fig, out, "final_error", "Final error along the sweep",
                  f"Final {metric} ({scale}) against {layout.x}: the line joins the cells' "
                  f"median final error; {_median_rule(layout.seeds, f'final {metric}')}"
                  f"{lined}{band_text}{marks}.", vector)]
