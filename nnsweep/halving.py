"""Successive halving and Hyperband: which trials go on at each rung, from their scores there.

Every trial of a bracket trains to the bracket's first rung; there the best 1/eta of those still
in go on to the next rung, from where they stand, and the rest stop. The last rung is the
search's max_epochs. Hyperband splits the trials among brackets that start at different rungs,
trading many short trials against a few long ones, so a learning rate that starts slowly is not
always judged early.

Pure logic, no files and no training: what each trial has reached so far goes in (its epochs
and its score at every rung it passed), the next round's work comes out. The decisions are a
function of those scores alone, replayed from the first rung each time, so a search resumed
from its journal asks for exactly what a search never stopped would have asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnsweep.result import lower_is_better

METHODS: tuple[str, ...] = ("halving", "hyperband")
DEFAULT_ETA = 3


@dataclass(frozen=True)
class Halving:
    """[search] method = "halving" or "hyperband", resolved: the rungs run from min_epochs to
    max_epochs (the trials' epochs) by factors of eta; `seed` deals the trials to Hyperband's
    brackets."""

    method: str = "halving"
    eta: int = DEFAULT_ETA
    min_epochs: int = 1
    max_epochs: int = 1
    seed: int = 0

    def rungs(self, bracket: int = 0) -> tuple[int, ...]:
        """The epochs trained at each rung of a bracket: its first rung, eta times that, ...,
        and max_epochs last. Bracket 0 starts at min_epochs, bracket b at min_epochs * eta**b."""
        first = self.min_epochs * self.eta**bracket
        rungs = []
        while first < self.max_epochs:
            rungs.append(first)
            first *= self.eta
        return (*rungs, self.max_epochs)

    @property
    def brackets(self) -> int:
        """Successive halving runs one bracket; Hyperband one per rung of the first bracket."""
        return 1 if self.method == "halving" else len(self.rungs())

    def shares(self, trials: int) -> list[int]:
        """How many of `trials` each bracket gets: Hyperband's n_s = ceil((s_max + 1) /
        (s + 1) * eta**s) for a bracket of s halvings, scaled to the trials there are (largest
        remainders), so each bracket costs about the same; halving's one bracket takes all."""
        if self.brackets == 1:
            return [trials]
        s_max = self.brackets - 1
        weights = [math.ceil((s_max + 1) / (s + 1) * self.eta**s)
                   for s in range(s_max, -1, -1)]  # bracket 0 halves s_max times
        exact = [trials * w / sum(weights) for w in weights]
        counts = [math.floor(e) for e in exact]
        by_remainder = sorted(range(len(exact)), key=lambda b: (counts[b] - exact[b], b))
        for b in by_remainder[: trials - sum(counts)]:
            counts[b] += 1
        return counts

    def deal(self, trials: Sequence[str]) -> dict[str, int]:
        """Each trial's bracket: the trials in an order drawn from the seed, cut by shares."""
        order = np.random.RandomState(self.seed).permutation(len(trials))
        bracket_of: dict[str, int] = {}
        start = 0
        for bracket, count in enumerate(self.shares(len(trials))):
            for index in order[start : start + count]:
                bracket_of[trials[int(index)]] = bracket
            start += count
        return bracket_of

    def budget(self, trials: int) -> int:
        """The trial-epochs a search of `trials` spends (a grid spends trials x max_epochs):
        each rung trains those still in from the rung before, and 1/eta of them go on."""
        spent = 0
        for bracket, members in enumerate(self.shares(trials)):
            before = 0
            for epochs in self.rungs(bracket):
                spent += members * (epochs - before)
                members, before = (max(1, members // self.eta) if members else 0), epochs
        return spent

    def describe(self) -> str:
        """The search in a few words: its method, eta, brackets and rungs."""
        brackets = f", {self.brackets} brackets" if self.brackets > 1 else ""
        return (f"{self.method} (eta {self.eta}{brackets}; rungs at "
                f"{', '.join(map(str, self.rungs()))} epochs)")

    def spent(self, stopped: Sequence[int]) -> str:
        """What a search spent, from the epochs each trial trained, against the grid."""
        spent, full = sum(stopped), len(stopped) * self.max_epochs
        whole = sum(epochs == self.max_epochs for epochs in stopped)
        share = f" ({spent / full:.0%})" if full else ""
        return (f"{whole} of {len(stopped)} trials trained to {self.max_epochs} epochs; "
                f"{spent:,} trial-epochs of a grid's {full:,}{share}")

    def rung_of(self, bracket: int, epochs: int) -> int:
        """The last rung of the bracket that `epochs` reached (-1: not its first)."""
        return sum(rung <= epochs for rung in self.rungs(bracket)) - 1


@dataclass(frozen=True)
class Reached:
    """What one trial has reached: its epochs trained and its score (the metric that ranks) at
    the epochs of each rung it passed, by those epochs (so a search with other rungs over the
    same folder asks for what is missing); nan where it diverged. A failed trial is out."""

    epochs: int
    scores: Mapping[int, float] = field(default_factory=dict)
    failed: bool = False


@dataclass(frozen=True)
class Round:
    """The next round's work, each trial to the epochs it trains to, and the trials still in
    the race (those training, and the survivors of a bracket between rounds)."""

    wanted: dict[str, int]
    alive: frozenset[str]
    stopped: dict[str, int]  # trials out of the race: the rung where each stopped


def next_round(search: Halving, trials: Sequence[str], reached: Mapping[str, Reached],
               metric: str) -> Round:
    """Replay every bracket's decisions from its first rung on the scores known, up to the
    first rung that some of its trials have not reached: those train to it next."""
    wanted: dict[str, int] = {}
    alive: set[str] = set()
    stopped: dict[str, int] = {}
    bracket_of = search.deal(trials)
    for bracket in range(search.brackets):
        members = [t for t in trials if bracket_of[t] == bracket]
        rungs = search.rungs(bracket)
        for rung, epochs in enumerate(rungs):
            members = [t for t in members if not (t in reached and reached[t].failed)]
            last = rung == len(rungs) - 1  # no ranking there: no score needed
            behind = [t for t in members if t not in reached or reached[t].epochs < epochs
                      or (not last and epochs not in reached[t].scores)]
            if behind:
                wanted.update((t, epochs) for t in behind)
                alive.update(members)
                break
            if last:
                break
            keep = max(1, len(members) // search.eta)
            ranked = sorted(members, key=lambda t: _rank_key(reached[t].scores[epochs], metric))
            stopped.update((t, rung) for t in ranked[keep:])
            members = ranked[:keep]
    return Round(wanted, frozenset(alive), stopped)


def _rank_key(score: float, metric: str) -> float:
    """Best first; a diverged trial's nan last."""
    return math.inf if math.isnan(score) else float(lower_is_better(metric, score))
