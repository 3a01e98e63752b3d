"""Designs: text columns one-hot encoded, formulas (formulaic), missing values and --dropna,
weights validation, and the serialisable design description that rebuilds a design for new data."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import mlefit
from mlefit.data import design_matrix
from mlefit.errors import DataError, UsageError

from conftest import SAMPLES

RTOL = 1e-6


@pytest.fixture(scope="module")
def people():
    """A binary outcome with a numeric feature, a text factor and a positive income."""
    rng = np.random.default_rng(7)
    n = 900
    frame = pd.DataFrame({
        "x1": np.round(rng.normal(size=n), 4),
        "region": rng.choice(["south", "north", "east"], size=n),
        "income": np.round(np.exp(rng.normal(3.0, 0.5, size=n)), 2),
    })
    effect = frame["region"].map({"east": 0.0, "north": 0.6, "south": -0.8}).to_numpy()
    eta = -1.0 + 0.9 * frame["x1"] + effect + 0.4 * np.log(frame["income"])
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return frame


def by_hand(frame: pd.DataFrame) -> np.ndarray:
    """The design of y ~ x1 + C(region) + np.log(income), built column by column."""
    return np.column_stack([
        np.ones(len(frame)), frame["x1"], frame["region"] == "north", frame["region"] == "south",
        np.log(frame["income"]),
    ]).astype(float)


# -- one-hot encoding of text columns -----------------------------------------------------------


def test_text_column_is_one_hot_encoded_against_the_first_sorted_level(people):
    res = mlefit.fit(people, "bernoulli", target="y", features="x1,region")
    assert res.names == ("intercept", "x1", "region[north]", "region[south]")  # east is the reference
    X = by_hand(people)[:, :4]
    ref = sm.Logit(people["y"].astype(float), X).fit(method="newton", tol=1e-12, disp=0)
    np.testing.assert_allclose(res.params, ref.params, rtol=RTOL)
    np.testing.assert_allclose(res.se, ref.bse, rtol=RTOL)
    assert res.design["columns"][1] == {"column": "region", "type": "categorical",
                                        "levels": ["east", "north", "south"]}


def test_one_hot_in_categorical_names_class_and_level(people, fit_json, tmp_path):
    path = tmp_path / "p.csv"
    people.assign(y=np.where(people["y"] == 1, "b", np.where(people["x1"] > 0.5, "c", "a"))).to_csv(path, index=False)
    doc, _ = fit_json(path, "-f", "categorical", "-x", "region,income")
    names = [(p["name"], p["class"]) for p in doc["parameters"]]
    assert ("region[north]", "b") in names and ("region[south]", "c") in names


@pytest.mark.parametrize("values, fragment", [
    (["1", "2", "x", "4"], "feature column 'v' is not numeric: data row 3 has 'x'"),
    (["same"] * 4, "feature column 'v' has a single value ('same')"),
])
def test_text_columns_that_cannot_be_factors(values, fragment):
    frame = pd.DataFrame({"v": values, "a": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    with pytest.raises(DataError, match=fragment.replace("(", "\\(").replace(")", "\\)")):
        mlefit.fit(frame, "bernoulli")


def test_identifier_like_text_column_is_refused():
    frame = pd.DataFrame({"id": [f"row{i}" for i in range(1500)], "y": np.arange(1500) % 2})
    with pytest.raises(DataError, match="1500 distinct text values, too many to one-hot encode"):
        mlefit.fit(frame, "bernoulli")


# -- formulas -----------------------------------------------------------------------------------


def test_formula_design_matches_the_same_design_by_hand(people):
    res = mlefit.fit(people, "bernoulli", formula="y ~ x1 + C(region) + np.log(income)")
    assert res.target == "y" and res.intercept
    assert res.names == ("intercept", "x1", "C(region)[T.north]", "C(region)[T.south]", "np.log(income)")
    ref = sm.Logit(people["y"].astype(float), by_hand(people)).fit(method="newton", tol=1e-12, disp=0)
    np.testing.assert_allclose(res.params, ref.params, rtol=RTOL)
    np.testing.assert_allclose(res.se, ref.bse, rtol=RTOL)
    np.testing.assert_allclose(res.cov, ref.cov_params(), rtol=RTOL)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-10)
    assert res.pseudo_r2 == pytest.approx(ref.prsquared, rel=RTOL)


def test_formula_and_columns_give_the_same_fit(people):
    a = mlefit.fit(people, "bernoulli", formula="y ~ x1 + region")
    b = mlefit.fit(people, "bernoulli", target="y", features="x1,region")
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10)


def test_formula_gaussian_with_transformed_target_and_no_intercept(people):
    res = mlefit.fit(people, "gaussian", formula="np.log(income) ~ x1 + region - 1")
    assert res.target == "np.log(income)" and not res.intercept
    X = np.column_stack([people["x1"], people["region"] == "east", people["region"] == "north",
                         people["region"] == "south"]).astype(float)
    ols = sm.OLS(np.log(people["income"]), X).fit()
    np.testing.assert_allclose(res.params[:-1], ols.params, rtol=RTOL)
    assert res.null_loglik is None  # no intercept: no nested null model


def test_formula_through_the_cli(people, fit_json, tmp_path):
    path = tmp_path / "people.csv"
    people.to_csv(path, index=False)
    doc, _ = fit_json(path, "-f", "bernoulli", "--formula", "y ~ x1 + C(region) + np.log(income)")
    assert doc["target"] == "y" and doc["design"]["kind"] == "formula"
    assert [p["name"] for p in doc["parameters"]][2] == "C(region)[T.north]"


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"formula": "y ~ x1 +"}, UsageError, "cannot read --formula"),
    ({"formula": "~ x1"}, UsageError, "has no left side"),
    ({"formula": "y ~ x1 + nope"}, DataError, "column 'nope' in --formula not found"),
    ({"formula": "y ~ x1", "features": "x1"}, UsageError, "--features cannot be combined with --formula"),
    ({"formula": "y ~ x1", "intercept": False}, UsageError, "Write '- 1' in the formula"),
    ({"formula": "y ~ x1", "target": "x1"}, UsageError, "disagrees with the formula's left side"),
    ({"formula": "y ~ np.log(x1)"}, DataError, "design column 'np.log(x1)' of --formula has"),
])
def test_formula_errors(people, kwargs, error, fragment):
    with pytest.raises(error) as info:
        mlefit.fit(people, "bernoulli", **kwargs)
    assert fragment in str(info.value)


def test_formula_without_formulaic_says_how_to_install(people, monkeypatch):
    monkeypatch.setitem(sys.modules, "formulaic", None)  # import formulaic now raises ImportError
    with pytest.raises(UsageError, match=r"needs the formulaic package.*mlefit\[formula\]"):
        mlefit.fit(people, "bernoulli", formula="y ~ x1")


# -- the design description: rebuild for new data ---------------------------------------------------


@pytest.mark.parametrize("how", ["columns", "formula"])
def test_design_rebuilds_from_json_for_new_data(people, how):
    kwargs = {"formula": "y ~ x1 + C(region) + np.log(income)"} if how == "formula" else {
        "target": "y", "features": "x1,region,log_income"}
    frame = people.assign(log_income=np.log(people["income"]))
    res = mlefit.fit(frame, "bernoulli", **kwargs)
    design = json.loads(json.dumps(res.design))  # it survives JSON
    new = frame.sample(40, random_state=1).reset_index(drop=True)
    X = design_matrix(design, new.drop(columns="y"))
    np.testing.assert_array_equal(X, by_hand(new))
    assert design["features"] == list(res.names)


@pytest.mark.parametrize("how", ["columns", "formula"])
def test_design_refuses_an_unseen_level(people, how):
    kwargs = {"formula": "y ~ x1 + region"} if how == "formula" else {"target": "y", "features": "x1,region"}
    res = mlefit.fit(people, "bernoulli", **kwargs)
    new = people.head(5).assign(region=["east", "west", "north", "east", "west"])
    with pytest.raises(DataError, match="'west' not seen when the design was built"):
        design_matrix(res.design, new)


def test_design_with_a_stateful_transform_keeps_the_fitted_state(people):
    res = mlefit.fit(people, "bernoulli", formula="y ~ center(x1) + region")
    new = people.head(3)
    X = design_matrix(json.loads(json.dumps(res.design)), new)
    # centred by the mean of the fitted data, not of the new rows
    np.testing.assert_allclose(X[:, 1], new["x1"] - people["x1"].mean(), rtol=1e-12)


def test_design_rebuild_needs_the_columns(people):
    res = mlefit.fit(people, "bernoulli", target="y", features="x1,region")
    with pytest.raises(DataError, match="column 'region' of the model's design not found"):
        design_matrix(res.design, people[["x1"]])


# -- missing values --------------------------------------------------------------------------------


@pytest.fixture
def holes(people):
    frame = people.head(200).copy()
    frame.loc[[3, 50], "x1"] = np.nan
    frame.loc[[50, 77, 120], "region"] = np.nan
    frame.loc[[9], "income"] = np.nan  # not used below unless named
    return frame


def test_missing_values_are_an_error_naming_columns_and_rows(holes, invoke, tmp_path):
    path = tmp_path / "holes.csv"
    holes.to_csv(path, index=False)
    result = invoke("fit", path, "-f", "bernoulli", "-x", "x1,region")
    assert result.exit_code == 2
    assert ("column 'x1' has 2 missing value(s), the first in data row 4 (also: region (3)); "
            "4 rows in all have a missing value.") in result.stderr
    assert "--dropna" in result.stderr


def test_dropna_drops_rows_and_says_how_many(holes, fit_json, invoke, tmp_path):
    path = tmp_path / "holes.csv"
    holes.to_csv(path, index=False)
    doc, _ = fit_json(path, "-f", "bernoulli", "-x", "x1,region", "--dropna")
    assert doc["n_dropped"] == 4 and doc["n_obs"] == doc["n_rows"] == 196
    clean = mlefit.fit(holes.dropna(subset=["x1", "region"]), "bernoulli", target="y", features="x1,region")
    assert [p["estimate"] for p in doc["parameters"]] == pytest.approx(list(clean.params), rel=1e-12)
    out = invoke("fit", path, "-f", "bernoulli", "-x", "x1,region", "--dropna").stdout
    assert "rows used                             196 (4 dropped for missing values)" in out


def test_dropna_with_a_formula_uses_only_its_columns(holes):
    res = mlefit.fit(holes, "bernoulli", formula="y ~ x1", dropna=True)
    assert res.n_dropped == 2  # region and income are not in the formula


# -- weights validation ------------------------------------------------------------------------


@pytest.mark.parametrize("weights, fragment", [
    ([1, 2, -1, 1, 1, 1], "weights column 'w' has a negative value (-1) in data row 3"),
    (["1", "2", "a", "1", "1", "1"], "weights column 'w' is not numeric: data row 3 has 'a'"),
    ([1, 2, None, 1, 1, 1], "column 'w' has 1 missing value(s), the first in data row 3"),
    ([0, 0, 0, 0, 0, 0], "weights column 'w' is zero in every row"),
])
def test_bad_weights_are_clear_errors(weights, fragment, invoke, tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "y": [0, 1, 0, 1, 1, 0], "w": weights})
    path = tmp_path / "w.csv"
    frame.to_csv(path, index=False)
    result = invoke("fit", path, "-f", "bernoulli", "--weights", "w")
    assert result.exit_code == 2 and result.stdout == ""
    assert fragment in result.stderr


def test_weights_column_must_exist(invoke):
    result = invoke("fit", SAMPLES / "admissions.csv", "-f", "bernoulli", "--weights", "nope")
    assert result.exit_code == 2 and "weights column 'nope' not found" in result.stderr
