"""A run's report: drawn when the run ends, kept by a rerun that changes nothing.

A rerun that trains nothing keeps report.html and every picture as they are, as long as the
page shows the tables' generation with the options asked for now (SVG copies or not) and
each picture it shows is still in plots/; anything else draws the report anew.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import write_spec

from nnsweep import pages
from nnsweep.__main__ import main

SWEEP = """\
name = "tiny"
dataset = "xor"
[params]
epochs = 60
record_every = 20
[grid]
hidden = [2, 3]
alpha = [1, 2]
"""


def run(spec: Path, out: Path, *options: str) -> None:
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--jobs", "1", *options]) == 0


def stamps(out: Path) -> dict[str, int]:
    """Each report file's modification time: a file written again gets a new one."""
    return {str(p.relative_to(out)): p.stat().st_mtime_ns
            for p in [out / "report.html", out / "report.md", *(out / "plots").iterdir()]}


def manifest(out: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return loaded


def test_run_with_svg_writes_an_svg_beside_each_png_and_links_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(write_spec(tmp_path, SWEEP), out, "--svg")
    pngs = {p.stem for p in (out / "plots").glob("*.png")}
    assert pngs and {p.stem for p in (out / "plots").glob("*.svg")} == pngs
    page = (out / "report.html").read_text(encoding="utf-8")
    assert all(f'href="plots/{name}.svg"' in page for name in pngs)
    assert pages.is_current(out, manifest(out), svg=True)
    assert not pages.is_current(out, manifest(out))  # a plain run asks for another page


def test_a_rerun_keeps_a_current_report_and_redraws_one_built_with_other_options(
        tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, SWEEP), tmp_path / "out"
    run(spec, out)
    assert not list((out / "plots").glob("*.svg"))
    before = stamps(out)
    run(spec, out)
    assert stamps(out) == before  # nothing new: nothing drawn
    run(spec, out, "--svg")
    assert stamps(out) != before
    assert list((out / "plots").glob("*.svg"))
    run(spec, out)
    assert not list((out / "plots").glob("*.svg"))  # drawn again, as asked: PNG only


def test_a_rerun_redraws_a_report_whose_picture_is_missing(tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path, SWEEP), tmp_path / "out"
    run(spec, out)
    (out / "plots" / "learning_curves.png").unlink()
    assert not pages.is_current(out, manifest(out))
    run(spec, out)
    assert (out / "plots" / "learning_curves.png").is_file()
    assert pages.is_current(out, manifest(out))


def test_a_picture_that_is_a_link_or_a_page_of_another_generation_is_not_current(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(write_spec(tmp_path, SWEEP), out)
    saved = manifest(out)
    assert pages.is_current(out, saved)
    assert not pages.is_current(out, {**saved, "generation": "0123456789abcdef"})
    assert not pages.is_current(out, {**saved, "generation": None})
    picture = out / "plots" / "outcome.png"
    picture.rename(tmp_path / "outcome.png")
    os.symlink(tmp_path / "outcome.png", picture)
    assert not pages.is_current(out, saved)


def test_the_page_key_tells_svg_copies_and_layouts_apart() -> None:
    saved = {"generation": "0123456789abcdef", "report": {"x": "alpha"}}
    keys = {pages.page_key(saved), pages.page_key(saved, svg=True),
            pages.page_key(saved, x="hidden"), pages.page_key({**saved, "generation": "1"})}
    assert len(keys) == 4
