"""A results folder's report: plots/ plus one self-contained report.html and a report.md.

Built from the saved tables only, so `python -m nnsweep report DIR` rebuilds it without
training. The page answers first (the best cell, where the sweep converges and where it
diverges), then shows the evidence: the outcome table, an explorer, the figures, and last the
failures, the spec and the manifest. It embeds its images as data URIs, its explorer's data
as inline JSON and its script inline, and loads nothing else: it opens from disk, offline, and
can be mailed as one file.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import struct
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from nnsweep import (
    cellstats,
    directionmaps,
    figures,
    leanhistory,
    learningcurves,
    pages,
    plots,
    searchplots,
    store,
    tables,
)
from nnsweep.errors import ResultsError
from nnsweep.figures import Layout, Picture
from nnsweep.halving import Halving
from nnsweep.result import HIGHER_IS_BETTER, STATUSES
from nnsweep.store import write_atomic

TABLE_NAMES: tuple[str, ...] = ("trials", "history", "directions", "summary")
BEST_TRIALS = 10
# The outcome columns of the best trials' table, after the trial and its varying parameters.
BEST_TRIAL_OUTCOMES = ("status", "final_error", "best_error", "converged_epoch",
                       "direction_changes")
# ... and after them, when the data holds rows out: the trial's errors on those rows.
BEST_TRIAL_VALIDATION = ("final_validation_error", "best_validation_error",
                         "best_validation_epoch")
# The explorer's curves: at most CURVE_POINTS log-spaced epochs per cell, and fewer when the
# grid is big, so that all cells together hold at most about CURVE_BUDGET points: the page
# grows with the cells, never with the trials or the epochs.
CURVE_POINTS = 100
CURVE_BUDGET = 50_000
MIN_CURVE_POINTS = 16
# The smallest tick text, in CSS pixels, a figure may be shown at; a figure that would shrink
# below it keeps its width and scrolls sideways instead.
LEGIBLE_PX = 9.0
SCRIPT = "explore.js"  # shipped beside this module (package data), inlined into the page


def read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    """The four saved tables in their schemas (rebuilt in memory from the journal when torn)."""
    return _tables_of(_results(directory))


def _results(directory: Path) -> store.Results:
    store.check_name(directory)
    if not store.is_results_folder(directory):
        raise ResultsError(f"{directory}: no trials.parquet, so there is nothing to report; "
                           "run a sweep there first: python -m nnsweep run SPEC")
    return store.load_results(directory, lean_history=True)


def _tables_of(results: store.Results) -> dict[str, pd.DataFrame]:
    """The tables the figures and the page draw: the history's training rows only (the
    held-out rows go beside them, held_out_history, and judge the outcomes of the trials that
    select them)."""
    frames = {name: getattr(results, name) for name in TABLE_NAMES}
    history = frames["history"]
    if (history["split"] != "train").any():  # else no copy: W4900's is 240 MB
        frames["history"] = tables.training(history)
    return frames


def held_out_history(history: pd.DataFrame) -> pd.DataFrame | None:
    """The history's rows on the held-out data; None when the data held none out."""
    held = history[history["split"] == "validation"]
    return held.reset_index(drop=True) if len(held) else None


@dataclass(frozen=True)
class Contents:
    """Everything the page shows, gathered once and rendered as HTML and as Markdown."""

    title: str
    description: str
    facts: list[str]
    spec: str
    counts: pd.DataFrame
    glance: pd.DataFrame
    glance_note: str
    best: pd.DataFrame
    failed: pd.DataFrame
    pictures: list[Picture]
    versions: pd.DataFrame
    times: pd.DataFrame
    manifest: dict[str, Any]
    key: str = ""  # pages.page_key of what the page shows
    answer: list[str] = field(default_factory=list)  # the answer's sentences
    explore: dict[str, Any] | None = None  # the explorer's data; None: nothing to explore
    invocations: pd.DataFrame = field(default_factory=pd.DataFrame)
    sweep_time: str = ""  # the sweep's times over every invocation, as one sentence
    search: SearchPart | None = None  # a sampled search's section; None for other sweeps


def build_report(directory: Path, *, x: str | None = None, y: str | None = None,
                 facet: str | None = None, trial: str | None = None, svg: bool = False) -> Path:
    """Read the saved tables of a results folder, write plots/ (PNG; SVG beside it with `svg`)
    and report.html/report.md; return the report.html path."""
    directory = Path(directory)
    results = _results(directory)
    if results.running is not None:
        raise ResultsError(f"{directory}: a run is using this folder; its report is written "
                           "when it finishes (show reads a running sweep)")
    frames, manifest = _tables_of(results), results.manifest
    held = held_out_history(results.history)
    layout = choose_layout(frames["trials"], manifest, x=x, y=y, facet=facet)
    chosen = directionmaps.resolve_trial(frames["trials"], trial) if trial else None
    out = directory / "plots"
    _remove_old_pictures(out)
    searched = searched_points(manifest, frames["trials"])
    leanhistory.give_back_memory()  # what reading the tables freed
    judged = cellstats.trial_outcomes(frames["trials"], frames["history"], held)  # once, for all
    leanhistory.give_back_memory()
    pictures = plots.draw_all(frames, layout, out, chosen, vector=svg, validation=held,
                              grid=searched is None, judged=judged,
                              rows=told_rows(manifest, "rows"))
    if searched is not None:
        pictures = searchplots.search_figure(searched.points, searched.search.axes, out,
                                             method=searched.search.method,
                                             seed=searched.search.seed, vector=svg) + pictures
    if results.edges is not None:
        pictures += searchplots.edge_figure(results.edges, out, vector=svg)
    halving = store.halving_search(manifest)
    if halving is not None:
        ranked_rows = held if held is not None and figures.selected_split(frames["trials"]) \
            else frames["history"]
        pictures = searchplots.rungs_figure(
            frames["trials"], ranked_rows, out, method=halving.method, eta=halving.eta,
            rungs=[halving.rungs(b) for b in range(halving.brackets)], vector=svg) + pictures
    contents = gather(directory, frames, manifest, layout, pictures, expected=results.expected,
                      validation=held, search=searched, judged=judged)
    contents = replace(contents, key=pages.page_key(manifest, x=x, y=y, facet=facet,
                                                    trial=trial, svg=svg))
    write_atomic(directory / "report.md", render_markdown(contents).encode("utf-8"))
    page = directory / "report.html"
    write_atomic(page, render_html(contents).encode("utf-8"))
    return page


def choose_layout(trials: pd.DataFrame, manifest: dict[str, Any], *, x: str | None = None,
                  y: str | None = None, facet: str | None = None) -> Layout:
    """Arguments first, then the sweep file's [report] table, then figures.choose_layout's
    defaults."""
    saved = manifest.get("report") or {}
    return figures.choose_layout(
        trials,
        x=x if x is not None else saved.get("x"),
        y=y if y is not None else saved.get("y"),
        facet=facet if facet is not None else saved.get("facet"),
    )


def _remove_old_pictures(out: Path) -> None:
    """plots/ holds this module's output only; a figure the new report lacks must not linger."""
    if out.is_dir():
        for path in [*out.glob("*.png"), *out.glob("*.svg")]:
            path.unlink()


# --- what the page holds ------------------------------------------------------------------

def gather(directory: Path, frames: dict[str, pd.DataFrame], manifest: dict[str, Any],
           layout: Layout, pictures: list[Picture], expected: int | None = None, *,
           validation: pd.DataFrame | None = None, search: Searched | None = None,
           judged: pd.Series | None = None) -> Contents:
    """Everything the page shows, computed once from the tables, so that the HTML and the
    Markdown say the same; `expected`: the sweep's trials, when a run stopped early;
    `validation`: the history's held-out rows, if any (frames["history"] holds the training
    rows); `search`: a sampled search's points, whose scattered values lay out no cells;
    `judged`: each trial's outcome (cellstats.trial_outcomes), when the caller has it."""
    trials, history = frames["trials"], frames["history"]
    spec_path = directory / "spec.toml"
    spec = _saved_text(spec_path)
    dataset = manifest.get("dataset")
    facts = [f"{len(trials)} trials in {directory}"]
    if expected is not None and len(trials) < expected:
        facts[0] = (f"partial: {len(trials)} of {expected} trials in {directory} (the run "
                    "stopped before the end; rerun it to finish)")
    if isinstance(dataset, dict) and dataset.get("name"):
        facts.append(f"dataset {dataset['name']} ({dataset.get('rows', '?')} rows)")
    elif isinstance(dataset, str):
        facts.append(f"dataset {dataset}")
    held_fact = held_out(spec, validation, frames["directions"],
                         told_rows(manifest, "held_out")) \
        if cellstats.has_validation(trials) else None
    if held_fact is not None:
        facts.append(held_fact)
    facts.append(f"swept: {', '.join(figures.varying_parameters(trials)) or 'nothing'}")
    halving = store.halving_search(manifest)
    if halving is not None and not trials.empty:
        facts.append(halving_fact(trials, halving))
    split = figures.selected_split(trials) if not trials.empty else ""
    if split:
        facts.append(f"best means the best final {_metric_names(trials)} {split}")
    if layout.x and search is None:
        placed = [f"{layout.x} across", *([f"{layout.y} down"] if layout.y else []),
                  *([f"one panel per {', '.join(layout.facet)}"] if layout.facet else []),
                  *([f"median over {layout.seeds} seeds"] if layout.seeds > 1 else [])]
        facts.append(f"figures: {', '.join(placed)}")
    cells = (_cell_summary(trials, history, layout, validation, judged) if not trials.empty
             else None)
    if cells is not None and held_fact is not None:
        cells = _with_validation(cells, trials, layout, history)
    # a sampled search's points are scattered: no grid of cells to glance at or explore
    glance = (at_a_glance(trials, history, layout, cells, validation=validation)
              if search is None else pd.DataFrame())
    said = answer(trials, layout, cells) if search is None else search_answer(trials, search)
    if cells is not None and held_fact is not None:
        said[1:1] = validation_answer(trials, layout, cells)
    if not trials.empty and figures.mixed_metrics(trials):
        said.append(figures.mixed_metrics(trials))
    sweep_time, invocations = sweep_times(manifest)
    return Contents(
        title=str(manifest.get("name") or directory.name),
        description=str(manifest.get("description") or ""),
        facts=facts,
        spec=spec,
        counts=status_counts(trials),
        glance=glance,
        glance_note=GLANCE.format(
            x=layout.x or "", seeds=", the median seed deciding" if layout.seeds > 1 else "",
            classes="; ".join(text for name, text, *_ in figures.OUTCOMES if name in glance)),
        best=best_trials(trials, layout),
        failed=failed_trials(trials, layout),
        pictures=pictures,
        versions=pd.DataFrame(sorted((manifest.get("versions") or {}).items()),
                              columns=["package", "version"]),
        times=pd.DataFrame([(k, str(manifest[k])) for k in
                            ("created", "started", "finished", "spec_hash", "host")
                            if manifest.get(k) is not None], columns=["field", "value"]),
        manifest=manifest,
        answer=said,
        explore=explore_data(trials, history, layout, cells,
                             title=str(manifest.get("name") or directory.name),
                             validation=validation if held_fact is not None else None)
        if search is None else None,
        invocations=invocations,
        sweep_time=sweep_time,
        search=SearchPart(search_text(search, trials), best_points(search))
        if search is not None else None,
    )


def told_rows(manifest: Mapping[str, Any], key: str) -> int | None:
    """The data's rows as the manifest's dataset entry tells them: "rows" trained on,
    "held_out" for validation; None where it does not (a manifest of an older nnsweep)."""
    dataset = manifest.get("dataset")
    value = dataset.get(key) if isinstance(dataset, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def halving_fact(trials: pd.DataFrame, halving: Halving) -> str:
    """What a halving search did, as one fact: its rungs, who went the whole way, what it
    spent against the grid, and how a stopped trial counts in the figures."""
    return (f"search: {halving.describe()}: {tables.halving_spent(trials, halving)}; a trial "
            "stopped at a rung counts with its numbers there")


def held_out(spec: str, validation: pd.DataFrame | None, directions: pd.DataFrame,
             rows: int | None = None) -> str:
    """What the data held out for validation, as one fact: its rows (as the manifest tells
    them, `rows`, else the tables) and how the sweep file chose them (a share of the data and
    its seed, or a file)."""
    if rows is None and validation is not None:
        rows = cellstats.dataset_rows(validation, directions)
    how = _split_of(spec)
    count = f"{rows} more rows" if rows else "more rows"
    return f"validation: {count} held out{f' ({how})' if how else ''}, never trained on"


def _split_of(spec: str) -> str:
    """The resolved spec's [dataset] split in words; "" where the text does not say."""
    try:
        table = tomllib.loads(spec).get("dataset")
    except tomllib.TOMLDecodeError:
        return ""
    if not isinstance(table, dict):
        return ""
    fraction, seed, file = (table.get("validation"), table.get("split_seed", 0),
                            table.get("validation_csv"))
    if isinstance(fraction, int | float) and not isinstance(fraction, bool):
        return f"{fraction * 100:.4g}% of the data, drawn with split_seed {seed}"
    if isinstance(file, str):
        return f"from {PurePath(file).name}"  # its name: a path of the machine that ran it
    return ""


def _saved_text(path: Path) -> str:
    """spec.toml as saved, or "" where it is missing, unreadable or not a plain file."""
    if path.is_symlink() or not path.is_file():
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        warnings.warn(f"{path}: unreadable ({type(exc).__name__}); expected the sweep's TOML "
                      "text: the report shows no spec", store.StoreWarning, stacklevel=2)
        return ""


def status_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials per status, counted from the trials table (the manifest's copy may be older)."""
    counts = trials["status"].value_counts()
    rows = [(s, int(counts[s])) for s in STATUSES if counts.get(s, 0)]
    return pd.DataFrame(rows, columns=["status", "trials"])


def at_a_glance(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout,
                cells: pd.DataFrame | None = None, *,
                validation: pd.DataFrame | None = None) -> pd.DataFrame:
    """The outcome map as text: for each row of the heatmaps, which x values fell in which
    outcome class (the same cells and classes as the outcome figure). `cells`: the layout's
    cellstats.cell_frame, when the caller has it already; `validation`: the held-out rows, which
    judge the trials that select them."""
    if layout.x is None or trials.empty:
        return pd.DataFrame()
    if cells is None:
        cells = cellstats.cell_frame(trials, history, layout, validation=validation)
    rows = [c for c in (*layout.facet, layout.y) if c is not None]
    groups = figures.facet_keys(trials, Layout(None, None, tuple(rows), 1)) if rows else [()]
    classes = [name for name, *_ in figures.OUTCOMES if name in set(cells["outcome"])]
    table = []
    for key in groups:
        chosen = cells
        for column, value in zip(rows, key, strict=True):
            chosen = chosen[chosen[column] == value]
        if chosen.empty:
            continue
        line = {column: figures.value_label(column, value)
                for column, value in zip(rows, key, strict=True)}
        for name in classes:
            values = figures.ordered_values(layout.x, chosen.loc[chosen["outcome"] == name,
                                                                 layout.x])
            line[name] = ", ".join(figures.value_label(layout.x, v) for v in values)
        table.append(line)
    return pd.DataFrame(table, columns=[*rows, *classes])


def _shown_parameters(trials: pd.DataFrame, layout: Layout) -> list[str]:
    varying = figures.varying_parameters(trials)
    ordered = [layout.x, layout.y, *layout.facet, "seed", *varying]
    return [c for c in dict.fromkeys(ordered) if c in varying]


def best_trials(trials: pd.DataFrame, layout: Layout, top: int = BEST_TRIALS) -> pd.DataFrame:
    """The trials with the best final error (tables.ranked: the lowest error, the highest
    accuracy); diverged and failed ones never rank. With held-out rows, their errors on them
    too."""
    ranked = tables.ranked(trials).head(top)
    columns = ["trial", *_shown_parameters(trials, layout), *BEST_TRIAL_OUTCOMES,
               *(BEST_TRIAL_VALIDATION if cellstats.has_validation(trials) else ())]
    return ranked[columns].reset_index(drop=True)


def failed_trials(trials: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The trials that raised, with their error: listed at the end, after the evidence."""
    failed = trials[trials["status"].isin(["failed", "crashed"])]
    return failed[["trial", *_shown_parameters(trials, layout), "status", "error"]]


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as display text: six significant digits, empty for missing."""
    def text(value: Any) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value)

    return pd.DataFrame({c: [text(v) for v in frame[c].tolist()] for c in frame.columns},
                        columns=list(frame.columns))


# --- one row per cell: what the answer and the explorer read ------------------------------

def _cell_summary(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout,
                  validation: pd.DataFrame | None = None,
                  judged: pd.Series | None = None) -> pd.DataFrame:
    """cellstats.cell_frame's cells (the figures' own numbers: median error, outcome, converged
    share) with, per cell, its index (`cell`), the median best error (`best`) and its trials
    per status (`n_converged`, ...); groupbys over the trials only, but for the outcomes, which
    read the history (`validation`: its held-out rows)."""
    keys = layout.keys
    cells = cellstats.cell_frame(trials, history, layout, validation=validation, judged=judged)
    if not keys:
        grouped = trials.assign(_all="all").groupby("_all", sort=False)
        cells = cells.assign(_all="all")
        keys = ["_all"]
    else:
        grouped = trials.groupby(keys, sort=False, dropna=False)
    counts = trials.assign(_all="all").groupby([*keys, "status"], sort=False, dropna=False)
    per_status = counts.size().unstack("status", fill_value=0)
    per_status.columns = [f"n_{status}" for status in per_status.columns]
    extra = per_status.assign(best=grouped["best_error"].median()).reset_index()
    cells = cells.merge(extra, on=keys, how="left")
    return cells.reset_index(drop=True).assign(cell=np.arange(len(cells)))


def _with_validation(cells: pd.DataFrame, trials: pd.DataFrame, layout: Layout,
                     history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The cells with their median final validation error (`validation`), training error
    (`train_error`) and median gap (`gap`, validation minus training), as
    cellstats.validation_cells computes them (`history`: the training rows)."""
    held = cellstats.validation_cells(trials, layout, history).rename(
        columns={"error": "validation"})
    columns = ["validation", "train_error", "gap"]
    if not layout.keys:
        return cells.assign(**{c: held[c].iloc[0] for c in columns})
    return cells.merge(held[[*layout.keys, *columns]], on=layout.keys, how="left")


def validation_answer(trials: pd.DataFrame, layout: Layout, cells: pd.DataFrame) -> list[str]:
    """The answer's sentence on the held-out rows: the best cell there, its error on both
    sides and the gap, and how the best cell on the training rows does there."""
    metric = _metric_names(trials)
    median = "median " if layout.seeds > 1 else ""
    finite = cells[np.isfinite(cells["validation"].to_numpy(dtype=float))]
    if finite.empty:
        return ["No trial finished with a finite error on the held-out rows."]
    best = finite.loc[figures.best_first(finite, "validation").idxmin()]
    where = ", ".join(f"{c} = {figures.value_label(c, best[c])}" for c in
                      (layout.x, layout.y, *layout.facet) if c is not None)
    which = f"the best cell is {where}" if where else "the result"
    text = (f"On the held-out rows, never trained on, {which}: {median}final validation {metric} "
            f"{_number(best['validation'])}, against {_number(best['train_error'])} on the "
            f"training rows (gap {float(best['gap']):+.3g}{_gap_sign(trials)})")
    trained = cells[np.isfinite(cells["train_error"].to_numpy(dtype=float))]
    if where and not trained.empty:
        first = trained.loc[figures.best_first(trained, "train_error").idxmin()]
        if first["cell"] != best["cell"] and np.isfinite(first["validation"]):
            text += (f"; the best cell on the training rows has {metric} "
                     f"{_number(first['validation'])} there")
    return [text + "."]


def _metric(trials: pd.DataFrame) -> str:
    """The metric the curves use: the sweep's own, or mae when trials differ (the answer
    then says so: figures.mixed_metrics)."""
    return figures.figure_metric(trials)


def _metric_names(trials: pd.DataFrame) -> str:
    """The trials' metrics as the final error holds them: "accuracy", "mae/sse"."""
    return "/".join(str(m) for m in figures.ordered_values("metric", trials["metric"]))


def _gap_sign(trials: pd.DataFrame) -> str:
    """Which way the gap is worse, for a score, whose gap reads the other way round."""
    return "; negative: worse on the held-out rows" if figures.scored(trials) else ""


def _where(trials: pd.DataFrame, layout: Layout, cells: pd.DataFrame,
           chosen: pd.Series) -> str:
    """The chosen cells as a phrase: runs of x values, grouped by the rows that share them
    ("alpha 1 to 10 for hidden 4 to 32; alpha 1 for hidden 64"; with facets, "alpha 1 for
    activation = tanh with hidden 2")."""
    assert layout.x is not None
    x_order = figures.ordered_values(layout.x, trials[layout.x])
    x_labels = [figures.value_label(layout.x, v) for v in x_order]
    row_columns = [c for c in (*layout.facet, layout.y) if c is not None]
    rows = figures.facet_keys(trials, Layout(None, None, tuple(row_columns), 1)) \
        if row_columns else [()]
    row_of = {key: index for index, key in enumerate(rows)}
    picked = cells[chosen.to_numpy()]
    found: dict[int, list[int]] = {}
    for key, x in zip(picked[row_columns].itertuples(index=False, name=None) if row_columns
                      else [()] * len(picked), picked[layout.x], strict=True):
        found.setdefault(row_of[tuple(key)], []).append(x_order.index(x))
    by_runs: dict[str, list[int]] = {}
    for index in sorted(found):
        by_runs.setdefault(f"{layout.x} {_runs(sorted(found[index]), x_labels)}",
                           []).append(index)
    phrases = []
    for runs, indices in by_runs.items():
        if not row_columns or len(indices) == len(rows):
            every = f" (every {' and '.join(row_columns)})" if row_columns and len(rows) > 1 \
                else ""
            phrases.append(runs + every)
        else:
            phrases.append(f"{runs} for {_rows(trials, layout, rows, indices)}")
    if len(phrases) > 6:
        phrases = [*phrases[:6], f"and in {len(phrases) - 6} more groups of rows"]
    return "; ".join(phrases)


def _rows(trials: pd.DataFrame, layout: Layout, rows: Sequence[tuple[Any, ...]],
          indices: Sequence[int]) -> str:
    """Some rows of the heatmaps by panel, then by runs of y: "hidden 4 to 32", or
    "activation = tanh (every hidden) or activation = relu with hidden 2"."""
    if layout.y is None:
        return " or ".join(figures.facet_label(layout, rows[i]) for i in indices)
    y_order = figures.ordered_values(layout.y, trials[layout.y])
    y_labels = [figures.value_label(layout.y, v) for v in y_order]
    panels: dict[tuple[Any, ...], list[int]] = {}
    for i in indices:
        panels.setdefault(tuple(rows[i][:-1]), []).append(y_order.index(rows[i][-1]))
    present = pd.Series([tuple(key[:-1]) for key in rows]).value_counts()
    parts = []
    for panel, ys in panels.items():
        runs = f"{layout.y} {_runs(sorted(ys), y_labels)}"
        if not layout.facet:
            parts.append(runs)
        elif len(ys) == present[panel]:
            parts.append(f"{figures.facet_label(layout, panel)} (every {layout.y})")
        else:
            parts.append(f"{figures.facet_label(layout, panel)} with {runs}")
    return " or ".join(parts)


def _runs(positions: Sequence[int], labels: Sequence[str]) -> str:
    """Sorted positions as runs of neighbours: "0.01, 1 to 100"."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return ", ".join(labels[r[0]] if len(r) == 1 else f"{labels[r[0]]} to {labels[r[-1]]}"
                     for r in runs)


def answer(trials: pd.DataFrame, layout: Layout, cells: pd.DataFrame | None) -> list[str]:
    """The page's first paragraph, written from the data: the best cell with its parameters
    and error, where most seeds converge, where most diverge, and how many failed."""
    if cells is None or trials.empty:
        return ["The tables hold no trials yet."]
    metric, goal = _metric_names(trials), figures.goal(trials)
    seeds = layout.seeds > 1
    median = "median " if seeds else ""
    sentences = []
    finite = cells[np.isfinite(cells["error"].to_numpy(dtype=float))]
    if finite.empty:
        sentences.append("No trial finished with a finite error.")
    else:
        best = finite.loc[figures.best_first(finite, "error").idxmin()]
        where = ", ".join(f"{c} = {figures.value_label(c, best[c])}" for c in
                          (layout.x, layout.y, *layout.facet) if c is not None)
        text = (f"The best {'cell' if layout.keys else 'result'}"
                f"{' is ' + where if where else ''}: {median}final {metric} "
                f"{_number(best['error'])}")
        if seeds:
            text += f" over {int(best['seeds'])} seeds (median best {_number(best['best'])})"
        converged = round(float(best["converged_share"]) * int(best["seeds"]))
        if converged and np.isfinite(best["converged_epoch"]):
            text += (f"; {converged} of {int(best['seeds'])} seeds" if seeds else "; it") + \
                f" reached {goal} by epoch {best['converged_epoch']:.0f}"
            text += " (median)" if converged > 1 else ""
        sentences.append(text + ".")
    if layout.x is None:
        return sentences
    majority = cells["converged_share"] > 0.5
    some = cells["converged_share"] > 0
    if majority.any():
        sentences.append(f"{'Most seeds converge' if seeds else 'Trials converge'} (reach "
                         f"{goal}) at {_where(trials, layout, cells, majority)}.")
    elif some.any():
        sentences.append(f"No cell converges in most of its seeds; some seeds reach {goal} "
                         f"at {_where(trials, layout, cells, some)}.")
    else:
        sentences.append(f"No trial reaches {goal}.")
    diverged = cells["diverged"] / cells["seeds"] > 0.5
    if diverged.any():
        sentences.append(f"{'Most seeds diverge' if seeds else 'Trials diverge'} (a weight or "
                         f"the error overflows) at {_where(trials, layout, cells, diverged)}.")
    else:
        sentences.append("No cell diverges in most of its seeds." if seeds
                         else "No trial diverges.")
    failed = int(trials["status"].isin(["failed", "crashed"]).sum())
    if failed:
        sentences.append(f"{failed} trial{'s' if failed > 1 else ''} failed (listed at the "
                         "end).")
    return sentences


def _number(value: Any) -> str:
    return f"{float(value):.3g}"


# --- a sampled search ---------------------------------------------------------------------

# The comment the resolved spec writes above a random or sobol search's drawn points, which
# follow it as a [[zip]]: how the page tells a sampled search from a grid.
BEST_POINTS = 5  # rows of the best points' table


@dataclass(frozen=True)
class SampledSearch:
    """A random or sobol search, as the resolved spec records it."""

    method: str
    samples: int
    seed: int
    axes: tuple[str, ...]  # the parameters drawn: alpha, hidden, then the tables' order


@dataclass(frozen=True)
class SearchPart:
    """The page's search section: what the search did, and its best points."""

    text: str
    best: pd.DataFrame


@dataclass(frozen=True)
class Searched:
    """A sampled search and its points (search_points: one row each, best first)."""

    search: SampledSearch
    points: pd.DataFrame


def sampled_search(manifest: Mapping[str, Any]) -> SampledSearch | None:
    """The random or sobol search a folder's manifest records (manifest.search_record); None
    for other sweeps, for a resolved spec run again as a sweep file (its points are given, not
    drawn) and for a record that is not one (a folder's text is data: checked, never trusted)."""
    record = manifest.get("search")
    if not isinstance(record, dict) or record.get("method") not in ("random", "sobol"):
        return None
    samples, seed, drawn = (record.get(key) for key in ("samples", "seed", "drawn"))
    if not (isinstance(samples, int) and isinstance(seed, int) and isinstance(drawn, list)):
        return None
    axes = tuple(c for c in ("alpha", "hidden", *tables.PARAM_COLUMNS) if c in drawn)
    axes = tuple(dict.fromkeys(axes))  # alpha across and hidden up first, as the heatmaps
    return SampledSearch(str(record["method"]), samples, seed, axes) if axes else None


def searched_points(manifest: Mapping[str, Any], trials: pd.DataFrame) -> Searched | None:
    """The folder's sampled search (told by its manifest) and its points; None for other
    sweeps and for a folder with no trials yet."""
    search = sampled_search(manifest)
    if search is None or trials.empty:
        return None
    return Searched(search, search_points(trials, search.axes))


def search_points(trials: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """One row per point drawn: its values; `trials`, how many repeat it (the axes given as
    values, seeds among them, cross every point); `final_error`, the median final metric over
    them, a diverged trial counting as the worst and failed ones left out (NaN when all
    failed); `metric`; `converged` and `diverged`, its trials that did; `trial`, its first
    (ties rank by it). Best first (tables.ranked), the points without an error last. One
    groupby over the trials: the cost grows with them, never with the recorded epochs."""
    higher = trials["metric"].astype(str).isin(sorted(HIGHER_IS_BETTER)).to_numpy()
    final = trials["final_error"].to_numpy(dtype=float, na_value=np.nan)  # (trials,)
    diverged = (trials["status"] == "diverged").to_numpy()  # (trials,)
    frame = trials.assign(_error=np.where(diverged, np.where(higher, -np.inf, np.inf), final),
                          _converged=(trials["status"] == "converged").astype(int),
                          _diverged=diverged.astype(int))
    points = frame.groupby(list(axes), sort=False, dropna=False).agg(
        trials=("trial", "size"), final_error=("_error", "median"), metric=("metric", "first"),
        converged=("_converged", "sum"), diverged=("_diverged", "sum"), trial=("trial", "min"),
    ).reset_index()
    best = tables.ranked(points)
    return pd.concat([best, points.drop(index=best.index)]).reset_index(drop=True)


def search_text(searched: Searched, trials: pd.DataFrame) -> str:
    """What the search did, in one sentence: its method, samples and seed, the axes drawn and
    those crossed with every point."""
    search, points = searched.search, searched.points
    crossed = [c for c in figures.varying_parameters(trials) if c not in search.axes]
    each = f", each tried with every value of {searchplots.and_list(crossed)}" if crossed else ""
    kept = (f" ({len(points)} distinct points in the tables)"
            if len(points) != search.samples else "")
    return (f"A {search.method} search (method = \"{search.method}\", samples = "
            f"{search.samples}, seed = {search.seed}) drew {search.samples} points over "
            f"{searchplots.and_list(search.axes)}{kept}{each}: {len(trials)} trials. The "
            "figure places each point in the space drawn from and colours it by its final "
            "error; the table lists the best points.")


def best_points(searched: Searched, top: int = BEST_POINTS) -> pd.DataFrame:
    """The best points, one row each: rank, the values drawn, trials, the median final metric
    (as final_error), how many converged and diverged; the trial itself where a point has
    one."""
    points = searched.points
    points = points[np.isfinite(points["final_error"].to_numpy(dtype=float))].head(top)
    single = bool((searched.points["trials"] == 1).all())
    columns = [*searched.search.axes, *(["trial"] if single else ["trials"]), "final_error",
               "converged", "diverged"]
    return points[columns].reset_index(drop=True).rename_axis("rank").reset_index().assign(
        rank=lambda f: f["rank"] + 1)


def search_answer(trials: pd.DataFrame, searched: Searched) -> list[str]:
    """The page's first paragraph for a sampled search: the best point and its error, how many
    points converge and diverge (in most of their trials), how many trials failed."""
    search, points = searched.search, searched.points
    metric = _metric(trials)
    drawn = f"the {len(points)} points the {search.method} search drew"
    finite = points[np.isfinite(points["final_error"].to_numpy(dtype=float))]
    if finite.empty:
        sentences = [f"No trial of {drawn} finished with a finite error."]
    else:
        best = finite.iloc[0]
        where = ", ".join(f"{c} = {figures.value_label(c, best[c])}" for c in search.axes)
        over = f"median over its {int(best['trials'])} trials, " if best["trials"] > 1 else ""
        sentences = [f"The best of {drawn} is {where}: {over}final {metric} "
                     f"{_number(best['final_error'])}."]
    repeated = bool((points["trials"] > 1).any())
    most = " in most of their trials" if repeated else ""
    reach = f"reach {figures.goal(trials)}"
    for column, verb, what in (("converged", "converge", reach),
                               ("diverged", "diverge", "a weight or the error overflows")):
        count = int((points[column] * 2 > points["trials"]).sum())
        sentences.append(f"{count} of {len(points)} points {verb} ({what}){most}." if count
                         else f"No point {verb}s{most.replace('their', 'its')}.")
    failed = int(trials["status"].isin(["failed", "crashed"]).sum())
    if failed:
        sentences.append(f"{failed} trial{'s' if failed > 1 else ''} failed (listed at the "
                         "end).")
    return sentences


# --- the explorer's data ------------------------------------------------------------------

def explore_data(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout,
                 cells: pd.DataFrame | None, *, title: str = "",
                 validation: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """Per heatmap cell: its parameters, seeds, final and best error, outcome, and its curve
    (median and min..max over seeds, at most `curve_points` log-spaced epochs). None when there
    is no x axis to lay cells out on. Sized by the cells: one groupby reads the history.
    With `validation`, the history's held-out rows (and cells with _with_validation's
    columns), each cell also holds its final validation error, its gap and the median curve
    on those rows: one more groupby."""
    if layout.x is None or cells is None or cells.empty:
        return None
    metric = _metric(trials)
    x_order = figures.ordered_values(layout.x, trials[layout.x])
    y_order = figures.ordered_values(layout.y, trials[layout.y]) if layout.y else [None]
    panels = figures.facet_keys(trials, layout)
    x_at = {v: i for i, v in enumerate(x_order)}
    y_at = {v: j for j, v in enumerate(y_order)}
    panel_at = {key: p for p, key in enumerate(panels)}
    points = curve_points(len(cells))
    curves = _cell_curves(trials, history, layout, cells, metric, points)
    held = (_cell_curves(trials, validation, layout, cells, metric, points)
            if validation is not None else None)
    out = []
    for row in cells.itertuples(index=False):
        values = row._asdict()
        panel = tuple(values[c] for c in layout.facet)
        error = float(values["error"])
        out.append({
            "panel": panel_at[panel],
            "i": x_at[values[layout.x]],
            "j": y_at[values[layout.y]] if layout.y else 0,
            "params": [[c, figures.value_label(c, values[c])] for c in
                       (layout.x, *([layout.y] if layout.y else []), *layout.facet)],
            "seeds": int(values["seeds"]),
            "statuses": _statuses(values),
            "outcome": str(values["outcome"]),
            "final": _json_number(error),
            "diverged": bool(error == math.inf),
            "best": _json_number(values["best"]),
            "share": float(values["converged_share"]),
            "epoch": _json_number(values["converged_epoch"]),
            "changes": _json_number(values["direction_changes"]),
            "curve": curves.get(int(values["cell"]), {"e": [], "m": [], "lo": [], "hi": []}),
        })
        if held is not None:
            curve = held.get(int(values["cell"]), {"e": [], "m": []})
            out[-1].update(validation=_json_number(values["validation"]),
                           gap=_json_number(values["gap"]),
                           held={"e": curve["e"], "m": curve["m"]})
    start = int(np.argmin(figures.best_first(cells, "error").to_numpy()))  # the best cell
    return {
        "title": title,
        "metric": metric,
        # a score (accuracy): best when highest, drawn on a linear scale; else log scales
        "higher": metric in HIGHER_IS_BETTER,
        # the line drawn on the curves; with several tolerances, the strictest
        "tolerance": float(np.min(trials["tolerance"].to_numpy(dtype=float))),
        "x": {"name": layout.x, "title": figures.axis_title(layout.x),
              "labels": [figures.value_label(layout.x, v) for v in x_order]},
        "y": {"name": layout.y, "title": figures.axis_title(layout.y),
              "labels": [figures.value_label(layout.y, v) for v in y_order]}
        if layout.y else None,
        "panels": [figures.facet_label(layout, k) for k in panels],
        "points": points,
        "start": start,
        "cells": out,
        **({"validation": True} if held is not None else {}),
    }


def _statuses(cell: dict[str, Any]) -> dict[str, int]:
    """A cell's trials per status, in STATUSES' order (any other status after them)."""
    counts = {column[2:]: int(n) for column, n in cell.items() if column.startswith("n_") and n}
    rank = {status: i for i, status in enumerate(STATUSES)}
    return dict(sorted(counts.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def curve_points(cells: int) -> int:
    """Points per cell's curve: CURVE_POINTS, fewer for big grids (CURVE_BUDGET in all), never
    fewer than MIN_CURVE_POINTS."""
    return max(MIN_CURVE_POINTS, min(CURVE_POINTS, CURVE_BUDGET // max(cells, 1)))


def _cell_curves(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout,
                 cells: pd.DataFrame, metric: str, points: int) -> dict[int, dict[str, list[Any]]]:
    """Each cell's error against epoch over its seeds (median, min and max of the seeds
    recorded at that epoch), thinned to at most `points` + 1 log-spaced epochs, first and last
    kept. Each trial's rows are thinned so first (learningcurves.thinned_rows), then grouped
    by (cell, epoch), as one integer key: the groupby never holds the whole history."""
    keys = layout.keys
    trial_cells = trials[["trial", *keys]].merge(cells[[*keys, "cell"]], on=keys, how="left")
    rows, at = learningcurves.thinned_rows(trial_cells, history, points)  # (kept,) each
    cell = trial_cells["cell"].to_numpy(dtype=np.int64)[at]  # (kept,)
    epoch = history["epoch"].to_numpy(dtype=np.int64)[rows]  # (kept,)
    errors = history[metric].to_numpy(dtype=float)[rows]  # (kept,)
    if not len(cell):
        return {}
    span = int(epoch.max()) + 1
    stats = pd.Series(np.where(np.isfinite(errors), errors, np.nan)).groupby(
        cell * span + epoch, sort=True).agg(["median", "min", "max"])
    key = stats.index.to_numpy(dtype=np.int64)  # (cell epochs,) sorted by cell, then epoch
    owner = key // span  # (cell epochs,)
    # A cell whose seeds kept the same epochs holds one trial's thinning: kept as it is. One
    # holding more (seeds of other lengths: one diverged) is thinned again, to the same bound.
    crowded = np.bincount(owner)[owner] > points + 2  # (cell epochs,)
    keep = ~crowded | learningcurves.log_spaced(owner, points)  # (cell epochs,)
    kept_owner, kept_epoch = owner[keep], key[keep] % span
    columns = {name: stats[name].to_numpy(dtype=float)[keep] for name in ("median", "min", "max")}
    bounds = np.flatnonzero(np.diff(kept_owner)) + 1
    curves: dict[int, dict[str, list[Any]]] = {}
    for part in np.split(np.arange(len(kept_owner)), bounds):
        curves[int(kept_owner[part[0]])] = {
            "e": kept_epoch[part].tolist(),
            "m": _json_numbers(columns["median"][part]),
            "lo": _json_numbers(columns["min"][part]),
            "hi": _json_numbers(columns["max"][part]),
        }
    return curves


def _json_numbers(values: np.ndarray[Any, np.dtype[np.float64]]) -> list[float | None]:
    """Four significant digits, enough for a curve on a log axis; None where not finite."""
    return [float(f"{v:.4g}") if math.isfinite(v) else None for v in values.tolist()]


def _json_number(value: Any, digits: int = 6) -> float | None:
    """A finite number rounded to `digits` significant digits; None (JSON null) otherwise."""
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return float(f"{number:.{digits}g}") if math.isfinite(number) else None


def embedded_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` (so no `</script>` and
    no `<!--` can appear, whatever a string holds), and no raw U+2028/U+2029."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def explore_script() -> str:
    """The explorer's script, shipped as package data beside this module."""
    return resources.files("nnsweep").joinpath(SCRIPT).read_text(encoding="utf-8")


# --- the sweep's times --------------------------------------------------------------------

def sweep_times(manifest: dict[str, Any]) -> tuple[str, pd.DataFrame]:
    """Every invocation's times and work, with the sweep's totals as a sentence: the running
    time summed over invocations and the span from the first start to the last end."""
    runs = [r for r in manifest.get("invocations") or [] if isinstance(r, dict)]
    if not runs:
        started, finished = _time(manifest.get("started")), _time(manifest.get("finished"))
        if started and finished:
            return (f"One recorded run: {_seconds((finished - started).total_seconds())} "
                    f"from {manifest['started']} to {manifest['finished']}."), pd.DataFrame()
        return "", pd.DataFrame()
    rows, total, trained, reused = [], 0.0, 0, 0
    for number, run in enumerate(runs, start=1):
        start, end = _time(run.get("started")), _time(run.get("finished"))
        seconds = (end - start).total_seconds() if start and end else None
        total += seconds or 0.0
        trained += _count(run.get("trained"))
        reused += _count(run.get("reused"))
        rows.append({"run": number, "started": str(run.get("started") or ""),
                     "finished": str(run.get("finished") or "did not finish"),
                     "seconds": "" if seconds is None else _seconds(seconds),
                     "trained": run.get("trained"), "reused": run.get("reused"),
                     "engine": run.get("engine"), "workers": run.get("jobs"),
                     "interrupted": "yes" if run.get("interrupted") else "",
                     "command": str(run.get("command") or "")})
    starts = [t for t in (_time(r.get("started")) for r in runs) if t]
    ends = [t for t in (_time(r.get("finished")) for r in runs) if t]
    span = f", {_seconds((max(ends) - min(starts)).total_seconds())} from the first start " \
        f"to the last end" if starts and ends else ""
    unfinished = sum(1 for r in runs if not _time(r.get("finished")))
    note = f" ({unfinished} did not record an end)" if unfinished else ""
    sentence = (f"{len(runs)} invocation{'s' if len(runs) > 1 else ''}{note}: "
                f"{_seconds(total)} of running in all{span}; {trained} trials trained, "
                f"{reused} reused.")
    frame = pd.DataFrame(rows)
    return sentence, frame.astype({c: "object" for c in frame.columns})


def _time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


# --- figures at a legible size ------------------------------------------------------------

@dataclass(frozen=True)
class FigureSize:
    """A saved figure's PNG size and resolution, and its smallest tick text."""

    width: int  # pixels
    height: int
    dpi: float
    tick_points: float | None  # the smallest tick label, in points; None when unknown

    @property
    def tick_pixels(self) -> float | None:
        """The smallest tick label's height in the PNG's pixels."""
        return None if self.tick_points is None else self.tick_points * self.dpi / 72

    @property
    def min_width(self) -> float:
        """The narrowest CSS width at which its ticks stay LEGIBLE_PX tall; the natural width
        when the tick size is unknown."""
        pixels = self.tick_pixels
        return self.width * LEGIBLE_PX / pixels if pixels else float(self.width)


def png_size(png: bytes) -> tuple[int, int, float]:
    """Width, height (IHDR) and dots per inch (pHYs, matplotlib writes it; 72 without)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", png[16:24])
    dpi = 72.0
    at = 8
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        if kind == b"pHYs" and length >= 9:
            per_metre, _, unit = struct.unpack(">IIB", png[at + 8:at + 17])
            if unit == 1 and per_metre:
                dpi = per_metre * 0.0254
            break
        if kind in (b"IDAT", b"IEND"):
            break
        at += 12 + length
    return width, height, dpi


def figure_size(picture: Picture, png: bytes) -> FigureSize:
    """The PNG's size and resolution, and its smallest tick text as drawn."""
    width, height, dpi = png_size(png)
    return FigureSize(width, height, dpi, picture.tick_points)


# --- HTML ---------------------------------------------------------------------------------

GLANCE = ("Which values of {x} fell in which outcome class, row by row (the outcome figure "
          "below, as text{seeds}): {classes}.")

EXPLORE = ("Point at a cell to see its learning curve ({metric} against epoch, both on log "
           "scales: the line is the median over the cell's seeds, the band their range) and "
           "its numbers; click a cell, or press Enter on it, to keep it (the kept cell's "
           "curve stays behind, dashed grey, for comparison). Colours: final "
           "{metric}, log scale; grey cells marked \u00d7 diverged. Curves hold at most "
           "{points} log-spaced epochs.")

# ... for a score (accuracy), best when highest: linear scales, light still the better.
EXPLORE_SCORE = ("Point at a cell to see its learning curve ({metric} against epoch, epoch on a "
                 "log scale, {metric} on a linear one: the line is the median over the cell's "
                 "seeds, the band their range) and its numbers; click a cell, or press Enter "
                 "on it, to keep it (the kept cell's curve stays behind, dashed grey, for "
                 "comparison). Colours: final {metric}, linear scale, light where higher "
                 "(better); grey cells marked \u00d7 diverged. Curves hold at most {points} "
                 "log-spaced epochs.")

EXPLORE_VALIDATION = (" The dashed line of the same colour is the median on the held-out "
                      "validation rows, which the network never trains on.")

# Where each figure goes: heatmaps first, then curves, then the rest.
SECTIONS = (("heatmaps", "Heatmaps"), ("curves", "Learning curves"), ("more", "More figures"))

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1250px; padding: 0 1.5rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.facts { color: #555; } .answer { font-size: 1.1rem; max-width: 60rem; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 0.8rem; overflow-x: auto; }
figure { margin: 1.5rem 0 2rem; }
.scroll { overflow-x: auto; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 0.95rem; margin-top: 0.4rem; }
.explore { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.explore svg { font-size: 12px; font-family: inherit; overflow: visible; }
.explore .axis-title { font-size: 13px; } .explore .panel-title { font-weight: 600; }
.explore .cell { cursor: pointer; } .explore .cell:focus { outline: none; }
.explore .cell.shown rect { stroke: #000; stroke-width: 1.5; }
.explore .cell.pinned rect { stroke: #d62728; stroke-width: 3; }
.explore .mark { font-size: 14px; pointer-events: none; }
.explore .value { font-size: 11px; pointer-events: none; }
#explore-numbers th { text-align: left; font-weight: normal; }
#explore-cell { font-weight: 600; margin: 0 0 0.3rem; min-height: 2.9em; }
.explore-side { flex: 0 1 470px; min-width: 0; }
"""


def render_html(contents: Contents) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request from a page opened from disk
        store.report_meta(contents.key),  # what it shows: a rerun with nothing new keeps it
        f"<title>{e(contents.title)}: nnsweep report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{e(contents.title)}</h1>",
    ]
    if contents.description:
        parts.append(f'<p class="description">{e(contents.description)}</p>')
    parts.append(f'<p class="facts">{e("; ".join(contents.facts))}</p>')
    parts.append('<h2 id="answer">Answer</h2>')
    parts.append(f'<p class="answer">{e(" ".join(contents.answer))}</p>')
    parts.append('<h2 id="glance">At a glance</h2>')
    if not contents.glance.empty:
        parts.append(f"<p>{e(contents.glance_note)}</p>")
        parts.append(_html_table(contents.glance, "at a glance"))
    parts.append(_html_table(contents.counts, "status counts"))
    parts.append("<h3>Best trials</h3>")
    parts.append(_html_table(contents.best, "best trials") if not contents.best.empty
                 else "<p>No trial finished with a finite error.</p>")
    if contents.search is not None:
        parts.extend(_html_search(contents.search, contents.pictures))
    groups = _grouped(_not_search(contents.pictures))
    if not contents.pictures and not contents.explore:
        parts.append('<h2 id="figures">Figures</h2>')
        parts.append("<p>No figures: the tables hold no trials to draw.</p>")
    for section, heading in SECTIONS:
        if section == "heatmaps" and (groups[section] or contents.explore):
            parts.append(f'<h2 id="{section}">{heading}</h2>')
            if contents.explore:
                parts.append(_explorer(contents.explore))
        elif groups[section]:
            parts.append(f'<h2 id="{section}">{heading}</h2>')
        parts.extend(_html_figure(picture) for picture in groups[section])
    if not contents.failed.empty:
        parts.append('<h2 id="failed">Failed trials</h2>')
        parts.append(_html_table(contents.failed, "failed trials"))
    parts.append('<h2 id="spec">Spec</h2>')
    parts.append(f"<pre>{e(contents.spec)}</pre>" if contents.spec
                 else "<p>No spec.toml in this folder.</p>")
    parts.append('<h2 id="manifest">Manifest</h2>')
    if contents.sweep_time:
        parts.append(f'<p class="sweep-time">{e(contents.sweep_time)}</p>')
    if not contents.invocations.empty:
        parts.append(_html_table(contents.invocations, "invocations"))
    parts.append(_html_table(contents.times, "run"))
    parts.append(_html_table(contents.versions, "versions"))
    manifest_text = json.dumps(contents.manifest, indent=2, default=str)
    parts.append(f"<details><summary>manifest.json</summary><pre>{e(manifest_text)}</pre>"
                 "</details>")
    if contents.explore:
        parts.append('<script type="application/json" id="explore-data">'
                     f"{embedded_json(contents.explore)}</script>")
        parts.append(f'<script id="explore-script">\n{explore_script()}</script>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _grouped(pictures: Sequence[Picture]) -> dict[str, list[Picture]]:
    """Pictures by section, by their stable names: heatmaps and the outcome map, curves, the
    rest."""
    groups: dict[str, list[Picture]] = {section: [] for section, _ in SECTIONS}
    for picture in pictures:
        if picture.name in ("edge", "outcome", "final_error") or picture.name.startswith(
                "heatmap"):
            groups["heatmaps"].append(picture)
        elif "curve" in picture.name:
            groups["curves"].append(picture)
        else:
            groups["more"].append(picture)
    return groups


def _not_search(pictures: Sequence[Picture]) -> list[Picture]:
    """The pictures but the search's, which its own section shows."""
    return [p for p in pictures if p.name != searchplots.SEARCH_FIGURE]


def _html_search(search: SearchPart, pictures: Sequence[Picture]) -> list[str]:
    """The search section: what the search did, its points over the space, its best points."""
    return ['<h2 id="search">Search</h2>', f"<p>{html.escape(search.text)}</p>",
            *(_html_figure(p) for p in pictures if p.name == searchplots.SEARCH_FIGURE),
            "<h3>Best points</h3>",
            _html_table(search.best, "best points") if not search.best.empty
            else "<p>No point finished with a finite error.</p>"]


def _explorer(data: dict[str, Any]) -> str:
    note = (EXPLORE_SCORE if data.get("higher") else EXPLORE).format(metric=data["metric"],
                                                                     points=data["points"])
    if data.get("validation"):
        note += EXPLORE_VALIDATION
    return (f'<section id="explore"><p>{html.escape(note)}</p>'
            '<div class="explore">'
            '<svg id="explore-heatmap" role="group" aria-label="cells of the sweep"></svg>'
            '<div class="explore-side"><p id="explore-cell"></p>'
            '<svg id="explore-curves" role="img" aria-label="the cell\'s learning curve"></svg>'
            '<table id="explore-numbers" aria-label="the cell\'s numbers"></table></div>'
            "</div><noscript><p>The explorer needs JavaScript; the figures below show the "
            "same cells.</p></noscript></section>")


def _html_figure(picture: Picture) -> str:
    """An embedded PNG at its natural width at most, and never narrower than keeps its tick
    text LEGIBLE_PX tall: a figure wider than the page then scrolls sideways."""
    e = html.escape
    png = picture.png.read_bytes()
    size = figure_size(picture, png)
    data = base64.b64encode(png).decode("ascii")
    floor = f' style="min-width: {math.ceil(size.min_width)}px"'
    return (f'<figure id="{e(picture.name)}"><div class="scroll">'
            f'<img src="data:image/png;base64,{data}" width="{size.width}" '
            f'height="{size.height}"{floor} alt="{e(picture.title)}"></div>'
            f"<figcaption><b>{e(picture.title)}.</b> {e(picture.caption)}"
            + (f' <a href="plots/{e(picture.svg.name)}">SVG</a>' if picture.svg.is_file()
               else "") + "</figcaption></figure>")


def _html_table(frame: pd.DataFrame, label: str) -> str:
    """A table that scrolls sideways on its own when wider than the page."""
    table: str = _cells(frame).to_html(index=False, escape=True, border=0)
    labelled = table.replace("<table", f'<table aria-label="{html.escape(label)}"', 1)
    return f'<div class="scroll">{labelled}</div>'


# --- Markdown -----------------------------------------------------------------------------

def render_markdown(contents: Contents) -> str:
    """The page as Markdown, which viewers render as HTML: every text from the folder is
    HTML-escaped (`_md`), but for the spec, which a code fence shows as typed; the fence is
    longer than any run of backticks in the spec, so no line of it closes the fence early.
    No explorer: Markdown viewers run no script."""
    lines = [f"# {_md(contents.title)}", ""]
    if contents.description:
        lines += [_md(contents.description, one_line=False), ""]
    lines += [_md("; ".join(contents.facts)), "", "## Answer", "",
              _md(" ".join(contents.answer)), "", "## At a glance", ""]
    if not contents.glance.empty:
        lines += [_md(contents.glance_note), "", *_markdown_table(contents.glance), ""]
    lines += [*_markdown_table(contents.counts), "", "### Best trials", ""]
    lines += _markdown_table(contents.best) if not contents.best.empty \
        else ["No trial finished with a finite error."]
    lines.append("")
    if contents.search is not None:
        lines += _markdown_search(contents.search, contents.pictures)
    groups = _grouped(_not_search(contents.pictures))
    if not contents.pictures:
        lines += ["## Figures", "", "No figures: the tables hold no trials to draw.", ""]
    for section, heading in SECTIONS:
        if groups[section]:
            lines += [f"## {heading}", ""]
        for picture in groups[section]:
            title = _md(picture.title)
            vector = f" ([SVG](plots/{picture.svg.name}))" if picture.svg.is_file() else ""
            lines += [f"![{title}](plots/{picture.png.name})", "",
                      f"*{title}.* {_md(picture.caption)}{vector}", ""]
    if not contents.failed.empty:
        lines += ["## Failed trials", "", *_markdown_table(contents.failed), ""]
    fence = "```"
    while fence in contents.spec:
        fence += "`"
    lines += ["## Spec", ""]
    lines += [f"{fence}toml", contents.spec.rstrip("\n"), fence, ""] if contents.spec \
        else ["No spec.toml in this folder.", ""]
    lines += ["## Manifest", ""]
    if contents.sweep_time:
        lines += [_md(contents.sweep_time), ""]
    if not contents.invocations.empty:
        lines += [*_markdown_table(contents.invocations), ""]
    lines += [*_markdown_table(contents.times), "", *_markdown_table(contents.versions), ""]
    return "\n".join(lines)


def _markdown_search(search: SearchPart, pictures: Sequence[Picture]) -> list[str]:
    lines = ["## Search", "", _md(search.text), ""]
    for picture in pictures:
        if picture.name == searchplots.SEARCH_FIGURE:
            title = _md(picture.title)
            vector = f" ([SVG](plots/{picture.svg.name}))" if picture.svg.is_file() else ""
            lines += [f"![{title}](plots/{picture.png.name})", "",
                      f"*{title}.* {_md(picture.caption)}{vector}", ""]
    lines += ["### Best points", ""]
    lines += _markdown_table(search.best) if not search.best.empty \
        else ["No point finished with a finite error."]
    return [*lines, ""]


def _md(text: str, *, one_line: bool = True) -> str:
    """Text as Markdown shows it: `<`, `>` and `&` escaped, so a `<script>` in a description
    stays text; `one_line` keeps a title or a caption from breaking its line."""
    escaped = html.escape(text, quote=False)
    return " ".join(escaped.splitlines()) if one_line else escaped


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    cells = _cells(frame)

    def row(values: Sequence[str]) -> str:
        return "| " + " | ".join(_md(v).replace("|", "\\|") for v in values) + " |"

    return [row(list(cells.columns)), row(["---"] * len(cells.columns)),
            *(row(list(r)) for r in cells.itertuples(index=False, name=None))]
