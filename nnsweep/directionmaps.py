"""The direction-change maps of one trial: how often each weight's update changed sign,
one small heatmap per weight matrix (iamtrask's printed matrices).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from nnsweep.cellstats import per_steps, steps_text
from nnsweep.errors import UnknownTrial
from nnsweep.figures import Picture, colour_map, draw_matrix, new_figure, save, value_label
from nnsweep.tables import ranked

MAX_ANNOTATED_WEIGHTS = 160  # per layer: more cells than this are drawn without numbers


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
    fig = new_figure((width, sum(heights) + 1.0))
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
        draw_matrix(ax, matrix, norm, "rocket_r", labels, 7 if per_step else 8,
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
    unit = f"per {steps_text(scale)}" if per_step else "(count)"
    fig.colorbar(ScalarMappable(norm=norm, cmap=colour_map("rocket_r")), ax=list(axes),
                 label=f"direction changes {unit}")
    settings = ", ".join(f"{c} = {value_label(c, row[c])}"
                         for c in ("hidden", "activation", "alpha", "descent", "seed"))
    fig.suptitle(f"Direction changes per weight, trial {trial}\n"
                 + textwrap.fill(settings.replace(" = ", "\u00a0=\u00a0"),  # break at commas
                                 width=int(width * 9)), fontsize=11)
    per_scale = f" (shown per {steps_text(scale)})" if scale > 1 else ""
    over = f" divided by its {divisor:g} update steps{per_scale}" if per_step else ""
    return [save(fig, out, "weight_directions", "Direction changes per weight",
                  f"How often each weight's update changed sign in trial {trial}{over} "
                  f"({settings}; status {row['status']}), one map per weight matrix from the "
                  "input side.", vector)]


def _index_ticks(axis: Any, count: int, most: int) -> None:
    """Unit numbers at cell centres: every one up to `most`, else every k-th."""
    step = 1 if count <= most else -(-count // most)
    positions = np.arange(0, count, step)  # (shown,)
    axis.set_ticks(positions + 0.5, [str(p) for p in positions])
