"""The parallel readers of large numeric CSV files (``data._read_large_csv``, pandas' parser, and
``data._read_arrow_csv``, pyarrow's): pieces of the file parsed on their own, in threads, give
exactly what one plain ``pd.read_csv`` of the whole file gives, wherever the cuts fall; and every
file they cannot read that way goes to the table path, whose errors name the right row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlefit import csvformat, data
from mlefit.errors import DataError
from mlefit.families import get_family

from conftest import read_exact

#: Piece sizes in bytes: 1 puts a cut after every line, the others land anywhere in a line.
PIECES = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 1 << 30]


@pytest.fixture(autouse=True)
def large(monkeypatch):
    """Every file takes the large-file path, in chunks of a few rows, on several threads."""
    monkeypatch.setattr(data, "SMALL_CSV_BYTES", 0)
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 3)
    monkeypatch.setattr(data, "CSV_MAX_WORKERS", 3)


def table(rng, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({
        "y": rng.integers(0, 2, n),
        "a": rng.standard_normal(n),
        "b": rng.integers(-9, 9, n),  # integers, read as float64 features
        "c": rng.standard_normal(n) * 1e-300,  # tiny numbers and
        "d": rng.standard_normal(n) * 1e300,  # huge ones: every digit matters
    })
    frame.loc[0, "y"], frame.loc[n - 1, "y"] = 0, 1  # both classes
    return frame


def text_of(frame: pd.DataFrame, *, quoted_header=False, crlf=False, ending="\n") -> str:
    """The CSV text of ``frame`` with every float written to read back exactly."""
    header = ",".join(f'"{c}"' if quoted_header else c for c in frame.columns)
    rows = [",".join(repr(v) if isinstance(v, float) else str(v) for v in row) for row in frame.itertuples(index=False)]
    eol = "\r\n" if crlf else "\n"
    return eol.join([header, *rows]) + ending.replace("\n", eol)


READER = {"which": "pandas"}


@pytest.fixture(params=["pandas", "pyarrow"])
def reader(request, monkeypatch):
    """A test that asks for it reads with both parallel readers (:func:`read_fast`): pandas' C
    parser on pieces counted first, and pyarrow's on pieces whose rows go into reserved room (in
    pieces of CSV_PIECE_BYTES too)."""
    if request.param == "pyarrow":
        pytest.importorskip("pyarrow")
    monkeypatch.setitem(READER, "which", request.param)


def read_fast(path, target="y", features=None, intercept=True):
    if READER["which"] == "pandas":
        return data._read_large_csv(path, target, features, intercept)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data, "ARROW_PIECE_BYTES", data.CSV_PIECE_BYTES)
        return data._read_arrow_csv(path, target, features, intercept, csvformat.read_header(path))


def assert_reads_as_pandas(path, target="y", features=None, intercept=True):
    found = read_fast(path, target, features, intercept)
    assert found is not None
    X, values, target_, wanted = found
    whole = read_exact(path)
    assert target_ == target
    assert wanted == [c for c in whole.columns if c != target] if features is None else wanted == features
    assert X.flags.c_contiguous and X.dtype == np.float64
    offset = 1 if intercept else 0
    assert X.shape == (len(whole), len(wanted) + offset) and np.all(X[:, :offset] == 1.0)
    np.testing.assert_array_equal(X[:, offset:], whole[wanted].to_numpy(dtype=np.float64), strict=True)
    expected = whole[target].to_numpy()
    assert values.dtype == expected.dtype
    np.testing.assert_array_equal(values, expected)


@pytest.mark.parametrize("piece_bytes", PIECES)
@pytest.mark.parametrize(
    "shape",
    [
        dict(),
        dict(quoted_header=True),
        dict(crlf=True),
        dict(ending=""),  # no newline after the last row
        dict(ending="\n\n"),  # a blank last line
        dict(crlf=True, ending="\n\n\n"),
    ],
    ids=["plain", "quoted-header", "crlf", "no-final-newline", "blank-last-line", "crlf-blank-lines"],
)
def test_pieces_read_exactly_as_the_whole_file(reader, tmp_path, rng, monkeypatch, shape, piece_bytes):
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", piece_bytes)
    path = tmp_path / "t.csv"
    path.write_bytes(text_of(table(rng, 40), **shape).encode())
    assert_reads_as_pandas(path)


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("ending", ["", "\n", "\r\n\r\n"])
def test_one_and_few_rows(reader, tmp_path, rng, monkeypatch, n, ending):
    path = tmp_path / "t.csv"
    frame = table(rng, max(n, 2)).iloc[:n]
    path.write_bytes(text_of(frame, ending=ending).encode())
    for piece_bytes in PIECES:
        monkeypatch.setattr(data, "CSV_PIECE_BYTES", piece_bytes)
        assert_reads_as_pandas(path)


def test_every_cut_in_a_line(reader, tmp_path, rng, monkeypatch):
    """Cuts one byte apart across two whole lines: each lands on a different character."""
    path = tmp_path / "t.csv"
    path.write_bytes(text_of(table(rng, 12)).encode())
    line = len(path.read_bytes().splitlines()[1]) + 1
    for piece_bytes in range(line - 3, 2 * line + 3):
        monkeypatch.setattr(data, "CSV_PIECE_BYTES", piece_bytes)
        assert_reads_as_pandas(path)


def test_many_rows_many_pieces_any_thread_count(reader, tmp_path, rng, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_bytes(text_of(table(rng, 3000)).encode())
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 50)
    for workers, piece_bytes in [(1, 997), (2, 4096), (4, 1 << 14), (8, 333)]:
        monkeypatch.setattr(data, "CSV_MAX_WORKERS", workers)
        monkeypatch.setattr(data, "CSV_PIECE_BYTES", piece_bytes)
        assert_reads_as_pandas(path)


@pytest.mark.parametrize("intercept", [True, False])
def test_a_subset_of_columns_and_a_text_target(reader, tmp_path, rng, monkeypatch, intercept):
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", 50)
    frame = table(rng, 60)
    frame.insert(2, "label", np.where(frame["y"] == 1, "yes", "no"))
    frame["unused"] = "some text"  # never parsed as a number
    path = tmp_path / "t.csv"
    path.write_bytes(text_of(frame).encode())
    assert_reads_as_pandas(path, target="label", features=["d", "a"], intercept=intercept)
    ds = data.load_dataset(str(path), get_family("bernoulli"), target="label", features="d,a", intercept=intercept)
    assert ds.levels == ("no", "yes")
    np.testing.assert_array_equal(ds.y, (frame["label"] == "yes").to_numpy(dtype=float))
    if intercept:
        np.testing.assert_array_equal(ds.X[:, 0], np.ones(60))


def test_layout_counts_the_rows_of_each_piece(tmp_path, rng):
    path = tmp_path / "t.csv"
    path.write_bytes(text_of(table(rng, 100), ending="\n\n").encode())
    bounds, offsets, widths = data._pieces(path, 200)
    assert widths == [5] * (len(bounds) - 1)
    raw = path.read_bytes()
    assert bounds[0] == raw.index(b"\n") + 1 and bounds[-1] == len(raw.rstrip(b"\n"))
    assert len(bounds) > 10 and offsets[0] == 0 and offsets[-1] == 100
    for i in range(len(bounds) - 1):
        piece = raw[bounds[i]:bounds[i + 1]]
        assert raw[bounds[i] - 1:bounds[i]] == b"\n"  # every piece starts a line
        assert len(piece.rstrip(b"\n").split(b"\n")) == offsets[i + 1] - offsets[i]


# -- what the pieces cannot read goes to the table path, which names the row ---------------------


def lines_of(rng, n=30) -> list[str]:
    return text_of(table(rng, n)).splitlines()


def test_a_blank_line_inside_is_left_to_the_table_path(reader, tmp_path, rng, monkeypatch):
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", 100)
    lines = lines_of(rng)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines[:10] + [""] + lines[10:]) + "\n")
    assert read_fast(path) is None
    ds = data.load_dataset(str(path), get_family("bernoulli"))  # pandas skips the blank line
    np.testing.assert_array_equal(ds.X[:, 1:], read_exact(path).drop(columns="y").to_numpy())


@pytest.mark.parametrize("where", [1, 15, 30])
def test_a_row_with_an_extra_field_is_an_error_naming_its_line(reader, tmp_path, rng, monkeypatch, where):
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", 100)
    lines = lines_of(rng)
    lines[where] += ",7"
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    assert read_fast(path) is None  # a piece starting there would read the extra field as an index
    with pytest.raises(DataError) as err:
        data.load_dataset(str(path), get_family("bernoulli"))
    if where == 1:  # pandas reads the first column as the index, and the last as missing values
        assert "column 'd' has 29 missing value(s), the first in data row 2" in str(err.value)
    else:
        assert f"line {where + 1}" in str(err.value)


def test_a_header_one_field_short_is_read_as_pandas_reads_it(reader, tmp_path, rng, monkeypatch):
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", 100)
    lines = lines_of(rng)
    lines[0] = lines[0].split(",", 1)[1]  # pandas makes the first column the index
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    assert read_fast(path, target="a") is None
    ds = data.load_dataset(str(path), get_family("gaussian"), target="a")
    np.testing.assert_array_equal(ds.y, read_exact(path)["a"].to_numpy())


def test_a_quoted_line_end_is_left_to_the_table_path(reader, tmp_path, rng, monkeypatch):
    frame = table(rng, 30)
    frame.insert(1, "label", np.where(frame["y"] == 1, '"yes\nreally"', "no"))
    path = tmp_path / "t.csv"
    path.write_text(text_of(frame))
    for piece_bytes in PIECES:
        monkeypatch.setattr(data, "CSV_PIECE_BYTES", piece_bytes)
        assert read_fast(path, target="label") is None  # a cut in the quotes, or too few rows
    ds = data.load_dataset(str(path), get_family("bernoulli"), target="label")
    assert ds.levels == ("no", "yes\nreally") and ds.n_obs == 30


def test_quoted_fields_read_as_pandas_reads_them(reader, tmp_path, rng, monkeypatch):
    lines = lines_of(rng)
    rows = [line.split(",") for line in lines]
    for fields in rows:
        fields[1] = f'"{fields[1]}"'  # a quoted number, and a quoted name in the header
    path = tmp_path / "t.csv"
    path.write_text("\n".join(",".join(fields) for fields in rows) + "\n")
    for piece_bytes in PIECES:
        monkeypatch.setattr(data, "CSV_PIECE_BYTES", piece_bytes)
        assert_reads_as_pandas(path)


@pytest.mark.parametrize("row", [1, 14, 29])
@pytest.mark.parametrize(
    "value, message",
    [("abc", "feature column 'b' is not numeric: data row {row} has 'abc'"),
     ("", "column 'b' has 1 missing value(s), the first in data row {row}"),
     ("1e999", "feature column 'b' has infinite values")],
    ids=["text", "missing", "infinite"],
)
def test_bad_values_are_named_by_the_table_path(reader, tmp_path, rng, monkeypatch, row, value, message):
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", 64)
    frame = table(rng, 30).astype({"b": object})
    frame.loc[row - 1, "b"] = value
    path = tmp_path / "t.csv"
    path.write_text(text_of(frame))
    assert read_fast(path) is None
    with pytest.raises(DataError) as err:
        data.load_dataset(str(path), get_family("bernoulli"))
    assert message.format(row=row) in str(err.value)


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MAP_POPULATE"), reason="MAP_POPULATE is Linux's")
def test_the_matrix_is_mapped_before_the_threads_write_it():
    """The reader's matrix comes with its pages mapped (MAP_POPULATE): writing every value of a
    32 MB matrix takes almost no page faults, where a fresh map would take one per 4 KB page."""
    import resource

    X = data._empty_matrix(200_000, 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    X[:] = 1.0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert X.flags.f_contiguous and X.shape == (200_000, 20) and np.all(X == 1.0)
    assert faults < 200  # 7,813 pages
