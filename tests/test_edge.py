"""The stability edge ([search] method = "edge"): bisection in log space for where an outcome
flips, every combination's probes of a round trained as one run, resumed from the journal."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nnsweep
from nnsweep import datasets, engines, searchplots, tables
from nnsweep.__main__ import main
from nnsweep.edge import EdgeSearch, bisect, edge_row, rounds_needed
from nnsweep.edge import probes as edge_probes
from nnsweep.params import TrialParams
from nnsweep.report import build_report
from nnsweep.spec import parse_spec
from nnsweep.store import StoreWarning
from tests.helpers import kill_group, line_count, start_run, wait_for_lines, write_spec


def search_rounds(search: EdgeSearch, passes: Callable[[float], bool]
                  ) -> tuple[int, dict[float, bool]]:
    """Run a bisection as the runner does, round by round: every wanted value probed at once.
    Returns the rounds taken and the outcomes probed."""
    passed: dict[float, bool] = {}
    rounds = 0
    while (wanted := bisect(search, passed).wanted):
        rounds += 1
        passed.update((value, passes(value)) for value in wanted)
    return rounds, passed


# --- the bisection ------------------------------------------------------------------------

@pytest.mark.parametrize("edge", [0.0123, 0.7, 3.7, 250.0, 999.0])
def test_a_monotone_outcome_has_its_edge_found_within_the_precision(edge: float) -> None:
    search = EdgeSearch(precision=0.02, low=0.01, high=1000.0)
    rounds, passed = search_rounds(search, lambda value: value < edge)
    state = bisect(search, passed)
    assert state.done and state.found
    assert state.below < edge <= state.above
    assert state.above / state.below <= 1.02
    assert state.below <= state.edge <= state.above
    # the ends, then one middle a round until the log-width is below log(1.02): ten halvings
    # of log(10^5) = 11.5 take it under 0.0198, nine do not
    assert rounds == rounds_needed(search) == 11
    assert len(passed) == len(state.probed) == 12


def test_each_round_asks_the_geometric_middle_of_the_bracket() -> None:
    search = EdgeSearch(precision=0.02, low=0.01, high=100.0)
    assert bisect(search, {}).wanted == (0.01, 100.0)
    assert bisect(search, {0.01: True, 100.0: False}).wanted == (1.0,)
    assert bisect(search, {0.01: True, 100.0: False, 1.0: True}).wanted == (10.0,)
    assert bisect(search, {0.01: True, 100.0: False, 1.0: False}).wanted == (0.1,)


def test_ends_with_the_same_outcome_hold_no_edge_and_cost_one_round() -> None:
    search = EdgeSearch(low=0.01, high=1000.0)
    for outcome in (True, False):
        rounds, passed = search_rounds(search, lambda value, same=outcome: same)
        state = bisect(search, passed)
        assert rounds == 1 and state.done and not state.found
        assert math.isnan(state.edge)
        assert (state.below, state.above) == (0.01, 1000.0)


def test_an_outcome_that_holds_above_the_edge_is_bisected_the_same_way() -> None:
    search = EdgeSearch(precision=0.05, low=0.1, high=10.0)
    _, passed = search_rounds(search, lambda value: value > 2.0)
    state = bisect(search, passed)
    assert state.found and state.below < 2.0 <= state.above <= state.below * 1.05
    assert not passed[state.below] and passed[state.above]


def test_whole_numbers_stop_when_no_value_lies_between() -> None:
    search = EdgeSearch(axis="epochs", precision=1e-6, low=1, high=1000, integer=True)
    _, passed = search_rounds(search, lambda value: value < 37)
    state = bisect(search, passed)
    assert state.done and (state.below, state.above) == (36, 37)
    assert all(isinstance(value, int) for value in passed)


def test_a_bisection_replayed_from_part_of_its_outcomes_asks_the_next_probe() -> None:
    """The state is a function of the outcomes known: a search resumed from a journal asks
    what the search that never stopped asked next."""
    search = EdgeSearch(precision=0.01, low=0.001, high=10.0)
    _, passed = search_rounds(search, lambda value: value < 0.3)
    order = bisect(search, passed).probed
    for known in range(2, len(order)):
        state = bisect(search, {v: passed[v] for v in order[:known]})
        assert state.wanted == (order[known],)


def test_an_edge_row_names_the_statuses_met_on_each_side() -> None:
    search = EdgeSearch(outcome="not_diverged", precision=0.5, low=1.0, high=100.0)
    statuses = {1.0: "not_converged", 100.0: "diverged", 10.0: "diverged",
                3.16227766017: "converged", 5.6234132519: "diverged",
                4.21696503429: "converged", 77.0: "converged"}  # 77: off the path, not counted
    row = edge_row(search, statuses)
    assert row == {"axis": "alpha", "outcome": "not_diverged", "below": 4.21696503429,
                   "above": 5.6234132519, "edge": math.sqrt(4.21696503429 * 5.6234132519),
                   "below_status": "converged", "above_status": "diverged", "trials": 6,
                   "found": True, "done": True}


# --- the sweep file -------------------------------------------------------------------------

EDGE_SPEC = """\
    name = "edge"
    dataset = "xor"
    [params]
    activation = "sigmoid"
    epochs = {epochs}
    record_every = {epochs}
    tolerance = {tolerance}
    seed = 1
    [search]
    method = "edge"
    precision = {precision}
    [grid]
    alpha = {{ log = [{low}, {high}], num = 5 }}
    hidden = {hidden}
"""


def edge_text(epochs: int = 300, precision: float = 0.2, low: float = 5.0,
              high: float = 1000.0, hidden: str = "[4, 16]", tolerance: float = 0.05) -> str:
    return textwrap.dedent(EDGE_SPEC).format(epochs=epochs, precision=precision, low=low,
                                             high=high, hidden=hidden, tolerance=tolerance)


def test_the_trials_of_an_edge_spec_are_its_first_round_the_bracket_ends() -> None:
    spec = parse_spec(edge_text())
    assert spec.search.edge == EdgeSearch("alpha", "converged", 0.2, 5.0, 1000.0)
    assert sorted((t.params.hidden, t.params.alpha) for t in spec.trials()) == [
        ((4,), 5.0), ((4,), 1000.0), ((16,), 5.0), ((16,), 1000.0)]


def test_the_resolved_spec_says_what_was_searched_and_loads_back_the_same() -> None:
    spec = parse_spec(edge_text())
    assert "alpha = [5.0, 1000.0]" in spec.text
    assert '[search]\nmethod = "edge"\naxis = "alpha"\noutcome = "converged"\nprecision = 0.2\n' \
        in spec.text
    again = parse_spec(spec.text)
    assert again.search == spec.search and again.hash == spec.hash
    assert [t.id for t in again.trials()] == [t.id for t in spec.trials()]


# --- runs -----------------------------------------------------------------------------------

def test_an_edge_search_trains_round_by_round_and_tables_every_probe(tmp_path: Path) -> None:
    spec = parse_spec(edge_text())
    results = nnsweep.run(spec, out=tmp_path / "out", jobs=1)
    edges = results.edges
    assert edges is not None and list(edges.columns) == list(tables.EDGES_SCHEMA)
    assert len(edges) == 2 and edges["hidden"].tolist() == ["4", "16"]
    assert edges["alpha"].isna().all() and (edges["axis"] == "alpha").all()
    # the tables hold every probe, and each combination's probes are the bisection's path
    assert len(results.trials) == len(set(results.trials["trial"])) == edges["trials"].sum()
    for _, row in edges.iterrows():
        probes = results.trials[results.trials["hidden"] == row["hidden"]]
        statuses = dict(zip(probes["alpha"], probes["status"], strict=True))
        assert edge_row(spec.search.edge, statuses)["edge"] == pytest.approx(
            row["edge"], nan_ok=True)  # type: ignore[arg-type]
        if row["found"]:
            assert statuses[row["below"]] == row["below_status"] == "converged"
            assert statuses[row["above"]] == row["above_status"] != "converged"
            assert row["above"] <= row["below"] * 1.2
    invocation = results.manifest["invocations"][-1]
    assert invocation["trained"] == len(results.trials)
    assert invocation["rounds"] == rounds_needed(spec.search.edge)  # type: ignore[arg-type]
    assert results.manifest["search"]["method"] == "edge"


def test_the_edges_table_reads_back_the_same_from_parquet_csv_and_load_results(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = nnsweep.run(parse_spec(edge_text()), out=out, jobs=1)
    loaded = nnsweep.load_results(out)
    assert ran.edges is not None and loaded.edges is not None
    pd.testing.assert_frame_equal(loaded.edges, ran.edges)
    pd.testing.assert_frame_equal(tables.read_csv(out / "edges.csv"), ran.edges)
    plain = pd.read_csv(out / "edges.csv", dtype=tables.SCHEMAS["edges"]).fillna({"hidden": ""})
    pd.testing.assert_frame_equal(plain, ran.edges)  # as the README reads any table
    pd.testing.assert_frame_equal(pd.read_parquet(out / "edges.parquet").pipe(
        tables.typed, tables.EDGES_SCHEMA), ran.edges)
    # a torn generation is rebuilt from the journal, edges too
    (out / "edges.parquet").write_bytes(b"torn")
    with pytest.warns(UserWarning, match="edges.parquet"):
        rebuilt = nnsweep.load_results(out)
    assert rebuilt.edges is not None
    pd.testing.assert_frame_equal(rebuilt.edges, ran.edges)


def test_a_grid_sweep_has_no_edges_table(tmp_path: Path) -> None:
    text = 'dataset = "xor"\n[params]\nepochs = 10\n[grid]\nalpha = [0.1, 1]\n'
    results = nnsweep.run(parse_spec(text), out=tmp_path / "out", jobs=1)
    assert results.edges is None and not (tmp_path / "out" / "edges.parquet").exists()
    assert nnsweep.load_results(tmp_path / "out").edges is None


def test_a_rerun_of_a_finished_search_trains_nothing_and_keeps_its_tables(
        tmp_path: Path) -> None:
    spec, out = parse_spec(edge_text()), tmp_path / "out"
    first = nnsweep.run(spec, out=out, jobs=1)
    again = nnsweep.run(spec, out=out, jobs=1)
    invocation = again.manifest["invocations"][-1]
    assert (invocation["trained"], invocation["reused"]) == (0, len(first.trials))
    assert again.manifest["generation"] == first.manifest["generation"]
    assert again.edges is not None and first.edges is not None
    pd.testing.assert_frame_equal(again.edges, first.edges)


def test_a_rerun_with_another_outcome_over_the_same_probes_tables_its_own_edges(
        tmp_path: Path) -> None:
    """Ten epochs at tiny rates: nothing converges, nothing diverges, so neither outcome has an
    edge and both searches probe the same two ends; the edges still say which was asked."""
    text, out = edge_text(epochs=10, low=0.001, high=0.002), tmp_path / "out"
    first = nnsweep.run(parse_spec(text), out=out, jobs=1)
    other = nnsweep.run(parse_spec(text.replace('method = "edge"\n', 'method = "edge"\n'
                                                'outcome = "not_diverged"\n')), out=out, jobs=1)
    assert sorted(other.trials["trial"]) == sorted(first.trials["trial"])
    assert other.edges is not None and first.edges is not None
    assert (first.edges["outcome"] == "converged").all()
    assert (other.edges["outcome"] == "not_diverged").all()
    assert nnsweep.load_results(out).edges["outcome"].eq("not_diverged").all()


def test_a_finer_precision_reuses_the_coarser_search_s_probes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    coarse = nnsweep.run(parse_spec(edge_text(precision=0.5)), out=out, jobs=1)
    fine = nnsweep.run(parse_spec(edge_text(precision=0.1)), out=out, jobs=1)
    invocation = fine.manifest["invocations"][-1]
    assert invocation["reused"] == len(coarse.trials)
    assert invocation["trained"] == len(fine.trials) - len(coarse.trials) > 0


@pytest.mark.slow
def test_a_killed_edge_search_resumes_and_trains_only_what_is_missing(tmp_path: Path) -> None:
    text = edge_text(epochs=1500, precision=0.05, hidden="[4, 8, 16, 32]")
    spec_path = write_spec(tmp_path, text)
    whole = nnsweep.run(parse_spec(text), out=tmp_path / "whole", jobs=1)
    out = tmp_path / "out"
    process = start_run(spec_path, out, "--jobs", "1", "--no-report")
    try:
        wait_for_lines(out / "journal.jsonl", 4 * 2 + 4 * 2)  # the ends and two middles each
    finally:
        kill_group(process)
    kept = line_count(out / "journal.jsonl")
    assert kept < len(whole.trials)
    with pytest.warns(StoreWarning, match="taking over the lock"):  # the killed run's
        resumed = nnsweep.run(parse_spec(text), out=out, jobs=1)
    invocation = resumed.manifest["invocations"][-1]
    assert invocation["trained"] == len(whole.trials) - kept
    assert resumed.edges is not None and whole.edges is not None
    pd.testing.assert_frame_equal(resumed.edges, whole.edges)
    assert sorted(resumed.trials["trial"]) == sorted(whole.trials["trial"])


# --- the edge of sigmoid on XOR against a dense grid --------------------------------------

WIDTHS = (4, 8, 16, 32, 64, 128, 256)
DENSE = 200


@pytest.mark.slow
def test_the_edge_matches_a_dense_grid_s_boundary_at_a_tenth_of_its_trials(
        tmp_path: Path) -> None:
    """Sigmoid on XOR, 1000 epochs: the largest alpha that still converges, per width. The
    dense grid's boundary lies between its last converging alpha and its first failing one
    above the bracket's low end; where the outcome flips more than once near the edge, the
    bisection may settle on any of those flips, so it must lie within the zone they span."""
    precision, low, high, epochs, tolerance = 0.02, 0.6, 1000.0, 1000, 0.1
    text = edge_text(epochs=epochs, precision=precision, low=low, high=high,
                     hidden=json.dumps(list(WIDTHS)), tolerance=tolerance)
    results = nnsweep.run(parse_spec(text), out=tmp_path / "out", jobs=2)
    edges = results.edges
    assert edges is not None and edges["found"].all() and edges["done"].all()
    assert len(results.trials) <= 0.1 * DENSE * len(WIDTHS)

    xor = datasets.builtin("xor")
    alphas = np.geomspace(low, high, DENSE)  # (DENSE,)
    for width in WIDTHS:
        dense = [TrialParams(activation="sigmoid", hidden=(width,), alpha=float(alpha),
                             epochs=epochs, record_every=epochs, tolerance=tolerance, seed=1)
                 for alpha in alphas]
        converged = np.array([r.status(tolerance) == "converged"
                              for r in engines.train("numpy", xor.x, xor.y, dense)])
        assert converged[0] and not converged[-1]
        first_fail = alphas[np.argmin(converged)]
        last_pass = alphas[len(converged) - 1 - np.argmax(converged[::-1])]
        zone = (min(first_fail, last_pass) / (1 + precision) / 1.04,  # a dense step is 1.039x
                max(first_fail, last_pass) * (1 + precision) * 1.04)
        row = edges[edges["hidden"] == str(width)].iloc[0]
        assert zone[0] <= row["edge"] <= zone[1], (width, row["edge"], zone)


# --- the figure and the report ---------------------------------------------------------------

def test_a_power_law_is_fitted_in_log_log() -> None:
    widths = np.array([4.0, 16.0, 64.0, 256.0])
    exponent, factor = searchplots.power_law(widths, 3.0 * widths ** -0.5)
    assert exponent == pytest.approx(-0.5) and factor == pytest.approx(3.0)


def edges_of(rows: list[tuple[str, str, float, bool]]) -> pd.DataFrame:
    """An edges table of (activation, hidden, edge, found) rows, below and above 1% apart."""
    frame = pd.DataFrame([{"axis": "alpha", "outcome": "converged", "activation": activation,
                           "hidden": hidden, "below": edge / 1.01, "above": edge * 1.01,
                           "edge": edge if found else np.nan, "found": found, "done": True,
                           "trials": 10} for activation, hidden, edge, found in rows])
    return tables.typed(frame, tables.EDGES_SCHEMA)


def test_the_figure_draws_one_line_per_combination_of_the_other_axes() -> None:
    edges = edges_of([("relu", "4", 8.0, True), ("relu", "16", 4.0, True),
                      ("relu", "64", 2.0, True), ("tanh", "4", 9.0, True),
                      ("tanh", "16", 3.0, True), ("tanh", "3-2", 5.0, True),  # two layers: no
                      ("sigmoid", "4", 1.0, True), ("sigmoid", "16", 1.0, False)])  # one width
    lines = searchplots.edge_lines(edges)
    assert [label for label, _ in lines] == ["activation=relu", "activation=tanh"]
    assert [rows["width"].tolist() for _, rows in lines] == [[4, 16, 64], [4, 16]]


def test_the_report_shows_the_edge_against_width_with_its_exponent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = nnsweep.run(parse_spec(edge_text(hidden="[4, 8, 16]")), out=out, jobs=1)
    edges = results.edges
    assert edges is not None and edges["found"].sum() >= 2
    found = edges[edges["found"]]
    exponent, _ = searchplots.power_law(found["hidden"].astype(float).to_numpy(),
                                        found["edge"].to_numpy())
    build_report(out)
    assert (out / "plots" / "edge.png").is_file()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "The stability edge against width" in page
    assert f"its exponent {exponent:.2f}" in page


def test_validate_says_what_an_edge_search_costs_beyond_its_first_round(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(tmp_path, edge_text(precision=0.2, low=5.0, high=1000.0))
    assert main(["validate", str(path)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"{path}: valid; 4 trials in ")
    # log(200) / log(1.2) = 29.1: four halvings leave 1.8 times log(1.2), five 0.91 of it
    assert said[1] == ("note: an edge search: those are its first round, 2 combinations at the "
                       "bracket's two ends; up to 5 more rounds of one probe each follow, at "
                       "most 14 trials in all")


def test_the_probes_of_a_round_are_those_known_then_those_the_bisection_wants() -> None:
    """Each combination of the other axes is bisected on its own: a width whose two ends are
    answered asks for their geometric mean, one with nothing answered still for its ends."""
    search = EdgeSearch(low=0.5, high=1000.0)
    trials = [TrialParams(alpha=a, hidden=(h,)) for h in (4, 8) for a in (0.5, 1000.0)]
    first, wanted = edge_probes(search, trials, "data", {})
    assert wanted == 4 and [(t.params.hidden, t.params.alpha) for t in first] == [
        ((4,), 0.5), ((4,), 1000.0), ((8,), 0.5), ((8,), 1000.0)]
    known = {first[0].id: "converged", first[1].id: "not_converged"}
    second, wanted = edge_probes(search, trials, "data", known)
    assert wanted == 3
    assert [t.id for t in second[:2]] == [t.id for t in first[:2]]
    assert second[2].params.hidden == (4,)
    assert second[2].params.alpha == pytest.approx(math.sqrt(0.5 * 1000.0), rel=1e-11)
    assert [t.id for t in second[3:]] == [t.id for t in first[2:]]
    assert edge_probes(search, trials, "other data", {})[0][0].id != first[0].id
