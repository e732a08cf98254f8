"""A results folder's report: plots/ plus one self-contained report.html and a report.md.

Built from the saved tables only, so `python -m nnsweep report DIR` rebuilds it without
training. The HTML page embeds its images as data URIs and loads nothing else: it opens from
disk, offline, and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from nnsweep import plots, store
from nnsweep.errors import ResultsError
from nnsweep.plots import Layout, Picture
from nnsweep.result import STATUSES
from nnsweep.store import write_atomic

TABLE_NAMES: tuple[str, ...] = ("trials", "history", "directions", "summary")
BEST_TRIALS = 10
# The outcome columns of the best trials' table, after the trial and its varying parameters.
BEST_TRIAL_OUTCOMES = ("status", "final_error", "best_error", "converged_epoch",
                       "direction_changes")


def read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    """The four saved tables in their schemas (rebuilt in memory from the journal when torn)."""
    return _tables_of(_results(directory))


def _results(directory: Path) -> store.Results:
    store.check_name(directory)
    if not store.is_results_folder(directory):
        raise ResultsError(f"{directory}: no trials.parquet, so there is nothing to report; "
                           "run a sweep there first: python -m nnsweep run SPEC")
    return store.load_results(directory)


def _tables_of(results: store.Results) -> dict[str, pd.DataFrame]:
    return {name: getattr(results, name) for name in TABLE_NAMES}


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
    key: str = ""  # store.report_key of what the page shows


def build_report(directory: Path, *, x: str | None = None, y: str | None = None,
                 facet: str | None = None, trial: str | None = None) -> Path:
    """Read the saved tables of a results folder, write plots/ and report.html/report.md; return
    the report.html path."""
    directory = Path(directory)
    results = _results(directory)
    if results.running is not None:
        raise ResultsError(f"{directory}: a run is using this folder; its report is written "
                           "when it finishes (show reads a running sweep)")
    frames, manifest = _tables_of(results), results.manifest
    layout = choose_layout(frames["trials"], manifest, x=x, y=y, facet=facet)
    chosen = plots.resolve_trial(frames["trials"], trial) if trial else None
    out = directory / "plots"
    _remove_old_pictures(out)
    pictures = plots.draw_all(frames, layout, out, chosen)
    contents = gather(directory, frames, manifest, layout, pictures, expected=results.expected)
    contents = replace(contents, key=store.report_key(manifest, x=x, y=y, facet=facet,
                                                      trial=trial))
    write_atomic(directory / "report.md", render_markdown(contents).encode("utf-8"))
    page = directory / "report.html"
    write_atomic(page, render_html(contents).encode("utf-8"))
    return page


def choose_layout(trials: pd.DataFrame, manifest: dict[str, Any], *, x: str | None = None,
                  y: str | None = None, facet: str | None = None) -> Layout:
    """Arguments first, then the sweep file's [report] table, then plots.choose_layout's
    defaults."""
    saved = manifest.get("report") or {}
    return plots.choose_layout(
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
           layout: Layout, pictures: list[Picture], expected: int | None = None) -> Contents:
    trials = frames["trials"]
    spec_path = directory / "spec.toml"
    dataset = manifest.get("dataset")
    facts = [f"{len(trials)} trials in {directory}"]
    if expected is not None and len(trials) < expected:
        facts[0] = (f"partial: {len(trials)} of {expected} trials in {directory} (the run "
                    "stopped before the end; rerun it to finish)")
    if isinstance(dataset, dict) and dataset.get("name"):
        facts.append(f"dataset {dataset['name']} ({dataset.get('rows', '?')} rows)")
    elif isinstance(dataset, str):
        facts.append(f"dataset {dataset}")
    facts.append(f"swept: {', '.join(plots.varying_parameters(trials)) or 'nothing'}")
    if layout.x:
        placed = [f"{layout.x} across", *([f"{layout.y} down"] if layout.y else []),
                  *([f"one panel per {', '.join(layout.facet)}"] if layout.facet else []),
                  *([f"median over {layout.seeds} seeds"] if layout.seeds > 1 else [])]
        facts.append(f"figures: {', '.join(placed)}")
    return Contents(
        title=str(manifest.get("name") or directory.name),
        description=str(manifest.get("description") or ""),
        facts=facts,
        spec=_saved_text(spec_path),
        counts=status_counts(trials),
        glance=at_a_glance(trials, frames["history"], layout),
        glance_note=GLANCE.format(x=layout.x or "", seeds=", the median seed deciding"
                                  if layout.seeds > 1 else ""),
        best=best_trials(trials, layout),
        failed=failed_trials(trials, layout),
        pictures=pictures,
        versions=pd.DataFrame(sorted((manifest.get("versions") or {}).items()),
                              columns=["package", "version"]),
        times=pd.DataFrame([(k, str(manifest[k])) for k in
                            ("created", "started", "finished", "spec_hash", "host")
                            if manifest.get(k) is not None], columns=["field", "value"]),
        manifest=manifest,
    )


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


def at_a_glance(trials: pd.DataFrame, history: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The outcome map as text: for each row of the heatmaps, which x values fell in which
    outcome class (the same cells and classes as the outcome figure)."""
    if layout.x is None or trials.empty:
        return pd.DataFrame()
    cells = plots.cell_frame(trials, history, layout)
    rows = [c for c in (*layout.facet, layout.y) if c is not None]
    groups = plots.facet_keys(trials, Layout(None, None, tuple(rows), 1)) if rows else [()]
    classes = [name for name, *_ in plots.OUTCOMES if name in set(cells["outcome"])]
    table = []
    for key in groups:
        chosen = cells
        for column, value in zip(rows, key, strict=True):
            chosen = chosen[chosen[column] == value]
        if chosen.empty:
            continue
        line = {column: plots.value_label(column, value)
                for column, value in zip(rows, key, strict=True)}
        for name in classes:
            values = plots.ordered_values(layout.x, chosen.loc[chosen["outcome"] == name,
                                                               layout.x])
            line[name] = ", ".join(plots.value_label(layout.x, v) for v in values)
        table.append(line)
    return pd.DataFrame(table, columns=[*rows, *classes])


def _shown_parameters(trials: pd.DataFrame, layout: Layout) -> list[str]:
    varying = plots.varying_parameters(trials)
    ordered = [layout.x, layout.y, *layout.facet, "seed", *varying]
    return [c for c in dict.fromkeys(ordered) if c in varying]


def best_trials(trials: pd.DataFrame, layout: Layout, top: int = BEST_TRIALS) -> pd.DataFrame:
    """The trials with the lowest final error; diverged and failed ones never rank."""
    ranked = trials[trials["final_error"].notna()]
    ranked = ranked.sort_values(["final_error", "trial"], kind="stable").head(top)
    columns = ["trial", *_shown_parameters(trials, layout), *BEST_TRIAL_OUTCOMES]
    return ranked[columns].reset_index(drop=True)


def failed_trials(trials: pd.DataFrame, layout: Layout) -> pd.DataFrame:
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


# --- HTML ---------------------------------------------------------------------------------

GLANCE = ("Which values of {x} fell in which outcome class, row by row (the outcome figure "
          "below, as text{seeds}): converged reached the tolerance; learning more than halved "
          "its error; slow fell by less than half; flat stayed within 2% of its epoch-0 error "
          "(too small an alpha to move, or too large: stalled).")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1250px; padding: 0 1.5rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.facts { color: #555; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 0.8rem; overflow-x: auto; }
figure { margin: 1.5rem 0 2rem; } figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 0.95rem; margin-top: 0.4rem; }
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
    parts.append('<h2 id="spec">Spec</h2>')
    parts.append(f"<pre>{e(contents.spec)}</pre>" if contents.spec
                 else "<p>No spec.toml in this folder.</p>")
    parts.append('<h2 id="status">Status</h2>')
    parts.append(_html_table(contents.counts, "status counts"))
    if not contents.glance.empty:
        parts.append('<h2 id="glance">At a glance</h2>')
        parts.append(f"<p>{e(contents.glance_note)}</p>")
        parts.append(_html_table(contents.glance, "at a glance"))
    parts.append('<h2 id="best">Best trials</h2>')
    parts.append(_html_table(contents.best, "best trials") if not contents.best.empty
                 else "<p>No trial finished with a finite error.</p>")
    if not contents.failed.empty:
        parts.append('<h2 id="failed">Failed trials</h2>')
        parts.append(_html_table(contents.failed, "failed trials"))
    parts.append('<h2 id="figures">Figures</h2>')
    if not contents.pictures:
        parts.append("<p>No figures: the tables hold no trials to draw.</p>")
    for picture in contents.pictures:
        data = base64.b64encode(picture.png.read_bytes()).decode("ascii")
        parts.append(
            f'<figure id="{e(picture.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{e(picture.title)}"><figcaption><b>{e(picture.title)}.</b> '
            f"{e(picture.caption)} "
            f'<a href="plots/{e(picture.svg.name)}">SVG</a></figcaption></figure>')
    parts.append('<h2 id="manifest">Manifest</h2>')
    parts.append(_html_table(contents.times, "run"))
    parts.append(_html_table(contents.versions, "versions"))
    manifest_text = json.dumps(contents.manifest, indent=2, default=str)
    parts.append(f"<details><summary>manifest.json</summary><pre>{e(manifest_text)}</pre>"
                 "</details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_table(frame: pd.DataFrame, label: str) -> str:
    table: str = _cells(frame).to_html(index=False, escape=True, border=0)
    return table.replace("<table", f'<table aria-label="{html.escape(label)}"', 1)


# --- Markdown -----------------------------------------------------------------------------

def render_markdown(contents: Contents) -> str:
    """The page as Markdown, which viewers render as HTML: every text from the folder is
    HTML-escaped (`_md`), but for the spec, which a code fence shows as typed; the fence is
    longer than any run of backticks in the spec, so no line of it closes the fence early."""
    lines = [f"# {_md(contents.title)}", ""]
    if contents.description:
        lines += [_md(contents.description, one_line=False), ""]
    lines += [_md("; ".join(contents.facts)), "", "## Spec", ""]
    fence = "```"
    while fence in contents.spec:
        fence += "`"
    lines += [f"{fence}toml", contents.spec.rstrip("\n"), fence, ""] if contents.spec \
        else ["No spec.toml in this folder.", ""]
    lines += ["## Status", "", *_markdown_table(contents.counts), ""]
    if not contents.glance.empty:
        lines += ["## At a glance", "", _md(contents.glance_note), "",
                  *_markdown_table(contents.glance), ""]
    lines += ["## Best trials", ""]
    lines += _markdown_table(contents.best) if not contents.best.empty \
        else ["No trial finished with a finite error."]
    if not contents.failed.empty:
        lines += ["", "## Failed trials", "", *_markdown_table(contents.failed)]
    lines += ["", "## Figures", ""]
    if not contents.pictures:
        lines += ["No figures: the tables hold no trials to draw.", ""]
    for picture in contents.pictures:
        title = _md(picture.title)
        lines += [f"![{title}](plots/{picture.png.name})", "",
                  f"*{title}.* {_md(picture.caption)} ([SVG](plots/{picture.svg.name}))", ""]
    lines += ["## Manifest", "", *_markdown_table(contents.times), "",
              *_markdown_table(contents.versions), ""]
    return "\n".join(lines)


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
