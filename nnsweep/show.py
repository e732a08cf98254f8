"""`nnsweep show DIR`: a results folder at a glance, as terminal tables.

Everything shown from the folder (its name, description, parameter values, errors) is printed
as plain text: never read as rich markup, control characters escaped.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nnsweep import store, tables
from nnsweep.result import HIGHER_IS_BETTER, STATUSES
from nnsweep.store import Results
from nnsweep.text import terminal_safe


def best_trials(results: Results, top: int) -> pd.DataFrame:
    """The trials with the best final error (the highest accuracy); diverged and failed
    ones never rank."""
    return tables.ranked(results.trials).head(top)


def render(results: Results, *, top: int = 10, width: int = 120) -> str:
    manifest = results.manifest
    buffer = io.StringIO()
    # markup, emoji codes and highlighting off: a stray "[/x]" or ":fire:" prints as typed
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None,
                      markup=False, emoji=False, highlight=False)
    name = manifest.get("name", results.directory.name)
    console.print(_text(f"{name}: {len(results.trials)} trials in {results.directory}"))
    if results.partial:
        console.print(_text(f"partial: {len(results.trials)} of {results.expected} trials"))
    if results.running is not None:
        who = f" (pid {results.running['pid']} on {results.running['host']})" \
            if results.running else ""
        console.print(_text(f"a run is training the rest now{who}; these are the trials "
                            "finished so far, read from its journal"))
    if manifest.get("description"):
        console.print(_text(manifest["description"]))

    counts = results.trials["status"].value_counts()
    status_table = Table(title="status")
    status_table.add_column("status")
    status_table.add_column("trials", justify="right")
    for status in STATUSES:
        if counts.get(status, 0):
            status_table.add_row(Text(status), Text(str(int(counts[status]))))
    console.print(status_table)

    held = validation_line(results.trials)
    if held:
        console.print(_text(held))

    axes = [a for a in manifest.get("axes", []) if a in results.trials.columns]
    best = best_trials(results, top)
    table = Table(title=f"best {len(best)} trials by {_ranking(results.trials)}")
    columns = ["trial", *axes, "status", "final_error",
               *(["final_validation_error"] if held else []), "converged_epoch"]
    for column in columns:
        table.add_column(_text(column), justify="right" if column != "trial" else "left")
    for _, row in best.iterrows():
        table.add_row(*(_cell(row[c]) for c in columns))
    console.print(table)
    for part in search_parts(results, top):
        console.print(part)
    return buffer.getvalue()


def search_parts(results: Results, top: int) -> list[Text | Table]:
    """What the folder's search did: an edge search's edges, combination by combination; a
    random or sobol search's method and its best points; nothing for a grid."""
    if results.edges is not None and not results.edges.empty:
        return edge_parts(results.edges, top)
    halving = store.halving_search(results.manifest)
    if halving is not None and not results.trials.empty:
        return [_text(f"search: {halving.describe()}: "
                      f"{tables.halving_spent(results.trials, halving)}")]
    record = results.manifest.get("search")
    if not isinstance(record, dict) or record.get("method") not in ("random", "sobol") or (
            results.trials.empty):
        return []
    from nnsweep import report  # imported here (only for a sampled search): matplotlib

    search = report.sampled_search(results.manifest)
    if search is None:
        return []
    points = report.search_points(results.trials, search.axes)
    finite = points[np.isfinite(points["final_error"].to_numpy(dtype=float))].head(top)
    line = _text(f"search: {search.method}, {search.samples} samples drawn with seed "
                 f"{search.seed} over {', '.join(search.axes)}; {len(points)} points, "
                 f"{len(results.trials)} trials")
    repeated = bool((points["trials"] > 1).any())
    metric = "/".join(sorted(str(m) for m in results.trials["metric"].unique()))
    table = Table(title=f"best {len(finite)} points by {'median ' if repeated else ''}"
                        f"final {metric}")
    columns = [*search.axes, *(["trials"] if repeated else ["trial"]), "final_error",
               "converged", "diverged"]
    for column in columns:
        table.add_column(_text(column), justify="left" if column == "trial" else "right")
    for _, row in finite.iterrows():
        table.add_row(*(_cell(row[c]) for c in columns))
    return [line, table]


def edge_parts(edges: pd.DataFrame, top: int) -> list[Text | Table]:
    """An edge search in a line and a table: each combination of the other axes, its edge
    (empty where none lies in the bracket) and whether one was found; `top` rows at most."""
    axis, outcome = str(edges["axis"].iloc[0]), str(edges["outcome"].iloc[0])
    others = [c for c in tables.PARAM_COLUMNS
              if c in edges and c != axis and edges[c].nunique(dropna=False) > 1]
    found = int(edges["found"].sum())
    line = _text(f"edge search over {axis} (where {outcome} flips): {found} of {len(edges)} "
                 "combinations have an edge in the bracket")
    table = Table(title="edges")
    for column in ("combination", "edge", "found"):
        table.add_column(column, justify="left" if column == "combination" else "right")
    for _, row in edges.head(top).iterrows():
        combination = ", ".join(f"{c}={_cell(row[c])}" for c in others) or "all"
        table.add_row(_text(combination), _cell(row["edge"]),
                      Text("yes" if row["found"] else "no"))
    parts: list[Text | Table] = [line, table]
    if len(edges) > top:
        parts.append(_text(f"... and {len(edges) - top} more combinations in edges.csv"))
    return parts


def validation_line(trials: pd.DataFrame) -> str:
    """The held-out rows in one line: the best final validation error, its trial and its
    training error, and the median gap over the trials; "" when the data held none out."""
    if "final_validation_error" not in trials:
        return ""
    measured = trials[trials["final_validation_error"].notna()]
    if measured.empty:
        return ""
    higher = measured["metric"].astype(str).isin(sorted(HIGHER_IS_BETTER))
    held = measured["final_validation_error"].astype("float64")
    best = measured.assign(_key=held.where(~higher, -held)).sort_values(
        ["_key", "trial"], kind="stable").iloc[0]  # the lowest error, the highest accuracy
    metric = "/".join(sorted(str(m) for m in trials["metric"].unique()))
    scores = set(trials["metric"].astype(str)) <= HIGHER_IS_BETTER
    selects = measured["select"].astype("string").fillna("train") == "validation" \
        if "select" in measured else pd.Series(False, index=measured.index)
    if selects.any():  # their final error is the held-out rows'; the training one is unknown
        return (f"validation: best final {metric} on the held-out rows "
                f"{best['final_validation_error']:.6g} (trial {best['trial']}); the held-out "
                f"rows decide (select = validation) for {int(selects.sum())} of "
                f"{len(measured)} trials")
    gap = (measured["final_validation_error"] - measured["final_error"]).median()
    worse = "; negative: worse on the held-out rows" if scores else ""
    return (f"validation: best final {metric} on the held-out rows "
            f"{best['final_validation_error']:.6g} (trial {best['trial']}, training "
            f"{best['final_error']:.6g}); median gap {gap:+.3g} (validation minus training, "
            f"{len(measured)} trials{worse})")


def _ranking(trials: pd.DataFrame) -> str:
    """What the best trials are ranked by, in the table's title."""
    metrics = {str(m) for m in trials["metric"].dropna()}
    split = ("validation" in set(trials["select"].astype("string").fillna("train"))
             if "select" in trials else False)
    what = "final error" if not metrics or not metrics <= HIGHER_IS_BETTER \
        else f"final {'/'.join(sorted(metrics))}, highest first"
    return what + (" (select = validation)" if split else "")


def _cell(value: object) -> Text:
    if value is pd.NA or value is None:
        return Text("")
    if isinstance(value, float):
        return Text(f"{value:.6g}")
    return _text(value)


def _text(value: object) -> Text:
    """A folder's text as a rich Text: printed as it reads, never parsed as markup."""
    return Text(terminal_safe(str(value)))
