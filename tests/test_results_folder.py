"""A results folder is nnsweep's own, its numbers mean one engine, and readers only read.

Every case is performed for real: real folders holding a user's files, real runs in other
processes killed between two table writes or read while they train.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from helpers import LONG, run_cli, start_run, wait_for_lines, write_spec

from nnsweep import store
from nnsweep.__main__ import main

TINY = """\
name = "tiny"
dataset = "xor"
[params]
epochs = 60
record_every = 20
{params}
[grid]
hidden = [2, 3]
{grid}
"""
TWO_ALPHAS = TINY.format(params="", grid="alpha = [1, 2]")  # four trials


def run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--quiet", "--no-report", "--jobs", "1"])


def test_fresh_in_a_folder_of_the_users_files_refuses_and_deletes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, TWO_ALPHAS)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "idea.txt").write_text("keep me")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    assert run(spec, "--out", tmp_path, "--fresh") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnsweep: ") and "not a results folder" in err
    assert len(err.splitlines()) == 1
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_fresh_refuses_a_results_folder_that_also_holds_the_users_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    (out / "analysis.ipynb").write_text("{}")
    capsys.readouterr()
    assert run(spec, "--out", out, "--fresh") == 2
    assert "analysis.ipynb" in capsys.readouterr().err
    assert (out / "analysis.ipynb").exists() and (out / "trials.parquet").exists()


def test_a_run_never_writes_into_a_folder_that_is_not_its_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "site"
    out.mkdir()
    (out / "report.html").write_text("<p>my own page</p>")
    capsys.readouterr()
    assert run(spec, "--out", out) == 2
    assert "not a results folder" in capsys.readouterr().err
    assert (out / "report.html").read_text() == "<p>my own page</p>"
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]


def test_report_refuses_a_linked_plots_folder_and_touches_nothing_behind_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    elsewhere = tmp_path / "pictures"
    elsewhere.mkdir()
    (elsewhere / "holiday.png").write_bytes(b"precious")
    (out / "plots").symlink_to(elsewhere)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    assert "plots: a symbolic link" in capsys.readouterr().err
    assert [p.name for p in elsewhere.iterdir()] == ["holiday.png"]


def test_a_linked_journal_is_refused_and_its_target_untouched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    target = tmp_path / "other.jsonl"
    target.write_bytes((out / store.JOURNAL).read_bytes() + b"partial line")
    (out / store.JOURNAL).unlink()
    (out / store.JOURNAL).symlink_to(target)
    before = target.read_bytes()
    capsys.readouterr()
    assert run(spec, "--out", out) == 2
    assert "journal.jsonl: a symbolic link" in capsys.readouterr().err
    assert target.read_bytes() == before


def test_the_trials_table_names_the_engine_and_a_rerun_never_mixes_engines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("numba")
    spec = write_spec(tmp_path, TWO_ALPHAS)
    out = tmp_path / "out"
    assert run(spec, "--out", out, "--engine", "numpy") == 0
    assert set(pd.read_parquet(out / "trials.parquet")["engine"]) == {"numpy"}
    write_spec(tmp_path, TINY.format(params="", grid="alpha = [1, 2, 3]"))
    capsys.readouterr()
    assert run(spec, "--out", out, "--engine", "numba") == 2
    err = capsys.readouterr().err.strip()
    assert "4 trials here were trained by the numpy engine and this run uses numba" in err
    assert "--engine numpy" in err and len(err.splitlines()) == 1
    assert len(pd.read_parquet(out / "trials.parquet")) == 4  # nothing trained, nothing mixed
    assert run(spec, "--out", out, "--engine", "numpy") == 0
    assert set(pd.read_parquet(out / "trials.parquet")["engine"]) == {"numpy"}


def test_a_new_axis_through_the_old_fixed_value_extends_the_sweep(tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, TINY.format(params="alpha = 1", grid="")), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    write_spec(tmp_path, TINY.format(params="", grid="alpha = [1, 4]"))
    assert run(spec, "--out", out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["reused"] == 2
    assert manifest["invocations"][-1]["trained"] == 2
    assert len(pd.read_parquet(out / "trials.parquet")) == 4


def test_an_axis_that_leaves_out_the_old_fixed_value_is_another_sweep(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path, TINY.format(params="alpha = 1", grid="")), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    write_spec(tmp_path, TINY.format(params="", grid="alpha = [3, 4]"))
    capsys.readouterr()
    assert run(spec, "--out", out) == 2
    assert "made by another spec" in capsys.readouterr().err


def test_a_missing_manifest_beside_a_journal_is_rebuilt_not_a_reason_to_start_over(
        tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    (out / "manifest.json").unlink()
    assert main(["show", str(out)]) == 0
    assert run(spec, "--out", out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["trained"] == 0
    assert manifest["invocations"][-1]["reused"] == 4


KILL_BETWEEN_TABLES = textwrap.dedent("""\
    import os, signal, sys
    from nnsweep import store
    from nnsweep.__main__ import main

    real = store.write_table
    def write_table(directory, name, frame, generation):
        real(directory, name, frame, generation)
        if name == "trials":  # the trials table of the new generation is on disk, no more
            os.kill(os.getpid(), signal.SIGKILL)
    store.write_table = write_table
    sys.exit(main(sys.argv[1:]))
""")


def test_a_kill_between_two_table_writes_never_shows_tables_that_disagree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    write_spec(tmp_path, TINY.format(params="", grid="alpha = [1, 2, 3]"))
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_TABLES, "run", str(spec),
                             "--out", str(out), "--quiet", "--no-report", "--jobs", "1"],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert len(pd.read_parquet(out / "trials.parquet")) == 6  # new trials, old history
    assert pd.read_parquet(out / "history.parquet")["trial"].nunique() == 4
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    assert "another run's generation" in capsys.readouterr().err
    with pytest.warns(store.StoreWarning, match="generation"):
        loaded = store.load_results(out)
    assert len(loaded.trials) == 6 and loaded.history["trial"].nunique() == 6
    assert run(spec, "--out", out) == 0  # the next run publishes a whole generation again
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert pd.read_parquet(out / "history.parquet")["trial"].nunique() == 6


@pytest.mark.slow
def test_readers_of_a_running_sweep_only_read_and_say_it_is_partial(tmp_path: Path) -> None:
    # ten times LONG's epochs: the run must outlast two commands' start-up on a quiet machine
    longer = LONG.replace("epochs = [2000", "epochs = [20000").replace(", 2000", ", 20000")
    spec, out = write_spec(tmp_path, longer), tmp_path / "out"
    running = start_run(spec, out, "--jobs", "1", "--quiet")
    try:
        wait_for_lines(out / store.JOURNAL, 2)
        before = sorted(p.name for p in out.iterdir())
        shown = run_cli("show", out, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert "partial: " in shown.stdout and " of 64 trials" in shown.stdout
        assert f"a run is training the rest now (pid {running.pid}" in shown.stdout
        reported = run_cli("report", out, timeout=120)
        assert reported.returncode == 2
        assert "another run is using this folder" in reported.stderr
        assert sorted(p.name for p in out.iterdir()) == before
        assert not (out / "trials.parquet").exists() and not (out / "report.html").exists()
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait()


@pytest.mark.slow
def test_ctrl_c_stops_without_building_the_report_and_says_how_to_build_it(
        tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, LONG), tmp_path / "out"
    running = start_run(spec, out, "--jobs", "2", stderr=tmp_path / "stderr.txt")
    wait_for_lines(out / store.JOURNAL, 4)
    os.killpg(running.pid, signal.SIGINT)
    running.wait(timeout=120)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert running.returncode == 130, stderr
    assert f"python -m nnsweep report {out} builds it" in stderr
    assert not (out / "report.html").exists() and not (out / "plots").exists()
    assert main(["report", str(out)]) == 0
    assert "partial: " in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["journal.jsonl", "weights.npz", "manifest.json"])
def test_a_pipe_in_place_of_a_results_file_is_refused_not_waited_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    assert run(spec, "--out", out) == 0
    (out / name).unlink(missing_ok=True)
    os.mkfifo(out / name)
    for command in (["show", str(out)], ["run", str(spec), "--out", str(out), "--quiet"]):
        capsys.readouterr()
        assert main(command) == 2
        assert f"{name}: expected a plain file, found a pipe" in capsys.readouterr().err


def test_the_report_of_a_run_is_written_before_the_run_lets_go_of_its_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    from collections.abc import Iterator

    import nnsweep.report

    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    events: list[str] = []
    real_locked = store.locked

    @contextlib.contextmanager
    def locked(directory: Path) -> Iterator[None]:
        with real_locked(directory):
            events.append("taken")
            yield
            events.append("released")

    def build_report(directory: Path, **options: object) -> Path:
        events.append("report")
        return Path(directory) / "report.html"

    monkeypatch.setattr(store, "locked", locked)
    monkeypatch.setattr(nnsweep.report, "build_report", build_report)
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    assert events == ["taken", "report", "released"]


def test_a_rerun_with_nothing_new_keeps_the_tables_and_the_report_it_already_has(
        tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, TWO_ALPHAS), tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    kept = {p.name: (p.stat().st_mtime_ns, p.read_bytes())
            for p in [*out.glob("*.parquet"), *out.glob("*.csv"), out / "report.html"]}
    generation = json.loads((out / "manifest.json").read_text())["generation"]
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generation"] == generation
    assert manifest["invocations"][-1]["trained"] == 0
    assert len(manifest["invocations"]) == 2
    assert {name: (p.stat().st_mtime_ns, p.read_bytes())
            for name, p in ((n, out / n) for n in kept)} == kept


def test_a_rerun_rebuilds_a_report_that_shows_another_layout_than_the_sweeps(
        tmp_path: Path) -> None:
    text = TWO_ALPHAS
    spec, out = write_spec(tmp_path, text), tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    assert main(["report", str(out), "--x", "hidden", "--y", "alpha"]) == 0
    custom = (out / "report.html").read_bytes()
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    back = (out / "report.html").read_bytes()
    assert back != custom  # the sweep's own layout again
    write_spec(tmp_path, text + '[report]\nx = "hidden"\n')
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    assert (out / "report.html").read_bytes() != back  # the sweep's layout changed
