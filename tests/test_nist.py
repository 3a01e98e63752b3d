"""The NIST StRD linear least-squares problems: every certified digit, exact fits, full precision out.

Accuracy is the log relative error (LRE, the number of correct significant digits) against NIST's
certified values (tests/data/nist/README.md). Standard errors are compared on the
maximum-likelihood scale (`derived.bse_ml_scale`: sigma^2 = RSS / n), which is what mlefit reports.
Polynomial problems get their power columns x^2..x^k built here; NoInt1/NoInt2 have no intercept.
Filip's certified digits need the power columns beyond float64: through ``fit`` a formula's power
terms (``poly(x, 10, raw=True)``, ``I(x**k)``, ``{x**k}``) give them (see the Filip section).
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from fractions import Fraction

import mpmath
import numpy as np
import pandas as pd
import pytest

import mlefit
from mlefit import linalg
from mlefit.data import load_dataset
from mlefit.errors import DataError
from mlefit.families import get_family

from conftest import MLEFIT, NIST, subprocess_env

CLASSIC = ("norris", "pontius", "noint1", "noint2", "longley", "wampler1", "wampler2", "wampler3")
EXTRA = ("filip", "wampler4", "wampler5")
EXACT = ("wampler1", "wampler2")
#: Every problem with a non-zero residual, except Filip (see its own tests).
NOISY = tuple(p for p in CLASSIC + EXTRA if p not in EXACT and p != "filip")

LONGDOUBLE_WIDER = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
PRECISIONS = ["auto", "double-double"] + (["longdouble"] if LONGDOUBLE_WIDER else [])


def load(name: str):
    """``(meta, frame, features)``: certified values, the data with power columns, feature names."""
    meta = json.loads((NIST / f"{name}.json").read_text())
    frame = pd.read_csv(NIST / f"{name}.csv")
    features = [k for k in meta["certified"]["params"] if k != "const"]
    for k in features:
        if k.startswith("x^"):
            frame[k] = frame["x"] ** int(k[2:])
    return meta, frame, features


def fit_problem(name: str, **kwargs):
    meta, frame, features = load(name)
    return mlefit.fit(frame, "gaussian", target="y", features=features, intercept=meta["intercept"], **kwargs)


def label(key: str) -> str:
    return "intercept" if key == "const" else key


def lre(estimate: float, certified: float) -> float:
    """Correct significant digits, capped at 15 (float64 holds about 15.9)."""
    if estimate == certified:
        return 15.0
    if certified == 0:
        return -math.log10(abs(estimate))
    return min(15.0, -math.log10(abs(estimate - certified) / abs(certified)))


@pytest.fixture(params=PRECISIONS)
def precision(request, monkeypatch):
    """Run with the automatic choice of extended arithmetic, and with each kind forced."""
    monkeypatch.setattr(linalg, "PRECISION", request.param)
    return request.param


def exact_solution(X: np.ndarray, y: np.ndarray, dps: int = 80):
    """Least squares for the float64 data exactly as given, in mpmath: (coef, ml_se, rss)."""
    with mpmath.workdps(dps):
        A = mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in X])
        b = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        inv = mpmath.inverse(A.T * A)
        coef = inv * (A.T * b)
        r = b - A * coef
        rss = mpmath.fsum(v**2 for v in r)
        se = [mpmath.sqrt(rss / len(y) * inv[i, i]) for i in range(X.shape[1])]
        return [float(c) for c in coef], [float(s) for s in se], float(rss)


# -- every coefficient, standard error, sigma and log-likelihood ---------------------------------


@pytest.mark.parametrize("name", NOISY)
def test_certified_digits(name, precision):
    meta, _, _ = load(name)
    result = fit_problem(name)
    assert result.converged and not result.exact_fit
    est, se = result.estimates, dict(zip(result.labels, result.se))
    digits = {k: lre(est[label(k)], v) for k, v in meta["certified"]["params"].items()}
    assert min(digits.values()) >= 9, digits
    derived = meta["derived"]
    se_digits = {k: lre(se[label(k)], v) for k, v in derived["bse_ml_scale"].items() if v != 0}
    assert se_digits and min(se_digits.values()) >= 8, se_digits
    assert lre(result.params[-1], derived["sigma_ml"]) >= 8
    assert lre(result.loglik, derived["llf"]) >= 8


def test_ill_conditioned_problems_are_refined():
    """The refinement runs where plain QR would lose digits, and not on the easy problems."""
    assert "refined" in fit_problem("wampler5").message
    assert "refined" in fit_problem("longley").message
    assert "refined" not in fit_problem("noint1").message


def test_without_a_wide_longdouble_double_double_is_used(monkeypatch):
    """Where longdouble is plain float64, refinement falls back on double-double arithmetic."""
    monkeypatch.setattr(linalg, "_LD_GAIN", 1.0)
    meta, frame, features = load("wampler4")
    X = np.column_stack([np.ones(len(frame)), frame[features].to_numpy()])
    sol = linalg.QR(X).solve(frame["y"].to_numpy())
    assert sol.refined >= 1 and sol.precision == "double-double"
    result = fit_problem("wampler4")
    digits = [lre(result.estimates[label(k)], v) for k, v in meta["certified"]["params"].items()]
    assert min(digits) >= 9


# -- Filip ------------------------------------------------------------------------------------------


def filip_design():
    meta, frame, features = load("filip")
    X = np.column_stack([np.ones(len(frame)), frame[features].to_numpy()])
    return meta, frame, X


def test_filip_is_fitted_not_refused(precision):
    """Filip's design is nearly singular (scaled condition number ~1e10); given as float64
    columns it must still be fitted, to every digit those columns determine.

    Rounding the power columns x^k to float64 moves the exact least-squares solution itself to
    about 7.6 digits from the certified one, so no method fed those rounded columns can do
    better: the test compares with that exact solution (mpmath) and with the certified values up
    to what the data allow. With exact columns (the tests below: as high + low parts to the QR,
    and through ``fit`` with a formula's power terms) every certified digit is recovered.
    """
    meta, frame, X = filip_design()
    result = fit_problem("filip")
    assert result.converged and not result.exact_fit
    coef, ml_se, _ = exact_solution(X, frame["y"].to_numpy())
    need = 9 if precision == "longdouble" else 12
    assert min(lre(a, b) for a, b in zip(result.params[:-1], coef)) >= need
    assert min(lre(a, b) for a, b in zip(result.se[:-1], ml_se)) >= need - 1
    certified = list(meta["certified"]["params"].values())
    ceiling = min(lre(a, b) for a, b in zip(coef, certified))
    assert min(lre(a, b) for a, b in zip(result.params[:-1], certified)) >= min(9.0, ceiling - 0.1)


def test_filip_with_exact_power_columns_has_every_certified_digit(precision):
    """Given the powers of x beyond float64 (as a high + low pair), the refined QR recovers
    Filip's certified coefficients, ML-scale standard errors and sigma."""
    meta, frame, _ = filip_design()
    x = frame["x"].to_numpy()
    exact = [[Fraction(float(v)) ** k for k in range(11)] for v in x]
    hi = np.array([[float(e) for e in row] for row in exact])
    lo = np.array([[float(e - Fraction(float(e))) for e in row] for row in exact])
    qr = linalg.QR(hi, lo)
    sol = qr.solve(frame["y"].to_numpy())
    assert sol.refined >= 1
    certified = meta["certified"]["params"]
    assert min(lre(a, b) for a, b in zip(sol.x, certified.values())) >= 9
    inv, _ = qr.inverse_gram()
    rss = float(sol.r @ sol.r)
    n = len(x)
    se = np.sqrt(rss / n * np.diag(inv))
    assert min(lre(a, b) for a, b in zip(se, meta["derived"]["bse_ml_scale"].values())) >= 8
    assert lre(math.sqrt(rss / n), meta["derived"]["sigma_ml"]) >= 8


def test_filip_through_the_cli(tmp_path, fit_json):
    _, frame, _ = load("filip")
    path = tmp_path / "filip.csv"
    frame.to_csv(path, index=False)
    out, _ = fit_json(str(path), "--family", "gaussian", "--target", "y")
    assert out["converged"] is True and out["exact_fit"] is False
    assert all(math.isfinite(p["estimate"]) and p["std_error"] > 0 for p in out["parameters"])


# -- Filip through fit: a formula's power terms become exact power columns ------------------------

FILIP_FORMULAS = {
    "poly": "y ~ poly(x, 10, raw=True)",
    "I": "y ~ x + " + " + ".join(f"I(x**{k})" for k in range(2, 11)),
    "braces": "y ~ x + " + " + ".join(f"{{x**{k}}}" for k in range(2, 11)),
}


def filip_frame() -> pd.DataFrame:
    return pd.read_csv(NIST / "filip.csv")


def filip_digits(coef, se, sigma, loglik) -> dict[str, float]:
    """Fewest correct digits of the coefficients, ML-scale standard errors, sigma and loglik
    (in the certified order: intercept, x, x^2, ..., x^10)."""
    meta = json.loads((NIST / "filip.json").read_text())
    derived = meta["derived"]
    return {
        "coef": min(lre(a, b) for a, b in zip(coef, meta["certified"]["params"].values(), strict=True)),
        "se": min(lre(a, b) for a, b in zip(se, derived["bse_ml_scale"].values(), strict=True)),
        "sigma": lre(sigma, derived["sigma_ml"]),
        "loglik": lre(loglik, derived["llf"]),
    }


@pytest.mark.parametrize("form", sorted(FILIP_FORMULAS))
def test_filip_formula_has_every_certified_digit(form, precision):
    """Through ``mlefit.fit`` with the polynomial written as a formula: the power columns are formed
    beyond float64, so the certified coefficients, ML-scale standard errors and sigma come out.
    Double-double refinement (the automatic choice here) gives 14 digits; forced longdouble, whose
    residuals carry 64 bits, about 10.7."""
    result = mlefit.fit(filip_frame(), "gaussian", formula=FILIP_FORMULAS[form])
    assert result.converged and not result.exact_fit
    assert "exact power columns" in result.message
    digits = filip_digits(result.params[:-1], result.se[:-1], result.params[-1], result.loglik)
    need = 9 if precision == "longdouble" else 12
    assert digits["coef"] >= need and digits["se"] >= need, digits
    assert digits["sigma"] >= 12 and digits["loglik"] >= 12, digits


def test_filip_formula_through_the_cli(fit_json):
    """``mlefit fit - --formula "y ~ poly(x, 10, raw=True)" --format json`` from standard input."""
    out, _ = fit_json("-", "--family", "gaussian", "--formula", FILIP_FORMULAS["poly"],
                      input=(NIST / "filip.csv").read_text())
    assert out["converged"] is True and out["exact_fit"] is False
    assert "exact power columns" in out["message"]
    params = out["parameters"]
    assert [p["name"] for p in params] == ["intercept"] + [f"poly(x, 10, raw=True)[{j}]" for j in range(10)] + ["sigma"]
    digits = filip_digits([p["estimate"] for p in params[:-1]], [p["std_error"] for p in params[:-1]],
                          params[-1]["estimate"], out["loglik"])
    assert digits["coef"] >= 12 and digits["se"] >= 12 and digits["sigma"] >= 12 and digits["loglik"] >= 12, digits


def test_power_columns_are_exact_double_doubles():
    """High part: x^k correctly rounded; high + low: x^k to about 1e-31 relative (checked with
    exact rational arithmetic). The intercept and x are exact already and get no low part."""
    frame = filip_frame()
    ds = load_dataset(frame, get_family("gaussian"), formula=FILIP_FORMULAS["poly"])
    assert ds.X_lo is not None and ds.X_lo.shape == ds.X.shape
    assert not ds.X_lo[:, :2].any() and ds.X_lo[:, 2:].any(axis=0).all()
    x = frame["x"].to_numpy()
    for i in (0, 17, 40, 81):
        for k in range(1, 11):
            exact = Fraction(float(x[i])) ** k
            assert ds.X[i, k] == float(exact), (i, k)
            error = Fraction(float(ds.X[i, k])) + Fraction(float(ds.X_lo[i, k])) - exact
            assert abs(error) <= abs(exact) / 2**100, (i, k)
    # the same values without a formula, straight from the kernel
    powers = linalg.powers(x, [3, 10])
    np.testing.assert_array_equal(powers[10][0], ds.X[:, 10])
    np.testing.assert_array_equal(powers[3][1], ds.X_lo[:, 3])


def test_power_terms_are_read_from_the_formula():
    """Which design columns are powers comes from the formula's terms, in any spelling; other
    transformations of x (and powers formulaic computes differently) keep their float64 columns."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(1.0, 0.3, 60), "z": rng.integers(1, 9, 60), "y": rng.normal(size=60)})
    fam = get_family("gaussian")
    ds = load_dataset(frame, fam, formula="y ~ x + I(x**2) + {x**3} + np.power(x, 4) + I(x*x*x*x*x) + x:I(x**5)")
    assert list(ds.feature_names) == [
        "intercept", "x", "I(x ** 2)", "x ** 3", "np.power(x, 4)", "I(x * x * x * x * x)", "x:I(x ** 5)"
    ]
    x = frame["x"].to_numpy()
    for j, k in zip(range(2, 7), range(2, 7)):
        assert ds.X_lo[:, j].any()
        for i in (0, 30):
            exact = Fraction(float(x[i])) ** k
            assert abs(Fraction(float(ds.X[i, j])) + Fraction(float(ds.X_lo[i, j])) - exact) <= abs(exact) / 2**100
    assert not ds.X_lo[:, :2].any()
    for formula in ("y ~ np.log(x) + I(x + x**2) + poly(x, 3) + x:z + I(2 * x**2)", "y ~ x + z + I(z**2)"):
        # not powers of one column (or orthogonal polynomials); z's powers are exact integers
        assert load_dataset(frame, fam, formula=formula).X_lo is None, formula


def test_well_conditioned_polynomial_keeps_the_fast_path():
    """A low-degree polynomial on [0, 1] is well conditioned: the Cholesky path is accurate with
    the float64 columns (their rounding is within its accepted error), so the low parts are not
    used, and the answer agrees with the refined QR of the exact columns."""
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 1, 500)
    frame = pd.DataFrame({"x": x, "y": 1 + x - 2 * x**2 + 0.1 * rng.standard_normal(500)})
    result = mlefit.fit(frame, "gaussian", formula="y ~ poly(x, 2, raw=True)")
    assert "Cholesky" in result.message and "exact power columns" not in result.message
    ds = load_dataset(frame, get_family("gaussian"), formula="y ~ poly(x, 2, raw=True)")
    assert ds.X_lo is not None
    exact = linalg.QR(ds.X, ds.X_lo).solve(ds.y)
    assert exact.refined >= 1
    np.testing.assert_allclose(result.params[:-1], exact.x, rtol=1e-12)


def test_weighted_polynomial_fit_equals_the_fit_of_duplicated_rows():
    """Frequency weights scale the low parts like the design: the weighted exact-power fit is the
    fit of the rows repeated."""
    frame = filip_frame()
    frame["w"] = np.random.default_rng(11).integers(1, 4, len(frame))
    weighted = mlefit.fit(frame, "gaussian", formula=FILIP_FORMULAS["poly"], weights="w")
    repeated = mlefit.fit(frame.loc[frame.index.repeat(frame["w"])].drop(columns="w"), "gaussian",
                          formula=FILIP_FORMULAS["poly"])
    for result in (weighted, repeated):
        assert result.converged and "exact power columns" in result.message
    np.testing.assert_allclose(weighted.params, repeated.params, rtol=1e-11)
    np.testing.assert_allclose(weighted.se, repeated.se, rtol=1e-11)
    assert weighted.loglik == pytest.approx(repeated.loglik, rel=1e-12)
    # and both differ from the unweighted fit far beyond that: the weights do matter
    plain = mlefit.fit(frame, "gaussian", formula=FILIP_FORMULAS["poly"])
    assert np.max(np.abs(plain.params - weighted.params) / np.abs(weighted.params)) > 1e-6


def test_saved_polynomial_model_predicts(tmp_path, invoke):
    """Saved models rebuild the float64 power columns: the predictions' residuals have Filip's
    sigma; other families fit the same formula on the float64 columns."""
    path = tmp_path / "filip.csv"
    filip_frame().to_csv(path, index=False)
    model = tmp_path / "model.json"
    fitted = invoke("fit", str(path), "-f", "gaussian", "--formula", FILIP_FORMULAS["poly"], "--save", str(model), "-q")
    assert fitted.exit_code == 0, fitted.stderr
    predicted = invoke("predict", str(model), str(path))
    assert predicted.exit_code == 0, predicted.stderr
    rows = pd.read_csv(io.StringIO(predicted.stdout))
    rms = math.sqrt(float(np.mean((rows["y"] - rows["predicted_y"]) ** 2)))
    sigma_ml = json.loads((NIST / "filip.json").read_text())["derived"]["sigma_ml"]
    assert lre(rms, sigma_ml) >= 8
    frame = filip_frame()
    rng = np.random.default_rng(2)
    frame["hit"] = (rng.uniform(size=len(frame)) < 1 / (1 + np.exp(-(frame["x"] + 6)))).astype(int)
    cubic = mlefit.fit(frame, "bernoulli", formula="hit ~ poly(x, 3, raw=True)")
    frame["x2"], frame["x3"] = frame["x"] ** 2, frame["x"] ** 3
    columns = mlefit.fit(frame, "bernoulli", target="hit", features=["x", "x2", "x3"])
    assert cubic.converged and columns.converged
    np.testing.assert_allclose(cubic.params, columns.params, rtol=1e-9)


def test_collinear_columns_are_reported(tmp_path, invoke):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, 50)
    frame = pd.DataFrame({"y": rng.standard_normal(50), "a": x, "b": 2 * x + 1})
    with pytest.raises(DataError, match="rank-deficient"):
        mlefit.fit(frame, "gaussian")
    path = tmp_path / "collinear.csv"
    frame.to_csv(path, index=False)
    result = invoke("fit", str(path), "--family", "gaussian")
    assert result.exit_code == 2
    assert "rank-deficient" in result.stderr


# -- exact fits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXACT)
def test_exact_fit_api(name, precision):
    meta, _, _ = load(name)
    result = fit_problem(name)
    assert result.exact_fit and result.converged
    assert "exact fit" in result.message and "unbounded" in result.message
    assert np.all(np.isfinite(result.params))
    digits = [lre(result.estimates[label(k)], v) for k, v in meta["certified"]["params"].items()]
    assert min(digits) >= 9
    assert result.params[-1] == 0.0 and np.all(result.se == 0.0)
    assert result.loglik == math.inf


@pytest.mark.parametrize("name", EXACT)
def test_exact_fit_cli(name, tmp_path, fit_json, invoke):
    meta, frame, _ = load(name)
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    out, _ = fit_json(str(path), "--family", "gaussian", "--target", "y")
    assert out["exact_fit"] is True and out["converged"] is True
    assert "exact fit" in out["message"]
    estimates = {p["name"]: p["estimate"] for p in out["parameters"]}
    assert all(isinstance(v, float) and math.isfinite(v) for v in estimates.values())
    assert estimates["sigma"] == 0.0
    for key, value in meta["certified"]["params"].items():
        assert lre(estimates[label(key)], value) >= 9
    assert out["loglik"] is None  # +inf is not JSON; the message says why
    table = invoke("fit", str(path), "--family", "gaussian", "--target", "y")
    assert table.exit_code == 0 and "exact fit" in table.stdout
    rows = list(csv.DictReader(io.StringIO(invoke("fit", str(path), "-f", "gaussian", "--format", "csv").stdout)))
    assert [float(r["estimate"]) for r in rows] == [estimates[r["name"]] for r in rows]


def test_exact_fit_through_a_pipe(tmp_path):
    _, frame, _ = load("wampler1")
    proc = subprocess.run(
        [MLEFIT, "fit", "-", "--family", "gaussian", "--format", "json"],
        input=frame.to_csv(index=False), capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["exact_fit"] is True
    assert [p["estimate"] for p in out["parameters"]] == [1.0] * 6 + [0.0]


def test_exact_fit_threshold_separates_rounding_from_noise():
    """Residuals that are float64 rounding count as an exact fit; a residual 1e-12 of the data's
    size, far above the threshold (8 u (||y|| + sum_j ||X_j|| |b_j|), ~1e-15 here), does not."""
    x = np.linspace(-3.0, 7.0, 40)
    X = np.column_stack([x, x**2, x**3])
    coef = np.array([0.1, -1.0 / 3.0, 0.7, 1e-2])
    y = coef[0] + X @ coef[1:]  # rounded: not exactly a cubic in float64
    exact = mlefit.fit(X=X, y=y, family="gaussian")
    assert exact.exact_fit
    np.testing.assert_allclose(exact.params[:-1], coef, rtol=1e-12)
    noise = np.random.default_rng(0).standard_normal(40) * 1e-12 * np.linalg.norm(y) / math.sqrt(40)
    noisy = mlefit.fit(X=X, y=y + noise, family="gaussian")
    assert not noisy.exact_fit and noisy.converged
    assert 0.5e-12 < noisy.params[-1] / (np.linalg.norm(y) / math.sqrt(40)) < 2e-12


# -- machine formats keep every bit ---------------------------------------------------------------


def test_json_and_csv_are_bit_exact(tmp_path, invoke):
    _, frame, features = load("longley")
    path = tmp_path / "longley.csv"
    frame.to_csv(path, index=False)
    api = mlefit.fit(path, "gaussian", target="y")
    out = json.loads(invoke("fit", str(path), "--family", "gaussian", "--format", "json").stdout)
    rows = list(csv.DictReader(io.StringIO(invoke("fit", str(path), "--family", "gaussian", "--format", "csv").stdout)))
    fields = ("estimate", "std_error", "z", "p_value", "ci_low", "ci_high")
    columns = (api.params, api.se, api.z, api.p_values, api.ci_low, api.ci_high)
    for i, (param, row) in enumerate(zip(out["parameters"], rows)):
        for field, column in zip(fields, columns):
            value = float(column[i])
            if math.isnan(value):
                assert param[field] is None and row[field] == ""
            else:
                assert param[field] == value and float(row[field]) == value, (field, i)
    assert out["cov"] == api.cov.tolist()
    assert (out["nll"], out["loglik"], out["aic"], out["bic"]) == (api.nll, api.loglik, api.aic, api.bic)
