"""The example sweeps in sweeps/: each loads, says what it shows, and has the trials it claims."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnsweep.spec import load_spec

SWEEPS = Path(__file__).parent.parent / "sweeps"

TRIAL_COUNTS = {
    "xor": 49,  # iamtrask's 7 alphas x 7 hidden sizes
    "streetlights": 50,  # 5 alphas x 10 seeds
    "descent-modes": 36,  # 3 descents x 4 alphas x 3 seeds
    "activations": 60,  # 3 activations x 4 alphas x 5 seeds
    "deep-regression": 12,  # 3 alphas x 4 seeds
    "edge": 14,  # an edge search's first round: 7 widths at the bracket's two ends
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
