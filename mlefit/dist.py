"""``fit_distributions``: fit univariate distributions to one column, rank them, measure their fit.

Each distribution is fitted by mlefit's own path, ``mlefit.fit`` with a design of one column of
ones and the family that computes its likelihood (:mod:`mlefit.families.distributions`), so the
optimiser, its convergence verdict and the covariance from the analytic Hessian are those of every
fit. Its parameters are then reported in the parametrisation its users know, the covariance by the
delta method (the family's estimates are themselves a map of the optimiser's scale, so the Jacobians
compose), and the intervals are built on the scale where the parameter is unbounded (log for
positive parameters, logit for probabilities) and mapped back.

Goodness of fit, from the sorted column (frequency weights count as repeated rows):
Kolmogorov-Smirnov ``D = sup |F_n - F|``, Cramér-von Mises ``W^2 = n int (F_n - F)^2 dF`` and
Anderson-Darling ``A^2 = n int (F_n - F)^2 / (F (1 - F)) dF`` for continuous distributions (their
usual p-values assume parameters known in advance, not estimated from the same data, so none is
given); for counts, Pearson's chi-squared on grouped counts, the cells merged until each expects at
least :data:`MIN_EXPECTED` observations, with ``cells - 1 - parameters`` degrees of freedom.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import inference
from .errors import ConvergenceWarning, DataError, MlefitError, UsageError
from .results import json_safe
from .families import DISTRIBUTION_NAMES
from .families.distributions import (
    COUNTS, DISTRIBUTIONS, LOG, LOGIT, SUPPORT_TEXT, Distribution, get_distribution, in_support,
)

if TYPE_CHECKING:
    import pandas as pd

#: Chi-squared cells are merged until each expects at least this many observations (Cochran's rule).
MIN_EXPECTED = 5.0
#: The statistics of a continuous and of a discrete distribution, in order (JSON keys, table columns).
CONTINUOUS_STATISTICS = ("ks", "cvm", "ad")
DISCRETE_STATISTICS = ("chi2", "chi2_df", "chi2_p_value")
FITTED, FAILED, NOT_APPLICABLE = "fitted", "failed", "not_applicable"
NOT_CENSORABLE = "does not take right-censored values (--event)"
CENSORED_NOTE = (
    "Kolmogorov-Smirnov, Cramér-von Mises and Anderson-Darling are not defined for right-censored data "
    "(the empirical CDF is unknown beyond a censored time)"
)


@dataclass(frozen=True)
class Parameter:
    """A reported parameter: its estimate, standard error (delta method) and interval."""

    name: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in PARAMETER_KEYS}


PARAMETER_KEYS = ("name", "estimate", "std_error", "ci_low", "ci_high")


@dataclass(frozen=True, eq=False)
class DistributionFit:
    """One distribution's entry: fitted, failed (with the reason) or not applicable (with the reason).

    ``statistics`` holds ``ks``, ``cvm``, ``ad`` (continuous; None for censored data) or ``chi2``,
    ``chi2_df``, ``chi2_p_value`` and ``chi2_cells`` (discrete). ``rank`` is the place by AIC among
    the converged fits (1 is the best), None for the others. ``frozen`` is the scipy.stats
    distribution at the estimates (not in :meth:`to_dict`).
    """

    name: str
    status: str
    message: str
    discrete: bool
    parameters: tuple[Parameter, ...] = ()
    loglik: float = math.nan
    aic: float = math.nan
    bic: float = math.nan
    n_params: int = 0
    converged: bool = False
    n_iter: int = 0
    statistics: dict[str, Any] = field(default_factory=dict)
    rank: int | None = None
    frozen: Any = None

    @property
    def best(self) -> bool:
        return self.rank == 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status, "rank": self.rank, "best": self.best}
        out["parameters"] = [p.to_dict() for p in self.parameters]
        fitted = self.status == FITTED
        out.update(
            loglik=self.loglik, aic=self.aic, bic=self.bic, n_params=self.n_params if fitted else None,
            statistics=dict(self.statistics), converged=self.converged, n_iter=self.n_iter, message=self.message,
        )
        return json_safe(out)


@dataclass(frozen=True, eq=False)
class DistributionFits:
    """The fits of ``fit_distributions``: one entry per distribution considered, best first.

    ``fits`` lists the converged fits by AIC (best first), then those that did not converge or
    failed, then those not applicable, each with its message. ``n_obs`` is the number of
    observations (the sum of the weights when weighted), ``n_rows`` the number of data rows.
    """

    column: str
    n_rows: int
    n_obs: float
    level: float
    discrete: bool
    weights: str | None
    event: str | None
    n_events: float | None
    summary: dict[str, float]
    fits: tuple[DistributionFit, ...]
    statistics_note: str | None
    sample: "Sample" = field(repr=False)

    @property
    def best(self) -> DistributionFit | None:
        return next((f for f in self.fits if f.best), None)

    def __getitem__(self, name: str) -> DistributionFit:
        for f in self.fits:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "command": "dist", "column": self.column, "n_rows": self.n_rows, "n_obs": _whole(self.n_obs),
            "weights": self.weights, "event": self.event,
        }
        if self.event is not None:
            out["n_events"] = _whole(self.n_events)
            out["n_censored"] = _whole(self.n_obs - self.n_events)
        out.update(
            level=self.level, kind="discrete" if self.discrete else "continuous", summary=dict(self.summary),
            best=None if self.best is None else self.best.name, statistics_note=self.statistics_note,
            distributions=[f.to_dict() for f in self.fits],
        )
        return json_safe(out)


def _whole(value: float) -> int | float:
    """A sum of weights as an int when it is whole (as ``n_obs`` is in a fit's JSON)."""
    return int(value) if float(value).is_integer() else float(value)





# -- the data ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Sample:
    """The column, sorted, with its weights and event indicators in the same order.

    Attributes
    ----------
    values : ndarray of shape (n_rows,)
        float64, ascending.
    weights : ndarray of shape (n_rows,) or None
    event : ndarray of shape (n_rows,) of bool, or None
        True for an observed value, False for a right-censored one (None: no censoring).
    original : ndarray of shape (n_rows,), optional
        The values in the order of the data rows (default ``values``), for messages naming a row.
    """

    values: np.ndarray
    weights: np.ndarray | None = None
    event: np.ndarray | None = None
    original: np.ndarray | None = None

    @property
    def n_obs(self) -> float:
        return float(len(self.values) if self.weights is None else self.weights.sum())

    def cumulative(self) -> np.ndarray:
        """``C_i``: the weight of the values up to and including the i-th, shape (n_rows,)."""
        return np.arange(1.0, len(self.values) + 1.0) if self.weights is None else np.cumsum(self.weights)

    def first_outside(self, support: str) -> int | None:
        """The index (in data-row order) of the first value outside ``support``, or None."""
        key = f"outside_{support}"
        if key not in self.__dict__:  # once per support, whichever distributions share it
            y = self.values if self.original is None else self.original
            bad = np.flatnonzero(~in_support(support, y))
            self.__dict__[key] = int(bad[0]) if bad.size else None
        return self.__dict__[key]

    @cached_property
    def ones(self) -> np.ndarray:
        """The design of an intercept-only fit: a column of ones, shape (n_rows, 1)."""
        return np.ones((len(self.values), 1), order="F")

    @cached_property
    def ecdf_terms(self) -> dict[str, Any]:
        """What :func:`continuous_statistics` needs of the sample alone, computed once."""
        if self.weights is None:  # C_i = i: the textbook forms
            N = float(len(self.values))
            odd = np.arange(1.0, 2.0 * N, 2.0)  # 2i - 1
            after = np.arange(1.0, N + 1.0) / N
            return {
                "after": after, "before": after - 1.0 / N, "mid": odd / (2.0 * N), "w": None,
                "cvm0": 1.0 / (12.0 * N), "N": N, "ad_cdf": odd, "ad_sf": odd[::-1],
            }
        w = self.weights
        C = self.cumulative()
        N = float(C[-1])
        prev = C - w
        return {
            "after": C / N, "before": prev / N, "mid": (prev + C) / (2.0 * N), "w": w,
            "cvm0": float(w @ (w * w)) / (12.0 * N * N), "N": N,
            # Anderson-Darling's weights of log F and log(1 - F); 0 where a row's weight is 0
            "ad_cdf": C * C - prev * prev, "ad_sf": (N - prev) ** 2 - (N - C) ** 2,
        }


def read_sample(
    data: Any, column: str | None = None, *, weights: Any = None, event: Any = None, sep: str | None = None,
    input_format: str | None = None,
) -> tuple[Sample, str, str | None, str | None]:
    """The column of ``data`` (a CSV or Parquet path, ``"-"``, a DataFrame, or the values
    themselves as an array) as a sorted :class:`Sample`, and the names of the column, the weights
    and the event column. Missing or non-numeric values are a DataError naming the first one's
    data row."""
    import pandas as pd

    from . import data as readers
    from .readers import is_parquet

    if isinstance(data, (str, Path)) or isinstance(data, pd.DataFrame):
        if isinstance(data, pd.DataFrame):
            frame = data
        elif is_parquet(data, input_format):
            from .readers.parquet import read_frame

            frame = read_frame(data, strict=False)
        else:
            frame = readers.read_table(data, sep)[0]
        columns = [str(c) for c in frame.columns]
        name = readers.choose_target(columns, column, option="--column", what="column")
        picked = {"column": name}
        for option, value in (("weights", weights), ("event", event)):
            if value is not None:
                if not isinstance(value, str):
                    raise UsageError(f"with a table, {option} names one of its columns.")
                if value not in columns:
                    raise DataError(f"{option} column '{value}' not found; available: {', '.join(columns)}.")
                picked[option] = value
        series = {k: frame[v] for k, v in picked.items()}
        w_name, e_name = picked.get("weights"), picked.get("event")
    else:
        values = np.asarray(data)
        if values.ndim != 1:
            raise DataError(f"the values must be a 1-D array; got {values.ndim} dimensions.")
        name = column or "y"
        if weights is None and event is None and values.dtype.kind in "fiu" and values.size:
            y = values.astype(np.float64, copy=False)  # numbers already: no table needed
            finite = np.isfinite(y)
            if finite.all():
                return Sample(np.sort(y), original=y), name, None, None
        series = {"column": pd.Series(values)}
        for option, value in (("weights", weights), ("event", event)):
            if value is not None:
                arr = np.asarray(value)
                if arr.shape != values.shape:
                    raise DataError(f"{option} has shape {arr.shape} but the values have {values.shape}.")
                series[option] = pd.Series(arr)
        w_name = None if weights is None else "weights"
        e_name = None if event is None else "event"
    n = len(series["column"])
    if n == 0:
        raise DataError("the data have no rows.")
    rows = np.arange(1, n + 1)
    labels = {"column": f"column '{name}'", "weights": f"weights column '{w_name}'", "event": f"event column '{e_name}'"}
    for key, s in series.items():
        missing = s.isna().to_numpy()
        if missing.any():
            first = int(np.flatnonzero(missing)[0]) + 1
            raise DataError(
                f"{labels[key]} has {int(missing.sum())} missing value(s), the first in data row {first}.",
                "Remove or fill those rows.",
            )
    y = readers.numeric_values(series["column"], labels["column"], rows)
    w = None if "weights" not in series else readers.check_weights(series["weights"], w_name, rows)
    ev = None if "event" not in series else readers.event_values(series["event"], e_name, rows)
    if w is None and ev is None:
        sample = Sample(np.sort(y), original=y)
    else:
        order = np.argsort(y)
        sample = Sample(y[order], None if w is None else w[order], None if ev is None else ev[order], original=y)
    return sample, name, w_name, e_name


# -- the fits -------------------------------------------------------------------------------------------


def fit_distributions(
    data: Any,
    column: str | None = None,
    *,
    families: "str | Sequence[str] | None" = None,
    weights: Any = None,
    event: Any = None,
    level: float = 0.95,
    sep: str | None = None,
    input_format: str | None = None,
) -> DistributionFits:
    """Fit univariate distributions to one column by maximum likelihood and rank them by AIC.

    Parameters
    ----------
    data : path, ``"-"``, DataFrame or array-like of shape (n_rows,)
        A CSV or Parquet file (or standard input) or table holding the column, or the values
        themselves.
    column : str, optional
        The column; default ``y`` if present, else the last column.
    families : str or list of str, optional
        Distributions to fit (``"normal,gamma"`` or a list of names from
        :data:`mlefit.families.DISTRIBUTION_NAMES`). Data outside a named
        distribution's support is a DataError naming the distribution and the first bad value.
        Default: every distribution whose support holds the data (the discrete ones for counts,
        the continuous ones otherwise); the others are listed as not applicable, with the reason.
    weights : str or array-like, optional
        Frequency weights: a column of ``data``, or an array with the values.
    event : str or array-like, optional
        Right-censoring: 1 (true) for an observed value, 0 (false) for a censored one, for the
        distributions whose family takes censored rows.
    level : float, default 0.95
        Coverage of the intervals.
    sep : str, optional
        The CSV's separator (default: from its header).
    input_format : {"csv", "parquet"}, optional
        How a path is read (default: Parquet for names ending in ``.parquet``, ``.parq`` or ``.pq``
        and for folders, else CSV).

    Returns
    -------
    DistributionFits
    """
    inference.check_level(level)
    sample, name, w_name, e_name = read_sample(
        data, column, weights=weights, event=event, sep=sep, input_format=input_format,
    )
    y = sample.values
    censored = sample.event is not None
    names = _names(families)
    counts = sample.first_outside(COUNTS) is None
    if names is not None:
        chosen = [get_distribution(n) for n in names]
        kinds = {d.discrete for d in chosen}
        if len(kinds) > 1:
            discrete = ", ".join(d.name for d in chosen if d.discrete)
            continuous = ", ".join(d.name for d in chosen if not d.discrete)
            raise UsageError(
                f"--family mixes discrete ({discrete}) and continuous ({continuous}) distributions, whose "
                "likelihoods (probabilities and densities) AIC cannot compare.",
                "Fit them in separate runs.",
            )
        for d in chosen:
            reason = _not_applicable(d, sample, name, counts=None)
            if reason is not None:
                raise (UsageError if censored and not d.censorable else DataError)(f"{d.name}: {reason}.")
        discrete = chosen[0].discrete
    else:
        discrete = counts and not censored
        chosen = [DISTRIBUTIONS[n] for n in DISTRIBUTION_NAMES]
    events = None if sample.event is None else float(
        sample.event.sum() if sample.weights is None else sample.weights @ sample.event
    )
    if events is not None and not events > 0:
        raise DataError(
            f"event column '{e_name}' marks no row as an observed event: with every value right-censored the "
            "likelihood has no maximum."
        )
    if not discrete and y[0] == y[-1]:
        raise DataError(
            f"column '{name}' holds one value only ({y[0]:g}): a continuous distribution has no spread to fit."
        )
    fits = []
    for d in chosen:
        reason = None if names is not None else _not_applicable(d, sample, name, counts=counts)
        if reason is not None:
            fits.append(DistributionFit(d.name, NOT_APPLICABLE, reason, d.discrete))
            continue
        fits.append(_fit_one(d, sample, name, level))
    if all(f.status == NOT_APPLICABLE for f in fits):  # right-censored values that are not all positive
        first = next(f for f in fits if f.message != NOT_CENSORABLE)
        raise DataError(f"no distribution applies to column '{name}': {first.name} {first.message}.")
    fits = _ranked(fits)
    return DistributionFits(
        column=name, n_rows=len(y), n_obs=sample.n_obs, level=float(level), discrete=discrete,
        weights=w_name, event=e_name, n_events=events, summary=_summary(sample), fits=tuple(fits),
        statistics_note=CENSORED_NOTE if censored else None, sample=sample,
    )


def _names(families: "str | Sequence[str] | None") -> list[str] | None:
    if families is None:
        return None
    items = families.split(",") if isinstance(families, str) else list(families)
    names = [str(n).strip().lower() for n in items if str(n).strip()]
    if not names:
        raise UsageError("--family names no distribution.", f"Choose among: {', '.join(DISTRIBUTION_NAMES)}.")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise UsageError(f"--family names {twice} twice.")
    return names


def _not_applicable(d: Distribution, sample: Sample, column: str, *, counts: bool | None) -> str | None:
    """Why ``d`` does not apply to the sample (None: it does). ``counts``: the data are counts and
    only the discrete distributions are fitted (None: not a default listing)."""
    if sample.event is not None and not d.censorable:
        return NOT_CENSORABLE
    i = sample.first_outside(d.support)
    if i is not None:
        y = sample.values if sample.original is None else sample.original
        return f"needs {SUPPORT_TEXT[d.support]}; column '{column}' has {_value_text(y[i])} in data row {i + 1}"
    if counts is not None and counts and not d.discrete and sample.event is None:
        return (
            "the column holds counts, so the discrete distributions are fitted (AIC cannot compare a density "
            "with probabilities); name it with --family to fit it"
        )
    return None


def _value_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _summary(sample: Sample) -> dict[str, float]:
    y, w = sample.values, sample.weights
    mean = float(np.average(y, weights=w))
    sd = math.sqrt(float(np.average((y - mean) ** 2, weights=w)))
    return {"min": float(y[0]), "max": float(y[-1]), "mean": mean, "sd": sd}


def _fit_one(d: Distribution, sample: Sample, column: str, level: float) -> DistributionFit:
    """Fit ``d`` by ``mlefit.fit`` with an intercept only; a MlefitError becomes a failed entry."""
    from .data import INTERCEPT, Dataset
    from .fit import fit

    fam = d.make_family()
    try:
        target = fam.encode(sample.values, column, event=sample.event)
        # the design: the sample's one column of ones, shared by every distribution
        design = {"kind": "columns", "intercept": True, "columns": [], "features": [INTERCEPT]}
        data = Dataset(
            sample.ones, target.y, (INTERCEPT,), column, target.levels, target.note, True, sample.weights,
            None if sample.weights is None else "weights", 0, design,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = fit(data, fam)
    except MlefitError as exc:
        return DistributionFit(d.name, FAILED, str(exc), d.discrete)
    if not math.isfinite(result.loglik):
        return DistributionFit(d.name, FAILED, result.message, d.discrete)
    values, jac = d.reparametrise(result.params)
    cov = delta_covariance(jac, result.cov)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    low, high = intervals(values, se, d.scales, level)
    params = tuple(
        Parameter(n, float(v), float(s), float(a), float(b)) for n, v, s, a, b in zip(d.parameters, values, se, low, high)
    )
    frozen = d.frozen(values)
    if sample.event is not None:
        stats: dict[str, Any] = dict.fromkeys(CONTINUOUS_STATISTICS)
    elif d.discrete:
        stats = chi_squared(sample, frozen, result.n_params)
    else:
        stats = continuous_statistics(sample, *log_tails(frozen, sample.values))
    return DistributionFit(
        d.name, FITTED, result.message, d.discrete, params, result.loglik, result.aic, result.bic,
        result.n_params, result.converged, result.n_iter, stats, frozen=frozen,
    )


def _ranked(fits: list[DistributionFit]) -> list[DistributionFit]:
    """Converged fits by AIC (ranks 1, 2, ...), then the fits that did not converge, the failed
    ones and the distributions not applicable, in the listing's order."""
    from dataclasses import replace

    good = sorted(
        (f for f in fits if f.status == FITTED and f.converged and math.isfinite(f.aic)), key=lambda f: f.aic
    )
    ranked = [replace(f, rank=i + 1) for i, f in enumerate(good)]
    rest = [f for f in fits if f not in good]
    order = {FITTED: 0, FAILED: 1, NOT_APPLICABLE: 2}
    return ranked + sorted(rest, key=lambda f: order[f.status])


# -- inference on the reported scale ------------------------------------------------------------------


def delta_covariance(jac: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``J cov J'``, the covariance of the reported parameters; a parameter that depends on one
    without a variance (held at a boundary: NaN) gets NaN."""
    unknown = ~np.isfinite(np.diag(cov))
    out = jac @ np.where(np.isfinite(cov), cov, 0.0) @ jac.T
    affected = np.any((jac != 0) & unknown[None, :], axis=1)
    out[affected, :] = np.nan
    out[:, affected] = np.nan
    return out


def intervals(values: np.ndarray, se: np.ndarray, scales: Sequence[str], level: float) -> tuple[np.ndarray, np.ndarray]:
    """Wald intervals of coverage ``level``: ``v +- q se`` on the parameter's own scale, on the log
    scale for positive parameters (``v exp(+-q se / v)``) and on the logit scale for probabilities,
    ``q`` the normal quantile of ``(1 + level) / 2``."""
    q = inference.critical_value(level)
    low, high = values - q * se, values + q * se
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for j, scale in enumerate(scales):
            v, s = values[j], se[j]
            if scale == LOG:
                spread = math.exp(min(q * s / v, 700.0)) if v > 0 else math.nan
                low[j], high[j] = v / spread, v * spread
            elif scale == LOGIT:
                logit = math.log(v) - math.log1p(-v) if 0 < v < 1 else math.nan
                half = q * s / (v * (1.0 - v)) if 0 < v < 1 else math.nan
                low[j], high[j] = _expit(logit - half), _expit(logit + half)
    return low, high


def _expit(x: float) -> float:
    if math.isnan(x):
        return math.nan
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


# -- goodness of fit --------------------------------------------------------------------------------------


def continuous_statistics(sample: Sample, log_cdf: np.ndarray, log_sf: np.ndarray) -> dict[str, float]:
    """Kolmogorov-Smirnov, Cramér-von Mises and Anderson-Darling statistics of the sorted sample
    against a fitted CDF (given as ``log F`` and ``log(1 - F)`` at the sorted values).

    With ``N`` the total weight, ``C_i`` the cumulative weight up to the i-th value, ``w_i`` its
    weight and ``F_i`` the fitted CDF there (``C_i = i``, ``w_i = 1`` unweighted, which gives the
    textbook forms):
    ``D = max_i max(C_i / N - F_i, F_i - C_{i-1} / N)``;
    ``W^2 = sum_i w_i (F_i - (C_{i-1} + C_i) / (2N))^2 + sum_i w_i^3 / (12 N^2)``;
    ``A^2 = -N - (1/N) sum_i [(C_i^2 - C_{i-1}^2) log F_i + ((N - C_{i-1})^2 - (N - C_i)^2) log(1 - F_i)]``.
    These are the statistics of the data with each row repeated ``w_i`` times.
    """
    t = sample.ecdf_terms
    F = np.exp(log_cdf)
    ks = max(float(np.max(t["after"] - F)), float(np.max(F - t["before"])))
    d = F - t["mid"]
    cvm = float(d @ d if sample.weights is None else t["w"] @ (d * d)) + t["cvm0"]
    if sample.weights is not None and not np.all(t["w"] > 0):  # 0 * -inf where a row's weight is 0
        keep = t["w"] > 0
        ad_sum = float(t["ad_cdf"][keep] @ log_cdf[keep] + t["ad_sf"][keep] @ log_sf[keep])
    else:
        ad_sum = float(t["ad_cdf"] @ log_cdf + t["ad_sf"] @ log_sf)
    return {"ks": ks, "cvm": cvm, "ad": -t["N"] - ad_sum / t["N"]}


#: Values per task when the tails of a large sample are computed on threads.
TAIL_BLOCK = 1 << 16


def log_tails(frozen: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log F(x)`` and ``log(1 - F(x))`` at the ascending values ``x``, from one evaluation of the
    distribution per value: its CDF below the median and its survival function above, each
    accurate in its own tail, the other tail's log from ``log1p``. Blocks of values are computed
    on threads (:func:`mlefit.parallel.map_tasks`: scipy's special functions release the GIL)."""
    from .parallel import map_tasks

    split = int(np.searchsorted(x, float(frozen.median()), side="right"))
    log_cdf, log_sf = np.empty(len(x)), np.empty(len(x))

    def block(i: int) -> None:
        lo, hi = i * TAIL_BLOCK, min((i + 1) * TAIL_BLOCK, len(x))
        below = slice(lo, max(lo, min(hi, split)))
        above = slice(max(lo, split), hi)
        with np.errstate(divide="ignore"):  # beyond float64's reach of the tail: log(0) = -inf
            low = frozen.cdf(x[below])
            high = frozen.sf(x[above])
            log_cdf[below], log_sf[below] = np.log(low), np.log1p(-low)
            log_cdf[above], log_sf[above] = np.log1p(-high), np.log(high)

    map_tasks(block, -(-len(x) // TAIL_BLOCK))
    return log_cdf, log_sf


def count_cells(sample: Sample, frozen: Any) -> list[tuple[int, int | None, float, float]]:
    """The cells of the chi-squared statistic: ``(low, high, observed, expected)``, ``high`` None
    for the last, open cell. Cells end at observed values, each merged with the next until it
    expects at least :data:`MIN_EXPECTED` observations; the first cell starts at 0, the last takes
    everything above, and a last cell expecting fewer joins the one before it."""
    y = sample.values
    C = sample.cumulative()
    N = float(C[-1])
    ends = np.flatnonzero(np.r_[y[1:] != y[:-1], True])  # the last index of each distinct value
    values = y[ends]
    cdf, sf = frozen.cdf(values), frozen.sf(values)
    cells: list[list[float]] = []  # [low, high, index of the end]
    low, last_cdf, last_sf = 0.0, 0.0, 1.0
    for j in range(len(values)):
        # expected mass of (previous end, this value], from the side that does not cancel
        mass = cdf[j] - last_cdf if cdf[j] < 0.5 else last_sf - sf[j]
        if N * mass >= MIN_EXPECTED:
            cells.append([low, values[j], j])
            low, last_cdf, last_sf = values[j] + 1.0, cdf[j], sf[j]
    if not cells:
        return [(0, None, N, N)]
    if N * last_sf < MIN_EXPECTED:  # the rest above the last cell joins it
        cells.pop()
    out = []
    prev_c, prev_cdf, prev_sf = 0.0, 0.0, 1.0
    for low, high, j in cells:
        mass = cdf[j] - prev_cdf if cdf[j] < 0.5 else prev_sf - sf[j]
        observed = float(C[ends[j]]) - prev_c
        out.append((int(low), int(high), observed, N * mass))
        prev_c, prev_cdf, prev_sf = float(C[ends[j]]), cdf[j], sf[j]
    out.append((int(cells[-1][1] + 1) if cells else 0, None, N - prev_c, N * prev_sf))
    return out


def chi_squared(sample: Sample, frozen: Any, n_params: int) -> dict[str, Any]:
    """Pearson's chi-squared statistic on grouped counts (:func:`count_cells`), its degrees of
    freedom ``cells - 1 - n_params`` and p-value (None where the degrees of freedom are not positive)."""
    from scipy.special import chdtrc

    cells = count_cells(sample, frozen)
    observed = np.array([c[2] for c in cells])
    expected = np.array([c[3] for c in cells])
    df = len(cells) - 1 - n_params
    if len(cells) < 2 or not np.all(expected > 0):
        stat = math.nan
    else:
        stat = float(np.sum((observed - expected) ** 2 / expected))
    p = float(chdtrc(df, stat)) if df > 0 and math.isfinite(stat) else None
    return {
        "chi2": stat, "chi2_df": df, "chi2_p_value": p,
        "chi2_cells": [[lo, hi, o, e] for lo, hi, o, e in cells],
    }


# -- pictures -----------------------------------------------------------------------------------------------


def kaplan_meier(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier estimate of the survival function at the distinct event times: ``(times,
    S)`` with ``S[k]`` the estimate just after ``times[k]`` (weighted by the frequency weights)."""
    y, ev = sample.values, sample.event
    w = np.ones(len(y)) if sample.weights is None else sample.weights
    starts = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    times = y[starts]
    deaths = np.add.reduceat(np.where(ev, w, 0.0), starts)
    at_risk = np.cumsum(np.add.reduceat(w, starts)[::-1])[::-1]
    keep = deaths > 0
    S = np.cumprod(1.0 - deaths[keep] / at_risk[keep])
    return times[keep], S


def plot_fits(result: DistributionFits, path: "str | Path", *, title: str | None = None) -> None:
    """The four panels fitdistrplus draws (histogram and densities, CDFs, Q-Q, P-P) for every fitted
    distribution, to ``path`` (needs matplotlib)."""
    from .plot import plot_distributions

    fits = [(f.name, f.frozen) for f in result.fits if f.status == FITTED and f.frozen is not None]
    km = kaplan_meier(result.sample) if result.sample.event is not None else None
    plot_distributions(
        result.sample.values, result.sample.weights, fits, path, discrete=result.discrete, survival=km,
        title=title or f"mlefit dist: column '{result.column}', {_count_text(result.n_obs)} observations",
    )


def _count_text(n: float) -> str:
    return f"{int(n):,}" if float(n).is_integer() else f"{n:g}"
