"""Profile-likelihood intervals (mlefit.profile) against an independent computation.

The reference writes each family's NLL in numpy here, profiles it by constrained fits with
scipy.optimize.minimize (BFGS, analytic gradient, warm-started along a grid), and finds each
endpoint of ``2 (nll_p(v) - nll_hat) = chi2_1(level)`` with scipy.optimize.brentq between the
grid points that bracket it. Nothing of mlefit's is used but its answer.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import optimize, special, stats

import mlefit
from mlefit import profile as prof

RTOL = 1e-5


def _minimize(fun, x0):
    res = optimize.minimize(fun, x0, jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000})
    return res.x, res.fun


def reference_interval(nll, theta_hat, j, level=0.95, span=5.0, points=21, scale=None):
    """Endpoints of the profile interval of component ``j`` of ``nll`` (a function of the full
    vector returning ``(value, gradient)``), by a grid of constrained fits and brentq."""
    theta_hat, nll_hat = _minimize(nll, np.asarray(theta_hat, dtype=float))
    q = stats.chi2.ppf(level, 1)
    others = [k for k in range(len(theta_hat)) if k != j]
    starts = {}

    def profile(v, start):
        def fun(u):
            full = np.insert(u, j, v)
            f, g = nll(full)
            return f, g[others]

        u, f = _minimize(fun, start)
        return u, f

    def excess(v):
        nearest = min(starts, key=lambda w: abs(w - v))
        u, f = profile(v, starts[nearest])
        starts[v] = u
        return 2.0 * (f - nll_hat) - q

    se = scale if scale is not None else 1.0
    v_hat = theta_hat[j]
    starts[v_hat] = theta_hat[others]
    ends = []
    for side in (-1, 1):
        grid = v_hat + side * se * np.linspace(0.0, span, points)[1:]
        previous = v_hat
        for v in grid:
            if excess(v) > 0:
                ends.append(optimize.brentq(excess, previous, v, xtol=1e-14, rtol=1e-13))
                break
            previous = v
        else:
            ends.append(None)
    return ends[0], ends[1], theta_hat


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# -- the families' NLLs, written here -------------------------------------------------------------


def bernoulli_nll(X, y, w=None):
    w = np.ones(len(y)) if w is None else w

    def nll(b):
        eta = X @ b
        p = special.expit(eta)
        return float(w @ (np.logaddexp(0.0, eta) - y * eta)), X.T @ (w * (p - y))

    return nll


def gaussian_nll(X, y):
    """In (b, sigma): sigma itself, not its logarithm, so that the reference also checks the
    mapping of the endpoints to the reported scale."""
    n = len(y)

    def nll(theta):
        b, sigma = theta[:-1], theta[-1]
        if sigma <= 0:
            return math.inf, np.zeros_like(theta)
        r = y - X @ b
        rss = float(r @ r)
        f = n * math.log(sigma) + rss / (2 * sigma**2) + 0.5 * n * math.log(2 * math.pi)
        return f, np.append(-X.T @ r / sigma**2, n / sigma - rss / sigma**3)

    return nll


def categorical_nll(X, y, k):
    onehot = np.eye(k)[y]

    def nll(theta):
        W = np.vstack([np.zeros(X.shape[1]), theta.reshape(k - 1, X.shape[1])])
        eta = X @ W.T
        lse = special.logsumexp(eta, axis=1)
        p = np.exp(eta - lse[:, None])
        f = float(np.sum(lse - eta[np.arange(len(y)), y]))
        g = ((p - onehot)[:, 1:]).T @ X
        return f, g.ravel()

    return nll


def poisson_nll(X, y):
    def nll(b):
        eta = X @ b
        mu = np.exp(eta)
        return float(np.sum(mu - y * eta + special.gammaln(y + 1))), X.T @ (mu - y)

    return nll


def negbin_nll(X, y):
    """NB2 in (b, alpha) with alpha itself (not its log): the reference profiles alpha directly.
    The log-density is scipy.stats.nbinom's with n = 1 / alpha, p = 1 / (1 + alpha mu)."""

    def nll(theta):
        b, alpha = theta[:-1], theta[-1]
        if alpha <= 0:
            return math.inf, np.zeros_like(theta)
        mu = np.exp(X @ b)
        r = 1.0 / alpha
        f = -float(np.sum(stats.nbinom.logpmf(y, r, r / (r + mu))))
        gb = X.T @ ((mu - y) / (1.0 + alpha * mu))
        ga = float(np.sum(
            (mu - y) / (alpha * (1.0 + alpha * mu))
            - r * r * (special.digamma(r) - special.digamma(y + r) + np.log1p(alpha * mu))
        ))
        return f, np.append(gb, ga)

    return nll


# -- data -----------------------------------------------------------------------------------------


def rare_logistic(seed=1, n=50, intercept=-2.5, coef=1.0):
    """A small logistic data set with a rare outcome (5 events in 50 rows for seed 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = (rng.random(n) < special.expit(intercept + coef * x)).astype(float)
    return x, y


def test_bernoulli_rare_outcome_matches_reference_and_is_asymmetric():
    x, y = rare_logistic()
    res = mlefit.fit(X=x[:, None], y=y, family="bernoulli", ci="profile")
    X = np.column_stack([np.ones(len(y)), x])
    for j in range(2):
        lo, hi, _ = reference_interval(bernoulli_nll(X, y), res.params, j, scale=res.se[j])
        assert _rel(res.profile_ci_low[j], lo) < RTOL
        assert _rel(res.profile_ci_high[j], hi) < RTOL
    assert res.profile_status == (("found", "found"),) * 2
    # The Wald interval is symmetric by construction; the profile interval of the intercept reaches
    # much further towards rarer events than towards commoner ones.
    est, lo, hi = res.params[0], res.profile_ci_low[0], res.profile_ci_high[0]
    assert (est - lo) / (hi - est) > 1.3
    assert math.isclose(res.params[0] - res.ci_low[0], res.ci_high[0] - res.params[0], rel_tol=1e-12)
    assert lo < res.ci_low[0] and hi < res.ci_high[0]  # shifted, not just wider


def test_gaussian_sigma_and_coefficient_match_reference():
    rng = np.random.default_rng(3)
    n = 25
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    y = X @ np.array([1.0, 0.5, -0.3]) + 0.7 * rng.standard_normal(n)
    res = mlefit.fit(X=X[:, 1:], y=y, family="gaussian", ci="profile", profile=["x1", "sigma"])
    nll = gaussian_nll(X, y)
    for j in (1, 3):
        lo, hi, _ = reference_interval(nll, res.params, j, scale=res.se[j])
        assert _rel(res.profile_ci_low[j], lo) < RTOL
        assert _rel(res.profile_ci_high[j], hi) < RTOL
    # sigma's interval is skewed to the right, the coefficient's is not profiled beyond what was asked
    sigma, lo, hi = res.params[3], res.profile_ci_low[3], res.profile_ci_high[3]
    assert hi - sigma > 1.2 * (sigma - lo)
    assert np.isnan(res.profile_ci_low[[0, 2]]).all()
    assert res.profile_status[0] == ("not profiled", "not profiled")


def test_categorical_matches_reference():
    rng = np.random.default_rng(5)
    n, k = 120, 3
    x = rng.standard_normal(n)
    X = np.column_stack([np.ones(n), x])
    W = np.array([[0.0, 0.0], [0.3, 1.0], [-0.5, -0.8]])
    p = special.softmax(X @ W.T, axis=1)
    y = np.array([rng.choice(k, p=row) for row in p])
    res = mlefit.fit(X=x[:, None], y=y, family="categorical", ci="profile")
    nll = categorical_nll(X, y, k)
    for j in range(4):
        lo, hi, _ = reference_interval(nll, res.params, j, scale=res.se[j])
        assert _rel(res.profile_ci_low[j], lo) < RTOL
        assert _rel(res.profile_ci_high[j], hi) < RTOL


def test_level_changes_wald_and_profile_intervals():
    x, y = rare_logistic()
    res = mlefit.fit(X=x[:, None], y=y, family="bernoulli", ci="profile", level=0.9)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(res.ci_high - res.params, z * res.se, rtol=1e-14)
    X = np.column_stack([np.ones(len(y)), x])
    lo, hi, _ = reference_interval(bernoulli_nll(X, y), res.params, 1, level=0.9, scale=res.se[1])
    assert _rel(res.profile_ci_low[1], lo) < RTOL and _rel(res.profile_ci_high[1], hi) < RTOL
    wide = mlefit.fit(X=x[:, None], y=y, family="bernoulli", ci="profile", level=0.99)
    assert (wide.profile_ci_low < res.profile_ci_low).all() and (wide.profile_ci_high > res.profile_ci_high).all()
    assert res.level == 0.9 and res.to_dict()["level"] == 0.9


def test_weights_equal_repeated_rows():
    x, y = rare_logistic(seed=2, n=60, intercept=-1.5)
    w = np.random.default_rng(0).integers(1, 4, len(y)).astype(float)
    weighted = mlefit.fit(X=x[:, None], y=y, weights=w, family="bernoulli", ci="profile")
    reps = np.repeat(np.arange(len(y)), w.astype(int))
    repeated = mlefit.fit(X=x[reps, None], y=y[reps], family="bernoulli", ci="profile")
    np.testing.assert_allclose(weighted.profile_ci_low, repeated.profile_ci_low, rtol=1e-9)
    np.testing.assert_allclose(weighted.profile_ci_high, repeated.profile_ci_high, rtol=1e-9)


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "gaussian"])
def test_streamed_fit_gives_the_same_intervals(tmp_path, family):
    rng = np.random.default_rng(11)
    n = 300
    x1, x2 = rng.standard_normal(n), rng.standard_normal(n)
    eta = -1.0 + x1 - 0.5 * x2
    if family == "bernoulli":
        y = (rng.random(n) < special.expit(eta)).astype(int)
    elif family == "categorical":
        y = np.where(eta + rng.standard_normal(n) > 0, "b", np.where(rng.random(n) < 0.4, "c", "a"))
    else:
        y = eta + rng.standard_normal(n)
    path = tmp_path / "d.csv"
    with open(path, "w") as fh:
        fh.write("x1,x2,y\n")
        fh.writelines(f"{a!r},{b!r},{c}\n" for a, b, c in zip(x1.tolist(), x2.tolist(), y.tolist()))
    memory = mlefit.fit(path, family=family, ci="profile")
    streamed = mlefit.fit(path, family=family, ci="profile", stream=True, chunk_rows=37)
    np.testing.assert_allclose(streamed.profile_ci_low, memory.profile_ci_low, rtol=1e-8)
    np.testing.assert_allclose(streamed.profile_ci_high, memory.profile_ci_high, rtol=1e-8)
    assert streamed.profile_fits == memory.profile_fits


def test_few_constrained_fits_per_endpoint():
    x, y = rare_logistic()
    X = np.column_stack([np.ones(len(y)), x])
    res = mlefit.fit(X=x[:, None], y=y, family="bernoulli")
    from mlefit.engines.base import RowsObjective
    from mlefit.engines.memory import MemoryRows
    from mlefit.families import get_family

    obj = RowsObjective(get_family("bernoulli"), MemoryRows(np.asfortranarray(X), y))
    cov = np.linalg.inv(obj.value_grad_hess(res.params)[2])
    intervals = prof.profile_intervals(obj, res.params, res.nll, cov, [0, 1])
    for iv in intervals:
        for end in (iv.lower, iv.upper):
            assert end.status == prof.FOUND
            assert end.fits <= 5 and end.passes <= 15


# -- open sides and a fit not at the maximum, on objectives built to show them ---------------------


class Toy:
    """``nll(v, u) = h(v) + (u - v)^2 / 2``: the profile of ``v`` is ``h`` (the constrained
    optimum is ``u = v``)."""

    def __init__(self, h, dh, d2h):
        self.h, self.dh, self.d2h = h, dh, d2h

    def value(self, x):
        return self.h(x[0]) + 0.5 * (x[1] - x[0]) ** 2

    def value_grad(self, x):
        d = x[1] - x[0]
        return self.value(x), np.array([self.dh(x[0]) - d, d])

    def value_grad_hess(self, x):
        f, g = self.value_grad(x)
        return f, g, np.array([[self.d2h(x[0]) + 1.0, -1.0], [-1.0, 1.0]])


def _softplus(v):
    return np.logaddexp(0.0, v)


def test_profile_that_flattens_below_the_threshold_is_unbounded():
    # h(v) = w(v)^2 / 2 with w(v) = 2 (softplus(v) - log 2): h(0) = 0, h''(0) = 1; h tends to
    # 2 log(2)^2 = 0.96 < 1.92 as v -> -inf (open below) and grows without bound above, where
    # w(v) = z gives the endpoint v = log(exp(z / 2 + log 2) - 1).
    def w(v):
        return 2.0 * (_softplus(v) - math.log(2.0))

    def dw(v):
        return 2.0 * special.expit(v)

    def d2w(v):
        s = special.expit(v)
        return 2.0 * s * (1.0 - s)

    toy = Toy(lambda v: 0.5 * w(v) ** 2, lambda v: w(v) * dw(v), lambda v: dw(v) ** 2 + w(v) * d2w(v))
    theta = np.zeros(2)
    cov = np.linalg.inv(toy.value_grad_hess(theta)[2])
    (iv,) = prof.profile_intervals(toy, theta, 0.0, cov, [0], names=["v", "u"])
    z = stats.norm.ppf(0.975)
    assert iv.upper.status == prof.FOUND
    assert _rel(iv.upper.value, math.log(math.exp(z / 2 + math.log(2.0)) - 1.0)) < 1e-9
    assert iv.lower.status == prof.UNBOUNDED and iv.lower.value is None
    assert "flattens below the threshold" in iv.lower.note and "is unbounded (open below)" in iv.lower.note
    assert iv.lower.fits < prof.MAX_FITS


def test_lower_nll_along_the_profile_says_the_fit_was_not_at_the_maximum():
    # h(v) = (v^2 - 1)^2 / 4 - 0.3 v: a local minimum near v = -0.83 and the global one near 1.13.
    toy = Toy(
        lambda v: (v * v - 1.0) ** 2 / 4.0 - 0.3 * v,
        lambda v: v * (v * v - 1.0) - 0.3,
        lambda v: 3.0 * v * v - 1.0,
    )
    local = optimize.brentq(lambda v: v * (v * v - 1.0) - 0.3, -1.5, -0.5)
    theta = np.array([local, local])
    cov = np.linalg.inv(toy.value_grad_hess(theta)[2])
    (iv,) = prof.profile_intervals(toy, theta, toy.value(theta), cov, [0], names=["v", "u"])
    assert iv.upper.status == prof.BETTER and iv.upper.value is None
    assert "not at the maximum" in iv.upper.note
    better_params, better_nll = iv.upper.lower_nll
    assert better_nll < toy.value(theta) - 0.1
    assert iv.lower.status == prof.FOUND


def test_profile_not_computed_for_a_fit_that_did_not_converge():
    x, y = rare_logistic()
    with pytest.warns(mlefit.ConvergenceWarning):
        res = mlefit.fit(X=x[:, None], y=y, family="bernoulli", ci="profile", max_iter=1)
    assert np.isnan(res.profile_ci_low).all()
    assert res.profile_status == (("failed", "failed"),) * 2
    assert "did not converge" in res.profile_notes[0]


# -- the API's options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, words",
    [
        ({"ci": "profile", "cov": "robust"}, "--cov robust"),
        ({"ci": "profile", "l2": 1.0}, "--l2"),
        ({"profile": "nope"}, "'nope'"),
        ({"ci": "wald", "profile": "x1"}, "--ci profile"),
        ({"ci": "likelihood"}, "unknown interval method"),
        ({"level": 1.0}, "--level"),
        ({"level": 0}, "--level"),
    ],
)
def test_bad_interval_options_are_usage_errors(options, words):
    x, y = rare_logistic()
    with pytest.raises(mlefit.UsageError, match=None) as info:
        mlefit.fit(X=x[:, None], y=y, family="bernoulli", **options)
    assert words in str(info.value)


def test_profile_names_split_at_top_level_commas_and_pick_classes():
    assert prof.split_names("a, poly(x, 2, raw=True)[0],b") == ("a", "poly(x, 2, raw=True)[0]", "b")
    names, classes = ("intercept", "x", "intercept", "x"), ("b", "b", "c", "c")
    assert prof.resolve(("x",), names, classes) == [1, 3]
    assert prof.resolve(("c:intercept", "x"), names, classes) == [2, 1, 3]


# -- the command line ---------------------------------------------------------------------------------


def test_cli_json_and_table_show_the_profile(invoke, fit_json):
    doc, _ = fit_json("sample_data/admissions.csv", "-f", "bernoulli", "-y", "admitted", "--profile", "gpa")
    assert doc["ci_method"] == "profile" and doc["level"] == 0.95
    gpa = doc["parameters"][1]
    assert gpa["profile_status"] == "found" and gpa["profile_ci_low"] < gpa["estimate"] < gpa["profile_ci_high"]
    assert doc["parameters"][0]["profile_ci_low"] is None
    assert doc["parameters"][0]["profile_status"] == "not profiled"
    assert doc["profile_fits"] >= 2 and doc["profile_passes"] >= doc["profile_fits"]
    out = invoke("fit", "sample_data/admissions.csv", "-f", "bernoulli", "-y", "admitted", "--ci", "profile",
                 "--level", "0.9", "--quiet")
    assert out.exit_code == 0
    header = out.stdout.splitlines()[0]
    assert "90% profile low" in header and "90% profile high" in header
    wald = invoke("fit", "sample_data/admissions.csv", "-f", "bernoulli", "-y", "admitted", "--level", "0.8", "--quiet")
    assert "80% CI low" in wald.stdout.splitlines()[0]


def test_cli_refuses_profile_with_robust_or_l2(invoke):
    for extra in (["--cov", "robust"], ["--l2", "1"]):
        out = invoke("fit", "sample_data/admissions.csv", "-f", "bernoulli", "-y", "admitted", "--ci", "profile", *extra)
        assert out.exit_code == 2
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("Error: --ci profile cannot be combined")
        assert out.stdout == ""


def test_cli_csv_carries_both_intervals(invoke):
    out = invoke("fit", "sample_data/house_prices.csv", "-f", "gaussian", "--ci", "profile", "--format", "csv")
    lines = out.stdout.splitlines()
    assert lines[0].split(",")[-3:] == ["profile_ci_low", "profile_ci_high", "profile_status"]
    doc = json.loads(invoke("fit", "sample_data/house_prices.csv", "-f", "gaussian", "--ci", "profile",
                            "--format", "json").stdout)
    sigma = doc["parameters"][-1]
    row = lines[-1].split(",")
    assert float(row[-3]) == sigma["profile_ci_low"] and float(row[-2]) == sigma["profile_ci_high"]


# -- recovery studies ----------------------------------------------------------------------------------


def test_recover_reports_both_coverages(invoke):
    study = mlefit.recover("bernoulli", [1.0], intercept=-2.5, n=50, reps=120, seed=3, ci="profile")
    found = study.used[:, None] & ~np.isnan(study.profile_ci_low) & ~np.isnan(study.profile_ci_high)
    inside = (study.profile_ci_low <= study.truth) & (study.truth <= study.profile_ci_high)
    np.testing.assert_allclose(study.profile_coverage, (inside & found).sum(axis=0) / found.sum(axis=0))
    np.testing.assert_array_equal(study.profile_n, found.sum(axis=0))
    assert found.sum() >= 0.95 * 2 * study.n_used
    # the profile interval of the intercept reaches further towards rarer events in (nearly) every replication
    keep = found[:, 0]
    est, lo, hi = study.estimates[keep, 0], study.profile_ci_low[keep, 0], study.profile_ci_high[keep, 0]
    ratio = (est - lo) / (hi - est)
    assert np.median(ratio) > 1.2 and np.mean(ratio > 1.0) > 0.9
    rows = study.parameter_rows()
    assert list(rows[0])[-4:] == ["coverage", "profile_coverage", "profile_n", "n_used"]
    doc = study.to_dict()
    assert doc["ci_method"] == "profile" and "profile_ci_low" in doc["replications"][0]
    out = invoke("recover", "-f", "bernoulli", "--coef", "1", "--intercept", "-2.5", "--n", "50", "--reps", "20",
                 "--seed", "3", "--ci", "profile", "--format", "csv")
    assert out.exit_code in (0, 3)
    assert out.stdout.splitlines()[0].endswith("coverage,profile_coverage,profile_n,n_used")


def test_recover_level_sets_the_coverage():
    study = mlefit.recover("gaussian", [1.0, -0.5], n=200, reps=200, seed=4, level=0.8)
    assert np.all((study.coverage > 0.72) & (study.coverage < 0.88)), study.coverage
    assert study.level == 0.8 and study.to_dict()["level"] == 0.8
    with pytest.raises(mlefit.UsageError, match="--level"):
        mlefit.recover("gaussian", [1.0], n=50, reps=2, seed=4, level=95)


def test_budworm_matches_r_confint():
    """R's published ``confint(budworm.lg, parm = "ldose")`` (tests/data/budworm/README.md): agreement to
    its interpolation error (about 2e-5), and to 1e-10 with the exact root-finder here."""
    from conftest import ROOT

    import pandas as pd

    frame = pd.read_csv(ROOT / "tests" / "data" / "budworm" / "budworm.csv")
    res = mlefit.fit(frame, "bernoulli", target="dead", features="sex,ldose", weights="count", ci="profile")
    assert res.names == ("intercept", "sex[M]", "ldose")
    np.testing.assert_allclose(res.params, [-3.4732, 1.1007, 1.0642], atol=5e-5)  # summary(budworm.lg)
    assert _rel(res.profile_ci_low[2], 0.8228708) < 5e-5
    assert _rel(res.profile_ci_high[2], 1.3390581) < 5e-5
    X = np.column_stack([np.ones(len(frame)), (frame["sex"] == "M").to_numpy(float), frame["ldose"].to_numpy(float)])
    nll = bernoulli_nll(X, frame["dead"].to_numpy(float), frame["count"].to_numpy(float))
    lo, hi, _ = reference_interval(nll, res.params, 2, scale=res.se[2])
    assert _rel(res.profile_ci_low[2], lo) < 1e-10 and _rel(res.profile_ci_high[2], hi) < 1e-10


@pytest.mark.parametrize("problem", ["norris", "noint1", "longley"])
def test_gaussian_profiles_in_closed_form_from_nist_certified_values(problem):
    """For gaussian the profile has a closed form: with b_j held at v the least squares of the others
    leaves RSS + (v - b_j)^2 / c_jj, so the interval is b_j +- se_j sqrt(df (exp(q/n) - 1)) with se_j
    the (n - p)-scale standard error; sigma's endpoints solve n (t - 1 - log t) = q for
    t = sigma_hat^2 / sigma^2. Both from NIST's certified values (Longley: condition number ~1e9)."""
    from conftest import NIST

    doc = json.loads((NIST / f"{problem}.json").read_text())
    cert, n = doc["certified"], doc["n_obs"]
    res = mlefit.fit(NIST / f"{problem}.csv", "gaussian", intercept=doc["intercept"], ci="profile")
    q = stats.chi2.ppf(0.95, 1)
    for i, name in enumerate(cert["params"]):
        b = cert["params"][name]
        half = cert["bse"][name] * math.sqrt(cert["df_resid"] * math.expm1(q / n))
        assert _rel(res.profile_ci_low[i], b - half) < 1e-8, name
        assert _rel(res.profile_ci_high[i], b + half) < 1e-8, name
    sigma = math.sqrt(cert["ssr"] / n)
    t_high = optimize.brentq(lambda t: n * (t - 1 - math.log(t)) - q, 1.0, 1e3, xtol=1e-15)
    t_low = optimize.brentq(lambda t: n * (t - 1 - math.log(t)) - q, 1e-6, 1.0, xtol=1e-15)
    assert _rel(res.profile_ci_low[-1], sigma / math.sqrt(t_high)) < 1e-10
    assert _rel(res.profile_ci_high[-1], sigma / math.sqrt(t_low)) < 1e-10


def test_poisson_matches_reference():
    data = mlefit.simulate("poisson", [0.4, -0.3], intercept=0.2, n=80, seed=6)
    res = mlefit.fit(data, "poisson", ci="profile")
    X = np.column_stack([np.ones(len(data)), data[["x1", "x2"]].to_numpy()])
    nll = poisson_nll(X, data["y"].to_numpy(float))
    for j in range(3):
        lo, hi, _ = reference_interval(nll, res.params, j, scale=res.se[j])
        assert _rel(res.profile_ci_low[j], lo) < RTOL and _rel(res.profile_ci_high[j], hi) < RTOL


def test_negbin_alpha_matches_reference():
    data = mlefit.simulate("negbin", [0.5], intercept=1.0, ancillary={"alpha": 0.3}, n=300, seed=2)
    res = mlefit.fit(data, "negbin", ci="profile")
    X = np.column_stack([np.ones(len(data)), data["x1"].to_numpy()])
    nll = negbin_nll(X, data["y"].to_numpy(float))
    for j in range(3):
        lo, hi, _ = reference_interval(nll, res.params, j, scale=res.se[j])
        assert _rel(res.profile_ci_low[j], lo) < RTOL and _rel(res.profile_ci_high[j], hi) < RTOL
    assert res.profile_status[2] == ("found", "found")


def test_negbin_alpha_near_zero_is_open_below():
    """alpha = 0.02 in 200 rows: the profile flattens towards the Poisson model before reaching the
    threshold, so the interval reaches alpha = 0; its upper end matches the reference."""
    data = mlefit.simulate("negbin", [0.5], intercept=1.0, ancillary={"alpha": 0.02}, n=200, seed=1)
    res = mlefit.fit(data, "negbin", ci="profile")
    assert res.profile_status[2] == ("unbounded", "found")
    assert np.isnan(res.profile_ci_low[2])
    assert any("reaches alpha = 0 (open below)" in note for note in res.profile_notes)
    assert res.to_dict()["parameters"][2]["profile_status"] == "unbounded below"
    X = np.column_stack([np.ones(len(data)), data["x1"].to_numpy()])
    nll = negbin_nll(X, data["y"].to_numpy(float))
    _, hi, theta = reference_interval(nll, res.params, 2, scale=res.se[2], span=3.0)
    assert _rel(res.profile_ci_high[2], hi) < RTOL
    # the reference's profile at alpha = 1e-9 (all but the Poisson model) is below the threshold too
    b, f = _minimize(lambda u: (lambda f, g: (f, g[:2]))(*nll(np.append(u, 1e-9))), theta[:2])
    assert 2.0 * (f - nll(theta)[0]) < stats.chi2.ppf(0.95, 1)
    # and the coefficients' intervals, with alpha free in every constrained fit
    for j in range(2):
        lo, hi, _ = reference_interval(nll, res.params, j, scale=res.se[j])
        assert _rel(res.profile_ci_low[j], lo) < RTOL and _rel(res.profile_ci_high[j], hi) < RTOL


def test_negbin_alpha_at_its_boundary_profiles_the_poisson_model():
    """Poisson data can put alpha's estimate on its boundary 0, where the fit holds it (no standard
    error): the coefficients are then profiled with alpha held there too, which is the Poisson
    model's profile, and alpha itself is not profiled, with a note."""
    for seed in range(2, 12):
        data = mlefit.simulate("poisson", [0.5], intercept=1.0, n=200, seed=seed)
        res = mlefit.fit(data, "negbin", ci="profile")
        if not np.isfinite(res.se[2]):
            break
    else:
        pytest.fail("no seed put alpha on its boundary")
    poisson = mlefit.fit(data, "poisson", ci="profile")
    np.testing.assert_allclose(res.profile_ci_low[:2], poisson.profile_ci_low, rtol=1e-8)
    np.testing.assert_allclose(res.profile_ci_high[:2], poisson.profile_ci_high, rtol=1e-8)
    assert res.profile_status[2] == ("failed", "failed")
    assert any("alpha: its estimate is at the boundary" in note for note in res.profile_notes)
