"""One trial's resolved parameters: the single vocabulary shared by spec, grid, trainer and store.

Every parameter has a default (docs/design.md lists them), so a trial is fully described by the
values that differ from it. Execution choices (jobs, engine, backend) are deliberately absent:
they never change a trial's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

Activation = Literal["sigmoid", "relu", "tanh", "linear", "leaky_relu", "softplus"]
Output = Literal["sigmoid", "relu", "tanh", "linear", "leaky_relu", "softplus", "softmax"]
Loss = Literal["squared", "cross_entropy"]
Descent = Literal["full", "minibatch", "stochastic"]
Reduction = Literal["sum", "mean"]
Init = Literal["uniform", "normal", "xavier", "he", "given"]
Metric = Literal["mae", "mse", "sse", "accuracy", "cross_entropy"]
Select = Literal["train", "validation"]
Optimizer = Literal["sgd", "momentum", "adam", "adamw"]

ACTIVATIONS: tuple[str, ...] = get_args(Activation)
OUTPUTS: tuple[str, ...] = get_args(Output)
LOSSES: tuple[str, ...] = get_args(Loss)
DESCENTS: tuple[str, ...] = get_args(Descent)
REDUCTIONS: tuple[str, ...] = get_args(Reduction)
INITS: tuple[str, ...] = get_args(Init)
METRICS: tuple[str, ...] = get_args(Metric)
SELECTS: tuple[str, ...] = get_args(Select)
# Metrics measured on classifiers only (loss = "cross_entropy"); a higher accuracy is better.
CLASS_METRICS: tuple[str, ...] = ("accuracy", "cross_entropy")
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)

# Given weights: one matrix per layer, each a tuple of rows, as written in the sweep file.
GivenWeights = tuple[tuple[tuple[float, ...], ...], ...]


@dataclass(frozen=True, slots=True)  # slots: a million trials' parameters stay small
class TrialParams:
    """Everything that decides a trial's numbers, apart from the dataset."""

    hidden: tuple[int, ...] = (4,)
    activation: str = "sigmoid"
    output: str = "sigmoid"
    alpha: float = 0.1
    descent: str = "full"
    batch_size: int = 8
    reduction: str = "sum"
    epochs: int = 1000
    seed: int = 0
    init: str = "uniform"
    weights: GivenWeights | None = field(default=None, repr=False)
    record_every: int = 0  # 0 means "epochs // 1000, at least 1"
    metric: str = "mae"
    tolerance: float = 0.01
    bias: bool = False
    shuffle: bool = False
    # How a gradient becomes an update (reference.py spells each rule out): sgd (w -= alpha *
    # g, the textbooks'), momentum (v = momentum * v + g; w -= alpha * v), adam (Kingma and
    # Ba, bias-corrected) or adamw (Loshchilov and Hutter: adam, its decay decoupled);
    # weight_decay adds weight_decay * w to g first (coupled L2), or with adamw to the move.
    optimizer: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    # Inverted dropout on every hidden layer while training: each unit is zeroed with this
    # probability and the kept ones scaled by 1 / (1 - dropout); network.dropout_scales.
    dropout: float = 0.0
    # What the output's error is measured by: squared (SSE/2, the textbooks') or cross_entropy
    # (with softmax over the outputs, or sigmoid per output), whose output delta is p - y.
    loss: str = "squared"
    # Which split's metric decides convergence, final and best error: the training rows'
    # (each epoch's own forward passes) or the held-out rows' (at the recorded epochs).
    select: str = "train"

    @property
    def record_step(self) -> int:
        """The history's stride in epochs, with the default resolved."""
        if self.record_every > 0:
            return self.record_every
        return max(1, self.epochs // 1000)

    def recorded_epochs(self) -> list[int]:
        """Epochs kept in the history: 0, r, 2r, ... and the last."""
        epochs = list(range(0, self.epochs, self.record_step))
        if epochs[-1] != self.epochs - 1:
            epochs.append(self.epochs - 1)
        return epochs

    def rows_per_step(self, rows: int) -> int:
        """How many data rows one update step sees."""
        if self.descent == "full":
            return rows
        if self.descent == "stochastic":
            return 1
        return min(self.batch_size, rows)

    @property
    def classifier(self) -> bool:
        """Trained as a classifier: accuracy and cross-entropy are measured (NaN elsewhere)."""
        return self.loss == "cross_entropy"

    def to_dict(self) -> dict[str, Any]:
        """Every field by name; the values are immutable, so no deep copy (asdict) is needed:
        building a million trial ids spent most of its time copying tuples."""
        return {name: getattr(self, name) for name in PARAM_NAMES}


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in fields(TrialParams))
DEFAULTS: dict[str, Any] = TrialParams().to_dict()
# Parameters added after trial ids were first given out: at their defaults they are left out of
# a trial's id, so the trials of older sweeps keep theirs (and their results folders resume).
LATER_PARAMS: tuple[str, ...] = ("optimizer", "momentum", "beta1", "beta2", "eps",
                                 "weight_decay", "dropout", "loss", "select")
# The optimizers each of their settings belongs to (weight decay belongs to every one).
OPTIMIZER_OF: dict[str, tuple[str, ...]] = {"momentum": ("momentum",),
                                            "beta1": ("adam", "adamw"),
                                            "beta2": ("adam", "adamw"), "eps": ("adam", "adamw")}
# How many moments per weight each optimizer remembers: momentum's velocity; Adam's first and
# second.
MEMORIES: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


def hidden_text(hidden: tuple[int, ...]) -> str:
    """Layer sizes as stored in tables: "4", "3-2", "" for none."""
    return "-".join(str(size) for size in hidden)


def parse_hidden_text(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")) if text else ()


def hidden_order(text: str) -> tuple[int, tuple[int, ...]]:
    """The reading order of hidden values in every table and figure: by depth, then by the
    layer sizes as numbers ("" < "4" < "16" < "3-2" < "8-8"), never as text ("16" < "4")."""
    sizes = parse_hidden_text(text)
    return len(sizes), sizes
