"""The example sweeps in sweeps/: each loads, says what it shows, and has the trials it claims."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import nnsweep
from nnsweep.spec import load_spec, parse_spec

SWEEPS = Path(__file__).parent.parent / "sweeps"

TRIAL_COUNTS = {
    "xor": 49,  # iamtrask's 7 alphas x 7 hidden sizes
    "streetlights": 50,  # 5 alphas x 10 seeds
    "descent-modes": 36,  # 3 descents x 4 alphas x 3 seeds
    "activations": 60,  # 3 activations x 4 alphas x 5 seeds
    "deep-regression": 12,  # 3 alphas x 4 seeds
    "edge": 14,  # an edge search's first round: 7 widths at the bracket's two ends
    "digits": 50,  # 5 widths x 5 alphas x 2 seeds
    "optimizers": 66,  # 3 optimizers x 11 alphas x 2 seeds
    "regularization": 24,  # 3 dropouts x 4 weight decays x 2 seeds
    "hyperband": 500,  # 2 widths x 50 alphas x 5 seeds, searched by Hyperband
    "grokking": 6,  # 3 weight decays x 2 seeds
}


def test_every_example_sweep_is_listed_here() -> None:
    assert sorted(p.stem for p in SWEEPS.glob("*.toml")) == sorted(TRIAL_COUNTS)


@pytest.mark.parametrize(("stem", "count"), sorted(TRIAL_COUNTS.items()))
def test_an_example_sweep_loads_with_its_trial_count(stem: str, count: int) -> None:
    spec = load_spec(SWEEPS / f"{stem}.toml")
    assert spec.name == stem
    assert spec.size() == count == len(list(spec.trials()))


@pytest.mark.parametrize("stem", sorted(TRIAL_COUNTS))
def test_an_example_sweep_opens_with_a_comment_on_what_it_shows(stem: str) -> None:
    first = (SWEEPS / f"{stem}.toml").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 20


def test_the_xor_sweep_is_iamtrasks_table() -> None:
    spec = load_spec(SWEEPS / "xor.toml")
    trials = list(spec.trials())
    assert sorted({t.params.alpha for t in trials}) == [0.001, 0.01, 0.1, 1, 10, 100, 1000]
    assert sorted({t.params.hidden for t in trials}) == [(h,) for h in (4, 8, 16, 32, 64, 128,
                                                                        256)]
    assert {(t.params.seed, t.params.epochs, t.params.activation) for t in trials} == {
        (1, 60000, "sigmoid")}
    assert spec.dataset.name == "xor"


def test_the_streetlights_sweep_contains_the_books_run() -> None:
    spec = load_spec(SWEEPS / "streetlights.toml")
    book = [t.params for t in spec.trials() if t.params.alpha == 0.2 and t.params.seed == 1]
    assert len(book) == 1
    assert (book[0].hidden, book[0].activation, book[0].output, book[0].descent) == (
        (4,), "relu", "linear", "stochastic")


def test_the_deep_regression_sweep_is_the_4_3_2_1_network() -> None:
    spec = load_spec(SWEEPS / "deep-regression.toml")
    params = spec.trials()[0].params
    assert spec.dataset.x.shape[1] == 4 and spec.dataset.y.shape[1] == 1
    assert (params.hidden, params.activation, params.output, params.init) == (
        (3, 2), "sigmoid", "linear", "normal")


# --- the digits sweeps find what their comments say ------------------------------------------
# Accuracies are counts of right answers among the held-out images, so a last bit that differs
# on another CPU moves them by a step or not at all: the claims are checked at the precision the
# comments print them, with half a point of room.


def held_out_accuracy(stem: str, tmp_path: Path, rows: str, columns: str) -> pd.DataFrame:
    """The median over seeds of each cell's final held-out accuracy (select = "validation":
    the trials table's final_error is that accuracy), and the training one beside it."""
    pytest.importorskip("sklearn")
    results = nnsweep.run(load_spec(SWEEPS / f"{stem}.toml"), out=tmp_path / stem, jobs=2)
    history = results.history
    last = history[history["epoch"] == history["trial"].map(
        history.groupby("trial")["epoch"].max())]
    training = last[last["split"] == "train"].set_index("trial")["accuracy"]
    trials = results.trials.assign(train=results.trials["trial"].map(training))
    return trials.groupby([rows, columns])[["final_error", "train"]].median()


@pytest.mark.slow
def test_the_digits_sweep_finds_the_best_alpha_at_every_width(tmp_path: Path) -> None:
    cells = held_out_accuracy("digits", tmp_path, "hidden", "alpha")["final_error"].unstack()
    widths = sorted(cells.index, key=int)
    assert all(cells.loc[w].idxmax() == pytest.approx(0.01) for w in widths)
    best = cells[0.01]
    assert best[widths[0]] == pytest.approx(0.947, abs=0.005)
    assert best[widths[-1]] == pytest.approx(0.980, abs=0.005) and best.max() == best[widths[-1]]
    assert cells.loc[widths[0], 0.0001] < 0.5 < 0.9 < cells.loc[widths[-1], 0.0001]
    assert (cells[1.0] < 0.12).all()  # chance is one in ten


@pytest.mark.slow
def test_the_optimizers_sweep_finds_bands_of_one_width_a_decade_apart(tmp_path: Path) -> None:
    cells = held_out_accuracy("optimizers", tmp_path, "optimizer", "alpha")["final_error"]
    bands = {}
    for optimizer in ("sgd", "momentum", "adam"):
        good = cells[optimizer][cells[optimizer] >= 0.95].index
        bands[optimizer] = (min(good), max(good))
        assert len(good) == 4  # 1.5 decades in half-decade steps, in one piece
    assert bands["adam"] == pytest.approx((0.001, 10 ** -1.5))
    assert bands["momentum"] == pytest.approx((10 ** -2.5, 0.1))
    assert bands["sgd"] == pytest.approx((10 ** -1.5, 1.0))


@pytest.mark.slow
def test_the_regularization_sweep_closes_the_gap_from_the_training_side(tmp_path: Path) -> None:
    cells = held_out_accuracy("regularization", tmp_path, "dropout", "weight_decay")
    gap = cells["train"] - cells["final_error"]
    assert cells.loc[(0.0, 0.0), "train"] > 0.998
    assert gap[(0.0, 0.0)] == pytest.approx(0.026, abs=0.005)
    assert gap[(0.5, 0.0)] == pytest.approx(0.021, abs=0.005)
    assert gap[(0.5, 0.0003)] == pytest.approx(0.015, abs=0.005)
    assert gap[(0.5, 0.0003)] < gap[(0.5, 0.0)] < gap[(0.0, 0.0)]
    held = cells["final_error"]
    assert 0.970 < held[(0.0, 0.0)] < held[(0.5, 0.0003)] < 0.982
    assert all(0.88 < cells.loc[(d, 0.03), side] < 0.95 for d in (0.0, 0.25, 0.5)
               for side in ("train", "final_error"))


@pytest.mark.slow
def test_hyperband_ends_on_the_grids_best_at_a_fifth_of_its_trial_epochs(tmp_path: Path) -> None:
    """Hyperband over 500 digits settings against the full grid of the same 500, both run."""
    text = (SWEEPS / "hyperband.toml").read_text(encoding="utf-8")
    searched = nnsweep.run(load_spec(SWEEPS / "hyperband.toml"), out=tmp_path / "hyperband")
    head, tail = text.split("[search]\n")
    grid_text = head + '[search]\nmethod = "grid"\n' + tail[tail.index("\n[report]"):]
    grid = nnsweep.run(parse_spec(grid_text), out=tmp_path / "grid")
    spent = int(searched.trials["stopped_epoch"].sum())
    assert spent <= 0.2 * len(grid.trials) * 81
    best, found = (r.trials["final_validation_error"].max() for r in (grid, searched))
    assert found >= best - 0.005  # within half a point of the grid's best held-out accuracy
    # the sweep file's comment
    assert spent == 5784 and int((searched.trials["stopped_epoch"] == 81).sum()) == 39
    assert round(found, 3) == round(best, 3) == 0.984


@pytest.mark.slow
def test_the_grokking_sweep_learns_its_training_pairs_long_before_the_held_out_ones(
        tmp_path: Path) -> None:
    """Modular addition with half the pairs held out: every trial is right on all its training
    pairs within a hundred epochs while at chance or below on the others; with weight decay
    the held-out pairs pass 90% (converged_epoch, select = "validation") tens of times later,
    without it never. The epochs are those of the comment's, with room for another CPU's
    last bits."""
    results = nnsweep.run(load_spec(SWEEPS / "grokking.toml"), out=tmp_path / "grokking",
                          jobs=2)
    curves = results.history.pivot_table(index=["trial", "epoch"], columns="split",
                                         values="accuracy")
    trials = results.trials.set_index("trial")
    chance = 1 / 31
    for trial, row in trials.iterrows():
        curve = curves.loc[trial]  # (recorded epochs, [train, validation])
        learned = curve.index[curve["train"] == 1.0].min()  # first recorded epoch at 100%
        assert learned <= 200 and curve.loc[learned, "validation"] < chance
        if row["weight_decay"] == 0:  # memorized: the held-out pairs stay below chance
            assert pd.isna(row["converged_epoch"])
            assert curve.loc[learned:, "validation"].max() < chance
        else:
            assert row["converged_epoch"] >= 25 * learned
            assert row["final_validation_error"] > 0.93
    grokked = trials.groupby("weight_decay")["converged_epoch"].median()
    assert grokked[1.0] < grokked[0.5] <= 15000  # more decay, sooner
    assert 5000 <= grokked[1.0] <= 10000 <= grokked[0.5]
