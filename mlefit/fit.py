"""``fit``: data -> family -> optimiser -> inference -> FitResult."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import inference
from .data import Dataset, dataset_from_arrays, load_dataset
from .errors import ConvergenceWarning, DataError, UsageError
from .families import get_family
from .families.base import ClosedForm, Family
from .objective import DataObjective, NumericObjective
from .optimize import DEFAULT_MAX_ITER, DEFAULT_TOL, METHODS, OPTIMIZERS, OptimizeResult
from .results import FitResult

if TYPE_CHECKING:
    import pandas as pd

GRADIENTS = ("analytic", "numeric")


def fit(
    data: "pd.DataFrame | str | Path | Dataset | None" = None,
    family: "str | Family" = "bernoulli",
    *,
    target: str | None = None,
    features: "str | Sequence[str] | None" = None,
    intercept: bool = True,
    X: Any = None,
    y: Any = None,
    feature_names: Sequence[str] | None = None,
    method: str = "newton",
    gradient: str = "analytic",
    tol: float | None = None,
    max_iter: int | None = None,
) -> FitResult:
    """Fit a model by maximum likelihood.

    Parameters
    ----------
    data : DataFrame, path, ``"-"`` or Dataset, optional
        A table (or a CSV path, ``"-"`` for standard input) holding the target and the features.
    family : {"bernoulli", "categorical", "gaussian"} or Family
    target : str, optional
        The target column; default ``y`` if present, else the last column.
    features : str or list of str, optional
        Feature columns (``"a,b,c"`` or a list); default every other column.
    intercept : bool, default True
        Prepend a column of ones named ``intercept``.
    X, y : array-like, optional
        Instead of ``data``: a design of shape (n_obs, n_features) without the intercept column,
        and the raw target of shape (n_obs,).
    feature_names : list of str, optional
        Names of the columns of ``X`` (default ``x1..xp``).
    method : {"newton", "lbfgs", "gd"}
    gradient : {"analytic", "numeric"}
        ``numeric`` uses central finite differences of the NLL for the gradient (and for the
        Hessian with Newton). Standard errors always use the analytic Hessian.
    tol : float, optional
        Convergence tolerance on the Newton decrement ``sqrt(g' H^-1 g)``, the distance to the
        optimum in standard errors. Default 1e-8 for newton, 1e-6 otherwise (and for numeric
        gradients).
    max_iter : int, optional
        Iteration limit (default 100 newton, 2000 lbfgs, 20000 gd).

    Returns
    -------
    FitResult
        With ``converged=False`` (and a ConvergenceWarning) when the optimiser stopped early.
    """
    fam = get_family(family)
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}'.", f"Choose one of: {', '.join(METHODS)}.")
    if gradient not in GRADIENTS:
        raise UsageError(f"unknown gradient '{gradient}'.", f"Choose one of: {', '.join(GRADIENTS)}.")
    if tol is None:
        tol = DEFAULT_TOL[method] if gradient == "analytic" else max(DEFAULT_TOL[method], 1e-6)
    if not (tol > 0 and math.isfinite(tol)):
        raise UsageError(f"--tol must be a positive number; got {tol}.")
    if max_iter is None:
        max_iter = DEFAULT_MAX_ITER[method]
    if max_iter < 0:
        raise UsageError(f"--max-iter must be 0 or more; got {max_iter}.")

    if isinstance(data, Dataset):
        ds = data
    elif X is not None:
        if data is not None:
            raise UsageError("give either data or X and y, not both.")
        ds = dataset_from_arrays(X, y, fam, feature_names=feature_names, intercept=intercept)
    elif data is not None:
        ds = load_dataset(data, fam, target=target, features=features, intercept=intercept)
    else:
        raise UsageError("no data: give a table, a CSV path, or X and y.")
    return fit_dataset(ds, fam, method=method, gradient=gradient, tol=tol, max_iter=max_iter)


def fit_dataset(ds: Dataset, fam: Family, *, method: str, gradient: str, tol: float, max_iter: int) -> FitResult:
    """Fit an already validated :class:`Dataset`."""
    n_classes = len(ds.levels) if ds.levels is not None else None
    n_params = fam.n_params(ds.X.shape[1], n_classes)
    n_weight = float(ds.n_obs if ds.weights is None else ds.weights.sum())
    if n_weight <= n_params:
        raise DataError(
            f"{ds.n_obs} rows are too few for {n_params} parameters; "
            "a maximum-likelihood fit needs more rows than parameters."
        )
    import scipy.linalg  # noqa: F401  (load the solvers before the optimiser's clock starts)

    analytic = DataObjective(fam, ds.X, ds.y, ds.weights)
    objective = analytic if gradient == "analytic" else NumericObjective(analytic)
    closed = fam.closed_form(ds.X, ds.y, ds.weights)
    if closed is not None and closed.exact_fit:
        return _exact_fit(ds, fam, closed, method, gradient, tol, n_weight)
    if closed is not None:
        x0 = closed.params
    else:
        x0 = fam.start_params(ds.X, ds.y, ds.weights, intercept=ds.intercept, n_classes=n_classes)

    if closed is not None and method == "newton" and gradient == "analytic":
        # The MLE is known in closed form: Newton from it would stop at iteration 0, but its
        # float64 gradient and Cholesky factor could not resolve that on an ill-conditioned design.
        opt = _closed_form_result(analytic, closed, tol)
        cov = closed.cov
    else:
        if method == "newton" and gradient == "analytic" and closed is None:
            x0 = _warm_start(ds, fam, x0)
        opt = OPTIMIZERS[method](objective, x0, tol=tol, max_iter=max_iter)
        hess = opt.hess if gradient == "analytic" else analytic.value_grad_hess(opt.params)[2]
        cov = fam.covariance(opt.params, ds.X, ds.y, ds.weights)
        if cov is None:
            root = None
            if inference.ill_conditioned(hess):
                root = fam.hess_root(opt.params, ds.X, ds.y, ds.weights)
            cov = inference.covariance(hess, root)
    if cov is None:
        raise DataError(
            "the Hessian is singular at the estimate, so standard errors do not exist: "
            "some feature columns are collinear, or a feature separates the classes.",
            "Remove redundant columns.",
        )
    result = _build(ds, fam, opt, cov, method, gradient, tol, n_weight)
    if not result.converged:
        warnings.warn(f"the fit did not converge: {result.message}", ConvergenceWarning, stacklevel=2)
    return result


def _closed_form_result(objective: DataObjective, closed: ClosedForm, tol: float) -> OptimizeResult:
    """The closed-form MLE as an optimiser's result: iteration 0, verdict by its decrement."""
    import time

    from .results import IterationRecord

    start = time.perf_counter()
    nll = objective.value(closed.params)
    grad_norm = float(np.max(np.abs(closed.grad))) if closed.grad.size else 0.0
    record = IterationRecord(0, nll, grad_norm, math.nan, time.perf_counter() - start)
    lam = closed.decrement
    verdict = f"Newton decrement {lam:.2g} {'<=' if lam <= tol else '>'} tol {tol:.2g} (distance to the optimum in standard errors)"
    converged = lam <= tol
    message = f"{'converged' if converged else 'not converged'}: closed form ({closed.note}); {verdict}"
    return OptimizeResult(closed.params, nll, closed.grad, closed.hess, converged, message, 0, lam, (record,))


#: Newton fits on at least this many rows (and WARM_START_ROWS_PER_PARAM per parameter in the
#: subsample) start from the fit to a 1-in-WARM_START_STRIDE subsample.
WARM_START_ROWS = 100_000
WARM_START_ROWS_PER_PARAM = 50
WARM_START_STRIDE = 16
WARM_START_RUN = 256


def _warm_start(ds: Dataset, fam: Family, x0: np.ndarray) -> np.ndarray:
    """A start near the optimum for a large fit: Newton on a 1-in-WARM_START_STRIDE subsample.

    The subsample's optimum lies a few standard errors of the full fit from it (about
    sqrt(WARM_START_STRIDE) in each parameter), well inside the region where Newton converges
    quadratically, so the full fit needs two or three fewer iterations, each a pass over all rows,
    for the price of a fit to 1/16 of them. The trace and iteration count are the full fit's,
    from this start. The start is kept only if the subsample fit converged and it beats the usual
    start on another 1/16 of the rows (a subsample can be separated when the data are not).
    """
    if ds.n_obs < max(WARM_START_ROWS, WARM_START_STRIDE * WARM_START_ROWS_PER_PARAM * x0.size):
        return x0

    def subsample(first: int) -> DataObjective:
        # Every WARM_START_STRIDE-th run of WARM_START_RUN consecutive rows, from run ``first``:
        # spread over all the data like single rows, but copied as contiguous pieces (5x faster).
        starts = range(first * WARM_START_RUN, ds.n_obs, WARM_START_STRIDE * WARM_START_RUN)
        X = np.empty((len(starts) * WARM_START_RUN, ds.X.shape[1]), order="F")
        y = np.empty(len(starts) * WARM_START_RUN, dtype=ds.y.dtype)
        w = None if ds.weights is None else np.empty(len(y))
        n = 0
        for start in starts:
            rows = slice(start, start + WARM_START_RUN)
            m = len(ds.y[rows])
            X[n : n + m], y[n : n + m] = ds.X[rows], ds.y[rows]
            if w is not None:
                w[n : n + m] = ds.weights[rows]
            n += m
        return DataObjective(fam, X[:n], y[:n], None if w is None else w[:n])

    # To a quarter of the subsample's standard errors: far below its distance from the full optimum.
    opt = OPTIMIZERS["newton"](subsample(0), x0, tol=0.25, max_iter=20)
    if not opt.converged:
        return x0
    held_out = subsample(WARM_START_STRIDE // 2)
    with np.errstate(all="ignore"):
        better = held_out.value(opt.params) < held_out.value(x0)
    return opt.params if better else x0


def _build(
    ds: Dataset, fam: Family, opt: OptimizeResult, cov: np.ndarray,
    method: str, gradient: str, tol: float, n_weight: float,
) -> FitResult:
    estimates, cov = fam.natural(opt.params, cov)
    labels = fam.param_names(list(ds.feature_names), ds.levels)
    log_scale = np.array([name == "sigma" and fam.name == "gaussian" for name, _ in labels])
    se, z, p_values, ci_low, ci_high = inference.wald(estimates, cov, log_scale)
    n_params = len(estimates)
    loglik = -opt.nll
    aic, bic = inference.information_criteria(loglik, n_params, n_weight)
    extra: dict[str, Any] = {}
    if fam.name == "gaussian":
        sigma = float(estimates[-1])
        rss = sigma**2 * n_weight
        df_resid = n_weight - (n_params - 1)
        extra = {"mse": rss / n_weight, "residual_std_error": math.sqrt(rss / df_resid), "df_resid": df_resid}
    else:
        extra = {"df_resid": n_weight - n_params}
    return FitResult(
        family=fam.name, method=method, gradient=gradient, target=ds.target, target_note=ds.target_note,
        feature_names=ds.feature_names, levels=ds.levels, intercept=ds.intercept,
        names=tuple(n for n, _ in labels), classes=tuple(c for _, c in labels),
        params=estimates, se=se, z=z, p_values=p_values, ci_low=ci_low, ci_high=ci_high, cov=cov,
        n_obs=ds.n_obs, n_params=n_params, nll=opt.nll, mean_nll=opt.nll / n_weight,
        loss_name=fam.loss_name, loglik=loglik, aic=aic, bic=bic,
        converged=opt.converged, message=opt.message, n_iter=opt.n_iter, tol=tol,
        decrement=opt.decrement, trace=opt.trace, **extra,
    )


def _exact_fit(
    ds: Dataset, fam: Family, closed: ClosedForm, method: str, gradient: str, tol: float, n_weight: float
) -> FitResult:
    """Zero residuals: the coefficients are exact, sigma is 0 and the likelihood is unbounded."""
    from .results import IterationRecord

    coef = closed.params[:-1]
    k = len(closed.params)
    labels = fam.param_names(list(ds.feature_names), ds.levels)
    zeros = np.zeros(k)
    estimates = np.append(coef, 0.0)
    nan = np.full(k, np.nan)
    df_resid = n_weight - (k - 1)
    return FitResult(
        family=fam.name, method=method, gradient=gradient, target=ds.target, target_note=ds.target_note,
        feature_names=ds.feature_names, levels=ds.levels, intercept=ds.intercept,
        names=tuple(n for n, _ in labels), classes=tuple(c for _, c in labels),
        params=estimates, se=zeros, z=nan, p_values=nan, ci_low=estimates.copy(), ci_high=estimates.copy(),
        cov=np.zeros((k, k)), n_obs=ds.n_obs, n_params=k, nll=-math.inf, mean_nll=-math.inf,
        loss_name=fam.loss_name, loglik=math.inf, aic=-math.inf, bic=-math.inf, converged=True,
        message="exact fit: every residual is zero (up to float64 rounding), so sigma = 0 and the "
        "likelihood is unbounded; the coefficients are exact and their standard errors are 0 "
        f"({closed.note})",
        n_iter=0, tol=tol, decrement=0.0,
        trace=(IterationRecord(0, -math.inf, 0.0, math.nan, 0.0),),
        mse=0.0, residual_std_error=0.0, df_resid=df_resid, exact_fit=True,
    )
