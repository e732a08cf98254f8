"""Successive halving and Hyperband runs ([search] method = "halving" or "hyperband"): trials
paused at each rung and continued from where they stand, survivors bit for bit the trials
trained straight through, a killed search resumed across rungs, the budget against a grid."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection

import nnsweep
from nnsweep import engines, journal, planner, runner, searchplots, store, tables
from nnsweep.__main__ import main
from nnsweep.batching import REFERENCE
from nnsweep.errors import EngineLacks, Interrupted, ResultsError
from nnsweep.halving import Halving
from nnsweep.report import build_report
from nnsweep.show import render
from nnsweep.spec import Spec, parse_spec


def halving_text(method: str = "halving", *, seeds: int = 9, extra: str = "",
                 record_every: int = 7) -> str:
    """XOR, 4 sigmoid units, 3 alphas x `seeds` seeds, rungs at 10, 30, 90 and 270 epochs."""
    return textwrap.dedent(f"""\
        name = "halving"
        dataset = "xor"
        [params]
        hidden = 4
        activation = "sigmoid"
        record_every = {record_every}
        {extra}
        [grid]
        alpha = [0.3, 1, 3]
        seed = {{ range = [0, {seeds}] }}
        [search]
        method = "{method}"
        min_epochs = 10
        max_epochs = 270
        """)


def straight_through(tmp_path: Path, text: str) -> nnsweep.Results:
    """The same trials as a plain grid: every one trained the whole way."""
    grid = text.replace('method = "halving"', 'method = "grid"').replace(
        'method = "hyperband"', 'method = "grid"')
    grid = grid.replace("min_epochs = 10\n", "").replace("max_epochs = 270\n", "")
    grid = grid.replace("[params]\n", "[params]\nepochs = 270\n")
    return nnsweep.run(parse_spec(grid), out=tmp_path / "grid", jobs=1)


def stopped_in_the_second_round(spec: Spec, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the search as Ctrl-C would leave it: its first round done, stopped as the second
    starts."""
    real = runner._train
    rounds: list[int] = []

    def stop_in_the_second_round(*args: Any, **kwargs: Any) -> Any:
        rounds.append(1)
        if len(rounds) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_train", stop_in_the_second_round)
    with pytest.raises((Interrupted, KeyboardInterrupt)):
        nnsweep.run(spec, out=out, jobs=1)
    monkeypatch.undo()


# --- the contract ---------------------------------------------------------------------------

def test_the_resolved_spec_says_what_was_searched_and_loads_back_the_same() -> None:
    spec = parse_spec(halving_text("hyperband"))
    assert spec.search.halving == Halving("hyperband", 3, 10, 270, 0)
    assert {t.params.epochs for t in spec.trials()} == {270}  # max_epochs sets the epochs
    assert '[search]\nmethod = "hyperband"\neta = 3\nmin_epochs = 10\nmax_epochs = 270\n' \
        in spec.text
    again = parse_spec(spec.text)
    assert again.search == spec.search and again.hash == spec.hash
    assert [t.id for t in again.trials()] == [t.id for t in spec.trials()]


def test_only_an_engine_that_can_pause_trains_a_halving_search() -> None:
    trials = [t.params for t in parse_spec(halving_text()).trials()]
    assert engines.resolve("auto", trials, stopping=True) == "numpy"
    assert engines.resolve("numpy", trials, stopping=True) == "numpy"
    with pytest.raises(EngineLacks, match="halving"):
        engines.resolve("numba", trials, stopping=True)


# --- runs -----------------------------------------------------------------------------------

def test_a_halving_search_trains_rung_by_rung_and_tables_where_each_stopped(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = nnsweep.run(parse_spec(halving_text()), out=out, jobs=1)
    trials = results.trials
    assert len(trials) == 27
    assert trials["stopped_epoch"].value_counts().to_dict() == {10: 18, 30: 6, 90: 2, 270: 1}
    rung_of = {10: 0, 30: 1, 90: 2, 270: 3}
    assert trials["rung"].tolist() == [rung_of[e] for e in trials["stopped_epoch"]]
    assert (trials["bracket"] == 0).all()
    history = tables.training(results.history)
    last = history.groupby("trial")["epoch"].max()
    for _, row in trials.iterrows():  # a stopped trial's history ends before it stopped
        assert last[row["trial"]] < row["stopped_epoch"]
    invocation = results.manifest["invocations"][-1]
    assert invocation["rounds"] == 4
    assert invocation["trained"] == 27
    assert results.manifest["search"] == {"method": "halving", "eta": 3, "min_epochs": 10,
                                          "max_epochs": 270, "seed": 0}
    assert not (out / store.STATES).exists()  # a finished search keeps no paused trials
    loaded = nnsweep.load_results(out)
    pd.testing.assert_frame_equal(loaded.trials, trials)


def test_the_best_third_of_each_rung_go_on_the_rest_stop_there(tmp_path: Path) -> None:
    """A rung's score is the metric of its last epoch: the trials that went on had lower
    errors there than every trial stopped there."""
    text = halving_text(record_every=1)
    results = nnsweep.run(parse_spec(text), out=tmp_path / "out", jobs=1)
    grid = straight_through(tmp_path, text)
    metric = grid.trials["metric"].iloc[0]
    scores = tables.training(grid.history).set_index(["trial", "epoch"])[metric]
    trials = results.trials
    for rung, epochs in enumerate((10, 30, 90)):
        entered = trials[trials["rung"] >= rung]
        went_on = entered.loc[entered["rung"] > rung, "trial"]
        stopped = entered.loc[entered["rung"] == rung, "trial"]
        assert len(went_on) == max(1, len(entered) // 3)
        assert max(scores[(t, epochs - 1)] for t in went_on) <= min(
            scores[(t, epochs - 1)] for t in stopped)


def test_survivors_equal_the_same_trials_trained_straight_through_bit_for_bit(
        tmp_path: Path) -> None:
    text = halving_text(extra='optimizer = "adam"\ndescent = "minibatch"\nbatch_size = 2\n'
                        'dropout = 0.25\nweight_decay = 0.001')
    searched = nnsweep.run(parse_spec(text), out=tmp_path / "out", jobs=2)
    grid = straight_through(tmp_path, text)
    assert sorted(searched.trials["trial"]) == sorted(grid.trials["trial"])  # the same ids
    survivor = searched.trials.loc[searched.trials["stopped_epoch"] == 270, "trial"].item()
    for name in ("history", "directions"):
        mine = getattr(searched, name).query("trial == @survivor").reset_index(drop=True)
        theirs = getattr(grid, name).query("trial == @survivor").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    columns = ["final_error", "best_error", "converged_epoch", "diverged_epoch",
               "direction_changes"]
    pd.testing.assert_frame_equal(
        searched.trials.set_index("trial").loc[[survivor], columns],
        grid.trials.set_index("trial").loc[[survivor], columns], check_exact=True)
    # and a trial stopped early holds the first epochs of its whole run
    whole = tables.training(grid.history).set_index("trial")
    mine_all = tables.training(searched.history).set_index("trial")
    for trial, stopped in zip(searched.trials["trial"], searched.trials["stopped_epoch"],
                              strict=True):
        mine = mine_all.loc[[trial]]
        theirs = whole.loc[[trial]]
        theirs = theirs[theirs["epoch"] < stopped]
        np.testing.assert_array_equal(mine[["epoch", "mae", "mse", "sse"]].to_numpy(),
                                      theirs[["epoch", "mae", "mse", "sse"]].to_numpy())


def test_hyperband_deals_the_trials_to_brackets_that_start_at_later_rungs(
        tmp_path: Path) -> None:
    spec = parse_spec(halving_text("hyperband", seeds=17))
    results = nnsweep.run(spec, out=tmp_path / "out", jobs=1)
    trials = results.trials
    halving = spec.search.halving
    assert halving is not None
    assert trials["bracket"].value_counts().sort_index().tolist() == halving.shares(51)
    for bracket, members in trials.groupby("bracket"):
        first = halving.rungs(int(bracket))[0]
        assert (members["stopped_epoch"] >= first).all()
        assert (members["stopped_epoch"] == 270).sum() >= 1  # every bracket ends at max
    assert results.manifest["search"]["method"] == "hyperband"


def test_a_rerun_of_a_finished_search_trains_nothing_and_keeps_its_tables(
        tmp_path: Path) -> None:
    spec, out = parse_spec(halving_text()), tmp_path / "out"
    first = nnsweep.run(spec, out=out, jobs=1)
    again = nnsweep.run(spec, out=out, jobs=1)
    invocation = again.manifest["invocations"][-1]
    assert (invocation["trained"], invocation["reused"]) == (0, 27)
    assert again.manifest["generation"] == first.manifest["generation"]


def test_a_search_stopped_between_rungs_goes_on_from_the_saved_states(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, out = parse_spec(halving_text()), tmp_path / "out"
    whole = nnsweep.run(spec, out=tmp_path / "whole", jobs=1)
    stopped_in_the_second_round(spec, out, monkeypatch)
    assert len(list((out / store.STATES).glob("*.npz"))) == 9  # the first rung's survivors

    starts: list[Any] = []
    real_train = engines.train

    def spy(*args: Any, **kwargs: Any) -> Any:
        starts.extend(kwargs.get("starts") or [None] * len(args[3]))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runner.engines, "train", spy)
    resumed = nnsweep.run(spec, out=out, jobs=1)
    assert len(starts) == 9 + 3 + 1  # the 18 stopped at the first rung are not trained again
    assert all(s is not None and s.epoch in (10, 30, 90) for s in starts)
    columns = [c for c in tables.TRIALS_SCHEMA if c != "seconds"]
    pd.testing.assert_frame_equal(resumed.trials[columns], whole.trials[columns])
    pd.testing.assert_frame_equal(resumed.history, whole.history)


# --- what the journal and the folder keep ---------------------------------------------------

def paused_record(tmp_path: Path) -> journal.Record:
    """A record of the halving search's first rung, as the runner journals it."""
    nnsweep.run(parse_spec(halving_text(seeds=1)), out=tmp_path / "one", jobs=1)
    lines = (tmp_path / "one" / store.JOURNAL).read_text().splitlines()
    return journal.decode(lines[0])


def test_a_paused_trials_stop_and_rung_scores_read_back_from_the_journal(
        tmp_path: Path) -> None:
    record = paused_record(tmp_path)
    assert record.stopped == 10 and [e for e, _ in record.scores] == [10]
    assert record.result is not None and record.result.epochs[-1] < 10
    again = journal.decode(journal.encode(record, keep_weights=False))
    assert (again.stopped, again.scores) == (record.stopped, record.scores)


@pytest.mark.parametrize(("change", "message"), [
    ({"stopped": 270}, "stopped: expected an integer from 1 to 269"),
    ({"stopped": 0}, "stopped: expected an integer from 1 to 269"),
    ({"stopped": 1}, "stopped: expected more epochs than the last recorded, 7"),
    ({"scores": "high"}, "scores: expected a list of [epochs, score] pairs, one per rung"),
    ({"scores": [[10, "high"]]}, "scores[0]: expected a number"),
    ({"scores": [[0, 0.5]]}, "scores[0]: expected an integer from 1 to 270"),
    ({"scores": [[10, 0.5], [3, 0.5]]}, "scores: expected increasing epochs"),
])
def test_a_journal_line_with_a_wrong_stop_is_refused_naming_the_field(
        tmp_path: Path, change: dict[str, Any], message: str) -> None:
    body = json.loads(journal.encode(paused_record(tmp_path), keep_weights=False))
    with pytest.raises(journal.BadRecord, match=re.escape(message)):
        journal.decode(json.dumps({**body, **change}))


def test_a_damaged_state_is_skipped_with_a_warning_and_its_trial_starts_over(
        tmp_path: Path) -> None:
    spec = parse_spec(halving_text(seeds=1))
    trial = next(iter(spec.trials()))
    (tmp_path / store.STATES).mkdir()
    (tmp_path / store.STATES / f"{trial.id}.npz").write_bytes(b"not a zip")
    with pytest.warns(store.StoreWarning, match="damaged state"):
        assert store.read_state(tmp_path, trial.id, trial.params) is None


def test_starting_over_deletes_the_saved_states_but_nothing_else_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, out = parse_spec(halving_text()), tmp_path / "out"
    stopped_in_the_second_round(spec, out, monkeypatch)
    assert list((out / store.STATES).glob("*.npz"))
    (out / store.STATES / "notes.txt").write_text("mine")
    with pytest.raises(ResultsError, match=r"notes\.txt"):
        nnsweep.run(spec, out=out, jobs=1, fresh=True)
    (out / store.STATES / "notes.txt").unlink()
    nnsweep.run(spec, out=out, jobs=1, fresh=True)
    assert not (out / store.STATES).exists()


def test_validate_says_what_a_halving_search_trains_and_counts_it_in_the_estimate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(halving_text("hyperband"), encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"{path}: valid; 27 trials in ")
    spent = Halving("hyperband", 3, 10, 270).budget(27)
    assert said[1] == (f"note: a hyperband search: 27 trials in 4 brackets, rungs at 10, 30, "
                       f"90, 270 epochs, the best 1/3 going on at each; about {spent:,} "
                       f"trial-epochs of a grid's 7,290 ({spent / 7290:.0%}), as the estimate "
                       "counts")
    spec = parse_spec(halving_text("hyperband"))
    plan = planner.outline(spec)
    grid = planner.outline(parse_spec(halving_text("hyperband").replace(
        'method = "hyperband"', 'method = "grid"').replace("min_epochs = 10\n", "").replace(
        "max_epochs = 270\n", "").replace("[params]\n", "[params]\nepochs = 270\n")))
    assert plan.share == pytest.approx(spent / 7290)
    trained = planner.estimate(plan, 4, planner.Calibration("numpy", REFERENCE, 1.0)).training
    whole = planner.estimate(grid, 4, planner.Calibration("numpy", REFERENCE, 1.0)).training
    assert trained == pytest.approx(whole * spent / 7290)


def test_the_run_ends_saying_what_the_search_spent_against_the_grid(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(halving_text(), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--jobs", "1", "--no-report"]) == 0
    said = capsys.readouterr().err.splitlines()
    spent = 18 * 10 + 6 * 30 + 2 * 90 + 270
    assert said[-1] == (f"halving: 1 of 27 trials trained to 270 epochs; {spent:,} "
                        f"trial-epochs of a grid's 7,290 ({spent / 7290:.0%})")
    assert any(line.startswith("round 4: to 270 epochs done: 1/1 trials") for line in said)


def test_asking_the_compiled_engine_for_a_halving_search_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(halving_text(), encoding="utf-8")
    args = ["run", str(path), "--out", str(tmp_path / "out"), "--engine", "numba"]
    assert main(args) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and 'method = "halving" or "hyperband"' in said[0]
    assert not (tmp_path / "out").exists()


# --- what the report and show say -------------------------------------------------------------

def test_the_report_draws_the_rungs_and_says_what_the_search_spent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nnsweep.run(parse_spec(halving_text("hyperband")), out=out, jobs=1)
    page = build_report(out)
    assert (out / "plots" / "rungs.png").is_file()
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "search: hyperband (eta 3, 4 brackets; rungs at 10, 30, 90, 270 epochs): " in text
    assert "a trial stopped at a rung counts with its numbers there" in text
    assert "The search&#x27;s rungs" in page.read_text(encoding="utf-8")  # its title


def test_the_rungs_figure_has_a_panel_per_bracket_and_greys_the_stopped_trials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = nnsweep.run(parse_spec(halving_text("hyperband")), out=tmp_path / "out", jobs=1)
    halving = store.halving_search(results.manifest)
    assert halving is not None
    drawn: list[Any] = []
    real_save = searchplots.save
    monkeypatch.setattr(searchplots, "save", lambda fig, *a, **k: drawn.append(fig) or real_save(
        fig, *a, **k))
    pictures = searchplots.rungs_figure(results.trials, results.history, tmp_path,
                                        method="hyperband", eta=3,
                                        rungs=[halving.rungs(b) for b in range(4)])
    assert [p.name for p in pictures] == ["rungs"]
    panels = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert len(panels) == 4
    for bracket, ax in enumerate(panels):
        members = results.trials[results.trials["bracket"] == bracket]
        stopped = members[members["stopped_epoch"] < 270]
        greys = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert sum(len(c.get_segments()) for c in greys) == int(
            (stopped["stopped_epoch"] > 7).sum())  # those with two recorded epochs or more
        coloured = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
        assert len(coloured) == int((members["stopped_epoch"] == 270).sum())


def test_show_says_what_the_search_spent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nnsweep.run(parse_spec(halving_text()), out=out, jobs=1)
    spent = 18 * 10 + 6 * 30 + 2 * 90 + 270
    assert (f"search: halving (eta 3; rungs at 10, 30, 90, 270 epochs): 1 of 27 trials "
            f"trained to 270 epochs; {spent:,} trial-epochs of a grid's 7,290") in " ".join(
        render(nnsweep.load_results(out)).split())


def test_with_held_out_rows_the_rungs_rank_on_them_unless_select_says_otherwise() -> None:
    text = halving_text().replace('dataset = "xor"', '[dataset]\nname = "moons"\nrows = 40\n'
                                  'validation = 0.25')
    assert {t.params.select for t in parse_spec(text).trials()} == {"validation"}
    chosen = text.replace("[params]\n", '[params]\nselect = "train"\n')
    assert {t.params.select for t in parse_spec(chosen).trials()} == {"train"}
    assert {t.params.select for t in parse_spec(halving_text()).trials()} == {"train"}
    again = parse_spec(parse_spec(text).text)  # the resolved spec says so
    assert {t.params.select for t in again.trials()} == {"validation"}


def test_search_metric_names_what_ranks_and_sets_the_trials_metric() -> None:
    text = halving_text().replace("min_epochs = 10\n", 'min_epochs = 10\nmetric = "mae"\n')
    spec = parse_spec(text)
    assert {t.params.metric for t in spec.trials()} == {"mae"}
    assert parse_spec(spec.text).hash == spec.hash
