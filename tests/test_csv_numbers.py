"""Numeric CSVs parsed by pyarrow (mlefit.readers.csvfast) give the nearest float64 of every value,
and the same matrices, estimates and error messages as pandas' round_trip reader, in memory, in
--stream's one pass and on Dask partitions."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

import mlefit
from mlefit import data
from mlefit.engines import stream
from mlefit.families import get_family
from mlefit.readers import csvfast

pytest.importorskip("pyarrow")


def bits(values) -> bytes:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64).tobytes()


@pytest.fixture
def pieces(monkeypatch):
    """Every file takes the large-file readers, in many small pieces (and small stream blocks)."""
    monkeypatch.setattr(data, "SMALL_CSV_BYTES", 0)
    monkeypatch.setattr(data, "ARROW_PIECE_BYTES", 4096)
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", 4096)


@pytest.fixture
def calls(monkeypatch):
    """Counts pyarrow's plain reads (so a test knows the fast path ran)."""
    parse = csvfast.parse
    seen = {"plain": 0, "refused": 0}

    def counting(*args, **kwargs):
        found = parse(*args, **kwargs)
        seen["plain" if found is not None else "refused"] += 1
        return found

    monkeypatch.setattr(csvfast, "parse", counting)
    return seen


def without_pyarrow(monkeypatch):
    """Today's reader: pyarrow's parse refuses everything, so pandas reads every file."""
    monkeypatch.setattr(csvfast, "parse", lambda *args, **kwargs: None)


# -- values: Python's float() of the text, bit for bit ----------------------------------------------


def test_every_value_is_pythons_float_of_its_text():
    rng = np.random.default_rng(18)
    raw = np.concatenate([
        rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000),
        np.frombuffer(rng.bytes(8 * 3000), dtype=np.float64),  # any bit pattern
    ])
    raw = raw[np.isfinite(raw)]
    tokens = [repr(float(v)) for v in raw]  # 17 significant digits where needed
    tokens += [f"{v:.15g}" for v in raw[:2000]] + [f"{v:.16e}" for v in raw[:2000]]
    tokens += ["-0", "-0.0", "0", "+1", ".5", "5.", "1E+05", "1e-400", "4.9e-324", "2.4703282292062328e-324",
               "1.7976931348623157e308", "00012", "123456789012345678901234567890", " 1.25", "7 "]
    text = "x\n" + "\n".join(tokens) + "\n"
    found = csvfast.parse(text.encode(), ["x"], ["x"], None, ",", header=True)
    expected = np.array([float(t) for t in tokens])
    assert found is not None and bits(found["x"]) == bits(expected)
    assert math.copysign(1.0, found["x"][tokens.index("-0")]) == -1.0


@pytest.mark.parametrize("token", ["1e999", "-1e999", "inf", "nan", "NA", "", "true", "0x10", "1_0", "1,5", "abc"])
def test_anything_but_a_finite_number_is_left_to_pandas(token):
    assert csvfast.parse(f"x,y\n1,0\n{token},1\n".encode(), ["x", "y"], ["x"], "y", ",", header=True) is None


@pytest.mark.parametrize(("column", "expected"), [
    (["0", "1", "1"], np.array([0, 1, 1])),
    (["0", "1.5", "-2"], np.array([0.0, 1.5, -2.0])),
    (["a", "b c", "a"], np.array(["a", "b c", "a"], dtype=object)),
    (["true", "false", "true"], None),  # booleans: pandas' own type
    (["a", "NA", "b"], None),  # missing to pandas
    (["a", " 1", "b"], None),  # a number among text: pandas' inference decides
    (["a", "", "b"], None),
    (["9223372036854775808", "0", "1"], None),  # beyond int64
])
def test_targets_are_typed_as_pandas_types_them(column, expected):
    import pandas as pd

    text = "x,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(column))
    found = csvfast.parse(text.encode(), ["x", "y"], ["x"], "y", ",", header=True)
    if expected is None:
        assert found is None
        return
    import io

    by_pandas = pd.read_csv(io.StringIO(text), float_precision="round_trip")["y"].to_numpy()
    assert found["y"].dtype == by_pandas.dtype == expected.dtype
    assert list(found["y"]) == list(by_pandas) == list(expected)


def test_line_blocks_cut_at_line_ends(tmp_path):
    path = tmp_path / "t.csv"
    lines = [f"{i},{'z' * (i % 7)}\n".encode() for i in range(500)]
    path.write_bytes(b"".join(lines))
    blocks = list(csvfast.line_blocks(path, 100))
    assert b"".join(b for _, b in blocks) == path.read_bytes()
    assert all(b.endswith(b"\n") for _, b in blocks) and len(blocks) > 10
    assert [end for end, _ in blocks][-1] == path.stat().st_size


# -- files: the same dataset and estimates as pandas' reader -------------------------------------------


def write(path, columns: dict, sep=",", fmt=repr):
    names = list(columns)
    n = len(next(iter(columns.values())))
    with open(path, "w") as fh:
        fh.write(sep.join(names) + "\n")
        for i in range(n):
            fh.write(sep.join(fmt(float(columns[c][i])) if isinstance(columns[c][i], float) else str(columns[c][i])
                              for c in names) + "\n")
    return path


def numbers(n=1500, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * np.array([1.0, 1e-7, 3e5])
    eta = 0.3 + X[:, 0] - 2e6 * X[:, 1] + 1e-6 * X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y


FILES = {
    "repr-17-digits": lambda X, y: ({"a": list(X[:, 0]), "b": list(X[:, 1]), "c": list(X[:, 2]), "y": list(y)}, ",", repr),
    "ints": lambda X, y: ({"a": [int(v * 1000) for v in X[:, 0]], "b": list(X[:, 1]), "c": [int(v) for v in X[:, 2]],
                           "y": list(y)}, ",", repr),
    "negative-zero": lambda X, y: ({"a": [-0.0 if i % 3 == 0 else v for i, v in enumerate(X[:, 0])], "b": list(X[:, 1]),
                                    "c": list(X[:, 2]), "y": list(y)}, ",", repr),
    "exponents": lambda X, y: ({"a": list(X[:, 0]), "b": list(X[:, 1]), "c": list(X[:, 2]), "y": list(y)}, ",",
                               lambda v: f"{v:.16E}"),
    "semicolon": lambda X, y: ({"a": list(X[:, 0]), "b": list(X[:, 1]), "c": list(X[:, 2]), "y": list(y)}, ";", repr),
    "text-labels": lambda X, y: ({"a": list(X[:, 0]), "b": list(X[:, 1]), "c": list(X[:, 2]),
                                  "y": ["yes" if v else "no" for v in y]}, ",", repr),
}


@pytest.mark.parametrize("kind", sorted(FILES))
def test_in_memory_reader_gives_pandas_dataset_and_estimates(tmp_path, monkeypatch, pieces, calls, kind):
    X, y = numbers()
    columns, sep, fmt = FILES[kind](X, y)
    path = write(tmp_path / f"{kind}.csv", columns, sep, fmt)
    fam = get_family("bernoulli")
    fast = data.load_dataset(path, fam)
    fit_fast = mlefit.fit(path, "bernoulli")
    assert calls["plain"] > 2 and calls["refused"] == 0  # many pieces, every one read by pyarrow
    # each value the nearest float64 of its text
    texts = [line.split(sep) for line in path.read_text().splitlines()[1:]]
    for j, name in enumerate(["a", "b", "c"]):
        assert bits(fast.X[:, 1 + j]) == bits([float(row[j]) for row in texts])
    without_pyarrow(monkeypatch)
    slow = data.load_dataset(path, fam)
    fit_slow = mlefit.fit(path, "bernoulli")
    assert bits(fast.X) == bits(slow.X) and np.array_equal(fast.y, slow.y) and fast.y.dtype == slow.y.dtype
    assert fast.feature_names == slow.feature_names and fast.levels == slow.levels
    assert (fast.separator, fast.separator_detected) == (slow.separator, slow.separator_detected)
    assert bits(fit_fast.params) == bits(fit_slow.params) and bits(fit_fast.se) == bits(fit_slow.se)
    # and statsmodels' fit of the same numbers
    sm = pytest.importorskip("statsmodels.api")
    scale = np.maximum(np.abs(fast.X).max(axis=0), 1e-300)  # columns of 1e-7 and 3e5: statsmodels on unit scales
    ref = sm.Logit(fast.y, fast.X / scale).fit(disp=0, method="newton", tol=1e-12).params / scale
    assert np.max(np.abs(fit_fast.params - ref) / np.maximum(np.abs(ref), 1e-8)) < 1e-6


@pytest.mark.parametrize("kind", ["repr-17-digits", "semicolon", "text-labels"])
def test_streamed_one_pass_gives_pandas_estimates(tmp_path, monkeypatch, calls, kind):
    X, y = numbers(seed=2)
    columns, sep, fmt = FILES[kind](X, y)
    path = write(tmp_path / f"{kind}.csv", columns, sep, fmt)
    fast = mlefit.fit(path, "bernoulli", stream=True, chunk_rows=200)
    assert calls["plain"] > 3 and calls["refused"] == 0
    without_pyarrow(monkeypatch)
    slow = mlefit.fit(path, "bernoulli", stream=True, chunk_rows=200)
    assert fast.names == slow.names and fast.levels == slow.levels
    assert bits(fast.params) == bits(slow.params) and bits(fast.se) == bits(slow.se) and fast.nll == slow.nll


def test_streamed_blocks_stay_small(tmp_path, monkeypatch):
    """--stream's pyarrow reader parses blocks of about chunk_rows lines, never the whole file."""
    X, y = numbers(n=3000, seed=3)
    path = write(tmp_path / "d.csv", {"a": list(X[:, 0]), "y": list(y)})
    sizes = []
    parse = csvfast.parse

    def spy(text, *args, **kwargs):
        sizes.append(len(text))
        return parse(text, *args, **kwargs)

    monkeypatch.setattr(csvfast, "parse", spy)
    mlefit.fit(path, "bernoulli", stream=True, chunk_rows=100)
    assert len(sizes) > 10 and max(sizes) < path.stat().st_size / 10


BAD = {
    "text-feature": ("b", 7, "oops"),
    "missing-feature": ("b", 11, ""),
    "beyond-range": ("a", 5, "1e999"),
    "infinite": ("c", 9, "inf"),
    "nan": ("a", 3, "nan"),
    "boolean": ("c", 4, "true"),
}


@pytest.mark.parametrize("engine", ["memory", "stream"])
@pytest.mark.parametrize("kind", sorted(BAD))
def test_fallbacks_give_todays_messages(tmp_path, monkeypatch, pieces, calls, invoke, kind, engine):
    X, y = numbers(n=600, seed=4)
    columns = {"a": list(X[:, 0]), "b": list(X[:, 1]), "c": list(X[:, 2]), "y": list(y)}
    column, row, value = BAD[kind]
    columns[column][row - 1] = value
    path = write(tmp_path / "bad.csv", columns)
    args = ["fit", str(path), "--family", "bernoulli"] + (["--stream", "--chunk-rows", "100"] if engine == "stream" else [])
    fast = invoke(*args)
    assert calls["refused"] > 0  # pyarrow left the file to pandas
    without_pyarrow(monkeypatch)
    slow = invoke(*args)
    assert (fast.exit_code, fast.stdout, fast.stderr) == (slow.exit_code, slow.stdout, slow.stderr)
    if fast.exit_code:
        assert fast.exit_code == 2 and f"'{column}'" in fast.stderr


def test_blank_line_and_quoted_values_read_as_pandas_reads_them(tmp_path, monkeypatch, pieces):
    X, y = numbers(n=800, seed=5)
    lines = ["a,b,c,y"] + [f'{X[i, 0]!r},"{X[i, 1]!r}",{X[i, 2]!r},{y[i]}' for i in range(800)]
    lines.insert(300, "")
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    fam = get_family("bernoulli")
    fast = data.load_dataset(path, fam)
    without_pyarrow(monkeypatch)
    slow = data.load_dataset(path, fam)
    assert fast.n_obs == slow.n_obs == 800 and bits(fast.X) == bits(slow.X)


def test_a_target_typed_differently_in_two_pieces_is_one_column(tmp_path, monkeypatch, pieces):
    """Integers in the first pieces and a float in the last: float64 throughout, as pandas reads it."""
    X, y = numbers(n=800, seed=6)
    values = [float(v) for v in np.round(X[:, 2] / 1e5, 0)]
    target = [str(int(v)) for v in values]
    target[-1] = "2.5"
    path = write(tmp_path / "g.csv", {"a": list(X[:, 0]), "y": target})
    fam = get_family("gaussian")
    fast = data.load_dataset(path, fam)
    without_pyarrow(monkeypatch)
    slow = data.load_dataset(path, fam)
    assert bits(fast.y) == bits(slow.y) and bits(fast.X) == bits(slow.X)


# -- Dask: partitions parsed by pyarrow on the workers ---------------------------------------------------


@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_dask_partitions_give_pandas_estimates(tmp_path, monkeypatch, family):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    from mlefit.engines import cluster

    X, y = numbers(n=1200, seed=7)
    labels = [["lo", "mid", "hi"][(v + i) % 3] for i, v in enumerate(y)] if family == "categorical" else list(y)
    path = write(tmp_path / "d.csv", {"a": list(X[:, 0]), "b": list(X[:, 1]), "c": list(X[:, 2]), "y": labels})
    plain = []
    read = csvfast.parse

    def spy(*args, **kwargs):
        found = read(*args, **kwargs)
        plain.append(found is not None)
        return found

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address="127.0.0.1:0") as lc, distributed.Client(lc) as client:
        monkeypatch.setattr(csvfast, "parse", spy)
        fast = mlefit.fit(path, family, engine="dask", client=client, chunk_rows=150)
        assert len(plain) > 3 and all(plain)
        without_pyarrow(monkeypatch)
        slow = mlefit.fit(path, family, engine="dask", client=client, chunk_rows=150)
    assert fast.names == slow.names and fast.levels == slow.levels
    assert bits(fast.params) == bits(slow.params) and bits(fast.se) == bits(slow.se)
    assert cluster.read_block is not None


def test_read_block_is_pandas_read_csv_of_a_partition():
    import io

    import pandas as pd

    from mlefit.engines import cluster

    text = b"a;b;y\n0.1;-0.0;x\n1e-5;3;y z\n"
    options = {"sep": ";", "usecols": ["a", "b", "y"], "dtype": {"a": np.float64, "b": np.float64, "y": object},
               "float_precision": "round_trip", "header": "infer"}
    fast = cluster.read_block(io.BytesIO(text), **options)
    slow = pd.read_csv(io.BytesIO(text), **options)
    assert list(fast.columns) == list(slow.columns) and list(fast.dtypes) == list(slow.dtypes)
    assert bits(fast[["a", "b"]].to_numpy()) == bits(slow[["a", "b"]].to_numpy())
    assert list(fast["y"]) == list(slow["y"])
    head = cluster.read_block(io.BytesIO(text), nrows=1, **options)  # dask's sample: pandas itself
    assert len(head) == 1
