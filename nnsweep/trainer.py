"""The batched NumPy trainer: many networks of one depth trained as one array program.

Speed here is NumPy dispatch: a tiny network costs a few microseconds per array operation,
whatever its size. So every elementwise operation of a step (activations, errors, deltas,
directions, updates) runs once on a flat buffer that holds all networks of the batch, and only
the matrix products run per group of equal layer sizes, as one stacked `np.matmul` each.

Each product is the very BLAS call the plain loop (reference.py) makes for that network, and
every other operation is elementwise, so results equal the loop's bit for bit and a trial's
numbers never depend on the batch it trained in. (Zero-padding narrower networks to the
widest is not exact: BLAS picks other kernels for other matrix widths, and the last bits move.)

The trainer knows nothing about files, processes or progress bars. It also holds the check of
a batch that every engine makes before training (one batch key, contiguous float64 data).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nnsweep.batching import batch_key
from nnsweep.network import (
    TABLE,
    Array,
    ArrayForm,
    Mask,
    cross_entropy,
    dropout_scales,
    forward,
    initial_weights,
    output_delta_factor,
    resumed_shuffle,
    right_answers,
    shuffle_generator,
    shuffle_state,
    softmax,
    weight_shapes,
    with_bias_column,
)
from nnsweep.params import MEMORIES, TrialParams
from nnsweep.result import EpochLog, TrainState, TrialResult

# Epochs whose errors are kept before best, converged and history are brought up to date.
EPOCH_CHUNK = 512
# Bytes of update directions kept before the direction changes are counted.
DIRECTION_BYTES = 8_000_000


def checked_batch(
    x_data: ArrayLike, y_data: ArrayLike, trials: Sequence[TrialParams]
) -> tuple[Array, Array]:
    """The data as every engine trains on it, once the trials are known to share a batch key."""
    keys = {batch_key(t) for t in trials}
    if len(keys) != 1:
        raise ValueError(f"trials of one batch must share a batch key, got {len(keys)} keys")
    x = np.ascontiguousarray(x_data, dtype=np.float64)  # (rows, inputs)
    y = np.ascontiguousarray(y_data, dtype=np.float64)  # (rows, outputs)
    return x, y


def train_batch(
    x_data: ArrayLike,
    y_data: ArrayLike,
    trials: Sequence[TrialParams],
    on_epoch: Callable[[int], None] | None = None,
    validation: tuple[ArrayLike, ArrayLike] | None = None,
    *,
    starts: Sequence[TrainState | None] | None = None,
    until: int | None = None,
) -> list[TrialResult]:
    """Train every trial on the same data; return one result per trial, in order.

    `on_epoch(epoch)` is called after each epoch, for callers that want a heartbeat. With
    `validation` (x, y), each trial's errors on those rows are kept at its recorded epochs.

    Training can stop and go on later: with `until`, it stops after that many epochs in all
    (the trials' epochs by default), and each result covers the epochs trained and holds its
    `state`; `starts` (one per trial, None for a fresh start) go on from such states, all at
    one epoch. Stops anywhere give the numbers of one run straight through, bit for bit.
    """
    if not trials:
        return []
    x, y = checked_batch(x_data, y_data, trials)
    states = _starts(trials, starts)
    begin, epochs = states[0].epoch if states else 0, trials[0].epochs
    until = epochs if until is None else until
    if not begin < until <= epochs:
        raise ValueError(f"until = {until}: expected an epoch after the start ({begin}) and "
                         f"at most the trials' epochs ({epochs})")
    trainer = _BatchTrainer(x, y, list(trials))
    if validation is not None:
        trainer.held_out = (np.ascontiguousarray(validation[0], dtype=np.float64),
                            np.ascontiguousarray(validation[1], dtype=np.float64))
    if states:
        trainer.start_from(states)
    return trainer.run(on_epoch, until)


def _starts(trials: Sequence[TrialParams], starts: Sequence[TrainState | None] | None
            ) -> list[TrainState]:
    """The states the trials go on from, in their order; [] for all fresh. Trials of one
    call step together, so they must stand at one epoch (and so at one update step)."""
    if starts is None:
        return []
    if len(starts) != len(trials):
        raise ValueError(f"{len(starts)} starts for {len(trials)} trials")
    epochs = sorted({0 if start is None else start.epoch for start in starts})
    if len(epochs) > 1:
        raise ValueError("the trials of one call must start at the same epoch, got epochs "
                         + ", ".join(map(str, epochs)))
    states = [start for start in starts if start is not None]
    if len({(state.steps, state.seen) for state in states}) > 1:
        raise ValueError(f"the trials' states at epoch {epochs[0]} disagree on the update "
                         "steps taken")
    return states


class NumpyEngine:
    """The default engine: bit for bit the plain loop, on NumPy alone."""

    name = "numpy"
    train_batch = staticmethod(train_batch)


class _Packed:
    """One flat buffer holding an array per layer and group, views of shape (B_g, ...).

    Layer by layer, so each layer's arrays form one contiguous run too: an elementwise
    operation on `data` or on `layers[l]` covers every network of the batch in one call.
    """

    def __init__(self, shapes: Sequence[Sequence[tuple[int, ...]]], dtype: type = np.float64
                 ) -> None:
        self.shapes = shapes
        total = sum(math.prod(shape) for layer in shapes for shape in layer)
        self.data: NDArray[Any] = np.zeros(total, dtype=dtype)
        self.views: list[list[NDArray[Any]]] = []  # [layer][group] -> (B_g, ...)
        self.layers: list[NDArray[Any]] = []  # [layer] -> flat run of all groups
        start = 0
        for layer in shapes:
            layer_start = start
            views = []
            for shape in layer:
                size = math.prod(shape)
                views.append(self.data[start : start + size].reshape(shape))
                start += size
            self.views.append(views)
            self.layers.append(self.data[layer_start:start])

    def like(self, dtype: type = np.float64) -> _Packed:
        return _Packed(self.shapes, dtype)


@dataclass
class _StepBuffers:
    """Scratch arrays for update steps of n rows, allocated once and reused every step."""

    outs: _Packed  # per layer: its output, (B_g, n, fan_out)
    deltas: _Packed  # per layer: d error / d pre-activation, (B_g, n, fan_out)
    scratch: _Packed  # per layer: room for an activation's derivative
    mask: _Packed  # per layer: room for a comparison (relu)
    inputs: list[list[Array]]  # with bias, per layer > 0 and group: input and ones column
    backs: list[list[Array]]  # with bias, per layer > 0 and group: delta @ w.T, (B_g, n, in)
    err: Array  # (B, n * outputs)
    square: Array  # (B, n * outputs)
    dropped: _Packed | None = None  # with dropout, per hidden layer: its output times scales
    scales: _Packed | None = None  # per hidden layer: dropout's factors, 0 or 1 / (1 - p)

    @property
    def ins(self) -> _Packed:
        """What each layer passes on to the next: its output, or that output dropped out."""
        return self.dropped if self.dropped is not None else self.outs


class _Directions:
    """Counts, per weight, the steps whose update direction differs from the step before.

    Directions are buffered and compared in bulk, so a step costs one operation, not three.
    """

    def __init__(self, changes: NDArray[np.int64]) -> None:
        self.changes = changes  # (N,) the counts so far
        self.rows = max(1, min(64, DIRECTION_BYTES // max(1, changes.size)))
        self.buffer = np.zeros((self.rows + 1, changes.size), dtype=bool)  # row 0: last seen
        self.filled = 0
        self.started = False

    def add(self, grads: Array) -> None:
        np.less(grads, 0, out=self.buffer[self.filled + 1])  # the update goes up: -grad > 0
        self.filled += 1
        if self.filled == self.rows:
            self.flush()

    def resume(self, up: NDArray[np.bool_], seen: bool) -> None:
        """Go on from the last step's directions `up` (N,), seen or not yet any."""
        self.buffer[0] = up
        self.started = seen

    def flush(self) -> None:
        if self.filled == 0:
            return
        skip = 0 if self.started else 1  # the very first step has nothing to differ from
        now = self.buffer[1 + skip : 1 + self.filled]  # (steps, N)
        before = self.buffer[skip : self.filled]  # (steps, N)
        if len(now):
            self.changes += (now != before).sum(axis=0)
        self.buffer[0] = self.buffer[self.filled]
        self.started = True
        self.filled = 0


def _backprop(
    deriv: ArrayForm | None, back: Array, out: Array, result: Array, scratch: Array, mask: Mask
) -> None:
    """result = back * f'(out), the derivative from the table, written into the buffers."""
    if deriv is not None:
        np.multiply(back, deriv(out, scratch, mask), out=result)
    elif result is not back:
        result[...] = back


class _BatchTrainer:
    """State of one batch in training; split out so each phase reads on its own."""

    def __init__(self, x: Array, y: Array, trials: list[TrialParams]) -> None:
        first = trials[0]
        self.x, self.y, self.first = x, y, first
        self.B = len(trials)
        self.rows, self.n_outputs = y.shape
        self.bias = first.bias
        self.step_rows = first.rows_per_step(self.rows)
        self.depth = len(first.hidden) + 1  # weight matrices
        n_inputs = x.shape[1]

        # Trials of equal layer sizes sit next to each other along the batch axis ("slots").
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, trial in enumerate(trials):
            groups.setdefault(trial.hidden, []).append(index)
        order = [index for members in groups.values() for index in members]
        self.trials = [trials[i] for i in order]
        self.slot_of = {index: slot for slot, index in enumerate(order)}
        self.bounds: list[tuple[int, int]] = []  # per group: its slots [start, stop)
        self.units: list[list[int]] = []  # per group: units per layer, input first
        self.order = order  # the trial at each slot
        for members in groups.values():
            start = self.bounds[-1][1] if self.bounds else 0
            self.bounds.append((start, start + len(members)))
            self.units.append([n_inputs, *trials[members[0]].hidden, self.n_outputs])
        self.group_of = [g for g, (lo, hi) in enumerate(self.bounds) for _ in range(lo, hi)]

        per_group = [weight_shapes(self.trials[lo], n_inputs, self.n_outputs)
                     for lo, _ in self.bounds]
        shapes = [[(hi - lo, *per_group[g][layer]) for g, (lo, hi) in enumerate(self.bounds)]
                  for layer in range(self.depth)]
        self.weights = _Packed(shapes)  # views (B_g, fan_in, fan_out)
        self.grads = self.weights.like()
        self.changes = self.weights.like(np.int64)
        self.optimizer, self.decay = first.optimizer, first.weight_decay > 0
        # Each trial's settings at each of its weights, so an update is one operation for all.
        settings: dict[str, Callable[[TrialParams], float]] = {"alpha": lambda t: t.alpha}
        if self.decay:
            settings["weight_decay"] = lambda t: t.weight_decay
        if self.optimizer == "momentum":
            settings["momentum"] = lambda t: t.momentum
        if MEMORIES[self.optimizer] == 2:  # adam, adamw
            settings.update(beta1=lambda t: t.beta1, beta2=lambda t: t.beta2,
                            rest1=lambda t: 1 - t.beta1, rest2=lambda t: 1 - t.beta2,
                            eps=lambda t: t.eps)
        self.setting = {name: self.weights.like() for name in settings}
        for slot, trial in enumerate(self.trials):
            g, i = self.group_of[slot], slot - self.bounds[self.group_of[slot]][0]
            for layer, w in enumerate(initial_weights(trial, n_inputs, self.n_outputs)):
                self.weights.views[layer][g][i] = w
                for name, of in settings.items():
                    self.setting[name].views[layer][g][i] = of(trial)
        self.alpha = self.setting["alpha"]
        # The optimizer's memory (momentum's velocity, Adam's moments, beta ** t as running
        # products) and scratch for the update, flat (N,) like the weights.
        self.memory = [self.weights.like() for _ in range(
            MEMORIES[self.optimizer])]  # views (B_g, in, out)
        self.powers = [self.weights.like() for _ in range(2 if len(self.memory) == 2 else 0)]
        for power in self.powers:  # beta1 ** t and beta2 ** t at every weight
            power.data[...] = 1.0
        self.work = np.empty((2, self.weights.data.size))  # (2, N)
        self.tolerance = np.array([t.tolerance for t in self.trials])  # (B,)
        self.buffers: dict[int, _StepBuffers] = {}
        self.dropout = first.dropout > 0 and self.depth > 1
        self.seeds = np.array([t.seed for t in self.trials], dtype=np.uint64)  # (B,)
        self.rates = np.array([t.dropout for t in self.trials])  # (B,)
        self.step_count = 0  # update steps so far: dropout's masks are drawn per step
        self.held_out: tuple[Array, Array] | None = None  # validation (x, y)
        self.active = np.ones(self.B, dtype=bool)
        # Diverged trials' networks as they froze: weights and direction changes per layer.
        self.frozen: dict[int, tuple[list[Array], list[NDArray[np.int64]]]] = {}
        self.starts: list[TrainState] | None = None  # in slot order, when going on

    def start_from(self, states: Sequence[TrainState]) -> None:
        """Go on from each trial's state (in the order of the trials): its network and what
        its updates remember; a diverged one stays frozen as it was. run() takes the rest
        (the log, the direction last seen, the shuffle) from `self.starts`."""
        self.starts = [states[index] for index in self.order]
        self.step_count = self.starts[0].steps
        for slot, state in enumerate(self.starts):
            self._check(slot, state)
            g, i = self.group_of[slot], slot - self.bounds[self.group_of[slot]][0]
            for layer in range(self.depth):
                self.weights.views[layer][g][i] = state.weights[layer]
                self.changes.views[layer][g][i] = state.changes[layer]
                kept = (state.first, state.second)[:len(self.memory)]
                for memory, values in zip(self.memory, kept, strict=True):
                    memory.views[layer][g][i] = values[layer]
                powers = (state.beta1_t, state.beta2_t)[:len(self.powers)]
                for power, value in zip(self.powers, powers, strict=True):
                    power.views[layer][g][i] = value
            if state.diverged >= 0:
                self.frozen[slot] = ([np.array(w) for w in state.weights],
                                     [np.array(c) for c in state.changes])
                self._zero(slot)
                self.active[slot] = False

    def _check(self, slot: int, state: TrainState) -> None:
        """A state fits its trial's network on this data, layer by layer."""
        memories = {"first": len(self.memory) > 0, "second": len(self.memory) > 1}
        for layer, w in enumerate(self._weights_of(slot)):
            for name in ("weights", "changes", "up", *memories):
                arrays = getattr(state, name)
                if name in memories and not memories[name]:
                    if arrays:
                        raise ValueError(f"{name}: a memory the {self.optimizer} optimizer "
                                         "does not keep")
                    continue
                if len(arrays) != self.depth or arrays[layer].shape != w.shape:
                    got = arrays[layer].shape if layer < len(arrays) else "nothing"
                    raise ValueError(f"{name}_{layer}: expected shape {w.shape} for this "
                                     f"network on this data, got {got}")

    def _steps(self, order: NDArray[np.intp]) -> list[tuple[Array, Array]]:
        """Each update step's inputs (B, n, fan_in) and targets, for row order (B, rows)."""
        x = with_bias_column(self.x) if self.bias else self.x
        xs, ys = x[order], self.y[order]  # (B, rows, fan_in), (B, rows, outputs)
        return [(np.ascontiguousarray(xs[:, s : s + self.step_rows]),
                 np.ascontiguousarray(ys[:, s : s + self.step_rows]))
                for s in range(0, self.rows, self.step_rows)]

    def _buffers_for(self, n: int) -> _StepBuffers:
        if n not in self.buffers:
            groups = range(len(self.bounds))
            sizes = [hi - lo for lo, hi in self.bounds]
            outs = _Packed([[(sizes[g], n, self.units[g][layer + 1]) for g in groups]
                            for layer in range(self.depth)])
            inputs: list[list[Array]] = [[] for _ in range(self.depth)]
            if self.bias:
                for layer in range(1, self.depth):
                    inputs[layer] = [np.ones((sizes[g], n, self.units[g][layer] + 1))
                                     for g in groups]  # the last column stays 1
            self.buffers[n] = _StepBuffers(
                outs=outs, deltas=outs.like(), scratch=outs.like(), mask=outs.like(np.bool_),
                inputs=inputs, backs=[[np.empty_like(a) for a in layer] for layer in inputs],
                err=np.empty((self.B, n * self.n_outputs)),
                square=np.empty((self.B, n * self.n_outputs)),
                dropped=outs.like() if self.dropout else None,
                scales=outs.like() if self.dropout else None)
        return self.buffers[n]

    def _input(self, buffers: _StepBuffers, x_step: Array, layer: int, g: int) -> Array:
        """Group g's input to a layer, (B_g, n, fan_in), bias column included."""
        if layer == 0:
            lo, hi = self.bounds[g]
            return x_step[lo:hi]
        if self.bias:
            return buffers.inputs[layer][g]
        return buffers.ins.views[layer - 1][g]

    def _step(
        self, x_step: Array, y_step: Array, sse: Array, abs_sum: Array, first_step: bool,
        directions: _Directions, scores: tuple[Array, Array] | None = None,
    ) -> None:
        """One update of every network: forward, errors, backward, directions, weights; a
        classifier's right answers and cross-entropy added to `scores` too."""
        buffers = self._buffers_for(x_step.shape[1])
        outs, deltas = buffers.outs, buffers.deltas
        weights, groups, last = self.weights.views, range(len(self.bounds)), self.depth - 1
        for layer in range(self.depth):
            for g in groups:
                np.matmul(self._input(buffers, x_step, layer, g), weights[layer][g],
                          out=outs.views[layer][g])  # (B_g, n, fan_out)
            name = self.first.output if layer == last else self.first.activation
            z = outs.layers[layer]  # every network's pre-activations, activated in place
            if name == "softmax":  # over each row's outputs: (B * n, outputs)
                softmax(z.reshape(-1, self.n_outputs), z.reshape(-1, self.n_outputs))
            else:
                TABLE[name].value(z, z, buffers.mask.layers[layer])
            if buffers.dropped is not None and buffers.scales is not None and layer < last:
                for g in groups:
                    lo, hi = self.bounds[g]
                    out = outs.views[layer][g]  # (B_g, n, units)
                    scales = buffers.scales.views[layer][g]
                    scales[...] = dropout_scales(self.seeds[lo:hi], self.step_count, layer,
                                                 out.shape[1], out.shape[2], self.rates[lo:hi])
                    np.multiply(out, scales, out=buffers.dropped.views[layer][g])
            if self.bias and layer < last:
                for g in groups:
                    buffers.inputs[layer + 1][g][..., :-1] = buffers.ins.views[layer][g]

        err, square = buffers.err, buffers.square  # (B, n * outputs)
        np.subtract(outs.layers[last].reshape(self.B, -1), y_step.reshape(self.B, -1), out=err)
        np.multiply(err, err, out=square)
        if first_step:
            np.add.reduce(square, axis=1, out=sse)
        else:
            sse += np.add.reduce(square, axis=1)
        np.abs(err, out=square)
        if first_step:
            np.add.reduce(square, axis=1, out=abs_sum)
        else:
            abs_sum += np.add.reduce(square, axis=1)
        if scores is not None:
            self._score(outs.layers[last].reshape(y_step.shape), y_step, *scores, first_step)

        _backprop(output_delta_factor(self.first.output, self.first.loss), err.reshape(-1),
                  outs.layers[last], deltas.layers[last],
                  buffers.scratch.layers[last], buffers.mask.layers[last])
        for layer in reversed(range(self.depth)):
            for g in groups:
                delta = deltas.views[layer][g]  # (B_g, n, fan_out)
                inputs_t = self._input(buffers, x_step, layer, g).transpose(0, 2, 1)
                if inputs_t.shape[2] == 1:  # one row: again one product per element
                    np.multiply(inputs_t, delta, out=self.grads.views[layer][g])
                else:
                    np.matmul(inputs_t, delta, out=self.grads.views[layer][g])  # (B_g, in, out)
                if layer > 0:
                    back = buffers.backs[layer][g] if self.bias else deltas.views[layer - 1][g]
                    w_t = weights[layer][g].transpose(0, 2, 1)  # (B_g, fan_out, fan_in)
                    if w_t.shape[1] == 1:  # a sum of one product: BLAS's number exactly
                        np.multiply(delta, w_t, out=back)  # (B_g, n, fan_in)
                    else:
                        np.matmul(delta, w_t, out=back)
                    if self.bias:
                        deltas.views[layer - 1][g][...] = back[..., :-1]
            if layer > 0:
                hidden = deltas.layers[layer - 1]
                if buffers.scales is not None:  # through the dropped units: their factor
                    np.multiply(hidden, buffers.scales.layers[layer - 1], out=hidden)
                _backprop(TABLE[self.first.activation].deriv, hidden, outs.layers[layer - 1],
                          hidden, buffers.scratch.layers[layer - 1],
                          buffers.mask.layers[layer - 1])

        grads = self.grads.data  # (N,) every weight of every network
        if self.first.reduction == "mean":
            np.divide(grads, x_step.shape[1], out=grads)
        self.step_count += 1
        moves = self._moves(grads)  # (N,)
        directions.add(moves)
        np.multiply(self.alpha.data, moves, out=moves)
        np.subtract(self.weights.data, moves, out=self.weights.data)

    def _score(self, p: Array, y: Array, right: Array, cross: Array, first_step: bool) -> None:
        """Add a step's right answers and cross-entropy (B,) from its outputs p (B, n,
        outputs), as the loop adds them to its 0.0 at an epoch's start."""
        if first_step:
            right[...] = 0.0
            cross[...] = 0.0
        output = self.first.output
        right += np.add.reduce(right_answers(p, y, output).reshape(self.B, -1), axis=1)
        cross += np.add.reduce(cross_entropy(p, y, output).reshape(self.B, -1), axis=1)

    def _moves(self, grads: Array) -> Array:
        """What each weight moves by before alpha, the operations of reference._moves in
        their order (so the numbers are the loop's): decay, then sgd, momentum or adam;
        adamw's decay after adam's ratio."""
        work, setting = self.work, self.setting
        moves: Array = work[1]  # (N,) the result, apart from the velocity itself
        if self.decay and self.optimizer != "adamw":  # coupled L2
            np.multiply(setting["weight_decay"].data, self.weights.data, out=work[0])
            np.add(grads, work[0], out=grads)
        if self.optimizer == "sgd":
            return grads
        first = self.memory[0].data  # (N,)
        if self.optimizer == "momentum":
            np.multiply(setting["momentum"].data, first, out=first)
            np.add(first, grads, out=first)
            np.copyto(moves, first)
            return moves
        second = self.memory[1].data  # (N,)
        beta1_t, beta2_t = self.powers[0].data, self.powers[1].data  # (N,) each
        np.multiply(setting["beta1"].data, first, out=first)
        np.multiply(setting["rest1"].data, grads, out=work[0])
        np.add(first, work[0], out=first)  # m = beta1 * m + (1 - beta1) * g
        np.multiply(setting["beta2"].data, second, out=second)
        np.multiply(grads, grads, out=work[0])
        np.multiply(setting["rest2"].data, work[0], out=work[0])
        np.add(second, work[0], out=second)  # v = beta2 * v + (1 - beta2) * g * g
        np.multiply(beta1_t, setting["beta1"].data, out=beta1_t)
        np.multiply(beta2_t, setting["beta2"].data, out=beta2_t)
        np.subtract(1, beta2_t, out=work[0])
        np.divide(second, work[0], out=work[0])
        np.sqrt(work[0], out=work[0])
        np.add(work[0], setting["eps"].data, out=work[0])  # sqrt(v_hat) + eps
        np.subtract(1, beta1_t, out=moves)
        np.divide(first, moves, out=moves)  # m_hat
        np.divide(moves, work[0], out=moves)
        if self.decay and self.optimizer == "adamw":  # decoupled: ratio + weight_decay * w
            np.multiply(setting["weight_decay"].data, self.weights.data, out=work[0])
            np.add(moves, work[0], out=moves)
        return moves

    def run(self, on_epoch: Callable[[int], None] | None, until: int) -> list[TrialResult]:
        """Train from the start (epoch 0, or the states' epoch) up to epoch `until`."""
        first, B = self.first, self.B
        begin = self.starts[0].epoch if self.starts else 0
        in_order = np.broadcast_to(np.arange(self.rows), (B, self.rows))
        shufflers = None
        if first.shuffle and first.descent != "full":
            shufflers = ([resumed_shuffle(state.shuffle) for state in self.starts]
                         if self.starts else [shuffle_generator(t.seed) for t in self.trials])
        steps = self._steps(in_order)
        directions = _Directions(self.changes.data)
        log = EpochLog(self.trials, self.rows * self.n_outputs, self.rows)  # slot order
        if self.held_out is not None:
            log.validating(self.held_out[1].size, len(self.held_out[1]))
        if self.starts:
            log.resume(self.starts)
            directions.resume(self._packed_up(self.starts), self.starts[0].seen)

        chunk = min(EPOCH_CHUNK, until - begin)
        sse_rows = np.zeros((chunk, B))  # (chunk, B) each epoch's sum of squared errors
        abs_rows = np.zeros((chunk, B))  # (chunk, B) each epoch's sum of absolute errors
        # a classifier's right answers and sums of cross-entropy, (2, chunk, B); none else
        scored = np.zeros((2, chunk, B)) if first.classifier else None
        chunk_start = begin
        with np.errstate(all="ignore"):
            for epoch in range(begin, until):
                if shufflers is not None:
                    steps = self._steps(np.stack([g.permutation(self.rows) for g in shufflers]))
                sse, abs_sum = sse_rows[epoch - chunk_start], abs_rows[epoch - chunk_start]
                scores = (None if scored is None else
                          (scored[0, epoch - chunk_start], scored[1, epoch - chunk_start]))
                for index, (x_step, y_step) in enumerate(steps):
                    self._step(x_step, y_step, sse, abs_sum, index == 0, directions, scores)
                # sse >= 0, so the sum is finite unless some trial's is not (or it overflows)
                if not math.isfinite(np.add.reduce(sse)):
                    self._freeze(self.active & ~np.isfinite(sse), directions)
                if self.held_out is not None and log.is_recorded(epoch):
                    log.absorb_validation(epoch, *self._validate(*self.held_out))
                if epoch - chunk_start == chunk - 1 or epoch == until - 1:
                    size = epoch + 1 - chunk_start
                    log.absorb(sse_rows[:size], abs_rows[:size],
                               *((None, None) if scored is None else scored[:, :size]))
                    chunk_start = epoch + 1
                if on_epoch is not None:
                    on_epoch(epoch)
        directions.flush()

        finals = [self.frozen.get(slot, (self._weights_of(slot), self._changes_of(slot)))
                  for slot in range(B)]
        results = log.results([w for w, _ in finals], [c for _, c in finals])
        if until < first.epochs:
            results = self._stopped(results, log, directions, shufflers, finals)
        return [results[self.slot_of[index]] for index in range(B)]

    def _stopped(
        self, results: list[TrialResult], log: EpochLog, directions: _Directions,
        shufflers: list[np.random.Generator] | None,
        finals: list[tuple[list[Array], list[NDArray[np.int64]]]],
    ) -> list[TrialResult]:
        """The results of a stop, in slot order, each with the state to go on from; its score
        is the selected metric now: the last epoch's training metric, or the held-out rows'
        from one forward pass with the weights as they are."""
        score = log.last  # (B,)
        if self.first.select == "validation" and self.held_out is not None:
            with np.errstate(all="ignore"):  # a saturated unit overflows exp, harmlessly
                score = log.held_out_metric(*self._validate(*self.held_out))
        up = self.weights.like(np.bool_)
        up.data[...] = directions.buffer[0]  # the last step's directions, flushed
        stopped = []
        for slot, (result, (weights, changes)) in enumerate(zip(results, finals, strict=True)):
            g, i = self.group_of[slot], slot - self.bounds[self.group_of[slot]][0]
            memory = [tuple(np.array(layer[g][i]) for layer in m.views) for m in self.memory]
            state = TrainState(
                epoch=log.done,
                score=math.nan if result.diverged_epoch is not None else float(score[slot]),
                steps=self.step_count,
                weights=tuple(np.array(w) for w in weights),
                changes=tuple(np.array(c) for c in changes),
                up=tuple(np.array(layer[g][i]) for layer in up.views),
                seen=directions.started,
                first=memory[0] if memory else (),
                second=memory[1] if len(memory) > 1 else (),
                beta1_t=float(self.powers[0].views[0][g][i].flat[0]) if self.powers else 1.0,
                beta2_t=float(self.powers[1].views[0][g][i].flat[0]) if self.powers else 1.0,
                shuffle=(shuffle_state(shufflers[slot]) if shufflers is not None
                         else np.zeros(0, dtype=np.uint64)),
                **log.kept(slot))
            stopped.append(replace(result, state=state))
        return stopped

    def _packed_up(self, states: Sequence[TrainState]) -> NDArray[np.bool_]:
        """Every weight's last update direction, (N,) flat as the weights, from the states
        in slot order."""
        up = self.weights.like(np.bool_)
        for slot, state in enumerate(states):
            g, i = self.group_of[slot], slot - self.bounds[self.group_of[slot]][0]
            for layer in range(self.depth):
                up.views[layer][g][i] = state.up[layer]
        return up.data

    def _validate(self, x: Array, y: Array
                  ) -> tuple[Array, Array, Array | None, Array | None]:
        """Every network's sums of squared and absolute errors on the held-out rows, (B,)
        each, and a classifier's right answers and cross-entropy: a forward pass with the
        weights as they are, no dropout, the loop's products."""
        sse, abs_sum = np.empty(self.B), np.empty(self.B)
        output = self.first.output
        right = np.empty(self.B) if self.first.classifier else None
        cross = np.empty(self.B) if self.first.classifier else None
        for g, (lo, hi) in enumerate(self.bounds):
            stacked = np.ascontiguousarray(np.broadcast_to(x, (hi - lo, *x.shape)))  # (B_g, n, in)
            out = forward(stacked, [layer[g] for layer in self.weights.views],
                          self.first.activation, self.first.output, self.bias)[-1]
            err = (out - y).reshape(hi - lo, -1)  # (B_g, n * outputs)
            sse[lo:hi] = np.add.reduce(err * err, axis=1)
            abs_sum[lo:hi] = np.add.reduce(np.abs(err), axis=1)
            if right is not None and cross is not None:
                right[lo:hi] = np.add.reduce(right_answers(out, y, output).reshape(hi - lo, -1),
                                             axis=1)
                cross[lo:hi] = np.add.reduce(cross_entropy(out, y, output).reshape(hi - lo, -1),
                                             axis=1)
        return sse, abs_sum, right, cross

    def _weights_of(self, slot: int) -> list[Array]:
        g = self.group_of[slot]
        return [layer[g][slot - self.bounds[g][0]] for layer in self.weights.views]

    def _changes_of(self, slot: int) -> list[NDArray[np.int64]]:
        g = self.group_of[slot]
        return [layer[g][slot - self.bounds[g][0]] for layer in self.changes.views]

    def _freeze(self, bad: NDArray[np.bool_], directions: _Directions) -> None:
        """Keep diverged trials' networks as they are now; they train on as harmless zeros."""
        if not bad.any():
            return
        directions.flush()
        for slot in map(int, np.flatnonzero(bad)):
            self.frozen[slot] = ([w.copy() for w in self._weights_of(slot)],
                                 [c.copy() for c in self._changes_of(slot)])
            self._zero(slot)
        self.active &= ~bad

    def _zero(self, slot: int) -> None:
        """A frozen trial's network, alpha and moments zeroed: it trains on harmlessly."""
        g, i = self.group_of[slot], slot - self.bounds[self.group_of[slot]][0]
        for layer in range(self.depth):
            self.weights.views[layer][g][i] = 0.0
            self.alpha.views[layer][g][i] = 0.0
            for memory in self.memory:  # a lost trial's moments, nan maybe: none now
                memory.views[layer][g][i] = 0.0
