"""The ordinal family (cumulative link models): golden comparisons with statsmodels' OrderedModel and
R's polr, the log-space likelihood far in the tails (mpmath), the level order, every engine, the
separation check of ordered classes, simulate/recover, predict and model files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
import pytest

import mlefit
from conftest import SAMPLES
from mlefit import numdiff
from mlefit.checks import find_separation
from mlefit.errors import FamilyError, SeparationError, UsageError
from mlefit.families import get_family

UCLA = Path(__file__).resolve().parent / "data" / "ologit" / "ologit_ucla.csv"
LEVELS = ("unlikely", "somewhat likely", "very likely")
FEATURES = ["pared", "public", "gpa"]
SATISFACTION = SAMPLES / "satisfaction.csv"
SAT = dict(target="satisfaction", levels="low,medium,high")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def cutpoints(theta: np.ndarray) -> np.ndarray:
    """OrderedModel's thresholds: the first, then the exponentials of the increments added up."""
    return np.concatenate([theta[:1], theta[0] + np.cumsum(np.exp(theta[1:]))])


def richardson_hessian(f, x: np.ndarray, h: float = 3e-3) -> np.ndarray:
    """Central second differences of ``f`` at steps h and h/2, extrapolated (error O(h^4))."""
    k = len(x)

    def central(step: float) -> np.ndarray:
        H = np.empty((k, k))
        for i in range(k):
            for j in range(i, k):
                ei, ej = np.eye(k)[i] * step, np.eye(k)[j] * step
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * step**2)
        return H

    return (4 * central(h / 2) - central(h)) / 3


@pytest.fixture(scope="module")
def ucla():
    return pd.read_csv(UCLA)


def ordered_model(frame: pd.DataFrame, distr: str):
    """statsmodels' OrderedModel fitted to the UCLA data to its tightest tolerance."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    y = pd.Series(pd.Categorical(frame["apply"], categories=list(LEVELS), ordered=True))
    model = OrderedModel(y, frame[FEATURES].astype(float), distr=distr)
    with warnings.catch_warnings():  # BFGS on numerical gradients cannot certify gtol=1e-12; it gets near
        warnings.simplefilter("ignore")
        ref = model.fit(method="bfgs", gtol=1e-12, maxiter=5000, disp=0)
    return model, ref


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_matches_statsmodels_ordered_model(ucla, link):
    res = mlefit.fit(ucla, "ordinal", target="apply", features=FEATURES, link=link, levels=LEVELS)
    model, ref = ordered_model(ucla, link)
    theta = np.asarray(ref.params)
    assert res.converged
    assert res.names == (*FEATURES, "cut[unlikely|somewhat likely]", "cut[somewhat likely|very likely]")
    assert _rel(res.params[:3], theta[:3]) < 1e-6
    assert _rel(res.params[3:], cutpoints(theta[3:])) < 1e-6
    assert res.loglik == pytest.approx(ref.llf, rel=1e-10)
    # OrderedModel's own covariance: the inverse of an accurate Hessian of its log-likelihood (its
    # bse come from a cruder numerical Hessian), mapped to the cutpoints by the delta method here
    cov = np.linalg.inv(-richardson_hessian(model.loglike, theta))
    J = np.eye(5)
    J[4, 3], J[4, 4] = 1.0, np.exp(theta[4])  # c_1 = t_0 + exp(t_1)
    cov_cut = J @ cov @ J.T
    assert _rel(res.se, np.sqrt(np.diag(cov_cut))) < 1e-6
    assert _rel(res.se[:3], ref.bse[:3]) < 1e-4  # its own standard errors, to their accuracy
    np.testing.assert_allclose(res.cov, cov_cut, rtol=1e-5, atol=1e-8 * np.abs(cov_cut).max())
    assert res.null_loglik == pytest.approx(model.loglike(np.r_[0, 0, 0, ref.model.start_params[3:]]), rel=1e-10)
    assert res.lr_df == 3 and res.n_params == 5


def test_matches_r_polr(ucla):
    """R MASS::polr's estimates and fitted probabilities, as statsmodels' tests record them."""
    res = mlefit.fit(ucla, "ordinal", target="apply", features=FEATURES, levels=LEVELS)
    # polr stops where optim's BFGS does (a relative change of the log-likelihood below 1e-8):
    # within 1e-3 of the optimum that OrderedModel and mlefit agree on to 1e-6
    np.testing.assert_allclose(res.params[:3], [1.04769011, -0.05878572, 0.61594057], atol=2e-4)
    np.testing.assert_allclose(res.params[3:], [2.203915, 4.299363], atol=1e-3)
    np.testing.assert_allclose(res.se[:3], [0.2658, 0.2979, 0.2606], atol=1e-4)
    # its fitted probabilities, from its own estimates: the model's probabilities to R's 7 digits
    r_estimates = np.array([1.04769011, -0.05878572, 0.61594057, 2.203915, 4.299363])
    prob = get_family("ordinal").predict(r_estimates, ucla[FEATURES].head(7).to_numpy(float))
    expected = [[0.5488310, 0.3593310, 0.09183798], [0.3055632, 0.4759496, 0.21848725],
                [0.2293835, 0.4781951, 0.29242138], [0.6161224, 0.3126888, 0.07118879],
                [0.6560149, 0.2833901, 0.06059505], [0.6609240, 0.2797117, 0.05936431],
                [0.6518332, 0.2865114, 0.06165547]]
    np.testing.assert_allclose(prob, expected, rtol=2e-6)
    # and mlefit's own, through mlefit.predict, within what R's estimates leave
    ours = mlefit.predict(res, ucla.head(7))[[f"prob_{v}" for v in LEVELS]].to_numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-4)


# -- the likelihood far in the tails ---------------------------------------------------------------


def reference_log_prob(link: str, cut: np.ndarray, eta: float, k: int) -> float:
    """``log(F(c_k - eta) - F(c_{k-1} - eta))`` in 50-digit arithmetic: as the difference of the
    survival functions when both bounds lie above 0 (mpmath keeps tiny values, not the digits of
    a difference of two numbers near 1)."""
    mpmath.mp.dps = 50
    F = (lambda x: 1 / (1 + mpmath.exp(-x))) if link == "logit" else mpmath.ncdf
    inf = mpmath.inf
    upper = mpmath.mpf(cut[k]) - eta if k < len(cut) else inf
    lower = mpmath.mpf(cut[k - 1]) - eta if k > 0 else -inf
    if lower > 0:
        return float(mpmath.log(F(-lower) - (F(-upper) if upper != inf else 0)))
    return float(mpmath.log((F(upper) if upper != inf else 1) - (F(lower) if lower != -inf else 0)))


@pytest.mark.parametrize("link", ["logit", "probit"])
@pytest.mark.parametrize("eta", [-200.0, -37.0, -8.0, 0.3, 8.0, 37.0, 200.0])
def test_nll_exact_far_in_the_tails(link, eta):
    fam = get_family("ordinal", link=link)
    cut = np.array([-1.0, 0.2, 0.21, 3.0])  # one narrow gap
    theta = np.r_[cut[0], np.log(np.diff(cut))]
    params = np.r_[eta, theta]
    X = np.ones((5, 1))
    y = np.arange(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = fam.evaluate(params, X, y)
        rows = [fam.nll(params, X[:1], y[k:k + 1]) for k in range(5)]
    for k in range(5):
        expected = -reference_log_prob(link, cut, eta, k)
        assert rows[k] == pytest.approx(expected, rel=1e-11), k
    assert np.isfinite(s.nll) and np.all(np.isfinite(s.grad)) and np.all(np.isfinite(s.hess))
    # the derivatives there equal finite differences of that exact NLL
    f = lambda b: fam.nll(b, X, y)  # noqa: E731
    scale = max(1.0, np.abs(s.grad).max())
    np.testing.assert_allclose(s.grad, numdiff.gradient(f, params), rtol=1e-6, atol=1e-7 * scale)
    H = numdiff.jacobian(lambda b: fam.grad(b, X, y), params)
    np.testing.assert_allclose(s.hess, H, rtol=1e-5, atol=1e-6 * np.abs(H).max())


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_probabilities_sum_to_one_and_match_the_nll(link, rng):
    fam = get_family("ordinal", link=link)
    X = rng.standard_normal((40, 2)) * 10
    estimates = np.array([1.5, -2.0, -1.0, 0.0, 0.5, 4.0])
    P = fam.predict(estimates, X)
    assert P.shape == (40, 5)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    params = fam.from_natural(estimates, 5)
    for k in range(5):
        y = np.full(40, k)
        per_row = np.array([fam.nll(params, X[i:i + 1], y[i:i + 1]) for i in range(40)])
        np.testing.assert_allclose(P[:, k], np.exp(-per_row), rtol=1e-12)


def test_parametrisation_keeps_the_cutpoints_increasing(rng):
    fam = get_family("ordinal")
    for _ in range(20):
        theta = rng.normal(scale=5.0, size=4)
        estimates, _ = fam.natural(np.r_[0.3, theta], np.eye(5), 5)
        assert np.all(np.diff(estimates[1:]) > 0)
        np.testing.assert_allclose(fam.from_natural(estimates, 5), np.r_[0.3, theta], rtol=1e-12, atol=1e-12)
    with pytest.raises(FamilyError, match="cutpoints must increase"):
        fam.from_natural(np.array([0.3, 1.0, 0.5]), 3)


# -- labels and their order ------------------------------------------------------------------------


def test_numeric_labels_in_numeric_order():
    t = get_family("ordinal").encode_target(np.array([10, 2, 33, 2, 10]), "stars")
    assert t.levels == (2, 10, 33) and list(t.y) == [1, 0, 2, 0, 1]
    assert t.y.dtype == np.intp and "2 < 10 < 33" in t.note


def test_levels_set_the_order_of_text_labels():
    fam = get_family("ordinal", levels=("low", "medium", "high"))
    t = fam.encode_target(np.array(["high", "low", "medium", "low"], dtype=object), "rating")
    assert t.levels == ("low", "medium", "high") and list(t.y) == [2, 0, 1, 0]
    # --levels reorders numbers too
    t = get_family("ordinal", levels="3,2,1").encode_target(np.array([1, 2, 3]), "y")
    assert t.levels == (3, 2, 1) and list(t.y) == [2, 1, 0]


@pytest.mark.parametrize(
    "levels, message",
    [
        (None, "target column 'rating' holds text labels, whose order ordinal needs to know; the labels found: "
               "high, low, medium."),
        ("low,medium", "target column 'rating' has the label 'high' (data row 1), which --levels does not list; "
                       "the labels found: high, low, medium."),
        ("low,medium,high,top", "--levels lists 'top', which target column 'rating' does not have; the labels "
                                "found: high, low, medium."),
    ],
)
def test_text_labels_need_matching_levels(levels, message):
    fam = get_family("ordinal", levels=levels)
    with pytest.raises(FamilyError) as err:
        fam.encode_target(np.array(["high", "low", "medium"], dtype=object), "rating")
    assert err.value.message == message


def test_levels_errors_through_the_cli(invoke):
    result = invoke("fit", SATISFACTION, "-f", "ordinal", "-y", "satisfaction")
    assert result.exit_code == 2 and result.stdout == ""
    assert "the labels found: high, low, medium" in result.stderr and "--levels" in result.stderr
    result = invoke("fit", SATISFACTION, "-f", "ordinal", "-y", "satisfaction", "--levels", "low,low,high")
    assert result.exit_code == 2 and "--levels lists 'low' twice" in result.stderr
    result = invoke("fit", SATISFACTION, "-f", "ordinal", "-y", "satisfaction", "--levels", "low,medium,high",
                    "--link", "cloglog")
    assert result.exit_code == 2 and "unknown --link 'cloglog' for ordinal. Choose one of: logit, probit." in result.stderr
    result = invoke("fit", SATISFACTION, "-f", "categorical", "-y", "satisfaction", "--levels", "low,medium,high")
    assert result.exit_code == 2 and "--levels does not apply to categorical" in result.stderr


def test_single_class_is_refused():
    with pytest.raises(FamilyError, match="single class"):
        get_family("ordinal").encode_target(np.array([2, 2, 2]), "y")


# -- the report, JSON, engines ----------------------------------------------------------------------


def test_report_json_and_names(fit_json, invoke):
    doc, _ = fit_json(SATISFACTION, "-f", "ordinal", "-y", "satisfaction", "--levels", "low,medium,high")
    assert doc["family"] == "ordinal" and doc["family_options"] == {"levels": ["low", "medium", "high"]}
    assert doc["intercept"] is False and doc["levels"] == ["low", "medium", "high"]
    names = [p["name"] for p in doc["parameters"]]
    assert names == ["wait_min", "support_calls", "member[yes]", "cut[low|medium]", "cut[medium|high]"]
    assert all(p["class"] is None for p in doc["parameters"])
    # the null model is the cutpoints alone: its log-likelihood is that of the class proportions
    counts = pd.read_csv(SATISFACTION)["satisfaction"].value_counts().to_numpy()
    assert doc["null_loglik"] == pytest.approx(float(np.sum(counts * np.log(counts / counts.sum()))), rel=1e-12)
    assert doc["lr_df"] == 3 and doc["null_model"] == "cutpoints only"
    text = invoke("fit", SATISFACTION, "-f", "ordinal", "-y", "satisfaction", "--levels", "low,medium,high",
                  "--link", "probit").stdout
    assert text.splitlines()[0].startswith(
        "mlefit fit: ordinal (ordered probit), link probit, levels low,medium,high, method newton")
    assert "ordered levels low < medium < high (--levels)" in text.splitlines()[1]
    assert "null log-likelihood (cutpoints only)" in text and "intercept only" not in text


OPTIONS = [{}, {"weights": "w"}, {"cov": "robust"}, {"l2": 0.5}, {"offset": "o"}, {"link": "probit"}]
OPTION_IDS = ["plain", "weights", "robust", "l2", "offset", "probit"]


def ordinal_csv(path: Path, n: int = 900, seed: int = 3) -> Path:
    """Text classes of which 'high' appears only after the first chunks, a text feature and a
    numeric one, weights and an offset."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    g = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    o = rng.normal(scale=0.3, size=n)
    eta = x1 - 0.5 * x2 + 0.7 * (g == "b") + o
    y = np.array(["low", "mid", "high"])[((eta + rng.logistic(size=n))[:, None] > [-1.0, 0.8]).sum(axis=1)]
    y[:200] = np.where(y[:200] == "high", "mid", y[:200])
    pd.DataFrame({"x1": x1, "x2": x2, "g": g, "w": rng.integers(0, 4, n), "o": o, "y": y}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
@pytest.mark.parametrize("features", [None, "x1,x2"], ids=["two-pass", "one-pass"])
def test_streamed_fit_equals_in_memory(tmp_path, options, features):
    path = ordinal_csv(tmp_path / "o.csv")
    kw = dict(levels="low,mid,high", features=features, **options)
    if "offset" in options and features is None:
        kw["features"] = "x1,x2,g"
    mem = mlefit.fit(path, "ordinal", **kw)
    st = mlefit.fit(path, "ordinal", stream=True, chunk_rows=97, **kw)
    assert mem.converged and st.converged
    assert st.names == mem.names and st.levels == mem.levels == ("low", "mid", "high")
    assert _rel(st.params, mem.params) < 1e-10
    assert _rel(st.se, mem.se) < 1e-10
    assert _rel(st.nll, mem.nll) < 1e-10
    if mem.null_loglik is not None:
        assert _rel(st.null_loglik, mem.null_loglik) < 1e-10


@pytest.mark.parametrize("options", OPTIONS[:3] + OPTIONS[-1:], ids=OPTION_IDS[:3] + OPTION_IDS[-1:])
def test_dask_fit_equals_in_memory(tmp_path, client, options):
    path = ordinal_csv(tmp_path / "o.csv")
    mem = mlefit.fit(path, "ordinal", levels="low,mid,high", **options)
    remote = mlefit.fit(path, "ordinal", levels="low,mid,high", engine="dask", client=client, chunk_rows=100, **options)
    assert remote.names == mem.names and remote.levels == mem.levels
    assert _rel(remote.params, mem.params) < 1e-10
    assert _rel(remote.se, mem.se) < 1e-10
    assert _rel(remote.nll, mem.nll) < 1e-10


def test_every_method_reaches_the_same_optimum():
    ref = mlefit.fit(SATISFACTION, "ordinal", **SAT)
    for method in ("lbfgs", "gd"):
        res = mlefit.fit(SATISFACTION, "ordinal", method=method, **SAT)
        assert res.converged and _rel(res.params, ref.params) < 1e-5
    numeric = mlefit.fit(SATISFACTION, "ordinal", gradient="numeric", **SAT)
    assert _rel(numeric.params, ref.params) < 1e-5


def test_formula_leaves_the_intercept_out(tmp_path, invoke):
    pytest.importorskip("formulaic")
    columns = mlefit.fit(SATISFACTION, "ordinal", **SAT)
    formula = mlefit.fit(SATISFACTION, "ordinal", formula="satisfaction ~ wait_min + support_calls + C(member)",
                         levels="low,medium,high")
    assert formula.names[:3] == ("wait_min", "support_calls", "C(member)[T.yes]")
    assert not formula.intercept and "intercept" not in formula.feature_names
    assert _rel(formula.params, columns.params) < 1e-10
    # the saved model rebuilds the design without the intercept's column
    model = tmp_path / "m.json"
    result = invoke("fit", SATISFACTION, "-f", "ordinal", "--formula", "satisfaction ~ wait_min + C(member)",
                    "--levels", "low,medium,high", "--save", model, "--quiet")
    assert result.exit_code == 0, result.stderr
    scored = invoke("predict", model, SATISFACTION)
    assert scored.exit_code == 0 and scored.stdout.splitlines()[0].endswith(
        "prob_low,prob_medium,prob_high,predicted_satisfaction")
    result = invoke("fit", SATISFACTION, "-f", "ordinal", "--formula", "satisfaction ~ wait_min - 1",
                    "--levels", "low,medium,high")
    assert result.exit_code == 2
    assert "drops the intercept term, which ordinal needs" in result.stderr and "Remove '- 1'" in result.stderr


# -- predict, model files, check-grad ---------------------------------------------------------------


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_model_file_round_trip_keeps_link_and_levels(tmp_path, invoke, link):
    path = tmp_path / "model.json"
    result = invoke("fit", SATISFACTION, "-f", "ordinal", "-y", "satisfaction", "--levels", "low,medium,high",
                    "--link", link, "--save", path, "--quiet")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(path.read_text())
    expected = {"levels": ["low", "medium", "high"]} | ({"link": "probit"} if link == "probit" else {})
    assert doc["family_options"] == expected
    model = mlefit.load_model(path)
    fit = mlefit.fit(SATISFACTION, "ordinal", link=link, **SAT)
    frame = pd.read_csv(SATISFACTION)
    scored = model.predict(frame)
    P = get_family("ordinal", link=link).predict(fit.params, fit_design(frame))
    np.testing.assert_allclose(scored[["prob_low", "prob_medium", "prob_high"]].to_numpy(), P, rtol=1e-12)
    assert list(scored["predicted_satisfaction"]) == list(np.array(["low", "medium", "high"])[P.argmax(axis=1)])
    cli = invoke("predict", path, SATISFACTION)
    assert cli.exit_code == 0
    out = pd.read_csv(pd.io.common.StringIO(cli.stdout))
    np.testing.assert_allclose(out["prob_high"], P[:, 2], rtol=1e-12)


def fit_design(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([frame["wait_min"], frame["support_calls"], frame["member"] == "yes"]).astype(float)


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_check_grad_passes(invoke, link):
    result = invoke("check-grad", SATISFACTION, "-f", "ordinal", "-y", "satisfaction", "--levels", "low,medium,high",
                    "--link", link, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["passed"] and doc["largest_grad_rel_err"] < 1e-7 and doc["largest_hess_rel_err"] < 1e-7
    assert doc["points"][0]["label"] == "start" and max(abs(g) for g in doc["points"][1]["grad"]) > 1.0


# -- separation -------------------------------------------------------------------------------------


def test_ordered_separation_is_decided_by_the_cumulative_model():
    # the multinomial programs call these classes separated; the cumulative model's MLE exists
    X = np.array([[-1.0], [1.0], [-1.0], [1.0], [-1.0], [1.0]])
    y = np.array([0, 1, 2, 2, 0, 1])
    assert find_separation(np.column_stack([np.ones(6), X]), y, 3) is not None
    assert find_separation(X, y, 3, ordered=True) is None
    res = mlefit.fit(X=X, y=y, family="ordinal")
    assert res.converged and np.all(np.isfinite(res.se))
    # classes in the order of x: complete; ties at a boundary: quasi-complete
    found = find_separation(np.arange(9.0)[:, None], np.repeat([0, 1, 2], 3), 3, ordered=True)
    assert found["complete"] and found["columns"] == [0]
    found = find_separation(np.array([0, 1, 2, 2, 3, 4, 5.0])[:, None], np.array([0, 0, 0, 1, 1, 2, 2]), 3, ordered=True)
    assert not found["complete"]
    assert list(found["perfect"]) == [True, True, False, False, True, True, True]
    assert list(found["rows"]) == [True, True, False, True, True, True, True]


def test_separated_fit_exits_4(tmp_path, invoke, rng):
    x1, x2 = rng.standard_normal(200), rng.standard_normal(200)
    y = np.where(x1 < -0.5, "low", np.where(x1 < 0.5, "mid", "high"))
    path = tmp_path / "sep.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "y": y}).to_csv(path, index=False)
    result = invoke("fit", path, "-f", "ordinal", "--levels", "low,mid,high")
    assert result.exit_code == 4
    assert "complete separation: column 'x1' separates the classes 'low', 'mid', 'high'" in result.stderr
    with pytest.raises(SeparationError):
        mlefit.fit(path, "ordinal", levels="low,mid,high", stream=True, chunk_rows=50)
    assert mlefit.fit(path, "ordinal", levels="low,mid,high", l2=1.0).converged


# -- simulate and recover ---------------------------------------------------------------------------


def test_simulate_with_cutpoints_or_classes(invoke):
    frame = mlefit.simulate("ordinal", [1.0, -0.5], cutpoints="-1,0.5,2", n=20000, seed=3)
    assert sorted(frame["y"].unique()) == [0, 1, 2, 3] and frame["y"].dtype == np.int64
    res = mlefit.fit(frame, "ordinal")
    assert res.names == ("x1", "x2", "cut[0|1]", "cut[1|2]", "cut[2|3]")
    assert np.all(np.abs(res.params - [1.0, -0.5, -1.0, 0.5, 2.0]) < 4 * res.se)
    # --classes K alone: cutpoints F^-1(j / K), equally likely classes at x'b = 0
    truth = mlefit.make_truth("ordinal", [0.0], n_classes=4)
    np.testing.assert_allclose(truth.values[1:], np.log([1 / 3, 1.0, 3.0]), rtol=1e-12)
    truth = mlefit.make_truth(get_family("ordinal", link="probit"), [0.0], n_classes=2)
    assert truth.values[1] == 0.0 and truth.names == ("x1", "cut[0|1]") and not truth.intercept
    for args, message in [
        ((), "ordinal needs its number of classes: give --classes K, or the K - 1 true cutpoints"),
        (("--cutpoints", "1,0"), "--cutpoints must increase; got 1,0."),
        (("--cutpoints", "0,1", "--classes", "4"), "4 classes need 3 cutpoints; --cutpoints has 2."),
        (("--classes", "3", "--intercept", "0.5"), "--intercept does not apply to ordinal"),
        (("--classes", "3", "--coef", "1;2"), "ordinal takes one row of coefficients"),
    ]:
        result = invoke("simulate", "-f", "ordinal", "--coef", "1", *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
    result = invoke("simulate", "-f", "bernoulli", "--coef", "1", "--cutpoints", "0,1")
    assert result.exit_code == 2 and "--cutpoints does not apply to bernoulli" in result.stderr


def test_simulate_truth_joins_the_fit(tmp_path, invoke):
    truth = tmp_path / "truth.json"
    sim = invoke("simulate", "-f", "ordinal", "--link", "probit", "--coef", "1,-0.5", "--cutpoints", "-0.5,0.7",
                 "--n", "3000", "--seed", "4", "--truth", truth)
    assert sim.exit_code == 0
    doc = json.loads(truth.read_text())
    assert doc["family_options"] == {"link": "probit"} and doc["intercept"] is False
    assert [p["name"] for p in doc["parameters"]] == ["x1", "x2", "cut[0|1]", "cut[1|2]"]
    fitted = invoke("fit", "-", "-f", "ordinal", "--link", "probit", "--truth", truth, "--format", "json",
                    input=sim.stdout)
    assert fitted.exit_code == 0, fitted.stderr
    rows = json.loads(fitted.stdout)["parameters"]
    assert [r["truth"] for r in rows] == [1.0, -0.5, -0.5, 0.7]
    assert all(abs(r["error_se"]) < 4 for r in rows)


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_recovery_coverage_near_nominal(link):
    study = mlefit.recover("ordinal", [1.0, -0.5], cutpoints=[-1.0, 0.3, 1.5], link=link, n=400, reps=200, seed=8)
    assert study.n_used == 200
    assert study.names == ("x1", "x2", "cut[0|1]", "cut[1|2]", "cut[2|3]")
    # 200 replications: a coverage of 0.95 is seen within about +-0.046 (3 binomial standard errors)
    assert np.all(np.abs(study.coverage - 0.95) < 0.046), study.coverage
    # the spread of an empirical SD over 200 replications is about 5%: within 4 of those of 1
    assert np.all(np.abs(study.se_ratio - 1.0) < 0.2), study.se_ratio
    # the bias is within the Monte Carlo error of the mean and the small-sample bias of the MLE
    assert np.all(np.abs(study.bias) < 3 * study.empirical_sd / np.sqrt(200) + 0.03), study.bias
