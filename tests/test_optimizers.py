"""Optimizers as a parameter: sgd (the textbooks'), momentum and Adam, with coupled weight
decay, and AdamW, Adam with the decay decoupled. The plain loop spells each rule out; the NumPy
engine equals it bit for bit; both equal the rules written independently here, and PyTorch's
optimizers where torch is installed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnsweep
from nnsweep import engines
from nnsweep.datasets import builtin
from nnsweep.errors import EngineLacks, SpecError
from nnsweep.grid import trial_id
from nnsweep.params import LATER_PARAMS, TrialParams
from nnsweep.reference import train_one
from nnsweep.spec import parse_spec
from nnsweep.trainer import train_batch

XOR = builtin("xor")
RECTANGLES = builtin("rectangles", rows=12, seed=3)


def same(a: nnsweep.TrialResult, b: nnsweep.TrialResult) -> bool:
    return (np.array_equal(a.epochs, b.epochs)
            and np.array_equal(a.errors, b.errors, equal_nan=True)
            and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(
                a.weights, b.weights, strict=True))
            and all(np.array_equal(x, y) for x, y in zip(
                a.direction_changes, b.direction_changes, strict=True))
            and a.diverged_epoch == b.diverged_epoch and a.converged_epoch == b.converged_epoch)


@given(optimizer=st.sampled_from(["sgd", "momentum", "adam", "adamw"]),
       decay=st.sampled_from([0.0, 1e-3, 0.1]),
       descent=st.sampled_from(["full", "minibatch", "stochastic"]),
       reduction=st.sampled_from(["sum", "mean"]),
       hidden=st.sampled_from([(), (3,), (4, 2)]),
       shuffle=st.booleans(), bias=st.booleans(),
       alphas=st.lists(st.sampled_from([1e-3, 0.05, 0.5, 5.0, 500.0]), min_size=1, max_size=3),
       settings=st.tuples(st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.8, 0.9]),
                          st.sampled_from([0.99, 0.999]), st.sampled_from([1e-8, 1e-3])))
def test_the_numpy_engine_is_the_loop_bit_for_bit_for_every_optimizer(
        optimizer: str, decay: float, descent: str, reduction: str, hidden: tuple[int, ...],
        shuffle: bool, bias: bool, alphas: list[float],
        settings: tuple[float, float, float, float]) -> None:
    momentum, beta1, beta2, eps = settings
    trials = [TrialParams(hidden=hidden, alpha=alpha, optimizer=optimizer, weight_decay=decay,
                          descent=descent, batch_size=5, reduction=reduction, shuffle=shuffle,
                          bias=bias, epochs=40, seed=seed, momentum=momentum, beta1=beta1,
                          beta2=beta2, eps=eps, activation="tanh", output="linear")
              for alpha in alphas for seed in (0, 1)]
    for trial, result in zip(trials, train_batch(RECTANGLES.x, RECTANGLES.y, trials),
                             strict=True):
        assert same(result, train_one(RECTANGLES.x, RECTANGLES.y, trial)), trial


def _linear_fit(params: TrialParams, steps: int) -> tuple[list[float], np.ndarray]:
    """The rules as a textbook writes them, on a network with no hidden layer and a linear
    output (gradient x.T @ (x @ w - y)), with beta ** t from pow; independent of nnsweep.
    AdamW's decay stays out of the gradient and joins the move (PyTorch's form: times alpha)."""
    x, y = RECTANGLES.x, RECTANGLES.y
    w = nnsweep.network.initial_weights(params, x.shape[1], 1)[0].copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    errors = []
    for t in range(1, steps + 1):
        err = x @ w - y
        errors.append(float((err * err).sum()))
        g = x.T @ err
        if params.optimizer != "adamw":
            g = g + params.weight_decay * w
        if params.optimizer == "sgd":
            move = g
        elif params.optimizer == "momentum":
            m = params.momentum * m + g
            move = m
        else:
            m = params.beta1 * m + (1 - params.beta1) * g
            v = params.beta2 * v + (1 - params.beta2) * g**2
            move = (m / (1 - params.beta1**t)) / (np.sqrt(v / (1 - params.beta2**t))
                                                  + params.eps)
            if params.optimizer == "adamw":
                move = move + params.weight_decay * w
        w = w - params.alpha * move
    return errors, w


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_each_rule_is_the_textbooks(optimizer: str, decay: float) -> None:
    params = TrialParams(hidden=(), output="linear", optimizer=optimizer, weight_decay=decay,
                         alpha=0.01, epochs=200, momentum=0.8, beta1=0.85, beta2=0.99,
                         seed=4, record_every=1)
    errors, w = _linear_fit(params, params.epochs)
    result = train_one(RECTANGLES.x, RECTANGLES.y, params)
    # pow against a running product, and x.T @ err against the loop's products: ulps only
    assert np.allclose(result.errors[:, 2], errors, rtol=1e-11, atol=0)
    assert np.allclose(result.weights[0], w, rtol=1e-11, atol=1e-15)


def test_adamw_without_decay_is_adam_bit_for_bit() -> None:
    adam = TrialParams(hidden=(4,), activation="relu", output="linear", optimizer="adam",
                       alpha=0.01, epochs=100, record_every=1)
    assert same(train_one(RECTANGLES.x, RECTANGLES.y, adam),
                train_one(RECTANGLES.x, RECTANGLES.y, replace(adam, optimizer="adamw")))


def test_adamw_decays_a_weight_no_gradient_reaches_by_alpha_times_decay_each_step() -> None:
    """Decoupled decay: a weight from an input that is always 0 has no gradient, so AdamW's
    moments stay 0 and it shrinks by w -= alpha * weight_decay * w alone. Coupled into Adam's
    gradient, the decay is normalized away: the weight moves by about alpha a step, for a
    decay of 1e-6 as for one of 1."""
    x = np.hstack([RECTANGLES.x, np.zeros((len(RECTANGLES.x), 1))])  # (rows, 5): a dead input
    params = TrialParams(hidden=(), output="linear", optimizer="adamw", weight_decay=0.5,
                         alpha=0.01, epochs=30, seed=3)
    start = nnsweep.network.initial_weights(params, 5, 1)[0][4, 0]
    w = start
    for _ in range(params.epochs):
        w = w - params.alpha * (params.weight_decay * w)
    assert train_one(x, RECTANGLES.y, params).weights[0][4, 0] == w
    for decay in (1e-6, 1.0):
        coupled = train_one(x, RECTANGLES.y, replace(params, optimizer="adam",
                                                      weight_decay=decay))
        moved = abs(start - coupled.weights[0][4, 0])  # about epochs * alpha
        assert moved == pytest.approx(params.epochs * params.alpha, rel=0.1)


def test_momentum_zero_is_sgd_and_the_directions_follow_the_velocity() -> None:
    plain = TrialParams(alpha=0.5, epochs=300, descent="stochastic")
    still = TrialParams(alpha=0.5, epochs=300, descent="stochastic", optimizer="momentum",
                        momentum=0.0)
    a, b = train_one(XOR.x, XOR.y, plain), train_one(XOR.x, XOR.y, still)
    assert np.array_equal(a.errors, b.errors) and a.total_direction_changes == \
        b.total_direction_changes
    heavy = train_one(XOR.x, XOR.y, TrialParams(alpha=0.5, epochs=300, descent="stochastic",
                                                 optimizer="momentum", momentum=0.95))
    # a heavy ball turns less often than the gradient it smooths
    assert heavy.total_direction_changes < a.total_direction_changes


def test_a_diverging_adam_trial_leaves_its_batch_mates_as_they_train_alone() -> None:
    calm = TrialParams(hidden=(4,), alpha=0.01, optimizer="adam", epochs=200,
                       activation="relu", output="linear")
    wild = TrialParams(hidden=(4,), alpha=1e200, optimizer="adam", epochs=200, seed=1,
                       activation="relu", output="linear")  # steps of 1e200: inf by epoch 2
    together = train_batch(XOR.x, XOR.y, [calm, wild])
    assert together[1].diverged_epoch is not None
    assert same(together[0], train_batch(XOR.x, XOR.y, [calm])[0])
    assert same(together[1], train_one(XOR.x, XOR.y, wild))


def test_trials_at_the_new_defaults_keep_the_ids_they_had() -> None:
    """An id is the sha256 of the parameters as they were before optimizers existed: the
    folders of older sweeps resume."""
    params = TrialParams(hidden=(3, 2), alpha=0.5, seed=7)
    old = {k: v for k, v in params.to_dict().items() if k not in LATER_PARAMS}
    old.update(alpha=0.5, tolerance=0.01, hidden=[3, 2])
    payload = json.dumps({"data": XOR.hash, "params": old}, sort_keys=True,
                         separators=(",", ":"))
    assert trial_id(params, XOR.hash) == hashlib.sha256(payload.encode()).hexdigest()[:12]
    assert trial_id(TrialParams(hidden=(3, 2), alpha=0.5, seed=7, optimizer="adam"),
                    XOR.hash) != trial_id(params, XOR.hash)


def test_the_grid_gives_the_same_ids_as_trial_id_with_optimizers_swept() -> None:
    spec = parse_spec('dataset = "xor"\n[grid]\noptimizer = ["sgd", "momentum", "adam"]\n'
                      "weight_decay = [0, 0.01]\nalpha = [0.1, 1]\n")
    assert [t.id for t in spec.trials()] == [trial_id(t.params, XOR.hash)
                                             for t in spec.trials()]
    assert len({t.id for t in spec.trials()}) == 12


@pytest.mark.parametrize(("text", "line"), [
    ("[params]\nmomentum = 0.5\n", '<spec>: params.momentum: only used with optimizer = '
                                   '"momentum"'),
    ("[grid]\nbeta2 = [0.9, 0.99]\n", '<spec>: grid.beta2: only used with optimizer = "adam" '
                                    'or "adamw"'),
    ("[params]\nbeta1 = 1\noptimizer = \"adam\"\n",
     "<spec>: params.beta1 = 1: expected a number from 0 up to, not including, 1"),
    ("[params]\nweight_decay = -0.1\n", "<spec>: params.weight_decay = -0.1: expected a number "
                                        ">= 0"),
    ("[params]\noptimizer = \"adm\"\n", '<spec>: params.optimizer = "adm": expected one of '
                                        '"sgd", "momentum", "adam", "adamw" (did you mean '
                                        "'adam'?)"),
])
def test_an_optimizer_setting_out_of_place_or_range_is_told(text: str, line: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec('dataset = "xor"\n' + text)
    assert raised.value.problems == [line]


def test_every_engine_installed_trains_every_optimizer_and_weight_decay_but_adamw() -> None:
    trials = [TrialParams(optimizer="adam", weight_decay=0.1), TrialParams(optimizer="momentum")]
    for engine in engines.installed():
        assert engines.lacks(engine, trials) is None
    assert engines.resolve("auto", trials) == engines.installed()[0]


def test_the_compiled_engine_does_not_train_adamw_and_auto_takes_numpy_for_it() -> None:
    trials = [TrialParams(optimizer="adam"), TrialParams(optimizer="adamw", weight_decay=1.0)]
    assert engines.lacks("numba", trials) == 'optimizer = "adamw"'
    assert engines.lacks("numpy", trials) is None
    assert engines.resolve("auto", trials) == "numpy"
    with pytest.raises(EngineLacks, match='the numba engine does not train optimizer = "adamw"'):
        engines.resolve("numba", trials)


def test_an_adam_sweep_runs_end_to_end_with_its_settings_in_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "adam.toml"
    path.write_text('dataset = "xor"\n[params]\noptimizer = "adam"\nepochs = 300\n'
                    "[grid]\nalpha = [0.01, 0.1]\nweight_decay = [0, 0.001]\n",
                    encoding="utf-8")
    results = nnsweep.run(nnsweep.load_spec(path), out=tmp_path / "out", jobs=1)
    trials = results.trials.sort_values(["alpha", "weight_decay"])
    assert list(trials["optimizer"]) == ["adam"] * 4
    assert list(trials["weight_decay"]) == [0, 0.001, 0, 0.001]
    assert list(trials["beta2"]) == [0.999] * 4
    for row in trials.itertuples():
        alone = train_one(XOR.x, XOR.y, TrialParams(optimizer="adam", epochs=300,
                                                    alpha=row.alpha,
                                                    weight_decay=row.weight_decay))
        assert row.final_error == alone.final_error


def test_pytorch_optimizers_agree_where_torch_is_installed() -> None:
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    for optimizer in ("sgd", "momentum", "adam", "adamw"):
        params = TrialParams(hidden=(3,), activation="tanh", output="linear", alpha=0.01,
                             optimizer=optimizer, weight_decay=0.01, epochs=100, seed=2,
                             momentum=0.8, record_every=1)
        ours = train_one(RECTANGLES.x, RECTANGLES.y, params)
        start = nnsweep.network.initial_weights(params, 4, 1)
        weights = [torch.tensor(w, requires_grad=True) for w in start]
        x, y = torch.tensor(RECTANGLES.x), torch.tensor(RECTANGLES.y)
        make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.01, weight_decay=0.01),
                "momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.8,
                                                      weight_decay=0.01),
                "adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01),
                "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01),
                }[optimizer]
        step = make(weights)
        for _ in range(params.epochs):
            step.zero_grad()
            loss = ((torch.tanh(x @ weights[0]) @ weights[1] - y) ** 2).sum() / 2
            loss.backward()
            step.step()
        for w, theirs in zip(ours.weights, weights, strict=True):
            assert np.allclose(w, theirs.detach().numpy(), rtol=1e-10, atol=1e-12), optimizer


@pytest.mark.parametrize("optimizer", ["momentum", "adam", "adamw"])
def test_pytorch_agrees_on_softmax_cross_entropy_in_minibatches_where_installed(
        optimizer: str) -> None:
    """Minibatches of 8 (the last one short), the loss averaged over a step's rows, sigmoid
    hidden units, a softmax over five classes, weight decay: autograd's gradient and PyTorch's
    own optimizer give the weights nnsweep's loop gives."""
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    data = builtin("modular", modulus=5)  # 25 rows, one-hot a and b -> (a + b) mod 5
    params = TrialParams(hidden=(6,), activation="sigmoid", output="softmax",
                         loss="cross_entropy", descent="minibatch", batch_size=8,
                         reduction="mean", alpha=0.05, optimizer=optimizer, momentum=0.7,
                         weight_decay=0.001, epochs=60, seed=4, record_every=1)
    ours = train_one(data.x, data.y, params)
    weights = [torch.tensor(w, requires_grad=True)
               for w in nnsweep.network.initial_weights(params, 10, 5)]
    step = {"momentum": torch.optim.SGD(weights, lr=0.05, momentum=0.7, weight_decay=0.001),
            "adam": torch.optim.Adam(weights, lr=0.05, weight_decay=0.001),
            "adamw": torch.optim.AdamW(weights, lr=0.05, weight_decay=0.001)}[optimizer]
    x, y = torch.tensor(data.x), torch.tensor(data.y)
    for _ in range(params.epochs):
        for start in range(0, len(x), 8):
            xb, yb = x[start:start + 8], y[start:start + 8]
            step.zero_grad()
            logits = torch.sigmoid(xb @ weights[0]) @ weights[1]
            loss = -(yb * torch.log_softmax(logits, dim=1)).sum() / len(xb)
            loss.backward()
            step.step()
    for w, theirs in zip(ours.weights, weights, strict=True):
        assert np.allclose(w, theirs.detach().numpy(), rtol=1e-9, atol=1e-12), optimizer
