"""Survival families (weibull, exponential, lognormal, loglogistic) with right-censoring: golden fits against
lifelines and statsmodels on real censored data, the extreme tail against mpmath, every engine,
the CLI, simulation, recovery and prediction."""

from __future__ import annotations

import io
import json

import mpmath
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import statsmodels.api as sm

import mlefit
from mlefit.errors import FamilyError
from mlefit.families import get_family
from conftest import ROSSI

SURVIVAL = ("weibull", "exponential", "lognormal", "loglogistic")
FEATURES = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
RTOL = 1e-6


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return pd.read_csv(ROSSI)


def max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# -- golden: lifelines' AFT fitters and the Poisson GLM on Rossi's recidivism data ----------------


def lifelines_fit(family: str, frame: pd.DataFrame):
    """lifelines' fit with tight tolerances: coefficients in mlefit's order, the scale and their
    standard errors (lifelines estimates log(rho) = -log(scale) for Weibull, log(sigma) for the
    log-normal; the scale's standard error by the delta method), and the log-likelihood."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from lifelines import LogLogisticAFTFitter, LogNormalAFTFitter, WeibullAFTFitter

    if family == "weibull":
        # SLSQP (lifelines' choice for this model) to ftol 1e-16: its default 1e-10 stops at 1e-5
        model = WeibullAFTFitter().fit(frame, "week", "arrest", fit_options={"ftol": 1e-16, "maxiter": 1000})
        main, ancillary, sign = "lambda_", "rho_", -1.0
    elif family == "loglogistic":
        # T ~ LogLogistic(alpha = exp(x'a), beta): a are mlefit's b, beta the shape 1 / scale. Its
        # default BFGS stops 1e-4 short of the maximum log-likelihood (3% off in prio's coefficient);
        # L-BFGS-B to gtol 1e-12 reaches it
        model = LogLogisticAFTFitter()
        model._scipy_fit_method = "L-BFGS-B"
        model.fit(frame, "week", "arrest", fit_options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 5000})
        main, ancillary, sign = "alpha_", "beta_", -1.0
    else:
        # BFGS with gtol 1e-8 (on the mean NLL; tighter stops with a precision-loss failure)
        model = LogNormalAFTFitter().fit(frame, "week", "arrest", fit_options={"gtol": 1e-8})
        main, ancillary, sign = "mu_", "sigma_", 1.0
    names = ["Intercept", *FEATURES]
    coef = model.params_[main][names].to_numpy()
    coef_se = model.standard_errors_[main][names].to_numpy()
    scale = float(np.exp(sign * model.params_[ancillary]["Intercept"]))
    scale_se = scale * float(model.standard_errors_[ancillary]["Intercept"])
    return np.append(coef, scale), np.append(coef_se, scale_se), float(model.log_likelihood_)


@pytest.mark.parametrize("family", ["weibull", "lognormal", "loglogistic"])
def test_agrees_with_lifelines_aft_fitters_on_rossi(family, rossi):
    res = mlefit.fit(rossi, family, target="week", event="arrest", features=FEATURES)
    params, se, loglik = lifelines_fit(family, rossi)
    assert res.names == ("intercept", *FEATURES, "scale")
    assert res.converged
    # measured: weibull 9e-8 (coefficients and scale), 5e-9 (standard errors), 1e-16 (log-likelihood);
    # lognormal 1e-7, 4e-9, 1e-16; loglogistic 3e-8, 2e-9, 1e-16
    assert max_rel(res.params, params) < RTOL
    assert max_rel(res.se, se) < RTOL
    assert res.loglik == pytest.approx(loglik, rel=RTOL)
    assert res.target_counts == {"n_events": 114.0, "n_censored": 318.0}


def test_exponential_agrees_with_the_poisson_glm_of_the_events(rossi):
    """The exponential model's likelihood is, up to sum(delta log t), that of a Poisson model of the
    event indicator with offset log(t): ``delta ~ Poisson(t exp(-x'b))``. So the Poisson GLM's
    coefficients are -b, with the same standard errors."""
    res = mlefit.fit(rossi, "exponential", target="week", event="arrest", features=FEATURES)
    X = sm.add_constant(rossi[FEATURES].to_numpy(float))
    t, delta = rossi["week"].to_numpy(float), rossi["arrest"].to_numpy(float)
    glm = sm.GLM(delta, X, family=sm.families.Poisson(), offset=np.log(t)).fit(tol=1e-14, maxiter=100)
    assert res.names == ("intercept", *FEATURES)
    assert max_rel(res.params, -glm.params) < 1e-8
    assert max_rel(res.se, glm.bse) < 1e-8
    assert res.loglik == pytest.approx(glm.llf - delta @ np.log(t), rel=1e-10)


def test_exponential_is_the_weibull_with_scale_one(rossi):
    """The exponential NLL equals the Weibull NLL at log(scale) = 0, row for row."""
    res = mlefit.fit(rossi, "exponential", target="week", event="arrest", features=FEATURES)
    X = np.column_stack([np.ones(len(rossi)), rossi[FEATURES].to_numpy(float)])
    y = np.where(rossi["arrest"] == 1, 1.0, -1.0) * rossi["week"].to_numpy(float)
    weibull = get_family("weibull")
    assert weibull.nll(np.append(res.params, 0.0), X, y) == pytest.approx(res.nll, rel=1e-13)


def test_the_stated_formulas_are_the_code(rossi):
    """mlefit families' statements of the weibull and exponential gradient and Hessian, in numpy."""
    X = np.column_stack([np.ones(len(rossi)), rossi[FEATURES].to_numpy(float)])
    t, delta = rossi["week"].to_numpy(float), rossi["arrest"].to_numpy(float)
    y = np.where(delta == 1, t, -t)
    b, scale = 0.01 * np.arange(1.0, 9.0), 0.8
    z = (np.log(t) - X @ b) / scale
    fam = get_family("weibull")
    params = np.append(b, np.log(scale))
    g = fam.grad(params, X, y)
    np.testing.assert_allclose(g[:-1], X.T @ ((delta - np.exp(z)) / scale), rtol=1e-10)
    assert g[-1] == pytest.approx(np.sum(delta - z * (np.exp(z) - delta)), rel=1e-10)
    H = fam.hess(params, X, y)
    np.testing.assert_allclose(H[:-1, :-1], X.T @ (np.exp(z)[:, None] / scale**2 * X), rtol=1e-10)
    np.testing.assert_allclose(H[:-1, -1], X.T @ ((np.exp(z) * (1 + z) - delta) / scale), rtol=1e-10)
    assert H[-1, -1] == pytest.approx(np.sum(z * (np.exp(z) - delta) + z**2 * np.exp(z)), rel=1e-10)
    fam = get_family("exponential")
    mu = t * np.exp(-X @ b)
    assert fam.nll(b, X, y) == pytest.approx(np.sum(mu + delta * (X @ b)), rel=1e-12)
    np.testing.assert_allclose(fam.grad(b, X, y), X.T @ (delta - mu), rtol=1e-10)
    np.testing.assert_allclose(fam.hess(b, X, y), X.T @ (mu[:, None] * X), rtol=1e-10)


# -- the extreme tail -----------------------------------------------------------------------------------


def tail_reference(family: str, log_t: float, eta: float, scale: float):
    """mpmath (50 digits): a censored row's NLL -log S(t) and its derivatives in eta and log(scale)."""
    mpmath.mp.dps = 50
    z = (mpmath.mpf(log_t) - mpmath.mpf(eta)) / mpmath.mpf(scale)
    if family == "lognormal":
        survival = mpmath.ncdf(-z)
        nll = -mpmath.log(survival)
        g = mpmath.npdf(z) / survival  # d nll / dz
    elif family == "loglogistic":
        nll = mpmath.log1p(mpmath.exp(z))
        g = 1 / (1 + mpmath.exp(-z))
    else:
        nll = mpmath.exp(z)
        g = mpmath.exp(z)
    return float(nll), float(-g / scale), float(-z * g)


@pytest.mark.parametrize("family", SURVIVAL)
@pytest.mark.parametrize("scales", [40.0, 400.0])
def test_censored_row_far_in_the_tail_is_finite_and_exact(family, scales, rossi):
    """A censored row ``scales`` scales beyond its fitted median (log t = log median + scales *
    scale): NLL and gradient finite and equal to mpmath's to 1e-10, not log(1 - cdf) = log(0)."""
    if family != "lognormal" and scales > 700:
        pytest.skip("exp(z) of the extreme-value error overflows float64 beyond z = 709")
    res = mlefit.fit(rossi, family, target="week", event="arrest", features=FEATURES)
    fam = get_family(family)
    x = np.append(1.0, rossi.loc[0, FEATURES].to_numpy(float))[None, :]
    scale = res.params[-1] if fam.ancillary else 1.0
    median = float(fam.predict(res.params, x)[0])
    log_t = np.log(median) + scales * scale
    y = np.array([-np.exp(log_t)])  # censored
    params = fam.from_natural(res.params)
    eta = float(x[0] @ res.params[: x.shape[1]])
    with np.errstate(all="raise"):
        sums = fam.evaluate(params, x, y)
    nll, d_eta, d_s = tail_reference(family, np.log(-y[0]), eta, scale)
    assert np.isfinite(sums.nll) and np.all(np.isfinite(sums.grad)) and np.all(np.isfinite(sums.hess))
    assert sums.nll == pytest.approx(nll, rel=1e-10)
    expected = x[0] * d_eta if not fam.ancillary else np.append(x[0] * d_eta, d_s)
    np.testing.assert_allclose(sums.grad, expected, rtol=1e-10)


@pytest.mark.parametrize("z", [4.0, 4.5, 8.0, 40.0, 1e3, 1e6, -5.0, -40.0, 0.3])
def test_lognormal_inverse_mills_ratio_and_its_excess_equal_mpmath(z):
    """The censored log-normal row's g = phi(z) / Phi(-z) and h = g (g - z) to float64 precision
    on both sides of the switch to the continued fraction."""
    from mlefit.families.lognormal import inverse_mills

    mpmath.mp.dps = 60
    zm = mpmath.mpf(z)
    lam = mpmath.npdf(zm) / mpmath.ncdf(-zm)
    mills, excess = inverse_mills(np.array([z]))
    assert mills[0] == pytest.approx(float(lam), rel=2e-15)
    assert excess[0] == pytest.approx(float(lam - zm), rel=1e-13)


def test_lognormal_hessian_far_in_the_tail_equals_mpmath():
    """A censored row's Hessian, h = g (g - z) beyond the continued fraction's switch, as mpmath's."""
    fam = get_family("lognormal")
    x = np.array([[1.0, 0.5]])
    params = np.array([0.2, -0.4, np.log(0.8)])  # eta = 0, scale 0.8
    mpmath.mp.dps = 60
    for z in (6.0, 40.0, 300.0):
        y = np.array([-np.exp(0.8 * z)])
        zm = mpmath.log(mpmath.mpf(-y[0])) / mpmath.mpf(0.8)
        g = mpmath.npdf(zm) / mpmath.ncdf(-zm)
        h = g * (g - zm)
        H = fam.hess(params, x, y)
        assert H[0, 0] == pytest.approx(float(h / 0.64), rel=1e-12)
        assert H[0, 2] == pytest.approx(float((g + zm * h) / 0.8), rel=1e-12)
        assert H[2, 2] == pytest.approx(float(zm * g + zm**2 * h), rel=1e-12)


# -- the target -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", SURVIVAL)
def test_event_encoding_and_counts(family):
    fam = get_family(family)
    t = fam.encode(np.array([2.0, 3.5, 1.0, 4.0]), "week", event=np.array([True, False, True, False]))
    np.testing.assert_array_equal(t.y, [2.0, -3.5, 1.0, -4.0])
    np.testing.assert_array_equal(fam.count_rows(t.y, None), [2.0, 2.0])
    np.testing.assert_array_equal(fam.count_rows(t.y, np.array([1.0, 2.0, 3.0, 0.0])), [4.0, 2.0])
    times, event = fam.split_target(t.y)
    np.testing.assert_array_equal(times, [2.0, 3.5, 1.0, 4.0])
    np.testing.assert_array_equal(event, [1, 0, 1, 0])
    np.testing.assert_array_equal(fam.encode(np.array([2, 3])).y, [2.0, 3.0])  # no --event: all events
    # censoring keeps a time below its limit and censors one above at the limit
    np.testing.assert_array_equal(fam.censor(np.array([1.0, 5.0, 3.0]), np.array([2.0, 2.0, 3.0])), [1.0, -2.0, 3.0])


@pytest.mark.parametrize(
    "values, shown, row",
    [([3.0, 0.0, 2.0], "0", 3), ([3.0, 1.0, -2.5], "-2.5", 4), ([1.0, np.inf], "inf", 3)],
)
def test_times_must_be_positive(values, shown, row):
    rows = np.arange(2, 2 + len(values))
    with pytest.raises(FamilyError) as info:
        get_family("weibull").encode_target(np.array(values), "week", rows)
    assert str(info.value) == (
        f"target column 'week' has {shown} in data row {row}; weibull needs positive survival times "
        "(an event cannot happen at time zero or before it)."
    )


@pytest.mark.parametrize(
    "week, fragment",
    [
        ("0", "target column 'week' has 0 in data row 3; lognormal needs positive survival times"),
        ("-4", "target column 'week' has -4 in data row 3; lognormal needs positive survival times"),
        ("soon", "target column 'week' is not numeric: data row 3 has 'soon'; lognormal needs positive survival times"),
    ],
)
def test_bad_times_through_the_cli_name_the_row(tmp_path, invoke, rossi, week, fragment):
    path = tmp_path / "bad.csv"
    frame = rossi.head(30).astype({"week": object})
    frame.loc[2, "week"] = week
    frame.to_csv(path, index=False)
    result = invoke("fit", path, "-f", "lognormal", "-y", "week", "--event", "arrest")
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {fragment}")
    assert "Traceback" not in result.stderr


def test_bad_event_value_is_named(tmp_path, invoke, rossi):
    path = tmp_path / "bad.csv"
    frame = rossi.head(30).astype({"arrest": object})
    frame.loc[4, "arrest"] = "maybe"
    frame.to_csv(path, index=False)
    result = invoke("fit", path, "-f", "weibull", "-y", "week", "--event", "arrest")
    assert result.exit_code == 2
    assert "event column 'arrest' has 'maybe' in data row 5" in result.stderr


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_no_observed_event_is_one_sentence(tmp_path, invoke, rossi, stream):
    path = tmp_path / "censored.csv"
    rossi.assign(arrest=0).to_csv(path, index=False)
    args = ["fit", path, "-f", "weibull", "-y", "week", "--event", "arrest"] + (["--stream"] if stream else [])
    result = invoke(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: no row has an observed event: every time is right-censored")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_huge_standard_error_of_the_scale_gives_the_interval_zero_to_infinity():
    from mlefit.inference import wald

    with np.errstate(all="raise"):
        se, z, p, low, high = wald(np.array([1e-3, 0.5]), np.diag([1.0, 1e6**2]), np.array([False, True]))
    assert low[1] == 0.0 and high[1] == np.inf and np.isnan(z[1])


# -- the report, JSON and engines --------------------------------------------------------------------------


def test_report_and_json_give_events_and_censored_rows(fit_json, invoke):
    doc, result = fit_json(ROSSI, "-f", "weibull", "-y", "week", "--event", "arrest")
    assert doc["n_events"] == 114 and doc["n_censored"] == 318 and doc["n_obs"] == 432
    assert [p["name"] for p in doc["parameters"]][-1] == "scale"
    text = invoke("fit", ROSSI, "-f", "weibull", "-y", "week", "--event", "arrest").stdout
    assert "events                                114" in text and "censored                              318" in text


def write_survival_csv(path, n: int = 900, seed: int = 3) -> None:
    """Simulated Weibull times, about 30% censored, a text feature whose levels appear late, an
    offset and integer weights (zeros included)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    g = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    g[:300] = "a"
    o = rng.normal(scale=0.3, size=n)
    log_t = 0.5 + 0.8 * x1 - 0.4 * x2 + 0.3 * (g == "b") + o + 0.7 * np.log(rng.standard_exponential(n))
    t = np.exp(log_t)
    limit = np.exp(rng.uniform(-1, 3, n))
    event = (t <= limit).astype(int)
    pd.DataFrame({
        "x1": x1, "x2": x2, "g": g, "o": o, "w": rng.integers(0, 4, n), "time": np.minimum(t, limit), "event": event,
    }).to_csv(path, index=False)


ENGINE_OPTIONS = [
    {}, {"weights": "w"}, {"cov": "robust"}, {"l2": 0.5}, {"offset": "o"}, {"intercept": False},
    {"features": "x1,x2"},
]
ENGINE_IDS = ["plain", "weights", "robust", "l2", "offset", "no-intercept", "numeric"]


@pytest.mark.parametrize("family", SURVIVAL)
@pytest.mark.parametrize("options", ENGINE_OPTIONS, ids=ENGINE_IDS)
def test_streamed_fit_equals_in_memory(tmp_path, family, options):
    path = tmp_path / "s.csv"
    write_survival_csv(path)
    # Newton stops within tol standard errors of the optimum, and the engines start from different
    # points (in memory: the family's start; streamed: the intercept-only fit), so they stop at
    # points up to 2 tol apart: tol 1e-10 compares the engines' sums, not where Newton stopped.
    options = {"target": "time", "event": "event", "tol": 1e-10, **options}
    if "features" not in options:
        options["features"] = [c for c in ("x1", "x2", "g") if c != options.get("offset")]
    mem = mlefit.fit(path, family, **options)
    streamed = mlefit.fit(path, family, stream=True, chunk_rows=97, **options)
    assert mem.converged and streamed.converged
    assert streamed.names == mem.names
    assert max_rel(streamed.params, mem.params) < 1e-10
    assert max_rel(streamed.se, mem.se) < 1e-10
    assert max_rel(streamed.nll, mem.nll) < 1e-10
    assert streamed.target_counts == mem.target_counts
    assert set(streamed.to_dict()) == set(mem.to_dict())


@pytest.mark.parametrize("family", SURVIVAL)
@pytest.mark.parametrize("options", [{}, {"weights": "w", "cov": "robust", "offset": "o"}], ids=["plain", "w-robust-offset"])
def test_dask_fit_equals_local(tmp_path, client, family, options):
    path = tmp_path / "s.csv"
    write_survival_csv(path)
    options = {"target": "time", "event": "event", "features": ["x1", "x2", "g"], "tol": 1e-10, **options}
    local = mlefit.fit(path, family, **options)
    remote = mlefit.fit(path, family, engine="dask", client=client, chunk_rows=100, **options)
    assert remote.names == local.names
    assert max_rel(remote.params, local.params) < 1e-10
    assert max_rel(remote.se, local.se) < 1e-10
    assert max_rel(remote.nll, local.nll) < 1e-10
    assert remote.target_counts == local.target_counts


def test_offset_rescales_the_times(rossi):
    """The AFT offset adds to x'b: an offset log(c) fits like the times divided by c (the
    log-likelihoods differ by the Jacobian, sum over events of log c)."""
    c = np.exp(np.random.default_rng(5).normal(size=len(rossi)))
    with_offset = rossi.assign(o=np.log(c))
    divided = rossi.assign(week=rossi["week"] / c)
    for family in SURVIVAL:
        a = mlefit.fit(with_offset, family, target="week", event="arrest", features=FEATURES, offset="o")
        b = mlefit.fit(divided, family, target="week", event="arrest", features=FEATURES)
        np.testing.assert_allclose(a.params, b.params, rtol=1e-8)
        np.testing.assert_allclose(a.se, b.se, rtol=1e-7)
        assert a.loglik == pytest.approx(b.loglik - rossi["arrest"] @ np.log(c), rel=1e-10)


def test_formula_with_an_event_column(rossi):
    res = mlefit.fit(rossi, "weibull", formula="week ~ fin + age + C(race) + np.log(prio + 1)", event="arrest")
    X = np.column_stack([
        np.ones(len(rossi)), rossi["fin"], rossi["age"], rossi["race"], np.log(rossi["prio"] + 1),
    ])
    plain = mlefit.fit(X=X[:, 1:], y=rossi["week"].to_numpy(float), event=rossi["arrest"].to_numpy() == 1, family="weibull")
    assert res.names[-1] == "scale" and len(res.names) == 6
    np.testing.assert_allclose(res.params, plain.params, rtol=1e-8)
    assert res.target_counts == {"n_events": 114.0, "n_censored": 318.0}


def test_robust_standard_errors_are_the_sandwich(rossi):
    res = mlefit.fit(rossi, "lognormal", target="week", event="arrest", features=FEATURES, cov="robust")
    fam = get_family("lognormal")
    X = np.column_stack([np.ones(len(rossi)), rossi[FEATURES].to_numpy(float)])
    y = np.where(rossi["arrest"] == 1, 1.0, -1.0) * rossi["week"].to_numpy(float)
    params = fam.from_natural(res.params)
    bread = np.linalg.inv(fam.hess(params, X, y))
    S = fam.scores(params, X, y)
    cov = bread @ (S.T @ S) @ bread
    jac = np.append(np.ones(len(params) - 1), res.params[-1])  # the scale by the delta method
    np.testing.assert_allclose(res.se, np.sqrt(np.diag(cov)) * jac, rtol=1e-8)


def test_l2_fit_is_stationary_for_the_penalised_objective(rossi):
    res = mlefit.fit(rossi, "weibull", target="week", event="arrest", features=FEATURES, l2=3.0)
    fam = get_family("weibull")
    X = np.column_stack([np.ones(len(rossi)), rossi[FEATURES].to_numpy(float)])
    y = np.where(rossi["arrest"] == 1, 1.0, -1.0) * rossi["week"].to_numpy(float)
    params = fam.from_natural(res.params)
    P = np.diag(np.r_[0.0, np.ones(len(FEATURES)), 0.0])  # neither the intercept nor the scale
    g = fam.grad(params, X, y) + 3.0 * P @ params
    H = fam.hess(params, X, y) + 3.0 * P
    assert np.sqrt(g @ np.linalg.solve(H, g)) < 1e-8  # the penalised objective's Newton decrement
    assert res.penalty == "l2" and np.isnan(res.aic)


# -- simulate, recover, predict, check-grad --------------------------------------------------------------------


def test_simulate_censors_the_asked_fraction_and_writes_the_event(invoke):
    result = invoke(
        "simulate", "-f", "lognormal", "--coef", "0.5,-0.3", "--scale", "0.6", "--n", "4000",
        "--censor-rate", "0.3", "--seed", "11",
    )
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame.columns) == ["x1", "x2", "y", "event"]
    assert set(frame["event"].unique()) == {0, 1}
    assert (frame["y"] > 0).all()
    assert abs((frame["event"] == 0).mean() - 0.3) < 0.02


def test_simulate_censors_at_a_column_of_the_design(tmp_path):
    design = pd.DataFrame({"x1": np.linspace(-1, 1, 200), "limit": np.full(200, 1.5)})
    frame = mlefit.simulate("weibull", [0.4], design=design, features="x1", censor_time="limit", seed=3)
    censored = frame["event"] == 0
    assert censored.any() and (~censored).any()
    assert np.all(frame.loc[censored, "y"] == 1.5) and np.all(frame.loc[~censored, "y"] <= 1.5)


@pytest.mark.parametrize("family", SURVIVAL)
def test_recovery_coverage_on_censored_data(family):
    """200 replications of n = 300 with 30% censoring: every parameter's 95% Wald interval covers
    its truth in 90-99% of the fits (the binomial sd of the coverage is 1.5%)."""
    ancillary = {"scale": 0.7} if get_family(family).ancillary else None
    rec = mlefit.recover(
        family, [0.5, -0.3], intercept=1.0, n=300, reps=200, censor_rate=0.3, seed=2026, ancillary=ancillary,
    )
    ok = np.array([s == "converged" for s in rec.status])
    assert ok.all()
    covered = (rec.ci_low <= rec.truth) & (rec.truth <= rec.ci_high)
    coverage = covered[ok].mean(axis=0)
    assert np.all((coverage >= 0.9) & (coverage <= 0.99)), dict(zip(rec.names, coverage))


def test_predict_gives_the_median_and_the_survival_probability(tmp_path, invoke, rossi):
    model = tmp_path / "m.json"
    assert invoke("fit", ROSSI, "-f", "weibull", "-y", "week", "--event", "arrest", "--save", model).exit_code == 0
    result = invoke("predict", model, ROSSI, "--at", "26")
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert list(out.columns[-2:]) == ["predicted_week", "survival_at_26"]
    res = mlefit.fit(rossi, "weibull", target="week", event="arrest")
    X = np.column_stack([np.ones(len(rossi)), rossi[list(res.feature_names[1:])].to_numpy(float)])
    shape, lam = 1 / res.params[-1], np.exp(X @ res.params[:-1])
    dist = st.weibull_min(shape, scale=lam)
    np.testing.assert_allclose(out["predicted_week"], dist.median(), rtol=1e-9)
    np.testing.assert_allclose(out["survival_at_26"], dist.sf(26.0), rtol=1e-9)
    bad = invoke("predict", model, ROSSI, "--at", "0")
    assert bad.exit_code == 2 and "--at must be a positive time; got 0." in bad.stderr


@pytest.mark.parametrize("family", ["lognormal", "exponential"])
def test_predict_survival_matches_scipy(family, rossi):
    res = mlefit.fit(rossi, family, target="week", event="arrest", features=FEATURES)
    fam = get_family(family)
    X = np.column_stack([np.ones(len(rossi)), rossi[FEATURES].to_numpy(float)])
    cols = fam.prediction_columns(res.params, X, levels=None, target="week", at=30.0)
    if family == "lognormal":
        dist = st.lognorm(res.params[-1], scale=np.exp(X @ res.params[:-1]))
    else:
        dist = st.expon(scale=np.exp(X @ res.params))
    np.testing.assert_allclose(cols["predicted_week"], dist.median(), rtol=1e-12)
    np.testing.assert_allclose(cols["survival_at_30"], dist.sf(30.0), rtol=1e-12)


def test_at_does_not_apply_to_other_models(tmp_path, invoke):
    from conftest import SAMPLES

    model = tmp_path / "m.json"
    invoke("fit", SAMPLES / "claims.csv", "-f", "gamma", "-y", "amount", "--save", model)
    result = invoke("predict", model, SAMPLES / "claims.csv", "--at", "3")
    assert result.exit_code == 2 and "--at does not apply to a gamma model." in result.stderr


def test_check_grad_and_plots_through_the_cli(tmp_path, invoke):
    pytest.importorskip("matplotlib")
    result = invoke("check-grad", ROSSI, "-f", "lognormal", "-y", "week", "--event", "arrest", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["passed"] is True
    trace = tmp_path / "trace.png"
    fit = invoke("fit", ROSSI, "-f", "weibull", "-y", "week", "--event", "arrest", "--plot", trace, "--quiet")
    assert fit.exit_code == 0 and trace.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recovery = tmp_path / "recovery.png"
    rec = invoke(
        "recover", "-f", "weibull", "--coef", "0.5", "--n", "200", "--reps", "5", "--censor-rate", "0.2",
        "--seed", "1", "--plot", recovery,
    )
    assert rec.exit_code == 0, rec.stderr
    assert recovery.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scale_option_does_not_apply_to_the_exponential(invoke):
    result = invoke("simulate", "-f", "exponential", "--coef", "0.5", "--scale", "2")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and "scale" in result.stderr
