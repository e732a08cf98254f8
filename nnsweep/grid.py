"""A spec's trials as a pure, deterministic, indexable sequence, and their batches.

The grid is the cartesian product of its axes (sorted by name; the last axis varies fastest,
as in scikit-learn's ParameterGrid), minus the product's trials that an exclude rule matches,
followed by the explicit include trials in file order. An axis is one swept parameter, or a
zip group: several parameters whose values move together. Indexing never materializes the
product: position i is decoded digit by digit, so `len(grid)` and `grid[i]` are cheap even for
millions of trials (exclude rules cost one byte of mask per product trial).

A trial's id hashes its resolved parameters and the dataset's hash: reordering the file or
adding values to an axis never changes an existing trial's id; changing any parameter or
the data always does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from nnsweep.errors import GridTooLarge, NnsweepError
from nnsweep.params import DEFAULTS, LATER_PARAMS, TrialParams

# Exclude rules need a mask over the whole product; beyond this many trials, refuse.
MAX_FILTERED = 50_000_000
# Planning holds every trial (its parameters, id and place in a batch) in memory at once: 407
# bytes a trial at the peak, measured as VmRSS around planning a three-axis grid of 10^6
# XOR trials (18 s of CPU). Rounded up, it sizes grids against the memory available.
TRIAL_BYTES = 500
# The most trials one run may hold, whatever its limit says: 10^7 trials take about 5 GB
# and three minutes to plan before the first one trains. Larger sweeps go in several files.
MAX_TRIALS = 10_000_000


@dataclass(frozen=True, slots=True)
class Trial:
    id: str  # stable: hash of the resolved parameters and the dataset hash
    params: TrialParams


@dataclass(frozen=True)
class Axis:
    """One factor of the product: a swept parameter, or a zip group of parameters."""

    names: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple per position, aligned with names

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"axis {self.names} has no values")
        if any(len(value) != len(self.names) for value in self.values):
            raise ValueError(f"axis {self.names}: every value needs {len(self.names)} parts")


FLOAT_PARAMS = ("alpha", "tolerance", "momentum", "beta1", "beta2", "eps", "weight_decay",
                "dropout")


def trial_id(params: TrialParams, dataset_hash: str) -> str:
    """12 hex chars of sha256 over the canonical parameters and the dataset's hash."""
    canonical = {name: _canonical(name, value) for name, value in params.to_dict().items()
                 if name not in LATER_PARAMS or value != DEFAULTS[name]}
    payload = json.dumps({"data": dataset_hash, "params": canonical}, sort_keys=True,
                         separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]



def _canonical(name: str, value: Any) -> Any:
    """A parameter's value as trial_id hashes it (numbers that may be written as integers are
    floats, given weights nested lists of floats)."""
    if name in FLOAT_PARAMS:
        return float(value)
    if name == "weights" and value is not None:
        return [[[float(v) for v in row] for row in layer] for layer in value]
    return value


def _fragment(name: str, value: Any) -> str:
    """`"name":value` exactly as it stands in trial_id's JSON payload ("" where it does not)."""
    if name in LATER_PARAMS and value == DEFAULTS[name]:
        return ""
    return (json.dumps(name) + ":"
            + json.dumps(_canonical(name, value), separators=(",", ":"), allow_nan=False))


_SORTED_NAMES: tuple[str, ...] = tuple(sorted(f.name for f in fields(TrialParams)))
_Pairs = tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str], ...]]


def matches(rule: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether a trial's parameters hold every value of an exclude rule."""
    return all(params[name] == value for name, value in rule.items())


class Grid(Sequence[Trial]):
    """The product of `axes` over `base`, less `exclude` matches, then `include` trials.

    `base` holds a value for every parameter; axes, includes and rules name parameters
    with values already resolved (hidden as a tuple, alpha a float, ...).
    """

    def __init__(
        self,
        base: Mapping[str, Any],
        axes: Sequence[Axis] = (),
        include: Sequence[Mapping[str, Any]] = (),
        exclude: Sequence[Mapping[str, Any]] = (),
        dataset_hash: str = "",
    ) -> None:
        names = {field.name for field in fields(TrialParams)}
        if set(base) != names:
            raise ValueError(f"base needs exactly the parameters {sorted(names)}")
        self.base = dict(base)
        self.axes = tuple(sorted(axes, key=lambda axis: axis.names))
        self.include = tuple(dict(trial) for trial in include)  # values set on top of base
        self._included = tuple({**self.base, **trial} for trial in self.include)
        self.exclude = tuple(dict(rule) for rule in exclude)
        self.dataset_hash = dataset_hash
        self.shape = tuple(len(axis.values) for axis in self.axes)
        self.product_size = math.prod(self.shape)
        if self.exclude and self.product_size > MAX_FILTERED:
            raise ValueError(f"{self.product_size:,} trials are too many to filter with "
                             f"exclude rules (at most {MAX_FILTERED:,})")
        self._lookup = [{value: i for i, value in enumerate(axis.values)} for axis in self.axes]
        self._kept_positions: NDArray[np.int64] | None = None
        self._mask: NDArray[np.bool_] | None = None
        self._kept = self.product_size
        if self.exclude:
            self._kept = self.product_size - int(np.count_nonzero(self._excluded_mask()))
        # trial_id's JSON, each value encoded once, when first used: ids of a million trials
        # cost seconds, not a minute (the tests check them against trial_id)
        self._id_head = '{"data":' + json.dumps(dataset_hash) + ',"params":{'
        self._base_fragments = {name: _fragment(name, value) for name, value in self.base.items()}
        # per axis, last varying fastest: its length, and per position used so far, the
        # (name, value) and (name, encoded value) pairs it sets
        self._digits: list[tuple[Axis, int, dict[int, _Pairs]]] = [
            (axis, length, {}) for axis, length in zip(reversed(self.axes), reversed(self.shape),
                                                       strict=True)]

    # --- the sequence -------------------------------------------------------------------

    @property
    def trial_count(self) -> int:
        """How many trials, as a plain int: len() cannot answer beyond sys.maxsize, and a
        grid that large must still be counted to be refused by its size."""
        return self._kept + len(self.include)

    def __len__(self) -> int:
        return self.trial_count

    @overload
    def __getitem__(self, index: int) -> Trial: ...

    @overload
    def __getitem__(self, index: slice) -> list[Trial]: ...

    def __getitem__(self, index: int | slice) -> Trial | list[Trial]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"trial index {index} out of range for {size} trials")
        index %= size
        if index >= self._kept:
            return self._trial(self._included[index - self._kept])
        return self._product_trial(self._position(index))

    def __iter__(self) -> Iterator[Trial]:
        if self.exclude:
            mask = self._excluded_mask().ravel()
            for position in range(self.product_size):
                if not mask[position]:
                    yield self._product_trial(position)
        else:
            for position in range(self.product_size):
                yield self._product_trial(position)
        for params in self._included:
            yield self._trial(params)

    # --- the product --------------------------------------------------------------------

    def product_position(self, params: Mapping[str, Any]) -> int | None:
        """Where the product holds a trial with exactly these parameters, excluded or not."""
        on_axes = {name for axis in self.axes for name in axis.names}
        if any(params[name] != value for name, value in self.base.items()
               if name not in on_axes):
            return None
        position = 0
        for axis, lookup, length in zip(self.axes, self._lookup, self.shape, strict=True):
            digit = lookup.get(tuple(params[name] for name in axis.names))
            if digit is None:
                return None
            position = position * length + digit
        return position

    def is_excluded(self, position: int) -> bool:
        return bool(self.exclude) and bool(self._excluded_mask().ravel()[position])

    def _position(self, kept_index: int) -> int:
        if not self.exclude:
            return kept_index
        if self._kept_positions is None:
            self._kept_positions = np.flatnonzero(~self._excluded_mask().ravel())
        return int(self._kept_positions[kept_index])

    def _excluded_mask(self) -> NDArray[np.bool_]:
        """True where some exclude rule matches, shaped like the product."""
        if self._mask is None:
            self._mask = np.zeros(self.shape, dtype=np.bool_)  # (len(axis) for axis in axes)
            for rule in self.exclude:
                self._mask |= self._rule_mask(rule)
        return self._mask

    def _rule_mask(self, rule: Mapping[str, Any]) -> NDArray[np.bool_]:
        """Where one rule matches: an outer AND of each axis's matching positions."""
        hit = np.ones(self.shape, dtype=np.bool_)  # (len(axis) for axis in axes)
        on_axes = {name for axis in self.axes for name in axis.names}
        if any(self.base[name] != value for name, value in rule.items() if name not in on_axes):
            return np.zeros(self.shape, dtype=np.bool_)
        for a, axis in enumerate(self.axes):
            named = [(p, rule[name]) for p, name in enumerate(axis.names) if name in rule]
            if not named:
                continue
            along = np.array([all(value[p] == wanted for p, wanted in named)
                              for value in axis.values], dtype=np.bool_)  # (len(axis),)
            shape = [1] * len(self.shape)
            shape[a] = len(axis.values)
            hit &= along.reshape(shape)
        return hit

    def _trial(self, params: Mapping[str, Any]) -> Trial:
        resolved = TrialParams(**params)
        return Trial(trial_id(resolved, self.dataset_hash), resolved)

    def _product_trial(self, position: int) -> Trial:
        """The product's trial at `position`, its id joined from the values' encoded JSON."""
        params = dict(self.base)
        encoded = dict(self._base_fragments)
        for axis, length, seen in self._digits:
            position, digit = divmod(position, length)
            pairs = seen.get(digit)
            if pairs is None:
                values = tuple(zip(axis.names, axis.values[digit], strict=True))
                pairs = seen[digit] = (values, tuple((n, _fragment(n, v)) for n, v in values))
            params.update(pairs[0])
            encoded.update(pairs[1])
        payload = self._id_head + ",".join([encoded[n] for n in _SORTED_NAMES if encoded[n]]
                                           ) + "}}"
        return Trial(hashlib.sha256(payload.encode()).hexdigest()[:12], TrialParams(**params))


def check_size(count: int, limit: int, where: str, available_memory: int) -> None:
    """Refuse a grid over the limit, or beyond what planning it takes in memory, from its
    count alone, before any trial is built (a grid of 10^18 trials is refused at once)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TRIALS:
        raise NnsweepError(f"max_trials = {limit!r}: expected an integer from 1 to "
                           f"{MAX_TRIALS:,}")
    if count > limit:
        raise GridTooLarge(where, count, limit, MAX_TRIALS)
    if count * TRIAL_BYTES > available_memory:
        raise NnsweepError(f"{where}: the grid has {count:,} trials; planning them needs about "
                           f"{count * TRIAL_BYTES / 1e9:.1f} GB of memory, more than the "
                           f"{available_memory / 1e9:.1f} GB available; narrow the grid")
