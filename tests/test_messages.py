"""The library words what went wrong in data fields and flag-free sentences; the command line
adds the flags. What a user sees is the README's "When things go wrong" line, to the letter."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnsweep import __main__ as cli
from nnsweep import errors

CASES = [
    (errors.FolderBusy("results/xor", {"pid": 4242, "host": "HOST"}),
     "nnsweep: results/xor: another run is using this folder (pid 4242 on HOST); wait for it "
     "to finish or choose another --out"),
    (errors.OtherSpec("results/xor", "6675204a5075aa25", "0beffdf04f4e57d8"),
     "nnsweep: results/xor: made by another spec (hash 6675204a5075aa25, this one is "
     "0beffdf04f4e57d8); rerun with --fresh to start over there, or choose another folder with "
     "--out"),
    (errors.EngineMismatch("results/xor", "numpy", 49, "numba"),
     "nnsweep: results/xor: 49 trials here were trained by the numpy engine and this run uses "
     "numba; one folder never mixes engines: resume with --engine numpy, start over with "
     "--fresh, or choose another folder with --out"),
    (errors.EngineLacks("numba", 'optimizer = "adam"'),
     'nnsweep: the numba engine does not train optimizer = "adam"; the numpy engine does: run '
     "with --engine numpy"),
    (errors.GridTooLarge("sweeps/big.toml", 4_000_000, 100_000, 10_000_000),
     "nnsweep: sweeps/big.toml: the grid has 4,000,000 trials, more than the limit of 100,000; "
     "narrow the grid, or raise the limit with --max-trials 4000000"),
    (errors.GridTooLarge("s.toml", 10**18, 100_000, 10_000_000),
     "nnsweep: s.toml: the grid has 1,000,000,000,000,000,000 trials, more than the limit of "
     "100,000; narrow the grid, or split it into sweeps of at most 10,000,000 trials (the most "
     "one run can plan)"),
    (errors.NoRoom("results/big", "disk", 12 * 10**9, 3 * 10**9),
     "nnsweep: results/big: the results would take about 12 GB on disk, more than the 3 GB free "
     "there; record fewer epochs (raise record_every in [params], or --record-every N) or narrow "
     "the grid (--max-trials limits its size), or choose another --out"),
    (errors.NoRoom("results/big", "memory", 12 * 10**9, 3 * 10**9),
     "nnsweep: results/big: building the tables would need about 12 GB of memory, more than "
     "the 3 GB available; record fewer epochs (raise record_every in [params], or "
     "--record-every N) or narrow the grid (--max-trials limits its size)"),
    (errors.CannotWrite("results/xor", "No space left on device", "journal.jsonl"),
     "nnsweep: results/xor: cannot write results (No space left on device); every trial "
     "finished so far is kept in journal.jsonl: free some space or choose another --out, then "
     "run again to resume"),
    (errors.MissingExtra("ray"),
     "nnsweep: --backend ray needs the ray extra: pip install 'nnsweep[ray]'"),
    (errors.UnknownBackend("spark", ("loky", "dask", "ray")),
     "nnsweep: --backend spark: expected one of loky, dask, ray"),
    (errors.Unreachable("scheduler", "tcp://127.0.0.1:9", "Dask scheduler", "OSError: refused"),
     "nnsweep: --scheduler tcp://127.0.0.1:9: cannot connect to a Dask scheduler there "
     "(OSError: refused)"),
    (errors.Unreachable("address", "ray://nowhere:10001", "Ray cluster", "ConnectionError"),
     "nnsweep: --address ray://nowhere:10001: cannot connect to a Ray cluster there "
     "(ConnectionError)"),
    (errors.UnknownTrial("zzz", 0),
     "nnsweep: --trial zzz: no trial with that id (a unique prefix is enough)"),
    (errors.Interrupted(16, 64, "results/xor", "python -m nnsweep run sweeps/xor.toml"),
     "nnsweep: interrupted: 16 of 64 trials done and saved in results/xor; run the same "
     "command again to resume: python -m nnsweep run sweeps/xor.toml (the report was not "
     "built; python -m nnsweep report results/xor builds it now)"),
]


@pytest.mark.parametrize(("error", "line"), CASES, ids=[type(e).__name__ for e, _ in CASES])
def test_the_command_line_adds_its_flags_to_the_librarys_sentence(
    error: Exception, line: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def fails(args: object) -> int:
        raise error

    monkeypatch.setitem(cli._COMMANDS, "show", fails)
    status = cli.main(["show", str(tmp_path)])
    assert status == (cli.EXIT_INTERRUPTED if isinstance(error, errors.Interrupted)
                      else cli.EXIT_USAGE)
    assert capsys.readouterr().err.splitlines() == [line]
    assert "--" not in str(error)  # the library's own sentence names no flag
