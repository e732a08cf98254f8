"""The sweep file: what each form means, and every bad file's exact messages.

Bad files live under tests/bad_specs/, one per failure; each starts with one `# expect:` line
per problem ({file} stands for the file's path, {dir} for its folder) and, for bad data,
`# raises: DataError`.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nnsweep import datasets
from nnsweep import spec as spec_module
from nnsweep.errors import DataError, NnsweepWarning, SpecError
from nnsweep.params import DEFAULTS
from nnsweep.spec import RunOptions, Spec, load_spec, parse_spec

BAD_SPECS = Path(__file__).parent / "bad_specs"
BAD_DATA = Path(__file__).parent / "bad_data"


def spec(text: str, source: Path | None = None) -> Spec:
    return parse_spec(textwrap.dedent(text), source=source)


def values(s: Spec, name: str) -> list[object]:
    return [getattr(t.params, name) for t in s.trials()]


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as raised:
        parse_spec(text)
    return raised.value.problems


# --- bad files ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(BAD_SPECS.glob("*.toml")), ids=lambda p: p.stem)
def test_a_bad_sweep_file_reports_exactly_its_expected_problems(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    expected = [line.removeprefix("# expect: ").replace("{file}", str(path))
                .replace("{dir}", str(path.parent))
                for line in lines if line.startswith("# expect: ")]
    error = DataError if "# raises: DataError" in lines else SpecError
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(error) as raised:
        load_spec(path)
    assert str(raised.value).splitlines() == expected


def test_there_is_a_bad_file_for_each_kind_of_failure() -> None:
    names = {path.stem for path in BAD_SPECS.glob("*.toml")}
    assert {"unknown_param_key", "wrong_type", "alpha_not_positive", "hidden_size_zero",
            "batch_size_larger_than_data", "epochs_zero", "empty_axis",
            "key_in_params_and_grid", "malformed_toml", "many_problems"} <= names


def test_a_missing_sweep_file_is_named() -> None:
    with pytest.raises(SpecError, match=r"^nowhere/sweep\.toml: no such file$"):
        load_spec("nowhere/sweep.toml")


def test_messages_from_text_without_a_file_say_spec() -> None:
    with pytest.raises(SpecError, match=r"^<spec>: params\.epochs = 0: expected"):
        spec('dataset = "xor"\n[params]\nepochs = 0\n')


def test_a_problem_in_the_data_and_one_in_the_file_are_reported_together() -> None:
    with pytest.raises(SpecError) as raised:
        spec("""
            [dataset]
            x = [[0], [1]]
            y = [1]
            [params]
            epochs = 0
            """)
    assert [line.split(": ", 1)[1] for line in raised.value.problems] == [
        "params.epochs = 0: expected an integer from 1 to 1,000,000,000",
        "dataset.y: 1 rows, but x has 2 rows; expected one target row per input row",
    ]


# --- names, defaults, fixed values ----------------------------------------------------------

def test_the_name_defaults_to_the_files_stem(tmp_path: Path) -> None:
    path = tmp_path / "my-sweep.toml"
    path.write_text('dataset = "xor"\n')
    assert load_spec(path).name == "my-sweep"


def test_a_file_without_grid_is_one_trial_of_the_defaults() -> None:
    s = spec('dataset = "xor"\n')
    assert s.size() == 1 and s.axes == ()
    assert s.trials()[0].params.to_dict() == DEFAULTS


def test_fixed_holds_the_params_table_resolved() -> None:
    s = spec("""
        dataset = "xor"
        [params]
        hidden = 4
        alpha = 1
        """)
    assert dict(s.fixed) == {"hidden": (4,), "alpha": 1.0}
    assert isinstance(s.fixed["alpha"], float)


@pytest.mark.parametrize(("written", "layers"), [("4", (4,)), ("[3, 2]", (3, 2)), ("[]", ())])
def test_hidden_is_one_size_a_list_of_sizes_or_none(written: str, layers: tuple[int, ...]
                                                    ) -> None:
    s = spec(f'dataset = "xor"\n[params]\nhidden = {written}\n')
    assert s.trials()[0].params.hidden == layers


def test_hidden_in_the_grid_mixes_single_layers_and_stacks() -> None:
    s = spec('dataset = "xor"\n[grid]\nhidden = [4, [3, 2], []]\n')
    assert values(s, "hidden") == [(4,), (3, 2), ()]


# --- ranges ---------------------------------------------------------------------------------

def test_a_log_range_includes_both_ends_and_comes_out_round() -> None:
    s = spec('dataset = "xor"\n[grid]\nalpha = { log = [0.001, 1000], num = 7 }\n')
    assert values(s, "alpha") == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]


def test_a_linear_range_includes_both_ends() -> None:
    s = spec('dataset = "xor"\n[grid]\ntolerance = { linear = [0.01, 0.05], num = 5 }\n')
    assert values(s, "tolerance") == [0.01, 0.02, 0.03, 0.04, 0.05]


def test_an_integer_range_works_like_pythons_range() -> None:
    s = spec('dataset = "xor"\n[grid]\nseed = { range = [0, 10], step = 3 }\n')
    assert values(s, "seed") == [0, 3, 6, 9]


def test_a_log_range_of_an_integer_parameter_gives_integers() -> None:
    s = spec('dataset = "xor"\n[grid]\nepochs = { log = [10, 10000], num = 4 }\n')
    assert values(s, "epochs") == [10, 100, 1000, 10000]


def test_a_range_landing_between_integers_is_refused_for_an_integer_parameter() -> None:
    with pytest.raises(SpecError, match=r"grid\.epochs\[1\] = 31\.6227766017: expected an "
                                        r"integer"):
        spec('dataset = "xor"\n[grid]\nepochs = { log = [10, 100], num = 3 }\n')


# --- zip, include, exclude ------------------------------------------------------------------

def test_a_zip_group_varies_together_and_crosses_the_grid() -> None:
    s = spec("""
        dataset = "xor"
        [grid]
        seed = [1, 2]
        [[zip]]
        alpha = [0.5, 0.1]
        epochs = [100, 500]
        """)
    pairs = [(t.params.alpha, t.params.epochs, t.params.seed) for t in s.trials()]
    assert pairs == [(0.5, 100, 1), (0.5, 100, 2), (0.1, 500, 1), (0.1, 500, 2)]
    assert s.axes == ("alpha", "epochs", "seed")


def test_zipped_lists_may_repeat_a_value_when_the_pairs_differ() -> None:
    s = spec("""
        dataset = "xor"
        [[zip]]
        alpha = [0.1, 0.1]
        epochs = [100, 500]
        """)
    assert s.size() == 2


def test_an_include_adds_a_trial_on_top_of_params() -> None:
    s = spec("""
        dataset = "xor"
        [params]
        epochs = 300
        [grid]
        alpha = [0.1, 1]
        [[include]]
        hidden = [3, 2]
        alpha = 0.5
        """)
    last = s.trials()[-1].params
    assert s.size() == 3
    assert (last.hidden, last.alpha, last.epochs) == ((3, 2), 0.5, 300)
    assert s.axes == ("alpha", "hidden")


def test_an_exclude_drops_the_product_trials_holding_all_its_values() -> None:
    s = spec("""
        dataset = "xor"
        [grid]
        alpha = [0.1, 1, 10]
        hidden = [4, 8]
        [[exclude]]
        alpha = 10
        hidden = 8
        """)
    kept = [(t.params.alpha, t.params.hidden) for t in s.trials()]
    assert kept == [(0.1, (4,)), (0.1, (8,)), (1.0, (4,)), (1.0, (8,)), (10.0, (4,))]


def test_an_include_may_bring_back_a_trial_an_exclude_removed() -> None:
    s = spec("""
        dataset = "xor"
        [grid]
        alpha = [0.1, 1]
        [[exclude]]
        alpha = 1
        [[include]]
        alpha = 1
        """)
    assert values(s, "alpha") == [0.1, 1.0]


# --- datasets in the file -------------------------------------------------------------------

def test_rectangles_take_rows_and_a_seed() -> None:
    s = spec('[dataset]\nname = "rectangles"\nrows = 20\nseed = 4\n')
    assert s.dataset.x.shape == (20, 4)


@pytest.mark.parametrize(("table", "shape"), [
    ('name = "moons"\nrows = 30\nnoise = 0.2\nseed = 7', (30, 2)),
    ('name = "circles"\nnoise = 0', (200, 2)),
    ('name = "spirals"\nrows = 11', (11, 2)),
    ('name = "parity"\nbits = 3', (8, 3)),
    ('name = "modular"\nmodulus = 3', (9, 6)),
])
def test_generated_datasets_take_their_options_and_write_them_all_back(
        table: str, shape: tuple[int, int]) -> None:
    """The resolved spec spells every option, defaults included, and loads back to the same
    data and trials."""
    s = spec(f"[dataset]\n{table}\n")
    assert s.dataset.x.shape == shape
    again = parse_spec(s.text)
    assert again.dataset.hash == s.dataset.hash and again.hash == s.hash
    name = s.dataset.name
    assert s.text.count("\n[dataset]\n") == 1 and all(
        f"\n{key} = " in s.text for key in datasets.OPTIONS[name])


def test_a_generated_dataset_refuses_another_sets_option_and_names_its_own() -> None:
    assert problems('[dataset]\nname = "modular"\nbits = 3\n') == [
        '<spec>: dataset.bits: only the "parity" dataset takes bits; modular takes modulus']
    assert problems('[dataset]\nname = "digits"\nnoise = 0.5\n') == [
        '<spec>: dataset.noise: only the "moons", "circles" and "spirals" datasets take noise; '
        "digits is fixed"]


def test_inline_data_with_plain_number_targets_has_one_output() -> None:
    s = spec('[dataset]\nx = [[0, 1], [1, 1], [1, 0]]\ny = [1, 0, 1]\n')
    assert s.dataset.y.shape == (3, 1) and s.dataset.name == "inline"


def test_a_csv_path_is_relative_to_the_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text((BAD_DATA / "good.csv").read_text())
    path = tmp_path / "s.toml"
    path.write_text('[dataset]\ncsv = "data/d.csv"\ntarget = "y"\n')
    s = load_spec(path)
    assert s.dataset.x.shape == (4, 2) and s.dataset.name == "d.csv"


def test_given_weights_that_fit_the_layers_are_kept() -> None:
    s = spec("""
        dataset = "streetlights6"
        [params]
        hidden = []
        output = "linear"
        init = "given"
        weights = [ [[0.5], [0.48], [-0.7]] ]
        """)
    assert s.trials()[0].params.weights == (((0.5,), (0.48,), (-0.7,)),)


def test_given_weights_are_checked_against_every_swept_hidden_size() -> None:
    with pytest.raises(SpecError, match=r"do not fit hidden = \[8\] with 3 inputs"):
        spec("""
            dataset = "xor"
            [params]
            init = "given"
            weights = [ [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], [[1], [1], [1], [1]] ]
            [grid]
            hidden = [4, 8]
            """)


def test_a_batch_size_within_the_data_is_accepted() -> None:
    s = spec('dataset = "xor"\n[params]\ndescent = "minibatch"\nbatch_size = 4\n')
    assert s.trials()[0].params.batch_size == 4


def test_a_minibatch_with_the_default_batch_size_on_small_data_gets_a_note() -> None:
    s = spec('dataset = "xor"\n[params]\ndescent = "minibatch"\n')
    assert s.notes == ('<spec>: params.descent = "minibatch" with batch_size = 8 (the default), '
                       'not below the 4 rows of the data (xor): every step takes all rows, as '
                       'descent = "full" does; set batch_size below 4 for minibatch steps',)


def test_a_minibatch_as_large_as_the_data_names_the_batch_size_that_makes_it_so() -> None:
    s = spec('dataset = "xor"\n[grid]\ndescent = ["full", "minibatch"]\nbatch_size = [2, 4]\n')
    assert [note.split(", not below")[0] for note in s.notes] == [
        '<spec>: grid.descent[1] = "minibatch" with grid.batch_size[1] = 4']


@pytest.mark.parametrize("text", [
    'dataset = "xor"\n[params]\ndescent = "minibatch"\nbatch_size = 3\n',
    'dataset = "xor"\n[params]\ndescent = "stochastic"\n',
    '[dataset]\nname = "rectangles"\nrows = 100\n[params]\ndescent = "minibatch"\n',
])
def test_minibatches_smaller_than_the_data_and_other_descents_get_no_note(text: str) -> None:
    assert spec(text).notes == ()


def test_loading_a_sweep_file_warns_with_each_note(tmp_path: Path) -> None:
    path = tmp_path / "mini.toml"
    path.write_text('dataset = "xor"\n[params]\ndescent = "minibatch"\n')
    with pytest.warns(NnsweepWarning, match=r"^.*mini\.toml: params\.descent = \"minibatch\" "
                      r"with batch_size = 8 \(the default\)"):
        loaded = load_spec(path)
    assert len(loaded.notes) == 1


# --- run and report -------------------------------------------------------------------------

def test_run_options_default_to_all_cores_numpy_and_loky() -> None:
    assert spec('dataset = "xor"\n').run == RunOptions()


@pytest.mark.parametrize("jobs", [1, 1024, -1, -2])
def test_run_jobs_is_a_number_of_workers_or_a_count_back_from_all_cores(jobs: int) -> None:
    assert spec(f'dataset = "xor"\n[run]\njobs = {jobs}\n').run.jobs == jobs


def test_run_options_are_read_from_the_run_table() -> None:
    s = spec("""
        dataset = "xor"
        [run]
        jobs = 2
        engine = "numba"
        backend = "dask"
        scheduler = "tcp://h:8786"
        save_weights = true
        """)
    assert s.run == RunOptions(2, "numba", "dask", "tcp://h:8786", None, True)


def test_report_axes_are_swept_parameter_names() -> None:
    s = spec("""
        dataset = "xor"
        [grid]
        alpha = [0.1, 1]
        hidden = [4, 8]
        seed = [0, 1]
        [report]
        x = "alpha"
        y = "hidden"
        facet = "seed"
        """)
    assert (s.report.x, s.report.y, s.report.facet) == ("alpha", "hidden", "seed")


# --- identity -------------------------------------------------------------------------------

BASE = """
    dataset = "xor"
    [params]
    epochs = 200
    [grid]
    alpha = [0.1, 1]
    hidden = [4, 8]
    """


def test_the_spec_hash_stays_when_values_are_added_to_an_axis() -> None:
    wider = BASE.replace("[0.1, 1]", "[0.1, 1, 10]")
    assert spec(BASE).hash == spec(wider).hash


def test_the_spec_hash_stays_when_a_default_is_written_out() -> None:
    assert spec(BASE).hash == spec(BASE.replace("epochs = 200", "epochs = 200\nseed = 0")).hash


@pytest.mark.parametrize("change", [
    ("epochs = 200", "epochs = 300"),
    ('dataset = "xor"', 'dataset = "streetlights"'),
    ("hidden = [4, 8]", "seed = [4, 8]"),
])
def test_the_spec_hash_changes_with_a_fixed_value_the_data_or_the_axes(
    change: tuple[str, str]
) -> None:
    assert spec(BASE).hash != spec(BASE.replace(*change)).hash


def test_execution_options_change_neither_the_hash_nor_the_trial_ids() -> None:
    plain = spec(BASE)
    with_run = spec(BASE + '\n[run]\njobs = 1\nengine = "numba"\nsave_weights = true\n')
    assert plain.hash == with_run.hash
    assert [t.id for t in plain.trials()] == [t.id for t in with_run.trials()]


def test_the_resolved_text_loads_back_to_the_same_experiment(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text((BAD_DATA / "good.csv").read_text())
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent("""
        name = "round-trip"
        description = "quote \\" and tab\\t"
        [dataset]
        csv = "d.csv"
        target = ["y"]
        [params]
        descent = "minibatch"
        batch_size = 2
        [grid]
        alpha = { log = [0.01, 1], num = 3 }
        [[zip]]
        seed = [1, 2]
        activation = ["relu", "tanh"]
        [[exclude]]
        alpha = 1
        seed = 2
        [[include]]
        hidden = [3, 2]
        [run]
        jobs = 2
        [report]
        x = "alpha"
        """))
    original = load_spec(path)
    again = parse_spec(original.text, source=tmp_path / "elsewhere" / "spec.toml")
    assert (again.name, again.description, again.hash) == (original.name,
                                                            original.description,
                                                            original.hash)
    assert [t.id for t in again.trials()] == [t.id for t in original.trials()]
    assert again.run == original.run and again.report == original.report


def test_the_spec_hash_follows_the_params_value_under_an_include_only_key() -> None:
    text = 'dataset = "xor"\n[params]\nhidden = 8\n[[include]]\nhidden = [3, 2]\n'
    assert spec(text).hash != spec(text.replace("hidden = 8", "hidden = 16")).hash


def test_an_axis_with_a_bad_value_is_reported_once_not_again_by_report_or_exclude() -> None:
    with pytest.raises(SpecError) as raised:
        spec("""
            dataset = "xor"
            [grid]
            alpha = [0.1, -1]
            [[exclude]]
            alpha = 0.1
            [report]
            x = "alpha"
            """)
    assert raised.value.problems == ["<spec>: grid.alpha[1] = -1: expected a number > 0"]


def test_a_grid_too_large_for_any_run_is_refused_from_its_axes_lengths_at_once() -> None:
    axes = "\n".join(f"{name} = {{ range = [1, 1001] }}" for name in
                     ("seed", "hidden", "epochs", "record_every", "batch_size", "init"))
    started = time.monotonic()
    with pytest.raises(SpecError) as raised:
        spec(f'dataset = "rectangles"\n[grid]\n{axes}\n')
    assert time.monotonic() - started < 5  # expanding it first would take minutes
    assert raised.value.problems == [
        "<spec>: the grid has 1,000,000,000,000,000,000 trials, more than the limit of "
        "10,000,000 (the most one run can plan); narrow the grid, or split it into several "
        "sweep files"]


def test_a_grid_of_as_many_trials_as_a_run_can_plan_is_accepted_without_building_them() -> None:
    axes = "\n".join(f"{name} = {{ range = [1, 11] }}" for name in
                     ("seed", "hidden", "epochs", "record_every", "batch_size"))
    s = spec(f'dataset = "rectangles"\n[grid]\n{axes}\nalpha = {{ log = [1, 10], num = 10 }}\n'
             "tolerance = { linear = [0.01, 0.1], num = 10 }\n")
    assert s.size() == 10_000_000


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: os.mkfifo(p), "a named pipe (FIFO), expected a sweep file (.toml) (a regular "
                             "file)"),
    (lambda p: p.mkdir(), "a folder, expected a sweep file (.toml)"),
])
@pytest.mark.timeout(20)  # a FIFO opened for reading would wait for a writer forever
def test_a_sweep_file_must_be_a_regular_file(
    tmp_path: Path, make: Callable[[Path], object], expected: str
) -> None:
    path = tmp_path / "sweep.toml"
    make(path)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert raised.value.problems == [f"{path}: {expected}"]


def test_a_sweep_file_over_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_module, "MAX_SPEC_BYTES", 100)
    path = tmp_path / "long.toml"
    path.write_text('dataset = "xor"\n' + "#" * 200 + "\n")
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert raised.value.problems == [f"{path}: 217 bytes, expected a sweep file (.toml) of at "
                                     "most 100 bytes"]


def test_a_device_is_no_sweep_file() -> None:
    with pytest.raises(SpecError) as raised:
        load_spec("/dev/zero")
    assert raised.value.problems == ["/dev/zero: a character device, expected a sweep file "
                                     "(.toml) (a regular file)"]


def test_a_sweep_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbfdataset = "xor"\n')
    assert load_spec(path).dataset.name == "xor"


def test_a_lone_surrogate_which_toml_allows_is_read_as_written() -> None:
    with pytest.raises(SpecError) as raised:
        spec('dataset = "xor"\n[params]\n"alp\ud800" = 1\n')
    assert raised.value.problems == ["<spec>: params.alp\ud800: unknown key (did you mean "
                                     "'alpha'?)"]
    assert spec('dataset = "xor"\ndescription = "a\ud800"\n').description == "a\ud800"
