"""The text format of a CSV (mlefit.csvformat): a header naming a column twice is refused by every
reader, naming it; ``--sep`` and a separator detected from the header give the fit of the same
data written with commas, and the result says which separator was used."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import mlefit
from conftest import read_exact, MLEFIT, SAMPLES, subprocess_env
from mlefit import csvformat, data
from mlefit.errors import DataError, UsageError
from mlefit.families import get_family

ADMISSIONS = SAMPLES / "admissions.csv"
DUPLICATE = "column 'x' appears twice in the header of {} (columns 1 and 3); rename one."


def numeric_frame(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ [1.0, -0.5, 0.25])))).astype(int)
    return pd.DataFrame({"x": X[:, 0], "z": X[:, 1], "w": X[:, 2], "y": y})


def write(path, frame: pd.DataFrame, sep: str = ",", names: list[str] | None = None):
    """``frame`` as CSV text with ``sep`` (floats written to read back exactly), header ``names``."""
    lines = [sep.join(names or frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append(sep.join(repr(v) if isinstance(v, float) else str(v) for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MLEFIT, *map(str, args)], input=input, capture_output=True, text=True, env=subprocess_env(), timeout=300
    )


# -- the pieces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names, message",
    [
        (["x", "y", "x"], "column 'x' appears twice in the header of 'd.csv' (columns 1 and 3); rename one."),
        (["a", "b", "a", "c", "a"],
         "column 'a' appears 3 times in the header of 'd.csv' (columns 1, 3 and 5); rename one."),
        (["a", "b", "b", "a"], "column 'b' appears twice in the header of 'd.csv' (columns 2 and 3); rename one."),
    ],
)
def test_check_names_names_the_first_repeated_column_and_where(names, message):
    with pytest.raises(DataError) as err:
        csvformat.check_names(names, "'d.csv'")
    assert str(err.value) == message


@pytest.mark.parametrize("names", [["x", "x.1", "y"], ["x", "X", "x "], ["", "a", ""]])
def test_distinct_names_pass_even_when_pandas_style_or_blank(names):
    csvformat.check_names(names, "'d.csv'")  # x.1 is a real name; blank names are numbered by pandas


@pytest.mark.parametrize(
    "line, sep",
    [("a;b;c", ";"), ("a\tb\tc", "\t"), ("a,b,c", None), ("a;b,c", None), ("abc", None), ("a;b\tc;d", ";"),
     ("a\tb;c\td", "\t")],
)
def test_detect_sep_only_without_a_comma(line, sep):
    assert csvformat.detect_sep(line) == sep


def test_parse_header_detects_splits_quotes_and_reports():
    header = csvformat.parse_header(['\ufeff"a;1";b;"c"\n'], None, "'d.csv'")
    assert header == csvformat.CsvHeader(("a;1", "b", "c"), ";", True)
    given = csvformat.parse_header(["a;b\n"], ";", "'d.csv'")
    assert given.sep == ";" and not given.detected
    plain = csvformat.parse_header(["a,b\n"], None, "'d.csv'")
    assert plain == csvformat.CsvHeader(("a", "b"), ",", False)
    spanning = csvformat.parse_header(iter(['"a\n', 'b",c\n', "1,2\n"]), None, "'d.csv'")
    assert spanning.names == ("a\nb", "c")


@pytest.mark.parametrize(
    "sep, expected",
    [("", "--sep must be a single character such as ';' or a tab ('\\t'); got an empty string."),
     (";;", "--sep must be a single character such as ';' or a tab ('\\t'); got ';;'."),
     ('"', "--sep cannot be a quote, which encloses fields; got '\"'."),
     ("\n", "--sep cannot be a line end, which ends rows; got '\\n'."),
     ("\r", "--sep cannot be a line end, which ends rows; got '\\r'.")],
)
def test_bad_sep_is_one_sentence(sep, expected):
    with pytest.raises(UsageError) as err:
        csvformat.check_sep(sep)
    assert str(err.value) == expected


def test_sep_backslash_t_is_a_tab_and_one_character_passes():
    assert csvformat.check_sep("\\t") == "\t"
    assert [csvformat.check_sep(s) for s in (";", "|", " ", None)] == [";", "|", " ", None]


# -- duplicate names: every reader -----------------------------------------------------------------


@pytest.fixture
def duplicated(tmp_path):
    """A small CSV whose header names x twice (columns 1 and 3)."""
    return write(tmp_path / "dup.csv", numeric_frame(40), names=["x", "z", "x", "y"])


@pytest.mark.parametrize(
    "options",
    [{}, {"weights": "z"}, {"features": "z"}, {"stream": True}, {"stream": True, "chunk_rows": 7}],
    ids=["small-reader", "table-path", "features", "stream", "stream-chunks"],
)
def test_fit_refuses_a_duplicate_name_on_every_path(duplicated, options):
    with pytest.raises(DataError) as err:
        mlefit.fit(duplicated, "bernoulli", **options)
    assert str(err.value) == DUPLICATE.format(f"'{duplicated}'")


def test_every_reader_checks_the_header_itself(duplicated):
    message = DUPLICATE.format(f"'{duplicated}'")
    readers = [
        lambda: data._read_small_csv(duplicated, "y", None, True),
        lambda: data._read_large_csv(duplicated, "y", None, True),
        lambda: data._load_numeric_csv(duplicated, get_family("bernoulli"), target="y", features=None, intercept=True),
        lambda: data.read_csv(duplicated),
        lambda: data.design_matrix({"kind": "columns", "intercept": True, "columns": [], "features": []}, duplicated),
    ]
    for read in readers:
        with pytest.raises(DataError) as err:
            read()
        assert str(err.value) == message


def test_a_file_larger_than_a_megabyte_takes_the_parallel_path_and_is_refused(tmp_path, monkeypatch):
    frame = numeric_frame(30_000)
    good = write(tmp_path / "good.csv", frame)
    bad = write(tmp_path / "bad.csv", frame, names=["x", "z", "x", "y"])
    assert bad.stat().st_size > data.SMALL_CSV_BYTES  # not the small reader's
    entered = []
    original = data._read_large_csv
    for name in ("_read_arrow_csv", "_read_large_csv"):  # pyarrow's pieces when installed, else pandas'
        monkeypatch.setattr(data, name, lambda *a, read=getattr(data, name): entered.append(a[0]) or read(*a))
    fam = get_family("bernoulli")
    assert data._load_numeric_csv(good, fam, target="y", features=None, intercept=True) is not None
    assert entered and set(entered) == {good}  # a clean file of this size is read by a parallel reader
    for source in (bad, str(bad)):
        with pytest.raises(DataError) as err:
            mlefit.fit(source, "bernoulli")
        assert str(err.value) == DUPLICATE.format(f"'{bad}'")
    with pytest.raises(DataError, match="appears twice"):
        original(bad, "y", None, True)


def test_command_line_refuses_duplicates_in_every_command(duplicated, tmp_path):
    model = tmp_path / "m.json"
    assert run("fit", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "--save", model, "-q").returncode == 0
    text = duplicated.read_text()
    commands = [
        (["fit", duplicated, "-f", "bernoulli"], None, f"'{duplicated}'"),
        (["fit", "-", "-f", "bernoulli"], text, "standard input"),
        (["fit", "-", "-f", "bernoulli", "--stream"], text, "standard input"),
        (["fit", duplicated, "-f", "bernoulli", "--stream"], None, f"'{duplicated}'"),
        (["predict", model, duplicated], None, f"'{duplicated}'"),
        (["predict", model, "-"], text, "standard input"),
        (["check-grad", duplicated, "-f", "bernoulli"], None, f"'{duplicated}'"),
        (["simulate", "-f", "gaussian", "--coef", "1,2", "--design", duplicated, "-x", "x,z"], None, f"'{duplicated}'"),
        (["recover", "-f", "gaussian", "--coef", "1", "--design", duplicated, "-x", "z", "-r", "2"], None,
         f"'{duplicated}'"),
    ]
    for args, stdin, name in commands:
        proc = run(*args, input=stdin)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr == f"Error: {DUPLICATE.format(name)}\n", args
        assert proc.stdout == "", args


def test_a_real_column_named_like_a_pandas_rename_is_fitted(tmp_path):
    frame = numeric_frame(200)
    path = write(tmp_path / "d.csv", frame, names=["x", "x.1", "w", "y"])
    result = mlefit.fit(path, "bernoulli")
    assert result.names == ("intercept", "x", "x.1", "w")
    same = mlefit.fit(write(tmp_path / "e.csv", frame), "bernoulli")
    np.testing.assert_array_equal(result.params, same.params)


# -- the separator ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def comma_fit():
    return mlefit.fit(ADMISSIONS, "bernoulli", target="admitted")


@pytest.mark.parametrize("sep, given", [(";", True), (";", False), ("\t", True), ("\t", False), ("|", True)],
                         ids=["semicolon-given", "semicolon-detected", "tab-given", "tab-detected", "pipe-given"])
@pytest.mark.parametrize("options", [{}, {"weights": "essay_rating"}, {"stream": True, "chunk_rows": 64}],
                         ids=["memory", "table-path", "stream"])
def test_separated_file_fits_as_the_comma_file(tmp_path, sep, given, options):
    path = tmp_path / "a.txt"
    path.write_text(ADMISSIONS.read_text().replace(",", sep))
    expected = mlefit.fit(ADMISSIONS, "bernoulli", target="admitted", **options)
    result = mlefit.fit(path, "bernoulli", target="admitted", sep=sep if given else None, **options)
    assert result.names == expected.names
    np.testing.assert_allclose(result.params, expected.params, rtol=1e-12, atol=0)
    assert result.nll == pytest.approx(expected.nll, rel=1e-13)
    assert (result.separator, result.separator_detected) == (sep, not given)
    assert expected.separator == "," and not expected.separator_detected
    assert result.to_dict()["separator"] == sep


def test_separated_file_larger_than_a_megabyte_takes_the_parallel_path(tmp_path, monkeypatch):
    frame = numeric_frame(30_000)
    comma = write(tmp_path / "c.csv", frame)
    semi = write(tmp_path / "s.csv", frame, sep=";")
    assert semi.stat().st_size > data.SMALL_CSV_BYTES
    fam = get_family("bernoulli")
    fast = data._load_numeric_csv(semi, fam, target="y", features=None, intercept=True)
    assert fast is not None and (fast.separator, fast.separator_detected) == (";", True)
    whole = data.load_dataset(frame, fam)
    np.testing.assert_array_equal(fast.X, whole.X)
    np.testing.assert_array_equal(fast.y, whole.y)
    np.testing.assert_array_equal(mlefit.fit(semi, "bernoulli").params, mlefit.fit(comma, "bernoulli").params)


def test_semicolon_header_without_sep_used_to_be_one_column(tmp_path):
    # what the issue saw: a one-column table whose target had four values
    path = tmp_path / "a.csv"
    path.write_text(ADMISSIONS.read_text().replace(",", ";"))
    assert read_exact(path).shape[1] == 1
    assert mlefit.fit(path, "bernoulli", target="admitted").names == ("intercept", "gpa", "test_score", "essay_rating")


def test_given_sep_that_leaves_one_column_says_so(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(ADMISSIONS.read_text().replace(",", ";"))
    with pytest.raises(DataError) as err:
        mlefit.fit(path, "bernoulli", sep=",")
    assert str(err.value) == (
        f"the header of '{path}' is a single column when split at ',', but it holds ';'. "
        "Leave --sep out, or give the file's separator."
    )


def test_a_comma_in_the_header_keeps_the_comma(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x;1,y\n1;5,0\n2;5,1\n")
    frame, header = data.read_table(path)
    assert list(frame.columns) == ["x;1", "y"] and frame["x;1"].tolist() == ["1;5", "2;5"]
    assert header == csvformat.CsvHeader(("x;1", "y"), ",", False)


@pytest.mark.parametrize("sep", [";", "\t"])
@pytest.mark.parametrize("extra", [[], ["--stream"]], ids=["memory", "stream"])
def test_standard_input_detects_the_separator(comma_fit, sep, extra):
    text = ADMISSIONS.read_text().replace(",", sep)
    proc = run("fit", "-", "-f", "bernoulli", "-y", "admitted", "--format", "json", *extra, input=text)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["separator"], doc["separator_detected"]) == (sep, True)
    np.testing.assert_allclose([p["estimate"] for p in doc["parameters"]], comma_fit.params, rtol=1e-12)
    given = run("fit", "-", "-f", "bernoulli", "-y", "admitted", "--format", "json", "--sep",
                "\\t" if sep == "\t" else sep, *extra, input=text)
    assert json.loads(given.stdout)["separator_detected"] is False


def test_fit_report_says_the_separator_was_detected(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(ADMISSIONS.read_text().replace(",", ";"))
    report = run("fit", path, "-f", "bernoulli", "-y", "admitted")
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines()[2] == "read with separator ';' (detected from the header)"
    plain = run("fit", ADMISSIONS, "-f", "bernoulli", "-y", "admitted")
    assert "separator" not in plain.stdout
    given = run("fit", path, "-f", "bernoulli", "-y", "admitted", "--sep", ";")
    assert "separator" not in given.stdout
    without = [line for line in report.stdout.splitlines() if "separator" not in line]
    end = without.index("Convergence")  # the tables before the timings
    assert given.stdout.splitlines()[:end] == without[:end]


def test_predict_and_check_grad_read_the_separator(tmp_path, comma_fit):
    model = tmp_path / "m.json"
    mlefit.save_model(comma_fit, model)
    expected = run("predict", model, ADMISSIONS)
    tabbed = tmp_path / "a.tsv"
    tabbed.write_text(ADMISSIONS.read_text().replace(",", "\t"))
    for args, stdin in [([tabbed], None), (["-"], tabbed.read_text())]:
        detected = run("predict", model, *args, input=stdin)
        assert detected.returncode == 0, detected.stderr
        assert detected.stdout == expected.stdout  # the output is comma-separated
        assert detected.stderr == "Note: read with separator tab (detected from the header).\n"
        given = run("predict", model, *args, "--sep", "\\t", input=stdin)
        assert given.stdout == expected.stdout and given.stderr == ""
    check = run("check-grad", tabbed, "-f", "bernoulli", "-y", "admitted", "--format", "json")
    reference = run("check-grad", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "--format", "json")
    doc, ref = json.loads(check.stdout), json.loads(reference.stdout)
    assert (doc["separator"], doc["separator_detected"], ref["separator"]) == ("\t", True, ",")
    assert doc["points"] == ref["points"]
    text = run("check-grad", tabbed, "-f", "bernoulli", "-y", "admitted")
    assert "read with separator tab (detected from the header)" in text.stdout.splitlines()


@pytest.mark.parametrize("command", [
    ["fit", str(ADMISSIONS), "-f", "bernoulli"],
    ["fit", str(ADMISSIONS), "-f", "bernoulli", "--stream"],
    ["check-grad", str(ADMISSIONS), "-f", "bernoulli"],
    ["predict", "MODEL", str(ADMISSIONS)],
], ids=["fit", "stream", "check-grad", "predict"])
@pytest.mark.parametrize("sep", ["", "ab", '"', "\n"], ids=["empty", "two", "quote", "newline"])
def test_bad_sep_on_the_command_line_exits_2_with_one_sentence(tmp_path, invoke, comma_fit, command, sep):
    model = tmp_path / "m.json"
    mlefit.save_model(comma_fit, model)
    result = invoke(*[str(model) if a == "MODEL" else a for a in command], "--sep", sep)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --sep ") and result.stderr.count("\n") == 1
    assert result.stdout == ""
