"""What the report and `show` say of a search: a sampled search's points over the space drawn
from (not heatmaps over scattered values), and an edge search's edges on the terminal."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import nnsweep
from nnsweep import figures, searchplots, store
from nnsweep.manifest import search_record
from nnsweep.report import build_report, sampled_search, search_points
from nnsweep.show import render
from nnsweep.spec import Spec, parse_spec

RANDOM_SPEC = """\
    name = "sampled"
    dataset = "xor"
    [params]
    epochs = 60
    [search]
    method = "random"
    samples = 8
    seed = 5
    [grid]
    alpha = {{ loguniform = [0.01, 10] }}
    hidden = {{ intloguniform = [2, 32] }}
    seed = {seeds}
"""


def random_text(seeds: str = "[0, 1]") -> str:
    return textwrap.dedent(RANDOM_SPEC).format(seeds=seeds)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random search's folder: 8 points of alpha and hidden, each with two seeds."""
    out = tmp_path_factory.mktemp("sampled") / "out"
    nnsweep.run(parse_spec(random_text()), out=out, jobs=1)
    return out


def oracle_points(trials: pd.DataFrame) -> pd.Series:
    """Each point's median final error over its seeds, computed the plain way."""
    medians = {}
    for key, rows in trials.groupby(["alpha", "hidden"]):
        errors = [np.inf if s == "diverged" else e
                  for s, e in zip(rows["status"], rows["final_error"], strict=True)]
        medians[key] = float(np.median(errors))
    return pd.Series(medians).sort_values(kind="stable")


# --- telling a sampled search ---------------------------------------------------------------

def recorded(spec: Spec) -> dict[str, Any]:
    """The manifest's part that tells a search."""
    record = search_record(spec)
    return {} if record is None else {"search": record}


def test_the_manifest_tells_a_sampled_search_its_method_samples_seed_and_axes() -> None:
    spec = parse_spec(random_text())
    search = sampled_search(recorded(spec))
    assert search is not None
    assert (search.method, search.samples, search.seed) == ("random", 8, 5)
    assert search.axes == ("alpha", "hidden")  # seed is given as values: crossed, not drawn
    # a grid, and the resolved spec run again (its points given, nothing drawn), are no search
    grid = parse_spec('dataset = "xor"\n[grid]\nalpha = [1, 2]\n')
    assert sampled_search(recorded(grid)) is None
    assert sampled_search(recorded(parse_spec(spec.text))) is None


@pytest.mark.parametrize("record", [
    {"method": "random", "samples": "8", "seed": 5, "drawn": ["alpha"]},
    {"method": "random", "samples": 8, "seed": 5, "drawn": "alpha"},
    {"method": "random", "samples": 8, "seed": 5, "drawn": ["not_a_parameter"]},
    {"method": "grid"}, "random", None])
def test_a_search_record_that_is_not_one_is_a_plain_grid(record: object) -> None:
    assert sampled_search({"search": record}) is None


def test_a_drawn_axis_is_shown_in_the_scale_its_points_spread_evenly_in() -> None:
    spec = parse_spec(textwrap.dedent("""\
        dataset = "xor"
        [search]
        method = "sobol"
        samples = 64
        [grid]
        alpha = { loguniform = [0.001, 10] }
        tolerance = { uniform = [0.001, 1] }
        hidden = { intloguniform = [2, 256] }
        activation = { choice = ["sigmoid", "tanh"] }
        """))
    trials = [t.params for t in spec.trials()]
    values = {"alpha": pd.Series([p.alpha for p in trials]),
              "tolerance": pd.Series([p.tolerance for p in trials]),
              "hidden": pd.Series(["-".join(map(str, p.hidden)) for p in trials]),
              "activation": pd.Series([p.activation for p in trials])}
    scales = {name: searchplots.drawn_scale(name, column) for name, column in values.items()}
    # tolerance spans three decades too, but its points fill the linear range evenly
    assert scales == {"alpha": "log", "tolerance": "linear", "hidden": "log",
                      "activation": "category"}
    assert searchplots.drawn_scale("hidden", pd.Series(["4", "3-2"])) == "category"


def test_a_point_s_error_is_the_median_over_its_seeds_a_diverged_one_the_worst() -> None:
    trials = pd.DataFrame({
        "trial": ["a", "b", "c", "d", "e", "f"],
        "alpha": [0.1, 0.1, 0.1, 1.0, 1.0, 1.0],
        "seed": [0, 1, 2, 0, 1, 2],
        "metric": ["mae"] * 6,
        "status": ["not_converged", "converged", "diverged", "diverged", "diverged", "failed"],
        "final_error": [0.3, 0.01, 0.2, 0.05, 0.04, np.nan],
    })
    points = search_points(trials, ["alpha"])
    assert points["alpha"].tolist() == [0.1, 1.0]
    assert points["final_error"].tolist() == [0.3, np.inf]  # median of 0.3, 0.01 and inf
    assert points["trials"].tolist() == [3, 3]
    assert points["converged"].tolist() == [1, 0] and points["diverged"].tolist() == [1, 2]


def test_points_measured_by_accuracy_rank_the_highest_first() -> None:
    trials = pd.DataFrame({
        "trial": ["a", "b", "c"], "alpha": [0.1, 1.0, 10.0], "metric": ["accuracy"] * 3,
        "status": ["not_converged", "converged", "diverged"],
        "final_error": [0.5, 1.0, np.nan],
    })
    points = search_points(trials, ["alpha"])
    assert points["alpha"].tolist() == [1.0, 0.1, 10.0]
    assert points["final_error"].tolist() == [1.0, 0.5, -np.inf]  # diverged: the worst


# --- the report ---------------------------------------------------------------------------

@pytest.mark.slow
def test_a_random_search_s_report_draws_its_points_instead_of_heatmaps(sampled: Path) -> None:
    build_report(sampled)
    names = {path.stem for path in (sampled / "plots").glob("*.png")}
    assert "search" in names
    assert not {"outcome", "final_error"} & names
    assert not any(name.startswith("heatmap") for name in names)
    page = (sampled / "report.html").read_text(encoding="utf-8")
    assert '<h2 id="search">Search</h2>' in page and 'id="explore-data"' not in page
    markdown = (sampled / "report.md").read_text(encoding="utf-8")
    assert ('A random search (method = "random", samples = 8, seed = 5) drew 8 points over '
            "alpha and hidden, each tried with every value of seed: 16 trials.") in markdown
    assert "On a log scale, as the points spread evenly there: alpha, hidden." in markdown
    # the answer and the best points' table name the best point and its median error
    trials = store.load_results(sampled).trials
    best = oracle_points(trials)
    (alpha, hidden), error = best.index[0], best.iloc[0]
    assert (f"The best of the 8 points the random search drew is alpha = "
            f"{figures.value_label('alpha', alpha)}, hidden = {hidden}: median over its 2 "
            f"trials, final mae {error:.3g}.") in markdown
    table = markdown.split("### Best points")[1]
    assert f"| 1 | {alpha:.6g} | {hidden} | 2 | {error:.6g} |" in table


@pytest.mark.slow
def test_a_grid_s_report_keeps_its_heatmaps_and_has_no_search_section(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nnsweep.run(parse_spec('dataset = "xor"\n[params]\nepochs = 40\n[grid]\n'
                           "alpha = [0.1, 1]\nhidden = [2, 4]\n"), out=out, jobs=1)
    build_report(out)
    assert (out / "plots" / "heatmap_final_error.png").is_file()
    assert not (out / "plots" / "search.png").exists()
    assert "## Search" not in (out / "report.md").read_text(encoding="utf-8")


# --- show ---------------------------------------------------------------------------------

def test_show_gives_a_sampled_search_s_method_and_best_points(sampled: Path) -> None:
    shown = render(store.load_results(sampled), top=3, width=200)
    assert "search: random, 8 samples drawn with seed 5 over alpha, hidden; 8 points, " \
        "16 trials" in shown
    assert "best 3 points by median final mae" in shown
    best = oracle_points(store.load_results(sampled).trials)
    (alpha, hidden), error = best.index[0], best.iloc[0]
    row = next(line for line in shown.splitlines() if f"{error:.6g}" in line
               and f"{alpha:.6g}" in line)
    assert row.split()[1:8:2] == [f"{alpha:.6g}", hidden, "2", f"{error:.6g}"]


def test_show_gives_an_edge_search_s_edges_combination_by_combination(tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = nnsweep.run(parse_spec(textwrap.dedent("""\
        dataset = "xor"
        [params]
        epochs = 300
        tolerance = 0.05
        [search]
        method = "edge"
        precision = 0.5
        [grid]
        alpha = [5.0, 1000.0]
        hidden = [4, 16]
        """)), out=out, jobs=1)
    edges = results.edges
    assert edges is not None
    shown = render(store.load_results(out), width=200)
    assert (f"edge search over alpha (where converged flips): {int(edges['found'].sum())} of 2 "
            "combinations have an edge in the bracket") in shown
    for _, row in edges.iterrows():
        edge = f"{row['edge']:.6g}" if row["found"] else ""
        cells = [c.strip() for c in next(line for line in shown.splitlines()
                                         if f"hidden={row['hidden']} " in line).split("│")]
        assert cells[1:4] == [f"hidden={row['hidden']}", edge, "yes" if row["found"] else "no"]
    assert "search: " not in shown


def test_show_says_nothing_of_a_search_for_a_grid(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nnsweep.run(parse_spec('dataset = "xor"\n[params]\nepochs = 20\n[grid]\nalpha = [0.1, 1]\n'),
                out=out, jobs=1)
    shown = render(store.load_results(out), width=200)
    assert "search" not in shown and "edge" not in shown
