"""The stability edge: bisection in log space for the value of one axis where an outcome flips.

Pure logic, no files and no training: the outcomes known so far go in, the values still to
probe (and the trials that probe them) and the edge's bracket come out. The state of a
bisection is a function of the known outcomes alone (it is replayed from the bracket's ends
each time), so a search resumed from a journal asks for exactly the probes a search never
stopped would have asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from nnsweep.grid import Trial, trial_id
from nnsweep.params import TrialParams

Outcome = Literal["converged", "not_diverged"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
# The statuses that pass each outcome; failed and crashed probes, with no error to judge, fail.
PASSING: dict[str, frozenset[str]] = {
    "converged": frozenset({"converged"}),
    "not_diverged": frozenset({"converged", "not_converged"}),
}
DEFAULT_AXIS = "alpha"
DEFAULT_PRECISION = 0.02
MAX_PRECISION = 10.0  # a bracket of 11x: coarser than that is a grid, not a search
DIGITS = 12  # a probe's value is rounded as the grid's ranges are, so it reads back exact


@dataclass(frozen=True)
class EdgeSearch:
    """[search] method = "edge", resolved: the axis searched between the bracket's ends, and
    when its bracket is narrow enough (above / below <= 1 + precision)."""

    axis: str = DEFAULT_AXIS
    outcome: str = "converged"  # converged | not_diverged
    precision: float = DEFAULT_PRECISION
    low: float = 0.0  # the bracket's ends: the axis's smallest and largest value in [grid]
    high: float = 0.0
    integer: bool = False  # the axis takes whole numbers (epochs, batch_size, ...)

    def passes(self, status: str) -> bool:
        return status in PASSING[self.outcome]

    def narrow(self, below: float, above: float) -> bool:
        return above <= below * (1 + self.precision)

    def middle(self, below: float, above: float) -> float | None:
        """The geometric mean of the two values, as the axis holds it; None when no value
        lies strictly between them (whole numbers, or twelve digits)."""
        mean = math.sqrt(below) * math.sqrt(above)  # no overflow for huge ends
        value: float = round(mean) if self.integer else float(f"{mean:.{DIGITS}g}")
        return value if below < value < above else None


@dataclass(frozen=True)
class Bisection:
    """Where one combination's bisection stands.

    `probed`: the values on its path with a known outcome, in the order they were asked;
    `wanted`: the values to probe next (both ends at first, then one middle; none when done);
    `below` and `above`: the last values on the low end's side and on the high end's side
    (the ends until both are known); `found`: the two ends differ, so an edge lies between.
    """

    probed: tuple[float, ...]
    wanted: tuple[float, ...]
    below: float
    above: float
    found: bool

    @property
    def done(self) -> bool:
        return not self.wanted

    @property
    def edge(self) -> float:
        """The edge's estimate, the geometric mean of below and above (nan without an edge)."""
        return math.sqrt(self.below) * math.sqrt(self.above) if self.found else math.nan


def bisect(search: EdgeSearch, passed: Mapping[float, bool]) -> Bisection:
    """Replay the bisection over the outcomes known (`passed`: value -> passes), up to the
    first value it needs and does not know.

    The ends are probed first, together. Ends with the same outcome hold no edge: the search
    stops there. Otherwise each middle replaces the end of its side until the bracket is
    narrow, or cannot be split.
    """
    ends = (search.low, search.high)
    missing = tuple(end for end in ends if end not in passed)
    if missing:
        return Bisection(tuple(e for e in ends if e in passed), missing, *ends, found=False)
    low_passes = passed[search.low]
    if passed[search.high] == low_passes:
        return Bisection(ends, (), *ends, found=False)
    below, above, probed = search.low, search.high, list(ends)
    while not search.narrow(below, above):
        middle = search.middle(below, above)
        if middle is None:
            break
        if middle not in passed:
            return Bisection(tuple(probed), (middle,), below, above, found=True)
        probed.append(middle)
        if passed[middle] == low_passes:
            below = middle
        else:
            above = middle
    return Bisection(tuple(probed), (), below, above, found=True)


def rounds_needed(search: EdgeSearch) -> int:
    """The rounds a combination with an edge takes, ends included, when every middle can be
    taken exactly: one for the ends, then one per halving of the log-width until it is at most
    log(1 + precision)."""
    width, goal = math.log(search.high / search.low), math.log1p(search.precision)
    return 1 + max(0, math.ceil(math.log2(width / goal)))


def edge_row(search: EdgeSearch, statuses: Mapping[float, str]) -> dict[str, object]:
    """One combination's line of the edges table, from its probes' statuses (value -> status)."""
    state = bisect(search, {value: search.passes(s) for value, s in statuses.items()})
    return {
        "axis": search.axis, "outcome": search.outcome,
        "below": state.below, "above": state.above, "edge": state.edge,
        "below_status": statuses.get(state.below, ""),
        "above_status": statuses.get(state.above, ""),
        "trials": len(state.probed), "found": state.found, "done": state.done,
    }


def probes(search: EdgeSearch, trials: Iterable[TrialParams], data: str,
           known: Mapping[str, str]) -> tuple[list[Trial], int]:
    """Every probe so far, combination by combination, and how many of them are wanted: those
    `known` answers (trial id -> status), in the order the bisection asked for them, then those
    it wants next. The combinations are `trials` (the spec's: each at the bracket's two ends)
    with the axis left out; `data` is the dataset's hash, which a trial's id includes."""
    found, wanted = [], 0
    for combination in dict.fromkeys(_at(t, search.axis, search.low) for t in trials):
        def probe(value: float, combination: TrialParams = combination) -> Trial:
            params = _at(combination, search.axis, value)
            return Trial(trial_id(params, data), params)

        passed: dict[float, bool] = {}
        while True:  # answer from `known` what it can, until the rest must be trained
            state = bisect(search, passed)
            answered = {v: known[t.id] for v in state.wanted if (t := probe(v)).id in known}
            if not answered:
                break
            passed.update((v, search.passes(status)) for v, status in answered.items())
        found += [probe(v) for v in (*state.probed, *state.wanted)]
        wanted += len(state.wanted)
    return found, wanted


def _at(params: TrialParams, axis: str, value: float) -> TrialParams:
    changed: dict[str, Any] = {axis: value}
    return replace(params, **changed)
