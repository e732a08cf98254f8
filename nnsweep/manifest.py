"""What manifest.json says about a results folder: the sweep, the versions, every invocation.

store reads and writes the file; this module decides its contents, so a run only hands over
what it did. Fields already in the folder's manifest (its creation, earlier invocations, the
tables' generation) carry over until a run replaces them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import socket
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd

from nnsweep import __version__

if TYPE_CHECKING:
    from nnsweep.spec import Spec


def new_manifest(spec: Spec, old: Mapping[str, Any], trials: Sequence[str], *, command: str,
                 workers: int, engine: str, backend: str, to_train: int) -> dict[str, Any]:
    """The manifest of a run starting now, over the folder's manifest so far (`old`, {} for a
    new folder), with this invocation added: how it was started and what it will train."""
    started = now()
    search = search_record(spec)
    return {
        "name": spec.name,
        "description": spec.description,
        "spec_hash": spec.hash,
        "spec_file": str(spec.source) if spec.source else None,
        "dataset": {"name": spec.dataset.name, "hash": spec.dataset.hash,
                    "rows": int(spec.dataset.x.shape[0]),
                    **({"held_out": int(spec.dataset.x_val.shape[0])}
                       if spec.dataset.x_val is not None else {})},
        "axes": list(spec.axes),
        **({"search": search} if search else {}),
        "report": {"x": spec.report.x, "y": spec.report.y, "facet": spec.report.facet},
        "versions": {
            "nnsweep": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__, "joblib": joblib.__version__,
        },
        "host": socket.gethostname(),
        "created": old.get("created", started),
        "started": started,
        "finished": None,
        "status_counts": old.get("status_counts", {}),
        "generation": old.get("generation"),  # the tables now on disk, until new ones are
        "trials": list(trials),
        "invocations": [*old.get("invocations", []), {
            "started": started, "command": command, "pid": os.getpid(), "jobs": workers,
            "engine": engine, "backend": backend, "to_train": to_train,
        }],
    }


def finish_manifest(manifest: dict[str, Any], *, generation: str, statuses: Iterable[str],
                    trained: int, reused: int, interrupted: bool) -> None:
    """Record the tables just published (`generation`) and how this invocation ended."""
    manifest["generation"] = generation
    manifest["finished"] = now()
    manifest["status_counts"] = dict(sorted(Counter(statuses).items()))
    manifest["invocations"][-1].update(finished=manifest["finished"], trained=trained,
                                       reused=reused, interrupted=interrupted)


def search_record(spec: Spec) -> dict[str, Any] | None:
    """The search as the manifest records it: an edge search's settings (store.edge_search
    reads them back: its edges table depends on them), a halving or hyperband search's rungs
    (store.halving_search reads them back: its trials table depends on them), a random or
    sobol search's draw and the parameters it drew (the report tells the points from them);
    None for a grid."""
    search = spec.search
    if search.edge is not None:
        return {"method": "edge", **dataclasses.asdict(search.edge)}
    if search.halving is not None:
        return dataclasses.asdict(search.halving)
    if search.drawn:
        return {"method": search.method, "samples": search.samples, "seed": search.seed,
                "drawn": list(search.drawn)}
    return None


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
