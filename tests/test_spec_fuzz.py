"""Whatever the text, the parser answers with a Spec, a SpecError or a DataError: never a crash.

Three kinds of input: random text, valid sweep files with random edits, and random documents
built from the format's own vocabulary (so they get past the TOML parser and probe the
checks). Each property tries as many examples as the Hypothesis profile asks for (conftest.py):
a few dozen in every run, a thousand with NNSWEEP_HYPOTHESIS=long.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnsweep.errors import DataError, SpecError
from nnsweep.params import PARAM_NAMES
from nnsweep.spec import DATASET_KEYS, REPORT_KEYS, RUN_KEYS, TOP_KEYS, parse_spec

ROOT = Path(__file__).parent.parent
SEEDS = [path.read_text(encoding="utf-8") for path in sorted((ROOT / "sweeps").glob("*.toml"))]
SEEDS += [path.read_text(encoding="utf-8")
          for path in sorted((ROOT / "tests" / "bad_specs").glob("*.toml"))]
SEEDS.append("""
name = "rich"
[dataset]
x = [[0, 1], [1, 1], [1, 0], [0, 0]]
y = [1, 0, 1, 0]
[params]
descent = "minibatch"
batch_size = 2
init = "given"
weights = [ [[0.5, 0.1], [0.4, 0.2]], [[1.0], [-1.0]] ]
[grid]
alpha = { log = [0.01, 1], num = 3 }
[[zip]]
seed = [1, 2]
tolerance = [0.1, 0.2]
[[include]]
alpha = 0.5
bias = false
[[exclude]]
alpha = 1
seed = 2
[run]
jobs = 2
backend = "dask"
scheduler = "tcp://h:1"
[report]
x = "alpha"
y = "seed"
""")

KEYS = sorted({*TOP_KEYS, *PARAM_NAMES, *DATASET_KEYS, *RUN_KEYS, *REPORT_KEYS, "log",
               "linear", "range", "num", "step", "xor", "alpah", "", "a b", "0"})
WORDS = ["xor", "rectangles", "streetlights", "sigmoid", "relu", "tanh", "linear", "full",
         "minibatch", "stochastic", "given", "normal", "mae", "sse", "numpy", "dask", "loky",
         "alpha", "hidden", "seed", "epochs", "", "\u00e9\t\"\\", "data.csv"]

scalars = st.one_of(
    st.integers(-3, 300),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(WORDS),
    st.text(max_size=8),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)
documents = st.dictionaries(
    st.sampled_from(KEYS),
    st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=5),
              st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=3),
                       max_size=3)),
    max_size=7,
)
EDIT_TEXT = st.text(alphabet=st.sampled_from(list("[]{}=,.\"'#\n -_0123456789eaxl"))
                    | st.characters(), max_size=6)


def toml(value: Any) -> str:
    """Any generated value as TOML, tables inline, so every document parses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(
            value) else repr(value)
    if isinstance(value, str):
        return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in
                             '"\\' or 0xD800 <= ord(c) <= 0xDFFF else c for c in value) + '"'
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{toml(str(k))} = {toml(v)}" for k, v in value.items()) + " }"


def check(text: str) -> None:
    """The one property: a Spec that loads back from its own text, or a clean message."""
    try:
        spec = parse_spec(text)
    except (SpecError, DataError) as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        assert all(line.strip() for line in message.splitlines())
        return
    assert spec.size() >= 1
    if spec.size() <= 2000:
        ids = [trial.id for trial in spec.trials()]
        assert len(set(ids)) == len(ids) == spec.size()
    again = parse_spec(spec.text)
    assert again.hash == spec.hash and again.size() == spec.size()


@st.composite
def edited(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        stop = draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + draw(EDIT_TEXT) + text[stop:]
    return text


FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@FUZZ
@given(st.text(max_size=200))
def test_random_text_gets_a_spec_or_a_clean_error(text: str) -> None:
    check(text)


@FUZZ
@given(edited())
def test_an_edited_sweep_file_gets_a_spec_or_a_clean_error(text: str) -> None:
    check(text)


@FUZZ
@given(documents)
def test_a_random_document_of_the_formats_words_gets_a_spec_or_a_clean_error(
    document: dict[str, Any]
) -> None:
    check("".join(f"{toml(key)} = {toml(value)}\n" for key, value in document.items()))


def test_the_seed_files_cover_the_valid_and_the_bad() -> None:
    outcomes = set()
    for text in SEEDS:
        try:
            parse_spec(text)
            outcomes.add("spec")
        except SpecError:
            outcomes.add("spec error")
        except DataError:
            outcomes.add("data error")
    assert outcomes == {"spec", "spec error", "data error"}
