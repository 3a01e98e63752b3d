"""Parquet input (mlefit.readers.parquet): the same fits as the same data in a CSV, in memory, streamed
and on Dask; folders read as one table; column types from the file; predict, simulate and check-grad."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlefit
from conftest import MLEFIT, SAMPLES, subprocess_env

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

#: A Parquet file and the same data as a CSV give the same fit to this (relative).
RTOL = 1e-12


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def make_frame(family: str, n: int = 900, seed: int = 11, text: bool = True) -> pd.DataFrame:
    """Numbers, an integer column, a boolean and (``text``) a text column whose levels 'b' and 'c'
    appear only after the first 300 rows; class 1 (bernoulli), 'm' and 'z' (categorical) only later."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    k = rng.integers(0, 5, n)
    flag = rng.random(n) < 0.4
    g = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    g[:300] = "a"
    eta = 0.3 + x1 - 0.5 * x2 + 0.1 * k + 0.4 * flag + 0.7 * (g == "b")
    if family == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
        y[:150] = 0
    elif family == "categorical":
        y = np.where(rng.random(n) < 0.3, "z", np.where(eta > 0.8, "m", "k"))
        y[:250] = "k"
    elif family == "poisson":
        y = rng.poisson(np.exp(0.3 * eta))
    else:
        y = eta + rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "k": k, "flag": flag, "g": g, "w": rng.integers(0, 4, n), "y": y})
    return frame if text else frame.drop(columns="g")


def write_both(folder: Path, frame: pd.DataFrame, row_group_size: int = 97) -> tuple[Path, Path]:
    """The frame as a CSV and as a Parquet file of row groups of ``row_group_size`` rows."""
    csv, parquet = folder / "d.csv", folder / "d.parquet"
    frame.to_csv(csv, index=False)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=row_group_size)
    return csv, parquet


def assert_same_fit(a, b, tol: float = RTOL) -> None:
    assert a.names == b.names and a.levels == b.levels and a.design == b.design
    assert _rel(a.params, b.params) < tol and _rel(a.se, b.se) < tol and _rel(a.nll, b.nll) < tol
    assert a.n_obs == b.n_obs and a.n_dropped == b.n_dropped


# -- the same fit as the CSV ----------------------------------------------------------------------

FAMILIES = ["bernoulli", "categorical", "gaussian", "poisson"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("text", [True, False], ids=["text", "numeric"])
@pytest.mark.parametrize("engine", ["memory", "stream"])
def test_parquet_and_csv_give_the_same_fit(tmp_path, family, text, engine):
    """With a text column (the two-pass readers) and without (the one-pass numeric readers), weights
    included; streamed in chunks of 97 rows that split the levels and classes."""
    csv, parquet = write_both(tmp_path, make_frame(family, text=text))
    options = {"weights": "w"} if engine == "memory" else {"stream": True, "chunk_rows": 97, "weights": "w"}
    from_csv = mlefit.fit(csv, family, **options)
    from_parquet = mlefit.fit(parquet, family, **options)
    assert_same_fit(from_parquet, from_csv)
    assert from_parquet.separator is None and from_csv.separator == ","
    assert "flag" in from_parquet.names  # a boolean is a number, 0 or 1


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "gaussian"])
@pytest.mark.parametrize("text", [True, False], ids=["text", "numeric"])
def test_parquet_on_dask_equals_the_csv_on_dask(tmp_path, client, family, text):
    csv, parquet = write_both(tmp_path, make_frame(family, text=text))
    from_csv = mlefit.fit(csv, family, engine="dask", client=client, chunk_rows=100, weights="w")
    from_parquet = mlefit.fit(parquet, family, engine="dask", client=client, chunk_rows=100, weights="w")
    assert_same_fit(from_parquet, from_csv)
    # and both the in-memory fit to the streamed engine's tolerance
    assert _rel(from_parquet.params, mlefit.fit(csv, family, weights="w").params) < 1e-10


def test_numeric_parquet_is_read_in_one_pass(tmp_path, monkeypatch):
    """Numbers and booleans without nulls go straight to the cache; a text column takes two passes."""
    from mlefit.engines import stream

    passes = []
    original = stream._first_pass
    monkeypatch.setattr(stream, "_first_pass", lambda *a, **k: passes.append(1) or original(*a, **k))
    _, numeric = write_both(tmp_path, make_frame("bernoulli", text=False))
    mlefit.fit(numeric, "bernoulli", stream=True, chunk_rows=97)
    assert passes == []
    _, texts = write_both(tmp_path, make_frame("bernoulli", text=True))
    mlefit.fit(texts, "bernoulli", stream=True, chunk_rows=97)
    assert passes == [1]


@pytest.mark.parametrize("engine", ["memory", "stream", "dask"])
def test_a_folder_of_parquet_files_is_their_concatenation(tmp_path, engine, request):
    """Files in natural order of their names (part.2 before part.10), hidden and underscore files
    ignored, give the fit of one file holding their rows in that order."""
    frame = make_frame("categorical")
    folder = tmp_path / "parts"
    folder.mkdir()
    cuts = [0, 200, 450, 451, 900]
    for name, (a, b) in zip(["part.1.parquet", "part.2.parquet", "part.10.parquet", "part.11.parquet"],
                            zip(cuts, cuts[1:])):
        frame.iloc[a:b].to_parquet(folder / name, index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part.1.parquet.crc").write_bytes(b"\x00\x01")
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    options = {"memory": {}, "stream": {"stream": True, "chunk_rows": 64}}.get(engine)
    if options is None:
        options = {"engine": "dask", "client": request.getfixturevalue("client"), "chunk_rows": 100}
    assert_same_fit(mlefit.fit(folder, "categorical", **options), mlefit.fit(whole, "categorical", **options))


def test_a_folder_names_the_data_row_across_its_files(tmp_path, invoke):
    frame = make_frame("gaussian", n=60, text=False)
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[47, "x2"] = None
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, 60, 20)):
        frame.iloc[start:start + 20].astype({"x2": float}).to_parquet(folder / f"p{i}.parquet", index=False)
    expected = "column 'x2' has 1 missing value(s), the first in data row 48."
    for extra in ([], ["--stream", "--chunk-rows", "7"]):
        res = invoke("fit", folder, "-f", "gaussian", *extra)
        assert res.exit_code == 2 and expected in res.stderr, res.stderr


def test_folder_files_must_have_the_same_columns(tmp_path, invoke):
    folder = tmp_path / "parts"
    folder.mkdir()
    pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, 1.5]}).to_parquet(folder / "a.parquet", index=False)
    pd.DataFrame({"x": [1.0, 2.0], "z": [0.5, 1.5]}).to_parquet(folder / "b.parquet", index=False)
    res = invoke("fit", folder, "-f", "gaussian")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        f"Error: column 'y' is in '{folder / 'a.parquet'}' but not in '{folder / 'b.parquet'}': the files of "
        f"folder '{folder}' must have the same columns."
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    res = invoke("fit", empty, "-f", "gaussian")
    assert res.exit_code == 2 and f"folder '{empty}' holds no Parquet files." in res.stderr


# -- column types ---------------------------------------------------------------------------------


def typed_table(n: int = 400, seed: int = 3):
    """Arrow columns of every kind the readers take: a dictionary (categorical) column with a
    category that never occurs, strings, booleans, integers with a null, decimals, timestamps, and
    a list column no fit uses. Returns the table and the same data as the pandas frame the CSV
    readers would give, nulls included."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    region = np.array(["north", "south", "east"])[rng.integers(0, 3, n)]
    color = np.array(["red", "blue"])[rng.integers(0, 2, n)].astype(object)
    color[7] = None
    flag = (rng.random(n) < 0.5).astype(object)
    flag[11] = None
    count = rng.integers(0, 9, n).astype(object)
    count[19] = None
    price = np.round(rng.uniform(1, 50, n), 2)
    day = np.datetime64("2024-01-01") + rng.integers(0, 3, n).astype("timedelta64[D]")
    y = 0.5 * x + (region == "south") - 0.3 * (color == "red") + rng.normal(size=n)
    table = pa.table({
        "x": pa.array(x),
        "region": pa.DictionaryArray.from_arrays(
            pa.array(np.searchsorted(["east", "north", "south", "west"], region), pa.int32()),
            pa.array(["east", "north", "south", "west"]),  # 'west' never occurs
        ),
        "color": pa.array(list(color), pa.string()),
        "flag": pa.array(list(flag), pa.bool_()),
        "count": pa.array(list(count), pa.int16()),
        "price": pa.array([Decimal(f"{p:.2f}") for p in price], pa.decimal128(10, 2)),
        "day": pa.array(day.astype("datetime64[ms]"), pa.timestamp("ms")),
        "tags": pa.array([[1, 2]] * n, pa.list_(pa.int64())),
        "y": pa.array(y),
    })
    frame = pd.DataFrame({
        "x": x, "region": region, "color": color,
        "flag": pd.array(list(flag), dtype="boolean"), "count": pd.array(list(count), dtype="Float64"),
        "price": price, "day": np.datetime_as_string(day.astype("datetime64[ms]"), unit="ms").astype(object), "y": y,
    })
    frame["day"] = frame["day"].str.replace("T", " ")
    frame["count"] = frame["count"].astype(float)
    return table, frame


def test_types_come_from_the_file(tmp_path):
    """Categories and strings are text features (levels: the values that occur), booleans and numbers
    numeric, decimals numbers, timestamps text; nulls are missing values, dropped with dropna; the
    fit equals that of the same data in memory as the CSV readers type it."""
    table, frame = typed_table()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=50)
    features = "x,region,color,flag,count,price,day"
    got = mlefit.fit(path, "gaussian", features=features, dropna=True)
    columns = {c["column"]: c for c in got.design["columns"]}
    assert columns["region"]["levels"] == ["east", "north", "south"]  # 'west' never occurs
    assert columns["color"]["levels"] == ["blue", "red"]
    assert columns["day"]["levels"] == ["2024-01-01 00:00:00.000", "2024-01-02 00:00:00.000", "2024-01-03 00:00:00.000"]
    assert {c: columns[c]["type"] for c in ("x", "flag", "count", "price")} == dict.fromkeys(
        ("x", "flag", "count", "price"), "numeric"
    )
    assert got.n_dropped == 3 and got.n_obs == 397
    expected = mlefit.fit(frame.dropna().reset_index(drop=True), "gaussian", features=features)
    assert _rel(got.params, expected.params) < RTOL and got.names == expected.names
    streamed = mlefit.fit(path, "gaussian", features=features, dropna=True, stream=True, chunk_rows=37)
    assert_same_fit(streamed, got, 1e-10)


@pytest.mark.parametrize("extra", [[], ["--stream", "--chunk-rows", "37"]], ids=["memory", "stream"])
def test_nulls_are_missing_values_with_the_usual_message(tmp_path, invoke, extra):
    table, frame = typed_table()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=50)
    csv = tmp_path / "t.csv"
    frame.to_csv(csv, index=False)
    for column, row in (("color", 8), ("flag", 12), ("count", 20)):
        res = invoke("fit", path, "-f", "gaussian", "-x", f"x,{column}", *extra)
        from_csv = invoke("fit", csv, "-f", "gaussian", "-x", f"x,{column}", *extra)
        expected = (f"Error: column '{column}' has 1 missing value(s), the first in data row {row}. Remove or fill "
                    "those rows, or use --dropna to drop them.")
        assert res.exit_code == 2 and res.stderr.strip() == expected, res.stderr
        assert from_csv.stderr.strip() == expected


def test_a_boolean_is_zero_or_one(tmp_path):
    """A boolean feature's coefficient is that of its 0/1 column; a boolean target is bernoulli's labels."""
    rng = np.random.default_rng(5)
    n = 300
    x = rng.normal(size=n)
    b = rng.random(n) < 0.5
    y = rng.random(n) < 1 / (1 + np.exp(-(x + b)))
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"x": x, "b": b, "y": y}), path)
    got = mlefit.fit(path, "bernoulli")
    ref = mlefit.fit(X=np.column_stack([x, b.astype(float)]), y=y.astype(int), family="bernoulli",
                     feature_names=["x", "b"])
    assert _rel(got.params, ref.params) < RTOL
    assert got.levels == (False, True)


def test_a_column_of_another_type_is_refused_only_when_used(tmp_path, invoke):
    table, _ = typed_table()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    ok = invoke("fit", path, "-f", "gaussian", "-x", "x,price", "--format", "json")
    assert ok.exit_code == 0, ok.stderr  # 'tags' (a list) is never read
    res = invoke("fit", path, "-f", "gaussian", "-x", "x,tags")
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "Error: column 'tags' holds values of Parquet type list<element: int64>, which mlefit cannot use: only "
        "numbers, booleans and text (strings, categories, dates). Leave it out, or convert it to one of those types."
    )


# -- files that are not Parquet, and pyarrow missing ------------------------------------------------


def damaged_parquet(path: Path) -> Path:
    """A Parquet file whose footer is intact and whose data pages are not."""
    make_frame("gaussian", text=False).to_parquet(path, index=False, compression="snappy")
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    end = len(data) - footer - 8
    data[4:end] = bytes((7 * v + 3) % 256 for v in data[4:end])
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("extra", [[], ["--stream"]], ids=["memory", "stream"])
def test_a_file_that_is_not_parquet_or_is_damaged_is_one_sentence(tmp_path, invoke, extra):
    text = tmp_path / "notes.parquet"
    text.write_text("x,y\n1,2\n")
    res = invoke("fit", text, "-f", "gaussian", *extra)
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith(f"Error: '{text}' is not a readable Parquet file (") and res.stderr.count("\n") == 1
    bad = damaged_parquet(tmp_path / "bad.parquet")
    res = invoke("fit", bad, "-f", "gaussian", *extra)
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith(f"Error: '{bad}' is not a readable Parquet file (") and res.stderr.count("\n") == 1


def test_a_damaged_file_on_dask_is_one_sentence(tmp_path, client):
    bad = damaged_parquet(tmp_path / "bad.parquet")
    with pytest.raises(mlefit.errors.DataError, match=r"^'.*bad\.parquet' is not a readable Parquet file \("):
        mlefit.fit(bad, "gaussian", engine="dask", client=client)


def test_csv_chosen_explicitly_reads_the_file_as_csv(tmp_path, invoke):
    csv, _ = write_both(tmp_path, make_frame("gaussian", text=False))
    renamed = tmp_path / "really_csv.parquet"
    renamed.write_bytes(csv.read_bytes())
    res = invoke("fit", renamed, "-f", "gaussian", "--input-format", "csv", "--format", "json")
    assert res.exit_code == 0, res.stderr
    parquet_named_otherwise = tmp_path / "data.bin"
    make_frame("gaussian", text=False).to_parquet(parquet_named_otherwise, index=False)
    res = invoke("fit", parquet_named_otherwise, "-f", "gaussian", "--input-format", "parquet", "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["n_obs"] == 900


def test_without_pyarrow_one_sentence_names_the_extra(tmp_path):
    _, parquet = write_both(tmp_path, make_frame("gaussian", text=False))
    code = (
        "import sys\nsys.modules['pyarrow'] = None\nsys.modules['pyarrow.parquet'] = None\n"
        "from mlefit.cli import app\n"
        f"sys.argv = ['mlefit', 'fit', {str(parquet)!r}, '-f', 'gaussian']\napp()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "Error: reading or writing Parquet needs the pyarrow package, which is not installed. Install it with: "
        "pip install 'mlefit[parquet]'.\n"
    )


# -- predict, simulate, check-grad ----------------------------------------------------------------


def test_a_model_fitted_on_parquet_predicts_csv_rows_and_the_other_way(tmp_path, invoke):
    csv, parquet = write_both(tmp_path, make_frame("categorical"))
    for data in (csv, parquet):
        res = invoke("fit", data, "-f", "categorical", "--save", tmp_path / f"{data.suffix[1:]}.json", "--quiet")
        assert res.exit_code == 0, res.stderr
    from_csv = json.loads((tmp_path / "csv.json").read_text())
    from_parquet = json.loads((tmp_path / "parquet.json").read_text())
    assert from_csv["design"] == from_parquet["design"]
    outputs = {}
    for model in ("csv", "parquet"):
        for data in (csv, parquet):
            res = invoke("predict", tmp_path / f"{model}.json", data)
            assert res.exit_code == 0, res.stderr
            outputs[model, data.suffix] = pd.read_csv(io.StringIO(res.stdout))
    # (pandas' CSV parser may read a float one unit in the last place away from the Parquet value)
    reference = outputs["parquet", ".parquet"]
    probabilities = ["prob_k", "prob_m", "prob_z"]
    for scored in outputs.values():
        assert list(scored.columns) == ["x1", "x2", "k", "flag", "g", "w", "y", *probabilities, "predicted_y"]
        assert _rel(scored[probabilities].to_numpy(), reference[probabilities].to_numpy()) < 1e-12
        assert (scored["predicted_y"] == reference["predicted_y"]).all() and (scored["g"] == reference["g"]).all()
    # -o scored.parquet writes Parquet: the input's columns and the same predictions
    res = invoke("predict", tmp_path / "parquet.json", parquet, "-o", tmp_path / "scored.parquet")
    assert res.exit_code == 0 and res.stdout == ""
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    printed = invoke("predict", tmp_path / "parquet.json", parquet).stdout
    assert list(scored.columns) == list(reference.columns)
    assert scored.to_csv(index=False, lineterminator="\n") == printed  # the same values, to the last bit
    res = invoke("predict", tmp_path / "parquet.json", parquet, "-o", tmp_path / "scored.csv")
    assert res.exit_code == 0 and (tmp_path / "scored.csv").read_text() == printed


def test_simulate_writes_parquet_that_fits_like_its_csv(tmp_path, invoke):
    args = ["simulate", "-f", "poisson", "--coef", "0.5,-0.3", "--intercept", "0.2", "--n", "500", "--seed", "4"]
    csv = invoke(*args)
    res = invoke(*args, "-o", tmp_path / "sim.parquet")
    assert res.exit_code == 0 and res.stdout == ""
    table = pq.read_table(tmp_path / "sim.parquet")
    assert table.schema.names == ["x1", "x2", "y"] and table.schema.field("y").type == pa.int64()
    (tmp_path / "sim.csv").write_text(csv.stdout)
    expected = pd.read_csv(tmp_path / "sim.csv")
    pd.testing.assert_frame_equal(table.to_pandas(), expected)  # floats written exactly both ways
    assert_same_fit(mlefit.fit(tmp_path / "sim.parquet", "poisson"), mlefit.fit(tmp_path / "sim.csv", "poisson"))


def test_check_grad_reads_parquet(tmp_path, invoke):
    path = tmp_path / "house.parquet"
    pd.read_csv(SAMPLES / "house_prices.csv").to_parquet(path, index=False)
    parquet = invoke("check-grad", path, "-f", "gaussian", "--format", "json")
    csv = invoke("check-grad", SAMPLES / "house_prices.csv", "-f", "gaussian", "--format", "json")
    assert parquet.exit_code == 0, parquet.stderr
    a, b = json.loads(parquet.stdout), json.loads(csv.stdout)
    assert a["passed"] and a["n_obs"] == b["n_obs"] == 800
    assert [q["name"] for q in a["parameters"]] == [q["name"] for q in b["parameters"]]
    assert _rel(a["points"][-1]["params"], b["points"][-1]["params"]) < RTOL


def test_standard_input_may_hold_parquet(tmp_path):
    _, parquet = write_both(tmp_path, make_frame("gaussian", text=False))
    for extra in ([], ["--stream"]):
        proc = subprocess.run(
            [MLEFIT, "fit", "-", "-f", "gaussian", "--input-format", "parquet", "--format", "json", *extra],
            input=parquet.read_bytes(), capture_output=True, env=subprocess_env(), timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        ref = mlefit.fit(parquet, "gaussian")
        assert _rel([p["estimate"] for p in got["parameters"]], ref.params) < 1e-10


def test_a_model_written_as_text_reads_parquet(tmp_path, invoke):
    pytest.importorskip("sympy")
    res = invoke("simulate", "-f", "poisson", "--coef", "0.5", "--intercept", "0.2", "--n", "300", "--seed", "1",
                 "-o", tmp_path / "sim.parquet")
    assert res.exit_code == 0, res.stderr
    text = "y ~ poisson(rate = exp(a + b*x1))"
    family = mlefit.fit(tmp_path / "sim.parquet", "poisson")
    for options in ({}, {"stream": True, "chunk_rows": 64}):
        model = mlefit.fit(tmp_path / "sim.parquet", model=text, **options)
        assert model.names == ("a", "b") and _rel(model.params, family.params) < 1e-8


def test_dist_reads_parquet_as_its_csv(tmp_path, invoke):
    """mlefit dist on a Parquet file (by its name, or --input-format) fits what it fits on the CSV."""
    path = tmp_path / "claims.pq"
    pd.read_csv(SAMPLES / "claims.csv").to_parquet(path, index=False)
    column = ["-y", "amount", "-f", "gamma,lognormal,weibull", "--format", "json"]
    csv = json.loads(invoke("dist", SAMPLES / "claims.csv", *column).stdout)
    renamed = tmp_path / "claims.data"
    renamed.write_bytes(path.read_bytes())
    for given in ([path], [renamed, "--input-format", "parquet"]):
        res = invoke("dist", *given, *column)
        assert res.exit_code == 0, res.stderr
        got = json.loads(res.stdout)
        assert [d["name"] for d in got["distributions"]] == [d["name"] for d in csv["distributions"]]
        assert got["n_obs"] == csv["n_obs"] == 900
        for a, b in zip(got["distributions"], csv["distributions"]):
            assert a["status"] == b["status"] == "fitted"
            assert _rel([p["estimate"] for p in a["parameters"]], [p["estimate"] for p in b["parameters"]]) < RTOL
