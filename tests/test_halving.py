"""Successive halving and Hyperband: the rungs, the brackets and who goes on, decided from the
scores alone (halving.py is pure: the runner trains what it asks for)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnsweep.halving import Halving, Reached, next_round


def simulate(search: Halving, trials: list[str], score, metric: str = "mse"
             ) -> dict[str, Reached]:
    """Run the search's rounds with `score(trial, epochs)` standing in for training."""
    reached: dict[str, Reached] = {}
    for _ in range(100):
        decided = next_round(search, trials, reached, metric)
        if not decided.wanted:
            return reached
        for trial, epochs in decided.wanted.items():
            before = reached.get(trial, Reached(0))
            reached[trial] = Reached(epochs, {**before.scores, epochs: score(trial, epochs)})
    raise AssertionError("the search did not end")


def test_the_rungs_run_from_min_epochs_by_factors_of_eta_to_max_epochs() -> None:
    search = Halving("halving", eta=3, min_epochs=1, max_epochs=27)
    assert search.rungs() == (1, 3, 9, 27)
    assert Halving("halving", eta=3, min_epochs=2, max_epochs=100).rungs() == (2, 6, 18, 54, 100)
    assert Halving("halving", eta=2, min_epochs=5, max_epochs=6).rungs() == (5, 6)


def test_halving_has_one_bracket_and_hyperband_one_per_rung_each_starting_later() -> None:
    assert Halving("halving", 3, 1, 27).brackets == 1
    hyperband = Halving("hyperband", 3, 1, 27)
    assert hyperband.brackets == 4
    assert [hyperband.rungs(b) for b in range(4)] == [(1, 3, 9, 27), (3, 9, 27), (9, 27), (27,)]


def test_hyperbands_shares_follow_its_paper_and_scale_to_the_trials_there_are() -> None:
    hyperband = Halving("hyperband", 3, 1, 27)  # s_max = 3: n = 27, 12, 6, 4
    assert hyperband.shares(49) == [27, 12, 6, 4]
    assert sum(hyperband.shares(500)) == 500
    assert hyperband.shares(500)[0] > hyperband.shares(500)[-1] > 0


@given(st.integers(1, 600), st.integers(2, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_every_trial_is_dealt_to_exactly_one_bracket(trials: int, eta: int, halvings: int,
                                                      seed: int) -> None:
    search = Halving("hyperband", eta, 1, eta**halvings, seed)
    names = [f"t{i}" for i in range(trials)]
    bracket_of = search.deal(names)
    assert sorted(bracket_of) == sorted(names)
    counts = [list(bracket_of.values()).count(b) for b in range(search.brackets)]
    assert counts == search.shares(trials)


def test_every_trial_starts_at_its_brackets_first_rung() -> None:
    search = Halving("hyperband", 3, 1, 27)
    names = [f"t{i}" for i in range(49)]
    decided = next_round(search, names, {}, "mse")
    bracket_of = search.deal(names)
    assert decided.wanted == {t: search.rungs(bracket_of[t])[0] for t in names}
    assert decided.alive == frozenset(names)


def test_the_best_third_goes_on_at_each_rung_and_the_rest_stop_there() -> None:
    search = Halving("halving", 3, 1, 27)
    names = [f"t{i:02}" for i in range(27)]
    reached = simulate(search, names, lambda trial, epochs: int(trial[1:]) / epochs)
    epochs = sorted(r.epochs for r in reached.values())
    assert epochs == [1] * 18 + [3] * 6 + [9] * 2 + [27]
    assert reached["t00"].epochs == 27  # the lowest error at every rung
    assert [reached[f"t{i:02}"].epochs for i in (1, 2, 3, 8, 9)] == [9, 9, 3, 3, 1]


def test_a_higher_accuracy_ranks_first_and_a_diverged_trial_last() -> None:
    search = Halving("halving", 3, 1, 3)
    names = ["a", "b", "c"]
    scores = {"a": 0.5, "b": math.nan, "c": 0.9}
    accuracy = simulate(search, names, lambda t, e: scores[t], metric="accuracy")
    assert accuracy["c"].epochs == 3 and accuracy["a"].epochs == 1
    error = simulate(search, names, lambda t, e: scores[t], metric="mse")
    assert error["a"].epochs == 3 and error["b"].epochs == 1


def test_ties_go_to_the_trial_first_in_the_grid() -> None:
    search = Halving("halving", 3, 1, 3)
    reached = simulate(search, ["x", "y", "z"], lambda t, e: 1.0)
    assert reached["x"].epochs == 3 and reached["y"].epochs == reached["z"].epochs == 1


def test_a_failed_trial_is_out_and_the_rest_of_its_bracket_goes_on() -> None:
    search = Halving("halving", 3, 1, 3)
    names = ["a", "b", "c"]
    reached = {"a": Reached(0, failed=True), "b": Reached(1, {1: 0.5}), "c": Reached(1, {1: 0.1})}
    decided = next_round(search, names, reached, "mse")
    assert decided.wanted == {"c": 3}
    assert "a" not in decided.alive and decided.stopped == {"b": 0}


def test_the_search_is_replayed_from_what_each_trial_reached() -> None:
    """A search resumed from its journal asks for what one never stopped would."""
    search = Halving("hyperband", 3, 1, 27, seed=7)
    names = [f"t{i:02}" for i in range(40)]

    def score(trial: str, epochs: int) -> float:
        return (hash(trial) % 97) / epochs

    whole = simulate(search, names, score)
    partial: dict[str, Reached] = {}
    for _ in range(2):  # two rounds, then "a rerun" starts from what they reached
        decided = next_round(search, names, partial, "mse")
        for trial, epochs in decided.wanted.items():
            before = partial.get(trial, Reached(0))
            partial[trial] = Reached(epochs, {**before.scores, epochs: score(trial, epochs)})
    assert next_round(search, names, partial, "mse").wanted
    for _ in range(100):
        decided = next_round(search, names, partial, "mse")
        if not decided.wanted:
            break
        for trial, epochs in decided.wanted.items():
            before = partial.get(trial, Reached(0))
            partial[trial] = Reached(epochs, {**before.scores, epochs: score(trial, epochs)})
    assert partial == whole


@pytest.mark.parametrize(("method", "share"), [("halving", 0.25), ("hyperband", 0.35)])
def test_a_search_spends_a_fraction_of_the_grids_trial_epochs(method: str, share: float) -> None:
    search = Halving(method, 3, 1, 81)
    names = [f"t{i:03}" for i in range(500)]
    reached = simulate(search, names, lambda t, e: int(t[1:]) / e)
    spent = sum(r.epochs for r in reached.values())
    assert spent <= share * 500 * 81
    assert spent == search.budget(500)  # what validate's estimate counts
    assert sum(r.epochs == 81 for r in reached.values()) >= 1


def test_a_search_with_other_rungs_over_the_same_trials_asks_for_the_scores_it_lacks() -> None:
    """Scores are kept by epochs: eta 2 over a search run with eta 3 reuses the first rung's
    scores and asks for the rung at 2 epochs that eta 3 never trained."""
    names = ["a", "b", "c", "d"]
    reached = {t: Reached(1, {1: s}) for t, s in zip(names, (0.1, 0.2, 0.3, 0.4), strict=True)}
    decided = next_round(Halving("halving", 2, 1, 4), names, reached, "mse")
    assert decided.wanted == {"a": 2, "b": 2}
    assert decided.stopped == {"c": 0, "d": 0}
