"""The plain one-network loop, written as the textbooks write it.

It is the oracle the batched trainer is tested against and the baseline the benchmarks
measure speed-ups from, so it stays deliberately simple: 2-D arrays, one step at a time. It
shares with the engines only what defines a trial (network.py: the activation table, starting
weights, row order) and what its numbers mean (result.py), never any engine's code.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from nnsweep.network import (
    TABLE,
    Array,
    activate,
    cross_entropy,
    dropout_scales,
    forward,
    initial_weights,
    output_delta_factor,
    right_answers,
    shuffle_generator,
    with_bias_column,
)
from nnsweep.params import TrialParams
from nnsweep.result import EpochLog, TrialResult


def train_one(x_data: ArrayLike, y_data: ArrayLike, params: TrialParams,
              validation: tuple[ArrayLike, ArrayLike] | None = None) -> TrialResult:
    """One network trained on (x, y); with `validation` (x, y), its errors on those rows at
    every recorded epoch too, from the weights at the end of the epoch."""
    x = np.asarray(x_data, dtype=np.float64)  # (rows, inputs)
    y = np.asarray(y_data, dtype=np.float64)  # (rows, outputs)
    rows, n_outputs = y.shape
    weights = initial_weights(params, x.shape[1], n_outputs)
    output_deriv = output_delta_factor(params.output, params.loss)
    hidden_deriv = TABLE[params.activation].deriv
    step_rows = params.rows_per_step(rows)
    shuffler = (shuffle_generator(params.seed)
                if params.shuffle and params.descent != "full" else None)
    steps = _slices(x, y, np.arange(rows), step_rows)

    changes = [np.zeros(w.shape, dtype=np.int64) for w in weights]
    state = _State([np.zeros(w.shape) for w in weights], [np.zeros(w.shape) for w in weights])
    step = 0  # update steps so far: dropout's masks are drawn per step
    previous_up: list[np.ndarray] | None = None
    sse_rows: list[float] = []  # each epoch's sum of squared errors
    abs_rows: list[float] = []  # and of absolute errors
    right_rows: list[float] = []  # a classifier's right answers
    cross_rows: list[float] = []  # and its sum of cross-entropy
    log = EpochLog([params], rows * n_outputs, rows)
    if validation is not None:
        x_val = np.asarray(validation[0], dtype=np.float64)  # (held-out rows, inputs)
        y_val = np.asarray(validation[1], dtype=np.float64)  # (held-out rows, outputs)
        log.validating(y_val.size, len(y_val))

    with np.errstate(all="ignore"):
        for _ in range(params.epochs):
            if shuffler is not None:
                steps = _slices(x, y, shuffler.permutation(rows), step_rows)
            sse = 0.0
            abs_sum = 0.0
            right = 0.0
            cross = 0.0
            for x_step, y_step in steps:
                outs, ins, scales = _forward(x_step, weights, params, step)
                step += 1
                err = outs[-1] - y_step  # (n, outputs)
                sse += (err * err).sum()
                abs_sum += np.abs(err).sum()
                if params.classifier:
                    right += right_answers(outs[-1], y_step, params.output).sum()
                    cross += cross_entropy(outs[-1], y_step, params.output).sum()

                delta = err * output_deriv(outs[-1]) if output_deriv else err
                grads: list[Array] = [np.empty(0)] * len(weights)
                for layer in reversed(range(len(weights))):
                    inputs = with_bias_column(ins[layer]) if params.bias else ins[layer]
                    grads[layer] = np.matmul(inputs.T, delta)  # (fan_in, fan_out)
                    if layer > 0:
                        back = np.matmul(delta, weights[layer].T)  # (n, fan_in)
                        if params.bias:
                            back = np.ascontiguousarray(back[:, :-1])
                        if scales:  # through the dropped units: their factor, 0 or 1/(1-p)
                            back = back * scales[layer - 1]
                        delta = back * hidden_deriv(outs[layer]) if hidden_deriv else back
                if params.reduction == "mean":
                    grads = [g / len(x_step) for g in grads]
                if params.weight_decay > 0 and params.optimizer != "adamw":  # coupled L2
                    grads = [g + params.weight_decay * w for g, w in zip(grads, weights,
                                                                         strict=True)]
                moves = _moves(params, grads, state, weights)

                up = [m < 0 for m in moves]  # the direction of the update, -alpha * move > 0
                if previous_up is not None:
                    for count, now, before in zip(changes, up, previous_up, strict=True):
                        count += now != before
                previous_up = up
                for w, m in zip(weights, moves, strict=True):
                    w -= params.alpha * m

            sse_rows.append(sse)
            abs_rows.append(abs_sum)
            right_rows.append(right)
            cross_rows.append(cross)
            if not math.isfinite(sse):  # diverged: the log stops the history before it
                break
            if validation is not None and log.is_recorded(len(sse_rows) - 1):
                out = forward(x_val, weights, params.activation, params.output, params.bias)[-1]
                err = out - y_val  # (held-out rows, outputs)
                held_right = held_cross = None
                if params.classifier:
                    held_right = np.array([float(right_answers(out, y_val, params.output).sum())])
                    held_cross = np.array([cross_entropy(out, y_val, params.output).sum()])
                log.absorb_validation(len(sse_rows) - 1, np.array([(err * err).sum()]),
                                      np.array([np.abs(err).sum()]), held_right, held_cross)

    log.absorb(np.array(sse_rows)[:, None], np.array(abs_rows)[:, None],  # (epochs, 1) each
               np.array(right_rows)[:, None] if params.classifier else None,
               np.array(cross_rows)[:, None] if params.classifier else None)
    return log.results([weights], [changes])[0]


def _forward(x: Array, weights: list[Array], params: TrialParams, step: int
             ) -> tuple[list[Array], list[Array], list[Array]]:
    """Every layer's output (the input first), what the next layer takes in (the same, or
    with dropout the hidden outputs times their factors), and those factors per hidden layer."""
    if params.dropout == 0 or len(weights) == 1:
        outs = forward(x, weights, params.activation, params.output, params.bias)
        return outs, outs, []
    outs, ins, scales = [x], [x], []
    for layer, w in enumerate(weights):
        inputs = with_bias_column(ins[-1]) if params.bias else ins[-1]
        last = layer == len(weights) - 1
        out = activate(params.output if last else params.activation, np.matmul(inputs, w))
        outs.append(out)  # (n, fan_out)
        if last:
            ins.append(out)
        else:
            rows, units = out.shape
            scales.append(dropout_scales(np.array([params.seed], dtype=np.uint64), step, layer,
                                         rows, units, np.array([params.dropout]))[0])
            ins.append(out * scales[-1])  # (n, fan_out)
    return outs, ins, scales


class _State:
    """The optimizer's memory: momentum's velocity or Adam's first moment, Adam's second
    moment, and beta1 ** t, beta2 ** t kept as running products."""

    def __init__(self, first: list[Array], second: list[Array]) -> None:
        self.first, self.second = first, second
        self.beta1_t, self.beta2_t = 1.0, 1.0


def _moves(params: TrialParams, grads: list[Array], state: _State, weights: list[Array]
           ) -> list[Array]:
    """What each weight moves by before alpha: the gradient (sgd), the velocity (momentum),
    Adam's ratio of bias-corrected moments, or AdamW's: that ratio plus weight_decay * w.

    AdamW is Loshchilov and Hutter's decoupled decay (their Algorithm 2) in PyTorch's form:
    w -= alpha * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w), with w before the step. The
    paper leaves the decay out of alpha (w -= eta * (alpha * ratio + lambda * w), eta the
    schedule); PyTorch, and so nnsweep, multiply it by the learning rate: w -= alpha * wd * w.
    The decay never enters the moments, so Adam's normalization does not scale it down where
    the gradients are large, as it does coupled L2's."""
    if params.optimizer == "sgd":
        return grads
    if params.optimizer == "momentum":
        state.first = [params.momentum * v + g for v, g in zip(state.first, grads, strict=True)]
        return state.first
    b1, b2 = params.beta1, params.beta2
    state.first = [b1 * m + (1 - b1) * g for m, g in zip(state.first, grads, strict=True)]
    state.second = [b2 * v + (1 - b2) * (g * g) for v, g in zip(state.second, grads,
                                                                  strict=True)]
    state.beta1_t *= b1
    state.beta2_t *= b2
    ratios = [(m / (1 - state.beta1_t)) / (np.sqrt(v / (1 - state.beta2_t)) + params.eps)
              for m, v in zip(state.first, state.second, strict=True)]
    if params.optimizer == "adamw" and params.weight_decay > 0:
        return [r + params.weight_decay * w for r, w in zip(ratios, weights, strict=True)]
    return ratios


def _slices(x: Array, y: Array, order: np.ndarray, step_rows: int) -> list[tuple[Array, Array]]:
    """The (x, y) rows of each update step of one epoch, in the order given."""
    return [(x[order[start : start + step_rows]], y[order[start : start + step_rows]])
            for start in range(0, len(order), step_rows)]
