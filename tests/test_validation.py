"""Held-out data: `[dataset] validation = f` holds out round(f * rows) rows, the first of
RandomState(split_seed)'s permutation, each part in the rows' original order; or
`validation_csv` names a file of them. Every engine reports each trial's errors on those rows
at its recorded epochs, from one forward pass (no dropout) with the weights at the epoch's end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nnsweep
from nnsweep import engines, store, tables
from nnsweep.datasets import Dataset, builtin
from nnsweep.errors import DataError, SpecError
from nnsweep.network import predict
from nnsweep.params import TrialParams
from nnsweep.reference import train_one
from nnsweep.spec import parse_spec
from nnsweep.trainer import train_batch

MOONS = builtin("moons", rows=40, noise=0.2, seed=4)


@pytest.mark.parametrize(("fraction", "seed"), [(0.25, 0), (0.5, 3), (0.1, 9)])
def test_a_split_holds_out_the_first_rows_of_a_seeded_permutation_in_their_order(
        fraction: float, seed: int) -> None:
    held = MOONS.split(fraction, seed)
    order = np.random.RandomState(seed).permutation(MOONS.rows)
    out = np.sort(order[: round(fraction * MOONS.rows)])
    kept = np.setdiff1d(np.arange(MOONS.rows), out)
    assert held.x_val is not None and held.y_val is not None
    assert np.array_equal(held.x_val, MOONS.x[out]) and np.array_equal(held.y_val, MOONS.y[out])
    assert np.array_equal(held.x, MOONS.x[kept]) and np.array_equal(held.y, MOONS.y[kept])


def test_the_split_is_part_of_the_datas_identity_and_no_split_hashes_as_before() -> None:
    assert MOONS.split(0.25, 0).hash != MOONS.hash
    assert MOONS.split(0.25, 0).hash != MOONS.split(0.25, 1).hash
    assert MOONS.split(0.25, 0).hash == MOONS.split(0.25, 0).hash
    plain = Dataset("again", MOONS.x, MOONS.y)
    assert plain.hash == MOONS.hash and plain.validation is None


def test_a_split_must_leave_rows_on_both_sides() -> None:
    with pytest.raises(DataError, match=r"validation = 0.1 holds out 0 of the 4 rows of xor"):
        builtin("xor").split(0.1)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("bias", [False, True])
def test_validation_errors_are_the_loops_bit_for_bit(output: str, dropout: float,
                                                      bias: bool) -> None:
    data = (MOONS if output == "sigmoid" else builtin("modular", modulus=5)).split(0.3, 1)
    trials = [TrialParams(hidden=hidden, alpha=alpha, output=output, loss="cross_entropy",
                          dropout=dropout, bias=bias, activation="tanh", epochs=60,
                          record_every=7, seed=seed, descent="minibatch", batch_size=6)
              for hidden in ((4,), (9,)) for alpha in (0.05, 1e6) for seed in (0, 1)]
    for trial, result in zip(trials, train_batch(data.x, data.y, trials,
                                                 validation=data.validation), strict=True):
        alone = train_one(data.x, data.y, trial, data.validation)
        assert result.validation is not None and alone.validation is not None
        assert np.array_equal(result.validation, alone.validation, equal_nan=True), trial
        assert result.validation.shape == (len(result.epochs), 5)  # accuracy, cross-entropy


def test_the_last_validation_row_is_the_final_networks_error_on_the_held_out_rows() -> None:
    data = MOONS.split(0.25)
    params = TrialParams(hidden=(6,), alpha=0.5, epochs=200, activation="tanh", metric="mse")
    result = train_one(data.x, data.y, params, data.validation)
    assert data.x_val is not None and data.y_val is not None and result.validation is not None
    out = predict(data.x_val, result.weights, "tanh", "sigmoid", False)
    err = out - data.y_val
    assert result.validation[-1, 2] == pytest.approx((err * err).sum(), rel=1e-12)
    assert result.final_validation_error == result.validation[-1, 1]
    best, epoch = result.best_validation
    assert best == result.validation[:, 1].min() and epoch in result.epochs.tolist()


def test_a_diverged_trial_has_no_final_validation_error() -> None:
    data = MOONS.split(0.25)
    wild = TrialParams(hidden=(4,), activation="relu", output="linear", alpha=1e10, epochs=30,
                       record_every=1)
    result = train_one(data.x, data.y, wild, data.validation)
    assert result.diverged_epoch is not None and np.isnan(result.final_validation_error)
    assert result.validation is not None and len(result.validation) == len(result.epochs)


def test_held_out_rows_in_the_sweep_file(tmp_path: Path) -> None:
    spec = parse_spec('[dataset]\nname = "moons"\nrows = 40\nvalidation = 0.25\n'
                      "split_seed = 2\n")
    assert spec.dataset.rows == 30 and spec.dataset.x_val is not None
    assert len(spec.dataset.x_val) == 10
    assert "validation = 0.25\nsplit_seed = 2\n" in spec.text
    assert parse_spec(spec.text).dataset.hash == spec.dataset.hash
    (tmp_path / "train.csv").write_text("a,b,y\n0,1,1\n1,0,1\n1,1,0\n", encoding="utf-8")
    (tmp_path / "val.csv").write_text("a,b,y\n0,0,0\n", encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text('[dataset]\ncsv = "train.csv"\ntarget = "y"\nvalidation_csv = "val.csv"\n',
                    encoding="utf-8")
    from_files = parse_spec(path.read_text(), source=path)
    assert from_files.dataset.x_val is not None
    assert from_files.dataset.x_val.tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize(("table", "line"), [
    ('name = "moons"\nsplit_seed = 3', "<spec>: dataset.split_seed: only used with validation "
                                       "= a fraction of the rows"),
    ('name = "xor"\nvalidation = 0.1', "<spec>: dataset.validation = 0.1 holds out 0 of the 4 "
                                       "rows of xor; expected at least one row on each side"),
    ('name = "moons"\nvalidation = 1', "<spec>: dataset.validation = 1: expected the fraction of "
                                       "the rows held out, a number above 0 and below 1"),
    ('name = "moons"\nvalidation_csv = "v.csv"', '<spec>: dataset.validation_csv: only used '
                                                 'with csv = "..."'),
])
def test_held_out_rows_asked_for_wrongly_are_told(table: str, line: str) -> None:
    with pytest.raises((SpecError, DataError)) as raised:
        parse_spec(f"[dataset]\n{table}\n")
    assert str(raised.value) == line


def test_validation_csv_of_other_columns_is_told(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b,y\n0,1,1\n", encoding="utf-8")
    (tmp_path / "val.csv").write_text("a,y\n0,0\n", encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text('[dataset]\ncsv = "train.csv"\ntarget = "y"\nvalidation_csv = "val.csv"\n',
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"val.csv: 1 inputs and 1 outputs; the training data "
                                        r"\(train.csv\) has 2 and 1"):
        parse_spec(path.read_text(), source=path)


def test_every_engine_installed_trains_with_held_out_rows() -> None:
    for engine in engines.installed():
        assert engines.lacks(engine, [TrialParams()], validating=True) is None
    assert engines.resolve("auto", [TrialParams()], validating=True) == engines.installed()[0]


def test_a_sweep_with_held_out_rows_keeps_them_in_history_trials_and_journal(
        tmp_path: Path) -> None:
    path = tmp_path / "held.toml"
    path.write_text('[dataset]\nname = "moons"\nrows = 40\nvalidation = 0.25\n[params]\n'
                    'activation = "tanh"\nhidden = 6\nepochs = 120\nrecord_every = 10\n'
                    "[grid]\nalpha = [0.1, 1]\n", encoding="utf-8")
    spec = nnsweep.load_spec(path)
    results = nnsweep.run(spec, out=tmp_path / "out", jobs=1)
    history, trials = results.history, results.trials.set_index("trial")
    assert set(history["split"]) == {"train", "validation"}
    assert results.manifest["dataset"]["rows"] == 30  # the report tells them from here
    assert results.manifest["dataset"]["held_out"] == 10
    data = spec.dataset
    for trial in spec.trials():
        alone = train_one(data.x, data.y, trial.params, data.validation)
        held = history[(history["trial"] == trial.id) & (history["split"] == "validation")]
        assert alone.validation is not None
        assert np.array_equal(held[["mae", "mse", "sse"]].to_numpy(), alone.validation)
        assert np.array_equal(held["epoch"].to_numpy(), alone.epochs)
        best, epoch = alone.best_validation
        row = trials.loc[trial.id]
        assert row["final_validation_error"] == alone.final_validation_error
        assert (row["best_validation_error"], row["best_validation_epoch"]) == (best, epoch)
    rebuilt = store.build_tables(store.journal.read(tmp_path / "out" / store.JOURNAL))
    pd.testing.assert_frame_equal(
        rebuilt["history"].sort_values(["trial", "split", "epoch"]).reset_index(drop=True),
        history.sort_values(["trial", "split", "epoch"]).reset_index(drop=True))


def test_a_sweep_without_held_out_rows_has_training_rows_only_and_empty_validation_columns(
        tmp_path: Path) -> None:
    path = tmp_path / "plain.toml"
    path.write_text('dataset = "xor"\n[params]\nepochs = 50\n', encoding="utf-8")
    results = nnsweep.run(nnsweep.load_spec(path), out=tmp_path / "out", jobs=1)
    assert set(results.history["split"]) == {"train"}
    assert "held_out" not in results.manifest["dataset"]
    assert results.trials["final_validation_error"].isna().all()
    assert results.trials["best_validation_epoch"].isna().all()


def test_select_validation_lets_the_held_out_rows_decide_in_both_engines_alike() -> None:
    data = MOONS.split(0.25, 2)
    trials = [TrialParams(hidden=(6,), activation="tanh", alpha=alpha, epochs=80,
                          record_every=5, metric="mse", tolerance=0.12, select="validation",
                          seed=seed) for alpha in (0.05, 0.5, 1e6) for seed in (0, 1)]
    for trial, result in zip(trials, train_batch(data.x, data.y, trials,
                                                 validation=data.validation), strict=True):
        alone = train_one(data.x, data.y, trial, data.validation)
        assert (result.final_error, result.best_error, result.converged_epoch) == (
            alone.final_error, alone.best_error, alone.converged_epoch), trial
        assert alone.validation is not None
        held = alone.validation[:, 1]  # (R,) mse on the held-out rows
        if alone.diverged_epoch is not None:
            assert np.isnan(alone.final_error)
            continue
        assert alone.final_error == held[-1] == alone.final_validation_error
        assert alone.best_error == held.min() == alone.best_validation[0]
        hit = np.flatnonzero(held <= 0.12)
        assert alone.converged_epoch == (int(alone.epochs[hit[0]]) if len(hit) else None)
        training = train_one(data.x, data.y, replace(trial, select="train"), data.validation)
        assert training.final_error == training.errors[-1, 1] != alone.final_error


def test_select_validation_needs_held_out_rows_in_the_engine_too() -> None:
    with pytest.raises(ValueError, match='select = "validation" needs held-out rows'):
        train_one(MOONS.x, MOONS.y, TrialParams(epochs=3, select="validation"))


def test_a_sweep_selecting_the_held_out_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "held.toml"
    path.write_text('[dataset]\nname = "moons"\nrows = 40\nvalidation = 0.25\n[params]\n'
                    'activation = "tanh"\nhidden = 6\nepochs = 60\nrecord_every = 10\n'
                    'loss = "cross_entropy"\nmetric = "accuracy"\nselect = "validation"\n'
                    "tolerance = 0.2\n[grid]\nalpha = [0.001, 1]\n", encoding="utf-8")
    results = nnsweep.run(nnsweep.load_spec(path), out=tmp_path / "out", jobs=1)
    trials, history = results.trials, results.history
    assert list(trials["select"]) == ["validation"] * 2
    for _, row in trials.iterrows():
        held = history[(history["trial"] == row["trial"]) & (history["split"] == "validation")]
        assert row["final_error"] == held["accuracy"].iloc[-1] == row["final_validation_error"]
        assert row["best_error"] == held["accuracy"].max() == row["best_validation_error"]
        assert (row["status"] == "converged") == (row["final_error"] >= 0.8)
    best = tables.ranked(trials)["trial"].iloc[0]  # the highest accuracy first
    assert trials.set_index("trial").loc[best, "final_error"] == trials["final_error"].max()
    again = store.load_results(tmp_path / "out").trials  # read back from the saved tables
    pd.testing.assert_frame_equal(again.drop(columns="seconds"),
                                  trials.drop(columns="seconds"))


def test_select_validation_is_accepted_with_held_out_rows_and_keeps_old_ids_at_train() -> None:
    held = '[dataset]\nname = "moons"\nrows = 40\nvalidation = 0.25\n'
    selected = parse_spec(held + '[params]\nselect = "validation"\n')
    plain = parse_spec(held)
    assert [t.params.select for t in selected.trials()] == ["validation"]
    assert selected.trials()[0].id != plain.trials()[0].id
    assert plain.trials()[0].id == parse_spec(held + '[params]\nselect = "train"\n').trials()[0].id
