"""Hostile results folders: every command that reads one answers in one line, never a traceback.

Each case is a folder under tests/bad_results/ holding `case.toml` (what each command must do,
with a comment on what the case checks) and the files it lays over a good results folder:

- a file named like a results-folder file (`manifest.json`, `.lock`, `weights.npz`, `plots`,
  ...) replaces that file;
- `journal.append.jsonl` appends its lines to the journal (lines crafted from a real line of a
  good journal: the first trial's, so a line wrongly accepted would replace a good record);
- `<name>.delete` deletes that file, `<name>.halve` cuts it to its first half, and
  `<name>.other_run` replaces it by the same file of another, different good run.

`case.toml` has one table per command (`run`, `show`, `report`, `predict`), each giving the
exit status and, in `says`, a fragment its stderr must hold; a command without `says` must
print nothing to stderr. Each command meets the damaged folder afresh. Every stderr line is
one of nnsweep's ("nnsweep: ..."); a refusal (exit 2) is exactly one line and leaves the
folder as it was; show and predict only read; a resumed run trains nothing (the journal holds
every trial) and leaves a folder that show and predict read without complaint.

The report command runs for real except for drawing its pictures: they are drawn from the
in-memory tables every case has already read back, take seconds per report, and are covered by
test_report.py and test_plots.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nnsweep import plots, store
from nnsweep.__main__ import main

BAD_RESULTS = Path(__file__).parent / "bad_results"
COMMANDS = ("run", "show", "report", "predict")
CASES = sorted(path.name for path in BAD_RESULTS.iterdir() if (path / "case.toml").is_file())
ACTIONS = ("delete", "halve", "other_run")
APPEND = "journal.append.jsonl"
INPUTS = ("1", "1", "1")
CRAFTED_FOR = "b281b1a48b1d"  # the trial (alpha 0.5) the crafted lines and weights name

SWEEP = """\
name = "tiny"
dataset = "xor"
[params]
epochs = 50
[grid]
alpha = [{alphas}]
[run]
save_weights = true
"""


@dataclass(frozen=True)
class Good:
    """A good results folder to damage, the sweep that made it, and another run's folder."""

    folder: Path
    spec: Path
    other: Path
    trial: str
    prediction: str


def run_args(spec: Path, folder: Path) -> list[str]:
    return ["run", str(spec), "--out", str(folder), "--jobs", "1", "--quiet", "--no-report"]


def make_run(where: Path, alphas: str) -> tuple[Path, Path]:
    where.mkdir()
    spec, folder = where / "tiny.toml", where / "results"
    spec.write_text(SWEEP.format(alphas=alphas), encoding="utf-8")
    assert main(run_args(spec, folder)) == 0
    return spec, folder


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Good:
    root = tmp_path_factory.mktemp("good")
    spec, folder = make_run(root / "good", "0.5, 1, 5")
    _, other = make_run(root / "other", "2, 3")
    trial = str(pd.read_parquet(folder / "trials.parquet")["trial"][0])
    assert trial == CRAFTED_FOR, "trial ids changed: craft the corpus's lines and weights anew"
    prediction = predict_quietly(folder, trial)
    return Good(folder, spec, other, trial, prediction)


def predict_quietly(folder: Path, trial: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["predict", str(folder), trial, *INPUTS]) == 0
    return printed.getvalue().strip()


@pytest.fixture(autouse=True)
def no_pictures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report draws no pictures (see the module's docstring); all else runs for real."""
    monkeypatch.setattr(plots, "draw_all", lambda *args, **kwargs: [])


# --- the corpus -----------------------------------------------------------------------------

def expectations(case: str) -> dict[str, dict[str, Any]]:
    with open(BAD_RESULTS / case / "case.toml", "rb") as handle:
        return tomllib.load(handle)


def damage(case: str, good: Good, folder: Path) -> Path:
    """A copy of the good folder at `folder`, with the case's files laid over it."""
    shutil.copytree(good.folder, folder)
    for overlay in sorted((BAD_RESULTS / case).iterdir()):
        name, _, action = overlay.name.rpartition(".")
        if overlay.name == "case.toml":
            continue
        if overlay.name == APPEND:
            with open(folder / store.JOURNAL, "ab") as journal:
                journal.write(overlay.read_bytes())
        elif action == "delete":
            (folder / name).unlink()
        elif action == "halve":
            data = (folder / name).read_bytes()
            (folder / name).write_bytes(data[: len(data) // 2])
        elif action == "other_run":
            shutil.copyfile(good.other / name, folder / name)
        else:  # the file itself, in place of the folder's own (or of a folder of that name)
            if (folder / overlay.name).is_dir():
                shutil.rmtree(folder / overlay.name)
            shutil.copyfile(overlay, folder / overlay.name)
    return folder


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
            for path in sorted(folder.rglob("*"))}


def argv(command: str, good: Good, folder: Path) -> list[str]:
    if command == "run":
        return run_args(good.spec, folder)
    if command == "predict":
        return ["predict", str(folder), good.trial, *INPUTS]
    return [command, str(folder)]


def check_stderr(err: str, status: int, says: str | None, where: str) -> None:
    assert "Traceback" not in err, f"{where}: a traceback:\n{err}"
    lines = err.splitlines()
    assert all(line.startswith("nnsweep: ") for line in lines), f"{where}: a stray line:\n{err}"
    assert len(set(lines)) == len(lines), f"{where}: a line said twice:\n{err}"
    if says is None:
        assert err == "", f"{where}: expected nothing on stderr, got:\n{err}"
        return
    assert says in err, f"{where}: expected {says!r} on stderr, got:\n{err}"
    if status == 2:
        assert len(lines) == 1, f"{where}: a refusal takes exactly one line, got:\n{err}"
    else:
        assert all(line.startswith("nnsweep: warning: ") for line in lines), err


def test_the_corpus_holds_a_case_for_each_hostile_file() -> None:
    assert set(CASES) >= {
        "journal_epochs_not_integers", "journal_epoch_beyond_int64", "journal_alpha_nan",
        "journal_ragged_direction_changes", "journal_nested_100000_deep",
        "journal_line_not_an_object", "journal_params_edited_id_kept", "journal_other_format",
        "journal_not_utf8", "journal_megabyte_of_spaces", "manifest_a_list",
        "manifest_trials_not_a_list", "manifest_invocations_not_objects",
        "manifest_dataset_not_an_object", "manifest_missing", "manifest_not_json",
        "lock_holding_a_list", "lock_pid_not_a_number", "weights_truncated",
        "weights_object_array", "weights_wrong_shape", "weights_npy_not_npz",
        "trials_parquet_cut_in_half",
        "history_from_another_generation", "spec_toml_binary_garbage", "plots_a_regular_file",
    }


@pytest.mark.parametrize("case", CASES)
def test_each_case_says_what_every_command_does_and_overlays_only_folder_files(
        case: str) -> None:
    expected = expectations(case)
    assert set(expected) == set(COMMANDS), f"{case}/case.toml: one table per command"
    for command, outcome in expected.items():
        assert set(outcome) <= {"exit", "says"} and outcome["exit"] in (0, 2), command
        assert outcome["exit"] == 0 or "says" in outcome, f"{command}: a refusal says why"
    known = {*store.OWN_FILES, store.PLOTS}
    for overlay in (BAD_RESULTS / case).iterdir():
        name, _, action = overlay.name.rpartition(".")
        assert (overlay.name in {"case.toml", APPEND} | known
                or (action in ACTIONS and name in known)), overlay.name


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES)
def test_a_hostile_results_folder_gets_one_line_never_a_traceback(
        case: str, command: str, good: Good, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    outcome = expectations(case)[command]
    folder = damage(case, good, tmp_path / "results")
    before = snapshot(folder)
    capsys.readouterr()
    status = main(argv(command, good, folder))
    out, err = capsys.readouterr()
    check_stderr(err, status, outcome.get("says"), f"{case}: {command}")
    assert status == outcome["exit"], f"{case}: {command} exited {status}:\n{err}"
    if status == 2 or command in ("show", "predict"):
        assert snapshot(folder) == before, f"{case}: {command} changed the folder"
    if command == "show" and status == 0:
        assert "3 trials in" in out
    if command == "predict" and status == 0:
        assert out.strip() == good.prediction
    if command == "run" and status == 0:
        assert_resumed_into_a_usable_folder(case, good, folder, capsys)


def assert_resumed_into_a_usable_folder(case: str, good: Good, folder: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The journal holds every trial, so the run reused them all; show and predict then read
    the folder as a good one (predict reads the journal, which keeps an appended line)."""
    manifest = json.loads((folder / store.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["invocations"][-1]["trained"] == 0, f"{case}: run trained again"
    assert manifest["invocations"][-1]["reused"] == 3, f"{case}: run reused"
    assert main(["show", str(folder)]) == 0, f"{case}: show after run"
    assert capsys.readouterr().err == "", f"{case}: show after run"
    assert main(["predict", str(folder), good.trial, *INPUTS]) == 0, f"{case}: predict after"
    after = capsys.readouterr()
    assert after.out.strip() == good.prediction
    appended = (BAD_RESULTS / case / APPEND).exists()
    says = expectations(case)["predict"].get("says") if appended else None
    check_stderr(after.err, 0, says, f"{case}: predict after run")


# --- outside the corpus ---------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_name_of_300_characters_gets_one_line_and_nothing_is_written(
        command: str, good: Good, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / ("r" * 300)
    capsys.readouterr()
    assert main(argv(command, good, folder)) == 2
    err = capsys.readouterr().err
    check_stderr(err, 2, "a folder name of 300 characters; expected at most 255 bytes", command)
    assert list(tmp_path.iterdir()) == []
