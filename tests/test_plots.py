"""The pictures' decisions: which parameter goes where, in what order, with which labels, what
each cell says, and that the XOR sweep tells iamtrask's story. Drawing itself is exercised by
test_report.py, which builds whole reports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import (
    CLASSIFIER_FIXED,
    CLASSIFIER_GRID,
    CLASSIFIER_HELD_OUT,
    HELD_OUT_GRID,
    HELD_OUT_ROWS,
    SMALL_FIXED,
    SMALL_GRID,
    sweep_frames,
)
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import Collection, LineCollection, PolyCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox
from numpy.typing import NDArray

from nnsweep import (
    cellstats,
    directionmaps,
    figures,
    heatmaps,
    learningcurves,
    outcomes,
    plots,
    tables,
)
from nnsweep.datasets import builtin
from nnsweep.errors import NnsweepError, UnknownTrial
from nnsweep.params import TrialParams

ALPHAS = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]


def trials_of(*params: TrialParams, statuses: list[str] | None = None) -> pd.DataFrame:
    """A trials table for these parameters, without training (outcomes left empty)."""
    statuses = statuses or ["not_converged"] * len(params)
    return tables.trials_frame(tables.trial_row(f"t{i}", p, None, 0.0, status=s)
                               for i, (p, s) in enumerate(zip(params, statuses, strict=True)))


def grid_trials(**axes: list[Any]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = [{}]
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
    layout = figures.choose_layout(grid_trials(hidden=[(4,), (8,)], alpha=[0.1, 1.0]))
    assert (layout.x, layout.y, layout.facet, layout.seeds) == ("alpha", "hidden", (), 1)


def test_without_alpha_and_hidden_the_widest_swept_parameters_are_the_axes() -> None:
    trials = grid_trials(activation=["relu", "tanh"], epochs=[10, 20, 30], descent=["full"])
    layout = figures.choose_layout(trials)
    assert (layout.x, layout.y) == ("epochs", "activation")


def test_the_other_swept_parameters_become_facets_and_seeds_are_counted() -> None:
    trials = grid_trials(alpha=[0.1, 1.0], hidden=[(4,), (8,)], activation=["relu", "tanh"],
                         seed=[1, 2, 3])
    layout = figures.choose_layout(trials)
    assert (layout.x, layout.y, layout.facet, layout.seeds) == (
        "alpha", "hidden", ("activation",), 3)


def test_a_facet_the_sweep_names_comes_first_and_unnamed_ones_follow() -> None:
    trials = grid_trials(alpha=[0.1, 1.0], hidden=[(4,), (8,)], activation=["relu", "tanh"],
                         descent=["full", "stochastic"])
    layout = figures.choose_layout(trials, facet="descent")
    assert layout.facet == ("descent", "activation")


def test_a_one_axis_sweep_has_no_y_and_a_fixed_sweep_no_axes() -> None:
    assert figures.choose_layout(grid_trials(alpha=[0.1, 1.0])).y is None
    single = figures.choose_layout(grid_trials(alpha=[0.1]))
    assert (single.x, single.y, single.facet, single.seeds) == (None, None, (), 1)


def test_a_single_axis_asked_for_as_y_is_drawn_across() -> None:
    layout = figures.choose_layout(grid_trials(alpha=[0.1, 1.0], seed=[1, 2]), y="alpha")
    assert (layout.x, layout.y, layout.seeds) == ("alpha", None, 2)


def test_a_parameter_may_fill_only_one_place() -> None:
    with pytest.raises(NnsweepError, match="each parameter may fill one place only"):
        figures.choose_layout(grid_trials(alpha=[0.1, 1.0]), x="alpha", y="alpha")


def test_an_axis_that_is_not_a_parameter_is_refused() -> None:
    with pytest.raises(NnsweepError, match="report axis 'width': not a parameter"):
        figures.choose_layout(grid_trials(alpha=[0.1, 1.0]), y="width")


# --- order and labels ---------------------------------------------------------------------

def test_hidden_sizes_are_ordered_by_depth_then_width_not_as_text() -> None:
    values = pd.Series(["16", "3-2", "", "4", "128", "4-4"])
    assert figures.ordered_values("hidden", values) == ["", "4", "16", "128", "3-2", "4-4"]


def test_numbers_are_ordered_by_value() -> None:
    assert figures.ordered_values("alpha", pd.Series([10.0, 0.001, 1.0])) == [0.001, 1.0, 10.0]


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
    assert figures.value_label(column, value) == label


def test_thirteen_log_spaced_alphas_get_distinct_labels() -> None:
    labels = [figures.value_label("alpha", a) for a in np.logspace(-3, 3, 13)]
    assert len(set(labels)) == 13
    assert max(len(label) for label in labels) <= 7


# --- what each cell says ------------------------------------------------------------------

def test_history_is_thinned_to_log_spaced_epochs_keeping_the_first_and_last() -> None:
    history = pd.DataFrame({"trial": ["a"] * 10_000 + ["b"] * 5,
                            "epoch": [*range(10_000), *range(5)]})
    thinned = learningcurves.thin_history(history, points=50)
    a = thinned[thinned["trial"] == "a"]["epoch"].tolist()
    assert a[0] == 0 and a[-1] == 9_999
    assert len(a) <= 52
    assert a[1:6] == [1, 2, 3, 4, 5]  # dense where a log axis is wide
    assert thinned[thinned["trial"] == "b"]["epoch"].tolist() == [0, 1, 2, 3, 4]


def test_thinning_keeps_the_same_epochs_whatever_order_the_rows_come_in() -> None:
    rng = np.random.default_rng(0)
    history = pd.DataFrame({"trial": ["a"] * 900 + ["b"] * 40 + ["c"] * 1,
                            "epoch": [*range(0, 9000, 10), *range(40), 0]})
    shuffled = history.sample(frac=1.0, random_state=rng.integers(1 << 31))
    kept = learningcurves.thin_history(history, points=30)
    shuffled_kept = learningcurves.thin_history(shuffled, points=30)
    assert sorted(map(tuple, shuffled_kept.to_numpy().tolist())) \
        == sorted(map(tuple, kept.to_numpy().tolist()))
    assert kept.groupby("trial")["epoch"].agg(["first", "last"]).to_numpy().tolist() == [
        [0, 8990], [0, 39], [0, 0]]


def test_outcomes_and_curves_do_not_depend_on_the_historys_row_order(
        small: dict[str, pd.DataFrame]) -> None:
    """The figures work on integer trial codes and sorted arrays: a history written in
    another order (trials interleaved, epochs shuffled) gives the same outcomes and curves."""
    trials, history = small["trials"], small["history"]
    shuffled = history.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert cellstats.trial_outcomes(trials, shuffled).tolist() == \
        cellstats.trial_outcomes(trials, history).tolist()
    pd.testing.assert_frame_equal(learningcurves.curve_frame(trials, shuffled, ["hidden"], "mae"),
                                  learningcurves.curve_frame(trials, history, ["hidden"], "mae"))


def test_the_direction_maps_colours_are_seaborns_rocket_within_one_level() -> None:
    """rocket is drawn from its stops without importing seaborn: within 1/255 of its table."""
    seaborn_cm = pytest.importorskip("seaborn.cm")
    table = np.array(seaborn_cm._rocket_lut)  # (256, 3)
    drawn = figures.colour_map("rocket")(np.linspace(0.0, 1.0, 256))[:, :3]  # (256, 3)
    assert np.abs(drawn - table).max() <= 1 / 255
    reverse = figures.colour_map("rocket_r")(np.linspace(0.0, 1.0, 256))[:, :3]
    assert np.abs(reverse - table[::-1]).max() <= 1 / 255
    assert figures.colour_map("viridis") == colormaps["viridis"]


def test_outcomes_are_nnsweep_outcomes_classes(small: dict[str, pd.DataFrame]) -> None:
    """The figures use nnsweep.outcomes' judgement, with one colour and label per class."""
    trials, history = small["trials"], small["history"]
    drawn = cellstats.trial_outcomes(trials, history)
    assert drawn.tolist() == outcomes.trial_outcomes(trials, history).tolist()
    assert {"converged", "diverged"} <= set(drawn) <= set(outcomes.OUTCOME_NAMES)
    assert [name for name, *_ in figures.OUTCOMES] == list(outcomes.OUTCOME_NAMES)


def test_a_failed_trial_is_its_own_outcome() -> None:
    trials = trials_of(TrialParams(), statuses=["failed"])
    assert cellstats.trial_outcomes(trials, tables.empty(tables.HISTORY_SCHEMA)).tolist() == [
        "failed"]


def test_cells_aggregate_seeds_by_the_median_counting_divergence_as_infinite(
        small: dict[str, pd.DataFrame]) -> None:
    trials = small["trials"]
    cells = cellstats.cell_frame(trials, small["history"], figures.choose_layout(trials))
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
    cells = cellstats.cell_frame(trials, small["history"], figures.choose_layout(trials))
    for cell in cells.itertuples():
        seeds = trials[(trials["alpha"] == cell.alpha) & (trials["hidden"] == cell.hidden)
                       & (trials["status"] == "converged")]
        epochs = seeds["converged_epoch"].astype("float64")
        assert (np.isnan(cell.converged_epoch) if epochs.empty
                else cell.converged_epoch == epochs.median())


def test_the_xor_sweep_tells_iamtrasks_story() -> None:
    """Too small an alpha is too slow, 0.1 to 10 learn, 1000 is stuck, and a wider layer moves
    the boundary: alpha 10 converges with 4 hidden units and is stuck with 64."""
    frames = sweep_frames({"alpha": ALPHAS, "hidden": [(4,), (64,)]},
                          {"epochs": 4000, "seed": 1})
    trials = frames["trials"]
    cells = cellstats.cell_frame(trials, frames["history"], figures.choose_layout(trials))
    outcome = cells.set_index(["hidden", "alpha"])["outcome"]
    assert outcome["4", 0.001] == "too_slow" and outcome["64", 0.001] == "too_slow"
    assert all(outcome["4", a] in ("learning", "converged") for a in (0.1, 1.0, 10.0))
    assert outcome["4", 1000.0] == "stuck" and outcome["64", 1000.0] == "stuck"
    assert outcome["4", 10.0] == "converged"
    assert outcome["64", 10.0] == "stuck"


# --- the trial whose weights are drawn ----------------------------------------------------

def test_the_default_trial_is_the_one_with_the_lowest_final_error(
        small: dict[str, pd.DataFrame]) -> None:
    trials = small["trials"]
    best = trials.loc[trials["final_error"].idxmin(), "trial"]
    assert directionmaps.default_trial(trials, small["directions"]) == best


def test_a_trial_is_found_by_a_unique_prefix_and_an_ambiguous_one_is_refused(
        small: dict[str, pd.DataFrame]) -> None:
    trial = str(small["trials"]["trial"].iloc[3])
    assert directionmaps.resolve_trial(small["trials"], trial[:9]) == trial
    with pytest.raises(UnknownTrial) as caught:
        directionmaps.resolve_trial(small["trials"], "")
    assert caught.value.trial == "" and caught.value.matches == len(small["trials"])


def test_the_direction_maps_draw_every_layer_of_the_chosen_trial(
        small: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    trials, directions = small["trials"], small["directions"]
    trial = str(trials["trial"].iloc[0])
    [picture] = directionmaps.weight_directions(trials, directions, trial, tmp_path)
    assert picture.png == tmp_path / "weight_directions.png" and picture.png.exists()
    assert picture.svg.read_text(encoding="utf-8").count("<svg") == 1
    assert f"trial {trial}" in picture.caption
    assert "one map per weight matrix" in picture.caption


def test_a_sweep_whose_trials_all_failed_is_drawn_as_dark_cells_without_curves(
        tmp_path: Path) -> None:
    trials = trials_of(TrialParams(alpha=0.1), TrialParams(alpha=1.0),
                       statuses=["failed", "crashed"])
    history = tables.empty(tables.HISTORY_SCHEMA)
    layout = figures.choose_layout(trials)
    cells = cellstats.cell_frame(trials, history, layout)
    assert cells["outcome"].tolist() == ["failed", "failed"]
    assert cells["error"].isna().all()
    pictures = heatmaps.heatmaps(trials, history, layout, tmp_path)
    assert [p.name for p in pictures] == ["outcome", "heatmap_final_error",
                                          "heatmap_direction_changes"]
    assert learningcurves.learning_curves(trials, history, layout, tmp_path) == []


# --- the figures themselves ---------------------------------------------------------------

Drawn = list[tuple[Figure, figures.Picture]]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Drawn:
    """Every figure the modules draw_all draws with save, kept with its picture for the test to
    inspect."""
    kept: Drawn = []
    save = figures.save

    def keep(fig: Figure, out: Path, name: str, title: str, caption: str,
             vector: bool = True) -> figures.Picture:
        picture = save(fig, out, name, title, caption, vector)
        kept.append((fig, picture))
        return picture

    for module in (heatmaps, learningcurves, directionmaps):
        monkeypatch.setattr(module, "save", keep)
    return kept


def figure_named(drawn: Drawn, name: str) -> tuple[Figure, figures.Picture]:
    [found] = [(fig, picture) for fig, picture in drawn if picture.name == name]
    return found


def synthetic(axes: dict[str, list[Any]], *, seeds: int = 1, epochs: int = 200,
              error: Any = None, record_every: int = 1) -> dict[str, pd.DataFrame]:
    """Tables of a sweep without training: trial t's mae at epoch e is error(params, e) (by
    default 0.5 / (1 + alpha e), a little higher for each seed); final error is the last."""
    rows: list[dict[str, Any]] = [{}]
    for name, values in {**axes, "seed": list(range(seeds))}.items():
        rows = [{**row, name: value} for row in rows for value in values]
    params = [TrialParams(epochs=epochs, record_every=record_every, **row) for row in rows]
    trials = trials_of(*params)
    error = error or (lambda p, e: 0.5 / (1 + p.alpha * e) * (1 + 0.1 * p.seed))
    history = []
    for trial, p in zip(trials["trial"], params, strict=True):
        epoch = np.array(p.recorded_epochs())  # (recorded,)
        mae = np.array([error(p, e) for e in epoch], dtype=float)  # (recorded,)
        history.append(pd.DataFrame({"trial": trial, "epoch": epoch, "mae": mae,
                                     "mse": mae ** 2, "sse": 4 * mae ** 2}))
    frame = tables.concat(history, tables.HISTORY_SCHEMA)
    last = frame.groupby("trial")["mae"].last()
    trials["final_error"] = trials["trial"].map(last).astype("float64")
    trials["direction_changes"] = pd.array([10] * len(trials), dtype="Int64")
    return {"trials": trials, "history": frame,
            "directions": tables.empty(tables.DIRECTIONS_SCHEMA)}


def curves_figure(frames: dict[str, pd.DataFrame], drawn: Drawn, tmp_path: Path,
                  **axes: Any) -> tuple[Figure, figures.Picture]:
    layout = figures.choose_layout(frames["trials"], **axes)
    learningcurves.learning_curves(frames["trials"], frames["history"], layout, tmp_path,
                                   vector=False)
    fig, picture = figure_named(drawn, "learning_curves")
    fig.canvas.draw()
    return fig, picture


def points(collection: Collection) -> NDArray[np.float64]:
    """A collection's marker positions, (n, 2)."""
    return np.asarray(collection.get_offsets(), dtype=float)


def segments(lines: LineCollection) -> list[NDArray[np.float64]]:
    """A line collection's lines, each (points, 2)."""
    return [np.asarray(seg, dtype=float) for seg in lines.get_segments()]


def panels(fig: Figure) -> list[Axes]:
    """The visible axes that are not colour bars."""
    return [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]


def overlaps(boxes: list[Bbox]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if boxes[i].overlaps(boxes[j])]


def tick_label_boxes(axis: Any, renderer: Any) -> list[Bbox]:
    return [label.get_window_extent(renderer) for label in axis.get_ticklabels()
            if label.get_visible() and label.get_text()]


def assert_tidy(fig: Figure) -> None:
    """No two tick labels of an axis overlap, no two panel titles overlap, and every label and
    title lies inside the figure (nothing clipped at its edge)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    page = fig.bbox
    titles = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            boxes = tick_label_boxes(axis, renderer)
            assert not overlaps(boxes), [t.get_text() for t in axis.get_ticklabels()]
            for box in boxes:
                assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1
                assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1
        if ax.get_title():
            titles.append(ax.title.get_window_extent(renderer))
    assert not overlaps(titles)
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None:
        titles.append(suptitle.get_window_extent(renderer))
    for box in titles:
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1


def grid_of(axes: list[Axes]) -> tuple[int, int]:
    """Rows and columns that the axes' positions form."""
    lefts = {round(ax.get_position().x0, 3) for ax in axes}
    bottoms = {round(ax.get_position().y0, 3) for ax in axes}
    return len(bottoms), len(lefts)


@pytest.mark.parametrize(("count", "shape"), [
    (1, (1, 1)), (2, (1, 2)), (3, (1, 3)), (4, (2, 2)), (5, (2, 3)), (6, (2, 3)),
    (7, (2, 4)), (8, (3, 3)), (9, (3, 3)), (10, (3, 4)), (12, (3, 4)),
])
def test_facet_grids_are_compact(count: int, shape: tuple[int, int]) -> None:
    assert figures.grid_shape(count) == shape


@pytest.mark.parametrize("count", range(2, 17))
def test_no_facet_grid_leaves_a_lone_panel_where_a_fuller_row_fits(count: int) -> None:
    rows, columns = figures.grid_shape(count)
    assert rows * columns >= count and (rows - 1) * columns < count
    last_row = count - (rows - 1) * columns
    unavoidable = all(count % c == 1 for c in range(2, figures.MAX_PANEL_COLUMNS + 1))
    assert last_row > 1 or rows == 1 or unavoidable


@pytest.mark.parametrize(("low", "high"), [(0.02, 0.05), (0.3, 0.9), (1e-6, 1.0), (3.0, 4.0),
                                           (1e-12, 1e3), (10.0, 11.0)])
def test_log_ticks_give_two_to_six_values_inside_the_range(low: float, high: float) -> None:
    ticks = figures.log_ticks(low, high)
    assert 2 <= len(ticks) <= figures.MAX_TICKS
    assert all(low * 0.999 <= t <= high * 1.001 for t in ticks)
    assert ticks == sorted(set(ticks))


def test_learning_curves_put_epochs_on_a_log_axis_with_epoch_0_apart(
        drawn: Drawn, tmp_path: Path) -> None:
    for epochs, stride in ((60, 1), (60_000, 100)):
        frames = synthetic({"alpha": [0.1, 1.0]}, epochs=epochs, record_every=stride)
        fig, picture = curves_figure(frames, drawn, tmp_path)
        drawn.clear()
        [ax] = panels(fig)
        assert ax.get_xscale() == "log"
        left, right = ax.get_xlim()
        assert left > 0
        labels = {t.get_text(): t.get_position()[0] for t in ax.xaxis.get_ticklabels()}
        assert labels["0"] < stride  # epoch 0 sits left of the first recorded epoch after it
        # The stub for epoch 0 takes a small share of the log width, not 0..first its 40%.
        share = np.log(stride / left) / np.log(right / left)
        assert share < 0.25
        starts = [c for c in ax.collections if points(c).shape[0]
                  and np.allclose(points(c)[:, 0], labels["0"])]
        assert starts  # epoch 0's errors are drawn at the stub
        assert "epoch 0 as open circles" in picture.caption


def test_errors_are_never_clipped_the_log_axis_reaches_the_smallest(
        drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0]},
                       error=lambda p, e: 0.5 * 10.0 ** (-15 * e / 199) if p.alpha > 0.5
                       else 0.5)
    fig, _ = curves_figure(frames, drawn, tmp_path)
    [ax] = panels(fig)
    smallest = float(frames["history"]["mae"].min())
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    assert smallest / 2 < low <= smallest  # its own floor, not a fixed 1e-12
    assert high >= 0.5
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    lowest = min(float(np.min(seg[:, 1])) for c in lines for seg in segments(c))
    assert lowest == pytest.approx(smallest)


def test_exact_zeros_are_drawn_at_the_floor_with_a_marker_and_said(
        drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0]},
                       error=lambda p, e: 0.0 if p.alpha > 0.5 and e > 100 else 0.5 / (1 + e))
    fig, picture = curves_figure(frames, drawn, tmp_path)
    [ax] = panels(fig)
    floor = float(frames["history"]["mae"][frames["history"]["mae"] > 0].min())
    assert 0 < ax.get_ylim()[0] <= floor
    marks = [c for c in ax.collections if points(c).shape[0]
             and np.allclose(points(c)[:, 1], floor)
             and points(c)[:, 0].min() > 100]
    assert marks
    assert "exactly 0" in picture.caption


def test_curve_colours_follow_viridis_in_the_order_of_the_swept_value(
        drawn: Drawn, tmp_path: Path) -> None:
    alphas = [0.01, 0.1, 1.0, 10.0]
    fig, _ = curves_figure(synthetic({"alpha": alphas[::-1]}), drawn, tmp_path)
    [ax] = panels(fig)
    [lines] = [c for c in ax.collections if isinstance(c, LineCollection)]
    # The larger alpha, the lower its last error: order the curves by alpha that way.
    ends = [float(seg[-1, 1]) for seg in segments(lines)]
    order = np.argsort(ends)[::-1]  # smallest alpha first
    colours = np.asarray(lines.get_colors())[order]  # (alphas, 4)
    viridis = colormaps["viridis"](np.linspace(0.0, figures.CURVE_PALETTE_END, len(alphas)))
    np.testing.assert_allclose(colours[:, :3], viridis[:, :3], atol=1e-6)


def test_seeds_are_a_median_line_and_a_band_never_a_line_or_panel_each(
        drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0, 10.0]}, seeds=5)
    fig, picture = curves_figure(frames, drawn, tmp_path)
    [ax] = panels(fig)
    [lines] = [c for c in ax.collections if isinstance(c, LineCollection)]
    [bands] = [c for c in ax.collections if isinstance(c, PolyCollection)
               and not isinstance(c, LineCollection)]
    assert len(segments(lines)) == 3 and len(bands.get_paths()) == 3
    # The median seed is seed 2 (errors rise with the seed); the band spans seeds 0 to 4.
    history = frames["history"].merge(frames["trials"][["trial", "alpha", "seed"]], on="trial")
    last = history[history["epoch"] == 199].set_index(["alpha", "seed"])["mae"]
    ends = sorted(float(seg[-1, 1]) for seg in segments(lines))
    assert ends == pytest.approx(sorted(last[(a, 2)] for a in (0.1, 1.0, 10.0)))
    assert "median of 5 seeds" in picture.caption and "min to max" in picture.caption
    drawn.clear()
    fig, _ = curves_figure(frames, drawn, tmp_path, x="alpha", y="seed")
    assert len(panels(fig)) == 1  # seed on the layout's y axis still makes no panels


def test_four_curve_panels_make_a_two_by_two_grid_with_titles_that_fit(
        drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0], "hidden": [(2,), (4,), (8,), (16,)]})
    fig, _ = curves_figure(frames, drawn, tmp_path)
    shown = panels(fig)
    assert len(shown) == 4 and grid_of(shown) == (2, 2)
    assert_tidy(fig)


@pytest.mark.parametrize(("epochs", "stride", "alphas"), [
    (60, 1, [0.05, 0.1, 0.2, 0.4, 0.8]),
    (60_000, 100, ALPHAS),
    (5, 1, [0.1, 1.0]),
])
def test_learning_curve_tick_labels_never_collide(drawn: Drawn, tmp_path: Path, epochs: int,
                                                  stride: int, alphas: list[float]) -> None:
    frames = synthetic({"alpha": alphas, "hidden": [(2,), (4,), (8,)]}, epochs=epochs,
                       record_every=stride)
    fig, _ = curves_figure(frames, drawn, tmp_path)
    assert_tidy(fig)


def heatmap_figures(frames: dict[str, pd.DataFrame], drawn: Drawn, tmp_path: Path,
                    **axes: Any) -> dict[str, tuple[Figure, figures.Picture]]:
    layout = figures.choose_layout(frames["trials"], **axes)
    heatmaps.heatmaps(frames["trials"], frames["history"], layout, tmp_path,
                      directions=frames["directions"], vector=False)
    return {picture.name: (fig, picture) for fig, picture in drawn}


def test_every_colour_bar_names_at_least_two_values_even_under_a_decade(
        drawn: Drawn, tmp_path: Path) -> None:
    # Final errors between about 0.02 and 0.05: no power of ten inside the range.
    frames = synthetic({"alpha": [0.1, 0.2, 0.4], "hidden": [(2,), (4,)]}, seeds=3,
                       error=lambda p, e: 0.05 / (1 + p.alpha * e / 80) + 0.001 * p.seed)
    figures = heatmap_figures(frames, drawn, tmp_path)
    bars = 0
    for fig, _ in figures.values():
        fig.canvas.draw()
        for ax in fig.axes:
            if hasattr(ax, "_colorbar"):
                bars += 1
                low, high = sorted(ax.get_ylim())
                labelled = [t for t in ax.yaxis.get_ticklabels() if t.get_text()
                            and low <= t.get_position()[1] <= high]
                assert len(labelled) >= 2, fig.get_suptitle()
        assert_tidy(fig)
    assert bars == 4  # final error, share, epoch, direction changes; the outcome has a legend


def test_heatmap_captions_state_the_aggregation_rule(drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0], "hidden": [(2,), (4,)]}, seeds=3)
    figures = heatmap_figures(frames, drawn, tmp_path)
    assert "each cell: the median of its 3 seeds' final mae" in \
        figures["heatmap_final_error"][1].caption
    assert "the median seed decides a cell" in figures["outcome"][1].caption
    drawn.clear()
    single = heatmap_figures(synthetic({"alpha": [0.1, 1.0]}), drawn, tmp_path)
    assert "each cell: one trial's final mae" in single["heatmap_final_error"][1].caption


def test_heatmap_facets_make_a_compact_grid(drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0], "hidden": [(2,), (4,)],
                        "activation": ["sigmoid", "tanh", "relu", "softplus"]})
    fig, _ = heatmap_figures(frames, drawn, tmp_path)["heatmap_final_error"]
    shown = panels(fig)
    assert len(shown) == 4 and grid_of(shown) == (2, 2)
    assert_tidy(fig)


def test_diverged_cells_are_grey_hatched_and_marked(drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0, 1000.0]})
    trials = frames["trials"]
    trials.loc[trials["alpha"] == 1000.0, "status"] = "diverged"
    fig, _ = heatmap_figures(frames, drawn, tmp_path)["heatmap_final_error"]
    [ax] = panels(fig)
    hatched = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch() == "//"]
    assert len(hatched) == 1 and hatched[0].get_x() == 2  # the third column: alpha 1000
    assert figures.MARK in [t.get_text() for t in ax.texts]


def test_the_outcome_map_gives_each_outcome_its_own_colour_and_a_legend(
        drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.001, 0.1, 100.0, 1000.0]}, epochs=400,
                       error=lambda p, e: (0.5 - 1e-5 * e if p.alpha < 0.01
                                           else 0.5 / (1 + e) if p.alpha < 1 else 0.3))
    trials = frames["trials"]
    trials.loc[trials["alpha"] == 1000.0, "status"] = "diverged"
    fig, picture = heatmap_figures(frames, drawn, tmp_path)["outcome"]
    [legend] = fig.legends
    colours = {text.get_text().split(":")[0]: tuple(np.asarray(patch.get_facecolor())[:3])
               for text, patch in zip(legend.get_texts(), legend.get_patches(), strict=True)}
    assert {"too slow", "learning", "stuck"} <= set(colours)
    assert len(set(colours.values())) == len(colours)
    assert "one colour per outcome" in picture.caption
    [ax] = panels(fig)
    assert [t.get_text() for t in ax.texts][:3] == ["slow", "learn", "stuck"]


# --- direction changes per weight and step ------------------------------------------------

def test_direction_changes_are_divided_by_weights_and_update_steps() -> None:
    params = [TrialParams(descent="full", epochs=10), TrialParams(descent="minibatch",
              batch_size=3, epochs=10), TrialParams(descent="stochastic", epochs=10),
              TrialParams(descent="full", epochs=10, seed=1)]
    trials = trials_of(*params, statuses=["not_converged"] * 3 + ["diverged"])
    trials["direction_changes"] = pd.array([120, 240, 480, 60], dtype="Int64")
    trials["diverged_epoch"] = pd.array([pd.NA, pd.NA, pd.NA, 5], dtype="Int64")
    directions = pd.DataFrame({"trial": np.repeat(trials["trial"].to_numpy(), 6)})
    rates = cellstats.change_rates(trials, directions, rows=4)
    # Six weights each; steps: 10 x 1, 10 x ceil(4 / 3), 10 x 4, and 5 x 1 up to divergence.
    assert rates.tolist() == pytest.approx([120 / 60, 240 / 120, 480 / 240, 60 / 30])
    assert np.isnan(cellstats.change_rates(trials, directions, rows=None).iloc[1])
    assert cellstats.update_steps(trials, rows=4).tolist() == [10, 20, 40, 5]
    # The trial ids as categories (as the report reads them): one without a row has no rate.
    lean = directions[directions["trial"] != trials["trial"].iloc[0]].astype(
        {"trial": pd.CategoricalDtype(trials["trial"].astype(object))})
    assert np.isnan(cellstats.change_rates(trials, lean, rows=4).iloc[0])
    assert cellstats.change_rates(trials, lean, rows=4).iloc[1:].tolist() == pytest.approx(
        [240 / 120, 480 / 240, 60 / 30])


def test_the_dataset_rows_are_told_by_the_tables(small: dict[str, pd.DataFrame]) -> None:
    assert cellstats.dataset_rows(small["history"], small["directions"]) == 4  # XOR's four rows


def test_direction_figures_label_their_unit(small: dict[str, pd.DataFrame], drawn: Drawn,
                                            tmp_path: Path) -> None:
    layout = figures.choose_layout(small["trials"])
    plots.draw_all(small, layout, tmp_path, vector=False)
    fig, picture = figure_named(drawn, "heatmap_direction_changes")
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    label = bars[0].get_ylabel()
    assert re.search(r"per weight per (update step|[\d,]+ update steps)", label), label
    assert "divided by its weights and by its update steps" in picture.caption
    assert_tidy(fig)  # its long title wraps inside the figure
    fig, picture = figure_named(drawn, "weight_directions")
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert re.search(r"per (update step|[\d,]+ update steps)", bars[0].get_ylabel())
    best = small["trials"].set_index("trial").loc[directionmaps.default_trial(small["trials"],
                                                                       small["directions"])]
    assert best["descent"] == "full" and best["status"] != "diverged"  # one step an epoch
    assert f"divided by its {best['epochs']} update steps" in picture.caption


# --- one figure per grid shape ------------------------------------------------------------

def test_a_one_axis_sweep_gets_a_line_of_final_error_with_the_seed_band(
        drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.01, 0.1, 1.0, 10.0]}, seeds=3)
    layout = figures.choose_layout(frames["trials"])
    pictures = plots.draw_all(frames, layout, tmp_path, vector=False)
    assert "final_error" in [p.name for p in pictures]
    fig, picture = figure_named(drawn, "final_error")
    [ax] = panels(fig)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    [band] = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(band.get_paths()) == 1
    [line] = [ln for ln in ax.lines if len(np.asarray(ln.get_xdata())) == 4]
    cells = cellstats.cell_frame(frames["trials"], frames["history"], layout)
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float),
                               cells.sort_values("alpha")["error"])
    assert "each cell: the median of its 3 seeds' final mae" in picture.caption
    assert "band: least to largest final error" in picture.caption
    assert_tidy(fig)


def test_two_axes_get_no_line_and_three_or_more_get_facets_without_error(
        drawn: Drawn, tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0], "hidden": [(2,), (4,)],
                        "activation": ["sigmoid", "tanh"], "descent": ["full", "stochastic"]},
                       seeds=2, epochs=50)
    layout = figures.choose_layout(frames["trials"])
    assert len(layout.facet) == 2
    names = [p.name for p in plots.draw_all(frames, layout, tmp_path, vector=False)]
    assert "final_error" not in names and "learning_curves" in names
    fig, _ = figure_named(drawn, "learning_curves")
    assert len(panels(fig)) == 2 * 2 * 2
    fig, _ = figure_named(drawn, "heatmap_final_error")
    assert len(panels(fig)) == 4


# --- what drawing costs -------------------------------------------------------------------

def test_curves_cost_per_cell_not_per_seed_or_epoch(drawn: Drawn, tmp_path: Path) -> None:
    artists = []
    for seeds, epochs in ((2, 200), (8, 5000)):
        fig, _ = curves_figure(synthetic({"alpha": [0.1, 1.0, 10.0]}, seeds=seeds,
                                         epochs=epochs), drawn, tmp_path)
        drawn.clear()
        [ax] = panels(fig)
        artists.append(len(ax.get_children()))
        [lines] = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert max(len(seg) for seg in segments(lines)) <= learningcurves.MAX_CURVE_POINTS + 2
    assert artists[0] == artists[1]


def test_curve_frame_has_one_row_per_curve_and_kept_epoch() -> None:
    frames = synthetic({"alpha": [0.1, 1.0]}, seeds=4, epochs=3000)
    stats = learningcurves.curve_frame(frames["trials"], frames["history"], ["alpha"], "mae")
    assert stats.groupby("curve").size().max() <= learningcurves.MAX_CURVE_POINTS + 2
    assert set(stats["seeds"]) == {4}
    assert not stats.duplicated(["curve", "epoch"]).any()


def test_png_is_the_only_format_unless_vectors_are_asked_for(tmp_path: Path) -> None:
    frames = synthetic({"alpha": [0.1, 1.0]})
    layout = figures.choose_layout(frames["trials"])
    plots.draw_all(frames, layout, tmp_path / "png", vector=False)
    assert list((tmp_path / "png").glob("*.svg")) == []
    pictures = plots.draw_all(frames, layout, tmp_path / "both", vector=True)
    assert all(p.png.exists() and p.svg.exists() for p in pictures)


def test_rates_are_shown_per_a_power_of_ten_of_steps_that_reads_as_plain_numbers() -> None:
    assert cellstats.per_steps(0.5) == cellstats.per_steps(0.01) == 1
    assert cellstats.per_steps(0.0099) == 1000
    assert cellstats.per_steps(0.00073) == 10_000
    assert 1 <= 0.00073 * cellstats.per_steps(0.00073) < 10
    assert cellstats.per_steps(float("nan")) == 1


# --- held-out rows ------------------------------------------------------------------------

def held_out(frames: dict[str, pd.DataFrame], scale: Any) -> dict[str, pd.DataFrame]:
    """The synthetic tables with held-out rows: a trial's validation mae is its training mae
    times scale(alpha), at every recorded epoch; its final validation error the last."""
    trials, history = frames["trials"], frames["history"].assign(split="train")
    factor = history["trial"].map(trials.set_index("trial")["alpha"].map(scale))
    mae = history["mae"].to_numpy() * factor.to_numpy(dtype=float)  # (rows,)
    held = history.assign(split="validation", mae=mae, mse=mae ** 2, sse=4 * mae ** 2)
    last = held.groupby("trial")["mae"].last()
    trials = trials.assign(final_validation_error=trials["trial"].map(last).astype("float64"))
    return {**frames, "trials": trials, "history": history, "validation": held}


def held_curves(frames: dict[str, pd.DataFrame], drawn: Drawn, tmp_path: Path
                ) -> tuple[Figure, figures.Picture]:
    layout = figures.choose_layout(frames["trials"])
    learningcurves.learning_curves(frames["trials"], frames["history"], layout, tmp_path,
                                   vector=False, validation=frames.get("validation"))
    fig, picture = figure_named(drawn, "learning_curves")
    fig.canvas.draw()
    return fig, picture


def dash_patterns(lines: LineCollection) -> list[Any]:
    """Each line's dash pattern: None for a solid line."""
    styles: list[tuple[float, Any]] = list(lines.get_linestyle())  # type: ignore[arg-type]
    return [pattern for _, pattern in styles]


def legend_texts(fig: Figure) -> list[str]:
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def test_each_cells_validation_curve_is_dashed_beside_its_training_curve_in_its_colour(
        drawn: Drawn, tmp_path: Path) -> None:
    # Worse on the held-out rows for alpha 0.1; far better, below every training error, for 1.
    frames = held_out(synthetic({"alpha": [0.1, 1.0]}, seeds=2),
                      lambda alpha: 1.5 if alpha < 0.5 else 0.01)
    fig, picture = held_curves(frames, drawn, tmp_path)
    [ax] = panels(fig)
    solid, dashed = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert dash_patterns(solid) == [None]
    assert all(pattern is not None for pattern in dash_patterns(dashed))
    assert np.array_equal(solid.get_colors(), dashed.get_colors())  # a colour per alpha
    # Each dashed line is the median of its seeds' held-out errors, and none is clipped.
    validation = frames["validation"].merge(frames["trials"][["trial", "alpha"]], on="trial")
    median = validation[validation["epoch"] > 0].groupby(["alpha", "epoch"])["mae"].median()
    for alpha, line in zip([0.1, 1.0], segments(dashed), strict=True):
        expected = median[alpha].reindex(line[:, 0])
        np.testing.assert_allclose(line[:, 1], expected.to_numpy(), rtol=1e-12)
    assert ax.get_ylim()[0] <= median.min()
    starts = [c for c in ax.collections if points(c).shape[0] and c.get_paths()
              and isinstance(c, Collection) and not isinstance(c, LineCollection | PolyCollection)]
    assert len(starts) == 2  # epoch 0 on both sides: open circles and open squares
    assert any("held-out validation rows" in t for t in legend_texts(fig))
    assert any("training rows" in t for t in legend_texts(fig))
    assert "training and validation" in fig.get_suptitle()
    assert "solid lines on the training rows, dashed lines of the same colour on the " \
        "held-out validation rows" in picture.caption
    assert "dashed line above its solid one means the network does worse" in picture.caption


def test_without_held_out_rows_the_curves_are_training_only(drawn: Drawn,
                                                             tmp_path: Path) -> None:
    fig, picture = held_curves(synthetic({"alpha": [0.1, 1.0]}, seeds=2), drawn, tmp_path)
    [ax] = panels(fig)
    assert len([c for c in ax.collections if isinstance(c, LineCollection)]) == 1
    assert not any("validation" in t or "training rows" in t for t in legend_texts(fig))
    assert fig.get_suptitle() == "Learning curves: mae against epoch"
    assert picture.caption.startswith("Training error (mae, log scale;")


@pytest.fixture(scope="module")
def held_trained() -> dict[str, pd.DataFrame]:
    """HELD_OUT_GRID trained for real on moons, a quarter of them held out for validation."""
    data = builtin("moons", rows=HELD_OUT_ROWS).split(0.25)
    frames = sweep_frames(HELD_OUT_GRID, SMALL_FIXED, x=data.x, y=data.y,
                          validation=data.validation)
    history = frames["history"]
    return {**frames, "history": tables.training(history),
            "validation": history[history["split"] == "validation"].reset_index(drop=True),
            "tidy": history}


def test_the_gap_is_each_seeds_last_validation_minus_training_error_then_the_median(
        held_trained: dict[str, pd.DataFrame]) -> None:
    """Computed from the trials table, it agrees with the history: at each trial's last
    recorded epoch, the held-out metric minus the training metric, median over the seeds
    that did not diverge."""
    trials, history = held_trained["trials"], held_trained["tidy"]
    assert (trials["status"] == "diverged").any() and trials["metric"].eq("mae").all()
    last = history[history["epoch"] == history.groupby("trial")["epoch"].transform("max")]
    final = last.pivot(index="trial", columns="split", values="mae")
    final["gap"] = final["validation"] - final["train"]
    seeds = trials.join(final, on="trial")
    kept = seeds[seeds["status"] != "diverged"]
    expected = kept.groupby(["hidden", "alpha"])["gap"].median()
    held = seeds.assign(validation=np.where(seeds["status"] == "diverged", np.inf,
                                            seeds["validation"]))
    expected_held = held.groupby(["hidden", "alpha"])["validation"].median()
    cells = cellstats.validation_cells(trials, figures.choose_layout(trials)).set_index(
        ["hidden", "alpha"])
    assert len(cells) == 8
    pd.testing.assert_series_equal(cells["gap"].sort_index(), expected.reindex(
        cells.index).sort_index(), check_names=False)
    pd.testing.assert_series_equal(cells["error"].sort_index(), expected_held.sort_index(),
                                   check_names=False)
    assert cells["gap"].notna().sum() == 6  # alpha 1 diverges


def test_the_gap_heatmap_draws_those_medians_on_a_diverging_scale_centred_on_zero(
        held_trained: dict[str, pd.DataFrame], drawn: Drawn, tmp_path: Path) -> None:
    trials = held_trained["trials"]
    layout = figures.choose_layout(trials)
    pictures = heatmaps.validation_heatmaps(trials, layout, tmp_path, vector=False)
    assert [p.name for p in pictures] == ["heatmap_validation_error",
                                          "heatmap_generalization_gap"]
    fig, picture = figure_named(drawn, "heatmap_generalization_gap")
    [ax] = panels(fig)
    [mesh] = [c for c in ax.collections if hasattr(c, "get_array") and c.get_array() is not None]
    values = mesh.get_array()
    assert values is not None
    shown = np.ma.compressed(values)  # (cells with a gap,)
    gaps = cellstats.validation_cells(trials, layout)["gap"].to_numpy(dtype=float)
    diverged = cellstats.validation_cells(trials, layout)["error"].to_numpy(dtype=float) == np.inf
    assert sorted(shown) == sorted(gaps[np.isfinite(gaps) & ~diverged])
    norm: Any = mesh.norm
    assert norm.vmin == -norm.vmax < 0 and norm(0.0) == 0.5
    assert mesh.get_cmap().name == "RdBu_r"
    assert "final validation mae minus final training mae" in picture.caption
    assert "positive (red): the network does worse on the rows it never saw" in picture.caption
    assert "the median of its 2 seeds' gaps" in picture.caption
    held_fig, held_picture = figure_named(drawn, "heatmap_validation_error")
    assert "on the held-out validation rows, which the network never trains on" in \
        held_picture.caption
    assert held_fig.get_suptitle().startswith("Median final validation error (mae)")


def test_the_gaps_sign_is_read_the_other_way_for_a_score() -> None:
    assert heatmaps.gap_meaning("mae").startswith("positive (red): the network does worse")
    assert heatmaps.gap_meaning("accuracy").startswith("negative (red): the network scores lower")


@pytest.mark.slow
def test_the_validation_heatmap_sits_beside_the_training_one(
        held_trained: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    frames = held_trained
    layout = figures.choose_layout(frames["trials"])
    names = [p.name for p in plots.draw_all(frames, layout, tmp_path, vector=False,
                                            validation=frames["validation"])]
    assert names[:4] == ["outcome", "heatmap_final_error", "heatmap_validation_error",
                         "heatmap_generalization_gap"]


@pytest.mark.slow
def test_without_held_out_rows_there_is_no_validation_figure(
        small: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    layout = figures.choose_layout(small["trials"])
    assert not cellstats.has_validation(small["trials"])
    assert heatmaps.validation_heatmaps(small["trials"], layout, tmp_path) == []
    names = {p.name for p in plots.draw_all(small, layout, tmp_path, vector=False)}
    assert not {"heatmap_validation_error", "heatmap_generalization_gap"} & names


@pytest.mark.slow
def test_held_out_figures_cost_per_cell_not_per_seed_or_epoch(drawn: Drawn,
                                                              tmp_path: Path) -> None:
    artists = []
    for seeds, epochs in ((2, 200), (8, 5000)):
        frames = held_out(synthetic({"alpha": [0.1, 1.0, 10.0], "hidden": [(2,), (4,)]},
                                    seeds=seeds, epochs=epochs),
                          lambda alpha: 1.2)
        layout = figures.choose_layout(frames["trials"])
        heatmaps.validation_heatmaps(frames["trials"], layout, tmp_path, vector=False)
        learningcurves.learning_curves(frames["trials"], frames["history"], layout, tmp_path,
                                       vector=False, validation=frames["validation"])
        artists.append([len(ax.get_children()) for fig, _ in drawn for ax in panels(fig)])
        curves, _ = figure_named(drawn, "learning_curves")
        for ax in panels(curves):
            for lines in [c for c in ax.collections if isinstance(c, LineCollection)]:
                longest = max(len(seg) for seg in segments(lines))
                assert longest <= learningcurves.MAX_CURVE_POINTS + 2
        drawn.clear()
    assert artists[0] == artists[1]


# --- a classifier: a higher accuracy is better --------------------------------------------

def held_out_frames(grid: dict[str, list[Any]], fixed: dict[str, Any],
                    share: float) -> dict[str, pd.DataFrame]:
    """`grid` trained for real on HELD_OUT_ROWS moons, `share` of them held out: the tables as
    the report reads them (training rows in history, the held-out rows in validation)."""
    data = builtin("moons", rows=HELD_OUT_ROWS).split(share)
    frames = sweep_frames(grid, fixed, x=data.x, y=data.y, validation=data.validation)
    history = frames["history"]
    return {**frames, "history": tables.training(history),
            "validation": history[history["split"] == "validation"].reset_index(drop=True),
            "tidy": history}


@pytest.fixture(scope="module")
def classifier() -> dict[str, pd.DataFrame]:
    """helpers.CLASSIFIER_GRID: accuracy on moons, the held-out rows deciding."""
    return held_out_frames(CLASSIFIER_GRID, CLASSIFIER_FIXED, CLASSIFIER_HELD_OUT)


def luminance(colour: Any) -> float:
    red, green, blue, _ = colour
    return float(0.2126 * red + 0.7152 * green + 0.0722 * blue)


def mesh_of(fig: Figure) -> Any:
    [ax] = panels(fig)
    [mesh] = [c for c in ax.collections if hasattr(c, "get_array") and c.get_array() is not None]
    return mesh


def test_a_diverged_seed_counts_as_the_lowest_accuracy_in_its_cell() -> None:
    params = [TrialParams(loss="cross_entropy", metric="accuracy", seed=s) for s in range(3)]
    trials = trials_of(*params, statuses=["not_converged", "not_converged", "diverged"])
    trials["final_error"] = [0.9, 0.8, np.nan]
    cells = cellstats.cell_frame(trials, tables.empty(tables.HISTORY_SCHEMA),
                                 figures.choose_layout(trials))
    assert cells["error"].tolist() == [0.8]  # the median of 0.9, 0.8 and the worst
    assert cells["error_high"].tolist() == [0.9] and cells["higher"].tolist() == [True]
    both = trials.assign(status=["not_converged", "diverged", "diverged"])
    assert cellstats.cell_frame(both, tables.empty(tables.HISTORY_SCHEMA),
                                figures.choose_layout(both))["error"].tolist() == [np.inf]


def test_the_heatmaps_of_an_accuracy_are_linear_and_light_where_highest(
        classifier: dict[str, pd.DataFrame], small: dict[str, pd.DataFrame], drawn: Drawn,
        tmp_path: Path) -> None:
    trials = classifier["trials"]
    layout = figures.choose_layout(trials)
    heatmaps.heatmaps(trials, classifier["history"], layout, tmp_path, vector=False,
                      validation=classifier["validation"])
    heatmaps.validation_heatmaps(trials, layout, tmp_path, vector=False,
                                 history=classifier["history"])
    cells = cellstats.cell_frame(trials, classifier["history"], layout,
                                 validation=classifier["validation"])
    for name, values in (("heatmap_final_error", cells["error"]),
                         ("heatmap_validation_error", cellstats.validation_cells(
                             trials, layout, classifier["history"])["error"])):
        fig, picture = figure_named(drawn, name)
        mesh = mesh_of(fig)
        assert type(mesh.norm) is Normalize  # linear, not LogNorm
        assert (mesh.norm.vmin, mesh.norm.vmax) == (values.min(), values.max())
        colours = mesh.get_cmap()
        assert luminance(colours(mesh.norm(values.max()))) > \
            luminance(colours(mesh.norm(values.min())))  # the best is the light end
        assert "linear colour scale; light: higher, better" in picture.caption
    final_fig, final = figure_named(drawn, "heatmap_final_error")
    assert "on the held-out validation rows, as select = validation asks" in final.caption
    assert final_fig.texts[0].get_text().startswith("Median final accuracy over")  # no "error"
    gap_fig, gap = figure_named(drawn, "heatmap_generalization_gap")
    assert mesh_of(gap_fig).get_cmap().name == "RdBu"  # a lower score held out is red
    assert "negative (red): the network scores lower on the rows it never saw" in gap.caption
    drawn.clear()
    heatmaps.heatmaps(small["trials"], small["history"], figures.choose_layout(small["trials"]),
                      tmp_path, vector=False)
    errors = mesh_of(figure_named(drawn, "heatmap_final_error")[0])
    assert isinstance(errors.norm, LogNorm) and errors.get_cmap().name == "viridis_r"


def test_the_gap_of_trials_the_held_out_rows_decide_is_against_their_training_rows(
        classifier: dict[str, pd.DataFrame]) -> None:
    trials, history = classifier["trials"], classifier["tidy"]
    last = history[history["epoch"] == history.groupby("trial")["epoch"].transform("max")]
    final = last.pivot(index="trial", columns="split", values="accuracy")
    assert (final["validation"] == trials.set_index("trial")["final_error"].reindex(
        final.index)).all()
    gaps = trials.assign(gap=trials["trial"].map(final["validation"] - final["train"]))
    expected = gaps.groupby(["hidden", "alpha"])["gap"].median().astype("float64")
    cells = cellstats.validation_cells(trials, figures.choose_layout(trials),
                                       classifier["history"]).set_index(["hidden", "alpha"])
    pd.testing.assert_series_equal(cells["gap"].sort_index(), expected.sort_index(),
                                   check_names=False)
    assert (cells["gap"] != 0).any()


def test_accuracy_curves_are_on_a_linear_axis_against_log_epochs(
        classifier: dict[str, pd.DataFrame], drawn: Drawn, tmp_path: Path) -> None:
    fig, picture = held_curves(classifier, drawn, tmp_path)
    axes = panels(fig)
    assert {ax.get_yscale() for ax in axes} == {"linear"}
    assert {ax.get_xscale() for ax in axes} == {"log"}
    assert axes[0].get_ylabel() == "accuracy (higher is better)"
    low, high = axes[0].get_ylim()
    drawn_y = np.concatenate([np.concatenate(segments(c))[:, 1] for ax in axes
                              for c in ax.collections if isinstance(c, LineCollection)])
    assert low < drawn_y.min() and drawn_y.max() < high  # nothing clipped, no floor
    assert drawn_y.min() < 0.5  # accuracies as they are: a low one is not lifted
    assert picture.caption.startswith("Accuracy (linear scale, higher is better) against epoch")
    assert "a dashed line below its solid one means the network does worse" in picture.caption


@pytest.mark.parametrize("fixed", [CLASSIFIER_FIXED, SMALL_FIXED], ids=["accuracy", "mae"])
def test_a_one_axis_line_draws_the_held_out_rows_dashed(fixed: dict[str, Any], drawn: Drawn,
                                                        tmp_path: Path) -> None:
    frames = held_out_frames({"alpha": [0.003, 0.01, 0.1], "seed": [1, 2]}, fixed, 0.3)
    trials = frames["trials"]
    layout = figures.choose_layout(trials)
    heatmaps.final_error_line(trials, frames["history"], layout, tmp_path, vector=False,
                              validation=frames["validation"])
    fig, picture = figure_named(drawn, "final_error")
    [ax] = panels(fig)
    [solid] = [line for line in ax.lines if line.get_linestyle() == "-"]
    [dashed] = [line for line in ax.lines if line.get_linestyle() == "--"]
    cells = cellstats.validation_cells(trials, layout, frames["history"]).sort_values("alpha")
    np.testing.assert_array_equal(np.asarray(dashed.get_ydata(), dtype=float), cells["error"])
    np.testing.assert_array_equal(np.asarray(solid.get_ydata(), dtype=float),
                                  cells["train_error"])
    assert solid.get_color() == dashed.get_color()
    assert ax.get_yscale() == ("linear" if fixed.get("metric") == "accuracy" else "log")
    assert "dashed, open squares: on the held-out validation rows" in picture.caption
    legend = ax.get_legend()
    assert legend is not None
    assert any("held-out validation rows" in t.get_text() for t in legend.get_texts())
