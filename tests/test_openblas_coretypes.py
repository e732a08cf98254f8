"""The textbook checks pass under every OpenBLAS kernel this CPU can run.

OpenBLAS picks its kernels by CPU, and they sum dot products in different orders, so the last
bits of nnsweep's numbers, and of the textbooks' loops, differ from one CPU to another. The
checks of test_textbooks.py compare nnsweep with the textbook loop run in the same process,
and the printed figures at a precision no kernel changes. This runs them (all but the slow
ones) in a fresh process under each kernel this CPU can run, forced with OPENBLAS_CORETYPE, so
that a CPU we do not have at hand holds no surprise.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

ROOT = Path(__file__).resolve().parents[1]

# The CPU flags (as /proc/cpuinfo names them) that each core type's kernels need.
CORE_TYPES: dict[str, frozenset[str]] = {
    "Prescott": frozenset(),  # the generic x86-64 kernels, SSE2 and SSE3: every x86-64 CPU
    "Haswell": frozenset({"avx2", "fma"}),
    # AVX-512 with the VL, BW and DQ extensions of every Skylake-SP and later core (OpenBLAS
    # itself asks for VL); Xeon Phi has avx512f without them and cannot run these kernels.
    "SkylakeX": frozenset({"avx512f", "avx512vl", "avx512bw", "avx512dq"}),
}

# The name threadpoolctl reports for each forced core type. Where OpenBLAS is built without
# its oldest kernels (as in NumPy's wheels), Katmai is another name for the Prescott kernels,
# and the first one OpenBLAS finds for them.
REPORTED_AS: dict[str, frozenset[str]] = {
    "Prescott": frozenset({"Prescott", "Katmai"}),
    "Haswell": frozenset({"Haswell"}),
    "SkylakeX": frozenset({"SkylakeX"}),
}

# Runs in the child: says which kernels OpenBLAS took, then runs pytest in the same process.
CHILD = """\
import sys

import numpy
import pytest
import threadpoolctl

kernels = [info.get("architecture") or "unknown" for info in threadpoolctl.threadpool_info()
           if info["internal_api"] == "openblas"]
print("OpenBLAS kernels: " + ",".join(kernels), flush=True)
sys.exit(pytest.main(sys.argv[1:]))
"""


def cpu_flags() -> frozenset[str] | None:
    """This x86 CPU's flags from /proc/cpuinfo; None on other CPUs or where it cannot be read."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


def numpy_uses_openblas() -> bool:
    return any(info["internal_api"] == "openblas" for info in threadpool_info())


def why_not(core_type: str) -> str | None:
    """Why this machine cannot run the core type's kernels; None when it can."""
    flags = cpu_flags()
    if flags is None:
        return f"no x86 CPU flags to read on this {platform.machine()} machine"
    if missing := sorted(CORE_TYPES[core_type] - flags):
        return f"this CPU lacks {', '.join(missing)}"
    return None


@pytest.mark.slow
@pytest.mark.skipif(not numpy_uses_openblas(),
                    reason=f"numpy {np.__version__} does not use OpenBLAS here")
@pytest.mark.parametrize("core_type", list(CORE_TYPES))
def test_the_textbook_checks_pass_under_every_openblas_kernel_this_cpu_runs(
    core_type: str,
) -> None:
    if (reason := why_not(core_type)) is not None:
        pytest.skip(reason)
    env = dict(os.environ)  # OPENBLAS_L2_SIZE and the rest as found
    env["OPENBLAS_CORETYPE"] = core_type
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "-q", "-p", "no:cacheprovider", "-m", "not slow",
         "tests/test_textbooks.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    kernels = re.search(r"^OpenBLAS kernels: (.*)$", done.stdout, re.MULTILINE)
    assert kernels is not None, done.stdout[-4000:]
    assert set(kernels.group(1).split(",")) <= REPORTED_AS[core_type], kernels.group(0)
    assert re.search(r"\b\d+ passed\b", done.stdout), done.stdout[-4000:]
