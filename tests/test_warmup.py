"""The compiled engine's kernels compiled ahead: a command-line run with the NumPy engine starts
one background process that compiles what `--engine numba` would need for the same sweep, so
the first compiled run after it loads its kernels instead of compiling them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import write_spec

from nnsweep import warmup
from nnsweep.__main__ import main
from nnsweep.params import TrialParams

SWEEP = '''name = "warm"
dataset = "xor"
[params]
epochs = 20
[grid]
alpha = [0.1, 1.0]
hidden = [2, 4]
optimizer = ["sgd", "adam"]
'''


class Spawned:
    """subprocess.Popen as warmup.start calls it, recorded instead of run."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], **options: Any) -> str:
        assert options["start_new_session"] and options["stdout"] == subprocess.DEVNULL
        self.commands.append(command)
        return "started"


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Spawned:
    pytest.importorskip("numba")
    monkeypatch.setenv(warmup.ENV, "1")
    recorder = Spawned()
    monkeypatch.setattr(warmup.subprocess, "Popen", recorder)
    return recorder


def test_one_trial_of_each_batch_key_is_sent_with_the_fields_that_choose_its_kernel() -> None:
    trials = [TrialParams(hidden=(h,), alpha=a, optimizer=o)
              for o in ("sgd", "adam") for h in (2, 4) for a in (0.1, 1.0)]
    sent = [json.loads(argument) for argument in warmup.wanted(trials)]
    assert [s["optimizer"] for s in sent] == ["sgd", "adam"]
    assert set(sent[0]) == set(warmup.KERNEL_FIELDS)
    rebuilt = TrialParams(**{**sent[1], "hidden": tuple(sent[1]["hidden"])})
    assert (rebuilt.activation, rebuilt.output, rebuilt.optimizer) == ("sigmoid", "sigmoid",
                                                                      "adam")


def test_nothing_is_sent_for_what_the_compiled_engine_cannot_train() -> None:
    assert warmup.wanted([TrialParams(optimizer="adamw")]) == []
    assert warmup.wanted([TrialParams()], stopping=True) == []  # a halving search pauses
    assert warmup.wanted([]) == []


def test_a_command_line_run_with_the_numpy_engine_starts_the_warm_up_for_its_sweep(
        tmp_path: Path, spawned: Spawned) -> None:
    spec = write_spec(tmp_path, SWEEP)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-report",
                 "--quiet"]) == 0
    [command] = spawned.commands
    assert command[:3] == [sys.executable, "-m", "nnsweep.warmup"]
    assert sorted(json.loads(a)["optimizer"] for a in command[3:]) == ["adam", "sgd"]


def test_the_switch_turns_it_off_and_held_out_rows_are_passed_on(
        tmp_path: Path, spawned: Spawned, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(warmup.ENV, "0")
    main(["run", str(write_spec(tmp_path, SWEEP)), "--out", str(tmp_path / "off"),
          "--no-report", "--quiet"])
    assert spawned.commands == []
    monkeypatch.setenv(warmup.ENV, "1")
    assert warmup.start([TrialParams()], validating=True) == "started"
    assert spawned.commands[-1][3] == "--validating"  # its kernels measure held-out rows


@pytest.mark.slow
def test_a_compiled_run_starts_none(tmp_path: Path, spawned: Spawned) -> None:
    """It compiles what it needs itself (the plain loop's kernel: the one the suite's other
    compiled runs load from the cache)."""
    plain = SWEEP.replace('optimizer = ["sgd", "adam"]\n', "")
    main(["run", str(write_spec(tmp_path, plain)), "--out", str(tmp_path / "numba"),
          "--engine", "numba", "--no-report", "--quiet"])
    assert spawned.commands == []


def test_without_numba_nothing_starts(spawned: Spawned, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warmup.importlib.util, "find_spec",
                        lambda name: None if name == "numba" else object())
    assert warmup.start([TrialParams()]) is None
    assert spawned.commands == []


def test_the_library_call_starts_none_unless_asked(tmp_path: Path, spawned: Spawned) -> None:
    import nnsweep

    nnsweep.run(nnsweep.load_spec(write_spec(tmp_path, SWEEP)), out=tmp_path / "out")
    assert spawned.commands == []


@pytest.mark.slow
def test_the_warm_up_leaves_the_kernel_in_the_users_cache(tmp_path: Path) -> None:
    """The process itself, in an empty cache: after it, the kernel loads instead of compiling."""
    pytest.importorskip("numba")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    check = [sys.executable, "-c", "from nnsweep import engine_numba as e; "
             "print(e.is_cached('tanh', 'sigmoid'))"]
    before = subprocess.run(check, env=env, capture_output=True, text=True, check=True)
    assert before.stdout.strip() == "False"
    plain = json.dumps({"hidden": [4], "activation": "tanh", "output": "sigmoid",
                        "optimizer": "sgd", "weight_decay": 0.0, "dropout": 0.0,
                        "loss": "squared"})
    subprocess.run([sys.executable, "-m", "nnsweep.warmup", plain], env=env, check=True,
                   timeout=600)
    after = subprocess.run(check, env=env, capture_output=True, text=True, check=True)
    assert after.stdout.strip() == "True"
