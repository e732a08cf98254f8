"""The progress line: a live bar on a terminal, one final line on a pipe, nothing with quiet."""

from __future__ import annotations

import io
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import write_spec
from rich.cells import cell_len

import nnsweep
from nnsweep import planner, runner
from nnsweep.progress import ProgressReporter, counts_text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_through(stream: io.StringIO, *, quiet: bool = False, width: int | None = None) -> str:
    progress = ProgressReporter(5, reused=1, quiet=quiet, stream=stream, width=width)
    progress.add_reused(["converged"])
    progress.advance(["converged", "diverged"])
    progress.advance(["failed", "not_converged"])
    progress.close("done: 5/5 trials")
    return stream.getvalue()


def screen_lines(output: str) -> list[str]:
    """What a terminal shows line by line: escape sequences gone, every redraw a line."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    return [line for line in re.split(r"[\r\n]", plain) if line.strip()]


def test_on_a_pipe_only_the_final_line_is_written() -> None:
    assert run_through(io.StringIO()) == "done: 5/5 trials\n"


def test_quiet_writes_nothing_at_all() -> None:
    assert run_through(Terminal(), quiet=True) == ""


def test_on_a_wide_terminal_the_bar_shows_counts_done_total_rate_and_time_left() -> None:
    shown = run_through(Terminal(), width=160)
    assert "training" in shown and "5/5" in shown and "eta" in shown and "trials/s" in shown
    assert "converged 2 · not converged 1 · diverged 1 · failed 1" in shown
    assert shown.rstrip().endswith("done: 5/5 trials")


def test_the_counts_name_every_status_zeros_included_and_crashed_when_there() -> None:
    assert counts_text(Counter()) == "converged 0 · not converged 0 · diverged 0 · failed 0"
    counts = Counter(["converged", "not_converged", "not_converged", "crashed", "failed"])
    assert counts_text(counts) == ("converged 1 · not converged 2 · diverged 0 · failed 1 · "
                                   "crashed 1")
    assert counts_text(counts, short=True) == "conv 1 · not conv 2 · div 0 · fail 1 · crash 1"


def test_reused_trials_count_on_the_bar_from_the_start() -> None:
    stream = Terminal()
    progress = ProgressReporter(4, reused=3, stream=stream, width=160)
    progress.add_reused(["converged", "not_converged", "crashed"])
    progress.close("stopped")
    assert "3/4" in stream.getvalue()
    assert "converged 1 · not converged 1 · diverged 0 · failed 0 · crashed 1" in stream.getvalue()


@pytest.mark.parametrize("total", [49, 100_000])
def test_on_an_80_column_terminal_the_bar_is_one_line_that_fits(total: int) -> None:
    stream = Terminal()
    progress = ProgressReporter(total, reused=3, stream=stream, width=80)
    progress.add_reused(["converged"] * 3)
    progress.advance(["not_converged"] * 40 + ["crashed"])
    progress.close(f"done: 44/{total} trials in results/xor")
    lines = screen_lines(stream.getvalue())
    assert max(cell_len(line) for line in lines) <= 80
    bar = lines[-2]  # the bar as it stays on the screen, above the final line
    assert f"44/{total}" in bar and "eta" in bar
    assert bar.endswith("conv 3 · not conv 40 · div 0 · fail 0 · crash 1")


@pytest.mark.parametrize("width", [20, 40, 60, 100, 130, 200])
def test_at_any_width_no_line_runs_past_the_terminal(width: int) -> None:
    lines = screen_lines(run_through(Terminal(), width=width))
    assert max(cell_len(line) for line in lines) <= width
    assert "5/5" in lines[-2]


def test_the_final_line_shows_control_characters_as_escapes() -> None:
    stream = io.StringIO()
    progress = ProgressReporter(1, stream=stream)
    progress.close("done: 1/1 trials in results/\x1b]0;title\x07x")
    assert stream.getvalue() == "done: 1/1 trials in results/\\x1b]0;title\\x07x\n"


def test_a_run_on_a_terminal_starts_the_eta_from_the_plans_estimate_and_a_pipe_probes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float | None] = []
    real = runner.ProgressReporter

    def recording(*args: Any, **kwargs: Any) -> ProgressReporter:
        seen.append(kwargs.get("estimate"))
        return real(*args, **{**kwargs, "quiet": True})

    probes: list[str] = []

    def probe(engine: str, trials: Any, *, dataset: Any = None) -> planner.Calibration:
        assert dataset is not None and dataset.validation is None  # XOR holds no rows out
        probes.append(engine)
        return planner.Calibration(engine, planner.REFERENCE, 1.0)

    monkeypatch.setattr(runner, "ProgressReporter", recording)
    monkeypatch.setattr(planner, "calibrate", probe)
    spec = nnsweep.load_spec(write_spec(tmp_path, 'dataset = "xor"\n[params]\nepochs = 5\n'))
    nnsweep.run(spec, out=tmp_path / "pipe", jobs=1, quiet=False)  # stderr is no terminal here
    assert seen == [None] and probes == []
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    nnsweep.run(spec, out=tmp_path / "terminal", jobs=1, quiet=False)
    assert probes == ["numpy"] and seen[1] is not None and seen[1] > 0
