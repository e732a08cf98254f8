"""The grid: a pure, indexable sequence with stable ids, and batches the trainer can take.

The properties try as many grids as the Hypothesis profile asks for (conftest.py)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnsweep.batching import batch_key, batches
from nnsweep.errors import GridTooLarge, NnsweepError
from nnsweep.grid import Axis, Grid, Trial, check_size, matches, trial_id
from nnsweep.params import DEFAULTS, TrialParams
from nnsweep.spec import Spec, parse_spec

# Axis values as a sweep file writes them, per parameter.
AXIS_VALUES: dict[str, st.SearchStrategy[list[Any]]] = {
    "alpha": st.lists(st.sampled_from([0.001, 0.01, 0.1, 0.5, 1, 10]), min_size=1,
                      max_size=4, unique=True),
    "hidden": st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=3, unique=True),
    "seed": st.lists(st.integers(0, 50), min_size=1, max_size=4, unique=True),
    "activation": st.lists(st.sampled_from(["sigmoid", "relu", "tanh"]), min_size=1,
                           max_size=3, unique=True),
    "epochs": st.lists(st.integers(1, 500), min_size=1, max_size=3, unique=True),
}
grids = st.dictionaries(st.sampled_from(sorted(AXIS_VALUES)), st.just(None), min_size=1,
                        max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: AXIS_VALUES[k] for k in keys}))


def toml_list(values: list[Any]) -> str:
    return "[" + ", ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in values) + "]"


def spec_text(axes: dict[str, list[Any]], order: list[str] | None = None) -> str:
    lines = ['dataset = "xor"', "[grid]"]
    lines += [f"{name} = {toml_list(axes[name])}" for name in (order or list(axes))]
    return "\n".join(lines) + "\n"


def spec(text: str) -> Spec:
    return parse_spec(text)


@given(grids)
def test_the_length_is_the_product_of_the_axes(axes: dict[str, list[Any]]) -> None:
    grid = spec(spec_text(axes)).trials()
    assert len(grid) == math.prod(len(v) for v in axes.values()) == len(list(grid))


@given(grids)
def test_indexing_equals_iteration(axes: dict[str, list[Any]]) -> None:
    grid = spec(spec_text(axes)).trials()
    listed = list(grid)
    assert [grid[i] for i in range(len(grid))] == listed
    assert [grid[i - len(grid)] for i in range(len(grid))] == listed
    assert grid[1:3] == listed[1:3]


@given(grids)
def test_every_trial_has_its_own_id(axes: dict[str, list[Any]]) -> None:
    ids = [t.id for t in spec(spec_text(axes)).trials()]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)


@given(grids, st.randoms(use_true_random=False))
def test_reordering_the_file_keeps_the_trials_and_their_order(
    axes: dict[str, list[Any]], random: Any
) -> None:
    order = list(axes)
    random.shuffle(order)
    shuffled = {name: random.sample(values, len(values)) for name, values in axes.items()}
    original = spec(spec_text(axes)).trials()
    reordered = spec(spec_text(shuffled, order)).trials()
    assert {t.id: t.params for t in original} == {t.id: t.params for t in reordered}
    assert [t.id for t in spec(spec_text(axes, order)).trials()] == [t.id for t in original]


@given(grids, st.data())
def test_adding_values_to_an_axis_keeps_every_existing_id(
    axes: dict[str, list[Any]], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(axes)))
    extra = data.draw(AXIS_VALUES[name].filter(lambda v: not set(v) & set(axes[name])))
    before = {t.id for t in spec(spec_text(axes)).trials()}
    after = {t.id for t in spec(spec_text({**axes, name: axes[name] + extra})).trials()}
    assert before < after


def test_the_last_sorted_axis_varies_fastest() -> None:
    grid = spec('dataset = "xor"\n[grid]\nseed = [1, 2]\nalpha = [0.1, 1]\n').trials()
    assert [(t.params.alpha, t.params.seed) for t in grid] == [
        (0.1, 1), (0.1, 2), (1.0, 1), (1.0, 2)]


def test_an_index_past_the_end_raises_index_error() -> None:
    grid = spec('dataset = "xor"\n[grid]\nseed = [1, 2]\n').trials()
    with pytest.raises(IndexError):
        grid[2]
    with pytest.raises(IndexError):
        grid[-3]


def test_a_million_trial_grid_is_sized_and_indexed_without_materializing() -> None:
    s = spec('dataset = "xor"\n[grid]\nseed = { range = [0, 1000] }\n'
             'epochs = { range = [1, 1001] }\n')
    assert s.size() == 1_000_000
    last = s.trials()[999_999].params
    assert (last.epochs, last.seed) == (1000, 999)


@given(grids, st.data())
def test_exclude_rules_remove_exactly_the_matching_product_trials(
    axes: dict[str, list[Any]], data: st.DataObject
) -> None:
    base = dict(DEFAULTS)
    resolved = {name: [resolve(name, v) for v in values] for name, values in axes.items()}
    rules = data.draw(st.lists(st.fixed_dictionaries({}, optional={
        name: st.sampled_from(values) for name, values in resolved.items()}).filter(bool),
        max_size=3))
    grid = Grid(base, [Axis((n,), tuple((v,) for v in vs)) for n, vs in resolved.items()],
                exclude=rules)
    names = sorted(resolved)
    product = [{**base, **dict(zip(names, combo, strict=True))}
               for combo in itertools.product(*(resolved[n] for n in names))]
    expected = [p for p in product if not any(matches(rule, p) for rule in rules)]
    assert [t.params.to_dict() for t in grid] == [TrialParams(**p).to_dict() for p in expected]
    assert [grid[i] for i in range(len(grid))] == list(grid)


def resolve(name: str, value: Any) -> Any:
    if name == "hidden":
        return (value,)
    if name == "alpha":
        return float(value)
    return value


# --- trial ids ------------------------------------------------------------------------------

CHANGED = {"hidden": (5,), "activation": "relu", "output": "linear", "alpha": 0.2,
           "descent": "stochastic", "batch_size": 3, "reduction": "mean", "epochs": 7,
           "seed": 9, "init": "given", "weights": (((1.0,),),), "record_every": 2,
           "metric": "sse", "tolerance": 0.5, "bias": True, "shuffle": True,
           "optimizer": "adam", "momentum": 0.5, "beta1": 0.5, "beta2": 0.5, "eps": 0.5,
           "weight_decay": 0.5, "dropout": 0.5, "loss": "cross_entropy",
           "select": "validation"}


def test_every_parameter_has_a_changed_value_in_the_id_test() -> None:
    assert set(CHANGED) == set(DEFAULTS)


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_the_id_changes_when_any_parameter_changes(name: str) -> None:
    params = TrialParams()
    assert trial_id(dataclasses.replace(params, **{name: CHANGED[name]}), "d") != trial_id(
        params, "d")


def test_the_id_changes_with_the_data() -> None:
    assert trial_id(TrialParams(), "aaaa") != trial_id(TrialParams(), "bbbb")


def test_the_id_does_not_care_whether_alpha_was_written_as_an_integer() -> None:
    assert trial_id(TrialParams(alpha=1), "d") == trial_id(TrialParams(alpha=1.0), "d")


@given(grids)
def test_the_grids_ids_joined_from_encoded_values_are_trial_ids(axes: dict[str, list[Any]]
                                                                 ) -> None:
    grid = spec(spec_text(axes)).trials()
    assert [t.id for t in grid] == [trial_id(t.params, grid.dataset_hash) for t in grid]


def test_ids_of_zips_includes_given_weights_and_every_kind_of_value_are_trial_ids() -> None:
    grid = spec("""
        dataset = "xor"
        [params]
        init = "given"
        weights = [ [[0.5, -1], [2, 0.25], [1e-7, 3]], [[1], [-0.5]] ]
        hidden = 2
        [grid]
        alpha = { log = [0.001, 1000], num = 5 }
        bias = [false]
        tolerance = [0, 0.5, 1]
        [[zip]]
        activation = ["relu", "tanh"]
        output = ["linear", "sigmoid"]
        [[include]]
        alpha = 7
        seed = 4294967295
        """).trials()
    assert len(grid) == 31
    assert [t.id for t in grid] == [trial_id(t.params, grid.dataset_hash) for t in grid]


def test_parameters_as_a_dict_are_the_dataclass_fields_unchanged() -> None:
    params = TrialParams(hidden=(3, 2), weights=(((1.0,),),), alpha=0.5)
    assert params.to_dict() == dataclasses.asdict(params)


# --- sizes ----------------------------------------------------------------------------------

def test_a_grid_counts_its_trials_beyond_what_len_can_answer() -> None:
    axes = [Axis((name,), tuple((v,) for v in range(1, 1001)))
            for name in ("seed", "epochs", "batch_size", "record_every", "hidden", "alpha",
                         "tolerance")]
    assert Grid(DEFAULTS, axes).trial_count == 10**21


def test_a_grid_within_the_limit_and_the_memory_passes() -> None:
    check_size(100_000, 100_000, "s.toml", available_memory=10**12)


def test_a_grid_over_the_limit_is_refused_with_its_size_and_the_limit() -> None:
    with pytest.raises(GridTooLarge) as raised:
        check_size(4_000_000, 100_000, "s.toml", available_memory=500_000_000)
    assert (raised.value.source, raised.value.size, raised.value.limit) == (
        "s.toml", 4_000_000, 100_000)


@pytest.mark.parametrize(("count", "limit", "expected"), [
    (10**18, 100_000, "s.toml: the grid has 1,000,000,000,000,000,000 trials, more than the "
                      "limit of 100,000; narrow the grid, or split it into sweeps of at most "
                      "10,000,000 trials (the most one run can plan)"),
    (2_000_000, 10_000_000, "s.toml: the grid has 2,000,000 trials; planning them needs about "
                            "1.0 GB of memory, more than the 0.5 GB available; narrow the grid"),
    (1, 0, "max_trials = 0: expected an integer from 1 to 10,000,000"),
    (1, 10_000_001, "max_trials = 10000001: expected an integer from 1 to 10,000,000"),
])
def test_a_grid_over_the_limit_or_the_memory_is_refused_from_its_count(
    count: int, limit: int, expected: str
) -> None:
    with pytest.raises(NnsweepError) as raised:
        check_size(count, limit, "s.toml", available_memory=500_000_000)
    assert str(raised.value) == expected


# --- batches --------------------------------------------------------------------------------

def trials_of(text: str) -> list[Trial]:
    return list(spec(text).trials())


MIXED = ('dataset = "xor"\n[grid]\nhidden = [4, [3, 2]]\nalpha = { log = [0.001, 1], num = 4 }\n'
         "seed = { range = [0, 5] }\n")


@pytest.mark.parametrize("workers", [1, 2, 4, 16])
def test_batches_hold_one_batch_key_and_keep_every_trial_once_in_order(workers: int) -> None:
    trials = trials_of(MIXED)
    planned = batches(trials, workers)
    assert all(len({batch_key(t.params) for t in batch}) == 1 for batch in planned)
    flat = [t for batch in planned for t in batch]
    assert sorted(t.id for t in flat) == sorted(t.id for t in trials)
    for batch in planned:
        positions = [trials.index(t) for t in batch]
        assert positions == sorted(positions)


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_every_worker_gets_a_batch_of_each_batch_key(workers: int) -> None:
    planned = batches(trials_of(MIXED), workers)
    keys = Counter(batch_key(batch[0].params) for batch in planned)
    assert all(count >= min(workers, 20) for count in keys.values())  # 20 trials per key


def test_batches_stay_as_large_as_the_workers_allow() -> None:
    planned = batches(trials_of(MIXED), 2)
    assert len(planned) == 4
    assert sorted(len(b) for b in planned) == [10, 10, 10, 10]


def test_a_long_sweep_is_cut_into_batches_short_enough_to_journal_often() -> None:
    short = batches(trials_of(MIXED), 1)
    long = batches(trials_of(MIXED + "[params]\nepochs = 100000000\n"), 1)
    assert len(short) == 2 and len(long) == 40  # every trial alone: each is hours of work


def test_batches_are_the_same_on_every_call() -> None:
    trials = trials_of(MIXED)
    assert batches(trials, 3) == batches(list(trials), 3)


def test_no_trials_make_no_batches() -> None:
    assert batches([], 4) == []
