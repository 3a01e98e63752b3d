"""The fast paths give the same answers as the plain ones: the streaming CSV reader against a
table read whole, row-blocked evaluation against one call, the Newton line search when the full
step fails, and the label encoding without a sort."""

from __future__ import annotations

import math
import re
import subprocess
import importlib
import sys

import numpy as np
import pandas as pd
import pytest

from mlefit import data
from mlefit.errors import DataError, FamilyError
from mlefit.families import FAMILY_NAMES, get_family
from mlefit.engines.base import RowsObjective
from conftest import read_exact, data_objective
from mlefit.optimize import newton


def write(path, frame: pd.DataFrame):
    frame.to_csv(path, index=False)
    return path


def numeric_table(rng, n=200, labels=("no", "yes", "maybe")):
    frame = pd.DataFrame({f"x{j}": rng.standard_normal(n) for j in range(4)})
    frame["ints"] = rng.integers(-5, 5, n)
    frame.insert(2, "label", rng.choice(labels, n))
    return frame


@pytest.fixture(params=["small", "large"])
def reader(request, monkeypatch):
    """Run a test with the pure-Python reader of small files, then with pandas' parallel one."""
    monkeypatch.setattr(data, "SMALL_CSV_BYTES", 1 << 40 if request.param == "small" else 0)
    return request.param


def assert_same_dataset(a: data.Dataset, b: data.Dataset):
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.feature_names == b.feature_names
    assert a.target == b.target
    assert a.levels == b.levels
    assert a.target_note == b.target_note


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("features", [None, "ints,x3,x0"])
def test_streaming_reader_equals_the_table_path(tmp_path, rng, monkeypatch, reader, intercept, features):
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 37)  # many chunks, one of them short
    monkeypatch.setattr(data, "CSV_PIECE_BYTES", 2000)  # and many pieces, read in parallel
    path = write(tmp_path / "t.csv", numeric_table(rng))
    fam = get_family("categorical")
    fast = data._load_numeric_csv(path, fam, target="label", features=features, intercept=intercept)
    assert fast is not None
    whole = data.load_dataset(read_exact(path), fam, target="label", features=features, intercept=intercept)
    assert_same_dataset(fast, whole)
    assert_same_dataset(data.load_dataset(str(path), fam, target="label", features=features, intercept=intercept), whole)


@pytest.mark.parametrize(
    "edit",
    [
        lambda f: f.assign(x1=f["x1"].astype(object).where(f.index != 150, None)),  # missing feature
        lambda f: f.assign(x2=f["x2"].astype(object).where(f.index != 99, "abc")),  # text feature
        lambda f: f.assign(x0=np.where(f.index == 3, np.inf, f["x0"])),  # infinite feature
        lambda f: f.assign(label=f["label"].where(f.index != 7, None)),  # missing target
        lambda f: f.iloc[:0],  # header only
    ],
    ids=["missing-feature", "text-feature", "inf-feature", "missing-target", "header-only"],
)
def test_streaming_reader_leaves_every_problem_to_the_table_path(tmp_path, rng, reader, edit):
    path = write(tmp_path / "t.csv", edit(numeric_table(rng)))
    fam = get_family("categorical")
    assert data._load_numeric_csv(path, fam, target="label", features=None, intercept=True) is None
    with pytest.raises(DataError) as from_path:
        data.load_dataset(str(path), fam, target="label")
    frame = data.read_csv(path) if from_path.value.args[0].find("header but no data") < 0 else None
    if frame is not None:
        with pytest.raises(DataError) as from_frame:
            data.load_dataset(frame, fam, target="label")
        assert str(from_path.value) == str(from_frame.value)


def test_target_typed_differently_across_chunks_reads_as_the_whole_column(tmp_path, rng, monkeypatch, reader):
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 10)
    frame = numeric_table(rng, n=40)
    frame["label"] = ["1", "2"] * 15 + ["a", "b"] * 5  # numbers in the first chunks, text later
    path = write(tmp_path / "t.csv", frame)
    fam = get_family("categorical")
    fast = data._load_numeric_csv(path, fam, target="label", features=None, intercept=True)
    if reader == "large":
        assert fast is None  # the chunks disagree on the type: left to the table path
    else:
        assert_same_dataset(fast, data.load_dataset(read_exact(path), fam, target="label"))
    ds = data.load_dataset(str(path), fam, target="label")
    assert ds.levels == ("1", "2", "a", "b")


@pytest.mark.parametrize(
    "label",
    [["-1", "2"], ["1.5", "2"], ["+1", "2"], ["True", "False"], ["yes", "NA"], ["a", " b"], ["007", "8"]],
    ids=lambda v: "|".join(v),
)
def test_small_reader_reads_targets_as_pandas_does(tmp_path, rng, label):
    frame = numeric_table(rng, n=20)
    frame["label"] = label * 10
    path = write(tmp_path / "t.csv", frame)
    fam = get_family("categorical")
    fast = data._read_small_csv(path, "label", None, True)
    if fast is not None:
        X, values, _, _ = fast
        assert values.dtype.kind == read_exact(path)["label"].to_numpy().dtype.kind
    try:
        whole = data.load_dataset(read_exact(path), fam, target="label")
    except DataError as exc:  # e.g. NA is a missing label: both paths say so alike
        with pytest.raises(DataError, match=re.escape(str(exc))):
            data.load_dataset(str(path), fam, target="label")
    else:
        assert_same_dataset(data.load_dataset(str(path), fam, target="label"), whole)


def test_a_small_numeric_csv_is_fitted_without_pandas(tmp_path, rng):
    path = write(tmp_path / "t.csv", numeric_table(rng, n=50).drop(columns="label").assign(y=[0, 1] * 25))
    code = (
        "import sys\nfrom mlefit.cli import app\n"
        f"try:\n    app(['fit', {str(path)!r}, '--family', 'bernoulli'], prog_name='mlefit')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('pandas' in sys.modules, 'scipy.stats' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.split()[-2:] == ["False", "False"]


def test_unknown_target_is_reported_by_the_table_path(tmp_path, rng):
    path = write(tmp_path / "t.csv", numeric_table(rng))
    with pytest.raises(DataError, match="target column 'nope' not found"):
        data.load_dataset(str(path), get_family("categorical"), target="nope")


# -- row blocks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("weighted", [False, True])
def test_row_blocks_add_up_to_one_evaluation(name, weighted, rng):
    fam = get_family(name)
    n = 203
    X = np.asfortranarray(np.column_stack([np.ones(n), rng.standard_normal((n, 3))]))
    params = 0.5 * rng.standard_normal(fam.n_params(4, 3))
    if name == "gaussian":
        params[-1] = math.log(0.8)
    y = fam.simulate(params, X, rng)
    w = rng.integers(1, 4, n).astype(float) if weighted else None
    whole = fam.evaluate(params, X, y, w)
    blocked = data_objective(fam, X, y, w, rows=17).sums(params, 2)
    assert blocked.nll == pytest.approx(whole.nll, rel=1e-13)
    assert blocked.weight == whole.weight
    np.testing.assert_allclose(blocked.grad, whole.grad, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(blocked.hess, whole.hess, rtol=1e-11, atol=1e-11)
    assert data_objective(fam, X, y, w, rows=17).value(params) == pytest.approx(whole.nll, rel=1e-13)


# -- Newton's line search ------------------------------------------------------------------------------


class Hyperbola:
    """f(x) = sum sqrt(1 + x^2): convex, and a full Newton step from |x| > 1 overshoots."""

    def __init__(self):
        self.calls = {"value": 0, "full": 0}

    def value(self, x):
        self.calls["value"] += 1
        return float(np.sum(np.sqrt(1 + x**2)))

    def value_grad(self, x):
        return self.value(x), x / np.sqrt(1 + x**2)

    def value_grad_hess(self, x):
        self.calls["full"] += 1
        return self.value(x), x / np.sqrt(1 + x**2), np.diag((1 + x**2) ** -1.5)


def test_newton_backtracks_when_the_full_step_fails():
    objective = Hyperbola()
    res = newton(objective, np.array([3.0, -2.0]), tol=1e-10, max_iter=100)
    assert res.converged
    np.testing.assert_allclose(res.params, 0.0, atol=1e-10)
    assert objective.calls["value"] > objective.calls["full"]  # NLL-only evaluations while backtracking
    nlls = [r.nll for r in res.trace]
    assert all(b < a for a, b in zip(nlls, nlls[1:-1]))  # every accepted step decreased f


def test_newton_takes_full_steps_in_one_evaluation_each():
    objective = Hyperbola()
    res = newton(objective, np.array([0.5, -0.3]), tol=1e-10, max_iter=100)
    assert res.converged
    assert objective.calls["full"] == res.n_iter + 1  # the start and one per accepted step
    assert objective.calls["value"] == objective.calls["full"]


# -- label encoding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [np.array([2, 5, 5, 2, 5]), np.array([0.0, 1.0, 1.0]), np.array([True, False, True]), np.array([-1, 1, 1])],
)
def test_bernoulli_numeric_labels_encode_as_the_sorted_levels(values):
    fam = get_family("bernoulli")
    target = fam.encode_target(values)
    levels = np.unique(values)
    assert target.levels == tuple(v.item() for v in levels)
    np.testing.assert_array_equal(target.y, (values == levels[1]).astype(float))
    assert target.y.dtype == np.float64
    assert (target.note is None) == (levels[0] in (0, False) and levels[1] in (1, True))


@pytest.mark.parametrize("values", [np.array([3, 3, 3]), np.array([1, 2, 3])])
def test_bernoulli_numeric_labels_other_than_two_classes_are_refused(values):
    with pytest.raises(FamilyError, match="bernoulli needs exactly two"):
        get_family("bernoulli").encode_target(values)


# -- the warm start of large fits ------------------------------------------------------------------------


def large_problem(name, rng, n=120_000):
    X = rng.standard_normal((n, 3))
    if name == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ [0.5, -0.2, 0.05])))).astype(float)
    else:
        eta = np.column_stack([np.zeros(n), X @ [[0.4, 0.1], [-0.3, 0.2], [0.0, 0.5]]])
        P = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
        y = (P.cumsum(axis=1)[:, :-1] < rng.random((n, 1))).sum(axis=1)
    return X, y


@pytest.mark.parametrize("name", ["bernoulli", "categorical"])
def test_warm_start_reaches_the_same_optimum_in_fewer_passes(name, rng, monkeypatch):
    import mlefit
    fit_module = importlib.import_module("mlefit.fit")

    X, y = large_problem(name, rng)
    warm = mlefit.fit(X=X, y=y, family=name)
    monkeypatch.setattr(fit_module, "WARM_START_ROWS", 10**9)
    cold = mlefit.fit(X=X, y=y, family=name)
    assert warm.converged and cold.converged
    assert np.max(np.abs(warm.params - cold.params) / cold.se) < 1e-7
    np.testing.assert_allclose(warm.se, cold.se, rtol=1e-7)
    assert warm.n_iter < cold.n_iter


def test_warm_start_is_dropped_when_the_subsample_separates(rng, monkeypatch):
    import mlefit
    from mlefit.engines.memory import WARM_START_RUN, WARM_START_STRIDE

    n = 120_000
    X = rng.standard_normal((n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    sub = np.arange(n) // WARM_START_RUN % WARM_START_STRIDE == 0  # the rows of the subsample
    y[sub] = (X[sub, 0] > 0).astype(float)  # x1 separates the classes in the subsample only
    res = mlefit.fit(X=X, y=y, family="bernoulli")
    assert res.converged
    assert abs(res.params[1]) < 10  # the full data are not separated: a finite, modest slope
    monkeypatch.setattr(importlib.import_module("mlefit.fit"), "WARM_START_ROWS", 10**9)
    cold = mlefit.fit(X=X, y=y, family="bernoulli")
    assert res.n_iter == cold.n_iter  # the usual start was kept: the same fit
    np.testing.assert_array_equal(res.params, cold.params)


def test_no_warm_start_when_the_subsample_is_small_for_the_parameters(rng, monkeypatch):
    import mlefit

    fit_module = importlib.import_module("mlefit.fit")
    n, p = 5000, 10  # a 1-in-16 subsample would have 312 rows for 11 parameters: too few
    X = rng.standard_normal((n, p))
    y = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    monkeypatch.setattr(fit_module, "WARM_START_ROWS", 1000)
    calls = []
    real = fit_module.OPTIMIZERS["newton"]
    def counting(obj, x0, **kw):
        if obj.null_columns is None:  # not the intercept-only model
            calls.append(obj.rows.n_obs)
        return real(obj, x0, **kw)

    monkeypatch.setitem(fit_module.OPTIMIZERS, "newton", counting)
    assert mlefit.fit(X=X, y=y, family="bernoulli").converged
    assert calls == [n]  # only the full fit
    calls.clear()
    monkeypatch.setattr(fit_module, "WARM_START_ROWS_PER_PARAM", 1)
    assert mlefit.fit(X=X, y=y, family="bernoulli").converged
    assert calls[-1] == n and len(calls) == 2 and calls[0] < n  # the subsample, then the full fit
