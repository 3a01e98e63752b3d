"""`check-grad`: analytic derivatives against finite differences, passing for every family and
failing for a deliberately wrong one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mlefit
from mlefit import numdiff
from mlefit.checkgrad import DEFAULT_TOL_CHECK, check_grad
from mlefit.errors import EXIT_CHECK_FAILED
from mlefit.families import FAMILY_NAMES, get_family
from mlefit.families.base import BlockSums

from conftest import ROSSI, SAMPLES

DATA = {
    "bernoulli": (SAMPLES / "admissions.csv", "admitted"),
    "categorical": (SAMPLES / "commute.csv", "mode"),
    "gaussian": (SAMPLES / "house_prices.csv", "price_k"),
    "poisson": (SAMPLES / "clinic_visits.csv", "visits"),
    "negbin": (SAMPLES / "clinic_visits.csv", "visits"),
    "gamma": (SAMPLES / "claims.csv", "amount"),
    "weibull": (ROSSI, "week"),
    "exponential": (ROSSI, "week"),
    "lognormal": (ROSSI, "week"),
    "loglogistic": (ROSSI, "week"),
    "ordinal": (SAMPLES / "satisfaction.csv", "satisfaction"),
}
#: Further options a family's sample data need (survival times: the event column; ordered text
#: labels: their order).
OPTIONS = {name: ("--event", "arrest") for name in ("weibull", "exponential", "lognormal", "loglogistic")}
OPTIONS["ordinal"] = ("--levels", "low,medium,high")


def simulated(family: str, n: int = 3000, seed: int = 4) -> pd.DataFrame:
    if family == "categorical":
        return mlefit.simulate(family, [[1.0, -0.5], [0.3, 0.8]], n=n, intercept=[0.2, -0.4], seed=seed)
    if family == "ordinal":
        return mlefit.simulate(family, [1.0, -0.5, 0.25], n=n, cutpoints=[-0.5, 0.4, 1.2], seed=seed)
    fam = mlefit.get_family(family)
    ancillary = {name: 0.7 for name in fam.ancillary}
    censor_rate = 0.3 if fam.censored else None
    return mlefit.simulate(
        family, [1.0, -0.5, 0.25], n=n, intercept=0.3, ancillary=ancillary, seed=seed, censor_rate=censor_rate
    )


def check_json(invoke, *args, expect: int = 0) -> dict:
    result = invoke("check-grad", *args, "--format", "json")
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def test_registry_is_covered():
    assert set(DATA) == set(FAMILY_NAMES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_passes_for_every_family_on_sample_data(family, invoke):
    path, target = DATA[family]
    doc = check_json(invoke, path, "-f", family, "-y", target, *OPTIONS.get(family, ()))
    assert doc["passed"] is True and doc["fit_converged"] is True
    assert doc["tol"] == DEFAULT_TOL_CHECK
    assert [p["label"] for p in doc["points"]] == ["start", "random 1", "random 2", "random 3", "optimum"]
    n = doc["n_params"]
    for p in doc["points"]:
        assert p["passed"] is True
        assert len(p["grad"]) == len(p["grad_rel_err"]) == len(p["hess_rel_err"]) == n
        assert max(p["grad_rel_err"] + p["hess_rel_err"]) <= DEFAULT_TOL_CHECK
    # the start and the random points are real tests: the gradient there is far from zero
    assert max(abs(g) for g in doc["points"][0]["grad"]) > 1.0 or family == "gaussian"
    assert max(abs(g) for g in doc["points"][1]["grad"]) > 1.0
    assert doc["largest_grad_rel_err"] < 1e-7 and doc["largest_hess_rel_err"] < 1e-7


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_passes_for_every_family_on_simulated_data(family):
    event = "event" if get_family(family).censored else None
    check = check_grad(simulated(family), family, event=event)
    assert check.passed
    assert check.largest_grad_rel_err < 1e-7 and check.largest_hess_rel_err < 1e-7


def test_badly_scaled_and_offset_columns_still_pass():
    # a column of years near 2000 and one in the ten-thousands: steps relative to |x| fail here
    rng = np.random.default_rng(0)
    n = 2000
    year = rng.integers(1990, 2021, n).astype(float)
    income = rng.normal(5e4, 1e4, n)
    eta = 0.05 * (year - 2005) + (income - 5e4) / 1e4
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    frame = pd.DataFrame({"year": year, "income": income, "y": y})
    check = check_grad(frame, "bernoulli")
    assert check.passed, check.largest_hess_rel_err
    assert abs(check.points[-1].params[0]) > 50  # the intercept is large: about -0.05 * 2005


def test_metric_is_meaningful_at_the_optimum(invoke):
    """At the optimum the gradient is rounding noise, so |g - gn| / |g| is not a usable error;
    the check's scale (sqrt(H_ii)) is."""
    path, target = DATA["bernoulli"]
    check = check_grad(path, "bernoulli", target=target)
    opt = check.points[-1]
    assert opt.label == "optimum"
    naive = np.abs(opt.grad - opt.grad_numeric) / np.abs(opt.grad)
    assert naive.max() > DEFAULT_TOL_CHECK  # the naive error would fail a correct gradient
    assert opt.grad_rel_err.max() <= DEFAULT_TOL_CHECK


def test_seed_decides_the_random_points():
    path, target = DATA["gaussian"]
    a = check_grad(path, "gaussian", target=target, seed=1, n_random=2)
    b = check_grad(path, "gaussian", target=target, seed=1, n_random=2)
    c = check_grad(path, "gaussian", target=target, seed=2, n_random=2)
    assert a.to_dict() == b.to_dict()
    assert a.points[1].params.tolist() != c.points[1].params.tolist()
    assert a.points[0].params.tolist() == c.points[0].params.tolist()  # the start is the start
    assert a.names[-1] == "log_sigma"  # derivatives are on the optimiser's scale


def test_points_option(invoke):
    path, target = DATA["bernoulli"]
    doc = check_json(invoke, path, "-f", "bernoulli", "-y", target, "--points", "0")
    assert [p["label"] for p in doc["points"]] == ["start", "optimum"]


# -- a deliberately wrong derivative is caught -----------------------------------------------------


def break_family(monkeypatch, family: str, *, grad=None, hess=None) -> None:
    """Patch the family's evaluate so its gradient and/or Hessian is wrong."""
    cls = type(get_family(family))
    original = cls.evaluate

    def evaluate(self, params, X, y, weights=None, order=2, offset=None):
        s = original(self, params, X, y, weights, order, offset=offset)
        g = grad(s.grad.copy()) if grad is not None and s.grad is not None else s.grad
        H = hess(s.hess.copy()) if hess is not None and s.hess is not None else s.hess
        return BlockSums(s.nll, g, H, s.weight)

    monkeypatch.setattr(cls, "evaluate", evaluate)


def scale_last(factor):
    def change(a):
        a[-1] *= factor
        return a

    return change


def flip_first(a):
    a[0] = -a[0]
    return a


def hess_diag(a):
    a[np.diag_indices_from(a)] *= 1.01
    return a


def hess_drop_cross(a):
    k = a.shape[0] // 2
    a[:k, k:] = 0.0
    a[k:, :k] = 0.0
    return a


BUGS = [
    ("gradient 1% off", dict(grad=scale_last(1.01))),
    ("gradient sign", dict(grad=flip_first)),
    ("Hessian diagonal 1% off", dict(hess=hess_diag)),
    ("Hessian cross terms missing", dict(hess=hess_drop_cross)),
]


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("bug", BUGS, ids=[b[0] for b in BUGS])
def test_wrong_derivative_fails_with_its_exit_code(family, bug, invoke, monkeypatch):
    _, change = bug
    break_family(monkeypatch, family, **change)
    path, target = DATA[family]
    options = OPTIONS.get(family, ())
    result = invoke("check-grad", path, "-f", family, "-y", target, *options)
    assert result.exit_code == EXIT_CHECK_FAILED == 5
    assert "FAILED:" in result.stdout and "exceed the tolerance 1e-05" in result.stdout
    assert result.stderr.strip() == (
        "Error: the analytic derivatives disagree with finite differences beyond the tolerance 1e-05."
    )
    doc = check_json(invoke, path, "-f", family, "-y", target, *options, expect=EXIT_CHECK_FAILED)
    assert doc["passed"] is False
    assert doc["points"][0]["passed"] is False  # the start is never the optimum of a wrong model
    assert max(doc["largest_grad_rel_err"], doc["largest_hess_rel_err"]) > 1e-3


def test_wrong_gradient_is_located(monkeypatch):
    break_family(monkeypatch, "bernoulli", grad=scale_last(1.01))
    path, target = DATA["bernoulli"]
    check = check_grad(path, "bernoulli", target=target)
    worst = check.worst("grad_rel_err")
    assert worst.argmax() == len(check.names) - 1  # essay_rating, the broken entry
    assert worst[:-1].max() <= DEFAULT_TOL_CHECK
    from mlefit.render import gradcheck_verdict

    # the Hessian is differenced from the (wrong) gradient, so its row is flagged too
    assert " of essay_rating at " in gradcheck_verdict(check)


# -- output ------------------------------------------------------------------------------------------


def test_table_states_metric_tolerance_and_verdict(invoke):
    path, target = DATA["categorical"]
    result = invoke("check-grad", path, "-f", "categorical", "-y", target)
    assert result.exit_code == 0
    out = result.stdout
    assert "tolerance: 1e-05 on every relative error" in out
    assert "max(|g_i|, |gn_i|, sqrt(H_ii))" in out and "sqrt(H_ii H_jj)" in out
    assert out.rstrip().endswith("passed: every relative error is at most the tolerance 1e-05.")
    worst = out.split("Worst over the points\n")[1].split("\n\n")[0].splitlines()
    assert worst[0].split() == ["name", "class", "grad_abs_err", "grad_rel_err", "hess_abs_err", "hess_rel_err"]
    assert len(worst) == 1 + 12


def test_quiet_and_verbose(invoke):
    path, target = DATA["bernoulli"]
    quiet = invoke("check-grad", path, "-f", "bernoulli", "-y", target, "--quiet")
    assert quiet.stdout == "passed: every relative error is at most the tolerance 1e-05.\n"
    verbose = invoke("check-grad", path, "-f", "bernoulli", "-y", target, "--verbose", "--points", "1")
    rows = verbose.stdout.split("Every point\n")[1].split("\n\n")[0].splitlines()
    assert len(rows) == 1 + 3 * 4  # header + 3 points x 4 parameters


def test_tolerance_option_and_bad_values(invoke):
    path, target = DATA["bernoulli"]
    strict = invoke("check-grad", path, "-f", "bernoulli", "-y", target, "--tol", "1e-20")
    assert strict.exit_code == 5  # nothing agrees to 1e-20: the tolerance is really applied
    for bad in (["--tol", "0"], ["--tol", "nan"], ["--points", "-1"]):
        result = invoke("check-grad", path, "-f", "bernoulli", "-y", target, *bad)
        assert result.exit_code == 2 and result.stderr.startswith("Error: "), bad
    missing = invoke("check-grad", "nope.csv", "-f", "bernoulli")
    assert missing.exit_code == 2 and "not found" in missing.stderr


def test_exact_fit_cannot_be_checked(invoke):
    result = invoke("check-grad", "-", "-f", "gaussian", input="x,y\n0,1\n1,3\n2,5\n3,7\n")
    assert result.exit_code == 2 and "every residual is zero" in result.stderr


# -- numdiff's per-parameter scale ------------------------------------------------------------------


def test_numdiff_scale_sets_the_steps():
    def fun(x):
        return float(np.sum(np.sin(x) * np.array([1.0, 1e3])))

    x = np.array([0.3, 2000.0])
    exact = np.cos(x) * np.array([1.0, 1e3])
    default = numdiff.gradient(fun, x)
    scaled = numdiff.gradient(fun, x, scale=np.array([1.0, 1.0]))
    # a step relative to |x| = 2000 is far too long for sin; a unit scale is right
    assert abs(default[1] - exact[1]) > 1e-3
    np.testing.assert_allclose(scaled, exact, rtol=1e-8)
    np.testing.assert_allclose(numdiff.jacobian(lambda z: np.cos(z), x, scale=np.ones(2)),
                               np.diag(-np.sin(x)), atol=1e-9)
    np.testing.assert_allclose(numdiff.hessian(fun, x, scale=np.ones(2)), np.diag(-np.sin(x) * [1.0, 1e3]),
                               rtol=1e-5, atol=1e-7)
