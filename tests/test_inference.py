"""Inference beyond the plain MLE: frequency weights, robust (HC0) errors, the null model and the
likelihood-ratio test, and L2 (MAP) fits, each against statsmodels or scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

import mlefit
from mlefit import numdiff
from mlefit.families import FAMILY_NAMES, get_family
from mlefit.objective import PenalizedObjective
from conftest import data_objective

from conftest import ROSSI, SAMPLES

RTOL = 1e-6


def assert_close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=0)


@pytest.fixture(scope="module")
def admissions():
    frame = pd.read_csv(SAMPLES / "admissions.csv")
    features = ["gpa", "test_score", "essay_rating"]
    X = sm.add_constant(frame[features].to_numpy(float))
    y = (frame["admitted"] == "yes").to_numpy(float)
    return frame, features, X, y


@pytest.fixture(scope="module")
def commute():
    frame = pd.read_csv(SAMPLES / "commute.csv")
    features = ["distance_km", "income_k", "age"]
    levels = sorted(frame["mode"].unique())
    codes = frame["mode"].map({v: i for i, v in enumerate(levels)}).to_numpy()
    X = sm.add_constant(frame[features].to_numpy(float))
    return frame, features, X, codes


@pytest.fixture(scope="module")
def visits():
    frame = pd.read_csv(SAMPLES / "clinic_visits.csv")
    return frame, ["age", "chronic", "months_enrolled"]


@pytest.fixture(scope="module")
def claims():
    frame = pd.read_csv(SAMPLES / "claims.csv")
    return frame, ["driver_age", "vehicle_value_k"]


@pytest.fixture(scope="module")
def rossi():
    frame = pd.read_csv(ROSSI)
    return frame, ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


@pytest.fixture(scope="module")
def satisfaction():
    frame = pd.read_csv(SAMPLES / "satisfaction.csv")
    return frame, ["wait_min", "support_calls", "member"]


@pytest.fixture(scope="module")
def houses():
    frame = pd.read_csv(SAMPLES / "house_prices.csv")
    features = ["area_m2", "bedrooms", "age_years"]
    X = sm.add_constant(frame[features].to_numpy(float))
    return frame, features, X, frame["price_k"].to_numpy(float)


def with_weights(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Integer frequency weights 0..3 (zeros included: those rows must not count)."""
    return frame.assign(w=np.random.default_rng(seed).integers(0, 4, size=len(frame)))


def repeated(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[frame.index.repeat(frame["w"])].drop(columns="w").reset_index(drop=True)


# -- frequency weights ---------------------------------------------------------------------------


def test_bernoulli_weights_match_statsmodels_glm_freq_weights(admissions):
    frame, features, X, y = admissions
    frame = with_weights(frame, 1)
    res = mlefit.fit(frame, "bernoulli", target="admitted", features=features, weights="w")
    ref = sm.GLM(y, X, family=sm.families.Binomial(), freq_weights=frame["w"].to_numpy(float)).fit(tol=1e-13)
    assert res.converged
    assert_close(res.params, ref.params)
    assert_close(res.se, ref.bse)
    assert_close(res.cov, ref.cov_params())
    assert res.loglik == pytest.approx(ref.llf, rel=RTOL)
    assert res.aic == pytest.approx(ref.aic, rel=RTOL)
    assert res.bic == pytest.approx(ref.bic_llf, rel=RTOL)
    assert res.null_loglik == pytest.approx(ref.llnull, rel=RTOL)
    assert res.n_obs == frame["w"].sum()
    assert res.n_rows == len(frame)
    assert res.df_resid == pytest.approx(ref.df_resid, rel=1e-12)


def test_gaussian_weights_match_statsmodels_glm_freq_weights(houses):
    frame, features, X, y = houses
    frame = with_weights(frame, 2)
    res = mlefit.fit(frame, "gaussian", target="price_k", features=features, weights="w")
    ref = sm.GLM(y, X, freq_weights=frame["w"].to_numpy(float)).fit()
    assert_close(res.params[:-1], ref.params)
    assert res.loglik == pytest.approx(ref.llf, rel=RTOL)
    # GLM's scale is the OLS one: RSS / df_resid with df from the sum of the weights
    assert res.residual_std_error**2 == pytest.approx(ref.scale, rel=RTOL)
    assert res.df_resid == pytest.approx(ref.df_resid, rel=1e-12)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_weights_equal_repeated_rows(family, admissions, commute, houses, visits, claims, rossi, satisfaction):
    options = {"levels": "low,medium,high"} if family == "ordinal" else {}
    frame, features, target = {
        "bernoulli": (admissions[0], admissions[1], "admitted"),
        "categorical": (commute[0], commute[1], "mode"),
        "gaussian": (houses[0], houses[1], "price_k"),
        "poisson": (visits[0], visits[1], "visits"),
        "negbin": (visits[0], visits[1], "visits"),
        "gamma": (claims[0], claims[1], "amount"),
        "weibull": (rossi[0], rossi[1], "week"),
        "exponential": (rossi[0], rossi[1], "week"),
        "lognormal": (rossi[0], rossi[1], "week"),
        "loglogistic": (rossi[0], rossi[1], "week"),
        "ordinal": (satisfaction[0], satisfaction[1], "satisfaction"),
    }[family]
    if get_family(family).censored:
        options = {"event": "arrest"}
    frame = with_weights(frame, 3)
    for cov in ("model", "robust"):
        a = mlefit.fit(frame, family, target=target, features=features, weights="w", cov=cov, **options)
        b = mlefit.fit(repeated(frame), family, target=target, features=features, cov=cov, **options)
        assert_close(a.params, b.params, rtol=1e-9)
        assert_close(a.se, b.se, rtol=1e-9)
        assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
        assert a.aic == pytest.approx(b.aic, rel=1e-12) and a.bic == pytest.approx(b.bic, rel=1e-12)
        assert a.null_loglik == pytest.approx(b.null_loglik, rel=1e-12)
        assert a.lr_stat == pytest.approx(b.lr_stat, rel=1e-9)
        assert a.n_obs == b.n_obs == int(frame["w"].sum())
        assert a.df_resid == b.df_resid


def test_categorical_weights_match_mnlogit_on_repeated_rows(commute):
    frame, features, _, _ = commute
    frame = with_weights(frame, 4)
    res = mlefit.fit(frame, "categorical", target="mode", features=features, weights="w")
    rep = repeated(frame)
    levels = sorted(rep["mode"].unique())
    codes = rep["mode"].map({v: i for i, v in enumerate(levels)})
    ref = sm.MNLogit(codes, sm.add_constant(rep[features].to_numpy(float))).fit(
        method="newton", tol=1e-12, maxiter=100, disp=0)
    assert_close(res.params, np.asarray(ref.params).T.ravel())
    assert_close(res.se, np.asarray(ref.bse).T.ravel())
    assert res.pseudo_r2 == pytest.approx(ref.prsquared, rel=RTOL)


def test_weights_through_the_cli(fit_json, invoke, admissions, tmp_path):
    frame = with_weights(admissions[0], 5)
    path = tmp_path / "weighted.csv"
    frame.to_csv(path, index=False)
    doc, result = fit_json(path, "-f", "bernoulli", "-y", "admitted", "--weights", "w")
    assert doc["weights"] == "w" and doc["n_obs"] == int(frame["w"].sum()) and doc["n_rows"] == len(frame)
    assert "w" not in doc["features"]  # the weights column is never a feature
    plain = mlefit.fit(repeated(frame), "bernoulli", target="admitted")
    assert_close([p["estimate"] for p in doc["parameters"]], plain.params, rtol=1e-9)
    text = invoke("fit", path, "-f", "bernoulli", "-y", "admitted", "--weights", "w").stdout
    assert f"weights: 'w' (frequency weights: {int(frame['w'].sum())} observations in {len(frame)} rows)" in text
    assert "observations (sum of weights)" in text


# -- robust (sandwich, HC0) standard errors ------------------------------------------------------


def test_robust_bernoulli_matches_statsmodels_hc0(admissions):
    frame, features, X, y = admissions
    res = mlefit.fit(frame, "bernoulli", target="admitted", features=features, cov="robust")
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-12, disp=0, cov_type="HC0")
    plain = sm.Logit(y, X).fit(method="newton", tol=1e-12, disp=0)
    assert res.cov_type == "HC0"
    assert_close(res.params, ref.params)
    assert_close(res.se, ref.bse)
    assert_close(res.cov, ref.cov_params())
    assert_close(res.z, ref.tvalues)
    assert_close(res.p_values, ref.pvalues, rtol=1e-5)
    assert_close(res.se_model, plain.bse)
    ci = np.asarray(ref.conf_int())
    assert_close(res.ci_low, ci[:, 0])


def test_robust_categorical_matches_statsmodels_hc0(commute):
    frame, features, X, codes = commute
    res = mlefit.fit(frame, "categorical", target="mode", features=features, cov="robust")
    ref = sm.MNLogit(codes, X).fit(method="newton", tol=1e-12, maxiter=100, disp=0, cov_type="HC0")
    assert_close(res.se, np.asarray(ref.bse).T.ravel())
    assert_close(res.cov, ref.cov_params())


def test_robust_gaussian_coefficients_match_ols_hc0(houses):
    frame, features, X, y = houses
    res = mlefit.fit(frame, "gaussian", target="price_k", features=features, cov="robust")
    ref = sm.OLS(y, X).fit(cov_type="HC0")
    assert_close(res.se[:-1], ref.bse)
    assert_close(res.cov[:-1, :-1], ref.cov_params())
    assert np.isfinite(res.se[-1]) and res.se[-1] > 0


def test_robust_cli_shows_both_standard_errors(invoke, fit_json):
    args = (str(SAMPLES / "admissions.csv"), "-f", "bernoulli")
    doc, _ = fit_json(*args, "--cov", "robust")
    plain, _ = fit_json(*args)
    assert doc["cov_type"] == "HC0" and plain["cov_type"] == "model"
    assert "sandwich" in doc["se_method"]
    assert [p["model_std_error"] for p in doc["parameters"]] == [p["std_error"] for p in plain["parameters"]]
    assert [p["std_error"] for p in doc["parameters"]] != [p["std_error"] for p in plain["parameters"]]
    text = invoke("fit", *args, "--cov", "robust")
    assert "model_se" in text.stdout and "standard errors: sandwich (HC0)" in text.stdout
    csv_out = invoke("fit", *args, "--cov", "robust", "--format", "csv").stdout
    assert csv_out.splitlines()[0].endswith(",model_std_error")


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_scores_sum_to_the_gradient_and_give_the_meat(family, rng):
    fam = get_family(family)
    X = np.column_stack([np.ones(50), rng.normal(size=(50, 2))])
    n_classes = 3 if fam.classes else None
    params = rng.normal(size=fam.n_params(3, n_classes)) * 0.3
    y = fam.simulate(params, X, rng)
    w = rng.integers(0, 3, size=50).astype(float)
    S = fam.scores(params, X, y)
    assert S.shape == (50, len(params))
    np.testing.assert_allclose(S.sum(axis=0), fam.grad(params, X, y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w @ S, fam.grad(params, X, y, w), rtol=1e-10, atol=1e-12)
    meat = sum(wi * np.outer(s, s) for wi, s in zip(w, S))  # the definition, row by row
    np.testing.assert_allclose(fam.score_outer(params, X, y, w), meat, rtol=1e-10, atol=1e-12)


# -- the null model and the likelihood-ratio test --------------------------------------------------


def test_null_model_and_lr_test_match_logit(admissions):
    frame, features, X, y = admissions
    res = mlefit.fit(frame, "bernoulli", target="admitted", features=features)
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-12, disp=0)
    assert res.null_loglik == pytest.approx(ref.llnull, rel=RTOL)
    assert res.lr_stat == pytest.approx(ref.llr, rel=RTOL)
    assert res.lr_df == ref.df_model == 3
    assert res.lr_p_value == pytest.approx(ref.llr_pvalue, rel=RTOL)
    assert res.pseudo_r2 == pytest.approx(ref.prsquared, rel=RTOL)
    assert res.r2 is None


def test_null_model_and_lr_test_match_mnlogit(commute):
    frame, features, X, codes = commute
    res = mlefit.fit(frame, "categorical", target="mode", features=features)
    ref = sm.MNLogit(codes, X).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    assert res.null_loglik == pytest.approx(ref.llnull, rel=RTOL)
    assert res.lr_stat == pytest.approx(ref.llr, rel=RTOL)
    assert res.lr_df == ref.df_model == 9
    assert res.lr_p_value == pytest.approx(ref.llr_pvalue, rel=RTOL)
    assert res.pseudo_r2 == pytest.approx(ref.prsquared, rel=RTOL)


def test_gaussian_r2_and_lr_test_match_ols(houses):
    frame, features, X, y = houses
    res = mlefit.fit(frame, "gaussian", target="price_k", features=features)
    full = sm.OLS(y, X).fit()
    null = sm.OLS(y, X[:, :1]).fit()
    lr, p, df = full.compare_lr_test(null)
    assert res.r2 == pytest.approx(full.rsquared, rel=RTOL)
    assert res.null_loglik == pytest.approx(null.llf, rel=RTOL)
    assert res.lr_stat == pytest.approx(lr, rel=RTOL) and res.lr_df == df == 3
    assert res.pseudo_r2 is None


def test_fit_statistics_in_json_and_table(fit_json, invoke):
    doc, _ = fit_json(str(SAMPLES / "admissions.csv"), "-f", "bernoulli")
    for key in ("null_loglik", "lr_stat", "lr_df", "lr_p_value", "pseudo_r2", "r2"):
        assert key in doc
    assert doc["lr_stat"] == pytest.approx(2 * (doc["loglik"] - doc["null_loglik"]), rel=1e-12)
    out = invoke("fit", SAMPLES / "house_prices.csv", "-f", "gaussian").stdout
    assert "null log-likelihood (intercept only)" in out and "R^2" in out and "LR p-value" in out


def test_no_null_model_without_an_intercept(admissions):
    res = mlefit.fit(admissions[0], "bernoulli", target="admitted", intercept=False)
    assert res.null_loglik is None and res.lr_stat is None and res.pseudo_r2 is None


# -- L2 (MAP) --------------------------------------------------------------------------------------


def sklearn_fit(X, y, lam):
    return LogisticRegression(C=1.0 / lam, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)


@pytest.mark.parametrize("lam", [0.1, 3.0, 50.0])
def test_l2_bernoulli_matches_sklearn(lam, admissions):
    frame, features, _, y = admissions
    res = mlefit.fit(frame, "bernoulli", target="admitted", features=features, l2=lam)
    ref = sklearn_fit(frame[features].to_numpy(float), y, lam)
    assert res.converged and res.penalty == "l2" and res.l2 == lam
    assert res.params[0] == pytest.approx(ref.intercept_[0], rel=RTOL)
    assert_close(res.params[1:], ref.coef_[0])


@pytest.mark.parametrize("lam", [0.1, 3.0, 50.0])
def test_l2_categorical_matches_sklearn_multinomial(lam, commute):
    """scikit-learn penalises all K coefficient vectors (no reference class); mlefit's symmetric
    penalty gives the same optimum, reported as differences from the reference class."""
    frame, features, X, codes = commute
    res = mlefit.fit(frame, "categorical", target="mode", features=features, l2=lam)
    ref = sklearn_fit(frame[features].to_numpy(float), codes, lam)
    W = np.column_stack([ref.intercept_, ref.coef_])  # (K, n_features + 1)
    assert_close(res.params, (W[1:] - W[0]).ravel())
    P = softmax(np.column_stack([np.zeros(len(X)), X @ res.params.reshape(3, -1).T]), axis=1)
    assert_close(P, ref.predict_proba(frame[features].to_numpy(float)))
    # the penalised objective: NLL + (lam / 2) * sum over all K classes of ||coef_k||^2
    nll = -np.log(ref.predict_proba(frame[features].to_numpy(float))[np.arange(len(codes)), codes]).sum()
    assert res.objective_value == pytest.approx(nll + 0.5 * lam * (ref.coef_**2).sum(), rel=1e-10)
    assert res.nll == pytest.approx(nll, rel=1e-9)


def test_l2_categorical_does_not_depend_on_the_reference_class(commute):
    frame, features, X, _ = commute
    a = mlefit.fit(frame, "categorical", target="mode", features=features, l2=2.0)
    renamed = frame.assign(mode=frame["mode"].replace({"bike": "zbike"}))  # bike is no longer first
    b = mlefit.fit(renamed, "categorical", target="mode", features=features, l2=2.0)
    def probs(res, order):
        P = softmax(np.column_stack([np.zeros(len(X)), X @ res.params.reshape(3, -1).T]), axis=1)
        return P[:, order]
    # a's classes: bike, bus, car, walk; b's: bus, car, walk, zbike
    np.testing.assert_allclose(probs(a, [0, 1, 2, 3]), probs(b, [3, 0, 1, 2]), rtol=1e-9)
    assert a.objective_value == pytest.approx(b.objective_value, rel=1e-12)


def test_l2_gaussian_solves_the_penalised_normal_equations(houses):
    frame, features, X, y = houses
    lam = 5.0
    res = mlefit.fit(frame, "gaussian", target="price_k", features=features, l2=lam)
    coef, sigma = res.params[:-1], res.params[-1]
    P = np.diag([0.0, 1, 1, 1])
    # stationarity in b: X'(y - Xb) / sigma^2 = lam P b; in sigma: sigma^2 = RSS / n
    np.testing.assert_allclose(X.T @ (y - X @ coef) / sigma**2, lam * P @ coef, rtol=1e-6, atol=1e-8)
    assert sigma**2 == pytest.approx(((y - X @ coef) ** 2).mean(), rel=1e-10)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_penalized_objective_derivatives(family, rng):
    fam = get_family(family)
    X = np.column_stack([np.ones(40), rng.normal(size=(40, 2))])
    icpt = fam.intercept_column
    if not icpt:  # ordinal: the cutpoints take the intercept's place
        X = X[:, 1:]
    k = X.shape[1]
    n_classes = 3 if family in ("categorical", "ordinal") else None
    params = rng.normal(size=fam.n_params(k, n_classes)) * 0.3
    y = fam.simulate(params, X, rng)
    obj = PenalizedObjective(data_objective(fam, X, y), fam.l2_matrix(k, n_classes, intercept=icpt), 1.7)
    f, g, H = obj.value_grad_hess(params)
    np.testing.assert_allclose(g, numdiff.gradient(obj.value, params), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(H, numdiff.hessian(obj.value, params), rtol=1e-4, atol=1e-5)
    # intercepts, ancillary parameters (gaussian's log sigma, ...) and cutpoints are not penalised
    P = fam.l2_matrix(k, n_classes, intercept=icpt)
    free = {"categorical": [0, 3], "ordinal": [2, 3]}.get(family, [0])
    if fam.ancillary:
        free.append(3)
    assert np.all(P[free] == 0) and np.all(P[:, free] == 0)
    assert np.count_nonzero(np.diag(P)) == len(params) - len(free)


def test_l2_output_names_the_objective_and_standard_errors(fit_json, invoke):
    args = (str(SAMPLES / "commute.csv"), "-f", "categorical", "--l2", "2")
    doc, _ = fit_json(*args)
    assert doc["penalty"] == "l2" and doc["l2"] == 2.0
    assert "(l2/2)" in doc["objective"] and "intercepts not penalised" in doc["objective"]
    assert "penalised objective" in doc["se_method"] and "Laplace" in doc["se_method"]
    assert doc["objective_value"] > doc["nll"]
    assert doc["aic"] is None and doc["lr_stat"] is None  # not meaningful for a penalised fit
    assert doc["pseudo_r2"] is not None
    out = invoke(*(["fit", *args])).stdout
    assert "objective: penalised (MAP)" in out and "standard errors: inverse of the Hessian of the penalised" in out


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_l2_must_be_positive(invoke, value):
    result = invoke("fit", SAMPLES / "admissions.csv", "-f", "bernoulli", "--l2", value)
    assert result.exit_code == 2 and "--l2 must be a positive number" in result.stderr


def test_covariance_or_root_takes_the_root_only_when_ill_conditioned(rng):
    """One Cholesky factorisation gives the condition number and, for a well-conditioned Hessian,
    the covariance; an ill-conditioned one is inverted from its square root (QR)."""
    from mlefit import inference

    Z = rng.normal(size=(200, 6))
    H = Z.T @ Z
    calls = []

    def root():
        calls.append(1)
        return Z

    np.testing.assert_allclose(inference.covariance_or_root(H, root), np.linalg.inv(H), rtol=1e-12)
    assert calls == []
    Z[:, 5] = Z[:, 4] + 1e-5 * Z[:, 5]  # condition of the unit-diagonal Hessian about 1e10
    H = Z.T @ Z
    assert inference.scaled_condition(H) > inference.ILL_CONDITIONED
    cov = inference.covariance_or_root(H, root)
    assert calls == [1]
    np.testing.assert_allclose(cov, inference.covariance(H, Z), rtol=0, atol=0)
    assert inference.covariance_or_root(np.array([[1.0, 2.0], [2.0, 1.0]]), lambda: None) is None
