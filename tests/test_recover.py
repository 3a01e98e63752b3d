"""`mlefit recover` and :func:`mlefit.recover`: recovery studies, their statistics and failures."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import mlefit
from mlefit import render
from mlefit.errors import UsageError
from mlefit.recover import FAILED, NOT_CONVERGED, SUMMARY_FIELDS

# Modest truths so that 200 replications of every family stay fast (categorical: K = 3, p = 2).
TRUTHS = {
    "bernoulli": dict(coef=[1.0, -2.0], intercept=0.5),
    "categorical": dict(coef=[[1.0, -2.0], [0.5, 0.0]], intercept=[0.2, -0.1]),
    "gaussian": dict(coef=[1.0, -2.0], intercept=0.5, sigma=2.0),
}


@pytest.fixture(scope="module")
def studies():
    """200 replications of n = 500 per family (computed once for the module)."""
    return {family: mlefit.recover(family, **truth, n=500, reps=200, seed=0) for family, truth in TRUTHS.items()}


@pytest.mark.parametrize("family", sorted(TRUTHS))
def test_coverage_and_standard_errors(studies, family):
    """The asymptotic theory holds at n = 500: 95% intervals cover the truth about 95% of the
    time and the reported standard errors match the spread of the estimates."""
    study = studies[family]
    assert study.n_converged == 200 and study.n_used == 200
    figures = {label: (round(c, 3), round(r, 3)) for label, c, r in zip(study.labels, study.coverage, study.se_ratio)}
    assert np.all((study.coverage >= 0.90) & (study.coverage <= 0.99)), figures
    assert np.all(np.abs(study.mean_se - study.empirical_sd) <= 0.15 * study.empirical_sd), figures


@pytest.mark.parametrize("family", sorted(TRUTHS))
def test_summary_statistics_from_the_replications(studies, family):
    """Each summary is the textbook formula applied to the stored per-replication estimates."""
    s = studies[family]
    est, truth = s.estimates, s.truth
    assert est.shape == (200, len(truth))
    np.testing.assert_allclose(s.mean_estimate, est.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(s.bias, est.mean(axis=0) - truth, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(s.rmse, np.sqrt(((est - truth) ** 2).mean(axis=0)), rtol=1e-13)
    np.testing.assert_allclose(s.empirical_sd, est.std(axis=0, ddof=1), rtol=1e-13)
    np.testing.assert_allclose(s.mean_se, s.se.mean(axis=0), rtol=1e-13)
    inside = [(lo <= t <= hi) for lo, hi, t in zip(s.ci_low.ravel(), s.ci_high.ravel(), np.tile(truth, 200))]
    np.testing.assert_allclose(s.coverage, np.reshape(inside, est.shape).mean(axis=0))
    # the bias is small against the spread (no systematic error in simulate or fit)
    assert np.all(np.abs(s.bias) < 4 * s.empirical_sd / np.sqrt(200) + 0.05 * np.abs(truth))


def test_same_seed_same_study_and_fewer_reps_is_a_prefix():
    a = mlefit.recover("bernoulli", [1, -1], n=100, reps=12, seed=3)
    b = mlefit.recover("bernoulli", [1, -1], n=100, reps=12, seed=3)
    c = mlefit.recover("bernoulli", [1, -1], n=100, reps=5, seed=3)
    d = mlefit.recover("bernoulli", [1, -1], n=100, reps=5, seed=4)
    assert np.array_equal(a.estimates, b.estimates) and np.array_equal(a.se, b.se)
    assert np.array_equal(a.estimates[:5], c.estimates)  # child i depends only on (seed, i)
    assert not np.array_equal(c.estimates, d.estimates)


def test_without_seed_the_recorded_entropy_reproduces():
    a = mlefit.recover("gaussian", [1.0], n=30, reps=3)
    assert isinstance(a.seed, int)
    assert np.array_equal(a.estimates, mlefit.recover("gaussian", [1.0], n=30, reps=3, seed=a.seed).estimates)


@pytest.mark.parametrize("method, gradient", [("lbfgs", "analytic"), ("gd", "analytic"), ("newton", "numeric")])
def test_every_method_fits_the_same_datasets(method, gradient):
    """A seed fixes the datasets, so another optimiser finds the same optima."""
    truth = TRUTHS["categorical"]
    newton = mlefit.recover("categorical", **truth, n=300, reps=4, seed=9)
    other = mlefit.recover("categorical", **truth, n=300, reps=4, seed=9, method=method, gradient=gradient)
    assert other.method == method and other.gradient == gradient
    assert other.n_converged == 4
    # both stop within 1e-6 standard errors of the optimum (the convergence test)
    assert np.all(np.abs(other.estimates - newton.estimates) <= 1e-4 * newton.se)


def test_failed_fits_are_counted_and_left_out_of_the_averages():
    """A rare class in small samples is often never drawn: those fits fail, with the reason."""
    study = mlefit.recover("categorical", "1;1", intercept="-3.5,0", n=20, reps=60, seed=1)
    assert study.n_failed > 0 and study.n_converged > 0
    assert study.n_converged + study.n_not_converged + study.n_failed == 60
    assert "class 1 was never drawn" in study.messages
    failed = np.array([s == FAILED for s in study.status])
    assert np.all(np.isnan(study.estimates[failed]))
    assert all(study.messages[i] for i in np.flatnonzero(failed))
    used = study.estimates[study.used]
    assert study.n_used == len(used) == study.n_converged
    np.testing.assert_allclose(study.mean_estimate, used.mean(axis=0))
    assert sum(len(reps) for _, _, reps in study.problems()) == 60 - study.n_converged
    data = study.to_dict()
    assert data["n_failed"] == study.n_failed and "converged" in data["averaging"]
    assert [r["status"] for r in data["replications"]] == list(study.status)
    first_failed = data["replications"][int(np.flatnonzero(failed)[0])]
    assert first_failed["estimates"] == [None] * study.n_params


def test_fits_that_do_not_converge_are_kept_but_not_averaged():
    study = mlefit.recover("bernoulli", [1.0, -1.0], n=200, reps=4, seed=0, max_iter=1)
    assert study.status == (NOT_CONVERGED,) * 4 and study.n_used == 0
    assert np.all(np.isfinite(study.estimates))  # the estimates are stored per replication
    assert np.all(np.isnan(study.mean_estimate)) and np.all(np.isnan(study.coverage))
    assert all(p["mean_estimate"] is None for p in study.to_dict()["parameters"])


def test_a_usage_error_stops_the_study_rather_than_counting_as_failures():
    with pytest.raises(UsageError, match="method"):
        mlefit.recover("bernoulli", [1.0], n=50, reps=3, method="bfgs")
    with pytest.raises(UsageError, match="too small"):
        mlefit.recover("bernoulli", [1.0, 2.0], n=3, reps=3)
    with pytest.raises(UsageError, match="--reps"):
        mlefit.recover("bernoulli", [1.0], reps=0)


def test_fixed_design_redraws_only_y():
    """With a fixed design the gaussian SE of a coefficient is sigma_hat * sqrt((X'X)^-1_jj):
    its ratio to sigma_hat is the same in every replication. With fresh features it is not."""
    X = np.random.default_rng(0).standard_normal((80, 2))
    fixed = mlefit.recover("gaussian", [1.0, 2.0], X=X, reps=10, seed=1)
    fresh = mlefit.recover("gaussian", [1.0, 2.0], n=80, reps=10, seed=1)
    assert fixed.fixed_design and fixed.n_obs == 80 and not fresh.fixed_design
    ratio = fixed.se[:, 1] / fixed.estimates[:, -1]
    assert np.ptp(ratio) < 1e-12 * ratio.max()
    assert np.ptp(fresh.se[:, 1] / fresh.estimates[:, -1]) > 1e-3


def test_progress_is_reported():
    calls = []
    mlefit.recover("gaussian", [1.0], n=20, reps=3, seed=0, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


# -- the command ---------------------------------------------------------------------------------


def test_cli_json_matches_the_api(invoke):
    result = invoke("recover", "-f", "bernoulli", "--coef", "1,-2", "--intercept", "0.5", "--n", "300",
                    "--reps", "20", "--seed", "5", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    data = json.loads(result.stdout)
    api = mlefit.recover("bernoulli", [1, -2], intercept=0.5, n=300, reps=20, seed=5)
    assert data == json.loads(json.dumps(api.to_dict()))
    assert [p["name"] for p in data["parameters"]] == ["intercept", "x1", "x2"]
    assert list(data["parameters"][0]) == list(SUMMARY_FIELDS)
    assert data["reps"] == 20 and data["n_converged"] == 20 and len(data["replications"]) == 20
    assert data["replications"][0]["estimates"] == api.estimates[0].tolist()


def test_cli_csv_and_table(invoke):
    args = ["recover", "-f", "categorical", "--coef", "1;-1", "--n", "200", "--reps", "10", "--seed", "2"]
    out = invoke(*args, "--format", "csv")
    assert out.exit_code == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert list(rows[0]) == list(SUMMARY_FIELDS)
    assert [(r["name"], r["class"], float(r["truth"])) for r in rows] == [
        ("intercept", "1", 0.0), ("x1", "1", 1.0), ("intercept", "2", 0.0), ("x1", "2", -1.0)
    ]
    api = mlefit.recover("categorical", "1;-1", n=200, reps=10, seed=2)
    assert [float(r["coverage"]) for r in rows] == api.coverage.tolist()
    table = invoke(*args)
    assert table.exit_code == 0
    header = next(line for line in table.stdout.splitlines() if line.startswith("name"))
    assert header.split() == ["name", "class", *SUMMARY_FIELDS[2:-1]]
    assert "10 converged, 0 did not converge, 0 failed" in table.stdout


def test_cli_reports_failures_and_exits_3(invoke):
    args = ["recover", "-f", "categorical", "--coef", "1;1", "--intercept", "-3.5,0", "--n", "20", "--reps", "30",
            "--seed", "1"]
    result = invoke(*args)
    assert result.exit_code == 3
    assert "failed (replication" in result.stdout
    assert result.stderr.startswith("Warning: ") and "did not converge or failed" in result.stderr
    as_json = invoke(*args, "--format", "json")
    assert as_json.exit_code == 3 and json.loads(as_json.stdout)["n_failed"] > 0


def test_cli_with_a_design(invoke, tmp_path):
    from conftest import SAMPLES

    result = invoke("recover", "-f", "gaussian", "--design", SAMPLES / "house_prices.csv", "--features",
                    "area_m2,bedrooms", "--coef", "1.5,10", "--sigma", "5", "--reps", "5", "--seed", "0",
                    "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fixed_design"] and data["design"].endswith("house_prices.csv")
    assert [p["name"] for p in data["parameters"]] == ["intercept", "area_m2", "bedrooms", "sigma"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = _Terminal()
    with render.progress_bar("fitting", 3, tty) as update:
        for i in range(3):
            update(i + 1, 3)
    assert "fitting" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    quiet = _Terminal()
    with render.progress_bar("fitting", 3, quiet) as update:
        update(1, 3)
    assert quiet.getvalue() == ""
    monkeypatch.delenv("NO_COLOR")
    pipe = io.StringIO()
    with render.progress_bar("fitting", 3, pipe) as update:
        update(1, 3)
    assert pipe.getvalue() == ""

