"""Sampled searches: [search] method = "random" or "sobol" draws points from the [grid] axes
given as distributions, crosses them with the axes given as values, and writes what it drew
into the resolved spec, so a file always means the same trials."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import qmc

import nnsweep
from nnsweep import schema
from nnsweep.errors import SpecError
from nnsweep.grid import MAX_TRIALS
from nnsweep.search import Distribution, SearchOptions, draw, drop_repeats
from nnsweep.spec import Spec, parse_spec

SAMPLED = """\
dataset = "xor"
[params]
epochs = 20
[search]
method = "{method}"
samples = {samples}
seed = {seed}
[grid]
alpha = {{ loguniform = [0.001, 10] }}
tolerance = {{ uniform = [0.01, 0.2] }}
hidden = {{ intloguniform = [2, 64] }}
activation = {{ choice = ["sigmoid", "tanh", "relu"] }}
seed = [0, 1]
"""


def sampled(method: str = "sobol", samples: int = 16, seed: int = 0, text: str = SAMPLED
            ) -> Spec:
    return parse_spec(text.format(method=method, samples=samples, seed=seed))


def points(spec: Spec) -> list[tuple[object, ...]]:
    """The drawn points, (activation, alpha, hidden, tolerance), seeds folded away."""
    names = ("activation", "alpha", "hidden", "tolerance")
    return list(dict.fromkeys(tuple(getattr(t.params, n) for n in names)
                              for t in spec.trials()))


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as raised:
        parse_spec(textwrap.dedent(text))
    return raised.value.problems


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_the_same_file_draws_the_same_trials_and_another_seed_others(method: str) -> None:
    first, again = sampled(method), sampled(method)
    assert [t.id for t in first.trials()] == [t.id for t in again.trials()]
    assert points(sampled(method, seed=1)) != points(first)


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_samples_are_crossed_with_the_axes_given_as_values(method: str) -> None:
    spec = sampled(method, samples=16)
    assert spec.size() == 16 * 2
    assert spec.axes == ("activation", "alpha", "hidden", "seed", "tolerance")
    assert {t.params.seed for t in spec.trials()} == {0, 1}
    assert len(points(spec)) == 16


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_every_value_lies_in_its_distribution(method: str) -> None:
    spec = sampled(method, samples=256)
    drawn = points(spec)
    alphas = [p[1] for p in drawn]
    assert all(0.001 <= a <= 10 for a in alphas)
    assert all(0.01 <= p[3] <= 0.2 for p in drawn)
    hiddens = [p[2][0] for p in drawn]  # type: ignore[index]
    assert all(isinstance(h, int) and 2 <= h <= 64 for h in hiddens)
    assert {p[0] for p in drawn} == {"sigmoid", "tanh", "relu"}
    # log-uniform: about as many alphas in each decade (4 decades, 64 expected in each)
    decades = np.histogram(np.log10(alphas), bins=4, range=(-3, 1))[0]
    assert decades.min() > 32, decades
    # whole numbers in log scale reach both ends
    assert min(hiddens) == 2 and max(hiddens) == 64


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_a_choice_of_layer_sizes_draws_whole_networks(method: str) -> None:
    spec = sampled(method, samples=32, text=SAMPLED.replace(
        "hidden = {{ intloguniform = [2, 64] }}", "hidden = {{ choice = [4, [3, 2], [8, 8]] }}"))
    assert {p[2] for p in points(spec)} == {(4,), (3, 2), (8, 8)}
    assert parse_spec(spec.text).size() == spec.size()  # the drawn points written back load


def test_sobol_covers_the_space_more_evenly_than_random_at_the_same_count() -> None:
    """Both mapped back to the unit square from their drawn (alpha, tolerance), the sampled
    points' centred L2 discrepancy: Sobol' well below random, for several seeds."""
    text = ('dataset = "xor"\n[search]\nmethod = "{method}"\nsamples = {samples}\nseed = {seed}\n'
            "[grid]\nalpha = {{ loguniform = [0.001, 10] }}\n"
            "tolerance = {{ uniform = [0.01, 0.2] }}\n")
    for seed in range(5):
        found = {}
        for method in ("random", "sobol"):
            trials = sampled(method, samples=128, seed=seed, text=text).trials()
            unit = np.array([[(math.log(t.params.alpha) - math.log(0.001)) / math.log(1e4),
                              (t.params.tolerance - 0.01) / 0.19] for t in trials])  # (128, 2)
            found[method] = qmc.discrepancy(unit)
        assert found["sobol"] < found["random"] / 2, (seed, found)


def test_a_count_below_a_power_of_two_takes_the_first_sobol_points_without_a_warning() -> None:
    twelve, sixteen = sampled("sobol", samples=12), sampled("sobol", samples=16)
    assert points(twelve) == points(sixteen)[:12]


def test_repeated_points_are_dropped_with_a_note() -> None:
    text = ('dataset = "xor"\n[search]\nmethod = "random"\nsamples = 40\n[grid]\n'
            'hidden = { intloguniform = [1, 3] }\nactivation = { choice = ["relu", "tanh"] }\n')
    spec = parse_spec(text)
    assert spec.size() == 6  # every (hidden, activation) pair, once
    assert spec.notes == ("<spec>: search: 34 of the 40 samples repeat an earlier point; 6 "
                          "distinct points kept",)


def test_random_maps_the_seeds_uniform_draws_through_each_axiss_distribution() -> None:
    """search.draw on its own: every axis, by name, gets one value per sample; the i-th
    values make the i-th point."""
    forms = {"tolerance": {"uniform": [0.0, 0.5]}, "alpha": {"loguniform": [0.01, 1.0]}}
    axes = {name: Distribution(f"grid.{name}", schema.DRAWN[next(iter(form))].model_validate(
        form), []) for name, form in forms.items()}
    drawn = draw(axes, SearchOptions("random", samples=5, seed=3))
    u = np.random.default_rng(3).random((5, 2))  # (samples, axes): alpha, then tolerance
    assert drawn == {
        "alpha": [float(f"{math.exp(math.log(0.01) + x * math.log(1.0 / 0.01)):.12g}")
                  for x in u[:, 0]],
        "tolerance": [float(f"{x * 0.5:.12g}") for x in u[:, 1]],
    }


def test_drop_repeats_keeps_each_points_first_draw_and_says_how_many_repeat() -> None:
    drawn = {"seed": [1, 2, 1, 3, 2], "hidden": [(4,), (4,), (4,), (4,), (8,)]}
    points, notes = drop_repeats(drawn, SearchOptions("random", samples=5))
    assert points == {"hidden": [(4,), (4,), (4,), (8,)], "seed": [1, 2, 3, 2]}
    assert notes == ["search: 1 of the 5 samples repeat an earlier point; 4 distinct points kept"]


def test_the_resolved_spec_writes_the_points_drawn_and_loads_back_to_the_same_trials() -> None:
    spec = sampled("sobol", samples=8)
    assert '# [search] method = "sobol", samples = 8, seed = 0 drew these points:\n[[zip]]\n' \
        in spec.text
    again = parse_spec(spec.text)
    assert again.hash == spec.hash
    assert [t.id for t in again.trials()] == [t.id for t in spec.trials()]


def test_an_exclude_rule_can_name_a_drawn_value() -> None:
    spec = sampled("random", samples=8)
    first = spec.trials()[0].params
    text = SAMPLED.format(method="random", samples=8, seed=0) + (
        f'[[exclude]]\nactivation = "{first.activation}"\n')
    kept = parse_spec(text)
    assert kept.size() < spec.size()
    assert all(t.params.activation != first.activation for t in kept.trials())


@pytest.mark.parametrize(("text", "expected"), [
    ('dataset = "xor"\n[grid]\nalpha = { loguniform = [0.01, 10] }\n',
     ['<spec>: grid.alpha: a distribution needs [search] method = "random" or "sobol"']),
    ('dataset = "xor"\n[search]\nmethod = "random"\n[grid]\nalpha = [1, 2]\n',
     ['<spec>: search.method: "random" draws from distributions, but [grid] has none; expected '
      "an axis such as alpha = { loguniform = [0.001, 1] }"]),
    ('dataset = "xor"\n[search]\nmethod = "sobol"\n[grid]\nhidden = { loguniform = [1, 9] }\n',
     ["<spec>: grid.hidden = { loguniform = [1, 9] }: expected whole numbers for hidden: "
      "{ intloguniform = [a, b] } or { choice = [...] }"]),
    ('dataset = "xor"\n[search]\nmethod = "sobol"\n[grid]\nalpha = { uniform = [2, 1] }\n',
     ["<spec>: grid.alpha.uniform = [2, 1]: expected [low, high] with low < high"]),
    ('dataset = "xor"\n[search]\nmethod = "sobol"\n[grid]\nalpha = { uniform = [-1, 1] }\n',
     ["<spec>: grid.alpha.uniform[0] = -1: expected a number > 0"]),
    ('dataset = "xor"\n[search]\nmethod = "sobol"\n[grid]\n'
     "hidden = { intloguniform = [1, 200000] }\n",
     ["<spec>: grid.hidden.intloguniform[1] = 200000: expected a layer size from 1 to 100,000, "
      "or a list of them (4, [3, 2], [] for none)"]),
    ('dataset = "xor"\n[search]\nsamples = 3\n',
     ['<spec>: search.samples: only used with method = "random" or "sobol"']),
    ('dataset = "xor"\n[search]\nmethod = "sobol"\n[[zip]]\nalpha = { uniform = [1, 2] }\n'
     "hidden = [1]\n", ["<spec>: zip[0].alpha: a distribution is drawn from in [grid] only"]),
    ('dataset = "xor"\n[search]\nmethod = "sobl"\n',
     ['<spec>: search.method = "sobl": expected one of "grid", "random", "sobol", "edge", '
      "\"halving\", \"hyperband\" (did you mean 'sobol'?)"]),
    ('dataset = "xor"\n[search]\nmethod = "random"\n[grid]\n'
     'activation = { choice = ["relu", "relu"] }\n',
     ['<spec>: grid.activation.choice[1] = "relu": expected a value not already at '
      "grid.activation.choice[0] (values of an axis are distinct)"]),
    ('dataset = "xor"\n[search]\nmethod = "random"\nsamples = 1000000\n[grid]\n'
     "alpha = { loguniform = [0.1, 1] }\nhidden = { range = [1, 1001] }\n",
     [f"<spec>: the grid has 1,000,000,000 trials, more than the limit of {MAX_TRIALS:,} (the most "
      "one run can plan); narrow the grid, or split it into several sweep files"]),
])
def test_a_bad_search_is_told_in_one_line(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_a_sampled_sweep_runs_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "sampled.toml"
    path.write_text(SAMPLED.format(method="sobol", samples=4, seed=0), encoding="utf-8")
    spec = nnsweep.load_spec(path)
    results = nnsweep.run(spec, out=tmp_path / "out", jobs=1)
    trials = results.trials
    assert len(trials) == 8 and set(trials["seed"]) == {0, 1}
    drawn = sorted(zip(trials["alpha"], trials["tolerance"], strict=True))
    assert drawn == sorted((t.params.alpha, t.params.tolerance) for t in spec.trials())

