"""nnsweep: hyperparameter sweeps and benchmarks for small neural networks trained from scratch.

    spec = nnsweep.load_spec("sweeps/xor.toml")
    results = nnsweep.run(spec, jobs=2)
    results.trials, results.history, results.directions, results.summary  # pandas frames
    nnsweep.load_results("results/xor").network(trial_id).predict([[1, 1, 1]])

The names below load on first use, so importing one module (say nnsweep.trainer in a worker)
does not pull in pandas, joblib and the plotting stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    __version__: str
    from nnsweep.errors import DataError as DataError
    from nnsweep.errors import Interrupted as Interrupted
    from nnsweep.errors import NnsweepError as NnsweepError
    from nnsweep.errors import ResultsError as ResultsError
    from nnsweep.errors import SpecError as SpecError
    from nnsweep.params import TrialParams as TrialParams
    from nnsweep.runner import run as run
    from nnsweep.spec import Spec as Spec
    from nnsweep.spec import load_spec as load_spec
    from nnsweep.store import Network as Network
    from nnsweep.store import Results as Results
    from nnsweep.store import load_results as load_results

_HOMES = {
    "DataError": "nnsweep.errors",
    "Interrupted": "nnsweep.errors",
    "NnsweepError": "nnsweep.errors",
    "ResultsError": "nnsweep.errors",
    "SpecError": "nnsweep.errors",
    "TrialParams": "nnsweep.params",
    "run": "nnsweep.runner",
    "Spec": "nnsweep.spec",
    "load_spec": "nnsweep.spec",
    "Network": "nnsweep.store",
    "Results": "nnsweep.store",
    "load_results": "nnsweep.store",
}

__all__ = [*sorted(_HOMES), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    if name == "__version__":  # pyproject.toml's, as installed: written in one place only
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("nnsweep")
        except PackageNotFoundError:  # imported from a source tree that was never installed
            return "unknown"
    raise AttributeError(f"module 'nnsweep' has no attribute {name!r}")
