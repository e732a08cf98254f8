"""The pictures' decisions: which parameter goes where, in what order, with which labels, what
each cell says, and that the XOR sweep tells iamtrask's story. Drawing itself is exercised by
test_report.py, which builds whole reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import SMALL_FIXED, SMALL_GRID, sweep_frames

from nnsweep import plots, tables
from nnsweep.errors import NnsweepError, UnknownTrial
from nnsweep.params import TrialParams

ALPHAS = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]


def trials_of(*params: TrialParams, statuses: list[str] | None = None) -> pd.DataFrame:
    """A trials table for these parameters, without training (outcomes left empty)."""
    statuses = statuses or ["not_converged"] * len(params)
    return tables.trials_frame(tables.trial_row(f"t{i}", p, None, 0.0, status=s)
                               for i, (p, s) in enumerate(zip(params, statuses, strict=True)))


def grid_trials(**axes: list[Any]) -> pd.DataFrame:
    rows = [{}]
    for name, values in axes.items():
        rows = [{**row, name: value} for row in rows for value in values]
    return trials_of(*(TrialParams(**row) for row in rows))


@pytest.fixture(scope="module")
def trained() -> dict[str, pd.DataFrame]:
    """Four alphas x two widths x two seeds, trained for real once (helpers.SMALL_GRID)."""
    return sweep_frames(SMALL_GRID, SMALL_FIXED)


@pytest.fixture
def small(trained: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The trained tables, copied for each test: no test sees another's changes."""
    return {name: frame.copy() for name, frame in trained.items()}


# --- layout -------------------------------------------------------------------------------

def test_alpha_goes_across_and_hidden_down_by_default() -> None:
    layout = plots.choose_layout(grid_trials(hidden=[(4,), (8,)], alpha=[0.1, 1.0]))
    assert (layout.x, layout.y, layout.facet, layout.seeds) == ("alpha", "hidden", (), 1)


def test_without_alpha_and_hidden_the_widest_swept_parameters_are_the_axes() -> None:
    trials = grid_trials(activation=["relu", "tanh"], epochs=[10, 20, 30], descent=["full"])
    layout = plots.choose_layout(trials)
    assert (layout.x, layout.y) == ("epochs", "activation")


def test_the_other_swept_parameters_become_facets_and_seeds_are_counted() -> None:
    trials = grid_trials(alpha=[0.1, 1.0], hidden=[(4,), (8,)], activation=["relu", "tanh"],
                         seed=[1, 2, 3])
    layout = plots.choose_layout(trials)
    assert (layout.x, layout.y, layout.facet, layout.seeds) == (
        "alpha", "hidden", ("activation",), 3)


def test_a_facet_the_sweep_names_comes_first_and_unnamed_ones_follow() -> None:
    trials = grid_trials(alpha=[0.1, 1.0], hidden=[(4,), (8,)], activation=["relu", "tanh"],
                         descent=["full", "stochastic"])
    layout = plots.choose_layout(trials, facet="descent")
    assert layout.facet == ("descent", "activation")


def test_a_one_axis_sweep_has_no_y_and_a_fixed_sweep_no_axes() -> None:
    assert plots.choose_layout(grid_trials(alpha=[0.1, 1.0])).y is None
    single = plots.choose_layout(grid_trials(alpha=[0.1]))
    assert (single.x, single.y, single.facet, single.seeds) == (None, None, (), 1)


def test_a_single_axis_asked_for_as_y_is_drawn_across() -> None:
    layout = plots.choose_layout(grid_trials(alpha=[0.1, 1.0], seed=[1, 2]), y="alpha")
    assert (layout.x, layout.y, layout.seeds) == ("alpha", None, 2)


def test_a_parameter_may_fill_only_one_place() -> None:
    with pytest.raises(NnsweepError, match="each parameter may fill one place only"):
        plots.choose_layout(grid_trials(alpha=[0.1, 1.0]), x="alpha", y="alpha")


def test_an_axis_that_is_not_a_parameter_is_refused() -> None:
    with pytest.raises(NnsweepError, match="report axis 'width': not a parameter"):
        plots.choose_layout(grid_trials(alpha=[0.1, 1.0]), y="width")


# --- order and labels ---------------------------------------------------------------------

def test_hidden_sizes_are_ordered_by_depth_then_width_not_as_text() -> None:
    values = pd.Series(["16", "3-2", "", "4", "128", "4-4"])
    assert plots.ordered_values("hidden", values) == ["", "4", "16", "128", "3-2", "4-4"]


def test_numbers_are_ordered_by_value() -> None:
    assert plots.ordered_values("alpha", pd.Series([10.0, 0.001, 1.0])) == [0.001, 1.0, 10.0]


@pytest.mark.parametrize(("column", "value", "label"), [
    ("alpha", 1000.0, "1000"),
    ("alpha", 0.001, "0.001"),
    ("alpha", 0.0031622776601683794, "0.00316"),
    ("alpha", 31.622776601683793, "31.6"),
    ("hidden", "", "none"),
    ("hidden", "3-2", "3-2"),
    ("activation", "relu", "relu"),
])
def test_values_are_labelled_short_and_without_exponents(column: str, value: Any,
                                                         label: str) -> None:
    assert plots.value_label(column, value) == label


def test_thirteen_log_spaced_alphas_get_distinct_labels() -> None:
    labels = [plots.value_label("alpha", a) for a in np.logspace(-3, 3, 13)]
    assert len(set(labels)) == 13
    assert max(len(label) for label in labels) <= 7


# --- what each cell says ------------------------------------------------------------------

def test_history_is_thinned_to_log_spaced_epochs_keeping_the_first_and_last() -> None:
    history = pd.DataFrame({"trial": ["a"] * 10_000 + ["b"] * 5,
                            "epoch": [*range(10_000), *range(5)]})
    thinned = plots.thin_history(history, points=50)
    a = thinned[thinned["trial"] == "a"]["epoch"].tolist()
    assert a[0] == 0 and a[-1] == 9_999
    assert len(a) <= 52
    assert a[1:6] == [1, 2, 3, 4, 5]  # dense where a log axis is wide
    assert thinned[thinned["trial"] == "b"]["epoch"].tolist() == [0, 1, 2, 3, 4]


def test_outcomes_follow_status_and_how_far_the_error_fell(small: dict[str, pd.DataFrame]) -> None:
    trials, history = small["trials"], small["history"]
    outcomes = plots.trial_outcomes(trials, history)
    start = history[history["epoch"] == 0].set_index("trial")["mae"]
    for row, outcome in zip(trials.itertuples(), outcomes, strict=True):
        ratio = row.final_error / start[row.trial]
        expected = (row.status if row.status in ("converged", "diverged")
                    else "learning" if ratio <= 0.5 else "slow" if ratio < 0.98 else "flat")
        assert outcome == expected
    assert set(outcomes) == {"converged", "learning", "slow", "diverged"}


def test_a_failed_trial_is_its_own_outcome() -> None:
    trials = trials_of(TrialParams(), statuses=["failed"])
    assert plots.trial_outcomes(trials, tables.empty(tables.HISTORY_SCHEMA)).tolist() == [
        "failed"]


def test_cells_aggregate_seeds_by_the_median_counting_divergence_as_infinite(
        small: dict[str, pd.DataFrame]) -> None:
    trials = small["trials"]
    cells = plots.cell_frame(trials, small["history"], plots.choose_layout(trials))
    assert len(cells) == 8 and set(cells["seeds"]) == {2}
    for cell in cells.itertuples():
        seeds = trials[(trials["alpha"] == cell.alpha) & (trials["hidden"] == cell.hidden)]
        errors = np.where(seeds["status"] == "diverged", np.inf, seeds["final_error"])
        assert cell.error == np.median(errors)
        assert cell.converged_share == (seeds["status"] == "converged").mean()
        assert (cell.outcome == "diverged") == (cell.error == np.inf)
    diverged_alone = cells[(cells["alpha"] == 1000.0)]
    assert (diverged_alone["error"] == np.inf).all()


def test_the_converged_epoch_is_the_median_over_converged_seeds_only(
        small: dict[str, pd.DataFrame]) -> None:
    trials = small["trials"]
    cells = plots.cell_frame(trials, small["history"], plots.choose_layout(trials))
    for cell in cells.itertuples():
        seeds = trials[(trials["alpha"] == cell.alpha) & (trials["hidden"] == cell.hidden)
                       & (trials["status"] == "converged")]
        epochs = seeds["converged_epoch"].astype("float64")
        assert (np.isnan(cell.converged_epoch) if epochs.empty
                else cell.converged_epoch == epochs.median())


def test_the_xor_sweep_tells_iamtrasks_story() -> None:
    """Too small an alpha barely moves, 0.1 to 10 learn, 1000 stalls, and a wider layer moves
    the boundary: alpha 10 converges with 4 hidden units and stalls with 64."""
    frames = sweep_frames({"alpha": ALPHAS, "hidden": [(4,), (64,)]},
                          {"epochs": 4000, "seed": 1})
    trials = frames["trials"]
    cells = plots.cell_frame(trials, frames["history"], plots.choose_layout(trials))
    outcome = cells.set_index(["hidden", "alpha"])["outcome"]
    assert outcome["4", 0.001] == "flat" and outcome["64", 0.001] == "flat"
    assert all(outcome["4", a] in ("learning", "converged") for a in (0.1, 1.0, 10.0))
    assert outcome["4", 1000.0] == "flat" and outcome["64", 1000.0] == "flat"
    assert outcome["4", 10.0] == "converged"
    assert outcome["64", 10.0] == "flat"


# --- the trial whose weights are drawn ----------------------------------------------------

def test_the_default_trial_is_the_one_with_the_lowest_final_error(
        small: dict[str, pd.DataFrame]) -> None:
    trials = small["trials"]
    best = trials.loc[trials["final_error"].idxmin(), "trial"]
    assert plots.default_trial(trials, small["directions"]) == best


def test_a_trial_is_found_by_a_unique_prefix_and_an_ambiguous_one_is_refused(
        small: dict[str, pd.DataFrame]) -> None:
    trial = str(small["trials"]["trial"].iloc[3])
    assert plots.resolve_trial(small["trials"], trial[:9]) == trial
    with pytest.raises(UnknownTrial) as caught:
        plots.resolve_trial(small["trials"], "")
    assert caught.value.trial == "" and caught.value.matches == len(small["trials"])


def test_the_direction_maps_draw_every_layer_of_the_chosen_trial(
        small: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    trials, directions = small["trials"], small["directions"]
    trial = str(trials["trial"].iloc[0])
    [picture] = plots.weight_directions(trials, directions, trial, tmp_path)
    assert picture.png == tmp_path / "weight_directions.png" and picture.png.exists()
    assert picture.svg.read_text(encoding="utf-8").count("<svg") == 1
    assert f"trial {trial}" in picture.caption
    assert "one map per weight matrix" in picture.caption


def test_a_sweep_whose_trials_all_failed_is_drawn_as_dark_cells_without_curves(
        tmp_path: Path) -> None:
    trials = trials_of(TrialParams(alpha=0.1), TrialParams(alpha=1.0),
                       statuses=["failed", "crashed"])
    history = tables.empty(tables.HISTORY_SCHEMA)
    layout = plots.choose_layout(trials)
    cells = plots.cell_frame(trials, history, layout)
    assert cells["outcome"].tolist() == ["failed", "failed"]
    assert cells["error"].isna().all()
    pictures = plots.heatmaps(trials, history, layout, tmp_path)
    assert [p.name for p in pictures] == ["outcome", "heatmap_final_error",
                                          "heatmap_direction_changes"]
    assert plots.learning_curves(trials, history, layout, tmp_path) == []
