"""mlefit dist: distribution fits against scipy.stats (estimates, standard errors, goodness of fit),
the support rules, the listing of every distribution, the JSON, CSV and table layouts, the plot."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import scipy.optimize
import scipy.stats as st

import mlefit
from mlefit.dist import Sample, chi_squared, continuous_statistics, count_cells, log_tails
from mlefit.families import DISTRIBUTION_NAMES, FAMILY_NAMES
from mlefit.families.distributions import DISTRIBUTIONS

from conftest import SAMPLES

CLAIMS = str(SAMPLES / "claims.csv")
VISITS = str(SAMPLES / "clinic_visits.csv")


def tight(func, x0, args=(), disp=0):
    """scipy's fit with a tight Nelder-Mead (its default stops at xtol 1e-4)."""
    return scipy.optimize.fmin(func, x0, args=args, xtol=1e-13, ftol=1e-14, maxiter=100_000, maxfun=200_000, disp=0)


def numerical_se(logpdf, theta, y, w=None):
    """Standard errors from the inverse of a central-difference Hessian of ``sum w logpdf(y; theta)``."""
    theta = np.asarray(theta, dtype=float)
    w = np.ones(len(y)) if w is None else w
    h = 1e-4 * np.abs(theta)
    k = len(theta)

    def f(t):
        return float(w @ logpdf(y, *t))

    H = np.empty((k, k))
    f0 = f(theta)
    for i in range(k):
        ei = np.eye(k)[i] * h[i]
        H[i, i] = (f(theta + ei) - 2 * f0 + f(theta - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.eye(k)[j] * h[j]
            H[i, j] = H[j, i] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    return np.sqrt(np.diag(np.linalg.inv(-H)))


def estimates(fits, name):
    entry = fits[name]
    assert entry.status == "fitted" and entry.converged, entry.message
    return np.array([p.estimate for p in entry.parameters]), np.array([p.std_error for p in entry.parameters])


# -- continuous distributions against scipy.stats' fit ---------------------------------------------------

RNG = np.random.default_rng(20261129)
POSITIVE = RNG.gamma(2.5, 3.0, 1500)
HEAVY = 2.0 + 1.5 * RNG.standard_t(4.0, 1500)
PROPORTIONS = RNG.beta(2.0, 5.0, 1500)

# name, data, scipy's fit (reported order), the log-density of the reported parameters
CONTINUOUS = {
    "normal": (HEAVY, lambda y: st.norm.fit(y), lambda y, m, s: st.norm.logpdf(y, m, s)),
    "gamma": (
        POSITIVE, lambda y: np.take(st.gamma.fit(y, floc=0, optimizer=tight), [0, 2]),
        lambda y, a, s: st.gamma.logpdf(y, a, scale=s),
    ),
    "beta": (
        PROPORTIONS, lambda y: np.take(st.beta.fit(y, floc=0, fscale=1, optimizer=tight), [0, 1]),
        lambda y, a, b: st.beta.logpdf(y, a, b),
    ),
    "student_t": (
        HEAVY, lambda y: np.take(st.t.fit(y, optimizer=tight), [1, 2, 0]),
        lambda y, m, s, df: st.t.logpdf(y, df, m, s),
    ),
    "lognormal": (
        POSITIVE, lambda y: (lambda s, loc, scale: (math.log(scale), s))(*st.lognorm.fit(y, floc=0, optimizer=tight)),
        lambda y, m, s: st.lognorm.logpdf(y, s, scale=np.exp(m)),
    ),
    "exponential": (
        POSITIVE, lambda y: [1 / st.expon.fit(y, floc=0)[1]], lambda y, rate: st.expon.logpdf(y, scale=1 / rate),
    ),
    "weibull": (
        POSITIVE, lambda y: np.take(st.weibull_min.fit(y, floc=0, optimizer=tight), [0, 2]),
        lambda y, k, s: st.weibull_min.logpdf(y, k, scale=s),
    ),
    "loglogistic": (
        POSITIVE, lambda y: np.take(st.fisk.fit(y, floc=0, optimizer=tight), [0, 2]),
        lambda y, k, s: st.fisk.logpdf(y, k, scale=s),
    ),
    "logistic": (HEAVY, lambda y: st.logistic.fit(y, optimizer=tight), lambda y, m, s: st.logistic.logpdf(y, m, s)),
    "gumbel": (POSITIVE, lambda y: st.gumbel_r.fit(y, optimizer=tight), lambda y, m, s: st.gumbel_r.logpdf(y, m, s)),
}


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_continuous_estimates_and_standard_errors_agree_with_scipy(name):
    y, scipy_fit, logpdf = CONTINUOUS[name]
    fits = mlefit.fit_distributions(y, families=name)
    est, se = estimates(fits, name)
    ref = np.asarray(scipy_fit(y), dtype=float)
    # scipy's optimum is no better than ours, so where it converged the two agree
    assert np.sum(logpdf(y, *est)) >= np.sum(logpdf(y, *ref)) - 1e-9
    np.testing.assert_allclose(est, ref, rtol=1e-6)
    np.testing.assert_allclose(fits[name].loglik, np.sum(logpdf(y, *est)), rtol=1e-12)
    np.testing.assert_allclose(se, numerical_se(logpdf, est, y), rtol=1e-4)


# -- right-censored times against lifelines' univariate fitters ------------------------------------------


def censored_times(seed=11, n=800):
    rng = np.random.default_rng(seed)
    t = 5.0 * rng.weibull(1.4, n)
    limit = rng.uniform(0.0, 10.0, n)
    return np.minimum(t, limit), t <= limit


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_censored_fits_agree_with_lifelines(weighted):
    lifelines = pytest.importorskip("lifelines")
    times, event = censored_times()
    w = np.random.default_rng(3).integers(1, 4, len(times)).astype(float) if weighted else None
    fits = mlefit.fit_distributions(times, event=event, weights=w)
    assert fits.n_events == (event.sum() if w is None else w @ event)
    tight_options = {"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000}
    cases = {
        # name: fitter, its parameters in our order (estimate, standard error) from the fitter
        "weibull": (lifelines.WeibullFitter, lambda f: ([f.rho_, f.lambda_], f.summary.loc[["rho_", "lambda_"], "se(coef)"])),
        "lognormal": (lifelines.LogNormalFitter, lambda f: ([f.mu_, f.sigma_], f.summary.loc[["mu_", "sigma_"], "se(coef)"])),
        # lifelines' lambda_ is the mean: the rate is its inverse, se(rate) = se(mean) / mean^2
        "exponential": (
            lifelines.ExponentialFitter,
            lambda f: ([1 / f.lambda_], f.summary.loc[["lambda_"], "se(coef)"] / f.lambda_**2),
        ),
    }
    for name, (fitter, read) in cases.items():
        f = fitter()
        f.fit(times, event, weights=w, **({} if name == "exponential" else {"fit_options": tight_options}))
        ref, ref_se = read(f)
        est, se = estimates(fits, name)
        np.testing.assert_allclose(est, ref, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(se, np.asarray(ref_se, dtype=float), rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(fits[name].loglik, f.log_likelihood_, rtol=1e-10, err_msg=name)
        assert fits[name].statistics == {"ks": None, "cvm": None, "ad": None}


def test_censored_loglogistic_is_the_maximum_of_scipys_censored_likelihood():
    times, event = censored_times(seed=4)
    fits = mlefit.fit_distributions(times, event=event, families="loglogistic")
    est, se = estimates(fits, "loglogistic")

    def loglik(t, k, s):  # an event's density, a censored time's survival function
        return np.where(event, st.fisk.logpdf(t, k, scale=s), st.fisk.logsf(t, k, scale=s))

    res = scipy.optimize.minimize(
        lambda v: -np.sum(loglik(times, *v)), [1.0, 1.0], method="Nelder-Mead",
        options=dict(xatol=1e-13, fatol=1e-14, maxiter=100_000, maxfev=200_000),
    )
    np.testing.assert_allclose(est, res.x, rtol=1e-6)
    assert fits["loglogistic"].loglik == pytest.approx(-res.fun, rel=1e-12)
    np.testing.assert_allclose(se, numerical_se(loglik, est, times), rtol=1e-4)


def test_censored_data_fit_only_the_distributions_that_take_censoring(invoke, tmp_path):
    times, event = censored_times()
    doc = mlefit.fit_distributions(times, event=event).to_dict()
    status = {d["name"]: d["status"] for d in doc["distributions"]}
    assert {n for n, v in status.items() if v == "fitted"} == {"weibull", "lognormal", "exponential", "loglogistic"}
    gamma = next(d for d in doc["distributions"] if d["name"] == "gamma")
    assert gamma["message"] == "does not take right-censored values (--event)"
    assert doc["n_events"] == int(event.sum()) and doc["n_censored"] == int((~event).sum())
    assert "not defined for right-censored data" in doc["statistics_note"]
    path = tmp_path / "times.csv"
    path.write_text("t,e\n" + "".join(f"{t!r},{int(e)}\n" for t, e in zip(times.tolist(), event)))
    result = invoke("dist", str(path), "-y", "t", "--event", "e", "-f", "weibull,gamma")
    assert result.exit_code == 2
    assert result.stderr == "Error: gamma: does not take right-censored values (--event).\n"


# -- discrete distributions against scipy.stats.fit -----------------------------------------------------

COUNTS = RNG.negative_binomial(2.0, 0.3, 2000).astype(float)
POISSON_COUNTS = RNG.poisson(3.5, 2000).astype(float)


def scipy_discrete_fit(dist, y, bounds, guess):
    """scipy.stats.fit with a tight local optimiser started at ``guess``."""

    def optimizer(fun, bounds, *, integrality=None):
        return scipy.optimize.minimize(
            fun, [*guess, 0.0], method="Nelder-Mead", bounds=bounds,  # loc held at 0 by its bounds
            options=dict(xatol=1e-13, fatol=1e-14, maxiter=100_000, maxfev=200_000),
        )

    res = st.fit(dist, y, bounds=bounds, optimizer=optimizer)
    assert res.success and res.params.loc == 0
    return tuple(res.params)[:-1]


def test_poisson_negbin_geometric_agree_with_scipy():
    fits = mlefit.fit_distributions(COUNTS)
    assert [f.name for f in fits.fits if f.status == "fitted"] == ["negbin", "geometric", "poisson"]
    # negbin: scipy's nbinom(n, p) with mean = n (1 - p) / p and alpha = 1 / n
    n, p = scipy_discrete_fit(st.nbinom, COUNTS, {"n": (0.01, 100), "p": (1e-6, 1 - 1e-6)}, [2.0, 0.3])
    est, se = estimates(fits, "negbin")
    np.testing.assert_allclose(est, [n * (1 - p) / p, 1 / n], rtol=1e-6)
    nb_logpmf = lambda y, m, a: st.nbinom.logpmf(y, 1 / a, 1 / (1 + a * m))  # noqa: E731
    np.testing.assert_allclose(se, numerical_se(nb_logpmf, est, COUNTS), rtol=1e-4)
    # geometric on 0, 1, 2, ...: scipy's geom shifted by one
    (q,) = scipy_discrete_fit(st.geom, COUNTS + 1, {"p": (1e-6, 1 - 1e-6)}, [0.2])
    est, se = estimates(fits, "geometric")
    np.testing.assert_allclose(est, [q], rtol=1e-6)
    np.testing.assert_allclose(se, numerical_se(lambda y, p: st.geom.logpmf(y, p, loc=-1), est, COUNTS), rtol=1e-4)
    # poisson
    (lam,) = scipy_discrete_fit(st.poisson, COUNTS, {"mu": (0.01, 100)}, [4.0])
    est, se = estimates(fits, "poisson")
    np.testing.assert_allclose(est, [lam], rtol=1e-6)
    np.testing.assert_allclose(se, numerical_se(lambda y, m: st.poisson.logpmf(y, m), est, COUNTS), rtol=1e-4)
    for name, logpmf in (("negbin", nb_logpmf), ("poisson", st.poisson.logpmf)):
        np.testing.assert_allclose(fits[name].loglik, np.sum(logpmf(COUNTS, *estimates(fits, name)[0])), rtol=1e-12)


def test_negbin_without_overdispersion_is_at_the_boundary_and_equals_poisson():
    fits = mlefit.fit_distributions(np.tile([2.0, 3.0, 3.0, 4.0], 30))  # variance below the mean
    nb, po = fits["negbin"], fits["poisson"]
    assert nb.converged and "boundary" in nb.message
    assert nb.parameters[0].estimate == pytest.approx(po.parameters[0].estimate, rel=1e-12)
    assert math.isnan(nb.parameters[1].std_error) and not math.isnan(nb.parameters[0].std_error)
    assert nb.loglik == pytest.approx(po.loglik, rel=1e-12)


def test_student_t_on_light_tails_is_at_the_boundary_of_the_normal():
    y = np.random.default_rng(3).uniform(-1, 1, 500)  # lighter tails than any t
    fits = mlefit.fit_distributions(y, families="normal,student_t")
    t, normal = fits["student_t"], fits["normal"]
    assert t.converged and "boundary infinity" in t.message
    np.testing.assert_allclose([p.estimate for p in t.parameters[:2]], [p.estimate for p in normal.parameters], rtol=1e-7)
    assert t.loglik == pytest.approx(normal.loglik, rel=1e-12)
    assert math.isnan(t.parameters[2].std_error)


# -- inference on the reported scale ---------------------------------------------------------------------


def test_intervals_at_the_level_asked_for():
    y = POSITIVE
    fits = mlefit.fit_distributions(y, families="normal,gamma,logistic", level=0.9)
    q = st.norm.ppf(0.95)
    mean = fits["normal"].parameters[0]
    assert mean.ci_low == pytest.approx(mean.estimate - q * mean.std_error, rel=1e-14)
    # positive parameters: on the log scale
    for p in fits["gamma"].parameters:
        assert p.ci_low == pytest.approx(p.estimate * math.exp(-q * p.std_error / p.estimate), rel=1e-14)
        assert p.ci_high == pytest.approx(p.estimate * math.exp(q * p.std_error / p.estimate), rel=1e-14)
    geo = mlefit.fit_distributions(COUNTS, families="geometric", level=0.99)["geometric"].parameters[0]
    half = st.norm.ppf(0.995) * geo.std_error / (geo.estimate * (1 - geo.estimate))
    logit = math.log(geo.estimate / (1 - geo.estimate))
    assert geo.ci_low == pytest.approx(1 / (1 + math.exp(-(logit - half))), rel=1e-12)


def test_gamma_scale_is_the_family_mean_over_its_shape():
    fits = mlefit.fit_distributions(POSITIVE, families="gamma")
    family = mlefit.fit(X=np.empty((len(POSITIVE), 0)), y=POSITIVE, family="gamma")  # an intercept only
    shape, scale = (p.estimate for p in fits["gamma"].parameters)
    # (dist sums the rows in sorted order: the last digits may differ)
    assert shape == pytest.approx(family.params[1], rel=1e-13)
    assert scale == pytest.approx(math.exp(family.params[0]) / family.params[1], rel=1e-13)
    assert fits["gamma"].loglik == pytest.approx(family.loglik, rel=1e-15)


# -- goodness of fit --------------------------------------------------------------------------------------


def test_continuous_statistics_agree_with_scipy():
    y = POSITIVE
    fits = mlefit.fit_distributions(y, families="gamma,gumbel,normal")
    for f in fits.fits:
        dist = f.frozen
        ks = st.kstest(y, dist.cdf).statistic
        cvm = st.cramervonmises(y, dist.cdf).statistic
        x = np.sort(y)
        n = len(x)
        i = np.arange(1, n + 1)
        ad = -n - np.sum((2 * i - 1) * (dist.logcdf(x) + dist.logsf(x[::-1]))) / n
        assert f.statistics["ks"] == pytest.approx(ks, rel=1e-12)
        assert f.statistics["cvm"] == pytest.approx(cvm, rel=1e-10)
        assert f.statistics["ad"] == pytest.approx(ad, rel=1e-10)
    # the statistic scipy's goodness_of_fit computes for a fully given distribution
    gamma = fits["gamma"]
    shape, scale = (p.estimate for p in gamma.parameters)
    ref = st.goodness_of_fit(
        st.gamma, y, known_params={"a": shape, "loc": 0.0, "scale": scale}, statistic="ad", n_mc_samples=10,
        rng=np.random.default_rng(0),
    )
    assert gamma.statistics["ad"] == pytest.approx(ref.statistic, rel=1e-10)


def test_frequency_weights_are_repeated_rows():
    rng = np.random.default_rng(7)
    y = np.round(rng.gamma(3.0, 2.0, 300), 1)
    w = rng.integers(0, 4, 300)
    weighted = mlefit.fit_distributions(y, weights=w, families="gamma,normal,logistic")
    repeated = mlefit.fit_distributions(np.repeat(y, w), families="gamma,normal,logistic")
    for name in ("gamma", "normal", "logistic"):
        a, b = weighted[name], repeated[name]
        np.testing.assert_allclose([p.estimate for p in a.parameters], [p.estimate for p in b.parameters], rtol=1e-9)
        np.testing.assert_allclose([p.std_error for p in a.parameters], [p.std_error for p in b.parameters], rtol=1e-7)
        assert a.loglik == pytest.approx(b.loglik, rel=1e-11)
        for key in ("ks", "cvm", "ad"):  # ties included
            assert a.statistics[key] == pytest.approx(b.statistics[key], rel=1e-9), (name, key)
    assert weighted.n_obs == w.sum() and weighted.n_rows == 300


def test_log_tails_are_accurate_in_both_tails():
    x = np.array([1e-3, 0.5, 3.0, 40.0, 90.0])
    dist = st.gamma(2.5, scale=3.0)
    log_cdf, log_sf = log_tails(dist, x)
    np.testing.assert_allclose(log_cdf, dist.logcdf(x), rtol=1e-13)
    np.testing.assert_allclose(log_sf, dist.logsf(x), rtol=1e-13)


def test_chi_squared_cells_and_statistic():
    y = np.sort(POISSON_COUNTS)
    fits = mlefit.fit_distributions(POISSON_COUNTS, families="poisson")
    stats = fits["poisson"].statistics
    cells = stats["chi2_cells"]
    observed = np.array([c[2] for c in cells])
    expected = np.array([c[3] for c in cells])
    lam = fits["poisson"].parameters[0].estimate
    # the cells tile 0..inf, each expects at least 5, and they hold every observation
    assert cells[0][0] == 0 and cells[-1][1] is None
    assert all(a[1] + 1 == b[0] for a, b in zip(cells, cells[1:]))
    assert expected.min() >= 5 and observed.sum() == len(y)
    for lo, hi, o, e in cells:
        inside = (y >= lo) & (y <= (np.inf if hi is None else hi))
        assert o == inside.sum()
        mass = st.poisson.cdf(hi, lam) - st.poisson.cdf(lo - 1, lam) if hi is not None else st.poisson.sf(lo - 1, lam)
        assert e == pytest.approx(len(y) * mass, rel=1e-10)
    ref = st.chisquare(observed, expected, ddof=1)
    assert stats["chi2"] == pytest.approx(ref.statistic, rel=1e-12)
    assert stats["chi2_df"] == len(cells) - 2
    assert stats["chi2_p_value"] == pytest.approx(ref.pvalue, rel=1e-10)


def test_sparse_cells_merge_into_their_neighbours():
    # cells end at observed values once they expect 5 observations: 0 and 1 each, then 2..5; the
    # rest (above 5) expects fewer than 5, so 2..5 joins it in the last, open cell
    values = np.r_[np.zeros(30), np.ones(30), [5.0]]
    sample = Sample(values)
    dist = st.poisson(0.6)
    cells = count_cells(sample, dist)
    assert [c[:3] for c in cells] == [(0, 0, 30), (1, 1, 30), (2, None, 1)]
    assert [c[3] for c in cells] == pytest.approx([61 * dist.pmf(0), 61 * dist.pmf(1), 61 * dist.sf(1)], rel=1e-12)
    stats = chi_squared(sample, dist, 1)
    assert stats["chi2_df"] == 1 and stats["chi2_p_value"] == pytest.approx(st.chi2.sf(stats["chi2"], 1), rel=1e-12)
    # every observation in the first cell: no statistic
    stats = chi_squared(Sample(np.zeros(3)), dist, 1)
    assert stats["chi2_cells"] == [[0, None, 3.0, 3.0]] and math.isnan(stats["chi2"]) and stats["chi2_p_value"] is None


def test_statistics_of_a_given_sample():
    # a hand-made sample against the uniform CDF: D, W^2 and A^2 by their textbook formulas
    u = np.array([0.1, 0.4, 0.45, 0.8])
    sample = Sample(u)
    out = continuous_statistics(sample, np.log(u), np.log1p(-u))
    i = np.arange(1, 5)
    assert out["ks"] == pytest.approx(max(np.max(i / 4 - u), np.max(u - (i - 1) / 4)), rel=1e-15)
    assert out["cvm"] == pytest.approx(1 / 48 + np.sum((u - (2 * i - 1) / 8) ** 2), rel=1e-14)
    assert out["ad"] == pytest.approx(-4 - np.sum((2 * i - 1) * (np.log(u) + np.log1p(-u[::-1]))) / 4, rel=1e-14)


# -- which distributions are fitted ------------------------------------------------------------------------


def test_the_registry_lists_every_distribution_in_order():
    assert tuple(DISTRIBUTIONS) == DISTRIBUTION_NAMES
    # the list, at least
    for name in (
        "normal", "lognormal", "exponential", "gamma", "weibull", "loglogistic", "beta", "student_t", "logistic",
        "gumbel", "poisson", "negbin", "geometric",
    ):
        assert name in DISTRIBUTION_NAMES
    # the families of dist that are not regression families stay out of `mlefit fit --family`
    for name in ("beta", "student_t", "logistic", "gumbel", "geometric"):
        assert name not in FAMILY_NAMES


def test_default_listing_has_every_distribution_once_with_a_status(invoke):
    result = invoke("dist", CLAIMS, "-y", "amount", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    names = [d["name"] for d in doc["distributions"]]
    assert sorted(names) == sorted(DISTRIBUTION_NAMES)
    status = {d["name"]: d["status"] for d in doc["distributions"]}
    positive = [n for n, d in DISTRIBUTIONS.items() if d.support in ("real", "positive")]
    assert all(status[n] == "fitted" for n in positive)
    assert all(status[n] == "not_applicable" for n in DISTRIBUTION_NAMES if n not in positive)
    beta = next(d for d in doc["distributions"] if d["name"] == "beta")
    assert beta["message"] == "needs numbers strictly between 0 and 1; column 'amount' has 271.72 in data row 1"
    assert beta["parameters"] == [] and beta["loglik"] is None and beta["rank"] is None


def test_counts_fit_the_discrete_distributions_and_list_the_others(invoke):
    result = invoke("dist", VISITS, "-y", "visits", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["kind"] == "discrete" and doc["best"] == "negbin"
    status = {d["name"]: (d["status"], d["message"]) for d in doc["distributions"]}
    assert status["gamma"] == ("not_applicable", "needs positive numbers; column 'visits' has 0 in data row 5")
    assert status["normal"][0] == "not_applicable" and "counts" in status["normal"][1]
    assert [d["name"] for d in doc["distributions"][:3]] == ["negbin", "geometric", "poisson"]


def test_json_layout(invoke):
    result = invoke("dist", CLAIMS, "-y", "amount", "-f", "gamma,normal", "--format", "json", "--level", "0.9")
    doc = json.loads(result.stdout)
    assert set(doc) >= {"column", "n_obs", "n_rows", "level", "kind", "best", "summary", "distributions"}
    assert doc["level"] == 0.9 and doc["column"] == "amount" and doc["n_obs"] == 900
    gamma = doc["distributions"][0]
    assert set(gamma) >= {
        "name", "status", "rank", "best", "parameters", "loglik", "aic", "bic", "statistics", "converged", "message",
    }
    assert gamma["name"] == "gamma" and gamma["rank"] == 1 and gamma["best"] is True and gamma["converged"] is True
    assert [p["name"] for p in gamma["parameters"]] == ["shape", "scale"]
    assert all(set(p) == {"name", "estimate", "std_error", "ci_low", "ci_high"} for p in gamma["parameters"])
    assert set(gamma["statistics"]) == {"ks", "cvm", "ad"}
    api = mlefit.fit_distributions(CLAIMS, "amount", families="gamma,normal", level=0.9)
    assert gamma["parameters"][0]["estimate"] == api["gamma"].parameters[0].estimate
    assert gamma["aic"] == api["gamma"].aic and doc["distributions"][1]["name"] == "normal"


def test_csv_has_a_row_per_parameter(invoke):
    result = invoke("dist", VISITS, "-y", "visits", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    fitted = [r for r in rows if r["status"] == "fitted"]
    assert [(r["distribution"], r["parameter"]) for r in fitted] == [
        ("negbin", "mean"), ("negbin", "alpha"), ("geometric", "prob"), ("poisson", "lambda"),
    ]
    assert fitted[0]["best"] == "true" and fitted[0]["rank"] == "1" and fitted[2]["rank"] == "2"
    api = mlefit.fit_distributions(VISITS, "visits")
    assert float(fitted[1]["estimate"]) == api["negbin"].parameters[1].estimate
    assert float(fitted[0]["chi2"]) == api["negbin"].statistics["chi2"]
    assert any(r["status"] == "not_applicable" and r["parameter"] == "" for r in rows)


def test_table_ranks_and_marks_the_best(invoke):
    result = invoke("dist", CLAIMS, "-y", "amount", "-f", "normal,gamma,logistic")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    start = lines.index("Ranking") + 2
    ranking = [" ".join(line.split()[:-7]) for line in lines[start:start + 3]]  # before the 7 figures
    assert ranking == ["1 * gamma", "2 logistic", "3 normal"]


# -- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, values, message",
    [
        ("gamma", "2.5\n0\n3\n", "gamma: needs positive numbers; column 'y' has 0 in data row 2."),
        ("beta", "0.5\n0.2\n1.5\n", "beta: needs numbers strictly between 0 and 1; column 'y' has 1.5 in data row 3."),
        ("poisson", "1\n2.5\n3\n", "poisson: needs counts 0, 1, 2, ... (whole numbers, not negative); "
                                  "column 'y' has 2.5 in data row 2."),
        ("geometric", "3\n-1\n2\n", "geometric: needs counts 0, 1, 2, ... (whole numbers, not negative); "
                                    "column 'y' has -1 in data row 2."),
    ],
)
def test_values_outside_a_named_support_are_one_sentence(invoke, family, values, message):
    result = invoke("dist", "-", "-f", family, input="y\n" + values)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message}\n" and result.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["-f", "normal,poisson"], "mixes discrete (poisson) and continuous (normal) distributions"),
        (["-f", "normal,cauchy"], "unknown distribution 'cauchy'."),
        (["-f", "gamma,gamma"], "--family names gamma twice."),
        (["--level", "1.5"], "--level must be a number between 0 and 1 (for example 0.9); got 1.5."),
        (["-y", "nope"], "column 'nope' not found; available: x, y. Use --column to name one of them."),
        (["--weights", "w"], "weights column 'w' not found"),
        (["-f", "gamma", "--event", "x"], "gamma: does not take right-censored values (--event)."),
    ],
)
def test_bad_options_are_one_sentence(invoke, args, message):
    result = invoke("dist", "-", *args, input="x,y\n1,2\n0,3\n1,4\n")
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_censored_values_that_no_distribution_takes(invoke):
    result = invoke("dist", "-", "-y", "t", "--event", "e", input="t,e\n2,1\n-1,0\n3,1\n")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: no distribution applies to column 't': lognormal needs positive numbers; column 't' has -1 in "
        "data row 2.\n"
    )


def test_missing_and_text_values_name_their_row(invoke):
    result = invoke("dist", "-", "-y", "y", input="y,x\n1,1\n,2\n3,3\n")
    assert result.stderr == "Error: column 'y' has 1 missing value(s), the first in data row 2. Remove or fill those rows.\n"
    result = invoke("dist", "-", input="y\n1\nabc\n3\n")
    assert result.exit_code == 2 and result.stderr == "Error: column 'y' is not numeric: data row 2 has 'abc'.\n"


def test_a_constant_column_has_no_spread_to_fit(invoke):
    result = invoke("dist", "-", input="y\n2.5\n2.5\n2.5\n")
    assert result.exit_code == 2
    assert result.stderr == "Error: column 'y' holds one value only (2.5): a continuous distribution has no spread to fit.\n"


def test_a_distribution_that_fails_is_listed_with_its_reason(invoke):
    # three values: two-parameter fits work, student_t's three parameters do not
    result = invoke("dist", "-", "--format", "json", input="y\n-1.5\n0.25\n2\n")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    t = next(d for d in doc["distributions"] if d["name"] == "student_t")
    assert t["status"] == "failed" and t["message"].startswith("3 rows are too few for 3 parameters")
    assert t["parameters"] == [] and t["rank"] is None
    assert {d["name"] for d in doc["distributions"] if d["status"] == "fitted"} == {"normal", "logistic", "gumbel"}
    assert result.stderr == "Warning: student_t did not converge or failed; see the message of each.\n"


# -- the plot -------------------------------------------------------------------------------------------------


def test_plot_is_a_png_of_four_panels(invoke, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fits.png"
    result = invoke("dist", CLAIMS, "-y", "amount", "-f", "gamma,normal,gumbel", "--plot", str(out))
    assert result.exit_code == 0, result.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 800)
    counts = tmp_path / "counts.png"
    assert invoke("dist", VISITS, "-y", "visits", "--plot", str(counts)).exit_code == 0
    assert counts.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
