"""The live progress line on stderr: trials done, rate, time left, and how they ended."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def counts_text(counts: Counter[str]) -> str:
    return (f"converged {counts['converged']} · diverged {counts['diverged']} · "
            f"failed {counts['failed'] + counts['crashed']}")


class ProgressReporter:
    """A rich bar on a terminal; on a pipe or file, one final line; with quiet, nothing."""

    def __init__(self, total: int, *, reused: int = 0, quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.done, self.reused = total, reused, reused
        self.counts: Counter[str] = Counter()
        self.quiet = quiet
        self.started = time.monotonic()
        self.live = not quiet and self.stream.isatty()
        self._progress: Progress | None = None
        if self.live:
            console = Console(file=self.stream)
            self._progress = Progress(
                TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}"), console=console, transient=False)
            self._task = self._progress.add_task("sweep", total=total, completed=reused,
                                                 rate="", counts=counts_text(self.counts))
            self._progress.start()

    def add_reused(self, statuses: list[str]) -> None:
        self.counts.update(statuses)
        self._refresh(0)

    def advance(self, statuses: list[str]) -> None:
        self.counts.update(statuses)
        self.done += len(statuses)
        self._refresh(len(statuses))

    def _refresh(self, step: int) -> None:
        if self._progress is None:
            return
        trained = self.done - self.reused
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self._progress.update(self._task, advance=step, counts=counts_text(self.counts),
                              rate=f"{trained / elapsed:.1f} trials/s")

    def close(self, message: str) -> None:
        """Stop the bar and print the final line (not with quiet)."""
        if self._progress is not None:
            self._progress.stop()
        if not self.quiet:
            print(message, file=self.stream, flush=True)
