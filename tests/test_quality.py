"""The code stays ruff and mypy clean: CI runs the linters as part of the suite."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed beside this Python: pip install -e '.[dev]'")
    return found


def test_ruff_finds_nothing() -> None:
    done = subprocess.run([tool("ruff"), "check", "."], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_strict_finds_nothing() -> None:
    done = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# The modules from the bottom of the flow up (docs/design.md lists them with their jobs): each
# may import only modules before it in this list.
LAYERS = (
    "params", "result", "errors", "text", "packing", "batching", "network", "reference", "trainer",
    "engine_numba", "engines", "warmup", "datasets", "grid", "edge", "halving", "schema", "search",
    "spectext", "checks", "specdata", "spec", "journal", "tables", "leanhistory", "outcomes",
    "store", "manifest", "backends", "progress", "planner", "runner", "pages", "figures",
    "cellstats", "heatmaps", "learningcurves", "directionmaps", "searchplots", "plots", "report",
    "show", "__main__",
)


def nnsweep_imports(path: Path) -> set[str]:
    """The nnsweep modules a file imports at run time (type-checking imports left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and ast.unparse(block.test) == "TYPE_CHECKING" for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "nnsweep":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nnsweep."):
            found.add(str(node.module).split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nnsweep.")}
    return found & set(LAYERS)


def test_every_module_has_its_place_in_the_layers() -> None:
    modules = {p.stem for p in (ROOT / "nnsweep").glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)


@pytest.mark.parametrize("module", LAYERS)
def test_no_module_imports_one_above_it_in_the_flow(module: str) -> None:
    imported = nnsweep_imports(ROOT / "nnsweep" / f"{module}.py")
    above = {name for name in imported if LAYERS.index(name) >= LAYERS.index(module)}
    assert not above, f"{module} imports {sorted(above)}, which come later in the flow"
