"""The report: built from a results folder's saved tables alone, complete, self-contained.

The folders here are written the way a run writes them (helpers.write_results, which
test_report_browser.py uses too): a tiny real sweep trained with the batched trainer, turned
into tables by nnsweep.tables, saved as parquet beside spec.toml and manifest.json.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
from helpers import (
    CLASSIFIER_FIXED,
    CLASSIFIER_GRID,
    CLASSIFIER_HELD_OUT,
    HELD_OUT_GRID,
    HELD_OUT_ROWS,
    ROOT,
    SMALL_FIXED,
    svg_tick_points,
    write_results,
)
from matplotlib.figure import Figure
from PIL import Image

from nnsweep import cellstats, directionmaps, figures, outcomes, plots, store, tables
from nnsweep.errors import NnsweepError, ResultsError, UnknownTrial
from nnsweep.figures import Layout
from nnsweep.learningcurves import log_spaced
from nnsweep.params import TrialParams
from nnsweep.report import (
    CURVE_BUDGET,
    CURVE_POINTS,
    LEGIBLE_PX,
    MIN_CURVE_POINTS,
    Contents,
    at_a_glance,
    best_trials,
    build_report,
    choose_layout,
    curve_points,
    embedded_json,
    explore_script,
    gather,
    held_out,
    held_out_history,
    png_size,
    read_tables,
    render_html,
)
from nnsweep.store import load_results


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small sweep with one failed trial, reported once for the whole module; plots/ holds
    a figure from an earlier build that this one does not draw."""
    directory = write_results(tmp_path_factory.mktemp("small") / "results",
                              failed=[TrialParams(hidden=(3,), alpha=0.5, seed=7, epochs=300,
                                                  output="linear", tolerance=0.1)])
    (directory / "plots").mkdir()
    (directory / "plots" / "heatmap_of_an_older_layout.png").write_bytes(b"\x89PNG stale")
    (directory / "plots" / "notes.txt").write_text("kept", encoding="utf-8")
    assert build_report(directory) == directory / "report.html"
    return directory


@pytest.fixture(scope="module")
def unreported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small sweep's folder before any report: for tests that need no figures. Shared by
    the module's tests: a test that asks for a report works on a `copy_of` it."""
    return write_results(tmp_path_factory.mktemp("unreported") / "results",
                         report={"x": "hidden", "y": "alpha"})


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _page(directory: Path) -> str:
    return (directory / "report.html").read_text(encoding="utf-8")


# --- files --------------------------------------------------------------------------------

def test_the_report_is_written_as_html_with_markdown_beside_it(small: Path) -> None:
    assert _page(small).startswith("<!DOCTYPE html>")
    assert (small / "report.md").read_text(encoding="utf-8").startswith("# small\n")


def test_every_figure_is_written_as_png_under_stable_names_and_svg_when_asked(
        small: Path, tmp_path: Path) -> None:
    names = {p.stem for p in (small / "plots").glob("*.png")}
    assert names == {"outcome", "heatmap_final_error", "heatmap_converged_share",
                     "heatmap_converged_epoch", "heatmap_direction_changes", "learning_curves",
                     "weight_directions"}
    assert not list((small / "plots").glob("*.svg"))
    for png in (small / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    page = build_report(copy, svg=True).read_text(encoding="utf-8")
    assert {p.stem for p in (copy / "plots").glob("*.svg")} == names
    assert all(f'href="plots/{name}.svg"' in page for name in names)


def test_the_report_imports_matplotlib_alone_for_its_figures() -> None:
    """No seaborn, and with it no scipy: plain matplotlib draws the same figures, and their
    imports were seconds of every report."""
    code = ("import sys, nnsweep.report; "
            "print(sorted(m for m in ('seaborn', 'scipy', 'matplotlib.pyplot') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]"


def test_a_rebuilt_report_drops_figures_it_no_longer_draws_and_keeps_other_files(
        small: Path) -> None:
    assert not (small / "plots" / "heatmap_of_an_older_layout.png").exists()
    assert (small / "plots" / "notes.txt").read_text(encoding="utf-8") == "kept"


def test_a_folder_without_tables_is_refused_with_the_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"no trials\.parquet"):
        build_report(tmp_path)


def test_the_saved_tables_are_read_back_in_their_schemas_but_the_history_lean(
        small: Path) -> None:
    """The report's tables hold what load_results gives, with every trial id a category (a
    code per row, not a string) and only the metrics the history is judged and drawn by."""
    frames = read_tables(small)
    for name in ("trials", "summary"):
        frame = frames[name]
        assert list(frame.columns) == list(tables.SCHEMAS[name])
        assert {c: str(t) for c, t in frame.dtypes.items()} == tables.SCHEMAS[name]
    directions = frames["directions"]
    assert {c: str(t) for c, t in directions.dtypes.items()} == {
        **tables.DIRECTIONS_SCHEMA, "trial": "category"}
    pd.testing.assert_frame_equal(directions.astype({"trial": "string"}),
                                  load_results(small).directions)
    history, full = frames["history"], load_results(small).history
    assert list(history.columns) == ["trial", "epoch", "split", "mae"]  # the metric it draws
    assert list(history["trial"].cat.categories) == list(frames["trials"]["trial"])
    assert list(history["split"].cat.categories) == list(tables.SPLITS)
    assert history["trial"].cat.codes.dtype.itemsize <= 4  # a code per row, not a string
    expected = full[list(history.columns)].astype({"trial": object, "split": object})
    pd.testing.assert_frame_equal(history.astype({"trial": object, "split": object}), expected)


# --- report.html --------------------------------------------------------------------------

def test_every_figure_is_embedded_in_the_page_as_a_png_data_uri(small: Path) -> None:
    page = _page(small)
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(list((small / "plots").glob("*.png")))
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:4] == b"\x89PNG"


def test_the_page_loads_nothing_from_elsewhere(small: Path) -> None:
    page = _page(small)
    assert not re.search(r"[a-z][a-z0-9+.-]*://", page, flags=re.I)  # no URL of any scheme
    assert not re.search(r'(?:src|href)="//', page)
    assert not re.search(r'<link[^>]+href="(?!data:)', page)
    assert not re.search(r'<(?:img|script|iframe|source|embed)[^>]+src="(?!data:)', page)
    assert "url(" not in page and "@import" not in page
    # Its scripts are inline, and the explorer's asks for nothing either.
    assert re.findall(r"<script[^>]*>", page) == [
        '<script type="application/json" id="explore-data">', '<script id="explore-script">']
    for call in ("fetch(", "XMLHttpRequest", "WebSocket", "import(", "EventSource", ".src"):
        assert call not in explore_script()


def test_every_figure_has_a_title_and_a_one_line_caption(small: Path) -> None:
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", _page(small), flags=re.S)
    assert len(captions) == 7
    for caption in captions:
        assert "\n" not in caption
        assert re.match(r"<b>[^<]+\.</b> \S", caption)
    assert any("median over 2 seeds" in caption for caption in captions)


def test_the_page_shows_description_spec_status_best_trials_and_manifest(small: Path) -> None:
    page = _page(small)
    assert "four alphas by two widths on XOR" in page
    assert "alpha = [0.01, 1.0, 10.0, 1000.0]" in page  # spec.toml, verbatim
    assert re.search(r'aria-label="status counts".*<td>diverged</td>\s*<td>\d+</td>', page,
                     flags=re.S)
    best = page.split('aria-label="best trials"')[1].split("</table>")[0]
    assert best.count("</tr>") == 1 + 10  # header and the ten best
    assert "converged" in best
    assert "2026-11-23T14:00:05+00:00" in page and np.__version__ in page


def test_the_best_trials_are_ranked_by_final_error_and_never_include_diverged_ones(
        small: Path) -> None:
    best = _page(small).split('aria-label="best trials"')[1].split("</table>")[0]
    trials = read_tables(small)["trials"].set_index("trial")
    ids = re.findall(r"<td>([0-9a-f]{12})</td>", best)
    errors = [float(trials.at[i, "final_error"]) for i in ids]
    assert errors == sorted(errors)
    assert all(trials.at[i, "status"] != "diverged" for i in ids)


def test_the_outcome_classes_are_listed_as_text_row_by_row(small: Path) -> None:
    glance = _page(small).split('aria-label="at a glance"')[1].split("</table>")[0]
    header = re.findall(r"<th>([^<]*)</th>", glance)
    # With two seeds the upper median decides: no cell has both seeds converged.
    classes = [name for name, *_ in figures.OUTCOMES]
    assert header[0] == "hidden" and "converged" not in header
    assert header[1:] == [name for name in classes if name in header[1:]]
    assert {"diverged", "failed"} <= set(header)
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>((?:\s*<td>[^<]*</td>)+)", glance)
    assert [hidden for hidden, _ in rows] == ["2", "3", "4"]
    for hidden, cells in rows:
        listed = [v for cell in re.findall(r"<td>([^<]*)</td>", cells) if cell
                  for v in cell.split(", ")]
        expected = ["0.5"] if hidden == "3" else ["0.01", "1", "10", "1000"]
        assert sorted(listed, key=float) == expected  # every cell of the row, once
    diverged = header.index("diverged") - 1
    assert all("1000" in re.findall(r"<td>([^<]*)</td>", cells)[diverged].split(", ")
               for hidden, cells in rows if hidden != "3")


def test_failed_trials_are_listed_with_their_error(small: Path) -> None:
    failed = _page(small).split('aria-label="failed trials"')[1].split("</table>")[0]
    assert "ValueError: weights of the wrong shape" in failed


def test_text_from_the_folder_is_escaped_in_the_page(unreported: Path) -> None:
    frames = read_tables(unreported)
    manifest = {"name": "a<b", "description": "<b>bold</b> & <script>"}
    layout = choose_layout(frames["trials"], manifest)
    page = render_html(gather(unreported, frames, manifest, layout, []))
    assert "<h1>a&lt;b</h1>" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in page
    assert "<script>" not in page


def _sections(page: str) -> list[str]:
    return re.findall(r'<h2 id="([^"]+)"', page)


def test_the_page_answers_first_then_shows_the_evidence_and_ends_with_the_record(
        small: Path) -> None:
    assert _sections(_page(small)) == ["answer", "glance", "heatmaps", "curves", "more",
                                       "failed", "spec", "manifest"]
    page = _page(small)
    assert page.index('id="explore"') < page.index('<figure id="outcome"')
    assert page.index('<figure id="learning_curves"') > page.index('<h2 id="curves"')


def test_the_markdown_follows_the_same_order(small: Path) -> None:
    text = (small / "report.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", text, flags=re.M) == [
        "Answer", "At a glance", "Heatmaps", "Learning curves", "More figures",
        "Failed trials", "Spec", "Manifest"]


# --- the answer ---------------------------------------------------------------------------

def designed(folder: Path, outcomes: dict[tuple[float, str], tuple[str, list[float]]]
             ) -> tuple[dict[str, pd.DataFrame], Layout]:
    """The folder's tables with each cell's seeds given a status and final errors by design
    (cells not named: not converged at 0.4), and the layout alpha across, hidden down."""
    frames = read_tables(folder)
    trials = frames["trials"].copy()
    for row in trials.index:
        status, errors = outcomes.get((float(trials.at[row, "alpha"]),
                                       str(trials.at[row, "hidden"])), ("not_converged", []))
        seed = int(trials.at[row, "seed"])
        error = errors[seed - 1] if errors else 0.4
        trials.at[row, "status"] = status
        trials.at[row, "final_error"] = np.nan if status == "diverged" else error
        trials.at[row, "best_error"] = np.nan if status == "diverged" else error
        trials.at[row, "converged_epoch"] = 100 * seed if status == "converged" else pd.NA
    frames = {**frames, "trials": trials}
    return frames, choose_layout(trials, {}, x="alpha", y="hidden")


def _answer(folder: Path, frames: dict[str, pd.DataFrame], layout: Layout) -> str:
    return _answer_of(render_html(gather(folder, frames, {"name": "designed"}, layout, [])))


def _answer_of(page: str) -> str:
    found = re.search(r'<p class="answer">(.*?)</p>', page)
    assert found is not None
    return html.unescape(found.group(1))


def test_the_answer_names_the_best_cell_with_its_parameters_and_error(unreported: Path) -> None:
    frames, layout = designed(unreported, {(10.0, "2"): ("converged", [0.002, 0.004]),
                                           (1.0, "2"): ("converged", [0.01, 0.03])})
    answer = _answer(unreported, frames, layout)
    metric = str(frames["trials"]["metric"].iloc[0])
    assert answer.startswith(f"The best cell is alpha = 10, hidden = 2: median final {metric} "
                             "0.003 over 2 seeds (median best 0.003); 2 of 2 seeds reached ")
    assert "by epoch 150 (median)." in answer


def test_the_answer_says_where_most_seeds_converge_and_where_they_diverge(
        unreported: Path) -> None:
    frames, layout = designed(unreported, {
        (1.0, "2"): ("converged", [0.01, 0.02]), (10.0, "2"): ("converged", [0.01, 0.02]),
        (1.0, "4"): ("converged", [0.01, 0.02]),
        (10.0, "4"): ("converged", [0.01, 0.02]),  # ... but one seed only: not most
        (1000.0, "2"): ("diverged", []), (1000.0, "4"): ("diverged", [])})
    trials = frames["trials"]
    trials.loc[(trials["alpha"] == 10.0) & (trials["hidden"] == "4") & (trials["seed"] == 2),
               "status"] = "not_converged"
    answer = _answer(unreported, frames, layout)
    assert "Most seeds converge (reach " in answer
    assert "at alpha 1 to 10 for hidden 2; alpha 1 for hidden 4." in answer
    assert answer.endswith("Most seeds diverge (a weight or the error overflows) at "
                           "alpha 1000 (every hidden).")


def test_the_answer_names_the_panel_and_rows_where_cells_diverge(unreported: Path) -> None:
    frames, _ = designed(unreported, {})
    trials = frames["trials"]
    trials["init"] = np.where(trials["seed"] == 1, "normal", "uniform")  # one seed a panel
    diverged = (((trials["init"] == "normal") & (trials["alpha"] == 1000.0)
                 & (trials["hidden"] == "4"))
                | ((trials["init"] == "uniform") & (trials["alpha"] >= 10.0)))
    trials.loc[diverged, ["status", "final_error"]] = ["diverged", np.nan]
    layout = choose_layout(trials, {}, x="alpha", y="hidden")
    assert (layout.facet, layout.seeds) == (("init",), 1)
    assert _answer(unreported, frames, layout).endswith(
        "Trials diverge (a weight or the error overflows) at alpha 1000 for init = normal "
        "with hidden 4; alpha 10 to 1000 for init = uniform (every hidden).")


def test_the_answer_says_so_when_nothing_converges_or_diverges(unreported: Path) -> None:
    frames, layout = designed(unreported, {})
    answer = _answer(unreported, frames, layout)
    assert "No trial reaches " in answer
    assert answer.endswith("No cell diverges in most of its seeds.")


def test_the_answer_counts_the_failed_trials(small: Path) -> None:
    answer = _answer_of(_page(small))
    assert answer.endswith("1 trial failed (listed at the end).")


# --- the sweep's times --------------------------------------------------------------------

def test_the_manifest_section_shows_every_invocation_and_the_sweeps_totals(
        unreported: Path) -> None:
    frames = read_tables(unreported)
    manifest = {"name": "resumed", "invocations": [
        {"started": "2026-11-23T14:00:00+00:00", "finished": "2026-11-23T14:00:30+00:00",
         "command": "python -m nnsweep run a.toml", "jobs": 2, "engine": "numpy",
         "trained": 12, "reused": 0, "interrupted": True},
        {"started": "2026-11-23T14:01:00+00:00", "finished": "2026-11-23T14:01:20+00:00",
         "command": "python -m nnsweep run a.toml", "jobs": 2, "engine": "numpy",
         "trained": 4, "reused": 12, "interrupted": False},
        {"started": "2026-11-23T15:00:00+00:00", "command": "python -m nnsweep run a.toml"},
    ]}
    layout = choose_layout(frames["trials"], manifest)
    page = render_html(gather(unreported, frames, manifest, layout, []))
    manifest_section = page.split('<h2 id="manifest">')[1]
    assert ("3 invocations (1 did not record an end): 50 s of running in all, 80 s from the "
            "first start to the last end; 16 trials trained, 12 reused.") in manifest_section
    table = manifest_section.split('aria-label="invocations"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>\s*<td>(\d)</td>", table)
    assert rows == ["1", "2", "3"]
    assert "did not finish" in table


# --- the explorer -------------------------------------------------------------------------

def _explore(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="explore-data">(.*?)</script>',
                      page, flags=re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_the_explorer_holds_one_entry_per_heatmap_cell_with_its_numbers(small: Path) -> None:
    data = _explore(_page(small))
    trials = read_tables(small)["trials"]
    cells = trials.groupby(["alpha", "hidden"])
    assert len(data["cells"]) == cells.ngroups
    for cell in data["cells"]:
        params = dict(cell["params"])
        alpha = float(params["alpha"])
        mine = trials[(trials["alpha"] == alpha) & (trials["hidden"] == params["hidden"])]
        assert data["x"]["labels"][cell["i"]] == params["alpha"]
        assert data["y"]["labels"][cell["j"]] == params["hidden"]
        assert cell["seeds"] == len(mine)
        assert cell["statuses"] == {s: int(n) for s, n in mine["status"].value_counts().items()}
        if (mine["status"] == "diverged").sum() * 2 > len(mine):
            assert cell["diverged"] and cell["final"] is None
        elif mine["final_error"].notna().all():
            assert cell["final"] == pytest.approx(float(mine["final_error"].median()),
                                                  rel=1e-5)


def test_each_cells_curve_is_the_median_and_range_of_its_seeds(small: Path) -> None:
    data = _explore(_page(small))
    frames = read_tables(small)
    trials, history = frames["trials"], frames["history"]
    metric = data["metric"]
    for cell in data["cells"]:
        params = dict(cell["params"])
        mine = trials[(trials["alpha"] == float(params["alpha"]))
                      & (trials["hidden"] == params["hidden"])]["trial"]
        recorded = history[history["trial"].isin(mine)]
        curve = cell["curve"]
        if recorded.empty:
            assert curve["e"] == []
            continue
        assert curve["e"][0] == recorded["epoch"].min()
        assert curve["e"][-1] == recorded["epoch"].max()
        assert curve["e"] == sorted(curve["e"])
        first = recorded[recorded["epoch"] == curve["e"][0]][metric]
        assert curve["m"][0] == pytest.approx(float(first.median()), rel=1e-3)
        assert curve["lo"][0] == pytest.approx(float(first.min()), rel=1e-3)
        assert curve["hi"][0] == pytest.approx(float(first.max()), rel=1e-3)


def _long_history(frames: dict[str, pd.DataFrame], epochs: int) -> dict[str, pd.DataFrame]:
    """The tables with every trial given `epochs` recorded epochs of a falling error."""
    trials = frames["trials"]
    epoch = np.tile(np.arange(epochs), len(trials))  # (trials * epochs,)
    error = 1.0 / (1.0 + epoch)
    history = pd.DataFrame({"trial": np.repeat(trials["trial"].to_numpy(), epochs),
                            "epoch": epoch, "mae": error, "mse": error, "sse": error})
    return {**frames, "history": history}


def test_the_explorers_data_grows_with_the_cells_not_with_the_epochs(unreported: Path) -> None:
    frames = read_tables(unreported)
    layout = choose_layout(frames["trials"], {})
    for epochs in (2_000, 40_000):  # twenty times the epochs, the same bound
        page = render_html(gather(unreported, _long_history(frames, epochs), {}, layout, []))
        data = _explore(page)
        assert len(data["cells"]) == frames["trials"].groupby(list(layout.keys)).ngroups
        assert data["points"] == curve_points(len(data["cells"]))
        one_trials = np.flatnonzero(log_spaced(np.zeros(epochs, dtype=np.int64), data["points"]))
        for cell in data["cells"]:
            curve = cell["curve"]
            assert len(curve["e"]) <= data["points"] + 1
            assert len(curve["m"]) == len(curve["lo"]) == len(curve["hi"]) == len(curve["e"])
            assert curve["e"] == one_trials.tolist()  # its seeds' epochs, thinned once


def test_a_cell_whose_seeds_stopped_at_other_epochs_is_thinned_to_the_same_bound(
        unreported: Path) -> None:
    frames = _long_history(read_tables(unreported), 40_000)
    history, trials = frames["history"], frames["trials"]
    short = set(trials.groupby(["alpha", "hidden"])["trial"].first())  # one seed a cell
    cut = history["trial"].isin(short) & (history["epoch"] >= 7_777)  # stopped, as diverged
    layout = choose_layout(trials, {})
    page = render_html(gather(unreported, {**frames, "history": history[~cut]}, {}, layout, []))
    data = _explore(page)
    for cell in data["cells"]:
        epochs = cell["curve"]["e"]
        assert len(epochs) <= data["points"] + 1
        assert (epochs[0], epochs[-1]) == (0, 40_000 - 1)
        assert epochs == sorted(set(epochs))


@pytest.mark.parametrize("cells", [1, 49, CURVE_BUDGET // CURVE_POINTS + 1, 10_000, 10**6])
def test_big_grids_get_fewer_points_per_curve_within_the_budget(cells: int) -> None:
    points = curve_points(cells)
    assert MIN_CURVE_POINTS <= points <= CURVE_POINTS
    assert cells * points <= max(CURVE_BUDGET, cells * MIN_CURVE_POINTS)
    if cells * CURVE_POINTS <= CURVE_BUDGET:
        assert points == CURVE_POINTS


HOSTILE = ("</script><script>alert(1)</script>", "<!-- \u2028 \u2029 & </SCRIPT >")


def test_hostile_text_cannot_close_the_explorers_script(unreported: Path) -> None:
    frames = read_tables(unreported)
    trials = frames["trials"].copy()
    trials["init"] = [HOSTILE[i % 2] for i in range(len(trials))]  # a facet of hostile values
    frames = {**frames, "trials": trials}
    manifest = {"name": HOSTILE[0], "description": HOSTILE[1]}
    layout = choose_layout(trials, manifest)
    assert layout.facet == ("init",)
    page = render_html(gather(unreported, frames, manifest, layout, []))
    assert page.count("<script") == 2 and page.lower().count("</script") == 2
    assert "<!--" not in page
    embedded = page.split('id="explore-data">')[1].split("</script>")[0]
    assert "\u2028" not in embedded and "\u2029" not in embedded  # line ends to a script
    data = _explore(page)
    assert data["title"] == HOSTILE[0]
    assert sorted(data["panels"]) == sorted(f"init = {value}" for value in HOSTILE)


def test_the_explorers_script_ships_with_the_package_and_cannot_end_early() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "explore.js" in setuptools["tool"]["setuptools"]["package-data"]["nnsweep"]
    script = explore_script()
    assert "</script" not in script.lower() and "<!--" not in script
    assert "innerHTML" not in script  # data goes in as text, never as markup


def test_a_sweep_without_an_x_axis_has_no_explorer(tmp_path: Path,
                                                   unreported: Path) -> None:
    frames = read_tables(unreported)
    one = {**frames, "trials": frames["trials"].head(1)}
    layout = choose_layout(one["trials"], {})
    page = render_html(gather(unreported, one, {}, layout, []))
    assert "<script" not in page and 'id="explore"' not in page


# --- figures at a legible size ------------------------------------------------------------

def test_every_figure_is_sized_to_keep_its_tick_text_legible(small: Path,
                                                             tmp_path: Path) -> None:
    """Sized from the tick text as drawn; the SVG copy, asked for here, shows what it was."""
    small = shutil.copytree(small, tmp_path / "copy")
    build_report(small, svg=True)
    page = _page(small)
    figures = re.findall(r'<figure id="([^"]+)"><div class="scroll"><img src="[^"]+" '
                         r'width="(\d+)" height="(\d+)" style="min-width: (\d+)px"', page)
    assert len(figures) == len(list((small / "plots").glob("*.png")))
    for name, width, height, floor in figures:
        png = small / "plots" / f"{name}.png"
        with Image.open(png) as image:
            assert (int(width), int(height)) == image.size
            dpi = float(image.info["dpi"][0])
        points = svg_tick_points(png.with_suffix(".svg").read_text(encoding="utf-8"))
        assert points is not None
        tick = points * dpi / 72  # the smallest tick text, in the PNG's pixels
        assert int(floor) / int(width) * tick >= LEGIBLE_PX  # never shrunk below legible
        assert int(floor) <= max(int(width), 1) or tick < LEGIBLE_PX  # nor more than needed


def test_a_pictures_tick_size_as_drawn_is_what_its_svg_copy_shows(small: Path,
                                                                  tmp_path: Path) -> None:
    frames = read_tables(small)
    layout = figures.choose_layout(frames["trials"])
    pictures = plots.draw_all(frames, layout, tmp_path, vector=True)
    assert pictures and all(p.tick_points is not None for p in pictures)
    for picture in pictures:
        assert picture.tick_points == pytest.approx(
            svg_tick_points(picture.svg.read_text(encoding="utf-8")), abs=0.01), picture.name


@pytest.mark.parametrize("fonttype", ["path", "none"])
def test_the_tick_text_size_is_read_from_a_matplotlib_svg(tmp_path: Path,
                                                          fonttype: str) -> None:
    figure = Figure(figsize=(3, 2))
    axes = figure.subplots()
    axes.plot([1, 2, 3], [1, 4, 9])
    axes.tick_params(axis="x", labelsize=7.5)
    axes.tick_params(axis="y", labelsize=11)
    axes.set_title("smaller, but no tick", fontsize=5)
    with matplotlib.rc_context({"svg.fonttype": fonttype}):
        figure.savefig(tmp_path / "f.svg")
    assert svg_tick_points((tmp_path / "f.svg").read_text(encoding="utf-8")) == 7.5


def test_a_figure_without_tick_labels_has_no_tick_size(tmp_path: Path) -> None:
    figure = Figure(figsize=(3, 2))
    figure.subplots().set_axis_off()
    figure.savefig(tmp_path / "f.svg")
    assert svg_tick_points((tmp_path / "f.svg").read_text(encoding="utf-8")) is None


def test_a_pngs_size_and_resolution_are_read_from_its_header(tmp_path: Path) -> None:
    figure = Figure(figsize=(3, 2))
    figure.subplots().plot([0, 1])
    figure.savefig(tmp_path / "f.png", dpi=110)
    width, height, dpi = png_size((tmp_path / "f.png").read_bytes())
    with Image.open(tmp_path / "f.png") as image:
        assert (width, height) == image.size
        assert dpi == pytest.approx(image.info["dpi"][0], rel=1e-6)


# --- report.md ----------------------------------------------------------------------------

def test_the_markdown_links_every_figure_with_its_caption(small: Path) -> None:
    text = (small / "report.md").read_text(encoding="utf-8")
    for png in (small / "plots").glob("*.png"):
        assert re.search(rf"!\[[^\]]+\]\(plots/{png.name}\)\n\n\*[^*]+\.\* \S", text)


def test_the_markdown_holds_the_spec_and_the_tables(small: Path) -> None:
    text = (small / "report.md").read_text(encoding="utf-8")
    assert "```toml\nname = \"small\"" in text
    assert "| status | trials |" in text
    assert re.search(r"\| trial \| alpha \| hidden \| seed \|", text)


# --- layouts ------------------------------------------------------------------------------

def test_the_sweep_files_report_table_chooses_the_axes(unreported: Path) -> None:
    manifest = json.loads((unreported / "manifest.json").read_text(encoding="utf-8"))
    layout = choose_layout(read_tables(unreported)["trials"], manifest)
    assert (layout.x, layout.y, layout.facet, layout.seeds) == ("hidden", "alpha", (), 2)


def test_arguments_override_the_sweep_files_report_table(unreported: Path) -> None:
    manifest = json.loads((unreported / "manifest.json").read_text(encoding="utf-8"))
    layout = choose_layout(read_tables(unreported)["trials"], manifest, x="alpha", y="seed")
    assert (layout.x, layout.y, layout.facet, layout.seeds) == ("alpha", "seed", ("hidden",), 1)


def test_the_page_says_which_axes_the_figures_use(small: Path) -> None:
    assert "figures: alpha across, hidden down, median over 2 seeds" in _page(small)


def test_an_unknown_axis_is_refused_with_the_parameters_listed(unreported: Path,
                                                               tmp_path: Path) -> None:
    folder = copy_of(unreported, tmp_path)
    with pytest.raises(NnsweepError, match=r"report axis 'alpah': not a parameter.*alpha"):
        build_report(folder, x="alpah")


@pytest.mark.slow
def test_a_one_axis_sweep_is_drawn_as_a_single_row(tmp_path: Path) -> None:
    directory = write_results(tmp_path / "r", {"alpha": [0.1, 1.0, 10.0]}, {"epochs": 50})
    page = build_report(directory).read_text(encoding="utf-8")
    assert "figures: alpha across</p>" in page
    assert (directory / "plots" / "heatmap_final_error.png").exists()
    assert not (directory / "plots" / "heatmap_converged_share.png").exists()


@pytest.mark.slow
def test_a_single_trial_gets_curves_and_direction_maps_but_no_heatmaps(tmp_path: Path) -> None:
    directory = write_results(tmp_path / "r", {"seed": [3]}, {"epochs": 50})
    build_report(directory)
    assert {p.stem for p in (directory / "plots").glob("*.png")} == {
        "learning_curves", "weight_directions"}


@pytest.mark.slow
def test_a_sweep_where_every_trial_diverged_even_without_hidden_layers_gets_a_report(
        tmp_path: Path) -> None:
    directory = write_results(tmp_path / "r", {"alpha": [1000.0, 5000.0], "hidden": [(), (2,)]},
                              {"epochs": 100, "output": "linear", "seed": 2})
    trials = read_tables(directory)["trials"]
    assert set(trials["status"]) == {"diverged"}
    page = build_report(directory).read_text(encoding="utf-8")
    assert "No trial finished with a finite error." in page
    assert '<td>diverged</td>\n      <td>4</td>' in page
    assert {p.stem for p in (directory / "plots").glob("*.png")} == {
        "outcome", "heatmap_final_error", "heatmap_direction_changes", "learning_curves",
        "weight_directions"}


# --- choosing the trial whose weights are drawn -------------------------------------------

def test_the_direction_maps_default_to_the_best_trial(small: Path) -> None:
    trials = read_tables(small)["trials"]
    best = str(trials.sort_values("final_error")["trial"].iloc[0])
    assert f"changed sign in trial {best}" in _page(small)


def test_an_unknown_trial_is_refused_before_anything_is_written(unreported: Path,
                                                                tmp_path: Path) -> None:
    folder = copy_of(unreported, tmp_path)
    with pytest.raises(UnknownTrial) as caught:
        build_report(folder, trial="zzz")
    assert (caught.value.trial, caught.value.matches) == ("zzz", 0)
    assert not (folder / "plots").exists()
    assert not (folder / "report.html").exists()


def test_a_folder_with_empty_tables_gets_a_report_without_figures(tmp_path: Path) -> None:
    tmp_path.joinpath("manifest.json").write_text('{"name": "empty"}', encoding="utf-8")
    for name, schema in tables.SCHEMAS.items():
        tables.empty(schema).to_parquet(tmp_path / f"{name}.parquet", index=False)
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "No figures: the tables hold no trials to draw." in page
    assert "No trial finished with a finite error." in page
    assert list((tmp_path / "plots").iterdir()) == []


# --- held-out rows ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small sweep on moons with a quarter of the rows held out for validation, reported
    once for the module."""
    directory = write_results(tmp_path_factory.mktemp("held") / "results", HELD_OUT_GRID,
                              held_out=0.25)
    build_report(directory)
    return directory


def test_the_page_says_what_was_held_out_and_how_many_rows(held: Path, small: Path) -> None:
    rows = round(0.25 * HELD_OUT_ROWS)
    fact = (f"validation: {rows} more rows held out (25% of the data, drawn with split_seed 0),"
            " never trained on")
    assert html.escape(fact) in _page(held)
    assert fact in (held / "report.md").read_text(encoding="utf-8")
    shown = re.sub(r"<script.*?</script>", "", _page(small), flags=re.S)  # what it says
    for page in (shown, (small / "report.md").read_text(encoding="utf-8")):
        assert "held out" not in page and "held-out" not in page


def test_a_validation_file_is_named_without_its_folders() -> None:
    spec = '[dataset]\ncsv = "/home/me/data.csv"\nvalidation_csv = "/home/me/secret/val.csv"\n'
    frames = {"directions": tables.empty(tables.SCHEMAS["directions"])}
    assert held_out(spec, None, frames["directions"]) == \
        "validation: more rows held out (from val.csv), never trained on"


def test_the_best_trials_show_their_errors_on_the_held_out_rows(held: Path,
                                                                small: Path) -> None:
    trials = read_tables(held)["trials"]
    layout = choose_layout(trials, {})
    best = best_trials(trials, layout)
    assert list(best.columns[-3:]) == ["final_validation_error", "best_validation_error",
                                       "best_validation_epoch"]
    shown = trials.set_index("trial").loc[best["trial"], "final_validation_error"]
    assert best["final_validation_error"].tolist() == shown.tolist()
    for page in (_page(held), (held / "report.md").read_text(encoding="utf-8")):
        assert "final_validation_error" in page and "best_validation_epoch" in page
    assert "final_validation_error" not in _page(small)


def test_held_out_figures_are_drawn_only_with_held_out_rows(held: Path) -> None:
    names = [p.stem for p in (held / "plots").glob("*.png")]
    assert {"heatmap_validation_error", "heatmap_generalization_gap"} <= set(names)
    page = _page(held)
    order = [page.index(f'<figure id="{name}">') for name in
             ("heatmap_final_error", "heatmap_validation_error", "heatmap_generalization_gap")]
    assert order == sorted(order)  # the held-out error beside the training one, then the gap


def test_the_answer_names_the_best_cell_on_the_held_out_rows(held: Path) -> None:
    frames = read_tables(held)
    trials = frames["trials"]
    layout = choose_layout(trials, {})
    cells = cellstats.validation_cells(trials, layout)
    finite = cells[np.isfinite(cells["error"])]
    best = finite.loc[finite["error"].idxmin()]
    said = _answer_of(_page(held))
    assert (f"On the held-out rows, never trained on, the best cell is alpha = "
            f"{figures.value_label('alpha', best['alpha'])}, hidden = {best['hidden']}: median "
            f"final validation mae {best['error']:.3g}, against {best['train_error']:.3g} on "
            f"the training rows (gap {best['gap']:+.3g})") in html.unescape(said)
    assert said.index("The best cell is") < said.index("On the held-out rows")


def test_the_explorer_holds_each_cells_held_out_curve_and_gap(held: Path, small: Path) -> None:
    data = _explore(_page(held))
    frames = read_tables(held)
    trials = frames["trials"]
    history = store.load_results(held).history
    validation = history[history["split"] == "validation"]
    cells = cellstats.validation_cells(trials, choose_layout(trials, {})).set_index(
        ["alpha", "hidden"])
    assert data["validation"] is True
    for cell in data["cells"]:
        params = dict(cell["params"])
        alpha = float(params["alpha"])
        mine = cells.loc[(alpha, params["hidden"])]
        assert cell["gap"] == (pytest.approx(mine["gap"], rel=1e-5)
                               if np.isfinite(mine["gap"]) else None)
        seeds = trials[(trials["alpha"] == alpha) & (trials["hidden"] == params["hidden"])]
        recorded = validation[validation["trial"].isin(seeds["trial"])]
        curve = cell["held"]
        assert curve["e"][0] == recorded["epoch"].min()
        assert curve["e"][-1] == recorded["epoch"].max()
        first = recorded[recorded["epoch"] == curve["e"][0]]["mae"]
        assert curve["m"][0] == pytest.approx(float(first.median()), rel=1e-3)
    assert "dashed line of the same colour is the median on the held-out" in _page(held)
    plain = _explore(_page(small))
    assert "validation" not in plain
    assert not any("held" in cell or "gap" in cell for cell in plain["cells"])



# --- a classifier: the highest accuracy is the best, the held-out rows decide -------------

@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier on moons whose held-out accuracy decides (select = "validation"): its
    folder, before any report."""
    return write_results(tmp_path_factory.mktemp("classifier") / "results", CLASSIFIER_GRID,
                         CLASSIFIER_FIXED, held_out=CLASSIFIER_HELD_OUT, name="moons",
                         description="accuracy on moons")


def _contents(directory: Path) -> Contents:
    """What the page would say, without drawing its figures."""
    results = store.load_results(directory)
    frames = read_tables(directory)
    layout = choose_layout(frames["trials"], results.manifest)
    return gather(directory, frames, results.manifest, layout, [],
                  validation=held_out_history(results.history))


def test_outcomes_under_select_validation_are_judged_on_the_held_out_rows(
        classifier: Path) -> None:
    results = store.load_results(classifier)
    trials, history = results.trials, results.history
    assert set(trials["select"]) == {"validation"}
    held, trained = history[history["split"] == "validation"], tables.training(history)
    layout = choose_layout(trials, results.manifest)
    on_held = at_a_glance(trials, held, layout)  # every trial judged on its held-out rows
    assert not on_held.equals(at_a_glance(trials, trained, layout))  # the two tell apart
    assert _contents(classifier).glance.equals(on_held)
    frames = read_tables(classifier)
    assert cellstats.trial_outcomes(trials, frames["history"], held_out_history(history)).tolist() \
        == outcomes.trial_outcomes(trials, held).tolist()


def test_the_answer_names_the_cell_of_the_highest_accuracy(classifier: Path) -> None:
    trials = read_tables(classifier)["trials"]
    assert (trials["status"] != "diverged").all()
    medians = trials.groupby(["alpha", "hidden"])["final_error"].median()
    alpha, hidden = medians.idxmax()
    assert (medians == medians.max()).sum() == 1 and medians.min() < medians.max()
    said = _contents(classifier).answer
    assert said[0].startswith(f"The best cell is alpha = {figures.value_label('alpha', alpha)}, "
                              f"hidden = {hidden}: median final accuracy "
                              f"{medians.max():.3g} over 2 seeds")
    tolerance = CLASSIFIER_FIXED["tolerance"]
    assert f"reached accuracy >= {1 - tolerance:g} by epoch" in said[0]
    assert f"Most seeds converge (reach accuracy >= {1 - tolerance:g}) at alpha " \
        f"{figures.value_label('alpha', alpha)} for hidden {hidden}." in said


def test_the_held_out_answer_names_the_highest_validation_accuracy_and_the_real_gap(
        classifier: Path) -> None:
    """select = "validation" makes the final error the held-out accuracy; the training
    accuracy and the gap come from the history's last training row."""
    results = store.load_results(classifier)
    trials, history = results.trials, results.history
    last = tables.training(history).sort_values("epoch").groupby("trial")["accuracy"].last()
    seeds = trials.assign(training=trials["trial"].map(last))
    seeds = seeds.assign(gap=seeds["final_validation_error"] - seeds["training"])
    cells = seeds.groupby(["alpha", "hidden"])[["final_validation_error", "training",
                                                "gap"]].median()
    alpha, hidden = cells["final_validation_error"].idxmax()
    best = cells.loc[(alpha, hidden)]
    assert best["gap"] != 0  # training and held-out accuracies differ
    said = _contents(classifier).answer[1]
    assert said == (f"On the held-out rows, never trained on, the best cell is alpha = "
                    f"{figures.value_label('alpha', alpha)}, hidden = {hidden}: median final "
                    f"validation accuracy {best['final_validation_error']:.3g}, against "
                    f"{best['training']:.3g} on the training rows (gap {best['gap']:+.3g}; "
                    "negative: worse on the held-out rows).")


def test_the_best_trials_are_the_highest_accuracies(classifier: Path) -> None:
    trials = read_tables(classifier)["trials"]
    best = _contents(classifier).best
    assert best["final_error"].tolist() == sorted(trials["final_error"], reverse=True)[:10]
    assert best["trial"].tolist() == tables.ranked(trials)["trial"].head(10).tolist()
    frames = read_tables(classifier)
    top = trials.set_index("trial").loc[directionmaps.default_trial(trials, frames["directions"])]
    assert top["final_error"] == trials["final_error"].max()  # the direction maps' trial
    assert "best means the best final accuracy on the held-out validation rows, as select " \
        "= validation asks" in _contents(classifier).facts


def test_the_explorer_starts_at_the_highest_accuracy_and_says_its_scale_is_linear(
        classifier: Path, unreported: Path) -> None:
    data = _contents(classifier).explore
    assert data is not None and data["higher"] is True
    finals = [cell["final"] for cell in data["cells"]]
    assert finals[data["start"]] == max(finals) and finals.count(max(finals)) == 1
    page = render_html(_contents(classifier))
    assert "accuracy on a linear one" in page and "light where higher (better)" in page
    plain = _contents(unreported).explore
    assert plain is not None and plain["higher"] is False
    errors = [cell["final"] for cell in plain["cells"]]
    assert errors[plain["start"]] == min(e for e in errors if e is not None)


def test_trials_that_differ_in_metric_are_drawn_in_mae_and_the_page_says_so(
        tmp_path: Path) -> None:
    directory = write_results(tmp_path / "results", {"alpha": [0.1, 1.0],
                                                     "metric": ["mae", "sse"]}, SMALL_FIXED)
    contents = _contents(directory)
    assert contents.answer[-1] == ("The trials differ in metric (mae, sse): the learning "
                                   "curves and the explorer's curves draw every trial's mae, "
                                   "each heatmap cell its trials' own metric.")
    assert contents.explore is not None and contents.explore["metric"] == "mae"
    assert "differ in metric" not in " ".join(_contents(write_results(
        tmp_path / "one", {"alpha": [0.1, 1.0]}, SMALL_FIXED)).answer)


NODE = shutil.which("node")
LIGHT, DARK = "rgb(253,231,37)", "rgb(68,1,84)"  # the explorer's ramp: its best end, its worst


def _explored(data: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """What the explorer's script draws from `data`, run under node (tests/explore_dom.js)."""
    assert NODE is not None
    (tmp_path / "data.json").write_text(embedded_json(data), encoding="utf-8")
    (tmp_path / "explore.js").write_text(explore_script(), encoding="utf-8")
    done = subprocess.run([NODE, str(ROOT / "tests" / "explore_dom.js"),
                           str(tmp_path / "data.json"), str(tmp_path / "explore.js")],
                          capture_output=True, text=True, timeout=60, check=True)
    drawn: dict[str, Any] = json.loads(done.stdout)
    return drawn


@pytest.mark.skipif(NODE is None, reason="node not found on PATH: the explorer's script runs "
                    "under it here (the browser tests run it in Chromium)")
def test_the_explorer_colours_the_better_end_light_whichever_way_the_metric_points(
        classifier: Path, unreported: Path, tmp_path: Path) -> None:
    data = _contents(classifier).explore
    assert data is not None
    drawn = _explored(data, tmp_path)
    finals = [cell["final"] for cell in data["cells"]]
    assert drawn["fills"][finals.index(max(finals))] == LIGHT  # the highest accuracy
    assert drawn["fills"][finals.index(min(finals))] == DARK
    assert "accuracy (higher is better)" in drawn["curveTexts"]  # a linear axis
    assert "median gap (validation \u2212 training; negative: worse held out)" in \
        dict(drawn["numbers"])
    plain = _contents(unreported).explore
    assert plain is not None
    drawn = _explored(plain, tmp_path)
    errors = [cell["final"] for cell in plain["cells"]]
    finite = [e for e in errors if e is not None]
    assert drawn["fills"][errors.index(min(finite))] == LIGHT  # the lowest error
    assert drawn["fills"][errors.index(max(finite))] == DARK
    assert "mae (log scale)" in drawn["curveTexts"]


@pytest.mark.slow
def test_a_classifiers_report_draws_accuracy_on_linear_scales(classifier: Path,
                                                              tmp_path: Path) -> None:
    directory = copy_of(classifier, tmp_path)
    build_report(directory)
    text = (directory / "report.md").read_text(encoding="utf-8")
    assert "linear colour scale; light: higher, better" in text
    assert "a dashed line below its solid one means the network does worse" in text
    assert "negative (red): the network scores lower on the rows it never saw" in text
