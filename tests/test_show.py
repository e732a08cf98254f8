"""`nnsweep show`: a results folder at a glance on the terminal, read from its tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    CLASSIFIER_FIXED,
    CLASSIFIER_GRID,
    CLASSIFIER_HELD_OUT,
    HELD_OUT_GRID,
    write_results,
)

from nnsweep import store, tables
from nnsweep.show import best_trials, render, validation_line


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small sweep with a quarter of its rows held out for validation."""
    return write_results(tmp_path_factory.mktemp("held") / "results", HELD_OUT_GRID,
                         held_out=0.25)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results(tmp_path_factory.mktemp("plain") / "results")


def test_show_gives_the_best_error_on_the_held_out_rows_and_the_median_gap(held: Path) -> None:
    trials = store.load_results(held).trials
    measured = trials[trials["final_validation_error"].notna()]
    best = measured.sort_values("final_validation_error").iloc[0]
    gap = (measured["final_validation_error"] - measured["final_error"]).median()
    line = validation_line(trials)
    assert line == (f"validation: best final mae on the held-out rows "
                    f"{best['final_validation_error']:.6g} (trial {best['trial']}, training "
                    f"{best['final_error']:.6g}); median gap {gap:+.3g} (validation minus "
                    f"training, {len(measured)} trials)")
    shown = render(store.load_results(held), width=200)
    assert line in shown
    assert "final_validation_error" in shown  # a column of the best trials' table


def test_show_says_nothing_of_validation_without_held_out_rows(plain: Path) -> None:
    shown = render(store.load_results(plain), width=200)
    assert validation_line(store.load_results(plain).trials) == ""
    assert "validation" not in shown


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Accuracy on moons, the held-out rows deciding (select = "validation")."""
    return write_results(tmp_path_factory.mktemp("classifier") / "results", CLASSIFIER_GRID,
                         CLASSIFIER_FIXED, held_out=CLASSIFIER_HELD_OUT)


def test_show_ranks_the_highest_accuracy_first_and_says_so(classifier: Path) -> None:
    results = store.load_results(classifier)
    best = best_trials(results, 5)
    assert best["final_error"].tolist() == sorted(results.trials["final_error"],
                                                  reverse=True)[:5]
    assert best["trial"].tolist() == tables.ranked(results.trials)["trial"].head(5).tolist()
    shown = render(results, top=5, width=250)
    assert "best 5 trials by final accuracy, highest first (select = validation)" in shown
    assert shown.index(best["trial"].iloc[0]) < shown.index(best["trial"].iloc[-1])


def test_show_names_the_highest_held_out_accuracy_as_the_best(classifier: Path) -> None:
    trials = store.load_results(classifier).trials
    top = trials.sort_values(["final_validation_error", "trial"], ascending=[False, True])
    assert top["final_validation_error"].iloc[0] > trials["final_validation_error"].min()
    assert validation_line(trials) == (
        f"validation: best final accuracy on the held-out rows "
        f"{top['final_validation_error'].iloc[0]:.6g} (trial {top['trial'].iloc[0]}); the "
        f"held-out rows decide (select = validation) for {len(trials)} of {len(trials)} "
        "trials")


def test_show_says_which_way_an_accuracys_gap_is_worse(tmp_path: Path) -> None:
    fixed = {**CLASSIFIER_FIXED, "select": "train"}
    trials = store.load_results(write_results(tmp_path / "results", CLASSIFIER_GRID, fixed,
                                              held_out=CLASSIFIER_HELD_OUT)).trials
    line = validation_line(trials)
    best = trials.loc[trials["final_validation_error"].idxmax()]
    assert line.startswith(f"validation: best final accuracy on the held-out rows "
                           f"{best['final_validation_error']:.6g}")
    assert line.endswith(f"{len(trials)} trials; negative: worse on the held-out rows)")
