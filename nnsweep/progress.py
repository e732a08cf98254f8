"""The live progress line on stderr: trials done, rate, time left, and how they ended."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TextIO

from nnsweep.result import STATUSES
from nnsweep.text import terminal_safe

if TYPE_CHECKING:
    from rich.progress import Progress

# Always counted, zeros included: "diverged 0" is news too. Crashed and any other status
# are added when present, so the counts add up to the trials done.
ALWAYS_COUNTED: tuple[str, ...] = ("converged", "not_converged", "diverged", "failed")
SHORT_LABELS: dict[str, str] = {"converged": "conv", "not_converged": "not conv",
                                "diverged": "div", "failed": "fail", "crashed": "crash"}
# The fewest columns each layout of the bar needs; below the last, the bar alone with M/N.
WIDE, MEDIUM, NARROW = 150, 120, 60


def counts_text(counts: Counter[str], *, short: bool = False) -> str:
    """How the trials so far ended, every status with trials in it, e.g. "converged 14 · not
    converged 35 · diverged 0 · failed 0"; `short` abbreviates the labels for a narrow bar."""
    shown = [*ALWAYS_COUNTED, *(s for s in STATUSES if s not in ALWAYS_COUNTED and counts[s]),
             *sorted(s for s in counts if s not in STATUSES and counts[s])]
    return " · ".join(f"{_label(status, short)} {counts[status]}" for status in shown)


def _label(status: str, short: bool) -> str:
    label = SHORT_LABELS.get(status) if short else None
    return label or terminal_safe(status.replace("_", " "))  # a journal may hold anything


def eta_seconds(estimate: float | None, elapsed: float, done: float) -> float | None:
    """Seconds left, with `done` the share of the trials to train that are trained.

    Before any batch returns, the plan's estimate is all there is (rich's own eta would wait
    for the first batch, half the sweep where there are two); as batches return, the pace
    they set takes over in proportion to the share done. None: nothing to go on yet.
    """
    if done <= 0:
        return None if estimate is None else max(0.0, estimate - elapsed)
    at_pace = elapsed / min(done, 1.0)  # the whole training, at the pace so far
    if estimate is None:
        return max(0.0, at_pace - elapsed)
    blended = done * at_pace + (1 - done) * max(estimate, elapsed)
    return max(0.0, blended - elapsed)


def clock_text(seconds: float | None) -> str:
    """h:mm:ss as rich writes times, or -:--:-- for unknown."""
    if seconds is None:
        return "-:--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _bar(stream: TextIO, width: int | None, left: Callable[[], float | None],
         label: str = "training") -> Progress:
    """The live bar, its columns picked for the terminal's width at every refresh (one line on
    any terminal, one resized mid-sweep included). rich is imported here, where a terminal will
    show the bar: a run on a pipe or with quiet never pays for it."""
    from rich.console import Console, RenderableType
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Column
    from rich.text import Text

    def one_line(*, ellipsis: bool = False) -> Column:
        """A cell that never wraps: rich would otherwise fold the line when it runs short."""
        return Column(no_wrap=True, overflow="ellipsis" if ellipsis else "crop")

    class EtaColumn(ProgressColumn):
        """Time left by eta_seconds, redrawn at every refresh as the clock runs."""

        def render(self, task: Task) -> Text:
            return Text(clock_text(left()), style="progress.remaining")

    class FittedProgress(Progress):
        def __init__(self, layouts: dict[int, tuple[ProgressColumn, ...]],
                     console: Console) -> None:
            self.layouts = sorted(layouts.items(), reverse=True)
            self._terminal = console  # rich renders once before its own console is set
            super().__init__(*layouts[0], console=console, transient=False)

        def get_renderables(self) -> Iterable[RenderableType]:
            width = self._terminal.width
            self.columns = next(columns for least, columns in self.layouts if width >= least)
            yield self.make_tasks_table(self.tasks)

    def counts(field: str) -> TextColumn:
        return TextColumn(f"{{task.fields[{field}]}}", markup=False,
                          table_column=one_line(ellipsis=True))

    def text(fmt: str) -> TextColumn:
        return TextColumn(fmt, table_column=one_line())

    def bar() -> BarColumn:
        return BarColumn(bar_width=None, table_column=Column(min_width=4))

    def done() -> MofNCompleteColumn:
        return MofNCompleteColumn(table_column=one_line())

    def eta() -> EtaColumn:
        return EtaColumn(table_column=one_line())

    layouts: dict[int, tuple[ProgressColumn, ...]] = {  # widest first; the bar takes the rest
        WIDE: (text(f"[bold]{escape(label)}"), bar(), done(),
               TaskProgressColumn(table_column=one_line()), text("{task.fields[rate]}"),
               TimeElapsedColumn(table_column=one_line()), text("eta"), eta(),
               counts("counts")),
        MEDIUM: (bar(), done(), TaskProgressColumn(table_column=one_line()),
                 text("{task.fields[rate]}"), text("eta"), eta(), counts("counts")),
        NARROW: (bar(), done(), text("eta"), eta(), counts("short")),
        0: (bar(), done()),
    }
    return FittedProgress(layouts, Console(file=stream, width=width, force_terminal=True))


class ProgressReporter:
    """A rich bar on a terminal; on a pipe or file, one final line; with quiet, nothing."""

    def __init__(self, total: int, *, reused: int = 0, quiet: bool = False,
                 stream: TextIO | None = None, width: int | None = None,
                 estimate: float | None = None,
                 clock: Callable[[], float] = time.monotonic, label: str = "training") -> None:
        """`width` fixes the terminal's columns (None: ask the terminal, as it is resized);
        `estimate` is the plan's seconds until trained (Estimate.until_trained), which the eta
        starts from; `label` heads the bar (an edge search's round)."""
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.done, self.reused = total, reused, reused
        self.counts: Counter[str] = Counter()
        self.quiet = quiet
        self.estimate, self.clock = estimate, clock
        self.started = clock()
        self.live = not quiet and self.stream.isatty()
        self._progress: Progress | None = None
        if self.live:
            self._progress = _bar(self.stream, width, self.seconds_left, label)
            self._task = self._progress.add_task(
                "sweep", total=total, completed=reused, rate="",
                counts=counts_text(self.counts), short=counts_text(self.counts, short=True))
            self._progress.start()

    def seconds_left(self) -> float | None:
        """The eta: eta_seconds of the trials still to train when the run started."""
        to_train = self.total - self.reused
        done = (self.done - self.reused) / to_train if to_train > 0 else 1.0
        return eta_seconds(self.estimate, self.clock() - self.started, done)

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
        elapsed = max(self.clock() - self.started, 1e-9)
        self._progress.update(self._task, advance=step, counts=counts_text(self.counts),
                              short=counts_text(self.counts, short=True),
                              rate=f"{trained / elapsed:.1f} trials/s")

    def close(self, message: str) -> None:
        """Stop the bar and print the final line (not with quiet); the line names the results
        folder, which is the user's text, so its control characters are shown escaped."""
        if self._progress is not None:
            self._progress.stop()
        if not self.quiet:
            print(terminal_safe(message), file=self.stream, flush=True)
