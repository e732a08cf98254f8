"""The progress line: a live bar on a terminal, one final line on a pipe, nothing with quiet."""

from __future__ import annotations

import io

from nnsweep.progress import ProgressReporter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_through(stream: io.StringIO, *, quiet: bool = False) -> str:
    progress = ProgressReporter(5, reused=1, quiet=quiet, stream=stream)
    progress.add_reused(["converged"])
    progress.advance(["converged", "diverged"])
    progress.advance(["failed", "not_converged"])
    progress.close("done: 5/5 trials")
    return stream.getvalue()


def test_on_a_pipe_only_the_final_line_is_written() -> None:
    assert run_through(io.StringIO()) == "done: 5/5 trials\n"


def test_quiet_writes_nothing_at_all() -> None:
    assert run_through(Terminal(), quiet=True) == ""


def test_on_a_terminal_the_bar_shows_counts_done_total_and_time_left() -> None:
    shown = run_through(Terminal())
    assert "5/5" in shown and "eta" in shown
    assert "converged 2 · diverged 1 · failed 1" in shown
    assert "trials/s" in shown
    assert shown.rstrip().endswith("done: 5/5 trials")
