"""The compiled engine's kernels compiled ahead, in the background.

A kernel compiles in about 10 s the first time a machine trains with it (Numba keeps it in the
user's cache after). A sweep run from the command line with the NumPy engine starts one
process, at the lowest priority and detached from the run, that compiles the kernels
`--engine numba` would need for the same sweep: the run is not slowed (the process gets only
the cycles nothing else wants, mostly while the report draws on one core), and the first
compiled run after it loads its kernels instead of compiling them. `NNSWEEP_WARM=0` starts
none. The process is best effort: it writes nothing but Numba's cache, says nothing, and a
kernel it has not finished is compiled (or waited for, under the cache's lock) by the run
that needs it.

    python -m nnsweep.warmup '{"activation": "sigmoid", ...}' ...   # what start() runs
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence

from nnsweep import engines
from nnsweep.batching import batch_key
from nnsweep.params import TrialParams

ENV = "NNSWEEP_WARM"  # "0": never start the process
# The fields of a trial that choose its kernel (engine_numba.Variant.of reads them).
KERNEL_FIELDS: tuple[str, ...] = ("hidden", "activation", "output", "optimizer",
                                  "weight_decay", "dropout", "loss")


def wanted(trials: Sequence[TrialParams], *, validating: bool = False,
           stopping: bool = False) -> list[str]:
    """The arguments of the warm-up process for `trials`: one trial of each batch key, as JSON
    of KERNEL_FIELDS; none where the compiled engine could not train them."""
    if not trials or engines.lacks("numba", trials, validating, stopping) is not None:
        return []
    first: dict[object, TrialParams] = {}
    for params in trials:
        first.setdefault(batch_key(params), params)
    return [json.dumps({name: getattr(params, name) for name in KERNEL_FIELDS})
            for params in first.values()]


def start(trials: Sequence[TrialParams], *, validating: bool = False,
          stopping: bool = False) -> subprocess.Popen[bytes] | None:
    """Start the warm-up process for `trials` (with held-out rows when `validating`; a search
    that pauses trials, `stopping`, the compiled engine cannot run); None where it is off,
    Numba is not installed, or there is nothing it could compile."""
    if os.environ.get(ENV, "1") == "0" or importlib.util.find_spec("numba") is None:
        return None
    arguments = wanted(trials, validating=validating, stopping=stopping)
    if not arguments:
        return None
    command = [sys.executable, "-m", "nnsweep.warmup", *(["--validating"] if validating else []),
               *arguments]
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:  # no process to spare: the compiled run compiles for itself
        return None


def main(argv: Sequence[str]) -> int:
    """Compile, into the cache, each kernel of the trials in `argv` that it does not hold."""
    with contextlib.suppress(AttributeError, OSError):  # nice: POSIX only
        os.nice(19)
    validating = "--validating" in argv
    trials = []
    for argument in argv:
        if argument != "--validating":
            fields = json.loads(argument)
            trials.append(TrialParams(**{**fields, "hidden": tuple(fields["hidden"])}))
    if engines.broken("numba") is not None:
        return 0
    from nnsweep import engine_numba

    if engine_numba.cache_folder() is None:  # nowhere to keep them: nothing to gain
        return 0
    for kernel in {(t.activation, t.output, engine_numba.Variant.of(t, validating))
                   for t in trials}:
        if not engine_numba.is_cached(*kernel):
            engine_numba.kernel(*kernel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
