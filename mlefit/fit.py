"""``fit``: data -> family -> optimiser -> inference -> FitResult."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from . import checks, inference
from .data import Dataset, dataset_from_arrays, load_dataset
from .errors import ConvergenceWarning, DataError, UsageError
from .families import get_family
from .families.base import ClosedForm, Family, label_text
from .objective import DataObjective, NumericObjective, PenalizedObjective
from .optimize import DEFAULT_MAX_ITER, DEFAULT_TOL, METHODS, OPTIMIZERS, OptimizeResult
from .results import FitResult

if TYPE_CHECKING:
    import pandas as pd

GRADIENTS = ("analytic", "numeric")
COV_TYPES = ("model", "robust")
CI_METHODS = ("wald", "profile")


@dataclass(frozen=True)
class Extras:
    """What a fit computes beyond its optimum, for every engine (see :func:`_finish`).

    ``ci``: the intervals in use, ``wald`` or ``profile`` (profile-likelihood intervals of the
    parameters named in ``profile``, all when None); ``level``: the level of every interval;
    ``fingerprint``: compute :func:`mlefit.fingerprint.rows_fingerprint` of the rows used.
    """

    ci: str = "wald"
    profile: tuple[str, ...] | None = None
    level: float = 0.95
    fingerprint: bool = False


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
    weights: Any = None,
    formula: str | None = None,
    dropna: bool = False,
    l2: float | None = None,
    cov: str = "model",
    method: str = "newton",
    gradient: str = "analytic",
    tol: float | None = None,
    max_iter: int | None = None,
    stream: bool = False,
    chunk_rows: int | None = None,
    cache_dir: "str | Path | None" = None,
    memory_limit: int | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    ci: str | None = None,
    profile: "str | Sequence[str] | None" = None,
    level: float = 0.95,
    fingerprint: bool = False,
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
    weights : str or array-like, optional
        Frequency weights: a column of ``data``, or an array of shape (n_obs,) with ``X``. The fit
        equals the fit of the data with each row repeated ``weight`` times; ``n_obs`` (for AIC,
        BIC and degrees of freedom) is the sum of the weights.
    formula : str, optional
        ``"y ~ x1 + C(region) + np.log(income)"``: a Wilkinson formula (formulaic) whose left side
        is the target; instead of ``target``/``features``.
    dropna : bool, default False
        Drop rows with a missing value in a column the fit uses (default: raise DataError).
    l2 : float, optional
        The MAP estimate under a Gaussian prior: minimise ``NLL + (l2 / 2) ||w||^2`` with the
        intercepts (and gaussian's sigma) not penalised; categorical uses the symmetric
        multinomial penalty. Standard errors come from the penalised Hessian.
    cov : {"model", "robust"}
        ``robust``: sandwich (HC0) covariance for se, z, p and intervals.
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
    stream : bool, default False
        Read the CSV (path or ``"-"``) in chunks of ``chunk_rows`` rows through a binary cache in
        ``cache_dir`` (default a temporary folder, removed afterwards) instead of into memory; see
        :mod:`mlefit.stream`. A CSV path larger than ``memory_limit`` bytes (default a quarter of
        the machine's memory) is streamed anyway.
    engine : {"local", "dask"}
        ``dask``: read the CSV with dask.dataframe on the cluster at ``scheduler``
        (``tcp://HOST:PORT`` or ``local``) and sum the block sums there; see :mod:`mlefit.dask_engine`.
    ci : {"wald", "profile"}, optional
        The intervals in use: ``wald`` (estimate +- z SE; the default) or ``profile``
        (profile-likelihood intervals, :mod:`mlefit.profile`, in ``profile_ci_low`` /
        ``profile_ci_high``; the Wald ones stay in ``ci_low`` / ``ci_high``). Not with
        ``cov="robust"`` or ``l2``.
    profile : str or list of str, optional
        The parameters to profile (``"a,b"`` or a list; a label ``class:name``, or a name for
        every class's); default all. Implies ``ci="profile"``.
    level : float, default 0.95
        The level of every interval (Wald and profile).
    fingerprint : bool, default False
        Compute ``data_fingerprint``, a SHA-256 of the rows used (encoded target, weights, row
        count; :mod:`mlefit.fingerprint`), which saved models carry for ``mlefit lrtest``.

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
    if l2 is not None and not (l2 > 0 and math.isfinite(l2)):
        raise UsageError(f"--l2 must be a positive number; got {l2}.")
    if cov not in COV_TYPES:
        raise UsageError(f"unknown covariance '{cov}'.", f"Choose one of: {', '.join(COV_TYPES)}.")
    extras = _extras(ci, profile, level, fingerprint, cov, l2)

    if engine not in ("local", "dask"):
        raise UsageError(f"unknown engine '{engine}'.", "Choose one of: local, dask.")
    if engine == "dask":
        from .dask_engine import fit_dask

        if not isinstance(data, (str, Path)) or str(data) == "-":
            raise UsageError("--engine dask reads a CSV file (a path the workers can read), not standard input.")
        return fit_dask(
            data, fam, scheduler=scheduler, target=target, features=features, intercept=intercept,
            weights=weights, formula=formula, dropna=dropna, l2=l2, cov=cov, method=method,
            gradient=gradient, tol=tol, max_iter=max_iter, chunk_rows=chunk_rows, extras=extras,
        )
    if data is not None and not isinstance(data, Dataset) and X is None:
        from . import stream as streaming

        if stream or streaming.should_stream(data, memory_limit):
            if not isinstance(data, (str, Path)):
                raise UsageError("streaming reads a CSV file or standard input ('-'), not a table in memory.")
            if weights is not None and not isinstance(weights, str):
                raise UsageError("with a table, weights names one of its columns.")
            return streaming.fit_streamed(
                data, fam, target=target, features=features, intercept=intercept, weights=weights,
                formula=formula, dropna=dropna, l2=l2, cov=cov, method=method, gradient=gradient,
                tol=tol, max_iter=max_iter, chunk_rows=chunk_rows, cache_dir=cache_dir,
                memory_limit=memory_limit, extras=extras,
            )
    if isinstance(data, Dataset):
        ds = data
    elif X is not None:
        if data is not None:
            raise UsageError("give either data or X and y, not both.")
        ds = dataset_from_arrays(X, y, fam, feature_names=feature_names, intercept=intercept, weights=weights)
    elif data is not None:
        if weights is not None and not isinstance(weights, str):
            raise UsageError("with a table, weights names one of its columns.")
        ds = load_dataset(
            data, fam, target=target, features=features, intercept=intercept, weights=weights,
            formula=formula, dropna=dropna,
        )
    else:
        raise UsageError("no data: give a table, a CSV path, or X and y.")
    return fit_dataset(
        ds, fam, method=method, gradient=gradient, tol=tol, max_iter=max_iter, l2=l2, cov=cov, extras=extras,
    )


def _extras(ci, profile, level, fingerprint, cov: str, l2) -> Extras:
    """Check the interval options (before any data are read)."""
    from .profile import split_names

    inference.check_level(level)
    names = split_names(profile)
    if ci is None:
        ci = "profile" if names is not None else "wald"
    if ci not in CI_METHODS:
        raise UsageError(f"unknown interval method '{ci}'.", f"Choose one of: {', '.join(CI_METHODS)}.")
    if ci == "wald" and names is not None:
        raise UsageError("--profile names parameters for profile-likelihood intervals, which --ci wald does not compute; use --ci profile.")
    if ci == "profile" and cov == "robust":
        raise UsageError("--ci profile cannot be combined with --cov robust: a profile likelihood interval rests on the model's likelihood, which robust standard errors do not trust.")
    if ci == "profile" and l2 is not None:
        raise UsageError("--ci profile cannot be combined with --l2: a penalised fit is not a maximum of the likelihood, so there is no likelihood profile to read an interval from.")
    return Extras(ci, names, float(level), bool(fingerprint))


def _class_eta(fam: Family, params: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The linear predictor per class, shape (n_obs, n_classes), reference column 0."""
    if hasattr(fam, "linear_predictor"):
        return fam.linear_predictor(params, X)
    eta = X @ params
    return np.column_stack([np.zeros_like(eta), eta])


def _suspect_separation(fam: Family, objective: DataObjective, params: np.ndarray, ds: Dataset) -> bool:
    """:func:`checks.suspect_separation` at the estimate, from the optimiser's last pass over the
    rows when that pass was at the estimate (the families report the smallest class
    log-probability with the Hessian), else from a pass of its own."""
    low = objective.min_log_prob(params)
    if low is None:
        return checks.suspect_separation(_class_eta(fam, params, ds.X), ds.weights)
    return low < checks.SUSPECT_LOG_PROB


def _check_classes(ds: Dataset, n_classes: int) -> None:
    if ds.y.dtype.kind == "f" and n_classes == 2:  # bernoulli's 0.0/1.0: no integer copy of y
        ones = float(np.count_nonzero(ds.y)) if ds.weights is None else float(ds.weights @ ds.y)
        zeros = ds.n_obs - ones if ds.weights is None else float(ds.weights @ (1.0 - ds.y))
        counts = np.array([zeros, ones])
    else:
        counts = np.bincount(ds.y.astype(np.intp), weights=ds.weights, minlength=n_classes)
    if np.any(counts <= 0):
        label = label_text(ds.levels[int(np.flatnonzero(counts <= 0)[0])])
        raise DataError(f"class '{label}' has no rows with a positive weight, so its probability cannot be estimated.")


def fit_dataset(
    ds: Dataset, fam: Family, *, method: str, gradient: str, tol: float, max_iter: int,
    l2: float | None = None, cov: str = "model", extras: Extras = Extras(),
) -> FitResult:
    """Fit an already validated :class:`Dataset`.

    Before the optimiser, without a penalty: the rank of the design (:func:`checks.check_rank`). After it, for the
    classification families without a penalty, when the fit shows the symptoms of separation:
    the exact check (:func:`checks.check_separation`).
    """
    n_classes = len(ds.levels) if ds.levels is not None else None
    n_params = fam.n_params(ds.X.shape[1], n_classes)
    n_weight = float(ds.n_obs if ds.weights is None else ds.weights.sum())
    if n_weight <= n_params:
        raise DataError(
            f"{ds.n_obs} rows are too few for {n_params} parameters; "
            "a maximum-likelihood fit needs more rows than parameters."
        )

    gram = None  # X'WX, formed by the rank check and reused by gaussian least squares
    if l2 is None:  # with a penalty the optimum is unique even for collinear columns (ridge)
        gram = checks.check_rank(ds.X, ds.feature_names, ds.weights, intercept=ds.intercept)
    classes = ds.levels is not None and fam.name in ("bernoulli", "categorical")
    if classes:
        _check_classes(ds, n_classes)

    analytic = DataObjective(fam, ds.X, ds.y, ds.weights)
    exact = analytic
    if l2 is not None:
        exact = PenalizedObjective(analytic, fam.l2_matrix(ds.X.shape[1], n_classes, intercept=ds.intercept), l2)
    objective = exact if gradient == "analytic" else NumericObjective(exact)
    # The closed form (gaussian least squares) is the unpenalised MLE.
    closed = fam.closed_form(ds.X, ds.y, ds.weights, gram=gram, X_lo=ds.X_lo) if l2 is None else None
    if closed is not None and closed.exact_fit:
        return _exact_fit(ds, fam, closed, method, gradient, tol, n_weight, extras)
    if closed is not None:
        x0 = closed.params
    else:
        x0 = fam.start_params(ds.X, ds.y, ds.weights, intercept=ds.intercept, n_classes=n_classes)
    if not np.all(np.isfinite(x0)):
        # an exact least-squares fit under a penalty: the penalty shrinks it, so start sigma at the
        # spread of y
        spread = float(np.sqrt(np.average((ds.y - np.average(ds.y, weights=ds.weights)) ** 2, weights=ds.weights)))
        x0 = np.where(np.isfinite(x0), x0, math.log(spread) if spread > 0 else 0.0)

    if closed is not None and method == "newton" and gradient == "analytic":
        # The MLE is known in closed form: Newton from it would stop at iteration 0, but its
        # float64 gradient and Cholesky factor could not resolve that on an ill-conditioned design.
        opt = _closed_form_result(analytic, closed, tol)
        cov_model = closed.cov
    else:
        options = {}
        if method == "newton" and gradient == "analytic" and closed is None and l2 is None:
            x0, options["hess0"] = _warm_start(ds, fam, x0, n_weight)
            # a large fit: spare a Hessian pass with a chord step near the optimum (small fits
            # keep the plain Newton iterates)
            options["chord"] = ds.n_obs >= CHORD_ROWS
        opt = OPTIMIZERS[method](objective, x0, tol=tol, max_iter=max_iter, **options)
        hess = opt.hess if gradient == "analytic" else exact.value_grad_hess(opt.params)[2]
        cov_model = fam.covariance(opt.params, ds.X, ds.y, ds.weights) if l2 is None else None
        if cov_model is None:
            root = None
            if l2 is None and inference.ill_conditioned(hess):
                root = fam.hess_root(opt.params, ds.X, ds.y, ds.weights)
            cov_model = inference.covariance(hess, root)
    if classes and l2 is None and (
        not opt.converged or cov_model is None
        or _suspect_separation(fam, analytic, opt.params, ds)
    ):
        checks.check_separation(
            ds.X, ds.y.astype(np.intp), n_classes, ds.feature_names, [label_text(v) for v in ds.levels],
            ds.weights, intercept=ds.intercept,
        )
    return _finish(
        ds, fam, opt, cov_model, lambda: fam.score_outer(opt.params, ds.X, ds.y, ds.weights), analytic,
        method, gradient, tol, n_weight, l2, cov, extras=extras,
    )


def _finish(
    ds: Any, fam: Family, opt: OptimizeResult, cov_model: np.ndarray | None, score_outer, analytic,
    method: str, gradient: str, tol: float, n_weight: float, l2: float | None, cov: str,
    extras: Extras = Extras(), **build: Any,
) -> FitResult:
    """From the optimum to the result, for every engine: the covariance used (model-based, or the
    HC0 sandwich with the summed score outer products ``score_outer()``), the unpenalised NLL, the
    FitResult, the profile-likelihood intervals (over the unpenalised objective ``analytic``) and
    the rows' fingerprint when ``extras`` asks for them, and a ConvergenceWarning when the
    optimiser stopped early."""
    if cov_model is None:
        raise DataError(
            "the Hessian is singular at the estimate, so standard errors do not exist.",
            "Check for nearly collinear columns, or use --l2.",
        )
    cov_used = inference.sandwich(cov_model, score_outer()) if cov == "robust" else cov_model
    nll = opt.nll if l2 is None else analytic.value(opt.params)
    result = _build(
        ds, fam, opt, nll, cov_used, cov_model, method, gradient, tol, n_weight, l2, cov, level=extras.level, **build,
    )
    if extras.ci == "profile":
        result = _with_profile(result, fam, analytic, opt, cov_model, extras)
    if extras.fingerprint:
        result = replace(result, data_fingerprint=_fingerprint(ds))
    if not result.converged:
        warnings.warn(f"the fit did not converge: {result.message}", ConvergenceWarning, stacklevel=3)
    return result


def _with_profile(
    result: FitResult, fam: Family, objective: Any, opt: OptimizeResult, cov_model: np.ndarray, extras: Extras,
) -> FitResult:
    """The result with its profile-likelihood intervals (:func:`mlefit.profile.profile_intervals`
    over ``objective`` at the optimum), mapped to the reported scale by the family's transform."""
    from . import profile

    k = result.n_params
    wanted = profile.resolve(extras.profile, result.names, result.classes)
    low, high = np.full(k, np.nan), np.full(k, np.nan)
    status = [(profile.NOT_PROFILED, profile.NOT_PROFILED)] * k
    notes: list[str] = []
    fits = passes = 0
    if not result.converged:
        notes.append("no profile-likelihood intervals: the fit did not converge, so its NLL is not the maximum")
        status = [(profile.FAILED, profile.FAILED) if j in wanted else status[j] for j in range(k)]
    else:
        intervals = profile.profile_intervals(
            objective, opt.params, opt.nll, cov_model, wanted, extras.level, names=result.labels,
        )
        zero = np.zeros((k, k))
        for iv in intervals:
            ends = []
            for end in (iv.lower, iv.upper):
                value = math.nan
                if end.value is not None:
                    point = opt.params.copy()
                    point[iv.index] = end.value
                    value = float(fam.natural(point, zero)[0][iv.index])
                ends.append((value, end.status))
                if end.note:
                    notes.append(end.note)
            if ends[0][0] > ends[1][0]:  # a decreasing transform swaps the ends
                ends.reverse()
            (low[iv.index], s_low), (high[iv.index], s_high) = ends
            status[iv.index] = (s_low, s_high)
            fits += iv.fits
            passes += iv.passes
    return replace(
        result, ci_method="profile", profile_ci_low=low, profile_ci_high=high, profile_status=tuple(status),
        profile_notes=tuple(notes), profile_fits=fits, profile_passes=passes,
    )


def _fingerprint(ds: Any) -> str:
    """:func:`mlefit.fingerprint.rows_fingerprint` of a Dataset, or of a streamed source's chunks."""
    from .fingerprint import rows_fingerprint

    if isinstance(ds, Dataset):
        return rows_fingerprint([(ds.y, ds.weights)])
    return rows_fingerprint(ds.cache.target_chunks())


def _closed_form_result(objective: DataObjective, closed: ClosedForm, tol: float) -> OptimizeResult:
    """The closed-form MLE as an optimiser's result: iteration 0, verdict by its decrement."""
    import time

    from .results import IterationRecord

    start = time.perf_counter()
    nll = objective.value(closed.params) if closed.nll is None else closed.nll
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
#: Newton fits on at least this many rows may take a chord step (``optimize.newton(chord=True)``).
CHORD_ROWS = 100_000
WARM_START_ROWS_PER_PARAM = 50
WARM_START_STRIDE = 16
WARM_START_RUN = 256


def wants_warm_start(n_obs: int, n_params: int) -> bool:
    """Whether a Newton fit on ``n_obs`` rows starts from a subsample's fit (see :func:`warm_start`)."""
    return n_obs >= max(WARM_START_ROWS, WARM_START_STRIDE * WARM_START_ROWS_PER_PARAM * n_params)


def warm_start(
    subsample: Callable[[int], DataObjective], x0: np.ndarray, total_weight: float | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A start near the optimum for a large fit: Newton on a subsample, ``subsample(0)``, of rows
    spread over all of them (in memory: :func:`_warm_start`; streamed: ``stream._warm_start``).

    The subsample's optimum lies a few standard errors of the full fit from it (about
    sqrt(WARM_START_STRIDE) in each parameter), well inside the region where Newton converges
    quadratically, so the full fit needs two or three fewer iterations, each a pass over all rows,
    for the price of a fit to 1/16 of them. The trace and iteration count are the full fit's,
    from this start. The start is kept only if the subsample fit converged and it beats the usual
    start on other rows, ``subsample(1)`` (a subsample can be separated when the data are not).

    Returns the start and, when it is the subsample's optimum, the subsample's Hessian there scaled
    to the full data (``total_weight`` over the subsample's; None: not wanted): within a few percent of the full
    Hessian at that point, good enough for the first Newton step, which then costs a gradient pass
    instead of a Hessian pass (see ``optimize.newton``'s ``hess0``). Otherwise ``(x0, None)``.
    """
    sample = subsample(0)
    # To a quarter of the subsample's standard errors: far below its distance from the full optimum.
    opt = OPTIMIZERS["newton"](sample, x0, tol=0.25, max_iter=20)
    if not opt.converged:
        return x0, None
    held_out = subsample(1)
    with np.errstate(all="ignore"):
        better = held_out.value(opt.params) < held_out.value(x0)
    if not better:
        return x0, None
    if total_weight is None:
        return opt.params, None
    part = float(len(sample.y) if sample.weights is None else sample.weights.sum())
    return opt.params, opt.hess * (total_weight / part)


def _warm_start(ds: Dataset, fam: Family, x0: np.ndarray, total_weight: float) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`warm_start` from every WARM_START_STRIDE-th run of WARM_START_RUN rows in memory."""
    if not wants_warm_start(ds.n_obs, x0.size):
        return x0, None

    def subsample(which: int) -> DataObjective:
        # Every WARM_START_STRIDE-th run of WARM_START_RUN consecutive rows, from run 0 (or half a
        # stride on, for the held-out rows): spread over all the data like single rows, but copied
        # as contiguous pieces (5x faster).
        first = which * (WARM_START_STRIDE // 2)
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

    return warm_start(subsample, x0, total_weight)


def _se_method(l2: float | None, cov: str) -> str:
    bread = (
        "the Hessian of the penalised objective at the MAP estimate" if l2 is not None
        else "the Hessian of the NLL at the MLE"
    )
    if cov == "robust":
        return f"sandwich (HC0): H^-1 (sum_i s_i s_i') H^-1, H {bread}, s_i the per-row scores of the NLL"
    if l2 is not None:
        return f"inverse of {bread} (Laplace approximation to the posterior)"
    return f"inverse of {bread} (observed information)"


def _null_model(ds: Dataset, fam: Family, n_classes: int | None) -> tuple[float, int, np.ndarray] | None:
    """Log-likelihood, parameter count and parameters of the intercept-only model, or None without
    an intercept."""
    if not ds.intercept:
        return None
    X0 = ds.X[:, :1]
    params0 = fam.start_params(X0, ds.y, ds.weights, intercept=True, n_classes=n_classes)
    if not np.all(np.isfinite(params0)):
        return None
    nll0 = DataObjective(fam, X0, ds.y, ds.weights).value(params0)
    return -nll0, fam.n_params(1, n_classes), params0


def _fit_statistics(
    ds: Dataset, fam: Family, n_classes: int | None, loglik: float, n_params: int,
    n_weight: float, rss: float | None, penalised: bool,
) -> dict[str, Any]:
    """Null model, likelihood-ratio test, McFadden's pseudo R^2 / R^2 (keys of FitResult).

    ``ds`` needs only ``X`` (its first column), ``y``, ``weights`` and ``intercept``: a streamed fit
    passes a few weighted rows with the same intercept-only likelihood.
    """
    null = _null_model(ds, fam, n_classes)
    out: dict[str, Any] = {}
    if null is None:
        return out
    null_loglik, null_params, params0 = null
    out["null_loglik"] = null_loglik
    if not penalised:  # a penalised fit is not a maximum of the likelihood: no LR test
        df = n_params - null_params
        stat, p = inference.likelihood_ratio(loglik, null_loglik, df)
        out.update(lr_stat=stat, lr_df=df, lr_p_value=p)
    if fam.name == "gaussian":
        sigma0 = math.exp(float(params0[-1]))  # the intercept-only least squares
        tss = sigma0**2 * n_weight
        out["r2"] = 1.0 - rss / tss
    else:
        out["pseudo_r2"] = 1.0 - loglik / null_loglik if null_loglik != 0 else math.nan
    return out


def _n_obs(ds: Dataset, n_weight: float) -> int | float:
    if ds.weights is None:
        return ds.n_obs
    return int(n_weight) if float(n_weight).is_integer() else n_weight


def _build(
    ds: Dataset, fam: Family, opt: OptimizeResult, nll: float, cov: np.ndarray, cov_model: np.ndarray,
    method: str, gradient: str, tol: float, n_weight: float, l2: float | None, cov_type: str,
    null_data: Any = None, level: float = 0.95,
) -> FitResult:
    n_classes = len(ds.levels) if ds.levels is not None else None
    estimates, cov = fam.natural(opt.params, cov)
    labels = fam.param_names(list(ds.feature_names), ds.levels)
    log_scale = np.array([name == "sigma" and fam.name == "gaussian" for name, _ in labels])
    se, z, p_values, ci_low, ci_high = inference.wald(estimates, cov, log_scale, level=level)
    se_model = None
    if cov_type == "robust":
        se_model = np.sqrt(np.maximum(np.diag(fam.natural(opt.params, cov_model)[1]), 0.0))
    n_params = len(estimates)
    loglik = -nll
    aic, bic = inference.information_criteria(loglik, n_params, n_weight)
    if l2 is not None:  # a penalised fit has fewer effective parameters than it estimates
        aic = bic = math.nan
    extra: dict[str, Any] = {}
    rss = None
    if fam.name == "gaussian":
        sigma = float(estimates[-1])
        rss = sigma**2 * n_weight
        df_resid = n_weight - (n_params - 1)
        extra = {"mse": rss / n_weight, "residual_std_error": math.sqrt(rss / df_resid), "df_resid": df_resid}
    else:
        extra = {"df_resid": n_weight - n_params}
    extra.update(_fit_statistics(ds if null_data is None else null_data, fam, n_classes, loglik, n_params, n_weight, rss, l2 is not None))
    return FitResult(
        family=fam.name, method=method, gradient=gradient, target=ds.target, target_note=ds.target_note,
        feature_names=ds.feature_names, levels=ds.levels, intercept=ds.intercept,
        names=tuple(n for n, _ in labels), classes=tuple(c for _, c in labels),
        params=estimates, se=se, z=z, p_values=p_values, ci_low=ci_low, ci_high=ci_high, cov=cov,
        n_obs=_n_obs(ds, n_weight), n_params=n_params, nll=nll, mean_nll=nll / n_weight,
        loss_name=fam.loss_name, loglik=loglik, aic=aic, bic=bic,
        converged=opt.converged, message=opt.message, n_iter=opt.n_iter, tol=tol,
        decrement=opt.decrement, trace=opt.trace,
        n_rows=ds.n_obs, weights=ds.weights_name, n_dropped=ds.n_dropped, design=ds.design,
        penalty=None if l2 is None else "l2", l2=l2,
        objective="NLL" if l2 is None else PENALISED_OBJECTIVE[fam.name],
        objective_value=opt.nll, se_method=_se_method(l2, cov_type),
        cov_type="HC0" if cov_type == "robust" else "model", se_model=se_model, level=level,
        **extra,
    )


#: How the penalised objective reads, per family (the output names it).
PENALISED_OBJECTIVE = {
    "bernoulli": "NLL + (l2/2) ||w||^2, intercept not penalised",
    "categorical": "NLL + (l2/2) sum_k ||w_k||^2 over the coefficients of all K classes (symmetric), "
    "intercepts not penalised",
    "gaussian": "NLL + (l2/2) ||b||^2, intercept and sigma not penalised",
}


def _exact_fit(
    ds: Dataset, fam: Family, closed: ClosedForm, method: str, gradient: str, tol: float, n_weight: float,
    extras: Extras = Extras(),
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
        cov=np.zeros((k, k)), n_obs=_n_obs(ds, n_weight), n_params=k, nll=-math.inf, mean_nll=-math.inf,
        loss_name=fam.loss_name, loglik=math.inf, aic=-math.inf, bic=-math.inf, converged=True,
        message="exact fit: every residual is zero (up to float64 rounding), so sigma = 0 and the "
        "likelihood is unbounded; the coefficients are exact and their standard errors are 0 "
        f"({closed.note})",
        n_iter=0, tol=tol, decrement=0.0,
        trace=(IterationRecord(0, -math.inf, 0.0, math.nan, 0.0),),
        mse=0.0, residual_std_error=0.0, df_resid=df_resid, exact_fit=True,
        n_rows=ds.n_obs, weights=ds.weights_name, n_dropped=ds.n_dropped, design=ds.design,
        objective_value=-math.inf, se_method="exact fit: the standard errors are 0", level=extras.level,
        data_fingerprint=_fingerprint(ds) if extras.fingerprint else None,
        **_fit_statistics(ds, fam, None, math.inf, k, n_weight, 0.0, False),
        **_exact_profile(extras, k),
    )


def _exact_profile(extras: Extras, k: int) -> dict[str, Any]:
    """An exact fit's profile fields: no profile exists (the likelihood is unbounded)."""
    if extras.ci != "profile":
        return {}
    from . import profile

    return dict(
        ci_method="profile", profile_ci_low=np.full(k, np.nan), profile_ci_high=np.full(k, np.nan),
        profile_status=((profile.FAILED, profile.FAILED),) * k, profile_notes=("no profile-likelihood intervals: every residual is zero, so the likelihood is unbounded",),
        profile_fits=0, profile_passes=0,
    )
