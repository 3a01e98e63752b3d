"""--formula on streamed and Dask fits (mlefit.readers.formula): the levels and transform states learned
from a first pass over chunks that split every factor's levels give the in-memory formula fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlefit
from mlefit.errors import DataError, UsageError

pytest.importorskip("formulaic")

#: Streamed and Dask formula fits equal the in-memory formula fit to this (relative).
RTOL = 1e-10
CHUNK = 97


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def make_frame(family: str, n: int = 1200, seed: int = 21) -> pd.DataFrame:
    """Rows sorted so that chunks of CHUNK rows split the levels of every factor: ``region`` (text)
    and ``k`` (integers) run through their levels in blocks, so no chunk holds them all, and the
    classes of a categorical target appear in runs."""
    rng = np.random.default_rng(seed)
    region = np.array(["east", "north", "south", "west"])[np.repeat(np.arange(4), n // 4)]
    k = np.tile(np.repeat(np.arange(3), 100), n // 300 + 1)[:n]
    x = rng.normal(size=n)
    z = rng.uniform(0.5, 4.0, size=n)
    expo = rng.uniform(0.5, 2.0, size=n)
    eta = 0.2 + 0.6 * x - 0.4 * np.log(z) + 0.5 * (region == "south") - 0.3 * (k == 2) + 0.2 * x * (k == 1)
    if family == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    elif family == "categorical":
        y = np.where(eta + rng.logistic(size=n) > 1.0, "high", np.where(eta + rng.logistic(size=n) > 0, "mid", "low"))
    elif family == "poisson":
        y = rng.poisson(expo * np.exp(0.5 * eta))
    else:
        y = np.exp(1.0 + 0.3 * eta + 0.2 * rng.normal(size=n))
    return pd.DataFrame({"x": x, "z": z, "region": region, "k": k, "expo": expo, "w": rng.integers(1, 4, n), "y": y})


def chunks_split_levels(frame: pd.DataFrame, columns, size: int = CHUNK) -> bool:
    """Every chunk of ``size`` rows misses a level of each of ``columns`` (and of the classes)."""
    return all(
        frame[c].iloc[start:start + size].nunique() < frame[c].nunique()
        for c in columns for start in range(0, len(frame), size)
    )


FORMULAS = {
    "bernoulli": "y ~ center(x) + C(region) + C(k):z + np.log(z)",
    "categorical": "y ~ C(region) + standardize(z) + x",
    "poisson": "y ~ C(k) + region + bs(z, df=3) + x",
    "gaussian": "np.log(y) ~ C(region, Treatment('south')) + scale(x) + I(z * x) + C(k)",
}
OPTIONS = {"bernoulli": {"weights": "w"}, "categorical": {}, "poisson": {"exposure": "expo"}, "gaussian": {"weights": "w"}}


def _files(tmp_path: Path, family: str) -> tuple[pd.DataFrame, Path, Path]:
    frame = make_frame(family)
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    frame.to_csv(csv, index=False)
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=CHUNK)
    return frame, csv, parquet


def assert_same(remote, local, tol: float = RTOL) -> None:
    assert remote.names == local.names and remote.levels == local.levels
    assert remote.design == local.design  # the learned state is the in-memory state, exactly
    assert _rel(remote.params, local.params) < tol
    assert _rel(remote.se, local.se) < tol
    assert _rel(remote.nll, local.nll) < tol
    assert remote.n_obs == local.n_obs and remote.n_dropped == local.n_dropped


@pytest.mark.parametrize("family", list(FORMULAS))
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_formula_fit_equals_the_in_memory_fit(tmp_path, family, fmt):
    frame, csv, parquet = _files(tmp_path, family)
    assert chunks_split_levels(frame, ["region", "k"])
    data = csv if fmt == "csv" else parquet
    local = mlefit.fit(data, family, formula=FORMULAS[family], **OPTIONS[family])
    streamed = mlefit.fit(data, family, formula=FORMULAS[family], stream=True, chunk_rows=CHUNK, **OPTIONS[family])
    assert_same(streamed, local)
    assert streamed.converged and "rounded" not in streamed.message


@pytest.mark.parametrize("family", list(FORMULAS))
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_dask_formula_fit_equals_the_in_memory_fit(tmp_path, client, family, fmt):
    frame, csv, parquet = _files(tmp_path, family)
    data = csv if fmt == "csv" else parquet
    local = mlefit.fit(data, family, formula=FORMULAS[family], **OPTIONS[family])
    remote = mlefit.fit(
        data, family, formula=FORMULAS[family], engine="dask", client=client, chunk_rows=CHUNK, **OPTIONS[family]
    )
    assert_same(remote, local)


def test_dropna_and_missing_values_as_in_memory(tmp_path, invoke):
    frame = make_frame("bernoulli")
    frame.loc[[5, 400, 1100], "z"] = np.nan
    frame.loc[700, "region"] = None
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    formula = FORMULAS["bernoulli"]
    local = mlefit.fit(csv, "bernoulli", formula=formula, dropna=True)
    streamed = mlefit.fit(csv, "bernoulli", formula=formula, dropna=True, stream=True, chunk_rows=CHUNK)
    assert local.n_dropped == 4
    assert_same(streamed, local)
    messages = set()
    for extra in ([], ["--stream", "--chunk-rows", str(CHUNK)]):
        res = invoke("fit", csv, "-f", "bernoulli", "--formula", formula, *extra)
        assert res.exit_code == 2
        messages.add(res.stderr)
    assert messages == {
        "Error: column 'region' has 1 missing value(s), the first in data row 701 (also: z (3)); 4 rows in all have "
        "a missing value. Remove or fill those rows, or use --dropna to drop them.\n"
    }


def test_a_stateful_transform_of_a_column_with_missing_values_is_checked(tmp_path):
    """center(x)'s column is a variable of the formula (formulaic leaves it out of its required
    variables): its missing values are reported, or dropped, in memory and streamed alike."""
    frame = make_frame("gaussian", n=300)
    frame.loc[10, "x"] = np.nan
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    for options in ({}, {"stream": True, "chunk_rows": CHUNK}):
        with pytest.raises(DataError, match="column 'x' has 1 missing value"):
            mlefit.fit(csv, "gaussian", formula="y ~ center(x) + z", **options)
    local = mlefit.fit(csv, "gaussian", formula="y ~ center(x) + z", dropna=True)
    assert local.n_dropped == 1
    assert_same(mlefit.fit(csv, "gaussian", formula="y ~ center(x) + z", dropna=True, stream=True, chunk_rows=CHUNK), local)


def test_factor_of_an_expression_learns_its_levels_from_every_row(tmp_path):
    frame = make_frame("gaussian")
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    formula = "y ~ C(np.clip(k, 0, 1)) + x"
    local = mlefit.fit(csv, "gaussian", formula=formula)
    assert local.names == ("intercept", "C(np.clip(k, 0, 1))[T.1]", "x", "sigma")
    assert_same(mlefit.fit(csv, "gaussian", formula=formula, stream=True, chunk_rows=CHUNK), local)


def test_exact_powers_stay_in_memory_and_the_message_says_so(tmp_path):
    """A gaussian polynomial: in memory its powers are formed exactly (X_lo); streamed they are
    float64, and the result's message says so; with whole-number values every power is exact in
    float64 and nothing is said."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 3, 400)
    frame = pd.DataFrame({"x": x, "k": rng.integers(0, 4, 400), "y": 1 + x - 0.5 * x**2 + 0.1 * x**3 + rng.normal(size=400)})
    csv = tmp_path / "p.csv"
    frame.to_csv(csv, index=False)
    formula = "y ~ poly(x, 3, raw=True)"
    local = mlefit.fit(csv, "gaussian", formula=formula)
    streamed = mlefit.fit(csv, "gaussian", formula=formula, stream=True, chunk_rows=CHUNK)
    assert "rounded to float64" not in local.message
    assert streamed.message.endswith(
        "the power column(s) 'poly(x, 3, raw=True)[1]', 'poly(x, 3, raw=True)[2]' of the formula are rounded to "
        "float64 here; an in-memory fit forms them exactly (double-double), which an ill-conditioned polynomial "
        "needs for its last digits"
    )
    assert _rel(streamed.params, local.params) < 1e-8  # a well-conditioned polynomial: no digits lost
    whole = mlefit.fit(csv, "gaussian", formula="y ~ I(k**2) + k", stream=True, chunk_rows=CHUNK)
    assert "rounded to float64" not in whole.message
    bernoulli = frame.assign(y=(frame.y > frame.y.median()).astype(int))
    bernoulli.to_csv(csv, index=False)
    assert "rounded" not in mlefit.fit(csv, "bernoulli", formula=formula, stream=True, chunk_rows=CHUNK).message


def test_refusals_are_one_sentence(tmp_path, invoke):
    frame = make_frame("categorical", n=300)
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    res = invoke("fit", csv, "-f", "categorical", "--formula", "C(y) ~ x", "--stream")
    assert res.exit_code == 2
    assert res.stderr == (
        "Error: the left side of --formula, 'C(y)', is not a column: with --stream or --engine dask the labels of "
        "categorical must be a column. Write the column itself on the left side, or fit in memory.\n"
    )
    res = invoke("fit", csv, "-f", "categorical", "--formula", "y ~ nope", "--stream")
    local = invoke("fit", csv, "-f", "categorical", "--formula", "y ~ nope")
    assert res.exit_code == local.exit_code == 2 and res.stderr == local.stderr
    with pytest.raises(UsageError, match="--features cannot be combined with --formula"):
        mlefit.fit(csv, "categorical", formula="y ~ x", features="x", stream=True)


def test_a_factor_with_too_many_levels_to_stream(tmp_path):
    n = 2500
    frame = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "x": np.random.default_rng(1).normal(size=n)})
    frame["y"] = frame.x + np.random.default_rng(2).normal(size=n)
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    with pytest.raises(DataError) as info:
        mlefit.fit(csv, "gaussian", formula="y ~ x + C(id)", stream=True, chunk_rows=500)
    assert str(info.value) == (
        "the factor 'C(id)' of --formula has more than 1000 levels (column 'id'), too many to encode when streaming "
        "or on Dask. Fit in memory, or leave it out of the formula."
    )
    # a numeric column with many values is fine where it is not a factor
    fitted = mlefit.fit(csv, "gaussian", formula="y ~ center(x)", stream=True, chunk_rows=500)
    assert _rel(fitted.params, mlefit.fit(csv, "gaussian", formula="y ~ center(x)").params) < RTOL


def test_a_streamed_formula_model_predicts_like_the_in_memory_one(tmp_path, invoke):
    frame, csv, parquet = _files(tmp_path, "poisson")
    formula = FORMULAS["poisson"]
    for name, extra in (("memory", []), ("stream", ["--stream", "--chunk-rows", str(CHUNK)])):
        res = invoke("fit", parquet, "-f", "poisson", "--formula", formula, "--exposure", "expo",
                     "--save", tmp_path / f"{name}.json", "--quiet", *extra)
        assert res.exit_code == 0, res.stderr
    a = json.loads((tmp_path / "memory.json").read_text())
    b = json.loads((tmp_path / "stream.json").read_text())
    assert a["design"] == b["design"]
    scored = [invoke("predict", tmp_path / f"{name}.json", csv, "--digits", "10").stdout for name in ("memory", "stream")]
    assert scored[0] == scored[1] and scored[0].count("\n") == len(frame) + 1


@pytest.mark.parametrize("engine", ["stream", "dask"])
def test_ordered_and_censored_families_take_formulas_too(tmp_path, engine, request):
    """ordinal (no intercept column: the formula's intercept term only sets the coding) and weibull
    with right-censoring (--event, a boolean column in Parquet)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    n = 900
    region = np.repeat(["a", "b", "c"], n // 3)
    x = rng.normal(size=n)
    eta = x + 0.5 * (region == "b")
    label = np.where(eta + rng.logistic(size=n) > 1, "high", np.where(eta + rng.logistic(size=n) > -0.5, "mid", "low"))
    frame = pd.DataFrame({
        "x": x, "region": region, "y": label, "t": rng.weibull(1.5, n) * np.exp(0.3 * eta), "ev": rng.random(n) < 0.7,
    })
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=CHUNK)
    options = {"stream": True} if engine == "stream" else {"engine": "dask", "client": request.getfixturevalue("client")}
    for family, formula, extra in (
        ("ordinal", "y ~ C(region) + center(x)", {"levels": "low,mid,high"}),
        ("weibull", "t ~ C(region) + x", {"event": "ev"}),
    ):
        local = mlefit.fit(path, family, formula=formula, **extra)
        remote = mlefit.fit(path, family, formula=formula, chunk_rows=CHUNK, **extra, **options)
        assert_same(remote, local)
    assert "intercept" not in local.names or family == "weibull"
