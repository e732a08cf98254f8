"""The report: built from a results folder's saved tables alone, complete, self-contained.

The folders here are written the way a run writes them (helpers.write_results, which
test_report_browser.py uses too): a tiny real sweep trained with the batched trainer, turned
into tables by nnsweep.tables, saved as parquet beside spec.toml and manifest.json.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import write_results

from nnsweep import tables
from nnsweep.errors import NnsweepError, ResultsError, UnknownTrial
from nnsweep.params import TrialParams
from nnsweep.report import build_report, choose_layout, gather, read_tables, render_html


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


def test_every_figure_is_written_as_png_and_svg_under_stable_names(small: Path) -> None:
    names = {p.stem for p in (small / "plots").glob("*.png")}
    assert names == {"outcome", "heatmap_final_error", "heatmap_converged_share",
                     "heatmap_converged_epoch", "heatmap_direction_changes", "learning_curves",
                     "weight_directions"}
    assert {p.stem for p in (small / "plots").glob("*.svg")} == names
    for png in (small / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rebuilt_report_drops_figures_it_no_longer_draws_and_keeps_other_files(
        small: Path) -> None:
    assert not (small / "plots" / "heatmap_of_an_older_layout.png").exists()
    assert (small / "plots" / "notes.txt").read_text(encoding="utf-8") == "kept"


def test_a_folder_without_tables_is_refused_with_the_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"no trials\.parquet"):
        build_report(tmp_path)


def test_the_saved_tables_are_read_back_in_their_schemas(small: Path) -> None:
    frames = read_tables(small)
    for name, frame in frames.items():
        assert list(frame.columns) == list(tables.SCHEMAS[name])
        assert {c: str(t) for c, t in frame.dtypes.items()} == tables.SCHEMAS[name]


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
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page
    assert not re.search(r'<link[^>]+href="(?!data:)', page)


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
    assert header == ["hidden", "learning", "slow", "diverged", "failed"]
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>((?:\s*<td>[^<]*</td>)+)", glance)
    assert [hidden for hidden, _ in rows] == ["2", "3", "4"]
    assert all("<td>1000</td>" in cells for hidden, cells in rows if hidden != "3")


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
