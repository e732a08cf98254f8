"""The one family of errors that means "bad input or usage": the command line exits 2 on it.

The library's errors carry what went wrong as data fields, and their message is the library's
own sentence: it names keywords and values, never a command-line flag. The command line reads
the fields to add its way out (which flag to use), so each layer words only what it knows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


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


class FolderBusy(ResultsError):
    """Another live run holds the folder's lock; `owner` is its pid and host ({} if unknown)."""

    def __init__(self, directory: str | Path, owner: Mapping[str, Any]) -> None:
        self.directory, self.owner = Path(directory), dict(owner)
        who = f" (pid {owner['pid']} on {owner['host']})" if owner else ""
        super().__init__(f"{directory}: another run is using this folder{who}")


class OtherSpec(ResultsError):
    """The folder holds trials of another sweep: `made_by` is its spec's hash (None when only
    its spec.toml tells them apart), `this` the hash of the spec being run."""

    def __init__(self, directory: str | Path, made_by: str | None, this: str) -> None:
        self.directory, self.made_by, self.this = Path(directory), made_by, this
        which = f"hash {made_by}" if made_by else "a spec.toml that differs"
        super().__init__(f"{directory}: made by another spec ({which}, this one is {this})")


class EngineMismatch(ResultsError):
    """`count` of the folder's trials were trained by `engine`, and this run uses `wanted`."""

    def __init__(self, directory: str | Path, engine: str, count: int, wanted: str) -> None:
        self.directory, self.engine, self.count, self.wanted = (
            Path(directory), engine, count, wanted)
        super().__init__(f"{directory}: {count} trials here were trained by the {engine} engine "
                         f"and this run uses {wanted}; one folder never mixes engines")


class EngineLacks(NnsweepError):
    """The `engine` asked for cannot train a trial's `setting` (say 'optimizer = "adam"')."""

    def __init__(self, engine: str, setting: str) -> None:
        self.engine, self.setting = engine, setting
        super().__init__(f"the {engine} engine does not train {setting}; the numpy engine does")


class CannotWrite(ResultsError):
    """Writing into the folder failed (`reason`: the system's words); `journal`, the file
    that keeps every trial finished so far."""

    def __init__(self, directory: str | Path, reason: str, journal: str) -> None:
        self.directory, self.reason, self.journal = Path(directory), reason, journal
        super().__init__(f"{directory}: cannot write results ({reason}); every trial finished "
                         f"so far is kept in {journal}")


class GridTooLarge(NnsweepError):
    """A grid of `size` trials over the `limit` a run was given; `most` is the ceiling no
    limit may pass (beyond it the grid must be split, not the limit raised)."""

    def __init__(self, source: str, size: int, limit: int, most: int) -> None:
        self.source, self.size, self.limit, self.most = source, size, limit, most
        way_out = ("raise the limit" if size <= most else
                   f"split it into sweeps of at most {most:,} trials (the most one run can plan)")
        super().__init__(f"{source}: the grid has {size:,} trials, more than the limit of "
                         f"{limit:,}; narrow the grid, or {way_out}")


class NoRoom(NnsweepError):
    """The results would need `need` bytes of `what` ("disk" or "memory"), more than `free`."""

    def __init__(self, directory: str | Path, what: str, need: int, free: int) -> None:
        self.directory, self.what, self.need, self.free = Path(directory), what, need, free
        if what == "disk":
            sentence = (f"the results would take about {_bytes(need)} on disk, more than the "
                        f"{_bytes(free)} free there")
        else:
            sentence = (f"building the tables would need about {_bytes(need)} of memory, more "
                        f"than the {_bytes(free)} available")
        super().__init__(f"{directory}: {sentence}")


def _bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}"
        count /= 1000
    return f"{count:.0f} TB"


class OptionError(NnsweepError):
    """A value given for one of run's or report's options that cannot be used. The message
    starts with the option's name (`option`, the library's keyword), then the value."""

    option: str


class UnknownBackend(OptionError):
    option = "backend"

    def __init__(self, backend: str, known: Sequence[str]) -> None:
        self.backend, self.known = backend, tuple(known)
        super().__init__(f"backend {backend}: expected one of {', '.join(known)}")


class MissingExtra(OptionError):
    """The backend's optional dependencies (the extra of the same name) are not installed."""

    option = "backend"

    def __init__(self, backend: str) -> None:
        self.backend = backend
        super().__init__(f"backend {backend} needs the {backend} extra: pip install "
                         f"'nnsweep[{backend}]'")


class Unreachable(OptionError):
    """Nothing answers at a cluster's `address` (`option`: "scheduler" for Dask, "address"
    for Ray); `reason` is the connection's error, on one line."""

    def __init__(self, option: str, address: str, cluster: str, reason: str) -> None:
        self.option, self.address, self.cluster, self.reason = option, address, cluster, reason
        super().__init__(f"{option} {address}: cannot connect to a {cluster} there ({reason})")


class UnknownTrial(OptionError):
    """No trial, or several (`matches`), have an id starting with `trial`."""

    option = "trial"

    def __init__(self, trial: str, matches: int) -> None:
        self.trial, self.matches = trial, matches
        what = "no trial" if not matches else f"{matches} trials"
        super().__init__(f"trial {trial}: {what} with that id (a unique prefix is enough)")


class Interrupted(Exception):
    """Ctrl-C during a run: finished trials are saved, the command line exits 130."""

    def __init__(self, done: int, total: int, directory: str, command: str) -> None:
        self.done, self.total, self.directory, self.command = done, total, directory, command
        super().__init__(f"interrupted: {done} of {total} trials done and saved in {directory}; "
                         f"run the same command again to resume: {command}")
