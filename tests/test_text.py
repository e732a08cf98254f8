"""Text from a sweep file or a results folder is printed as text.

On the terminal it is never read as rich markup and its control characters show as escapes;
in report.md it is HTML-escaped, as report.html always was. The folder here is a real tiny
sweep run through the command line into a folder named with markup, with a description full
of markup, escape sequences and a script, and a name in its manifest that is markup too. Table
cells no run can produce (a crafted trial id, a crafted error) are rendered from its tables.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from helpers import run_cli, write_spec

import nnsweep
from nnsweep import __main__ as cli
from nnsweep.errors import DataError, NnsweepWarning
from nnsweep.report import _markdown_table
from nnsweep.show import render
from nnsweep.text import terminal_safe

DESCRIPTION = "[/x] [relu] \x1b[31mred\x1b]0;title\x07 <script>alert(1)</script>"
SPEC = r'''name = "marked"
description = "[/x] [relu] \u001b[31mred\u001b]0;title\u0007 <script>alert(1)</script>"
dataset = "xor"

[params]
epochs = 30

[grid]
alpha = [0.5, 1]
seed = [1, 2]
'''
NAME = "[/x]name[bold]"  # a name only a hand-edited manifest can hold: spec names are checked
TRIAL = "[/x]\x1b[2J"  # clears the screen if printed raw
ERROR = "ValueError: <img src=x onerror=alert(1)> | [/x] \x1b[31m"
RAW = ("\x1b", "\x07")  # ESC and BEL: what makes an escape sequence


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sweep run into a folder whose name is markup, then given a markup name in its
    manifest (spec names are checked; a results folder can be edited by hand)."""
    root = tmp_path_factory.mktemp("marked")
    spec = write_spec(root, SPEC, "marked.toml")
    out = root / "[bold]out"
    assert cli.main(["run", str(spec), "--out", str(out), "--jobs", "1", "--quiet",
                     "--no-report"]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["description"] == DESCRIPTION
    (out / "manifest.json").write_text(json.dumps({**manifest, "name": NAME}), encoding="utf-8")
    return out


def crafted(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials with the best one's id an escape sequence and the worst one failed with a
    crafted error."""
    trials = trials.sort_values("final_error", ignore_index=True)
    trials.loc[0, "trial"] = TRIAL
    last = len(trials) - 1
    trials.loc[last, ["status", "error"]] = ["failed", ERROR]
    trials.loc[last, "final_error"] = float("nan")
    return trials


def test_control_characters_become_visible_escapes_and_unicode_stays() -> None:
    assert terminal_safe("\x1b[31mred\x1b]0;t\x07") == "\\x1b[31mred\\x1b]0;t\\x07"
    assert terminal_safe("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert terminal_safe("\x00\x7f\x9b\ud800") == "\\x00\\x7f\\x9b\\ud800"
    assert terminal_safe("αβ 日本 [relu] \\ é") == "αβ 日本 [relu] \\ é"


def test_show_prints_markup_literally_and_escape_sequences_as_escapes(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["show", str(folder)]) == 0
    shown = capsys.readouterr()
    assert "Traceback" not in shown.err and shown.err == ""
    out = shown.out
    assert not any(char in out for char in RAW)
    assert f"{NAME}: 4 trials in {folder}" in out
    assert "[/x] [relu] \\x1b[31mred\\x1b]0;title\\x07 <script>alert(1)</script>" in out


def test_show_prints_table_cells_as_text(folder: Path) -> None:
    results = nnsweep.load_results(folder)
    shown = render(replace(results, trials=crafted(results.trials)))
    assert "[/x]\\x1b[2J" in shown  # the best trial's id, first in its table
    assert not any(char in shown for char in RAW)


def test_show_through_python_m_nnsweep(folder: Path) -> None:
    done = run_cli("show", folder, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "[/x] [relu]" in done.stdout and "\\x1b[31m" in done.stdout
    assert not any(char in done.stdout + done.stderr for char in RAW)


@pytest.fixture(scope="module")
def reported(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the folder (the tests of `folder` see it as the run left it), its spec.toml
    given a comment of backticks that would close a plain code fence, and its report built by
    `nnsweep report`."""
    copy = Path(shutil.copytree(folder, tmp_path_factory.mktemp("reported") / folder.name))
    with (copy / "spec.toml").open("a", encoding="utf-8") as spec:
        spec.write("# ```\n# <b>after the fence</b>\n")
    assert cli.main(["report", str(copy)]) == 0
    return copy


def test_report_md_escapes_html_in_every_text_and_report_html_stays_escaped(
    reported: Path,
) -> None:
    markdown = (reported / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith(f"# {NAME}\n")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert "[bold]out" in markdown  # the folder, in the facts line
    # a code fence shows the spec as typed, so there the text stays as the file has it
    spec = re.search(r"^(`{3,})toml\n.*?\n\1$", markdown, flags=re.MULTILINE | re.DOTALL)
    assert spec is not None and '\\u0007 <script>alert(1)</script>"' in spec.group()
    assert "<script>" not in markdown.replace(spec.group(), "")
    page = (reported / "report.html").read_text(encoding="utf-8")
    assert f'<p class="description">{html.escape(DESCRIPTION)}</p>' in page
    assert "<script>" not in page and "# &lt;b&gt;after the fence&lt;/b&gt;" in page


def test_no_line_of_the_spec_closes_report_mds_code_fence(reported: Path) -> None:
    markdown = (reported / "report.md").read_text(encoding="utf-8")
    assert "\n````toml\n" in markdown
    assert "\n# ```\n# <b>after the fence</b>\n````\n" in markdown


def test_report_md_cells_escape_html_and_pipes(folder: Path) -> None:
    trials = crafted(nnsweep.load_results(folder).trials)
    failed = trials[trials["status"] == "failed"][["trial", "alpha", "status", "error"]]
    lines = _markdown_table(failed)
    assert lines[0] == "| trial | alpha | status | error |"
    assert lines[2].endswith("| failed | ValueError: &lt;img src=x onerror=alert(1)&gt; \\| "
                             "[/x] \x1b[31m |")


def test_each_problem_of_a_bad_spec_stays_one_line_with_its_escapes_visible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, 'dataset = "xor"\n"\\u001b]0;owned\\u0007" = 1\n[params]\n'
                      'epochs = 0\n', "bad.toml")
    assert cli.main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert not any(char in err for char in RAW)
    lines = err.strip().split("\n")
    assert len(lines) == 2 and all(line.startswith(f"{spec}: ") for line in lines)
    assert "\\x1b]0;owned\\x07: unknown key" in lines[0]


def test_errors_keep_one_line_per_problem_and_warnings_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def warns_then_fails(args: object) -> int:
        warnings.warn("results/\x1b[2Jx: took over a lock\nforged line", NnsweepWarning,
                      stacklevel=1)
        raise DataError("data.csv: row 2: bad cell '\x1b[31m'\ndata.csv: row 3: bad cell")

    monkeypatch.setitem(cli._COMMANDS, "validate", warns_then_fails)
    assert cli.main(["validate", "any.toml"]) == 2
    assert capsys.readouterr().err.split("\n") == [
        "nnsweep: warning: results/\\x1b[2Jx: took over a lock\\nforged line",
        "nnsweep: data.csv: row 2: bad cell '\\x1b[31m'",
        "data.csv: row 3: bad cell",
        "",
    ]


def test_the_runs_final_line_names_its_markup_folder_as_typed_and_counts_every_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, SPEC.replace("seed = [1, 2]", ""), "marked.toml")
    out = tmp_path / "[red]x"
    assert cli.main(["run", str(spec), "--out", str(out), "--jobs", "1", "--no-report"]) == 0
    counts = nnsweep.load_results(out).trials["status"].value_counts()
    final = (f"done: 2/2 trials in {out} (converged {counts.get('converged', 0)} · not "
             f"converged {counts.get('not_converged', 0)} · diverged 0 · failed 0)")
    assert final in capsys.readouterr().err.splitlines()
