"""The one family of errors that means "bad input or usage": the command line exits 2 on it."""

from __future__ import annotations


class NnsweepWarning(UserWarning):
    """Something was damaged and has been worked around; the command line prints one line."""


class NnsweepError(Exception):
    """Bad input, bad usage or an unusable results folder; the message is for the user."""


class SpecError(NnsweepError):
    """A sweep file with problems; every problem is listed, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DataError(NnsweepError):
    """A dataset that cannot be used: missing file, bad cell, ragged rows, ..."""


class ResultsError(NnsweepError):
    """A results folder that cannot be used as asked (another spec's folder, locked, ...)."""


class Interrupted(Exception):
    """Ctrl-C during a run: finished trials are saved, the command line exits 130."""

    def __init__(self, done: int, total: int, directory: str, command: str) -> None:
        self.done, self.total = done, total
        super().__init__(f"interrupted: {done} of {total} trials done and saved in {directory}; "
                         f"run the same command again to resume: {command} (the report was "
                         f"not built; python -m nnsweep report {directory} builds it now)")
