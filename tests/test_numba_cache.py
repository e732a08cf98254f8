"""The compiled engine's cache: where its kernels are kept, that a second process loads them
instead of compiling, that a kernel of other sources is never loaded, that no writable folder
only means compiling, and that of two first runs at once one compiles and the other loads.

Each check runs in a new process with its own cache folders (XDG_CACHE_HOME, TMPDIR), as a
user's run would; the ones that compile are marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nnsweep import engines

pytestmark = pytest.mark.skipif(engines.installed()[0] != "numba",
                                reason="the numba extra is not installed")

PACKAGE = Path(__file__).resolve().parents[1] / "nnsweep"

# Trains each pair of activations named on its command line with both engines, and prints
# what it found as JSON: the largest weight gap between them, how often the pair's kernel was
# loaded from the cache and compiled, the same for the helpers every kernel shares, and the
# cache folder.
TRAIN = """
import json, sys
import numpy as np
from nnsweep import engine_numba
from nnsweep.params import TrialParams
from nnsweep.trainer import train_batch

x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
y = np.array([[0], [1], [1], [0]], dtype=float)
found = {"folder": str(engine_numba.cache_folder())}
for pair in sys.argv[1:]:
    hidden, output = pair.split("/")
    trials = [TrialParams(hidden=(width,), activation=hidden, output=output, alpha=0.5,
                          epochs=30, seed=width) for width in (2, 9)]
    compiled, plain = engine_numba.train_batch(x, y, trials), train_batch(x, y, trials)
    gap = max(float(np.max(np.abs(a - b))) for c, p in zip(compiled, plain)
              for a, b in zip(c.weights, p.weights))
    stats = engine_numba.kernel(hidden, output).stats
    found[pair] = {"gap": gap, "loaded": sum(stats.cache_hits.values()),
                   "compiled": sum(stats.cache_misses.values())}
helpers = [helper for helper, _ in engine_numba._HELPERS]
found["helpers"] = {"loaded": sum(sum(h.stats.cache_hits.values()) for h in helpers),
                    "compiled": sum(sum(h.stats.cache_misses.values()) for h in helpers),
                    "count": len(helpers)}
print(json.dumps(found))
"""

# Prints the cache folder and whether each pair named (hidden/output, or hidden/output/optimizer
# for that variant) is cached, compiling nothing.
LOOK = """
import json, sys
from nnsweep import engine_numba
found = {"folder": str(engine_numba.cache_folder()), "stamp": engine_numba.source_stamp(),
         "module": engine_numba.__file__}
for pair in sys.argv[1:]:
    hidden, output, *optimizer = pair.split("/")
    found[pair] = engine_numba.is_cached(hidden, output, engine_numba.Variant(*optimizer))
print(json.dumps(found))
"""


def environment(tmp: Path, **changes: str) -> dict[str, str]:
    """This environment with a cache folder and a temporary folder of the test's own, and no
    NUMBA_CACHE_DIR (which would take precedence); `changes` on top."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    (tmp / "tmp").mkdir(exist_ok=True)
    env.update({"XDG_CACHE_HOME": str(tmp / "cache"), "TMPDIR": str(tmp / "tmp"), **changes})
    return env


def python(code: str, *args: str, env: Mapping[str, str], path: Path | None = None,
           ) -> subprocess.Popen[str]:
    """`code` started in a new interpreter; `path`, a folder holding a copy of nnsweep to
    import instead of this one."""
    env = dict(env)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                            cwd=env["TMPDIR"],  # not a checkout: -c imports from its folder
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


def run(code: str, *args: str, env: Mapping[str, str], path: Path | None = None
        ) -> dict[str, Any]:
    return finished(python(code, *args, env=env, path=path))


def copy_of_nnsweep(folder: Path) -> Path:
    """A copy of the nnsweep package in `folder`, to be imported instead of this one."""
    shutil.copytree(PACKAGE, folder / "nnsweep", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def installed_as_version(folder: Path, version: str) -> None:
    """Make `folder`, first on the path, say nnsweep is installed at `version`."""
    info = folder / f"nnsweep-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nnsweep\nVersion: {version}\n")


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose cache holds the sigmoid/sigmoid kernel, compiled by a first run."""
    env = environment(tmp_path_factory.mktemp("warm"))
    first = run(TRAIN, "sigmoid/sigmoid", env=env)
    assert first["sigmoid/sigmoid"]["compiled"] == 1
    assert first["helpers"]["compiled"] == first["helpers"]["count"]
    return env


# --- where the kernels are kept -----------------------------------------------------------------

def test_kernels_are_kept_in_the_users_cache_folder_one_subfolder_per_source_stamp(
        tmp_path: Path) -> None:
    env = environment(tmp_path)
    found = run(LOOK, env=env)
    assert found["folder"] == str(tmp_path / "cache" / "nnsweep" / "numba" / found["stamp"])


def test_numbas_own_cache_setting_takes_precedence(tmp_path: Path) -> None:
    found = run(LOOK, env=environment(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "numba")))
    assert found["folder"] == str(tmp_path / "numba" / "nnsweep" / found["stamp"])


def test_home_without_a_writable_cache_folder_falls_back_to_a_temporary_folder(
        tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    blocked = str(tmp_path / "a-file" / "cache")  # a folder cannot be made under a file
    found = run(LOOK, env=environment(tmp_path, XDG_CACHE_HOME=blocked, HOME=blocked))
    assert Path(found["folder"]).parent.parent == tmp_path / "tmp"


@pytest.mark.slow
def test_with_no_writable_folder_at_all_kernels_compile_and_train(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    code = ("from pathlib import Path\nfrom nnsweep import engine_numba\n"
            f"engine_numba._cache_roots = lambda: [Path({str(tmp_path / 'a-file')!r})]\n"
            + TRAIN)
    found = run(code, "tanh/sigmoid", env=environment(tmp_path))
    assert found["folder"] == "None"
    assert found["tanh/sigmoid"]["compiled"] == 1
    assert found["tanh/sigmoid"]["gap"] < 1e-9


# --- loading, and never loading a stale kernel ----------------------------------------------

@pytest.mark.slow
def test_a_second_process_loads_the_kernel_instead_of_compiling(warm: dict[str, str]) -> None:
    second = run(TRAIN, "sigmoid/sigmoid", env=warm)["sigmoid/sigmoid"]
    assert (second["compiled"], second["loaded"]) == (0, 1)
    assert second["gap"] < 1e-9


@pytest.mark.slow
def test_a_kernel_of_another_pair_compiles_only_itself_and_loads_the_shared_helpers(
        warm: dict[str, str]) -> None:
    found = run(TRAIN, "relu/linear", env=warm)
    assert (found["relu/linear"]["compiled"], found["relu/linear"]["loaded"]) == (1, 0)
    assert (found["helpers"]["compiled"], found["helpers"]["loaded"]) == (
        0, found["helpers"]["count"])
    assert found["relu/linear"]["gap"] < 1e-9


@pytest.mark.slow
def test_only_the_pairs_of_activations_and_variants_a_run_trains_are_compiled(
        warm: dict[str, str]) -> None:
    pairs = ("sigmoid/sigmoid", "relu/sigmoid", "sigmoid/linear", "sigmoid/sigmoid/adam")
    found = run(LOOK, *pairs, env=warm)
    assert [found[pair] for pair in pairs] == [True, False, False, False]


@pytest.mark.slow
def test_the_same_sources_installed_elsewhere_load_the_same_kernels(
        warm: dict[str, str], tmp_path: Path) -> None:
    copy = copy_of_nnsweep(tmp_path)
    found = run(LOOK, "sigmoid/sigmoid", env=warm, path=copy)
    assert found["sigmoid/sigmoid"] is True
    assert found["module"] == str(copy / "nnsweep" / "engine_numba.py")


@pytest.mark.slow
@pytest.mark.parametrize("changed", ["network.py", "engine_numba.py"])
def test_a_kernel_compiled_from_other_sources_is_never_loaded(
        warm: dict[str, str], tmp_path: Path, changed: str) -> None:
    copy = copy_of_nnsweep(tmp_path)
    with open(copy / "nnsweep" / changed, "a", encoding="utf-8") as source:
        source.write("\n# changed\n")
    found = run(LOOK, "sigmoid/sigmoid", env=warm, path=copy)
    assert found["sigmoid/sigmoid"] is False
    assert found["stamp"] != run(LOOK, env=warm)["stamp"]


@pytest.mark.slow
def test_a_kernel_compiled_by_another_version_of_nnsweep_is_never_loaded(
        warm: dict[str, str], tmp_path: Path) -> None:
    copy = copy_of_nnsweep(tmp_path)
    installed_as_version(copy, "999.0")
    found = run(LOOK, "sigmoid/sigmoid", env=warm, path=copy)
    assert found["sigmoid/sigmoid"] is False


# --- two first runs at once -------------------------------------------------------------------

@pytest.mark.slow
def test_two_first_runs_at_once_compile_once_and_leave_a_kernel_both_load(tmp_path: Path
                                                                          ) -> None:
    env = environment(tmp_path)
    pair = "softplus/sigmoid"
    started = [python(TRAIN, pair, env=env) for _ in range(2)]
    found = [finished(process)[pair] for process in started]
    assert sorted((f["compiled"], f["loaded"]) for f in found) == [(0, 1), (1, 0)]
    assert all(f["gap"] < 1e-9 for f in found)
    after = run(TRAIN, pair, env=env)[pair]
    assert (after["compiled"], after["loaded"]) == (0, 1)
