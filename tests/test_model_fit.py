"""mlefit.fit(model=..., nll=...): likelihoods written as text fitted through the one fit path.

Models written as built-in families give those families' estimates and standard errors; real models
(Michaelis-Menten, a zero-inflated Poisson, a normal mixture) agree with scipy.optimize on a numpy
NLL written here; streamed and Dask fits equal the in-memory fit; the options of a fit (weights,
robust standard errors, every method, --fixed, --start) and the refusals of bad models.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

import mlefit
from mlefit.errors import DataError, DerivativeError, FamilyError, UsageError

DATA = Path(__file__).parent / "data"
PUROMYCIN = DATA / "puromycin" / "treated.csv"


def linear(k: int, prefix: str = "b") -> str:
    return " + ".join([f"{prefix}0"] + [f"{prefix}{j}*x{j}" for j in range(1, k + 1)])


def frame(n: int, k: int, seed: int) -> tuple[np.random.Generator, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)) * 0.5
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(1, k + 1)])
    return rng, df, np.column_stack([np.ones(n), X])


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# -- models written as built-in families ----------------------------------------------------------
def test_poisson_with_log_link_equals_the_poisson_family():
    rng, df, X1 = frame(800, 3, seed=1)
    df["y"] = rng.poisson(np.exp(X1 @ [0.3, 0.5, -0.4, 0.2]))
    family = mlefit.fit(df, "poisson", target="y")
    model = mlefit.fit(df, model=f"y ~ poisson(rate = exp({linear(3)}))")
    assert model.names == ("b0", "b1", "b2", "b3") and model.family == "model"
    np.testing.assert_allclose(model.params, family.params, rtol=1e-8)
    np.testing.assert_allclose(model.se, family.se, rtol=1e-6)
    assert model.nll == pytest.approx(family.nll, rel=1e-12)
    assert model.aic == pytest.approx(family.aic, rel=1e-12) and model.bic == pytest.approx(family.bic, rel=1e-12)
    np.testing.assert_allclose(model.p_values, family.p_values, rtol=1e-5)
    np.testing.assert_allclose(model.ci_low, family.ci_low, rtol=1e-7)


def test_bernoulli_with_sigmoid_equals_the_bernoulli_family():
    rng, df, X1 = frame(700, 3, seed=3)
    df["y"] = (rng.random(700) < special.expit(X1 @ [-0.2, 1.0, -0.8, 0.5])).astype(int)
    family = mlefit.fit(df, "bernoulli", target="y")
    model = mlefit.fit(df, model=f"y ~ bernoulli(prob = sigmoid({linear(3)}))")
    np.testing.assert_allclose(model.params, family.params, rtol=1e-8)
    np.testing.assert_allclose(model.se, family.se, rtol=1e-6)
    assert model.nll == pytest.approx(family.nll, rel=1e-12)


def test_normal_with_log_sd_equals_the_gaussian_family():
    rng, df, X1 = frame(400, 3, seed=4)
    df["y"] = X1 @ [1.0, 2.0, -1.0, 0.5] + rng.normal(size=400) * 0.7
    family = mlefit.fit(df, "gaussian", target="y")
    model = mlefit.fit(df, model=f"y ~ normal(mean = {linear(3)}, sd = exp(s))")
    assert model.names[-1] == "s" and family.names[-1] == "sigma"
    np.testing.assert_allclose(model.params[:4], family.params[:4], rtol=1e-8)
    sigma = np.exp(model.params[4])
    assert sigma == pytest.approx(family.params[4], rel=1e-8)
    np.testing.assert_allclose(model.se[:4], family.se[:4], rtol=1e-6)
    # the family reports sigma, the model log sigma: se(sigma) = sigma se(log sigma)
    assert sigma * model.se[4] == pytest.approx(family.se[4], rel=1e-6)
    assert model.nll == pytest.approx(family.nll, rel=1e-12)


def test_gamma_equals_the_gamma_family():
    rng = np.random.default_rng(5)
    x = rng.normal(size=600) * 0.5
    df = pd.DataFrame({"x": x, "y": rng.gamma(2.5, np.exp(0.4 - 0.7 * x) / 2.5)})
    family = mlefit.fit(df, "gamma", target="y")
    # the family: mean exp(b0 + b1 x), shape k; gamma(shape, scale) has mean shape * scale
    model = mlefit.fit(df, model="y ~ gamma(shape = exp(t), scale = exp(b0 + b1*x - t))")
    assert model.names == ("t", "b0", "b1")
    np.testing.assert_allclose(model.params[1:], family.params[:2], rtol=1e-8)
    shape = np.exp(model.params[0])
    assert shape == pytest.approx(family.params[2], rel=1e-8)
    np.testing.assert_allclose(model.se[1:], family.se[:2], rtol=1e-6)
    assert shape * model.se[0] == pytest.approx(family.se[2], rel=1e-6)
    assert model.nll == pytest.approx(family.nll, rel=1e-12)


def test_negbin_equals_the_negbin_family_and_robust_errors_equal_the_familys():
    rng, df, X1 = frame(900, 2, seed=8)
    mu = np.exp(X1 @ [0.5, 0.4, -0.3])
    df["y"] = rng.negative_binomial(1 / 0.6, 1 / (1 + 0.6 * mu))
    family = mlefit.fit(df, "negbin", target="y", cov="robust")
    model = mlefit.fit(df, model=f"y ~ negbin(mean = exp({linear(2)}), alpha = exp(la))", cov="robust")
    np.testing.assert_allclose(model.params[:3], family.params[:3], rtol=1e-8)
    alpha = np.exp(model.params[3])
    assert alpha == pytest.approx(family.params[3], rel=1e-8)
    np.testing.assert_allclose(model.se[:3], family.se[:3], rtol=1e-6)  # sandwich (HC0)
    np.testing.assert_allclose(model.se_model[:3], family.se_model[:3], rtol=1e-6)
    assert alpha * model.se[3] == pytest.approx(family.se[3], rel=1e-6)
    assert model.cov_type == "HC0"


def test_weights_count_rows_and_equal_the_familys_weighted_fit():
    rng, df, X1 = frame(300, 2, seed=2)
    df["y"] = rng.poisson(np.exp(X1 @ [0.1, 0.6, -0.3]))
    df["w"] = rng.integers(0, 4, len(df))
    text = f"y ~ poisson(rate = exp({linear(2)}))"
    weighted = mlefit.fit(df, model=text, weights="w")
    repeated = mlefit.fit(df.loc[df.index.repeat(df["w"])].drop(columns="w"), model=text)
    np.testing.assert_allclose(weighted.params, repeated.params, rtol=1e-9)
    np.testing.assert_allclose(weighted.se, repeated.se, rtol=1e-7)
    assert weighted.n_obs == df["w"].sum() and weighted.n_rows == len(df)
    family = mlefit.fit(df, "poisson", target="y", weights="w")
    np.testing.assert_allclose(weighted.params, family.params, rtol=1e-8)


# -- real models against scipy.optimize on a numpy NLL written here ----------------------------------
def reference_fit(nll, start):
    """Nelder-Mead to tight tolerances, restarted once, then BFGS to polish."""
    res = optimize.minimize(nll, np.asarray(start, dtype=float), method="Nelder-Mead",
                            options={"xatol": 1e-11, "fatol": 1e-13, "maxiter": 40_000, "maxfev": 80_000})
    res = optimize.minimize(nll, res.x, method="Nelder-Mead",
                            options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 40_000, "maxfev": 80_000})
    return res.x, res.fun


def numeric_se(nll, p, h=1e-4):
    """Standard errors from a central-difference Hessian of ``nll`` at ``p``."""
    n = p.size
    steps = h * np.maximum(1.0, np.abs(p))
    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.zeros(n), np.zeros(n)
            ei[i], ej[j] = steps[i], steps[j]
            H[i, j] = (nll(p + ei + ej) - nll(p + ei - ej) - nll(p - ei + ej) + nll(p - ei - ej)) / (4 * steps[i] * steps[j])
    return np.sqrt(np.diag(np.linalg.inv((H + H.T) / 2)))


def test_michaelis_menten_on_puromycin_equals_least_squares_and_the_published_fit():
    data = pd.read_csv(PUROMYCIN)
    conc, rate = data["conc"].to_numpy(), data["rate"].to_numpy()
    result = mlefit.fit(
        PUROMYCIN, model="rate ~ normal(mean = vmax*conc/(km + conc), sd = exp(s))", start="vmax=200, km=0.1, s=2",
    )
    assert result.converged and result.names == ("vmax", "km", "s") and result.target == "rate"

    def ref_nll(q):
        vmax, km, s = q
        r = rate - vmax * conc / (km + conc)
        return np.sum(0.5 * (r / np.exp(s)) ** 2 + s + 0.5 * np.log(2 * np.pi))

    ls = optimize.least_squares(lambda q: rate - q[0] * conc / (q[1] + conc), [200.0, 0.1],
                                xtol=1e-15, ftol=1e-15, gtol=1e-15)
    n = rate.size
    rss = 2 * ls.cost
    np.testing.assert_allclose(result.params[:2], ls.x, rtol=1e-8)
    assert np.exp(result.params[2]) == pytest.approx(np.sqrt(rss / n), rel=1e-8)
    q, fun = reference_fit(ref_nll, [200.0, 0.1, 2.0])
    np.testing.assert_allclose(result.params, q, rtol=1e-6)
    assert result.nll <= fun + 1e-10 and result.nll == pytest.approx(ref_nll(result.params), rel=1e-12)
    np.testing.assert_allclose(result.se, numeric_se(ref_nll, result.params), rtol=1e-4)
    # Published (R nls on the treated cells): Vm 212.7, K 0.06412, residual standard error 10.93 on 10 df.
    assert round(result.params[0], 1) == 212.7 and round(result.params[1], 5) == 0.06412
    assert result.aic == pytest.approx(2 * ref_nll(result.params) + 6, rel=1e-12)


ZIP = (
    "-zero*log(sigmoid(g) + (1 - sigmoid(g))*exp(-exp(a + b*x)))"
    " - (1 - zero)*(log(1 - sigmoid(g)) - exp(a + b*x) + y*(a + b*x) - lgamma(y + 1))"
)


def zip_data(n=1500, seed=6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    structural_zero = rng.random(n) < special.expit(-0.6)
    y = np.where(structural_zero, 0, rng.poisson(np.exp(0.5 + 0.8 * x)))
    return pd.DataFrame({"y": y, "x": x, "zero": (y == 0).astype(int)})


@pytest.mark.parametrize("source", ["drawn here", "tests/data/textmodels/zip.csv (docs/models.md)"])
def test_zero_inflated_poisson_written_as_an_nll(source):
    path = DATA / "textmodels" / "zip.csv"
    df = zip_data() if source == "drawn here" else pd.read_csv(path)
    result = mlefit.fit(df if source == "drawn here" else path, nll=ZIP)
    assert result.names == ("g", "a", "b") and result.target == "zero"  # the NLL's first column
    y, x = df["y"].to_numpy(float), df["x"].to_numpy()

    def ref_nll(q):
        g, a, b = q
        lam = np.exp(a + b * x)
        log_pi, log_1m_pi = -np.logaddexp(0, -g), -np.logaddexp(0, g)
        return -np.sum(np.where(y == 0, np.logaddexp(log_pi, log_1m_pi - lam), log_1m_pi + stats.poisson.logpmf(y, lam)))

    q, fun = reference_fit(ref_nll, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(result.params, q, rtol=1e-6)
    assert result.nll == pytest.approx(fun, abs=1e-9)
    np.testing.assert_allclose(result.se, numeric_se(ref_nll, result.params), rtol=1e-4)


MIXTURE = (
    "-log(sigmoid(q)*exp(-((y - m1)/exp(s1))**2/2 - s1)"
    " + (1 - sigmoid(q))*exp(-((y - m2)/exp(s2))**2/2 - s2)) + 0.5*log(2*3.141592653589793)"
)


@pytest.mark.parametrize("source", ["drawn here", "tests/data/textmodels/mixture.csv (docs/models.md)"])
def test_two_component_normal_mixture_from_given_starts(source):
    path = DATA / "textmodels" / "mixture.csv"
    if source == "drawn here":
        rng = np.random.default_rng(7)
        n = 1200
        first = rng.random(n) < 0.35
        y = np.where(first, rng.normal(-1.0, 0.6, n), rng.normal(2.0, 1.1, n))
    else:
        y = pd.read_csv(path)["y"].to_numpy()
    start = {"q": 0.0, "m1": -0.5, "s1": 0.0, "m2": 1.5, "s2": 0.0}
    result = mlefit.fit(pd.DataFrame({"y": y}) if source == "drawn here" else path, nll=MIXTURE, start=start)
    assert result.names == ("q", "m1", "s1", "m2", "s2") and result.start == start

    def ref_nll(t):
        q, m1, s1, m2, s2 = t
        return -np.sum(np.logaddexp(
            -np.logaddexp(0, -q) + stats.norm.logpdf(y, m1, np.exp(s1)),
            -np.logaddexp(0, q) + stats.norm.logpdf(y, m2, np.exp(s2)),
        ))

    ref, fun = reference_fit(ref_nll, list(start.values()))
    np.testing.assert_allclose(result.params, ref, rtol=1e-5, atol=1e-7)
    assert result.nll == pytest.approx(fun, abs=1e-8)
    np.testing.assert_allclose(result.se, numeric_se(ref_nll, result.params), rtol=1e-4)
    assert abs(special.expit(result.params[0]) - 0.35) < 0.05


# -- options ---------------------------------------------------------------------------------------
def test_fixed_parameters_are_held_and_equal_the_text_with_the_number_written_in():
    data = pd.read_csv(PUROMYCIN)
    held = mlefit.fit(data, model="rate ~ normal(mean = vmax*conc/(km + conc), sd = exp(s))",
                      start="vmax=200,km=0.1", fixed="s=2.5")
    written = mlefit.fit(data, model="rate ~ normal(mean = vmax*conc/(km + conc), sd = exp(2.5))",
                         start="vmax=200,km=0.1")
    assert held.names == ("vmax", "km") and held.fixed == {"s": 2.5} and held.n_params == 2
    np.testing.assert_allclose(held.params, written.params, rtol=1e-12)
    np.testing.assert_allclose(held.se, written.se, rtol=1e-10)
    assert held.to_dict()["fixed"] == {"s": 2.5}


@pytest.mark.parametrize("method", ["newton", "lbfgs", "gd"])
def test_every_method_reaches_the_same_estimates(method):
    rng, df, X1 = frame(400, 2, seed=9)
    df["y"] = X1 @ [0.5, 1.0, -1.0] + rng.normal(size=400)
    family = mlefit.fit(df, "gaussian", target="y")
    result = mlefit.fit(df, model=f"y ~ normal(mean = {linear(2)}, sd = exp(s))", method=method)
    assert result.converged and result.method == method
    np.testing.assert_allclose(result.params[:3], family.params[:3], atol=1e-5 * family.se[:3].max())
    np.testing.assert_allclose(result.se[:3], family.se[:3], rtol=1e-5)


def test_numeric_gradient_asked_for_fits_the_same():
    df = zip_data(600, seed=3)
    exact = mlefit.fit(df, nll=ZIP)
    numeric = mlefit.fit(df, nll=ZIP, gradient="numeric")
    assert numeric.gradient == "numeric" and exact.gradient == "analytic"
    np.testing.assert_allclose(numeric.params, exact.params, atol=1e-5 * exact.se.max())
    np.testing.assert_allclose(numeric.se, exact.se, rtol=1e-9)  # from the exact Hessian either way


def test_without_sympy_the_fit_uses_finite_differences_and_says_so(monkeypatch):
    import mlefit.textmodel as textmodel

    rng, df, X1 = frame(500, 1, seed=10)
    df["y"] = rng.poisson(np.exp(X1 @ [0.2, 0.7]))
    exact = mlefit.fit(df, model="y ~ poisson(rate = exp(a + b*x1))", cov="robust")
    monkeypatch.setattr(textmodel, "have_sympy", lambda: False)
    numeric = mlefit.fit(df, model="y ~ poisson(rate = exp(a + b*x1))", cov="robust")
    assert numeric.gradient == "numeric" and "sympy is not installed" in numeric.derivatives
    assert exact.derivatives.startswith("exact")
    np.testing.assert_allclose(numeric.params, exact.params, atol=1e-5 * exact.se.max())
    np.testing.assert_allclose(numeric.se, exact.se, rtol=1e-4)
    np.testing.assert_allclose(numeric.se_model, exact.se_model, rtol=1e-4)


def test_compilation_is_reported_and_cached():
    from mlefit.textmodel import clear_cache

    df = zip_data(300, seed=11)
    clear_cache()
    first = mlefit.fit(df, nll=ZIP)
    again = mlefit.fit(df, nll=ZIP)
    assert first.compile_seconds > 0 and again.compile_seconds == 0
    doc = first.to_dict()
    assert doc["compile_seconds"] == first.compile_seconds and doc["model"] == ZIP


def test_a_model_without_other_columns_reads_only_its_target():
    y = np.random.default_rng(12).normal(3.0, 2.0, 500)
    result = mlefit.fit(pd.DataFrame({"y": y, "unused": 1.0}), model="y ~ normal(mean = mu, sd = exp(s))")
    assert result.names == ("mu", "s") and result.feature_names == () and not result.intercept
    assert result.params[0] == pytest.approx(y.mean(), rel=1e-10)
    assert np.exp(result.params[1]) == pytest.approx(y.std(), rel=1e-8)
    assert result.se[0] == pytest.approx(y.std() / np.sqrt(500), rel=1e-6)


def test_the_family_pickles_as_its_text_and_evaluates_the_same():
    from mlefit.textmodel.family import text_family

    fam = text_family(model="y ~ poisson(rate = exp(a + b*x))", columns=["x", "y", "z"], start="a=0.5", fixed="b=0.25")
    copy = pickle.loads(pickle.dumps(fam))
    X = np.random.default_rng(0).normal(size=(50, 1))
    y = np.arange(50.0) % 4
    want, got = fam.evaluate(np.array([0.3]), X, y), copy.evaluate(np.array([0.3]), X, y)
    assert got.nll == want.nll and np.array_equal(got.grad, want.grad) and np.array_equal(got.hess, want.hess)
    assert copy.fixed == {"b": 0.25} and copy.start == {"a": 0.5}


# -- engines ---------------------------------------------------------------------------------------
@pytest.fixture
def zip_csv(tmp_path) -> Path:
    df = zip_data(900, seed=13)
    df["w"] = np.random.default_rng(13).integers(0, 3, len(df))
    path = tmp_path / "zip.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("text", [{"nll": ZIP}, {"model": "y ~ poisson(rate = exp(a + b*x))"}], ids=["nll", "model"])
def test_streamed_fit_equals_the_in_memory_fit(zip_csv, text):
    memory = mlefit.fit(zip_csv, weights="w", cov="robust", **text)
    streamed = mlefit.fit(zip_csv, weights="w", cov="robust", stream=True, chunk_rows=97, **text)
    assert rel(streamed.params, memory.params) < 1e-10 and rel(streamed.se, memory.se) < 1e-10
    assert rel(streamed.nll, memory.nll) < 1e-10
    assert set(streamed.to_dict()) == set(memory.to_dict())


def test_dask_fit_equals_the_in_memory_fit(zip_csv, client):
    memory = mlefit.fit(zip_csv, nll=ZIP, weights="w", cov="robust")
    remote = mlefit.fit(zip_csv, nll=ZIP, weights="w", cov="robust", engine="dask", client=client, chunk_rows=100)
    assert rel(remote.params, memory.params) < 1e-10 and rel(remote.se, memory.se) < 1e-10
    assert rel(remote.nll, memory.nll) < 1e-10


# -- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"model": "y ~ poison(rate = exp(a))"}, UsageError, "unknown distribution 'poison'"),
        ({"model": "y ~ poisson(mu = exp(a))"}, UsageError, "no argument 'mu'"),
        ({"model": "count ~ poisson(rate = exp(a + b*x))"}, UsageError, "'count' is not a column"),
        ({"model": "y ~ poisson(rate = exp(a + 0*b*x))"}, UsageError, "'b' does not enter"),
        ({"model": "y ~ poisson(rate = exp(a + b + c*x))"}, DataError, "the Hessian is singular"),
        ({"model": "y ~ poisson(rate = a + b*x)"}, UsageError, "the start (a=0, b=0) is outside the model"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "start": "c=1"}, UsageError, "'c', which is not a parameter"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "fixed": "x=1"}, UsageError, "'x', which is a column"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "fixed": "a=1,b=2"}, UsageError, "holds every parameter"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "start": "a=one"}, UsageError, "'one', which is not a number"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "family": "poisson"}, UsageError, "--family does not apply"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "l2": 1.0}, UsageError, "--l2 does not apply"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "target": "y"}, UsageError, "--target does not apply"),
        ({"model": "y ~ normal(mean = __import__('os').system('exit 7'), sd = 1)"}, UsageError, "not allowed"),
        ({"nll": "(y - a)**2", "model": "y ~ normal(mean = a, sd = 1)"}, UsageError, "not both"),
        ({"nll": "a**2 + b"}, UsageError, "reads no column"),
        ({"family": "poisson", "start": "a=1"}, UsageError, "--start applies to a text model"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "X": np.ones((5, 1))}, UsageError, "not X and y"),
        ({"model": "y ~ poisson(rate = exp(a + b*x))", "offset": "x"}, UsageError, "write the offset into the text"),
    ],
)
def test_bad_models_are_one_sentence(kwargs, error, words):
    rng, df, X1 = frame(200, 1, seed=14)
    df = df.rename(columns={"x1": "x"})
    df["y"] = rng.poisson(np.exp(0.2 + 0.3 * df["x"]))
    with pytest.raises(error) as info:
        mlefit.fit(df, **kwargs)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_a_parameter_spelled_like_a_column_gets_a_hint():
    rng, df, _ = frame(200, 1, seed=15)
    df = df.rename(columns={"x1": "dose"})
    df["y"] = rng.normal(size=200)
    with pytest.raises(DataError, match="Is 'doze' meant to be the column 'dose'"):
        mlefit.fit(df, model="y ~ normal(mean = a + b*doze, sd = exp(s))")


def test_data_outside_the_distribution_or_text_columns_are_refused():
    df = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4], "y": [1, 2, -1, 3], "g": list("abab")})
    with pytest.raises(FamilyError, match="poisson needs a target 'y' that is a whole number 0 or more; data row 3 has -1"):
        mlefit.fit(df, model="y ~ poisson(rate = exp(a + b*x))")
    df["y"] = [1, 2, 1, 3]
    with pytest.raises(DataError, match="column 'g' holds text"):
        mlefit.fit(df, model="y ~ poisson(rate = exp(a + b*g))")


def test_derived_derivatives_that_disagree_are_reported_as_a_bug(monkeypatch):
    from mlefit.textmodel.symbolic import Derivatives

    original = Derivatives.sums

    def wrong(self, params, D, weights, order):
        nll, grad, hess = original(self, params, D, weights, order)
        return nll, None if grad is None else grad * 1.01, hess

    monkeypatch.setattr(Derivatives, "sums", wrong)
    df = zip_data(300, seed=16)
    with pytest.raises(DerivativeError, match="this is a bug of mlefit") as info:
        mlefit.fit(df, model="y ~ poisson(rate = exp(a + b*x))")
    assert info.value.exit_code == 5
