"""Pictures of a sweep, drawn from its saved tables only: every figure of a results folder.

Each kind of picture has a module of its own: heatmaps.py (the outcome, the final error,
the held-out rows, a one-axis line), learningcurves.py, directionmaps.py (one trial's
weights) and searchplots.py (a search's own figure, which the report draws itself);
figures.py holds what they share and cellstats.py the numbers of a heatmap's cells.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nnsweep.cellstats import dataset_rows, update_steps
from nnsweep.directionmaps import default_trial, resolve_trial, weight_directions
from nnsweep.figures import Layout, Picture
from nnsweep.heatmaps import final_error_line, heatmaps, validation_heatmaps
from nnsweep.learningcurves import learning_curves


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
