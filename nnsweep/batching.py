"""Which trials train together, and about how long they take: batch keys, the cost model,
batches, time estimates.

Trials of one batch key can train as one array program; a key's trials are cut into batches of
about equal cost, so every worker gets an equal share and no batch trains long unjournaled. A
trial's numbers never depend on the batch it lands in, so results never depend on batching.
Nothing here trains: the engines use `batch_key`, the planner `batches` and `estimate_seconds`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from nnsweep.packing import pack
from nnsweep.params import TrialParams

if TYPE_CHECKING:
    from nnsweep.grid import Trial

BatchKey = tuple[object, ...]
T = TypeVar("T")

# The cost model's coefficients as first measured (the NumPy engine, one thread): dispatch per
# array operation, arithmetic per value. Batches are cut by these, so a plan never depends on
# the machine; time estimates scale them by a Speed measured where the sweep will run.
SECONDS_PER_CALL = 1.5e-6
SECONDS_PER_VALUE = 2e-9


@dataclass(frozen=True)
class Speed:
    """The cost model's coefficients for one engine on one machine: seconds per array operation
    (NumPy's dispatch, a compiled loop's per-step overhead) and per value computed."""

    per_call: float = SECONDS_PER_CALL
    per_value: float = SECONDS_PER_VALUE


REFERENCE = Speed()


def batch_key(params: TrialParams) -> BatchKey:
    """Trials with equal keys can train together; widths, alpha, seed, init, tolerance vary."""
    return (
        len(params.hidden),
        params.activation,
        params.output,
        params.descent,
        params.batch_size if params.descent == "minibatch" else 0,
        params.reduction,
        params.epochs,
        params.record_step,
        params.metric,
        params.bias,
        params.shuffle and params.descent != "full",
        params.optimizer,
        params.weight_decay > 0,  # decay on: an operation more per step
        params.dropout > 0 and len(params.hidden) > 0,  # masks drawn: a pass more per layer
        params.loss,
        params.select,
    )


def epoch_terms(trials: Sequence[TrialParams], rows: int = 4) -> tuple[float, float]:
    """One epoch of these trials (one batch key) as one batch: (array operations, values).

    NumPy's dispatch is paid once per width group and step, the arithmetic once per value.
    """
    widths: dict[tuple[int, ...], list[TrialParams]] = {}
    for trial in trials:
        widths.setdefault(trial.hidden, []).append(trial)
    calls = values = 0.0
    for hidden, members in widths.items():
        step_rows = members[0].rows_per_step(rows)
        sizes = [1, *hidden, 1]  # inputs and outputs do not change the balance
        per_trial = step_rows * sum(a * b + b for a, b in itertools.pairwise(sizes))
        steps = -(-rows // step_rows)
        calls += steps * 5 * len(sizes)
        values += steps * len(members) * per_trial
    return calls, values


def epoch_seconds(trials: Sequence[TrialParams], rows: int = 4,
                  speed: Speed = REFERENCE) -> float:
    """About how long one epoch of these trials (one batch key) takes as one batch: the cost
    model of split(), the batch sizes (at REFERENCE) and the time estimates (at a measured
    Speed)."""
    calls, values = epoch_terms(trials, rows)
    return calls * speed.per_call + values * speed.per_value


def split(trials: Sequence[TrialParams], pieces: int, rows: int = 4) -> list[list[int]]:
    """Indices of `trials` (one batch key) in at most `pieces` batches of about equal cost.

    A width group pays NumPy's dispatch once per batch it lands in, so whole groups are dealt
    out, costliest first, each to the cheapest batch so far; only a group costlier than a
    batch's share is cut, into as few equal parts as it takes.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, trial in enumerate(trials):
        groups.setdefault(trial.hidden, []).append(index)

    def cost(members: Sequence[int]) -> float:
        return epoch_seconds([trials[i] for i in members], rows)

    share = sum(cost(members) for members in groups.values()) / max(1, pieces)
    parts: list[list[int]] = []
    for members in groups.values():
        count = min(len(members), max(1, math.ceil(cost(members) / share - 1e-9)))
        size, extra = divmod(len(members), count)
        start = 0
        for piece in range(count):
            stop = start + size + (1 if piece < extra else 0)
            parts.append(members[start:stop])
            start = stop
    bins, _ = pack([cost(part) for part in parts], pieces)
    return [sorted(i for p in members for i in parts[p]) for members in bins if members]


# Trials per batch at most, so that a worker's memory stays bounded (about 100 MiB here).
MAX_BATCH = 512
# About how long one batch may train before its results are journaled.
MAX_SECONDS = 120.0


def batch_indices(
    trials: Sequence[TrialParams],
    workers: int,
    rows: int = 4,
    max_batch: int = MAX_BATCH,
    max_seconds: float = MAX_SECONDS,
) -> list[list[int]]:
    """Indices of `trials` in batches for `workers` processes: one batch key per batch.

    Each key's trials are split into `workers` batches of about equal cost (split),
    or more where that would put more than `max_batch` trials in one, or give one batch more
    than about `max_seconds` of work: a finished batch is journaled, so long sweeps are saved
    as they go.
    """
    groups: dict[object, list[int]] = {}
    for index, params in enumerate(trials):
        groups.setdefault(batch_key(params), []).append(index)
    planned = []
    for indices in groups.values():
        members = [trials[i] for i in indices]
        seconds = members[0].epochs * epoch_seconds(members, rows)
        pieces = max(workers, -(-len(indices) // max_batch), math.ceil(seconds / max_seconds))
        for part in split(members, min(pieces, len(indices)), rows):
            for start in range(0, len(part), max_batch):  # cost-balanced parts, size-capped
                planned.append([indices[i] for i in part[start : start + max_batch]])
    return planned


def batches(trials: Sequence[Trial], workers: int, *, rows: int = 4) -> list[list[Trial]]:
    """The trials in batches for `workers` processes, in a deterministic order."""
    planned = batch_indices([t.params for t in trials], workers, rows)
    return [[trials[i] for i in batch] for batch in planned]


def estimate_seconds(planned: Sequence[Sequence[Trial]], workers: int, rows: int,
                     speed: Speed = REFERENCE, keyed: Mapping[BatchKey, Speed] | None = None
                     ) -> float:
    """About how long the batches train on `workers` processes, each taking the next when
    free, at `speed` (the engine's, measured on this machine), or at the speed `keyed` holds
    for a batch's key (measured on the sweep's own data and settings)."""
    keyed = keyed or {}
    costs = [batch[0].params.epochs
             * epoch_seconds([t.params for t in batch], rows,
                             keyed.get(batch_key(batch[0].params), speed))
             for batch in planned]
    return max(pack(costs, min(workers, len(costs)))[1], default=0.0)
