"""bernoulli --link probit and cloglog: statsmodels' Probit and GLM Binomial(CLogLog), the tails in
60-digit arithmetic, every engine, prediction, model files, separation; the logit unchanged."""

from __future__ import annotations

import json
import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import mlefit
from conftest import SAMPLES
from mlefit import numdiff
from mlefit.families import get_family
from mlefit.families.bernoulli import probit_curvature

FEATURES = ["gpa", "test_score", "essay_rating"]


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def cases():
    frame = pd.read_csv(SAMPLES / "admissions.csv")
    yield "admissions.csv", frame, FEATURES, "admitted"
    sim = mlefit.simulate("bernoulli", [1.0, -2.0, 0.5], n=3000, intercept=0.3, link="probit", seed=11)
    yield "simulated", sim, ["x1", "x2", "x3"], "y"


def reference(link: str, frame: pd.DataFrame, features: list[str], target: str):
    y = (frame[target] == sorted(frame[target].unique())[-1]).to_numpy(float)
    X = sm.add_constant(frame[features].to_numpy(float), has_constant="add")
    if link == "probit":
        return y, sm.Probit(y, X).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    family = sm.families.Binomial(link=sm.families.links.CLogLog())
    # Newton's method: the covariance of the observed information, as mlefit's (IRLS uses the expected)
    return y, sm.GLM(y, X, family=family).fit(method="newton", tol=1e-14, maxiter=200)


@pytest.mark.parametrize("case", list(cases()), ids=lambda c: c[0])
@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_matches_statsmodels(link, case):
    _, frame, features, target = case
    res = mlefit.fit(frame, "bernoulli", target=target, features=features, link=link)
    y, ref = reference(link, frame, features, target)
    assert res.converged and res.family_options == {"link": link}
    assert _rel(res.params, ref.params) < 1e-8
    assert _rel(res.se, ref.bse) < 1e-8
    np.testing.assert_allclose(res.cov, ref.cov_params(), rtol=1e-8, atol=0)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-12)
    # the intercept-only model's log-likelihood is the same for every link: the mean's
    m = y.mean()
    assert res.null_loglik == pytest.approx(len(y) * (m * np.log(m) + (1 - m) * np.log1p(-m)), rel=1e-12)
    ci = np.asarray(ref.conf_int())
    np.testing.assert_allclose(res.ci_low, ci[:, 0], rtol=1e-8)


def test_logit_is_the_default_and_unchanged():
    frame = pd.read_csv(SAMPLES / "admissions.csv")
    default = mlefit.fit(frame, "bernoulli", target="admitted")
    explicit = mlefit.fit(frame, "bernoulli", target="admitted", link="logit")
    assert default.family_options == explicit.family_options == {}
    np.testing.assert_array_equal(default.params, explicit.params)
    np.testing.assert_array_equal(default.cov, explicit.cov)
    assert [r.nll for r in default.trace] == [r.nll for r in explicit.trace]


# -- the tails ------------------------------------------------------------------------------------


def mp_nll(link: str, eta, y: int):
    """The per-row NLL in mpmath (60 digits)."""
    eta = mpmath.mpf(eta)
    if link == "probit":
        return -mpmath.log(mpmath.ncdf(eta if y else -eta))
    u = mpmath.exp(eta)
    if y == 0:
        return u
    # -log(1 - exp(-u)): from expm1 for small u, log1p for large (60 digits hold neither 1 - 1e-175
    # nor exp(-1e-300) - 1 otherwise)
    return -mpmath.log(-mpmath.expm1(-u)) if u < 1 else -mpmath.log1p(-mpmath.exp(-u))


@pytest.mark.parametrize("link", ["probit", "cloglog"])
@pytest.mark.parametrize("eta", [-800.0, -40.0, -5.0, -1e-9, 0.0, 2.0, 6.0, 38.0, 700.0])
@pytest.mark.parametrize("y", [0, 1])
def test_nll_and_derivatives_exact_at_any_eta(link, eta, y):
    fam = get_family("bernoulli", link=link)
    X, target, params = np.ones((1, 1)), np.array([float(y)]), np.array([eta])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = fam.evaluate(params, X, target)
    mpmath.mp.dps = 60
    f = lambda e: mp_nll(link, e, y)  # noqa: E731
    assert s.nll == pytest.approx(float(f(eta)), rel=1e-13, abs=1e-300)
    assert s.grad[0] == pytest.approx(float(mpmath.diff(f, mpmath.mpf(eta), 1)), rel=1e-13, abs=1e-300)
    assert s.hess[0, 0] == pytest.approx(float(mpmath.diff(f, mpmath.mpf(eta), 2)), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("t", [-1e6, -1e4, -300.0, -31.0, -29.0, -3.0, 0.0, 5.0, 40.0])
def test_probit_curvature_is_exact(t):
    """-d2/dt2 log Phi(t) = r (t + r): from the Mills ratio's series below -30, where t + r cancels."""
    mpmath.mp.dps = 80
    tt = mpmath.mpf(t)
    r = mpmath.npdf(tt) / mpmath.ncdf(tt)
    expected = float(r * (tt + r))
    assert probit_curvature(np.array([t]))[0] == pytest.approx(expected, rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_separation_screen_and_check_per_link(tmp_path, invoke, link, rng):
    x = rng.normal(size=120)
    path = tmp_path / "sep.csv"
    pd.DataFrame({"x": x, "y": (x > 0.1).astype(int)}).to_csv(path, index=False)
    result = invoke("fit", path, "-f", "bernoulli", "--link", link)
    assert result.exit_code == 4 and "complete separation: column 'x'" in result.stderr
    fam = get_family("bernoulli", link=link)
    X = np.column_stack([np.ones(3), [-30.0, 0.0, 30.0]])
    s = fam.evaluate(np.array([0.0, 1.0]), X, np.array([0.0, 1.0, 1.0]))
    # the smaller class probability, least at eta = +-30: Phi(-30) (probit); 1 - p = exp(-e^30) (cloglog)
    expected = float(mpmath.log(mpmath.ncdf(-30))) if link == "probit" else -np.exp(30.0)
    assert s.min_log_prob == pytest.approx(expected, rel=1e-13)


# -- engines, prediction, model files ------------------------------------------------------------


@pytest.mark.parametrize("link", ["probit", "cloglog"])
@pytest.mark.parametrize("options", [{}, {"weights": "w", "cov": "robust"}, {"l2": 0.5}, {"features": "x1,x2"}],
                         ids=["plain", "weights-robust", "l2", "one-pass"])
def test_streamed_and_dask_fits_equal_in_memory(tmp_path, client, link, options):
    from test_stream import make_csv

    path = make_csv(tmp_path / "b.csv", "bernoulli")
    mem = mlefit.fit(path, "bernoulli", link=link, **options)
    st = mlefit.fit(path, "bernoulli", link=link, stream=True, chunk_rows=97, **options)
    assert mem.converged and st.converged
    for other in (st,):
        assert _rel(other.params, mem.params) < 1e-10 and _rel(other.se, mem.se) < 1e-10
        assert _rel(other.nll, mem.nll) < 1e-10
    if options:
        return
    remote = mlefit.fit(path, "bernoulli", link=link, engine="dask", client=client, chunk_rows=100)
    assert _rel(remote.params, mem.params) < 1e-10 and _rel(remote.se, mem.se) < 1e-10
    assert _rel(remote.nll, mem.nll) < 1e-10


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_model_file_records_the_link_and_predict_uses_it(tmp_path, invoke, link):
    from scipy.special import ndtr

    path = tmp_path / "model.json"
    result = invoke("fit", SAMPLES / "admissions.csv", "-f", "bernoulli", "--link", link, "--save", path, "--quiet")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(path.read_text())
    assert doc["family_options"] == {"link": link}
    frame = pd.read_csv(SAMPLES / "admissions.csv")
    w = np.array([p["estimate"] for p in doc["parameters"]])
    eta = np.column_stack([np.ones(len(frame)), frame[FEATURES]]) @ w
    expected = ndtr(eta) if link == "probit" else -np.expm1(-np.exp(eta))
    scored = mlefit.predict(path, frame)
    np.testing.assert_allclose(scored["prob_yes"], expected, rtol=1e-12)
    cli = invoke("predict", path, SAMPLES / "admissions.csv")
    assert cli.exit_code == 0
    np.testing.assert_allclose(pd.read_csv(pd.io.common.StringIO(cli.stdout))["prob_yes"], expected, rtol=1e-12)
    # the fit's JSON and the report's first line say which link
    doc, _ = (json.loads(invoke("fit", SAMPLES / "admissions.csv", "-f", "bernoulli", "--link", link,
                                "--format", "json").stdout), None)
    assert doc["family_options"] == {"link": link}
    first = invoke("fit", SAMPLES / "admissions.csv", "-f", "bernoulli", "--link", link).stdout.splitlines()[0]
    name = {"probit": "probit regression", "cloglog": "complementary log-log regression"}[link]
    assert first.startswith(f"mlefit fit: bernoulli ({name}), link {link}, method newton")


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_check_grad_passes(invoke, link):
    result = invoke("check-grad", SAMPLES / "admissions.csv", "-f", "bernoulli", "--link", link, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["passed"] and doc["largest_grad_rel_err"] < 1e-7 and doc["largest_hess_rel_err"] < 1e-7


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_simulate_and_recover_with_the_link(tmp_path, invoke, link):
    truth = tmp_path / "truth.json"
    sim = invoke("simulate", "-f", "bernoulli", "--link", link, "--coef", "1,-0.5", "--intercept", "-0.3",
                 "--n", "4000", "--seed", "2", "--truth", truth)
    assert sim.exit_code == 0 and json.loads(truth.read_text())["family_options"] == {"link": link}
    fitted = invoke("fit", "-", "-f", "bernoulli", "--link", link, "--truth", truth, "--format", "json",
                    input=sim.stdout)
    assert fitted.exit_code == 0, fitted.stderr
    assert all(abs(p["error_se"]) < 4 for p in json.loads(fitted.stdout)["parameters"])
    study = mlefit.recover("bernoulli", [1.0, -0.5], intercept=-0.3, link=link, n=300, reps=200, seed=3)
    assert study.n_used == 200
    assert np.all(np.abs(study.coverage - 0.95) < 0.046), study.coverage
    assert np.all(np.abs(study.se_ratio - 1.0) < 0.2), study.se_ratio


def test_unknown_link_is_a_usage_error(invoke):
    result = invoke("fit", SAMPLES / "admissions.csv", "-f", "bernoulli", "--link", "cauchit")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == "Error: unknown --link 'cauchit' for bernoulli. Choose one of: logit, probit, cloglog."
    result = invoke("fit", SAMPLES / "house_prices.csv", "-f", "gaussian", "--link", "probit")
    assert result.exit_code == 2 and "--link does not apply to gaussian" in result.stderr
