"""Golden tests of the count and positive-data families (poisson, negbin, gamma) against
independent implementations, and every part of mlefit (engines, methods, options, commands) with
them.

References: statsmodels' GLM and discrete models, scipy.stats log-densities maximised by
scipy.optimize, scikit-learn's PoissonRegressor, R's ``MASS::glm.nb`` output as printed in a book,
and mpmath at high precision. The data sets in tests/data are public; tests/data/README.md names
their sources.
"""

from __future__ import annotations

import io
import json
import math
import shlex
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlefit
from conftest import MLEFIT, SAMPLES, subprocess_env
from mlefit.families import get_family
from mlefit.families.base import BlockSums

sm = pytest.importorskip("statsmodels.api")

DATA = Path(__file__).resolve().parent / "data"
ENGEL = DATA / "engel.csv"
QUINE = DATA / "quine.csv"
RANDHIE = DATA / "randhie.csv"
STRIKES = DATA / "strikes.csv"
CLINIC = SAMPLES / "clinic_visits.csv"
CLAIMS = SAMPLES / "claims.csv"

#: Cameron and Trivedi's regressors of the RAND visits; with an offset or exposure, lpi is the offset.
RANDHIE_FEATURES = ["lncoins", "idp", "lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp"]
RANDHIE_OFFSET_FEATURES = [name for name in RANDHIE_FEATURES if name != "lpi"]
CLAIMS_FEATURES = ["driver_age", "vehicle_value_k", "region"]
COUNT_FAMILIES = ["poisson", "negbin", "gamma"]
#: A fit of each family on its sample data: (path, target, options).
SAMPLE_FITS = {
    "poisson": (CLINIC, "visits", {"exposure": "months_enrolled"}),
    "negbin": (CLINIC, "visits", {"exposure": "months_enrolled"}),
    "gamma": (CLAIMS, "amount", {}),
}


def rel(a, b) -> float:
    """The largest relative difference of ``a`` from the reference ``b``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def with_constant(frame: pd.DataFrame) -> np.ndarray:
    """An intercept column, then the columns of ``frame`` with text columns dummy-coded against
    their first level (mlefit's one-hot layout; count_data's g always has the levels a, b, c)."""
    frame = frame.copy()
    if "g" in frame:
        frame["g"] = pd.Categorical(frame["g"], categories=["a", "b", "c"])
    return sm.add_constant(pd.get_dummies(frame, drop_first=True).astype(float).to_numpy(), has_constant="add")


def count_data(family: str, n: int = 900, seed: int = 5) -> pd.DataFrame:
    """Features x1, x2 and a text column g (levels b, c first seen after the first third), frequency
    weights w (0..3), an exposure e on (0.5, 2), an offset column off and the target y."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    g = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    g[: n // 3] = "a"
    e = rng.uniform(0.5, 2.0, n)
    off = rng.normal(0.0, 0.3, n)
    mu = np.exp(0.4 + 0.5 * x1 - 0.3 * x2 + 0.4 * (g == "b")) * e
    if family == "poisson":
        y = rng.poisson(mu)
    elif family == "negbin":
        y = rng.poisson(rng.gamma(2.0, mu / 2.0))  # alpha = 0.5
    else:
        y = rng.gamma(3.0, mu / 3.0)  # shape 3
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "w": rng.integers(0, 4, n), "e": e, "off": off, "y": y})


# -- poisson: statsmodels GLM Poisson and discrete Poisson on the RAND HIE data ---------------------


def randhie_frame() -> pd.DataFrame:
    """The RAND visits with ``incentive``, the participation incentive max(1, payment) = exp(lpi),
    as a positive exposure whose log is the column lpi."""
    frame = pd.read_csv(RANDHIE)
    frame["incentive"] = np.exp(frame["lpi"])
    return frame


RANDHIE_CASES = {
    "plain": (RANDHIE_FEATURES, {}, {}),
    # an offset column and the exposure whose log it is: the same model, so the same references
    "offset": (RANDHIE_OFFSET_FEATURES, {"offset": "lpi"}, {"offset": "lpi"}),
    "exposure": (RANDHIE_OFFSET_FEATURES, {"exposure": "incentive"}, {"exposure": "incentive"}),
}


@pytest.mark.parametrize("case", RANDHIE_CASES)
def test_poisson_matches_statsmodels_glm_and_discrete_poisson_on_randhie(case):
    from statsmodels.discrete.discrete_model import Poisson

    frame = randhie_frame()
    features, ours, theirs = RANDHIE_CASES[case]
    res = mlefit.fit(frame, "poisson", target="mdvis", features=features, **ours)
    assert res.converged and res.names == ("intercept", *features)
    assert res.offset == ours.get("offset") and res.exposure == ours.get("exposure")
    X, y = with_constant(frame[features]), frame["mdvis"].to_numpy(float)
    kw = {key: frame[col].to_numpy(float) for key, col in theirs.items()}
    glm = sm.GLM(y, X, family=sm.families.Poisson(), **kw).fit(tol=1e-14, maxiter=100)
    disc = Poisson(y, X, **kw).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    for ref in (glm, disc):  # measured: 7e-12 (estimates), 1e-12 (errors), 0 (log-likelihood)
        assert rel(res.params, ref.params) < 1e-8
        assert rel(res.se, ref.bse) < 1e-8
        assert rel(res.loglik, ref.llf) < 1e-8
    # the intercept-only model, the likelihood-ratio test and McFadden's pseudo R^2 (measured: 0)
    assert rel(res.null_loglik, disc.llnull) < 1e-8
    assert rel(res.lr_stat, disc.llr) < 1e-8 and res.lr_df == disc.df_model == len(features)
    assert rel(res.lr_p_value, disc.llr_pvalue) < 1e-6
    assert rel(res.pseudo_r2, disc.prsquared) < 1e-8
    assert rel(res.aic, disc.aic) < 1e-8 and rel(res.bic, disc.bic) < 1e-8


def test_poisson_offset_equals_exposure_and_arrays_equal_columns():
    frame = randhie_frame()
    common = dict(target="mdvis", features=RANDHIE_OFFSET_FEATURES)
    by_exposure = mlefit.fit(frame, "poisson", exposure="incentive", **common)
    by_offset = mlefit.fit(frame, "poisson", offset="lpi", **common)
    by_arrays = mlefit.fit(
        X=frame[RANDHIE_OFFSET_FEATURES].to_numpy(float), y=frame["mdvis"].to_numpy(float), family="poisson",
        exposure=frame["incentive"].to_numpy(float), feature_names=RANDHIE_OFFSET_FEATURES,
    )
    for other in (by_offset, by_arrays):
        assert rel(other.params, by_exposure.params) < 1e-12
        assert rel(other.se, by_exposure.se) < 1e-12
        assert rel(other.nll, by_exposure.nll) < 1e-13


def test_poisson_robust_covariance_matches_statsmodels_hc0():
    frame = randhie_frame()
    common = dict(target="mdvis", features=RANDHIE_OFFSET_FEATURES, exposure="incentive")
    res = mlefit.fit(frame, "poisson", cov="robust", **common)
    X, y = with_constant(frame[RANDHIE_OFFSET_FEATURES]), frame["mdvis"].to_numpy(float)
    ref = sm.GLM(y, X, family=sm.families.Poisson(), exposure=frame["incentive"].to_numpy(float)).fit(
        tol=1e-14, cov_type="HC0"
    )
    assert res.cov_type == "HC0"
    assert rel(res.se, ref.bse) < 1e-8  # measured 5e-13
    assert rel(res.cov, ref.cov_params()) < 1e-8  # measured 1e-11
    model = mlefit.fit(frame, "poisson", **common)
    assert rel(res.se_model, model.se) < 1e-12  # the model-based errors kept beside


# -- negbin: statsmodels NegativeBinomial (NB2) and R's glm.nb on the quine data ------------------------


def nb2_reference(y, X, **kw):
    from statsmodels.discrete.discrete_model import NegativeBinomial

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own start-up fits may warn
        return NegativeBinomial(y, X, loglike_method="nb2", **kw).fit(method="newton", tol=1e-14, maxiter=200, disp=0)


def test_negbin_matches_statsmodels_nb2_on_quine():
    frame = pd.read_csv(QUINE)
    res = mlefit.fit(QUINE, "negbin", target="Days")
    assert res.converged
    assert res.names == ("intercept", "Eth[N]", "Sex[M]", "Age[F1]", "Age[F2]", "Age[F3]", "Lrn[SL]", "alpha")
    ref = nb2_reference(frame["Days"].to_numpy(float), with_constant(frame[["Eth", "Sex", "Age", "Lrn"]]))
    # coefficients and alpha with their standard errors: measured 5e-15 and 2e-15
    assert rel(res.params, ref.params) < 1e-6
    assert rel(res.se, ref.bse) < 1e-6
    assert rel(res.loglik, ref.llf) < 1e-10
    assert rel(res.null_loglik, ref.llnull) < 1e-8  # the intercept and alpha alone (statsmodels refits it)
    assert rel(res.lr_stat, ref.llr) < 1e-6
    assert rel(res.pseudo_r2, ref.prsquared) < 1e-8


def test_negbin_matches_r_glm_nb_printed_output_on_quine():
    """``glm.nb(Days ~ Eth * Sex * Age * Lrn, data = quine)`` (Crawley, The R Book): the full
    factorial has one mean per non-empty cell (28 of 32; R drops the 4 aliased columns), so a
    factor of the cells is the same model. R prints theta = 1/alpha."""
    frame = pd.read_csv(QUINE)
    cells = pd.DataFrame({"cell": frame["Eth"] + frame["Sex"] + frame["Age"] + frame["Lrn"], "Days": frame["Days"]})
    res = mlefit.fit(cells, "negbin", target="Days")
    assert res.converged and res.n_params == 29
    alpha, se_alpha = res.params[-1], res.se[-1]
    theta = 1.0 / alpha
    assert rel(theta, 1.92836014510701) < 1e-8  # measured 3e-12
    assert round(se_alpha / alpha**2, 3) == 0.269  # se(theta) by the delta method
    assert round(2.0 * res.loglik, 3) == -1039.324
    assert round(res.aic, 1) == 1097.3


def test_negbin_with_exposure_matches_statsmodels():
    frame = count_data("negbin")
    res = mlefit.fit(frame, "negbin", features="x1,x2,g", exposure="e")
    ref = nb2_reference(frame["y"].to_numpy(float), with_constant(frame[["x1", "x2", "g"]]), exposure=frame["e"].to_numpy())
    assert rel(res.params, ref.params) < 1e-6
    assert rel(res.se, ref.bse) < 1e-6
    assert rel(res.loglik, ref.llf) < 1e-10


def test_negbin_robust_covariance_matches_statsmodels_hc0():
    frame = pd.read_csv(QUINE)
    res = mlefit.fit(QUINE, "negbin", target="Days", cov="robust")
    from statsmodels.discrete.discrete_model import NegativeBinomial

    model = NegativeBinomial(frame["Days"].to_numpy(float), with_constant(frame[["Eth", "Sex", "Age", "Lrn"]]),
                             loglike_method="nb2")
    ref = model.fit(method="newton", tol=1e-14, maxiter=200, disp=0, cov_type="HC0")
    assert rel(res.params, ref.params) < 1e-6
    assert rel(res.se, ref.bse) < 1e-6


# -- gamma: statsmodels GLM Gamma (log link) and scipy.stats maximised by scipy.optimize -------------------


GAMMA_CASES = {
    "engel": (ENGEL, "foodexp", ["income"]),
    "strikes": (STRIKES, "duration", ["iprod"]),
    "claims": (CLAIMS, "amount", CLAIMS_FEATURES),
}


def scipy_gamma_fit(X: np.ndarray, y: np.ndarray):
    """The gamma MLE of (coefficients, shape) by BFGS on the sum of scipy.stats.gamma log-densities,
    in the coordinates of an orthonormal basis of the design (so the problem is well conditioned),
    from the intercept-only mean and shape 1; central-difference gradients. Returns the
    coefficients, the shape, the NLL and the covariance of (coefficients, log shape) from a
    numerical Hessian."""
    from scipy import optimize, stats
    from statsmodels.tools.numdiff import approx_hess3

    Q, R = np.linalg.qr(X)

    def nll(theta):
        k = np.exp(theta[-1])
        mu = np.exp(Q @ theta[:-1])
        return -stats.gamma.logpdf(y, a=k, scale=mu / k).sum()

    c0 = np.linalg.lstsq(Q, np.full(len(y), np.log(y.mean())), rcond=None)[0]
    found = optimize.minimize(nll, np.append(c0, 0.0), method="BFGS", jac="3-point", options={"gtol": 1e-10, "maxiter": 10_000})
    cov_c = np.linalg.inv(approx_hess3(found.x, nll))
    T = np.zeros_like(cov_c)  # coefficients b = R^-1 c, log shape unchanged
    T[:-1, :-1] = np.linalg.inv(R)
    T[-1, -1] = 1.0
    coef = np.linalg.solve(R, found.x[:-1])
    return coef, float(np.exp(found.x[-1])), float(found.fun), T @ cov_c @ T.T


@pytest.mark.parametrize("case", GAMMA_CASES)
def test_gamma_matches_statsmodels_glm_and_a_scipy_maximisation(case):
    path, target, features = GAMMA_CASES[case]
    frame = pd.read_csv(path)
    res = mlefit.fit(path, "gamma", target=target, features=features)
    assert res.converged and res.names[-1] == "shape"
    X, y = with_constant(frame[features]), frame[target].to_numpy(float)
    family = sm.families.Gamma(sm.families.links.Log())
    glm = sm.GLM(y, X, family=family).fit(tol=1e-15, maxiter=200)
    # the coefficients' score does not involve the shape: they are the GLM's (measured 6e-15 engel,
    # 3e-10 strikes, 3e-12 claims)
    assert rel(res.params[:-1], glm.params) < 1e-8
    coef, shape, nll, cov = scipy_gamma_fit(X, y)
    assert rel(res.params[-1], shape) < 1e-6  # measured 9e-10 (engel), 3e-10 (strikes), 1e-10 (claims)
    assert rel(res.params[:-1], coef) < 1e-6  # measured 4e-11, 1e-9, 9e-9
    assert rel(res.nll, nll) < 1e-12
    # standard errors: the coefficients' are the GLM's with the scale held at 1/shape and the
    # observed information (Newton); the shape's from the numerical Hessian of the scipy NLL
    observed = sm.GLM(y, X, family=family).fit(start_params=glm.params, method="newton", tol=1e-15, maxiter=200,
                                               scale=1.0 / res.params[-1])
    assert rel(res.se[:-1], observed.bse) < 1e-8  # measured 6e-11 at worst (strikes)
    assert rel(res.se[-1], res.params[-1] * math.sqrt(cov[-1, -1])) < 1e-5  # measured 2e-8 (engel), 1e-6 (strikes), 7e-8 (claims)


@pytest.mark.parametrize("case", GAMMA_CASES)
def test_gamma_robust_covariance_matches_statsmodels_hc0(case):
    """The Hessian is block diagonal at the optimum (the cross term is the coefficients' score), so
    the sandwich's coefficient block is the GLM's HC0, whatever the shape."""
    path, target, features = GAMMA_CASES[case]
    frame = pd.read_csv(path)
    res = mlefit.fit(path, "gamma", target=target, features=features, cov="robust")
    X, y = with_constant(frame[features]), frame[target].to_numpy(float)
    ref = sm.GLM(y, X, family=sm.families.Gamma(sm.families.links.Log())).fit(tol=1e-15, maxiter=200, cov_type="HC0")
    assert rel(res.se[:-1], ref.bse) < 1e-8  # measured 3e-11 at worst (strikes)


def test_gamma_null_model_is_scipys_gamma_fit():
    from scipy import stats

    y = pd.read_csv(CLAIMS)["amount"].to_numpy(float)
    res = mlefit.fit(CLAIMS, "gamma", target="amount", features=CLAIMS_FEATURES)
    shape, _, scale = stats.gamma.fit(y, floc=0.0, method="MLE")
    null = float(stats.gamma.logpdf(y, a=shape, scale=scale).sum())
    assert rel(res.null_loglik, null) < 1e-9
    assert res.lr_df == 4 and rel(res.lr_stat, 2.0 * (res.loglik - null)) < 1e-8


def test_poisson_null_model_with_exposure_is_the_mean_rate():
    frame = pd.read_csv(CLINIC)
    res = mlefit.fit(CLINIC, "poisson", target="visits", exposure="months_enrolled")
    y, t = frame["visits"].to_numpy(float), frame["months_enrolled"].to_numpy(float)
    from scipy import stats

    rate = y.sum() / t.sum()
    assert rel(res.null_loglik, stats.poisson.logpmf(y, rate * t).sum()) < 1e-12


def test_negbin_null_model_matches_statsmodels_constant_only():
    frame = pd.read_csv(CLINIC)
    res = mlefit.fit(CLINIC, "negbin", target="visits", exposure="months_enrolled")
    y = frame["visits"].to_numpy(float)
    ref = nb2_reference(y, np.ones((len(y), 1)), exposure=frame["months_enrolled"].to_numpy(float))
    assert rel(res.null_loglik, ref.llf) < 1e-10


# -- the streamed and the Dask engines give the in-memory numbers -----------------------------------------

ENGINE_OPTIONS = {
    "weights-exposure-robust": {"features": "x1,x2,g", "weights": "w", "exposure": "e", "cov": "robust"},
    "offset": {"features": "x1,x2,g", "offset": "off"},
}


#: The engines' fits are compared at a tolerance where both are at the optimum to rounding: at the
#: default 1e-8 the streamed fit of a family with an ancillary parameter starts elsewhere (see
#: test_streamed_fit_at_the_default_tolerance) and may stop up to 1e-8 standard errors away.
TIGHT = 1e-12


@pytest.mark.parametrize("family", COUNT_FAMILIES)
@pytest.mark.parametrize("options", ENGINE_OPTIONS)
@pytest.mark.parametrize("chunk_rows", [97, 331])
def test_streamed_fit_equals_in_memory(tmp_path, family, options, chunk_rows):
    path = tmp_path / "d.csv"
    count_data(family).to_csv(path, index=False)
    mem = mlefit.fit(path, family, tol=TIGHT, **ENGINE_OPTIONS[options])
    streamed = mlefit.fit(path, family, stream=True, chunk_rows=chunk_rows, tol=TIGHT, **ENGINE_OPTIONS[options])
    assert streamed.names == mem.names and streamed.converged
    assert rel(streamed.params, mem.params) < 1e-10  # measured 2e-15
    assert rel(streamed.se, mem.se) < 1e-10
    assert rel(streamed.nll, mem.nll) < 1e-10
    assert rel(streamed.null_loglik, mem.null_loglik) < 1e-10
    assert streamed.cov_type == mem.cov_type and streamed.exposure == mem.exposure and streamed.offset == mem.offset


def test_streamed_fit_at_the_default_tolerance(tmp_path):
    path = tmp_path / "d.csv"
    count_data("gamma").to_csv(path, index=False)
    mem = mlefit.fit(path, "gamma", features="x1,x2,g")
    streamed = mlefit.fit(path, "gamma", features="x1,x2,g", stream=True, chunk_rows=97)
    assert rel(streamed.params, mem.params) < 1e-10


@pytest.mark.parametrize("family", COUNT_FAMILIES)
@pytest.mark.parametrize("options", ENGINE_OPTIONS)
def test_dask_fit_equals_in_memory(tmp_path, client, family, options):
    path = tmp_path / "d.csv"
    count_data(family).to_csv(path, index=False)
    mem = mlefit.fit(path, family, tol=TIGHT, **ENGINE_OPTIONS[options])
    remote = mlefit.fit(path, family, engine="dask", client=client, chunk_rows=100, tol=TIGHT,
                        **ENGINE_OPTIONS[options])
    assert remote.names == mem.names and remote.converged
    assert rel(remote.params, mem.params) < 1e-10
    assert rel(remote.se, mem.se) < 1e-10
    assert rel(remote.nll, mem.nll) < 1e-10
    assert rel(remote.null_loglik, mem.null_loglik) < 1e-10


# -- every method and numeric gradients reach the same optimum --------------------------------------------


@pytest.mark.parametrize("family", COUNT_FAMILIES)
@pytest.mark.parametrize(
    "how", [{"method": "lbfgs"}, {"method": "gd"}, {"gradient": "numeric"}, {"method": "lbfgs", "gradient": "numeric"}],
    ids=["lbfgs", "gd", "newton-numeric", "lbfgs-numeric"],
)
def test_methods_reach_the_newton_optimum(family, how):
    frame = count_data(family)
    options = {"features": "x1,x2,g", "exposure": "e"}
    newton = mlefit.fit(frame, family, **options)
    other = mlefit.fit(frame, family, **options, **how)
    assert other.converged, other.message
    # each stops within its tolerance (1e-6 standard errors by the Newton decrement) of the optimum
    assert np.max(np.abs(other.params - newton.params) / newton.se) < 1e-5
    assert abs(other.nll - newton.nll) < 1e-8 * newton.nll
    assert rel(other.se, newton.se) < 1e-5  # always from the analytic Hessian at the estimate


@pytest.mark.parametrize("family", ["poisson", "negbin"])
@pytest.mark.parametrize("how", [{"method": "lbfgs"}, {"gradient": "numeric"}], ids=["lbfgs", "newton-numeric"])
def test_methods_reach_the_optimum_on_the_sample_data(family, how):
    path, target, options = SAMPLE_FITS[family]
    newton = mlefit.fit(path, family, target=target, **options)
    other = mlefit.fit(path, family, target=target, **options, **how)
    assert other.converged, other.message
    assert np.max(np.abs(other.params - newton.params) / newton.se) < 1e-5


def test_gamma_lbfgs_on_the_claims_data():
    newton = mlefit.fit(CLAIMS, "gamma", target="amount")
    other = mlefit.fit(CLAIMS, "gamma", target="amount", method="lbfgs")
    assert other.converged, other.message
    assert np.max(np.abs(other.params - newton.params) / newton.se) < 1e-5


# -- options: weights, --l2, --formula, --dropna ----------------------------------------------------------


@pytest.mark.parametrize("family", ["poisson", "negbin", "gamma"])
def test_weights_equal_repeated_rows_with_exposure(family):
    frame = count_data(family, n=300)
    weighted = mlefit.fit(frame, family, features="x1,x2,g", exposure="e", weights="w")
    repeated = frame.loc[frame.index.repeat(frame["w"])].reset_index(drop=True)
    plain = mlefit.fit(repeated, family, features="x1,x2,g", exposure="e")
    assert weighted.n_obs == plain.n_obs == frame["w"].sum()
    assert rel(weighted.params, plain.params) < 1e-9
    assert rel(weighted.se, plain.se) < 1e-9
    assert rel(weighted.nll, plain.nll) < 1e-11
    assert rel(weighted.aic, plain.aic) < 1e-11 and rel(weighted.null_loglik, plain.null_loglik) < 1e-11


def test_poisson_l2_matches_sklearn_poisson_regressor():
    """PoissonRegressor minimises mean half deviance + (alpha/2) ||w||^2 without penalising the
    intercept: mlefit's NLL + (l2/2) ||w||^2 divided by n, with alpha = l2 / n."""
    from sklearn.linear_model import PoissonRegressor

    frame = count_data("poisson")
    l2 = 40.0
    res = mlefit.fit(frame, "poisson", features="x1,x2", l2=l2)
    X, y = frame[["x1", "x2"]].to_numpy(), frame["y"].to_numpy(float)
    ref = PoissonRegressor(alpha=l2 / len(y), solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)
    assert res.penalty == "l2" and (res.aic is None or math.isnan(res.aic))
    assert rel(res.params, np.concatenate([[ref.intercept_], ref.coef_])) < 1e-7
    unpenalised = mlefit.fit(frame, "poisson", features="x1,x2")
    assert np.all(np.abs(res.params[1:]) < np.abs(unpenalised.params[1:]))  # shrunk


@pytest.mark.parametrize("family", ["negbin", "gamma"])
def test_l2_matches_a_scipy_penalised_maximisation(family):
    from scipy import optimize, stats

    frame = count_data(family)
    l2 = 25.0
    res = mlefit.fit(frame, family, features="x1,x2", l2=l2)
    X, y = with_constant(frame[["x1", "x2"]]), frame["y"].to_numpy(float)

    def objective(theta):
        b, t = theta[:-1], np.exp(theta[-1])
        mu = np.exp(X @ b)
        if family == "negbin":  # t = alpha; scipy's nbinom(n = 1/alpha, p = 1/(1 + alpha mu))
            ll = stats.nbinom.logpmf(y, 1.0 / t, 1.0 / (1.0 + t * mu))
        else:  # t = shape
            ll = stats.gamma.logpdf(y, a=t, scale=mu / t)
        return -ll.sum() + 0.5 * l2 * (b[1:] @ b[1:])  # intercept and ancillary not penalised

    found = optimize.minimize(objective, np.zeros(4), method="BFGS", jac="3-point", options={"gtol": 1e-9})
    assert rel(res.params[:-1], found.x[:-1]) < 1e-6
    assert rel(res.params[-1], np.exp(found.x[-1])) < 1e-6
    assert rel(res.objective_value, found.fun) < 1e-12


def test_formula_equals_columns_and_statsmodels():
    pytest.importorskip("formulaic")
    frame = pd.read_csv(CLINIC)
    res = mlefit.fit(CLINIC, "poisson", formula="visits ~ np.log(age) + chronic + C(insured)", exposure="months_enrolled")
    assert res.names == ("intercept", "np.log(age)", "chronic", "C(insured)[T.yes]")
    X = np.column_stack([np.ones(len(frame)), np.log(frame["age"]), frame["chronic"], frame["insured"] == "yes"]).astype(float)
    ref = sm.GLM(frame["visits"].to_numpy(float), X, family=sm.families.Poisson(),
                 exposure=frame["months_enrolled"].to_numpy(float)).fit(tol=1e-14)
    assert rel(res.params, ref.params) < 1e-8 and rel(res.se, ref.bse) < 1e-8
    negbin = mlefit.fit(QUINE, "negbin", formula="Days ~ C(Eth) + C(Sex) + C(Age) + C(Lrn)")
    columns = mlefit.fit(QUINE, "negbin", target="Days")
    assert rel(negbin.params, columns.params) < 1e-12 and rel(negbin.nll, columns.nll) < 1e-14


@pytest.mark.parametrize("family", ["poisson", "negbin", "gamma"])
def test_dropna_drops_rows_missing_in_the_target_features_or_exposure(family):
    frame = count_data(family, n=400)
    holed = frame.astype({"x1": float, "e": float, "y": float}).copy()
    holed.loc[[3, 50], "x1"] = np.nan
    holed.loc[[7], "e"] = np.nan
    holed.loc[[120], "y"] = np.nan
    holed.loc[[9], "off"] = np.nan  # a column the fit does not use: kept
    res = mlefit.fit(holed, family, features="x1,x2,g", exposure="e", dropna=True)
    kept = frame.drop(index=[3, 50, 7, 120])
    ref = mlefit.fit(kept, family, features="x1,x2,g", exposure="e")
    assert res.n_dropped == 4 and res.n_rows == len(kept)
    assert rel(res.params, ref.params) < 1e-12 and rel(res.nll, ref.nll) < 1e-13
    with pytest.raises(mlefit.DataError, match=r"column 'y' has 1 missing value\(s\), the first in data row 121 \(also: e \(1\)\)"):
        mlefit.fit(holed, family, features="x2,g", exposure="e")


# -- the negbin boundary alpha = 0 ------------------------------------------------------------------------


def underdispersed(n: int = 600, seed: int = 2) -> pd.DataFrame:
    """Binomial(6, p) counts: variance below the mean, so the NB2 likelihood rises to alpha = 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1.0 / (1.0 + np.exp(-(0.2 + 0.4 * x)))
    return pd.DataFrame({"x": x, "y": rng.binomial(6, p)})


def test_negbin_without_overdispersion_stops_at_the_boundary(fit_json, tmp_path):
    path = tmp_path / "under.csv"
    underdispersed().to_csv(path, index=False)
    doc, result = fit_json(path, "--family", "negbin")
    assert doc["converged"] is True
    assert "boundary 0" in doc["message"] and "no overdispersion" in doc["message"]
    alpha = doc["parameters"][-1]
    assert alpha["name"] == "alpha" and alpha["class"] is None
    assert alpha["estimate"] < 1e-8 and alpha["std_error"] is None
    poisson = mlefit.fit(path, "poisson")
    coef = np.array([p["estimate"] for p in doc["parameters"][:-1]])
    assert rel(coef, poisson.params) < 1e-8
    assert rel(np.array([p["std_error"] for p in doc["parameters"][:-1]]), poisson.se) < 1e-6
    assert rel(doc["loglik"], poisson.loglik) < 1e-10


# -- simulate | fit, recover --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, truth_option", [("poisson", ""), ("negbin", "--alpha 0.7"), ("gamma", "--shape 3")],
)
def test_simulate_piped_into_fit_with_exposure(tmp_path, family, truth_option):
    simulate = (f"{shlex.quote(MLEFIT)} simulate --family {family} --coef 0.5,-0.3 --intercept 0.8 {truth_option} "
                f"--exposure t --n 3000 --seed 9")
    fit = f"{shlex.quote(MLEFIT)} fit - --family {family} --exposure t --format json"
    proc = subprocess.run(f"set -o pipefail; {simulate} | {fit}", shell=True, executable="/bin/bash",
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exposure"] == "t" and doc["n_obs"] == 3000
    saved = tmp_path / "sim.csv"
    subprocess.run(f"{simulate} -o {shlex.quote(str(saved))}", shell=True, check=True, env=subprocess_env())
    frame = pd.read_csv(saved)
    assert list(frame.columns) == ["x1", "x2", "t", "y"]
    assert frame["t"].between(0.5, 2.0).all() and frame["t"].std() > 0.3
    if family != "gamma":
        assert (frame["y"] == frame["y"].round()).all()
    # the pipeline's estimates are those of an in-process fit of the same data, near the truth
    again = mlefit.fit(saved, family, exposure="t")
    estimates = np.array([p["estimate"] for p in doc["parameters"]])
    assert rel(estimates, again.params) < 1e-12
    truth = np.array([0.8, 0.5, -0.3] + {"poisson": [], "negbin": [0.7], "gamma": [3.0]}[family])
    assert np.all(np.abs(estimates - truth) < 4.0 * again.se)


RECOVERY = {"poisson": None, "negbin": {"alpha": 0.5}, "gamma": {"shape": 2.0}}


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_recovery_coverage_is_near_95_percent(family):
    study = mlefit.recover(family, [0.5, -0.3], intercept=0.4, n=400, reps=200, seed=11,
                           ancillary=RECOVERY[family], exposure="exposure")
    assert study.n_converged == 200
    summary = {p["name"]: p for p in study.to_dict()["parameters"]}
    expected = ["intercept", "x1", "x2"] + list(RECOVERY[family] or {})
    assert list(summary) == expected
    for name, row in summary.items():
        # measured: coverage 0.915 to 0.965, SE ratio 0.91 to 1.05
        assert 0.88 <= row["coverage"] <= 0.99, (name, row)
        assert 0.85 <= row["se_ratio"] <= 1.15, (name, row)
    if RECOVERY[family]:
        (name, value), = RECOVERY[family].items()
        assert summary[name]["truth"] == value
        assert abs(summary[name]["bias"]) < 0.1 * value


def test_recover_command_takes_alpha_and_exposure(invoke):
    result = invoke("recover", "--family", "negbin", "--coef", "0.3", "--intercept", "1", "--alpha", "0.4",
                    "--exposure", "t", "--n", "300", "--reps", "20", "--seed", "3", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = {p["name"]: p for p in doc["parameters"]}
    assert rows["alpha"]["truth"] == 0.4 and rows["intercept"]["truth"] == 1.0
    assert abs(rows["alpha"]["mean_estimate"] - 0.4) < 0.15


# -- save and predict -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_saved_model_predicts_the_mean_with_the_exposure(tmp_path, invoke, family):
    frame = count_data(family, n=300)
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "m.json"
    result = invoke("fit", data, "--family", family, "-x", "x1,x2,g", "--exposure", "e", "--save", model, "-q")
    assert result.exit_code == 0, result.stderr
    saved = json.loads(model.read_text())
    assert saved["exposure"] == "e" and saved["offset"] is None
    res = mlefit.fit(data, family, features="x1,x2,g", exposure="e")
    new = frame.drop(columns="y").iloc[::7]  # every level of g
    new.to_csv(tmp_path / "new.csv", index=False)
    out = invoke("predict", model, tmp_path / "new.csv")
    assert out.exit_code == 0, out.stderr
    scored = pd.read_csv(io.StringIO(out.stdout))
    assert list(scored.columns) == list(new.columns) + ["predicted_y"]
    X = with_constant(new[["x1", "x2", "g"]])
    assert X.shape[1] == 5
    expected = np.exp(X @ res.params[:5]) * new["e"].to_numpy()
    assert rel(scored["predicted_y"], expected) < 1e-13
    if family == "poisson":  # and statsmodels' prediction with the same estimates
        glm = sm.GLM(frame["y"].to_numpy(float), with_constant(frame[["x1", "x2", "g"]]), family=sm.families.Poisson(),
                     exposure=frame["e"].to_numpy())
        assert rel(scored["predicted_y"], glm.predict(res.params, X, exposure=new["e"].to_numpy())) < 1e-13
    missing = invoke("predict", model, "-", input=new.drop(columns="e").to_csv(index=False))
    assert missing.exit_code == 2
    assert missing.stderr.startswith("Error: ") and missing.stderr.count("\n") == 1
    assert "exposure column 'e'" in missing.stderr and "Traceback" not in missing.stderr


def test_saved_model_with_an_offset_needs_the_offset_column(tmp_path, invoke):
    frame = count_data("gamma", n=200)
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.json"
    assert invoke("fit", tmp_path / "d.csv", "-f", "gamma", "-x", "x1,x2", "--offset", "off", "--save", model, "-q").exit_code == 0
    res = mlefit.fit(tmp_path / "d.csv", "gamma", features="x1,x2", offset="off")
    scored = mlefit.predict(model, frame.drop(columns="y"))
    expected = np.exp(res.params[0] + frame[["x1", "x2"]].to_numpy() @ res.params[1:3] + frame["off"].to_numpy())
    assert rel(scored["predicted_y"], expected) < 1e-13
    missing = invoke("predict", model, "-", input=frame.drop(columns=["y", "off"]).to_csv(index=False))
    assert missing.exit_code == 2 and "'off'" in missing.stderr and missing.stderr.count("\n") == 1


# -- check-grad -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_check_grad_passes_on_the_sample_data(invoke, family):
    path, target, options = SAMPLE_FITS[family]
    args = [path, "-f", family, "-y", target] + [a for k, v in options.items() for a in (f"--{k}", v)]
    result = invoke("check-grad", *args, "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] is True and doc["fit_converged"] is True
    assert doc["largest_grad_rel_err"] < 1e-7 and doc["largest_hess_rel_err"] < 1e-7
    assert max(abs(g) for g in doc["points"][0]["grad"]) > 1.0  # the start is a real test


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_check_grad_catches_a_wrong_ancillary_or_coefficient_derivative(invoke, monkeypatch, family):
    cls = type(get_family(family))
    original = cls.evaluate

    def evaluate(self, params, X, y, weights=None, order=2, precise=False, offset=None):
        s = original(self, params, X, y, weights, order, precise, offset)
        if s.grad is None:
            return s
        g = s.grad.copy()
        g[-1] *= 1.01  # alpha's, shape's or (poisson) the last coefficient's derivative 1% off
        return BlockSums(s.nll, g, s.hess, s.weight)

    monkeypatch.setattr(cls, "evaluate", evaluate)
    path, target, options = SAMPLE_FITS[family]
    args = [path, "-f", family, "-y", target] + [a for k, v in options.items() for a in (f"--{k}", v)]
    result = invoke("check-grad", *args)
    assert result.exit_code == 5
    assert "disagree with finite differences" in result.stderr


# -- output: families, JSON, plots ------------------------------------------------------------------------


def test_families_negbin_full_text(invoke):
    result = invoke("families", "negbin")
    assert result.exit_code == 0
    text = result.stdout
    lines = {line.split()[0]: line for line in text.splitlines()[1:8] if line.strip()}
    assert text.startswith("negbin: negative binomial (NB2) regression")
    assert "Var = mu + alpha mu^2" in lines["distribution"]
    assert "log(mu) = x'b" in lines["link"]
    assert "alpha > 0, optimised as log(alpha) and reported as alpha (theta = 1 / alpha)" in lines["parameters"]
    assert "lgamma(y_i + r)" in lines["NLL"] and "r = 1 / alpha" in lines["NLL"]
    assert "X^T ((mu - y) / (1 + alpha mu))" in lines["gradient"]
    assert "counts" in text.split("  target")[1].splitlines()[0]
    assert "convex        no" in text
    notes = text.split("Notes")[1]
    for part in ("d2/da2", "Per-row NLL", "R's ``theta``", "asymptotic series"):
        assert part in notes
    doc = json.loads(invoke("families", "negbin", "--format", "json").stdout)
    doc = doc[0] if isinstance(doc, list) else doc
    assert doc["convex"] is False and doc["name"] == "negbin" and doc["nll"] in lines["NLL"]


def test_families_negbin_documented_derivatives_are_right():
    """The derivative formulas the negbin notes print, evaluated, against mpmath differences."""
    mpmath = pytest.importorskip("mpmath")
    from scipy.special import digamma, expit, polygamma

    mp = mpmath.mp
    mp.dps = 40
    y, eta, a = 4.0, 1.1, math.log(0.6)
    r, s = math.exp(-a), a + eta
    p, soft = expit(s), math.log1p(math.exp(s))
    dg = digamma(y + r) - digamma(r)
    tg = polygamma(1, y + r) - polygamma(1, r)
    printed = {
        "d/d eta": (r + y) * p - y,
        "d/da": r * dg - y - r * soft + (r + y) * p,
        "d2/d eta2": (r + y) * p * (1 - p),
        "d2/d eta da": (r + y) * p * (1 - p) - r * p,
        "d2/da2": -r * dg - r * r * tg + r * soft - 2 * r * p + (r + y) * p * (1 - p),
    }

    def nll(e, t):
        rr, mu = 1 / mpmath.exp(t), mpmath.exp(e)
        return -(mpmath.loggamma(y + rr) - mpmath.loggamma(rr) - mpmath.loggamma(y + 1)
                 + rr * mpmath.log(rr / (rr + mu)) + y * mpmath.log(mu / (rr + mu)))

    orders = {"d/d eta": (1, 0), "d/da": (0, 1), "d2/d eta2": (2, 0), "d2/d eta da": (1, 1), "d2/da2": (0, 2)}
    for name, order in orders.items():
        assert rel(printed[name], float(mpmath.diff(nll, (eta, a), order))) < 1e-12, name


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_json_lists_the_ancillary_parameter_with_a_log_scale_interval(fit_json, family):
    path, target, options = SAMPLE_FITS[family]
    args = [a for k, v in options.items() for a in (f"--{k}", v)]
    doc, _ = fit_json(path, "--family", family, "-y", target, *args)
    names = [p["name"] for p in doc["parameters"]]
    assert all(p["class"] is None for p in doc["parameters"])
    if family == "poisson":
        assert "alpha" not in names and "shape" not in names
        return
    last = doc["parameters"][-1]
    assert last["name"] == {"negbin": "alpha", "gamma": "shape"}[family] and names.count(last["name"]) == 1
    assert last["z"] is None and last["p_value"] is None  # no test of a positive parameter against 0
    assert last["estimate"] > 0 and last["std_error"] > 0
    # the interval is a Wald interval for the log, mapped back: estimate * exp(+-1.96 se / estimate)
    half = 1.959963984540054 * last["std_error"] / last["estimate"]
    assert rel(last["ci_low"], last["estimate"] * math.exp(-half)) < 1e-9
    assert rel(last["ci_high"], last["estimate"] * math.exp(half)) < 1e-9
    cov = np.array(doc["cov"])
    assert rel(math.sqrt(cov[-1, -1]), last["std_error"]) < 1e-12
    assert doc["exposure"] == options.get("exposure")


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_plot_writes_a_png(tmp_path, invoke, family):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    path, target, options = SAMPLE_FITS[family]
    args = [a for k, v in options.items() for a in (f"--{k}", v)]
    out = tmp_path / "trace.png"
    result = invoke("fit", path, "-f", family, "-y", target, *args, "--plot", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(out)
    assert image.shape[:2] == (450, 1000) and image[..., :3].std() > 0.05


# -- bad input ------------------------------------------------------------------------------------------


def one_sentence_error(result, *parts: str) -> None:
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in result.stderr, (part, result.stderr)


@pytest.mark.parametrize(
    "family, value, parts",
    [
        ("poisson", "-1", ["has -1 in data row 3", "counts"]),
        ("negbin", "1.5", ["has 1.5 in data row 3", "whole numbers"]),
        ("poisson", "many", ["not numeric: data row 3 has 'many'"]),
        ("negbin", "two", ["not numeric: data row 3 has 'two'"]),
        ("gamma", "0", ["has 0 in data row 3", "positive numbers"]),
        ("gamma", "-2.5", ["has -2.5 in data row 3", "positive numbers"]),
        ("gamma", "big", ["not numeric: data row 3 has 'big'"]),
    ],
)
def test_bad_target_is_one_sentence_naming_the_row(invoke, family, value, parts):
    data = f"x,y\n1,2\n2,3\n3,{value}\n4,1\n5,6\n"
    one_sentence_error(invoke("fit", "-", "--family", family, input=data), "target column 'y'", *parts)


@pytest.mark.parametrize("value", ["0", "-3"])
@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_exposure_that_is_not_positive_names_the_row(invoke, family, value):
    data = f"x,t,y\n1,1,2\n2,2,3\n3,1,1\n4,{value},1\n5,1,6\n"
    one_sentence_error(invoke("fit", "-", "--family", family, "--exposure", "t", input=data),
                       "exposure column 't'", "data row 4", f"({value})")


@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_exposure_needs_a_log_link(invoke, family):
    data = "x,t,y\n1,1,0\n2,2,1\n3,1,1\n4,2,0\n"
    one_sentence_error(invoke("fit", "-", "--family", family, "--exposure", "t", input=data),
                       "--exposure", f"{family}'s link is not the log", "--offset")


def test_offset_does_not_apply_to_categorical(invoke):
    data = "x,o,y\n1,1,a\n2,2,b\n3,1,c\n4,2,a\n"
    one_sentence_error(invoke("fit", "-", "--family", "categorical", "--offset", "o", input=data),
                       "--offset does not apply to categorical")


def test_simulate_refuses_the_ancillary_of_another_family(invoke):
    result = invoke("simulate", "--family", "poisson", "--coef", "1", "--alpha", "0.5", "--n", "10")
    assert result.exit_code == 2 and "--alpha" in result.stderr and result.stderr.count("\n") == 1


# -- the families at extreme linear predictors, alphas and counts, against mpmath ------------------------


def mp_nll(family: str, y: float, eta, t):
    """The per-row NLL in mpmath: poisson(y; e^eta), NB2(y; mean e^eta, alpha = e^t),
    gamma(y; mean e^eta, shape e^t)."""
    import mpmath

    y, mu = mpmath.mpf(y), mpmath.exp(eta)
    if family == "poisson":
        return mu - y * eta + mpmath.loggamma(y + 1)
    if family == "negbin":
        r = 1 / mpmath.exp(t)
        return -(mpmath.loggamma(y + r) - mpmath.loggamma(r) - mpmath.loggamma(y + 1)
                 + r * mpmath.log(r / (r + mu)) + y * mpmath.log(mu / (r + mu)))
    k = mpmath.exp(t)
    return -((k - 1) * mpmath.log(y) - y * k / mu - mpmath.loggamma(k) - k * mpmath.log(mu / k))


def mp_reference(family: str, y: float, eta: float, t: float | None):
    """The NLL, gradient and Hessian in (eta[, t]) by mpmath's differences at 330 digits (enough
    for exp(-600) next to terms of size 600)."""
    import mpmath

    with mpmath.workdps(330):
        if t is None:
            f = lambda e: mp_nll(family, y, e, None)  # noqa: E731
            return float(f(eta)), np.array([float(mpmath.diff(f, eta))]), np.array([[float(mpmath.diff(f, eta, 2))]])
        f = lambda e, s: mp_nll(family, y, e, s)  # noqa: E731
        d = {o: float(mpmath.diff(f, (eta, t), o)) for o in [(1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]}
        return float(f(eta, t)), np.array([d[1, 0], d[0, 1]]), np.array([[d[2, 0], d[1, 1]], [d[1, 1], d[0, 2]]])


def extreme_errors(family: str, y: float, eta: float, t: float | None):
    """mlefit's NLL, gradient and Hessian of one row (the design [[1]]) against mpmath: relative
    errors, the derivatives' measured as check-grad does (against sqrt(H_ii), sqrt(H_ii H_jj))."""
    fam = get_family(family)
    params = np.array([eta] if t is None else [eta, t])
    got = fam.evaluate(params, np.ones((1, 1)), np.array([float(y)]))
    nll, grad, hess = mp_reference(family, y, eta, t)
    root = np.sqrt(np.abs(np.diag(hess)))
    e_nll = abs(got.nll - nll) / abs(nll)
    e_grad = np.abs(got.grad - grad) / np.maximum.reduce([np.abs(grad), root, np.full_like(root, 1e-300)])
    e_hess = np.abs(got.hess - hess) / np.maximum.reduce([np.abs(hess), np.outer(root, root), np.full_like(hess, 1e-300)])
    return e_nll, e_grad, e_hess, got, (nll, grad, hess)


@pytest.mark.parametrize("y", [0.0, 3.0, 1e9])
@pytest.mark.parametrize("eta", [-600.0, 600.0, "near log y"])
def test_poisson_at_extreme_linear_predictors(y, eta):
    pytest.importorskip("mpmath")
    eta = math.log(max(y, 1.0)) + 0.3 if eta == "near log y" else eta
    e_nll, e_grad, e_hess, got, _ = extreme_errors("poisson", y, eta, None)
    assert np.isfinite(got.nll) and np.all(np.isfinite(got.hess))
    assert e_nll < 1e-13 and e_grad.max() < 1e-13 and e_hess.max() < 1e-13  # measured 9e-15 at worst


NEGBIN_CASES = [
    (y, eta, alpha)
    for y in (0.0, 3.0, 1e9)
    for eta in (-600.0, 600.0, "near log y")
    for alpha in (1e-12, 1.0, 1e6)
]


@pytest.mark.parametrize("y, eta, alpha", NEGBIN_CASES)
def test_negbin_at_extreme_eta_alpha_and_counts(y, eta, alpha):
    pytest.importorskip("mpmath")
    eta = math.log(max(y, 1.0)) + 0.3 if eta == "near log y" else eta
    e_nll, e_grad, e_hess, got, (nll, grad, hess) = extreme_errors("negbin", y, eta, math.log(alpha))
    assert np.isfinite(got.nll) and np.all(np.isfinite(got.grad)) and np.all(np.isfinite(got.hess))
    assert e_nll < 1e-13  # measured 6e-14 at worst
    assert e_grad[0] < 1e-12 and e_hess[0, 0] < 1e-12  # the eta derivatives (measured 2e-16)
    if alpha == 1.0:
        assert e_grad.max() < 1e-11 and e_hess.max() < 1e-11  # measured 6e-12 at worst
    elif alpha == 1e6:
        # d2/da2 is of size r = 1e-6 and made of terms of size 1 (r [digamma(y + r) - digamma(r)]):
        # measured 1.6e-10, the rounding of those terms
        assert e_grad.max() < 1e-11 and e_hess.max() < 1e-9
    else:
        # at alpha = 1e-12 the log-alpha derivatives, of size alpha mu^2, are differences of terms of
        # size mu + y: they carry an absolute rounding error of about eps (mu + y), not relative
        # accuracy (measured 7e-16 on values of 1e-12)
        size = 1.0 + y + min(math.exp(eta), 1e300)
        assert np.abs(got.grad[1] - grad[1]) < 1e-14 * size
        assert np.max(np.abs(got.hess[:, 1] - hess[:, 1])) < 1e-14 * size


GAMMA_CASES_EXTREME = [
    (y, eta, shape)
    for y in (1e-3, 2.0, 1e9)
    for eta in (-600.0, "near log y")
    for shape in (0.01, 2.0, 1e6)
]


@pytest.mark.parametrize("y, eta, shape", GAMMA_CASES_EXTREME)
def test_gamma_at_extreme_linear_predictors(y, eta, shape):
    pytest.importorskip("mpmath")
    eta = math.log(y) + 0.3 if eta == "near log y" else eta
    e_nll, e_grad, e_hess, got, _ = extreme_errors("gamma", y, eta, math.log(shape))
    assert e_nll < 1e-12 and e_grad.max() < 1e-12 and e_hess.max() < 1e-12  # measured 6e-14 at worst


@pytest.mark.parametrize("y, eta", [(2.0, 600.0), (1.0, 40.0)])
def test_gamma_where_y_over_mu_underflows(y, eta):
    pytest.importorskip("mpmath")
    e_nll, e_grad, e_hess, got, _ = extreme_errors("gamma", y, eta, math.log(2.0))
    assert np.all(np.isfinite(got.grad))
    assert e_nll < 1e-12 and e_grad.max() < 1e-12 and e_hess.max() < 1e-12


def test_negbin_fit_of_huge_counts():
    """Counts near 1e9 (mu ~ 1e9, alpha ~ 0.01): NB2's lgamma terms are of size 2e10 and cancel.
    The coefficients against statsmodels' GLM NegativeBinomial at mlefit's alpha (IRLS, no lgamma);
    alpha against a maximisation of the NLL evaluated by mpmath at those coefficients."""
    mpmath = pytest.importorskip("mpmath")
    from scipy import optimize

    rng = np.random.default_rng(4)
    n = 300
    x = rng.normal(size=n)
    y = rng.poisson(rng.gamma(100.0, np.exp(20.7 + 0.2 * x) / 100.0)).astype(float)
    res = mlefit.fit(X=x[:, None], y=y, family="negbin")
    assert res.converged and y.min() > 1e8
    alpha = res.params[-1]
    X = sm.add_constant(x[:, None])
    glm = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=alpha)).fit(tol=1e-15, maxiter=200)
    assert rel(res.params[:-1], glm.params) < 1e-10
    eta = X @ res.params[:-1]

    def nll(t):
        with mpmath.workdps(40):
            return float(sum(mp_nll("negbin", yi, mpmath.mpf(ei), mpmath.mpf(t)) for yi, ei in zip(y, eta)))

    found = optimize.minimize_scalar(nll, bracket=(math.log(alpha) - 0.1, math.log(alpha) + 0.1), tol=1e-12)
    assert rel(alpha, math.exp(found.x)) < 1e-6
    assert rel(res.nll, nll(math.log(alpha))) < 1e-13
