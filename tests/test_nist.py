"""The NIST StRD linear least-squares problems: every certified digit, exact fits, full precision out.

Accuracy is the log relative error (LRE, the number of correct significant digits) against NIST's
certified values (../shared/reference/README.md). Standard errors are compared on the
maximum-likelihood scale (`derived.bse_ml_scale`: sigma^2 = RSS / n), which is what mlefit reports.
Polynomial problems get their power columns x^2..x^k built here; NoInt1/NoInt2 have no intercept.
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
from mlefit.errors import DataError

from conftest import MLEFIT, NIST_EXTRA, REFERENCE, subprocess_env

SHARED = ("norris", "pontius", "noint1", "noint2", "longley", "wampler1", "wampler2", "wampler3")
EXTRA = ("filip", "wampler4", "wampler5")
EXACT = ("wampler1", "wampler2")
#: Every problem with a non-zero residual, except Filip (see its own tests).
NOISY = tuple(p for p in SHARED + EXTRA if p not in EXACT and p != "filip")

LONGDOUBLE_WIDER = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
PRECISIONS = ["auto", "double-double"] + (["longdouble"] if LONGDOUBLE_WIDER else [])


def load(name: str):
    """``(meta, frame, features)``: certified values, the data with power columns, feature names."""
    folder = REFERENCE if name in SHARED else NIST_EXTRA
    meta = json.loads((folder / f"{name}.json").read_text())
    frame = pd.read_csv(folder / f"{name}.csv")
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
    """Filip's design is nearly singular (scaled condition number ~1e10); it must still be fitted,
    to every digit its float64 columns determine.

    Rounding the power columns x^k to float64 moves the exact least-squares solution itself to
    about 7.6 digits from the certified one, so no method fed those columns can do better: the
    test compares with that exact solution (mpmath) and with the certified values up to what the
    data allow. The test below shows the certified digits with exact columns.
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
