"""`mlefit lrtest` and the fingerprint of the rows a fit used.

The statistic is checked against statsmodels' ``OLSResults.compare_lr_test`` (gaussian) and a hand
computation from statsmodels' Logit log-likelihoods (bernoulli); every refusal is exercised.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import mlefit
from conftest import SAMPLES
from mlefit.lrtest import lr_test

HOUSES = SAMPLES / "house_prices.csv"
ADMISSIONS = SAMPLES / "admissions.csv"


def save(invoke, path, data, *args, expect=0):
    out = invoke("fit", data, *args, "--save", path, "--quiet")
    assert out.exit_code == expect, out.stderr
    return path


def test_gaussian_matches_statsmodels_compare_lr_test(invoke, tmp_path):
    small = save(invoke, tmp_path / "s.json", HOUSES, "-f", "gaussian", "-y", "price_k", "-x", "area_m2")
    big = save(invoke, tmp_path / "b.json", HOUSES, "-f", "gaussian", "-y", "price_k", "-x", "area_m2,bedrooms,age_years")
    out = invoke("lrtest", small, big, "--format", "json")
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    frame = pd.read_csv(HOUSES)
    ols_small = sm.OLS(frame["price_k"], sm.add_constant(frame[["area_m2"]])).fit()
    ols_big = sm.OLS(frame["price_k"], sm.add_constant(frame[["area_m2", "bedrooms", "age_years"]])).fit()
    stat, p, df = ols_big.compare_lr_test(ols_small)
    assert doc["df"] == df == 2
    assert doc["lr_stat"] == pytest.approx(stat, rel=1e-9)
    assert doc["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-300)
    assert doc["small"]["loglik"] == pytest.approx(ols_small.llf, rel=1e-12)
    assert doc["big"]["loglik"] == pytest.approx(ols_big.llf, rel=1e-12)
    # AIC and BIC count sigma too (statsmodels' OLS counts only the coefficients)
    assert doc["big"]["aic"] == pytest.approx(2 * 5 - 2 * ols_big.llf, rel=1e-12)
    assert doc["big"]["bic"] == pytest.approx(5 * np.log(len(frame)) - 2 * ols_big.llf, rel=1e-12)
    assert doc["added"] == ["bedrooms", "age_years"]


def test_bernoulli_matches_a_hand_computation(invoke, tmp_path):
    small = save(invoke, tmp_path / "s.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "-x", "gpa")
    big = save(invoke, tmp_path / "b.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted")
    frame = pd.read_csv(ADMISSIONS)
    y = (frame["admitted"] == "yes").astype(float)
    ll_small = sm.Logit(y, sm.add_constant(frame[["gpa"]])).fit(disp=0).llf
    ll_big = sm.Logit(y, sm.add_constant(frame[["gpa", "test_score", "essay_rating"]])).fit(disp=0).llf
    lr = 2 * (ll_big - ll_small)
    result = lr_test(small, big)
    assert result.df == 2
    assert result.lr_stat == pytest.approx(lr, rel=1e-8)
    assert result.p_value == pytest.approx(stats.chi2.sf(lr, 2), rel=1e-6)
    text = invoke("lrtest", small, big)
    assert text.exit_code == 0
    assert "LR statistic (chi2, 2 df)" in text.stdout and "test_score, essay_rating" in text.stdout


def test_categorical_nesting_by_name_and_class(invoke, tmp_path):
    commute = SAMPLES / "commute.csv"
    small = save(invoke, tmp_path / "s.json", commute, "-f", "categorical", "-x", "distance_km")
    big = save(invoke, tmp_path / "b.json", commute, "-f", "categorical", "-x", "distance_km,age")
    result = lr_test(small, big)
    assert result.df == 3 and result.added == ("bus:age", "car:age", "walk:age")
    assert result.lr_stat > 0


# -- the fingerprint ---------------------------------------------------------------------------------


def test_fingerprint_same_rows_any_features_any_engine(tmp_path):
    a = mlefit.fit(ADMISSIONS, "bernoulli", target="admitted", features="gpa", fingerprint=True)
    b = mlefit.fit(ADMISSIONS, "bernoulli", target="admitted", fingerprint=True)
    c = mlefit.fit(ADMISSIONS, "bernoulli", target="admitted", fingerprint=True, stream=True, chunk_rows=77)
    assert a.data_fingerprint == b.data_fingerprint == c.data_fingerprint
    assert len(a.data_fingerprint) == 64
    frame = pd.read_csv(ADMISSIONS)
    fewer = mlefit.fit(frame.iloc[1:], "bernoulli", target="admitted", fingerprint=True)
    assert fewer.data_fingerprint != a.data_fingerprint
    other = int(np.flatnonzero(frame["admitted"] != frame["admitted"][0])[0])
    swapped = frame.copy()  # the same labels and row count, two rows' labels exchanged
    swapped.loc[[0, other], "admitted"] = swapped.loc[[other, 0], "admitted"].to_numpy()
    moved = mlefit.fit(swapped, "bernoulli", target="admitted", fingerprint=True)
    assert moved.data_fingerprint != a.data_fingerprint
    frame["w"] = 1.0
    weighted = mlefit.fit(frame, "bernoulli", target="admitted", weights="w", fingerprint=True)
    assert weighted.data_fingerprint != a.data_fingerprint
    assert mlefit.fit(ADMISSIONS, "bernoulli", target="admitted").data_fingerprint is None


# -- refusals ------------------------------------------------------------------------------------------


def _refused(invoke, small, big, words):
    out = invoke("lrtest", small, big)
    assert out.exit_code == 2
    assert out.stdout == ""
    assert out.stderr.startswith("Error: ") and out.stderr.count("\n") == 1
    assert words in out.stderr, out.stderr


def test_refuses_different_rows(invoke, tmp_path):
    small = save(invoke, tmp_path / "s.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "-x", "gpa")
    frame = pd.read_csv(ADMISSIONS).iloc[:-5]
    fewer = tmp_path / "fewer.csv"
    frame.to_csv(fewer, index=False)
    big = save(invoke, tmp_path / "b.json", fewer, "-f", "bernoulli", "-y", "admitted")
    _refused(invoke, small, big, "different rows (the fingerprints of their target, weights and row count differ: 600 rows against 595)")


def test_refuses_rows_dropped_for_missing_values_in_the_big_model(invoke, tmp_path):
    frame = pd.read_csv(ADMISSIONS)
    frame.loc[[3, 10], "essay_rating"] = np.nan
    data = tmp_path / "gaps.csv"
    frame.to_csv(data, index=False)
    small = save(invoke, tmp_path / "s.json", data, "-f", "bernoulli", "-y", "admitted", "-x", "gpa", "--dropna")
    big = save(invoke, tmp_path / "b.json", data, "-f", "bernoulli", "-y", "admitted", "--dropna")
    _refused(invoke, small, big, "600 rows against 598")


def test_refuses_different_families_targets_and_labels(invoke, tmp_path):
    houses = save(invoke, tmp_path / "g.json", HOUSES, "-f", "gaussian", "-y", "price_k", "-x", "area_m2")
    frame = pd.read_csv(HOUSES)
    frame["dear"] = (frame["price_k"] > frame["price_k"].median()).map({True: "yes", False: "no"})
    data = tmp_path / "h.csv"
    frame.to_csv(data, index=False)
    logit = save(invoke, tmp_path / "b.json", data, "-f", "bernoulli", "-y", "dear", "-x", "area_m2,bedrooms")
    _refused(invoke, houses, logit, "is a gaussian model and")
    other = save(invoke, tmp_path / "o.json", HOUSES, "-f", "gaussian", "-y", "area_m2", "-x", "bedrooms,age_years")
    _refused(invoke, houses, other, "models the target 'price_k'")
    frame["dear"] = frame["dear"].map({"yes": "y", "no": "n"})
    frame.to_csv(data, index=False)
    relabelled = save(invoke, tmp_path / "r.json", data, "-f", "bernoulli", "-y", "dear", "-x", "area_m2")
    _refused(invoke, relabelled, logit, "read the target's labels differently (n, y against no, yes)")


def test_refuses_models_that_are_not_nested_or_not_smaller(invoke, tmp_path):
    a = save(invoke, tmp_path / "a.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "-x", "gpa,test_score")
    b = save(invoke, tmp_path / "b.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "-x", "gpa,essay_rating,test_score")
    _refused(invoke, b, a, "give the smaller model first")
    _refused(invoke, a, a, "neither is nested in the other with fewer")
    d = save(invoke, tmp_path / "d.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "-x", "gpa", "--no-intercept")
    f = save(invoke, tmp_path / "f.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted",
             "-x", "essay_rating,test_score", "--no-intercept")
    _refused(invoke, d, f, "parameter 'gpa' is not a parameter of")
    assert lr_test(d, b).df == 3  # gpa without an intercept is nested in the full model


def test_refuses_unconverged_penalised_and_unfingerprinted_fits(invoke, tmp_path):
    small = save(invoke, tmp_path / "s.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "-x", "gpa")
    big = save(invoke, tmp_path / "b.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted")
    stopped = save(invoke, tmp_path / "n.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "--max-iter", "1", expect=3)
    _refused(invoke, small, stopped, "did not converge")
    ridge = save(invoke, tmp_path / "l2.json", ADMISSIONS, "-f", "bernoulli", "-y", "admitted", "--l2", "1")
    _refused(invoke, small, ridge, "penalised (--l2)")
    old = json.loads(big.read_text())
    old["fit"] = {k: old["fit"][k] for k in ("n_obs", "nll", "converged", "method")}
    legacy = tmp_path / "old.json"
    legacy.write_text(json.dumps(old))
    _refused(invoke, small, legacy, "carries no fingerprint")
    _refused(invoke, small, tmp_path / "missing.json", "not found")


def test_refuses_different_offsets(invoke, tmp_path):
    visits = SAMPLES / "clinic_visits.csv"
    small = save(invoke, tmp_path / "s.json", visits, "-f", "poisson", "-y", "visits", "-x", "age")
    big = save(invoke, tmp_path / "b.json", visits, "-f", "poisson", "-y", "visits", "-x", "age,chronic",
               "--exposure", "months_enrolled")
    _refused(invoke, small, big, "has the exposure none and")
    with_exposure = save(invoke, tmp_path / "e.json", visits, "-f", "poisson", "-y", "visits", "-x", "age",
                         "--exposure", "months_enrolled")
    assert lr_test(with_exposure, big).df == 1
