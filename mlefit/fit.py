"""``fit``: data -> family -> optimiser -> inference -> FitResult, one path for every engine.

:func:`fit` reads the data with the engine asked for (in memory, streamed through a binary cache,
on a Dask cluster) into a :class:`~mlefit.engines.base.Source`; :func:`fit_source` runs the same
checks, optimiser, inference and result building on any of them. Nothing here knows a family by
name: what is particular to a likelihood comes from the family's attributes and hooks.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from . import checks, inference, progress
from .data import Dataset, column_names, dataset_from_arrays, load_dataset, stdin_as_file
from .engines.base import (
    QUASI_PARAMS, RowsObjective, SampledHessian, Source, full_rank_from_hessian, full_rank_from_spread,
)
from .engines.memory import WARM_START_STRIDE as WARM_STRIDE, MemoryRows
from .errors import ConvergenceWarning, DataError, UsageError
from .families import DEFAULT_FAMILY, get_family
from .families.base import ClosedForm, Family, label_text
from .objective import FixedObjective, NumericObjective, PenalizedObjective
from .optimize import DEFAULT_MAX_ITER, DEFAULT_TOL, METHODS, OPTIMIZERS, OptimizeResult
from .results import FitResult

if TYPE_CHECKING:
    import pandas as pd

GRADIENTS = ("analytic", "numeric")
COV_TYPES = ("model", "robust")
CI_METHODS = ("wald", "profile")


@dataclass(frozen=True)
class Extras:
    """What a fit computes beyond its optimum (see :func:`_finish`).

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
    family: "str | Family | None" = None,
    *,
    target: str | None = None,
    features: "str | Sequence[str] | None" = None,
    intercept: bool = True,
    X: Any = None,
    y: Any = None,
    feature_names: Sequence[str] | None = None,
    weights: Any = None,
    offset: Any = None,
    exposure: Any = None,
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
    client: Any = None,
    sep: str | None = None,
    event: Any = None,
    link: str | None = None,
    levels: "str | Sequence | None" = None,
    input_format: str | None = None,
    ci: str | None = None,
    profile: "str | Sequence[str] | None" = None,
    level: float = 0.95,
    fingerprint: bool = False,
    model: str | None = None,
    nll: str | None = None,
    start: "str | Mapping[str, float] | None" = None,
    fixed: "str | Mapping[str, float] | None" = None,
) -> FitResult:
    """Fit a model by maximum likelihood.

    Parameters
    ----------
    data : DataFrame, path, ``"-"`` or Dataset, optional
        A table (or a CSV path, ``"-"`` for standard input, or a Parquet file or folder of Parquet
        files) holding the target and the features.
    family : str or Family, optional
        A family of the registry (``mlefit families``), by name; default bernoulli, unless a
        ``model`` or ``nll`` is given instead.
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
    offset : str or array-like, optional
        A term added to each row's linear predictor with coefficient 1: a column of ``data``, or
        an array of shape (n_obs,) with ``X``.
    exposure : str or array-like, optional
        Positive exposures (times, sizes) whose logarithm is added to the linear predictor, for
        families with a log link (the rate is then per unit of exposure).
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
        :mod:`mlefit.engines.stream`. A CSV path larger than ``memory_limit`` bytes (default a quarter of
        the machine's memory) is streamed anyway.
    engine : {"local", "dask"}
        ``dask``: read the CSV with dask.dataframe on the cluster at ``scheduler``
        (``tcp://HOST:PORT`` or ``local``) and sum the block sums there; see
        :mod:`mlefit.engines.cluster`.
    client : distributed.Client, optional
        With ``engine="dask"``: an existing client to use instead of connecting to ``scheduler``.
    sep : str, optional
        The CSV's separator, one character; default the one its header shows (``;`` or a tab in a
        header without a comma), else a comma. The result's ``separator`` says which was used.
    event : str or array-like, optional
        For a family whose rows may be right-censored (survival times): a column (or an array with
        ``X``) of 1 or true for an observed event and 0 or false for a censored row; without it
        every row is an event.
    link, levels : optional
        Options of the family: its link (``mlefit families`` lists each family's choices) and, for
        ordered outcomes, the order of the labels (``"low,medium,high"`` or a list).
    input_format : {"csv", "parquet"}, optional
        How a path is read; default Parquet for a name ending in ``.parquet`` (``.parq``, ``.pq``)
        or a folder, else CSV (see :mod:`mlefit.readers.parquet`; Parquet needs pyarrow).
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
    model : str, optional
        Instead of a family, a likelihood written as text (see :mod:`mlefit.textmodel` and
        docs/models.md): ``"y ~ normal(mean = a + b*x, sd = exp(log_s))"``. A name in the text that
        is a column of ``data`` is data, any other a parameter; derivatives are derived exactly
        (sympy, the extra ``mlefit[model]``; without it the fit uses finite differences). Not with
        ``target``, ``features``, ``formula``, ``offset``, ``exposure``, ``event``, ``link``,
        ``levels`` or ``l2``, nor ``X``/``y``.
    nll : str, optional
        Instead of a family or a model, the per-row negative log-likelihood written out
        (``"-log(sigmoid(g) ...)"``). Its first column plays the target's part in the report.
    start : str or mapping, optional
        A text model's start, ``"a=0.5,b=1"`` or ``{"a": 0.5, "b": 1}``: 0 for a parameter not
        named. A start where the NLL is not finite is a UsageError naming the row.
    fixed : str or mapping, optional
        Parameters of a text model held at these values (not estimated), in the same form.

    Returns
    -------
    FitResult
        With ``converged=False`` (and a ConvergenceWarning) when the optimiser stopped early.
    """
    if model is not None or nll is not None:
        _refuse_with_text_model(
            any(v is not None for v in (X, y, feature_names)), family=family, target=target, features=features,
            formula=formula, offset=offset, exposure=exposure, event=event, link=link, levels=levels, l2=l2,
        )
        if isinstance(data, Dataset):
            raise UsageError("a text model reads a table or a CSV file, not a Dataset built for a family.")
        if engine == "dask" and str(data) == "-":
            raise UsageError("--engine dask reads a CSV or Parquet file (a path the workers can read), not standard input.")
        with stdin_as_file(data) as data:
            from .readers import is_parquet
            from .textmodel.family import text_family

            if is_parquet(data, input_format):
                from .readers.parquet import ParquetSource

                names = ParquetSource(data).names
            else:
                names = column_names(data, sep)
            fam = text_family(model, nll, columns=names, start=start, fixed=fixed)
            return fit(
                data, fam, target=fam.target, features=list(fam.columns), intercept=not fam.columns,
                weights=weights, dropna=dropna, cov=cov, method=method, gradient=gradient, tol=tol,
                max_iter=max_iter, stream=stream, chunk_rows=chunk_rows, cache_dir=cache_dir,
                memory_limit=memory_limit, engine=engine, scheduler=scheduler, client=client, sep=sep,
                ci=ci, profile=profile, level=level, fingerprint=fingerprint, input_format=input_format,
            )
    if start is not None or fixed is not None:
        raise UsageError(f"{'--start' if start is not None else '--fixed'} applies to a text model (--model or --nll).")
    if isinstance(levels, str):
        levels = tuple(v.strip() for v in levels.split(",") if v.strip())
    elif levels is not None:
        levels = tuple(levels)
    fam = get_family(DEFAULT_FAMILY if family is None else family, link=link, levels=levels)
    if event is not None and not fam.censored:
        raise UsageError(f"--event does not apply to {fam.name}: its rows are never censored.")
    # a family whose other parameters take the intercept's part (ordinal cutpoints) has no column of ones
    intercept = intercept and fam.intercept_column
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}'.", f"Choose one of: {', '.join(METHODS)}.")
    if gradient not in GRADIENTS:
        raise UsageError(f"unknown gradient '{gradient}'.", f"Choose one of: {', '.join(GRADIENTS)}.")
    if not fam.analytic:  # a family without exact derivatives is fitted with finite differences
        gradient = "numeric"
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

    if engine not in ("local", "dask"):
        raise UsageError(f"unknown engine '{engine}'.", "Choose one of: local, dask.")
    if fam.no_offset is not None and (offset is not None or exposure is not None):
        option = "--offset" if offset is not None else "--exposure"
        raise UsageError(f"{option} does not apply to {fam.name}: {fam.no_offset}.")
    if exposure is not None and not fam.log_link:
        raise UsageError(
            f"--exposure applies to families with a log link, where log(exposure) is an offset; {fam.name}'s "
            "link is not the log.",
            "Use --offset with the term you want added to the linear predictor.",
        )
    settings = dict(method=method, gradient=gradient, tol=tol, max_iter=max_iter, l2=l2, cov=cov,
                    memory_limit=memory_limit, extras=_extras(ci, profile, level, fingerprint, cov, l2))
    columns = dict(target=target, features=features, intercept=intercept, weights=weights, offset=offset,
                   exposure=exposure, formula=formula, dropna=dropna, event=event)
    if engine == "dask":
        from .engines.cluster import dask_source

        if not isinstance(data, (str, Path)) or str(data) == "-":
            raise UsageError("--engine dask reads a CSV or Parquet file (a path the workers can read), not standard input.")
        with dask_source(
            data, fam, scheduler=scheduler, client=client, chunk_rows=chunk_rows, sep=sep, input_format=input_format,
            **columns,
        ) as src:
            return fit_source(src, fam, **settings)
    if data is not None and not isinstance(data, Dataset) and X is None:
        from .engines import stream as streaming
        from .readers import is_parquet

        table = None  # a Parquet file or folder
        if is_parquet(data, input_format) and not (stream and str(data) == "-"):
            from .readers.parquet import ParquetSource

            table = ParquetSource(data)
        if stream or streaming.should_stream(data, memory_limit, None if table is None else table.n_bytes):
            if not isinstance(data, (str, Path)):
                raise UsageError("streaming reads a CSV file or standard input ('-'), not a table in memory.")
            if any(isinstance(v, str) is False and v is not None for v in (weights, offset, exposure, event)):
                raise UsageError("with a table, weights, offset, exposure and event name its columns.")
            with streaming.streamed_source(
                data, fam, cache_dir=cache_dir, chunk_rows=chunk_rows, sep=sep, input_format=input_format,
                parquet=table, **columns,
            ) as src:
                return fit_source(src, fam, **settings)
        if table is not None:
            from .readers.parquet import read_for_fit

            roles = dict(weights=weights, offset=offset, exposure=exposure, event=event)
            data = read_for_fit(
                data, target=target, features=features, intercept=intercept, roles=roles, formula=formula, table=table
            )
    if isinstance(data, Dataset):
        ds = data
    elif X is not None:
        if data is not None:
            raise UsageError("give either data or X and y, not both.")
        ds = dataset_from_arrays(
            X, y, fam, feature_names=feature_names, intercept=intercept, weights=weights, offset=offset,
            exposure=exposure, event=event,
        )
    elif data is not None:
        if any(isinstance(v, str) is False and v is not None for v in (weights, offset, exposure, event)):
            raise UsageError("with a table, weights, offset, exposure and event name its columns.")
        ds = load_dataset(data, fam, sep=sep, **columns)
    else:
        raise UsageError("no data: give a table, a CSV path, or X and y.")
    return fit_source(source_of(ds), fam, **settings)


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


#: The options of a family's fit that a text model does not take, and why.
NOT_WITH_A_MODEL = {
    "family": "the model replaces the family",
    "target": "the model names its target left of '~'",
    "features": "the model reads the columns it names",
    "formula": "the model reads the columns it names",
    "offset": "write the offset into the text",
    "exposure": "write the exposure's log into the text",
    "event": "its rows are never censored",
    "link": "the text writes every term",
    "levels": "the text writes every term",
    "l2": "write a penalty into an --nll text if you want one",
}


def _refuse_with_text_model(arrays: bool, **given: Any) -> None:
    """A text model names its own columns and writes every term: the options of a family's design
    do not apply (``given``: the options of :data:`NOT_WITH_A_MODEL`), nor arrays without names."""
    if arrays:
        raise UsageError("a text model reads a table or a CSV file, whose column names it uses; give data, not X and y.")
    for name, value in given.items():
        if value is not None:
            raise UsageError(f"--{name} does not apply to a text model: {NOT_WITH_A_MODEL[name]}.")


def source_of(ds: Dataset) -> Source:
    """The :class:`Source` of a dataset in memory."""
    return Source(
        MemoryRows(ds.X, ds.y, ds.weights, ds.offset, ds.X_lo, ones=ds.ones, ranges=ds.ranges), ds.feature_names, ds.target, ds.levels,
        ds.target_note, ds.intercept, ds.weights_name, ds.offset_name, ds.exposure_name, ds.n_dropped, ds.design,
        ds.separator, ds.separator_detected,
    )


def fit_dataset(
    ds: Dataset, fam: Family, *, method: str, gradient: str, tol: float, max_iter: int,
    l2: float | None = None, cov: str = "model", extras: Extras = Extras(),
) -> FitResult:
    """Fit an already validated in-memory :class:`Dataset` (see :func:`fit_source`)."""
    return fit_source(
        source_of(ds), fam, method=method, gradient=gradient, tol=tol, max_iter=max_iter, l2=l2, cov=cov,
        extras=extras,
    )


def _target_summary(fam: Family, rows, n_classes: int | None) -> tuple[float, np.ndarray | None, dict[str, float]]:
    """The total weight of the rows, for a family with classes each class's weight, and the
    family's own counts (``Family.count_names``): one pass over the target."""
    sums = rows.map_sum(partial(_target_sums, fam, n_classes), design=False)
    k = 1 + (n_classes or 0)
    counts = dict(zip(fam.count_names, (float(v) for v in sums[k:])))
    return float(sums[0]), (sums[1:k] if n_classes is not None else None), counts


def _target_sums(fam: Family, n_classes: int | None, X, y, w, o) -> np.ndarray:
    total = float(len(y) if w is None else w.sum())
    own = fam.count_rows(y, w)
    if n_classes is None:
        return np.concatenate([[total], own])
    if y.dtype.kind == "f" and n_classes == 2:  # 0.0/1.0 codes: no integer copy of y
        ones = float(np.count_nonzero(y)) if w is None else float(w @ y)
        return np.concatenate([[total, total - ones, ones], own])
    return np.concatenate([[total], np.bincount(y.astype(np.intp), weights=w, minlength=n_classes), own])


def fit_source(
    src: Source, fam: Family, *, method: str, gradient: str, tol: float, max_iter: int,
    l2: float | None = None, cov: str = "model", memory_limit: int | None = None, extras: Extras = Extras(),
) -> FitResult:
    """Fit the rows of ``src`` (any engine): the one path of every fit.

    Before the optimiser, without a penalty: the rank of the design (``rows.check_rank``), every
    class present, the intercept-only model. After it, for a family where separation can occur and
    without a penalty, when the fit shows the symptoms of separation: the exact check
    (:func:`checks.check_separation`) on the rows gathered in memory (when they fit within
    ``memory_limit`` bytes; else the message says it was not run).
    """
    n_classes = len(src.levels) if fam.classes and src.levels is not None else None
    p = len(src.feature_names)
    n_params = fam.n_params(p, n_classes)
    # Columns of extreme magnitude are fitted scaled by powers of two (exact): the estimates of the
    # scaled design times `factor` are those of the data as given.
    factor = None
    scale = column_scale(src.rows) if fam.linear_predictor else None
    if scale is not None:
        if l2 is not None:
            j = int(np.flatnonzero(scale != 1.0)[0])
            raise UsageError(
                f"--l2 penalises the coefficients on the scale of the data, and feature column "
                f"'{src.feature_names[j]}' has values of magnitude about 2^{-int(np.log2(scale[j]))} "
                f"(about 1e{-np.log10(scale[j]):.0f}), where a coefficient's penalty leaves float64's range.",
                "Rescale the column (the unpenalised fit needs no rescaling).",
            )
        src = replace(src, rows=src.rows.scaled(scale))
        factor = fam.design_scale(scale, n_classes)
    rows = src.rows
    n_weight, counts, target_counts = _target_summary(fam, rows, n_classes)
    if n_weight <= n_params:
        raise DataError(
            f"{rows.n_obs} rows are too few for {n_params} parameters; "
            "a maximum-likelihood fit needs more rows than parameters."
        )
    if counts is not None and np.any(counts <= 0):
        label = label_text(src.levels[int(np.flatnonzero(counts <= 0)[0])])
        raise DataError(f"class '{label}' has no rows with a positive weight, so its probability cannot be estimated.")
    fam.check_counts(target_counts)
    gram = None  # X'WX, formed by the rank check and reused by gaussian least squares
    # A wide Newton fit of a family that bounds its curvature takes its rank check from the
    # subsample's Hessian its quasi-Newton steps start with (_rank_from_hessian), after the start.
    rank_later = (
        l2 is None and fam.linear_predictor and type(fam).closed_form is Family.closed_form
        and method == "newton" and gradient == "analytic" and n_params >= QUASI_PARAMS
        and fam.curvature_bound() is not None and not wants_warm_start(rows.n_obs, n_params)
    )
    # (with a penalty the optimum is unique even for collinear columns: ridge)
    if l2 is None and fam.linear_predictor and not rank_later:
        gram = _check_rank(src, fam, n_weight)

    analytic = RowsObjective(fam, rows)
    exact = analytic
    if l2 is not None:
        exact = PenalizedObjective(analytic, fam.l2_matrix(p, n_classes, intercept=src.intercept), l2)
    objective = exact if gradient == "analytic" else NumericObjective(exact)
    arrays = rows.arrays()
    # The closed form (gaussian least squares) is the unpenalised MLE.
    closed = None
    if l2 is None and arrays is not None and type(fam).closed_form is not Family.closed_form:
        closed = fam.closed_form(arrays.design(), arrays.y, arrays.weights, gram=gram, X_lo=arrays.X_lo, offset=arrays.offset)
    # An intercept-only model is its own null model: fitted once, the null figures are its own.
    own_null = l2 is None and fam.null_columns(src.intercept) == p
    null = None if own_null else _null_model(src, fam, n_classes, counts)
    if closed is not None and closed.exact_fit:
        if factor is not None:
            closed = replace(closed, params=closed.params * factor)
        return replace(_exact_fit(src, fam, closed, method, gradient, tol, n_weight, null, extras), target_counts=target_counts or None)
    x0 = _start(src, fam, n_classes, closed, null)
    fam.check_start(x0, src.feature_names, analytic, rows.sample)

    if closed is not None and method == "newton" and gradient == "analytic":
        # The MLE is known in closed form: Newton from it would stop at iteration 0, but its
        # float64 gradient and Cholesky factor could not resolve that on an ill-conditioned design.
        opt = _closed_form_result(analytic, closed, tol)
        cov_model = closed.cov
    else:
        options = {}
        if method == "newton" and gradient == "analytic" and closed is None and l2 is None:
            x0, options["hess0"] = _warm_start(rows, fam, x0, n_weight)
            # a large fit: spare a Hessian pass with a chord step near the optimum (small fits
            # keep the plain Newton iterates)
            options["chord"] = rows.n_obs >= CHORD_ROWS
            # a wide design: quasi-Newton steps from gradient passes, a Hessian pass at the end
            options["approx"] = analytic.hessian_approximation(x0.size, n_weight)
            if isinstance(options["approx"], SampledHessian):  # (else the approximation is the Hessian)
                options["hess_cost"] = analytic.hessian_pass_cost(x0.size)
            if rank_later:
                options["hess0"] = _rank_from_hessian(src, fam, options["approx"], x0, n_weight)
        if type(fam).boundary is not Family.boundary and l2 is None and method == "newton":
            options["stop"] = lambda x: fam.boundary(x) is not None
        opt = OPTIMIZERS[method](objective, x0, tol=tol, max_iter=max_iter, **options)
        limit = fam.boundary(opt.params) if l2 is None else None
        at_boundary = None
        if limit is not None:
            at_boundary, held = limit
            opt = _fit_at_boundary(objective, opt, at_boundary, held, method, tol, max_iter)
        if gradient == "analytic" and opt.hess is not None:
            hess = opt.hess
        else:  # standard errors from the analytic Hessian, or from differences without one
            hess = (exact if fam.analytic else objective).value_grad_hess(opt.params)[2]
        if at_boundary is not None:
            # the others' covariance with the boundary parameters held at their limit
            keep = ~at_boundary
            cov_model = embed(inference.covariance(hess[np.ix_(keep, keep)]), keep)
        else:
            cov_model = None
            if l2 is None and arrays is not None and type(fam).covariance is not Family.covariance:
                cov_model = fam.covariance(opt.params, arrays.X, arrays.y, arrays.weights, offset=arrays.offset)
            if cov_model is None:
                if l2 is None:
                    cov_model = inference.covariance_or_root(hess, lambda: analytic.hess_root(opt.params), opt.factor)
                else:
                    cov_model = inference.covariance(hess)
    if fam.separable and l2 is None:
        opt = _check_separation(src, fam, analytic, opt, cov_model, n_classes, memory_limit)
    if own_null and opt.converged:
        null = _null_record(fam, opt.params, opt.nll, n_classes)
    result = _finish(
        src, fam, opt, cov_model, lambda: analytic.score_outer(opt.params), analytic,
        method, gradient, tol, n_weight, l2, cov, null, factor, extras,
    )
    if src.notes:  # what the reader did differently from an in-memory fit
        result = replace(result, message="; ".join([result.message, *src.notes]))
    return replace(result, target_counts=target_counts or None)


#: Design columns whose largest magnitude is outside 2^-LIMIT .. 2^LIMIT are fitted scaled.
SCALE_LIMIT = 64


def column_scale(rows) -> np.ndarray | None:
    """Powers of two that bring every design column whose largest magnitude (in the engine's sample
    of rows) lies outside ``2^-SCALE_LIMIT .. 2^SCALE_LIMIT`` to magnitudes in [0.5, 1), and leave
    the others as they are; None when no column needs it.

    A column of values near 1e200 squares to infinity in the Gram matrix and the Hessian, one near
    1e-200 to zero; multiplied by a power of two, every value of the column is represented exactly,
    so the fit of the scaled design is that of the data rescaled, and its estimates scale back
    exactly (``Family.design_scale``).
    """
    top = rows.sample().column_range()
    exponent = np.frexp(top)[1]
    extreme = (top > 0) & (np.abs(exponent) > SCALE_LIMIT)
    if not extreme.any():
        return None
    return np.where(extreme, np.ldexp(1.0, -exponent), 1.0)


def _start(src: Source, fam: Family, n_classes, closed: ClosedForm | None, null: "dict | None") -> np.ndarray:
    """The optimiser's start, the same for every engine (so that their fits end at the same point):
    the closed form; else a family's start from sums over the rows (gaussian under a penalty: the
    normal equations); else the intercept-only fit padded with zero coefficients; else (no null
    model) the family's start on rows in memory (all of them, or the engine's sample)."""
    rows = src.rows
    p = len(src.feature_names)
    if closed is not None:
        x0 = closed.params
    else:
        x0 = fam.start_from_sums(rows.map_sum, p, n_classes, intercept=src.intercept)
        if x0 is None and null is not None:
            x0 = fam.start_from_null(null["params"], p, n_classes)
        if x0 is None:
            s = rows.sample()
            x0 = fam.start_params(s.X, s.y, s.weights, intercept=src.intercept, n_classes=n_classes, offset=s.offset)
    if not np.all(np.isfinite(x0)):
        # an exact least-squares fit under a penalty: the penalty shrinks it, so start the ancillary
        # parameter (sigma) at the spread of y
        s = rows.sample()
        spread = float(np.sqrt(np.average((s.y - np.average(s.y, weights=s.weights)) ** 2, weights=s.weights)))
        x0 = np.where(np.isfinite(x0), x0, math.log(spread) if spread > 0 else 0.0)
    return x0


def _suspect_separation(objective: RowsObjective, params: np.ndarray) -> bool:
    """:func:`checks.suspect_separation`'s symptom at the estimate, from the optimiser's last pass
    over the rows when that pass was at the estimate (the families report the smallest class
    log-probability with the Hessian), else from a pass of its own."""
    low = objective.min_log_prob(params)
    if low is None:
        low = objective.sums(params, 2).min_log_prob
    return low is not None and low < checks.SUSPECT_LOG_PROB


def _check_separation(
    src: Source, fam: Family, objective: RowsObjective, opt: OptimizeResult, cov_model, n_classes: int,
    memory_limit: int | None,
) -> OptimizeResult:
    """The exact separation check (:func:`mlefit.checks.check_separation`, exit 4) when the fit shows
    the symptoms: no convergence, a singular Hessian, or a class probability below ``exp(-20)`` in
    some row. The linear programmes need every row in memory: when those are larger than
    ``memory_limit``, the check is not run and the result's message says so.
    """
    from dataclasses import replace

    if not opt.converged:
        symptom = "it did not converge"
    elif cov_model is None:
        symptom = "its Hessian is singular"
    elif _suspect_separation(objective, opt.params):
        symptom = "a class probability is below exp(-20)"
    else:
        return opt
    rows = src.rows.gather(memory_limit)
    if rows is None:
        from .engines.stream import default_memory_limit

        need = src.rows.n_obs * (src.rows.n_features + 3) * 8
        limit = default_memory_limit() if memory_limit is None else memory_limit
        return replace(opt, message=(
            f"{opt.message}; the fit shows a symptom of separation ({symptom}), but the exact check "
            f"needs all {src.rows.n_obs:,} rows in memory ({_megabytes(need)}, more than the memory limit of "
            f"{_megabytes(limit)}), so it was not run (use --l2, or a larger --memory-limit)"
        ))
    checks.check_separation(
        rows.X, rows.y.astype(np.intp), n_classes, src.feature_names, [label_text(v) for v in src.levels],
        rows.weights, intercept=src.intercept, ordered=fam.ordered,
    )
    return opt


def _fit_at_boundary(
    objective, opt: OptimizeResult, at_boundary: np.ndarray, held: np.ndarray, method: str, tol: float, max_iter: int,
) -> OptimizeResult:
    """Go on from ``opt`` with the parameters ``at_boundary`` held at ``held`` (their limit): the
    optimum of the others, with the trace of both runs and the verdict of the second."""
    from dataclasses import replace

    reduced = FixedObjective(objective, ~at_boundary, held)
    sub = OPTIMIZERS[method](reduced, held[~at_boundary], tol=tol, max_iter=max(max_iter - opt.n_iter, 1))
    offset = opt.n_iter + 1
    trace = opt.trace + tuple(replace(r, iteration=r.iteration + offset) for r in sub.trace)
    params = reduced.expand(sub.params)
    _, grad, hess = objective.value_grad_hess(params)
    return OptimizeResult(
        params, sub.nll, grad, hess, sub.converged, sub.message, opt.n_iter + 1 + sub.n_iter, sub.decrement, trace,
    )


def embed(cov: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    """A covariance of the parameters ``keep`` as one of all parameters, NaN for the others."""
    if cov is None:
        return None
    full = np.full((keep.size, keep.size), np.nan)
    full[np.ix_(keep, keep)] = cov
    return full


def _megabytes(n: int) -> str:
    mb = n / 2**20
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.2g} MB"


def _finish(
    src: Source, fam: Family, opt: OptimizeResult, cov_model: np.ndarray | None, score_outer, analytic,
    method: str, gradient: str, tol: float, n_weight: float, l2: float | None, cov: str, null: "dict | None",
    factor: np.ndarray | None = None, extras: Extras = Extras(),
) -> FitResult:
    """From the optimum to the result: the covariance used (model-based, or the HC0 sandwich with
    the summed score outer products ``score_outer()``), the unpenalised NLL, the FitResult, the
    profile-likelihood intervals (over the unpenalised objective ``analytic``) and the rows'
    fingerprint when ``extras`` asks for them, and a ConvergenceWarning when the optimiser stopped
    early. ``factor``: the parameters of a scaled design (:func:`column_scale`) are ``factor``
    times those of the data as given."""
    if cov_model is None:
        raise DataError(
            "the Hessian is singular at the estimate, so standard errors do not exist.", fam.singular_hint,
        )
    cov_used = cov_model
    if cov == "robust":  # over the parameters with a covariance (not those at a boundary)
        keep = np.isfinite(np.diag(cov_model))
        cov_used = embed(inference.sandwich(cov_model[np.ix_(keep, keep)], score_outer()[np.ix_(keep, keep)]), keep)
    nll = opt.nll if l2 is None else analytic.value(opt.params)
    result = _build(
        src, fam, opt, nll, cov_used, cov_model, method, gradient, tol, n_weight, l2, cov, null, factor, extras.level,
    )
    if extras.ci == "profile":
        result = _with_profile(result, fam, analytic, opt, cov_model, extras, factor)
    if extras.fingerprint:
        result = replace(result, data_fingerprint=_fingerprint(src))
    if not result.converged:
        warnings.warn(f"the fit did not converge: {result.message}", ConvergenceWarning, stacklevel=3)
    return result


def _with_profile(
    result: FitResult, fam: Family, objective: Any, opt: OptimizeResult, cov_model: np.ndarray, extras: Extras,
    factor: np.ndarray | None = None,
) -> FitResult:
    """The result with its profile-likelihood intervals (:func:`mlefit.profile.profile_intervals`
    over ``objective`` at the optimum), mapped to the reported scale by the family's transform
    (and, for a scaled design, ``factor``, as the estimates are)."""
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
        zero = np.zeros((k, k))

        def reported(j: int, v: float) -> float:
            point = opt.params.copy()
            point[j] = v
            n_classes = len(result.levels) if fam.classes and result.levels is not None else None
            value = float(fam.natural(point, zero, n_classes)[0][j])
            return value if factor is None else value * float(factor[j])

        limit = fam.boundary(opt.params)
        intervals = profile.profile_intervals(
            objective, opt.params, opt.nll, cov_model, wanted, extras.level, names=result.labels,
            held=None if limit is None else limit[0], reported=reported,
        )
        for iv in intervals:
            ends = []
            for end in (iv.lower, iv.upper):
                value = math.nan if end.value is None else reported(iv.index, end.value)
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


def _fingerprint(src: Source) -> str:
    """:func:`mlefit.fingerprint.rows_fingerprint` of the rows of any engine."""
    from .fingerprint import rows_fingerprint

    return rows_fingerprint(src.rows.target_chunks())


def _closed_form_result(objective: RowsObjective, closed: ClosedForm, tol: float) -> OptimizeResult:
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
#: subsample) start from the fit to a subsample (``Rows.subsample``).
WARM_START_ROWS = 100_000
#: Newton fits on at least this many rows may take a chord step (``optimize.newton(chord=True)``).
CHORD_ROWS = 100_000
WARM_START_ROWS_PER_PARAM = 50


def wants_warm_start(n_obs: int, n_params: int) -> bool:
    """Whether a Newton fit on ``n_obs`` rows starts from a subsample's fit (see :func:`warm_start`)."""
    return n_obs >= max(WARM_START_ROWS, WARM_STRIDE * WARM_START_ROWS_PER_PARAM * n_params)


def warm_start(
    subsample: Callable[[int], RowsObjective], x0: np.ndarray, total_weight: float | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A start near the optimum for a large fit: Newton on a subsample, ``subsample(0)``, of rows
    spread over all of them (:func:`_warm_start`).

    The subsample's optimum lies a few standard errors of the full fit from it (about
    sqrt(WARM_STRIDE) in each parameter), well inside the region where Newton converges
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
    with progress.muted():  # not the fit the user asked for: its iterations are not shown
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
    rows = sample.rows
    part = float(rows.n_obs if rows.weights is None else rows.weights.sum())
    return opt.params, opt.hess * (total_weight / part)


def _rank_from_hessian(src: Source, fam: Family, approx, x0: np.ndarray, total_weight: float):
    """The rank check of a wide design whose family bounds its curvature: the subsample's Hessian at
    the start (``approx(x0)``, which the quasi-Newton steps start with) when it proves the full rank
    (``full_rank_from_hessian``, from the factorisation the steps solve with), else the checks
    every other design has (a subsample's Gram matrix, then ``rows.check_rank``, which names
    collinear columns). Returns that Hessian, scaled to all rows, factorised
    (``linalg.ScaledSPD``) when it is positive definite; None when the engine has no subsample."""
    from . import linalg

    if not isinstance(approx, SampledHessian):
        _check_rank(src, fam, total_weight)
        return None
    hess0 = approx(x0)
    try:
        factor = linalg.ScaledSPD(hess0)
    except linalg.NotPositiveDefinite:
        factor = None
    # hess0 is the subsample's Hessian times approx.scale: at most bound * scale times its Gram matrix
    bound = fam.curvature_bound() * approx.scale
    if not full_rank_from_hessian(src.rows, hess0, bound, total_weight, None if factor is None else factor.pivots()):
        _check_rank(src, fam, total_weight)
    return hess0 if factor is None else factor


def _check_rank(src: Source, fam: Family, total_weight: float) -> np.ndarray | None:
    """The rank check (CollinearityError naming a dependent column): for a family without a closed
    form (which would reuse the Gram matrix) from a subsample when it shows the full rank, for a
    fraction of the Gram's n p^2 (``full_rank_from_spread``), else ``rows.check_rank``; its Gram
    matrix ``X'WX`` when it formed one."""
    if type(fam).closed_form is Family.closed_form and full_rank_from_spread(src.rows, total_weight):
        return None
    return src.rows.check_rank(src.feature_names, src.intercept)


def _warm_start(rows, fam: Family, x0: np.ndarray, total_weight: float) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`warm_start` from the engine's subsample (``Rows.subsample``), when the fit is large
    enough and the engine has one with enough rows per parameter."""
    if not wants_warm_start(rows.n_obs, x0.size):
        return x0, None
    first = rows.subsample(0)
    if first is None or first.n_obs < WARM_START_ROWS_PER_PARAM * x0.size:
        return x0, None
    samples = {0: first}

    def subsample(which: int) -> RowsObjective:
        if which not in samples:
            samples[which] = rows.subsample(which)
        return RowsObjective(fam, samples[which])

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


#: Rows of the sample the intercept-only model's start is computed from (see :func:`_null_model`).
NULL_START_ROWS = 1 << 16


def _null_model(
    src: Source, fam: Family, n_classes: int | None, counts: np.ndarray | None = None,
) -> "dict[str, Any] | None":
    """The intercept-only model (with the offset, if any): ``{"loglik", "params", "estimates",
    "n_params"}``, or None without an intercept (or when it cannot be fitted).

    Newton's method over the rows' target alone (the design is one column of ones, never read),
    from the family's start: where that start is the intercept-only MLE in closed form (every
    family without an ancillary parameter to estimate), one pass confirms it. The start comes from
    the first :data:`NULL_START_ROWS` rows of the sample (a few more passes over the targets then
    reach the optimum), or, for a family with classes and no offset, from ``counts`` (every
    class's total weight over all the rows): a table of one row per class weighted by its total
    has the same intercept-only fit as all the rows, so an engine whose rows are not in memory
    needs no more passes than one.
    """
    k = fam.null_columns(src.intercept)
    if k is None:
        return None
    s = src.rows.sample()
    if counts is not None and s.offset is None:
        classes = np.arange(len(counts)).astype(np.dtype(fam.target_dtype))
        x0 = fam.start_params(np.ones((len(counts), k)), classes, np.asarray(counts, dtype=float),
                              intercept=k > 0, n_classes=n_classes)
    else:  # from the sample's first rows: Newton's passes over the targets alone cost less than a
        # family's start on a million rows (gaussian's least squares took 0.18 s of a 0.43 s fit)
        m = min(s.n_obs, NULL_START_ROWS)
        x0 = fam.start_params(
            np.ones((m, k)), s.y[:m], None if s.weights is None else s.weights[:m], intercept=k > 0,
            n_classes=n_classes, offset=None if s.offset is None else s.offset[:m],
        )
    if not np.all(np.isfinite(x0)):
        return None
    objective = RowsObjective(fam, src.rows, null_columns=k)
    with warnings.catch_warnings(), progress.muted():  # not the user's fit: its iterations are not shown
        warnings.simplefilter("ignore", ConvergenceWarning)
        opt = OPTIMIZERS["newton"](objective, x0, tol=DEFAULT_TOL["newton"], max_iter=DEFAULT_MAX_ITER["newton"])
    if not opt.converged:
        return None
    return _null_record(fam, opt.params, opt.nll, n_classes)


def _null_record(fam: Family, params: np.ndarray, nll: float, n_classes: int | None) -> "dict[str, Any]":
    """What the fit keeps of the intercept-only model at its optimum ``params`` (optimiser scale)."""
    estimates, _ = fam.natural(params, np.zeros((params.size, params.size)), n_classes)
    return {"loglik": -nll, "params": params, "estimates": estimates, "n_params": params.size}


def _fit_statistics(
    fam: Family, estimates: np.ndarray, loglik: float, n_weight: float, null: "dict | None", penalised: bool,
) -> dict[str, Any]:
    """Null model, likelihood-ratio test and the family's statistics (keys of FitResult)."""
    out: dict[str, Any] = {}
    if null is not None:
        out["null_loglik"] = null["loglik"]
        out["null_model"] = fam.null_model
        if not penalised:  # a penalised fit is not a maximum of the likelihood: no LR test
            df = len(estimates) - null["n_params"]
            stat, p = inference.likelihood_ratio(loglik, null["loglik"], df)
            out.update(lr_stat=stat, lr_df=df, lr_p_value=p)
    out.update(fam.summary_statistics(estimates, n_weight, loglik, null))
    return out


def _n_obs(src: Source, n_weight: float) -> int | float:
    if not src.rows.weighted:
        return src.n_obs
    return int(n_weight) if float(n_weight).is_integer() else n_weight


def _described(src: Source, fam: Family) -> dict[str, Any]:
    """What every result says about its data and model, from the source."""
    labels = fam.param_names(list(src.feature_names), src.levels)
    out = dict(
        family=fam.name, family_options=fam.options_given(), target=src.target, target_note=src.target_note,
        feature_names=src.feature_names, levels=src.levels, intercept=src.intercept,
        names=tuple(n for n, _ in labels), classes=tuple(c for _, c in labels),
        n_rows=src.n_obs, weights=src.weights_name, offset=src.offset_name, exposure=src.exposure_name,
        n_dropped=src.n_dropped, design=src.design, loss_name=fam.loss_name,
        separator=src.separator, separator_detected=src.separator_detected,
    )
    out.update(fam.result_fields())  # a family's own fields, and how it describes its design
    return out


def _build(
    src: Source, fam: Family, opt: OptimizeResult, nll: float, cov: np.ndarray, cov_model: np.ndarray,
    method: str, gradient: str, tol: float, n_weight: float, l2: float | None, cov_type: str, null: "dict | None",
    factor: np.ndarray | None = None, level: float = 0.95,
) -> FitResult:
    n_classes = len(src.levels) if fam.classes and src.levels is not None else None
    estimates, cov = fam.natural(opt.params, cov, n_classes)
    n_params = len(estimates)
    se, z, p_values, ci_low, ci_high = inference.wald(estimates, cov, fam.log_scale(n_params), level=level)
    se_model = None
    if cov_type == "robust":
        se_model = np.sqrt(np.maximum(np.diag(fam.natural(opt.params, cov_model, n_classes)[1]), 0.0))
    if factor is not None:
        # back from the scaled design: every figure but the covariance matrix itself scales exactly
        # (a variance of a coefficient of a column near 1e200 is below float64's range: zero there)
        estimates, se, ci_low, ci_high = (v * factor for v in (estimates, se, ci_low, ci_high))
        se_model = None if se_model is None else se_model * factor
        with np.errstate(over="ignore", under="ignore"):
            cov = cov * np.outer(factor, factor)
    loglik = -nll
    aic, bic = inference.information_criteria(loglik, n_params, n_weight)
    if l2 is not None:  # a penalised fit has fewer effective parameters than it estimates
        aic = bic = math.nan
    message = opt.message
    note = fam.boundary_note(estimates)
    if note is not None:
        message = f"{message}; {note}"
    return FitResult(
        method=method, gradient=gradient, **_described(src, fam),
        params=estimates, se=se, z=z, p_values=p_values, ci_low=ci_low, ci_high=ci_high, cov=cov,
        n_obs=_n_obs(src, n_weight), n_params=n_params, nll=nll, mean_nll=nll / n_weight,
        loglik=loglik, aic=aic, bic=bic,
        converged=opt.converged, message=message, n_iter=opt.n_iter, tol=tol,
        decrement=opt.decrement, trace=opt.trace,
        penalty=None if l2 is None else "l2", l2=l2,
        objective="NLL" if l2 is None else fam.penalty_statement,
        objective_value=opt.nll, se_method=_se_method(l2, cov_type),
        cov_type="HC0" if cov_type == "robust" else "model", se_model=se_model, level=level,
        **_fit_statistics(fam, estimates, loglik, n_weight, null, l2 is not None),
    )


def _exact_fit(
    src: Source, fam: Family, closed: ClosedForm, method: str, gradient: str, tol: float, n_weight: float,
    null: "dict | None", extras: Extras = Extras(),
) -> FitResult:
    """Zero residuals: the coefficients are exact, the scale is 0 and the likelihood is unbounded."""
    from .results import IterationRecord

    k = len(closed.params)
    zeros = np.zeros(k)
    estimates, _ = fam.natural(closed.params, np.zeros((k, k)))
    nan = np.full(k, np.nan)
    return FitResult(
        method=method, gradient=gradient, **_described(src, fam),
        params=estimates, se=zeros, z=nan, p_values=nan, ci_low=estimates.copy(), ci_high=estimates.copy(),
        cov=np.zeros((k, k)), n_obs=_n_obs(src, n_weight), n_params=k, nll=-math.inf, mean_nll=-math.inf,
        loglik=math.inf, aic=-math.inf, bic=-math.inf, converged=True,
        message=f"exact fit: every residual is zero (up to float64 rounding), so {' = '.join(fam.ancillary)} = 0 "
        "and the likelihood is unbounded; the coefficients are exact and their standard errors are 0 "
        f"({closed.note})",
        n_iter=0, tol=tol, decrement=0.0,
        trace=(IterationRecord(0, -math.inf, 0.0, math.nan, 0.0),),
        exact_fit=True, objective_value=-math.inf, se_method="exact fit: the standard errors are 0",
        level=extras.level, data_fingerprint=_fingerprint(src) if extras.fingerprint else None,
        **_fit_statistics(fam, estimates, math.inf, n_weight, null, False),
        **_exact_profile(extras, k),
    )


def _exact_profile(extras: Extras, k: int) -> dict[str, Any]:
    """An exact fit's profile fields: no profile exists (the likelihood is unbounded)."""
    if extras.ci != "profile":
        return {}
    from . import profile

    return dict(
        ci_method="profile", profile_ci_low=np.full(k, np.nan), profile_ci_high=np.full(k, np.nan),
        profile_status=((profile.FAILED, profile.FAILED),) * k,
        profile_notes=("no profile-likelihood intervals: every residual is zero, so the likelihood is unbounded",),
        profile_fits=0, profile_passes=0,
    )
