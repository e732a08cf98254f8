"""Whether a results folder's report is current, told without drawing or importing anything
heavy: a rerun with nothing new keeps its page instead of drawing every figure anew.

A page is current when its key (the tables' generation, the sweep's [report] layout, the
options it was built with, SVG copies or not) is the one asked for now, and every picture it
shows is still in plots/ as nnsweep's own file (a regular file, never a link): PNG, and SVG
where the page was asked for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nnsweep import store

FIGURE = re.compile(r'<figure id="([A-Za-z0-9_]+)">')  # report.py's id of each picture
HEAD = 4096  # the page's key is in its head


def page_key(manifest: Mapping[str, Any], *, x: str | None = None, y: str | None = None,
             facet: str | None = None, trial: str | None = None, svg: bool = False) -> str:
    """What a page shows: store.report_key, and whether SVG copies were asked for."""
    key = store.report_key(manifest, x=x, y=y, facet=facet, trial=trial)
    return f"{key}-svg" if svg else key


def is_current(directory: Path, manifest: Mapping[str, Any], *, svg: bool = False) -> bool:
    """Whether report.html shows these tables in the sweep's own layout, with SVG copies when
    `svg`, and every picture it shows is present in plots/."""
    page, plots = directory / store.REPORTS[0], directory / store.PLOTS
    if manifest.get("generation") is None or not _own_file(page) or plots.is_symlink() \
            or not plots.is_dir():
        return False
    try:
        text = page.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if store.report_meta(page_key(manifest, svg=svg)) not in text[:HEAD]:
        return False
    suffixes = (".png", ".svg") if svg else (".png",)
    return all(_own_file(plots / f"{name}{suffix}") for name in FIGURE.findall(text)
               for suffix in suffixes)


def _own_file(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()
