"""`nnsweep show`: a results folder at a glance on the terminal, read from its tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import HELD_OUT_GRID, write_results

from nnsweep import store
from nnsweep.show import render, validation_line


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
